"""Input at the edges, by class (issue 18): what was found once (an over-long email at sign-in, an
audit-log date at the end of the calendar, an id the routes do not match) is fuzzed everywhere it can
arrive, so that the next field of the same kind is covered without anyone remembering it.

- Usernames of any length (past every column's), any script, NUL bytes: at sign-in, at the token
  endpoint and when asking for a new password.
- Dates from 1 January of year 1 to 31 December 9999, and moments across that range in any zone, on
  every date, time and date-time parameter of the API (query and body, found in its schema), and on
  every date and time field of the pages' forms (through `date_field` and `time_field`, which every
  form fuzz test uses; `FORM_FIELDS_FUZZED` names the test of each).
- Ids that are not ids (a decimal, a huge integer, a UUID almost, any text) on every route with an id.

The property everywhere: never a 500; under /api/ every refusal has the documented error shape.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import inspect
import json
import uuid
import zoneinfo
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from django import forms
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from integration import services as integration_services
from kaemdr.models import Role
from kaemdr.models import User
from sessions.booking import services as booking_services
from sessions.emdr import services as emdr_services
from sessions.models import DosingSession
from sessions.record import services as dosing

from ..access import PLACEHOLDER
from ..access import fill
from ..access import routes
from .helpers import FUZZ
from .helpers import ODD_IDS
from .helpers import any_date
from .helpers import any_datetime
from .helpers import date_field
from .helpers import datetime_field
from .helpers import odd_id
from .helpers import rolled_back
from .helpers import time_field
from .helpers import username_field

pytestmark = pytest.mark.django_db

EXTREMES = settings(FUZZ, max_examples=15)


def assert_api_answer(response: Any, what: str) -> None:
    """Never a 500; a refusal in the API's error shape (JSON with status, code, detail, errors)."""
    assert response.status_code < 500, f"{what} answered {response.status_code}"
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/json", (what, response.status_code)
        body = response.json()
        assert set(body) == {"status", "code", "detail", "errors"}, (what, body)
        assert body["status"] == response.status_code, (what, body)


# --- Usernames -------------------------------------------------------------------------------------------


@FUZZ
@given(username=username_field(), password=st.sampled_from(["", "not-the-password", "x" * 5_000]))
def test_sign_in_with_any_username_is_never_a_500(
    staff: dict[str, User], username: str, password: str
) -> None:
    with rolled_back():
        cache.clear()
        page = Client().post(reverse("login"), {"username": username, "password": password})
        assert page.status_code < 500, username
        assert not page.wsgi_request.user.is_authenticated
        cache.clear()
        token = APIClient().post("/api/v1/auth/token/", {"username": username, "password": password})
        assert_api_answer(token, "POST /api/v1/auth/token/")
        assert token.status_code != 200


@FUZZ
@given(email=username_field())
def test_asking_for_a_new_password_with_any_address_is_never_a_500(email: str) -> None:
    with rolled_back():
        cache.clear()
        assert Client().post(reverse("password_reset"), {"email": email}).status_code < 500


# --- Dates: the API, by its schema ------------------------------------------------------------------------

DATE_FORMATS = ("date", "date-time", "time")


def _date_fields(
    schema: dict[str, Any], components: dict[str, Any], prefix: str = ""
) -> Iterator[tuple[str, str]]:
    """The writable date, time and date-time properties of a request body schema, with their format
    ("[]" before the name of a property of a list's items)."""
    if "$ref" in schema:
        yield from _date_fields(components[schema["$ref"].rsplit("/", 1)[1]], components, prefix)
        return
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            yield from _date_fields(part, components, prefix)
    if schema.get("type") == "array":
        yield from _date_fields(schema.get("items", {}), components, prefix + "[]")
    for name, field in schema.get("properties", {}).items():
        if field.get("readOnly"):
            continue
        if field.get("format") in DATE_FORMATS:
            yield prefix + name, field["format"]
        yield from _date_fields(field, components, prefix + name + ".")


