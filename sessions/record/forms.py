"""Forms for the dosing record: shape only; the rules live in `rules` and `services`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crispy_forms.layout import Column
from crispy_forms.layout import Row
from django import forms
from django.utils.html import format_html

from kaemdr.forms import form_helper
from sessions.booking import esketamine_rules
from sessions.record.rules import VITAL_RANGES


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
        self.helper = form_helper()


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
        self.helper = form_helper(Row(*readings), Row(Column("taken_at", css_class="col-md-4")))


class OverrideForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        label="Reason for the override",
        error_messages={"required": "Give the reason for the override."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


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
        self.helper = form_helper()


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
        self.helper = form_helper()


class DeviceForm(forms.Form):
    given_at = entered_time("Given at, if entered late")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


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
        self.helper = form_helper(
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
        self.helper = form_helper()


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
        self.helper = form_helper()


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
        self.helper = form_helper()


class AddendumForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        label="Addendum",
        error_messages={"required": "Write the addendum."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


class DoseEndForm(forms.Form):
    ended_at = entered_time("Ended at, if entered late")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


class BpReviewForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        label="Review of the rise in blood pressure",
        error_messages={"required": "Give the reason for the review."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


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
        self.helper = form_helper()


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
        self.helper = form_helper()
