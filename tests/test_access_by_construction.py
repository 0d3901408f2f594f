"""Access by construction: every URL the project serves is walked, so that a new view without access
control fails here, whoever forgets it.

- Every route but a short, explained list of public ones answers an anonymous visitor with the
  sign-in redirect (pages) or 401/403 (API), for GET and POST alike.
- Every route that takes an id is called with the id of another clinic's object, by every role of
  this clinic, GET and POST: the answer is 404 (or 405 for a method the route does not have, which
  tells nothing), and nothing is written. A route whose kind of object this test does not know
  fails, until it is added to `RESOURCE_OF_SEGMENT`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern
from django.urls import URLResolver
from django.urls import get_resolver
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from integration import services as integration_services
from integration import summary_services
from integration.models import FollowUp
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage
from screening import services as screening_services
from sessions import emdr_services

from .access import record_audit_events
from .access import snapshot
from .factories import PathwayFactory
from .factories import RoomFactory
from .factories import SignedScreeningFactory
from .factories import UserFactory
from .sessions.dosing_day import backdate_dose
from .sessions.dosing_day import settled

pytestmark = pytest.mark.django_db

# Routes anyone may open, and why.
PUBLIC = {
    "login": "the sign-in page",
    "logout": "signing out needs no session",
    "password_reset": "asking for a password-reset email (throttled; says nothing about the address)",
    "password_set": "an invited member of staff chooses a password from the emailed link (token-checked)",
    "room_calendar_feed": "calendar apps cannot sign in; a private token guards each feed (initials only)",
    "api-token": "exchanging an email and password for an API token",
    "health": "load balancers and the benchmark probe it; it answers `ok` and reads nothing",
}


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


def dummy(name: str, before: str) -> str:
    return {
        "token": "x" * 20,
        "instrument": "phq9",
        "action": "vitals",
        "uidb64": "MQ",
        "token_key": "abcd1234",
    }.get(name, str(uuid.uuid4()))


def test_every_route_but_the_public_ones_requires_sign_in(client: Client) -> None:
    api = APIClient()
    checked = 0
    for name, route in routes():
        if name in PUBLIC:
            continue
        path = fill(route, dummy)
        for method in ("get", "post"):
            if path.startswith("/api/"):
                response = getattr(api, method)(path)
                assert response.status_code in (401, 403), (name, method, response.status_code)
            else:
                response = getattr(client, method)(path)
                assert response.status_code == 302, (name, method, response.status_code)
                assert response["Location"].startswith("/accounts/login/"), (name, response["Location"])
            checked += 1
    assert checked > 200  # the walk found the routes


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


@pytest.fixture
def foreign(
    other_clinic: Any,
    make_user: Callable[..., User],
    complete_session: Callable[..., Any],
    settings: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> dict[str, Any]:
    """One of everything, in another clinic, made through the services."""
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    team = {role: UserFactory(clinic=other_clinic, role=role) for role in Role.values}
    pathway = PathwayFactory(
        clinic=other_clinic,
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
    room = RoomFactory(clinic=other_clinic)
    with django_capture_on_commit_callbacks(execute=True):
        session = _complete_in(other_clinic, team, pathway, room)
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
    with django_capture_on_commit_callbacks(execute=True):
        summary = summary_services.summary_request(
            actor=team[Role.MONITOR], kind="dosing_session", record_public_id=session.public_id
        )
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
    }


def _complete_in(clinic: Any, team: dict[str, User], pathway: Any, room: Any) -> Any:
    """A signed dosing session in the other clinic, through the services."""
    import datetime as dt
    import zoneinfo

    from sessions import services as dosing

    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    booking = dosing.booking_create(
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


def test_every_route_with_an_id_answers_404_for_another_clinics_object(
    staff: dict[str, User], foreign: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    unknown: list[str] = []

    def foreign_value(name: str, before: str) -> str:
        if name in ("token",):
            return "x" * 20
        if name == "instrument":
            return "phq9"
        if name == "action":
            return "vitals"
        if name == "experiment_id":
            return str(foreign["experiment"].public_id)
        if name == "medication_id":
            return str(foreign["medication"].public_id)
        if name == "token_key":  # API tokens are named by their visible prefix, not a public id
            return str(foreign["api_token"].token_key)
        segment = before.rstrip("/").rsplit("/", 1)[-1]
        resource = RESOURCE_OF_SEGMENT.get(segment)
        if resource is None:
            unknown.append(f"{before}<{name}>")
            return str(uuid.uuid4())
        return str(foreign[resource].public_id)

    with_ids = [
        (name, fill(route, foreign_value))
        for name, route in routes()
        if name not in PUBLIC
        and PLACEHOLDER.search(route)
        # pathway_measure is added below; my_pathways_in_stage names a stage, not an object, and
        # lists only the user's own pathways (tests/pathways/test_views.py)
        and name not in ("pathway_measure", "my_pathways_in_stage")
    ]
    assert unknown == [], f"routes with ids of an unknown kind: {unknown}"
    # pathway_measure takes a pathway id and an instrument: included through the same mapping
    with_ids += [("pathway_measure", f"/screening/pathways/{foreign['pathway'].public_id}/measures/phq9/")]
    assert len(with_ids) > 80
    before = snapshot()
    audit_before = record_audit_events()
    for user in staff.values():
        client = client_for(user)
        api = APIClient()
        api.force_authenticate(user)
        for name, path in with_ids:
            for method in ("get", "post"):
                caller = api if path.startswith("/api/") else client
                response = getattr(caller, method)(path)
                assert response.status_code in (404, 405), (
                    user.role,
                    name,
                    method,
                    path,
                    response.status_code,
                )
    assert snapshot() == before
    assert record_audit_events() == audit_before  # nothing seen, nothing written
