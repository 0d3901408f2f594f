"""Every main page, opened in Chromium under the strict Content Security Policy, breaks no rule:
no inline script or style is refused (Chromium reports each refusal on the console)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage
from playwright.sync_api import Page

from integration.models import IntegrationNote
from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from sessions.models import DosingSession
from sessions.models import EmdrPlan

from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_main_pages_break_no_content_security_rule(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    refused: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            refused.append(f"{page.url}: {message.text}")

    page.on("console", watch)
    oliver = Pathway.objects.get(patient__record_number="HB-1006")
    plan = EmdrPlan.objects.get(pathway=oliver)
    session = DosingSession.objects.filter(booking__pathway=oliver, status="signed").first()
    note = IntegrationNote.objects.filter(pathway=oliver).first()
    target = plan.targets.filter(work__isnull=False).first()
    assert session is not None
    assert note is not None
    assert target is not None
    sign_in(page, live_server.url, "prescriber@demo.kaemdr.test", DEMO_PASSWORD)
    for path in (
        "/",
        "/patients/",
        f"/pathways/{oliver.public_id}/",
        f"/dosing/sessions/{session.public_id}/",
        f"/dosing/emdr/{plan.public_id}/",
        f"/dosing/emdr/targets/{target.public_id}/",
        f"/integration/notes/{note.public_id}/",
        f"/integration/pathways/{oliver.public_id}/",
        "/integration/follow-ups/?scope=clinic",
        "/dosing/calendar/",
    ):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
    shot(page, output_dir, "last-page")
    page.goto(f"{live_server.url}/pathways/{oliver.public_id}/")
    # The measures given more than once (PHQ-9, PCL-5) drawn as images; the others are text figures.
    assert page.locator("img.chart-img").count() >= 2
    assert page.evaluate("document.querySelector('img.chart-img').naturalWidth") > 0
    assert refused == []
