"""A monitor runs a dosing session on a tablet, from the pre-dose checks to discharge and signature;
a high pre-dose blood pressure stops the dose until the prescriber signs an override."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import Role
from pathways.models import Stage
from sessions.booking import services
from sessions.models import DosingSession
from sessions.models import RemsEnrolment

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory
from ..sessions.dosing_day import time_passes
from .bookings import booking_tomorrow
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """An iPad in portrait: the monitor records vitals at the chair."""
    return {**browser_context_args, "viewport": {"width": 820, "height": 1180}, "has_touch": True}


def vitals(page: Page, systolic: str, diastolic: str, heart_rate: str, spo2: str, rate: str) -> None:
    page.get_by_label("Systolic").fill(systolic)
    page.get_by_label("Diastolic").fill(diastolic)
    page.get_by_label("Heart rate").fill(heart_rate)
    page.get_by_label("SpO2 %").fill(spo2)
    page.get_by_label("Resp. rate").fill(rate)
    page.get_by_role("button", name="Save reading").click()


def scale(page: Page, name: str, score: str) -> None:
    page.locator("#id_scale").select_option(label=name)
    page.get_by_label("Score").fill(score)
    page.get_by_role("button", name="Save rating").click()
    expect(page.get_by_text("Saved.")).to_be_visible()


def test_monitor_runs_a_session_to_discharge(
    page: Page, browser: Browser, live_server: Any, output_dir: Path
) -> None:
    made = booking_tomorrow(
        prescriber={"email": "dr@harbour.test", "full_name": "Dr Amara Okafor"},
        monitor={"email": "nurse@harbour.test", "full_name": "Priya Raman"},
    )
    booking, prescriber, monitor = made.booking, made.prescriber, made.monitor

    sign_in(page, live_server.url, monitor.email, TEST_PASSWORD)
    page.goto(f"{live_server.url}/dosing/bookings/{booking.public_id}/")
    page.get_by_role("button", name="Start the session record").click()
    expect(page.get_by_role("heading", name="Session record of Aisha Rahman")).to_be_visible()

    page.get_by_label("Fasting confirmed (no food 2 h, no liquids 30 min)").check()
    page.get_by_label("Escort present to take the patient home").check()
    page.get_by_label("Consent for this session confirmed").check()
    page.get_by_role("button", name="Save checklist").click()
    vitals(page, "152", "92", "80", "98", "14")
    expect(page.get_by_text("Blood pressure 152/92 is above the clinic's 140/90.")).to_be_visible()
    page.get_by_label("Dose (mg)").fill("35")
    page.get_by_label("Lot number").fill("KET-2291")
    page.get_by_role("button", name="Start the dose").click()
    expect(page.get_by_text("A prescriber can sign an override with a reason.")).to_be_visible()
    expect(page.get_by_label("Lot number")).to_have_value("KET-2291")
    shot(page, output_dir, "01-dose-refused-high-bp")
    assert_accessible(page, output_dir, "session-pre-dose")

    # The prescriber, on their own device, signs the override with a reason.
    prescriber_context = browser.new_context(viewport={"width": 1180, "height": 820})
    prescriber_page = prescriber_context.new_page()
    sign_in(prescriber_page, live_server.url, prescriber.email, TEST_PASSWORD)
    session = DosingSession.objects.get(booking=booking)
    prescriber_page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    prescriber_page.get_by_label("Reason for the override").fill(
        "Known white-coat pattern; home readings 130s."
    )
    prescriber_page.get_by_role("button", name="Sign the override").click()
    expect(prescriber_page.get_by_text("Override signed by Dr Amara Okafor")).to_be_visible()
    prescriber_context.close()

    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    page.get_by_label("Dose (mg)").fill("35")
    page.get_by_label("Lot number").fill("KET-2291")
    page.get_by_role("button", name="Start the dose").click()
    expect(page.locator("#session-status")).to_have_text("Dosed, monitoring")
    expect(page.get_by_text("35 mg (0.50 mg/kg at 70 kg)")).to_be_visible()

    # Forty minutes in: the reading the label asks for about then, and the infusion's end.
    time_passes(session, 40)
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    vitals(page, "138", "86", "88", "96", "14")
    expect(page.locator("#id_systolic")).to_be_focused()  # back at the first field for the next reading
    page.get_by_role("button", name="Record the end").click()
    expect(page.get_by_text("Ended")).to_be_visible()
    scale(page, "MOAA/S (0-5)", "4")
    scale(page, "CADSS (0-92)", "12")
    page.get_by_label("Alert and oriented").check()
    page.get_by_role("button", name="Discharge").click()
    expect(page.get_by_text("Observation continues until")).to_be_visible()
    expect(page.get_by_text("The last MOAA/S is 4")).to_be_visible()
    shot(page, output_dir, "02-monitoring-discharge-waits")
    assert_accessible(page, output_dir, "session-monitoring")

    # Ninety minutes after the end of the dose: settled, rated again, discharged and signed.
    time_passes(session, 90)
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    vitals(page, "126", "80", "76", "98", "14")
    scale(page, "MOAA/S (0-5)", "5")
    scale(page, "CADSS (0-92)", "0")
    expect(page.get_by_text("confirm alertness and the escort")).to_be_visible()
    page.get_by_label("Alert and oriented").check()
    page.get_by_role("button", name="Discharge").click()
    expect(page.locator("#session-status")).to_have_text("Discharged")
    page.get_by_role("button", name="Sign the record").click()
    expect(page.locator("#session-status")).to_have_text("Signed")
    shot(page, output_dir, "03-signed")
    assert_accessible(page, output_dir, "session-signed")
    booking.refresh_from_db()
    assert booking.status == "completed"


def test_a_whole_esketamine_day_with_its_monitoring_form(
    page: Page, browser: Browser, live_server: Any, output_dir: Path
) -> None:
    """Checks, pre-dose blood pressure, two devices five minutes apart, the 40-minute reading, scales as
    they wane, a discharge that waits, the prescriber's medication classes, the REMS form, signature."""
    clinic = ClinicFactory(name="Harbour Clinic")
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN)
    prescriber = UserFactory(
        clinic=clinic, role=Role.PRESCRIBER, email="dr@harbour.test", full_name="Dr Amara Okafor"
    )
    monitor = UserFactory(
        clinic=clinic, role=Role.MONITOR, email="nurse@harbour.test", full_name="Priya Raman"
    )
    room = RoomFactory(clinic=clinic, name="Harbour Room")
    pathway = PathwayFactory(
        clinic=clinic,
        stage=Stage.DOSING,
        prescriber=prescriber,
        patient__given_name="Tomás",
        patient__family_name="Reyes",
    )
    SignedScreeningFactory(pathway=pathway, agent="esketamine", route="intranasal")
    RemsEnrolment.objects.create(
        patient=pathway.patient, enrolled_on=timezone.localdate(), recorded_by=prescriber
    )
    day = timezone.localdate() + dt.timedelta(days=1)
    booking = services.booking_create(
        actor=admin,
        pathway=pathway,
        room=room,
        prescriber=prescriber,
        monitor=monitor,
        starts_at=dt.datetime.combine(day, dt.time(9, 0), tzinfo=zoneinfo.ZoneInfo(clinic.time_zone)),
    )

    sign_in(page, live_server.url, monitor.email, TEST_PASSWORD)
    page.goto(f"{live_server.url}/dosing/bookings/{booking.public_id}/")
    page.get_by_role("button", name="Start the session record").click()
    page.get_by_label("Fasting confirmed (no food 2 h, no liquids 30 min)").check()
    page.get_by_label("Escort present to take the patient home").check()
    page.get_by_label("Consent for this session confirmed").check()
    page.get_by_role("button", name="Save checklist").click()
    vitals(page, "130", "84", "76", "98", "14")
    page.get_by_label("Dose planned").select_option(label="56 mg (2 devices)")
    page.get_by_label("Lot number").fill("SPR-40917")
    page.get_by_role("button", name="Start the dose").click()
    expect(page.locator("#session-status")).to_have_text("Dosed, monitoring")
    session = DosingSession.objects.get(booking=booking)

    page.get_by_role("button", name="Record device 2 given").click()  # too soon: refused with the rule
    expect(page.get_by_text("wait 5 minutes between devices")).to_be_visible()
    time_passes(session, 5)
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    page.get_by_role("button", name="Record device 2 given").click()
    expect(page.locator("dd", has_text="2 of 2")).to_be_visible()

    time_passes(session, 35)  # about 40 minutes after the first device: blood pressure peaks
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    vitals(page, "150", "92", "84", "97", "14")
    scale(page, "MOAA/S (0-5)", "4")
    scale(page, "CADSS (0-92)", "18")
    page.get_by_label("Alert and oriented").check()
    page.get_by_role("button", name="Discharge").click()
    expect(page.get_by_text("Observation continues until")).to_be_visible()
    shot(page, output_dir, "esketamine-01-monitoring")
    assert_accessible(page, output_dir, "esketamine-monitoring")

    # The prescriber confirms the monitoring form's medication classes on their own device.
    prescriber_context = browser.new_context(viewport={"width": 1180, "height": 820})
    prescriber_page = prescriber_context.new_page()
    sign_in(prescriber_page, live_server.url, prescriber.email, TEST_PASSWORD)
    prescriber_page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    prescriber_page.get_by_role("button", name="Confirm the medication classes").click()
    expect(prescriber_page.get_by_text("Confirmed by Dr Amara Okafor")).to_be_visible()
    prescriber_context.close()

    time_passes(session, 86)  # two hours from the last device
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    vitals(page, "128", "80", "74", "98", "14")
    scale(page, "MOAA/S (0-5)", "5")
    scale(page, "CADSS (0-92)", "0")
    page.get_by_label("Alert and oriented").check()
    page.get_by_role("button", name="Discharge").click()
    expect(page.locator("#session-status")).to_have_text("Discharged")
    page.locator("#id_pmf_first_treatment_0").check()
    page.locator("#id_pmf_sedation_0").check()
    page.locator("#id_pmf_dissociation_0").check()
    page.locator("#id_pmf_respiratory_depression_1").check()
    page.get_by_label("Ready without the 2-hour rule after (minutes)").fill("100")
    page.get_by_role("button", name="Save form data").click()
    expect(page.get_by_text("Still missing")).to_have_count(0)
    shot(page, output_dir, "esketamine-02-monitoring-form")
    assert_accessible(page, output_dir, "esketamine-discharged")
    page.get_by_role("button", name="Sign the record").click()
    expect(page.locator("#session-status")).to_have_text("Signed")
    shot(page, output_dir, "esketamine-03-signed")
    session.refresh_from_db()
    assert session.pmf_medications_confirmed_at is not None
    assert len(session.device_times) == 2
