"""Read audit by construction: every URL the project serves is walked, so that a new page or API route
that shows clinical content without an audit event fails here, whoever forgets it.

One object of every kind is made in the test's clinic (`tests/access.py`), and every route is read
(GET) by every role, the pages through a signed-in browser client and the API through an API client.
Each answer 200 of a route not in `EXEMPT` must have written one read event (an action ending in
`viewed`, `downloaded` or `exported`), and:

- an answer that shows the patient (their name, record number or id) has an event naming them;
- an API answer's records (its `id`, or the `id` of each of its `results`) are named by an event;
- no event's `data` carries the patient's identity or any clinical free text.

An exempt route (no patient data) that answers with the patient's identity fails too, unless it is
one of the two views of the audit trail itself. Every route not exempt must be read by some role
(or have no GET), so none escapes for want of an object; the exemption list has no stale names.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from kaemdr.models import AuditEvent
from kaemdr.models import User
from sessions.models import Booking

from .access import fill
from .access import one_of_everything
from .access import routes
from .access import world_values

pytestmark = pytest.mark.django_db

READ_ACTION = re.compile(r"[._](viewed|downloaded|exported)$")

# Routes that show no patient data, and why they are not audited as reads.
EXEMPT = {
    # Public, or the signed-in user's own account.
    "health": "answers `ok` and reads nothing",
    "login": "the sign-in page",
    "logout": "signing out",
    "password_reset": "asking for a password-reset email",
    "password_set": "choosing a password from an emailed link",
    "password_change": "the user's own password",
    "password_change_done": "the user's own password",
    "two_factor_verify": "the user's own second factor",
    "two_factor_setup": "the user's own second factor",
    "two_factor_recovery_codes": "the user's own recovery codes",
    "two_factor_recovery_codes_regenerate": "the user's own recovery codes",
    "two_factor_disable": "the user's own second factor",
    "account": "the user's own account and API tokens",
    "sign_out_everywhere": "the user's own sessions",
    "api_token_revoke": "the user's own API tokens",
    "api-token": "exchanging a password for an API token",
    "api-sign-out-everywhere": "the user's own sessions",
    "api-token-list-list": "the user's own API tokens",
    "api-token-list-detail": "the user's own API tokens",
    # The clinic's set-up: staff, rooms, settings, sources.
    "rule_sources": "the catalogue of the clinical rules' sources",
    "staff_list": "the clinic's staff",
    "staff_two_factor_reset": "a member of staff's second factor",
    "staff_invite": "the clinic's staff",
    "staff_deactivate": "the clinic's staff",
    "staff_reactivate": "the clinic's staff",
    "api-staff-list": "the clinic's staff",
    "api-staff-detail": "the clinic's staff",
    "api-staff-deactivate": "the clinic's staff",
    "api-staff-reactivate": "the clinic's staff",
    "api-screening-settings": "the clinic's screening settings",
    "screening_settings": "the clinic's screening settings",
    "api-dosing-settings": "the clinic's dosing settings",
    "dosing_settings": "the clinic's dosing settings",
    "api-integration-settings": "the clinic's follow-up settings",
    "integration_settings": "the clinic's follow-up settings",
    "api-room-list": "the clinic's rooms (no bookings)",
    "api-room-detail": "a room (no bookings)",
    "api-room-free-slots": "a room's free start times (no bookings; a pathway given is audited as viewed)",
    "room_list": "the clinic's rooms (no bookings)",
    "room_create": "a new room's form",
    "room_detail": "a room, its hours and closures (no bookings)",
    "room_calendar_feed": "public, token-guarded; initials and times only (a 404 here: no such token)",
    "course_template_list": "the clinic's course templates (no patient)",
    "course_template_create": "a new course template's form (no patient)",
    "course_template_edit": "a course template (no patient)",
    "api-course-template-list": "the clinic's course templates (no patient)",
    "api-course-template-detail": "a course template (no patient)",
    "rota": "the clinic's staff rota: working hours and leave (staff data, no patient)",
    "rota_staff": "a member of staff's rota: working hours and leave (staff data, no patient)",
    "api-rota-list": "the clinic's staff rota: working hours and leave (staff data, no patient)",
    "api-rota-detail": "a member of staff's rota (staff data, no patient)",
    "api-rota-leave-list": "the clinic's staff leave (staff data, no patient)",
    "api-rota-leave-detail": "a period of a member of staff's leave (staff data, no patient)",
    # The API's description.
    "api-schema": "the API's schema",
    "api-docs": "the API's documentation",
    "api-redoc": "the API's documentation",
    # The audit trail: reading it is not a read of the clinical record (and it names patients by the
    # events it lists; it is for clinic admins only).
    "audit_log": "the audit trail itself",
    "api-audit-event-list": "the audit trail itself",
    "summary_status": "a summary's making status, polled by its page (names no record; the page is audited)",
    # A form with no record yet (POST only routes answer 405 and are skipped anyway).
    "patient_register": "an empty form for a new patient",
}
# Exempt routes that answer with a patient's identity: the audit trail names the patients of its events.
EXEMPT_SHOWING_PATIENTS = {"audit_log", "api-audit-event-list"}


@pytest.fixture
def world(
    clinic: Any,
    staff: dict[str, User],
    settings: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> dict[str, Any]:
    """One of everything, in the test's own clinic, its care team the `staff` of every role."""
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    return one_of_everything(clinic, staff, django_capture_on_commit_callbacks)


