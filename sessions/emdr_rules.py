"""EMDR plan rules: sequencing from stabilisation to trauma processing, the readiness gate, closure,
target states and blocked processing. Pure functions; facts and sources in domain.md section 3.

- Stabilisation first: resources and present-day targets (triggers, body responses, beliefs) before
  any past memory; a future template only after the targets it belongs to are processed (three-pronged
  protocol, EMDR Institute; behavenet.com/protocol).
- Readiness before trauma processing (pesi.com blog 2188; Paulsen on dissociation): a resource
  installed, dual awareness shown on a milder target, stabilisation targets at SUD 0-1, no current
  crisis, no open high-risk safety alert, and DES-II below 30 or a structured interview recorded.
- Desensitisation ends at SUD 0-1; installation aims at VOC 6-7; a clear body scan closes the target
  (behavenet.com/desensitization). An incomplete session stops reprocessing with a container or calm
  place, without installation, and the target is reevaluated next time (cannonpsychology.com).
- Blocked processing: SUD not falling over two or more sets, or VOC stuck (traumajournal.substack.com);
  first change the bilateral stimulation, then use a cognitive interweave (trainingemdr.com).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Kind(enum.StrEnum):
    RESOURCE = "resource"
    PRESENT_TRIGGER = "present_trigger"
    BODY_RESPONSE = "body_response"
    BELIEF = "belief"
    PAST_MEMORY = "past_memory"
    FUTURE_TEMPLATE = "future_template"


KIND_LABELS = {
    Kind.RESOURCE: "Resource (calm place, RDI)",
    Kind.PRESENT_TRIGGER: "Present-day trigger",
    Kind.BODY_RESPONSE: "Body response",
    Kind.BELIEF: "Belief",
    Kind.PAST_MEMORY: "Past memory (trauma processing)",
    Kind.FUTURE_TEMPLATE: "Future template",
}
STABILISATION_KINDS = frozenset({Kind.PRESENT_TRIGGER, Kind.BODY_RESPONSE, Kind.BELIEF})


class State(enum.StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    BLOCKED = "blocked"


class Protocol(enum.StrEnum):
    """The order in which a pathway's EMDR targets are taken (a pathway-level choice, defaulting to the
    clinic's)."""

    STABILISATION_FIRST = "stabilisation_first"
    THREE_PRONG = "three_prong"


PROTOCOL_LABELS = {
    Protocol.STABILISATION_FIRST: (
        "Stabilisation first (resources and present-day targets, then trauma processing)"
    ),
    Protocol.THREE_PRONG: "Standard three-prong (past memories, present triggers, future templates)",
}


SUD_RANGE = (0, 10)
VOC_RANGE = (1, 7)
SUD_RESOLVED = 1
VOC_INSTALLED = 6


@dataclass(frozen=True)
class TargetFacts:
    """One target as the rules need it."""

    key: int
    kind: str
    order: int
    state: str
    last_sud: int | None = None
    belongs_to: tuple[int, ...] = ()


def _stabilisation_done(targets: Sequence[TargetFacts]) -> bool:
    return all(t.state == State.RESOLVED for t in targets if t.kind in STABILISATION_KINDS)


def sequencing_problems(target: TargetFacts, targets: Sequence[TargetFacts]) -> list[str]:
    """Why the plan does not offer `target` yet (the readiness gate for past memories is separate)."""
    problems = []
    if target.kind == Kind.PAST_MEMORY:
        if not any(t.kind == Kind.RESOURCE and t.state == State.RESOLVED for t in targets):
            problems.append("Install a resource first (calm place or resource development).")
        if not _stabilisation_done(targets):
            problems.append("Process the present-day targets (triggers, body responses, beliefs) first.")
    if target.kind == Kind.FUTURE_TEMPLATE:
        related = [t for t in targets if t.key in target.belongs_to]
        if not related:
            problems.append("Link the future template to the targets it belongs to.")
        elif any(t.state != State.RESOLVED for t in related):
            problems.append("A future template follows once the targets it belongs to are processed.")
    return problems


def next_target(targets: Sequence[TargetFacts]) -> TargetFacts | None:
    """The plan's proposal: resources, then stabilisation, then past memories, then future templates,
    each in plan order, skipping what is resolved and what the sequence does not allow yet."""
    rank = {
        Kind.RESOURCE: 0,
        **dict.fromkeys(STABILISATION_KINDS, 1),
        Kind.PAST_MEMORY: 2,
        Kind.FUTURE_TEMPLATE: 3,
    }
    for target in sorted(targets, key=lambda t: (rank[Kind(t.kind)], t.order)):
        if target.state != State.RESOLVED and not sequencing_problems(target, targets):
            return target
    return None


