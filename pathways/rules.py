"""The pathway's stage machine and next actions: pure functions, no database.

    referral -> assessment -> preparation -> dosing -> integration -> completed
    (any open stage) -> on_hold -> (back where it was)
    (any open stage, on hold included) -> discontinued

Completed and discontinued are final. Later stages' gates (a signed screening before dosing,
and so on) are registered with `pathways.registry` and checked by the service after these rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import replace

from kaemdr import sources
from kaemdr.permissions import Capability

from .models import CLOSED_STAGES
from .models import Stage

FORWARD: dict[str, str] = {
    Stage.REFERRAL: Stage.ASSESSMENT,
    Stage.ASSESSMENT: Stage.PREPARATION,
    Stage.PREPARATION: Stage.DOSING,
    Stage.DOSING: Stage.INTEGRATION,
    Stage.INTEGRATION: Stage.COMPLETED,
}

STAGE_ORDER: tuple[str, ...] = (
    Stage.REFERRAL,
    Stage.ASSESSMENT,
    Stage.PREPARATION,
    Stage.DOSING,
    Stage.INTEGRATION,
    Stage.COMPLETED,
)


class StageMoveRefused(Exception):
    """A move the stage machine or a gate does not allow. `reasons` are shown to the user as they are."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def allowed_moves(*, stage: str, stage_before_hold: str = "") -> list[str]:
    """The stages a pathway in `stage` may move to, in the order a user would read them."""
    if stage in CLOSED_STAGES:
        return []
    if stage == Stage.ON_HOLD:
        return [stage_before_hold, Stage.DISCONTINUED] if stage_before_hold else [Stage.DISCONTINUED]
    return [FORWARD[stage], Stage.ON_HOLD, Stage.DISCONTINUED]


def check_move(*, stage: str, stage_before_hold: str, to_stage: str, has_therapist: bool) -> None:
    """Raise `StageMoveRefused` unless the stage machine allows `stage -> to_stage`.

    Preparation is where EMDR stabilisation starts, so a pathway needs a therapist on its care
    team before it enters preparation or resumes into any later stage.
    """
    labels = dict(Stage.choices)
    if to_stage not in labels:
        raise StageMoveRefused([f"'{to_stage}' is not a pathway stage."])
    if to_stage == stage:
        raise StageMoveRefused([f"The pathway is already in {labels[stage].lower()}."])
    if stage in CLOSED_STAGES:
        raise StageMoveRefused([f"The pathway is {labels[stage].lower()}; a closed pathway does not move."])
    if to_stage not in allowed_moves(stage=stage, stage_before_hold=stage_before_hold):
        if stage == Stage.ON_HOLD:
            back = labels.get(stage_before_hold, "its earlier stage").lower()
            raise StageMoveRefused([f"An on-hold pathway can only return to {back} or be discontinued."])
        raise StageMoveRefused(
            [
                f"A pathway in {labels[stage].lower()} cannot move to {labels[to_stage].lower()}: "
                f"it can move to {labels[FORWARD[stage]].lower()}, on hold or discontinued."
            ]
        )
    needs_therapist = to_stage in STAGE_ORDER[2:5]
    if needs_therapist and not has_therapist:
        raise StageMoveRefused(
            [f"Assign a therapist to the care team before moving to {labels[to_stage].lower()}."]
        )


@dataclass(frozen=True)
class ActionTarget:
    """A page where a next action is done: a URL name with its arguments (and a `#fragment`), for a
    viewer whose role holds `capability` (a `kaemdr.permissions.Capability` value)."""

    url_name: str
    args: tuple[str, ...] = ()
    capability: str = ""
    fragment: str = ""


@dataclass(frozen=True)
class NextAction:
    """A short instruction shown on the pathway page and the dashboards.

    `targets` are the pages where it is done, most direct first; the viewer gets a link (`url`) to
    the first whose capability their role holds (`pathways.selectors.pathways_next_actions`), else
    plain text.
    """

    label: str
    detail: str = ""
    targets: tuple[ActionTarget, ...] = ()
    url: str = ""


_STAGE_NEXT_ACTION: dict[str, NextAction] = {
    Stage.REFERRAL: NextAction(
        "Start the assessment", "Review the referral and move the pathway to assessment."
    ),
    Stage.ASSESSMENT: NextAction(
        "Screen and sign eligibility",
        "Stability, support, medication review, contraindications and baseline measures.",
    ),
    Stage.PREPARATION: NextAction(
        "Prepare for dosing",
        "Stabilisation and EMDR resources; confirm escort and fasting instructions. Sessions can be "
        "booked now; the first dose moves the pathway to dosing.",
    ),
    Stage.DOSING: NextAction("Run the dosing sessions", "Book monitored rooms; EMDR as effects wane."),
    Stage.INTEGRATION: NextAction(
        "Integrate", "Integration sessions and experiments that protect the change."
    ),
}


