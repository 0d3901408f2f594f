"""Screening through the JSON API: the same journey as the pages, the same gate, one error shape."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage
from screening import rules
from screening.models import Assessment

from ..access import snapshot
from ..factories import UserFactory
from .helpers import ZERO_ANSWERS

pytestmark = pytest.mark.django_db


def api(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_screen_sign_and_move_through_the_api(prescriber: User, assessing: Any) -> None:
    client = api(prescriber)
    created = client.post("/api/v1/assessments/", {"pathway": str(assessing.public_id)}, format="json")
    assert created.status_code == 201
    url = f"/api/v1/assessments/{created.json()['id']}/"
    assert "Planned agent and route." in created.json()["missing"]

    patched = client.patch(
        url,
        {
            "current_crisis": False,
            "housing_stable": True,
            "has_support_person": True,
            "escort_available": True,
            "agent": "esketamine",
            "route": "intranasal",
            "systolic": 150,
            "diastolic": 85,
            "heart_rate": 80,
            "weight_kg": "81.5",
            "history_reviewed": True,
            "condition_codes": [],
            "medications_reviewed": True,
        },
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    with_med = client.post(
        f"{url}medications/",
        {"name": "Methylphenidate", "medication_class": "psychostimulant"},
        format="json",
    )
    assert [m["medication_class"] for m in with_med.json()["medications"]] == ["psychostimulant"]
    for instrument, answers in ZERO_ANSWERS.items():
        response = client.post(
            f"{url}measures/", {"instrument": instrument, "answers": answers}, format="json"
        )
        assert response.status_code == 200, response.json()

    body = client.get(url).json()
    assert body["missing"] == []
    assert body["live_proposal"]["decision"] == "eligible_with_precautions"
    assert {r["rule"] for r in body["live_proposal"]["reasons"]} == {
        "vitals.baseline_bp",
        "interaction.psychostimulant",
    }

    refused = client.post(
        f"/api/v1/pathways/{assessing.public_id}/move/",
        {"to_stage": "preparation", "reason": "Go."},
        format="json",
    )
    assert refused.status_code == 400
    assert [(e["field"], e["code"], e["message"]) for e in refused.json()["errors"]] == [
        ("to_stage", "move_refused", "The screening is not signed yet.")
    ]

    signed = client.post(f"{url}sign/", {"decision": "eligible_with_precautions"}, format="json")
    assert signed.status_code == 200
    assert signed.json()["status"] == "signed"
    moved = client.post(
        f"/api/v1/pathways/{assessing.public_id}/move/",
        {"to_stage": "preparation", "reason": "Go."},
        format="json",
    )
    assert moved.status_code == 200
    assert moved.json()["stage"] == Stage.PREPARATION


def test_api_errors_name_the_item_and_the_field(prescriber: User, assessing: Any) -> None:
    client = api(prescriber)
    created = client.post("/api/v1/assessments/", {"pathway": str(assessing.public_id)}, format="json")
    url = f"/api/v1/assessments/{created.json()['id']}/"
    bad = client.post(
        f"{url}measures/", {"instrument": "gad7", "answers": [0, 0, 0, 9, 0, 0, 0]}, format="json"
    )
    assert bad.status_code == 400
    assert bad.json()["errors"] == [
        {"field": "item_4", "code": "invalid_answer", "message": "Enter a number from 0 to 3."}
    ]
    bad = client.patch(url, {"agent": "esketamine", "route": "oral"}, format="json")
    mismatch = rules.REFUSAL_SOURCES["screening_route_mismatch"]
    assert bad.json()["errors"] == [
        {
            "field": "route",
            "code": "screening_route_mismatch",
            "message": "Esketamine (Spravato) is not given by the oral route.",
            "source": mismatch.text,
            "source_url": mismatch.url,
        }
    ]
    incomplete = client.post(f"{url}sign/", {"decision": "eligible"}, format="json")
    assert incomplete.status_code == 400
    assert incomplete.json()["errors"][0]["code"] == "assessment_incomplete"
    assert incomplete.json()["errors"][0]["source"].startswith("Sanacora et al. 2017")


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN])
def test_only_prescribers_open_and_sign_through_the_api(
    staff: dict[str, User], assessing: Any, role: str
) -> None:
    before = snapshot()
    response = api(staff[role]).post(
        "/api/v1/assessments/", {"pathway": str(assessing.public_id)}, format="json"
    )
    assert response.status_code == 404
    assert snapshot() == before
    assert not Assessment.objects.exists()


def test_another_clinic_sees_nothing(prescriber: User, assessing: Any, other_clinic: Any) -> None:
    created = (
        api(prescriber)
        .post("/api/v1/assessments/", {"pathway": str(assessing.public_id)}, format="json")
        .json()
    )
    outsider = UserFactory(clinic=other_clinic, role=Role.PRESCRIBER)
    client = api(outsider)
    assert client.get(f"/api/v1/assessments/{created['id']}/").status_code == 404
    assert client.get("/api/v1/assessments/").json()["results"] == []
    assert (
        client.post(
            f"/api/v1/assessments/{created['id']}/sign/", {"decision": "eligible"}, format="json"
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/api/v1/measures/",
            {"pathway": str(assessing.public_id), "instrument": "phq9", "answers": [0] * 9},
            format="json",
        ).status_code
        == 404
    )


def test_repeat_measures_and_alerts_through_the_api(therapist: User, assessing: Any) -> None:
    client = api(therapist)
    created = client.post(
        "/api/v1/measures/",
        {"pathway": str(assessing.public_id), "instrument": "phq9", "answers": [1] * 9},
        format="json",
    )
    assert created.status_code == 201
    assert (created.json()["total"], created.json()["band"]) == (9.0, "mild")
    alerts = client.get("/api/v1/safety-alerts/", {"status": "open"}).json()["results"]
    assert [a["code"] for a in alerts] == ["phq9_item9"]
    done = client.post(
        f"/api/v1/safety-alerts/{alerts[0]['id']}/acknowledge/",
        {"action_taken": "Safety plan."},
        format="json",
    )
    assert done.status_code == 200
    assert done.json()["status"] == "acknowledged"


def test_screening_settings_api_is_for_clinic_admins(clinic_admin: User, prescriber: User) -> None:
    assert api(prescriber).get("/api/v1/screening-settings/").status_code == 404
    current = api(clinic_admin).get("/api/v1/screening-settings/").json()
    assert current == {
        "bp_systolic_threshold": 140,
        "bp_diastolic_threshold": 90,
        "screening_valid_days": 90,
        "second_signature_codes": ["psychosis_history", "pregnancy_or_breastfeeding", "active_substance_use"],
        "adults_only": True,
    }
    bad = api(clinic_admin).put(
        "/api/v1/screening-settings/",
        {**current, "second_signature_codes": ["ketamine_hypersensitivity"]},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "second_signature_codes.0"


def test_the_assessment_list_reads_the_clinic_settings_once(prescriber: User, clinic: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ..factories import PathwayFactory
    from ..factories import SignedScreeningFactory

    client = api(prescriber)

    def measure() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/assessments/").status_code == 200
        return len(captured)

    for _ in range(3):
        SignedScreeningFactory(pathway=PathwayFactory(clinic=clinic, prescriber=prescriber))
    small = measure()
    for _ in range(27):
        SignedScreeningFactory(pathway=PathwayFactory(clinic=clinic, prescriber=prescriber))
    assert measure() == small
