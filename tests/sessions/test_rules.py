"""Scheduling rules: chair time, opening hours, overlaps, moves and utilisation, at their edges."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessions.booking import rules

LONDON = zoneinfo.ZoneInfo("Europe/London")
MONDAY = dt.date(2026, 11, 23)
HOURS = [rules.OpeningHours(0, dt.time(8, 0), dt.time(18, 0))]


def at(hour: int, minute: int = 0, day: dt.date = MONDAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON)


def test_default_chair_time_adds_dosing_monitoring_and_turnover() -> None:
    esketamine = rules.DEFAULT_CHAIR_TIMES[("esketamine", "intranasal")]
    assert (esketamine.monitoring_minutes, esketamine.total_minutes) == (120, 150)
    assert rules.end_for(at(9), esketamine) == at(11, 30)


def test_esketamine_is_never_monitored_under_two_hours() -> None:
    assert rules.chair_time_problem(agent="esketamine", monitoring_minutes=119) is not None
    assert rules.chair_time_problem(agent="esketamine", monitoring_minutes=120) is None
    assert rules.chair_time_problem(agent="ketamine", monitoring_minutes=60) is None


@pytest.mark.parametrize(
    ("start", "end", "inside"),
    [
        (at(8), at(10), True),  # starts at opening
        (at(16), at(18), True),  # ends at closing
        (at(7, 59), at(10), False),
        (at(16), at(18, 1), False),
        (
            at(9, 0, MONDAY + dt.timedelta(days=1)),
            at(10, 0, MONDAY + dt.timedelta(days=1)),
            False,
        ),  # closed Tuesday
        (at(17), at(9, 0, MONDAY + dt.timedelta(days=1)), False),  # overnight
    ],
)
def test_within_opening_hours(start: dt.datetime, end: dt.datetime, inside: bool) -> None:
    assert rules.within_opening_hours(rules.Interval(start, end), HOURS, LONDON) is inside


def test_opening_hours_are_read_in_the_clinics_time_zone() -> None:
    utc_start = dt.datetime(2026, 7, 6, 7, 0, tzinfo=dt.UTC)  # 08:00 in London (summer time)
    interval = rules.Interval(utc_start, utc_start + dt.timedelta(hours=2))
    assert rules.within_opening_hours(interval, HOURS, LONDON)
    assert not rules.within_opening_hours(interval, HOURS, dt.UTC)


def test_adjacent_bookings_do_not_overlap() -> None:
    first = rules.Interval(at(9), at(11))
    assert not first.overlaps(rules.Interval(at(11), at(12)))
    assert first.overlaps(rules.Interval(at(10, 59), at(12)))
    assert first.overlaps(rules.Interval(at(9, 30), at(10)))


@given(
    start=st.integers(min_value=0, max_value=600),
    length=st.integers(min_value=1, max_value=300),
    shift=st.integers(min_value=-600, max_value=600),
)
def test_a_move_keeps_the_length(start: int, length: int, shift: int) -> None:
    original = rules.Interval(
        at(8) + dt.timedelta(minutes=start), at(8) + dt.timedelta(minutes=start + length)
    )
    moved = rules.moved(original, original.starts_at + dt.timedelta(minutes=shift))
    assert moved.ends_at - moved.starts_at == original.ends_at - original.starts_at


def test_utilisation_is_the_booked_share_of_open_minutes() -> None:
    booked = [rules.Interval(at(9), at(11, 30)), rules.Interval(at(13), at(14))]
    assert rules.utilisation(booked, 600) == pytest.approx(210 / 600)
    assert rules.utilisation(booked, 0) == 0.0
    assert rules.utilisation([rules.Interval(at(8), at(18))] * 2, 600) == 1.0
