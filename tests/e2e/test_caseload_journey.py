"""A therapist with a long caseload: the dashboard lists the longest waiting pathways of each stage and
links to all of them, a page at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import Role
from pathways.models import Pathway
from pathways.selectors import DASHBOARD_PATHWAYS_PER_STAGE
from pathways.views import PATHWAYS_PER_PAGE

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import UserFactory
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_therapist_opens_every_pathway_of_a_stage_from_the_dashboard(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    base = live_server.url
    clinic = ClinicFactory(name="Harbour Clinic", time_zone="Europe/London")
    prescriber = UserFactory(clinic=clinic, role=Role.PRESCRIBER, full_name="Dr Ana Okafor")
    therapist = UserFactory(
        clinic=clinic, role=Role.THERAPIST, email="sam@harbour.test", full_name="Sam Lindqvist"
    )
    count = PATHWAYS_PER_PAGE + 4
    for _ in range(count):
        PathwayFactory(
            clinic=clinic, prescriber=prescriber, therapist=therapist, patient__registered_by=prescriber
        )
    ordered = list(Pathway.objects.filter(therapist=therapist).order_by("stage_changed_at", "id"))
    stage_label = ordered[0].get_stage_display()

    sign_in(page, base, therapist.email, TEST_PASSWORD)
    expect(page.get_by_text(f"the {DASHBOARD_PATHWAYS_PER_STAGE} longest waiting of {count}")).to_be_visible()
    rows = page.locator("section", has_text=f"longest waiting of {count}").locator("tbody tr")
    expect(rows).to_have_count(DASHBOARD_PATHWAYS_PER_STAGE)
    expect(rows.first).to_contain_text(ordered[0].patient.full_name)
    shot(page, output_dir, "01-dashboard-first-of-the-stage")

    page.get_by_role("link", name=f"All {count} in {stage_label.lower()}").click()
    expect(page.get_by_role("heading", name=f"Your open pathways in {stage_label.lower()}")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(PATHWAYS_PER_PAGE)
    expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    shot(page, output_dir, "02-all-in-the-stage")
    assert_accessible(page, output_dir, "all-in-the-stage")

    page.get_by_role("link", name="Next").click()
    expect(page.locator("tbody tr")).to_have_count(count - PATHWAYS_PER_PAGE)
    last = ordered[-1]
    page.get_by_role("link", name=last.patient.full_name).click()
    expect(page).to_have_url(f"{base}/pathways/{last.public_id}/")
    shot(page, output_dir, "03-the-last-pathway")