def _paths(world: dict[str, Any]) -> list[tuple[str, str]]:
    unknown: list[str] = []
    values = world_values(world, unknown)

    def value(name: str, before: str) -> str:
        # a stage, and the emailed link's user id, are not objects' ids
        return {"stage": "dosing", "uidb64": "MQ"}.get(name) or values(name, before)

    found = [(name, fill(route, value)) for name, route in routes()]
    assert unknown == [], f"routes with ids of an unknown kind: {unknown}"
    return found


def _body(response: Any) -> str:
    if getattr(response, "streaming", False):
        return ""  # a file (a PDF): what it shows is its record's, named by the download's event
    return response.content.decode(errors="replace")


def _named_ids(events: list[AuditEvent]) -> set[str]:
    named = {str(event.target_public_id) for event in events if event.target_public_id}
    for event in events:
        named.update(event.data.get("ids", []))
        if event.data.get("record"):
            named.add(event.data["record"])
    return named


def _names_patient(events: list[AuditEvent], patient: Any) -> bool:
    return any(
        event.patient_public_id == patient.public_id
        or str(patient.public_id) in event.data.get("patients", [])
        for event in events
    )


def _api_ids(body: str) -> list[str]:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    if isinstance(data.get("results"), list):
        return [str(row["id"]) for row in data["results"] if isinstance(row, dict) and "id" in row]
    return [str(data["id"])] if "id" in data else []


