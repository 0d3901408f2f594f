"""Capability before body, by construction: every write route of the JSON API is walked, as every role
of the clinic, with bodies no endpoint accepts (not an object, malformed JSON, a form, a multipart
form).

- A role without the route's capability gets 404 (or 405), whatever the body: the capability is
  checked before the body is read, so a role that may not act learns nothing from a refusal of its
  body (not even that it was a body the route reads).
- A role with the capability has its body refused: 400 for JSON that is not what the route takes,
  415 for a form (the API reads JSON only).
- Nothing is written either way.

A write route whose capability this test does not know fails, until it is added to `CAPABILITY`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.test.client import BOUNDARY
from django.test.client import MULTIPART_CONTENT
from django.test.client import encode_multipart
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from integration.rules import FollowUpKind
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability

from .access import fill
from .access import one_of_everything
from .access import routes
from .access import snapshot
from .access import world_values

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")

C = Capability
# What lets a role act on each write route: any one of the capabilities, or why no capability applies.
CAPABILITY: dict[str, tuple[Capability, ...] | str] = {
    "api-token": "public: exchanging an email and password for a token",
    "api-sign-out-everywhere": "any signed-in member, for their own sessions and tokens (no body)",
    "api-token-list-detail": "any signed-in member, for their own tokens (no body)",
    "api-summary-list": "the record named in the body decides which access applies (404 like a missing one)",
    "api-staff-list": (C.STAFF_MANAGE,),
    "api-staff-deactivate": (C.STAFF_MANAGE,),
    "api-staff-reactivate": (C.STAFF_MANAGE,),
    "api-patient-list": (C.PATIENT_REGISTER,),
    "api-patient-detail": (C.PATIENT_EDIT,),
    "api-pathway-list": (C.PATHWAY_OPEN,),
    "api-pathway-care-team": (C.CARE_TEAM_ASSIGN,),
    "api-pathway-move": (C.PATHWAY_MOVE,),
    "api-screening-settings": (C.CLINIC_SETTINGS_MANAGE,),
    "api-assessment-list": (C.SCREENING_EDIT,),
    "api-assessment-detail": (C.SCREENING_EDIT,),
    "api-assessment-countersign": (C.SCREENING_SIGN,),
    "api-assessment-measures": (C.SCREENING_EDIT,),
    "api-assessment-medications": (C.SCREENING_EDIT,),
    "api-assessment-new-version": (C.SCREENING_EDIT,),
    "api-assessment-remove-medication": (C.SCREENING_EDIT,),
    "api-assessment-sign": (C.SCREENING_SIGN,),
    "api-measure-list": (C.MEASURE_RECORD,),
    "api-safety-alert-acknowledge": (C.SAFETY_ALERT_ACKNOWLEDGE,),
    "api-safety-alert-dosing-override": (C.SAFETY_ALERT_DOSING_OVERRIDE,),
    "api-dosing-settings": (C.CLINIC_SETTINGS_MANAGE,),
    "api-room-list": (C.ROOM_MANAGE,),
    "api-room-closures": (C.ROOM_MANAGE,),
    "api-room-hours": (C.ROOM_MANAGE,),
    "api-room-rotate-feed": (C.ROOM_MANAGE,),
    "api-course-template-list": (C.COURSE_TEMPLATE_MANAGE,),
    "api-course-template-detail": (C.COURSE_TEMPLATE_MANAGE,),
    "api-pathway-course": (C.COURSE_SET,),
    "api-rota-hours": (C.ROTA_MANAGE,),
    "api-rota-leave-list": (C.ROTA_MANAGE,),
    "api-rota-leave-detail": (C.ROTA_MANAGE,),
    "api-booking-list": (C.BOOKING_MANAGE,),
    "api-booking-cancel": (C.BOOKING_MANAGE,),
    "api-booking-checks": (C.BOOKING_CHECKS,),
    "api-booking-move": (C.BOOKING_MANAGE,),
    "api-booking-session": (C.SESSION_RECORD,),
    "api-session-addenda": (C.SESSION_RECORD,),
    "api-session-adverse-events": (C.SESSION_RECORD,),
    "api-session-bp-review": (C.SESSION_OVERRIDE,),
    "api-session-checks": (C.SESSION_RECORD,),
    "api-session-devices": (C.SESSION_RECORD,),
    "api-session-discharge": (C.SESSION_RECORD,),
    "api-session-dose": (C.SESSION_RECORD,),
    "api-session-dose-end": (C.SESSION_RECORD,),
    "api-session-dose-override": (C.SESSION_OVERRIDE,),
    "api-session-leave-checklist": (C.SESSION_RECORD,),
    "api-session-monitoring-form": (C.SESSION_RECORD,),
    "api-session-monitoring-form-filed": (C.SESSION_RECORD,),
    "api-session-monitoring-form-medications": (C.SESSION_OVERRIDE,),
    "api-session-override": (C.SESSION_OVERRIDE,),
    "api-session-scales": (C.SESSION_RECORD,),
    "api-session-sign": (C.SESSION_RECORD,),
    "api-session-vitals": (C.SESSION_RECORD,),
    "api-emdr-plan-list": (C.EMDR_EDIT,),
    "api-emdr-plan-protocol": (C.EMDR_EDIT,),
    "api-emdr-plan-readiness": (C.EMDR_EDIT,),
    "api-emdr-plan-sessions": (C.EMDR_EDIT,),
    "api-emdr-plan-targets": (C.EMDR_EDIT,),
    "api-emdr-target-override": (
        C.EMDR_EDIT,
        C.EMDR_OVERRIDE_COSIGN,
    ),  # the therapist signs, a prescriber countersigns
    "api-emdr-target-start": (C.EMDR_EDIT,),
    "api-integration-settings": (C.CLINIC_SETTINGS_MANAGE,),
    "api-integration-note-list": (C.INTEGRATION_WRITE,),
    "api-integration-note-detail": (C.INTEGRATION_WRITE,),
    "api-integration-note-addenda": (C.INTEGRATION_WRITE,),
    "api-integration-note-experiments": (C.INTEGRATION_WRITE,),
    "api-integration-note-reviews": (C.INTEGRATION_WRITE,),
    "api-integration-note-sign": (C.INTEGRATION_WRITE,),
    "api-follow-up-complete": "the follow-up's kind decides (see `declared`)",
}

# Bodies no route accepts, as (content, content type).
BAD_JSON = [('"not an object"', "application/json"), ('{"reason": ', "application/json")]
FORMS = [
    ("consent_confirmed=&reason=x", "application/x-www-form-urlencoded"),
    (encode_multipart(BOUNDARY, {"reason": "x", "outcome": "x"}), MULTIPART_CONTENT),
]


def declared(name: str, world: dict[str, Any]) -> tuple[Capability, ...] | str:
    if name == "api-follow-up-complete":
        # A check-in is completed by whoever checks in; any other kind is closed by hand by a prescriber.
        check_in = world["follow_up"].kind == FollowUpKind.CHECK_IN
        return (C.FOLLOW_UP_CHECK_IN,) if check_in else (C.FOLLOW_UP_CLOSE,)
    return CAPABILITY[name]


def write_methods(path: str) -> list[str]:
    """The write methods the view behind `path` answers (a ViewSet's for that route, or an APIView's)."""
    view = resolve(path).func
    actions = getattr(view, "actions", None)
    methods = list(actions) if actions else [m for m in view.cls.http_method_names if hasattr(view.cls, m)]
    return [method for method in methods if method in WRITE_METHODS]


def operations_with_a_body() -> set[tuple[str, str]]:
    """(route name, method) of every operation whose schema documents a request body."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = set()
    for path, operations in schema["paths"].items():
        concrete = path.replace("{token_key}", "abcd1234").replace("{id}", str(uuid.uuid4()))
        name = resolve(concrete).url_name
        found |= {(name, method) for method, operation in operations.items() if "requestBody" in operation}
    return found


