"""EMDR plan pages and API: who may see and edit, the gate against a direct POST and the API, flat queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from kaemdr.models import Role
from kaemdr.models import User
from sessions.emdr import services
from sessions.models import EmdrTarget

from ..access import snapshot
from ..factories import PathwayFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def emdr_snapshot() -> tuple[Any, ...]:
    return (*snapshot(), tuple(EmdrTarget.objects.order_by("pk").values_list("state", "override_reason")))


@pytest.fixture
def world(staff: dict[str, User], clinic: Any, other_clinic: Any) -> dict[str, Any]:
    pathway = PathwayFactory(
        clinic=clinic, prescriber=staff[Role.PRESCRIBER], therapist=staff[Role.THERAPIST], stage="preparation"
    )
    plan = services.plan_open(actor=staff[Role.THERAPIST], pathway=pathway)
    memory = services.target_add(
        actor=staff[Role.THERAPIST], plan=plan, kind="past_memory", title="The accident"
    )
    return {
        "plan": plan,
        "memory": memory,
        "staff": staff,
        "pathway": pathway,
        "other_therapist": UserFactory(clinic=clinic, role=Role.THERAPIST),
        "outsider": UserFactory(clinic=other_clinic, role=Role.THERAPIST),
    }


def test_who_sees_the_plan(world: dict[str, Any], client_for: Callable[[User | None], Client]) -> None:
    url = reverse("emdr_plan", args=[world["plan"].public_id])
    assert client_for(world["staff"][Role.THERAPIST]).get(url).status_code == 200
    assert client_for(world["staff"][Role.PRESCRIBER]).get(url).status_code == 200
    for user in (
        world["staff"][Role.MONITOR],
        world["staff"][Role.CLINIC_ADMIN],
        world["other_therapist"],
        world["outsider"],
    ):
        assert client_for(user).get(url).status_code == 404, user.role
    anonymous = client_for(None).get(url)
    assert anonymous.status_code == 302


def test_the_prescriber_reads_but_does_not_edit(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    before = emdr_snapshot()
    response = client_for(world["staff"][Role.PRESCRIBER]).post(
        reverse("emdr_target_add", args=[world["plan"].public_id]),
        {"kind": "resource", "title": "Calm place"},
    )
    assert response.status_code == 404
    assert emdr_snapshot() == before


def test_starting_the_trauma_target_early_is_refused_by_page_and_api(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    therapist, memory = world["staff"][Role.THERAPIST], world["memory"]
    response = client_for(therapist).post(reverse("emdr_target_start", args=[memory.public_id]), follow=True)
    assert (
        "The accident cannot start yet: Readiness: a resource installed is not met."
        in response.content.decode()
    )
    api = APIClient()
    api.force_authenticate(therapist)
    refused = api.post(f"/api/v1/emdr-targets/{memory.public_id}/start/", {}, format="json")
    assert refused.status_code == 400
    assert {e["code"] for e in refused.json()["errors"]} == {
        "emdr_readiness_resource",
        "emdr_readiness_dual_awareness",
        "emdr_readiness_affect_tolerance",
        "emdr_readiness_stabilisation",
        "emdr_readiness_no_crisis",
        "emdr_readiness_dissociation",
    }
    assert all(e["source"] for e in refused.json()["errors"])
    logged = api.post(
        f"/api/v1/emdr-plans/{world['plan'].public_id}/sessions/",
        {
            "held_at": timezone.now().isoformat(),
            "phase_reached": 4,
            "stimulation": "eye_movements",
            "works": [
                {"target": str(memory.public_id), "sud_start": 8, "sud_end": 6, "voc_start": 2, "voc_end": 3}
            ],
        },
        format="json",
    )
    assert logged.status_code == 400
    memory.refresh_from_db()
    assert memory.state == "not_started"


def test_the_api_builds_and_works_a_plan(world: dict[str, Any]) -> None:
    api = APIClient()
    api.force_authenticate(world["staff"][Role.THERAPIST])
    plan_url = f"/api/v1/emdr-plans/{world['plan'].public_id}/"
    created = api.post(f"{plan_url}targets/", {"kind": "resource", "title": "Calm place"}, format="json")
    assert created.status_code == 201
    body = api.get(plan_url).json()
    assert body["next_target"] == created.json()["id"]
    assert [c["code"] for c in body["readiness"] if not c["met"]] == [
        "emdr_readiness_resource",
        "emdr_readiness_dual_awareness",
        "emdr_readiness_affect_tolerance",
        "emdr_readiness_stabilisation",
        "emdr_readiness_no_crisis",
        "emdr_readiness_dissociation",
    ]
    bad = api.post(f"{plan_url}targets/", {"kind": "belief", "title": "X", "sud": 12}, format="json")
    [error] = bad.json()["errors"]
    assert (error["field"], error["code"], error["message"]) == (
        "sud",
        "emdr_rating_range",
        "SUD is rated from 0 to 10.",
    )
    assert error["source"].startswith("Shapiro 2018")
    logged = api.post(
        f"{plan_url}sessions/",
        {
            "held_at": timezone.now().isoformat(),
            "phase_reached": 5,
            "stimulation": "taps",
            "works": [{"target": created.json()["id"], "voc_start": 4, "voc_end": 6}],
        },
        format="json",
    )
    assert logged.status_code == 201
    assert [t["state"] for t in logged.json()["targets"]] == ["not_started", "resolved"]

    outsider = APIClient()
    outsider.force_authenticate(world["outsider"])
    assert outsider.get(plan_url).status_code == 404
    assert (
        outsider.post(f"{plan_url}targets/", {"kind": "resource", "title": "X"}, format="json").status_code
        == 404
    )


def test_the_plan_page_query_count_stays_flat(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    therapist, plan = world["staff"][Role.THERAPIST], world["plan"]
    client = client_for(therapist)
    url = reverse("emdr_plan", args=[plan.public_id])

    def measure() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    def worked(count: int) -> list[Any]:
        return [
            services.target_add(actor=therapist, plan=plan, kind="resource", title=f"R{i}")
            for i in range(count)
        ]

    for target in worked(1):
        services.session_log(
            actor=therapist,
            plan=plan,
            held_at=timezone.now(),
            phase_reached=5,
            stimulation="taps",
            works=[{"target": target, "voc_start": 4, "voc_end": 6}],
        )
    client.get(url)
    small = measure()
    for target in worked(10):
        services.session_log(
            actor=therapist,
            plan=plan,
            held_at=timezone.now(),
            phase_reached=5,
            stimulation="taps",
            works=[{"target": target, "voc_start": 4, "voc_end": 6}],
        )
    large = measure()
    assert small == large
    assert small <= 11, small


def test_a_target_page_draws_its_ratings(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    therapist, plan = world["staff"][Role.THERAPIST], world["plan"]
    resource = services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    services.session_log(
        actor=therapist,
        plan=plan,
        held_at=timezone.now(),
        phase_reached=5,
        stimulation="taps",
        works=[{"target": resource, "voc_start": 4, "voc_end": 6}],
    )
    url = reverse("emdr_target", args=[resource.public_id])
    body = client_for(therapist).get(url).content.decode()
    # One session is no trend: its VOC as a value and a date, not a chart.
    assert 'class="chart-img"' not in body
    assert f"VOC 6 on {timezone.localdate():%-d %b %Y}" in body
    assert "4 → 6" in body  # the VOC of the session, in the table beside it
    services.session_log(
        actor=therapist,
        plan=plan,
        held_at=timezone.now() + dt.timedelta(minutes=5),
        phase_reached=5,
        stimulation="taps",
        works=[{"target": resource, "voc_start": 6, "voc_end": 7}],
    )
    body = client_for(therapist).get(url).content.decode()
    assert 'class="chart-img" src="data:image/svg+xml;base64,' in body
    assert "VOC 6 on" not in body


def test_reading_a_plan_or_a_target_is_audited(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    from kaemdr.models import AuditEvent

    prescriber = world["staff"][Role.PRESCRIBER]
    client_for(prescriber).get(reverse("emdr_plan", args=[world["plan"].public_id]))
    client_for(prescriber).get(reverse("emdr_target", args=[world["memory"].public_id]))
    events = list(
        AuditEvent.objects.filter(actor_public_id=prescriber.public_id, action="emdr.viewed").order_by("id")
    )
    assert [e.target_type for e in events] == ["dosing.EmdrPlan", "dosing.EmdrTarget"]
    assert {e.patient_public_id for e in events} == {world["pathway"].patient.public_id}


def test_a_future_template_links_to_its_targets_from_the_page(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    therapist, memory = world["staff"][Role.THERAPIST], world["memory"]
    response = client_for(therapist).post(
        reverse("emdr_target_add", args=[world["plan"].public_id]),
        {
            "kind": "future_template",
            "title": "Driving again",
            "belongs_to": [str(memory.public_id)],
        },
    )
    assert response.status_code == 302
    template = EmdrTarget.objects.get(title="Driving again")
    assert list(template.belongs_to.all()) == [memory]
