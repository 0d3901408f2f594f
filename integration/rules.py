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

import calendar
import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from kaemdr import sources

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
    COURSE_OUTCOME = "course_outcome"


FOLLOW_UP_KIND_LABELS = {
    FollowUpKind.INTEGRATION_SESSION: "Integration session",
    FollowUpKind.CHECK_IN: "Check-in",
    FollowUpKind.OUTCOME_MEASURES: "Outcome measures",
    FollowUpKind.MONITORING_FORM: "REMS monitoring form",
    FollowUpKind.VISIT_REMINDER: "Fasting and escort reminder",
    FollowUpKind.COURSE_OUTCOME: "Outcome measures after the course",
}


def follow_up_label(kind: str, sequence: int) -> str:
    """A follow-up as pages name it: "Check-in (day 3)", "Outcome measures after the course (3 months)",
    or its kind's label."""
    label = FOLLOW_UP_KIND_LABELS.get(kind, kind)  # type: ignore[call-overload]
    if kind == FollowUpKind.CHECK_IN:
        return f"{label} (day {sequence})"
    if kind == FollowUpKind.COURSE_OUTCOME:
        return f"{label} ({sequence} month{'' if sequence == 1 else 's'})"
    return label


# A reminder's whole job is its message; the others are work that stays open until it is done.
NOTICE_ONLY_KINDS = frozenset({FollowUpKind.VISIT_REMINDER})

# Work that outlives the pathway: the Spravato REMS asks for the Patient Monitoring Form of every
# session within 7 days of it, whatever becomes of the course, so completing or discontinuing the
# pathway leaves an open form follow-up open (it still closes when the form is filed).
OUTLIVES_PATHWAY_KINDS = frozenset({FollowUpKind.MONITORING_FORM})


def cancelled_when_pathway_closes(kind: str) -> bool:
    """Whether an open follow-up of `kind` is cancelled when its pathway is completed or discontinued:
    everything but the work that outlives the pathway (`OUTLIVES_PATHWAY_KINDS`)."""
    return kind not in OUTLIVES_PATHWAY_KINDS


@dataclass(frozen=True)
class FollowUpTimings:
    """A clinic's follow-up settings, as plain values."""

    integration_window_hours: int = 72
    check_in_days: tuple[int, ...] = (1, 3, 7)
    measures_interval_weeks: int = 4
    reminder_hour: int = 10
    outcome_follow_up_months: tuple[int, ...] = (1, 3, 6)


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


# --- After the course: outcome measures at months after completion -----------------------------------

COURSE_OUTCOME_MONTHS_MAX = 24
"""The furthest outcome follow-up a clinic may set, in months after the course (two years)."""
COURSE_OUTCOME_MONTHS_MOST = 12
"""How many outcome follow-ups a clinic may set after a course at most."""
COURSE_OUTCOME_INSTRUMENTS = frozenset({"phq9", "gad7", "pcl5"})
"""The measures that answer an outcome follow-up: the repeat outcome measures (screening.rules.Instrument
PHQ-9, GAD-7, PCL-5). The DES-II and the C-SSRS are screens, not outcomes of the course."""


def add_months(moment: dt.datetime, *, months: int, tz: dt.tzinfo) -> dt.datetime:
    """`months` calendar months after `moment`, on its local date in `tz` and at its local clock time,
    as UTC. A day the later month lacks becomes that month's last day (31 January + 1 month is 28 or
    29 February; 31 August + 1 month is 30 September), as a clinic counts months on a calendar.

    A clock time that does not exist that day (inside a spring-forward gap) resolves forward by the
    gap, as zoneinfo's `fold=0` does; an ambiguous one (autumn) takes the first occurrence."""
    local = moment.astimezone(tz)
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    wall = dt.datetime.combine(dt.date(year, month, day), local.time().replace(tzinfo=None), tzinfo=tz)
    return wall.astimezone(dt.UTC)


def follow_ups_after_course(
    *, completed_at: dt.datetime, tz: dt.tzinfo, months: Sequence[int]
) -> list[PlannedFollowUp]:
    """What completing a course schedules: the outcome measures again at each of the clinic's months
    after completion (`IntegrationSettings.outcome_follow_up_months`, by default 1, 3 and 6: the
    follow-up points of the ketamine-assisted psychotherapy outcomes study), due on that calendar day
    at the local clock time of completion, the message going out when each falls due. The month is the
    follow-up's `sequence`, which makes scheduling idempotent. Every time returned is in UTC."""
    planned = []
    for month in sorted(set(months)):
        due = add_months(completed_at, months=month, tz=tz)
        planned.append(PlannedFollowUp(FollowUpKind.COURSE_OUTCOME, month, due_at=due, notify_at=due))
    return planned


def course_outcome_answered(
    *, completed_at: dt.datetime, administered_at: dt.datetime, scheduled: Sequence[tuple[int, dt.datetime]]
) -> int | None:
    """Which outcome follow-up after the course a measure taken at `administered_at` answers: the one
    (by its month) whose due time is nearest, with completion itself as month 0; None when completion
    is nearest (a measure taken as the course ends is not a follow-up). A tie goes to the earlier.

    `scheduled` is every outcome follow-up of the course, open or closed, as (month, due time), so that
    the windows do not move as follow-ups close: a second measure taken the same week answers the same
    follow-up (already done), not the next one."""
    points = [(0, completed_at), *sorted(scheduled, key=lambda point: point[1])]
    month, _ = min(points, key=lambda point: (abs(administered_at - point[1]), point[1]))
    return month or None


