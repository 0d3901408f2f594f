"""Every kind of page each role reaches on the demo clinic passes axe-core with no violation of impact
moderate or above (WCAG 2.0/2.1 A and AA and axe's best practices: one `main`, landmarks with distinct
names, all content in a landmark), run with the page's strict Content Security Policy kept (issue 20).

Each role starts at the dashboard and follows the pages' own links breadth-first, opening one page of
each route (the first found: a patient, a pathway, a dosing record...) up to `PAGES_PER_ROLE`; a
signed-out visitor does the same from the sign-in page. Every page is kept as a screenshot. A second
test checks that the focus ring is drawn, thick and in a contrasting colour, on a link, a button and an
input.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
from django.urls import Resolver404
from django.urls import resolve
from django.urls import reverse
from playwright.sync_api import Page

from integration.models import IntegrationNote
from integration.models import Summary
from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from screening.models import Assessment
from sessions.models import EmdrPlan

from .conftest import WCAG_TAGS
from .conftest import axe_violations
from .conftest import describe
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES_PER_ROLE = 45
"""Distinct routes opened per visitor: more than any role reaches on the demo clinic today (the test
says so when the cap is met, so a new page kind is never left out silently)."""

NOT_OPENED = frozenset(
    {
        "logout",
        "summary_download",
        "summary_status",
        "patient_export_download",
        "room_calendar_feed",
        "health",
        "password_reset_confirm",
    }
)
"""Files, JSON and feeds (not pages), signing out, and links that are single-use."""

ROLES = (
    "admin@demo.kaemdr.test",
    "prescriber@demo.kaemdr.test",
    "therapist@demo.kaemdr.test",
    "monitor@demo.kaemdr.test",
)


def _route(base: str, href: str) -> tuple[str, str] | None:
    """(path with query, route name) for a link inside the app that is a page to open."""
    parts = urlsplit(urljoin(base + "/", href.strip()))
    if parts.netloc != urlsplit(base).netloc or parts.path.startswith(("/static/", "/api/", "/admin/")):
        return None
    try:
        name = resolve(parts.path).url_name or parts.path
    except Resolver404:
        return None
    if name in NOT_OPENED:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else ""), name


def _seeds() -> list[str]:
    """Pages opened first, before the links are followed: a record in the state that shows most (a draft
    screening and a draft note, with their forms) and pages no link of the demo reaches from the start."""
    oliver = Pathway.objects.get(patient__record_number="HB-1006")
    seeds = [
        reverse("pathway_integration_notes", args=[oliver.public_id]),
        reverse("emdr_session_log", args=[EmdrPlan.objects.get(pathway=oliver).public_id]),
        reverse("my_pathways_in_stage", args=["dosing"]),
        reverse("today_board"),
        reverse("password_change_done"),
    ]
    for record, route in (
        (Assessment.objects.filter(status="draft").first(), "assessment_detail"),
        (IntegrationNote.objects.filter(signed_at__isnull=True).first(), "integration_note"),
        (IntegrationNote.objects.first(), "integration_note"),
        (Summary.objects.first(), "summary_detail"),
    ):
        if record is not None:
            seeds.append(reverse(route, args=[record.public_id]))
    return seeds


def _crawl(
    page: Page, base: str, start: list[str], visitor: str, output_dir: Path
) -> tuple[list[str], list[str]]:
    """Open one page of each route reached from `start`; the routes opened and the failures."""
    queue: deque[str] = deque(start)
    seen_routes: set[str] = set()
    opened: list[str] = []
    failures: list[str] = []
    while queue and len(opened) < PAGES_PER_ROLE:
        found = _route(base, queue.popleft())
        if found is None or found[1] in seen_routes:
            continue
        path, name = found
        seen_routes.add(name)
        response = page.goto(base + path)
        if response is None or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        page.wait_for_load_state("networkidle")
        opened.append(name)
        shot(page, output_dir, f"{visitor}-{len(opened):02d}-{name}")
        violations = axe_violations(page, tags=(*WCAG_TAGS, "best-practice"), minimum_impact="moderate")
        if violations:
            (output_dir / f"{visitor}-{name}-axe.json").write_text(json.dumps(violations, indent=2))
            failures.append(f"{visitor} {path} [{name}]: {describe(violations)}")
        hrefs = page.eval_on_selector_all("a[href]", "links => links.map(link => link.getAttribute('href'))")
        queue.extend(hrefs)
    return opened, failures


def test_every_page_of_every_role_passes_axe_with_the_strict_policy(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    base = live_server.url
    failures: list[str] = []
    opened_by: dict[str, list[str]] = {}

    seeds = _seeds()
    opened, failed = _crawl(page, base, ["/accounts/login/"], "signed-out", output_dir)
    opened_by["signed-out"], failures = opened, failures + failed
    for email in ROLES:
        page.context.clear_cookies()
        sign_in(page, base, email, DEMO_PASSWORD)
        visitor = email.split("@")[0]
        opened, failed = _crawl(page, base, [*seeds, "/"], visitor, output_dir)
        opened_by[visitor] = opened
        failures += failed

    (output_dir / "opened.json").write_text(json.dumps(opened_by, indent=2))
    for visitor, routes in opened_by.items():
        assert len(routes) < PAGES_PER_ROLE, f"{visitor} met the cap: raise PAGES_PER_ROLE"
    assert len(opened_by["prescriber"]) >= 15  # the crawl really went through the app
    assert not failures, "\n".join(failures)


def test_the_focus_ring_is_thick_and_contrasting_on_links_buttons_and_inputs(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    sign_in(page, live_server.url, "prescriber@demo.kaemdr.test", DEMO_PASSWORD)
    page.goto(live_server.url + "/patients/")
    rings: dict[str, dict[str, str]] = {}
    for kind, selector in (
        ("link", "main a[href]"),
        ("button", "main button, main .btn"),
        ("input", "main input:not([type=hidden]), main select"),
    ):
        element = page.locator(selector).first
        element.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focused from the keyboard: :focus-visible applies
        rings[kind] = page.evaluate(
            """() => {
                const style = getComputedStyle(document.activeElement);
                return {tag: document.activeElement.tagName, style: style.outlineStyle,
                        width: style.outlineWidth, color: style.outlineColor};
            }"""
        )
        shot(page, output_dir, f"focus-{kind}")
    for kind, ring in rings.items():
        assert ring["style"] == "solid", (kind, ring)
        assert float(ring["width"].removesuffix("px")) >= 3, (kind, ring)
        assert _contrast(ring["color"], "rgb(255, 255, 255)") >= 3, (kind, ring)


def _contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two `rgb(...)` colours."""

    def luminance(colour: str) -> float:
        channels = [int(part) / 255 for part in colour.split("(")[1].rstrip(")").split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
