"""Screening pages: access matrix, the gate by direct POST, input kept and explained, query counts."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage
from screening import services
from screening.models import Assessment
from screening.models import AssessmentStatus
from screening.models import SafetyAlert

from ..access import snapshot
from ..factories import PathwayFactory
from ..factories import UserFactory
from .helpers import screened

pytestmark = pytest.mark.django_db

ALL_ROLES = tuple(Role.values)
VIEWERS = (Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR)


def screening_snapshot() -> tuple[Any, ...]:
    return (
        *snapshot(),
        tuple(Assessment.objects.order_by("pk").values_list("status", "systolic", "decision")),
        SafetyAlert.objects.filter(status="open").count(),
    )


@pytest.fixture
def world(staff: dict[str, User], clinic: Any, other_clinic: Any) -> dict[str, Any]:
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        stage=Stage.ASSESSMENT,
        patient__registered_by=staff[Role.PRESCRIBER],
    )
    fresh = PathwayFactory(
        clinic=clinic,
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        stage=Stage.ASSESSMENT,
    )
    assessment = screened(pathway, staff[Role.PRESCRIBER])
    services.measure_record(
        actor=staff[Role.PRESCRIBER], pathway=pathway, instrument="phq9", answers=[0] * 8 + [1]
    )
    alert = SafetyAlert.objects.get()
    outsiders = {role: UserFactory(clinic=other_clinic, role=role) for role in Role.values}
    return {
        "pathway": pathway,
        "fresh": fresh,
        "assessment": assessment,
        "alert": alert,
        "staff": staff,
        "outsiders": outsiders,
    }


def _routes(world: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any], tuple[str, ...], int]]:
    assessment, pathway, alert = world["assessment"], world["pathway"], world["alert"]
    a = assessment.public_id
    phq9_post = {f"item_{i}": "0" for i in range(1, 10)}
    return {
        "assessment_detail": ("get", reverse("assessment_detail", args=[a]), {}, VIEWERS, 200),
        "assessment_save": (
            "post",
            reverse("assessment_detail", args=[a]),
            {"systolic": "131"},
            (Role.PRESCRIBER,),
            302,
        ),
        "assessment_open": (
            "post",
            reverse("assessment_open", args=[world["fresh"].public_id]),
            {},
            (Role.PRESCRIBER,),
            302,
        ),
        "medication_add": (
            "post",
            reverse("assessment_medication_add", args=[a]),
            {"name": "Zolpidem", "medication_class": "sedative_hypnotic"},
            (Role.PRESCRIBER,),
            302,
        ),
        "assessment_measure": (
            "post",
            reverse("assessment_measure", args=[a, "phq9"]),
            phq9_post,
            (Role.PRESCRIBER,),
            302,
        ),
        "pathway_measure": (
            "post",
            reverse("pathway_measure", args=[pathway.public_id, "phq9"]),
            phq9_post,
            (Role.PRESCRIBER, Role.THERAPIST),
            302,
        ),
        "assessment_sign": (
            "post",
            reverse("assessment_sign", args=[a]),
            {"decision": "eligible"},
            (Role.PRESCRIBER,),
            302,
        ),
        "alert_acknowledge": (
            "post",
            reverse("safety_alert_acknowledge", args=[alert.public_id]),
            {"action_taken": "Called; safety plan reviewed."},
            (Role.PRESCRIBER, Role.THERAPIST),
            302,
        ),
        "screening_settings": ("get", reverse("screening_settings"), {}, (Role.CLINIC_ADMIN,), 200),
    }


ROUTES = [
    "assessment_detail",
    "assessment_save",
    "assessment_open",
    "medication_add",
    "assessment_measure",
    "pathway_measure",
    "assessment_sign",
    "alert_acknowledge",
    "screening_settings",
]


@pytest.mark.parametrize("name", ROUTES)
def test_access_matrix_for_screening_pages(
    name: str, world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    method, url, data, allowed, ok_status = _routes(world)[name]

    def call(user: User | None) -> Any:
        client = client_for(user)
        return client.post(url, data) if method == "post" else client.get(url)

    before = screening_snapshot()
    response = call(None)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert screening_snapshot() == before

    refused = [world["staff"][role] for role in ALL_ROLES if role not in allowed]
    if name != "screening_settings":
        refused += [world["outsiders"][role] for role in allowed]
    for user in refused:
        before = screening_snapshot()
        assert call(user).status_code == 404, (name, user.role)
        assert screening_snapshot() == before, (name, user.role)

    response = call(world["staff"][allowed[0]])
    assert response.status_code == ok_status, (name, response.content.decode()[:2000])


def test_the_gate_holds_against_a_direct_post(
    client_for: Callable[[User | None], Client], world: dict[str, Any]
) -> None:
    """The page hides the move, but a hand-made POST to preparation is refused by the service."""
    pathway = world["fresh"]
    response = client_for(world["staff"][Role.PRESCRIBER]).post(
        reverse("pathway_move", args=[pathway.public_id]),
        {"to_stage": Stage.PREPARATION, "reason": "Skip screening.", "expected_stage": Stage.ASSESSMENT},
    )
    assert response.status_code == 400
    assert "No screening yet: complete and sign an assessment first." in response.content.decode()
    pathway.refresh_from_db()
    assert pathway.stage == Stage.ASSESSMENT


def test_measure_form_keeps_answers_and_marks_the_missing_item(
    client_for: Callable[[User | None], Client], world: dict[str, Any]
) -> None:
    fresh = world["fresh"]
    assessment = services.assessment_open(actor=world["staff"][Role.PRESCRIBER], pathway=fresh)
    post = {f"item_{i}": "2" for i in range(1, 9)}
    response = client_for(world["staff"][Role.PRESCRIBER]).post(
        reverse("assessment_measure", args=[assessment.public_id, "phq9"]), post
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors == {"item_9": ["Answer this item."]}
    assert form["item_1"].value() == "2"  # the answers given are shown again
    inputs = re.findall(r"<input[^>]*>", response.content.decode())
    item_1_checked = [tag for tag in inputs if 'name="item_1"' in tag and "checked" in tag]
    assert len(item_1_checked) == 1
    assert 'value="2"' in item_1_checked[0]
    assert not assessment.measures.exists()


def test_signing_against_the_proposal_without_a_reason_is_explained(
    client_for: Callable[[User | None], Client], world: dict[str, Any]
) -> None:
    assessment = world["assessment"]
    client = client_for(world["staff"][Role.PRESCRIBER])
    response = client.post(
        reverse("assessment_sign", args=[assessment.public_id]), {"decision": "not_eligible"}
    )
    assert response.status_code == 400
    assert "To decide &#x27;Not eligible&#x27;, write the reason." in response.content.decode()
    assessment.refresh_from_db()
    assert assessment.status == AssessmentStatus.DRAFT


def test_pathway_page_shows_the_screening_gate_alerts_and_chart(
    client_for: Callable[[User | None], Client], world: dict[str, Any]
) -> None:
    body = (
        client_for(world["staff"][Role.THERAPIST])
        .get(reverse("pathway_detail", args=[world["pathway"].public_id]))
        .content.decode()
    )
    assert "Urgent safety alert." in body
    assert "Preparation and dosing are locked:" in body
    assert "The screening is not signed yet." in body
    import base64

    start = body.index('src="data:image/svg+xml;base64,') + len('src="data:image/svg+xml;base64,')
    chart = base64.b64decode(body[start : body.index('"', start)]).decode()
    assert chart.startswith('<svg role="img"')
    assert "<title>PHQ-9 (depression)</title>" in chart
    assert "<script" not in chart


def test_admins_do_not_see_screening_on_the_pathway_page(
    client_for: Callable[[User | None], Client], world: dict[str, Any]
) -> None:
    body = (
        client_for(world["staff"][Role.CLINIC_ADMIN])
        .get(reverse("pathway_detail", args=[world["pathway"].public_id]))
        .content.decode()
    )
    assert "Screening and eligibility" not in body


def test_dashboard_lists_open_alerts_for_the_care_team(
    client_for: Callable[[User | None], Client], world: dict[str, Any]
) -> None:
    body = client_for(world["staff"][Role.PRESCRIBER]).get(reverse("dashboard")).content.decode()
    assert "Urgent safety alerts" in body
    assert world["pathway"].patient.record_number in body
    assert "Urgent: review the safety alert" in body


def test_viewing_an_assessment_is_audited(
    client_for: Callable[[User | None], Client], world: dict[str, Any]
) -> None:
    monitor = world["staff"][Role.MONITOR]
    client_for(monitor).get(reverse("assessment_detail", args=[world["assessment"].public_id]))
    assert (
        AuditEvent.objects.filter(actor_public_id=monitor.public_id, action="assessment.viewed").count() == 1
    )


@pytest.mark.parametrize("url_name", ["assessment_detail", "pathway_detail"])
def test_screening_pages_query_count_does_not_grow(
    url_name: str, world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    prescriber = world["staff"][Role.PRESCRIBER]
    assessment, pathway = world["assessment"], world["pathway"]
    client = client_for(prescriber)
    url = reverse(
        url_name, args=[assessment.public_id if url_name == "assessment_detail" else pathway.public_id]
    )
    client.get(url)

    def measure() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = measure()
    for index in range(27):
        services.medication_add(
            actor=prescriber, assessment=assessment, name=f"Med {index}", medication_class="other"
        )
        services.measure_record(
            actor=prescriber, pathway=pathway, instrument="phq9", answers=[index % 4] * 8 + [1]
        )
    large = measure()
    assert small == large, f"{url_name}: {small} queries, then {large} with 27 more medications and measures"
    assert small <= (13 if url_name == "pathway_detail" else 11)  # see tests/pathways/test_views.py


def test_a_saved_draft_shows_its_answers_again(
    client_for: Callable[[User | None], Client], world: dict[str, Any]
) -> None:
    fresh = world["fresh"]
    prescriber = world["staff"][Role.PRESCRIBER]
    assessment = services.assessment_open(actor=prescriber, pathway=fresh)
    services.assessment_update(
        actor=prescriber, assessment=assessment, current_crisis=False, escort_available=True
    )
    body = (
        client_for(prescriber).get(reverse("assessment_detail", args=[assessment.public_id])).content.decode()
    )
    checked = [tag for tag in re.findall(r"<input[^>]*>", body) if "checked" in tag and 'type="radio"' in tag]
    assert {
        (re.search(r'name="(\w+)"', t).group(1), re.search(r'value="(\w+)"', t).group(1)) for t in checked
    } == {
        ("current_crisis", "False"),
        ("escort_available", "True"),
    }


def test_settings_page_saves_and_explains_bad_input(
    client_for: Callable[[User | None], Client], world: dict[str, Any]
) -> None:
    client = client_for(world["staff"][Role.CLINIC_ADMIN])
    bad = client.post(
        reverse("screening_settings"),
        {"bp_systolic_threshold": "90", "bp_diastolic_threshold": "90", "screening_valid_days": "90"},
    )
    assert bad.status_code == 400
    assert "Ensure this value is greater than or equal to 100." in bad.content.decode()
    good = client.post(
        reverse("screening_settings"),
        {
            "bp_systolic_threshold": "150",
            "bp_diastolic_threshold": "95",
            "screening_valid_days": "60",
            "second_signature_codes": ["psychosis_history"],
        },
    )
    assert good.status_code == 302
    from screening.selectors import screening_settings_for

    saved = screening_settings_for(world["staff"][Role.CLINIC_ADMIN].clinic_id)
    assert (saved.bp_systolic_threshold, saved.screening_valid_days, saved.second_signature_codes) == (
        150,
        60,
        ["psychosis_history"],
    )
    assert AuditEvent.objects.filter(action="screening_settings.updated").count() == 1
