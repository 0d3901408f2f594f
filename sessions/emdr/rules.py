"""EMDR plan rules: the protocol's order of targets, the plan's proposal of the next target and why, the
readiness gate for trauma processing, closure, target states and blocked processing. Pure functions; each
rule that can refuse has a stable code registered below with its source.

Two protocols, chosen per pathway (a new plan takes the clinic's default):

- Stabilisation first (phase-based treatment, Cloitre et al. 2012; resource development and installation,
  Korn and Leeds 2002): a resource and the present-day stabilisation targets (triggers, body responses,
  beliefs, taken to SUD 0-1) first; past memories once readiness is met; then the remaining present-day
  targets and future templates. The stabilisation targets are the present-day targets on the plan before
  trauma processing begins; those added after the first past memory has started are taken after it.
- Standard three-prong (Shapiro 2018): a resource may be installed in preparation; then past memories
  (the touchstone, listed first, before the others), then present triggers, then future templates.

In both, readiness gates every past memory (a resource installed, dual awareness, affect tolerance within
the window of tolerance, no current crisis, no open high-risk alert, dissociation screened; under
stabilisation first also the stabilisation targets at SUD 0-1), and a future template follows the
targets it belongs to. Desensitisation ends at SUD 0-1, installation aims at VOC 6-7, a clear body scan
closes a target; an incomplete target is reevaluated and continued at the next session before a new
one is opened. Blocked processing: SUD not falling over two or more sets, or VOC stuck; first change the
bilateral stimulation, then use a cognitive interweave."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from kaemdr import sources


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
"""The present-day kinds: stabilisation targets under stabilisation first, the present prong under the
three-prong protocol."""


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
PROTOCOL_NAMES = {
    Protocol.STABILISATION_FIRST: "stabilisation first",
    Protocol.THREE_PRONG: "the standard three-prong protocol",
}
"""Each protocol's name inside a sentence."""


SUD_RANGE = (0, 10)
VOC_RANGE = (1, 7)
SUD_RESOLVED = 1
VOC_INSTALLED = 6
PHASE_RANGE = (1, 8)


# --- Sources and the codes of every rule here that can refuse ---------------------------------------------

SOURCE_STABILISATION_FIRST = sources.CLOITRE_2012.at(
    "phase-based treatment: safety and stabilisation before trauma processing"
) + sources.KORN_LEEDS_2002.at("resource development and installation in the stabilisation phase")
SOURCE_THREE_PRONG = sources.SHAPIRO_2018.at("past memories, then present triggers, then future templates")
SOURCE_ASSESSMENT = sources.SHAPIRO_2018.at("phase 3, assessment: SUD 0-10, VOC 1-7")
READINESS_SOURCE = sources.EMDR_READINESS.at() + sources.SHAPIRO_2018.at("phase 2, preparation")
SOURCE_OVERRIDE = sources.STAGED_PATHWAY.at(
    "a gate is overridden only explicitly: the therapist signs with the reason, a prescriber countersigns"
)

READINESS_RESOURCE = "emdr_readiness_resource"
READINESS_DUAL_AWARENESS = "emdr_readiness_dual_awareness"
READINESS_AFFECT_TOLERANCE = "emdr_readiness_affect_tolerance"
READINESS_STABILISATION = "emdr_readiness_stabilisation"
READINESS_NO_CRISIS = "emdr_readiness_no_crisis"
READINESS_NO_RISK_ALERT = "emdr_readiness_no_risk_alert"
READINESS_DISSOCIATION = "emdr_readiness_dissociation"
PRESENT_AFTER_PAST = "emdr_present_after_past"
FUTURE_TEMPLATE_UNLINKED = "emdr_future_template_unlinked"
FUTURE_TEMPLATE_EARLY = "emdr_future_template_early"
OVERRIDE_NOT_GATED = "emdr_override_not_gated"
OVERRIDE_REASON = "emdr_override_reason"
OVERRIDE_THERAPIST_FIRST = "emdr_override_therapist_first"
PROTOCOL_CHOICE = "emdr_protocol_choice"
TARGET_KIND = "emdr_target_kind"
RATING_RANGE = "emdr_rating_range"
PHASE_OUT_OF_RANGE = "emdr_phase_range"
NO_TARGET_WORKED = "emdr_no_target_worked"
SESSION_IN_FUTURE = "emdr_session_in_future"
OUTSIDE_DOSE_WINDOW = "emdr_outside_dose_window"