def dated_operations() -> dict[str, dict[str, str]]:
    """Every operation of the API with a date, time or date-time parameter: "METHOD path" to its
    parameters ("?name" in the query, "name" in the body) and their formats."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    found: dict[str, dict[str, str]] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            names = {
                "?" + parameter["name"]: parameter["schema"]["format"]
                for parameter in operation.get("parameters", [])
                if parameter["in"] == "query" and parameter["schema"].get("format") in DATE_FORMATS
            }
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            names.update(_date_fields(body.get("schema", {}), components))
            if names:
                found[f"{method.upper()} {path}"] = names
    return found


def _valid_bodies(world: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any] | list[Any]]]:
    """A request each dated operation accepts, as (role, body); the dates are filled in by the test."""
    staff = world["staff"]
    pathway = str(world["pathway"].public_id)
    return {
        "GET /api/v1/audit-events/": (Role.CLINIC_ADMIN, {}),
        "GET /api/v1/bookings/": (Role.CLINIC_ADMIN, {}),
        "POST /api/v1/bookings/": (
            Role.CLINIC_ADMIN,
            {
                "pathway": pathway,
                "room": str(world["room"].public_id),
                "prescriber": str(staff[Role.PRESCRIBER].public_id),
                "monitor": str(staff[Role.MONITOR].public_id),
            },
        ),
        "POST /api/v1/bookings/{id}/move/": (Role.CLINIC_ADMIN, {}),
        "POST /api/v1/emdr-plans/{id}/sessions/": (
            Role.THERAPIST,
            {
                "phase_reached": 4,
                "stimulation": "eye_movements",
                "works": [{"target": str(world["target"].public_id), "sud_start": 6, "sud_end": 2}],
            },
        ),
        "POST /api/v1/integration-notes/": (Role.THERAPIST, {"pathway": pathway}),
        "PATCH /api/v1/integration-notes/{id}/": (Role.THERAPIST, {"perception_shift": "Lighter"}),
        "POST /api/v1/measures/": (
            Role.PRESCRIBER,
            {"pathway": pathway, "instrument": "phq9", "answers": [1] * 9},
        ),
        "POST /api/v1/patients/": (
            Role.PRESCRIBER,
            {
                "record_number": "MRN-90077",
                "given_name": "Ann",
                "family_name": "Lee",
                "phone": "07700 900123",
                "email": "ann@example.org",
                "emergency_contact_name": "Sam Lee",
                "emergency_contact_relationship": "Sibling",
                "emergency_contact_phone": "07700 900456",
                "emergency_contact_can_escort": True,
            },
        ),
        "PATCH /api/v1/patients/{id}/": (Role.PRESCRIBER, {}),
        "POST /api/v1/rooms/{id}/closures/": (Role.CLINIC_ADMIN, {"reason": "Works"}),
        "PUT /api/v1/rooms/{id}/hours/": (Role.CLINIC_ADMIN, [{"weekday": 0}, {"weekday": 6}]),
        "GET /api/v1/rooms/{id}/free-slots/": (Role.CLINIC_ADMIN, {"minutes": 165}),
        "PUT /api/v1/rota/{id}/hours/": (Role.CLINIC_ADMIN, [{"weekday": 0}, {"weekday": 6}]),
        "POST /api/v1/rota-leave/": (
            Role.CLINIC_ADMIN,
            {"staff": str(staff[Role.MONITOR].public_id), "reason": "Annual leave"},
        ),
        "POST /api/v1/sessions/{id}/adverse-events/": (
            Role.MONITOR,
            {"description": "Nausea", "severity": "mild", "action_taken": "Observed"},
        ),
        "POST /api/v1/sessions/{id}/devices/": (Role.MONITOR, {}),
        "POST /api/v1/sessions/{id}/dose/": (Role.MONITOR, {"dose_mg": "100.0", "lot_number": "L1"}),
        "POST /api/v1/sessions/{id}/dose-end/": (Role.MONITOR, {}),
        "POST /api/v1/sessions/{id}/scales/": (Role.MONITOR, {"scale": "cadss", "value": 0}),
        "POST /api/v1/sessions/{id}/vitals/": (
            Role.MONITOR,
            {"systolic": 124, "diastolic": 80, "heart_rate": 72, "spo2": 98, "respiratory_rate": 14},
        ),
    }


# The record each operation's {id} names: a session ready to dose (or dosed, for what follows a dose).
ID_OF = {
    "bookings": "booking",
    "emdr-plans": "plan",
    "integration-notes": "note",
    "patients": "patient",
    "rooms": "room",
    "rota": "rota_member",
    "sessions": "ready_session",
}
AFTER_THE_DOSE = ("devices", "dose-end", "scales", "adverse-events")


@pytest.fixture
def world(
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    complete_session: Callable[..., DosingSession],
    django_capture_on_commit_callbacks: Any,
) -> dict[str, Any]:
    """A pathway in dosing with a signed session, a booking, a session ready to dose and one dosed, an
    EMDR plan with a target, and a draft integration note (through the services)."""
    admin, monitor, therapist = staff[Role.CLINIC_ADMIN], staff[Role.MONITOR], staff[Role.THERAPIST]
    tz = zoneinfo.ZoneInfo(dosing_pathway.clinic.time_zone)

    def booking(days: int) -> Any:
        return booking_services.booking_create(
            actor=admin,
            pathway=dosing_pathway,
            room=room,
            starts_at=dt.datetime.combine(dt.date.today() + dt.timedelta(days=days), dt.time(9), tzinfo=tz),
            prescriber=staff[Role.PRESCRIBER],
            monitor=monitor,
        )

    def ready(days: int) -> DosingSession:
        session = dosing.session_open(actor=monitor, booking=booking(days))
        dosing.session_checks_update(
            actor=monitor,
            session=session,
            fasting_confirmed=True,
            escort_present=True,
            consent_confirmed=True,
        )
        dosing.vitals_record(
            actor=monitor,
            session=session,
            systolic=124,
            diastolic=80,
            heart_rate=72,
            spo2=98,
            respiratory_rate=14,
        )
        return session

    with django_capture_on_commit_callbacks(execute=True):
        complete_session(dosing_pathway, days_ahead=20)  # an integration note follows a signed session
        dosed = ready(1)
        dosing.dose_start(actor=monitor, session=dosed, dose_mg=100, lot_number="L1")
        ready_session = ready(7)
        plan = emdr_services.plan_open(actor=therapist, pathway=dosing_pathway)
        target = emdr_services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
        note = integration_services.note_open(actor=therapist, pathway=dosing_pathway)
    return {
        "staff": staff,
        "pathway": dosing_pathway,
        "patient": dosing_pathway.patient,
        "room": room,
        "booking": booking(14),
        "ready_session": ready_session,
        "dosed_session": dosed,
        "plan": plan,
        "target": target,
        "note": note,
        "rota_member": monitor,
    }


OPERATIONS = sorted(
    [
        "GET /api/v1/audit-events/",
        "GET /api/v1/bookings/",
        "POST /api/v1/bookings/",
        "POST /api/v1/bookings/{id}/move/",
        "POST /api/v1/emdr-plans/{id}/sessions/",
        "POST /api/v1/integration-notes/",
        "PATCH /api/v1/integration-notes/{id}/",
        "POST /api/v1/measures/",
        "POST /api/v1/patients/",
        "PATCH /api/v1/patients/{id}/",
        "POST /api/v1/rooms/{id}/closures/",
        "PUT /api/v1/rooms/{id}/hours/",
        "GET /api/v1/rooms/{id}/free-slots/",
        "PUT /api/v1/rota/{id}/hours/",
        "POST /api/v1/rota-leave/",
        "POST /api/v1/sessions/{id}/adverse-events/",
        "POST /api/v1/sessions/{id}/devices/",
        "POST /api/v1/sessions/{id}/dose/",
        "POST /api/v1/sessions/{id}/dose-end/",
        "POST /api/v1/sessions/{id}/scales/",
        "POST /api/v1/sessions/{id}/vitals/",
    ]
)


def test_every_dated_parameter_of_the_api_is_fuzzed(dated: dict[str, dict[str, str]]) -> None:
    # By construction: an operation with a new date, time or date-time parameter fails here until it
    # has a request to carry it in `_valid_bodies` (the test below then sends it every date).
    assert sorted(dated) == OPERATIONS


def _value(kind: str) -> st.SearchStrategy[str]:
    """Well-formed values across the whole range most of the time (so that they reach the services),
    malformed ones otherwise."""
    if kind == "date":
        return st.one_of(any_date.map(dt.date.isoformat), any_date.map(dt.date.isoformat), date_field())
    if kind == "time":
        return time_field()
    return st.one_of(
        any_datetime.map(dt.datetime.isoformat), any_datetime.map(dt.datetime.isoformat), datetime_field()
    )


@pytest.fixture(scope="module")
def dated() -> dict[str, dict[str, str]]:
    return dated_operations()


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_dated_api_parameter_takes_any_date_without_a_500(
    operation: str, world: dict[str, Any], dated: dict[str, dict[str, str]]
) -> None:
    method, template = operation.split(" ", 1)
    role, valid = _valid_bodies(world)[operation]
    segment = template.split("/")[3]
    record = ID_OF.get(segment)
    if record == "ready_session" and template.rsplit("/", 2)[-2] in AFTER_THE_DOSE:
        record = "dosed_session"
    path = template.replace("{id}", str(world[record].public_id)) if record else template
    client = APIClient()
    client.force_authenticate(world["staff"][role])
    names = dated[operation]

    @EXTREMES
    @given(values=st.fixed_dictionaries({name: _value(kind) for name, kind in names.items()}))
    def run(values: dict[str, str]) -> None:
        query = {
            **(valid if isinstance(valid, dict) else {}),
            **{name[1:]: value for name, value in values.items() if name.startswith("?")},
        }
        body: Any = valid
        if isinstance(valid, list):
            body = [
                {**row, **{name[2:]: value for name, value in values.items() if name.startswith("[]")}}
                for row in valid
            ]
        elif method != "GET":
            body = {**valid, **values}
        with rolled_back():
            if method == "GET":
                response = client.get(path, query)
            else:
                response = client.generic(
                    method, path, data=json.dumps(body), content_type="application/json"
                )
            assert_api_answer(response, f"{operation} with {values}")
            event(str(response.status_code))

    run()


# --- Dates: the pages' forms ----------------------------------------------------------------------------

# Every date and time field of a page's form, and the fuzz test that posts it with `date_field` or
# `time_field` (which run from date.min to date.max and over every minute of the day).
FORM_FIELDS_FUZZED = {
    "pathways.forms.AuditFilterForm.occurred_from": "test_audit_log_filter_takes_any_date",
    "pathways.forms.AuditFilterForm.occurred_to": "test_audit_log_filter_takes_any_date",
    "pathways.forms.PatientForm.date_of_birth": "test_pathways_kaemdr_forms.test_patient_register_fuzz",
    "sessions.record.forms.AdverseEventForm.occurred_at": "test_sessions_forms.test_session_after_dose_fuzz",
    "sessions.booking.forms.BookingForm.date": "test_sessions_forms.test_booking_create_fuzz",
    "sessions.booking.forms.BookingForm.time": "test_sessions_forms.test_booking_create_fuzz",
    "sessions.booking.forms.ClosureForm.start_date": "test_sessions_forms.test_room_detail_fuzz",
    "sessions.booking.forms.ClosureForm.start_time": "test_sessions_forms.test_room_detail_fuzz",
    "sessions.booking.forms.ClosureForm.end_date": "test_sessions_forms.test_room_detail_fuzz",
    "sessions.booking.forms.ClosureForm.end_time": "test_sessions_forms.test_room_detail_fuzz",
    "sessions.record.forms.DeviceForm.given_at": "test_sessions_forms.test_session_after_dose_fuzz",
    "sessions.record.forms.DoseEndForm.ended_at": "test_sessions_forms.test_session_after_dose_fuzz",
    "sessions.record.forms.DoseForm.started_at": "test_sessions_forms.test_session_before_dose_fuzz",
    "sessions.booking.forms.MoveForm.date": "test_sessions_forms.test_booking_move_fuzz",
    "sessions.booking.forms.MoveForm.time": "test_sessions_forms.test_booking_move_fuzz",
    "sessions.booking.forms.RemsEnrolmentForm.enrolled_on": "test_sessions_forms.test_rems_enrol_fuzz",
    "sessions.record.forms.ScaleForm.taken_at": "test_sessions_forms.test_session_after_dose_fuzz",
    "sessions.record.forms.VitalsForm.taken_at": "test_sessions_forms.test_session_before_dose_fuzz",
    "sessions.emdr.forms.SessionLogForm.held_date": "test_sessions_forms.test_emdr_session_log_fuzz",
    "sessions.emdr.forms.SessionLogForm.held_time": "test_sessions_forms.test_emdr_session_log_fuzz",
    "integration.forms.NoteForm.held_date": "test_integration_forms.test_note_save_fuzz",
    "integration.forms.NoteForm.held_time": "test_integration_forms.test_note_save_fuzz",
    **{
        f"sessions.booking.forms.OpeningHoursForm.{edge}_{day}": "test_sessions_forms.test_room_detail_fuzz"
        for edge in ("opens", "closes")
        for day in range(7)
    },
    **{
        f"sessions.booking.rota_forms.WorkingHoursForm.{edge}_{day}_{span}": (
            "test_sessions_forms.test_rota_staff_fuzz"
        )
        for edge in ("starts", "ends")
        for day in range(7)
        for span in (1, 2)
    },
    **{
        f"sessions.booking.rota_forms.LeaveForm.{name}": "test_sessions_forms.test_rota_staff_fuzz"
        for name in ("start_date", "start_time", "end_date", "end_time")
    },
}
FORM_MODULES = (
    "kaemdr.forms",
    "pathways.forms",
    "screening.forms",
    "sessions.booking.forms",
    "sessions.booking.course_forms",
    "sessions.booking.rota_forms",
    "sessions.record.forms",
    "sessions.emdr.forms",
    "sessions.clinic_settings.forms",
    "integration.forms",
)


def _form_fields(cls: type[forms.BaseForm]) -> dict[str, forms.Field]:
    """A form class's fields, with those it adds when made (a blank instance where one can be made)."""
    fields = dict(cls.base_fields)
    with contextlib.suppress(TypeError):  # a form that needs its record to be made
        fields.update(cls().fields)
    return fields


