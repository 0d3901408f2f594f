"""A room's calendar feed in the browser: a clinic admin gives it a new address, confirming that the
old one stops working, and sees the new one (issue 18)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from sessions.models import Room

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import RoomFactory
from ..factories import UserFactory
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_gives_a_room_feed_a_new_address(page: Page, live_server: Any, output_dir: Path) -> None:
    clinic = ClinicFactory(name="Harbour Clinic")
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN, email="feed-admin@harbour.test")
    room = RoomFactory(clinic=clinic, name="Harbour Room")

    sign_in(page, live_server.url, admin.email, TEST_PASSWORD)
    page.get_by_role("link", name="Rooms", exact=True).first.click()
    page.get_by_role("link", name="Harbour Room").click()
    expect(page.get_by_role("heading", name="Harbour Room", level=1)).to_be_visible()
    address = page.get_by_label("Feed address")
    old_url = address.input_value()
    assert old_url.endswith(f"/dosing/rooms/feed/{room.calendar_token}.ics")
    assert page.request.get(old_url).status == 200
    expect(page.get_by_text("The current address stops working at once: every calendar")).to_be_visible()
    shot(page, output_dir, "01-room-feed")
    assert_accessible(page, output_dir, "room-feed")

    # Without the confirmation nothing changes.
    page.get_by_role("button", name="Give the feed a new address").click()
    expect(page.get_by_text("Tick the box to confirm")).to_be_visible()
    expect(page.get_by_label("Feed address")).to_have_value(old_url)

    page.get_by_label("I understand the current address stops working at once").check()
    page.get_by_role("button", name="Give the feed a new address").click()

    expect(page.get_by_role("alert").first).to_contain_text(
        "The calendar feed has a new address and the old one no longer works."
    )
    expect(page.get_by_label("Feed address")).not_to_have_value(old_url)
    new_url = page.get_by_label("Feed address").input_value()
    room.refresh_from_db()
    assert new_url.endswith(f"/dosing/rooms/feed/{room.calendar_token}.ics")
    assert page.request.get(old_url).status == 404
    assert page.request.get(new_url).status == 200
    assert AuditEvent.objects.filter(action="room.feed_rotated", target_public_id=room.public_id).count() == 1
    assert Room.objects.filter(calendar_token=room.calendar_token).count() == 1
    shot(page, output_dir, "02-new-feed-address")
    assert_accessible(page, output_dir, "room-feed-rotated")
