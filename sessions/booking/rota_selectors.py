"""Reads of staff rotas: the members a clinic admin keeps a rota for, their weekly hours and leave, and
who is on each day of the week calendar. The rota is staff data, not clinical content (like the
clinic's staff list): it names no patient, so reading it writes no read event."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import CharField
from django.db.models import DateTimeField
from django.db.models import IntegerField
from django.db.models import Prefetch
from django.db.models import Q
from django.db.models import QuerySet
from django.db.models import TimeField
from django.db.models import Value
from django.http import Http404

from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from sessions.booking import rota_rules
from sessions.models import StaffLeave
from sessions.models import StaffWorkingHours

ROTA_ROLES = (Role.PRESCRIBER, Role.MONITOR, Role.THERAPIST)
"""The roles a clinic keeps rotas for: whoever a booking or an appointment names."""

CALENDAR_ROLES = (Role.PRESCRIBER, Role.MONITOR)
"""The roles the room calendar shows on its "who is on" row: whom a dosing booking names."""

ROLE_SHORT: dict[str, str] = {
    Role.PRESCRIBER: "prescriber",
    Role.MONITOR: "monitor",
    Role.THERAPIST: "therapist",
}


def rota_staff_qs_for_user(user: User) -> QuerySet[User]:
    """The active members of the user's clinic whose rota they keep (`ROTA_ROLES`); none unless the
    user manages rotas."""
    if not has_capability(user, Capability.ROTA_MANAGE):
        return User.objects.none()
    return User.objects.filter(clinic_id=user.member_clinic_id, role__in=ROTA_ROLES, is_active=True).order_by(
        "full_name", "id"
    )


def get_rota_staff_for_user_or_404(user: User, public_id: uuid.UUID | str) -> User:
    """One member whose rota the user keeps, or 404 alike for missing, another clinic's, inactive, a
    role without a rota, or a reader who keeps no rotas."""
    try:
        return rota_staff_qs_for_user(user).get(public_id=public_id)
    except (User.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such member of staff.") from None


def leave_qs_for_user(user: User) -> QuerySet[StaffLeave]:
    """The clinic's leave periods, for whoever keeps its rotas; none for anyone else."""
    if not has_capability(user, Capability.ROTA_MANAGE):
        return StaffLeave.objects.none()
    return StaffLeave.objects.filter(clinic_id=user.member_clinic_id).select_related("staff")


def get_leave_for_user_or_404(user: User, public_id: uuid.UUID | str) -> StaffLeave:
    try:
        return leave_qs_for_user(user).get(public_id=public_id)
    except (StaffLeave.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such leave.") from None


@dataclass(frozen=True)
class StaffRota:
    """A member's rota as the rota page and the API show it: their weekly spans and the leave still to
    come or under way (earliest first)."""

    staff: User
    spans: list[rota_rules.WorkingSpan]
    leave: list[StaffLeave]

    @property
    def hours_text(self) -> str:
        return rota_rules.describe_hours(self.spans)

    @property
    def keeps_rota(self) -> bool:
        return bool(self.spans)

    def spans_of(self, weekday: int) -> list[rota_rules.WorkingSpan]:
        return [span for span in self.spans if span.weekday == weekday]


def rotas(staff: QuerySet[User], *, now: dt.datetime) -> list[StaffRota]:
    """Each member of `staff` with their rota: three queries however many members (the members, their
    hours, their leave that ends after `now`)."""
    members = staff.prefetch_related(
        Prefetch("working_hours", queryset=StaffWorkingHours.objects.order_by("weekday", "starts")),
        Prefetch("leave", queryset=StaffLeave.objects.filter(ends_at__gt=now).order_by("starts_at", "id")),
    )
    return [
        StaffRota(
            staff=member,
            spans=[rota_rules.WorkingSpan(h.weekday, h.starts, h.ends) for h in member.working_hours.all()],
            leave=list(member.leave.all()),
        )
        for member in members
    ]


# --- Who is on, for the room calendar ------------------------------------------------------------


@dataclass(frozen=True)
class OnDuty:
    """A member on a day of the calendar: their name, role and the times they can be booked."""

    name: str
    role: str
    times: str


@dataclass(frozen=True)
class RotaDay:
    date: dt.date
    on: list[OnDuty]
    away: list[str]  # names of those on a rota who would work that day but are on leave all of it


def rota_days(clinic_id: int, *, dates: Sequence[dt.date], tz: dt.tzinfo) -> list[RotaDay]:
    """Who is on each of `dates` (consecutive days): the clinic's active monitors and prescribers who
    keep a rota, with their working time that day less their leave (`rota_rules.free_time`), and those
    whose leave takes the whole of it. One query however many staff and days: their working hours and
    their leave over the days, as one union of plain rows (the calendar's page stays within its query
    budget). Members without a rota (always available) are not listed, and with nobody on a rota there
    are no days."""
    if not dates:
        return []
    start = dt.datetime.combine(dates[0], dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(dates[-1], dt.time.max, tzinfo=tz)
    staff = Q(staff__is_active=True, staff__role__in=CALENDAR_ROLES)
    overlapping = Q(clinic_id=clinic_id, starts_at__lt=end, ends_at__gt=start) & staff
    with contextlib.suppress(OverflowError):  # a week at the calendar's first day: nothing before it
        overlapping &= Q(starts_at__gte=start - rota_rules.LONGEST_LEAVE)
    no_moment, no_time = Value(None, output_field=DateTimeField()), Value(None, output_field=TimeField())
    hours = (
        StaffWorkingHours.objects.filter(Q(clinic_id=clinic_id) & staff)
        .order_by()
        .values_list(
            Value("hours", output_field=CharField()),
            "staff_id",
            "weekday",
            "starts",
            "ends",
            no_moment,
            no_moment,
            "staff__full_name",
            "staff__role",
        )
    )
    away_rows = (
        StaffLeave.objects.filter(overlapping)
        .order_by()
        .values_list(
            Value("leave", output_field=CharField()),
            "staff_id",
            Value(None, output_field=IntegerField()),
            no_time,
            no_time,
            "starts_at",
            "ends_at",
            Value("", output_field=CharField()),
            Value("", output_field=CharField()),
        )
    )
    spans: dict[int, list[rota_rules.WorkingSpan]] = defaultdict(list)
    away: dict[int, list[rota_rules.Leave]] = defaultdict(list)
    names: dict[int, tuple[str, str]] = {}
    for kind, staff_id, weekday, starts, ends, starts_at, ends_at, full_name, role in hours.union(
        away_rows, all=True
    ):
        if kind == "hours":
            spans[staff_id].append(rota_rules.WorkingSpan(weekday, starts, ends))
            names[staff_id] = (full_name, role)
        else:
            away[staff_id].append(rota_rules.Leave(starts_at, ends_at))
    if not names:
        return []  # a clinic that keeps no rotas: the calendar shows no "who is on" row
    members = sorted(names.items(), key=lambda item: (item[1][0], item[0]))
    days = []
    for day in dates:
        on, off = [], []
        for staff_id, (full_name, role) in members:
            if not rota_rules.day_spans(day, spans[staff_id]):
                continue
            free = rota_rules.free_time(day, spans[staff_id], away[staff_id], tz)
            if not free:
                off.append(full_name)
                continue
            times = ", ".join(
                f"{piece.starts_at.astimezone(tz):%H:%M}-{piece.ends_at.astimezone(tz):%H:%M}"
                for piece in free
            )
            on.append(OnDuty(full_name, ROLE_SHORT.get(role, role), times))
        days.append(RotaDay(day, on, off))
    return days
