"""The clinic's esketamine label, enforced on the server through page POSTs and the API: the doses it
allows on day 1 and after (by age under the EU/UK label), how often a course week may be booked or
dosed, and the duties it sets (REMS enrolment and monitoring form under the US label; the Readiness to
Leave checklist before discharge under the EU/UK label). Existing clinics keep the US label."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from integration.models import FollowUp
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Patient
from sessions.booking import esketamine_rules
from sessions.booking import services as booking_services
from sessions.clinic_settings import services as clinic_settings_services
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.models import DosingSettings
from sessions.models import RemsEnrolment
from sessions.record import services

from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory
from .dosing_day import backdate_dose
from .dosing_day import settled

pytestmark = pytest.mark.django_db

US = esketamine_rules.EsketamineLabel.US_PI
EU = esketamine_rules.EsketamineLabel.EU_UK_SMPC


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def codes(response: Any) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


def follow(label: str, staff: dict[str, User]) -> None:
    clinic_settings_services.dosing_settings_update(actor=staff[Role.CLINIC_ADMIN], esketamine_label=label)


@pytest.fixture
def esketamine(dosing_pathway: Any, staff: dict[str, User]) -> Any:
    """A pathway in dosing planned for intranasal esketamine, its patient enrolled in the REMS (which
    only the US label asks for)."""
    dosing_pathway.assessments.update(agent="esketamine", route="intranasal")
    RemsEnrolment.objects.create(
        patient=dosing_pathway.patient, enrolled_on=timezone.localdate(), recorded_by=staff[Role.PRESCRIBER]
    )
    return dosing_pathway


@pytest.fixture
def book(staff: dict[str, User], room: Any, slot: Callable[..., dt.datetime]) -> Callable[..., Booking]:
    def make(pathway: Any, days: int, hour: int = 9) -> Booking:
        return booking_services.booking_create(
            actor=staff[Role.CLINIC_ADMIN],
            pathway=pathway,
            room=room,
            starts_at=slot(days, hour),
            prescriber=staff[Role.PRESCRIBER],
            monitor=staff[Role.MONITOR],
        )

    return make


def ready(staff: dict[str, User], booking: Booking) -> DosingSession:
    """The record opened, its pre-dose checks and blood pressure recorded."""
    monitor = staff[Role.MONITOR]
    session = services.session_open(actor=monitor, booking=booking)
    services.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    services.vitals_record(
        actor=monitor,
        session=session,
        systolic=128,
        diastolic=82,
        heart_rate=76,
        spo2=98,
        respiratory_rate=14,
    )
    return session


def aged(patient: Patient, years: int, *, days_to_birthday: int = 0) -> None:
    """Make the patient `years` old today, their next birthday `days_to_birthday` days away (0: today)."""
    today = timezone.localdate()
    birthday = today + dt.timedelta(days=days_to_birthday)
    born = birthday.replace(year=birthday.year - years - (1 if days_to_birthday else 0))
    Patient.objects.filter(pk=patient.pk).update(date_of_birth=born)


def page_book(client: Client, staff: dict[str, User], pathway: Any, room: Any, at: dt.datetime) -> Any:
    return client.post(
        reverse("booking_create", args=[pathway.public_id]),
        {
            "room": room.public_id,
            "date": at.date().isoformat(),
            "time": at.strftime("%H:%M"),
            "prescriber": staff[Role.PRESCRIBER].public_id,
            "monitor": staff[Role.MONITOR].public_id,
        },
    )


def api_book(staff: dict[str, User], pathway: Any, room: Any, at: dt.datetime) -> Any:
    return api(staff[Role.CLINIC_ADMIN]).post(
        "/api/v1/bookings/",
        {
            "pathway": str(pathway.public_id),
            "room": str(room.public_id),
            "starts_at": at.isoformat(),
            "prescriber": str(staff[Role.PRESCRIBER].public_id),
            "monitor": str(staff[Role.MONITOR].public_id),
        },
        format="json",
    )


# --- Existing clinics ---------------------------------------------------------------------------------


def test_a_clinic_that_never_chose_follows_the_us_label(clinic: Any, staff: dict[str, User]) -> None:
    assert booking_services.esketamine_label_of(clinic.pk) == US
    assert DosingSettings.objects.filter(clinic=clinic).count() == 0
    body = api(staff[Role.CLINIC_ADMIN]).get("/api/v1/dosing-settings/").json()
    assert body["esketamine_label"] == "us_pi"


# --- Frequency at booking --------------------------------------------------------------------------


@pytest.mark.parametrize("label", [US, EU])
def test_a_third_booking_in_an_induction_week_is_refused_by_page_and_api(
    label: str,
    staff: dict[str, User],
    esketamine: Any,
    room: Any,
    book: Callable[..., Booking],
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    follow(label, staff)
    book(esketamine, 0)  # day 1
    book(esketamine, 3)
    before = Booking.objects.count()

    page = page_book(client_for(staff[Role.CLINIC_ADMIN]), staff, esketamine, room, slot(6))  # day 7, week 1
    assert page.status_code == 400
    body = page.content.decode()
    assert "Week 1 of the esketamine course" in body
    assert "twice a week" in body
    assert "Source:" in body

    refused = api_book(staff, esketamine, room, slot(6))
    assert refused.status_code == 400
    assert codes(refused) == ["label_frequency"]
    error = refused.json()["errors"][0]
    assert error["field"] == "starts_at"
    assert ("section 2" if label == US else "section 4.2") in error["source"]
    assert error["source_url"]
    assert Booking.objects.count() == before

    assert api_book(staff, esketamine, room, slot(7)).status_code == 201  # day 8: week 2


def test_moving_a_booking_into_a_full_week_is_refused_by_page_and_api(
    staff: dict[str, User],
    esketamine: Any,
    book: Callable[..., Booking],
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    book(esketamine, 0)
    book(esketamine, 2)
    later = book(esketamine, 8)  # week 2
    page = client_for(staff[Role.CLINIC_ADMIN]).post(
        reverse("booking_move", args=[later.public_id]),
        {"room": later.room.public_id, "date": slot(4).date().isoformat(), "time": "09:00"},
    )
    assert page.status_code == 400
    assert "Week 1 of the esketamine course" in page.content.decode()
    refused = api(staff[Role.CLINIC_ADMIN]).post(
        f"/api/v1/bookings/{later.public_id}/move/", {"starts_at": slot(4).isoformat()}, format="json"
    )
    assert refused.status_code == 400
    assert codes(refused) == ["label_frequency"]
    later.refresh_from_db()
    assert later.starts_at == slot(8)
    moved = api(staff[Role.CLINIC_ADMIN]).post(
        f"/api/v1/bookings/{later.public_id}/move/", {"starts_at": slot(9).isoformat()}, format="json"
    )
    assert moved.status_code == 200


def test_before_any_dose_day_one_is_the_earliest_booking(
    esketamine: Any, book: Callable[..., Booking]
) -> None:
    book(esketamine, 3)
    book(esketamine, 5)  # day 1 is the first of these, and its week holds 2
    with pytest.raises(ValidationError) as refused:
        book(esketamine, 1)  # day 1 moves two days earlier: its week now holds 3
    assert [e.code for e in refused.value.error_dict["starts_at"]] == ["label_frequency"]
    book(esketamine, 12)  # still fine: week 2 of day 1 at day 3


def test_a_past_booking_never_dosed_does_not_count(
    staff: dict[str, User], esketamine: Any, room: Any, book: Callable[..., Booking]
) -> None:
    yesterday = timezone.now() - dt.timedelta(days=1)
    Booking.objects.create(
        clinic=esketamine.clinic,
        pathway=esketamine,
        patient=esketamine.patient,
        room=room,
        starts_at=yesterday,
        ends_at=yesterday + dt.timedelta(hours=2),
        agent="esketamine",
        route="intranasal",
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
        booked_by=staff[Role.CLINIC_ADMIN],
    )
    book(esketamine, 0)
    book(esketamine, 1)  # yesterday's no-show would have been the third of its week


# --- Doses at dose start -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "years", "days_to_birthday", "refused_mg", "allowed_mg", "words"),
    [
        (US, 70, 0, 28, 56, "day 1 starting dose: 56 mg"),  # the US label has no 28 mg start at 65+
        (US, 40, 0, 84, 56, "day 1 starting dose: 56 mg"),
        (EU, 70, 0, 56, 28, "adults 65 years and older, day 1 starting dose: 28 mg"),
        (EU, 65, 0, 56, 28, "adults 65 years and older"),  # the 65th birthday is today
        (EU, 64, 1, 28, 56, "adults under 65 years, day 1 starting dose: 56 mg"),  # 65 tomorrow
    ],
)
def test_the_day_one_dose_follows_the_label_and_the_age_on_the_dose_date(
    label: str,
    years: int,
    days_to_birthday: int,
    refused_mg: int,
    allowed_mg: int,
    words: str,
    staff: dict[str, User],
    esketamine: Any,
    book: Callable[..., Booking],
    client_for: Callable[[User | None], Client],
) -> None:
    follow(label, staff)
    aged(esketamine.patient, years, days_to_birthday=days_to_birthday)
    session = ready(staff, book(esketamine, 0))
    monitor = staff[Role.MONITOR]

    page = client_for(monitor).post(
        reverse("session_action", args=[session.public_id, "dose"]),
        {"dose_mg": str(refused_mg), "lot_number": "SPR-9"},
    )
    assert page.status_code == 400
    assert words in page.content.decode().replace("&quot;", '"')
    refused = api(monitor).post(
        f"/api/v1/sessions/{session.public_id}/dose/",
        {"dose_mg": refused_mg, "lot_number": "SPR-9"},
        format="json",
    )
    assert refused.status_code == 400
    assert codes(refused) == ["label_dose_not_allowed"]
    error = refused.json()["errors"][0]
    assert error["field"] == "dose_mg"
    assert ("section 2" if label == US else "section 4.2") in error["source"]
    assert DosingSession.objects.get(pk=session.pk).status == "pre_dose"

    dosed = api(monitor).post(
        f"/api/v1/sessions/{session.public_id}/dose/",
        {"dose_mg": allowed_mg, "lot_number": "SPR-9"},
        format="json",
    )
    assert dosed.status_code == 200, dosed.json()


@pytest.mark.parametrize(("label", "dose", "refused"), [(US, 28, True), (US, 84, False), (EU, 28, True)])
def test_a_later_dose_follows_the_label(
    label: str,
    dose: int,
    refused: bool,
    staff: dict[str, User],
    esketamine: Any,
    book: Callable[..., Booking],
) -> None:
    """After day 1 the US label gives 56 or 84 mg; the EU/UK label the same under 65 (the patient is 41)."""
    follow(label, staff)
    monitor = staff[Role.MONITOR]
    services.dose_start(actor=monitor, session=ready(staff, book(esketamine, 0)), dose_mg=56, lot_number="S1")
    later = ready(staff, book(esketamine, 8))
    if refused:
        with pytest.raises(ValidationError) as error:
            services.dose_start(actor=monitor, session=later, dose_mg=dose, lot_number="S2")
        assert [e.code for e in error.value.error_dict["dose_mg"]] == ["label_dose_not_allowed"]
    else:
        assert (
            services.dose_start(actor=monitor, session=later, dose_mg=dose, lot_number="S2").status == "dosed"
        )


def test_a_third_dose_in_an_induction_week_is_refused_at_dose_start_however_it_was_booked(
    staff: dict[str, User], esketamine: Any, book: Callable[..., Booking]
) -> None:
    """Three sessions booked a week apart, all opened and dosed today: the third dose would be the third
    of the course's first week, which the label refuses whatever the bookings said."""
    monitor = staff[Role.MONITOR]
    sessions = [ready(staff, book(esketamine, days)) for days in (0, 7, 14)]
    services.dose_start(actor=monitor, session=sessions[0], dose_mg=56, lot_number="S1")
    services.dose_start(actor=monitor, session=sessions[1], dose_mg=56, lot_number="S2")
    refused = api(monitor).post(
        f"/api/v1/sessions/{sessions[2].public_id}/dose/", {"dose_mg": 56, "lot_number": "S3"}, format="json"
    )
    assert refused.status_code == 400
    assert codes(refused) == ["label_frequency"]
    assert refused.json()["errors"][0]["field"] is None
    assert DosingSession.objects.get(pk=sessions[2].pk).status == "pre_dose"


