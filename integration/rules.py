"""Integration's rules as pure functions: experiments and their states, and when each follow-up is due.

The seeds: integration turns "what shifted in perception, what felt newly possible, what the system
is afraid of losing" into "small experiments that will protect the change (sleep, boundaries,
reduced self-attack, repairing relationships, reducing avoidance)". Without it people "default back
to the old groove within days", so every completed dosing session schedules what must follow, at
times the clinic sets (`IntegrationSettings`), none of them constants.

Times: a window in hours is a duration (72 hours is 72 hours across a clock change); a number of
days or weeks lands on the same wall-clock time in the clinic's zone, so a day-3 check-in after a
15:00 session is due at 15:00 local even when the clocks changed in between.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

ESKETAMINE = "esketamine"  # screening.rules.Agent.ESKETAMINE; integration only needs the code
PMF_FILING_DAYS = 7  # Spravato REMS: the Patient Monitoring Form is submitted within 7 days


class ExperimentArea(enum.StrEnum):
    SLEEP = "sleep"
    BOUNDARIES = "boundaries"
    SELF_ATTACK = "self_attack"
    RELATIONSHIPS = "relationships"
    AVOIDANCE = "avoidance"
    OTHER = "other"


EXPERIMENT_AREA_LABELS = {
    ExperimentArea.SLEEP: "Sleep",
    ExperimentArea.BOUNDARIES: "Boundaries",
    ExperimentArea.SELF_ATTACK: "Reduced self-attack",
    ExperimentArea.RELATIONSHIPS: "Repairing relationships",
    ExperimentArea.AVOIDANCE: "Reducing avoidance",
    ExperimentArea.OTHER: "Other",
}


class ExperimentState(enum.StrEnum):
    PLANNED = "planned"
    TRIED = "tried"
    KEPT = "kept"
    DROPPED = "dropped"


EXPERIMENT_STATE_LABELS = {
    ExperimentState.PLANNED: "Planned",
    ExperimentState.TRIED: "Tried",
    ExperimentState.KEPT: "Kept",
    ExperimentState.DROPPED: "Dropped",
}

LIVE_EXPERIMENT_STATES = frozenset({ExperimentState.PLANNED, ExperimentState.TRIED})

# An experiment goes forward; a kept habit can still lapse (dropped), and a dropped one can be taken
# up again as planned. Nothing goes back to "planned" from "tried": it was tried.
_EXPERIMENT_MOVES: dict[ExperimentState, frozenset[ExperimentState]] = {
    ExperimentState.PLANNED: frozenset(
        {ExperimentState.TRIED, ExperimentState.KEPT, ExperimentState.DROPPED}
    ),
    ExperimentState.TRIED: frozenset({ExperimentState.KEPT, ExperimentState.DROPPED}),
    ExperimentState.KEPT: frozenset({ExperimentState.DROPPED}),
    ExperimentState.DROPPED: frozenset({ExperimentState.PLANNED}),
}


WHAT_HAPPENED_NEEDED = "Say what happened: the next session starts from it."


def experiment_move_problem(current: str, new: str, *, what_happened: str) -> str | None:
    """Why an experiment may not go from `current` to `new` (None when it may). Staying put is fine.
    Saying an experiment was kept or dropped needs what happened: that is what the next session reads."""
    if current == new:
        return None
    try:
        allowed = _EXPERIMENT_MOVES[ExperimentState(current)]
        target = ExperimentState(new)
    except ValueError:
        return "Choose one of planned, tried, kept or dropped."
    if target not in allowed:
        return (
            f"An experiment that is {EXPERIMENT_STATE_LABELS[ExperimentState(current)].lower()} cannot "
            f"become {EXPERIMENT_STATE_LABELS[target].lower()}."
        )
    if target in (ExperimentState.KEPT, ExperimentState.DROPPED) and not what_happened.strip():
        return WHAT_HAPPENED_NEEDED
    return None


# --- Follow-ups ------------------------------------------------------------------------------------


class FollowUpKind(enum.StrEnum):
    INTEGRATION_SESSION = "integration_session"
    CHECK_IN = "check_in"
    OUTCOME_MEASURES = "outcome_measures"
    MONITORING_FORM = "monitoring_form"
    VISIT_REMINDER = "visit_reminder"


FOLLOW_UP_KIND_LABELS = {
    FollowUpKind.INTEGRATION_SESSION: "Integration session",
    FollowUpKind.CHECK_IN: "Check-in",
    FollowUpKind.OUTCOME_MEASURES: "Outcome measures",
    FollowUpKind.MONITORING_FORM: "REMS monitoring form",
    FollowUpKind.VISIT_REMINDER: "Fasting and escort reminder",
}

# A reminder's whole job is its message; the others are work that stays open until it is done.
NOTICE_ONLY_KINDS = frozenset({FollowUpKind.VISIT_REMINDER})


@dataclass(frozen=True)
class FollowUpTimings:
    """A clinic's follow-up settings, as plain values."""

    integration_window_hours: int = 72
    check_in_days: tuple[int, ...] = (1, 3, 7)
    measures_interval_weeks: int = 4
    reminder_hour: int = 10


