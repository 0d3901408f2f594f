"""The pathway's stage machine and next actions: pure functions, no database.

    referral -> assessment -> preparation -> dosing -> integration -> completed
    (any open stage) -> on_hold -> (back where it was)
    (any open stage, on hold included) -> discontinued

Completed and discontinued are final. Later stages' gates (a signed screening before dosing,
and so on) are registered with `pathways.registry` and checked by the service after these rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaemdr import sources

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
class NextAction:
    """A short instruction shown on the pathway page and the dashboards."""

    label: str
    detail: str = ""


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


def stage_next_actions(*, stage: str, stage_before_hold: str, has_therapist: bool) -> list[NextAction]:
    """What the care team should do next for a pathway in `stage`, before any registered items."""
    if stage in CLOSED_STAGES:
        return []
    if stage == Stage.ON_HOLD:
        back = dict(Stage.choices).get(stage_before_hold, "").lower()
        return [NextAction("Review the hold", f"Resume at {back} when ready, or discontinue.")]
    actions = [_STAGE_NEXT_ACTION[stage]]
    if not has_therapist and stage in (Stage.REFERRAL, Stage.ASSESSMENT):
        actions.append(NextAction("Assign a therapist", "Needed before the pathway enters preparation."))
    return actions


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
