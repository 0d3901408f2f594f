"""Reads for rooms, bookings, the room calendar and the clinic's chair times, scoped to the reader's
clinic and role."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import uuid
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Case
from django.db.models import DateTimeField
from django.db.models import F
from django.db.models import IntegerField
from django.db.models import Prefetch
from django.db.models import Q
from django.db.models import QuerySet
from django.db.models import Subquery
from django.db.models import TimeField
from django.db.models import Value
from django.db.models import When
from django.db.models import Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.dateparse import parse_time

from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from pathways.models import Pathway
from pathways.models import Patient
from pathways.selectors import pathway_qs_for_user
from screening import rules as screening_rules
from screening import selectors as screening_selectors
from screening.models import Assessment
from screening.selectors import GATE_FIELDS as SCREENING_GATE_FIELDS
from screening.selectors import ScreeningStatus
from screening.selectors import screening_status_of
from sessions.booking import rota_rules
from sessions.booking import rules
from sessions.models import Booking
from sessions.models import BookingStatus
from sessions.models import ChairTimeSetting
from sessions.models import DosingSession
from sessions.models import DosingSettings
from sessions.models import Room
from sessions.models import RoomClosure
from sessions.models import RoomOpeningHours
from sessions.models import StaffLeave
from sessions.models import StaffWorkingHours


def room_qs_for_user(user: User) -> QuerySet[Room]:
    if not (has_capability(user, Capability.SCHEDULE_VIEW) or has_capability(user, Capability.ROOM_MANAGE)):
        return Room.objects.none()
    return Room.objects.filter(clinic_id=user.member_clinic_id)


def get_room_for_user_or_404(user: User, public_id: uuid.UUID | str) -> Room:
    try:
        return room_qs_for_user(user).get(public_id=public_id)
    except (Room.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such room.") from None


def booking_qs_for_user(user: User) -> QuerySet[Booking]:
    """Bookings of the user's clinic for schedule readers; a therapist sees their care team's."""
    related = Booking.objects.select_related("room", "patient", "pathway", "prescriber", "monitor")
    if has_capability(user, Capability.SCHEDULE_VIEW):
        return related.filter(clinic_id=user.member_clinic_id)
    if has_capability(user, Capability.PATIENT_VIEW_CARE_TEAM):
        return related.filter(pathway__in=pathway_qs_for_user(user))
    return Booking.objects.none()


def get_booking_for_user_or_404(user: User, public_id: uuid.UUID | str) -> Booking:
    try:
        return booking_qs_for_user(user).get(public_id=public_id)
    except (Booking.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such booking.") from None


def booking_overlaps(starts_at: dt.datetime, ends_at: dt.datetime) -> Q:
    """Bookings that overlap `starts_at` to `ends_at` (half open): start before its end and end after
    its start, with both columns bounded on both ends too.

    No booking is longer than `rules.LONGEST_BOOKING` (a check constraint keeps it so), so one that
    ends after `starts_at` started at most that long before it, and one that starts before `ends_at`
    ends at most that long after it. The bounds change no result; they let PostgreSQL read an index
    range of the (room|clinic|patient|monitor, starts_at) or (..., ends_at) indexes instead of
    every booking before (or after) the window: the clinic's history. (A bound past the calendar's
    first or last day is left out: nothing lies beyond it.)"""
    overlap = Q(starts_at__lt=ends_at, ends_at__gt=starts_at)
    with contextlib.suppress(OverflowError):
        overlap &= Q(starts_at__gte=starts_at - rules.LONGEST_BOOKING)
    with contextlib.suppress(OverflowError):
        overlap &= Q(ends_at__lte=ends_at + rules.LONGEST_BOOKING)
    return overlap


_SCREENING_FOR_BOOKING = (*SCREENING_GATE_FIELDS, "agent", "route")
"""The screening's gate fields and the plan (agent and route) a booking takes from it."""

_PATHWAY_FIELDS = tuple(f"pathway__{field.name}" for field in Pathway._meta.concrete_fields)


def pathway_for_booking(pathway: Pathway, *, now: dt.datetime) -> tuple[Pathway, ScreeningStatus]:
    """The pathway read afresh, and its screening gate, for booking it: one query.

    The pathway's screening versions are read newest first with the pathway joined, and
    `screening_status_of` decides from them: the gate every other caller gets from `screening_status`,
    which reads the versions whole with their signers for the pages that show them. Here only the
    gate's fields and the plan are read (`_SCREENING_FOR_BOOKING`): the versions go no further than
    the booking. A pathway with no screening yet, which the gate refuses, is read on its own.

    The patient is not read again: a pathway's patient never changes, so the one `pathway` holds
    (every page and the API load it with the pathway) comes along; without it, it loads when used.
    """
    versions = list(
        Assessment.objects.filter(pathway_id=pathway.pk)
        .select_related("pathway")
        .only(*_SCREENING_FOR_BOOKING, *_PATHWAY_FIELDS)
        .order_by("-version")
    )
    fresh = versions[0].pathway if versions else Pathway.objects.get(pk=pathway.pk)
    if Pathway.patient.is_cached(pathway) and fresh.patient_id == pathway.patient_id:
        fresh.patient = pathway.patient
    return fresh, screening_status_of(versions, now=now)


