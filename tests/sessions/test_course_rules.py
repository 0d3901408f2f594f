"""Course rules (`sessions.booking.course_rules`): the sourced defaults, the checks of a course, the
spacing of its sessions, and its progress. Pure: no database."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kaemdr import sources
from sessions.booking import course_rules
from sessions.booking import esketamine_rules
from sessions.booking.course_rules import CourseShape
from sessions.booking.course_rules import Phase
from sessions.booking.rules import EsketamineLabel

LABELS = [label.value for label in EsketamineLabel]
DAY_ONE = dt.date(2026, 1, 5)  # a Monday


def _iv() -> CourseShape:
    found = course_rules.default_template(EsketamineLabel.US_PI, "iv_racemic")
    assert found is not None
    return found.shape


def _esketamine() -> CourseShape:
    return course_rules.esketamine_default_shape()


# --- The defaults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", LABELS)
def test_default_templates_pass_their_own_checks(label: str) -> None:
    for template in course_rules.default_templates(label):
        assert course_rules.shape_problems(template.shape, label=label) == []
        assert template.source


def test_iv_racemic_default_is_six_infusions_over_three_weeks_cited_to_andrade() -> None:
    shape = _iv()
    assert (shape.agent, shape.route, shape.sessions) == ("ketamine", "iv", 6)
    assert shape.phases == (Phase(3, 3, 2, 4),)
    template = course_rules.default_template(EsketamineLabel.US_PI, "iv_racemic")
    assert template is not None
    assert "Andrade 2017" in template.source.text
    assert "Clinic setting" in template.source.text  # the days apart are the clinic's [unverified]


def test_esketamine_default_reads_the_labels_frequency() -> None:
    """Twice a week in weeks 1-4, once a week in 5-8, then runs on once a week: from
    `esketamine_rules`, not copied numbers; 12 sessions planned (weeks 1-8)."""
    shape = _esketamine()
    assert [(phase.weeks, phase.per_week) for phase in shape.phases] == [
        (esketamine_rules.INDUCTION_WEEKS, esketamine_rules.INDUCTION_DOSES_PER_WEEK),
        (esketamine_rules.WEEKLY_MAINTENANCE_WEEKS, esketamine_rules.MAINTENANCE_DOSES_PER_WEEK),
        (None, esketamine_rules.MAINTENANCE_DOSES_PER_WEEK),
    ]
    assert course_rules.sessions_wanted(shape) == 12
    eu = course_rules.default_template(EsketamineLabel.EU_UK_SMPC, "esketamine_label")
    us = course_rules.default_template(EsketamineLabel.US_PI, "esketamine_label")
    assert eu is not None
    assert us is not None
    assert "summary of product characteristics" in eu.source.text
    assert "US prescribing information" in us.source.text


def test_describe_says_the_pattern_in_plain_words() -> None:
    assert course_rules.describe(_iv()) == "6 sessions. Weeks 1 to 3: up to 3 a week, 2 to 4 days apart."
    assert course_rules.describe(_esketamine()) == (
        "12 sessions. Weeks 1 to 4: twice a week, 2 to 4 days apart; weeks 5 to 8: once a week, 6 to 8 days "
        "apart; from week 9: once a week, 6 to 14 days apart."
    )


def test_every_course_code_is_registered_with_a_source() -> None:
    for code in (
        "course_spacing_too_close",
        "course_spacing_too_far",
        "course_week_full",
        "course_past_phases",
        "course_phase_unreachable",
        "course_sessions_beyond_phases",
        "course_route_mismatch",
        "label_frequency",
    ):
        assert sources.citation_for(code), code


# --- Checking a course --------------------------------------------------------------------------------


def _codes(shape: CourseShape, label: str = EsketamineLabel.US_PI) -> list[tuple[str, str]]:
    return [(field, criterion.code) for field, criterion in course_rules.shape_problems(shape, label=label)]


def test_sessions_out_of_bounds_are_refused() -> None:
    assert _codes(CourseShape("ketamine", "iv", 0, (Phase(None, 3, 2, 4),))) == [("sessions", "out_of_range")]
    assert _codes(CourseShape("ketamine", "iv", 53, (Phase(None, 3, 2, 4),))) == [
        ("sessions", "out_of_range")
    ]


def test_a_route_that_does_not_go_with_the_agent_is_refused() -> None:
    assert ("route", "course_route_mismatch") in _codes(
        CourseShape("esketamine", "iv", 6, (Phase(3, 2, 2, 4),))
    )


def test_phase_bounds_and_order() -> None:
    assert _codes(CourseShape("ketamine", "iv", 6, ())) == [("phases", "out_of_range")]
    five = tuple(Phase(1, 1, 7, 7) for _ in range(5))
    assert _codes(CourseShape("ketamine", "iv", 5, five)) == [("phases", "out_of_range")]
    assert _codes(CourseShape("ketamine", "iv", 6, (Phase(None, 3, 2, 4), Phase(2, 1, 7, 7)))) == [
        ("phase_1_weeks", "required")
    ]
    assert _codes(CourseShape("ketamine", "iv", 6, (Phase(3, 8, 1, 4),))) == [
        ("phase_1_per_week", "out_of_range")
    ]
    assert _codes(CourseShape("ketamine", "iv", 6, (Phase(3, 3, 0, 4),))) == [
        ("phase_1_min_days", "out_of_range")
    ]
    assert _codes(CourseShape("ketamine", "iv", 6, (Phase(3, 3, 2, 29),))) == [
        ("phase_1_max_days", "out_of_range")
    ]
    assert _codes(CourseShape("ketamine", "iv", 6, (Phase(3, 3, 5, 4),))) == [("phase_1_max_days", "order")]


def test_a_phase_that_cannot_keep_its_own_numbers_is_refused() -> None:
    # three a week at least 4 days apart do not fit in 7 days
    assert _codes(CourseShape("ketamine", "iv", 6, (Phase(3, 3, 4, 6),))) == [
        ("phase_1_per_week", "course_phase_unreachable")
    ]
    # once a week but never more than 3 days apart cannot go on week after week
    assert _codes(CourseShape("ketamine", "iv", 6, (Phase(None, 1, 1, 3),))) == [
        ("phase_1_max_days", "course_phase_unreachable")
    ]


def test_more_sessions_than_the_phases_hold_is_refused_unless_the_last_runs_on() -> None:
    assert _codes(CourseShape("ketamine", "iv", 10, (Phase(3, 3, 2, 4),))) == [
        ("sessions", "course_sessions_beyond_phases")
    ]
    assert _codes(CourseShape("ketamine", "iv", 10, (Phase(None, 3, 2, 4),))) == []


@pytest.mark.parametrize("label", LABELS)
def test_an_esketamine_course_over_the_labels_frequency_is_refused(label: str) -> None:
    three_a_week = CourseShape("esketamine", "intranasal", 8, (Phase(4, 3, 2, 4),))
    [(field, criterion)] = course_rules.shape_problems(three_a_week, label=label)
    assert (field, criterion.code) == ("phase_1_per_week", "label_frequency")
    assert criterion.source == esketamine_rules.LABEL_DOSING_SOURCE[EsketamineLabel(label)]
    twice_into_week_5 = CourseShape("esketamine", "intranasal", 10, (Phase(5, 2, 2, 4),))
    assert _codes(twice_into_week_5, label) == [("phase_1_per_week", "label_frequency")]
    runs_on_twice = CourseShape("esketamine", "intranasal", 10, (Phase(None, 2, 2, 4),))
    assert _codes(runs_on_twice, label) == [("phase_1_per_week", "label_frequency")]
    # the same numbers for racemic ketamine: no label applies
    assert _codes(CourseShape("ketamine", "iv", 10, (Phase(5, 2, 2, 4),)), label) == []


# --- Spacing ------------------------------------------------------------------------------------------


def test_spacing_within_the_phase_passes_and_outside_it_is_refused_with_the_day_to_choose() -> None:
    shape = _iv()
    assert course_rules.spacing_problem(None, DAY_ONE, shape) is None
    assert course_rules.spacing_problem(DAY_ONE, DAY_ONE + dt.timedelta(days=2), shape) is None
    close = course_rules.spacing_problem(DAY_ONE, DAY_ONE + dt.timedelta(days=1), shape, day_one=DAY_ONE)
    assert close is not None
    assert close.code == "course_spacing_too_close"
    assert "Wed 7 Jan or later" in close.message
    far = course_rules.spacing_problem(DAY_ONE, DAY_ONE + dt.timedelta(days=5), shape, day_one=DAY_ONE)
    assert far is not None
    assert far.code == "course_spacing_too_far"
    assert "Fri 9 Jan or earlier" in far.message
    late = course_rules.spacing_problem(
        DAY_ONE + dt.timedelta(days=19), DAY_ONE + dt.timedelta(days=22), shape, day_one=DAY_ONE
    )
    assert late is not None
    assert late.code == "course_past_phases"


def test_the_phase_of_the_proposed_day_sets_the_spacing() -> None:
    shape = _esketamine()
    # week 4 to week 5: the weekly phase asks for 6 to 8 days
    last_induction = DAY_ONE + dt.timedelta(days=24)
    too_soon = course_rules.spacing_problem(
        last_induction, DAY_ONE + dt.timedelta(days=28), shape, day_one=DAY_ONE
    )
    assert too_soon is not None
    assert too_soon.code == "course_spacing_too_close"
    assert (
        course_rules.spacing_problem(last_induction, DAY_ONE + dt.timedelta(days=30), shape, day_one=DAY_ONE)
        is None
    )


def test_a_week_over_its_phases_count_is_refused() -> None:
    shape = _esketamine()
    days = [DAY_ONE, DAY_ONE + dt.timedelta(days=3)]
    problem = course_rules.week_problem(days, DAY_ONE + dt.timedelta(days=5), shape, day_one=DAY_ONE)
    assert problem is not None
    assert problem.code == "course_week_full"
    assert course_rules.week_problem(days, DAY_ONE + dt.timedelta(days=7), shape, day_one=DAY_ONE) is None


@st.composite
def valid_phases(draw: st.DrawFn, most_per_week: int) -> Phase:
    """A phase that keeps its own numbers: its sessions a week fit at its least spacing, and its most
    days apart allow an even spacing within its sessions a week."""
    per_week = draw(st.integers(1, most_per_week))
    least = draw(st.integers(1, min(7, 6 // (per_week - 1)) if per_week > 1 else 7))
    most = draw(st.integers(max(least, course_rules.smallest_even_gap(per_week)), 14))
    return Phase(draw(st.integers(1, 6)), per_week, least, most)


@st.composite
def valid_shapes(draw: st.DrawFn, agent: str = "ketamine", route: str = "iv") -> CourseShape:
    """Courses the checks accept (an esketamine one within the label: at most twice a week, and once a
    week from week 5)."""
    most_per_week = 2 if agent == "esketamine" else 7
    chosen = draw(st.lists(valid_phases(most_per_week), min_size=1, max_size=course_rules.MAX_PHASES))
    if draw(st.booleans()):
        last = chosen[-1]
        chosen[-1] = Phase(None, last.per_week, last.min_days, last.max_days)
    capacity = course_rules._capacity(chosen)
    shape = CourseShape(agent, route, draw(st.integers(1, min(30, capacity or 30))), tuple(chosen))
    assume(course_rules.shape_problems(shape, label=EsketamineLabel.US_PI) == [])
    return shape


@settings(max_examples=200, deadline=None)
@given(shape=valid_shapes(), start=st.dates(dt.date(2025, 1, 1), dt.date(2030, 12, 31)))
def test_the_earliest_days_of_any_valid_course_keep_its_spacing_and_weeks(
    shape: CourseShape, start: dt.date
) -> None:
    days = course_rules.earliest_days(shape, start)
    assert days[0] == start
    assert days == sorted(set(days))
    assert len(days) <= shape.sessions
    assert course_rules.schedule_problems(days, shape) == []


@settings(max_examples=200, deadline=None)
@given(
    shape=valid_shapes("esketamine", "intranasal"),
    start=st.dates(dt.date(2025, 1, 1), dt.date(2030, 12, 31)),
    label=st.sampled_from(LABELS),
)
def test_an_accepted_esketamine_course_always_passes_the_labels_frequency_check(
    shape: CourseShape, start: dt.date, label: str
) -> None:
    """Whatever esketamine course the checks accept, the densest schedule it allows never holds more
    in a course week than the label does (`esketamine_rules.frequency_problem`, every week)."""
    assert course_rules.shape_problems(shape, label=label) == []
    days = course_rules.earliest_days(shape, start)
    for day in days:
        assert (
            esketamine_rules.frequency_problem(label, day_one=start, days=days, new_day=day, every_week=True)
            is None
        )


@pytest.mark.parametrize("label", LABELS)
def test_the_esketamine_default_schedules_all_its_sessions_within_the_label(label: str) -> None:
    shape = course_rules.esketamine_default_shape()
    days = course_rules.earliest_days(shape, DAY_ONE)
    assert len(days) == 12
    assert course_rules.schedule_problems(days, shape) == []
    assert (
        esketamine_rules.frequency_problem(
            label, day_one=DAY_ONE, days=days, new_day=days[-1], every_week=True
        )
        is None
    )


def test_the_iv_default_schedules_six_infusions_within_three_weeks() -> None:
    days = course_rules.earliest_days(_iv(), DAY_ONE)
    assert [(day - DAY_ONE).days for day in days] == [0, 2, 4, 7, 9, 11]


@given(
    previous=st.dates(dt.date(2025, 1, 1), dt.date(2030, 12, 31)),
    gap=st.integers(-3, 40),
    shape=valid_shapes(),
)
def test_spacing_problem_matches_the_phase_range(previous: dt.date, gap: int, shape: CourseShape) -> None:
    """Taking `previous` as day 1: a day inside the first phase's range passes, outside it is refused
    (too close, too far), and a day after the last phase is refused as such."""
    proposed = previous + dt.timedelta(days=gap)
    problem = course_rules.spacing_problem(previous, proposed, shape, day_one=previous)
    index = course_rules.phase_index_for_week(shape.phases, esketamine_rules.course_week(previous, proposed))
    if index is None:
        assert problem is not None
        assert problem.code == "course_past_phases"
        return
    phase = shape.phases[index]
    if gap < phase.min_days:
        assert problem is not None
        assert problem.code == "course_spacing_too_close"
    elif gap > phase.max_days:
        assert problem is not None
        assert problem.code == "course_spacing_too_far"
    else:
        assert problem is None


# --- Progress -----------------------------------------------------------------------------------------


@given(planned=st.integers(1, 52), done=st.integers(0, 60), booked=st.integers(0, 60))
def test_a_plans_counts_add_up(planned: int, done: int, booked: int) -> None:
    shape = CourseShape("ketamine", "iv", planned, (Phase(None, 3, 2, 4),))
    found = course_rules.progress(shape, done=done, booked=booked)
    assert found.done + found.booked + found.to_book - found.beyond == planned
    assert found.to_book >= 0
    assert found.beyond >= 0
    assert min(found.to_book, found.beyond) == 0
