"""A London clinic follows the UK summary of product characteristics for esketamine: a patient of 68
starts at 28 mg on day 1 (56 mg is refused with the label's words), there is no REMS monitoring form,
and the nurse completes the Readiness to Leave checklist before the discharge it holds back."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import Role
from pathways.models import Patient
from pathways.models import Stage
from sessions.booking import services as booking_services
from sessions.booking.rules import EsketamineLabel
from sessions.clinic_settings import services
from sessions.models import DosingSession

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory
from ..sessions.dosing_day import time_passes
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in
from .test_session_record_journey import scale
from .test_session_record_journey import vitals

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """An iPad in portrait: the nurse records at the chair."""
    return {**browser_context_args, "viewport": {"width": 820, "height": 1180}, "has_touch": True}


def test_uk_nurse_completes_the_readiness_to_leave_checklist_then_discharges(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    clinic = ClinicFactory(name="Thames Clinic", time_zone="Europe/London")
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN)
    prescriber = UserFactory(clinic=clinic, role=Role.PRESCRIBER, full_name="Dr Amara Okafor")
    nurse = UserFactory(clinic=clinic, role=Role.MONITOR, email="nurse@thames.test", full_name="Priya Raman")
    services.dosing_settings_update(actor=admin, esketamine_label=EsketamineLabel.EU_UK_SMPC)
    room = RoomFactory(clinic=clinic, name="River Room")
    pathway = PathwayFactory(
        clinic=clinic,
        stage=Stage.DOSING,
        prescriber=prescriber,
        patient__given_name="Margaret",
        patient__family_name="Holloway",
    )
    today = timezone.localdate()
    Patient.objects.filter(pk=pathway.patient_id).update(date_of_birth=today.replace(year=today.year - 68))
    SignedScreeningFactory(pathway=pathway, agent="esketamine", route="intranasal")
    booking = booking_services.booking_create(  # no REMS enrolment: the UK label has no REMS
        actor=admin,
        pathway=pathway,
        room=room,
        prescriber=prescriber,
        monitor=nurse,
        starts_at=dt.datetime.combine(
            today + dt.timedelta(days=1), dt.time(9, 0), tzinfo=zoneinfo.ZoneInfo(clinic.time_zone)
        ),
    )

    sign_in(page, live_server.url, nurse.email, TEST_PASSWORD)
    page.goto(f"{live_server.url}/dosing/bookings/{booking.public_id}/")
    page.get_by_role("button", name="Start the session record").click()
    page.get_by_label("Fasting confirmed (no food 2 h, no liquids 30 min)").check()
    page.get_by_label("Escort present to take the patient home").check()
    page.get_by_label("Consent for this session confirmed").check()
    page.get_by_role("button", name="Save checklist").click()
    vitals(page, "134", "82", "74", "98", "14")

    # Day 1 at 68 under the UK label: 28 mg, not 56.
    page.get_by_label("Dose planned").select_option(label="56 mg (2 devices)")
    page.get_by_label("Lot number").fill("SPR-51120")
    page.get_by_role("button", name="Start the dose").click()
    expect(page.get_by_text("adults 65 years and older, day 1 starting dose: 28 mg")).to_be_visible()
    expect(page.get_by_label("Lot number")).to_have_value("SPR-51120")
    page.get_by_label("Dose planned").select_option(label="28 mg (1 device)")
    page.get_by_role("button", name="Start the dose").click()
    expect(page.locator("#session-status")).to_have_text("Dosed, monitoring")
    expect(page.get_by_role("heading", name="REMS monitoring form")).to_have_count(0)
    session = DosingSession.objects.get(booking=booking)

    time_passes(session, 124)  # past the two hours of observation, settled
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    vitals(page, "128", "80", "72", "98", "14")
    scale(page, "MOAA/S (0-5)", "5")
    scale(page, "CADSS (0-92)", "0")
    page.get_by_label("Alert and oriented").check()
    page.get_by_role("button", name="Discharge").click()
    expect(
        page.get_by_text("Complete the Readiness to Leave checklist before discharge").first
    ).to_be_visible()
    expect(page.locator("#session-status")).to_have_text("Dosed, monitoring")
    shot(page, output_dir, "01-discharge-waits-for-the-checklist")

    checklist = page.locator("#leave_checklist")
    checklist.get_by_label("Blood pressure reassessed after the dose and at an acceptable level").check()
    checklist.get_by_label("No longer sedated or dissociated, and clinically stable").check()
    checklist.get_by_label(
        "Told not to drive or use machinery until the next day, after a restful sleep"
    ).check()
    checklist.get_by_label("Has a way home that is not driving themselves").check()
    shot(page, output_dir, "02-readiness-to-leave-ticked")
    assert_accessible(page, output_dir, "readiness-to-leave")
    checklist.get_by_role("button", name="Save the checklist").click()
    expect(page.get_by_text("Last saved by Priya Raman")).to_be_visible()

    page.get_by_label("Alert and oriented").check()
    page.get_by_role("button", name="Discharge").click()
    expect(page.locator("#session-status")).to_have_text("Discharged")
    expect(page.get_by_text("Recorded by Priya Raman")).to_be_visible()
    page.get_by_role("button", name="Sign the record").click()  # no REMS form to wait for
    expect(page.locator("#session-status")).to_have_text("Signed")
    shot(page, output_dir, "03-discharged-and-signed")
    assert_accessible(page, output_dir, "readiness-to-leave-signed")
    session.refresh_from_db()
    assert session.leave_checklist_by == nurse
    assert session.dose_mg == 28
    assert not session.pmf_required
