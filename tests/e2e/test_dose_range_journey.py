"""A dose outside the clinic's mg/kg range (issue 17, item 3): the nurse's dose is refused with the range
and what to do; the prescriber approves that dose with a reason on the record; the nurse starts it."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import Role
from pathways.models import Stage
from sessions.models import DosingSession

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory
from ..sessions.dosing_day import open_record
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_prescriber_approves_a_dose_outside_the_range_and_the_nurse_starts_it(
    page: Page, browser: Browser, browser_context_args: dict[str, Any], live_server: Any, output_dir: Path
) -> None:
    clinic = ClinicFactory(name="Harbour Clinic")
    staff = {
        Role.CLINIC_ADMIN: UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN),
        Role.PRESCRIBER: UserFactory(
            clinic=clinic, role=Role.PRESCRIBER, email="okafor@harbour.test", full_name="Dr Amara Okafor"
        ),
        Role.MONITOR: UserFactory(
            clinic=clinic, role=Role.MONITOR, email="raman@harbour.test", full_name="Priya Raman"
        ),
    }
    pathway = PathwayFactory(
        clinic=clinic,
        stage=Stage.DOSING,
        prescriber=staff[Role.PRESCRIBER],
        patient__given_name="Aisha",
        patient__family_name="Rahman",
    )
    SignedScreeningFactory(pathway=pathway, route="iv", weight_kg=Decimal("70.0"))
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    starts = dt.datetime.combine(tomorrow, dt.time(9, 0), tzinfo=zoneinfo.ZoneInfo(clinic.time_zone))
    session = open_record(staff, pathway, RoomFactory(clinic=clinic, name="Harbour Room"), starts)
    record_url = f"{live_server.url}/dosing/sessions/{session.public_id}/"

    # The nurse asks for 60 mg: 0.86 mg/kg, above the intravenous range. Refused, saying what to do.
    sign_in(page, live_server.url, staff[Role.MONITOR].email, TEST_PASSWORD)
    page.goto(record_url)
    expect(page.locator("#dose-range")).to_contain_text(
        "Clinic range for racemic ketamine, intravenous: 0.10-0.75 mg/kg (7-52.5 mg at 70 kg)"
    )
    page.get_by_label("Dose (mg)").fill("60")
    page.get_by_label("Lot number").fill("KET-3310")
    page.get_by_role("button", name="Start the dose").click()
    refusal = page.get_by_text("60 mg is 0.86 mg/kg at 70 kg, outside the clinic's range")
    expect(refusal).to_be_visible()
    expect(page.get_by_label("Lot number")).to_have_value("KET-3310")
    expect(page.get_by_role("heading", name="Approve a dose outside the range")).to_have_count(0)
    shot(page, output_dir, "01-nurse-dose-refused")
    assert_accessible(page, output_dir, "dose-refused")

    # The prescriber, on their own device, approves exactly that dose with a reason.
    context = browser.new_context(**browser_context_args)
    prescriber_page = context.new_page()
    sign_in(prescriber_page, live_server.url, staff[Role.PRESCRIBER].email, TEST_PASSWORD)
    prescriber_page.goto(record_url)
    approval = prescriber_page.locator("#dose_override")
    approval.get_by_label("Dose to approve (mg)").fill("60")
    approval.get_by_label("Reason for a dose outside the range").fill(
        "Partial response at 0.5 mg/kg over three infusions; raising to 0.86 mg/kg with 10-minute blood "
        "pressure checks."
    )
    shot(prescriber_page, output_dir, "02-prescriber-approves")
    approval.get_by_role("button", name="Approve this dose").click()
    expect(prescriber_page.locator("#dose-approved")).to_contain_text(
        "Dr Amara Okafor approved 60 mg outside the range"
    )
    assert_accessible(prescriber_page, output_dir, "dose-approved")
    context.close()

    # The nurse reloads the record and starts the approved dose.
    page.goto(record_url)
    expect(page.locator("#dose-approved")).to_contain_text("Dr Amara Okafor approved 60 mg")
    page.get_by_label("Dose (mg)").fill("60")
    page.get_by_label("Lot number").fill("KET-3310")
    page.get_by_role("button", name="Start the dose").click()
    expect(page.locator("#session-status")).to_have_text("Dosed, monitoring")
    expect(page.get_by_text("Dose approved")).to_be_visible()
    shot(page, output_dir, "03-nurse-starts-approved-dose")
    assert_accessible(page, output_dir, "dose-started")
    session.refresh_from_db()
    assert (session.status, session.dose_mg) == ("dosed", Decimal("60.0"))
    assert DosingSession.objects.get(pk=session.pk).dose_override_by == staff[Role.PRESCRIBER]


def test_admin_sees_the_ceiling_and_dose_ranges_with_their_sources(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    clinic = ClinicFactory(name="Harbour Clinic")
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN, email="admin@harbour.test")
    sign_in(page, live_server.url, admin.email, TEST_PASSWORD)
    page.goto(f"{live_server.url}/dosing/settings/")
    expect(page.get_by_label("Ceiling: systolic at or above")).to_have_value("180")
    page.get_by_label("Ceiling: diastolic at or above").fill("90")
    page.get_by_label("Racemic ketamine, sublingual: maximum (mg/kg)").fill("3.00")
    page.get_by_role("button", name="Save settings").click()
    expect(
        page.get_by_text("The diastolic ceiling must be above the pre-dose diastolic limit (90)")
    ).to_be_visible()
    expect(page.get_by_label("Racemic ketamine, sublingual: maximum (mg/kg)")).to_have_value("3.00")
    page.locator("#dose-ranges").scroll_into_view_if_needed()
    shot(page, output_dir, "01-settings-ceiling-refused")
    assert_accessible(page, output_dir, "dosing-settings")
    page.get_by_label("Ceiling: diastolic at or above").fill("110")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("The dosing settings are saved.")).to_be_visible()
    expect(page.get_by_label("Racemic ketamine, sublingual: maximum (mg/kg)")).to_have_value("3.00")