# --- Duties: the Readiness to Leave checklist under the EU/UK label ------------------------------------


def discharge_url(session: DosingSession) -> str:
    return f"/api/v1/sessions/{session.public_id}/discharge/"


def test_eu_discharge_waits_for_the_readiness_to_leave_checklist_by_page_and_api(
    staff: dict[str, User],
    dosing_pathway: Any,
    book: Callable[..., Booking],
    client_for: Callable[[User | None], Client],
) -> None:
    follow(EU, staff)
    dosing_pathway.assessments.update(agent="esketamine", route="intranasal")
    monitor = staff[Role.MONITOR]
    booking = book(dosing_pathway, 0)  # no REMS enrolment: the EU/UK label has no REMS
    session = ready(staff, booking)
    assert not session.pmf_required
    services.dose_start(actor=monitor, session=session, dose_mg=56, lot_number="S1")
    backdate_dose(session, 130)
    settled(monitor, session)
    page_client = client_for(monitor)
    url = reverse("session_action", args=[session.public_id, "discharge"])

    shown = page_client.get(reverse("session_detail", args=[session.public_id])).content.decode()
    assert "Readiness to Leave checklist" in shown
    assert "REMS monitoring form</h2>" not in shown
    page = page_client.post(url, {"alert_and_oriented": "on", "escort_present": "on"})
    assert page.status_code == 400
    assert "Complete the Readiness to Leave checklist before discharge" in page.content.decode()
    refused = api(monitor).post(
        discharge_url(session), {"alert_and_oriented": True, "escort_present": True}, format="json"
    )
    assert codes(refused) == ["leave_checklist_incomplete"]
    assert "Readiness to Leave" in refused.json()["errors"][0]["source"]

    # Part of the checklist by page: discharge still names what is missing.
    partial = page_client.post(
        reverse("session_action", args=[session.public_id, "leave_checklist"]),
        {"items": ["blood_pressure", "clinically_stable"]},
    )
    assert partial.status_code == 302
    still = api(monitor).post(
        discharge_url(session), {"alert_and_oriented": True, "escort_present": True}, format="json"
    )
    message = still.json()["errors"][0]["message"]
    assert "Told not to drive or use machinery" in message
    assert "Has a way home" in message
    assert "Blood pressure reassessed" not in message

    not_an_item = api(monitor).post(
        f"/api/v1/sessions/{session.public_id}/leave-checklist/", {"items": ["vibes"]}, format="json"
    )
    assert not_an_item.status_code == 400
    done = api(monitor).post(
        f"/api/v1/sessions/{session.public_id}/leave-checklist/",
        {"items": list(esketamine_rules.LEAVE_CHECKLIST_CODES)},
        format="json",
    )
    assert done.status_code == 200
    assert done.json()["leave_checklist"] == list(esketamine_rules.LEAVE_CHECKLIST_CODES)
    assert done.json()["discharge_missing"] == []
    assert done.json()["monitoring_form_missing"] == []
    assert AuditEvent.objects.filter(action="session.leave_checklist_recorded").count() == 2

    discharged = api(monitor).post(
        discharge_url(session), {"alert_and_oriented": True, "escort_present": True}, format="json"
    )
    assert discharged.status_code == 200, discharged.json()

    # No REMS monitoring form under the EU/UK label: its steps refuse, signing does not wait for it,
    # and no follow-up asks for it.
    form = api(monitor).post(
        f"/api/v1/sessions/{session.public_id}/monitoring-form/", {"pmf_sedation": True}, format="json"
    )
    assert codes(form) == ["monitoring_form_not_required"]
    signed = services.session_sign(actor=monitor, session=session)
    assert signed.status == "signed"
    assert not signed.pmf_required
    assert not FollowUp.objects.filter(dosing_session=session, kind="monitoring_form").exists()
    with pytest.raises(ValidationError) as filed:
        services.pmf_mark_filed(actor=monitor, session=session)
    assert filed.value.code == "monitoring_form_not_required"