sources.register(
    {
        READINESS_RESOURCE: sources.KORN_LEEDS_2002.at("resource development and installation")
        + sources.EMDR_READINESS.at("can hold positive states")
        + sources.SHAPIRO_2018.at("phase 2, preparation: the calm or safe place"),
        READINESS_DUAL_AWARENESS: sources.EMDR_READINESS.at("dual awareness tested on a mild target")
        + sources.SHAPIRO_2018.at("phase 2, preparation"),
        READINESS_AFFECT_TOLERANCE: sources.SIEGEL_1999.at(
            "the window of tolerance: noticing hyper- or hypo-arousal and returning within it"
        )
        + sources.EMDR_READINESS.at("tolerates body sensations"),
        READINESS_STABILISATION: SOURCE_STABILISATION_FIRST,
        READINESS_NO_CRISIS: sources.EMDR_READINESS.at("no current crisis"),
        READINESS_NO_RISK_ALERT: sources.EMDR_READINESS.at("no risk of harm")
        + sources.CSSRS.at()
        + sources.PHQ9.at("item 9"),
        READINESS_DISSOCIATION: sources.EMDR_READINESS.at("aware of dissociation, can return to the present")
        + sources.DES2.at("a mean of 30 or more calls for a structured interview"),
        PRESENT_AFTER_PAST: SOURCE_THREE_PRONG,
        FUTURE_TEMPLATE_UNLINKED: sources.SHAPIRO_2018.at("a future template for the processed targets"),
        FUTURE_TEMPLATE_EARLY: sources.SHAPIRO_2018.at("a future template for the processed targets"),
        OVERRIDE_NOT_GATED: READINESS_SOURCE,
        OVERRIDE_REASON: SOURCE_OVERRIDE,
        OVERRIDE_THERAPIST_FIRST: SOURCE_OVERRIDE,
        PROTOCOL_CHOICE: SOURCE_THREE_PRONG + SOURCE_STABILISATION_FIRST,
        TARGET_KIND: sources.SHAPIRO_2018.at(
            "phase 1, treatment planning: past memories, present triggers and future templates"
        )
        + sources.KORN_LEEDS_2002.at("resources"),
        RATING_RANGE: SOURCE_ASSESSMENT,
        PHASE_OUT_OF_RANGE: sources.SHAPIRO_2018.at("the eight phases"),
        NO_TARGET_WORKED: sources.SHAPIRO_2018.at("phases 3 to 7: a session reprocesses a target"),
        SESSION_IN_FUTURE: sources.NMC_CODE.at(
            "10.1, complete records at the time or as soon as possible after an event"
        ),
        OUTSIDE_DOSE_WINDOW: sources.clinic_setting("EMDR window after a dose (hours)"),
    }
)


@dataclass(frozen=True)
class Problem:
    """Why something is refused: a registered code and a message that says what to do."""

    code: str
    message: str


# --- Targets, the protocol's order and the proposal --------------------------------------------------------


@dataclass(frozen=True)
class TargetFacts:
    """One target as the rules need it."""

    key: int
    kind: str
    order: int
    state: str
    last_sud: int | None = None
    belongs_to: tuple[int, ...] = ()
    override_signed: bool = False
    title: str = ""


def _unresolved_memories(targets: Sequence[TargetFacts]) -> list[TargetFacts]:
    return [t for t in targets if t.kind == Kind.PAST_MEMORY and t.state != State.RESOLVED]


