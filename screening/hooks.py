"""How screening plugs into the pathway: the eligibility gate, next actions, the pathway page's
screening section, the safety-alert dashboard panel and the demo data."""

from __future__ import annotations

import zoneinfo
from typing import Any

from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from pathways.models import Pathway
from pathways.models import Stage
from pathways.registry import PATIENT_DATE_OF_BIRTH_CHANGED
from pathways.registry import DashboardPanel
from pathways.registry import registry
from pathways.rules import ActionTarget
from pathways.rules import NextAction

from . import rules
from . import selectors
from . import services
from .models import Assessment
from .models import AssessmentStatus
from .models import SafetyAlert

GATED_STAGES = (Stage.PREPARATION, Stage.DOSING)


def eligibility_gate(*, pathway: Pathway, to_stage: str) -> list[str]:
    """No preparation or dosing without a current, signed, eligible screening."""
    if to_stage not in GATED_STAGES:
        return []
    return selectors.screening_gate_refusals(pathway)


def _assessment_actions(found: Assessment | None, pathway: Pathway) -> list[NextAction]:
    """What to do next about the screening of a pathway in the assessment stage, and where."""
    if found is None:
        opening = (
            ActionTarget("pathway_detail", (str(pathway.public_id),), Capability.SCREENING_EDIT, "screening"),
        )
        return [
            NextAction("Open the assessment", "Stability, history, medications, vitals, measures.", opening)
        ]
    at_assessment = (ActionTarget("assessment_detail", (str(found.public_id),), Capability.SCREENING_VIEW),)
    if found.status == AssessmentStatus.DRAFT:
        return [NextAction("Complete and sign the assessment", "Then move on to preparation.", at_assessment)]
    if found.status == AssessmentStatus.AWAITING_COUNTERSIGNATURE:
        return [
            NextAction("Second signature needed", "Another prescriber confirms the decision.", at_assessment)
        ]
    if found.decision in rules.ELIGIBLE_DECISIONS:
        move = (
            ActionTarget(
                "pathway_detail", (str(pathway.public_id),), Capability.PATHWAY_MOVE, "move-heading"
            ),
        )
        return [NextAction("Move to preparation", "The signed screening allows it.", move)]
    if found.decision == rules.Decision.NOT_ELIGIBLE:
        return [
            NextAction(
                "Not eligible",
                "Discuss it with the patient; discontinue, or screen again if things change.",
                at_assessment,
            )
        ]
    return []


def next_actions(*, pathways: list[Pathway]) -> dict[int, list[NextAction]]:
    """Urgent alerts first; then, in the assessment stage, where the screening stands. Two queries."""
    ids = [pathway.pk for pathway in pathways]
    actions: dict[int, list[NextAction]] = {pk: [] for pk in ids}
    alerted: dict[int, str] = {}  # the pathway's latest open alert
    if len(pathways) == 1:  # the pathway page: share the panel's read of the alerts
        alerts = selectors.open_alerts(pathways[0])
        if alerts:
            alerted[pathways[0].pk] = str(alerts[0].public_id)
    else:
        for pathway_id, public_id in (
            SafetyAlert.objects.filter(pathway_id__in=ids, status="open")
            .order_by("raised_at", "id")
            .values_list("pathway_id", "public_id")
        ):
            alerted[pathway_id] = str(public_id)
    for pk, alert_id in alerted.items():
        actions[pk].append(
            NextAction(
                "Urgent: review the safety alert",
                "Record what was done about it; until then no dose is booked or started, unless a "
                "prescriber signs a dosing override.",
                (ActionTarget("safety_alert_acknowledge", (alert_id,), Capability.SAFETY_ALERT_ACKNOWLEDGE),),
            )
        )
    in_assessment = [p for p in pathways if p.stage == Stage.ASSESSMENT]
    if len(pathways) == 1 and in_assessment:
        only = selectors.screening_status_for_display(pathways[0]).latest
        actions[pathways[0].pk] += _assessment_actions(only, pathways[0])
    elif in_assessment:
        latest: dict[int, Assessment] = {}
        for assessment in (
            Assessment.objects.filter(pathway_id__in=[p.pk for p in in_assessment])
            .only("pathway_id", "public_id", "status", "decision")  # what `_assessment_actions` reads
            .order_by("pathway_id", "version")
        ):
            latest[assessment.pathway_id] = assessment
        for pathway in in_assessment:
            actions[pathway.pk] += _assessment_actions(latest.get(pathway.pk), pathway)
    return actions


def pathway_panel(*, pathway: Pathway, user: User) -> DashboardPanel | None:
    """The screening section of the pathway page: status, gate, alerts, and measures over time."""
    if not has_capability(user, Capability.SCREENING_VIEW):
        return None
    status = selectors.screening_status_for_display(pathway)
    latest = status.latest
    tz = zoneinfo.ZoneInfo(user.clinic.time_zone) if user.clinic else None
    charted = selectors.measure_charts(selectors.measure_history(pathway), tz)
    context = {
        "pathway": pathway,
        "latest": latest,
        "current": status.current,
        "refusals": status.refusals if pathway.is_open else [],
        "alerts": selectors.open_alerts(pathway),
        "charts": charted,
        # The scoring sources of the charts drawn (their bands and cut-points).
        "charted_sources": [chart["source"] for chart in charted if chart["svg"]],
        # Measures given once: a value and a date, no chart.
        "measures_once": [chart for chart in charted if not chart["svg"]],
        "can_edit": has_capability(user, Capability.SCREENING_EDIT) and pathway.is_open,
        "can_record": has_capability(user, Capability.MEASURE_RECORD) and pathway.takes_measures,
        "can_acknowledge": has_capability(user, Capability.SAFETY_ALERT_ACKNOWLEDGE),
        "can_override": has_capability(user, Capability.SAFETY_ALERT_DOSING_OVERRIDE),
        "can_open": (
            has_capability(user, Capability.SCREENING_EDIT)
            and latest is None
            and pathway.stage == Stage.ASSESSMENT
        ),
        "instruments": [(i.value, rules.INSTRUMENTS[i].label) for i in rules.Instrument],
    }
    return DashboardPanel(
        title="Screening", template_name="screening/pathway_panel.html", context=context, order=10
    )


def alerts_panel(*, user: User) -> DashboardPanel | None:
    alerts = selectors.open_alerts_for_dashboard(user)
    if not has_capability(user, Capability.SAFETY_ALERT_ACKNOWLEDGE):
        return None
    return DashboardPanel(
        title="Urgent safety alerts",
        template_name="screening/alerts_panel.html",
        context={"alerts": alerts},
        order=1,
        patients=tuple(alert.pathway.patient for alert in alerts),
    )


def _recheck_age(*, patient: Any, actor: User) -> None:
    services.screenings_recheck_age(patient=patient, actor=actor)


def register() -> None:
    registry.register_stage_gate(eligibility_gate)
    registry.register_next_actions(next_actions)
    registry.register_pathway_panel(pathway_panel)
    registry.register_dashboard_panel(alerts_panel)
    registry.register_event_handler(PATIENT_DATE_OF_BIRTH_CHANGED, _recheck_age)
    from .demo import demo_screenings

    registry.register_demo_seeder(demo_screenings)