@dataclass(frozen=True)
class ReadinessFacts:
    resource_installed: bool
    dual_awareness_shown: bool
    stabilisation_at_sud_0_1: bool
    current_crisis: bool | None
    high_risk_alert_open: bool
    des2_mean: float | None
    dissociation_interview_recorded: bool


@dataclass(frozen=True)
class Criterion:
    code: str
    label: str
    met: bool


def readiness_checklist(facts: ReadinessFacts) -> list[Criterion]:
    """The readiness gate for trauma processing, criterion by criterion."""
    dissociation_ok = facts.dissociation_interview_recorded or (
        facts.des2_mean is not None and facts.des2_mean < 30
    )
    return [
        Criterion("resource", "A resource installed", facts.resource_installed),
        Criterion("dual_awareness", "Dual awareness shown on a milder target", facts.dual_awareness_shown),
        Criterion("stabilisation", "Stabilisation targets taken to SUD 0-1", facts.stabilisation_at_sud_0_1),
        Criterion("no_crisis", "No current crisis", facts.current_crisis is False),
        Criterion(
            "no_risk_alert", "No high C-SSRS risk or PHQ-9 item-9 alert open", not facts.high_risk_alert_open
        ),
        Criterion(
            "dissociation",
            "DES-II below 30, or a structured dissociation interview recorded",
            dissociation_ok,
        ),
    ]


def readiness_met(checklist: Sequence[Criterion]) -> bool:
    return all(criterion.met for criterion in checklist)


READINESS_SOURCE = "Readiness criteria, pesi.com blog 2188 (domain.md 3)"
EVERY_SESSION_CRITERIA = {
    "no_crisis": "record a current screening that finds no crisis",
    "no_risk_alert": "record the action taken on the open safety alert",
}
"""The readiness criteria a past memory must still meet at every session that processes it, not only
at its first start, each with what to do; the others (a resource, dual awareness, stabilisation,
dissociation) are reached once and stay reached."""


def every_session_problems(facts: ReadinessFacts) -> list[Criterion]:
    """The criteria of `EVERY_SESSION_CRITERIA` that are not met now."""
    return [c for c in readiness_checklist(facts) if c.code in EVERY_SESSION_CRITERIA and not c.met]


def rating_problems(*, sud: int | None, voc: int | None, prefix: str = "") -> dict[str, str]:
    """SUD outside 0-10 or VOC outside 1-7, by field."""
    errors = {}
    if sud is not None and not SUD_RANGE[0] <= sud <= SUD_RANGE[1]:
        errors[f"{prefix}sud"] = "SUD is rated from 0 to 10."
    if voc is not None and not VOC_RANGE[0] <= voc <= VOC_RANGE[1]:
        errors[f"{prefix}voc"] = "VOC is rated from 1 to 7."
    return errors


def is_blocked(*, sud_by_set: Sequence[int], voc_start: int | None, voc_end: int | None, kind: str) -> bool:
    """SUD unchanged over two or more consecutive sets, or VOC not rising while processing."""
    stuck_sud = any(
        sud_by_set[i] == sud_by_set[i + 1] == sud_by_set[i + 2] and sud_by_set[i] > SUD_RESOLVED
        for i in range(len(sud_by_set) - 2)
    )
    stuck_voc = (
        kind != Kind.RESOURCE
        and voc_start is not None
        and voc_end is not None
        and voc_end <= voc_start
        and voc_end < VOC_INSTALLED
    )
    return stuck_sud or stuck_voc


BLOCKED_NEXT_STEPS = (
    "Change the bilateral stimulation (speed, direction or modality), or return to target.",
    "Then use a cognitive interweave: missing information; time, place or responsibility; safety; choice.",
)


def closure_complete(*, kind: str, sud_end: int | None, voc_end: int | None, body_scan_clear: bool) -> bool:
    """A target is complete at SUD 0-1, VOC 6-7 and a clear body scan; a resource when installed (VOC 6-7)."""
    if kind == Kind.RESOURCE:
        return voc_end is not None and voc_end >= VOC_INSTALLED
    return (
        sud_end is not None
        and sud_end <= SUD_RESOLVED
        and voc_end is not None
        and voc_end >= VOC_INSTALLED
        and body_scan_clear
    )


def state_after(*, kind: str, complete: bool, blocked: bool) -> str:
    if complete:
        return State.RESOLVED
    return State.BLOCKED if blocked else State.IN_PROGRESS
