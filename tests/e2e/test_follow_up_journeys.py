"""A nurse records a check-in from the clinic's follow-ups, and a clinic admin changes the follow-up
timings (a bad value is explained next to its field, the rest of the input kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from integration.models import FollowUp
from integration.models import IntegrationSettings
from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load

from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_nurse_records_a_check_in_from_the_clinics_follow_ups(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    check_in = FollowUp.objects.get(
        pathway__patient__record_number="HB-1006", kind="check_in", status="open", sequence=7
    )
    sign_in(page, live_server.url, "monitor@demo.kaemdr.test", DEMO_PASSWORD)
    page.get_by_role("link", name="Follow-ups", exact=True).click()
    page.get_by_role("link", name="Whole clinic").click()
    table = page.get_by_role("region", name="Follow-ups")
    expect(table).to_contain_text("Oliver Brandt")
    shot(page, output_dir, "01-follow-ups")
    assert_accessible(page, output_dir, "follow-ups")

    page.locator(f'a[href="/integration/follow-ups/{check_in.public_id}/"]').click()
    expect(page.get_by_role("heading", name="Check-in (day 7) for Oliver Brandt")).to_be_visible()
    page.get_by_role("button", name="Record check-in").click()
    expect(page.locator("main")).to_contain_text("This field is required.")
    page.get_by_label("How did the check-in go?").fill("Reached by phone: sleeping better, no concerns.")
    page.get_by_role("button", name="Record check-in").click()
    expect(page.get_by_role("alert").first).to_contain_text("Check-in recorded as done.")
    expect(page.locator("main")).to_contain_text("Reached by phone: sleeping better, no concerns.")
    shot(page, output_dir, "02-check-in-done")
    assert_accessible(page, output_dir, "follow-up-done")
    check_in.refresh_from_db()
    assert (check_in.status, check_in.done_by.email) == ("done", "monitor@demo.kaemdr.test")


def test_an_admin_sets_the_follow_up_timings(page: Page, live_server: Any, output_dir: Path) -> None:
    demo_clinic_load()
    sign_in(page, live_server.url, "admin@demo.kaemdr.test", DEMO_PASSWORD)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Follow-up settings").first.click()
    expect(page.get_by_role("heading", name="Follow-up settings")).to_be_visible()
    page.get_by_label("Integration session due within (hours)").fill("48")
    page.get_by_label("Check-in days after a dose").fill("0, 2")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("main")).to_contain_text("Check-in days run from 1 to 90 after the session.")
    expect(page.get_by_label("Integration session due within (hours)")).to_have_value("48")
    shot(page, output_dir, "01-settings-refused")
    assert_accessible(page, output_dir, "settings")
    page.get_by_label("Check-in days after a dose").fill("2, 5, 14")
    page.get_by_label("Email patients their reminders").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert").first).to_contain_text("The follow-up settings are saved.")
    expect(page.get_by_label("Check-in days after a dose")).to_have_value("2, 5, 14")
    shot(page, output_dir, "02-settings-saved")
    saved = IntegrationSettings.objects.get(clinic__slug__startswith="harbour")
    assert (saved.integration_window_hours, saved.check_in_days, saved.patient_emails_enabled) == (
        48,
        "2, 5, 14",
        True,
    )
