"""Reads of the bookings that overlap a window bound the start from below by the longest chair time
(`selectors.booking_overlaps`), so they read an index range instead of the clinic's history; the check
constraint `booking_within_longest_chair_time` makes the bound a fact. The results are the same as an
unbounded overlap: a booking of the longest length that reaches into the window by a minute is found,
one that ends as the window starts is not."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import IntegrityError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from kaemdr.models import Role
from kaemdr.models import User
from sessions.booking import rules
from sessions.booking import selectors
from sessions.booking import services
from sessions.clinic_settings import services as settings_services
from sessions.models import Booking
from sessions.models import ChairTimeSetting

pytestmark = pytest.mark.django_db

LONGEST = rules.LONGEST_BOOKING


@pytest.fixture
def booking(staff: dict[str, User], room: Any, dosing_pathway: Any, clinic: Any) -> Booking:
    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    day = timezone.now().astimezone(tz).date() + dt.timedelta(days=3)
    return services.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=dosing_pathway,
        room=room,
        starts_at=dt.datetime.combine(day, dt.time(9), tzinfo=tz),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )


def _place(booking: Booking, starts_at: dt.datetime, length: dt.timedelta) -> None:
    Booking.objects.filter(pk=booking.pk).update(starts_at=starts_at, ends_at=starts_at + length)


def test_the_longest_booking_is_the_longest_chair_time_a_clinic_may_set() -> None:
    def most(field: str) -> int:
        limits = ChairTimeSetting._meta.get_field(field).validators
        return min(v.limit_value for v in limits if isinstance(v, MaxValueValidator))

    longest = sum(most(f"{part}_minutes") for part in ("dosing", "monitoring", "turnover"))
    assert dt.timedelta(minutes=longest) == LONGEST == dt.timedelta(hours=14)


def test_no_booking_may_be_longer_than_the_longest_chair_time(booking: Booking) -> None:
    Booking.objects.filter(pk=booking.pk).update(ends_at=F("starts_at") + LONGEST)
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.filter(pk=booking.pk).update(
            ends_at=F("starts_at") + LONGEST + dt.timedelta(seconds=1)
        )


@pytest.mark.parametrize(
    ("dosing", "monitoring", "turnover", "field"),
    [
        (rules.LONGEST_DOSING_MINUTES + 1, 120, 15, "dosing_ketamine_iv"),
        (40, rules.LONGEST_MONITORING_MINUTES + 1, 15, "monitoring_ketamine_iv"),
        (40, 120, rules.LONGEST_TURNOVER_MINUTES + 1, "turnover_ketamine_iv"),
    ],
)
def test_the_settings_service_refuses_a_chair_time_longer_than_the_longest(
    staff: dict[str, User], dosing: int, monitoring: int, turnover: int, field: str
) -> None:
    """A direct caller of the settings service (not only the form and the API) meets the same bounds:
    a longer chair time would make every booking of it break the bookings' constraint."""
    with pytest.raises(ValidationError) as refused:
        settings_services.dosing_settings_update(
            actor=staff[Role.CLINIC_ADMIN],
            chair_times=[("ketamine", "iv", dosing, monitoring, turnover)],
        )
    assert field in refused.value.message_dict
    assert not ChairTimeSetting.objects.filter(agent="ketamine").exists()


@pytest.mark.parametrize(
    ("reach", "found"),
    [
        (dt.timedelta(minutes=1), True),  # the longest booking reaches a minute into the window
        (dt.timedelta(0), False),  # ... or ends as the window starts
    ],
)
def test_the_week_calendar_finds_the_longest_booking_that_reaches_into_it(
    booking: Booking, staff: dict[str, User], room: Any, clinic: Any, reach: dt.timedelta, found: bool
) -> None:
    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    first_day = selectors.week_start(booking.starts_at.astimezone(tz).date() + dt.timedelta(days=7))
    window_start = dt.datetime.combine(first_day, dt.time.min, tzinfo=tz)
    _place(booking, window_start + reach - LONGEST, LONGEST)

    grid = selectors.room_calendar(
        staff[Role.CLINIC_ADMIN], first_day=first_day, days=7, room=room, now=timezone.now()
    )

    assert [b.pk for b in grid.bookings] == ([booking.pk] if found else [])


@pytest.mark.parametrize(
    ("reach", "found"),
    [(dt.timedelta(minutes=1), True), (dt.timedelta(0), False)],
)
def test_the_clash_check_finds_the_longest_booking_that_reaches_into_the_interval(
    booking: Booking,
    staff: dict[str, User],
    room: Any,
    dosing_pathway: Any,
    clinic: Any,
    reach: Any,
    found: bool,
) -> None:
    asked = rules.Interval(
        booking.starts_at + dt.timedelta(days=1), booking.starts_at + dt.timedelta(days=1, hours=2)
    )
    _place(booking, asked.starts_at + reach - LONGEST, LONGEST)

    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    clashes = selectors.booking_time_reads(
        room=room,
        patient_id=dosing_pathway.patient_id,
        monitor=staff[Role.MONITOR],
        interval=asked,
        tz=tz,
        from_day=asked.starts_at.astimezone(tz).date(),
        now=timezone.now(),
    ).conflicts

    assert [c.kind for c in clashes] == (["room"] if found else [])


def test_a_window_at_the_calendars_ends_leaves_the_bound_out(booking: Booking) -> None:
    earliest = dt.datetime.min.replace(tzinfo=dt.UTC)
    latest = dt.datetime.max.replace(tzinfo=dt.UTC)

    assert list(Booking.objects.filter(selectors.booking_overlaps(earliest, latest))) == [booking]
