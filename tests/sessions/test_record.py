"""The dosing session record: pre-dose gate and override, dose arithmetic, vitals flags, scales,
discharge criteria, the REMS monitoring form, sign-off and addenda."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from screening.models import Assessment
from sessions.booking import services as booking_services
from sessions.demo import simulated_clock
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.models import RemsEnrolment
from sessions.record import rules
from sessions.record import services

from .dosing_day import backdate_dose
from .dosing_day import discharge
from .dosing_day import settled

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


# --- rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("systolic", "diastolic", "blocked"),
    [(140, 90, False), (141, 90, True), (140, 91, True), (None, None, True)],
)
def test_pre_dose_blood_pressure_threshold(
    systolic: int | None, diastolic: int | None, blocked: bool
) -> None:
    checks = rules.PreDoseChecks(True, True, True, systolic, diastolic)
    assert bool(rules.pre_dose_problems(checks, rules.PreDoseLimits())) is blocked


def test_pre_dose_checks_are_each_named() -> None:
    problems = rules.pre_dose_problems(
        rules.PreDoseChecks(False, False, False, 120, 80), rules.PreDoseLimits()
    )
    assert problems == [
        "Fasting is not confirmed.",
        "No escort is present to take the patient home.",
        "Consent for this session is not confirmed.",
    ]


def test_dose_arithmetic_per_kilogram() -> None:
    assert rules.mg_per_kg(35, 70) == 0.5
    assert rules.mg_per_kg(32.2, 64.5) == 0.5
    assert rules.mg_per_kg(60, 80) == 0.75
    with pytest.raises(ValueError, match="weight"):
        rules.mg_per_kg(35, 0)


@pytest.mark.parametrize(
    ("reading", "flagged"),
    [
        (rules.Reading(180, 110, 120, 92, 10), []),
        (rules.Reading(181, 110, 120, 92, 10), ["Systolic 181 is above 180."]),
        (
            rules.Reading(120, 80, 121, 91, 9),
            [
                "Heart rate 121 is above 120.",
                "SpO2 91% is below 92%.",
                "Respiratory rate 9 is outside 10-24.",
            ],
        ),
    ],
)
def test_vital_flags_at_the_limits(reading: rules.Reading, flagged: list[str]) -> None:
    assert rules.vital_flags(reading, rules.VitalLimits()) == flagged


def test_esketamine_is_observed_for_two_hours_whatever_the_clinic_sets() -> None:
    assert rules.minimum_observation_minutes("esketamine", 60) == 120
    assert rules.minimum_observation_minutes("ketamine", 60) == 60


def test_pmf_deadline_is_seven_days() -> None:
    assert rules.pmf_deadline(dt.date(2026, 11, 23)) == dt.date(2026, 11, 30)


# --- services --------------------------------------------------------------------------------------


@pytest.fixture
def booked(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> Booking:
    return booking_services.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=dosing_pathway,
        room=room,
        starts_at=slot(0, 9),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )


@pytest.fixture
def session(staff: dict[str, Any], booked: Booking) -> DosingSession:
    return services.session_open(actor=staff[Role.MONITOR], booking=booked)


def ready_for_dose(staff: dict[str, Any], session: DosingSession, *, systolic: int = 128) -> None:
    monitor = staff[Role.MONITOR]
    services.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    services.vitals_record(
        actor=monitor,
        session=session,
        systolic=systolic,
        diastolic=82,
        heart_rate=76,
        spo2=98,
        respiratory_rate=14,
    )


def test_a_dose_does_not_start_while_a_check_fails(staff: dict[str, Any], session: DosingSession) -> None:
    with pytest.raises(ValidationError) as refused:
        services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=100, lot_number="L1")
    assert "Record the pre-dose blood pressure." in refused.value.messages
    session.refresh_from_db()
    assert session.status == "pre_dose"


def test_high_blood_pressure_needs_a_prescribers_override(
    staff: dict[str, Any], session: DosingSession
) -> None:
    ready_for_dose(staff, session, systolic=152)
    with pytest.raises(ValidationError, match="Blood pressure 152/82 is above the clinic's 140/90"):
        services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=100, lot_number="L1")
    with pytest.raises(NotFoundOrForbidden):
        services.session_override_sign(
            actor=staff[Role.MONITOR], session=session, reason="I think it is fine."
        )
    with pytest.raises(ValidationError, match="Give the reason"):
        services.session_override_sign(actor=staff[Role.PRESCRIBER], session=session, reason=" ")

    services.session_override_sign(
        actor=staff[Role.PRESCRIBER],
        session=session,
        reason="White-coat pattern; home readings 130s; benefit outweighs the risk.",
    )
    dosed = services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=100, lot_number="L1")
    assert dosed.status == "dosed"
    assert AuditEvent.objects.filter(action="session.override_signed").count() == 1


def test_an_override_does_not_cover_a_new_problem(staff: dict[str, Any], session: DosingSession) -> None:
    ready_for_dose(staff, session, systolic=150)
    services.session_override_sign(
        actor=staff[Role.PRESCRIBER], session=session, reason="Known hypertension."
    )
    services.session_checks_update(
        actor=staff[Role.MONITOR],
        session=session,
        fasting_confirmed=True,
        escort_present=False,
        consent_confirmed=True,
    )
    with pytest.raises(ValidationError, match="No escort is present"):
        services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=100, lot_number="L1")


def test_an_expired_screening_stops_the_dose(staff: dict[str, Any], session: DosingSession) -> None:
    ready_for_dose(staff, session)
    Assessment.objects.update(valid_until=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(ValidationError, match="expired on"):
        services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=100, lot_number="L1")


def test_esketamine_devices_are_recorded_as_they_are_given(
    staff: dict[str, Any], session: DosingSession
) -> None:
    Booking.objects.filter(pk=session.booking_id).update(agent="esketamine", route="intranasal")
    session.refresh_from_db()
    ready_for_dose(staff, session)
    monitor = staff[Role.MONITOR]
    with pytest.raises(ValidationError) as refused:
        services.dose_start(actor=monitor, session=session, dose_mg=50, lot_number="E1")
    assert [e.code for e in refused.value.error_dict["dose_mg"]] == ["devices"]
    with simulated_clock() as clock:
        dosed = services.dose_start(actor=monitor, session=session, dose_mg=56, lot_number="E1")
        assert dosed.device_times == [clock.at.isoformat()]
        assert dosed.dose_ended_at is None  # one device of two
        clock.advance(minutes=4)
        with pytest.raises(ValidationError) as too_soon:
            services.device_record(actor=monitor, session=session)
        assert [e.code for e in too_soon.value.error_dict["given_at"]] == ["device_gap"]
        clock.advance(minutes=1)
        second = services.device_record(actor=monitor, session=session)
        assert len(second.device_times) == 2
        assert second.dose_ended_at == clock.at  # the last device ends the dose: observation counts from it
        with pytest.raises(ValidationError) as complete:
            services.device_record(actor=monitor, session=session)
        assert complete.value.code == "devices_complete"


def test_vitals_out_of_range_are_flagged_at_once(staff: dict[str, Any], session: DosingSession) -> None:
    reading = services.vitals_record(
        actor=staff[Role.MONITOR], session=session, systolic=190, diastolic=100, spo2=90
    )
    assert reading.flags == ["Systolic 190 is above 180.", "SpO2 90% is below 92%."]
    with pytest.raises(ValidationError, match="at least one reading"):
        services.vitals_record(actor=staff[Role.MONITOR], session=session)
    with pytest.raises(ValidationError) as refused:
        services.vitals_record(actor=staff[Role.MONITOR], session=session, spo2=120)
    assert "spo2" in refused.value.message_dict


def test_scales_keep_their_ranges_and_bprs_anchors(staff: dict[str, Any], session: DosingSession) -> None:
    monitor = staff[Role.MONITOR]
    services.scale_record(actor=monitor, session=session, scale="moaas", value=5)
    with pytest.raises(ValidationError, match="from 0 to 5"):
        services.scale_record(actor=monitor, session=session, scale="moaas", value=6)
    with pytest.raises(ValidationError, match="Choose the BPRS\\+ anchors"):
        services.scale_record(actor=monitor, session=session, scale="bprs_plus", value=4)
    with pytest.raises(ValidationError, match="from 4 to 28"):
        services.scale_record(actor=monitor, session=session, scale="bprs_plus", value=2, anchors="1-7")
    rating = services.scale_record(actor=monitor, session=session, scale="bprs_plus", value=2, anchors="0-6")
    assert rating.anchors == "0-6"


def test_discharge_is_refused_until_the_criteria_are_met(
    staff: dict[str, Any], session: DosingSession
) -> None:
    ready_for_dose(staff, session)
    services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=100, lot_number="L1")
    with pytest.raises(ValidationError) as refused:
        services.session_discharge(
            actor=staff[Role.MONITOR], session=session, alert_and_oriented=True, escort_present=True
        )
    assert [error.code for error in refused.value.error_list] == [
        "dose_end_not_recorded",
        "discharge_bp_missing",
        "sedation_not_rated",
        "dissociation_unresolved",
    ]

    backdate_dose(session, 95)
    settled(staff[Role.MONITOR], session)
    discharged = services.session_discharge(
        actor=staff[Role.MONITOR], session=session, alert_and_oriented=True, escort_present=True
    )
    assert discharged.status == "discharged"


def test_signing_makes_the_record_read_only_and_completes_the_booking(
    staff: dict[str, Any], session: DosingSession
) -> None:
    ready_for_dose(staff, session)
    services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=100, lot_number="L1")
    backdate_dose(session, 100)
    settled(staff[Role.MONITOR], session)
    services.session_discharge(
        actor=staff[Role.MONITOR], session=session, alert_and_oriented=True, escort_present=True
    )
    signed = services.session_sign(actor=staff[Role.MONITOR], session=session)
    assert signed.booking.__class__.objects.get(pk=signed.booking_id).status == "completed"
    with pytest.raises(ValidationError, match="signed and read-only"):
        services.vitals_record(actor=staff[Role.MONITOR], session=session, systolic=120, diastolic=80)
    addendum = services.session_addendum_add(
        actor=staff[Role.PRESCRIBER], session=session, text="Lot number confirmed against the pharmacy log."
    )
    assert addendum.author == staff[Role.PRESCRIBER]


def test_an_esketamine_record_needs_its_monitoring_form(
    staff: dict[str, Any], session: DosingSession
) -> None:
    Booking.objects.filter(pk=session.booking_id).update(agent="esketamine", route="intranasal")
    RemsEnrolment.objects.create(
        patient=session.booking.patient, enrolled_on=timezone.localdate(), recorded_by=staff[Role.PRESCRIBER]
    )
    session.refresh_from_db()
    monitor = staff[Role.MONITOR]
    with simulated_clock() as clock:
        ready_for_dose(staff, session)
        clock.advance(minutes=2)
        services.dose_start(actor=monitor, session=session, dose_mg=56, lot_number="E1")
        started = clock.at
        clock.advance(minutes=5)
        services.device_record(actor=monitor, session=session)
        clock.at = started + dt.timedelta(minutes=40)
        services.vitals_record(actor=monitor, session=session, systolic=138, diastolic=88)
        clock.at = started + dt.timedelta(minutes=124)
        settled(monitor, session)
        clock.advance(minutes=2)
        discharge(monitor, session)
        with pytest.raises(ValidationError) as refused:
            services.session_sign(actor=monitor, session=session)
    assert [error.code for error in refused.value.error_list] == [
        "pmf_answers",
        "pmf_ready_minutes",
        "pmf_medications",
    ]
    assert refused.value.messages[0].startswith("Monitoring form: Answer first treatment")

    services.pmf_update(
        actor=monitor,
        session=session,
        pmf_first_treatment=True,
        pmf_sedation=False,
        pmf_dissociation=True,
        pmf_respiratory_depression=False,
        pmf_ready_minutes=90,
    )
    with pytest.raises(NotFoundOrForbidden):  # the medication classes are the prescriber's to confirm
        services.pmf_medications_confirm(actor=monitor, session=session, classes=["benzodiazepine"])
    services.pmf_medications_confirm(
        actor=staff[Role.PRESCRIBER], session=session, classes=["benzodiazepine"]
    )
    services.session_sign(actor=monitor, session=session)
    filed = services.pmf_mark_filed(actor=monitor, session=session)
    assert filed.pmf_filed_at is not None
    assert filed.pmf_medication_classes == ["benzodiazepine"]


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.CLINIC_ADMIN])
def test_only_monitors_and_prescribers_keep_the_record(
    role: str, staff: dict[str, Any], booked: Booking
) -> None:
    with pytest.raises(NotFoundOrForbidden):
        services.session_open(actor=staff[role], booking=booked)
    assert not DosingSession.objects.exists()


def test_monitoring_forms_due_lists_dosed_esketamine_sessions_until_filed(
    staff: dict[str, Any], booked: Booking
) -> None:
    from sessions.record.selectors import pmf_due

    monitor = staff[Role.MONITOR]
    Booking.objects.filter(pk=booked.pk).update(agent="esketamine", route="intranasal")
    esketamine = services.session_open(actor=monitor, booking=Booking.objects.get(pk=booked.pk))
    assert esketamine.pmf_required
    ketamine_booking = Booking.objects.get(pk=booked.pk)
    ketamine_booking.pk, ketamine_booking.public_id = None, uuid.uuid4()
    ketamine_booking.agent, ketamine_booking.route = "ketamine", "sublingual"
    ketamine_booking.starts_at += dt.timedelta(days=1)
    ketamine_booking.ends_at += dt.timedelta(days=1)
    ketamine_booking.save()
    ketamine = services.session_open(actor=monitor, booking=ketamine_booking)
    assert not ketamine.pmf_required
    assert pmf_due(monitor) == []  # not dosed yet

    DosingSession.objects.filter(pk__in=[esketamine.pk, ketamine.pk]).update(dose_started_at=timezone.now())
    assert [s.pk for s in pmf_due(monitor)] == [esketamine.pk]
    DosingSession.objects.filter(pk=esketamine.pk).update(pmf_filed_at=timezone.now())
    assert pmf_due(monitor) == []