def processing_begun(targets: Sequence[TargetFacts]) -> bool:
    """Trauma processing has begun once any past memory has been started."""
    return any(t.kind == Kind.PAST_MEMORY and t.state != State.NOT_STARTED for t in targets)


def stabilisation_targets(targets: Sequence[TargetFacts]) -> list[TargetFacts]:
    """The present-day targets of the stabilisation phase (stabilisation first): all of them while no past
    memory has started; once one has, those listed before the first past memory started. Present-day
    targets listed after it are the remaining ones, taken after trauma processing, and no longer hold up
    the next past memory."""
    started = [t.order for t in targets if t.kind == Kind.PAST_MEMORY and t.state != State.NOT_STARTED]
    first = min(started, default=None)
    return [t for t in targets if t.kind in STABILISATION_KINDS and (first is None or t.order < first)]


def stabilisation_done(targets: Sequence[TargetFacts]) -> bool:
    """Every stabilisation target resolved at SUD 0-1. Before trauma processing a plan needs at least one;
    once processing has begun (a memory started under an override, say), none left open is enough."""
    phase = stabilisation_targets(targets)
    if not phase:
        return processing_begun(targets)
    return all(t.state == State.RESOLVED and (t.last_sud or 0) <= SUD_RESOLVED for t in phase)


def resource_installed(targets: Sequence[TargetFacts]) -> bool:
    return any(t.kind == Kind.RESOURCE and t.state == State.RESOLVED for t in targets)


def sequencing_problems(
    target: TargetFacts, targets: Sequence[TargetFacts], *, protocol: str = Protocol.STABILISATION_FIRST
) -> list[Problem]:
    """Why the protocol's order does not let `target` start yet. A past memory has no order problem of its
    own under either protocol: it waits for the readiness gate (`readiness_checklist`), which under
    stabilisation first includes the stabilisation targets, and which a signed override covers."""
    problems = []
    if protocol == Protocol.THREE_PRONG and target.kind in STABILISATION_KINDS:
        waiting = _unresolved_memories(targets)
        if waiting:
            problems.append(
                Problem(
                    PRESENT_AFTER_PAST,
                    "Under the standard three-prong protocol present-day targets follow the past memories: "
                    f"process the past {_memories(len(waiting))} first, or change this plan's protocol to "
                    "stabilisation first.",
                )
            )
    if target.kind == Kind.FUTURE_TEMPLATE:
        related = [t for t in targets if t.key in target.belongs_to]
        if not related:
            problems.append(
                Problem(FUTURE_TEMPLATE_UNLINKED, "Link the future template to the targets it belongs to.")
            )
        elif any(t.state != State.RESOLVED for t in related):
            problems.append(
                Problem(
                    FUTURE_TEMPLATE_EARLY,
                    "A future template follows once the targets it belongs to are processed.",
                )
            )
    return problems


def _memories(count: int) -> str:
    return "memory not yet resolved" if count == 1 else f"memories not yet resolved ({count})"


def start_problems(
    target: TargetFacts,
    targets: Sequence[TargetFacts],
    *,
    protocol: str,
    checklist: Sequence[Criterion],
) -> list[Problem]:
    """Everything that keeps `target` from starting now: the protocol's order, and for a past memory each
    readiness criterion not met (`checklist`, for this protocol), unless the therapist and a prescriber
    have signed its override."""
    problems = sequencing_problems(target, targets, protocol=protocol)
    if target.kind == Kind.PAST_MEMORY and not target.override_signed:
        problems += [
            Problem(c.code, f"Readiness: {_sentence_case(c.label)} is not met. {READINESS_TO_DO[c.code]}")
            for c in checklist
            if not c.met
        ]
    return problems


def continue_problems(target: TargetFacts, checklist: Sequence[Criterion]) -> list[Criterion]:
    """The criteria that keep a started past memory from being worked at this session (see
    `EVERY_SESSION_CRITERIA`); none for another kind of target or under a signed override."""
    if target.kind != Kind.PAST_MEMORY or target.override_signed:
        return []
    return [c for c in checklist if c.code in EVERY_SESSION_CRITERIA and not c.met]