@pytest.fixture
def world(
    clinic: Any, staff: dict[str, User], settings: Any, tmp_path: Any, django_capture_on_commit_callbacks: Any
) -> dict[str, Any]:
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    return one_of_everything(clinic, staff, django_capture_on_commit_callbacks)


def send(client: APIClient, method: str, path: str, body: tuple[str, str]) -> Any:
    content, content_type = body
    return client.generic(method.upper(), path, data=content, content_type=content_type)


def test_every_write_route_checks_the_capability_before_it_reads_the_body(
    staff: dict[str, User], world: dict[str, Any]
) -> None:
    unknown: list[str] = []
    values: Callable[[str, str], str] = world_values(world, unknown)
    writes = [
        (name, path, method)
        for name, route in routes()
        if route.startswith("api/v1/")
        for path in [fill(route, values)]
        for method in write_methods(path)
    ]
    assert unknown == [], f"routes with ids of an unknown kind: {unknown}"
    undeclared = sorted({name for name, _path, _method in writes} - set(CAPABILITY))
    assert undeclared == [], f"write routes whose capability this test does not know: {undeclared}"
    with_body = operations_with_a_body()
    clients = {}
    for user in staff.values():
        clients[user.role] = APIClient()
        clients[user.role].force_authenticate(user)

    before = snapshot()
    wrong: list[tuple[Any, ...]] = []
    refused_by_a_holder: set[tuple[str, str]] = set()
    checked = 0
    for name, path, method in writes:
        capabilities = declared(name, world)
        if isinstance(capabilities, str):
            continue
        for user in staff.values():
            client = clients[user.role]
            if not any(has_capability(user, capability) for capability in capabilities):
                for body in BAD_JSON + FORMS:
                    status = send(client, method, path, body).status_code
                    if status not in (404, 405):
                        wrong.append((user.role, name, method, body[1], status))
                    checked += 1
            elif (name, method) in with_body:
                # A role that may act has the body refused: the walk's bodies do reach validation.
                statuses = [send(client, method, path, body).status_code for body in BAD_JSON + FORMS]
                if statuses[:2] == [400, 400]:
                    refused_by_a_holder.add((name, method))
                accepted = any(200 <= status < 300 or status >= 500 for status in statuses)
                if accepted or statuses[2:] not in ([415, 415], [404, 404]):
                    wrong.append((user.role, name, method, "holder", statuses))
    assert wrong == []
    assert snapshot() == before
    never_refused = sorted(
        f"{method.upper()} {name}"
        for name, path, method in writes
        if (name, method) in with_body
        and not isinstance(declared(name, world), str)
        and (name, method) not in refused_by_a_holder
    )
    assert never_refused == [], "no role that may act reached the body's validation"
    assert checked > 300  # the walk found the routes and the roles without them
