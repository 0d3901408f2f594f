"""Forms for rooms and bookings: shape only; scheduling rules live in `rules` and `services`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column
from crispy_forms.layout import Layout
from crispy_forms.layout import Row
from django import forms
from django.db.models import QuerySet

from kaemdr.models import User

from .models import Room
from .models import Weekday


def _helper(*fields: Any) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    if fields:
        helper.layout = Layout(*fields)
    return helper


class RoomForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = ("name", "has_bp_monitor", "has_pulse_oximeter", "has_recliner", "is_active")
        labels = {"is_active": "In use"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()

    def validate_unique(self) -> None:
        """Name uniqueness is the service's check (it words the message)."""


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
        self.helper = _helper(*rows)

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
        self.helper = _helper(
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
    time = forms.TimeField(label="Start time", widget=forms.TimeInput(attrs={"type": "time", "step": 300}))

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
        self.helper = _helper(
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
        self.helper = _helper(
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
        self.helper = _helper()


class ChecksForm(forms.Form):
    fasting_instructions_given = forms.BooleanField(required=False, label="Fasting instructions given")
    fasting_confirmed = forms.BooleanField(required=False, label="Patient confirmed they will fast")
    escort_confirmed = forms.BooleanField(required=False, label="Escort home confirmed")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class RemsEnrolmentForm(forms.Form):
    enrolled_on = forms.DateField(
        label="Enrolled on", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    reference = forms.CharField(max_length=60, required=False, label="REMS reference")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Row(Column("enrolled_on", css_class="col-6"), Column("reference", css_class="col-6"))
        )


def _big(field: forms.Field) -> forms.Field:
    """Large, numeric-keypad inputs for readings taken at the chair on a tablet."""
    field.widget.attrs.update(
        {"inputmode": "numeric", "class": "form-control form-control-lg", "autocomplete": "off"}
    )
    return field


class SessionChecksForm(forms.Form):
    fasting_confirmed = forms.BooleanField(
        required=False, label="Fasting confirmed (no food 2 h, no liquids 30 min)"
    )
    escort_present = forms.BooleanField(required=False, label="Escort present to take the patient home")
    consent_confirmed = forms.BooleanField(required=False, label="Consent for this session confirmed")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class VitalsForm(forms.Form):
    systolic = _big(forms.IntegerField(required=False, min_value=50, max_value=280, label="Systolic"))
    diastolic = _big(forms.IntegerField(required=False, min_value=20, max_value=180, label="Diastolic"))
    heart_rate = _big(forms.IntegerField(required=False, min_value=20, max_value=250, label="Heart rate"))
    spo2 = _big(forms.IntegerField(required=False, min_value=50, max_value=100, label="SpO2 %"))
    respiratory_rate = _big(forms.IntegerField(required=False, min_value=2, max_value=60, label="Resp. rate"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(Row(*(Column(name, css_class="col-6 col-md") for name in self.fields)))


class OverrideForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        label="Reason for the override",
        error_messages={"required": "Give the reason for the override."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class DoseForm(forms.Form):
    dose_mg = forms.DecimalField(max_digits=6, decimal_places=1, min_value=0.1, label="Dose (mg)")
    lot_number = forms.CharField(max_length=40, label="Lot number")
    device_1 = forms.TimeField(
        required=False, label="Device 1 at", widget=forms.TimeInput(attrs={"type": "time"})
    )
    device_2 = forms.TimeField(
        required=False, label="Device 2 at", widget=forms.TimeInput(attrs={"type": "time"})
    )
    device_3 = forms.TimeField(
        required=False, label="Device 3 at", widget=forms.TimeInput(attrs={"type": "time"})
    )

    def __init__(self, *args: Any, esketamine: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not esketamine:
            for name in ("device_1", "device_2", "device_3"):
                del self.fields[name]
        self.helper = _helper()

    def device_times(self, day: dt.date, tz: dt.tzinfo) -> list[dt.datetime]:
        return [
            dt.datetime.combine(day, self.cleaned_data[name], tzinfo=tz)
            for name in ("device_1", "device_2", "device_3")
            if self.cleaned_data.get(name)
        ]


class ScaleForm(forms.Form):
    scale = forms.ChoiceField(
        choices=[("cadss", "CADSS (0-92)"), ("moaas", "MOAA/S (0-5)"), ("bprs_plus", "BPRS+")]
    )
    value = forms.IntegerField(min_value=0, max_value=92, label="Score")
    anchors = forms.ChoiceField(
        required=False,
        choices=[("", "—"), ("0-6", "0-6 per item"), ("1-7", "1-7 per item")],
        label="BPRS+ anchors",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Row(
                Column("scale", css_class="col-md-5"),
                Column("value", css_class="col-6 col-md-3"),
                Column("anchors", css_class="col-6 col-md-4"),
            )
        )


class AdverseEventForm(forms.Form):
    description = forms.CharField(max_length=300, label="What happened")
    severity = forms.ChoiceField(
        choices=[
            ("mild", "Mild"),
            ("moderate", "Moderate"),
            ("severe", "Severe"),
            ("serious", "Serious adverse event"),
        ]
    )
    action_taken = forms.CharField(max_length=300, label="Action taken")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class DischargeForm(forms.Form):
    alert_and_oriented = forms.BooleanField(required=False, label="Alert and oriented")
    escort_present = forms.BooleanField(required=False, label="Escort present")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


YES_NO = [(True, "Yes"), (False, "No")]


class PmfForm(forms.Form):
    pmf_first_treatment = forms.NullBooleanField(
        label="First treatment?", widget=forms.RadioSelect(choices=YES_NO)
    )
    pmf_sedation = forms.NullBooleanField(label="Sedation?", widget=forms.RadioSelect(choices=YES_NO))
    pmf_dissociation = forms.NullBooleanField(label="Dissociation?", widget=forms.RadioSelect(choices=YES_NO))
    pmf_respiratory_depression = forms.NullBooleanField(
        label="Respiratory depression?", widget=forms.RadioSelect(choices=YES_NO)
    )
    pmf_ready_minutes = forms.IntegerField(
        required=False, min_value=0, max_value=480, label="Ready without the 2-hour rule after (minutes)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class AddendumForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        label="Addendum",
        error_messages={"required": "Write the addendum."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class DoseEndForm(forms.Form):
    ended_at = forms.TimeField(label="Dose ended at", widget=forms.TimeInput(attrs={"type": "time"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class DosingSettingsForm(forms.Form):
    """The clinic's dosing limits, and dosing + monitoring + turnover minutes for each agent and route."""

    predose_systolic_max = forms.IntegerField(min_value=100, max_value=220, label="Pre-dose systolic limit")
    predose_diastolic_max = forms.IntegerField(min_value=60, max_value=140, label="Pre-dose diastolic limit")
    systolic_max = forms.IntegerField(min_value=120, max_value=250, label="Monitoring: systolic above")
    diastolic_max = forms.IntegerField(min_value=70, max_value=150, label="Monitoring: diastolic above")
    heart_rate_max = forms.IntegerField(min_value=80, max_value=200, label="Monitoring: heart rate above")
    spo2_min = forms.IntegerField(min_value=80, max_value=99, label="Monitoring: SpO2 below (%)")
    respiratory_rate_min = forms.IntegerField(min_value=4, max_value=20, label="Respiratory rate below")
    respiratory_rate_max = forms.IntegerField(min_value=12, max_value=40, label="Respiratory rate above")
    minimum_observation_minutes = forms.IntegerField(
        min_value=30, max_value=480, label="Minimum observation, racemic ketamine (minutes)"
    )
    vitals_interval_minutes = forms.IntegerField(min_value=5, max_value=60, label="Vitals every (minutes)")

    def __init__(self, *args: Any, routes: list[tuple[str, str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.routes = routes
        rows: list[Any] = [
            Row(
                Column("predose_systolic_max", css_class="col-6"),
                Column("predose_diastolic_max", css_class="col-6"),
            ),
            Row(
                Column("systolic_max", css_class="col-6 col-md-3"),
                Column("diastolic_max", css_class="col-6 col-md-3"),
                Column("heart_rate_max", css_class="col-6 col-md-3"),
                Column("spo2_min", css_class="col-6 col-md-3"),
            ),
            Row(
                Column("respiratory_rate_min", css_class="col-6 col-md-3"),
                Column("respiratory_rate_max", css_class="col-6 col-md-3"),
                Column("minimum_observation_minutes", css_class="col-6 col-md-3"),
                Column("vitals_interval_minutes", css_class="col-6 col-md-3"),
            ),
        ]
        for agent, route, label in routes:
            for part, low, high in (("dosing", 5, 240), ("monitoring", 30, 480), ("turnover", 0, 120)):
                self.fields[f"{part}_{agent}_{route}"] = forms.IntegerField(
                    min_value=low, max_value=high, label=f"{label}: {part} (min)"
                )
            rows.append(
                Row(
                    *(
                        Column(f"{part}_{agent}_{route}", css_class="col-4")
                        for part in ("dosing", "monitoring", "turnover")
                    )
                )
            )
        self.helper = _helper(*rows)

    def chair_times(self) -> list[tuple[str, str, int, int, int]]:
        data = self.cleaned_data
        return [
            (
                agent,
                route,
                data[f"dosing_{agent}_{route}"],
                data[f"monitoring_{agent}_{route}"],
                data[f"turnover_{agent}_{route}"],
            )
            for agent, route, _ in self.routes
        ]
