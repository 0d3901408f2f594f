"""How dosing plugs into the pathway: the pathway page's bookings, the monitor's today board, demo data,
and the bookings a pathway put on hold, discontinued or completed no longer keeps."""

from __future__ import annotations

from typing import Any

from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from pathways.registry import PATHWAY_STAGE_CHANGED
from pathways.registry import DashboardPanel
from pathways.registry import registry
from sessions.booking import course_selectors
from sessions.booking import selectors
from sessions.record import selectors as record_selectors


def _rems_form_for(pathway: Pathway, user: User) -> Any:
    """The REMS enrolment form, for a prescriber, on an open pathway planned for esketamine whose
    patient is not enrolled yet (the REMS asks for it before the first dose), at a clinic that follows
    the US label."""
    if not (has_capability(user, Capability.REMS_ENROL) and pathway.is_open):
        return None
    from screening import selectors as screening_selectors
    from screening.rules import Agent
    from sessions.booking.forms import RemsEnrolmentForm
    from sessions.models import RemsEnrolment

    plan = screening_selectors.screening_status_for_display(pathway).current  # read once per page
    if plan is None or plan.agent != Agent.ESKETAMINE:
        return None
    if RemsEnrolment.objects.filter(patient_id=pathway.patient_id).exists():
        return None
    from sessions.booking.esketamine_rules import rems_enrolment_required
    from sessions.booking.services import esketamine_label_of

    if not rems_enrolment_required(esketamine_label_of(pathway.clinic_id)):
        return None  # the EU/UK label has no REMS
    return RemsEnrolmentForm()


def pathway_panel(*, pathway: Pathway, user: User) -> DashboardPanel | None:
    """The pathway page's dosing sessions: the latest few (one query), linking to the full list."""
    if not selectors.can_see_pathway_bookings(user):
        return None
    latest = selectors.pathway_latest_bookings(pathway)
    context = {
        "pathway": pathway,
        "bookings": latest.bookings,
        "has_earlier": latest.has_earlier,
        "can_book": has_capability(user, Capability.BOOKING_MANAGE) and pathway.is_open,
        "rems_form": _rems_form_for(pathway, user),
    }
    return DashboardPanel(
        title="Dosing sessions", template_name="sessions/pathway_panel.html", context=context, order=20
    )


def course_panel(*, pathway: Pathway, user: User) -> DashboardPanel | None:
    """The pathway's course: the plan in plain words and its progress (done, booked, still to book),
    read with the pathway (`course_selectors.with_course`, no query of its own), with "Set course" or
    "Change course" for its prescriber role while the pathway is open."""
    if not course_selectors.can_see_course(user):
        return None
    context = {
        "pathway": pathway,
        "course": course_selectors.pathway_course(pathway),
        "can_set": has_capability(user, Capability.COURSE_SET) and pathway.is_open,
    }
    return DashboardPanel(
        title="Course", template_name="sessions/course_panel.html", context=context, order=15
    )


def today_panel(*, user: User) -> DashboardPanel | None:
    """Today's dosing sessions and the next days' (`selectors.upcoming_bookings`), for every role that
    sees bookings: the clinic's for schedule readers, the care team's for a therapist. Two queries."""
    if not selectors.can_see_pathway_bookings(user):
        return None
    from django.utils import timezone

    found = selectors.dashboard_bookings(user, day=timezone.localdate())
    bookings, upcoming = found.today, found.upcoming
    return DashboardPanel(
        title="Today's dosing sessions",
        template_name="sessions/today_panel.html",
        context={
            "bookings": bookings,
            "upcoming": upcoming,
            "upcoming_days": selectors.UPCOMING_DAYS,
            "can_see_calendar": has_capability(user, Capability.SCHEDULE_VIEW),
        },
        order=5,
        patients=tuple(booking.patient for booking in [*bookings, *upcoming]),
    )


def monitoring_forms_panel(*, user: User) -> DashboardPanel | None:
    """Esketamine sessions whose REMS monitoring form is not filed, with the 7-day deadline."""
    if not has_capability(user, Capability.SESSION_RECORD) and not has_capability(
        user, Capability.SCHEDULE_VIEW
    ):
        return None
    from django.utils import timezone

    from sessions.record import rules

    due = record_selectors.pmf_due(user)
    if not due:
        return None
    today = timezone.localdate()
    rows = []
    for session in due:
        deadline = rules.pmf_deadline(timezone.localtime(session.dose_started_at).date())
        rows.append({"session": session, "deadline": deadline, "days_left": (deadline - today).days})
    return DashboardPanel(
        title="REMS monitoring forms to file",
        template_name="sessions/pmf_panel.html",
        context={"rows": rows},
        order=6,
        patients=tuple(session.booking.patient for session in due),
    )


def emdr_panel(*, pathway: Pathway, user: User) -> DashboardPanel | None:
    """The EMDR plan at a glance: targets by state (one query, `emdr_selectors.plan_summary`)."""
    if not has_capability(user, Capability.EMDR_VIEW):
        return None
    from sessions.emdr import rules as emdr_rules
    from sessions.emdr import selectors as emdr_selectors

    plan = emdr_selectors.plan_summary(pathway)
    targets = plan.targets if plan is not None else []
    counts = {state: sum(1 for t in targets if t.state == state) for state in emdr_rules.State}
    context = {
        "pathway": pathway,
        "plan": plan,
        "targets": targets,
        "counts": counts,
        "can_start": plan is None
        and pathway.therapist_id == user.pk
        and has_capability(user, Capability.EMDR_EDIT)
        and pathway.is_open,
    }
    return DashboardPanel(
        title="EMDR plan", template_name="sessions/emdr_panel.html", context=context, order=30
    )


def cancel_bookings_on_stage_change(
    *, pathway: Pathway, change: PathwayStageChange, actor: User, **_: Any
) -> None:
    """Putting a pathway on hold, discontinuing or completing it cancels its bookings still to come
    (those with no record opened), with the move and its reason shown on each."""
    from sessions.booking import services

    if change.to_stage not in services.STAGE_CANCELLING_MOVES:
        return  # a move forward (the first dose's, by the monitor, among them) keeps the bookings
    services.bookings_cancel_for_pathway_move(
        actor=actor, pathway=pathway, to_stage=change.to_stage, reason=change.reason
    )


def register() -> None:
    registry.register_event_handler(PATHWAY_STAGE_CHANGED, cancel_bookings_on_stage_change)
    registry.register_pathway_panel(course_panel)
    registry.register_pathway_page_read(course_selectors.with_course)
    registry.register_pathway_panel(pathway_panel)
    registry.register_pathway_panel(emdr_panel)
    registry.register_dashboard_panel(today_panel)
    registry.register_dashboard_panel(monitoring_forms_panel)
    from sessions.demo import demo_dosing
    from sessions.demo_alerts import demo_alerts

    registry.register_demo_seeder(demo_dosing)
    registry.register_demo_seeder(demo_alerts)  # after the bookings it then stops
