"""The JSON API: same services as the pages, the same access matrix, one error body shape."""

from __future__ import annotations

import time
from typing import Any

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from kaemdr import sources
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import Patient
from pathways.models import Stage

from ..access import snapshot
from ..factories import PathwayFactory
from ..factories import PatientFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PATIENT = {
    "record_number": "API-1",
    "given_name": "Iris",
    "family_name": "Moreau",
    "date_of_birth": "1987-09-09",
    "phone": "07700 900777",
    "email": "iris@example.org",
    "emergency_contact_name": "Luc Moreau",
    "emergency_contact_relationship": "Husband",
    "emergency_contact_phone": "07700 900778",
    "emergency_contact_can_escort": True,
}


def api_for(user: User | None, *, token: bool = False) -> APIClient:
    client = APIClient()
    if user is not None:
        if token:
            client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
        else:
            client.force_authenticate(user)
    return client


@pytest.fixture
def world(staff: dict[str, User], clinic: Any, other_clinic: Any) -> dict[str, Any]:
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        patient__registered_by=staff[Role.PRESCRIBER],
    )
    bare = PatientFactory(clinic=clinic, registered_by=staff[Role.PRESCRIBER])
    outsiders = {role: UserFactory(clinic=other_clinic, role=role) for role in Role.values}
    return {"pathway": pathway, "bare": bare, "staff": staff, "outsiders": outsiders}


VIEWERS = tuple(Role.values)


def _endpoints(
    world: dict[str, Any],
) -> dict[str, tuple[str, str, dict[str, Any], tuple[str, ...], int, bool]]:
    """name: (method, path, body, roles allowed, status when allowed, takes an object id)."""
    pathway, bare = world["pathway"], world["bare"]
    prescriber = world["staff"][Role.PRESCRIBER]
    return {
        "patients-list": ("get", "/api/v1/patients/", {}, VIEWERS, 200, False),
        "patients-create": ("post", "/api/v1/patients/", NEW_PATIENT, (Role.PRESCRIBER,), 201, False),
        "patients-detail": ("get", f"/api/v1/patients/{pathway.patient.public_id}/", {}, VIEWERS, 200, True),
        "patients-update": (
            "patch",
            f"/api/v1/patients/{pathway.patient.public_id}/",
            {"phone": "07700 000000"},
            (Role.PRESCRIBER,),
            200,
            True,
        ),
        "pathways-list": ("get", "/api/v1/pathways/", {}, VIEWERS, 200, False),
        "pathways-detail": ("get", f"/api/v1/pathways/{pathway.public_id}/", {}, VIEWERS, 200, True),
        "pathways-open": (
            "post",
            "/api/v1/pathways/",
            {"patient": str(bare.public_id), "prescriber": str(prescriber.public_id)},
            (Role.PRESCRIBER,),
            201,
            True,
        ),
        "pathways-move": (
            "post",
            f"/api/v1/pathways/{pathway.public_id}/move/",
            {"to_stage": "assessment", "reason": "Reviewed."},
            (Role.PRESCRIBER,),
            200,
            True,
        ),
        "pathways-care-team": (
            "post",
            f"/api/v1/pathways/{pathway.public_id}/care-team/",
            {"prescriber": str(prescriber.public_id), "therapist": None},
            (Role.PRESCRIBER,),
            200,
            True,
        ),
        "staff-list": ("get", "/api/v1/staff/", {}, (Role.CLINIC_ADMIN,), 200, False),
        "staff-create": (
            "post",
            "/api/v1/staff/",
            {"email": "api.new@example.test", "full_name": "Api New", "role": "monitor"},
            (Role.CLINIC_ADMIN,),
            201,
            False,
        ),
        "staff-detail": (
            "get",
            f"/api/v1/staff/{prescriber.public_id}/",
            {},
            (Role.CLINIC_ADMIN,),
            200,
            True,
        ),
        "staff-deactivate": (
            "post",
            f"/api/v1/staff/{world['staff'][Role.MONITOR].public_id}/deactivate/",
            {},
            (Role.CLINIC_ADMIN,),
            200,
            True,
        ),
        "staff-reactivate": (
            "post",
            f"/api/v1/staff/{world['staff'][Role.MONITOR].public_id}/reactivate/",
            {},
            (Role.CLINIC_ADMIN,),
            200,
            True,
        ),
        "audit-list": ("get", "/api/v1/audit-events/", {}, (Role.CLINIC_ADMIN,), 200, False),
    }


ENDPOINTS = [
    "patients-list",
    "patients-create",
    "patients-detail",
    "patients-update",
    "pathways-list",
    "pathways-detail",
    "pathways-open",
    "pathways-move",
    "pathways-care-team",
    "staff-list",
    "staff-create",
    "staff-detail",
    "staff-deactivate",
    "staff-reactivate",
    "audit-list",
]