def _rank(target: TargetFacts, stabilisation: frozenset[int], protocol: str) -> int:
    """The target's step in the protocol's order (lower first)."""
    kind = Kind(target.kind)
    if protocol == Protocol.THREE_PRONG:
        return {
            Kind.RESOURCE: 0,
            Kind.PAST_MEMORY: 1,
            **dict.fromkeys(STABILISATION_KINDS, 2),
            Kind.FUTURE_TEMPLATE: 3,
        }[kind]
    if kind in STABILISATION_KINDS:
        return 1 if target.key in stabilisation else 3
    return {Kind.RESOURCE: 0, Kind.PAST_MEMORY: 2, Kind.FUTURE_TEMPLATE: 4}[kind]


def in_protocol_order(targets: Sequence[TargetFacts], *, protocol: str) -> list[TargetFacts]:
    """The targets in the order the protocol takes them, plan order within each step."""
    stabilisation = frozenset(t.key for t in stabilisation_targets(targets))
    return sorted(targets, key=lambda t: (_rank(t, stabilisation, protocol), t.order, t.key))


@dataclass(frozen=True)
class Proposal:
    """The plan's next target (None when nothing can start now) and why, in plain words."""

    target: TargetFacts | None
    reason: str


def _reason(target: TargetFacts, targets: Sequence[TargetFacts], protocol: str) -> str:
    """Why a not-started target that may start now is the next one."""
    kind = Kind(target.kind)
    three_prong = protocol == Protocol.THREE_PRONG
    if kind == Kind.RESOURCE:
        return (
            "A resource (calm place or resource development) comes first, in preparation: it gives a "
            "settled state to return to before any distressing material."
        )
    if kind == Kind.PAST_MEMORY:
        gate = (
            "its readiness override is signed by the therapist and a prescriber"
            if target.override_signed
            else "readiness for trauma processing is met"
        )
        if three_prong:
            memories = sorted((t for t in targets if t.kind == Kind.PAST_MEMORY), key=lambda t: t.order)
            first = (
                "the touchstone (the first past memory on the plan)"
                if memories[0] == target
                else ("the next past memory in plan order")
            )
            return (
                f"Three-prong protocol: past memories come first, and this is {first}; {gate}. Present "
                "triggers follow once the past memories are processed."
            )
        return (
            f"Stabilisation is done and {gate}, so trauma processing begins with the next past memory in "
            "plan order."
        )
    if kind == Kind.FUTURE_TEMPLATE:
        return (
            "The targets it belongs to are processed: the future template comes last, rehearsing the new "
            "response until it holds at VOC 6-7."
        )
    if three_prong:
        return (
            "Three-prong protocol: the past memories are processed, so the present triggers still charged "
            "come next, before the future templates."
        )
    if target.key in {t.key for t in stabilisation_targets(targets)}:
        return (
            "Stabilisation first: present-day targets (triggers, body responses, beliefs) are taken to "
            "SUD 0-1 before any past memory."
        )
    return (
        "Trauma processing has begun: the present-day targets that remain come after the past memories, "
        "before the future templates."
    )


