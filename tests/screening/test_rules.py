"""Screening rules as pure functions: scoring every outcome measure at its band edges, the
contraindication and medication catalogues, and the eligibility proposal and sign-off rules.

The clinical facts checked here are those the catalogue of sources (`kaemdr.sources`) cites for each
rule. No database is touched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaemdr import sources
from screening.rules import AGENT_ROUTES
from screening.rules import CONDITIONS
from screening.rules import CONDITIONS_BY_CODE
from screening.rules import DEFAULT_SECOND_SIGNATURE_CODES
from screening.rules import INSTRUMENTS
from screening.rules import MEASURE_REASON_SOURCES
from screening.rules import MEDICATION_CLASSES
from screening.rules import MEDICATION_CLASSES_BY_CODE
from screening.rules import Agent
from screening.rules import AnswerError
from screening.rules import AssessmentFacts
from screening.rules import Decision
from screening.rules import Instrument
from screening.rules import MeasureScore
from screening.rules import Reason
from screening.rules import ReasonKind
from screening.rules import Route
from screening.rules import Severity
from screening.rules import Thresholds
from screening.rules import age_on
from screening.rules import medication_flags
from screening.rules import missing_parts
from screening.rules import propose
from screening.rules import route_error
from screening.rules import score
from screening.rules import screening_is_current
from screening.rules import screening_valid_until
from screening.rules import second_signature_reasons
from screening.rules import signature_problem

# --- Helpers ---------------------------------------------------------------------------------------

ABSOLUTE_CODES = ("aneurysmal_vascular_disease", "intracerebral_haemorrhage", "ketamine_hypersensitivity")
RELATIVE_CODES = tuple(c.code for c in CONDITIONS if c.code not in ABSOLUTE_CODES)
REMS_CLASSES = {"benzodiazepine", "sedative_hypnotic", "psychostimulant", "maoi", "opioid"}
INTERACTING_CLASSES = tuple(m.code for m in MEDICATION_CLASSES if m.interaction)
NON_INTERACTING_CLASSES = ("antidepressant", "lithium", "other")

CSSRS_NONE: dict[str, bool] = {"q1": False, "q2": False, "q6_lifetime": False}
CSSRS_HIGH: dict[str, bool] = {
    "q1": True,
    "q2": True,
    "q3": True,
    "q4": True,
    "q5": False,
    "q6_lifetime": False,
}
CSSRS_MODERATE: dict[str, bool] = {
    "q1": True,
    "q2": True,
    "q3": True,
    "q4": False,
    "q5": False,
    "q6_lifetime": False,
}
SKIPPED = "Leave this unanswered: it is skipped by the answers above."
YES_NO = "Answer yes or no."

STABILITY_MESSAGE = "Stability and support: answer all four questions."
AGENT_ROUTE_MESSAGE = "Planned agent and route."
MATCHING_ROUTE_MESSAGE = "A route that goes with the planned agent."
VITALS_MESSAGE = "Baseline vitals: blood pressure, heart rate and weight."
HISTORY_MESSAGE = "Medical history: review it against the contraindication catalogue."
MEDICATIONS_MESSAGE = "Medication review: list current medications, or confirm there are none."


def zero_answers(instrument: Instrument) -> list[int]:
    return [0] * len(INSTRUMENTS[instrument].items)


def spread(total: int, count: int, maximum: int) -> list[int]:
    """`count` answers adding up to `total`, filled from the first item, each at most `maximum`."""
    assert 0 <= total <= count * maximum
    answers = []
    for _ in range(count):
        value = min(maximum, total)
        answers.append(value)
        total -= value
    return answers


def zero_scores() -> dict[str, MeasureScore]:
    """Real scores for every measure: all items 0, and C-SSRS answered no throughout."""
    return {
        Instrument.PHQ9: score(Instrument.PHQ9, zero_answers(Instrument.PHQ9)),
        Instrument.GAD7: score(Instrument.GAD7, zero_answers(Instrument.GAD7)),
        Instrument.PCL5: score(Instrument.PCL5, zero_answers(Instrument.PCL5)),
        Instrument.DES2: score(Instrument.DES2, zero_answers(Instrument.DES2)),
        Instrument.CSSRS: score(Instrument.CSSRS, CSSRS_NONE),
    }


def complete_facts() -> AssessmentFacts:
    """A fully recorded assessment with nothing to flag: vary it with `dataclasses.replace`."""
    return AssessmentFacts(
        agent=Agent.RACEMIC_KETAMINE,
        route=Route.IV,
        age_years=40,
        current_crisis=False,
        housing_stable=True,
        has_support_person=True,
        escort_available=True,
        systolic=120,
        diastolic=80,
        heart_rate=72,
        weight_kg=70.0,
        history_reviewed=True,
        medications_reviewed=True,
        condition_codes=frozenset(),
        medication_classes=(),
        scores=zero_scores(),
    )


def with_score(facts: AssessmentFacts, instrument: Instrument, answers: Any) -> AssessmentFacts:
    return replace(facts, scores={**facts.scores, instrument: score(instrument, answers)})


def rules_of(reasons: tuple[Reason, ...] | list[Reason]) -> list[str]:
    return [reason.rule for reason in reasons]


def flag_codes(measured: MeasureScore) -> list[str]:
    return [flag.code for flag in measured.flags]


# --- PHQ-9 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band", "label"),
    [
        (0, "minimal", "Minimal"),
        (4, "minimal", "Minimal"),
        (5, "mild", "Mild"),
        (9, "mild", "Mild"),
        (10, "moderate", "Moderate"),
        (14, "moderate", "Moderate"),
        (15, "moderately_severe", "Moderately severe"),
        (19, "moderately_severe", "Moderately severe"),
        (20, "severe", "Severe"),
        (27, "severe", "Severe"),
    ],
)
def test_score_phq9_band_at_each_edge(total: int, band: str, label: str) -> None:
    # Arrange
    answers = spread(total, 9, 3)

    # Act
    measured = score("phq9", answers)

    # Assert
    assert measured.instrument == Instrument.PHQ9
    assert measured.total == total
    assert measured.band == band
    assert measured.band_label == label


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_score_phq9_item9_above_zero_raises_urgent_flag_whatever_the_total(item9: int) -> None:
    # Arrange
    answers = [0] * 8 + [item9]

    # Act
    measured = score("phq9", answers)

    # Assert
    assert measured.total == item9
    assert measured.band == "minimal"
    assert flag_codes(measured) == ["phq9_item9"]
    assert measured.flags[0].urgent is True
    assert measured.has_urgent_flag is True
    assert measured.details == {"item_9": item9}


def test_score_phq9_item9_zero_with_severe_total_raises_no_flag() -> None:
    # Arrange
    answers = [3] * 8 + [0]

    # Act
    measured = score("phq9", answers)

    # Assert
    assert measured.total == 24
    assert measured.band == "severe"
    assert measured.flags == ()
    assert measured.has_urgent_flag is False
    assert measured.details == {"item_9": 0}


PHQ9_REFERENCE_BANDS = [
    (20, "severe"),
    (15, "moderately_severe"),
    (10, "moderate"),
    (5, "mild"),
    (0, "minimal"),
]


@given(st.lists(st.integers(0, 3), min_size=9, max_size=9))
def test_score_phq9_any_valid_answers_match_domain_table(answers: list[int]) -> None:
    # Act
    measured = score("phq9", answers)

    # Assert
    total = sum(answers)
    assert measured.total == total
    assert measured.band == next(band for lowest, band in PHQ9_REFERENCE_BANDS if total >= lowest)
    assert (flag_codes(measured) == ["phq9_item9"]) is (answers[8] > 0)
    assert measured.has_urgent_flag is (answers[8] > 0)


# --- GAD-7 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band", "label"),
    [
        (0, "minimal", "Minimal"),
        (4, "minimal", "Minimal"),
        (5, "mild", "Mild"),
        (9, "mild", "Mild"),
        (10, "moderate", "Moderate"),
        (14, "moderate", "Moderate"),
        (15, "severe", "Severe"),
        (21, "severe", "Severe"),
    ],
)
def test_score_gad7_band_at_each_edge(total: int, band: str, label: str) -> None:
    # Arrange
    answers = spread(total, 7, 3)

    # Act
    measured = score("gad7", answers)

    # Assert
    assert measured.instrument == Instrument.GAD7
    assert measured.total == total
    assert measured.band == band
    assert measured.band_label == label


@pytest.mark.parametrize(("total", "flagged"), [(0, False), (9, False), (10, True), (21, True)])
def test_score_gad7_evaluate_flag_only_from_ten(total: int, flagged: bool) -> None:
    # Arrange
    answers = spread(total, 7, 3)

    # Act
    measured = score("gad7", answers)

    # Assert
    assert flag_codes(measured) == (["gad7_evaluate"] if flagged else [])
    assert measured.has_urgent_flag is False


# --- PCL-5 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band", "label"),
    [
        (0, "below_cut_point", "Below the cut-point"),
        (30, "below_cut_point", "Below the cut-point"),
        (31, "cut_point_range", "Within the 31-33 cut-point range"),
        (32, "cut_point_range", "Within the 31-33 cut-point range"),
        (33, "probable_ptsd", "Probable PTSD"),
        (80, "probable_ptsd", "Probable PTSD"),
    ],
)
def test_score_pcl5_band_at_each_edge(total: int, band: str, label: str) -> None:
    # Arrange
    answers = spread(total, 20, 4)

    # Act
    measured = score("pcl5", answers)

    # Assert
    assert measured.instrument == Instrument.PCL5
    assert measured.total == total
    assert measured.band == band
    assert measured.band_label == label


# Items (1-based) rated 2 that exactly meet the DSM-5 pattern: 1 B, 1 C, 2 D, 2 E.
PCL5_MINIMAL_PATTERN = (1, 6, 8, 9, 15, 16)


def pcl5_answers(rated: dict[int, int], default: int = 0) -> list[int]:
    """20 answers at `default`, with the 1-based items in `rated` set to their value."""
    return [rated.get(item, default) for item in range(1, 21)]


def test_score_pcl5_exactly_meeting_the_cluster_pattern_is_provisional_dx() -> None:
    # Arrange
    answers = pcl5_answers(dict.fromkeys(PCL5_MINIMAL_PATTERN, 2))

    # Act
    measured = score("pcl5", answers)

    # Assert
    assert measured.total == 12
    assert measured.band == "below_cut_point"
    assert flag_codes(measured) == ["pcl5_provisional_dx"]
    assert measured.has_urgent_flag is False
    assert measured.details == {"clusters": {"B": 2, "C": 2, "D": 4, "E": 4}, "provisional_diagnosis": True}


@pytest.mark.parametrize("lowered_item", PCL5_MINIMAL_PATTERN)
def test_score_pcl5_one_endorsed_item_short_of_the_pattern_is_not_provisional_dx(lowered_item: int) -> None:
    # Arrange: the item drops to 1, below the "rated 2 or more" threshold.
    rated = dict.fromkeys(PCL5_MINIMAL_PATTERN, 2)
    rated[lowered_item] = 1
    answers = pcl5_answers(rated)

    # Act
    measured = score("pcl5", answers)

    # Assert
    assert measured.flags == ()
    assert measured.details["provisional_diagnosis"] is False


@pytest.mark.parametrize(
    ("cluster_items", "expected_clusters"),
    [
        ((6, 7), {"B": 20, "C": 2, "D": 28, "E": 24}),
        ((8, 9, 10, 11, 12, 13, 14), {"B": 20, "C": 8, "D": 7, "E": 24}),
        ((15, 16, 17, 18, 19, 20), {"B": 20, "C": 8, "D": 28, "E": 6}),
        ((1, 2, 3, 4, 5), {"B": 5, "C": 8, "D": 28, "E": 24}),
    ],
    ids=["no_C", "no_D", "no_E", "no_B"],
)
def test_score_pcl5_high_total_without_the_pattern_is_not_provisional_dx(
    cluster_items: tuple[int, ...], expected_clusters: dict[str, int]
) -> None:
    # Arrange: every item at 4 except one whole cluster rated 1.
    answers = pcl5_answers(dict.fromkeys(cluster_items, 1), default=4)

    # Act
    measured = score("pcl5", answers)

    # Assert
    assert measured.total >= 33
    assert measured.band == "probable_ptsd"
    assert measured.flags == ()
    assert measured.details == {"clusters": expected_clusters, "provisional_diagnosis": False}


def test_score_pcl5_high_total_with_only_one_d_item_endorsed_is_not_provisional_dx() -> None:
    # Arrange: D needs 2 items rated 2 or more; only item 8 is.
    rated = {item: 4 for item in (1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 18, 19, 20)}
    answers = pcl5_answers(rated)

    # Act
    measured = score("pcl5", answers)

    # Assert
    assert measured.total == 56
    assert measured.band == "probable_ptsd"
    assert measured.flags == ()


PCL5_REFERENCE_CLUSTERS = {"B": (1, 5, 1), "C": (6, 7, 1), "D": (8, 14, 2), "E": (15, 20, 2)}


@given(st.lists(st.integers(0, 4), min_size=20, max_size=20))
def test_score_pcl5_any_valid_answers_match_domain_pattern(answers: list[int]) -> None:
    # Arrange: the domain.md rule, with 1-based item numbers.
    expected_dx = all(
        sum(1 for item in range(first, last + 1) if answers[item - 1] >= 2) >= needed
        for first, last, needed in PCL5_REFERENCE_CLUSTERS.values()
    )

    # Act
    measured = score("pcl5", answers)

    # Assert
    assert measured.total == sum(answers)
    assert measured.details["provisional_diagnosis"] is expected_dx
    assert (flag_codes(measured) == ["pcl5_provisional_dx"]) is expected_dx


# --- DES-II ----------------------------------------------------------------------------------------


def test_score_des2_mean_just_below_thirty_is_below_30() -> None:
    # Arrange: 28 items in steps of 10 cannot average 29.9; the nearest mean below 30 is
    # 830 / 28 = 29.64..., which rounds to 29.6.
    answers = [30] * 27 + [20]

    # Act
    measured = score("des2", answers)

    # Assert
    assert measured.instrument == Instrument.DES2
    assert measured.total == 29.6
    assert measured.band == "below_30"
    assert measured.band_label == "Below 30"
    assert measured.flags == ()


def test_score_des2_mean_exactly_thirty_is_high_with_flag() -> None:
    # Arrange: 840 / 28 = 30.0 exactly.
    answers = [30] * 28

    # Act
    measured = score("des2", answers)

    # Assert
    assert measured.total == 30.0
    assert measured.band == "high"
    assert measured.band_label == "High (30 or more)"
    assert flag_codes(measured) == ["des2_high"]
    assert measured.has_urgent_flag is False


@pytest.mark.parametrize(("answers", "mean"), [([0] * 28, 0.0), ([100] * 28, 100.0), ([10] + [0] * 27, 0.4)])
def test_score_des2_mean_is_rounded_to_one_decimal(answers: list[int], mean: float) -> None:
    # Act
    measured = score("des2", answers)

    # Assert
    assert measured.total == mean


@given(st.lists(st.integers(0, 10).map(lambda tenth: tenth * 10), min_size=28, max_size=28))
def test_score_des2_high_flag_only_when_mean_reaches_thirty(answers: list[int]) -> None:
    # Act
    measured = score("des2", answers)

    # Assert
    assert measured.total == round(sum(answers) / 28, 1)
    high = sum(answers) / 28 >= 30
    assert (measured.band == "high") is high
    assert (flag_codes(measured) == ["des2_high"]) is high


# --- Answer validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "answers", "errors"),
    [
        ("phq9", [0, 0, 4, 0, 0, 0, 0, 0, 0], {"item_3": "Enter a number from 0 to 3."}),
        ("phq9", [-1, 0, 0, 0, 0, 0, 0, 0, 0], {"item_1": "Enter a number from 0 to 3."}),
        ("gad7", [0, 0, 0, 0, 0, 0, 4], {"item_7": "Enter a number from 0 to 3."}),
        ("pcl5", [0] * 19 + [5], {"item_20": "Enter a number from 0 to 4."}),
        ("des2", [0] * 27 + [110], {"item_28": "Enter a number from 0 to 100."}),
        ("des2", [0, 0, 0, 15] + [0] * 24, {"item_4": "Enter a multiple of 10."}),
        ("phq9", [0] * 8, {"item_9": "Answer this item."}),
        ("phq9", [0, None, 0, 0, 0, 0, 0, 0, 0], {"item_2": "Answer this item."}),
        ("gad7", [0, 0, "", 0, 0, 0, 0], {"item_3": "Answer this item."}),
        ("phq9", [0, 0, 0, 0, 1.5, 0, 0, 0, 0], {"item_5": "Enter a whole number."}),
        ("phq9", [0, 0, 0, 0, 0, 2.0, 0, 0, 0], {"item_6": "Enter a whole number."}),
        ("phq9", [0, 0, 0, 0, 0, 0, "2", 0, 0], {"item_7": "Enter a whole number."}),
        ("phq9", [True, 0, 0, 0, 0, 0, 0, 0, 0], {"item_1": "Enter a whole number."}),
        ("gad7", [0, False, 0, 0, 0, 0, 0], {"item_2": "Enter a whole number."}),
        ("phq9", [0] * 10, {"answers": "There are 9 items, not 10."}),
        ("gad7", [0] * 8, {"answers": "There are 7 items, not 8."}),
        ("phq9", {"item_1": 0}, {"answers": "Give 9 answers, one per item."}),
        ("pcl5", None, {"answers": "Give 20 answers, one per item."}),
        ("des2", "0" * 28, {"answers": "Give 28 answers, one per item."}),
    ],
    ids=[
        "above_max",
        "below_min",
        "gad7_above_max",
        "pcl5_above_max",
        "des2_above_max",
        "des2_wrong_step",
        "too_few",
        "none_item",
        "blank_item",
        "fraction",
        "float_whole",
        "string_digit",
        "bool_true",
        "bool_false",
        "too_many_phq9",
        "too_many_gad7",
        "mapping",
        "none",
        "string",
    ],
)
def test_score_invalid_answers_raise_answer_error_naming_items(
    instrument: str, answers: Any, errors: dict[str, str]
) -> None:
    # Act
    with pytest.raises(AnswerError) as raised:
        score(instrument, answers)

    # Assert
    assert raised.value.errors == errors


def test_score_several_bad_items_are_all_named() -> None:
    # Arrange
    answers = [0, 9, 0, 0, None, 0, 0, True, 0]

    # Act
    with pytest.raises(AnswerError) as raised:
        score("phq9", answers)

    # Assert
    assert raised.value.errors == {
        "item_2": "Enter a number from 0 to 3.",
        "item_5": "Answer this item.",
        "item_8": "Enter a whole number.",
    }
    assert str(raised.value) == (
        "item_2: Enter a number from 0 to 3.; item_5: Answer this item.; item_8: Enter a whole number."
    )


def test_score_empty_answers_name_every_item() -> None:
    # Act
    with pytest.raises(AnswerError) as raised:
        score("gad7", [])

    # Assert
    assert raised.value.errors == {f"item_{n}": "Answer this item." for n in range(1, 8)}


def test_score_too_many_answers_with_bad_item_names_both() -> None:
    # Act
    with pytest.raises(AnswerError) as raised:
        score("gad7", [0, 0, 7, 0, 0, 0, 0, 0])

    # Assert
    assert raised.value.errors == {
        "item_3": "Enter a number from 0 to 3.",
        "answers": "There are 7 items, not 8.",
    }


def test_score_answer_error_is_a_value_error() -> None:
    # Act / Assert
    with pytest.raises(ValueError, match=r"item_9: Answer this item\."):
        score("phq9", [0] * 8)


def test_score_accepts_a_tuple_of_answers() -> None:
    # Act
    measured = score("gad7", (1, 1, 1, 1, 1, 1, 1))

    # Assert
    assert measured.total == 7
    assert measured.band == "mild"


# --- C-SSRS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "risk", "label", "flags", "urgent"),
    [
        (CSSRS_NONE, "none", "No risk identified", [], False),
        ({"q1": True, "q2": False, "q6_lifetime": False}, "low", "Low risk", [], False),
        (
            {"q1": False, "q2": True, "q3": False, "q4": False, "q5": False, "q6_lifetime": False},
            "low",
            "Low risk",
            [],
            False,
        ),
        (
            {"q1": False, "q2": True, "q3": True, "q4": False, "q5": False, "q6_lifetime": False},
            "moderate",
            "Moderate risk",
            ["cssrs_moderate"],
            False,
        ),
        (
            {"q1": False, "q2": False, "q6_lifetime": True, "q6_past_3_months": False},
            "moderate",
            "Moderate risk",
            ["cssrs_moderate"],
            False,
        ),
        (
            {"q1": False, "q2": True, "q3": False, "q4": True, "q5": False, "q6_lifetime": False},
            "high",
            "High risk",
            ["cssrs_high"],
            True,
        ),
        (
            {"q1": False, "q2": True, "q3": False, "q4": False, "q5": True, "q6_lifetime": False},
            "high",
            "High risk",
            ["cssrs_high"],
            True,
        ),
        (
            {"q1": False, "q2": False, "q6_lifetime": True, "q6_past_3_months": True},
            "high",
            "High risk",
            ["cssrs_high"],
            True,
        ),
    ],
    ids=["none", "q1_only", "q2_only", "q3", "q6_lifetime", "q4", "q5", "q6_past_3_months"],
)
def test_score_cssrs_risk_for_each_path(
    answers: dict[str, bool], risk: str, label: str, flags: list[str], urgent: bool
) -> None:
    # Act
    measured = score("cssrs", answers)

    # Assert
    assert measured.instrument == Instrument.CSSRS
    assert measured.band == risk
    assert measured.band_label == label
    assert measured.total == float(("none", "low", "moderate", "high").index(risk))
    assert flag_codes(measured) == flags
    assert measured.has_urgent_flag is urgent


def test_score_cssrs_highest_level_wins_when_several_paths_fire() -> None:
    # Arrange: method (moderate) and recent behaviour (high) together.
    answers = {
        "q1": True,
        "q2": True,
        "q3": True,
        "q4": False,
        "q5": False,
        "q6_lifetime": True,
        "q6_past_3_months": True,
    }

    # Act
    measured = score("cssrs", answers)

    # Assert
    assert measured.band == "high"
    assert flag_codes(measured) == ["cssrs_high"]


@pytest.mark.parametrize(
    "skipped_keys",
    [("q3",), ("q4",), ("q5",), ("q3", "q4", "q5")],
)
@pytest.mark.parametrize("value", [True, False])
def test_score_cssrs_q3_to_q5_answered_when_q2_no_is_error(
    skipped_keys: tuple[str, ...], value: bool
) -> None:
    # Arrange
    answers = {**CSSRS_NONE, **dict.fromkeys(skipped_keys, value)}

    # Act
    with pytest.raises(AnswerError) as raised:
        score("cssrs", answers)

    # Assert
    assert raised.value.errors == dict.fromkeys(skipped_keys, SKIPPED)


@pytest.mark.parametrize("missing_key", ["q3", "q4", "q5"])
def test_score_cssrs_q2_yes_with_follow_up_missing_is_error(missing_key: str) -> None:
    # Arrange
    answers: dict[str, bool] = {
        "q1": True,
        "q2": True,
        "q3": False,
        "q4": False,
        "q5": False,
        "q6_lifetime": False,
    }
    del answers[missing_key]

    # Act
    with pytest.raises(AnswerError) as raised:
        score("cssrs", answers)

    # Assert
    assert raised.value.errors == {missing_key: YES_NO}


@pytest.mark.parametrize("value", [True, False])
def test_score_cssrs_past_3_months_answered_when_no_lifetime_behaviour_is_error(value: bool) -> None:
    # Arrange
    answers = {**CSSRS_NONE, "q6_past_3_months": value}

    # Act
    with pytest.raises(AnswerError) as raised:
        score("cssrs", answers)

    # Assert
    assert raised.value.errors == {"q6_past_3_months": SKIPPED}


def test_score_cssrs_lifetime_behaviour_without_past_3_months_is_error() -> None:
    # Arrange
    answers = {"q1": False, "q2": False, "q6_lifetime": True}

    # Act
    with pytest.raises(AnswerError) as raised:
        score("cssrs", answers)

    # Assert
    assert raised.value.errors == {"q6_past_3_months": YES_NO}


def test_score_cssrs_unknown_keys_are_error() -> None:
    # Arrange
    answers = {**CSSRS_NONE, "q7": True, "extra": False}

    # Act
    with pytest.raises(AnswerError) as raised:
        score("cssrs", answers)

    # Assert
    assert raised.value.errors == {"answers": "Unknown questions: extra, q7."}


@pytest.mark.parametrize("value", [1, 0, "yes", "no", "true", None, 1.0])
@pytest.mark.parametrize("key", ["q1", "q2", "q6_lifetime"])
def test_score_cssrs_non_bool_values_are_error(key: str, value: Any) -> None:
    # Arrange
    answers: dict[str, Any] = {**CSSRS_NONE, key: value}

    # Act
    with pytest.raises(AnswerError) as raised:
        score("cssrs", answers)

    # Assert
    assert raised.value.errors == {key: YES_NO}


def test_score_cssrs_empty_answers_name_every_asked_question() -> None:
    # Act
    with pytest.raises(AnswerError) as raised:
        score("cssrs", {})

    # Assert
    assert raised.value.errors == {"q1": YES_NO, "q2": YES_NO, "q6_lifetime": YES_NO}


@pytest.mark.parametrize("answers", [[False] * 7, None, "no"])
def test_score_cssrs_answers_not_a_mapping_is_error(answers: Any) -> None:
    # Act
    with pytest.raises(AnswerError) as raised:
        score("cssrs", answers)

    # Assert
    assert raised.value.errors == {"answers": "Answer each question yes or no."}


@given(
    q1=st.booleans(),
    q2=st.booleans(),
    follow_up=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    q6=st.booleans(),
    q6_recent=st.booleans(),
)
def test_score_cssrs_any_consistent_answers_match_domain_triage(
    q1: bool, q2: bool, follow_up: tuple[bool, bool, bool], q6: bool, q6_recent: bool
) -> None:
    # Arrange
    answers: dict[str, bool] = {"q1": q1, "q2": q2, "q6_lifetime": q6}
    q3, q4, q5 = follow_up if q2 else (False, False, False)
    if q2:
        answers.update(q3=q3, q4=q4, q5=q5)
    recent = q6 and q6_recent
    if q6:
        answers["q6_past_3_months"] = q6_recent
    if q4 or q5 or recent:
        expected = "high"
    elif q3 or q6:
        expected = "moderate"
    elif q1 or q2:
        expected = "low"
    else:
        expected = "none"

    # Act
    measured = score("cssrs", answers)

    # Assert
    assert measured.band == expected
    assert measured.has_urgent_flag is (expected == "high")


# --- score() dispatch ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "answers"),
    [
        ("phq9", [0] * 9),
        ("gad7", [0] * 7),
        ("pcl5", [0] * 20),
        ("des2", [0] * 28),
        ("cssrs", CSSRS_NONE),
        (Instrument.PHQ9, [0] * 9),
    ],
)
def test_score_dispatches_to_the_named_instrument(instrument: str, answers: Any) -> None:
    # Act
    measured = score(instrument, answers)

    # Assert
    assert measured.instrument == Instrument(instrument)
    assert measured.total == 0


@pytest.mark.parametrize("instrument", ["madrs", "", "PHQ9", "phq-9"])
def test_score_unknown_instrument_is_answer_error(instrument: str) -> None:
    # Act
    with pytest.raises(AnswerError) as raised:
        score(instrument, [0] * 9)

    # Assert
    assert raised.value.errors == {"instrument": f"'{instrument}' is not a measure kaemdr scores."}


def test_instruments_cover_every_measure_with_a_source() -> None:
    # Assert
    assert set(INSTRUMENTS) == set(Instrument)
    assert {key: len(spec.items) for key, spec in INSTRUMENTS.items()} == {
        "phq9": 9,
        "gad7": 7,
        "pcl5": 20,
        "des2": 28,
        "cssrs": 7,
    }
    assert all(spec.source for spec in INSTRUMENTS.values())


# --- Catalogues ------------------------------------------------------------------------------------


@pytest.mark.parametrize("condition", CONDITIONS, ids=[c.code for c in CONDITIONS])
def test_conditions_each_has_label_explanation_and_source(condition: Any) -> None:
    # Assert
    assert condition.label.strip()
    assert condition.explanation.strip()
    assert condition.source


def test_conditions_codes_are_unique() -> None:
    # Assert
    assert len(CONDITIONS_BY_CODE) == len(CONDITIONS)


def test_conditions_label_contraindications_are_absolute_and_all_others_relative() -> None:
    # Act
    absolute = {c.code for c in CONDITIONS if c.severity == Severity.ABSOLUTE}
    relative = {c.code for c in CONDITIONS if c.severity == Severity.RELATIVE}

    # Assert
    assert absolute == set(ABSOLUTE_CODES)
    assert relative == {c.code for c in CONDITIONS} - set(ABSOLUTE_CODES)


def test_default_second_signature_codes_all_exist_and_are_relative() -> None:
    # Assert
    for code in DEFAULT_SECOND_SIGNATURE_CODES:
        assert code in CONDITIONS_BY_CODE
        assert CONDITIONS_BY_CODE[code].severity == Severity.RELATIVE


@pytest.mark.parametrize("medication", MEDICATION_CLASSES, ids=[m.code for m in MEDICATION_CLASSES])
def test_medication_classes_with_an_interaction_have_a_source(medication: Any) -> None:
    # Assert
    assert medication.label.strip()
    if medication.interaction:
        assert medication.source


def test_medication_classes_codes_are_unique() -> None:
    # Assert
    assert len(MEDICATION_CLASSES_BY_CODE) == len(MEDICATION_CLASSES)


def test_medication_classes_rems_classes_are_exactly_the_monitoring_form_five() -> None:
    # Act
    rems = {m.code for m in MEDICATION_CLASSES if m.rems_class}

    # Assert
    assert rems == REMS_CLASSES


def test_medication_classes_without_interaction_are_antidepressant_lithium_other() -> None:
    # Act
    quiet = {m.code for m in MEDICATION_CLASSES if not m.interaction}

    # Assert
    assert quiet == set(NON_INTERACTING_CLASSES)


# --- medication_flags ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", INTERACTING_CLASSES)
def test_medication_flags_one_precaution_for_an_interacting_class(code: str) -> None:
    # Arrange
    medication = MEDICATION_CLASSES_BY_CODE[code]

    # Act
    reasons = medication_flags([code])

    # Assert
    assert reasons == [
        Reason(
            f"interaction.{code}",
            ReasonKind.PRECAUTION,
            f"{medication.label}: {medication.interaction}",
            medication.source,
        )
    ]


@pytest.mark.parametrize("code", [*NON_INTERACTING_CLASSES, "not_a_class"])
def test_medication_flags_none_for_class_without_interaction(code: str) -> None:
    # Act
    reasons = medication_flags([code])

    # Assert
    assert reasons == []


def test_medication_flags_are_deduplicated_and_sorted() -> None:
    # Arrange
    classes = ["opioid", "lithium", "benzodiazepine", "opioid", "antidepressant", "benzodiazepine", "maoi"]

    # Act
    reasons = medication_flags(classes)

    # Assert
    assert rules_of(reasons) == ["interaction.benzodiazepine", "interaction.maoi", "interaction.opioid"]


def test_medication_flags_empty_list_gives_none() -> None:
    # Act / Assert
    assert medication_flags([]) == []


def test_medication_flags_every_class_gives_one_per_interacting_class() -> None:
    # Act
    reasons = medication_flags(m.code for m in MEDICATION_CLASSES)

    # Assert
    assert rules_of(reasons) == [f"interaction.{code}" for code in sorted(INTERACTING_CLASSES)]
    assert all(reason.kind == ReasonKind.PRECAUTION for reason in reasons)


# --- route_error -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "route", "expected"),
    [
        ("esketamine", "intranasal", None),
        ("esketamine", "iv", "Esketamine (Spravato) is not given by the intravenous route."),
        ("esketamine", "im", "Esketamine (Spravato) is not given by the intramuscular route."),
        ("esketamine", "sublingual", "Esketamine (Spravato) is not given by the sublingual route."),
        ("esketamine", "oral", "Esketamine (Spravato) is not given by the oral route."),
        ("ketamine", "iv", None),
        ("ketamine", "im", None),
        ("ketamine", "sublingual", None),
        ("ketamine", "oral", None),
        ("ketamine", "intranasal", "Racemic ketamine is not given by the nasal spray route."),
        (None, "iv", None),
        ("ketamine", None, None),
        ("", "", None),
    ],
)
def test_route_error_for_agent_and_route(agent: str | None, route: str | None, expected: str | None) -> None:
    # Act / Assert
    assert route_error(agent, route) == expected


def test_agent_routes_esketamine_only_intranasal() -> None:
    # Assert
    assert AGENT_ROUTES[Agent.ESKETAMINE] == {"intranasal"}
    assert AGENT_ROUTES[Agent.RACEMIC_KETAMINE] == {"iv", "im", "sublingual", "oral"}


# --- missing_parts ---------------------------------------------------------------------------------


def test_missing_parts_complete_facts_give_none() -> None:
    # Act / Assert
    assert missing_parts(complete_facts()) == []


def _without_score(instrument: Instrument) -> dict[str, Any]:
    scores = {key: value for key, value in zero_scores().items() if key != instrument}
    return {"scores": scores}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"current_crisis": None}, STABILITY_MESSAGE),
        ({"housing_stable": None}, STABILITY_MESSAGE),
        ({"has_support_person": None}, STABILITY_MESSAGE),
        ({"escort_available": None}, STABILITY_MESSAGE),
        ({"agent": None}, AGENT_ROUTE_MESSAGE),
        ({"agent": ""}, AGENT_ROUTE_MESSAGE),
        ({"route": None}, AGENT_ROUTE_MESSAGE),
        ({"agent": Agent.ESKETAMINE, "route": Route.IV}, MATCHING_ROUTE_MESSAGE),
        ({"route": Route.INTRANASAL}, MATCHING_ROUTE_MESSAGE),
        ({"systolic": None}, VITALS_MESSAGE),
        ({"diastolic": None}, VITALS_MESSAGE),
        ({"heart_rate": None}, VITALS_MESSAGE),
        ({"weight_kg": None}, VITALS_MESSAGE),
        ({"history_reviewed": False}, HISTORY_MESSAGE),
        ({"medications_reviewed": False}, MEDICATIONS_MESSAGE),
        (_without_score(Instrument.PHQ9), "Outcome measure: PHQ-9 (depression)."),
        (_without_score(Instrument.GAD7), "Outcome measure: GAD-7 (anxiety)."),
        (_without_score(Instrument.PCL5), "Outcome measure: PCL-5 (PTSD)."),
        (_without_score(Instrument.DES2), "Outcome measure: DES-II (dissociation)."),
        (_without_score(Instrument.CSSRS), "Outcome measure: C-SSRS screener (suicide risk)."),
    ],
    ids=[
        "current_crisis",
        "housing_stable",
        "has_support_person",
        "escort_available",
        "agent_none",
        "agent_blank",
        "route_none",
        "esketamine_iv",
        "ketamine_intranasal",
        "systolic",
        "diastolic",
        "heart_rate",
        "weight_kg",
        "history_reviewed",
        "medications_reviewed",
        "phq9",
        "gad7",
        "pcl5",
        "des2",
        "cssrs",
    ],
)
def test_missing_parts_names_each_missing_part(changes: dict[str, Any], message: str) -> None:
    # Arrange
    facts = replace(complete_facts(), **changes)

    # Act
    missing = missing_parts(facts)

    # Assert
    assert missing == [message]


def test_missing_parts_nothing_recorded_lists_every_part_in_form_order() -> None:
    # Arrange
    facts = AssessmentFacts(
        agent=None,
        route=None,
        age_years=None,
        current_crisis=None,
        housing_stable=None,
        has_support_person=None,
        escort_available=None,
        systolic=None,
        diastolic=None,
        heart_rate=None,
        weight_kg=None,
        history_reviewed=False,
        medications_reviewed=False,
    )

    # Act
    missing = missing_parts(facts)

    # Assert
    assert missing == [
        STABILITY_MESSAGE,
        AGENT_ROUTE_MESSAGE,
        VITALS_MESSAGE,
        HISTORY_MESSAGE,
        MEDICATIONS_MESSAGE,
        "Outcome measure: PHQ-9 (depression).",
        "Outcome measure: GAD-7 (anxiety).",
        "Outcome measure: PCL-5 (PTSD).",
        "Outcome measure: DES-II (dissociation).",
        "Outcome measure: C-SSRS screener (suicide risk).",
    ]


def test_missing_parts_stability_answered_false_is_not_missing() -> None:
    # Arrange
    facts = replace(
        complete_facts(),
        current_crisis=True,
        housing_stable=False,
        has_support_person=False,
        escort_available=False,
    )

    # Act / Assert
    assert missing_parts(facts) == []


# --- propose ---------------------------------------------------------------------------------------


def test_propose_nothing_to_flag_is_eligible_without_reasons() -> None:
    # Act
    proposal = propose(complete_facts(), Thresholds())

    # Assert
    assert proposal.decision == Decision.ELIGIBLE
    assert proposal.reasons == ()
    assert proposal.blockers == ()
    assert proposal.precautions == ()


@pytest.mark.parametrize("code", ABSOLUTE_CODES)
def test_propose_absolute_condition_is_not_eligible_with_blocker(code: str) -> None:
    # Arrange
    facts = replace(complete_facts(), condition_codes=frozenset({code}))
    condition = CONDITIONS_BY_CODE[code]

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.NOT_ELIGIBLE
    assert proposal.reasons == (
        Reason(
            f"condition.{code}",
            ReasonKind.BLOCKER,
            f"Absolute contraindication: {condition.label}. {condition.explanation}",
            condition.source,
        ),
    )
    assert proposal.reasons[0].source
    assert proposal.blockers == proposal.reasons


@pytest.mark.parametrize("code", RELATIVE_CODES)
def test_propose_relative_condition_is_eligible_with_precautions(code: str) -> None:
    # Arrange
    facts = replace(complete_facts(), condition_codes=frozenset({code}))
    condition = CONDITIONS_BY_CODE[code]

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.ELIGIBLE_WITH_PRECAUTIONS
    assert proposal.reasons == (
        Reason(
            f"condition.{code}",
            ReasonKind.PRECAUTION,
            f"Relative contraindication: {condition.label}. {condition.explanation}",
            condition.source,
        ),
    )
    assert proposal.precautions == proposal.reasons
    assert proposal.blockers == ()


def test_propose_unknown_condition_code_is_ignored() -> None:
    # Arrange
    facts = replace(complete_facts(), condition_codes=frozenset({"not_a_condition"}))

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.ELIGIBLE
    assert proposal.reasons == ()


def test_propose_current_crisis_is_not_eligible() -> None:
    # Arrange
    facts = replace(complete_facts(), current_crisis=True)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.NOT_ELIGIBLE
    assert rules_of(proposal.blockers) == ["stability.current_crisis"]
    assert proposal.reasons[0].source


@pytest.mark.parametrize(
    ("field_name", "rule"),
    [
        ("housing_stable", "stability.housing"),
        ("has_support_person", "stability.support_person"),
        ("escort_available", "stability.escort"),
    ],
)
def test_propose_missing_stability_support_is_precaution(field_name: str, rule: str) -> None:
    # Arrange
    changes: dict[str, Any] = {field_name: False}
    facts = replace(complete_facts(), **changes)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.ELIGIBLE_WITH_PRECAUTIONS
    assert rules_of(proposal.reasons) == [rule]
    assert proposal.reasons[0].kind == ReasonKind.PRECAUTION
    assert proposal.reasons[0].source


@pytest.mark.parametrize(
    ("systolic", "diastolic", "flagged"),
    [(140, 90, False), (141, 90, True), (140, 91, True), (139, 89, False), (180, 110, True)],
)
def test_propose_baseline_bp_above_default_threshold_is_precaution(
    systolic: int, diastolic: int, flagged: bool
) -> None:
    # Arrange
    facts = replace(complete_facts(), systolic=systolic, diastolic=diastolic)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert rules_of(proposal.reasons) == (["vitals.baseline_bp"] if flagged else [])
    assert proposal.decision == (Decision.ELIGIBLE_WITH_PRECAUTIONS if flagged else Decision.ELIGIBLE)


def test_propose_baseline_bp_reason_names_reading_and_threshold() -> None:
    # Arrange
    facts = replace(complete_facts(), systolic=141, diastolic=90)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.reasons[0].kind == ReasonKind.PRECAUTION
    assert proposal.reasons[0].text.startswith("Baseline blood pressure 141/90 is above the clinic's 140/90")


@pytest.mark.parametrize(
    ("systolic", "diastolic", "flagged"),
    [(150, 95, False), (160, 100, False), (161, 100, True), (160, 101, True)],
)
def test_propose_custom_bp_thresholds_are_respected(systolic: int, diastolic: int, flagged: bool) -> None:
    # Arrange
    facts = replace(complete_facts(), systolic=systolic, diastolic=diastolic)
    thresholds = Thresholds(systolic=160, diastolic=100)

    # Act
    proposal = propose(facts, thresholds)

    # Assert
    assert rules_of(proposal.reasons) == (["vitals.baseline_bp"] if flagged else [])
    if flagged:
        assert "160/100" in proposal.reasons[0].text


@pytest.mark.parametrize(
    ("agent", "route", "age", "flagged"),
    [
        (Agent.ESKETAMINE, Route.INTRANASAL, 64, False),
        (Agent.ESKETAMINE, Route.INTRANASAL, 65, True),
        (Agent.ESKETAMINE, Route.INTRANASAL, 80, True),
        (Agent.ESKETAMINE, Route.INTRANASAL, None, False),
        (Agent.RACEMIC_KETAMINE, Route.IV, 70, False),
    ],
)
def test_propose_esketamine_at_65_or_over_is_dose_precaution(
    agent: Agent, route: Route, age: int | None, flagged: bool
) -> None:
    # Arrange
    facts = replace(complete_facts(), agent=agent, route=route, age_years=age)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert rules_of(proposal.reasons) == (["dose.esketamine_65"] if flagged else [])
    assert proposal.decision == (Decision.ELIGIBLE_WITH_PRECAUTIONS if flagged else Decision.ELIGIBLE)


def test_propose_interacting_medications_are_precautions() -> None:
    # Arrange
    facts = replace(complete_facts(), medication_classes=("opioid", "lithium", "benzodiazepine"))

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.ELIGIBLE_WITH_PRECAUTIONS
    assert rules_of(proposal.reasons) == ["interaction.benzodiazepine", "interaction.opioid"]


def test_propose_non_interacting_medications_add_nothing() -> None:
    # Arrange
    facts = replace(complete_facts(), medication_classes=NON_INTERACTING_CLASSES)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.ELIGIBLE
    assert proposal.reasons == ()


def test_propose_cssrs_high_is_not_eligible_blocker() -> None:
    # Arrange
    facts = with_score(complete_facts(), Instrument.CSSRS, CSSRS_HIGH)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.NOT_ELIGIBLE
    assert rules_of(proposal.blockers) == ["measure.cssrs_high"]
    assert proposal.reasons[0].source == MEASURE_REASON_SOURCES["cssrs_high"]
    assert proposal.reasons[0].source.references[0].source == sources.CSSRS


@pytest.mark.parametrize(
    ("instrument", "answers", "rule"),
    [
        (Instrument.PHQ9, [0] * 8 + [1], "measure.phq9_item9"),
        (Instrument.CSSRS, CSSRS_MODERATE, "measure.cssrs_moderate"),
        (Instrument.DES2, [30] * 28, "measure.des2_high"),
    ],
)
def test_propose_measure_flags_that_are_precautions(instrument: Instrument, answers: Any, rule: str) -> None:
    # Arrange
    facts = with_score(complete_facts(), instrument, answers)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.ELIGIBLE_WITH_PRECAUTIONS
    assert rules_of(proposal.reasons) == [rule]
    assert proposal.reasons[0].kind == ReasonKind.PRECAUTION
    assert proposal.reasons[0].source == MEASURE_REASON_SOURCES[rule.removeprefix("measure.")]
    assert (
        proposal.reasons[0].source.references[0].source == INSTRUMENTS[instrument].source.references[0].source
    )


@pytest.mark.parametrize(
    ("instrument", "answers", "flag"),
    [
        (Instrument.GAD7, [3] * 7, "gad7_evaluate"),
        (Instrument.PCL5, [4] * 20, "pcl5_provisional_dx"),
        (Instrument.PHQ9, [3] * 8 + [0], None),
        (Instrument.DES2, [30] * 27 + [20], None),
        (Instrument.CSSRS, {"q1": True, "q2": False, "q6_lifetime": False}, None),
    ],
    ids=["gad7_evaluate", "pcl5_provisional_dx", "phq9_severe_item9_zero", "des2_29_6", "cssrs_low"],
)
def test_propose_measures_without_eligibility_flags_give_no_reason(
    instrument: Instrument, answers: Any, flag: str | None
) -> None:
    # Arrange
    facts = with_score(complete_facts(), instrument, answers)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert flag_codes(facts.scores[instrument]) == ([flag] if flag else [])
    assert proposal.decision == Decision.ELIGIBLE
    assert proposal.reasons == ()


def test_propose_blocker_with_precautions_is_not_eligible_listing_every_reason() -> None:
    # Arrange
    facts = replace(
        complete_facts(),
        agent=Agent.ESKETAMINE,
        route=Route.INTRANASAL,
        age_years=70,
        condition_codes=frozenset({"intracerebral_haemorrhage", "psychosis_history"}),
        housing_stable=False,
        systolic=150,
        medication_classes=("benzodiazepine",),
    )
    facts = with_score(facts, Instrument.PHQ9, [0] * 8 + [2])
    facts = with_score(facts, Instrument.DES2, [40] * 28)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.NOT_ELIGIBLE
    assert rules_of(proposal.reasons) == [
        "condition.intracerebral_haemorrhage",
        "condition.psychosis_history",
        "stability.housing",
        "vitals.baseline_bp",
        "dose.esketamine_65",
        "interaction.benzodiazepine",
        "measure.phq9_item9",
        "measure.des2_high",
    ]
    assert rules_of(proposal.blockers) == ["condition.intracerebral_haemorrhage"]
    assert len(proposal.precautions) == 7
    assert all(reason.source for reason in proposal.reasons)


def test_propose_several_blockers_are_all_listed() -> None:
    # Arrange
    facts = replace(complete_facts(), current_crisis=True, condition_codes=frozenset(ABSOLUTE_CODES))
    facts = with_score(facts, Instrument.CSSRS, CSSRS_HIGH)

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.NOT_ELIGIBLE
    assert rules_of(proposal.blockers) == [
        "condition.aneurysmal_vascular_disease",
        "condition.intracerebral_haemorrhage",
        "condition.ketamine_hypersensitivity",
        "stability.current_crisis",
        "measure.cssrs_high",
    ]
    assert proposal.precautions == ()


def test_propose_reason_as_dict_gives_plain_strings() -> None:
    # Arrange
    facts = replace(complete_facts(), escort_available=False)

    # Act
    reason = propose(facts, Thresholds()).reasons[0]

    # Assert
    assert reason.as_dict() == {
        "rule": "stability.escort",
        "kind": "precaution",
        "text": reason.text,
        "source": reason.source.text,
        "source_url": reason.source.url,
    }
    assert reason.as_dict()["source"].startswith("Royal College of Emergency Medicine")


@given(
    codes=st.frozensets(st.sampled_from([c.code for c in CONDITIONS])),
    crisis=st.booleans(),
    classes=st.lists(st.sampled_from([m.code for m in MEDICATION_CLASSES]), max_size=5),
)
def test_propose_decision_follows_from_the_kinds_of_reason(
    codes: frozenset[str], crisis: bool, classes: list[str]
) -> None:
    # Arrange
    facts = replace(
        complete_facts(), condition_codes=codes, current_crisis=crisis, medication_classes=tuple(classes)
    )
    has_blocker = crisis or bool(codes & set(ABSOLUTE_CODES))
    has_precaution = bool(codes - set(ABSOLUTE_CODES)) or bool(set(classes) & set(INTERACTING_CLASSES))

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    if has_blocker:
        assert proposal.decision == Decision.NOT_ELIGIBLE
    elif has_precaution:
        assert proposal.decision == Decision.ELIGIBLE_WITH_PRECAUTIONS
    else:
        assert proposal.decision == Decision.ELIGIBLE
    assert [r.rule for r in proposal.reasons if r.rule.startswith("condition.")] == [
        f"condition.{code}" for code in sorted(codes)
    ]


# --- signature_problem -----------------------------------------------------------------------------


@pytest.mark.parametrize("decision", list(Decision))
def test_signature_problem_same_as_proposal_needs_no_reason(decision: Decision) -> None:
    # Act / Assert
    assert signature_problem(proposal=decision, decision=str(decision), reason="") is None


@pytest.mark.parametrize("reason", ["", "   ", "\n\t "])
def test_signature_problem_different_decision_without_reason_is_refused(reason: str) -> None:
    # Act
    problem = signature_problem(proposal=Decision.ELIGIBLE, decision="not_eligible", reason=reason)

    # Assert
    assert problem == "The rules propose 'Eligible'. To decide 'Not eligible', write the reason."


def test_signature_problem_override_of_not_eligible_without_reason_names_both() -> None:
    # Act
    problem = signature_problem(
        proposal=Decision.NOT_ELIGIBLE, decision="eligible_with_precautions", reason=""
    )

    # Assert
    assert problem == (
        "The rules propose 'Not eligible'. To decide 'Eligible with precautions', write the reason."
    )


def test_signature_problem_different_decision_with_reason_is_accepted() -> None:
    # Act / Assert
    assert (
        signature_problem(
            proposal=Decision.NOT_ELIGIBLE, decision="eligible", reason="Cardiology cleared it."
        )
        is None
    )


@pytest.mark.parametrize("decision", ["", "maybe", "ELIGIBLE", "Eligible"])
def test_signature_problem_invalid_decision_asks_to_choose(decision: str) -> None:
    # Act / Assert
    assert signature_problem(proposal=Decision.ELIGIBLE, decision=decision, reason="Because.") == (
        "Choose a decision."
    )


# --- second_signature_reasons ----------------------------------------------------------------------

PSYCHOSIS_SECOND_SIGNATURE = (
    "Psychotic disorder, current or past needs a second prescriber's signature (clinic setting)."
)
OVERRIDE_SECOND_SIGNATURE = (
    "Deciding eligible against a 'not eligible' proposal needs a second prescriber's signature."
)


@pytest.mark.parametrize("decision", ["eligible", "eligible_with_precautions"])
def test_second_signature_reasons_listed_condition_with_eligible_decision(decision: str) -> None:
    # Act
    reasons = second_signature_reasons(
        proposal=Decision.ELIGIBLE_WITH_PRECAUTIONS,
        decision=decision,
        condition_codes=["psychosis_history", "brain_injury"],
        second_signature_codes=DEFAULT_SECOND_SIGNATURE_CODES,
    )

    # Assert
    assert reasons == [PSYCHOSIS_SECOND_SIGNATURE]


def test_second_signature_reasons_not_eligible_decision_needs_none() -> None:
    # Act
    reasons = second_signature_reasons(
        proposal=Decision.NOT_ELIGIBLE,
        decision="not_eligible",
        condition_codes=["psychosis_history", "intracerebral_haemorrhage"],
        second_signature_codes=DEFAULT_SECOND_SIGNATURE_CODES,
    )

    # Assert
    assert reasons == []


def test_second_signature_reasons_invalid_decision_needs_none() -> None:
    # Act / Assert
    assert (
        second_signature_reasons(
            proposal=Decision.NOT_ELIGIBLE,
            decision="maybe",
            condition_codes=["psychosis_history"],
            second_signature_codes=DEFAULT_SECOND_SIGNATURE_CODES,
        )
        == []
    )


@pytest.mark.parametrize("decision", ["eligible", "eligible_with_precautions"])
def test_second_signature_reasons_overriding_not_eligible_proposal(decision: str) -> None:
    # Act
    reasons = second_signature_reasons(
        proposal=Decision.NOT_ELIGIBLE,
        decision=decision,
        condition_codes=[],
        second_signature_codes=DEFAULT_SECOND_SIGNATURE_CODES,
    )

    # Assert
    assert reasons == [OVERRIDE_SECOND_SIGNATURE]


def test_second_signature_reasons_condition_not_in_clinic_list_needs_none() -> None:
    # Act
    reasons = second_signature_reasons(
        proposal=Decision.ELIGIBLE_WITH_PRECAUTIONS,
        decision="eligible_with_precautions",
        condition_codes=["substance_use_history", "brain_injury"],
        second_signature_codes=DEFAULT_SECOND_SIGNATURE_CODES,
    )

    # Assert
    assert reasons == []


def test_second_signature_reasons_clinic_list_replaces_the_default() -> None:
    # Act
    reasons = second_signature_reasons(
        proposal=Decision.ELIGIBLE_WITH_PRECAUTIONS,
        decision="eligible_with_precautions",
        condition_codes=["psychosis_history", "brain_injury"],
        second_signature_codes=["brain_injury", "not_a_condition"],
    )

    # Assert
    assert reasons == ["Brain injury needs a second prescriber's signature (clinic setting)."]


def test_second_signature_reasons_all_listed_conditions_then_override_in_order() -> None:
    # Act
    reasons = second_signature_reasons(
        proposal=Decision.NOT_ELIGIBLE,
        decision="eligible_with_precautions",
        condition_codes=[
            "pregnancy_or_breastfeeding",
            "active_substance_use",
            "psychosis_history",
            "psychosis_history",
        ],
        second_signature_codes=DEFAULT_SECOND_SIGNATURE_CODES,
    )

    # Assert
    assert reasons == [
        "Active substance use disorder (abstinent less than a year) needs a second prescriber's signature "
        "(clinic setting).",
        "Pregnant, planning pregnancy, or breastfeeding needs a second prescriber's signature "
        "(clinic setting).",
        PSYCHOSIS_SECOND_SIGNATURE,
        OVERRIDE_SECOND_SIGNATURE,
    ]


# --- screening_is_current --------------------------------------------------------------------------

SIGNED_AT = dt.datetime(2025, 3, 10, 14, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("now", "current"),
    [
        (SIGNED_AT, True),
        (SIGNED_AT + dt.timedelta(days=90) - dt.timedelta(seconds=1), True),
        (SIGNED_AT + dt.timedelta(days=90), False),
        (SIGNED_AT + dt.timedelta(days=91), False),
    ],
    ids=["at_signature", "one_second_before_expiry", "exactly_valid_days", "a_day_after"],
)
def test_screening_is_current_until_exactly_valid_days(now: dt.datetime, current: bool) -> None:
    # Act / Assert
    valid_until = screening_valid_until(signed_at=SIGNED_AT, valid_days=90)
    assert screening_is_current(valid_until=valid_until, now=now) is current


@given(valid_days=st.integers(1, 3650), seconds=st.integers(-(10**9), 10**9))
def test_screening_is_current_matches_elapsed_time(valid_days: int, seconds: int) -> None:
    # Arrange
    now = SIGNED_AT + dt.timedelta(seconds=seconds)

    # Act
    current = screening_is_current(
        valid_until=screening_valid_until(signed_at=SIGNED_AT, valid_days=valid_days), now=now
    )

    # Assert
    assert current is (seconds < valid_days * 86400)


# --- age_on ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date_of_birth", "day", "age"),
    [
        (dt.date(1960, 6, 15), dt.date(2025, 6, 14), 64),
        (dt.date(1960, 6, 15), dt.date(2025, 6, 15), 65),
        (dt.date(1960, 6, 15), dt.date(2025, 12, 31), 65),
        (dt.date(1960, 6, 15), dt.date(1960, 6, 15), 0),
        (dt.date(2000, 2, 29), dt.date(2025, 2, 28), 24),
        (dt.date(2000, 2, 29), dt.date(2025, 3, 1), 25),
        (dt.date(2000, 2, 29), dt.date(2024, 2, 29), 24),
    ],
    ids=[
        "day_before_birthday",
        "on_birthday",
        "year_end",
        "day_of_birth",
        "leapling_feb_28",
        "leapling_mar_1",
        "leapling_leap_year",
    ],
)
def test_age_on_birthday_edge(date_of_birth: dt.date, day: dt.date, age: int) -> None:
    # Act / Assert
    assert age_on(date_of_birth, day) == age


@given(
    date_of_birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)),
    days=st.integers(0, 40000),
)
def test_age_on_counts_completed_birthdays(date_of_birth: dt.date, days: int) -> None:
    # Arrange
    day = date_of_birth + dt.timedelta(days=days)

    # Act
    age = age_on(date_of_birth, day)

    # Assert: the last birthday reached is on or before `day`, the next one after it.
    def birthday(years: int) -> dt.date:
        year = date_of_birth.year + years
        try:
            return date_of_birth.replace(year=year)
        except ValueError:  # 29 February in a common year: the birthday counts from 1 March.
            return dt.date(year, 3, 1)

    assert age >= 0
    assert birthday(age) <= day < birthday(age + 1)