def _call(client: APIClient, method: str, path: str, body: dict[str, Any]) -> Any:
    return getattr(client, method)(path, body, format="json") if method != "get" else client.get(path)


@pytest.mark.parametrize("name", ENDPOINTS)
def test_access_matrix_for_the_api(name: str, world: dict[str, Any]) -> None:
    method, path, body, allowed, ok_status, takes_id = _endpoints(world)[name]

    before = snapshot()
    response = _call(api_for(None), method, path, body)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert snapshot() == before

    refused = [world["staff"][role] for role in Role.values if role not in allowed]
    if takes_id:
        refused += [world["outsiders"][role] for role in allowed]
    for user in refused:
        before = snapshot()
        response = _call(api_for(user), method, path, body)
        assert response.status_code == 404, (name, user.role)
        assert response.json() == {
            "status": 404,
            "code": "not_found",
            "detail": "Not found.",
            "errors": [{"field": None, "code": "not_found", "message": "Not found."}],
        }
        assert snapshot() == before, (name, user.role)

    response = _call(api_for(world["staff"][allowed[0]], token=True), method, path, body)
    assert response.status_code == ok_status, (name, response.json())


def test_api_lists_are_scoped_to_the_clinic(world: dict[str, Any]) -> None:
    PathwayFactory(clinic=world["outsiders"][Role.PRESCRIBER].clinic)
    body = api_for(world["staff"][Role.PRESCRIBER]).get("/api/v1/pathways/").json()
    assert [row["id"] for row in body["results"]] == [str(world["pathway"].public_id)]
    patients = api_for(world["staff"][Role.PRESCRIBER]).get("/api/v1/patients/").json()
    assert {row["id"] for row in patients["results"]} == {
        str(world["pathway"].patient.public_id),
        str(world["bare"].public_id),
    }


def test_api_lists_your_own_open_pathways_as_the_dashboard_does(world: dict[str, Any]) -> None:
    staff = world["staff"]
    colleague = UserFactory(clinic=world["pathway"].clinic, role=Role.PRESCRIBER)
    PathwayFactory(
        clinic=colleague.clinic, prescriber=colleague, therapist=None, patient__registered_by=colleague
    )
    closed = PathwayFactory(
        clinic=colleague.clinic, prescriber=staff[Role.PRESCRIBER], patient__registered_by=colleague
    )
    Pathway.objects.filter(pk=closed.pk).update(stage=Stage.DISCONTINUED)
    before = AuditEvent.objects.filter(action="pathway.list_viewed").count()
    for role in (Role.PRESCRIBER, Role.THERAPIST):
        body = api_for(staff[role]).get("/api/v1/pathways/", {"mine": "true"}).json()
        assert [row["id"] for row in body["results"]] == [str(world["pathway"].public_id)], role
        stage = world["pathway"].stage
        in_stage = api_for(staff[role]).get("/api/v1/pathways/", {"mine": "true", "stage": stage}).json()
        assert in_stage["count"] == 1
    everyone = api_for(staff[Role.PRESCRIBER]).get("/api/v1/pathways/").json()
    assert everyone["count"] == 3  # without `mine`: every pathway the prescriber may see
    refused = api_for(staff[Role.PRESCRIBER]).get("/api/v1/pathways/", {"mine": "perhaps"})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "mine"
    assert AuditEvent.objects.filter(action="pathway.list_viewed").count() == before + 5


def test_api_duplicate_record_number_names_the_field(prescriber: User, patient: Patient) -> None:
    before = snapshot()
    response = api_for(prescriber).post(
        "/api/v1/patients/", {**NEW_PATIENT, "record_number": patient.record_number}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "code": "invalid",
        "detail": "Check the fields named in errors.",
        "errors": [
            {
                "field": "record_number",
                "code": "duplicate_record_number",
                "message": "Another patient of this clinic has this record number.",
                **sources.citation_for("duplicate_record_number").as_dict(),
            }
        ],
    }
    assert snapshot() == before


def test_api_missing_fields_and_future_birth_date(prescriber: User) -> None:
    response = api_for(prescriber).post(
        "/api/v1/patients/", {**NEW_PATIENT, "given_name": "", "date_of_birth": "2999-01-01"}, format="json"
    )
    assert response.status_code == 400
    fields = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert ("given_name", "blank") in fields
    response = api_for(prescriber).post(
        "/api/v1/patients/", {**NEW_PATIENT, "date_of_birth": "2999-01-01"}, format="json"
    )
    assert response.json()["errors"] == [
        {
            "field": "date_of_birth",
            "code": "future_date_of_birth",
            "message": "The date of birth cannot be in the future.",
        }
    ]
    assert not Patient.objects.filter(record_number="API-1").exists()


