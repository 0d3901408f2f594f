"""Forms for rooms and bookings: shape only; scheduling rules live in `rules` and `services`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML
from crispy_forms.layout import Column
from crispy_forms.layout import Layout
from crispy_forms.layout import Row
from django import forms
from django.db.models import QuerySet
from django.utils.html import format_html
from django.utils.html import format_html_join

from kaemdr.models import User
from kaemdr.templatetags.kaemdr_tags import cite

from . import emdr_rules
from . import esketamine_rules
from . import rules
from .models import Room
from .models import Weekday
from .rules import VITAL_RANGES


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
        self.helper = _helper()


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


def entered_time(label: str = "Time, if entered late") -> forms.TimeField:
    """An optional time of day for an entry made after the fact; empty means now (the server's clock).
    The service bounds it: never in the future, never before what it follows, and back at most the
    clinic's late-entry minutes (`rules.entry_time_problem`)."""
    return forms.TimeField(
        required=False,
        label=label,
        help_text="Leave empty to use the current time.",
        widget=forms.TimeInput(attrs={"type": "time"}),
    )


class SessionChecksForm(forms.Form):
    fasting_confirmed = forms.BooleanField(
        required=False, label="Fasting confirmed (no food 2 h, no liquids 30 min)"
    )
    escort_present = forms.BooleanField(required=False, label="Escort present to take the patient home")
    consent_confirmed = forms.BooleanField(required=False, label="Consent for this session confirmed")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


def _vital(name: str, label: str, unit: str) -> forms.Field:
    """A reading's field with its allowed range (`rules.VITAL_RANGES`, the model's validators): a
    value outside it, or not a whole number, is answered with the range and its unit.

    A text input with a numeric keypad rather than `type="number"`: a browser sends a number input
    it cannot parse as empty, so a mistyped value would be saved as "not taken" without a word. The
    unit goes on a line of its own under the name, so that the five inputs line up in a row."""
    allowed = VITAL_RANGES[name]
    message = allowed.message()
    bound = message.replace("%", "%%")  # the range validators' messages are %-formatted, "invalid" is not
    return _big(
        forms.IntegerField(
            required=False,
            min_value=allowed.low,
            max_value=allowed.high,
            label=format_html('{} <span class="vital-unit">{}</span>', label, unit),
            widget=forms.TextInput(attrs={"pattern": "[0-9]*"}),
            error_messages={"min_value": bound, "max_value": bound, "invalid": message},
        )
    )


class VitalsForm(forms.Form):
    systolic = _vital("systolic", "Systolic", "mmHg")
    diastolic = _vital("diastolic", "Diastolic", "mmHg")
    heart_rate = _vital("heart_rate", "Heart rate", "bpm")
    spo2 = _vital("spo2", "SpO2", "%")
    respiratory_rate = _vital("respiratory_rate", "Resp. rate", "/min")
    taken_at = entered_time("Taken at, if entered late")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        readings = [Column(name, css_class="col-6 col-md") for name in self.fields if name != "taken_at"]
        self.helper = _helper(Row(*readings), Row(Column("taken_at", css_class="col-md-4")))


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


class DoseOverrideForm(forms.Form):
    """A prescriber approves one dose outside the clinic's mg/kg range, with a reason."""

    dose_mg = forms.DecimalField(
        max_digits=6,
        decimal_places=1,
        min_value=Decimal("0.1"),
        max_value=Decimal("1000"),
        label="Dose to approve (mg)",
        error_messages={"required": "Enter the dose to approve, in mg."},
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        label="Reason for a dose outside the range",
        error_messages={"required": "Give the reason for approving this dose."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: the dose form and the pre-dose override form on the same page have a dose and
        # a reason too (the names posted stay `dose_mg` and `reason`).
        kwargs.setdefault("auto_id", "id_dose_override_%s")
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class DoseForm(forms.Form):
    dose_mg = forms.DecimalField(max_digits=6, decimal_places=1, min_value=0.1, label="Dose (mg)")
    lot_number = forms.CharField(max_length=40, label="Lot number")
    started_at = entered_time("Started at, if entered late")

    def __init__(self, *args: Any, esketamine: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if esketamine:
            self.fields["dose_mg"] = forms.TypedChoiceField(
                choices=[
                    ("56", "56 mg (2 devices)"),
                    ("84", "84 mg (3 devices)"),
                    ("28", "28 mg (1 device)"),
                ],
                coerce=int,
                label="Dose planned",
            )
            self.fields["started_at"].label = "Device 1 given at, if entered late"
        self.helper = _helper()


class DeviceForm(forms.Form):
    given_at = entered_time("Given at, if entered late")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


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
    taken_at = entered_time()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Row(
                Column("scale", css_class="col-md-5"),
                Column("value", css_class="col-6 col-md-3"),
                Column("anchors", css_class="col-6 col-md-4"),
            ),
            "taken_at",
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
    occurred_at = entered_time("Happened at, if earlier")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class DischargeForm(forms.Form):
    alert_and_oriented = forms.BooleanField(required=False, label="Alert and oriented")
    dissociation_resolved = forms.BooleanField(
        required=False,
        label="Dissociation has resolved",
        help_text="Not needed when the last CADSS after the dose is 0.",
    )
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
    ended_at = entered_time("Ended at, if entered late")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class BpReviewForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        label="Review of the rise in blood pressure",
        error_messages={"required": "Give the reason for the review."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class PmfMedicationsForm(forms.Form):
    """The monitoring form's concomitant medication classes, ticked from the medication review for the
    prescriber to confirm or correct."""

    classes = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="The patient takes",
    )

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["classes"].choices = choices  # type: ignore[attr-defined]
        self.helper = _helper()


class LeaveChecklistForm(forms.Form):
    """The Readiness to Leave checklist (esketamine under the EU/UK label), ticked before discharge."""

    items = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(item.code, item.text) for item in esketamine_rules.LEAVE_CHECKLIST],
        label="Confirmed before the patient leaves",
        error_messages={"invalid_choice": "Choose among the checklist's items."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


ESKETAMINE_LABEL_HELP = (
    "Sets the esketamine doses, frequency and duties. US prescribing information: day 1 is 56 mg, then "
    "56 or 84 mg, at any age; the patient's REMS enrolment before booking, and the REMS monitoring form "
    "after each session, filed within 7 days. EU/UK summary of product characteristics: day 1 is 56 mg "
    "(28 mg from age 65), then 56 or 84 mg (28, 56 or 84 mg from 65); no REMS; the Readiness to Leave "
    "checklist completed before discharge. Both: at most twice a week in weeks 1-4 of a course, once a "
    "week from week 5."
)


def _capitalised(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}"


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
    late_entry_minutes = forms.IntegerField(
        min_value=0, max_value=60, label="A late entry may go back (minutes)"
    )
    discharge_bp_window_minutes = forms.IntegerField(
        min_value=5, max_value=60, label="Discharge: blood pressure taken within (minutes)"
    )
    discharge_systolic_max = forms.IntegerField(
        min_value=120, max_value=220, label="Discharge: systolic at most"
    )
    discharge_diastolic_max = forms.IntegerField(
        min_value=70, max_value=140, label="Discharge: diastolic at most"
    )
    bp_rise_systolic_margin = forms.IntegerField(
        min_value=10, max_value=80, label="Prescriber reviews a systolic rise from baseline of"
    )
    bp_rise_diastolic_margin = forms.IntegerField(
        min_value=5, max_value=60, label="Prescriber reviews a diastolic rise from baseline of"
    )
    bp_ceiling_systolic = forms.IntegerField(
        min_value=120,
        max_value=250,
        label="Ceiling: systolic at or above",
        help_text="No override can start a dose at or above the ceiling (default 180/110, grade 3 "
        "hypertension). It must be above the pre-dose limit.",
    )
    esketamine_label = forms.ChoiceField(
        choices=[(label.value, name) for label, name in esketamine_rules.ESKETAMINE_LABEL_NAMES.items()],
        label="Esketamine: the label the clinic follows",
        help_text=ESKETAMINE_LABEL_HELP,
    )
    bp_ceiling_diastolic = forms.IntegerField(
        min_value=70, max_value=150, label="Ceiling: diastolic at or above"
    )
    emdr_protocol = forms.ChoiceField(
        choices=[(protocol.value, name) for protocol, name in emdr_rules.PROTOCOL_LABELS.items()],
        label="EMDR protocol for new plans",
        help_text="A new EMDR plan follows it; the therapist can change it on each plan.",
    )
    clinic_admins_read_dosing_records = forms.BooleanField(
        required=False,
        label="Clinic admins may read the clinical content of dosing records",
        help_text="Off (the default), clinic admins see a dosing session's logistics only: room, times, "
        "staff and status. On, they also read its vitals, dose, scales, adverse events, discharge and "
        "monitoring form, and its PDF summary.",
    )

    def __init__(self, *args: Any, routes: list[tuple[str, str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.routes = routes
        rows: list[Any] = [
            Row(Column("esketamine_label", css_class="col-12")),
            Row(
                Column("predose_systolic_max", css_class="col-6"),
                Column("predose_diastolic_max", css_class="col-6"),
            ),
            Row(
                Column("bp_ceiling_systolic", css_class="col-6"),
                Column("bp_ceiling_diastolic", css_class="col-6"),
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
            Row(
                Column("late_entry_minutes", css_class="col-6 col-md-4"),
                Column("discharge_bp_window_minutes", css_class="col-6 col-md-4"),
            ),
            Row(
                Column("discharge_systolic_max", css_class="col-6 col-md-3"),
                Column("discharge_diastolic_max", css_class="col-6 col-md-3"),
                Column("bp_rise_systolic_margin", css_class="col-6 col-md-3"),
                Column("bp_rise_diastolic_margin", css_class="col-6 col-md-3"),
            ),
            Row(Column("emdr_protocol", css_class="col-12")),
            HTML('<h2 class="h6 mt-3" id="admin-access">Clinic admins\' access</h2>'),
            Row(Column("clinic_admins_read_dosing_records", css_class="col-12")),
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
        rows.extend(self._dose_range_rows())
        self.helper = _helper(*rows)

    def _dose_range_rows(self) -> list[Any]:
        """A minimum and a maximum in mg/kg for each agent and route with a range (0 < min <= max <= 20),
        after a heading that says what a range does and where each default comes from."""
        defaults = format_html_join(
            "",
            "<li>{}: {} ({})</li>",
            (
                (
                    _capitalised(rules.dose_range_label(agent, route)),
                    default.text(),
                    cite(rules.DOSE_RANGE_DEFAULT_SOURCES[route]),
                )
                for (agent, route), default in rules.DEFAULT_DOSE_RANGES.items()
            ),
        )
        rows: list[Any] = [
            HTML(
                format_html(
                    '<h2 class="h6 mt-3" id="dose-ranges">Dose ranges (mg/kg)</h2>'
                    '<p class="small text-body-secondary mb-1">Outside its range a dose needs a '
                    "prescriber's approval with a reason on the session record. Esketamine follows its "
                    "label's fixed doses. The defaults:</p>"
                    '<ul class="small text-body-secondary">{}</ul>',
                    defaults,
                )
            )
        ]
        for agent, route in rules.DEFAULT_DOSE_RANGES:
            label = _capitalised(rules.dose_range_label(agent, route))
            for part in ("minimum", "maximum"):
                self.fields[f"{part}_{agent}_{route}"] = forms.DecimalField(
                    max_digits=4,
                    decimal_places=2,
                    min_value=Decimal("0.01"),
                    max_value=rules.DOSE_RANGE_LIMIT_MG_PER_KG,
                    label=f"{label}: {part} (mg/kg)",
                )
            rows.append(
                Row(
                    *(Column(f"{part}_{agent}_{route}", css_class="col-6") for part in ("minimum", "maximum"))
                )
            )
        return rows

    def dose_ranges(self) -> list[tuple[str, str, Decimal, Decimal]]:
        data = self.cleaned_data
        return [
            (agent, route, data[f"minimum_{agent}_{route}"], data[f"maximum_{agent}_{route}"])
            for agent, route in rules.DEFAULT_DOSE_RANGES
        ]

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
