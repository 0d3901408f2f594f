"""Staff rotas: a member of staff's weekly working hours and their leave, as pure rules.

A member of staff with no working hours at all keeps no rota: they are always available, so a clinic
that keeps no rotas (and every booking made before rotas existed) behaves as it did. With hours, a
session must lie inside one working span of its local day (the clinic's time zone), the way a session
must lie inside one day's opening hours of its room (`rules.within_opening_hours`). Leave refuses
whatever it overlaps, rota or not.

`is_on` is what the booking service decides by; `free_time` is the same rule as the time a member of
staff can be booked on a day, for the slot finder (whatever is offered from it, `is_on` accepts)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

from kaemdr import sources
from sessions.booking.rules import WEEKDAY_SHORT
from sessions.booking.rules import Criterion
from sessions.booking.rules import Interval

LONGEST_LEAVE = dt.timedelta(days=366)
"""No leave period is longer (a check constraint keeps it so): a read of the leave that overlaps a
window bounds its start from below with it, and reads an index range, not the member's history."""

MOST_SPANS_A_DAY = 2
"""A day's working hours come in at most this many spans: a split shift (a morning and an afternoon,
a break between). The page's grid and the API take the same."""

LEAVE_REASON_LENGTH = 200


@dataclass(frozen=True)
class WorkingSpan:
    """One span of a weekly working pattern: `weekday` (Monday is 0) from `starts` to `ends`, local."""

    weekday: int
    starts: dt.time
    ends: dt.time


@dataclass(frozen=True)
class Leave:
    """A period away (half open), as stored: aware datetimes."""

    starts_at: dt.datetime
    ends_at: dt.datetime


# --- The pattern's own shape ------------------------------------------------------------------------


def hours_problems(spans: Sequence[WorkingSpan]) -> list[str]:
    """What is wrong with a weekly pattern, in words (empty when it may be saved): a weekday outside
    0-6, a span that does not start before it ends, more than `MOST_SPANS_A_DAY` spans a day, or two
    spans of one day that overlap (a span may start the minute another ends)."""
    problems: list[str] = []
    by_day: dict[int, list[WorkingSpan]] = {}
    for span in spans:
        if not 0 <= span.weekday <= 6:
            problems.append(f"Weekday {span.weekday} is not a day of the week (Monday is 0, Sunday 6).")
            continue
        if span.starts >= span.ends:
            problems.append(
                f"{WEEKDAY_SHORT[span.weekday]} {span.starts:%H:%M}-{span.ends:%H:%M}: "
                "the start must be before the end."
            )
            continue
        by_day.setdefault(span.weekday, []).append(span)
    for day, day_spans in sorted(by_day.items()):
        if len(day_spans) > MOST_SPANS_A_DAY:
            problems.append(f"{WEEKDAY_SHORT[day]}: give at most {MOST_SPANS_A_DAY} spans a day.")
        ordered = sorted(day_spans, key=lambda s: s.starts)
        for earlier, later in itertools.pairwise(ordered):
            if later.starts < earlier.ends:
                problems.append(
                    f"{WEEKDAY_SHORT[day]}: {earlier.starts:%H:%M}-{earlier.ends:%H:%M} and "
                    f"{later.starts:%H:%M}-{later.ends:%H:%M} overlap."
                )
    return problems


# --- Whether a member of staff is on -------------------------------------------------------------


def keeps_rota(spans: Iterable[WorkingSpan]) -> bool:
    """Whether the member keeps a rota at all: without any working hours they are always available."""
    return any(True for _ in spans)


def within_working_hours(interval: Interval, spans: Sequence[WorkingSpan], tz: dt.tzinfo) -> bool:
    """Whether the whole interval lies inside one working span of its local day; always, for a member
    with no working hours (no rota). An interval that crosses local midnight lies in no span.

    Wall-clock times are compared, as for the room's opening hours: on a day the clocks change, an
    interval that spans the change is judged by its local start and end."""
    if not spans:
        return True
    start, end = interval.starts_at.astimezone(tz), interval.ends_at.astimezone(tz)
    if start.date() != end.date():
        return False
    return any(
        span.weekday == start.weekday() and span.starts <= start.time() and end.time() <= span.ends
        for span in spans
    )


def leave_overlapping(interval: Interval, leave: Iterable[Leave]) -> Leave | None:
    """The earliest leave period that overlaps the interval (half open), or None."""
    found = [
        each for each in leave if each.starts_at < interval.ends_at and interval.starts_at < each.ends_at
    ]
    return min(found, key=lambda each: each.starts_at) if found else None


def is_on(spans: Sequence[WorkingSpan], leave: Iterable[Leave], interval: Interval, tz: dt.tzinfo) -> bool:
    """Whether the member of staff may be booked for the whole interval: inside their working hours
    (`within_working_hours`; always, without a rota) and overlapping none of their leave."""
    return within_working_hours(interval, spans, tz) and leave_overlapping(interval, leave) is None


