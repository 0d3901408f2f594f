"""The next step is a click: a prescriber and a monitor each start from their dashboard and reach the
page where the next thing is done in one click."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import Role
from pathways.models import Stage
from screening.models import Assessment
from screening.models import AssessmentStatus
from sessions.models import Booking

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import UserFactory
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _clinic() -> dict[str, Any]:
    clinic = ClinicFactory(name="Harbour Clinic", time_zone="Europe/London")
    staff = {
        Role.PRESCRIBER: UserFactory(
            clinic=clinic, role=Role.PRESCRIBER, email="ana@harbour.test", full_name="Dr Ana Okafor"
        ),
        Role.THERAPIST: UserFactory(clinic=clinic, role=Role.THERAPIST, full_name="Sam Lindqvist"),
        Role.MONITOR: UserFactory(
            clinic=clinic, role=Role.MONITOR, email="lee@harbour.test", full_name="Lee Chen"
        ),
        Role.CLINIC_ADMIN: UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN, full_name="Pat Admin"),
    }
    return {"clinic": clinic, "staff": staff}


@pytest.mark.parametrize("width", [1280, 1180])
def test_prescriber_goes_from_the_dashboard_to_the_assessment_to_sign(
    page: Page, live_server: Any, output_dir: Path, width: int
) -> None:
    world = _clinic()
    staff = world["staff"]
    pathway = PathwayFactory(
        clinic=world["clinic"],
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        stage=Stage.ASSESSMENT,
        patient__given_name="Noor",
        patient__family_name="Haddad",
        patient__registered_by=staff[Role.PRESCRIBER],
    )
    assessment = Assessment.objects.create(
        pathway=pathway,
        clinic=world["clinic"],
        version=1,
        status=AssessmentStatus.DRAFT,
        opened_by=staff[Role.PRESCRIBER],
    )
    page.set_viewport_size({"width": width, "height": 820})

    sign_in(page, live_server.url, "ana@harbour.test", TEST_PASSWORD)
    action = page.get_by_test_id("next-action").filter(has_text="Complete and sign the assessment")
    expect(action).to_be_visible()
    shot(page, output_dir, f"01-prescriber-dashboard-{width}")
    assert_accessible(page, output_dir, f"prescriber-dashboard-{width}")

    action.click()
    expect(page).to_have_url(f"{live_server.url}/screening/assessments/{assessment.public_id}/")
    shot(page, output_dir, f"02-the-assessment-{width}")


@pytest.mark.parametrize("width", [1280, 1180])
def test_monitor_sees_the_coming_days_and_opens_the_next_session(
    page: Page, live_server: Any, output_dir: Path, width: int
) -> None:
    world = _clinic()
    staff, clinic = world["staff"], world["clinic"]
    room = RoomFactory(clinic=clinic, name="Willow room")
    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    day_after_tomorrow = timezone.localdate() + dt.timedelta(days=2)
    starts_at = dt.datetime.combine(day_after_tomorrow, dt.time(9, 30), tzinfo=tz)
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        stage=Stage.DOSING,
        patient__given_name="Ivy",
        patient__family_name="Moreau",
        patient__registered_by=staff[Role.PRESCRIBER],
    )
    booking = Booking.objects.create(
        clinic=clinic,
        pathway=pathway,
        patient=pathway.patient,
        room=room,
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(hours=2),
        agent="ketamine",
        route="sublingual",
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
        booked_by=staff[Role.CLINIC_ADMIN],
    )
    page.set_viewport_size({"width": width, "height": 820})

    sign_in(page, live_server.url, "lee@harbour.test", TEST_PASSWORD)
    expect(page.get_by_text("No sessions today.")).to_be_visible()
    name = "09:30\u201311:30 Ivy Moreau"  # the time and the name are one link
    upcoming = page.get_by_test_id("upcoming-sessions").get_by_role("link", name=name)
    expect(upcoming).to_be_visible()
    shot(page, output_dir, f"01-monitor-dashboard-{width}")
    assert_accessible(page, output_dir, f"monitor-dashboard-{width}")

    upcoming.click()
    expect(page).to_have_url(f"{live_server.url}/dosing/bookings/{booking.public_id}/")
    expect(page.get_by_text("Ivy Moreau").first).to_be_visible()
    shot(page, output_dir, f"02-the-booking-{width}")


def test_clinic_admin_opens_the_stage_count_and_is_told_who_registers_patients(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    world = _clinic()
    staff = world["staff"]
    admin = staff[Role.CLINIC_ADMIN]
    PathwayFactory(
        clinic=world["clinic"],
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        stage=Stage.DOSING,
        patient__given_name="Ivy",
        patient__family_name="Moreau",
        patient__registered_by=staff[Role.PRESCRIBER],
    )

    sign_in(page, live_server.url, admin.email, TEST_PASSWORD)
    shot(page, output_dir, "00-admin-dashboard")
    assert_accessible(page, output_dir, "admin-dashboard")
    page.get_by_test_id("stage-count-dosing").click()
    expect(page.get_by_role("heading", name="Patients in dosing")).to_be_visible()
    expect(page.get_by_role("link", name="Moreau, Ivy")).to_be_visible()
    shot(page, output_dir, "01-patients-in-dosing")
    assert_accessible(page, output_dir, "patients-in-dosing")

    page.goto(f"{live_server.url}/patients/new/")
    expect(page.get_by_test_id("not-for-your-role")).to_contain_text(
        "Patients are registered by a prescriber"
    )
    shot(page, output_dir, "02-register-explained")
    assert_accessible(page, output_dir, "register-explained")
