"""Staff rotas in the browser: a clinic admin sets a monitor's working hours and a day of leave, the
calendar shows who is on, and a booking on that leave is refused with when the monitor is away."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import Role
from pathways.models import Stage
from sessions.models import Booking

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory
from .conftest import assert_accessible
from .conftest import shot
from .test_dosing_journeys import book
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def test_admin_sets_hours_and_leave_and_a_booking_on_the_leave_is_refused(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    clinic = ClinicFactory(name="Harbour Clinic")
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN, email="admin.rota@harbour.test")
    prescriber = UserFactory(clinic=clinic, role=Role.PRESCRIBER, full_name="Dr Amara Okafor")
    UserFactory(clinic=clinic, role=Role.MONITOR, full_name="Oliver Mensah")
    RoomFactory(clinic=clinic, name="Harbour Room")
    pathway = PathwayFactory(
        clinic=clinic,
        stage=Stage.DOSING,
        prescriber=prescriber,
        patient__given_name="Tomás",
        patient__family_name="Reyes",
    )
    SignedScreeningFactory(pathway=pathway)
    day = timezone.localdate() + dt.timedelta(days=2)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)

    sign_in(page, live_server.url, admin.email, TEST_PASSWORD)
    page.get_by_role("link", name="Rota", exact=True).first.click()
    expect(page.get_by_role("heading", name="Rota", exact=True)).to_be_visible()
    page.get_by_role("link", name="Hours and leave of Oliver Mensah").click()
    expect(page.get_by_role("heading", name="Rota of Oliver Mensah")).to_be_visible()

    for weekday in WEEKDAYS:
        day_row = page.get_by_role("group", name=weekday)
        day_row.get_by_label("From", exact=True).fill("08:00")
        day_row.get_by_label("To", exact=True).fill("16:00")
    page.get_by_role("button", name="Save working hours").click()
    expect(page.get_by_role("alert").first).to_contain_text("Oliver Mensah's working hours are saved.")
    expect(page.get_by_text("Works Mon-Fri 08:00-16:00.")).to_be_visible()

    page.get_by_label("From (date)").fill(day.isoformat())
    page.get_by_label("Until (date)").fill(day.isoformat())
    page.get_by_label("Reason (optional)").fill("Annual leave")
    page.get_by_role("button", name="Add leave").click()
    expect(page.get_by_role("alert").first).to_contain_text("The leave of Oliver Mensah is added.")
    expect(page.get_by_role("listitem").filter(has_text="Annual leave")).to_contain_text(
        f"{day:%a %-d %b %Y} 00:00 to {day + dt.timedelta(days=1):%a %-d %b %Y} 00:00"
    )
    shot(page, output_dir, "01-rota-hours-and-leave")
    assert_accessible(page, output_dir, "rota-staff")

    page.get_by_role("link", name="Rota", exact=True).first.click()
    expect(page.get_by_role("row", name="Oliver Mensah")).to_contain_text("Mon-Fri 08:00-16:00")
    shot(page, output_dir, "02-rota-list")
    assert_accessible(page, output_dir, "rota-list")

    page.goto(f"{live_server.url}/pathways/{pathway.public_id}/")
    book(page, room="Harbour Room", day=day, time="09:00", monitor="Oliver Mensah")
    refusal = page.get_by_text("The monitor Oliver Mensah is on leave from")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text(f"until {day + dt.timedelta(days=1):%a %-d %b %Y} 00:00")
    expect(page.get_by_label("Start time")).to_have_value("09:00")
    assert not Booking.objects.exists()
    shot(page, output_dir, "03-booking-on-leave-refused")
    assert_accessible(page, output_dir, "booking-refused-on-leave")

    page.goto(f"{live_server.url}/dosing/calendar/?week={day.isoformat()}")
    rota_day = page.locator(f'[data-rota-day="{day.isoformat()}"]')
    expect(rota_day).to_contain_text("on leave: Oliver Mensah")
    expect(page.get_by_role("heading", name="Who is on this week")).to_be_visible()
    shot(page, output_dir, "04-calendar-who-is-on")
    assert_accessible(page, output_dir, "calendar-who-is-on")