def test_every_date_and_time_field_of_a_form_is_fuzzed() -> None:
    found = {
        f"{module}.{name}.{field_name}"
        for module in FORM_MODULES
        for name, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass)
        if issubclass(cls, forms.BaseForm) and cls.__module__ == module
        for field_name, field in _form_fields(cls).items()
        if isinstance(field, (forms.DateField, forms.DateTimeField, forms.TimeField))
    }
    assert found == set(FORM_FIELDS_FUZZED)
    for test in set(FORM_FIELDS_FUZZED.values()):
        module, _, function = test.rpartition(".")
        namespace = vars(importlib.import_module(f"tests.fuzz.{module}")) if module else globals()
        assert callable(namespace.get(function)), f"{test} is not a test"


@FUZZ
@given(start=any_date, end=any_date)
def test_audit_log_filter_takes_any_date(
    staff: dict[str, User], client_for: Callable[[User | None], Client], start: dt.date, end: dt.date
) -> None:
    client = client_for(staff[Role.CLINIC_ADMIN])
    with rolled_back():
        page = client.get(
            reverse("audit_log"), {"occurred_from": start.isoformat(), "occurred_to": end.isoformat()}
        )
        assert page.status_code in (200, 400)


# --- Odd ids on every route with an id ------------------------------------------------------------------


