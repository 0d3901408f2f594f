"""Helpers that bring a dosing record to the point a test needs, through the services wherever the
server's clock allows, and by moving the dose back in the database where a test cannot wait for it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from kaemdr.models import User
from sessions.booking import services as booking_services
from sessions.models import DosingSession
from sessions.models import ScaleRating
from sessions.models import VitalsReading
from sessions.record import services


def backdate_dose(session: DosingSession, minutes: int, *, ended_after: int = 5) -> None:
    """Move the dose `minutes` back (its end `ended_after` minutes later, the pre-dose reading 5 minutes
    before it, the record opened 10 minutes before it), as if the observation had been under way."""
    started = timezone.now() - dt.timedelta(minutes=minutes)
    session.refresh_from_db()
    devices = [started + dt.timedelta(minutes=5 * index) for index in range(len(session.device_times))]
    DosingSession.objects.filter(pk=session.pk).update(
        created_at=started - dt.timedelta(minutes=10),
        dose_started_at=started,
        dose_started_entered_at=started,
        dose_ended_at=started + dt.timedelta(minutes=ended_after),
        dose_ended_entered_at=started + dt.timedelta(minutes=ended_after),
        device_times=[device.isoformat() for device in devices],
    )
    VitalsReading.objects.filter(session=session, is_pre_dose=True).update(
        taken_at=started - dt.timedelta(minutes=5)
    )
    VitalsReading.objects.filter(session=session, is_pre_dose=False).update(taken_at=started)
    ScaleRating.objects.filter(session=session).update(taken_at=started)
    session.refresh_from_db()


def settled(monitor: User, session: DosingSession, *, systolic: int = 125, diastolic: int = 80) -> None:
    """What discharge needs recorded now: a full blood pressure in range, MOAA/S 5 and CADSS 0."""
    services.vitals_record(
        actor=monitor,
        session=session,
        systolic=systolic,
        diastolic=diastolic,
        heart_rate=72,
        spo2=98,
        respiratory_rate=14,
    )
    services.scale_record(actor=monitor, session=session, scale="moaas", value=5)
    services.scale_record(actor=monitor, session=session, scale="cadss", value=0)


def discharge(monitor: User, session: DosingSession) -> DosingSession:
    return services.session_discharge(
        actor=monitor, session=session, alert_and_oriented=True, escort_present=True
    )


def time_passes(session: DosingSession, minutes: float) -> None:
    """`minutes` pass on the record: every time it holds moves that far back, so the server's clock
    (which tests do not wait for) is `minutes` further into the session."""
    from django.db.models import F

    from sessions.models import AdverseEvent

    shift = dt.timedelta(minutes=minutes)
    session.refresh_from_db()

    def back(moment: dt.datetime | None) -> dt.datetime | None:
        return moment - shift if moment is not None else None

    DosingSession.objects.filter(pk=session.pk).update(
        created_at=F("created_at") - shift,
        dose_started_at=back(session.dose_started_at),
        dose_started_entered_at=back(session.dose_started_entered_at),
        dose_ended_at=back(session.dose_ended_at),
        dose_ended_entered_at=back(session.dose_ended_entered_at),
        override_at=back(session.override_at),
        bp_review_at=back(session.bp_review_at),
        pmf_medications_confirmed_at=back(session.pmf_medications_confirmed_at),
        device_times=[(dt.datetime.fromisoformat(t) - shift).isoformat() for t in session.device_times],
    )
    for part in (VitalsReading, ScaleRating):
        part.objects.filter(session=session).update(
            taken_at=F("taken_at") - shift, created_at=F("created_at") - shift
        )
    AdverseEvent.objects.filter(session=session).update(
        occurred_at=F("occurred_at") - shift, created_at=F("created_at") - shift
    )
    session.refresh_from_db()


def open_record(
    staff: dict[str, User],
    pathway: Any,
    room: Any,
    starts_at: dt.datetime,
    *,
    pre_dose: tuple[int, int] = (130, 85),
) -> DosingSession:
    """A session booked, its record opened by the monitor with every check confirmed, and a pre-dose
    blood pressure taken now: ready for the dose."""
    from kaemdr.models import Role

    monitor = staff[Role.MONITOR]
    booking = booking_services.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=pathway,
        room=room,
        starts_at=starts_at,
        prescriber=staff[Role.PRESCRIBER],
        monitor=monitor,
    )
    session = services.session_open(actor=monitor, booking=booking)
    services.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    services.vitals_record(
        actor=monitor, session=session, systolic=pre_dose[0], diastolic=pre_dose[1], heart_rate=72
    )
    return session