def _stage_targets(stage: str, public_id: str) -> tuple[ActionTarget, ...]:
    """Where each stage's own next action is done (pathway, booking and integration pages)."""
    args = (public_id,)
    move = ActionTarget("pathway_detail", args, Capability.PATHWAY_MOVE, "move-heading")
    bookings = (
        ActionTarget("booking_create", args, Capability.BOOKING_MANAGE),
        ActionTarget("pathway_bookings", args, Capability.SCHEDULE_VIEW),
        ActionTarget("pathway_bookings", args, Capability.PATIENT_VIEW_CARE_TEAM),
    )
    targets: dict[str, tuple[ActionTarget, ...]] = {
        Stage.REFERRAL: (move,),
        Stage.ASSESSMENT: (ActionTarget("pathway_detail", args, Capability.SCREENING_VIEW, "screening"),),
        Stage.PREPARATION: bookings,
        Stage.DOSING: bookings,
        Stage.INTEGRATION: (
            ActionTarget("pathway_integration", args, Capability.INTEGRATION_VIEW),
            ActionTarget("pathway_detail", args, Capability.FOLLOW_UP_VIEW, "integration"),
        ),
        Stage.ON_HOLD: (move,),
    }
    return targets.get(stage, ())


def stage_next_actions(
    *, stage: str, stage_before_hold: str, has_therapist: bool, public_id: str = ""
) -> list[NextAction]:
    """What the care team should do next for a pathway in `stage`, before any registered items;
    with the pathway's `public_id`, each says where it is done."""
    if stage in CLOSED_STAGES:
        return []
    targets = _stage_targets(stage, public_id) if public_id else ()
    if stage == Stage.ON_HOLD:
        back = dict(Stage.choices).get(stage_before_hold, "").lower()
        return [NextAction("Review the hold", f"Resume at {back} when ready, or discontinue.", targets)]
    actions = [replace(_STAGE_NEXT_ACTION[stage], targets=targets)]
    if not has_therapist and stage in (Stage.REFERRAL, Stage.ASSESSMENT):
        team = (ActionTarget("pathway_care_team", (public_id,), Capability.CARE_TEAM_ASSIGN),)
        actions.append(
            NextAction(
                "Assign a therapist",
                "Needed before the pathway enters preparation.",
                team if public_id else (),
            )
        )
    return actions


RECORD_NUMBER_PATTERN = re.compile(r"^(?P<prefix>.*?)(?P<digits>\d+)$")


def record_number_parts(record_number: str) -> tuple[str, str] | None:
    """A record number's prefix and trailing digits ("HB-1004" -> ("HB-", "1004")), or None when it
    does not end in a number (then there is no pattern to continue)."""
    found = RECORD_NUMBER_PATTERN.match(record_number.strip())
    return (found["prefix"], found["digits"]) if found else None


def next_record_number(highest: str) -> str:
    """The record number after `highest` in its pattern: the same prefix, the number plus one, as
    many digits as before at least ("HB-0999" -> "HB-1000", "MRN-9" -> "MRN-10"). Only a hint: the
    service still refuses a number another patient of the clinic has."""
    parts = record_number_parts(highest)
    if parts is None:
        return ""
    prefix, digits = parts
    return f"{prefix}{int(digits) + 1:0{len(digits)}d}"


# --- The codes of the pathway's rules, in the one catalogue --------------------------------------------

sources.register(
    {
        "pathway_already_open": sources.STAGED_PATHWAY.at("one open pathway per patient at a time"),
        "wrong_stage": sources.STAGED_PATHWAY.at("each step belongs to its stage"),
        "move_refused": sources.STAGED_PATHWAY.at("each stage gated on the one before"),
        "pathway_closed": sources.STAGED_PATHWAY.at("completed and discontinued pathways are final"),
        "therapist_required": sources.STAGED_PATHWAY.at("a therapist on the care team from preparation on"),
        "reason_required": sources.GMC_RECORDS.at("record the decisions made and the reasons for them"),
        "stale_stage": sources.GMC_RECORDS.at("decisions made on the record as it stands"),
        "duplicate_record_number": sources.GMC_RECORDS.at("each record identifies its patient"),
    }
)
