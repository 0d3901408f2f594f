"""A clinic admin opens a signed dosing session: the room, times, staff and status, no vitals, dose or
adverse events (issue 18: least privilege), until the clinic lets its admins read them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from sessions.record import services

from ..factories import TEST_PASSWORD
from ..sessions.dosing_day import backdate_dose
from ..sessions.dosing_day import discharge
from ..sessions.dosing_day import settled
from .bookings import booking_tomorrow
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOT = "KET-5530"
ADVERSE_EVENT = "Brief nausea"


def test_a_clinic_admin_sees_a_sessions_logistics_but_not_its_vitals(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    made = booking_tomorrow(
        admin={"email": "admin@harbour.test", "full_name": "Jo Whitfield"},
        prescriber={"full_name": "Dr Amara Okafor"},
        monitor={"full_name": "Priya Raman"},
    )
    booking, admin, monitor = made.booking, made.admin, made.monitor
    # The monitor ran the session: checks, a pre-dose reading, the dose, an adverse event, discharge.
    session = services.session_open(actor=monitor, booking=booking)
    services.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    services.vitals_record(actor=monitor, session=session, systolic=133, diastolic=84, heart_rate=71)
    services.dose_start(actor=monitor, session=session, dose_mg=35, lot_number=LOT)
    backdate_dose(session, 100)
    settled(monitor, session, systolic=126, diastolic=79)
    services.adverse_event_record(
        actor=monitor, session=session, description=ADVERSE_EVENT, severity="mild", action_taken="Observed"
    )
    discharge(monitor, session)
    services.session_sign(actor=monitor, session=session)

    sign_in(page, live_server.url, admin.email, TEST_PASSWORD)
    page.goto(f"{live_server.url}/dosing/bookings/{booking.public_id}/")
    page.get_by_role("link", name="Session record").click()
    expect(page.get_by_role("heading", name="Dosing session of Aisha Rahman")).to_be_visible()
    expect(page.locator("#logistics-only")).to_contain_text("You see this session's logistics")
    expect(page.locator("#session-status")).to_have_text("Signed")
    for shown in ("Harbour Room", "Dr Amara Okafor", "Priya Raman", "Opened", "Signed"):
        expect(page.get_by_text(shown, exact=True).first).to_be_visible()
    body = page.locator("main").inner_text()
    for hidden in (
        LOT,
        ADVERSE_EVENT,
        "133/84",
        "126/79",
        "35 mg",
        "Vitals trend",
        "Adverse events",
        "Scales",
    ):
        assert hidden not in body, hidden
    expect(page.get_by_role("heading", name="Vitals")).to_have_count(0)
    expect(page.get_by_role("button", name="Summary (PDF)")).to_have_count(0)
    shot(page, output_dir, "01-admin-sees-logistics-only")
    assert_accessible(page, output_dir, "session-logistics")

    # The clinic lets its admins read dosing records: the same page shows the whole record.
    page.goto(f"{live_server.url}/dosing/settings/")
    page.get_by_label("Clinic admins may read the clinical content of dosing records").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("The dosing settings are saved.")).to_be_visible()
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    expect(page.get_by_role("heading", name="Session record of Aisha Rahman")).to_be_visible()
    expect(page.get_by_role("heading", name="Vitals", exact=True)).to_be_visible()
    expect(page.get_by_text(ADVERSE_EVENT)).to_be_visible()
    expect(page.get_by_text(LOT, exact=True)).to_be_visible()
    shot(page, output_dir, "02-admin-with-the-grant-reads-the-record")