def test_api_move_through_the_same_service(pathway: Pathway) -> None:
    client = api_for(pathway.prescriber)
    response = client.post(
        f"/api/v1/pathways/{pathway.public_id}/move/",
        {"to_stage": "dosing", "reason": "Skip."},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "to_stage"
    assert "cannot move to dosing" in response.json()["errors"][0]["message"]

    response = client.post(
        f"/api/v1/pathways/{pathway.public_id}/move/", {"to_stage": "assessment"}, format="json"
    )
    assert response.json()["errors"] == [
        {"field": "reason", "code": "required", "message": "This field is required."}
    ]

    response = client.post(
        f"/api/v1/pathways/{pathway.public_id}/move/",
        {"to_stage": "assessment", "reason": "Reviewed.", "expected_stage": "referral"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["stage"] == Stage.ASSESSMENT
    assert [row["to_stage"] for row in body["timeline"]] == ["referral", "assessment"]
    assert "Screen and sign eligibility" in [action["label"] for action in body["next_actions"]]
    assert AuditEvent.objects.filter(action="pathway.stage_changed").count() == 1


def test_api_retrieve_is_audited(pathway: Pathway, monitor: User) -> None:
    api_for(monitor).get(f"/api/v1/patients/{pathway.patient.public_id}/")
    api_for(monitor).get(f"/api/v1/pathways/{pathway.public_id}/")
    assert list(
        AuditEvent.objects.filter(actor_public_id=monitor.public_id)
        .order_by("id")
        .values_list("action", "data")
    ) == [
        ("patient.viewed", {"via": "api"}),
        ("pathway.viewed", {"via": "api"}),
    ]


def test_token_is_issued_for_valid_credentials_and_the_second_factor(prescriber: User, monitor: User) -> None:
    from kaemdr.two_factor import current_code
    from kaemdr.two_factor import enrol_with_key

    client = APIClient()
    credentials = {"username": prescriber.email, "password": "correct-horse-battery-staple"}
    no_device = client.post("/api/v1/auth/token/", credentials)
    assert no_device.status_code == 400
    assert no_device.json()["errors"] == [
        {
            "field": "otp",
            "code": "two_factor_setup",
            "message": "Set up two-factor sign-in in the web app first.",
        }
    ]
    device = enrol_with_key(user=prescriber, key_hex="00" * 20, name="Phone")
    assert (
        client.post(
            "/api/v1/auth/token/",
            {**credentials, "otp": "000000" if current_code(device) != "000000" else "111111"},
        ).status_code
        == 400
    )
    # after a wrong code, even the right one waits a moment (django-otp's throttling)
    assert client.post("/api/v1/auth/token/", {**credentials, "otp": current_code(device)}).status_code == 400
    time.sleep(1.1)
    response = client.post("/api/v1/auth/token/", {**credentials, "otp": current_code(device)})
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/pathways/").status_code == 200
    # a monitor's role signs in with a password alone (unless the clinic asks for more)
    plain = APIClient().post(
        "/api/v1/auth/token/", {"username": monitor.email, "password": "correct-horse-battery-staple"}
    )
    assert plain.status_code == 200, plain.json()


def test_deactivated_staff_token_stops_working(prescriber: User, clinic_admin: User) -> None:
    client = api_for(prescriber, token=True)
    assert client.get("/api/v1/pathways/").status_code == 200
    api_for(clinic_admin).post(f"/api/v1/staff/{prescriber.public_id}/deactivate/")
    assert client.get("/api/v1/pathways/").status_code == 401


def test_schema_and_docs_are_served(prescriber: User, client_for: Any) -> None:
    client = client_for(prescriber)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/patients/",
        "/api/v1/pathways/{id}/move/",
        "/api/v1/pathways/{id}/care-team/",
        "/api/v1/staff/{id}/deactivate/",
        "/api/v1/audit-events/",
    ):
        assert path in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_api_list_query_counts_do_not_grow(pathway: Pathway) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api_for(pathway.prescriber)

    def measure(path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    small = (
        measure("/api/v1/pathways/"),
        measure("/api/v1/patients/"),
        measure(f"/api/v1/pathways/{pathway.public_id}/"),
    )
    for _ in range(29):
        PathwayFactory(clinic=pathway.clinic, prescriber=pathway.prescriber)
    large = (
        measure("/api/v1/pathways/"),
        measure("/api/v1/patients/"),
        measure(f"/api/v1/pathways/{pathway.public_id}/"),
    )
    assert small == large
