"""The stage machine as pure rules: every move between every pair of stages."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pathways.models import Stage
from pathways.rules import StageMoveRefused
from pathways.rules import allowed_moves
from pathways.rules import check_move
from pathways.rules import stage_next_actions

OPEN_MAIN = [Stage.REFERRAL, Stage.ASSESSMENT, Stage.PREPARATION, Stage.DOSING, Stage.INTEGRATION]
ALLOWED = {
    (Stage.REFERRAL, Stage.ASSESSMENT),
    (Stage.ASSESSMENT, Stage.PREPARATION),
    (Stage.PREPARATION, Stage.DOSING),
    (Stage.DOSING, Stage.INTEGRATION),
    (Stage.INTEGRATION, Stage.COMPLETED),
    *((stage, Stage.ON_HOLD) for stage in OPEN_MAIN),
    *((stage, Stage.DISCONTINUED) for stage in [*OPEN_MAIN, Stage.ON_HOLD]),
}


def _hold_origin(stage: str) -> str:
    return Stage.DOSING if stage == Stage.ON_HOLD else ""


@pytest.mark.parametrize(("from_stage", "to_stage"), sorted(ALLOWED))
def test_check_move_allows_each_move_of_the_pathway(from_stage: str, to_stage: str) -> None:
    check_move(
        stage=from_stage, stage_before_hold=_hold_origin(from_stage), to_stage=to_stage, has_therapist=True
    )


def test_on_hold_returns_only_to_the_stage_it_left() -> None:
    for origin in OPEN_MAIN:
        check_move(stage=Stage.ON_HOLD, stage_before_hold=origin, to_stage=origin, has_therapist=True)
        for other in set(OPEN_MAIN) - {origin}:
            with pytest.raises(
                StageMoveRefused, match=f"only return to {dict(Stage.choices)[origin].lower()}"
            ):
                check_move(stage=Stage.ON_HOLD, stage_before_hold=origin, to_stage=other, has_therapist=True)


REFUSED = [
    (a, b)
    for a, b in itertools.product(Stage.values, Stage.values)
    if (a, b) not in ALLOWED and not (a == Stage.ON_HOLD and b == Stage.DOSING)
]


@pytest.mark.parametrize(("from_stage", "to_stage"), REFUSED)
def test_check_move_refuses_every_other_move_with_a_reason(from_stage: str, to_stage: str) -> None:
    with pytest.raises(StageMoveRefused) as refused:
        check_move(
            stage=from_stage,
            stage_before_hold=_hold_origin(from_stage),
            to_stage=to_stage,
            has_therapist=True,
        )
    assert refused.value.reasons
    assert all(reason.endswith(".") for reason in refused.value.reasons)


def test_closed_pathways_do_not_move() -> None:
    for stage in (Stage.COMPLETED, Stage.DISCONTINUED):
        assert allowed_moves(stage=stage) == []
        with pytest.raises(StageMoveRefused, match="closed pathway does not move"):
            check_move(stage=stage, stage_before_hold="", to_stage=Stage.ON_HOLD, has_therapist=True)


def test_skipping_a_stage_names_the_next_one() -> None:
    with pytest.raises(StageMoveRefused, match="cannot move to dosing: it can move to assessment"):
        check_move(stage=Stage.REFERRAL, stage_before_hold="", to_stage=Stage.DOSING, has_therapist=True)


@pytest.mark.parametrize("to_stage", [Stage.PREPARATION])
def test_preparation_needs_a_therapist(to_stage: str) -> None:
    with pytest.raises(StageMoveRefused, match="Assign a therapist"):
        check_move(stage=Stage.ASSESSMENT, stage_before_hold="", to_stage=to_stage, has_therapist=False)


def test_resuming_into_dosing_needs_a_therapist() -> None:
    with pytest.raises(StageMoveRefused, match="Assign a therapist"):
        check_move(
            stage=Stage.ON_HOLD, stage_before_hold=Stage.DOSING, to_stage=Stage.DOSING, has_therapist=False
        )


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(StageMoveRefused, match="'launched' is not a pathway stage"):
        check_move(stage=Stage.REFERRAL, stage_before_hold="", to_stage="launched", has_therapist=True)


@given(
    stage=st.sampled_from(Stage.values),
    origin=st.sampled_from(OPEN_MAIN),
    to_stage=st.sampled_from(Stage.values),
    has_therapist=st.booleans(),
)
def test_allowed_moves_agrees_with_check_move(
    stage: str, origin: str, to_stage: str, has_therapist: bool
) -> None:
    before_hold = origin if stage == Stage.ON_HOLD else ""
    listed = to_stage in allowed_moves(stage=stage, stage_before_hold=before_hold)
    refusal: StageMoveRefused | None = None
    try:
        check_move(stage=stage, stage_before_hold=before_hold, to_stage=to_stage, has_therapist=has_therapist)
    except StageMoveRefused as refused:
        refusal = refused
    if refusal is None:
        assert listed
    else:
        assert not listed or "therapist" in refusal.reasons[0]


def test_next_actions_follow_the_stage() -> None:
    assert stage_next_actions(stage=Stage.ASSESSMENT, stage_before_hold="", has_therapist=True)[0].label == (
        "Screen and sign eligibility"
    )
    labels = [
        a.label for a in stage_next_actions(stage=Stage.REFERRAL, stage_before_hold="", has_therapist=False)
    ]
    assert labels == ["Start the assessment", "Assign a therapist"]
    assert stage_next_actions(stage=Stage.COMPLETED, stage_before_hold="", has_therapist=True) == []
    held = stage_next_actions(stage=Stage.ON_HOLD, stage_before_hold=Stage.DOSING, has_therapist=True)
    assert held[0].detail == "Resume at dosing when ready, or discontinue."
