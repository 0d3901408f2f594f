"""Forms for the EMDR plan and session logs: shape only; the rules are in `rules` and `services`."""

from __future__ import annotations

from typing import Any

from crispy_forms.layout import Column
from crispy_forms.layout import Row
from django import forms

from kaemdr.forms import form_helper
from sessions.emdr import rules as emdr_rules
from sessions.models import EMDR_KIND_CHOICES
from sessions.models import BilateralStimulation
from sessions.models import EmdrTarget
from sessions.models import NegativeCognitionTheme

INTERWEAVES = [
    ("missing_information", "Missing information"),
    ("time_place_responsibility", "Time, place or responsibility"),
    ("safety", "Safety"),
    ("choice_control", "Choice or control"),
    ("socratic", "Socratic question"),
    ("imagery", "Imagery or metaphor"),
]
PHASES = [
    (1, "1 History and planning"),
    (2, "2 Preparation"),
    (3, "3 Assessment"),
    (4, "4 Desensitisation"),
    (5, "5 Installation"),
    (6, "6 Body scan"),
    (7, "7 Closure"),
    (8, "8 Reevaluation"),
]


class TargetForm(forms.Form):
    kind = forms.ChoiceField(choices=EMDR_KIND_CHOICES, label="Kind")
    title = forms.CharField(max_length=120, label="Short title")
    image = forms.CharField(max_length=300, required=False, label="Image or worst part")
    negative_cognition = forms.CharField(
        max_length=200, required=False, label="Negative cognition (\u201cI\u2026\u201d)"
    )
    positive_cognition = forms.CharField(max_length=200, required=False, label="Positive cognition")
    voc = forms.IntegerField(required=False, label="VOC (1-7)")
    emotions = forms.CharField(max_length=200, required=False)
    sud = forms.IntegerField(required=False, label="SUD (0-10)")
    body_location = forms.CharField(max_length=120, required=False)
    theme = forms.ChoiceField(
        choices=[("", "—"), *NegativeCognitionTheme.choices], required=False, label="Negative-cognition theme"
    )
    belongs_to = forms.MultipleChoiceField(
        required=False, label="Future template for", widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, targets: list[EmdrTarget], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Choices from the targets the page has already loaded (no second query); cleaned to targets.
        self._targets = {str(t.public_id): t for t in targets}
        self.fields["belongs_to"].choices = [(key, t.title) for key, t in self._targets.items()]  # type: ignore[attr-defined]
        self.helper = form_helper(
            Row(Column("kind", css_class="col-md-5"), Column("title", css_class="col-md-7")),
            "image",
            Row(
                Column("negative_cognition", css_class="col-md-6"),
                Column("positive_cognition", css_class="col-md-6"),
            ),
            Row(
                Column("sud", css_class="col-4 col-md-2"),
                Column("voc", css_class="col-4 col-md-2"),
                Column("emotions", css_class="col-md-4"),
                Column("body_location", css_class="col-md-4"),
            ),
            "theme",
            "belongs_to",
        )

    def clean_belongs_to(self) -> list[EmdrTarget]:
        return [self._targets[key] for key in self.cleaned_data.get("belongs_to", [])]


class ReadinessForm(forms.Form):
    dual_awareness_shown = forms.BooleanField(required=False, label="Dual awareness shown on a milder target")
    affect_tolerance_shown = forms.BooleanField(
        required=False,
        label="Affect tolerance shown",
        help_text="Notices rising distress and comes back within the window of tolerance with the skills "
        "practised.",
    )
    dissociation_interview_recorded = forms.BooleanField(
        required=False, label="Structured dissociation interview (DDIS or SCID-D) recorded"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


class ProtocolForm(forms.Form):
    """The plan's EMDR protocol: a simple choice, no reason asked (the service says what changes)."""

    protocol = forms.ChoiceField(
        choices=[(protocol.value, label) for protocol, label in emdr_rules.PROTOCOL_LABELS.items()],
        widget=forms.RadioSelect,
        label="Protocol",
        error_messages={"invalid_choice": "Choose stabilisation first or the standard three-prong protocol."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


class OverrideForm(forms.Form):
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        label="Reason (the therapist writes it; the prescriber countersigns)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper()


class SessionLogForm(forms.Form):
    """A session with one target worked (log the session again for another target)."""

    held_date = forms.DateField(
        label="Date", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    held_time = forms.TimeField(label="Time", widget=forms.TimeInput(attrs={"type": "time"}))
    phase_reached = forms.TypedChoiceField(choices=PHASES, coerce=int, label="Phase reached")
    stimulation = forms.ChoiceField(choices=BilateralStimulation.choices, label="Bilateral stimulation")
    dosing_session = forms.ChoiceField(required=False, label="Tied to dosing session")
    target = forms.ModelChoiceField(
        queryset=EmdrTarget.objects.none(), to_field_name="public_id", label="Target"
    )
    sud_start = forms.IntegerField(required=False, label="SUD at start")
    voc_start = forms.IntegerField(required=False, label="VOC at start")
    sud_by_set = forms.CharField(
        required=False, label="SUD after each set (comma-separated)", help_text="For example 6, 5, 5, 3"
    )
    sud_end = forms.IntegerField(required=False, label="SUD at end")
    voc_end = forms.IntegerField(required=False, label="VOC at end")
    body_scan_clear = forms.BooleanField(required=False, label="Body scan clear")
    interweaves = forms.MultipleChoiceField(
        choices=INTERWEAVES,
        required=False,
        label="Cognitive interweaves used",
        widget=forms.CheckboxSelectMultiple,
    )
    closure_technique = forms.ChoiceField(
        required=False,
        label="Closure of an incomplete target",
        choices=[("", "Complete closure"), ("container", "Container"), ("calm_place", "Calm place")],
    )

    def __init__(
        self, *args: Any, targets: Any, dosing_choices: list[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = targets  # type: ignore[attr-defined]
        self.fields["dosing_session"].choices = [("", "Not tied to a dose"), *dosing_choices]  # type: ignore[attr-defined]
        for name in ("sud_start", "voc_start", "sud_end", "voc_end"):
            self.fields[name].widget.attrs.update(
                {"inputmode": "numeric", "class": "form-control form-control-lg"}
            )
        self.helper = form_helper(
            Row(
                Column("held_date", css_class="col-6 col-md-3"),
                Column("held_time", css_class="col-6 col-md-3"),
                Column("phase_reached", css_class="col-md-3"),
                Column("stimulation", css_class="col-md-3"),
            ),
            Row(Column("target", css_class="col-md-6"), Column("dosing_session", css_class="col-md-6")),
            Row(
                Column("sud_start", css_class="col-6 col-md-3"),
                Column("voc_start", css_class="col-6 col-md-3"),
                Column("sud_end", css_class="col-6 col-md-3"),
                Column("voc_end", css_class="col-6 col-md-3"),
            ),
            "sud_by_set",
            "body_scan_clear",
            "interweaves",
            "closure_technique",
        )

    def clean_sud_by_set(self) -> list[int]:
        raw = self.cleaned_data.get("sud_by_set") or ""
        try:
            return [int(part) for part in raw.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("Give whole numbers separated by commas.", code="invalid") from None


KIND_BADGES = {
    emdr_rules.State.NOT_STARTED: "text-bg-light border",
    emdr_rules.State.IN_PROGRESS: "text-bg-primary",
    emdr_rules.State.RESOLVED: "text-bg-success",
    emdr_rules.State.BLOCKED: "text-bg-danger",
}
