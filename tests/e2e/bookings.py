"""The booking several journeys start from, made through the services as a clinic would."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage
from sessions.booking import services
from sessions.models import Booking
from sessions.models import Room

from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory


@dataclass(frozen=True)
class BookingTomorrow:
    booking: Booking
    admin: User
    prescriber: User
    monitor: User
    room: Room


def booking_tomorrow(
    *,
    admin: dict[str, Any] | None = None,
    prescriber: dict[str, Any] | None = None,
    monitor: dict[str, Any] | None = None,
) -> BookingTomorrow:
    """Aisha Rahman, in dosing on a signed screening (70 kg), booked by Harbour Clinic's admin for
    09:00 tomorrow in the Harbour Room. `admin`, `prescriber` and `monitor` are the staff's factory
    fields (an email or a full name a journey signs in with or looks for)."""
    clinic = ClinicFactory(name="Harbour Clinic", time_zone="Europe/London")
    staff = {
        role: UserFactory(clinic=clinic, role=role, **(fields or {}))
        for role, fields in (
            (Role.CLINIC_ADMIN, admin),
            (Role.PRESCRIBER, prescriber),
            (Role.MONITOR, monitor),
        )
    }
    room = RoomFactory(clinic=clinic, name="Harbour Room")
    pathway = PathwayFactory(
        clinic=clinic,
        stage=Stage.DOSING,
        prescriber=staff[Role.PRESCRIBER],
        patient__given_name="Aisha",
        patient__family_name="Rahman",
    )
    SignedScreeningFactory(pathway=pathway, weight_kg=70)
    day = timezone.localdate() + dt.timedelta(days=1)
    booking = services.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=pathway,
        room=room,
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
        starts_at=dt.datetime.combine(day, dt.time(9, 0), tzinfo=zoneinfo.ZoneInfo(clinic.time_zone)),
    )
    return BookingTomorrow(
        booking, staff[Role.CLINIC_ADMIN], staff[Role.PRESCRIBER], staff[Role.MONITOR], room
    )
