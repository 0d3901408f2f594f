"""Dosing-room scheduling rules: chair time, opening hours, out-of-service periods and overlaps.

Pure functions over plain values. Chair time is dosing + monitoring + a turnover buffer, per agent
and route; the clinic sets the minutes (defaults below), except that esketamine is never monitored
for less than the two hours its REMS requires (domain.md 1.4).

Also the free-slot search, how far bookings reach, the time-grid calendar, the esketamine label a
clinic follows, and `Criterion`, the unmet rule that every domain of `sessions` answers with."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass

from kaemdr import sources
from screening.rules import Agent
from screening.rules import Route

ESKETAMINE_MINIMUM_MONITORING_MINUTES = 120  # FDA REMS: monitor at least 2 hours (domain.md 1.4)


@dataclass(frozen=True)
class ChairTime:
    """Minutes a booking holds its room for one agent and route."""

    dosing_minutes: int
    monitoring_minutes: int
    turnover_minutes: int

    @property
    def total_minutes(self) -> int:
        return self.dosing_minutes + self.monitoring_minutes + self.turnover_minutes


# Defaults a clinic starts from (domain.md 1.4-1.5): IV 0.5 mg/kg over 40 minutes; sublingual peaks at
# about 40 minutes and fades over 1-2 hours; IM acts in about 5 minutes and lasts about an hour;
# esketamine uses up to 3 devices 5 minutes apart and then at least 2 hours of monitoring.
DEFAULT_CHAIR_TIMES: dict[tuple[str, str], ChairTime] = {
    (Agent.RACEMIC_KETAMINE, Route.IV): ChairTime(40, 90, 15),
    (Agent.RACEMIC_KETAMINE, Route.IM): ChairTime(10, 90, 15),
    (Agent.RACEMIC_KETAMINE, Route.SUBLINGUAL): ChairTime(30, 120, 15),
    (Agent.RACEMIC_KETAMINE, Route.ORAL): ChairTime(30, 120, 15),
    (Agent.ESKETAMINE, Route.INTRANASAL): ChairTime(15, ESKETAMINE_MINIMUM_MONITORING_MINUTES, 15),
}


LONGEST_DOSING_MINUTES = 240
LONGEST_MONITORING_MINUTES = 480
LONGEST_TURNOVER_MINUTES = 120
"""The most a clinic may set for each part of a chair time (the settings form, the API and the model
take these)."""

LONGEST_BOOKING = dt.timedelta(
    minutes=LONGEST_DOSING_MINUTES + LONGEST_MONITORING_MINUTES + LONGEST_TURNOVER_MINUTES
)
"""The longest a booking can hold its room: the longest chair time (14 hours). A check constraint keeps
every booking within it (`booking_within_longest_chair_time`), so a read of the bookings that overlap
a window also bounds their start from below (`starts_at >= window start - LONGEST_BOOKING`) and reads
an index range, not the room's whole history (`overlapping`)."""


def chair_time_problem(*, agent: str, monitoring_minutes: int) -> str | None:
    """Why a clinic's chair time cannot be used, or None: esketamine needs 2 hours of monitoring."""
    if agent == Agent.ESKETAMINE and monitoring_minutes < ESKETAMINE_MINIMUM_MONITORING_MINUTES:
        return "Esketamine needs at least 120 minutes of monitoring (REMS)."
    return None


@dataclass(frozen=True)
class Interval:
    starts_at: dt.datetime
    ends_at: dt.datetime

    def overlaps(self, other: Interval) -> bool:
        """Half-open intervals: a booking may start the minute the previous one ends."""
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at


@dataclass(frozen=True)
class OpeningHours:
    weekday: int  # Monday is 0
    opens: dt.time
    closes: dt.time


def within_opening_hours(interval: Interval, hours: Iterable[OpeningHours], tz: dt.tzinfo) -> bool:
    """Whether the whole interval falls inside one day's opening hours, in the clinic's time zone."""
    start = interval.starts_at.astimezone(tz)
    end = interval.ends_at.astimezone(tz)
    if start.date() != end.date():
        return False
    return any(
        day.weekday == start.weekday() and day.opens <= start.time() and end.time() <= day.closes
        for day in hours
    )


def end_for(starts_at: dt.datetime, chair_time: ChairTime) -> dt.datetime:
    return starts_at + dt.timedelta(minutes=chair_time.total_minutes)


def moved(interval: Interval, new_start: dt.datetime) -> Interval:
    """The same length, starting at `new_start`."""
    return Interval(new_start, new_start + (interval.ends_at - interval.starts_at))


