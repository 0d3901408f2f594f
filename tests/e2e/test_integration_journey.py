"""A therapist sees an overdue integration session on the dashboard, writes the note after the demo
patient's latest dose with two new experiments, signs it and sees the overdue follow-up go; at the
next note, one experiment is marked as kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from integration.models import Experiment
from integration.models import FollowUp
from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load
from pathways.models import Pathway

from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_experiment(page: Page, area: str, description: str) -> None:
    page.get_by_label("Area").select_option(label=area)
    page.get_by_label("What exactly").fill(description)
    page.get_by_role("button", name="Add experiment").click()
    expect(page.get_by_role("alert").first).to_contain_text("The experiment is agreed.")


def test_therapist_writes_the_integration_note_and_the_overdue_follow_up_goes(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    oliver = Pathway.objects.get(patient__record_number="HB-1006")
    overdue = FollowUp.objects.get(pathway=oliver, kind="integration_session", status="open")
    sign_in(page, live_server.url, "therapist@demo.kaemdr.test", DEMO_PASSWORD)

    mine = page.get_by_test_id("overdue-mine")
    expect(mine).to_contain_text("Integration session: Oliver Brandt")
    shot(page, output_dir, "01-dashboard-overdue")
    assert_accessible(page, output_dir, "dashboard")

    mine.get_by_role("link", name="Integration session: Oliver Brandt").click()
    expect(page.get_by_role("heading", name="Integration session for Oliver Brandt")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Overdue")
    assert_accessible(page, output_dir, "follow-up")
    page.get_by_role("button", name="Write the integration note").click()

    expect(page.get_by_role("heading", name="Integration note of Oliver Brandt")).to_be_visible()
    # the live experiments from the earlier notes are there to review
    expect(page.locator("#experiments")).to_contain_text("Walk through the market for ten minutes")
    page.get_by_role("button", name="Add experiment").click()
    expect(page.locator("#experiments")).to_contain_text("This field is required.")
    add_experiment(page, "Repairing relationships", "Call his brother on Sunday evening.")
    add_experiment(page, "Boundaries", "Decline the Thursday overtime request.")
    page.get_by_label("What shifted in perception").fill("The crowd at the station felt further away.")
    page.get_by_label("What felt newly possible").fill("Telling his sister how the week really was.")
    page.get_by_label("What the system is afraid of losing").fill(
        "Being ready; fears relaxing means forgetting."
    )
    shot(page, output_dir, "02-note-draft")
    assert_accessible(page, output_dir, "note-draft")
    page.get_by_role("button", name="Save and sign").click()
    expect(page.get_by_role("alert").first).to_contain_text("The note is signed.")
    expect(page.get_by_text("Signed", exact=False).first).to_be_visible()
    shot(page, output_dir, "03-note-signed")
    assert_accessible(page, output_dir, "note-signed")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("#overdue-follow-ups")).not_to_contain_text("Integration session: Oliver Brandt")
    shot(page, output_dir, "04-dashboard-after")
    assert FollowUp.objects.get(pk=overdue.pk).status == "done"

    page.goto(f"{live_server.url}/pathways/{oliver.public_id}/")
    expect(page.get_by_test_id("live-experiments")).to_contain_text("Call his brother on Sunday evening.")
    page.get_by_role("button", name="Write an integration note").click()
    brother = Experiment.objects.get(pathway=oliver, description="Call his brother on Sunday evening.")
    review = page.get_by_test_id(f"review-{brother.public_id}")
    review.get_by_label("Now").select_option("kept")
    review.get_by_role("button", name="Update").click()
    expect(page.get_by_test_id(f"review-{brother.public_id}")).to_contain_text("Say what happened")
    review = page.get_by_test_id(f"review-{brother.public_id}")
    review.get_by_label("Now").select_option("kept")
    review.get_by_label("What happened").fill("Called twice; they are meeting next month.")
    review.get_by_role("button", name="Update").click()
    expect(page.get_by_role("alert").first).to_contain_text("is kept")
    page.get_by_label("Notes").fill("Brief check on the new experiments.")
    page.get_by_role("button", name="Save and sign").click()
    expect(page.get_by_role("alert").first).to_contain_text("The note is signed.")
    expect(page.locator("#experiments")).to_contain_text("planned → kept")
    shot(page, output_dir, "05-next-note-signed")

    page.goto(f"{live_server.url}/pathways/{oliver.public_id}/")
    expect(page.locator("#integration")).to_contain_text("Call his brother on Sunday evening. Kept")
    shot(page, output_dir, "06-pathway-integration")
    assert_accessible(page, output_dir, "pathway")
    brother.refresh_from_db()
    assert (brother.state, brother.what_happened) == ("kept", "Called twice; they are meeting next month.")
