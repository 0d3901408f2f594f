"""A prescriber completes the demo patient's course and sees the outcome measures due 1, 3 and 6
months after it, opens the first, and sees where the months come from and how it closes."""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page
from playwright.sync_api import expect

from integration import rules
from integration.models import FollowUp
from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load
from pathways.models import Pathway

from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_prescriber_completes_a_course_and_sees_its_outcome_follow_ups(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    oliver = Pathway.objects.select_related("clinic").get(patient__record_number="HB-1006")
    sign_in(page, live_server.url, "prescriber@demo.kaemdr.test", DEMO_PASSWORD)

    page.goto(f"{live_server.url}/pathways/{oliver.public_id}/")
    expect(page.locator("#current-stage")).to_have_text("Integration")
    page.get_by_label("Move to").select_option("completed")
    page.get_by_label("Reason").fill("Course complete: PHQ-9 and PCL-5 below threshold for a month.")
    page.get_by_role("button", name="Move pathway").click()
    expect(page.get_by_role("alert").first).to_contain_text("The pathway moved to completed.")
    expect(page.locator("#current-stage")).to_have_text("Completed")

    follow_ups = page.get_by_test_id("pathway-follow-ups")
    for label in ("(1 month)", "(3 months)", "(6 months)"):
        expect(follow_ups).to_contain_text(f"Outcome measures after the course {label}")
    expect(follow_ups).not_to_contain_text("Integration session")  # the dose's follow-ups are cancelled
    follow_ups.scroll_into_view_if_needed()
    shot(page, output_dir, "01-course-completed")
    assert_accessible(page, output_dir, "pathway-completed")

    oliver.refresh_from_db()
    tz = zoneinfo.ZoneInfo(oliver.clinic.time_zone)
    first = FollowUp.objects.get(pathway=oliver, kind="course_outcome", sequence=1)
    assert first.due_at == rules.add_months(oliver.stage_changed_at, months=1, tz=tz)
    follow_ups.get_by_role("link", name="Outcome measures after the course (1 month)").click()
    heading = "Outcome measures after the course (1 month) for Oliver Brandt"
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    due = timezone.localtime(first.due_at, tz)
    expect(page.locator("main")).to_contain_text(f"{due:%A} {due.day} {due:%B %Y}")
    expect(page.get_by_test_id("follow-up-source")).to_contain_text(
        "Clinic setting, Outcome follow-up months"
    )
    expect(page.get_by_test_id("record-measures")).to_contain_text("Record the PHQ-9")
    shot(page, output_dir, "02-outcome-follow-up")
    assert_accessible(page, output_dir, "outcome-follow-up")