def propose_next(
    targets: Sequence[TargetFacts], *, protocol: str, checklist: Sequence[Criterion]
) -> Proposal:
    """The plan's proposal: the next target and why, under the plan's protocol.

    A target left incomplete or blocked is reevaluated and continued first (phase 8, reevaluation), in
    the protocol's order; then the first target not started that may start now (its order and, for a
    past memory, the readiness gate or its signed override). When nothing may start, the reason says
    what holds the plan up. `checklist` is the readiness checklist for this protocol.
    """
    if not targets:
        return Proposal(None, "No targets yet: add a resource (calm place) first.")
    ordered = in_protocol_order(targets, protocol=protocol)
    for target in ordered:
        if target.state in (State.IN_PROGRESS, State.BLOCKED) and not continue_problems(target, checklist):
            if target.state == State.BLOCKED:
                return Proposal(
                    target,
                    "Processing stalled at the last session: return to it, change the bilateral "
                    "stimulation, then use a cognitive interweave.",
                )
            return Proposal(
                target,
                "It was left incomplete at the last session: reevaluate it and continue before opening a "
                "new target.",
            )
    waiting: list[tuple[TargetFacts, list[Problem]]] = []
    for target in ordered:
        if target.state != State.NOT_STARTED:
            continue
        problems = start_problems(target, targets, protocol=protocol, checklist=checklist)
        if not problems:
            return Proposal(target, _reason(target, targets, protocol))
        waiting.append((target, problems))
    if all(t.state == State.RESOLVED for t in targets):
        return Proposal(
            None,
            "Every target on the plan is resolved: reevaluate them, and add a future template or a new "
            "target if anything is still charged.",
        )
    held = [t for t in ordered if t.state in (State.IN_PROGRESS, State.BLOCKED)]
    if held:  # a past memory under way that may not be worked now comes before anything waiting
        target = held[0]
        unmet = continue_problems(target, checklist)
        return Proposal(
            None,
            f"{target.title or 'The past memory under way'} is under way, but a past memory is not worked "
            f"while {' or '.join(_sentence_case(c.label) for c in unmet)} is not met. "
            + " ".join(READINESS_TO_DO[c.code] for c in unmet)
            + " Nothing else on the plan can start meanwhile.",
        )
    target, problems = waiting[0]
    name = target.title or "The next target"
    readiness = [p for p in problems if p.code in READINESS_TO_DO]
    if readiness:
        return Proposal(
            None,
            f"Nothing can start yet: {name} waits for readiness for trauma processing. "
            + " ".join(READINESS_TO_DO[p.code] for p in readiness),
        )
    return Proposal(None, f"Nothing can start yet: {name} waits. " + " ".join(p.message for p in problems))


def _sentence_case(label: str) -> str:
    """A criterion's label inside a sentence ("Dual awareness..." -> "dual awareness...")."""
    return label[:1].lower() + label[1:]


def protocol_change_notes(*, old: str, new: str, targets: Sequence[TargetFacts]) -> list[str]:
    """What changing the plan's protocol from `old` to `new` changes, in plain words, for the therapist
    to read before and after the change. Targets already under way continue as they are: the order
    decides what starts next, never what has started."""
    if old == new:
        return [f"The plan already follows {PROTOCOL_NAMES[Protocol(new)]}."]
    notes = [f"From now on the plan proposes its targets in the order of {PROTOCOL_NAMES[Protocol(new)]}."]
    under_way = [t for t in targets if t.state in (State.IN_PROGRESS, State.BLOCKED)]
    if under_way:
        count = len(under_way)
        notes.append(
            f"{count} target{'s' if count != 1 else ''} under way continue{'s' if count == 1 else ''} as "
            "before; the new order applies to targets not started yet."
        )
    present_waiting = [t for t in targets if t.kind in STABILISATION_KINDS and t.state == State.NOT_STARTED]
    if new == Protocol.THREE_PRONG:
        notes.append(
            "Readiness for trauma processing no longer asks for present-day stabilisation targets at SUD 0-1."
        )
        if present_waiting and _unresolved_memories(targets):
            notes.append(
                f"{len(present_waiting)} present-day target{'s' if len(present_waiting) != 1 else ''} not "
                f"started now wait{'s' if len(present_waiting) == 1 else ''} until the past memories are "
                "processed."
            )
    else:
        notes.append(
            "Readiness for trauma processing again asks for the present-day stabilisation targets at SUD 0-1 "
            "before a past memory starts; present-day targets may be worked before past memories."
        )
    return notes


# --- Readiness for trauma processing -------------------------------------------------------------------


@dataclass(frozen=True)
class ReadinessFacts:
    resource_installed: bool
    dual_awareness_shown: bool
    stabilisation_at_sud_0_1: bool
    current_crisis: bool | None
    high_risk_alert_open: bool
    des2_mean: float | None
    dissociation_interview_recorded: bool
    affect_tolerance_shown: bool