def test_us_label_keeps_the_rems_and_has_no_readiness_checklist(
    staff: dict[str, User],
    dosing_pathway: Any,
    book: Callable[..., Booking],
    client_for: Callable[[User | None], Client],
) -> None:
    dosing_pathway.assessments.update(agent="esketamine", route="intranasal")
    monitor = staff[Role.MONITOR]
    with pytest.raises(ValidationError) as not_enrolled:
        book(dosing_pathway, 0)
    assert "rems_enrolment_missing" in [e.code for e in not_enrolled.value.error_list]
    RemsEnrolment.objects.create(
        patient=dosing_pathway.patient, enrolled_on=timezone.localdate(), recorded_by=staff[Role.PRESCRIBER]
    )
    session = ready(staff, book(dosing_pathway, 0))
    assert session.pmf_required
    services.dose_start(actor=monitor, session=session, dose_mg=56, lot_number="S1")

    page = client_for(monitor).post(
        reverse("session_action", args=[session.public_id, "leave_checklist"]), {"items": ["blood_pressure"]}
    )
    assert page.status_code == 400
    assert "file the REMS monitoring form" in page.content.decode()
    refused = api(monitor).post(
        f"/api/v1/sessions/{session.public_id}/leave-checklist/", {"items": []}, format="json"
    )
    assert codes(refused) == ["leave_checklist_not_applicable"]
    assert DosingSession.objects.get(pk=session.pk).leave_checklist == []

    backdate_dose(session, 130)
    settled(monitor, session)
    discharged = api(monitor).post(
        discharge_url(session), {"alert_and_oriented": True, "escort_present": True}, format="json"
    )
    assert discharged.status_code == 200, discharged.json()  # no checklist under the US label
    with pytest.raises(ValidationError) as unsigned:
        services.session_sign(actor=monitor, session=session)
    assert "pmf_answers" in [e.code for e in unsigned.value.error_list]  # the REMS form still applies


