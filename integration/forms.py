"""Forms for integration notes, experiments, follow-ups and the clinic's settings: shape only; the
rules are in `rules` and the services."""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column
from crispy_forms.layout import Layout
from crispy_forms.layout import Row
from django import forms
from django.utils.html import format_html

from kaemdr.templatetags.kaemdr_tags import cite

from . import rules
from .models import AREA_CHOICES
from .models import EXPERIMENT_STATE_CHOICES
from .models import IntegrationSettings


def _helper(*layout: Any) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    if layout:
        helper.layout = Layout(*layout)
    return helper


class NoteForm(forms.Form):
    """The seeds' prompts, in their order, with the session's date and time."""

    held_date = forms.DateField(
        label="Date of the integration session",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    held_time = forms.TimeField(label="Time", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    perception_shift = forms.CharField(
        required=False,
        label="What shifted in perception",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    newly_possible = forms.CharField(
        required=False, label="What felt newly possible", widget=forms.Textarea(attrs={"rows": 3})
    )
    afraid_of_losing = forms.CharField(
        required=False,
        label="What the system is afraid of losing",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    free_notes = forms.CharField(required=False, label="Notes", widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Row(Column("held_date", css_class="col-sm-6"), Column("held_time", css_class="col-sm-6")),
            "perception_shift",
            "newly_possible",
            "afraid_of_losing",
            "free_notes",
        )


class ExperimentForm(forms.Form):
    area = forms.ChoiceField(choices=[("", "Choose an area"), *AREA_CHOICES], label="Area")
    description = forms.CharField(
        max_length=300,
        label="What exactly",
        help_text="Small and specific: when, how often, with whom.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class ExperimentReviewForm(forms.Form):
    state = forms.ChoiceField(choices=EXPERIMENT_STATE_CHOICES, label="Now")
    what_happened = forms.CharField(
        required=False, label="What happened", widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class AddendumForm(forms.Form):
    text = forms.CharField(label="Addendum", widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class FollowUpDoneForm(forms.Form):
    outcome = forms.CharField(
        max_length=300, label="Outcome", help_text="Reached, left a message, no answer…"
    )

    def __init__(self, *args: Any, label: str = "Outcome", help_text: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["outcome"].label = label
        self.fields["outcome"].help_text = help_text
        self.helper = _helper()


class IntegrationSettingsForm(forms.ModelForm):
    class Meta:
        model = IntegrationSettings
        fields = (
            "integration_window_hours",
            "check_in_days",
            "measures_interval_weeks",
            "reminder_hour",
            "outcome_follow_up_months",
            "patient_emails_enabled",
        )
        labels = {
            "integration_window_hours": "Integration session due within (hours)",
            "check_in_days": "Check-in days after a dose",
            "measures_interval_weeks": "Outcome measures every (weeks)",
            "reminder_hour": "Visit reminder hour, the day before",
            "outcome_follow_up_months": "Outcome follow-up months",
            "patient_emails_enabled": "Email patients their reminders",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Each timing says where it comes from: the setting, and the source of its default.
        for name, citation in rules.SETTING_SOURCES.items():
            self.fields[name].help_text = format_html(
                '{} <span class="d-block">Source: {}.</span>', self.fields[name].help_text, cite(citation)
            )
        self.helper = _helper()
