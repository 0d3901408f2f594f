"""Helpers for the access matrix and the read audit: every route, one object of every kind it names,
and proof that a refusal wrote nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern
from django.urls import URLResolver
from django.urls import get_resolver
from knox.models import AuthToken

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from pathways.models import Patient
from pathways.models import Stage


def record_audit_events() -> int:
    """Audit events about records, leaving out signing in and out (a test's own sign-in writes one)."""
    return AuditEvent.objects.exclude(action__startswith="auth.").count()


def record_write_events() -> int:
    """Audit events of writes to records: `record_audit_events` without the reads (`...viewed`). A
    refused form that shows its page again, with the patient's name, records that read."""
    return AuditEvent.objects.exclude(action__startswith="auth.").exclude(action__endswith="viewed").count()


def snapshot() -> tuple[Any, ...]:
    """Everything a refused request could have written (reads of the page it shows again aside)."""
    return (
        record_write_events(),
        Patient.objects.count(),
        tuple(Patient.objects.order_by("pk").values_list("phone", "given_name")),
        tuple(Pathway.objects.order_by("pk").values_list("stage", "therapist_id")),
        PathwayStageChange.objects.count(),
        tuple(User.objects.order_by("pk").values_list("is_active", "role")),
    )


# --- Walking every route ---------------------------------------------------------------------------


def routes() -> Iterator[tuple[str, str]]:
    """(name, route) of every URL pattern outside the platform admin."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield pattern.name, prefix + str(pattern.pattern)

    for name, route in walk(get_resolver().url_patterns, ""):
        if not route.startswith("admin/"):
            yield name, route


PLACEHOLDER = re.compile(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def fill(route: str, values: Callable[[str, str], str]) -> str:
    """A concrete path for `route`, each parameter given by `values(name, route_so_far)`."""
    path = route.replace("^", "").replace("$", "")
    out, position = "", 0
    for match in PLACEHOLDER.finditer(path):
        out += path[position : match.start()]
        name = match.group(2) or match.group(3)
        out += values(name, out)
        position = match.end()
    return "/" + out + path[position:]


# The kind of object a route's id names, from the path segment just before the id.
RESOURCE_OF_SEGMENT = {
    "staff": "staff",
    "patients": "patient",
    "pathways": "pathway",
    "assessments": "assessment",
    "medications": "medication",
    "alerts": "alert",
    "safety-alerts": "alert",
    "rooms": "room",
    "course-templates": "course_template",
    "rota": "staff",
    "rota-leave": "leave",
    "bookings": "booking",
    "sessions": "session",
    "emdr": "plan",
    "emdr-plans": "plan",
    "targets": "target",
    "emdr-targets": "target",
    "notes": "note",
    "integration-notes": "note",
    "experiments": "experiment",
    "follow-ups": "follow_up",
    "summaries": "summary",
}


def world_values(world: dict[str, Any], unknown: list[str]) -> Callable[[str, str], str]:
    """`fill`'s values for the objects of `world` (see `one_of_everything`): each id names the object
    of the kind its path segment says; a segment of an unknown kind is added to `unknown`."""

    def value(name: str, before: str) -> str:
        if name == "token":
            return "x" * 20
        if name == "instrument":
            return "phq9"
        if name == "action":
            return "vitals"
        if name == "experiment_id":
            return str(world["experiment"].public_id)
        if name == "medication_id":
            return str(world["medication"].public_id)
        if name == "token_key":  # API tokens are named by their visible prefix, not a public id
            return str(world["api_token"].token_key)
        segment = before.rstrip("/").rsplit("/", 1)[-1]
        resource = RESOURCE_OF_SEGMENT.get(segment)
        if resource is None:
            unknown.append(f"{before}<{name}>")
            return str(uuid.uuid4())
        return str(world[resource].public_id)

    return value


# --- One of everything -----------------------------------------------------------------------------


def one_of_everything(clinic: Any, team: dict[str, User], capture_on_commit: Any) -> dict[str, Any]:
    """One object of every kind a route names, in `clinic`, made through the services by `team` (one
    member of staff per role): a pathway in dosing with a signed screening, a signed dosing session
    and its follow-ups, an open safety alert, an EMDR plan and target, an integration note and
    experiment, a PDF summary and an API token. `capture_on_commit` is pytest-django's
    `django_capture_on_commit_callbacks` (the PDF and the follow-ups are made after commit)."""
    from integration import services as integration_services
    from integration import summary_services
    from integration.models import FollowUp
    from screening import services as screening_services
    from sessions.emdr import services as emdr_services

    from .factories import PathwayFactory
    from .factories import RoomFactory
    from .factories import SignedScreeningFactory

    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=team[Role.PRESCRIBER],
        therapist=team[Role.THERAPIST],
        stage=Stage.DOSING,
        patient__registered_by=team[Role.PRESCRIBER],
    )
    screening = SignedScreeningFactory(pathway=pathway)
    draft = screening_services.assessment_new_version(actor=team[Role.PRESCRIBER], assessment=screening)
    medication = screening_services.medication_add(
        actor=team[Role.PRESCRIBER], assessment=draft, name="Sertraline", medication_class="antidepressant"
    )
    room = RoomFactory(clinic=clinic)
    with capture_on_commit(execute=True):
        session = _signed_session(team, pathway, room)
    # After the dose: an open alert stops the next booking and dose (`sessions.gates`).
    screening_services.measure_record(
        actor=team[Role.THERAPIST], pathway=pathway, instrument="phq9", answers=[1] * 8 + [2]
    )
    alert = pathway.safety_alerts.get()
    plan = emdr_services.plan_open(actor=team[Role.THERAPIST], pathway=pathway)
    target = emdr_services.target_add(
        actor=team[Role.THERAPIST], plan=plan, kind="resource", title="Calm place"
    )
    note = integration_services.note_open(actor=team[Role.THERAPIST], pathway=pathway)
    experiment = integration_services.experiment_add(
        actor=team[Role.THERAPIST], note=note, area="sleep", description="Lights out by 23:00."
    )
    with capture_on_commit(execute=True):
        summary = summary_services.summary_request(
            actor=team[Role.MONITOR], kind="dosing_session", record_public_id=session.public_id
        )
    leave = _leave_ahead(team)
    return {
        "staff": team[Role.THERAPIST],
        "patient": pathway.patient,
        "pathway": pathway,
        "assessment": draft,
        "medication": medication,
        "alert": alert,
        "room": room,
        "booking": session.booking,
        "session": session,
        "plan": plan,
        "target": target,
        "note": note,
        "experiment": experiment,
        "follow_up": FollowUp.objects.filter(pathway=pathway).first(),
        "summary": summary,
        "api_token": AuthToken.objects.create(user=team[Role.THERAPIST])[0],
        "course_template": _course(team, pathway),
        "leave": leave,
    }


def _leave_ahead(team: dict[str, User]) -> Any:
    """A day of the therapist's leave three months ahead (no booking names them), through the rota
    service."""
    import datetime as dt

    from django.utils import timezone

    from sessions.booking import rota_services

    starts_at = timezone.now() + dt.timedelta(days=90)
    added = rota_services.staff_leave_add(
        actor=team[Role.CLINIC_ADMIN],
        staff=team[Role.THERAPIST],
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(days=1),
        reason="Training",
    )
    return added.leave


def _course(team: dict[str, User], pathway: Any) -> Any:
    """The clinic's IV racemic course template (adopted from the sourced default) and the pathway's
    course set from it, through the services; the template."""
    from sessions.booking import course_services

    template = course_services.course_template_adopt(actor=team[Role.PRESCRIBER], code="iv_racemic")
    shape = template.shape
    course_services.course_plan_set(
        actor=team[Role.PRESCRIBER],
        pathway=pathway,
        template=template,
        agent=shape.agent,
        route=shape.route,
        sessions=shape.sessions,
        phases=shape.phases,
    )
    return template


def _signed_session(team: dict[str, User], pathway: Any, room: Any) -> Any:
    """A signed dosing session two days ahead, through the services."""
    import datetime as dt
    import zoneinfo

    from django.utils import timezone

    from sessions.booking import services as booking_services
    from sessions.record import services as dosing

    from .sessions.dosing_day import backdate_dose
    from .sessions.dosing_day import settled

    tz = zoneinfo.ZoneInfo(pathway.clinic.time_zone)
    booking = booking_services.booking_create(
        actor=team[Role.CLINIC_ADMIN],
        pathway=pathway,
        room=room,
        starts_at=dt.datetime.combine(timezone.localdate() + dt.timedelta(days=2), dt.time(9), tzinfo=tz),
        prescriber=team[Role.PRESCRIBER],
        monitor=team[Role.MONITOR],
    )
    monitor = team[Role.MONITOR]
    session = dosing.session_open(actor=monitor, booking=booking)
    dosing.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    dosing.vitals_record(actor=monitor, session=session, systolic=128, diastolic=82, heart_rate=70, spo2=98)
    dosing.dose_start(actor=monitor, session=session, dose_mg=100, lot_number="L1")
    backdate_dose(session, 100)
    settled(monitor, session)
    dosing.session_discharge(actor=monitor, session=session, alert_and_oriented=True, escort_present=True)
    return dosing.session_sign(actor=monitor, session=session)