def chair_time_for(clinic_id: int, *, agent: str, route: str) -> rules.ChairTime:
    """The clinic's chair time for the agent and route, or the default.

    A clinic has at most one setting per agent and route (`chair_time_one_per_route`), so the row is
    read as it comes, without the ordering `first()` would add. Every booking reads it, so the
    statement is written out once (`_chair_time_statement`) rather than built by the ORM per call."""
    with connection.cursor() as cursor:
        cursor.execute(_chair_time_statement(), [clinic_id, agent, route])
        row = cursor.fetchone()
    if row is not None:
        return rules.ChairTime(*row)
    return rules.DEFAULT_CHAIR_TIMES[(agent, route)]


@functools.cache
def _chair_time_statement() -> str:
    table = connection.ops.quote_name(ChairTimeSetting._meta.db_table)
    # Only a name from the model's meta is written into the statement; every value is a parameter.
    return (
        f"SELECT dosing_minutes, monitoring_minutes, turnover_minutes FROM {table}"  # noqa: S608  # nosec B608
        " WHERE clinic_id = %s AND agent = %s AND route = %s"
    )


def opening_hours(room: Room) -> list[rules.OpeningHours]:
    """The room's weekly opening hours, as the rules take them (plain rows, no model instances)."""
    rows = RoomOpeningHours.objects.filter(room_id=room.pk).values_list("weekday", "opens", "closes")
    return [rules.OpeningHours(*row) for row in rows]


NEXT_FREE_HORIZON_DAYS = 28
"""How far ahead from the asked day a refusal looks for the next free start."""


@dataclass(frozen=True)
class TimeReads:
    """What a booking's time is decided on (`booking_time_reads`): the room's opening hours, what the
    asked interval clashes with, and, only when it clashes, what the next free start is looked for
    among (`busy`: None when that was not read); and the rota of the booking's staff: each one's
    working hours (`rota`, by user id: none for a member who keeps no rota) and their leave that
    overlaps the asked interval (`leave`, by user id)."""

    hours: list[rules.OpeningHours]
    conflicts: list[rules.Conflict]
    busy: list[rules.Interval] | None
    rota: dict[int, list[rota_rules.WorkingSpan]] = field(default_factory=dict)
    leave: dict[int, list[rota_rules.Leave]] = field(default_factory=dict)


def booking_time_reads(
    *,
    room: Room,
    patient_id: int,
    monitor: User,
    interval: rules.Interval,
    tz: dt.tzinfo,
    from_day: dt.date,
    now: dt.datetime,
    exclude_booking_id: int | None = None,
    prescriber_id: int | None = None,
) -> TimeReads:
    """The room's opening hours and everything `interval` clashes with, in one statement: live
    bookings of the same room, patient or monitor, and the room's out-of-service periods. With a
    clash, the same statement also reads the bookings of the room, patient and monitor over the next
    free start's search window from `from_day` (`next_free_slot_for`'s), for the refusal to name it;
    without one, that part is not run (PostgreSQL decides it once, before reading a row). The same
    statement reads the rota of the monitor and the prescriber (`prescriber_id`): their working hours
    in this clinic, and their leave that overlaps `interval` (bounded on both ends by
    `rota_rules.LONGEST_LEAVE`, an index range of `staff_leave_staff_end`).

    Checked on every booking and move, so the statement is written out once (`_time_reads_statement`)
    rather than built by the ORM per call, and reads only what the messages name, as plain rows. A
    booking that clashes through the monitor has `monitor` as its monitor, so the monitor's name is not
    read again. Every time range is bounded on both ends (`booking_overlaps`), so the bookings are an
    index range of the live bookings' partial indexes (migration 0007), not the clinic's history."""
    window = _search_window(from_day, tz=tz, now=now)
    reach = (
        interval
        if window is None
        else rules.Interval(min(window.starts_at, interval.starts_at), max(window.ends_at, interval.ends_at))
    )
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {
        "clinic": room.clinic_id,
        "room": room.pk,
        "patient": patient_id,
        "monitor": monitor.pk,
        "prescriber": monitor.pk if prescriber_id is None else prescriber_id,
        "cancelled": str(BookingStatus.CANCELLED),
        "searched": window is not None,
        "reach_starts": adapt(reach.starts_at),
        "reach_ends": adapt(reach.ends_at),
    }
    for name, span in (("asked", interval), ("window", window or interval)):
        params[f"{name}_starts"] = adapt(span.starts_at)
        params[f"{name}_ends"] = adapt(span.ends_at)
        params[f"{name}_first_start"] = adapt(_moved_by(span.starts_at, -rules.LONGEST_BOOKING))
        params[f"{name}_last_end"] = adapt(_moved_by(span.ends_at, rules.LONGEST_BOOKING))
    params["leave_first_start"] = adapt(_moved_by(interval.starts_at, -rota_rules.LONGEST_LEAVE))
    params["leave_last_end"] = adapt(_moved_by(interval.ends_at, rota_rules.LONGEST_LEAVE))
    if exclude_booking_id is not None:
        params["exclude"] = exclude_booking_id
    with connection.cursor() as cursor:
        cursor.execute(_time_reads_statement(excluding=exclude_booking_id is not None), params)
        rows = cursor.fetchall()
    hours: list[rules.OpeningHours] = []
    clashes: list[tuple[dt.datetime, dt.datetime, int, int, str, str, str]] = []
    closures: list[tuple[dt.datetime, dt.datetime, str]] = []
    busy: list[rules.Interval] = []
    rota: dict[int, list[rota_rules.WorkingSpan]] = {}
    leave: dict[int, list[rota_rules.Leave]] = {}
    for kind, weekday, opens, closes, starts, ends, room_id, clash_patient_id, words, given, family in rows:
        if kind == "hours":
            hours.append(rules.OpeningHours(weekday, _clock(opens), _clock(closes)))
        elif kind == "rota":  # the member of staff's id comes in the room's column
            rota.setdefault(room_id, []).append(
                rota_rules.WorkingSpan(weekday, _clock(opens), _clock(closes))
            )
        elif kind == "leave":
            leave.setdefault(room_id, []).append(rota_rules.Leave(_moment(starts), _moment(ends)))
        elif kind == "clash":
            clashes.append((_moment(starts), _moment(ends), room_id, clash_patient_id, words, given, family))
        elif kind == "closure":
            closures.append((_moment(starts), _moment(ends), words))
        else:
            busy.append(rules.Interval(_moment(starts), _moment(ends)))
    hours.sort(key=lambda each: each.weekday)
    found: list[rules.Conflict] = []
    for starts_at, ends_at, room_id, clash_patient_id, room_name, given_name, family_name in sorted(
        clashes, key=lambda clash: clash[0]
    ):
        if room_id == room.pk:
            patient = Patient(given_name=given_name, family_name=family_name)  # the model words the name
            what, kind = f"The room is booked for {patient.full_name}", "room"
        elif clash_patient_id == patient_id:
            what, kind = "The patient is already booked", "patient"
        else:
            what, kind = f"The monitor {monitor.full_name} is already booked", "monitor"
        text = rules.describe_clash(what=what, starts_at=starts_at, ends_at=ends_at, room=room_name, tz=tz)
        found.append(rules.Conflict(kind, text))
    for starts_at, ends_at, reason in sorted(closures, key=lambda closure: closure[0]):
        if interval.overlaps(rules.Interval(starts_at, ends_at)):
            text = rules.describe_clash(
                what=f"The room is out of service ({reason})",
                starts_at=starts_at,
                ends_at=ends_at,
                room=room.name,
                tz=tz,
            )
            found.append(rules.Conflict("closure", text))
    if window is None or not found:
        return TimeReads(hours=hours, conflicts=found, busy=None, rota=rota, leave=leave)
    out_of_service = [rules.Interval(s, e) for s, e, _ in closures]
    return TimeReads(
        hours=hours,
        conflicts=found,
        busy=busy + [closure for closure in out_of_service if closure.overlaps(window)],
        rota=rota,
        leave=leave,
    )