@dataclass(frozen=True)
class PlannedFollowUp:
    """One follow-up to schedule: its kind, which of its kind (the day of a check-in), when it is
    due, and when its message goes out. `sequence` makes scheduling idempotent."""

    kind: FollowUpKind
    sequence: int
    due_at: dt.datetime
    notify_at: dt.datetime


def same_wall_time(moment: dt.datetime, *, days: int, tz: dt.tzinfo) -> dt.datetime:
    """`days` calendar days after `moment` at the same local clock time in `tz`, as UTC.

    A clock time that does not exist that day (inside a spring-forward gap) resolves forward by the
    gap, as zoneinfo's `fold=0` does; an ambiguous one (autumn) takes the first occurrence."""
    local = moment.astimezone(tz)
    day = local.date() + dt.timedelta(days=days)
    wall = dt.datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=tz)
    return wall.astimezone(dt.UTC)


def end_of_local_day(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The last moment of `day` in `tz` (23:59:59), as UTC: a filing deadline that falls on a day."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=tz).astimezone(dt.UTC)


def follow_ups_after_session(
    *,
    completed_at: dt.datetime,
    dosed_at: dt.datetime,
    agent: str,
    tz: dt.tzinfo,
    timings: FollowUpTimings,
    last_measures_at: dt.datetime | None,
) -> list[PlannedFollowUp]:
    """What a completed dosing session schedules.

    - an integration session within the clinic's window after the dose;
    - a check-in on each of the clinic's days after the dose, at the dose's local clock time;
    - the outcome measures again `measures_interval_weeks` after they were last taken (or after this
      dose, when they never were), due no earlier than now;
    - for esketamine, the REMS monitoring form by the end of the 7th day after the session.
    The messages for the integration session and the form go out at once; a check-in's and the
    measures' when they fall due. Every time returned is in UTC.
    """
    # Python adds to an aware datetime on its wall clock when it carries a zone: durations are added
    # in UTC so that 72 hours stay 72 hours across a clock change.
    completed_at, dosed_at = completed_at.astimezone(dt.UTC), dosed_at.astimezone(dt.UTC)
    planned = [
        PlannedFollowUp(
            FollowUpKind.INTEGRATION_SESSION,
            0,
            due_at=dosed_at + dt.timedelta(hours=timings.integration_window_hours),
            notify_at=completed_at,
        )
    ]
    for day in sorted(set(timings.check_in_days)):
        due = same_wall_time(dosed_at, days=day, tz=tz)
        planned.append(PlannedFollowUp(FollowUpKind.CHECK_IN, day, due_at=due, notify_at=due))
    measures_from = last_measures_at or dosed_at
    measures_due = max(
        same_wall_time(measures_from, days=7 * timings.measures_interval_weeks, tz=tz), completed_at
    )
    planned.append(PlannedFollowUp(FollowUpKind.OUTCOME_MEASURES, 0, measures_due, measures_due))
    if agent == ESKETAMINE:
        deadline = end_of_local_day(dosed_at.astimezone(tz).date() + dt.timedelta(days=PMF_FILING_DAYS), tz)
        planned.append(
            PlannedFollowUp(FollowUpKind.MONITORING_FORM, 0, due_at=deadline, notify_at=completed_at)
        )
    return planned


def next_measures_due(
    *, administered_at: dt.datetime, tz: dt.tzinfo, timings: FollowUpTimings
) -> dt.datetime:
    """When the outcome measures are due again after an administration."""
    return same_wall_time(administered_at, days=7 * timings.measures_interval_weeks, tz=tz)


def visit_reminder_at(
    *, starts_at: dt.datetime, tz: dt.tzinfo, reminder_hour: int, now: dt.datetime
) -> dt.datetime | None:
    """When the fasting and escort reminder for a visit goes out: at `reminder_hour` local on the day
    before the visit, or at once when that has passed. None when the visit itself has begun."""
    if starts_at <= now:
        return None
    now = now.astimezone(dt.UTC)
    day_before = starts_at.astimezone(tz).date() - dt.timedelta(days=1)
    at = dt.datetime.combine(day_before, dt.time(reminder_hour), tzinfo=tz).astimezone(dt.UTC)
    return max(at, now)


def is_overdue(*, kind: str, due_at: dt.datetime, now: dt.datetime) -> bool:
    """Open work past its due time. Reminders are never overdue: they are only messages."""
    return kind not in NOTICE_ONLY_KINDS and due_at < now


def parse_check_in_days(text: str) -> tuple[int, ...]:
    """'1, 3, 7' as (1, 3, 7). Raises ValueError with a message a clinic admin can act on."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not parts:
        raise ValueError("Give at least one day, such as 1, 3, 7.")
    try:
        days = sorted({int(part) for part in parts})
    except ValueError:
        raise ValueError("Give whole days separated by commas, such as 1, 3, 7.") from None
    if days[0] < 1 or days[-1] > 90:
        raise ValueError("Check-in days run from 1 to 90 after the session.")
    if len(days) > 10:
        raise ValueError("Ten check-ins at most.")
    return tuple(days)


def retry_delay(attempts: int) -> dt.timedelta:
    """How long to wait before sending a failed message again: 1, 2, 4 ... minutes, at most an hour."""
    return dt.timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def format_days(days: Sequence[int]) -> str:
    return ", ".join(str(day) for day in days)
