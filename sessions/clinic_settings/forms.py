"""The dosing settings form: shape only; the checks live in `services`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crispy_forms.layout import HTML
from crispy_forms.layout import Column
from crispy_forms.layout import Row
from django import forms
from django.utils.html import format_html
from django.utils.html import format_html_join

from kaemdr.forms import form_helper
from kaemdr.templatetags.kaemdr_tags import cite
from sessions.booking import rules as booking_rules
from sessions.emdr import rules as emdr_rules
from sessions.record import rules

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
        choices=[(label.value, name) for label, name in booking_rules.ESKETAMINE_LABEL_NAMES.items()],
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
            for part, low, high in (
                ("dosing", 5, booking_rules.LONGEST_DOSING_MINUTES),
                ("monitoring", 30, booking_rules.LONGEST_MONITORING_MINUTES),
                ("turnover", 0, booking_rules.LONGEST_TURNOVER_MINUTES),
            ):
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
        self.helper = form_helper(*rows)

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
