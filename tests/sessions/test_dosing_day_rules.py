"""The dosing day's rules, table by table: times a user may enter, discharge as the label and REMS ask,
and the monitoring form's three distinct blood pressures. Every unmet criterion has a code, a message
that says what to do, and a clinical source."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from sessions.record import rules

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def minutes(offset: float) -> dt.datetime:
    return NOW + dt.timedelta(minutes=offset)


# --- Times entered by hand ----------------------------------------------------------------------------

WINDOW = rules.EntryWindow(
    now=NOW,
    floor=minutes(-30),
    floor_code="before_pre_dose_reading",
    floor_text="the pre-dose blood pressure (11:30)",
    late_minutes=10,
)


@pytest.mark.parametrize(
    ("entered", "code"),
    [
        (minutes(0), None),
        (minutes(-10), None),  # as far back as the clinic allows
        (minutes(-10.5), "too_late"),
        (minutes(-150), "before_pre_dose_reading"),  # the API's dose two and a half hours back
        (minutes(0.5), "future"),
        (dt.datetime(1, 1, 1, tzinfo=dt.UTC), "before_pre_dose_reading"),  # the date that broke the page
        (dt.datetime(9999, 12, 31, tzinfo=dt.UTC), "future"),
    ],
)
def test_an_entered_time_lies_between_what_it_follows_and_now(entered: dt.datetime, code: str | None) -> None:
    problem = rules.entry_time_problem(entered, WINDOW)
    assert (problem.code if problem else None) == code
    if problem is not None:
        assert problem.source == rules.SOURCE_RECORDS
        assert problem.message


def test_the_floor_wins_over_the_late_limit() -> None:
    """A time before the pre-dose reading is refused as such, even when it is within the late limit."""
    window = dataclasses.replace(WINDOW, floor=minutes(-3))
    problem = rules.entry_time_problem(minutes(-5), window)
    assert problem is not None
    assert problem.code == "before_pre_dose_reading"
    assert "the pre-dose blood pressure (11:30)" in problem.message


@pytest.mark.parametrize(
    ("entered", "late"),
    [(minutes(0), False), (minutes(-2), False), (minutes(-2.1), True), (minutes(-9), True)],
)
def test_an_entry_more_than_two_minutes_old_is_late(entered: dt.datetime, late: bool) -> None:
    assert rules.is_late_entry(entered, NOW) is late


@pytest.mark.parametrize(
    ("typed", "now", "meant"),
    [
        (dt.time(11, 55), NOW, minutes(-5)),
        (dt.time(12, 5), NOW, minutes(5)),  # a little ahead stays ahead, and is refused as future
        (
            dt.time(23, 58),
            dt.datetime(2026, 11, 24, 0, 5, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 23, 23, 58, tzinfo=dt.UTC),
        ),
    ],
)
def test_a_time_of_day_means_its_latest_occurrence(
    typed: dt.time, now: dt.datetime, meant: dt.datetime
) -> None:
    assert rules.time_of_day_to_instant(typed, now) == meant


@pytest.mark.parametrize(
    ("dose", "devices"), [(28, 1), (56, 2), (84, 3), (112, None), (50, None), (0, None), (14, None)]
)
def test_esketamine_doses_are_whole_devices(dose: float, devices: int | None) -> None:
    assert rules.esketamine_planned_devices(dose) == devices


def test_devices_are_five_minutes_apart() -> None:
    assert rules.device_gap_problem(previous=minutes(-5), given_at=NOW) is None
    gap = rules.device_gap_problem(previous=minutes(-4), given_at=NOW)
    assert gap is not None
    assert gap.code == "device_gap"
    assert gap.source == rules.SOURCE_LABEL_DEVICES


# --- Discharge ----------------------------------------------------------------------------------------


def reading(offset: float, systolic: int | None, diastolic: int | None, *, flagged: bool = False) -> Any:
    return rules.TimedReading(minutes(offset), systolic, diastolic, flagged)


READY = rules.DischargeState(
    now=NOW,
    dose_started_at=minutes(-130),
    observation_from=minutes(-125),
    esketamine=False,
    minimum_minutes=90,
    baseline=(130, 85),
    readings=(reading(-90, 140, 88), reading(-5, 128, 82)),
    limits=rules.DischargeLimits(),
    bp_review_at=None,
    last_moaas=5,
    last_cadss=0,
    dissociation_resolved=False,
    alert_and_oriented=True,
    escort_present=True,
)

DISCHARGE_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("every criterion met", {}, []),
    ("no dose recorded", {"dose_started_at": None}, ["dose_not_recorded"]),
    ("the dose's end not recorded", {"observation_from": None}, ["dose_end_not_recorded"]),
    (
        "observation counted from the end of the dose",
        {"observation_from": minutes(-80)},
        ["observation_time"],
    ),
    (
        "esketamine: two hours from the last device",
        {"esketamine": True, "minimum_minutes": 120, "observation_from": minutes(-119)},
        ["observation_time"],
    ),
    ("no blood pressure after the dose", {"readings": ()}, ["discharge_bp_missing"]),
    (
        "heart rate alone after the dose",
        {"readings": (reading(-5, None, None),)},
        ["discharge_bp_missing"],
    ),
    (
        "196/118 followed by a heart-rate-only reading",
        {"readings": (reading(-10, 196, 118, flagged=True), reading(-5, None, None))},
        ["out_of_range_since", "discharge_bp_above_limit", "bp_rise_review"],
    ),
    (
        "an out-of-range heart rate after the last blood pressure",
        {"readings": (reading(-8, 128, 82), reading(-3, None, None, flagged=True))},
        ["out_of_range_since"],
    ),
    (
        "a normal blood pressure after the out-of-range one",
        {"readings": (reading(-12, 150, 95, flagged=True), reading(-3, 128, 82))},
        [],
    ),
    (
        "the last blood pressure is older than the window",
        {"readings": (reading(-16, 128, 82),)},
        ["discharge_bp_stale"],
    ),
    (
        "baseline 130/85, 175/108 at 40 minutes, discharge at 125",
        {"readings": (reading(-85, 175, 108),)},
        ["discharge_bp_stale", "bp_rise_review"],
    ),
    (
        "the rise reviewed by a prescriber after it",
        {"readings": (reading(-85, 175, 108), reading(-5, 128, 82)), "bp_review_at": minutes(-60)},
        [],
    ),
    (
        "a review signed before the rise does not cover it",
        {"readings": (reading(-85, 175, 108), reading(-5, 128, 82)), "bp_review_at": minutes(-90)},
        ["bp_rise_review"],
    ),
    (
        "a rise entered after the review, timed before it, was never reviewed",
        {
            "readings": (
                rules.TimedReading(minutes(-85), 175, 108, False, entered_at=minutes(-30)),
                reading(-5, 128, 82),
            ),
            "bp_review_at": minutes(-60),
        },
        ["bp_rise_review"],
    ),
    (
        "a diastolic rise alone reaches the margin",
        {"readings": (reading(-60, 150, 110), reading(-5, 128, 82))},
        ["bp_rise_review"],
    ),
    (
        "a rise just under the margin",
        {"readings": (reading(-60, 169, 109), reading(-5, 128, 82))},
        [],
    ),
    (
        "above the clinic's discharge limit",
        {"readings": (reading(-5, 182, 100),), "baseline": (150, 90)},
        ["discharge_bp_above_limit"],
    ),
    ("sedation not rated after the dose", {"last_moaas": None}, ["sedation_not_rated"]),
    ("still sedated", {"last_moaas": 4}, ["sedation_unresolved"]),
    ("dissociation not rated or recorded", {"last_cadss": None}, ["dissociation_unresolved"]),
    ("still dissociated", {"last_cadss": 6}, ["dissociation_unresolved"]),
    ("the clinician records dissociation resolved", {"last_cadss": 6, "dissociation_resolved": True}, []),
    (
        "not alert, no escort",
        {"alert_and_oriented": False, "escort_present": False},
        ["not_alert", "escort_absent"],
    ),
]


@pytest.mark.parametrize(("case", "changes", "codes"), DISCHARGE_CASES, ids=[c[0] for c in DISCHARGE_CASES])
def test_discharge_criteria(case: str, changes: dict[str, Any], codes: list[str]) -> None:
    missing = rules.discharge_missing(dataclasses.replace(READY, **changes))
    assert [criterion.code for criterion in missing] == codes
    for criterion in missing:
        assert criterion.message.endswith(".")
        assert criterion.source


def test_discharge_criteria_cite_the_label_rems_and_rcem() -> None:
    unmet = dataclasses.replace(
        READY,
        observation_from=minutes(-10),
        readings=(reading(-85, 175, 108),),
        last_moaas=3,
        last_cadss=4,
        alert_and_oriented=False,
    )
    sources = {criterion.code: criterion.source for criterion in rules.discharge_missing(unmet)}
    assert sources == {
        "observation_time": rules.SOURCE_REMS_MONITORING,
        "discharge_bp_stale": rules.SOURCE_LABEL_BP,
        "bp_rise_review": rules.SOURCE_LABEL_BP_RISE,
        "sedation_unresolved": rules.SOURCE_MOAAS,
        "dissociation_unresolved": rules.SOURCE_CADSS,
        "not_alert": rules.SOURCE_RCEM,
    }


def test_the_rise_message_says_what_to_do() -> None:
    state = dataclasses.replace(READY, readings=(reading(-85, 175, 108), reading(-5, 128, 82)))
    (criterion,) = rules.discharge_missing(state)
    assert criterion.message == (
        "Blood pressure rose to 175/108 at 10:35 from 130/85 before the dose (the clinic reviews a rise of "
        "40/25 or more): a prescriber must review it and sign with a reason before discharge."
    )


# --- The REMS monitoring form -------------------------------------------------------------------------

FIRST_DEVICE = minutes(-130)


def after_device(offset: float, systolic: int = 130, diastolic: int = 80) -> rules.TimedReading:
    return rules.TimedReading(FIRST_DEVICE + dt.timedelta(minutes=offset), systolic, diastolic, False)


PMF_CASES: list[tuple[str, list[float], float | None, tuple[float | None, float | None]]] = [
    # (case, readings' minutes after the first device, discharge minute, (40-minute, pre-discharge) picked)
    ("one reading at 40 minutes, discharge at 125", [40], 125, (40, None)),
    ("one reading just before discharge", [118], 125, (None, 118)),
    ("one reading fits both: it fills one slot", [45], 55, (None, 45)),
    ("a reading for each", [40, 120], 125, (40, 120)),
    ("none between 30 and 50 minutes", [29, 51, 121], 125, (None, 121)),
    ("the nearest to 40 minutes", [32, 41, 122], 125, (41, 122)),
    ("not discharged yet", [40, 90], None, (40, None)),
]


@pytest.mark.parametrize(("case", "taken", "discharged", "picked"), PMF_CASES, ids=[c[0] for c in PMF_CASES])
def test_the_monitoring_forms_blood_pressures_are_three_readings(
    case: str, taken: list[float], discharged: float | None, picked: tuple[float | None, float | None]
) -> None:
    pre = after_device(-10)
    pressures = rules.pmf_blood_pressures(
        pre_dose=[pre],
        after_dose=[after_device(offset) for offset in taken],
        first_device_at=FIRST_DEVICE,
        discharged_at=FIRST_DEVICE + dt.timedelta(minutes=discharged) if discharged is not None else None,
        window_minutes=15,
    )

    def offset(chosen: rules.TimedReading | None) -> float | None:
        return None if chosen is None else (chosen.taken_at - FIRST_DEVICE).total_seconds() / 60

    assert pressures.pre_dose == pre
    assert (offset(pressures.forty_minutes), offset(pressures.pre_discharge)) == picked


COMPLETE_PMF = rules.PmfFacts(
    first_treatment=True,
    sedation=False,
    dissociation=True,
    respiratory_depression=False,
    ready_minutes=90,
    blood_pressures=rules.PmfBloodPressures(after_device(-10), after_device(40), after_device(120)),
    minutes_monitored=125,
    medications_confirmed=True,
)


@pytest.mark.parametrize(
    ("changes", "codes"),
    [
        ({}, []),
        ({"medications_confirmed": False}, ["pmf_medications"]),
        ({"sedation": None}, ["pmf_answers"]),
        ({"ready_minutes": None}, ["pmf_ready_minutes"]),
        (
            {"blood_pressures": rules.PmfBloodPressures(after_device(-10), None, after_device(120))},
            ["pmf_bp_40_minutes"],
        ),
        (
            {"blood_pressures": rules.PmfBloodPressures(None, after_device(40), None)},
            ["pmf_bp_pre_dose", "pmf_bp_pre_discharge"],
        ),
        ({"minutes_monitored": 119}, ["pmf_minutes_monitored"]),
    ],
)
def test_the_monitoring_form_is_complete_only_with_every_field(
    changes: dict[str, Any], codes: list[str]
) -> None:
    missing = rules.pmf_missing(dataclasses.replace(COMPLETE_PMF, **changes))
    assert [criterion.code for criterion in missing] == codes
    assert all(criterion.source for criterion in missing)