def test_every_route_that_shows_patient_data_audits_the_read(
    world: dict[str, Any], staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    patient = world["patient"]
    listed_as = f"{patient.family_name}, {patient.given_name}"  # the patient list's form
    identity = (patient.full_name, listed_as, patient.record_number, str(patient.public_id))
    free_text = (
        patient.full_name,
        listed_as,
        patient.record_number,
        world["target"].title,
        world["experiment"].description,
        world["alert"].text,
    )
    paths = _paths(world)
    unaudited: list[str] = []
    problems: list[str] = []
    audited_routes: set[str] = set()
    answers: dict[str, set[int]] = {}
    for user in staff.values():
        page_client = client_for(user)
        api = APIClient()
        api.force_authenticate(user)
        for name, path in paths:
            caller = api if path.startswith("/api/") else page_client
            last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
            response = caller.get(path)
            answers.setdefault(name, set()).add(response.status_code)
            if response.status_code != 200:
                continue
            body = _body(response)
            shows_patient = any(part in body for part in identity)
            where = f"{user.role} GET {name} {path}"
            if name in EXEMPT:
                if shows_patient and name not in EXEMPT_SHOWING_PATIENTS:
                    problems.append(f"{where}: exempt, but shows the patient")
                continue
            events = [
                event
                for event in AuditEvent.objects.filter(id__gt=last).order_by("id")
                if READ_ACTION.search(event.action)
            ]
            if not events:
                unaudited.append(where)
                continue
            audited_routes.add(name)
            if len(events) > 1:
                problems.append(f"{where}: {len(events)} read events, not one: {[e.action for e in events]}")
            if shows_patient and not _names_patient(events, patient):
                problems.append(f"{where}: shows the patient; no event names them")
            missing = [record for record in _api_ids(body) if record not in _named_ids(events)]
            if path.startswith("/api/") and missing:
                problems.append(f"{where}: records shown but not named: {missing}")
            for event in events:
                text = json.dumps(event.data)
                if any(part in text for part in free_text):
                    problems.append(f"{where}: {event.action} data holds free text: {text}")
    # Every route not exempt was read by some role (200), or has no GET (405: a form's POST), so no
    # route escapes by answering 404 to everyone for want of an object.
    unread = {name: codes for name, codes in answers.items() if 200 not in codes and codes != {405}}
    assert set(unread) <= set(EXEMPT), f"routes no role could read: {unread}"
    assert unaudited == [], "reads without an audit event:\n" + "\n".join(unaudited)
    assert problems == [], "\n".join(problems)
    assert len(audited_routes) > 50  # the walk reached the clinical routes


def test_the_exemption_list_names_only_routes_that_exist() -> None:
    names = {name for name, _route in routes()}
    assert set(EXEMPT) - names == set()
    assert set(EXEMPT) >= EXEMPT_SHOWING_PATIENTS


# --- The reads a review found unaudited ---------------------------------------------------------------


def _reads_of(api_or_client: Any, path: str) -> tuple[Any, list[AuditEvent]]:
    """GET `path`; the answer and the read events it wrote."""
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = api_or_client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    events = [
        event
        for event in AuditEvent.objects.filter(id__gt=last).order_by("id")
        if READ_ACTION.search(event.action)
    ]
    return response, events


def _api(user: User) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.mark.parametrize(
    ("role", "kind", "action", "target_type"),
    [
        ("therapist", "emdr-targets", "emdr.viewed", "dosing.EmdrTarget"),
        ("prescriber", "experiments", "experiment.viewed", "integration.Experiment"),
        ("therapist", "safety-alerts", "safety_alert.viewed", "screening.SafetyAlert"),
        ("monitor", "summaries", "summary.viewed", "integration.Summary"),
    ],
)
def test_an_api_detail_read_names_its_record_and_patient(
    world: dict[str, Any], staff: dict[str, User], role: str, kind: str, action: str, target_type: str
) -> None:
    record = world[
        {"emdr-targets": "target", "experiments": "experiment", "safety-alerts": "alert"}.get(kind, "summary")
    ]
    _response, events = _reads_of(_api(staff[role]), f"/api/v1/{kind}/{record.public_id}/")
    assert [(e.action, e.target_type, e.target_public_id, e.patient_public_id, e.data) for e in events] == [
        (action, target_type, record.public_id, world["patient"].public_id, {"via": "api"})
    ]
    assert events[0].actor_public_id == staff[role].public_id


@pytest.mark.parametrize(
    ("role", "kind", "action"),
    [
        ("therapist", "integration-notes", "integration_note.list_viewed"),
        ("therapist", "measures", "measure_response.list_viewed"),
        ("prescriber", "emdr-plans", "emdr_plan.list_viewed"),
        ("therapist", "safety-alerts", "safety_alert.list_viewed"),
        ("prescriber", "experiments", "experiment.list_viewed"),
        ("clinic_admin", "bookings", "booking.list_viewed"),
        ("prescriber", "follow-ups", "follow_up.list_viewed"),
        ("prescriber", "assessments", "assessment.list_viewed"),
        ("monitor", "patients", "patient.list_viewed"),
        ("monitor", "pathways", "pathway.list_viewed"),
    ],
)
def test_an_api_list_read_writes_one_event_naming_the_rows_and_their_patients(
    world: dict[str, Any], staff: dict[str, User], role: str, kind: str, action: str
) -> None:
    response, events = _reads_of(_api(staff[role]), f"/api/v1/{kind}/")
    shown = [row["id"] for row in response.json()["results"]]
    assert shown  # the world has one of each
    patient = str(world["patient"].public_id)
    assert [(e.action, e.patient_public_id, e.data) for e in events] == [
        (
            action,
            world["patient"].public_id,
            {"via": "api", "rows": len(shown), "ids": shown, "patients": [patient]},
        )
    ]


def test_an_api_list_that_another_clinic_cannot_see_into_names_nothing_of_it(
    world: dict[str, Any], other_clinic: Any, make_user: Callable[..., User]
) -> None:
    outsider = make_user(role="prescriber", clinic=other_clinic)
    response, events = _reads_of(_api(outsider), "/api/v1/safety-alerts/")
    assert response.json()["results"] == []
    assert [(e.action, e.patient_public_id, e.data) for e in events] == [
        ("safety_alert.list_viewed", None, {"via": "api", "rows": 0, "ids": [], "patients": []})
    ]


@pytest.mark.parametrize(
    ("role", "route", "action", "record"),
    [
        ("therapist", "/dosing/emdr/targets/{target}/", "emdr.viewed", "target"),
        ("prescriber", "/screening/alerts/{alert}/", "safety_alert.viewed", "alert"),
        ("prescriber", "/integration/summaries/{summary}/", "summary.viewed", "summary"),
    ],
)
def test_a_page_of_one_record_names_it_and_its_patient(
    world: dict[str, Any],
    staff: dict[str, User],
    client_for: Callable[[User | None], Client],
    role: str,
    route: str,
    action: str,
    record: str,
) -> None:
    path = route.format(**{key: world[key].public_id for key in ("target", "alert", "summary")})
    _response, events = _reads_of(client_for(staff[role]), path)
    assert [(e.action, e.target_public_id, e.patient_public_id, e.data["via"]) for e in events] == [
        (action, world[record].public_id, world["patient"].public_id, "page")
    ]


@pytest.mark.parametrize(
    ("role", "route", "action", "via"),
    [
        ("clinic_admin", "/dosing/calendar/?week={week}", "booking.list_viewed", "calendar"),
        ("prescriber", "/integration/follow-ups/?scope=clinic", "follow_up.list_viewed", "page"),
        ("therapist", "/", "patient.list_viewed", "dashboard"),  # the alerts panel, and their pathways
        ("monitor", "/", "patient.list_viewed", "dashboard"),
        ("clinic_admin", "/", "patient.list_viewed", "dashboard"),
        ("prescriber", "/patients/", "patient.list_viewed", "page"),
    ],
)
def test_a_page_listing_records_writes_one_event_naming_the_patient(
    world: dict[str, Any],
    staff: dict[str, User],
    client_for: Callable[[User | None], Client],
    role: str,
    route: str,
    action: str,
    via: str,
) -> None:
    week = timezone.localtime(world["booking"].starts_at).date()
    response, events = _reads_of(client_for(staff[role]), route.format(week=week.isoformat()))
    patient = world["patient"]
    body = response.content.decode()
    assert patient.full_name in body or patient.record_number in body  # the list shows the patient
    assert [(e.action, e.patient_public_id, e.data["via"], e.data["patients"]) for e in events] == [
        (action, patient.public_id, via, [str(patient.public_id)])
    ]
    assert patient.record_number not in json.dumps(events[0].data)
    assert patient.family_name not in json.dumps(events[0].data)


def test_the_today_board_names_the_days_bookings(
    world: dict[str, Any], staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    Booking.objects.filter(pk=world["booking"].pk).update(
        starts_at=timezone.now(), ends_at=timezone.now() + dt.timedelta(hours=2)
    )
    _response, events = _reads_of(client_for(staff["monitor"]), "/dosing/today/")
    assert [(e.action, e.data["ids"], e.data["via"]) for e in events] == [
        ("booking.list_viewed", [str(world["booking"].public_id)], "today_board")
    ]
