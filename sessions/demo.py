"""Rooms and bookings for the demo clinic: three rooms with hours, one out of service for a morning,
and dosing sessions booked for the patients whose pathways have reached dosing."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.utils import timezone

from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import Stage

from . import services
from .models import Room

WEEKDAY_HOURS = [(day, dt.time(8, 0), dt.time(18, 0)) for day in range(5)]


def _rooms(admin: User) -> list[Room]:
    existing = list(Room.objects.filter(clinic_id=admin.member_clinic_id).order_by("name"))
    if existing:
        return existing
    rooms = [
        services.room_save(
            actor=admin,
            name="Harbour Room",
            has_bp_monitor=True,
            has_pulse_oximeter=True,
            has_recliner=True,
            is_active=True,
        ),
        services.room_save(
            actor=admin,
            name="Garden Room",
            has_bp_monitor=True,
            has_pulse_oximeter=True,
            has_recliner=True,
            is_active=True,
        ),
        services.room_save(
            actor=admin,
            name="Quiet Room",
            has_bp_monitor=True,
            has_pulse_oximeter=False,
            has_recliner=True,
            is_active=True,
        ),
    ]
    for room in rooms:
        services.room_set_hours(actor=admin, room=room, hours=WEEKDAY_HOURS)
    return rooms


def _next_weekday(day: dt.date, offset: int) -> dt.date:
    day = day + dt.timedelta(days=offset)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def demo_dosing(*, pathway: Pathway, to_stage: str | None, at: dt.datetime, staff: dict[str, User]) -> None:
    """At the end of each demo pathway, book its upcoming sessions (dosing stage) in the coming days."""
    admin = staff["admin@demo.kaemdr.test"]
    rooms = _rooms(admin)
    if to_stage is not None:
        return
    record = pathway.patient.record_number
    if record == "HB-1004":  # esketamine: REMS enrolment first
        services.rems_enrolment_record(
            actor=staff["prescriber@demo.kaemdr.test"],
            patient=pathway.patient,
            enrolled_on=timezone.localdate() - dt.timedelta(days=30),
            reference="REMS-55821",
        )
    # (weekdays ahead, hour, minute, room): one monitor, so the sessions of a day do not overlap.
    plans = {
        "HB-1004": [(1, 9, 0, "Harbour Room"), (4, 9, 0, "Harbour Room")],
        "HB-1005": [(1, 13, 0, "Garden Room"), (3, 13, 30, "Garden Room")],
    }
    if pathway.stage != Stage.DOSING or record not in plans:
        return
    tz = zoneinfo.ZoneInfo(admin.clinic.time_zone)  # type: ignore[union-attr]
    today = timezone.localdate()
    by_name = {room.name: room for room in rooms}
    for index, (offset, hour, minute, room_name) in enumerate(plans[record]):
        day = _next_weekday(today, offset)
        booking = services.booking_create(
            actor=admin,
            pathway=pathway,
            room=by_name[room_name],
            starts_at=dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz),
            prescriber=staff["prescriber@demo.kaemdr.test"],
            monitor=staff["monitor@demo.kaemdr.test"],
        )
        if index == 0:
            services.booking_checks_update(
                actor=admin,
                booking=booking,
                fasting_instructions_given=True,
                fasting_confirmed=True,
                escort_confirmed=record != "HB-1004",
            )
