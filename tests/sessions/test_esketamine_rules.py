"""The esketamine label's rules, at and around each boundary, each case with the label section it
encodes: the age on the dose's date (the 65th birthday), day 1 against later days, week 4 against week
5, the third dose or booking of an induction week, and the Readiness to Leave checklist.

Sources: US prescribing information, section 2 (recommended dosage in treatment-resistant depression);
EU/UK summary of product characteristics, section 4.2 (Table 1, adults under 65; Table 2, 65 and over);
the UK risk-minimisation materials' Readiness to Leave checklist with SmPC 4.2, 4.4 and 4.7."""

from __future__ import annotations

import datetime as dt

import pytest

from kaemdr import sources
from sessions.booking import esketamine_rules as er
from sessions.booking import rules as booking_rules

US = booking_rules.EsketamineLabel.US_PI
EU = booking_rules.EsketamineLabel.EU_UK_SMPC
DAY_ONE = dt.date(2026, 3, 2)  # a Monday


def day(n: int) -> dt.date:
    """Course day `n` (day 1 is DAY_ONE)."""
    return DAY_ONE + dt.timedelta(days=n - 1)


# --- Age on the dose's date -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (dt.date(1961, 6, 15), dt.date(2026, 6, 14), 64),  # the day before the 65th birthday
        (dt.date(1961, 6, 15), dt.date(2026, 6, 15), 65),  # the 65th birthday itself
        (dt.date(1961, 6, 15), dt.date(2026, 6, 16), 65),
        (dt.date(1961, 6, 15), dt.date(2025, 12, 31), 64),
        (dt.date(1960, 2, 29), dt.date(2025, 2, 28), 64),  # born on 29 February: not yet 65 on the 28th
        (dt.date(1960, 2, 29), dt.date(2025, 3, 1), 65),  # ... and 65 on 1 March in a year without one
        (dt.date(1960, 2, 29), dt.date(2024, 2, 29), 64),
    ],
)
def test_age_is_counted_on_the_dose_date(born: dt.date, on: dt.date, age: int) -> None:
    assert er.age_on(born, on) == age


# --- Doses allowed ---------------------------------------------------------------------------------

US_PI_2 = "US PI section 2: day 1 56 mg, then 56 or 84 mg, no age split"
SMPC_T1 = "SmPC 4.2 Table 1 (<65): day 1 56 mg, then 56 or 84 mg"
SMPC_T2 = "SmPC 4.2 Table 2 (>=65): day 1 28 mg, then 28, 56 or 84 mg"


@pytest.mark.parametrize(
    ("label", "age", "first_dose", "allowed", "source"),
    [
        (US, 18, True, (56,), US_PI_2),
        (US, 64, True, (56,), US_PI_2),
        (US, 65, True, (56,), US_PI_2),  # the US label has no age-dependent start
        (US, 80, True, (56,), US_PI_2),
        (US, 64, False, (56, 84), US_PI_2),
        (US, 65, False, (56, 84), US_PI_2),
        (EU, 64, True, (56,), SMPC_T1),
        (EU, 65, True, (28,), SMPC_T2),  # the 65th birthday changes the day-1 dose
        (EU, 66, True, (28,), SMPC_T2),
        (EU, 64, False, (56, 84), SMPC_T1),
        (EU, 65, False, (28, 56, 84), SMPC_T2),
    ],
)
def test_allowed_doses_by_label_age_and_day(
    label: str, age: int, first_dose: bool, allowed: tuple[int, ...], source: str
) -> None:
    assert er.allowed_doses(label, age=age, first_dose=first_dose).doses_mg == allowed, source


@pytest.mark.parametrize(
    ("label", "dose", "age", "first_dose", "refused", "cited"),
    [
        (US, 56, 40, True, False, "section 2"),
        (US, 84, 40, True, True, "section 2"),  # 84 mg only after the 56 mg start
        (US, 28, 70, True, True, "section 2"),  # no 28 mg start at 65 and over under the US label
        (US, 28, 40, False, True, "section 2"),
        (US, 84, 40, False, False, "section 2"),
        (EU, 56, 64, True, False, "Table 1"),
        (EU, 28, 64, True, True, "Table 1"),
        (EU, 56, 65, True, True, "Table 2"),  # at 65 day 1 is 28 mg
        (EU, 28, 65, True, False, "Table 2"),
        (EU, 28, 64, False, True, "Table 1"),
        (EU, 28, 65, False, False, "Table 2"),
        (EU, 84, 65, False, False, "Table 2"),
    ],
)
def test_dose_refusals_quote_the_label_and_cite_its_section(
    label: str, dose: int, age: int, first_dose: bool, refused: bool, cited: str
) -> None:
    problem = er.dose_problem(label, dose_mg=dose, age=age, first_dose=first_dose)
    assert (problem is not None) == refused
    if problem is not None:
        assert problem.code == "label_dose_not_allowed"
        assert '"' in problem.message  # the label's words
        assert "enter" in problem.message  # what to do
        assert cited in problem.source.text
        assert problem.source.url


