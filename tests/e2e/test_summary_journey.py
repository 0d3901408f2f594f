"""A prescriber asks for the PDF summary of a signed dosing record, watches it being made (the page
offers the download when the worker is done, without reloading), and downloads it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from integration import summary_services
from integration.models import Summary
from kaemdr import celery_app
from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load
from sessions.models import DosingSession

from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_elsewhere(settings: Any, tmp_path: Path) -> Iterator[None]:
    """Tasks queue (on the in-memory broker) instead of running in the request, as with a real
    worker; the test then does the worker's part itself."""
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = True


def test_prescriber_downloads_the_summary_of_a_signed_session(
    page: Page, live_server: Any, output_dir: Path, worker_elsewhere: None
) -> None:
    demo_clinic_load()
    session = DosingSession.objects.get(booking__patient__record_number="HB-1004", status="signed")
    sign_in(page, live_server.url, "prescriber@demo.kaemdr.test", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    page.get_by_role("button", name="Summary (PDF)").click()

    expect(page.get_by_role("heading", name="Dosing session summary of Tomás Reyes")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("being made")
    shot(page, output_dir, "01-being-made")
    assert_accessible(page, output_dir, "summary-pending")
    summary = Summary.objects.get(record_public_id=session.public_id)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    summary_services.summary_render(summary_public_id=summary.public_id)  # the worker's part

    link = page.get_by_role("link", name="Download the PDF")
    expect(link).to_be_visible(timeout=15000)
    expect(page.get_by_role("status")).to_contain_text("The summary is ready (2 pages)")
    assert navigations == []  # offered without a reload
    shot(page, output_dir, "02-ready")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("HB-1004-dosing-session-")
    saved = output_dir / "summary.pdf"
    download.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-")


def test_a_summary_held_up_offers_try_again_without_a_reload(
    page: Page, live_server: Any, output_dir: Path, worker_elsewhere: None, settings: Any
) -> None:
    """No worker takes the render (as with a broker down): after the wait the page offers "Try
    again" by itself; trying again queues it once more, and the worker's render then shows."""
    settings.KAEMDR_SUMMARY_RETRY_AFTER_SECONDS = 2
    demo_clinic_load()
    session = DosingSession.objects.get(booking__patient__record_number="HB-1004", status="signed")
    sign_in(page, live_server.url, "prescriber@demo.kaemdr.test", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/dosing/sessions/{session.public_id}/")
    page.get_by_role("button", name="Summary (PDF)").click()
    expect(page.get_by_role("status")).to_contain_text("being made")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    try_again = page.get_by_role("button", name="Try again")
    expect(try_again).to_be_visible(timeout=15000)
    expect(page.get_by_role("status")).to_contain_text("taking longer than it should")
    assert navigations == []  # offered by the page's script, without a reload
    shot(page, output_dir, "01-try-again")
    assert_accessible(page, output_dir, "summary-try-again")

    try_again.click()
    expect(page.get_by_role("status")).to_contain_text("being made")
    expect(try_again).to_be_hidden()
    summary = Summary.objects.get(record_public_id=session.public_id)
    summary_services.summary_render(summary_public_id=summary.public_id)  # the worker's part
    expect(page.get_by_role("link", name="Download the PDF")).to_be_visible(timeout=15000)
    shot(page, output_dir, "02-ready-after-trying-again")
