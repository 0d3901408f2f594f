"""The dosing gates that follow the pathway rather than the room: its open safety alerts and its stage.

- **Alerts stop a dose.** An open urgent safety alert (PHQ-9 item 9 above 0, high C-SSRS risk),
  whatever raised it and whenever, refuses booking a dosing session, moving one, and starting a
  dose, until someone records the action taken or a prescriber signs a dosing override on it
  (`screening.services.safety_alert_dosing_override_sign`).
- **Stage.** Sessions are booked (and moved) on a pathway in preparation or dosing; a dose starts
  only in dosing. The first dose on a pathway still in preparation moves it into dosing, in the
  dose's own transaction, through the pathway's stage machine and gates, with its timeline row and
  audit event (`pathways.services.pathway_move_as_step`): the monitor who starts the dose does not
  need the prescriber's right to move pathways. On hold, discontinued, completed, integration,
  referral and assessment refuse with what to do.

Each check locks the pathway row first (booking, moving, dose alike), as raising an alert does, so
an alert and a booking or dose made at the same moment are decided one after the other. The pathway
is locked before any room, booking or stage handler's rows: the one order every writer keeps.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from kaemdr import sources
from kaemdr.exceptions import Refusal
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from pathways.models import Stage
from pathways.services import pathway_move_as_step
from screening import selectors as screening_selectors

BOOKABLE_STAGES = (Stage.PREPARATION, Stage.DOSING)
"""Where a dosing session may be booked or moved: booking ahead from preparation is allowed."""
DOSEABLE_STAGES = (Stage.PREPARATION, Stage.DOSING)
"""Where a dose may start; from preparation the first dose moves the pathway into dosing."""

STAGE_SOURCE = sources.STAGED_PATHWAY.at(
    "no dose before screening and preparation, none on hold or after the course"
)
FIRST_DOSE_REASON = "First dose started."


def _lock_pathway(pathway_id: int) -> Pathway:
    """The pathway row locked (one query). Its alerts are read afterwards, in a statement of their
    own: one read in the locking statement would see the rows of before the wait for the lock, not
    an alert committed by the transaction that held it."""
    return Pathway.objects.select_for_update(of=("self",)).get(pk=pathway_id)


def _last_reason(pathway: Pathway) -> str:
    """Why the pathway reached its stage (the latest timeline row's reason)."""
    change = (
        PathwayStageChange.objects.filter(pathway_id=pathway.pk, to_stage=pathway.stage)
        .order_by("-changed_at", "-id")
        .only("reason")
        .first()
    )
    return change.reason if change is not None else ""


def stage_refusal(pathway: Pathway, *, dose: bool) -> Refusal | None:
    """Why a pathway in its stage may not be booked (`dose=False`) or dosed (`dose=True`), with what
    to do; None when it may. Reads the reason of a hold or discontinuation (one query, on refusal)."""
    allowed = DOSEABLE_STAGES if dose else BOOKABLE_STAGES
    if pathway.stage in allowed:
        return None
    what = "start a dose" if dose else "book a dosing session"
    labels = dict(Stage.choices)
    if pathway.stage == Stage.ON_HOLD:
        back = labels.get(pathway.stage_before_hold, "its stage").lower()
        message = f"The pathway is on hold ({_last_reason(pathway)}): resume it to {back} before you {what}."
    elif pathway.stage == Stage.DISCONTINUED:
        message = (
            f"The pathway is discontinued ({_last_reason(pathway)}): no dose is booked or started on it."
        )
    elif pathway.stage == Stage.COMPLETED:
        message = "The pathway is completed: open a new pathway for another course before you dose again."
    elif pathway.stage == Stage.INTEGRATION:
        message = (
            "The pathway has moved on to integration: its dosing stage is over, so no dose is booked or "
            "started on it. Cancel the sessions still booked."
        )
    else:
        message = (
            f"The pathway is in {labels[pathway.stage].lower()}: sign an eligible screening and move it to "
            f"preparation before you {what}."
        )
    return Refusal(message, code="wrong_stage", source=STAGE_SOURCE)


def booking_refusals(pathway: Pathway) -> list[ValidationError]:
    """The alert gate of a booking (one query). The stage is checked with the other booking gates, in
    their order (`services._booking_refusals`, through `stage_refusal`)."""
    return list(screening_selectors.dosing_alert_refusals(pathway))


def booking_check(*, pathway_id: int) -> None:
    """For `booking_create` and `booking_move`, before any room or booking is locked: lock the
    pathway, and refuse while an alert stops dosing on it (all its alerts named together)."""
    refusals = booking_refusals(_lock_pathway(pathway_id))
    if refusals:
        raise ValidationError(refusals)


def display_refusals(pathway: Pathway) -> list[str]:
    """What the booking page shows up front (no lock): the stage and the alerts."""
    stage = stage_refusal(pathway, dose=False)
    return [str(r.message) for r in ([stage] if stage else []) + booking_refusals(pathway)]


def dose_refusals(pathway: Pathway) -> list[ValidationError]:
    """The stage and alert gates of a dose, all of them, from a pathway read with `_lock_pathway`."""
    stage = stage_refusal(pathway, dose=True)
    return ([stage] if stage else []) + booking_refusals(pathway)


def dose_check(*, actor: User, pathway: Pathway) -> None:
    """For `dose_start`, in its transaction: lock the pathway, refuse a dose its stage or its open
    alerts do not allow (all named together), and move a pathway still in preparation into dosing.
    `pathway` (the caller's copy) is kept in step with the move."""
    locked = _lock_pathway(pathway.pk)
    refusals = dose_refusals(locked)
    if refusals:
        raise ValidationError(refusals)
    if locked.stage == Stage.PREPARATION:
        pathway_enter_dosing_for_dose(actor=actor, pathway=pathway)


def pathway_enter_dosing_for_dose(*, actor: User, pathway: Pathway) -> None:
    """The first dose moves the pathway from preparation into dosing: a step of the dose, by whoever
    starts it, through the stage machine and every stage gate, with a timeline row ("First dose
    started.") and an audit event. A refused move refuses the dose, saying why."""
    try:
        pathway_move_as_step(
            actor=actor, pathway=pathway, to_stage=Stage.DOSING, reason=FIRST_DOSE_REASON, via="dose_start"
        )
    except ValidationError as refused:
        raise ValidationError(
            [
                Refusal(
                    f"The first dose moves the pathway into dosing, which is refused: {message}",
                    code="wrong_stage",
                    source=STAGE_SOURCE,
                )
                for message in refused.messages
            ]
        ) from None
