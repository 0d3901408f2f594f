"""No lost input on the EMDR plan's page (issue 20): the page is one form for its therapist; every
button (add a target, save observations, change protocol, start a target, sign an override) saves what
else was changed on the page through the audited services, all or nothing, keeps an override reason
typed but not signed, and a refusal shows the page again with everything as typed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from sessions.emdr import services
from sessions.models import EmdrPlan
from sessions.models import EmdrTarget

from ..factories import PathwayFactory
from ..page_form import press

pytestmark = pytest.mark.django_db

REASON = "Stable for six weeks; the prescriber agreed on the phone."


@pytest.fixture
def world(staff: dict[str, User], clinic: Any) -> dict[str, Any]:
    therapist = staff[Role.THERAPIST]
    pathway = PathwayFactory(
        clinic=clinic, prescriber=staff[Role.PRESCRIBER], therapist=therapist, stage="preparation"
    )
    plan = services.plan_open(actor=therapist, pathway=pathway)
    memory = services.target_add(actor=therapist, plan=plan, kind="past_memory", title="The accident")
    return {"plan": plan, "memory": memory, "therapist": therapist, "prescriber": staff[Role.PRESCRIBER]}


def _writes(plan: EmdrPlan) -> list[str]:
    return list(
        AuditEvent.objects.filter(action__startswith="emdr.")
        .exclude(action__endswith="viewed")
        .filter(target_public_id__in=[plan.public_id, *plan.targets.values_list("public_id", flat=True)])
        .order_by("pk")
        .values_list("action", flat=True)
    )


def test_saving_observations_adds_the_target_typed_and_keeps_the_override_reason(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    plan, memory = world["plan"], world["memory"]
    client = client_for(world["therapist"])
    page = reverse("emdr_plan", args=[plan.public_id])
    reason = f"o-{memory.public_id}-reason"

    response = press(
        client,
        page,
        action=reverse("emdr_readiness", args=[plan.public_id]),
        typed={
            "dual_awareness_shown": "on",
            "kind": "resource",
            "title": "Calm place by the lake",
            reason: REASON,
        },
    )

    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.dual_awareness_shown is True
    assert plan.targets.filter(title="Calm place by the lake").exists()
    memory.refresh_from_db()
    assert memory.override_reason == ""  # typed, not signed
    again = client.get(page).content.decode()
    assert REASON in again  # kept for the therapist, shown again


def test_a_refused_start_keeps_everything_typed_and_writes_nothing(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    plan, memory = world["plan"], world["memory"]
    client = client_for(world["therapist"])
    page = reverse("emdr_plan", args=[plan.public_id])
    before = _writes(plan)

    response = press(
        client,
        page,
        action=reverse("emdr_target_start", args=[memory.public_id]),
        typed={
            "affect_tolerance_shown": "on",
            "kind": "present_trigger",
            "title": "Sirens at night",
            "negative_cognition": "I am not safe",
            f"o-{memory.public_id}-reason": REASON,
        },
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "The accident cannot start yet" in html
    for text in ("Sirens at night", "I am not safe", REASON):
        assert text in html
    [checkbox] = re.findall(r'<input[^>]*name="affect_tolerance_shown"[^>]*>', html)
    assert "checked" in checkbox
    assert _writes(plan) == before  # all or nothing
    assert not EmdrTarget.objects.filter(title="Sirens at night").exists()
    plan.refresh_from_db()
    assert plan.affect_tolerance_shown is False


def test_a_target_refused_beside_the_override_keeps_the_reason(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    plan, memory = world["plan"], world["memory"]
    client = client_for(world["therapist"])
    page = reverse("emdr_plan", args=[plan.public_id])

    response = press(
        client,
        page,
        action=reverse("emdr_target_add", args=[plan.public_id]),
        typed={
            "kind": "belief",
            "title": "Not good enough",
            "sud": "12",
            f"o-{memory.public_id}-reason": REASON,
        },
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "SUD is rated from 0 to 10." in html
    assert REASON in html
    assert "Not good enough" in html


def test_signing_the_override_saves_the_page_and_the_prescriber_countersigns(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    plan, memory = world["plan"], world["memory"]
    client = client_for(world["therapist"])
    page = reverse("emdr_plan", args=[plan.public_id])

    response = press(
        client,
        page,
        action=reverse("emdr_target_override", args=[memory.public_id]),
        typed={"dissociation_interview_recorded": "on", f"o-{memory.public_id}-reason": REASON},
    )

    assert response.status_code == 302
    memory.refresh_from_db()
    plan.refresh_from_db()
    assert (memory.override_reason, memory.override_therapist_id) == (REASON, world["therapist"].pk)
    assert plan.dissociation_interview_recorded is True
    assert not [key for key, _value in client.session.items() if key.startswith("emdr-unsent-override-")]

    prescriber = client_for(world["prescriber"])
    countersigned = press(
        prescriber, page, action=reverse("emdr_target_override", args=[memory.public_id]), typed={}
    )
    assert countersigned.status_code == 302
    memory.refresh_from_db()
    assert memory.override_signed


def test_enter_in_a_field_saves_the_page_and_starts_nothing(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    plan = world["plan"]
    client = client_for(world["therapist"])
    page = reverse("emdr_plan", args=[plan.public_id])
    html = client.get(page).content.decode()
    # The page's form holds the first (default) button, so Enter posts to the page itself.
    form = html.split('id="emdr-plan-page"')[1].split("</form>")[0]
    assert 'type="submit"' in form

    response = press(client, page, action=page, typed={"kind": "resource", "title": "Safe room"})

    assert response.status_code == 302
    assert plan.targets.filter(title="Safe room", state="not_started").exists()
    assert client_for(world["prescriber"]).post(page, {"with_plan": "1"}).status_code == 404
