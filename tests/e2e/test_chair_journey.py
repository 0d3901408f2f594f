"""At the chair on a tablet (issue 16, item 7): after a reading is saved focus is back on the first
vitals field; an out-of-range value puts focus on that field with a message naming the allowed
range; the readings table flags what is near the clinic's limits and the vitals trend sits below."""

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
from pathways.models import Stage
from sessions.booking import services
from sessions.models import DosingSession
from sessions.models import SessionStatus
from sessions.models import VitalsReading
from sessions.record import rules
from sessions.record import services as record_services

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A 10-inch tablet in landscape (1024x768), at the chair."""
    return {**browser_context_args, "viewport": {"width": 1024, "height": 768}, "has_touch": True}


def _dosed_session_with_readings() -> tuple[DosingSession, Any]:
    """A record an hour into monitoring, with readings every quarter of an hour, one near the limits.
    The record's earlier steps are written as the services leave them (their own tests drive them)."""
    clinic = ClinicFactory(name="Harbour Clinic")
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN)
    prescriber = UserFactory(clinic=clinic, role=Role.PRESCRIBER, full_name="Dr Amara Okafor")
    monitor = UserFactory(
        clinic=clinic, role=Role.MONITOR, email="nurse@harbour.test", full_name="Priya Raman"
    )
    pathway = PathwayFactory(
        clinic=clinic,
        stage=Stage.DOSING,
        prescriber=prescriber,
        patient__given_name="Aisha",
        patient__family_name="Rahman",
    )
    SignedScreeningFactory(pathway=pathway, weight_kg=70)
    day = timezone.localdate() + dt.timedelta(days=1)
    booking = services.booking_create(
        actor=admin,
        pathway=pathway,
        room=RoomFactory(clinic=clinic, name="Harbour Room"),
        prescriber=prescriber,
        monitor=monitor,
        starts_at=dt.datetime.combine(day, dt.time(9, 0), tzinfo=zoneinfo.ZoneInfo(clinic.time_zone)),
    )
    session = record_services.session_open(actor=monitor, booking=booking)
    now = timezone.now()
    started = now - dt.timedelta(minutes=50)
    DosingSession.objects.filter(pk=session.pk).update(
        status=SessionStatus.DOSED,
        fasting_confirmed=True,
        escort_present=True,
        consent_confirmed=True,
        dose_mg=35,
        weight_kg=70,
        lot_number="KET-2291",
        dose_started_at=started,
        dosed_by=monitor,
    )
    values = [(128, 82, 76, 98, 14), (146, 90, 84, 97, 16), (174, 104, 96, 96, 16), (152, 92, 86, 97, 15)]
    for index, (systolic, diastolic, heart_rate, spo2, rate) in enumerate(values):
        reading = rules.Reading(systolic, diastolic, heart_rate, spo2, rate)
        VitalsReading.objects.create(
            session=session,
            taken_at=started + dt.timedelta(minutes=-5 + 15 * index),
            is_pre_dose=index == 0,
            recorded_by=monitor,
            flags=rules.vital_flags(reading, rules.VitalLimits()),
            systolic=systolic,
            diastolic=diastolic,
            heart_rate=heart_rate,
            spo2=spo2,
            respiratory_rate=rate,
        )
    return session, monitor


def _active_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def test_focus_follows_the_monitor_at_the_chair(page: Page, live_server: Any, output_dir: Path) -> None:
    session, monitor = _dosed_session_with_readings()
    sign_in(page, live_server.url, monitor.email, TEST_PASSWORD)
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    expect(page.get_by_role("heading", name="Session record of Aisha Rahman")).to_be_visible()

    # A reading saved: the page comes back at #vitals with focus on the first vitals field.
    page.get_by_role("textbox", name="Systolic mmHg").fill("138")
    page.get_by_role("textbox", name="Diastolic mmHg").fill("86")
    page.get_by_role("textbox", name="Heart rate bpm").fill("112")
    page.get_by_role("textbox", name="SpO2 %").fill("97")
    page.get_by_role("textbox", name="Resp. rate /min").fill("14")
    page.get_by_role("button", name="Save reading").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    assert page.url.endswith("#vitals")
    expect(page.locator("#id_systolic")).to_be_focused()
    assert _active_id(page) == "id_systolic"
    expect(page.get_by_role("textbox", name="Systolic mmHg")).to_have_value("")
    # The new reading is near the heart-rate limit (120): flagged in words, not colour alone.
    new_row = page.locator("table tbody tr").last
    expect(new_row).to_have_class("table-warning")
    expect(new_row.get_by_text("Heart rate 112 is near the limit of 120.")).to_be_visible()
    expect(new_row.locator(".badge", has_text="near limit")).to_be_visible()
    expect(
        page.get_by_role("img", name="Vitals trend: systolic, diastolic, heart rate and SpO2")
    ).to_be_visible()
    assert page.evaluate("document.querySelector('#vitals-trend img').naturalWidth") > 0
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, output_dir, "01-reading-saved-focus-on-systolic")
    assert_accessible(page, output_dir, "chair-after-save")

    # An out-of-range value: the page answers 400 with focus on that field and the range named.
    page.get_by_role("textbox", name="Systolic mmHg").fill("130")
    page.get_by_role("textbox", name="Diastolic mmHg").fill("84")
    page.get_by_role("textbox", name="SpO2 %").fill("120")
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Save reading").click()
    assert posted.value.status == 400
    expect(page.locator("#id_spo2")).to_be_focused()
    assert _active_id(page) == "id_spo2"
    expect(page.get_by_role("textbox", name="SpO2 %")).to_have_value("120")
    expect(page.get_by_role("textbox", name="Systolic mmHg")).to_have_value("130")
    message = page.locator("#vitals .invalid-feedback")
    expect(message).to_have_text("Enter an SpO2 between 50 and 100%.")
    assert VitalsReading.objects.filter(session=session).count() == 5
    shot(page, output_dir, "02-out-of-range-focus-on-spo2")
    assert_accessible(page, output_dir, "chair-out-of-range")

    # Corrected and saved: focus is back on the first field.
    page.get_by_role("textbox", name="SpO2 %").fill("98")
    page.get_by_role("button", name="Save reading").click()
    expect(page.locator("#id_systolic")).to_be_focused()
    assert VitalsReading.objects.filter(session=session).count() == 6

    # The tablet turned to portrait: the form, the table and the (still small) trend.
    page.set_viewport_size({"width": 768, "height": 1024})
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, output_dir, "03-portrait")
