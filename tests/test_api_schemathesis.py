"""Every operation of the JSON API, driven by Schemathesis from the OpenAPI schema the app serves.

The schema is drf-spectacular's, generated in-process; requests go through Django's WSGI handler
in-process too, so they share the test's database transaction. Each operation runs as the role that
may use it, with a small, derandomised set of valid and invalid examples, and must never answer 500,
must refuse a request without valid credentials, must reject invalid data, and may only answer with
status codes its schema documents; every answer must conform to the schema too (its body, blanks,
nulls and enums included, its content type and its headers). Half of the valid examples aimed at one
object swap the random id for a real one, so the actions run on real records rather than only
reaching the 404.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import ignored_auth
from schemathesis.specs.openapi.checks import negative_data_rejection
from schemathesis.specs.openapi.checks import response_headers_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance

from integration import services as integration_services
from kaemdr.models import Role
from kaemdr.models import User
from screening.models import Assessment
from sessions.booking import course_services
from sessions.booking import rota_services
from sessions.booking import services as dosing
from sessions.emdr import services as emdr_services

from .factories import FollowUpFactory

MAX_EXAMPLES = 8

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = WSGIHandler()
schema.config.phases.update(phases=["examples", "fuzzing"])
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,
)

CHECKS = [
    not_a_server_error,
    ignored_auth,
    negative_data_rejection,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Who runs each operation: the role whose capabilities cover it (`kaemdr/permissions.py`).
ADMIN_PREFIXES = (
    "/api/v1/staff/",
    "/api/v1/audit-events/",
    "/api/v1/rooms/",
    "/api/v1/rota/",
    "/api/v1/rota-leave/",
    "/api/v1/dosing-settings/",
    "/api/v1/screening-settings/",
    "/api/v1/integration-settings/",
)
THERAPIST_PREFIXES = ("/api/v1/emdr-plans/", "/api/v1/integration-notes/", "/api/v1/experiments/")


def role_for(method: str, path: str) -> str:
    if path.startswith(ADMIN_PREFIXES):
        return Role.CLINIC_ADMIN
    if path.startswith("/api/v1/bookings/") and not path.endswith("/session/"):
        return Role.CLINIC_ADMIN
    if path.startswith(THERAPIST_PREFIXES) or (
        path.startswith("/api/v1/emdr-targets/") and not path.endswith("/override/")
    ):
        return Role.THERAPIST
    return Role.PRESCRIBER


@pytest.fixture
def _in_process_requests() -> Iterator[None]:
    """Keep the test's connection (and its transaction) open across in-process requests, as Django's
    test client does: the WSGI handler would otherwise close it at the end of each request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_world(
    _in_process_requests: None,
    settings: Any,
    staff: dict[str, User],
    clinic: Any,
    room: Any,
    dosing_pathway: Any,
    pathway: Any,
    complete_session: Any,
) -> dict[str, Any]:
    """A clinic with one record of every kind the API names by id, and a token per role."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "user": "100000/minute",
            "token": "100000/minute",
            "anon": "100000/minute",
        },
    }
    session = complete_session(dosing_pathway)
    therapist = staff[Role.THERAPIST]
    note = integration_services.note_open(actor=therapist, pathway=dosing_pathway)
    experiment = integration_services.experiment_add(
        actor=therapist, note=note, area="relationships", description="Call my sister on Sunday."
    )
    follow_up = FollowUpFactory(pathway=dosing_pathway)
    plan = emdr_services.plan_open(actor=therapist, pathway=dosing_pathway)
    target = emdr_services.target_add(
        actor=therapist, plan=plan, kind="past_memory", title="The accident", sud=8, voc=2
    )
    booking = dosing.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=dosing_pathway,
        room=room,
        starts_at=session.booking.starts_at.replace(hour=13),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )
    ids = {
        "/api/v1/staff/": staff[Role.THERAPIST].public_id,
        "/api/v1/rooms/": room.public_id,
        "/api/v1/bookings/": booking.public_id,
        "/api/v1/sessions/": session.public_id,
        "/api/v1/pathways/": pathway.public_id,
        "/api/v1/patients/": pathway.patient.public_id,
        "/api/v1/assessments/": Assessment.objects.filter(pathway=dosing_pathway).get().public_id,
        "/api/v1/integration-notes/": note.public_id,
        "/api/v1/experiments/": experiment.public_id,
        "/api/v1/follow-ups/": follow_up.public_id,
        "/api/v1/emdr-plans/": plan.public_id,
        "/api/v1/emdr-targets/": target.public_id,
        "/api/v1/course-templates/": course_services.course_template_adopt(
            actor=staff[Role.PRESCRIBER], code="iv_racemic"
        ).public_id,
    }
    soon = timezone.now() + dt.timedelta(days=60)
    ids["/api/v1/rota/"] = staff[Role.MONITOR].public_id
    ids["/api/v1/rota-leave/"] = rota_services.staff_leave_add(
        actor=staff[Role.CLINIC_ADMIN],
        staff=staff[Role.THERAPIST],
        starts_at=soon,
        ends_at=soon + dt.timedelta(days=1),
    ).leave.public_id
    tokens = {role: AuthToken.objects.create(user=user)[1] for role, user in staff.items()}
    return {"ids": ids, "tokens": tokens, "counter": itertools.count()}


def real_id_for(path: str, ids: dict[str, Any]) -> str | None:
    for prefix, public_id in ids.items():
        if path.startswith(prefix + "{id}"):
            return str(public_id)
    return None


@pytest.mark.django_db
@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_operation(case: Any, api_world: dict[str, Any]) -> None:
    operation = case.operation
    if (
        case.path_parameters
        and "id" in case.path_parameters
        and case.meta is not None
        and case.meta.generation.mode == GenerationMode.POSITIVE
        and next(api_world["counter"]) % 2 == 0
    ):
        real = real_id_for(operation.path, api_world["ids"])
        if real is not None:
            case.path_parameters["id"] = real
    token = api_world["tokens"][role_for(operation.method.upper(), operation.path)]
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
