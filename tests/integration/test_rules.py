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


# --- After the course: outcome follow-ups at months after completion ---------------------------------

UTC = dt.UTC


@pytest.mark.parametrize(
    ("tz", "completed", "months", "due"),
    [
        # month ends: a day the later month lacks becomes its last day
        (LONDON, (2025, 1, 31, 14, 0), 1, (2025, 2, 28, 14, 0)),
        (LONDON, (2024, 1, 31, 14, 0), 1, (2024, 2, 29, 14, 0)),  # a leap year
        (LONDON, (2025, 1, 31, 14, 0), 3, (2025, 4, 30, 14, 0)),
        (LONDON, (2025, 1, 31, 14, 0), 6, (2025, 7, 31, 14, 0)),
        (LONDON, (2025, 8, 31, 9, 30), 1, (2025, 9, 30, 9, 30)),
        (LONDON, (2025, 3, 30, 9, 30), 1, (2025, 4, 30, 9, 30)),
        (LONDON, (2025, 2, 28, 9, 30), 1, (2025, 3, 28, 9, 30)),  # the 28th stays the 28th
        # across the year end, and the furthest a clinic may set
        (LONDON, (2025, 11, 15, 11, 0), 3, (2026, 2, 15, 11, 0)),
        (LONDON, (2025, 12, 31, 11, 0), 2, (2026, 2, 28, 11, 0)),
        (LONDON, (2025, 2, 10, 11, 0), 24, (2027, 2, 10, 11, 0)),
        # the same local clock time across a clock change (GMT in January, BST in April)
        (LONDON, (2025, 1, 15, 16, 0), 3, (2025, 4, 15, 16, 0)),
        (NEW_YORK, (2025, 10, 20, 17, 0), 1, (2025, 11, 20, 17, 0)),
        (SYDNEY, (2025, 9, 1, 10, 0), 1, (2025, 10, 1, 10, 0)),
        # the local calendar day counts, not UTC's: 00:30 on 1 March in Sydney is still February in UTC
        (SYDNEY, (2025, 3, 1, 0, 30), 1, (2025, 4, 1, 0, 30)),
        (NEW_YORK, (2025, 1, 31, 22, 0), 1, (2025, 2, 28, 22, 0)),  # already 1 February in UTC
    ],
)
def test_add_months_counts_calendar_months_in_the_clinics_zone(
    tz: dt.tzinfo,
    completed: tuple[int, int, int, int, int],
    months: int,
    due: tuple[int, int, int, int, int],
) -> None:
    got = rules.add_months(local(tz, *completed), months=months, tz=tz)
    assert got == local(tz, *due)
    assert got.tzinfo == UTC


def test_add_months_inside_the_spring_gap_resolves_forward() -> None:
    # 01:30 on 30 March 2025 does not exist in London (the clocks go from 01:00 GMT to 02:00 BST): it
    # resolves to 02:30 BST, which is 01:30 UTC, as the dose-day follow-ups do
    got = rules.add_months(local(LONDON, 2025, 1, 30, 1, 30), months=2, tz=LONDON)
    assert got == dt.datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert got.astimezone(LONDON).hour == 2


@given(
    moment=st.datetimes(
        min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 12, 31), timezones=st.just(UTC)
    ),
    months=st.integers(min_value=1, max_value=rules.COURSE_OUTCOME_MONTHS_MAX),
    tz=st.sampled_from([LONDON, NEW_YORK, SYDNEY]),
)
def test_add_months_lands_n_calendar_months_on_at_most_the_same_day(
    moment: dt.datetime, months: int, tz: dt.tzinfo
) -> None:
    start = moment.astimezone(tz)
    due = rules.add_months(moment, months=months, tz=tz).astimezone(tz)
    assert (due.year * 12 + due.month) - (start.year * 12 + start.month) == months
    assert due.day == start.day or (due.day < start.day and (due + dt.timedelta(days=1)).day == 1)


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        ((1, 3, 6), {1: (2025, 2, 28, 14, 0), 3: (2025, 4, 30, 14, 0), 6: (2025, 7, 31, 14, 0)}),
        ((6, 1, 3, 3), {1: (2025, 2, 28, 14, 0), 3: (2025, 4, 30, 14, 0), 6: (2025, 7, 31, 14, 0)}),
        ((12,), {12: (2026, 1, 31, 14, 0)}),
        ((), {}),
    ],
)
def test_completing_a_course_schedules_the_clinics_months(
    months: tuple[int, ...], expected: dict[int, tuple[int, ...]]
) -> None:
    planned = rules.follow_ups_after_course(
        completed_at=local(LONDON, 2025, 1, 31, 14, 0), tz=LONDON, months=months
    )
    assert [p.kind for p in planned] == [K.COURSE_OUTCOME] * len(expected)
    assert {p.sequence: p.due_at for p in planned} == {m: local(LONDON, *d) for m, d in expected.items()}
    assert all(p.notify_at == p.due_at for p in planned)  # the message goes out when it falls due


