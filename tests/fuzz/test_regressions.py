"""Plain example tests for the bugs the write fuzz tests found, and for the NUL-byte contract the
service fuzz tests rely on (pages and the API refuse NUL before any service sees it)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from kaemdr.models import User
from pathways.models import Patient
from pathways.models import Stage
from screening import services as screening
from screening.models import Assessment
from sessions.booking import services as booking_services
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.models import RemsEnrolment
from sessions.models import Room
from sessions.record import services as dosing
from tests.factories import PathwayFactory

pytestmark = pytest.mark.django_db

PATIENT = {
    "record_number": "MRN-90001",
    "given_name": "Ann",
    "family_name": "Lee",
    "date_of_birth": "1980-02-29",
    "phone": "07700 900123",
    "email": "ann@example.org",
    "emergency_contact_name": "Sam Lee",
    "emergency_contact_relationship": "Sibling",
    "emergency_contact_phone": "07700 900456",
    "emergency_contact_can_escort": True,
}


@pytest.fixture
def booking(dosing_pathway: Any, room: Room, clinic_admin: User, monitor: User) -> Booking:
    tz = zoneinfo.ZoneInfo(dosing_pathway.clinic.time_zone)
    return booking_services.booking_create(
        actor=clinic_admin,
        pathway=dosing_pathway,
        room=room,
        starts_at=dt.datetime.combine(dt.date.today() + dt.timedelta(days=2), dt.time(9, 0), tzinfo=tz),
        prescriber=dosing_pathway.prescriber,
        monitor=monitor,
    )


@pytest.fixture
def draft(clinic: Any, prescriber: User, therapist: User) -> Assessment:
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        therapist=therapist,
        stage=Stage.ASSESSMENT,
        patient__registered_by=prescriber,
    )
    return screening.assessment_open(actor=prescriber, pathway=pathway)


def test_booking_create_at_the_end_of_the_calendar_is_refused_not_a_500(
    client_for: Callable[[User], Client], clinic_admin: User, monitor: User, dosing_pathway: Any, room: Room
) -> None:
    # Given a start whose end (start + chair time) would fall after 31 December 9999
    data = {
        "room": str(room.public_id),
        "date": "9999-12-31",
        "time": "23:59",
        "prescriber": str(dosing_pathway.prescriber.public_id),
        "monitor": str(monitor.public_id),
    }

    # When the clinic admin books it
    response = client_for(clinic_admin).post(reverse("booking_create", args=[dosing_pathway.public_id]), data)

    # Then the page refuses it at the time field, and nothing is booked
    assert response.status_code == 400
    assert response.context["form"].errors["time"] == ["Book within the next two years."]
    assert not Booking.objects.exists()


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York"])
def test_booking_move_past_the_horizon_is_refused(clinic_admin: User, booking: Booking, zone: str) -> None:
    starts_at = dt.datetime(9999, 12, 31, 23, 59, tzinfo=zoneinfo.ZoneInfo(zone))

    with pytest.raises(ValidationError) as refused:
        booking_services.booking_move(actor=clinic_admin, booking=booking, starts_at=starts_at)

    assert refused.value.error_dict["starts_at"][0].code == "too_far_ahead"
    booking.refresh_from_db()
    assert booking.starts_at.date() == dt.date.today() + dt.timedelta(days=2)


def test_assessment_update_with_an_unknown_agent_names_the_field(prescriber: User, draft: Assessment) -> None:
    with pytest.raises(ValidationError) as refused:
        screening.assessment_update(actor=prescriber, assessment=draft, agent="nope", route="oral")

    assert set(refused.value.error_dict) == {"agent"}
    draft.refresh_from_db()
    assert draft.agent == ""


@pytest.mark.parametrize("weight", ["abc", Decimal("1e400"), float("nan"), Decimal("Infinity")])
def test_assessment_update_with_an_impossible_weight_names_the_field(
    prescriber: User, draft: Assessment, weight: Any
) -> None:
    with pytest.raises(ValidationError) as refused:
        screening.assessment_update(actor=prescriber, assessment=draft, weight_kg=weight)

    assert set(refused.value.error_dict) == {"weight_kg"}
    draft.refresh_from_db()
    assert draft.weight_kg is None


@pytest.mark.parametrize("dose", [Decimal("NaN"), Decimal("sNaN"), float("nan"), Decimal("-Infinity")])
def test_dose_start_with_a_dose_that_is_not_a_number_names_the_field(
    monitor: User, booking: Booking, dose: Any
) -> None:
    session = dosing.session_open(actor=monitor, booking=booking)
    dosing.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    dosing.vitals_record(actor=monitor, session=session, systolic=128, diastolic=82)

    with pytest.raises(ValidationError) as refused:
        dosing.dose_start(actor=monitor, session=session, dose_mg=dose, lot_number="L1")

    assert [error.code for error in refused.value.error_dict["dose_mg"]] == ["invalid_dose"]
    assert DosingSession.objects.get(pk=session.pk).dose_started_at is None


def test_nul_bytes_are_refused_before_the_services(
    client_for: Callable[[User], Client], prescriber: User
) -> None:
    # The page form refuses NUL at the field (PostgreSQL would refuse it with a 500) ...
    page = client_for(prescriber).post(reverse("patient_register"), {**PATIENT, "given_name": "A\x00n"})
    assert page.status_code == 200
    assert page.context["form"].errors["given_name"] == ["Null characters are not allowed."]

    # ... and so does the API serializer, with the one error shape.
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=prescriber)[1]}")
    response = api.post("/api/v1/patients/", {**PATIENT, "family_name": "L\x00ee"}, format="json")
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["family_name"]
    assert not Patient.objects.exists()


def test_rems_enrolment_with_an_over_long_reference_names_the_field(
    prescriber: User, dosing_pathway: Any
) -> None:
    with pytest.raises(ValidationError) as refused:
        booking_services.rems_enrolment_record(
            actor=prescriber,
            patient=dosing_pathway.patient,
            enrolled_on=dt.date(2025, 1, 6),
            reference="R" * 61,
        )

    assert set(refused.value.error_dict) == {"reference"}
    assert not RemsEnrolment.objects.exists()


def test_dose_start_with_an_over_long_lot_number_names_the_field(monitor: User, booking: Booking) -> None:
    session = dosing.session_open(actor=monitor, booking=booking)
    dosing.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    dosing.vitals_record(actor=monitor, session=session, systolic=128, diastolic=82)

    with pytest.raises(ValidationError) as refused:
        dosing.dose_start(actor=monitor, session=session, dose_mg=100, lot_number="L" * 41)

    assert [error.code for error in refused.value.error_dict["lot_number"]] == ["too_long"]
    assert DosingSession.objects.get(pk=session.pk).dose_started_at is None


def test_a_service_called_directly_with_a_nul_byte_names_the_field_and_writes_nothing(
    prescriber: User, patient: Patient
) -> None:
    from pathways import services as pathway_services

    with pytest.raises(ValidationError) as refused:
        pathway_services.patient_update(actor=prescriber, patient=patient, given_name="An\x00n")
    assert refused.value.messages == ["Remove the NUL character from the text."]
    patient.refresh_from_db()
    assert "\x00" not in patient.given_name


def test_a_room_closure_with_an_over_long_reason_names_the_field(clinic_admin: User, room: Room) -> None:
    from sessions.models import RoomClosure

    starts = dt.datetime(2030, 1, 7, 9, tzinfo=zoneinfo.ZoneInfo("Europe/London"))
    with pytest.raises(ValidationError) as refused:
        booking_services.room_closure_add(
            actor=clinic_admin,
            room=room,
            starts_at=starts,
            ends_at=starts + dt.timedelta(hours=2),
            reason="x" * 201,
        )
    assert refused.value.message_dict == {"reason": ["Keep the reason to 200 characters."]}
    assert not RoomClosure.objects.filter(room=room).exists()
