"""Dosing rooms in the browser: a clinic admin books a session and sees a conflicting one refused."""

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
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def book(page: Page, *, room: str, day: dt.date, time: str, monitor: str) -> None:
    page.get_by_role("link", name="Book a session").click()
    page.get_by_label("Room").select_option(label=room)
    page.get_by_label("Date").fill(day.isoformat())
    page.get_by_label("Start time").fill(time)
    page.get_by_label("Monitor").select_option(label=monitor)
    # Wait for the answer to the post itself (up to the navigation timeout), not only the 5 s an
    # assertion waits: on a loaded machine a refusal's page can take longer to come back.
    with page.expect_navigation():
        page.get_by_role("button", name="Book", exact=True).click()


def test_admin_books_a_room_and_a_clash_is_refused(page: Page, live_server: Any, output_dir: Path) -> None:
    clinic = ClinicFactory(name="Harbour Clinic")
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN, email="admin3@harbour.test")
    prescriber = UserFactory(clinic=clinic, role=Role.PRESCRIBER, full_name="Dr Amara Okafor")
    UserFactory(clinic=clinic, role=Role.MONITOR, full_name="Priya Raman")
    UserFactory(clinic=clinic, role=Role.MONITOR, full_name="Tom Ellis")
    RoomFactory(clinic=clinic, name="Harbour Room")
    first = PathwayFactory(
        clinic=clinic,
        stage=Stage.DOSING,
        prescriber=prescriber,
        patient__given_name="Tomás",
        patient__family_name="Reyes",
    )
    second = PathwayFactory(
        clinic=clinic,
        stage=Stage.DOSING,
        prescriber=prescriber,
        patient__given_name="Aisha",
        patient__family_name="Rahman",
    )
    SignedScreeningFactory(pathway=first)
    SignedScreeningFactory(pathway=second)
    day = timezone.localdate() + dt.timedelta(days=2)

    sign_in(page, live_server.url, admin.email, TEST_PASSWORD)
    page.goto(f"{live_server.url}/pathways/{first.public_id}/")
    book(page, room="Harbour Room", day=day, time="09:00", monitor="Priya Raman")
    expect(page.get_by_role("alert").first).to_contain_text("Booked: Harbour Room")
    expect(page.get_by_role("heading", name="Dosing session of Tomás Reyes")).to_be_visible()
    page.get_by_label("Fasting instructions given").check()
    page.get_by_role("button", name="Save checks").click()
    expect(page.get_by_role("alert").first).to_contain_text("The pre-visit checks are saved.")
    shot(page, output_dir, "01-booked")
    assert_accessible(page, output_dir, "booking-page")

    page.goto(f"{live_server.url}/pathways/{second.public_id}/")
    book(page, room="Harbour Room", day=day, time="10:30", monitor="Tom Ellis")
    expect(page.get_by_text("The room is booked for Tomás Reyes: Harbour Room")).to_be_visible()
    expect(page.get_by_label("Start time")).to_have_value("10:30")
    shot(page, output_dir, "02-conflict-refused")
    assert_accessible(page, output_dir, "booking-conflict")

    page.get_by_label("Start time").fill("12:00")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text("Booked: Harbour Room")

    page.goto(f"{live_server.url}/dosing/calendar/?week={day.isoformat()}")
    expect(page.locator(".cal-grid")).to_contain_text("Tomás Reyes")
    expect(page.locator(".cal-grid")).to_contain_text("Aisha Rahman")
    shot(page, output_dir, "03-week-calendar")
    assert_accessible(page, output_dir, "week-calendar")
    assert Booking.objects.filter(status="booked").count() == 2