@dataclass(frozen=True)
class Conflict:
    """Something a booking would clash with, worded for the person booking."""

    kind: str
    text: str


def describe_clash(
    *, what: str, starts_at: dt.datetime, ends_at: dt.datetime, room: str, tz: dt.tzinfo
) -> str:
    start, end = starts_at.astimezone(tz), ends_at.astimezone(tz)
    return f"{what}: {room}, {start:%a %-d %b %H:%M}-{end:%H:%M}."


def utilisation(booked: Sequence[Interval], open_minutes: int) -> float:
    """Share of the open minutes that bookings take (0.0-1.0)."""
    if open_minutes <= 0:
        return 0.0
    minutes = sum((b.ends_at - b.starts_at).total_seconds() / 60 for b in booked)
    return min(1.0, minutes / open_minutes)


# --- The session record ---------------------------------------------------------------------------


class EsketamineLabel(enum.StrEnum):
    """The esketamine label a clinic follows: it sets the day-1 dose, the doses allowed, the induction and
    maintenance frequency, and the jurisdiction's duties (REMS and its monitoring form under the US
    label; the Readiness to Leave checklist under the EU/UK summary of product characteristics)."""

    US_PI = "us_pi"
    EU_UK_SMPC = "eu_uk_smpc"


ESKETAMINE_LABEL_NAMES = {
    EsketamineLabel.US_PI: "US prescribing information (REMS)",
    EsketamineLabel.EU_UK_SMPC: "EU/UK summary of product characteristics (no REMS)",
}


@dataclass(frozen=True)
class Criterion:
    """An unmet rule, as the record shows it and the API answers it: a stable code, what to do, and
    the clinical source that asks for it."""

    code: str
    message: str
    source: sources.Citation


# --- The codes of the booking and record rules, in the one catalogue ----------------------------------

SOURCE_BOOKING = sources.clinic_setting(
    "rooms, opening hours, closures and chair time"
) + sources.SPRAVATO_US_PI.at("section 2.1: each patient observed by a healthcare provider throughout")
SOURCE_SIGNED_RECORD = sources.GMC_RECORDS.at(
    "records are not altered after the event; corrections are added"
)

sources.register(
    {
        "booking_conflict": SOURCE_BOOKING,
        "closure_conflict": SOURCE_BOOKING,
        "outside_opening_hours": SOURCE_BOOKING,
        "next_free_slot": SOURCE_BOOKING,
        "room_inactive": SOURCE_BOOKING,
        "room_bp_monitor": sources.SPRAVATO_US_PI.at("section 2.1, blood pressure before and after dosing")
        + sources.SANACORA_2017.at("monitoring of vital signs"),
        "room_pulse_oximeter": sources.SPRAVATO_REMS.at("a pulse oximeter on site for every session"),
        "rems_enrolment_missing": sources.SPRAVATO_REMS.at("patients enrolled before the first dose"),
        "rems_minimum": sources.SPRAVATO_REMS.at("monitor at least 2 hours after each dose"),
        "screening_gate": sources.STAGED_PATHWAY.at("a current signed screening before any dose is booked"),
        "instructions_first": sources.FASTING_GUIDANCE.at("fasting instructions given before the day"),
        "not_booked": SOURCE_SIGNED_RECORD,
        "cancelled": SOURCE_SIGNED_RECORD,
    }
)


# --- Free slots and the next open day (the booking form, its refusals and the API) -------------------

SLOT_STEP_MINUTES = 15
"""Free start times are offered on this grid, counted from the day's opening time."""

WEEKDAY_SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def day_opening(day: dt.date, hours: Iterable[OpeningHours], tz: dt.tzinfo) -> Interval | None:
    """The day's opening hours as an aware interval in the clinic's zone, or None on a closed weekday."""
    for each in hours:
        if each.weekday == day.weekday():
            return Interval(
                dt.datetime.combine(day, each.opens, tzinfo=tz),
                dt.datetime.combine(day, each.closes, tzinfo=tz),
            )
    return None


def is_open_day(
    day: dt.date, *, hours: Iterable[OpeningHours], closures: Sequence[Interval], tz: dt.tzinfo
) -> bool:
    """Whether any of the day's opening hours is left once out-of-service periods are taken out."""
    opening = day_opening(day, hours, tz)
    if opening is None:
        return False
    cursor = opening.starts_at
    for closure in sorted(closures, key=lambda c: c.starts_at):
        if closure.ends_at <= cursor or closure.starts_at >= opening.ends_at:
            continue
        if closure.starts_at > cursor:
            return True
        cursor = max(cursor, closure.ends_at)
        if cursor >= opening.ends_at:
            return False
    return cursor < opening.ends_at