@functools.cache
def _time_reads_statement(*, excluding: bool) -> str:
    """`booking_time_reads`' statement (named parameters), with or without a booking left out (the one
    being moved). One row per opening day ('hours'), clashing booking ('clash', with the room's name
    and the patient's), out-of-service period over the search window ('closure', with its reason),
    and, only when something clashes, booking over the search window ('busy'); then the working
    hours ('rota') and the leave over the asked interval ('leave') of the monitor and the prescriber,
    the member's id in the room's column."""
    quote = connection.ops.quote_name
    booking, closure, hours, room, patient, working, away = (
        quote(model._meta.db_table)
        for model in (Booking, RoomClosure, RoomOpeningHours, Room, Patient, StaffWorkingHours, StaffLeave)
    )
    live = (
        "b.clinic_id = %(clinic)s AND b.status <> %(cancelled)s"
        " AND (b.room_id = %(room)s OR b.patient_id = %(patient)s OR b.monitor_id = %(monitor)s)"
        + (" AND b.id <> %(exclude)s" if excluding else "")
    )

    def overlapping(span: str) -> str:  # as `booking_overlaps`: bounded on both ends
        return (
            f"b.starts_at < %({span}_ends)s AND b.ends_at > %({span}_starts)s"
            f" AND b.starts_at >= %({span}_first_start)s AND b.ends_at <= %({span}_last_end)s"
        )

    # Only names from the models' meta are written into the statement; every value is a parameter.
    return (
        f"WITH clash AS (SELECT b.room_id, b.patient_id, b.starts_at, b.ends_at FROM {booking} b"  # noqa: S608  # nosec B608
        f" WHERE {live} AND {overlapping('asked')}),"
        f" closure AS (SELECT c.starts_at, c.ends_at, c.reason FROM {closure} c"
        " WHERE c.room_id = %(room)s AND c.starts_at < %(reach_ends)s AND c.ends_at > %(reach_starts)s)"
        " SELECT 'hours', h.weekday, h.opens, h.closes, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
        f" FROM {hours} h WHERE h.room_id = %(room)s"
        " UNION ALL SELECT 'clash', NULL, NULL, NULL, c.starts_at, c.ends_at, c.room_id, c.patient_id,"
        f" r.name, p.given_name, p.family_name FROM clash c JOIN {room} r ON r.id = c.room_id"
        f" JOIN {patient} p ON p.id = c.patient_id"
        " UNION ALL SELECT 'closure', NULL, NULL, NULL, c.starts_at, c.ends_at, NULL, NULL, c.reason,"
        " NULL, NULL FROM closure c"
        " UNION ALL SELECT 'busy', NULL, NULL, NULL, b.starts_at, b.ends_at, NULL, NULL, NULL, NULL, NULL"
        f" FROM {booking} b WHERE %(searched)s AND {live} AND {overlapping('window')}"
        " AND (EXISTS (SELECT 1 FROM clash) OR EXISTS (SELECT 1 FROM closure c"
        " WHERE c.starts_at < %(asked_ends)s AND c.ends_at > %(asked_starts)s))"
        " UNION ALL SELECT 'rota', w.weekday, w.starts, w.ends, NULL, NULL, w.staff_id, NULL, NULL, NULL,"
        f" NULL FROM {working} w WHERE w.staff_id IN (%(monitor)s, %(prescriber)s)"
        " AND w.clinic_id = %(clinic)s"
        " UNION ALL SELECT 'leave', NULL, NULL, NULL, l.starts_at, l.ends_at, l.staff_id, NULL, NULL, NULL,"
        f" NULL FROM {away} l WHERE l.staff_id IN (%(monitor)s, %(prescriber)s)"
        " AND l.starts_at < %(asked_ends)s AND l.ends_at > %(asked_starts)s"
        " AND l.starts_at >= %(leave_first_start)s AND l.ends_at <= %(leave_last_end)s"
    )


