"""The EMDR protocol choice: stabilisation first and the standard three-prong protocol. The plan's
proposal of the next target and its reason, each protocol's order (rules, then refusals through the
service, a direct POST and the API), the affect-tolerance item of the readiness gate, the clinic's
default for new plans, and every EMDR refusal code registered with its source."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from kaemdr import sources
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import User
from screening.models import Assessment
from screening.models import MeasureResponse
from sessions.clinic_settings import services as dosing_services
from sessions.emdr import rules as emdr_rules
from sessions.emdr import services
from sessions.emdr.rules import Protocol
from sessions.models import EmdrPlan
from sessions.models import EmdrTarget

from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory

STAB = Protocol.STABILISATION_FIRST
THREE = Protocol.THREE_PRONG

# --- rules: the proposal, table-driven over target sets ------------------------------------------------


def t(
    key: int,
    kind: str,
    state: str = "not_started",
    *,
    sud: int | None = None,
    belongs_to: tuple[int, ...] = (),
    override: bool = False,
) -> emdr_rules.TargetFacts:
    if state == "resolved" and sud is None and kind != "resource":
        sud = 0
    return emdr_rules.TargetFacts(
        key=key,
        kind=kind,
        order=key,
        state=state,
        last_sud=sud,
        belongs_to=belongs_to,
        override_signed=override,
        title=f"T{key}",
    )


READY = emdr_rules.ReadinessFacts(
    resource_installed=True,
    dual_awareness_shown=True,
    stabilisation_at_sud_0_1=True,
    current_crisis=False,
    high_risk_alert_open=False,
    des2_mean=12.0,
    dissociation_interview_recorded=False,
    affect_tolerance_shown=True,
)


def checklist_for(
    targets: list[emdr_rules.TargetFacts], protocol: str, **observed: Any
) -> list[emdr_rules.Criterion]:
    """The checklist as the selector builds it: what the targets decide, plus the observations given."""
    facts = dataclasses.replace(
        READY,
        resource_installed=emdr_rules.resource_installed(targets),
        stabilisation_at_sud_0_1=emdr_rules.stabilisation_done(targets),
        **observed,
    )
    return emdr_rules.readiness_checklist(facts, protocol=protocol)


R, TRIG, BODY, BELIEF, MEM, FUT = (
    "resource",
    "present_trigger",
    "body_response",
    "belief",
    "past_memory",
    "future_template",
)
PROPOSALS = [
    # (protocol, targets, observations, proposed key, words in the reason)
    (STAB, [], {}, None, "No targets yet"),
    (STAB, [t(1, MEM), t(2, TRIG), t(3, R)], {}, 3, "resource"),
    (STAB, [t(1, MEM), t(2, TRIG), t(3, R, "resolved")], {}, 2, "Stabilisation first"),
    (STAB, [t(1, MEM), t(2, BELIEF), t(3, R, "resolved")], {}, 2, "SUD 0-1 before any past memory"),
    (STAB, [t(1, MEM), t(2, TRIG, "resolved"), t(3, R, "resolved")], {}, 1, "Stabilisation is done"),
    (STAB, [t(1, R, "resolved"), t(2, MEM)], {}, None, "Take the present-day stabilisation targets"),
    (
        STAB,
        [t(1, R, "resolved"), t(2, TRIG, "resolved", sud=2), t(3, MEM)],
        {},
        None,
        "T3 waits for readiness",
    ),
    (STAB, [t(1, R, "resolved"), t(2, FUT)], {}, None, "T2 waits. Link the future template"),
    (
        STAB,
        [t(1, R, "resolved"), t(2, TRIG, "resolved"), t(3, MEM)],
        {"dual_awareness_shown": False},
        None,
        "Test dual awareness on a milder target",
    ),
    (
        STAB,
        [t(1, R, "resolved"), t(2, TRIG, "resolved"), t(3, MEM)],
        {"affect_tolerance_shown": False},
        None,
        "window of tolerance",
    ),
    (
        STAB,
        [t(1, R, "resolved"), t(2, TRIG, "resolved"), t(3, MEM, "in_progress"), t(4, TRIG)],
        {},
        3,
        "left incomplete",
    ),
    # A present trigger listed after the past memory that started waits for the past memories...
    (
        STAB,
        [t(1, R, "resolved"), t(2, TRIG, "resolved"), t(3, MEM, "resolved"), t(4, MEM), t(5, TRIG)],
        {},
        4,
        "trauma processing begins",
    ),
    # ... and then comes before the future templates, never holding up a past memory.
    (
        STAB,
        [
            t(1, R, "resolved"),
            t(2, TRIG, "resolved"),
            t(3, MEM, "resolved"),
            t(4, TRIG),
            t(5, FUT, belongs_to=(4,)),
        ],
        {},
        4,
        "remain come after the past memories",
    ),
    (
        STAB,
        [
            t(1, R, "resolved"),
            t(2, TRIG, "resolved"),
            t(3, MEM, "resolved"),
            t(4, TRIG, "resolved"),
            t(5, FUT, belongs_to=(4,)),
        ],
        {},
        5,
        "future template comes last",
    ),
    (STAB, [t(1, R, "resolved"), t(2, BODY, "blocked")], {}, 2, "change the bilateral stimulation"),
    (STAB, [t(1, R, "resolved"), t(2, TRIG, "resolved")], {}, None, "Every target on the plan is resolved"),
    (THREE, [t(1, MEM), t(2, TRIG), t(3, R)], {}, 3, "in preparation"),
    (THREE, [t(1, MEM), t(2, TRIG), t(3, R, "resolved")], {}, 1, "touchstone"),
    (
        THREE,
        [t(1, MEM, "resolved"), t(2, MEM), t(3, TRIG), t(4, R, "resolved")],
        {},
        2,
        "next past memory in plan order",
    ),
    (
        THREE,
        [t(1, MEM, "resolved"), t(2, BELIEF), t(3, R, "resolved"), t(4, FUT, belongs_to=(2,))],
        {},
        2,
        "present triggers still charged come next",
    ),
    (
        THREE,
        [t(1, MEM, "resolved"), t(2, TRIG, "resolved"), t(3, R, "resolved"), t(4, FUT, belongs_to=(2,))],
        {},
        4,
        "future template comes last",
    ),
    (
        THREE,
        [t(1, R, "resolved"), t(2, MEM), t(3, TRIG)],
        {"current_crisis": True},
        None,
        "Record a current screening that finds no crisis",
    ),
    (
        THREE,
        [t(1, R, "resolved"), t(2, MEM, override=True), t(3, TRIG)],
        {"dual_awareness_shown": False},
        2,
        "override is signed",
    ),
    # Switched to three-prong while a present trigger was under way: it continues.
    (THREE, [t(1, R, "resolved"), t(2, TRIG, "in_progress"), t(3, MEM)], {}, 2, "left incomplete"),
    (
        THREE,
        [t(1, R, "resolved"), t(2, MEM, "in_progress")],
        {"high_risk_alert_open": True},
        None,
        "is not worked while",
    ),
]


@pytest.mark.parametrize(("protocol", "targets", "observed", "key", "words"), PROPOSALS)
def test_the_plan_proposes_the_next_target_and_why(
    protocol: str,
    targets: list[emdr_rules.TargetFacts],
    observed: dict[str, Any],
    key: int | None,
    words: str,
) -> None:
    proposal = emdr_rules.propose_next(
        targets, protocol=protocol, checklist=checklist_for(targets, protocol, **observed)
    )
    assert (proposal.target.key if proposal.target else None) == key
    assert words in proposal.reason


def test_the_same_targets_are_proposed_in_each_protocols_order() -> None:
    """A plan with one target of each kind, a resource installed and readiness met, worked to the end."""
    targets = [t(1, R, "resolved"), t(2, TRIG), t(3, MEM), t(4, BELIEF), t(5, FUT, belongs_to=(2, 4))]
    for protocol, expected in ((STAB, [2, 4, 3, 5]), (THREE, [3, 2, 4, 5])):
        plan = list(targets)
        order = []
        while (
            proposal := emdr_rules.propose_next(
                plan, protocol=protocol, checklist=checklist_for(plan, protocol)
            )
        ).target:
            order.append(proposal.target.key)
            plan = [
                dataclasses.replace(x, state="resolved", last_sud=0) if x == proposal.target else x
                for x in plan
            ]
        assert order == expected, protocol


P = emdr_rules.PRESENT_AFTER_PAST
SEQUENCING = [
    # (protocol, target, others, codes)
    (THREE, t(2, TRIG), [t(1, MEM)], [P]),
    (THREE, t(2, BODY), [t(1, MEM, "in_progress")], [P]),
    (THREE, t(2, BELIEF), [t(1, MEM, "blocked")], [P]),
    (THREE, t(2, TRIG), [t(1, MEM, "resolved")], []),
    (THREE, t(2, TRIG), [t(1, R)], []),
    (THREE, t(2, MEM), [t(1, TRIG)], []),
    (THREE, t(2, R), [t(1, MEM)], []),
    (STAB, t(2, TRIG), [t(1, MEM)], []),
    (STAB, t(2, TRIG), [t(1, MEM, "in_progress")], []),
    (STAB, t(2, MEM), [t(1, TRIG)], []),  # the stabilisation targets are a readiness criterion instead
    (STAB, t(2, FUT), [t(1, TRIG)], [emdr_rules.FUTURE_TEMPLATE_UNLINKED]),
    (THREE, t(2, FUT), [t(1, TRIG)], [emdr_rules.FUTURE_TEMPLATE_UNLINKED]),
    (STAB, t(2, FUT, belongs_to=(1,)), [t(1, TRIG, "in_progress")], [emdr_rules.FUTURE_TEMPLATE_EARLY]),
    (THREE, t(2, FUT, belongs_to=(1,)), [t(1, MEM, "resolved")], []),
]


@pytest.mark.parametrize(("protocol", "target", "others", "codes"), SEQUENCING)
def test_each_protocols_order(
    protocol: str, target: emdr_rules.TargetFacts, others: list[emdr_rules.TargetFacts], codes: list[str]
) -> None:
    problems = emdr_rules.sequencing_problems(target, [*others, target], protocol=protocol)
    assert [p.code for p in problems] == codes
    assert all(sources.citation_for(p.code) for p in problems)


@pytest.mark.parametrize(
    ("targets", "stabilisation", "done"),
    [
        ([t(1, TRIG), t(2, MEM), t(3, BELIEF)], {1, 3}, False),
        ([t(1, TRIG, "resolved"), t(2, MEM), t(3, BELIEF, "resolved", sud=1)], {1, 3}, True),
        ([t(1, TRIG, "resolved", sud=2), t(2, MEM)], {1}, False),
        ([t(1, TRIG, "resolved"), t(2, MEM, "in_progress"), t(3, BELIEF)], {1}, True),
        ([t(1, R, "resolved"), t(2, MEM)], set(), False),
        ([t(1, R, "resolved"), t(2, MEM, "in_progress"), t(3, TRIG)], set(), True),
    ],
)
def test_the_stabilisation_targets_are_those_before_trauma_processing_began(
    targets: list[emdr_rules.TargetFacts], stabilisation: set[int], done: bool
) -> None:
    assert {x.key for x in emdr_rules.stabilisation_targets(targets)} == stabilisation
    assert emdr_rules.stabilisation_done(targets) is done


@pytest.mark.parametrize("protocol", [STAB, THREE])
def test_affect_tolerance_is_part_of_the_gate_under_both_protocols(protocol: str) -> None:
    met = emdr_rules.readiness_checklist(READY, protocol=protocol)
    assert emdr_rules.readiness_met(met)
    unmet = emdr_rules.readiness_checklist(
        dataclasses.replace(READY, affect_tolerance_shown=False), protocol=protocol
    )
    assert [c.code for c in unmet if not c.met] == [emdr_rules.READINESS_AFFECT_TOLERANCE]
    memory = t(1, MEM)
    problems = emdr_rules.start_problems(memory, [memory], protocol=protocol, checklist=unmet)
    assert [p.code for p in problems] == [emdr_rules.READINESS_AFFECT_TOLERANCE]
    assert "window of tolerance" in problems[0].message


def test_only_stabilisation_first_asks_for_the_stabilisation_targets() -> None:
    unstable = dataclasses.replace(READY, stabilisation_at_sud_0_1=False)
    assert not emdr_rules.readiness_met(emdr_rules.readiness_checklist(unstable, protocol=STAB))
    assert emdr_rules.readiness_met(emdr_rules.readiness_checklist(unstable, protocol=THREE))
    assert emdr_rules.READINESS_STABILISATION not in {
        c.code for c in emdr_rules.readiness_checklist(READY, protocol=THREE)
    }


def test_a_protocol_change_says_what_changes() -> None:
    targets = [t(1, R, "resolved"), t(2, TRIG, "in_progress"), t(3, MEM), t(4, BELIEF)]
    notes = " ".join(emdr_rules.protocol_change_notes(old=STAB, new=THREE, targets=targets))
    assert "the standard three-prong protocol" in notes
    assert "1 target under way continues as before" in notes
    assert "no longer asks for present-day stabilisation targets" in notes
    assert "1 present-day target not started now waits" in notes
    back = " ".join(emdr_rules.protocol_change_notes(old=THREE, new=STAB, targets=targets))
    assert "again asks for the present-day stabilisation targets" in back
    assert emdr_rules.protocol_change_notes(old=STAB, new=STAB, targets=targets) == [
        "The plan already follows stabilisation first."
    ]


# --- the source catalogue: every EMDR code registered ------------------------------------------------------

EMDR = Path(emdr_rules.__file__).parent


def test_every_emdr_code_is_registered_with_a_source() -> None:
    """Every `code=` in the EMDR services names a constant of the rules, and every code the rules can
    return (problems and readiness criteria) is registered with a citation."""
    services_text = (EMDR / "services.py").read_text()
    rules_text = (EMDR / "rules.py").read_text()
    assert not re.findall(r'code="', services_text + rules_text), "a literal code bypasses the register"
    named = set(re.findall(r"code=emdr_rules\.([A-Z_]+)", services_text))
    named |= set(re.findall(r"Problem\(\s*([A-Z_]+)", rules_text))
    named |= set(re.findall(r"Criterion\(\s*([A-Z_]+)", rules_text))
    assert len(named) >= 20
    registered = sources.registered()
    codes = {getattr(emdr_rules, name) for name in named}
    for protocol in Protocol:
        codes |= {c.code for c in emdr_rules.readiness_checklist(READY, protocol=protocol)}
    for code in codes:
        assert code.startswith("emdr_"), code
        citation = registered.get(code)
        assert citation, code
        assert citation.text, code
        assert "domain.md" not in citation.text
        assert ".py" not in citation.text
    assert set(emdr_rules.READINESS_TO_DO) == {
        c.code for c in emdr_rules.readiness_checklist(READY, protocol=STAB)
    }


# --- services, pages and the API -------------------------------------------------------------------------


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ready_pathway_plan(clinic: Any, prescriber: User, therapist: User, protocol: str) -> EmdrPlan:
    """A plan with no crisis, a low DES-II, dual awareness and affect tolerance shown, and a resource
    installed: readiness waits only on what the protocol asks of the targets."""
    pathway = PathwayFactory(clinic=clinic, prescriber=prescriber, therapist=therapist, stage="preparation")
    SignedScreeningFactory(pathway=pathway)
    Assessment.objects.filter(pathway=pathway).update(current_crisis=False)
    MeasureResponse.objects.create(
        clinic=clinic,
        pathway=pathway,
        instrument="des2",
        answers=[10] * 28,
        total=10,
        band="below_30",
        band_label="Below 30",
        administered_at=timezone.now(),
        recorded_by=prescriber,
    )
    plan = services.plan_open(actor=therapist, pathway=pathway)
    services.plan_protocol_set(actor=therapist, plan=plan, protocol=protocol)
    services.plan_readiness_update(
        actor=therapist,
        plan=plan,
        dual_awareness_shown=True,
        dissociation_interview_recorded=False,
        affect_tolerance_shown=True,
    )
    resource = services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    log(therapist, plan, {"target": resource, "voc_start": 4, "voc_end": 6})
    return EmdrPlan.objects.select_related("pathway__patient").get(pk=plan.pk)


def log(therapist: User, plan: EmdrPlan, *works: dict[str, Any]) -> Any:
    return services.session_log(
        actor=therapist,
        plan=plan,
        held_at=timezone.now(),
        phase_reached=7,
        stimulation="eye_movements",
        works=list(works),
    )


def resolved(target: EmdrTarget) -> dict[str, Any]:
    return {
        "target": target,
        "sud_start": 6,
        "sud_end": 0,
        "voc_start": 3,
        "voc_end": 7,
        "sud_by_set": [6, 3, 0],
        "body_scan_clear": True,
    }


def start_by_page_and_api(client: Client, therapist: User, target: EmdrTarget) -> tuple[str, dict[str, Any]]:
    """A direct POST to the start button's address, then the API's start: the page's message and the
    API's body."""
    page = client.post(reverse("emdr_target_start", args=[target.public_id]), follow=True)
    body = api(therapist).post(f"/api/v1/emdr-targets/{target.public_id}/start/", {}, format="json")
    return page.content.decode(), body.json()


