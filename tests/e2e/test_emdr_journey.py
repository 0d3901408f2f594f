"""A therapist builds an EMDR plan for a demo patient, takes a stabilisation target to SUD 0 over two
sessions, sees the trauma target unlock once the checklist is met (affect tolerance included), logs an
incomplete session, then switches the plan to the standard three-prong protocol and sees the proposal
and the new order (a present trigger now waits for the past memory, with its source)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page
from playwright.sync_api import expect

from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from sessions.models import EmdrTarget

from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_target(page: Page, kind: str, title: str, sud: str = "", voc: str = "", nc: str = "") -> None:
    page.get_by_label("Kind").select_option(kind)
    page.get_by_label("Short title").fill(title)
    if sud:
        page.get_by_label("SUD (0-10)").fill(sud)
    if voc:
        page.get_by_label("VOC (1-7)").fill(voc)
    if nc:
        page.locator("#id_negative_cognition").fill(nc)
    page.get_by_role("button", name="Add target").click()
    expect(page.get_by_role("alert").first).to_contain_text(f"{title} is on the plan.")


def log_session(
    page: Page,
    target: str,
    *,
    sud: tuple[str, str] = ("", ""),
    voc: tuple[str, str] = ("", ""),
    sets: str = "",
    clear: bool = False,
    closure: str = "",
    held_date: str = "",
) -> None:
    page.get_by_role("link", name="Log a session").click()
    if held_date:  # otherwise today, now
        page.locator("#id_held_date").fill(held_date)
    page.locator("#id_target").select_option(label=target)
    page.get_by_label("SUD at start").fill(sud[0])
    page.get_by_label("SUD at end").fill(sud[1])
    page.get_by_label("VOC at start").fill(voc[0])
    page.get_by_label("VOC at end").fill(voc[1])
    page.get_by_label("SUD after each set (comma-separated)").fill(sets)
    if clear:
        page.get_by_label("Body scan clear").check()
    if closure:
        page.get_by_label("Closure of an incomplete target").select_option(closure)
    page.get_by_role("button", name="Save the session").click()
    expect(page.get_by_role("alert").first).to_contain_text("The session is logged.")


def test_therapist_takes_a_plan_from_stabilisation_to_trauma_processing(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    hannah = Pathway.objects.get(patient__record_number="HB-1003")
    sign_in(page, live_server.url, "therapist@demo.kaemdr.test", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/pathways/{hannah.public_id}/")
    page.get_by_role("button", name="Start the EMDR plan").click()
    expect(page.get_by_role("heading", name="EMDR plan of Hannah Kowalski")).to_be_visible()

    add_target(page, "resource", "Calm place")
    add_target(page, "present_trigger", "Sirens at night", sud="6", voc="3", nc="I am in danger")
    add_target(page, "past_memory", "The accident", sud="8", voc="2", nc="I should have done something")
    expect(page.locator("tr.table-info")).to_contain_text("Calm place")  # the proposed next target
    expect(page.locator("#proposal")).to_contain_text("A resource (calm place or resource development)")

    log_session(page, "Calm place", voc=("4", "6"))
    # A week ago, so that the target's chart has a trend to draw (one time is a text figure).
    last_week = (timezone.localdate() - dt.timedelta(days=7)).isoformat()
    log_session(
        page,
        "Sirens at night",
        sud=("6", "3"),
        voc=("3", "4"),
        sets="6, 5, 3",
        closure="container",
        held_date=last_week,
    )
    expect(page.locator("#targets")).to_contain_text("Reevaluate next session")
    log_session(page, "Sirens at night", sud=("3", "0"), voc=("4", "7"), sets="3, 1, 0", clear=True)

    page.get_by_role("button", name="Start The accident").click()
    expect(page.get_by_role("alert").first).to_contain_text(
        "dual awareness shown on a milder target is not met"
    )
    expect(page.get_by_role("alert").first).to_contain_text("window of tolerance")
    expect(page.locator("#proposal")).to_contain_text(
        "Nothing can start yet: The accident waits for readiness"
    )
    shot(page, output_dir, "01-trauma-target-locked")
    assert_accessible(page, output_dir, "emdr-plan")

    page.get_by_label("Dual awareness shown on a milder target").check()
    page.get_by_label("Affect tolerance shown").check()
    page.get_by_role("button", name="Save observations").click()
    expect(page.locator("#readiness")).to_contain_text("Met")
    expect(page.locator("#proposal")).to_contain_text("Stabilisation is done")
    page.get_by_role("button", name="Start The accident").click()
    expect(page.get_by_role("alert").first).to_contain_text("The accident is in progress.")

    log_session(page, "The accident", sud=("8", "5"), voc=("2", "3"), sets="8, 7, 5", closure="container")
    expect(page.locator("#targets")).to_contain_text("Reevaluate next session")
    expect(page.locator("#proposal")).to_contain_text("left incomplete at the last session")
    shot(page, output_dir, "02-plan-after-incomplete-session")
    assert_accessible(page, output_dir, "emdr-plan-after")

    # A trigger found during processing; then the therapist switches to the three-prong protocol.
    add_target(page, "present_trigger", "Car horns", sud="5", voc="3")
    page.get_by_label("Standard three-prong (past memories, present triggers, future templates)").check()
    page.get_by_role("button", name="Change protocol").click()
    alert = page.get_by_role("alert").first
    expect(alert).to_contain_text("The protocol is changed.")
    expect(alert).to_contain_text("1 target under way continues as before")
    expect(alert).to_contain_text("1 present-day target not started now waits until the past memories")
    expect(page.locator("#proposal")).to_contain_text("The accident")
    expect(page.locator("#targets")).to_contain_text("present-day targets follow the past memories")
    page.get_by_role("button", name="Start Car horns").click()
    expect(page.get_by_role("alert").first).to_contain_text("Car horns cannot start yet")
    expect(page.get_by_role("alert").first).to_contain_text("Source: Shapiro 2018")
    shot(page, output_dir, "03-three-prong-proposal")
    assert_accessible(page, output_dir, "emdr-plan-three-prong")

    page.get_by_role("link", name="Sirens at night").click()
    expect(page.locator("img.chart-img")).to_be_visible()
    shot(page, output_dir, "04-target-chart")
    assert_accessible(page, output_dir, "emdr-target")

    mine = EmdrTarget.objects.filter(plan__pathway=hannah)
    accident = mine.get(title="The accident")
    assert (accident.state, accident.sud, accident.needs_reevaluation) == ("in_progress", 5, True)
    assert mine.get(title="Sirens at night").state == "resolved"
    assert mine.get(title="Car horns").state == "not_started"
    assert accident.plan.protocol == "three_prong"