def test_the_eu_refusal_names_the_age_and_the_us_one_does_not() -> None:
    eu = er.dose_problem(EU, dose_mg=56, age=67, first_dose=True)
    us = er.dose_problem(US, dose_mg=84, age=67, first_dose=True)
    assert eu is not None
    assert "at age 67" in eu.message
    assert "enter 28 mg" in eu.message
    assert us is not None
    assert "age" not in us.message
    assert "enter 56 mg" in us.message


# --- Course weeks and frequency --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "week"),
    [(1, 1), (7, 1), (8, 2), (28, 4), (29, 5), (56, 8), (57, 9)],
)
def test_course_weeks_count_from_day_one(n: int, week: int) -> None:
    assert er.course_week(DAY_ONE, day(n)) == week


@pytest.mark.parametrize(
    ("week", "limit"),
    [(1, 2), (4, 2), (5, 1), (8, 1), (9, 1)],  # induction twice a week (weeks 1-4), then once a week
)
def test_the_week_limit_drops_from_week_five(week: int, limit: int) -> None:
    assert er.week_limit(week) == limit


@pytest.mark.parametrize(
    ("label", "days", "new", "refused"),
    [
        (US, [1], 4, False),  # the 2nd of week 1
        (US, [1, 4], 6, True),  # the 3rd booking of an induction week
        (EU, [1, 4], 7, True),  # day 7 is still week 1
        (EU, [1, 4], 8, False),  # day 8 is week 2
        (US, [22, 25], 28, True),  # the 3rd of week 4
        (US, [22, 25], 29, False),  # week 5's first
        (EU, [29], 30, True),  # the 2nd of week 5 (maintenance: once a week)
        (US, [29], 36, False),  # week 6's first
        (EU, [57], 63, True),  # week 9: every 2 weeks or once a week, never twice
    ],
)
def test_frequency_at_and_around_each_boundary(label: str, days: list[int], new: int, refused: bool) -> None:
    problem = er.frequency_problem(
        label, day_one=DAY_ONE, days=[day(n) for n in [*days, new]], new_day=day(new)
    )
    assert (problem is not None) == refused
    if problem is not None:
        assert problem.code == "label_frequency"
        assert "choose a day in another week" in problem.message
        expected = "section 2" if label == US else "section 4.2"
        assert expected in problem.source.text


def test_a_booking_that_moves_day_one_has_every_week_judged_afresh() -> None:
    # Booked before any dose: days 3, 9, 10 and 12, so day 1 is day 3 and weeks hold 2 and 2. A new
    # booking on day 1 becomes day 1: its own week holds 2 (days 1 and 3), but days 9, 10 and 12 now
    # share week 2, which only a count of every week finds.
    days = [day(1), day(3), day(9), day(10), day(12)]
    assert er.frequency_problem(US, day_one=day(1), days=days, new_day=day(1)) is None
    moved = er.frequency_problem(US, day_one=day(1), days=days, new_day=day(1), every_week=True)
    assert moved is not None
    assert moved.message.startswith("Week 2 of the esketamine course")


# --- Duties ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "form", "rems"),
    [(US, True, True), (EU, False, False)],
)
def test_the_label_sets_the_duties(label: str, form: bool, rems: bool) -> None:
    assert er.monitoring_form_required(label) is form
    assert er.rems_enrolment_required(label) is rems


@pytest.mark.parametrize(
    ("confirmed", "missing"),
    [
        ([], ["blood_pressure", "clinically_stable", "no_driving", "way_home"]),
        (["blood_pressure", "clinically_stable", "no_driving"], ["way_home"]),
        (list(er.LEAVE_CHECKLIST_CODES), []),
    ],
)
def test_the_readiness_to_leave_checklist_names_what_is_missing(
    confirmed: list[str], missing: list[str]
) -> None:
    assert [item.code for item in er.leave_checklist_missing(confirmed)] == missing
    problem = er.leave_checklist_problem(confirmed)
    if not missing:
        assert problem is None
        return
    assert problem is not None
    assert problem.code == "leave_checklist_incomplete"
    for item in er.LEAVE_CHECKLIST:
        assert (item.text in problem.message) == (item.code in missing)
    assert "Readiness to Leave" in problem.source.text


def test_every_code_of_the_label_rules_is_registered_with_a_source() -> None:
    for code in (
        "label_dose_not_allowed",
        "label_frequency",
        "leave_checklist_incomplete",
        "leave_checklist_not_applicable",
        "monitoring_form_not_required",
    ):
        citation = sources.citation_for(code)
        assert citation, code
    for item in er.LEAVE_CHECKLIST:
        assert "section 4" in item.source.text