def parse_outcome_follow_up_months(text: str) -> tuple[int, ...]:
    """'1, 3, 6' as (1, 3, 6). Raises ValueError with a message a clinic admin can act on."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not parts:
        raise ValueError("Give at least one month, such as 1, 3, 6.")
    try:
        months = sorted({int(part) for part in parts})
    except ValueError:
        raise ValueError("Give whole months separated by commas, such as 1, 3, 6.") from None
    if months[0] < 1 or months[-1] > COURSE_OUTCOME_MONTHS_MAX:
        raise ValueError(
            f"Outcome follow-ups run from 1 to {COURSE_OUTCOME_MONTHS_MAX} months after the course."
        )
    if len(months) > COURSE_OUTCOME_MONTHS_MOST:
        raise ValueError(f"{COURSE_OUTCOME_MONTHS_MOST} outcome follow-ups at most.")
    return tuple(months)


# --- Where the follow-ups and their refusals come from, in the one catalogue ------------------------

SOURCE_INTEGRATION_WINDOW = sources.clinic_setting(
    "Integration session due within (hours)",
    default_from=sources.INTEGRATION_WINDOW_GUIDANCE.at("about 72 hours after the dose"),
)
SOURCE_CHECK_IN_DAYS = sources.clinic_setting("Check-in days after a dose")
SOURCE_MEASURES_INTERVAL = sources.clinic_setting("Outcome measures every (weeks)")
SOURCE_REMINDER_HOUR = sources.clinic_setting("Visit reminder hour, the day before")
SOURCE_OUTCOME_FOLLOW_UP_MONTHS = sources.clinic_setting(
    "Outcome follow-up months", default_from=sources.FIELD_TRIP_KAP.at()
)
SOURCE_MONITORING_FORM = (
    sources.SPRAVATO_REMS.at("the Patient Monitoring Form for every session, within 7 days")
    + sources.SPRAVATO_PMF.at()
)
SOURCE_INTEGRATION = sources.STAGED_PATHWAY.at(
    "integration sessions after each dose turn what shifted into small experiments"
)
SOURCE_NOTE_RECORD = sources.GMC_RECORDS.at("one clear record of each session, made by its author") + (
    sources.NMC_CODE.at("section 10, keep clear and accurate records")
)
SOURCE_FOLLOW_UP_RECORD = sources.GMC_RECORDS.at("record the work done and the reasons for decisions")
SOURCE_SUMMARY = sources.GMC_RECORDS.at("records shared as they were made and signed")

SETTING_SOURCES = {
    "integration_window_hours": SOURCE_INTEGRATION_WINDOW,
    "check_in_days": SOURCE_CHECK_IN_DAYS,
    "measures_interval_weeks": SOURCE_MEASURES_INTERVAL,
    "reminder_hour": SOURCE_REMINDER_HOUR,
    "outcome_follow_up_months": SOURCE_OUTCOME_FOLLOW_UP_MONTHS,
}
"""Each follow-up setting's citation: the setting's name and the source of its default, if any."""

FOLLOW_UP_SOURCES: dict[FollowUpKind, sources.Citation] = {
    FollowUpKind.INTEGRATION_SESSION: SOURCE_INTEGRATION_WINDOW,
    FollowUpKind.CHECK_IN: SOURCE_CHECK_IN_DAYS,
    FollowUpKind.OUTCOME_MEASURES: SOURCE_MEASURES_INTERVAL,
    FollowUpKind.MONITORING_FORM: SOURCE_MONITORING_FORM,
    FollowUpKind.VISIT_REMINDER: sources.FASTING_GUIDANCE.at("fasting and a driver confirmed before the day")
    + SOURCE_REMINDER_HOUR,
    FollowUpKind.COURSE_OUTCOME: SOURCE_OUTCOME_FOLLOW_UP_MONTHS,
}
"""Why each kind of follow-up is scheduled when it is (shown on the follow-up's page)."""

sources.register(
    {
        # Integration notes: after a signed dose, by its therapist, one draft at a time. (A signed
        # note's "signed", an addendum's "not_signed", a time's "future" and "before_dose" and a closed
        # pathway's "pathway_closed" are the same rules as the dosing record's and the pathway's, and
        # carry their citations.)
        "integration_no_session": SOURCE_INTEGRATION,
        "integration_session_not_signed": SOURCE_INTEGRATION,
        "integration_draft_open": SOURCE_NOTE_RECORD,
        "integration_note_empty": SOURCE_NOTE_RECORD,
        # Experiments move forward, and what happened is written down.
        "experiment_invalid_move": SOURCE_INTEGRATION,
        # Follow-ups and their settings
        "follow_up_closed": SOURCE_FOLLOW_UP_RECORD,
        "check_in_days_invalid": SOURCE_CHECK_IN_DAYS,
        "outcome_follow_up_months_invalid": SOURCE_OUTCOME_FOLLOW_UP_MONTHS,
        # A summary shares a signed record as it stands, once it is made.
        "summary_not_ready": SOURCE_SUMMARY,
        "summary_file_missing": SOURCE_SUMMARY,
    }
)


def summary_retry_offered(
    *, status: str, pending_since: dt.datetime, now: dt.datetime, wait: dt.timedelta
) -> bool:
    """Whether a PDF summary's page offers "Try again": it failed, or it has been waiting longer than
    `wait` since it was last queued (its task held back by a broker that was down, or lost)."""
    return status == "failed" or (status == "pending" and now - pending_since >= wait)
