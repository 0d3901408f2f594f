"""Regressions for what Schemathesis found in the JSON API (`tests/test_api_schemathesis.py`)."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage

from .factories import FollowUpFactory
from .factories import PathwayFactory


def api_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def test_every_record_id_in_a_url_is_documented_as_a_uuid(schema: dict[str, Any]) -> None:
    # The ids were documented as integers (the primary key), so clients and fuzzers sent integers.
    wrong = [
        f"{method} {path}"
        for method, path, op in operations(schema)
        for parameter in op.get("parameters", [])
        if parameter["in"] == "path"
        and parameter["name"] == "id"
        and parameter["schema"] != {"type": "string", "format": "uuid"}
    ]
    assert wrong == []


def test_every_operation_documents_the_shared_error_answers(schema: dict[str, Any]) -> None:
    missing = []
    for method, path, op in operations(schema):
        expected = {"404", "429"}
        if method in ("POST", "PUT", "PATCH"):
            expected.add("400")
        if path != "/api/v1/auth/token/":
            expected.add("401")
        if not expected <= set(op["responses"]):
            missing.append(f"{method} {path}: {sorted(expected - set(op['responses']))}")
    assert missing == []
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    not_found = schema["paths"]["/api/v1/pathways/"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["schema"] == error_body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/api/v1/patients/{}/", Role.PRESCRIBER),
        ("/api/v1/pathways/{}/", Role.PRESCRIBER),
        ("/api/v1/assessments/{}/", Role.PRESCRIBER),
        ("/api/v1/safety-alerts/{}/", Role.PRESCRIBER),
        ("/api/v1/bookings/{}/", Role.CLINIC_ADMIN),
        ("/api/v1/rooms/{}/", Role.CLINIC_ADMIN),
        ("/api/v1/sessions/{}/", Role.PRESCRIBER),
        ("/api/v1/emdr-plans/{}/", Role.THERAPIST),
        ("/api/v1/emdr-targets/{}/", Role.THERAPIST),
        ("/api/v1/integration-notes/{}/", Role.THERAPIST),
        ("/api/v1/experiments/{}/", Role.THERAPIST),
        ("/api/v1/follow-ups/{}/", Role.PRESCRIBER),
        ("/api/v1/summaries/{}/", Role.PRESCRIBER),
        ("/api/v1/staff/{}/", Role.CLINIC_ADMIN),
    ],
)
@pytest.mark.parametrize("bad_id", ["0", "not-a-uuid", "85658a12-c290-4889-ae8e"])
def test_a_malformed_id_is_a_404_like_a_missing_record(
    staff: dict[str, User], path: str, role: str, bad_id: str
) -> None:
    # The selectors caught ValueError, but a UUID lookup refuses a malformed value with Django's
    # ValidationError, which the API answered 400 "... is not a valid UUID".
    response = api_for(staff[role]).get(path.format(bad_id))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.fixture
def two_pathways(clinic: Any, staff: dict[str, User]) -> list[Any]:
    return [
        PathwayFactory(
            clinic=clinic,
            prescriber=staff[Role.PRESCRIBER],
            therapist=staff[Role.THERAPIST],
            stage=stage,
            patient__registered_by=staff[Role.PRESCRIBER],
        )
        for stage in (Stage.REFERRAL, Stage.DOSING)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/api/v1/pathways/?stage=Dosing", "stage"),
        ("/api/v1/pathways/?stage=", "stage"),
        ("/api/v1/safety-alerts/?status=Open", "status"),
        ("/api/v1/follow-ups/?show=all", "show"),
        ("/api/v1/follow-ups/?scope=everyone", "scope"),
    ],
)
def test_an_unknown_list_filter_is_refused_not_ignored(
    staff: dict[str, User], two_pathways: list[Any], query: str, field: str
) -> None:
    # An unknown value used to be dropped silently: `?stage=Dosing` listed every stage, and
    # `?status=Open` every alert, acknowledged ones included.
    response = api_for(staff[Role.PRESCRIBER]).get(query)
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]


@pytest.mark.django_db
def test_a_known_list_filter_still_filters(staff: dict[str, User], two_pathways: list[Any]) -> None:
    client = api_for(staff[Role.PRESCRIBER])
    listed = client.get("/api/v1/pathways/", {"stage": Stage.DOSING}).json()["results"]
    assert [item["id"] for item in listed] == [str(two_pathways[1].public_id)]
    assert client.get("/api/v1/pathways/").json()["count"] == 2
    follow_up = FollowUpFactory(pathway=two_pathways[1])
    mine = api_for(staff[Role.THERAPIST]).get("/api/v1/follow-ups/", {"scope": "mine", "show": "open"})
    assert [item["id"] for item in mine.json()["results"]] == [str(follow_up.public_id)]
