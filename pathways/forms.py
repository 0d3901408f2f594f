"""Forms for patients and pathways: shape only. The rules live in `services` and `rules`."""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column
from crispy_forms.layout import Fieldset
from crispy_forms.layout import Layout
from crispy_forms.layout import Row
from crispy_forms.layout import Submit
from django import forms
from django.core.validators import MaxValueValidator
from django.core.validators import MinValueValidator

from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.selectors import AUDIT_DATE_FIRST
from kaemdr.selectors import AUDIT_DATE_LAST

from .models import Patient
from .models import Stage
from .services import PATIENT_FIELDS


class PatientForm(forms.Form):
    """Registration details of a patient. Record-number uniqueness and dates are checked by the service."""

    def __init__(
        self, *args: Any, submit_label: str = "Register patient", record_number_hint: str = "", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(forms.fields_for_model(Patient, fields=PATIENT_FIELDS))
        if record_number_hint:  # a suggestion only: the number is the clinic's to give
            self.fields["record_number"].widget.attrs["placeholder"] = record_number_hint
            self.fields["record_number"].help_text = f"The next free number is {record_number_hint}."
        self.fields["date_of_birth"].widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        self.fields["phone"].widget.attrs.update({"type": "tel", "autocomplete": "off"})
        self.fields["emergency_contact_phone"].widget.attrs.update({"type": "tel"})
        self.fields["emergency_contact_can_escort"].label = "Can be the escort home after dosing"
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Fieldset(
                "Patient",
                Row(
                    Column("record_number", css_class="col-md-4"),
                    Column("date_of_birth", css_class="col-md-4"),
                ),
                Row(Column("given_name", css_class="col-md-6"), Column("family_name", css_class="col-md-6")),
                Row(Column("phone", css_class="col-md-6"), Column("email", css_class="col-md-6")),
            ),
            Fieldset(
                "Emergency contact",
                Row(
                    Column("emergency_contact_name", css_class="col-md-6"),
                    Column("emergency_contact_relationship", css_class="col-md-6"),
                ),
                Row(Column("emergency_contact_phone", css_class="col-md-6")),
                "emergency_contact_can_escort",
            ),
            Submit("submit", submit_label),
        )


class StaffChoiceField(forms.ChoiceField):
    """A member of staff picked from a list already loaded (so several fields share one query).

    Cleans to the `User`, or None when nothing is chosen.
    """

    def __init__(self, *, staff: list[User], empty_label: str, **kwargs: Any) -> None:
        self.staff = {str(member.public_id): member for member in staff}
        choices = [("", empty_label), *((key, member.full_name) for key, member in self.staff.items())]
        super().__init__(choices=choices, **kwargs)

    def clean(self, value: Any) -> User | None:
        key = super().clean(value)
        return self.staff.get(key) if key else None


class CareTeamForm(forms.Form):
    """The pathway's prescriber and therapist, from the clinic's active clinicians (one query)."""

    def __init__(self, *args: Any, clinicians: list[User], submit_label: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prescriber"] = StaffChoiceField(
            staff=[u for u in clinicians if u.role == Role.PRESCRIBER],
            empty_label="Choose…",
            label="Prescriber",
            required=True,
        )
        self.fields["therapist"] = StaffChoiceField(
            staff=[u for u in clinicians if u.role == Role.THERAPIST],
            empty_label="Not yet assigned",
            label="Therapist",
            required=False,
        )
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.submit_label = submit_label


class PathwayOpenForm(CareTeamForm):
    referral_source = forms.CharField(max_length=150, required=False, label="Referred by")
    reason = forms.CharField(
        required=False,
        label="Note for the timeline",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
    )


class PathwayMoveForm(forms.Form):
    """A stage move. Any stage is accepted here so that the service, not the form, explains a refusal."""

    to_stage = forms.ChoiceField(choices=Stage.choices, label="Move to")
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        error_messages={"required": "Give a reason for the move."},
    )
    expected_stage = forms.ChoiceField(choices=Stage.choices, widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, allowed: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if allowed is not None:
            labels = dict(Stage.choices)
            self.fields["to_stage"].widget.choices = [(stage, labels[stage]) for stage in allowed]
        self.helper = FormHelper()
        self.helper.form_tag = False


AUDIT_DATE_BOUNDS = [
    MinValueValidator(AUDIT_DATE_FIRST, message="Choose a date from 2000 on."),
    MaxValueValidator(AUDIT_DATE_LAST, message="Choose a date before the year 3000."),
]


class AuditFilterForm(forms.Form):
    record_number = forms.CharField(required=False, max_length=32, label="Patient record number")
    actor = forms.ChoiceField(required=False, label="User")
    occurred_from = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=AUDIT_DATE_BOUNDS,
    )
    occurred_to = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=AUDIT_DATE_BOUNDS,
    )

    error_messages = {"date_order": "The end date is before the start date."}

    def __init__(self, *args: Any, actors: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = [  # type: ignore[attr-defined]
            ("", "Anyone"),
            *((str(u.public_id), f"{u.full_name} ({u.email})") for u in actors),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("occurred_from"), cleaned.get("occurred_to")
        if start and end and end < start:
            self.add_error(
                "occurred_to", forms.ValidationError(self.error_messages["date_order"], code="date_order")
            )
        return cleaned
