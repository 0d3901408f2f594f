"""How integration plugs into the pathway: event handlers that schedule and close follow-ups inside
the transactions that cause them, the pathway page's integration section, the overdue follow-ups on
the dashboards, next actions, and the demo clinic's notes and follow-ups."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.utils import timezone

from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from pathways.models import Pathway
from pathways.registry import BOOKING_CHANGED
from pathways.registry import MEASURE_RECORDED
from pathways.registry import MONITORING_FORM_FILED
from pathways.registry import PATHWAY_STAGE_CHANGED
from pathways.registry import SESSION_COMPLETED
from pathways.registry import SESSION_OPENED
from pathways.registry import DashboardPanel
from pathways.registry import registry
from pathways.rules import ActionTarget
from pathways.rules import NextAction
from sessions.record import selectors as dosing_selectors

from . import rules
from . import selectors
from . import services


def integration_panel(*, pathway: Pathway, user: User) -> DashboardPanel | None:
    """Live experiments, the latest settled ones, and open follow-ups of the pathway (one query each;
    the follow-ups are shared with the next actions), with a link to its integration page."""
    if not has_capability(user, Capability.INTEGRATION_VIEW) and not has_capability(
        user, Capability.FOLLOW_UP_VIEW
    ):
        return None
    can_read_notes = has_capability(user, Capability.INTEGRATION_VIEW)
    experiments = selectors.pathway_panel_experiments(pathway) if can_read_notes else None
    context = {
        "pathway": pathway,
        "can_read_notes": can_read_notes,
        "live_experiments": experiments.live if experiments else [],
        "settled_experiments": experiments.settled.rows if experiments else [],
        "settled_total": experiments.settled.total if experiments else 0,
        "follow_ups": selectors.pathway_follow_ups(pathway),
        "now": timezone.now(),
        "can_write": has_capability(user, Capability.INTEGRATION_WRITE)
        and pathway.therapist_id == user.pk
        and pathway.is_open,
    }
    return DashboardPanel(
        title="Integration", template_name="integration/pathway_panel.html", context=context, order=40
    )


def overdue_panel(*, user: User) -> DashboardPanel | None:
    """The user's overdue follow-ups; clinic admins and prescribers also see the clinic's."""
    if not has_capability(user, Capability.FOLLOW_UP_VIEW):
        return None
    mine, mine_count = selectors.overdue_follow_ups(user, mine=True)
    clinic_wide = has_capability(user, Capability.PATIENT_VIEW_ALL) and user.role in (
        "clinic_admin",
        "prescriber",
    )
    clinic, clinic_count = (
        selectors.overdue_follow_ups(user, mine=False, others_only=True) if clinic_wide else ([], 0)
    )
    return DashboardPanel(
        title="Overdue follow-ups",
        template_name="integration/overdue_panel.html",
        context={
            "mine": mine,
            "mine_count": mine_count,
            "clinic": clinic,
            "clinic_count": clinic_count,
            "clinic_wide": clinic_wide,
            "now": timezone.now(),
        },
        order=4,
        patients=tuple(follow_up.patient for follow_up in [*mine, *clinic]),
    )


def next_actions(*, pathways: list[Pathway]) -> dict[int, list[NextAction]]:
    """Open integration sessions and check-ins, soonest first (one query for all the pathways)."""
    if not pathways:
        return {}
    actions: dict[int, list[NextAction]] = defaultdict(list)
    now = timezone.now()
    wanted = (rules.FollowUpKind.INTEGRATION_SESSION, rules.FollowUpKind.CHECK_IN)
    for pathway_id, open_work in selectors.open_follow_ups_for(pathways).items():
        for follow_up in [f for f in open_work if f.kind in wanted][:2]:
            due = timezone.localtime(follow_up.due_at)
            overdue = rules.is_overdue(kind=follow_up.kind, due_at=follow_up.due_at, now=now)
            label = (
                "Hold the integration session"
                if follow_up.kind == rules.FollowUpKind.INTEGRATION_SESSION
                else f"Day-{follow_up.sequence} check-in"
            )
            where = (
                ActionTarget("follow_up_detail", (str(follow_up.public_id),), Capability.FOLLOW_UP_VIEW),
            )
            actions[pathway_id].append(
                NextAction(label, f"{'Overdue since' if overdue else 'Due by'} {due:%a %-d %b %H:%M}.", where)
            )
    return dict(actions)


def register() -> None:
    registry.register_event_handler(SESSION_COMPLETED, services.follow_ups_schedule_after_session)
    registry.register_event_handler(BOOKING_CHANGED, services.visit_reminder_sync)
    registry.register_event_handler(SESSION_OPENED, services.visit_reminder_close_on_arrival)
    registry.register_event_handler(MONITORING_FORM_FILED, services.monitoring_form_filed)
    registry.register_event_handler(MEASURE_RECORDED, services.measures_recorded)
    registry.register_event_handler(PATHWAY_STAGE_CHANGED, services.pathway_closed)
    registry.register_pathway_panel(integration_panel)
    registry.register_dashboard_panel(overdue_panel)
    registry.register_next_actions(next_actions)
    registry.register_record_action(summary_action)
    from .demo import demo_integration

    registry.register_demo_seeder(demo_integration)


SUMMARISABLE = {
    "dosing_session": lambda record: record.status == "signed",
    "emdr_session": lambda record: True,
    "integration_note": lambda record: record.status == "signed",
    "pathway": lambda record: True,
}


def summary_action(*, kind: str, record: Any, user: User) -> DashboardPanel | None:
    """A "Summary (PDF)" button on signed records (the pathway's for its clinicians only)."""
    ready = SUMMARISABLE.get(kind)
    if ready is None or not ready(record):
        return None
    if kind == "pathway" and not has_capability(user, Capability.INTEGRATION_VIEW):
        return None
    if kind == "dosing_session" and not dosing_selectors.can_read_session_clinical(user):
        return None
    label = "Pathway summary (PDF)" if kind == "pathway" else "Summary (PDF)"
    return DashboardPanel(
        title=label,
        template_name="integration/_summary_button.html",
        context={"kind": kind, "record": record.public_id, "label": label},
    )
