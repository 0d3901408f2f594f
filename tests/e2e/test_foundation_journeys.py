"""Browser journeys of the foundation, clicked through in headless Chromium as each user would."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.two_factor import current_code
from pathways.models import Pathway
from pathways.models import Stage

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import UserFactory
from .conftest import assert_accessible
from .conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


SIGNED_IN_OR_SECOND_STEP = re.compile("^(Dashboard|Two-factor sign-in|Set up two-factor sign-in)$")


def totp_code(secret_base32: str) -> str:
    """What an authenticator app with this secret shows now."""
    from django_otp.oath import TOTP

    key = base64.b32decode(secret_base32.replace(" ", "") + "=" * (-len(secret_base32.replace(" ", "")) % 8))
    return f"{TOTP(key).token():06d}"


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in as a person would: the password, then the second factor when their role has one (a
    code from their authenticator, or setting one up from the QR page's secret)."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    heading = page.get_by_role("heading", name=SIGNED_IN_OR_SECOND_STEP)
    expect(heading).to_be_visible()
    step = heading.inner_text()
    if step == "Set up two-factor sign-in":
        page.get_by_label("Code").fill(totp_code(page.get_by_test_id("totp-secret").inner_text()))
        page.get_by_role("button", name="Turn on two-factor sign-in").click()
        expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        page.get_by_role("link", name="I have kept them: continue").click()
    elif step == "Two-factor sign-in":
        device = TOTPDevice.objects.get(user__email=email, confirmed=True)
        page.get_by_label("Code").fill(current_code(device))
        page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_admin_adds_a_prescriber_who_registers_a_patient_and_moves_the_pathway(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    base = live_server.url
    clinic = ClinicFactory(name="Harbour Clinic", time_zone="Europe/London")
    admin = UserFactory(
        clinic=clinic, role=Role.CLINIC_ADMIN, email="admin@harbour.test", full_name="Jo Whitfield"
    )
    UserFactory(clinic=clinic, role=Role.THERAPIST, email="sam@harbour.test", full_name="Sam Lindqvist")

    # The clinic admin adds a prescriber.
    sign_in(page, base, admin.email, TEST_PASSWORD)
    shot(page, output_dir, "01-admin-dashboard")
    assert_accessible(page, output_dir, "admin-dashboard")
    page.get_by_role("link", name="Staff", exact=True).first.click()
    page.get_by_role("link", name="Add a member of staff").click()
    assert_accessible(page, output_dir, "staff-form")
    page.get_by_label("Full name").fill("Dr Amara Okafor")
    page.get_by_label("Email").fill("amara@harbour.test")
    page.get_by_label("Role").select_option(Role.PRESCRIBER)
    page.get_by_role("button", name="Add and send invitation").click()
    expect(page.get_by_role("alert")).to_contain_text("Dr Amara Okafor was added as prescriber")
    row = page.get_by_role("row", name=re.compile("Dr Amara Okafor"))
    expect(row).to_contain_text("Invited")
    shot(page, output_dir, "02-staff-list-with-invited-prescriber")
    assert_accessible(page, output_dir, "staff-list")
    page.get_by_role("button", name="Jo Whitfield").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to kaemdr")).to_be_visible()

    # The prescriber follows the invitation and chooses a password.
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+", mail.outbox[0].body).group(0)
    page.goto(base + "/" + link.split("://", 1)[1].split("/", 1)[1])
    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    page.locator("#id_new_password1").fill("harbour-clinic-2026!")
    page.get_by_label("New password confirmation").fill("harbour-clinic-2026!")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("alert")).to_contain_text("Your password is set")

    # The prescriber signs in and registers a patient; a mistake first, then corrected.
    sign_in(page, base, "amara@harbour.test", "harbour-clinic-2026!")
    assert_accessible(page, output_dir, "prescriber-dashboard")
    page.get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="Register a patient").click()
    page.get_by_label("Record number").fill("HB-0042")
    page.get_by_label("Date of birth").fill("2099-01-01")
    page.get_by_label("Given name").fill("Eleanor")
    page.get_by_label("Family name").fill("Vance")
    page.get_by_label("Phone").first.fill("07700 900042")
    page.get_by_label("Emergency contact name").fill("Alex Vance")
    page.get_by_label("Emergency contact phone").fill("07700 900043")
    page.get_by_label("Can be the escort home after dosing").check()
    page.get_by_role("button", name="Register patient").click()
    expect(page.get_by_text("The date of birth cannot be in the future.")).to_be_visible()
    expect(page.get_by_label("Given name")).to_have_value("Eleanor")
    shot(page, output_dir, "03-register-patient-error-kept-input")
    assert_accessible(page, output_dir, "register-error")
    page.get_by_label("Date of birth").fill("1986-03-14")
    page.get_by_role("button", name="Register patient").click()
    expect(page.get_by_role("heading", name="Eleanor Vance")).to_be_visible()
    shot(page, output_dir, "04-patient-page")
    assert_accessible(page, output_dir, "patient-page")

    # Opens a pathway with a therapist, and moves it to assessment.
    page.get_by_role("link", name="Open a pathway").click()
    page.get_by_label("Therapist").select_option(label="Sam Lindqvist")
    page.get_by_label("Referred by").fill("GP referral")
    page.get_by_role("button", name="Open pathway").click()
    expect(page.locator("#current-stage")).to_have_text("Referral")
    page.get_by_label("Move to").select_option(Stage.ASSESSMENT)
    page.get_by_role("button", name="Move pathway").click()
    expect(page.get_by_text("Give a reason for the move.")).to_be_visible()
    page.get_by_label("Reason").fill("Referral reviewed; assessment booked.")
    page.get_by_role("button", name="Move pathway").click()
    expect(page.get_by_role("alert")).to_contain_text("The pathway moved to assessment.")
    expect(page.locator("#current-stage")).to_have_text("Assessment")
    expect(page.locator(".timeline")).to_contain_text("Referral reviewed; assessment booked.")
    shot(page, output_dir, "05-pathway-in-assessment")
    assert_accessible(page, output_dir, "pathway-page")

    pathway = Pathway.objects.get(patient__record_number="HB-0042")
    assert pathway.stage == Stage.ASSESSMENT
    assert pathway.therapist == User.objects.get(email="sam@harbour.test")


def test_admin_reads_the_audit_log_and_deactivates_staff(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    base = live_server.url
    clinic = ClinicFactory(name="Harbour Clinic")
    admin = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN, email="admin2@harbour.test")
    leaver = UserFactory(clinic=clinic, role=Role.MONITOR, full_name="Leaving Nurse")
    sign_in(page, base, admin.email, TEST_PASSWORD)
    page.get_by_role("link", name="Staff", exact=True).first.click()
    page.get_by_role("row", name=re.compile("Leaving Nurse")).get_by_role(
        "button", name=re.compile("Deactivate")
    ).click()
    expect(page.get_by_role("alert")).to_contain_text("Leaving Nurse can no longer sign in.")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("table")).to_contain_text("staff.deactivated")
    page.get_by_label("User").select_option(label=f"{admin.full_name} ({admin.email})")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("table")).to_contain_text("staff.deactivated")
    shot(page, output_dir, "audit-log")
    assert_accessible(page, output_dir, "audit-log")
    assert not User.objects.get(pk=leaver.pk).is_active