@dataclass(frozen=True)
class Criterion:
    code: str
    label: str
    met: bool


READINESS_TO_DO = {
    READINESS_RESOURCE: (
        "Install a resource first (calm place or resource development) and log it to VOC 6-7."
    ),
    READINESS_DUAL_AWARENESS: "Test dual awareness on a milder target, then record it under Readiness.",
    READINESS_AFFECT_TOLERANCE: (
        "Practise noticing rising distress and coming back within the window of tolerance, then record it "
        "under Readiness."
    ),
    READINESS_STABILISATION: (
        "Take the present-day stabilisation targets (triggers, body responses, beliefs) to SUD 0-1 first, "
        "adding one if the plan has none, or change the plan's protocol to three-prong."
    ),
    READINESS_NO_CRISIS: "Record a current screening that finds no crisis.",
    READINESS_NO_RISK_ALERT: "Record the action taken on the open safety alert.",
    READINESS_DISSOCIATION: (
        "Record a DES-II below 30, or a structured dissociation interview (DDIS or SCID-D) under Readiness."
    ),
}
"""What to do about each readiness criterion that is not met."""


def readiness_checklist(
    facts: ReadinessFacts, *, protocol: str = Protocol.STABILISATION_FIRST
) -> list[Criterion]:
    """The readiness gate for trauma processing, criterion by criterion. The stabilisation criterion
    belongs to stabilisation first only: under the three-prong protocol present-day targets follow the
    past memories."""
    dissociation_ok = facts.dissociation_interview_recorded or (
        facts.des2_mean is not None and facts.des2_mean < 30
    )
    checklist = [
        Criterion(READINESS_RESOURCE, "A resource installed", facts.resource_installed),
        Criterion(
            READINESS_DUAL_AWARENESS, "Dual awareness shown on a milder target", facts.dual_awareness_shown
        ),
        Criterion(
            READINESS_AFFECT_TOLERANCE,
            "Affect tolerance: notices rising distress and returns within the window of tolerance",
            facts.affect_tolerance_shown,
        ),
    ]
    if protocol == Protocol.STABILISATION_FIRST:
        checklist.append(
            Criterion(
                READINESS_STABILISATION,
                "Stabilisation targets taken to SUD 0-1",
                facts.stabilisation_at_sud_0_1,
            )
        )
    return [
        *checklist,
        Criterion(READINESS_NO_CRISIS, "No current crisis", facts.current_crisis is False),
        Criterion(
            READINESS_NO_RISK_ALERT,
            "No high C-SSRS risk or PHQ-9 item-9 alert open",
            not facts.high_risk_alert_open,
        ),
        Criterion(
            READINESS_DISSOCIATION,
            "DES-II below 30, or a structured dissociation interview recorded",
            dissociation_ok,
        ),
    ]


def readiness_met(checklist: Sequence[Criterion]) -> bool:
    return all(criterion.met for criterion in checklist)


EVERY_SESSION_CRITERIA = {
    READINESS_NO_CRISIS: "record a current screening that finds no crisis",
    READINESS_NO_RISK_ALERT: "record the action taken on the open safety alert",
}
"""The readiness criteria a past memory must still meet at every session that processes it, not only
at its first start, each with what to do; the others (a resource, dual awareness, affect tolerance,
stabilisation, dissociation) are reached once and stay reached."""


def every_session_problems(facts: ReadinessFacts) -> list[Criterion]:
    """The criteria of `EVERY_SESSION_CRITERIA` that are not met now."""
    return [c for c in readiness_checklist(facts) if c.code in EVERY_SESSION_CRITERIA and not c.met]


# --- Ratings, closure and blocked processing -------------------------------------------------------------


def rating_problems(*, sud: int | None, voc: int | None, prefix: str = "") -> dict[str, str]:
    """SUD outside 0-10 or VOC outside 1-7, by field (code `RATING_RANGE`)."""
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
