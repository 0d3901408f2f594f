"""Integration's pure rules: when each follow-up falls due (across time zones and clock changes),
when a visit reminder goes out, and how experiments may move."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration import rules
from integration.rules import ExperimentState as S
from integration.rules import FollowUpKind as K

LONDON = zoneinfo.ZoneInfo("Europe/London")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
DEFAULTS = rules.FollowUpTimings()


def local(tz: dt.tzinfo, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def plan_by_key(planned: list[rules.PlannedFollowUp]) -> dict[tuple[str, int], rules.PlannedFollowUp]:
    return {(p.kind, p.sequence): p for p in planned}


def test_a_completed_session_schedules_integration_check_ins_and_measures() -> None:
    dosed = local(LONDON, 2026, 11, 23, 9, 30)
    planned = plan_by_key(
        rules.follow_ups_after_session(
            completed_at=dosed + dt.timedelta(hours=3),
            dosed_at=dosed,
            agent="ketamine",
            tz=LONDON,
            timings=DEFAULTS,
            last_measures_at=local(LONDON, 2026, 11, 2, 14, 0),
        )
    )
    assert set(planned) == {
        (K.INTEGRATION_SESSION, 0),
        (K.CHECK_IN, 1),
        (K.CHECK_IN, 3),
        (K.CHECK_IN, 7),
        (K.OUTCOME_MEASURES, 0),
    }
    assert planned[(K.INTEGRATION_SESSION, 0)].due_at == dosed + dt.timedelta(hours=72)
    # its message goes out when the record is signed, not when it falls due
    assert planned[(K.INTEGRATION_SESSION, 0)].notify_at == dosed + dt.timedelta(hours=3)
    assert planned[(K.CHECK_IN, 3)].due_at == local(LONDON, 2026, 11, 26, 9, 30)
    assert planned[(K.CHECK_IN, 3)].notify_at == planned[(K.CHECK_IN, 3)].due_at
    # measures: four weeks after they were last taken
    assert planned[(K.OUTCOME_MEASURES, 0)].due_at == local(LONDON, 2026, 11, 30, 14, 0)


def test_esketamine_adds_the_monitoring_form_due_by_the_end_of_the_seventh_day() -> None:
    dosed = local(NEW_YORK, 2026, 11, 23, 15, 0)
    planned = plan_by_key(
        rules.follow_ups_after_session(
            completed_at=dosed + dt.timedelta(hours=2),
            dosed_at=dosed,
            agent="esketamine",
            tz=NEW_YORK,
            timings=DEFAULTS,
            last_measures_at=None,
        )
    )
    form = planned[(K.MONITORING_FORM, 0)]
    assert form.due_at == local(NEW_YORK, 2026, 11, 30, 23, 59, 59)
    assert form.notify_at == dosed + dt.timedelta(hours=2)
    # never measured since: four weeks after this dose
    assert planned[(K.OUTCOME_MEASURES, 0)].due_at == local(NEW_YORK, 2026, 12, 21, 15, 0)


def test_measures_long_overdue_are_due_at_once_not_in_the_past() -> None:
    dosed = local(LONDON, 2026, 11, 23, 9, 0)
    completed = dosed + dt.timedelta(hours=2)
    planned = plan_by_key(
        rules.follow_ups_after_session(
            completed_at=completed,
            dosed_at=dosed,
            agent="ketamine",
            tz=LONDON,
            timings=DEFAULTS,
            last_measures_at=local(LONDON, 2026, 6, 1, 9, 0),
        )
    )
    assert planned[(K.OUTCOME_MEASURES, 0)].due_at == completed


def test_check_ins_keep_the_local_clock_time_across_the_autumn_change() -> None:
    # London leaves BST on Sunday 25 October 2026: a 15:00 dose on the Friday before
    dosed = local(LONDON, 2026, 10, 23, 15, 0)
    planned = plan_by_key(
        rules.follow_ups_after_session(
            completed_at=dosed,
            dosed_at=dosed,
            agent="ketamine",
            tz=LONDON,
            timings=DEFAULTS,
            last_measures_at=None,
        )
    )
    day3 = planned[(K.CHECK_IN, 3)].due_at
    assert day3.astimezone(LONDON).hour == 15
    assert day3 - dosed == dt.timedelta(days=3, hours=1)  # 73 real hours: the clocks went back
    # a window in hours is a duration, whatever the clocks do
    assert planned[(K.INTEGRATION_SESSION, 0)].due_at - dosed == dt.timedelta(hours=72)
    assert planned[(K.INTEGRATION_SESSION, 0)].due_at.astimezone(LONDON).hour == 14


def test_check_ins_across_the_spring_change_and_in_the_southern_hemisphere() -> None:
    dosed = local(LONDON, 2026, 3, 27, 10, 0)  # BST starts Sunday 29 March
    planned = plan_by_key(
        rules.follow_ups_after_session(
            completed_at=dosed,
            dosed_at=dosed,
            agent="ketamine",
            tz=LONDON,
            timings=DEFAULTS,
            last_measures_at=None,
        )
    )
    assert planned[(K.CHECK_IN, 3)].due_at == local(LONDON, 2026, 3, 30, 10, 0)
    assert planned[(K.CHECK_IN, 3)].due_at - dosed == dt.timedelta(days=3) - dt.timedelta(hours=1)
    sydney_dose = local(SYDNEY, 2026, 10, 2, 11, 0)  # Sydney moves to daylight time on 4 October
    day7 = rules.same_wall_time(sydney_dose, days=7, tz=SYDNEY)
    assert day7.astimezone(SYDNEY) == local(SYDNEY, 2026, 10, 9, 11, 0)


def test_a_wall_time_inside_the_spring_gap_resolves_forward() -> None:
    dosed = local(LONDON, 2026, 3, 28, 1, 30)
    moved = rules.same_wall_time(dosed, days=1, tz=LONDON)  # 01:30 on 29 March does not exist
    assert moved.astimezone(LONDON).hour == 2
    assert moved.astimezone(LONDON).minute == 30
    assert moved.tzinfo == dt.UTC


@given(
    day=st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 12, 31)),
    days=st.integers(min_value=1, max_value=90),
    zone=st.sampled_from(["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]),
)
def test_same_wall_time_lands_on_the_right_day_at_the_same_clock_time(
    day: dt.datetime, days: int, zone: str
) -> None:
    tz = zoneinfo.ZoneInfo(zone)
    start = day.replace(tzinfo=tz).astimezone(dt.UTC)
    moved = rules.same_wall_time(start, days=days, tz=tz).astimezone(tz)
    begun = start.astimezone(tz)
    assert moved.date() == begun.date() + dt.timedelta(days=days)
    # the same clock time, except when it fell into a spring-forward gap (then at most an hour on)
    delta = dt.datetime.combine(dt.date.min, moved.time()) - dt.datetime.combine(dt.date.min, begun.time())
    assert dt.timedelta(0) <= delta <= dt.timedelta(hours=1)


def test_visit_reminder_goes_out_the_day_before_at_the_clinic_hour() -> None:
    visit = local(LONDON, 2026, 11, 25, 9, 0)
    now = local(LONDON, 2026, 11, 20, 12, 0)
    assert rules.visit_reminder_at(starts_at=visit, tz=LONDON, reminder_hour=10, now=now) == local(
        LONDON, 2026, 11, 24, 10, 0
    )
    # booked late: at once; the visit begun: none
    late = local(LONDON, 2026, 11, 24, 16, 0)
    assert rules.visit_reminder_at(starts_at=visit, tz=LONDON, reminder_hour=10, now=late) == late
    assert rules.visit_reminder_at(starts_at=visit, tz=LONDON, reminder_hour=10, now=visit) is None


def test_a_monday_visit_after_the_clocks_change_is_reminded_at_local_ten_on_sunday() -> None:
    visit = local(LONDON, 2026, 10, 26, 9, 0)  # the day after BST ends
    at = rules.visit_reminder_at(
        starts_at=visit, tz=LONDON, reminder_hour=10, now=local(LONDON, 2026, 10, 1, 9, 0)
    )
    assert at is not None
    assert at.astimezone(LONDON).hour == 10
    assert at.astimezone(LONDON).day == 25
    assert at == dt.datetime(2026, 10, 25, 10, 0, tzinfo=dt.UTC)  # 10:00 GMT


def test_reminders_are_never_overdue_and_work_is() -> None:
    past = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    now = past + dt.timedelta(minutes=1)
    assert rules.is_overdue(kind=K.CHECK_IN, due_at=past, now=now)
    assert not rules.is_overdue(kind=K.VISIT_REMINDER, due_at=past, now=now)
    assert not rules.is_overdue(kind=K.CHECK_IN, due_at=now, now=now)


@pytest.mark.parametrize(
    ("current", "new", "happened", "allowed"),
    [
        (S.PLANNED, S.TRIED, "", True),
        (S.PLANNED, S.KEPT, "Every night this week.", True),
        (S.TRIED, S.KEPT, "", False),  # kept needs what happened
        (S.TRIED, S.DROPPED, "Too ambitious; try a smaller step.", True),
        (S.TRIED, S.PLANNED, "", False),
        (S.KEPT, S.DROPPED, "Lapsed after the move.", True),
        (S.KEPT, S.TRIED, "", False),
        (S.DROPPED, S.PLANNED, "", True),
        (S.TRIED, S.TRIED, "", True),
        (S.PLANNED, "abandoned", "", False),
    ],
)
def test_experiment_moves(current: str, new: str, happened: str, allowed: bool) -> None:
    assert (rules.experiment_move_problem(current, new, what_happened=happened) is None) is allowed


@pytest.mark.parametrize(
    ("text", "days"),
    [("1, 3, 7", (1, 3, 7)), ("7;1;3", (1, 3, 7)), ("2", (2,)), (" 14 , 1 ", (1, 14)), ("1,1,3", (1, 3))],
)
def test_check_in_days_parse(text: str, days: tuple[int, ...]) -> None:
    assert rules.parse_check_in_days(text) == days


@pytest.mark.parametrize("text", ["", "one", "0, 3", "1, 91", "1,2,3,4,5,6,7,8,9,10,11"])
def test_check_in_days_refused_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        rules.parse_check_in_days(text)


def test_retries_back_off_to_an_hour() -> None:
    assert [rules.retry_delay(n).total_seconds() / 60 for n in (1, 2, 3, 7, 20)] == [1, 2, 4, 60, 60]