def next_open_day(
    after: dt.date,
    *,
    hours: Sequence[OpeningHours],
    closures: Sequence[Interval],
    tz: dt.tzinfo,
    horizon_days: int = 60,
) -> dt.date | None:
    """The first day from `after` (itself included) with opening hours not all out of service; None
    when the room has no such day within the horizon (no hours at all, a long closure)."""
    for offset in range(horizon_days):
        day = after + dt.timedelta(days=offset)
        if is_open_day(day, hours=hours, closures=closures, tz=tz):
            return day
    return None


def free_slots(
    day: dt.date,
    *,
    hours: Sequence[OpeningHours],
    busy: Sequence[Interval],
    minutes: int,
    tz: dt.tzinfo,
    not_before: dt.datetime | None = None,
    step_minutes: int = SLOT_STEP_MINUTES,
) -> list[dt.datetime]:
    """Every start on the day's grid (every `step_minutes` from opening) at which a session of
    `minutes` fits inside the opening hours and overlaps nothing in `busy` (bookings of the room, the
    patient or the monitor, and out-of-service periods), and starts no earlier than `not_before`.

    The same tests the booking service applies (`within_opening_hours`, half-open overlaps), so a slot
    offered here is one the service accepts, barring a booking made in between."""
    starts = _free_starts(
        day, hours=hours, busy=busy, minutes=minutes, tz=tz, not_before=not_before, step_minutes=step_minutes
    )
    return list(starts)


def _free_starts(
    day: dt.date,
    *,
    hours: Sequence[OpeningHours],
    busy: Sequence[Interval],
    minutes: int,
    tz: dt.tzinfo,
    not_before: dt.datetime | None,
    step_minutes: int,
) -> Iterator[dt.datetime]:
    """`free_slots`, one at a time: the next free start (`next_free_slot`) stops at the first."""
    opening = day_opening(day, hours, tz)
    if opening is None or minutes <= 0 or step_minutes <= 0:
        return
    length = dt.timedelta(minutes=minutes)
    step = dt.timedelta(minutes=step_minutes)
    relevant = [b for b in busy if b.starts_at < opening.ends_at and b.ends_at > opening.starts_at]
    start = opening.starts_at
    while start + length <= opening.ends_at:
        end = start + length
        if (
            (not_before is None or start >= not_before)
            # `Interval(start, end).overlaps(b)`, written out: this runs for every start of every day
            # a refusal's next free start is looked for on.
            and not any(start < b.ends_at and b.starts_at < end for b in relevant)
            and within_opening_hours(Interval(start, end), hours, tz)
        ):
            yield start
        start += step


def next_free_slot(
    from_day: dt.date,
    *,
    hours: Sequence[OpeningHours],
    busy: Sequence[Interval],
    minutes: int,
    tz: dt.tzinfo,
    not_before: dt.datetime | None = None,
    horizon_days: int = 28,
) -> dt.datetime | None:
    """The earliest free start (`free_slots`) from `from_day` on, within the horizon; None if none."""
    for offset in range(horizon_days):
        first = next(
            _free_starts(
                from_day + dt.timedelta(days=offset),
                hours=hours,
                busy=busy,
                minutes=minutes,
                tz=tz,
                not_before=not_before,
                step_minutes=SLOT_STEP_MINUTES,
            ),
            None,
        )
        if first is not None:
            return first
    return None


def describe_opening_hours(hours: Iterable[OpeningHours]) -> str:
    """The weekly hours in words, runs of days with the same hours together: "Mon-Fri 09:00-17:00,
    Sat 10:00-14:00"; "no opening hours set" when there are none."""
    by_day = sorted(hours, key=lambda h: h.weekday)
    groups: list[tuple[int, int, dt.time, dt.time]] = []
    for each in by_day:
        last = groups[-1] if groups else None
        if last and last[1] == each.weekday - 1 and (last[2], last[3]) == (each.opens, each.closes):
            groups[-1] = (last[0], each.weekday, each.opens, each.closes)
        else:
            groups.append((each.weekday, each.weekday, each.opens, each.closes))
    if not groups:
        return "no opening hours set"
    parts = []
    for first, last_day, opens, closes in groups:
        days = (
            WEEKDAY_SHORT[first] if first == last_day else f"{WEEKDAY_SHORT[first]}-{WEEKDAY_SHORT[last_day]}"
        )
        parts.append(f"{days} {opens:%H:%M}-{closes:%H:%M}")
    return ", ".join(parts)