def _routes_with_ids() -> list[tuple[str, str]]:
    return [(name, route) for name, route in routes() if PLACEHOLDER.search(route)]


def _odd_path(route: str, odd: str) -> str:
    return fill(route, lambda name, before: quote(odd, safe=""))


@pytest.fixture
def signed_in(staff: dict[str, User], client_for: Callable[[User | None], Client]) -> dict[str, Any]:
    """A prescriber and a clinic admin (between them, every route), on the pages and on the API."""
    clients: dict[str, Any] = {}
    for role in (Role.PRESCRIBER, Role.CLINIC_ADMIN):
        api = APIClient()
        api.force_authenticate(staff[role])
        clients[role] = (client_for(staff[role]), api)
    return clients


# One of each kind, for the walk of every route (the fuzz test after it draws from all of `odd_id`).
WALK_IDS = (
    "0.5",
    "9" * 40,
    "-1",
    "\x00",
    "é😀",
    "x" * 300,
    "85658a12-c290-4889-ae8e",
    "85658A12-C290-4889-AE8E-4A6B5DA6E6E1",
)


def _check_odd(clients: dict[str, Any], route: str, odd: str) -> None:
    """GET and POST `route` with `odd` for each id, as each role on the API (a role without the
    route's capability is refused before the id is read) and as a prescriber on the pages (whose ids
    are UUIDs to the resolver, bar a few tokens and names)."""
    path = _odd_path(route, odd)
    callers = (
        [api for _page, api in clients.values()]
        if path.startswith("/api/")
        else [clients[Role.PRESCRIBER][0]]
    )
    for caller in callers:
        for method in ("get", "post"):
            with rolled_back():
                response = getattr(caller, method)(path)
            what = f"{method.upper()} {path}"
            if path.startswith("/api/"):
                assert_api_answer(response, what)
            else:
                assert response.status_code < 500, what


def test_every_route_with_an_id_refuses_the_odd_ids(signed_in: dict[str, Any]) -> None:
    with_ids = _routes_with_ids()
    assert len(with_ids) > 80
    for _name, route in with_ids:
        for odd in WALK_IDS:
            _check_odd(signed_in, route, odd)


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_any_route_with_an_id_refuses_any_odd_id(signed_in: dict[str, Any], data: Any) -> None:
    _name, route = data.draw(st.sampled_from(_routes_with_ids()), label="route")
    _check_odd(signed_in, route, data.draw(odd_id, label="id"))


def test_the_odd_ids_include_the_ones_found() -> None:
    assert set(WALK_IDS) <= set(ODD_IDS)
    assert uuid.UUID(WALK_IDS[-1])  # an upper-case UUID is a UUID: the answer is a missing record's