def free_time(
    day: dt.date, spans: Sequence[WorkingSpan], leave: Iterable[Leave], tz: dt.tzinfo
) -> list[Interval]:
    """The member's bookable time on a local day, as aware intervals in order: their working spans of
    that weekday (the whole day without a rota), less their leave. An interval inside one of these,
    within one day, is one `is_on` accepts (for the slot finder)."""
    if spans:
        pieces = [
            Interval(
                dt.datetime.combine(day, s.starts, tzinfo=tz), dt.datetime.combine(day, s.ends, tzinfo=tz)
            )
            for s in sorted(spans, key=lambda s: s.starts)
            if s.weekday == day.weekday()
        ]
    else:
        # The local day: to the last moment of its date, since an interval that ends at midnight
        # belongs to the next date and lies in no one day (`within_working_hours`).
        pieces = [
            Interval(
                dt.datetime.combine(day, dt.time.min, tzinfo=tz),
                dt.datetime.combine(day, dt.time.max, tzinfo=tz),
            )
        ]
    for away in sorted(leave, key=lambda each: each.starts_at):
        cut: list[Interval] = []
        for piece in pieces:
            if away.ends_at <= piece.starts_at or away.starts_at >= piece.ends_at:
                cut.append(piece)
                continue
            if away.starts_at > piece.starts_at:
                cut.append(Interval(piece.starts_at, away.starts_at))
            if away.ends_at < piece.ends_at:
                cut.append(Interval(away.ends_at, piece.ends_at))
        pieces = cut
    return pieces


def day_spans(day: dt.date, spans: Sequence[WorkingSpan]) -> list[WorkingSpan]:
    """The working spans of the day's weekday, earliest first."""
    return sorted((s for s in spans if s.weekday == day.weekday()), key=lambda s: s.starts)


# --- In words ------------------------------------------------------------------------------------


def describe_hours(spans: Iterable[WorkingSpan]) -> str:
    """The weekly pattern in words, runs of days with the same spans together: "Mon-Fri 08:00-16:00;
    Sat 09:00-12:00, 13:00-15:00"; "no working hours set (always available)" without any."""
    by_day: dict[int, tuple[tuple[dt.time, dt.time], ...]] = {}
    for span in sorted(spans, key=lambda s: (s.weekday, s.starts)):
        by_day[span.weekday] = (*by_day.get(span.weekday, ()), (span.starts, span.ends))
    if not by_day:
        return "no working hours set (always available)"
    groups: list[tuple[int, int, tuple[tuple[dt.time, dt.time], ...]]] = []
    for day in sorted(by_day):
        last = groups[-1] if groups else None
        if last and last[1] == day - 1 and last[2] == by_day[day]:
            groups[-1] = (last[0], day, last[2])
        else:
            groups.append((day, day, by_day[day]))
    parts = []
    for first, last_day, times in groups:
        days = (
            WEEKDAY_SHORT[first] if first == last_day else f"{WEEKDAY_SHORT[first]}-{WEEKDAY_SHORT[last_day]}"
        )
        parts.append(f"{days} " + ", ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in times))
    return "; ".join(parts)


def describe_leave(leave: Leave, tz: dt.tzinfo) -> str:
    """A leave period in words, in the clinic's zone: "from Mon 8 Dec 00:00 until Fri 12 Dec 00:00"."""
    start, end = leave.starts_at.astimezone(tz), leave.ends_at.astimezone(tz)
    return f"from {start:%a %-d %b %Y %H:%M} until {end:%a %-d %b %Y %H:%M}"


def rota_refusal(
    *,
    who: str,
    name: str,
    interval: Interval,
    spans: Sequence[WorkingSpan],
    leave: Iterable[Leave],
    tz: dt.tzinfo,
) -> Criterion | None:
    """Why `name` (the `who`: "The monitor") cannot be booked for the interval, or None: on leave
    (named first: no other time that day helps while it lasts), or off their rota (with when they
    work, so the person booking knows where to look)."""
    away = leave_overlapping(interval, leave)
    start, end = interval.starts_at.astimezone(tz), interval.ends_at.astimezone(tz)
    when = f"{start:%a %-d %b %H:%M}-{end:%H:%M}"
    if away is not None:
        return Criterion(
            "staff_on_leave",
            f"{who} {name} is on leave {describe_leave(away, tz)}, which this session ({when}) falls in. "
            "Choose a time after their leave, or someone else.",
            SOURCE_ROTA,
        )
    if not within_working_hours(interval, spans, tz):
        return Criterion(
            "staff_off_rota",
            f"{who} {name} works {describe_hours(spans)}: this session ({when}) is outside those hours. "
            "Choose a time within them, or someone else.",
            SOURCE_ROTA,
        )
    return None


SOURCE_ROTA = sources.clinic_setting("staff working hours and leave (the clinic's rota)")

sources.register({"staff_off_rota": SOURCE_ROTA, "staff_on_leave": SOURCE_ROTA, "leave_overlap": SOURCE_ROTA})
