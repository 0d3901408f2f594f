"""The room calendar as a time grid and the booking form's free starts, in the browser: a clinic admin
reads the week and the day at 1280 px and on a tablet (landscape and portrait), then books by clicking
a free start."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import Role
from pathways.models import Stage
from sessions.booking import services
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

WIDTHS = {"1280": (1280, 900), "tablet-landscape": (1180, 820), "tablet-portrait": (820, 1180)}


def _page_fits(page: Page) -> None:
    """Nothing is cut off: the page never scrolls sideways, and each grid column is wide enough to read."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    uses = page.locator(".cal-uses")
    expect(uses).to_be_visible()
    box = uses.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= page.viewport_size["width"]  # type: ignore[index]


def test_admin_reads_the_calendar_and_books_a_free_start(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    clinic = ClinicFactory(name="Harbour Clinic")
    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN, email="admin-cal@harbour.test")
    prescriber = UserFactory(clinic=clinic, role=Role.PRESCRIBER, full_name="Dr Amara Okafor")
    monitor = UserFactory(clinic=clinic, role=Role.MONITOR, full_name="Priya Raman")
    harbour = RoomFactory(clinic=clinic, name="Harbour Room")
    garden = RoomFactory(clinic=clinic, name="Garden Room")
    services.room_set_hours(
        actor=admin, room=garden, hours=[(day, dt.time(9), dt.time(17)) for day in range(5)]
    )
    pathways = []
    for given, family in (("Tomás", "Reyes"), ("Aisha", "Rahman"), ("Noor", "Haddad")):
        pathway = PathwayFactory(
            clinic=clinic,
            stage=Stage.DOSING,
            prescriber=prescriber,
            patient__given_name=given,
            patient__family_name=family,
        )
        SignedScreeningFactory(pathway=pathway)
        pathways.append(pathway)
    # Three days ahead, on a weekday (the garden room's days).
    day = timezone.localdate() + dt.timedelta(days=3)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    first = services.booking_create(
        actor=admin,
        pathway=pathways[0],
        room=garden,
        starts_at=dt.datetime.combine(day, dt.time(9), tzinfo=tz),
        prescriber=prescriber,
        monitor=monitor,
    )
    cancelled = services.booking_create(
        actor=admin,
        pathway=pathways[1],
        room=harbour,
        starts_at=dt.datetime.combine(day, dt.time(13), tzinfo=tz),
        prescriber=prescriber,
        monitor=UserFactory(clinic=clinic, role=Role.MONITOR, full_name="Tom Ellis"),
    )
    services.booking_cancel(actor=admin, booking=cancelled, reason="Unwell")
    services.room_closure_add(
        actor=admin,
        room=harbour,
        starts_at=dt.datetime.combine(day, dt.time(16), tzinfo=tz),
        ends_at=dt.datetime.combine(day, dt.time(18), tzinfo=tz),
        reason="Recliner repair",
    )

    sign_in(page, live_server.url, admin.email, TEST_PASSWORD)
    for name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/dosing/calendar/?week={day.isoformat()}")
        grid = page.locator(".cal-grid")
        expect(grid.get_by_role("link", name="Tomás Reyes")).to_be_visible()
        expect(grid).to_contain_text("Booked")
        expect(grid).to_contain_text("Cancelled")
        expect(grid).to_contain_text("Out of service: Recliner repair")
        _page_fits(page)
        shot(page, output_dir, f"01-week-across-rooms-{name}")

        page.get_by_role("link", name="Day", exact=True).click()
        expect(page.locator('[data-calendar="day"]')).to_be_visible()
        page.goto(f"{live_server.url}/dosing/calendar/?view=day&day={day.isoformat()}")
        expect(page.locator(".cal-head").first).to_contain_text("Garden Room")
        _page_fits(page)
        shot(page, output_dir, f"02-day-across-rooms-{name}")

        page.goto(f"{live_server.url}/dosing/calendar/?week={day.isoformat()}&room={garden.public_id}")
        expect(page.get_by_role("heading", name="Garden Room: week of")).to_be_visible()
        _page_fits(page)
        shot(page, output_dir, f"03-one-room-week-{name}")
    assert_accessible(page, output_dir, "one-room-week")

    # Today's view marks now: a room open round the clock has the time now in its grid.
    night = RoomFactory(clinic=clinic, name="Night Room")
    services.room_set_hours(
        actor=admin, room=night, hours=[(d, dt.time(0), dt.time(23, 59)) for d in range(7)]
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/dosing/calendar/?view=day&room={night.public_id}")
    now_mark = page.locator(".cal-now")
    expect(now_mark).to_have_count(1)
    expect(now_mark).to_contain_text("Now")
    now_mark.scroll_into_view_if_needed()
    assert_accessible(page, output_dir, "day-today")
    shot(page, output_dir, "04-day-today-1280")
    services.room_save(
        actor=admin,
        room=night,
        name="Night Room",
        has_bp_monitor=True,
        has_pulse_oximeter=True,
        has_recliner=True,
        is_active=False,
    )

    # The booking opens on a next open day with its free starts; a click fills the start time.
    page.goto(live_server.url + reverse("booking_create", args=[pathways[2].public_id]))
    expect(page.get_by_role("heading", name="Free starts on")).to_be_visible()
    page.get_by_label("Room").select_option(label="Garden Room")
    page.get_by_label("Date").fill(day.isoformat())
    page.get_by_label("Date").dispatch_event("change")
    page.get_by_label("Monitor").select_option(label="Priya Raman")
    # The garden room and the monitor are busy 09:00-11:45 that day: the first free start is 11:45.
    first_free = page.locator("[data-slot]").first
    expect(first_free).to_have_text("11:45")
    expect(page.locator('[data-slot="09:00"]')).to_have_count(0)
    shot(page, output_dir, "05-booking-free-starts")
    assert_accessible(page, output_dir, "booking-free-starts")
    page.get_by_role("link", name="Start at 12:00").click()
    expect(page.get_by_label("Start time")).to_have_value("12:00")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text("Booked: Garden Room")
    booked = Booking.objects.get(pathway=pathways[2])
    assert booked.starts_at == dt.datetime.combine(day, dt.time(12), tzinfo=tz)
    assert booked.room == garden
    assert first.status == "booked"

    # The calendar shows it, and links to its booking page.
    page.set_viewport_size({"width": 820, "height": 1180})
    page.goto(f"{live_server.url}/dosing/calendar/?view=day&day={day.isoformat()}")
    page.get_by_role("link", name="Noor Haddad").click()
    expect(page.get_by_role("heading", name="Dosing session of Noor Haddad")).to_be_visible()
    page.go_back()
    shot(page, output_dir, "06-day-after-booking-tablet-portrait")
