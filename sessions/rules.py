"""Dosing-room scheduling rules: chair time, opening hours, out-of-service periods and overlaps.

Pure functions over plain values. Chair time is dosing + monitoring + a turnover buffer, per agent
and route; the clinic sets the minutes (defaults below), except that esketamine is never monitored
for less than the two hours its REMS requires (domain.md 1.4).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

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
    booking_public_id: str | None = None


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