def test_the_rems_enrolment_form_is_offered_only_under_the_us_label(
    staff: dict[str, User], clinic: Any, client_for: Callable[[User | None], Client]
) -> None:
    dosing_pathway = PathwayFactory(
        clinic=clinic,
        stage="dosing",
        prescriber=staff[Role.PRESCRIBER],
        patient__registered_by=staff[Role.PRESCRIBER],
    )
    SignedScreeningFactory(pathway=dosing_pathway, agent="esketamine", route="intranasal")
    prescriber = client_for(staff[Role.PRESCRIBER])
    pathway_page = reverse("pathway_detail", args=[dosing_pathway.public_id])
    booking_page = reverse("booking_create", args=[dosing_pathway.public_id])
    assert "record the patient's REMS enrolment" in prescriber.get(pathway_page).content.decode()
    follow(EU, staff)
    assert "REMS enrolment" not in prescriber.get(pathway_page).content.decode()
    booking_form = client_for(staff[Role.CLINIC_ADMIN]).get(booking_page).content.decode()
    assert "REMS enrolment" not in booking_form
    assert "EU/UK summary of product characteristics" in booking_form


# --- The settings ------------------------------------------------------------------------------------


def test_the_settings_page_and_api_choose_the_label(
    staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    admin = staff[Role.CLINIC_ADMIN]
    page = client_for(admin).get(reverse("dosing_settings")).content.decode()
    assert "Esketamine: the label the clinic follows" in page
    assert "28 mg from age 65" in page
    assert "Readiness to Leave" in page

    body = api(admin).get("/api/v1/dosing-settings/").json()
    wrong = api(admin).put("/api/v1/dosing-settings/", {**body, "esketamine_label": "uk"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "esketamine_label"
    chosen = api(admin).put(
        "/api/v1/dosing-settings/",
        {
            "esketamine_label": "eu_uk_smpc",
            "predose_systolic_max": 140,
            **{
                name: body[name]
                for name in body
                if name not in ("chair_times", "dose_ranges", "esketamine_label")
            },
        },
        format="json",
    )
    assert chosen.status_code == 200, chosen.json()
    assert chosen.json()["esketamine_label"] == "eu_uk_smpc"
    assert booking_services.esketamine_label_of(admin.member_clinic_id) == EU
    assert AuditEvent.objects.filter(action="dosing_settings.updated").exists()
    with pytest.raises(ValidationError) as refused:
        clinic_settings_services.dosing_settings_update(actor=admin, esketamine_label="uk")
    assert "esketamine_label" in refused.value.error_dict
