"""Rota rules: working hours and leave, pure. `is_on` is checked against a brute-force walk of the
interval minute by minute over random weekly patterns and leave, and `free_time` against `is_on`."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from sessions.booking import rota_rules
from sessions.booking.rota_rules import Leave
from sessions.booking.rota_rules import WorkingSpan
from sessions.booking.rules import Interval

LONDON = zoneinfo.ZoneInfo("Europe/London")
# Zones without clock changes for the brute force: on a day the clocks change, wall-clock rules judge
# an interval by its local start and end (as the rooms' opening hours do), which a minute walk does not.
STEADY_ZONES = [zoneinfo.ZoneInfo(name) for name in ("UTC", "Asia/Kolkata", "America/Bogota", "Asia/Tokyo")]
MONDAY = dt.date(2026, 3, 2)


def at(day: dt.date, hour: int, minute: int = 0, tz: dt.tzinfo = LONDON) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


def span(weekday: int, starts: str, ends: str) -> WorkingSpan:
    return WorkingSpan(weekday, dt.time.fromisoformat(starts), dt.time.fromisoformat(ends))


WEEKDAYS_8_TO_4 = [span(day, "08:00", "16:00") for day in range(5)]


# --- Examples -------------------------------------------------------------------------------------


def test_no_working_hours_means_always_on() -> None:
    interval = Interval(at(MONDAY + dt.timedelta(days=6), 2), at(MONDAY + dt.timedelta(days=6), 23))
    assert rota_rules.is_on([], [], interval, LONDON)
    assert rota_rules.keeps_rota([]) is False
    assert rota_rules.describe_hours([]) == "no working hours set (always available)"


def test_a_session_inside_a_span_is_on_and_one_past_its_end_is_not() -> None:
    assert rota_rules.is_on(WEEKDAYS_8_TO_4, [], Interval(at(MONDAY, 8), at(MONDAY, 16)), LONDON)
    assert not rota_rules.is_on(WEEKDAYS_8_TO_4, [], Interval(at(MONDAY, 14), at(MONDAY, 16, 1)), LONDON)
    assert not rota_rules.is_on(WEEKDAYS_8_TO_4, [], Interval(at(MONDAY, 7, 59), at(MONDAY, 9)), LONDON)
    saturday = MONDAY + dt.timedelta(days=5)
    assert not rota_rules.is_on(WEEKDAYS_8_TO_4, [], Interval(at(saturday, 9), at(saturday, 10)), LONDON)


def test_a_session_must_lie_in_one_span_not_across_a_split_shift() -> None:
    split = [span(0, "08:00", "12:00"), span(0, "13:00", "17:00")]
    assert rota_rules.is_on(split, [], Interval(at(MONDAY, 13), at(MONDAY, 15)), LONDON)
    assert not rota_rules.is_on(split, [], Interval(at(MONDAY, 11), at(MONDAY, 14)), LONDON)
    # Back to back spans still make two spans: a session across their join lies in neither.
    joined = [span(0, "08:00", "12:00"), span(0, "12:00", "17:00")]
    assert not rota_rules.is_on(joined, [], Interval(at(MONDAY, 11), at(MONDAY, 13)), LONDON)


def test_hours_are_the_clinics_wall_clock_hours() -> None:
    """08:00-16:00 in London is 08:00-16:00 local in winter and in summer alike (UTC moves by an hour)."""
    summer = dt.date(2026, 7, 6)  # a Monday, BST
    assert rota_rules.is_on(WEEKDAYS_8_TO_4, [], Interval(at(summer, 8), at(summer, 10)), LONDON)
    utc_seven = dt.datetime.combine(summer, dt.time(7, 0), tzinfo=dt.UTC)  # 08:00 BST
    assert rota_rules.is_on(
        WEEKDAYS_8_TO_4, [], Interval(utc_seven, utc_seven + dt.timedelta(hours=2)), LONDON
    )
    utc_six = utc_seven - dt.timedelta(hours=1)  # 07:00 BST
    assert not rota_rules.is_on(WEEKDAYS_8_TO_4, [], Interval(utc_six, utc_seven), LONDON)


def test_any_overlap_with_leave_refuses_and_touching_it_does_not() -> None:
    leave = [Leave(at(MONDAY, 12), at(MONDAY, 14))]
    assert not rota_rules.is_on([], leave, Interval(at(MONDAY, 13, 59), at(MONDAY, 15)), LONDON)
    assert not rota_rules.is_on(WEEKDAYS_8_TO_4, leave, Interval(at(MONDAY, 11), at(MONDAY, 12, 1)), LONDON)
    assert rota_rules.is_on(WEEKDAYS_8_TO_4, leave, Interval(at(MONDAY, 10), at(MONDAY, 12)), LONDON)
    assert rota_rules.is_on(WEEKDAYS_8_TO_4, leave, Interval(at(MONDAY, 14), at(MONDAY, 16)), LONDON)


def test_hours_problems_name_order_overlap_and_too_many_spans() -> None:
    assert rota_rules.hours_problems(WEEKDAYS_8_TO_4) == []
    assert rota_rules.hours_problems([span(0, "12:00", "09:00")]) == [
        "Mon 12:00-09:00: the start must be before the end."
    ]
    assert rota_rules.hours_problems([span(2, "08:00", "12:00"), span(2, "11:00", "15:00")]) == [
        "Wed: 08:00-12:00 and 11:00-15:00 overlap."
    ]
    three = [span(4, "06:00", "07:00"), span(4, "08:00", "09:00"), span(4, "10:00", "11:00")]
    assert rota_rules.hours_problems(three) == ["Fri: give at most 2 spans a day."]
    assert rota_rules.hours_problems([WorkingSpan(7, dt.time(8), dt.time(9))]) == [
        "Weekday 7 is not a day of the week (Monday is 0, Sunday 6)."
    ]


def test_describe_hours_groups_runs_of_days() -> None:
    pattern = [*WEEKDAYS_8_TO_4, span(5, "09:00", "12:00"), span(5, "13:00", "15:00")]
    assert rota_rules.describe_hours(pattern) == "Mon-Fri 08:00-16:00; Sat 09:00-12:00, 13:00-15:00"


def test_the_refusal_names_who_and_when_they_are_on() -> None:
    off = rota_rules.rota_refusal(
        who="The monitor",
        name="Oliver Mensah",
        interval=Interval(at(MONDAY, 15), at(MONDAY, 17, 30)),
        spans=WEEKDAYS_8_TO_4,
        leave=[],
        tz=LONDON,
    )
    assert off is not None
    assert off.code == "staff_off_rota"
    assert off.message.startswith(
        "The monitor Oliver Mensah works Mon-Fri 08:00-16:00: this session (Mon 2 Mar 15:00-17:30) is outside"
    )
    away = rota_rules.rota_refusal(
        who="The prescriber",
        name="Dr Amara Okafor",
        interval=Interval(at(MONDAY, 9), at(MONDAY, 11)),
        spans=WEEKDAYS_8_TO_4,
        leave=[Leave(at(MONDAY, 0), at(MONDAY + dt.timedelta(days=5), 0))],
        tz=LONDON,
    )
    assert away is not None
    assert away.code == "staff_on_leave"
    assert "is on leave from Mon 2 Mar 2026 00:00 until Sat 7 Mar 2026 00:00" in away.message


def test_free_time_is_the_days_spans_less_leave() -> None:
    leave = [
        Leave(at(MONDAY, 9), at(MONDAY, 10)),
        Leave(at(MONDAY, 15), at(MONDAY + dt.timedelta(days=1), 0)),
    ]
    assert rota_rules.free_time(MONDAY, WEEKDAYS_8_TO_4, leave, LONDON) == [
        Interval(at(MONDAY, 8), at(MONDAY, 9)),
        Interval(at(MONDAY, 10), at(MONDAY, 15)),
    ]
    assert rota_rules.free_time(MONDAY + dt.timedelta(days=5), WEEKDAYS_8_TO_4, [], LONDON) == []


# --- Random weekly patterns against a brute force -----------------------------------------------


@st.composite
def weekly_patterns(draw: st.DrawFn) -> list[WorkingSpan]:
    """Up to two non-overlapping spans a day, on the quarter hour or any minute."""
    spans: list[WorkingSpan] = []
    for day in range(7):
        cuts = sorted(draw(st.sets(st.integers(0, 24 * 60 - 1), max_size=2 * rota_rules.MOST_SPANS_A_DAY)))
        cuts = cuts[: len(cuts) - len(cuts) % 2]
        for start, end in zip(cuts[0::2], cuts[1::2], strict=True):
            spans.append(WorkingSpan(day, _clock(start), _clock(end)))
    return spans


def _clock(minute: int) -> dt.time:
    return dt.time(minute // 60, minute % 60)


@st.composite
def leave_periods(draw: st.DrawFn, tz: dt.tzinfo) -> list[Leave]:
    periods = []
    for _ in range(draw(st.integers(0, 2))):
        start = at(MONDAY, 0, tz=tz) + dt.timedelta(minutes=draw(st.integers(0, 8 * 24 * 60)))
        periods.append(Leave(start, start + dt.timedelta(minutes=draw(st.integers(1, 3 * 24 * 60)))))
    return periods


def brute_force_is_on(
    spans: list[WorkingSpan], leave: list[Leave], interval: Interval, tz: dt.tzinfo
) -> bool:
    """Minute by minute: no minute of the interval on leave; and, with a rota, one span of the start's
    weekday holding every minute of the interval (each minute, and the minute after it, within it), all
    on the start's local date."""
    minutes = int((interval.ends_at - interval.starts_at).total_seconds() // 60)
    moments = [interval.starts_at + dt.timedelta(minutes=m) for m in range(minutes)]
    if any(away.starts_at <= moment < away.ends_at for moment in moments for away in leave):
        return False
    if not spans:
        return True
    first_day = interval.starts_at.astimezone(tz).date()

    def held(span: WorkingSpan) -> bool:
        for moment in moments:
            local = moment.astimezone(tz)
            after = (moment + dt.timedelta(minutes=1)).astimezone(tz)  # the minute's end
            if local.date() != first_day or after.date() != first_day or local.weekday() != span.weekday:
                return False
            if local.time() < span.starts or after.time() > span.ends:
                return False
        return True

    return any(held(span) for span in spans)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_is_on_agrees_with_a_minute_by_minute_check(data: st.DataObject) -> None:
    tz = data.draw(st.sampled_from(STEADY_ZONES))
    spans = data.draw(weekly_patterns())
    leave = data.draw(leave_periods(tz))
    start = at(MONDAY, 0, tz=tz) + dt.timedelta(minutes=data.draw(st.integers(0, 7 * 24 * 60)))
    interval = Interval(start, start + dt.timedelta(minutes=data.draw(st.integers(1, 10 * 60))))

    assert rota_rules.is_on(spans, leave, interval, tz) == brute_force_is_on(spans, leave, interval, tz)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_every_interval_inside_free_time_is_on(data: st.DataObject) -> None:
    """What the slot finder may offer from `free_time` (an interval inside one piece) `is_on` accepts,
    and a start just outside every piece is not on for any length."""
    tz = data.draw(st.sampled_from(STEADY_ZONES))
    spans = data.draw(weekly_patterns())
    leave = data.draw(leave_periods(tz))
    day = MONDAY + dt.timedelta(days=data.draw(st.integers(0, 6)))
    pieces = rota_rules.free_time(day, spans, leave, tz)
    for piece in pieces:
        length = int((piece.ends_at - piece.starts_at).total_seconds() // 60)
        if length < 1:
            continue
        offset = data.draw(st.integers(0, length - 1))
        start = piece.starts_at + dt.timedelta(minutes=offset)
        end = start + dt.timedelta(minutes=data.draw(st.integers(1, length - offset)))
        assert rota_rules.is_on(spans, leave, Interval(start, end), tz)
    minute = at(day, 0, tz=tz) + dt.timedelta(minutes=data.draw(st.integers(0, 24 * 60 - 2)))
    probe = Interval(minute, minute + dt.timedelta(minutes=1))
    inside = any(piece.starts_at <= probe.starts_at and probe.ends_at <= piece.ends_at for piece in pieces)
    assert rota_rules.is_on(spans, leave, probe, tz) == inside


@given(spans=weekly_patterns())
def test_generated_patterns_are_valid_and_no_rota_is_always_on(spans: list[WorkingSpan]) -> None:
    assert rota_rules.hours_problems(spans) == []
    assert rota_rules.keeps_rota(spans) == bool(spans)