@pytest.mark.django_db
def test_three_prong_refuses_a_present_trigger_before_the_past_memories(
    clinic: Any, prescriber: User, therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    plan = ready_pathway_plan(clinic, prescriber, therapist, THREE)
    memory = services.target_add(actor=therapist, plan=plan, kind="past_memory", title="The accident")
    trigger = services.target_add(actor=therapist, plan=plan, kind="present_trigger", title="Sirens")
    client = client_for(therapist)
    writes = AuditEvent.objects.count()

    page, body = start_by_page_and_api(client, therapist, trigger)

    assert "Sirens cannot start yet: Under the standard three-prong protocol present-day targets" in page
    assert "(Source: Shapiro 2018" in page
    assert body["status"] == 400
    [error] = body["errors"]
    assert error["code"] == emdr_rules.PRESENT_AFTER_PAST
    assert error["source"] == emdr_rules.SOURCE_THREE_PRONG.text
    logged = api(therapist).post(
        f"/api/v1/emdr-plans/{plan.public_id}/sessions/",
        {
            "held_at": timezone.now().isoformat(),
            "phase_reached": 4,
            "stimulation": "taps",
            "works": [{"target": str(trigger.public_id), "sud_start": 6, "sud_end": 4}],
        },
        format="json",
    )
    assert logged.status_code == 400
    trigger.refresh_from_db()
    assert trigger.state == "not_started"
    assert AuditEvent.objects.exclude(action="emdr.viewed").count() == writes

    # The past memory needs no present-day stabilisation under three-prong; once it is processed the
    # present trigger may start.
    assert client.post(reverse("emdr_target_start", args=[memory.public_id])).status_code == 302
    memory.refresh_from_db()
    assert memory.state == "in_progress"
    log(therapist, plan, resolved(memory))
    assert services.target_start(actor=therapist, target=trigger).state == "in_progress"


@pytest.mark.django_db
def test_stabilisation_first_refuses_the_past_memory_before_stabilisation_then_allows_later_triggers(
    clinic: Any, prescriber: User, therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    plan = ready_pathway_plan(clinic, prescriber, therapist, STAB)
    trigger = services.target_add(actor=therapist, plan=plan, kind="present_trigger", title="Sirens")
    memory = services.target_add(actor=therapist, plan=plan, kind="past_memory", title="The accident")
    client = client_for(therapist)

    page, body = start_by_page_and_api(client, therapist, memory)

    assert (
        "The accident cannot start yet: Readiness: stabilisation targets taken to SUD 0-1 is not met" in page
    )
    assert "Cloitre et al. 2012" in page
    assert [e["code"] for e in body["errors"]] == [emdr_rules.READINESS_STABILISATION]
    assert body["errors"][0]["source"] == emdr_rules.SOURCE_STABILISATION_FIRST.text
    memory.refresh_from_db()
    assert memory.state == "not_started"

    log(therapist, plan, resolved(trigger))
    services.target_start(actor=therapist, target=memory)
    # Present-day targets added once trauma processing has begun come after it: they may be worked, and
    # they do not hold up the next past memory.
    later = services.target_add(actor=therapist, plan=plan, kind="present_trigger", title="Car horns")
    second = services.target_add(actor=therapist, plan=plan, kind="past_memory", title="The hospital")
    assert services.start_problems(plan, second) == []
    assert services.target_start(actor=therapist, target=later).state == "in_progress"


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", [STAB, THREE])
def test_the_affect_tolerance_item_gates_the_past_memory_by_page_and_api(
    protocol: str, clinic: Any, prescriber: User, therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    plan = ready_pathway_plan(clinic, prescriber, therapist, protocol)
    trigger = services.target_add(actor=therapist, plan=plan, kind="belief", title="I am powerless")
    log(therapist, plan, resolved(trigger))
    memory = services.target_add(actor=therapist, plan=plan, kind="past_memory", title="The accident")
    client = client_for(therapist)

    # The page's form withdraws it (an unticked box), the plan shows it unmet, the start is refused.
    client.post(reverse("emdr_readiness", args=[plan.public_id]), {"dual_awareness_shown": "on"})
    plan.refresh_from_db()
    assert not plan.affect_tolerance_shown
    page, body = start_by_page_and_api(client, therapist, memory)
    assert "affect tolerance: notices rising distress" in page
    assert [e["code"] for e in body["errors"]] == [emdr_rules.READINESS_AFFECT_TOLERANCE]
    assert body["errors"][0]["source"].startswith("Siegel 1999")

    # The API's readiness without the item keeps it as it is; with it, sets it.
    url = f"/api/v1/emdr-plans/{plan.public_id}/readiness/"
    kept = api(therapist).post(
        url, {"dual_awareness_shown": True, "dissociation_interview_recorded": False}, format="json"
    )
    assert kept.json()["affect_tolerance_shown"] is False
    shown = (
        api(therapist)
        .post(
            url,
            {
                "dual_awareness_shown": True,
                "dissociation_interview_recorded": False,
                "affect_tolerance_shown": True,
            },
            format="json",
        )
        .json()
    )
    assert shown["affect_tolerance_shown"] is True
    assert shown["ready"] is True
    assert shown["next_target"] == str(memory.public_id)
    item = next(c for c in shown["readiness"] if c["code"] == emdr_rules.READINESS_AFFECT_TOLERANCE)
    assert item["met"]
    assert item["source"].startswith("Siegel 1999")
    assert services.target_start(actor=therapist, target=memory).state == "in_progress"


@pytest.mark.django_db
def test_the_therapist_changes_the_protocol_by_page_and_api_audited(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    from kaemdr.models import Role

    therapist, prescriber = staff[Role.THERAPIST], staff[Role.PRESCRIBER]
    pathway = PathwayFactory(clinic=clinic, prescriber=prescriber, therapist=therapist, stage="preparation")
    plan = services.plan_open(actor=therapist, pathway=pathway)
    assert plan.protocol == STAB
    resource = services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    log(therapist, plan, {"target": resource, "voc_start": 4, "voc_end": 5})  # left in progress
    url = reverse("emdr_protocol", args=[plan.public_id])

    page = client_for(therapist).post(url, {"protocol": THREE}, follow=True).content.decode()
    plan.refresh_from_db()
    assert plan.protocol == THREE
    assert "The protocol is changed." in page
    assert "1 target under way continues as before" in page
    assert "Standard three-prong (past memories, present triggers, future templates)" in page
    [event] = AuditEvent.objects.filter(action="emdr.protocol_changed")
    assert event.data == {"previous": STAB, "protocol": THREE}

    # Nobody else changes it; a choice outside the two is refused; the same choice writes nothing.
    for user in (prescriber, staff[Role.MONITOR]):
        assert client_for(user).post(url, {"protocol": STAB}).status_code == 404
        assert (
            api(user).post(f"/api/v1/emdr-plans/{plan.public_id}/protocol/", {"protocol": STAB}).status_code
            == 404
        )
    with pytest.raises(NotFoundOrForbidden):
        services.plan_protocol_set(actor=prescriber, plan=plan, protocol=STAB)
    client_for(therapist).post(url, {"protocol": "eclectic"})
    bad = api(therapist).post(f"/api/v1/emdr-plans/{plan.public_id}/protocol/", {"protocol": "x" * 500})
    assert bad.status_code == 400
    with pytest.raises(ValidationError) as refused:
        services.plan_protocol_set(actor=therapist, plan=plan, protocol="eclectic")
    assert refused.value.error_dict["protocol"][0].code == emdr_rules.PROTOCOL_CHOICE
    plan.refresh_from_db()
    assert plan.protocol == THREE
    assert AuditEvent.objects.filter(action="emdr.protocol_changed").count() == 1

    back = api(therapist).post(f"/api/v1/emdr-plans/{plan.public_id}/protocol/", {"protocol": STAB}).json()
    assert back["changed"] is True
    assert back["plan"]["protocol"] == STAB
    assert any("again asks for the present-day stabilisation targets" in note for note in back["notes"])
    assert back["plan"]["next_target"] == str(resource.public_id)
    assert "left incomplete" in back["plan"]["next_target_reason"]
    same = api(therapist).post(f"/api/v1/emdr-plans/{plan.public_id}/protocol/", {"protocol": STAB}).json()
    assert same["changed"] is False
    assert AuditEvent.objects.filter(action="emdr.protocol_changed").count() == 2


@pytest.mark.django_db
def test_a_new_plan_follows_the_clinics_default(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    from kaemdr.models import Role

    therapist, prescriber, admin = staff[Role.THERAPIST], staff[Role.PRESCRIBER], staff[Role.CLINIC_ADMIN]
    settings = api(admin).get("/api/v1/dosing-settings/").json()
    assert settings["emdr_protocol"] == STAB
    scalars = {k: v for k, v in settings.items() if not isinstance(v, list)}
    put = api(admin).put("/api/v1/dosing-settings/", {**scalars, "emdr_protocol": THREE}, format="json")
    assert put.status_code == 200, put.json()
    assert put.json()["emdr_protocol"] == THREE
    wrong = api(admin).put(
        "/api/v1/dosing-settings/", {**scalars, "emdr_protocol": "eclectic"}, format="json"
    )
    assert wrong.status_code == 400
    with pytest.raises(ValidationError) as refused:
        dosing_services.dosing_settings_update(actor=admin, emdr_protocol="eclectic")
    assert refused.value.error_dict["emdr_protocol"][0].code == emdr_rules.PROTOCOL_CHOICE

    pathway = PathwayFactory(clinic=clinic, prescriber=prescriber, therapist=therapist, stage="preparation")
    plan = services.plan_open(actor=therapist, pathway=pathway)
    assert plan.protocol == THREE
    page = client_for(therapist).get(reverse("emdr_plan", args=[plan.public_id])).content.decode()
    assert "Proposed next target" in page
    assert "No targets yet: add a resource (calm place) first." in page
    assert re.search(r'<input[^>]*value="three_prong"[^>]*checked', page)
    # A plan already open keeps its own protocol when the clinic's default changes.
    dosing_services.dosing_settings_update(actor=admin, emdr_protocol=STAB)
    assert services.plan_open(actor=therapist, pathway=pathway).protocol == THREE
