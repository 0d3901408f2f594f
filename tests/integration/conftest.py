from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from kaemdr.models import Role
from sessions import services as dosing
from sessions.models import DosingSession
from sessions.models import VitalsReading


@pytest.fixture
def complete_session(staff: dict[str, Any], room: Any) -> Callable[..., DosingSession]:
    """`complete_session(pathway, days_ahead=0)`: book, dose, discharge and sign a session through the
    services, as a clinic would; the dose is moved 100 minutes back so discharge is allowed."""
    counter = {"n": 0}

    def run(pathway: Any, *, days_ahead: int = 0) -> DosingSession:
        monitor = staff[Role.MONITOR]
        tz = zoneinfo.ZoneInfo(pathway.clinic.time_zone)
        day = timezone.localdate() + dt.timedelta(days=1 + days_ahead + counter["n"])
        counter["n"] += 1
        booking = dosing.booking_create(
            actor=staff[Role.CLINIC_ADMIN],
            pathway=pathway,
            room=room,
            starts_at=dt.datetime.combine(day, dt.time(9, 0), tzinfo=tz),
            prescriber=staff[Role.PRESCRIBER],
            monitor=monitor,
        )
        session = dosing.session_open(actor=monitor, booking=booking)
        dosing.session_checks_update(
            actor=monitor,
            session=session,
            fasting_confirmed=True,
            escort_present=True,
            consent_confirmed=True,
        )
        dosing.vitals_record(
            actor=monitor,
            session=session,
            systolic=128,
            diastolic=82,
            heart_rate=76,
            spo2=98,
            respiratory_rate=14,
        )
        dosing.dose_start(actor=monitor, session=session, dose_mg=100, lot_number="L1")
        started = timezone.now() - dt.timedelta(minutes=100)
        DosingSession.objects.filter(pk=session.pk).update(dose_started_at=started)
        VitalsReading.objects.filter(session=session, is_pre_dose=True).update(
            taken_at=started - dt.timedelta(minutes=5)
        )
        dosing.vitals_record(actor=monitor, session=session, systolic=125, diastolic=80)
        dosing.session_discharge(actor=monitor, session=session, alert_and_oriented=True, escort_present=True)
        return dosing.session_sign(actor=monitor, session=session)

    return run