def describe_next_free(slot: dt.datetime | None, tz: dt.tzinfo) -> str:
    """The next free slot in words for a refusal."""
    if slot is None:
        return "No free slot in the next four weeks."
    return f"Next free slot: {slot.astimezone(tz):%a %-d %b %H:%M}."


# --- How far bookings reach ------------------------------------------------------------------------

BOOKING_HORIZON = dt.timedelta(days=2 * 366)
"""A booking starts within two years of now; free starts are looked for over the same span. It also
keeps a start's end (start + chair time) inside the calendar: a start late on 31 December 9999 would
otherwise overflow."""


def within_booking_horizon(day: dt.date, *, today: dt.date) -> bool:
    """Whether free starts may be looked for on `day`: within `BOOKING_HORIZON` of `today`, either way.
    Callers ask before any date arithmetic, so a day near the ends of the calendar (year 1 or 9999)
    is answered "nothing to offer" rather than overflowing."""
    return today - BOOKING_HORIZON <= day <= today + BOOKING_HORIZON


# --- The time-grid calendar ---------------------------------------------------------------------------


class CalendarState(enum.StrEnum):
    """How a booking shows on the calendar (colour and its text label)."""

    BOOKED = "booked"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


CALENDAR_STATE_LABELS = {
    CalendarState.BOOKED: "Booked",
    CalendarState.IN_PROGRESS: "In progress",
    CalendarState.DONE: "Done",
    CalendarState.CANCELLED: "Cancelled",
}


def calendar_state(booking_status: str, *, has_session: bool) -> CalendarState:
    """Booked until its session record opens (then in progress); completed is done."""
    if booking_status == "cancelled":
        return CalendarState.CANCELLED
    if booking_status == "completed":
        return CalendarState.DONE
    return CalendarState.IN_PROGRESS if has_session else CalendarState.BOOKED


def lanes(intervals: Sequence[Interval]) -> list[tuple[int, int]]:
    """Side-by-side places for overlapping blocks in one calendar column: for each interval (in the
    order given) its lane and the number of lanes of the group of overlapping intervals it is in.
    Intervals that do not overlap each other all get lane 0 of 1."""
    order = sorted(range(len(intervals)), key=lambda i: (intervals[i].starts_at, intervals[i].ends_at))
    placed: dict[int, int] = {}
    groups: list[list[int]] = []
    lane_ends: list[dt.datetime] = []
    group_end: dt.datetime | None = None
    for index in order:
        interval = intervals[index]
        if group_end is None or interval.starts_at >= group_end:
            groups.append([])
            lane_ends = []
            group_end = interval.ends_at
        for lane, end in enumerate(lane_ends):
            if end <= interval.starts_at:
                lane_ends[lane] = interval.ends_at
                placed[index] = lane
                break
        else:
            placed[index] = len(lane_ends)
            lane_ends.append(interval.ends_at)
        groups[-1].append(index)
        group_end = max(group_end, interval.ends_at)
    width = {index: len({placed[i] for i in group}) for group in groups for index in group}
    return [(placed[i], width[i]) for i in range(len(intervals))]


def closed_spans(
    window: Interval, *, opening: Interval | None, closures: Sequence[tuple[Interval, str]]
) -> list[tuple[Interval, str, str]]:
    """The parts of a calendar column's window the room cannot be booked, as (interval, kind, text):
    kind "closed" before opening and after closing (the whole window on a closed weekday), and
    kind "closure" for each out-of-service period (its reason), cut to the window."""
    spans: list[tuple[Interval, str, str]] = []
    if opening is None:
        spans.append((window, "closed", "Closed"))
    else:
        if opening.starts_at > window.starts_at:
            spans.append(
                (Interval(window.starts_at, min(opening.starts_at, window.ends_at)), "closed", "Closed")
            )
        if opening.ends_at < window.ends_at:
            spans.append(
                (Interval(max(opening.ends_at, window.starts_at), window.ends_at), "closed", "Closed")
            )
    for closure, reason in closures:
        if closure.overlaps(window):
            cut = Interval(max(closure.starts_at, window.starts_at), min(closure.ends_at, window.ends_at))
            spans.append((cut, "closure", f"Out of service: {reason}"))
    return [span for span in spans if span[0].starts_at < span[0].ends_at]
