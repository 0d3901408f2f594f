"""A pathway's course in the browser (issue 23, course plans): the prescriber sets the course from a
template (the IV racemic default, six infusions), edits it for the patient, and sees it with its
progress on the pathway page: done, booked, still to book."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from sessions.booking import services as booking_services
from sessions.models import CoursePlan

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_prescriber_sets_a_course_from_a_template_edits_it_and_sees_its_progress(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    clinic = ClinicFactory(name="Harbour Clinic")
    prescriber = UserFactory(
        clinic=clinic, role=Role.PRESCRIBER, email="okafor@harbour.test", full_name="Dr Amara Okafor"
    )
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN)
    monitor = UserFactory(clinic=clinic, role=Role.MONITOR)
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        stage="dosing",
        patient__registered_by=prescriber,
        patient__given_name="Aisha",
        patient__family_name="Rahman",
    )
    SignedScreeningFactory(pathway=pathway, agent="ketamine", route="iv")
    room = RoomFactory(clinic=clinic, name="Harbour Room")
    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    booking_services.booking_create(
        actor=admin,
        pathway=pathway,
        room=room,
        starts_at=dt.datetime.combine(timezone.localdate() + dt.timedelta(days=2), dt.time(9), tzinfo=tz),
        prescriber=prescriber,
        monitor=monitor,
    )

    sign_in(page, live_server.url, prescriber.email, TEST_PASSWORD)
    page.goto(f"{live_server.url}/pathways/{pathway.public_id}/")
    course = page.locator("#course")
    expect(course).to_contain_text("No course set yet")
    course.get_by_role("link", name="Set course").click()

    # 1. Start from a template: the sourced default, cited.
    expect(page.get_by_role("heading", name="Set the course of Aisha Rahman")).to_be_visible()
    expect(page.get_by_text("Andrade 2017").first).to_be_visible()
    page.get_by_label("Start from", exact=True).select_option(
        label="IV racemic ketamine: 6 infusions over 3 weeks"
    )
    page.get_by_role("button", name="Use this template").click()
    expect(page.get_by_label("Number of sessions")).to_have_value("6")
    shot(page, output_dir, "01-course-from-template")
    assert_accessible(page, output_dir, "course-form")

    # 2. Edit it for the patient: a mistake keeps what was typed and says what to do.
    page.get_by_label("Number of sessions").fill("8")
    page.locator("#id_phase_1_max_days").fill("1")
    page.get_by_role("button", name="Save the course").click()
    expect(page.get_by_text("the most days apart must be at least the least")).to_be_visible()
    expect(page.get_by_label("Number of sessions")).to_have_value("8")
    assert not CoursePlan.objects.exists()
    page.locator("#id_phase_1_max_days").fill("4")
    page.get_by_role("button", name="Save the course").click()

    # The pathway page shows the course and where it stands.
    expect(page.get_by_role("alert").first).to_contain_text("The course is saved.")
    course = page.locator("#course")
    expect(course).to_contain_text("Racemic ketamine, intravenous")
    expect(course).to_contain_text("8 sessions. Weeks 1 to 3: up to 3 a week, 2 to 4 days apart.")
    expect(course.locator('[data-course="done"]')).to_have_text("0")
    expect(course.locator('[data-course="booked"]')).to_have_text("1")
    expect(course.locator('[data-course="to_book"]')).to_have_text("7")
    shot(page, output_dir, "02-pathway-course")
    assert_accessible(page, output_dir, "pathway-course")

    # Changing it again starts from the saved course.
    course.get_by_role("link", name="Change course").click()
    expect(page.get_by_label("Number of sessions")).to_have_value("8")
    page.get_by_label("Number of sessions").fill("6")
    page.get_by_role("button", name="Save the course").click()
    expect(page.locator("#course")).to_contain_text("6 sessions.")
    expect(page.locator('#course [data-course="to_book"]')).to_have_text("5")
    plan = CoursePlan.objects.get(pathway=pathway)
    assert (plan.sessions, plan.set_by) == (6, prescriber)
    assert AuditEvent.objects.filter(action="course_plan.set").count() == 1
    assert AuditEvent.objects.filter(action="course_plan.changed").count() == 1


def test_clinic_admin_adopts_a_sourced_course_and_edits_the_template(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    clinic = ClinicFactory(name="Harbour Clinic")
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN, email="courses-admin@harbour.test")

    sign_in(page, live_server.url, admin.email, TEST_PASSWORD)
    page.get_by_role("link", name="Courses", exact=True).first.click()
    expect(page.get_by_role("heading", name="Course templates", level=1)).to_be_visible()
    expect(
        page.get_by_role("rowheader", name="Esketamine: induction and weekly maintenance (weeks 1-8)")
    ).to_be_visible()
    shot(page, output_dir, "01-course-templates")
    assert_accessible(page, output_dir, "course-templates")

    page.get_by_role("button", name="Adopt Esketamine: induction and weekly maintenance (weeks 1-8)").click()
    expect(page.get_by_role("alert").first).to_contain_text("is now one of the clinic's templates")
    expect(page.get_by_label("Number of sessions")).to_have_value("12")
    # Three sessions a week in induction is more than the label allows: refused, with its source.
    page.locator("#id_phase_1_per_week").fill("3")
    page.get_by_role("button", name="Save the template").click()
    expect(page.get_by_text("allows 2 in week 1")).to_be_visible()
    expect(page.locator("#id_phase_1_per_week")).to_have_value("3")
    assert_accessible(page, output_dir, "course-template-refused")
    page.locator("#id_phase_1_per_week").fill("2")
    page.get_by_label("Name").fill("Spravato induction")
    page.get_by_role("button", name="Save the template").click()
    expect(page.get_by_role("alert").first).to_contain_text("The template is saved.")
    expect(page.get_by_role("rowheader", name="Spravato induction")).to_be_visible()
    shot(page, output_dir, "02-template-saved")