def _moved_by(moment: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """`moment` moved by `delta`, held at the calendar's first or last moment rather than overflowing
    (a bound there leaves nothing out)."""
    try:
        return moment + delta
    except OverflowError:
        return (
            dt.datetime.min.replace(tzinfo=dt.UTC)
            if delta < dt.timedelta(0)
            else dt.datetime.max.replace(tzinfo=dt.UTC)
        )


def _moment(value: Any) -> dt.datetime:
    """A timestamp of a written-out statement as the ORM gives it: PostgreSQL's come aware, SQLite's as
    text or naive, in the connection's zone (UTC)."""
    moment: dt.datetime = parse_datetime(value) if isinstance(value, str) else value  # type: ignore[assignment]
    if moment.tzinfo is not None:
        return moment
    return timezone.make_aware(moment, connection.timezone)


def _clock(value: Any) -> dt.time:
    """A time of day of a written-out statement (SQLite's come as text)."""
    return parse_time(value) if isinstance(value, str) else value  # type: ignore[return-value]


def _search_window(
    from_day: dt.date, *, tz: dt.tzinfo, now: dt.datetime, horizon_days: int = NEXT_FREE_HORIZON_DAYS
) -> rules.Interval | None:
    """Where `next_free_slot_for` looks for a free start: `horizon_days` from the start of `from_day`;
    None (nothing looked for) when the day is beyond the booking horizon."""
    if not rules.within_booking_horizon(from_day, today=now.astimezone(tz).date()):
        return None
    start = dt.datetime.combine(from_day, dt.time.min, tzinfo=tz)
    return rules.Interval(start, start + dt.timedelta(days=horizon_days))


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def todays_board(user: User, *, day: dt.date) -> list[Booking]:
    """The day's live bookings: a monitor's own first, then the clinic's, in time order."""
    tz = user.zone
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    bookings = (
        booking_qs_for_user(user)
        .select_related("session")
        .filter(starts_at__gte=start, starts_at__lt=start + dt.timedelta(days=1))
        .exclude(status=BookingStatus.CANCELLED)
        .order_by("starts_at", "id")
    )
    return list(bookings)


UPCOMING_DAYS = 7
UPCOMING_SHOWN = 10


_DASHBOARD_BOOKING_FIELDS = (
    "public_id",
    "starts_at",
    "ends_at",
    "fasting_confirmed",
    "escort_confirmed",
    "prescriber",
    "room__name",
    "patient__public_id",
    "patient__given_name",
    "patient__family_name",
    "monitor__full_name",
    "session__public_id",
)
"""What the dashboard's session rows show (`sessions/today_panel.html`) and its read audit names: no
whole patient, pathway or user rows for a name (issue 22)."""


@dataclass(frozen=True)
class DashboardBookings:
    today: list[Booking]
    upcoming: list[Booking]


def dashboard_bookings(
    user: User, *, day: dt.date, days: int = UPCOMING_DAYS, limit: int = UPCOMING_SHOWN
) -> DashboardBookings:
    """The dashboard's sessions: every live booking of `day` the user may see (as `todays_board`), and
    the soonest `limit` of the `days` after it. One query however full the calendar: the later ones
    are ranked by a window over their own partition and cut at `limit` in the same statement."""
    tz = user.zone
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    tomorrow = start + dt.timedelta(days=1)
    later = Case(When(starts_at__gte=tomorrow, then=Value(True)), default=Value(False))
    rows = (
        booking_qs_for_user(user)
        .select_related(None)
        .select_related("room", "patient", "monitor", "session")
        .only(*_DASHBOARD_BOOKING_FIELDS)
        .filter(starts_at__gte=start, starts_at__lt=tomorrow + dt.timedelta(days=days))
        .exclude(status=BookingStatus.CANCELLED)
        .annotate(
            is_later=later,
            later_rank=Window(
                RowNumber(), partition_by=[later], order_by=[F("starts_at").asc(), F("id").asc()]
            ),
        )
        .filter(Q(is_later=False) | Q(later_rank__lte=limit))
        .order_by("starts_at", "id")
    )
    bookings = list(rows)
    return DashboardBookings(
        today=[b for b in bookings if not getattr(b, "is_later")],  # noqa: B009  (the annotation)
        upcoming=[b for b in bookings if getattr(b, "is_later")],  # noqa: B009
    )


PATHWAY_BOOKINGS_SHOWN = 10
"""How many bookings the pathway page shows: the latest (upcoming ones included), with a link to
the full list. A patient treated for years has hundreds; the page must not grow with them."""


def can_see_pathway_bookings(user: User) -> bool:
    """Whether the user may see a pathway's dosing sessions (on the pathway page and their full list):
    schedule readers, and the care team's therapist."""
    return has_capability(user, Capability.SCHEDULE_VIEW) or has_capability(
        user, Capability.PATIENT_VIEW_CARE_TEAM
    )


_PATHWAY_BOOKING_FIELDS = (
    "public_id",
    "starts_at",
    "ends_at",
    "status",
    "cancellation_reason",
    "room__name",
    "monitor__full_name",
)
"""What a pathway's booking row shows (`sessions/_booking_row.html`): the room's and monitor's names."""


def pathway_bookings_qs(pathway: Any) -> QuerySet[Booking]:
    """The pathway's bookings, newest first, with what a row shows (room, monitor) in the same query."""
    return (
        Booking.objects.filter(pathway=pathway)
        .select_related("room", "monitor")
        .only(*_PATHWAY_BOOKING_FIELDS)
        .order_by("-starts_at", "-id")
    )


@dataclass(frozen=True)
class LatestBookings:
    bookings: list[Booking]
    """The latest bookings, oldest first."""
    has_earlier: bool
    """Whether the pathway has more bookings than shown (then the page links to the full list)."""


def pathway_latest_bookings(pathway: Any, *, limit: int = PATHWAY_BOOKINGS_SHOWN) -> LatestBookings:
    """The pathway page's dosing sessions: the latest `limit`, in one query (one more row is read
    to know whether there are earlier ones, instead of counting them all)."""
    rows = list(pathway_bookings_qs(pathway)[: limit + 1])
    return LatestBookings(bookings=rows[:limit][::-1], has_earlier=len(rows) > limit)


def dosing_settings_for(clinic_id: int) -> DosingSettings:
    """The clinic's dosing limits, or the defaults (unsaved) when the clinic has not changed them."""
    return DosingSettings.objects.filter(clinic_id=clinic_id).first() or DosingSettings(clinic_id=clinic_id)


# --- Esketamine: the course the label's frequency counts ----------------------------------------------


@dataclass(frozen=True)
class CourseSession:
    """One esketamine session of a course as the label's rules count it: on its dose's day once the
    dose was started, else on its booked day (both in the clinic's zone)."""

    booking_id: int
    day: dt.date
    dosed: bool


def esketamine_course(pathway_id: int, *, tz: dt.tzinfo) -> list[CourseSession]:
    """The pathway's esketamine sessions that count toward the label's doses and frequency: every live
    booking, and every booking whose dose was started (a dose given stays given, even if its booking
    was cancelled afterwards). One query."""
    rows = (
        Booking.objects.filter(pathway_id=pathway_id, agent=screening_rules.Agent.ESKETAMINE)
        .filter(~Q(status=BookingStatus.CANCELLED) | Q(session__dose_started_at__isnull=False))
        .values_list("pk", "starts_at", "session__dose_started_at")
    )
    return [
        CourseSession(pk, (dosed_at or starts_at).astimezone(tz).date(), dosed_at is not None)
        for pk, starts_at, dosed_at in rows
    ]


# --- The time-grid room calendar --------------------------------------------------------------------

CALENDAR_STEP_MINUTES = 15
"""One grid row of the calendar: bookings and closed hours are placed to the quarter hour."""


@dataclass(frozen=True)
class CalendarColumn:
    """One column of the grid: a day of one room (`room` set), headed by `heading`."""

    date: dt.date
    room: Room
    heading: str
    subheading: str
    is_today: bool
    column: int  # the CSS grid column (the time axis is column 1)


@dataclass(frozen=True)
class CalendarBlock:
    """Something placed in a column: a booking (with its state) or closed/out-of-service time."""

    kind: str  # "booking", "closed" or "closure"
    column: int
    row_start: int
    row_end: int
    lane: int
    lanes: int
    text: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    booking: Booking | None = None
    state: str = ""
    state_label: str = ""


@dataclass(frozen=True)
class RoomUse:
    room: Room
    utilisation: float
    open_minutes: int
    booked_minutes: int


@dataclass(frozen=True)
class CalendarGrid:
    columns: list[CalendarColumn]
    header_rows: int
    day_headers: list[tuple[dt.date, int, int, bool]]  # (date, first column, span, is today), across rooms
    hours: list[tuple[int, str]]  # (row, "09:00") for each whole hour
    last_row: int
    blocks: list[CalendarBlock]
    now_row: int | None
    now_columns: list[int]
    now_label: str
    uses: list[RoomUse]
    bookings: list[Booking]


def room_calendar(
    user: User, *, first_day: dt.date, days: int, room: Room | None = None, now: dt.datetime
) -> CalendarGrid:
    """The rooms' calendar as a time grid for `days` days from `first_day`: time down the side; a column
    per day (one room's week), per room (a day), or per day and room (the week across rooms).

    Four queries however many rooms and bookings: the active rooms, their opening hours, their
    out-of-service periods in the window, and the window's bookings (with their session's status, for
    "in progress"). Bookings are placed by their chair time as booked (`starts_at` to `ends_at`).
    """
    tz = user.zone
    start = dt.datetime.combine(first_day, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(first_day + dt.timedelta(days=days), dt.time.min, tzinfo=tz)
    rooms_qs = (
        room_qs_for_user(user)
        .filter(is_active=True)
        .prefetch_related(
            Prefetch("opening_hours", queryset=RoomOpeningHours.objects.order_by("weekday")),
            Prefetch(
                "closures",
                queryset=RoomClosure.objects.filter(starts_at__lt=end, ends_at__gt=start).order_by(
                    "starts_at"
                ),
            ),
        )
        .order_by("name")
    )
    if room is not None:
        rooms_qs = rooms_qs.filter(pk=room.pk)
    rooms = list(rooms_qs)
    bookings = list(
        booking_qs_for_user(user)
        .filter(booking_overlaps(start, end), room__in=[r.pk for r in rooms])
        .select_related("session")
        .order_by("starts_at", "id")
    )
    hours = {
        r.pk: [rules.OpeningHours(h.weekday, h.opens, h.closes) for h in r.opening_hours.all()] for r in rooms
    }
    dates = [first_day + dt.timedelta(days=i) for i in range(days)]
    today = now.astimezone(tz).date()

    # The window shown each day: whole hours from the earliest opening (or booking) to the latest.
    first_minute, last_minute = 24 * 60, 0
    for day_hours in [h for rows in hours.values() for h in rows]:
        first_minute = min(first_minute, day_hours.opens.hour * 60 + day_hours.opens.minute)
        last_minute = max(last_minute, day_hours.closes.hour * 60 + day_hours.closes.minute)
    for booking in bookings:
        local_start, local_end = booking.starts_at.astimezone(tz), booking.ends_at.astimezone(tz)
        first_minute = min(first_minute, local_start.hour * 60 + local_start.minute)
        if local_end.date() > local_start.date():
            last_minute = 24 * 60
        else:
            last_minute = max(last_minute, local_end.hour * 60 + local_end.minute)
    if first_minute >= last_minute:
        first_minute, last_minute = 7 * 60, 20 * 60
    first_hour, last_hour = first_minute // 60, min(24, -(-last_minute // 60))

    across_rooms = room is None and days > 1
    header_rows = 2 if across_rooms else 1
    columns: list[CalendarColumn] = []
    day_headers: list[tuple[dt.date, int, int, bool]] = []
    for day_index, day in enumerate(dates):
        if across_rooms:
            day_headers.append((day, 2 + day_index * len(rooms), max(1, len(rooms)), day == today))
        for room_index, each in enumerate(rooms):
            column = 2 + (day_index * len(rooms) + room_index if days > 1 else room_index)
            if room is not None and days > 1:
                heading, subheading = f"{day:%a} {day.day} {day:%b}", ""
            elif days == 1:
                heading, subheading = each.name, ""
            else:
                heading, subheading = each.name, f"{day:%a} {day.day}"
            columns.append(CalendarColumn(day, each, heading, subheading, day == today, column))

    def row_of(moment: dt.datetime, day: dt.date, *, upper: bool) -> int:
        day_start = dt.datetime.combine(day, dt.time(first_hour), tzinfo=tz)
        minutes = (moment - day_start).total_seconds() / 60
        minutes = max(0.0, min(minutes, (last_hour - first_hour) * 60))
        steps = -(-minutes // CALENDAR_STEP_MINUTES) if upper else minutes // CALENDAR_STEP_MINUTES
        return header_rows + 1 + int(steps)

    last_row = header_rows + 1 + (last_hour - first_hour) * 60 // CALENDAR_STEP_MINUTES
    by_column: dict[tuple[int, dt.date], list[Booking]] = defaultdict(list)
    for booking in bookings:
        local_start = booking.starts_at.astimezone(tz)
        local_end = booking.ends_at.astimezone(tz)
        day = local_start.date()
        while day <= local_end.date() and day < dates[-1] + dt.timedelta(days=1):
            if day >= first_day:
                by_column[(booking.room_id, day)].append(booking)
            day += dt.timedelta(days=1)
    blocks: list[CalendarBlock] = []
    for col in columns:
        window = rules.Interval(
            dt.datetime.combine(col.date, dt.time(first_hour), tzinfo=tz),
            dt.datetime.combine(col.date, dt.time.min, tzinfo=tz) + dt.timedelta(hours=last_hour),
        )
        opening = rules.day_opening(col.date, hours[col.room.pk], tz)
        closures = [(rules.Interval(c.starts_at, c.ends_at), c.reason) for c in col.room.closures.all()]
        for span, kind, text in rules.closed_spans(window, opening=opening, closures=closures):
            blocks.append(
                CalendarBlock(
                    kind,
                    col.column,
                    row_of(span.starts_at, col.date, upper=False),
                    max(
                        row_of(span.ends_at, col.date, upper=True),
                        row_of(span.starts_at, col.date, upper=False) + 1,
                    ),
                    0,
                    1,
                    text,
                    span.starts_at,
                    span.ends_at,
                )
            )
        placed = by_column[(col.room.pk, col.date)]
        places = rules.lanes([rules.Interval(b.starts_at, b.ends_at) for b in placed])
        for booking, (lane, lane_count) in zip(placed, places, strict=True):
            top = row_of(booking.starts_at, col.date, upper=False)
            state = rules.calendar_state(booking.status, has_session=_has_session(booking))
            blocks.append(
                CalendarBlock(
                    "booking",
                    col.column,
                    top,
                    max(row_of(booking.ends_at, col.date, upper=True), top + 1),
                    min(lane, 5),
                    min(lane_count, 6),  # the stylesheet places up to six side by side
                    booking.patient.full_name,
                    booking.starts_at,
                    booking.ends_at,
                    booking,
                    state.value,
                    rules.CALENDAR_STATE_LABELS[state],
                )
            )
    local_now = now.astimezone(tz)
    now_row = None
    now_columns = [c.column for c in columns if c.date == today]
    if now_columns and first_hour * 60 <= local_now.hour * 60 + local_now.minute < last_hour * 60:
        now_row = row_of(now, today, upper=False)
    uses = []
    for each in rooms:
        open_minutes = 0
        for day in dates:
            opening = rules.day_opening(day, hours[each.pk], tz)
            if opening is not None:
                open_minutes += int((opening.ends_at - opening.starts_at).total_seconds() // 60)
        live = [
            rules.Interval(max(b.starts_at, start), min(b.ends_at, end))
            for b in bookings
            if b.room_id == each.pk and b.status != BookingStatus.CANCELLED
        ]
        booked = int(sum((i.ends_at - i.starts_at).total_seconds() for i in live) // 60)
        uses.append(RoomUse(each, rules.utilisation(live, open_minutes), open_minutes, booked))
    return CalendarGrid(
        columns=columns,
        header_rows=header_rows,
        day_headers=day_headers,
        hours=[
            (
                row_of(dt.datetime.combine(first_day, dt.time(h), tzinfo=tz), first_day, upper=False),
                f"{h:02d}:00",
            )
            for h in range(first_hour, last_hour)
        ],
        last_row=last_row,
        blocks=blocks,
        now_row=now_row,
        now_columns=now_columns,
        now_label=f"{local_now:%H:%M}",
        uses=uses,
        bookings=bookings,
    )


def _has_session(booking: Booking) -> bool:
    try:
        return booking.session is not None
    except DosingSession.DoesNotExist:
        return False


@dataclass(frozen=True)
class Availability:
    """A room's day for booking: the room (by public id), its hours in words, whether it is open that
    day, and the free starts for a session of `minutes` that the room, the monitor and the patient
    leave (none when the length is not known yet)."""

    room_public_id: uuid.UUID
    day: dt.date
    minutes: int | None
    hours_text: str
    is_open: bool
    slots: list[dt.datetime]


AVAILABILITY_HORIZON_DAYS = 28
"""How far ahead the next open day is looked for when no day is asked for."""


def booking_availability(
    *,
    rooms: QuerySet[Room],
    room_public_id: uuid.UUID | None,
    day: dt.date | None,
    after: dt.date,
    minutes: int | None,
    tz: dt.tzinfo,
    now: dt.datetime,
    clinic_id: int,
    monitor_public_id: uuid.UUID | None = None,
    patient_id: int | None = None,
) -> Availability | None:
    """The booking form's (and the API's) day: `day`, or the room's next open day from `after` (its
    hours less its out-of-service periods), with its free starts (`rules.free_slots`).

    The room is the one of `rooms` named, or else their first by name (the form's first choice). One
    query whatever the data: the room's opening hours, its out-of-service periods and the live
    bookings of the room, the monitor and the patient over the days looked at, as one union of rows
    (the booking page's budget of 12 queries has room for no more). None when no such room has
    opening hours (a room never opened: nothing to offer), or the day is beyond the booking horizon
    (`rules.within_booking_horizon`)."""
    if not rules.within_booking_horizon(day or after, today=now.astimezone(tz).date()):
        return None
    target = rooms.filter(public_id=room_public_id) if room_public_id is not None else rooms.order_by("name")
    room_id = Subquery(target.values("pk")[:1])
    start = dt.datetime.combine(day or after, dt.time.min, tzinfo=tz)
    end = start + dt.timedelta(days=1 if day is not None else AVAILABILITY_HORIZON_DAYS)
    no_time, no_moment = Value(None, output_field=TimeField()), Value(None, output_field=DateTimeField())
    columns = ("row_kind", "room_key", "row_weekday", "row_opens", "row_closes", "row_starts", "row_ends")
    hours = RoomOpeningHours.objects.filter(room_id=room_id).annotate(
        row_kind=Value("hours"),
        room_key=F("room__public_id"),
        row_weekday=F("weekday"),
        row_opens=F("opens"),
        row_closes=F("closes"),
        row_starts=no_moment,
        row_ends=no_moment,
    )
    closures = RoomClosure.objects.filter(room_id=room_id, starts_at__lt=end, ends_at__gt=start).annotate(
        row_kind=Value("closure"),
        room_key=F("room__public_id"),
        row_weekday=Value(None, output_field=IntegerField()),
        row_opens=no_time,
        row_closes=no_time,
        row_starts=F("starts_at"),
        row_ends=F("ends_at"),
    )
    who = Q(room_id=room_id)
    if monitor_public_id is not None:
        who |= Q(monitor__public_id=monitor_public_id)
    if patient_id is not None:
        who |= Q(patient_id=patient_id)
    bookings = Booking.objects.filter(
        who, ~Q(status=BookingStatus.CANCELLED), booking_overlaps(start, end), clinic_id=clinic_id
    ).annotate(
        row_kind=Value("booking"),
        room_key=F("room__public_id"),
        row_weekday=Value(None, output_field=IntegerField()),
        row_opens=no_time,
        row_closes=no_time,
        row_starts=F("starts_at"),
        row_ends=F("ends_at"),
    )
    # Each part unordered: SQLite (the embedded default) allows no ORDER BY inside a UNION's parts.
    rows = list(
        hours.order_by()
        .values_list(*columns)
        .union(closures.order_by().values_list(*columns), bookings.order_by().values_list(*columns), all=True)
    )
    opening = [rules.OpeningHours(w, o, c) for kind, _, w, o, c, _, _ in rows if kind == "hours"]
    room_keys = {key for kind, key, *_ in rows if kind == "hours"}
    if not opening:
        return None
    out_of_service = [rules.Interval(s, e) for kind, _, _, _, _, s, e in rows if kind == "closure"]
    busy = [rules.Interval(s, e) for kind, _, _, _, _, s, e in rows if kind == "booking"] + out_of_service
    chosen = day or rules.next_open_day(
        after, hours=opening, closures=out_of_service, tz=tz, horizon_days=AVAILABILITY_HORIZON_DAYS
    )
    chosen = chosen or after
    return Availability(
        room_public_id=room_keys.pop(),
        day=chosen,
        minutes=minutes,
        hours_text=rules.describe_opening_hours(opening),
        is_open=rules.is_open_day(chosen, hours=opening, closures=out_of_service, tz=tz),
        slots=rules.free_slots(chosen, hours=opening, busy=busy, minutes=minutes, tz=tz, not_before=now)
        if minutes
        else [],
    )


def _busy(
    *,
    room: Room,
    monitor_id: int | None,
    patient_id: int | None,
    start: dt.datetime,
    end: dt.datetime,
    exclude_booking_id: int | None = None,
) -> tuple[list[rules.Interval], list[rules.Interval]]:
    """Live bookings of the room, monitor or patient, and the room's out-of-service periods, between
    `start` and `end` (two queries)."""
    who = Q(room_id=room.pk)
    if monitor_id is not None:
        who |= Q(monitor_id=monitor_id)
    if patient_id is not None:
        who |= Q(patient_id=patient_id)
    rows = Booking.objects.filter(
        who, ~Q(status=BookingStatus.CANCELLED), booking_overlaps(start, end), clinic_id=room.clinic_id
    )
    if exclude_booking_id is not None:
        rows = rows.exclude(pk=exclude_booking_id)
    closures = RoomClosure.objects.filter(room_id=room.pk, starts_at__lt=end, ends_at__gt=start)
    return (
        [rules.Interval(*row) for row in rows.values_list("starts_at", "ends_at")],
        [rules.Interval(*row) for row in closures.values_list("starts_at", "ends_at")],
    )


def next_free_slot_for(
    *,
    room: Room,
    from_day: dt.date,
    minutes: int,
    tz: dt.tzinfo,
    now: dt.datetime,
    monitor_id: int | None = None,
    patient_id: int | None = None,
    exclude_booking_id: int | None = None,
    horizon_days: int = NEXT_FREE_HORIZON_DAYS,
    hours: list[rules.OpeningHours] | None = None,
    busy: list[rules.Interval] | None = None,
) -> dt.datetime | None:
    """The earliest start from `from_day` on that the room, the monitor and the patient leave free, for
    a refusal to name: the bookings and the closures of the horizon (two queries) unless the caller
    has them (`busy`, as `booking_time_reads` reads them over the same window), and the opening hours
    unless the caller has them (`hours`)."""
    window = _search_window(from_day, tz=tz, now=now, horizon_days=horizon_days)
    if window is None:
        return None
    if hours is None:
        hours = opening_hours(room)
    if busy is None:
        bookings, closures = _busy(
            room=room,
            monitor_id=monitor_id,
            patient_id=patient_id,
            start=window.starts_at,
            end=window.ends_at,
            exclude_booking_id=exclude_booking_id,
        )
        busy = bookings + closures
    return rules.next_free_slot(
        from_day,
        hours=hours,
        busy=busy,
        minutes=minutes,
        tz=tz,
        not_before=now,
        horizon_days=horizon_days,
    )


def planned_chair_minutes(pathway: Pathway) -> int | None:
    """The chair time (minutes) a booking of the pathway takes: the clinic's for the current signed
    screening's agent and route; None while there is no such plan."""
    plan = screening_selectors.current_screening(pathway)
    if plan is None or not plan.agent or not plan.route:
        return None
    return chair_time_for(pathway.clinic_id, agent=plan.agent, route=plan.route).total_minutes
