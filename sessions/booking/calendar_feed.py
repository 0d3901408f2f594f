"""A room's bookings as an iCalendar feed (RFC 5545), built with the icalendar library."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from icalendar import Calendar
from icalendar import Event

from sessions.models import Booking
from sessions.models import BookingStatus
from sessions.models import Room

FEED_DAYS_BACK = 30
FEED_DAYS_AHEAD = 180


def _initials(given: str, family: str) -> str:
    return f"{given[:1]}{family[:1]}".upper()


def room_feed(room: Room) -> bytes:
    """Live bookings from a month ago to six months ahead. Summaries carry the patient's initials
    only: a feed leaves the app for calendar clients, so it holds as little as the room needs."""
    now = timezone.now()
    bookings = (
        Booking.objects.filter(
            room=room,
            starts_at__gte=now - dt.timedelta(days=FEED_DAYS_BACK),
            starts_at__lt=now + dt.timedelta(days=FEED_DAYS_AHEAD),
        )
        .exclude(status=BookingStatus.CANCELLED)
        .select_related("patient")
        .order_by("starts_at")
    )
    calendar = Calendar()
    calendar.add("prodid", "-//kaemdr//dosing rooms//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{room.clinic.name}: {room.name}")
    for booking in bookings:
        event = Event()
        event.add("uid", f"{booking.public_id}@kaemdr")
        event.add("dtstamp", booking.updated_at)
        event.add("dtstart", booking.starts_at)
        event.add("dtend", booking.ends_at)
        event.add(
            "summary",
            f"Dosing session ({_initials(booking.patient.given_name, booking.patient.family_name)})",
        )
        event.add("location", room.name)
        calendar.add_component(event)
    return calendar.to_ical()
