"""Forms for screening: shape only. Scoring, completeness and sign-off rules live in `rules`."""

from __future__ import annotations

from typing import Any

from crispy_forms.bootstrap import InlineRadios
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column
from crispy_forms.layout import Fieldset
from crispy_forms.layout import Layout
from crispy_forms.layout import Row
from django import forms

from . import rules
from .models import Assessment
from .models import AssessmentMedication

YES_NO = [("true", "Yes"), ("false", "No")]


def _yes_no(label: str) -> forms.NullBooleanField:
    # Boolean choice values, so that a saved True/False shows as the checked radio again.
    return forms.NullBooleanField(
        label=label, required=False, widget=forms.RadioSelect(choices=[(True, "Yes"), (False, "No")])
    )


class AssessmentForm(forms.Form):
    """The draft's own fields. Everything may be left empty; completeness is checked at signing."""

    current_crisis = _yes_no("Is the patient in a current crisis?")
    housing_stable = _yes_no("Is their housing stable?")
    has_support_person = _yes_no("Do they have a support person?")
    escort_available = _yes_no("Is an escort home available after dosing?")
    history_reviewed = forms.BooleanField(
        required=False, label="I have reviewed the medical history against the catalogue below"
    )
    condition_codes = forms.MultipleChoiceField(
        required=False,
        label="Conditions present",
        choices=[
            (c.code, f"{c.label}{' (absolute)' if c.severity == rules.Severity.ABSOLUTE else ''}")
            for c in rules.CONDITIONS
        ],
        widget=forms.CheckboxSelectMultiple,
    )
    medications_reviewed = forms.BooleanField(
        required=False, label="The medication list below is complete (or the patient takes none)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_fields = forms.fields_for_model(
            Assessment,
            fields=("support_notes", "agent", "route", "systolic", "diastolic", "heart_rate", "weight_kg"),
        )
        for name, field in model_fields.items():
            field.required = False
            self.fields[name] = field
        self.fields["weight_kg"].widget.attrs.update({"step": "0.1", "inputmode": "decimal"})
        for name in ("systolic", "diastolic", "heart_rate"):
            self.fields[name].widget.attrs.update({"inputmode": "numeric"})
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset(
                "Stability and support",
                Row(
                    Column("current_crisis", css_class="col-md-6"),
                    Column("housing_stable", css_class="col-md-6"),
                ),
                Row(
                    Column("has_support_person", css_class="col-md-6"),
                    Column("escort_available", css_class="col-md-6"),
                ),
                "support_notes",
            ),
            Fieldset(
                "Plan", Row(Column("agent", css_class="col-md-6"), Column("route", css_class="col-md-6"))
            ),
            Fieldset(
                "Baseline vitals",
                Row(
                    Column("systolic", css_class="col-6 col-md-3"),
                    Column("diastolic", css_class="col-6 col-md-3"),
                    Column("heart_rate", css_class="col-6 col-md-3"),
                    Column("weight_kg", css_class="col-6 col-md-3"),
                ),
            ),
            Fieldset("Medical history", "history_reviewed", "condition_codes"),
            Fieldset("Medication review", "medications_reviewed"),
        )


class MedicationForm(forms.ModelForm):
    class Meta:
        model = AssessmentMedication
        fields = ("name", "medication_class", "dose")
        labels = {"name": "Medication", "dose": "Dose and timing"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Row(
                Column("name", css_class="col-md-4"),
                Column("medication_class", css_class="col-md-5"),
                Column("dose", css_class="col-md-3"),
            )
        )


class MeasureForm(forms.Form):
    """One field per item, named `item_N` (or the C-SSRS question keys) like the rules' error keys."""

    def __init__(self, *args: Any, instrument: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instrument = rules.Instrument(instrument)
        self.spec = rules.INSTRUMENTS[self.instrument]
        if self.instrument == rules.Instrument.CSSRS:
            for key, text in rules.CSSRS_QUESTIONS:
                skip = {
                    "q3": " (only if question 2 is yes)",
                    "q4": " (only if question 2 is yes)",
                    "q5": " (only if question 2 is yes)",
                    "q6_past_3_months": " (only if there was any behaviour)",
                }.get(key, "")
                self.fields[key] = forms.ChoiceField(
                    label=f"{text}{skip}",
                    required=False,
                    choices=[("", "Not asked"), *YES_NO] if skip else YES_NO,
                    widget=forms.RadioSelect,
                )
        else:
            values = range(self.spec.minimum, self.spec.maximum + 1, self.spec.step)
            suffix = "%" if self.instrument == rules.Instrument.DES2 else ""
            for index, text in enumerate(self.spec.items, start=1):
                self.fields[f"item_{index}"] = forms.TypedChoiceField(
                    label=f"{index}. {text}",
                    choices=[(value, f"{value}{suffix}") for value in values],
                    coerce=int,
                    required=False,
                    widget=forms.RadioSelect(attrs={"class": "measure-scale"}),
                )
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(*(InlineRadios(name) for name in self.fields))

    def answers(self) -> Any:
        """The answers in the shape the rules score: a list of item values, or the C-SSRS mapping."""
        data = self.cleaned_data
        if self.instrument == rules.Instrument.CSSRS:
            return {
                key: data[key] == "true" for key in rules.CSSRS_KEYS if data.get(key) in ("true", "false")
            }
        return [
            data.get(f"item_{index}") if data.get(f"item_{index}") != "" else None
            for index in range(1, len(self.spec.items) + 1)
        ]

    @staticmethod
    def initial_from(instrument: str, answers: Any) -> dict[str, Any]:
        if instrument == rules.Instrument.CSSRS:
            return {key: ("true" if value else "false") for key, value in (answers or {}).items()}
        return {f"item_{index}": value for index, value in enumerate(answers or [], start=1)}


class SignForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[(d.value, rules.DECISION_LABELS[d]) for d in rules.Decision],
        widget=forms.RadioSelect,
        label="Eligibility decision",
    )
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        label="Reason (required when deciding against the proposal)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


class AlertAcknowledgeForm(forms.Form):
    action_taken = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        label="What was done",
        error_messages={"required": "Record what was done about this alert."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


class AlertDosingOverrideForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        label="Why dosing may go ahead while the alert is open",
        error_messages={"required": "Give the reason dosing may go ahead."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


class ScreeningSettingsForm(forms.Form):
    bp_systolic_threshold = forms.IntegerField(
        min_value=100, max_value=220, label="Systolic threshold (mmHg)"
    )
    bp_diastolic_threshold = forms.IntegerField(
        min_value=60, max_value=140, label="Diastolic threshold (mmHg)"
    )
    screening_valid_days = forms.IntegerField(
        min_value=7, max_value=730, label="A signed screening stays current for (days)"
    )
    second_signature_codes = forms.MultipleChoiceField(
        required=False,
        label="Relative contraindications that need a second prescriber's signature",
        choices=[(c.code, c.label) for c in rules.CONDITIONS if c.severity == rules.Severity.RELATIVE],
        widget=forms.CheckboxSelectMultiple,
    )
    adults_only = forms.BooleanField(
        required=False,
        label="Only adults (18 and over) are eligible for any ketamine",
        help_text="Esketamine is never given under 18, whatever this says (its label). On by default: the "
        "consensus statement on ketamine for mood disorders covers adults.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
