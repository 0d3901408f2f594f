"""Forms for rooms and bookings: shape only; scheduling rules live in `rules` and `services`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crispy_forms.layout import Column
from crispy_forms.layout import Row
from django import forms
from django.db.models import QuerySet

from kaemdr.forms import form_helper
from kaemdr.models import User
from sessions.models import Room
from sessions.models import Weekday


class RoomForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = ("name", "has_bp_monitor", "has_pulse_oximeter", "has_recliner", "is_active")
        labels = {"is_active": "In use"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()

    def validate_unique(self) -> None:
        """Name uniqueness is the service's check (it words the message)."""


class FeedRotateForm(forms.Form):
    """Asks for a new calendar feed address, once the admin confirms the current one stops working."""

    confirm = forms.BooleanField(
        label="I understand the current address stops working at once",
        error_messages={
            "required": "Tick the box to confirm: calendars subscribed to the current address stop "
            "updating until they subscribe to the new one."
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


class OpeningHoursForm(forms.Form):
    """Opening and closing time for each weekday; both empty means closed that day."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rows = []
        for day, label in Weekday.choices:
            self.fields[f"opens_{day}"] = forms.TimeField(
                required=False, label=f"{label} opens", widget=forms.TimeInput(attrs={"type": "time"})
            )
            self.fields[f"closes_{day}"] = forms.TimeField(
                required=False, label=f"{label} closes", widget=forms.TimeInput(attrs={"type": "time"})
            )
            rows.append(
                Row(Column(f"opens_{day}", css_class="col-6"), Column(f"closes_{day}", css_class="col-6"))
            )
        self.helper = form_helper(*rows)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for day, label in Weekday.choices:
            opens, closes = cleaned.get(f"opens_{day}"), cleaned.get(f"closes_{day}")
            if (opens is None) != (closes is None):
                self.add_error(f"closes_{day}", f"Give both times for {label}, or neither.")
            elif opens is not None and closes is not None and opens >= closes:
                self.add_error(f"closes_{day}", "Closing must be after opening.")
        return cleaned

    def hours(self) -> list[tuple[int, dt.time, dt.time]]:
        data = self.cleaned_data
        return [
            (day, data[f"opens_{day}"], data[f"closes_{day}"])
            for day, _ in Weekday.choices
            if data.get(f"opens_{day}") and data.get(f"closes_{day}")
        ]

    @staticmethod
    def initial_for(room: Room) -> dict[str, Any]:
        initial: dict[str, Any] = {}
        for hours in room.opening_hours.all():
            initial[f"opens_{hours.weekday}"] = hours.opens
            initial[f"closes_{hours.weekday}"] = hours.closes
        return initial


class LocalDateTimeMixin:
    """Combine a date and a time field into an aware datetime in the clinic's time zone."""

    def at(self, date_field: str, time_field: str, tz: dt.tzinfo) -> dt.datetime:
        data = self.cleaned_data  # type: ignore[attr-defined]
        return dt.datetime.combine(data[date_field], data[time_field], tzinfo=tz)


class ClosureForm(LocalDateTimeMixin, forms.Form):
    start_date = forms.DateField(
        label="From (date)", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    start_time = forms.TimeField(label="From (time)", widget=forms.TimeInput(attrs={"type": "time"}))
    end_date = forms.DateField(
        label="Until (date)", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end_time = forms.TimeField(label="Until (time)", widget=forms.TimeInput(attrs={"type": "time"}))
    reason = forms.CharField(max_length=200, label="Reason")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper(
            Row(Column("start_date", css_class="col-6"), Column("start_time", css_class="col-6")),
            Row(Column("end_date", css_class="col-6"), Column("end_time", css_class="col-6")),
            "reason",
        )


class _StaffChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.full_name)


class BookingForm(LocalDateTimeMixin, forms.Form):
    room = forms.ModelChoiceField(queryset=Room.objects.none(), to_field_name="public_id", label="Room")
    date = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    time = forms.TimeField(
        label="Start time", widget=forms.TimeInput(attrs={"type": "time", "step": 300}, format="%H:%M")
    )

    def __init__(
        self,
        *args: Any,
        rooms: QuerySet[Room],
        prescribers: QuerySet[User],
        monitors: QuerySet[User],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["room"].queryset = rooms  # type: ignore[attr-defined]
        self.fields["prescriber"] = _StaffChoice(
            queryset=prescribers, to_field_name="public_id", label="Prescriber onsite"
        )
        self.fields["monitor"] = _StaffChoice(queryset=monitors, to_field_name="public_id", label="Monitor")
        self.helper = form_helper(
            Row(
                Column("room", css_class="col-md-4"),
                Column("date", css_class="col-6 col-md-4"),
                Column("time", css_class="col-6 col-md-4"),
            ),
            Row(Column("prescriber", css_class="col-md-6"), Column("monitor", css_class="col-md-6")),
        )


class MoveForm(LocalDateTimeMixin, forms.Form):
    room = forms.ModelChoiceField(queryset=Room.objects.none(), to_field_name="public_id", label="Room")
    date = forms.DateField(
        label="New date", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    time = forms.TimeField(
        label="New start time", widget=forms.TimeInput(attrs={"type": "time", "step": 300})
    )

    def __init__(self, *args: Any, rooms: QuerySet[Room], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["room"].queryset = rooms  # type: ignore[attr-defined]
        self.helper = form_helper(
            Row(
                Column("room", css_class="col-md-4"),
                Column("date", css_class="col-6 col-md-4"),
                Column("time", css_class="col-6 col-md-4"),
            )
        )


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        label="Reason for cancelling",
        error_messages={"required": "Give the reason for cancelling."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


class ChecksForm(forms.Form):
    fasting_instructions_given = forms.BooleanField(required=False, label="Fasting instructions given")
    fasting_confirmed = forms.BooleanField(required=False, label="Patient confirmed they will fast")
    escort_confirmed = forms.BooleanField(required=False, label="Escort home confirmed")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


class RemsEnrolmentForm(forms.Form):
    enrolled_on = forms.DateField(
        label="Enrolled on", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    reference = forms.CharField(max_length=60, required=False, label="REMS reference")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper(
            Row(Column("enrolled_on", css_class="col-6"), Column("reference", css_class="col-6"))
        )
