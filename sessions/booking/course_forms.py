"""Forms for course plans and course templates: shape only; the course's rules live in `course_rules`
and the services check them."""

from __future__ import annotations

from typing import Any

from crispy_forms.layout import HTML
from crispy_forms.layout import Column
from crispy_forms.layout import Fieldset
from crispy_forms.layout import Row
from django import forms

from kaemdr.forms import form_helper
from screening.models import AGENT_CHOICES
from screening.models import ROUTE_CHOICES
from sessions.booking import course_rules
from sessions.booking.course_rules import Phase

PHASE_PARTS = ("weeks", "per_week", "min_days", "max_days")


class CourseFieldsForm(forms.Form):
    """Agent, route, number of sessions and up to `course_rules.MAX_PHASES` phases (a phase's row left
    empty is no phase). Bounds as the rules give them; the rules' own checks are the service's."""

    agent = forms.ChoiceField(choices=AGENT_CHOICES)
    route = forms.ChoiceField(choices=ROUTE_CHOICES)
    sessions = forms.IntegerField(
        label="Number of sessions",
        min_value=course_rules.MIN_SESSIONS,
        max_value=course_rules.MAX_SESSIONS,
    )

    leading: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fieldsets = []
        for number in range(1, course_rules.MAX_PHASES + 1):
            prefix = f"phase_{number}_"
            self.fields[prefix + "weeks"] = forms.IntegerField(
                required=False,
                min_value=1,
                max_value=course_rules.MAX_PHASE_WEEKS,
                label="Weeks",
                help_text="Empty in the last phase: it runs on until the course ends.",
            )
            self.fields[prefix + "per_week"] = forms.IntegerField(
                required=False,
                min_value=1,
                max_value=course_rules.MAX_PER_WEEK,
                label="Sessions a week, at most",
            )
            self.fields[prefix + "min_days"] = forms.IntegerField(
                required=False,
                min_value=course_rules.MIN_DAYS_APART,
                max_value=course_rules.MAX_DAYS_APART,
                label="Days apart, at least",
            )
            self.fields[prefix + "max_days"] = forms.IntegerField(
                required=False,
                min_value=course_rules.MIN_DAYS_APART,
                max_value=course_rules.MAX_DAYS_APART,
                label="Days apart, at most",
            )
            fieldsets.append(
                Fieldset(
                    f"Phase {number}" + (" (optional)" if number > 1 else ""),
                    Row(*(Column(prefix + part, css_class="col-6 col-md-3") for part in PHASE_PARTS)),
                )
            )
        self.helper = form_helper(
            *self.leading,
            Row(
                Column("agent", css_class="col-md-4"),
                Column("route", css_class="col-md-4"),
                Column("sessions", css_class="col-md-4"),
            ),
            HTML(
                '<p class="form-text">Weeks are counted from the first session (days 1-7 are week 1). '
                "Each phase follows the one before.</p>"
            ),
            *fieldsets,
            *self.trailing(),
        )

    def trailing(self) -> tuple[str, ...]:
        return ()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        rows: list[Phase] = []
        gap_after: int | None = None
        for number in range(1, course_rules.MAX_PHASES + 1):
            prefix = f"phase_{number}_"
            if any(prefix + part in self.errors for part in PHASE_PARTS):
                continue
            values: dict[str, Any] = {part: cleaned.get(prefix + part) for part in PHASE_PARTS}
            given = [part for part in PHASE_PARTS if values[part] is not None]
            if not given:
                gap_after = gap_after or number
                continue
            if gap_after is not None:
                self.add_error(
                    prefix + "per_week", f"Fill in phase {gap_after} first: phases follow each other."
                )
                continue
            missing = [part for part in PHASE_PARTS[1:] if values[part] is None]
            for part in missing:
                self.add_error(prefix + part, "Enter this too, or clear the phase.")
            if not missing:
                rows.append(
                    Phase(values["weeks"], values["per_week"], values["min_days"], values["max_days"])
                )
        if not rows and not any(key.startswith("phase_") for key in self.errors):
            self.add_error("phase_1_per_week", "Give the course at least one phase.")
        cleaned["phases"] = tuple(rows)
        return cleaned

    def course(self) -> dict[str, Any]:
        """The service's keyword arguments for the course (agent, route, sessions, phases)."""
        data = self.cleaned_data
        return {
            "agent": data["agent"],
            "route": data["route"],
            "sessions": data["sessions"],
            "phases": data["phases"],
        }

    @staticmethod
    def initial_for(shape: course_rules.CourseShape) -> dict[str, Any]:
        initial: dict[str, Any] = {"agent": shape.agent, "route": shape.route, "sessions": shape.sessions}
        for number, phase in enumerate(shape.phases, start=1):
            for part, value in phase.as_dict().items():
                initial[f"phase_{number}_{part}"] = value
        return initial


class CoursePlanForm(CourseFieldsForm):
    """A pathway's course, started from a template (`template`: its key, kept through the post)."""

    template = forms.CharField(required=False, widget=forms.HiddenInput)
    leading = ("template",)


class CourseTemplateForm(CourseFieldsForm):
    name = forms.CharField(max_length=80)
    is_active = forms.BooleanField(required=False, initial=True, label="In use")
    leading = ("name",)

    def trailing(self) -> tuple[str, ...]:
        return ("is_active",)


class TemplateChoiceForm(forms.Form):
    """Step 1 of setting a course: the template to start from (a GET form; the course form below it
    is filled from the choice)."""

    template = forms.ChoiceField(label="Start from", required=False)

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "choose_%s")  # the course form below has its own `template`
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [("", "Choose a template"), *choices]  # type: ignore[attr-defined]
        self.helper = form_helper()
