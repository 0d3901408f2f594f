"""Free slots, the next open day, opening hours in words and the calendar's placing rules: pure rules,
no database."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from sessions.booking import rules
from sessions.booking.rules import Interval
from sessions.booking.rules import OpeningHours

TZ = zoneinfo.ZoneInfo("Europe/London")
MONDAY = dt.date(2030, 3, 4)  # a Monday, away from the clock changes
WEEKDAYS_9_TO_5 = [OpeningHours(day, dt.time(9), dt.time(17)) for day in range(5)]


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


def times(slots: list[dt.datetime]) -> list[str]:
    return [f"{slot:%H:%M}" for slot in slots]


@pytest.mark.parametrize(
    ("busy", "minutes", "expected_first", "expected_last", "expected_count"),
    [
        # An empty day: every quarter from 09:00 to the last start that ends by 17:00.
        ([], 120, "09:00", "15:00", 25),
        # A booking 10:00-12:00 leaves 09:00-10:00 (too short for 2 hours) and 12:00 on.
        ([(10, 0, 12, 0)], 120, "12:00", "15:00", 13),
        # A session that fits exactly between two bookings.
        ([(9, 0, 11, 0), (13, 0, 17, 0)], 120, "11:00", "11:00", 1),
        # Nothing fits.
        ([(9, 0, 16, 0)], 120, None, None, 0),
        # A session as long as the day.
        ([], 8 * 60, "09:00", "09:00", 1),
        # Longer than the day.
        ([], 8 * 60 + 15, None, None, 0),
    ],
)
def test_free_slots_on_a_weekday(
    busy: list[tuple[int, int, int, int]],
    minutes: int,
    expected_first: str | None,
    expected_last: str | None,
    expected_count: int,
) -> None:
    intervals = [Interval(at(MONDAY, h1, m1), at(MONDAY, h2, m2)) for h1, m1, h2, m2 in busy]

    slots = rules.free_slots(MONDAY, hours=WEEKDAYS_9_TO_5, busy=intervals, minutes=minutes, tz=TZ)

    assert len(slots) == expected_count
    if expected_count:
        assert times(slots)[0] == expected_first
        assert times(slots)[-1] == expected_last


def test_free_slots_on_a_closed_weekday_are_none() -> None:
    saturday = MONDAY + dt.timedelta(days=5)
    assert rules.free_slots(saturday, hours=WEEKDAYS_9_TO_5, busy=[], minutes=60, tz=TZ) == []


def test_free_slots_start_no_earlier_than_now() -> None:
    slots = rules.free_slots(
        MONDAY, hours=WEEKDAYS_9_TO_5, busy=[], minutes=60, tz=TZ, not_before=at(MONDAY, 13, 5)
    )
    assert times(slots)[0] == "13:15"


def test_a_booking_may_start_the_minute_the_last_one_ends() -> None:
    slots = rules.free_slots(
        MONDAY, hours=WEEKDAYS_9_TO_5, busy=[Interval(at(MONDAY, 9), at(MONDAY, 11, 45))], minutes=60, tz=TZ
    )
    assert times(slots)[0] == "11:45"


@pytest.mark.parametrize(
    ("after", "closures", "expected"),
    [
        (MONDAY, [], MONDAY),
        # Saturday: the next open day is Monday.
        (MONDAY + dt.timedelta(days=5), [], MONDAY + dt.timedelta(days=7)),
        # Monday out of service all day (and beyond its hours): Tuesday.
        (MONDAY, [(MONDAY, 0, MONDAY, 23)], MONDAY + dt.timedelta(days=1)),
        # Monday out of service only in the morning: still open.
        (MONDAY, [(MONDAY, 9, MONDAY, 12)], MONDAY),
        # Two closures that together cover Monday's hours.
        (MONDAY, [(MONDAY, 9, MONDAY, 12), (MONDAY, 11, MONDAY, 17)], MONDAY + dt.timedelta(days=1)),
        # A closure Monday to Wednesday evening: Thursday.
        (MONDAY, [(MONDAY, 8, MONDAY + dt.timedelta(days=2), 18)], MONDAY + dt.timedelta(days=3)),
    ],
)
def test_next_open_day(
    after: dt.date, closures: list[tuple[dt.date, int, dt.date, int]], expected: dt.date
) -> None:
    periods = [Interval(at(d1, h1), at(d2, h2)) for d1, h1, d2, h2 in closures]
    assert rules.next_open_day(after, hours=WEEKDAYS_9_TO_5, closures=periods, tz=TZ) == expected


def test_next_open_day_without_hours_is_none() -> None:
    assert rules.next_open_day(MONDAY, hours=[], closures=[], tz=TZ) is None


def test_next_free_slot_skips_a_full_day_and_the_weekend() -> None:
    friday = MONDAY + dt.timedelta(days=4)
    busy = [Interval(at(friday, 9), at(friday, 17))]
    slot = rules.next_free_slot(friday, hours=WEEKDAYS_9_TO_5, busy=busy, minutes=90, tz=TZ)
    assert slot == at(MONDAY + dt.timedelta(days=7), 9)


def test_next_free_slot_none_within_the_horizon() -> None:
    assert rules.next_free_slot(MONDAY, hours=[], busy=[], minutes=60, tz=TZ) is None
    assert rules.describe_next_free(None, TZ) == "No free slot in the next four weeks."


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (WEEKDAYS_9_TO_5, "Mon-Fri 09:00-17:00"),
        (
            [*WEEKDAYS_9_TO_5, OpeningHours(5, dt.time(10), dt.time(14))],
            "Mon-Fri 09:00-17:00, Sat 10:00-14:00",
        ),
        (
            [OpeningHours(0, dt.time(8), dt.time(12)), OpeningHours(2, dt.time(8), dt.time(12))],
            "Mon 08:00-12:00, Wed 08:00-12:00",
        ),
        ([], "no opening hours set"),
    ],
)
def test_describe_opening_hours(hours: list[OpeningHours], expected: str) -> None:
    assert rules.describe_opening_hours(hours) == expected


def test_describe_next_free_names_the_day_and_time() -> None:
    assert rules.describe_next_free(at(MONDAY, 9, 30), TZ) == "Next free slot: Mon 4 Mar 09:30."


# --- Property: no free slot overlaps a booking or closed hours ----------------------------------------

quarter_hours = st.integers(min_value=0, max_value=24 * 4 - 1)


@st.composite
def days_of_hours(draw: st.DrawFn) -> list[OpeningHours]:
    hours = []
    for weekday in range(7):
        if draw(st.booleans()):
            opens = draw(st.integers(min_value=0, max_value=22 * 4))
            closes = draw(st.integers(min_value=opens + 1, max_value=24 * 4 - 1))
            hours.append(
                OpeningHours(
                    weekday, dt.time(opens // 4, opens % 4 * 15), dt.time(closes // 4, closes % 4 * 15)
                )
            )
    return hours


@st.composite
def busy_intervals(draw: st.DrawFn) -> list[Interval]:
    found = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        start = draw(st.integers(min_value=0, max_value=3 * 24 * 60))
        length = draw(st.integers(min_value=1, max_value=8 * 60))
        begins = at(MONDAY, 0) + dt.timedelta(minutes=start)
        found.append(Interval(begins, begins + dt.timedelta(minutes=length)))
    return found


@settings(max_examples=200, deadline=None)
@given(
    hours=days_of_hours(),
    busy=busy_intervals(),
    minutes=st.integers(min_value=5, max_value=6 * 60),
    offset=st.integers(min_value=0, max_value=2),
)
def test_no_free_slot_overlaps_a_booking_or_closed_hours(
    hours: list[OpeningHours], busy: list[Interval], minutes: int, offset: int
) -> None:
    day = MONDAY + dt.timedelta(days=offset)
    slots = rules.free_slots(day, hours=hours, busy=busy, minutes=minutes, tz=TZ)
    for slot in slots:
        session = Interval(slot, slot + dt.timedelta(minutes=minutes))
        assert rules.within_opening_hours(session, hours, TZ)
        assert not any(session.overlaps(other) for other in busy)
        assert slot.astimezone(TZ).date() == day
    assert slots == sorted(set(slots))


@settings(max_examples=100, deadline=None)
@given(hours=days_of_hours(), busy=busy_intervals(), minutes=st.integers(min_value=5, max_value=4 * 60))
def test_next_free_slot_is_the_first_free_slot(
    hours: list[OpeningHours], busy: list[Interval], minutes: int
) -> None:
    slot = rules.next_free_slot(MONDAY, hours=hours, busy=busy, minutes=minutes, tz=TZ, horizon_days=7)
    every = [
        s
        for offset in range(7)
        for s in rules.free_slots(
            MONDAY + dt.timedelta(days=offset), hours=hours, busy=busy, minutes=minutes, tz=TZ
        )
    ]
    assert slot == (every[0] if every else None)


@settings(max_examples=100, deadline=None)
@given(hours=days_of_hours(), closures=busy_intervals())
def test_the_next_open_day_has_open_time_left(hours: list[OpeningHours], closures: list[Interval]) -> None:
    day = rules.next_open_day(MONDAY, hours=hours, closures=closures, tz=TZ, horizon_days=14)
    if day is None:
        assert not hours or all(
            not rules.is_open_day(MONDAY + dt.timedelta(days=i), hours=hours, closures=closures, tz=TZ)
            for i in range(14)
        )
        return
    opening = rules.day_opening(day, hours, TZ)
    assert opening is not None
    # Some minute of the opening hours is outside every closure.
    minute = opening.starts_at
    free = False
    while minute < opening.ends_at:
        if not any(c.starts_at <= minute < c.ends_at for c in closures):
            free = True
            break
        minute += dt.timedelta(minutes=1)
    assert free
    for earlier in range((day - MONDAY).days):
        assert not rules.is_open_day(
            MONDAY + dt.timedelta(days=earlier), hours=hours, closures=closures, tz=TZ
        )


# --- The calendar's placing rules ------------------------------------------------------------------------


def test_lanes_put_overlapping_bookings_side_by_side() -> None:
    a = Interval(at(MONDAY, 9), at(MONDAY, 11))
    b = Interval(at(MONDAY, 10), at(MONDAY, 12))
    c = Interval(at(MONDAY, 11), at(MONDAY, 13))  # after a: reuses its lane
    d = Interval(at(MONDAY, 14), at(MONDAY, 15))  # on its own
    assert rules.lanes([a, b, c, d]) == [(0, 2), (1, 2), (0, 2), (0, 1)]


@settings(max_examples=100, deadline=None)
@given(busy=busy_intervals())
def test_lanes_never_overlap_within_a_lane(busy: list[Interval]) -> None:
    places = rules.lanes(busy)
    for i, (lane_i, count_i) in enumerate(places):
        assert 0 <= lane_i < count_i
        for j, (lane_j, _) in enumerate(places):
            if i != j and lane_i == lane_j:
                assert not busy[i].overlaps(busy[j])


def test_closed_spans_shade_before_and_after_hours_and_a_closure() -> None:
    window = Interval(at(MONDAY, 7), at(MONDAY, 20))
    opening = Interval(at(MONDAY, 9), at(MONDAY, 17))
    closure = (Interval(at(MONDAY, 12), at(MONDAY, 13)), "Recliner repair")

    spans = rules.closed_spans(window, opening=opening, closures=[closure])

    assert spans == [
        (Interval(at(MONDAY, 7), at(MONDAY, 9)), "closed", "Closed"),
        (Interval(at(MONDAY, 17), at(MONDAY, 20)), "closed", "Closed"),
        (Interval(at(MONDAY, 12), at(MONDAY, 13)), "closure", "Out of service: Recliner repair"),
    ]
    assert rules.closed_spans(window, opening=None, closures=[]) == [(window, "closed", "Closed")]


@pytest.mark.parametrize(
    ("status", "has_session", "expected"),
    [
        ("booked", False, "booked"),
        ("booked", True, "in_progress"),
        ("completed", True, "done"),
        ("cancelled", False, "cancelled"),
    ],
)
def test_calendar_state(status: str, has_session: bool, expected: str) -> None:
    state = rules.calendar_state(status, has_session=has_session)
    assert state == expected
    assert rules.CALENDAR_STATE_LABELS[state]


@pytest.mark.parametrize(
    ("day", "looked_for"),
    [
        (dt.date(2026, 12, 6), True),
        (dt.date(2026, 12, 6) + rules.BOOKING_HORIZON, True),
        (dt.date(2026, 12, 7) + rules.BOOKING_HORIZON, False),
        (dt.date(2026, 12, 6) - rules.BOOKING_HORIZON, True),
        (dt.date(2026, 12, 5) - rules.BOOKING_HORIZON, False),
        (dt.date.max, False),
        (dt.date.min, False),
    ],
)
def test_free_starts_are_looked_for_within_the_booking_horizon_only(day: dt.date, looked_for: bool) -> None:
    assert rules.within_booking_horizon(day, today=dt.date(2026, 12, 6)) is looked_for