COMPLETED = local(LONDON, 2025, 1, 31, 14, 0)
SCHEDULED = [
    (month, rules.add_months(COMPLETED, months=month, tz=LONDON))
    for month in DEFAULTS.outcome_follow_up_months
]


@pytest.mark.parametrize(
    ("administered", "month"),
    [
        (COMPLETED + dt.timedelta(days=1), None),  # as the course ends: not a follow-up
        (COMPLETED + dt.timedelta(days=14), None),  # nearer completion (31 Jan) than 28 Feb
        (COMPLETED + dt.timedelta(days=15), 1),
        (local(LONDON, 2025, 2, 28, 14, 0), 1),
        (local(LONDON, 2025, 2, 21, 9, 0), 1),  # a week early
        (local(LONDON, 2025, 3, 30, 14, 0), 1),  # the tie between 28 Feb and 30 Apr goes to the earlier
        (local(LONDON, 2025, 3, 31, 14, 0), 3),
        (local(LONDON, 2025, 4, 30, 14, 0), 3),
        (local(LONDON, 2025, 6, 14, 14, 0), 3),
        (local(LONDON, 2025, 6, 16, 14, 0), 6),
        (local(LONDON, 2026, 1, 1, 14, 0), 6),  # late: still the last follow-up's
    ],
)
def test_a_measure_answers_the_follow_up_it_is_nearest(administered: dt.datetime, month: int | None) -> None:
    assert (
        rules.course_outcome_answered(
            completed_at=COMPLETED, administered_at=administered, scheduled=SCHEDULED
        )
        == month
    )


def test_no_follow_ups_scheduled_means_nothing_is_answered() -> None:
    answered = rules.course_outcome_answered(
        completed_at=COMPLETED, administered_at=COMPLETED + dt.timedelta(days=40), scheduled=[]
    )
    assert answered is None


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("1, 3, 6", (1, 3, 6)),
        ("6,3,1", (1, 3, 6)),
        ("1; 3; 3", (1, 3)),
        ("1", (1,)),
        ("24", (24,)),
        ("1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12", tuple(range(1, 13))),
    ],
)
def test_outcome_follow_up_months_parse(text: str, months: tuple[int, ...]) -> None:
    assert rules.parse_outcome_follow_up_months(text) == months


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Give at least one month"),
        (" , ", "Give at least one month"),
        ("0, 3", "from 1 to 24 months"),
        ("1, 25", "from 1 to 24 months"),
        ("-1", "from 1 to 24 months"),
        ("1.5", "whole months"),
        ("one", "whole months"),
        ("1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13", "12 outcome follow-ups at most"),
    ],
)
def test_outcome_follow_up_months_refused_with_a_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rules.parse_outcome_follow_up_months(text)


@pytest.mark.parametrize(
    ("kind", "cancelled"),
    [
        (K.MONITORING_FORM, False),  # the REMS form outlives the pathway
        (K.INTEGRATION_SESSION, True),
        (K.CHECK_IN, True),
        (K.OUTCOME_MEASURES, True),
        (K.VISIT_REMINDER, True),
        (K.COURSE_OUTCOME, True),
    ],
)
def test_what_a_closing_pathway_cancels(kind: str, cancelled: bool) -> None:
    assert rules.cancelled_when_pathway_closes(kind) is cancelled


@pytest.mark.parametrize(
    ("kind", "sequence", "label"),
    [
        (K.CHECK_IN, 3, "Check-in (day 3)"),
        (K.COURSE_OUTCOME, 1, "Outcome measures after the course (1 month)"),
        (K.COURSE_OUTCOME, 6, "Outcome measures after the course (6 months)"),
        (K.MONITORING_FORM, 0, "REMS monitoring form"),
    ],
)
def test_follow_up_labels(kind: str, sequence: int, label: str) -> None:
    assert rules.follow_up_label(kind, sequence) == label


def test_every_follow_up_kind_and_setting_has_its_source() -> None:
    assert set(rules.FOLLOW_UP_SOURCES) == set(K)
    outcome = rules.SETTING_SOURCES["outcome_follow_up_months"].text
    assert outcome.startswith("Clinic setting, Outcome follow-up months; ")
    assert "NCT05604794" in outcome
    assert rules.FOLLOW_UP_SOURCES[K.MONITORING_FORM].text.startswith("Spravato REMS")
    assert rules.SETTING_SOURCES["integration_window_hours"].text.startswith(
        "Clinic setting, Integration session due within (hours); "
    )
