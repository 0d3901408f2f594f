"""EMDR plan: sequencing, the readiness gate and its override, session logs, states and blocked processing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from sessions.emdr import rules as emdr_rules
from sessions.emdr import services
from sessions.models import EmdrPlan
from sessions.models import EmdrTarget

from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory

pytestmark = pytest.mark.django_db


# --- rules ---------------------------------------------------------------------------------------


def facts(
    key: int,
    kind: str,
    state: str = "not_started",
    order: int | None = None,
    belongs_to: tuple[int, ...] = (),
) -> emdr_rules.TargetFacts:
    return emdr_rules.TargetFacts(key=key, kind=kind, order=order or key, state=state, belongs_to=belongs_to)


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


def proposed(targets: list[emdr_rules.TargetFacts], protocol: str = "stabilisation_first") -> int | None:
    """The key of the target the plan proposes, with readiness met but for what the targets decide."""
    import dataclasses

    readiness = dataclasses.replace(
        READY,
        resource_installed=emdr_rules.resource_installed(targets),
        stabilisation_at_sud_0_1=emdr_rules.stabilisation_done(targets),
    )
    checklist = emdr_rules.readiness_checklist(readiness, protocol=protocol)
    proposal = emdr_rules.propose_next(targets, protocol=protocol, checklist=checklist)
    return proposal.target.key if proposal.target else None


def test_the_plan_proposes_stabilisation_before_past_memories() -> None:
    targets = [facts(1, "past_memory"), facts(2, "present_trigger"), facts(3, "resource")]
    assert proposed(targets) == 3
    targets = [facts(1, "past_memory"), facts(2, "present_trigger"), facts(3, "resource", "resolved")]
    assert proposed(targets) == 2
    targets = [
        facts(1, "past_memory"),
        facts(2, "present_trigger", "resolved"),
        facts(3, "resource", "resolved"),
    ]
    assert proposed(targets) == 1


def test_a_future_template_follows_its_targets() -> None:
    memory = facts(1, "past_memory", "in_progress")
    template = facts(2, "future_template", belongs_to=(1,))
    assert [p.message for p in emdr_rules.sequencing_problems(template, [memory, template])] == [
        "A future template follows once the targets it belongs to are processed."
    ]
    resolved = facts(1, "past_memory", "resolved")
    assert emdr_rules.sequencing_problems(template, [resolved, template]) == []
    lone = facts(3, "future_template")
    assert [p.message for p in emdr_rules.sequencing_problems(lone, [lone])] == [
        "Link the future template to the targets it belongs to."
    ]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"resource_installed": False}, "emdr_readiness_resource"),
        ({"dual_awareness_shown": False}, "emdr_readiness_dual_awareness"),
        ({"affect_tolerance_shown": False}, "emdr_readiness_affect_tolerance"),
        ({"stabilisation_at_sud_0_1": False}, "emdr_readiness_stabilisation"),
        ({"current_crisis": True}, "emdr_readiness_no_crisis"),
        ({"current_crisis": None}, "emdr_readiness_no_crisis"),
        ({"high_risk_alert_open": True}, "emdr_readiness_no_risk_alert"),
        ({"des2_mean": 30.0}, "emdr_readiness_dissociation"),
        ({"des2_mean": None}, "emdr_readiness_dissociation"),
    ],
)
def test_each_readiness_criterion(change: dict[str, Any], code: str) -> None:
    import dataclasses

    assert emdr_rules.readiness_met(emdr_rules.readiness_checklist(READY))
    checklist = emdr_rules.readiness_checklist(dataclasses.replace(READY, **change))
    assert [c.code for c in checklist if not c.met] == [code]


def test_a_structured_interview_stands_for_a_low_des2() -> None:
    import dataclasses

    interviewed = dataclasses.replace(READY, des2_mean=42.0, dissociation_interview_recorded=True)
    assert emdr_rules.readiness_met(emdr_rules.readiness_checklist(interviewed))


@pytest.mark.parametrize(
    ("sud_by_set", "voc_start", "voc_end", "blocked"),
    [([6, 6, 6], 3, 4, True), ([6, 5, 4], 3, 4, False), ([1, 1, 1], 5, 6, False), ([7, 5, 3], 4, 4, True)],
)
def test_blocked_processing(sud_by_set: list[int], voc_start: int, voc_end: int, blocked: bool) -> None:
    assert (
        emdr_rules.is_blocked(sud_by_set=sud_by_set, voc_start=voc_start, voc_end=voc_end, kind="past_memory")
        is blocked
    )


def test_closure_needs_sud_0_1_voc_6_7_and_a_clear_body_scan() -> None:
    assert emdr_rules.closure_complete(kind="belief", sud_end=1, voc_end=6, body_scan_clear=True)
    assert not emdr_rules.closure_complete(kind="belief", sud_end=2, voc_end=7, body_scan_clear=True)
    assert not emdr_rules.closure_complete(kind="belief", sud_end=0, voc_end=5, body_scan_clear=True)
    assert not emdr_rules.closure_complete(kind="belief", sud_end=0, voc_end=7, body_scan_clear=False)
    assert emdr_rules.closure_complete(kind="resource", sud_end=None, voc_end=6, body_scan_clear=False)


def test_ratings_out_of_range_are_named() -> None:
    assert emdr_rules.rating_problems(sud=11, voc=0) == {
        "sud": "SUD is rated from 0 to 10.",
        "voc": "VOC is rated from 1 to 7.",
    }
    assert emdr_rules.rating_problems(sud=0, voc=7) == {}


# --- services --------------------------------------------------------------------------------------


@pytest.fixture
def plan(clinic: Any, prescriber: Any, therapist: Any) -> EmdrPlan:
    pathway = PathwayFactory(clinic=clinic, prescriber=prescriber, therapist=therapist, stage="preparation")
    SignedScreeningFactory(pathway=pathway)
    from screening.models import Assessment

    Assessment.objects.filter(pathway=pathway).update(current_crisis=False)
    from screening.models import MeasureResponse

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
    return services.plan_open(actor=therapist, pathway=pathway)


def work(
    target: EmdrTarget,
    *,
    sud_end: int,
    voc_end: int,
    clear: bool = True,
    sets: list[int] | None = None,
    sud_start: int = 6,
    voc_start: int = 3,
) -> dict[str, Any]:
    return {
        "target": target,
        "sud_start": sud_start,
        "sud_end": sud_end,
        "voc_start": voc_start,
        "voc_end": voc_end,
        "sud_by_set": sets or [sud_start, max(sud_end, 0)],
        "body_scan_clear": clear,
    }


def log(therapist: Any, plan: EmdrPlan, *works: dict[str, Any]) -> Any:
    return services.session_log(
        actor=therapist,
        plan=plan,
        held_at=timezone.now(),
        phase_reached=7,
        stimulation="eye_movements",
        works=list(works),
    )


def test_a_past_memory_waits_for_the_checklist(therapist: Any, plan: EmdrPlan) -> None:
    memory = services.target_add(
        actor=therapist, plan=plan, kind="past_memory", title="The accident", sud=8, voc=2
    )
    with pytest.raises(ValidationError) as refused:
        services.target_start(actor=therapist, target=memory)
    assert any(m.startswith("Readiness: a resource installed is not met.") for m in refused.value.messages)
    assert any(
        m.startswith("Readiness: dual awareness shown on a milder target is not met.")
        for m in refused.value.messages
    )
    memory.refresh_from_db()
    assert memory.state == "not_started"

    with pytest.raises(ValidationError):  # logging a session on it is the same door
        log(therapist, plan, work(memory, sud_end=5, voc_end=3))
    assert not plan.sessions.exists()


def test_stabilisation_then_readiness_unlocks_the_past_memory(therapist: Any, plan: EmdrPlan) -> None:
    resource = services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    trigger = services.target_add(
        actor=therapist, plan=plan, kind="present_trigger", title="Sirens", sud=6, voc=3
    )
    memory = services.target_add(
        actor=therapist, plan=plan, kind="past_memory", title="The accident", sud=8, voc=2
    )
    log(therapist, plan, work(resource, sud_end=0, voc_end=6))
    first = log(therapist, plan, work(trigger, sud_end=3, voc_end=4, clear=False))
    trigger.refresh_from_db()
    assert (trigger.state, trigger.needs_reevaluation) == ("in_progress", True)
    log(therapist, plan, work(trigger, sud_start=3, sud_end=0, voc_start=4, voc_end=7))
    trigger.refresh_from_db()
    assert (trigger.state, trigger.sud, trigger.needs_reevaluation) == ("resolved", 0, False)
    assert first.work.get().complete is False

    with pytest.raises(ValidationError, match="dual awareness"):
        services.target_start(actor=therapist, target=memory)
    services.plan_readiness_update(
        actor=therapist, plan=plan, dual_awareness_shown=True, dissociation_interview_recorded=False
    )
    with pytest.raises(ValidationError, match="window of tolerance") as refused:
        services.target_start(actor=therapist, target=memory)
    assert [e.code for e in refused.value.error_list] == ["emdr_readiness_affect_tolerance"]
    services.plan_readiness_update(
        actor=therapist,
        plan=plan,
        dual_awareness_shown=True,
        dissociation_interview_recorded=False,
        affect_tolerance_shown=True,
    )
    started = services.target_start(actor=therapist, target=memory)
    assert started.state == "in_progress"


def test_the_override_needs_the_therapist_and_the_prescriber(
    therapist: Any, prescriber: Any, plan: EmdrPlan, monitor: Any
) -> None:
    memory = services.target_add(actor=therapist, plan=plan, kind="past_memory", title="The accident")
    with pytest.raises(ValidationError, match="therapist signs the override"):
        services.target_override_sign(actor=prescriber, target=memory)
    services.target_override_sign(
        actor=therapist, target=memory, reason="Stable for months; patient asks to begin."
    )
    with pytest.raises(ValidationError, match="Readiness"):
        services.target_start(actor=therapist, target=memory)
    with pytest.raises(NotFoundOrForbidden):
        services.target_override_sign(actor=monitor, target=memory)
    services.target_override_sign(actor=prescriber, target=memory)
    assert services.target_start(actor=therapist, target=memory).state == "in_progress"
    assert AuditEvent.objects.filter(action="emdr.override_signed").count() == 2


def test_blocked_processing_is_flagged(therapist: Any, plan: EmdrPlan) -> None:
    resource = services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    belief = services.target_add(
        actor=therapist, plan=plan, kind="belief", title="I am powerless", sud=7, voc=2
    )
    log(therapist, plan, work(resource, sud_end=0, voc_end=6))
    log(
        therapist,
        plan,
        work(belief, sud_start=7, sud_end=7, voc_start=2, voc_end=2, sets=[7, 7, 7], clear=False),
    )
    belief.refresh_from_db()
    assert belief.state == "blocked"


def test_out_of_range_ratings_and_other_plans_are_refused(
    therapist: Any, plan: EmdrPlan, clinic: Any, prescriber: Any
) -> None:
    resource = services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    with pytest.raises(ValidationError) as refused:
        log(therapist, plan, work(resource, sud_end=12, voc_end=8))
    assert set(refused.value.message_dict) == {"works.0.sud_end", "works.0.voc_end", "works.0.sud_by_set"}
    other = services.plan_open(
        actor=therapist, pathway=PathwayFactory(clinic=clinic, prescriber=prescriber, therapist=therapist)
    )
    foreign = services.target_add(actor=therapist, plan=other, kind="resource", title="Safe place")
    with pytest.raises(NotFoundOrForbidden):
        log(therapist, plan, work(foreign, sud_end=0, voc_end=6))
    with pytest.raises(ValidationError, match="SUD is rated from 0 to 10"):
        services.target_add(actor=therapist, plan=plan, kind="belief", title="X", sud=11)


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.MONITOR, Role.CLINIC_ADMIN])
def test_only_the_pathways_therapist_edits_the_plan(role: str, staff: dict[str, Any], plan: EmdrPlan) -> None:
    with pytest.raises(NotFoundOrForbidden):
        services.target_add(actor=staff[role], plan=plan, kind="resource", title="Calm place")
    assert not plan.targets.exists()


def test_a_stale_checklist_in_another_tab_does_not_start_the_trauma_target(
    therapist: Any, plan: EmdrPlan
) -> None:
    """Tab one sees the checklist met; tab two withdraws dual awareness; tab one's start is refused,
    because the service checks the checklist as it is when the start arrives."""
    resource = services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    trigger = services.target_add(
        actor=therapist, plan=plan, kind="present_trigger", title="Sirens", sud=5, voc=3
    )
    memory = services.target_add(actor=therapist, plan=plan, kind="past_memory", title="The accident")
    log(therapist, plan, work(resource, sud_end=0, voc_end=6), work(trigger, sud_end=0, voc_end=7))
    services.plan_readiness_update(
        actor=therapist,
        plan=plan,
        dual_awareness_shown=True,
        dissociation_interview_recorded=False,
        affect_tolerance_shown=True,
    )
    assert services.start_problems(EmdrPlan.objects.get(pk=plan.pk), memory) == []  # what tab one shows

    services.plan_readiness_update(
        actor=therapist, plan=plan, dual_awareness_shown=False, dissociation_interview_recorded=False
    )  # tab two
    with pytest.raises(ValidationError, match="dual awareness"):
        services.target_start(actor=therapist, target=memory)  # tab one's stale start
    memory.refresh_from_db()
    assert memory.state == "not_started"
