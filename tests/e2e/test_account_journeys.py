"""Account security in the browser: two-factor set-up and recovery codes, a clinic admin's reset of a
colleague's two-factor sign-in, a forgotten password, signing out everywhere, the subject access
export, and API tokens on the account page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr.models import Role
from kaemdr.models import User
from sessions.models import DosingSession

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import UserFactory
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in
from .test_foundation_journeys import totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIGN_IN_HEADING = "Sign in to kaemdr"


def enter_password(page: Page, base_url: str, email: str, password: str) -> None:
    """The first step of signing in only: the second step is the test's to drive."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page, full_name: str) -> None:
    page.get_by_role("button", name=full_name).click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()


def open_account(page: Page, full_name: str) -> None:
    page.get_by_role("button", name=full_name).click()
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", name="Your account", exact=True)).to_be_visible()


def shown_recovery_codes(page: Page) -> list[str]:
    return page.get_by_test_id("recovery-codes").get_by_role("listitem").all_inner_texts()


def test_prescriber_sets_up_two_factor_and_signs_in_with_a_recovery_code(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    base = live_server.url
    clinic = ClinicFactory(name="Harbour Clinic")
    UserFactory(clinic=clinic, role=Role.PRESCRIBER, email="amara@harbour.test", full_name="Amara Okafor")

    # First sign-in: the password, then setting up an authenticator from the QR page's secret.
    enter_password(page, base, "amara@harbour.test", TEST_PASSWORD)
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    qr = page.get_by_role("img", name="QR code to add kaemdr to an authenticator app")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth") > 0  # drawn, not a broken image
    secret = page.get_by_test_id("totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", secret)
    shot(page, output_dir, "01-set-up")
    assert_accessible(page, output_dir, "set-up")
    page.get_by_label("Code").fill("000000" if totp_code(secret) != "000000" else "111111")
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_text("That code is not right; try the current one.")).to_be_visible()
    assert page.get_by_test_id("totp-secret").inner_text() == secret  # the same secret after a mistake
    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()

    # The recovery codes, shown once.
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = shown_recovery_codes(page)
    assert len(codes) == 10
    assert all(re.fullmatch(r"\d{8}", code) for code in codes)
    shot(page, output_dir, "02-recovery-codes")
    assert_accessible(page, output_dir, "recovery-codes")
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.goto(f"{base}/accounts/two-factor/recovery-codes/")  # not shown a second time
    expect(page.get_by_role("heading", name="Your account", exact=True)).to_be_visible()
    sign_out(page, "Amara Okafor")

    # A lost phone: a recovery code at the verify step instead of the app's code.
    enter_password(page, base, "amara@harbour.test", TEST_PASSWORD)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    shot(page, output_dir, "03-verify")
    assert_accessible(page, output_dir, "verify")
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert not StaticToken.objects.filter(device__user__email="amara@harbour.test", token=codes[0]).exists()

    # Your account: two-factor is on and required; new recovery codes replace the old ones.
    open_account(page, "Amara Okafor")
    expect(
        page.get_by_text("You sign in with your password and a code from your authenticator app.")
    ).to_be_visible()
    expect(page.get_by_text("Your role requires it.")).to_be_visible()
    expect(page.get_by_role("button", name="Turn off")).to_have_count(0)
    shot(page, output_dir, "04-account")
    assert_accessible(page, output_dir, "account")
    page.get_by_role("button", name="New recovery codes").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    new_codes = shown_recovery_codes(page)
    assert len(new_codes) == 10
    assert not set(new_codes) & set(codes)
    shot(page, output_dir, "05-new-recovery-codes")
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    sign_out(page, "Amara Okafor")

    # A later sign-in: the used code, and an unused one of the replaced set, no longer work.
    enter_password(page, base, "amara@harbour.test", TEST_PASSWORD)
    # django-otp slows the next try after a wrong code (1 s, then 2 s): each try waits it out, so a
    # refusal is the code's, not the throttle's.
    for wait_ms, stale in ((0, codes[0]), (1100, codes[1])):
        page.wait_for_timeout(wait_ms)
        page.get_by_label("Code").fill(stale)
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_text("That code is not right.")).to_be_visible()
    shot(page, output_dir, "06-used-recovery-code-refused")
    assert_accessible(page, output_dir, "verify-error")
    page.wait_for_timeout(2100)
    page.get_by_label("Code").fill(new_codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_admin_resets_a_colleagues_two_factor_and_they_set_it_up_again(
    page: Page, browser: Browser, browser_context_args: dict[str, Any], live_server: Any, output_dir: Path
) -> None:
    base = live_server.url
    clinic = ClinicFactory(name="Harbour Clinic", two_factor_for_everyone=True)
    admin = UserFactory(
        clinic=clinic, role=Role.CLINIC_ADMIN, email="jo@harbour.test", full_name="Jo Whitfield"
    )
    UserFactory(clinic=clinic, role=Role.THERAPIST, email="sam@harbour.test", full_name="Sam Lindqvist")

    # The therapist's clinic asks two-factor of everyone: they set it up at their first sign-in.
    colleague = browser.new_context(**browser_context_args)
    try:
        their_page = colleague.new_page()
        sign_in(their_page, base, "sam@harbour.test", TEST_PASSWORD)
        old_key = TOTPDevice.objects.get(user__email="sam@harbour.test", confirmed=True).key

        # They lose their phone; the clinic admin resets their two-factor sign-in from the Staff page.
        sign_in(page, base, admin.email, TEST_PASSWORD)
        page.get_by_role("link", name="Staff", exact=True).first.click()
        row = page.get_by_role("row", name=re.compile("Sam Lindqvist"))
        expect(page.get_by_role("row", name=re.compile("Jo Whitfield")).get_by_role("button")).to_have_count(
            0
        )
        shot(page, output_dir, "01-staff-list")
        assert_accessible(page, output_dir, "staff-list")
        row.get_by_role("button", name="Reset two-factor of Sam Lindqvist").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "Sam Lindqvist sets up two-factor sign-in again at their next sign-in."
        )
        shot(page, output_dir, "02-reset-done")
        assert not User.objects.get(email="sam@harbour.test").two_factor_enabled
        assert not TOTPDevice.objects.filter(user__email="sam@harbour.test").exists()

        # The therapist's open session no longer counts as having passed the second factor.
        their_page.reload()
        expect(their_page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
        their_page.get_by_role("button", name="Sign out").click()
        expect(their_page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()

        # At their next sign-in they set up a new authenticator (a new secret).
        enter_password(their_page, base, "sam@harbour.test", TEST_PASSWORD)
        expect(their_page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
        expect(their_page.get_by_text("Your role signs in with a second factor")).to_be_visible()
        shot(their_page, output_dir, "03-colleague-sets-up-again")
        secret = their_page.get_by_test_id("totp-secret").inner_text()
        their_page.get_by_label("Code").fill(totp_code(secret))
        their_page.get_by_role("button", name="Turn on two-factor sign-in").click()
        expect(their_page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        their_page.get_by_role("link", name="I have kept them: continue").click()
        expect(their_page.get_by_role("heading", name="Dashboard")).to_be_visible()
        assert TOTPDevice.objects.get(user__email="sam@harbour.test", confirmed=True).key != old_key
    finally:
        colleague.close()


def test_monitor_resets_a_forgotten_password(page: Page, live_server: Any, output_dir: Path) -> None:
    base = live_server.url
    clinic = ClinicFactory(name="Harbour Clinic")
    UserFactory(clinic=clinic, role=Role.MONITOR, email="priya@harbour.test", full_name="Priya Raman")

    page.goto(f"{base}/accounts/login/")
    page.get_by_role("link", name="Forgotten your password?").click()
    expect(page.get_by_role("heading", name="Forgotten password")).to_be_visible()
    shot(page, output_dir, "01-forgotten-password")
    assert_accessible(page, output_dir, "forgotten-password")
    page.get_by_label("Email").fill("priya@harbour.test")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("If that address belongs to a kaemdr account")
    shot(page, output_dir, "02-check-your-email")
    assert_accessible(page, output_dir, "check-your-email")

    # The email (sent after the request's commit) holds a link to choose a new password.
    assert [message.to for message in mail.outbox] == [["priya@harbour.test"]]
    assert mail.outbox[0].subject == "Choose a new kaemdr password (Harbour Clinic)"
    match = re.search(r"https?://\S+", mail.outbox[0].body)
    assert match is not None
    link = match.group(0)
    page.goto(base + "/" + link.split("://", 1)[1].split("/", 1)[1])
    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    page.locator("#id_new_password1").fill("harbour-monitor-2026!")
    page.get_by_label("New password confirmation").fill("harbour-monitor-2026!")
    shot(page, output_dir, "03-choose-password")
    assert_accessible(page, output_dir, "choose-password")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("alert")).to_contain_text("Your password is set")

    # The old password no longer works; the new one does. The link works once.
    enter_password(page, base, "priya@harbour.test", TEST_PASSWORD)
    expect(page.get_by_text(re.compile("enter a correct .* and password"))).to_be_visible()
    shot(page, output_dir, "04-old-password-refused")
    sign_in(page, base, "priya@harbour.test", "harbour-monitor-2026!")
    page.goto(base + "/" + link.split("://", 1)[1].split("/", 1)[1])
    expect(page.get_by_text("This link has been used or has expired.")).to_be_visible()


def test_therapist_signs_out_everywhere_else(
    page: Page, browser: Browser, browser_context_args: dict[str, Any], live_server: Any, output_dir: Path
) -> None:
    base = live_server.url
    clinic = ClinicFactory(name="Harbour Clinic")
    UserFactory(clinic=clinic, role=Role.THERAPIST, email="sam@harbour.test", full_name="Sam Lindqvist")
    other = browser.new_context(**browser_context_args)
    try:
        elsewhere = other.new_page()
        sign_in(elsewhere, base, "sam@harbour.test", TEST_PASSWORD)
        sign_in(page, base, "sam@harbour.test", TEST_PASSWORD)

        open_account(page, "Sam Lindqvist")
        expect(
            page.get_by_text(re.compile(r"You signed in at .* A session ends after \d+ hours"))
        ).to_be_visible()
        page.get_by_role("button", name="Sign out everywhere else").click()
        expect(page.get_by_role("alert")).to_contain_text("Signed out of every other session.")
        shot(page, output_dir, "01-signed-out-everywhere-else")
        assert_accessible(page, output_dir, "account-after-sign-out-everywhere")

        # The other browser's next page lands on sign-in, saying why.
        elsewhere.reload()
        expect(elsewhere.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()
        expect(elsewhere.get_by_role("status")).to_have_text("You were signed out everywhere. Sign in again.")
        shot(elsewhere, output_dir, "02-other-browser-signed-out")
        assert_accessible(elsewhere, output_dir, "sign-in-after-revoke")

        # This browser stays signed in.
        page.get_by_role("link", name="Dashboard").first.click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    finally:
        other.close()


def test_prescriber_exports_a_patients_record(
    page: Page,
    live_server: Any,
    output_dir: Path,
    settings: Any,
    tmp_path: Path,
    prescriber: User,
    dosing_pathway: Any,
    complete_session: Callable[..., DosingSession],
) -> None:
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    session = complete_session(dosing_pathway)
    patient = dosing_pathway.patient
    sign_in(page, live_server.url, prescriber.email, TEST_PASSWORD)

    page.get_by_role("link", name="Patients").first.click()
    page.get_by_role("link", name=f"{patient.family_name}, {patient.given_name}").click()
    expect(page.get_by_role("heading", name=patient.full_name)).to_be_visible()
    page.get_by_role("link", name="Export record").click()
    expect(page.get_by_role("heading", name=f"Export the record of {patient.full_name}")).to_be_visible()
    expect(page.get_by_text(f"Record {patient.record_number}")).to_be_visible()
    shot(page, output_dir, "01-export")
    assert_accessible(page, output_dir, "export")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the record (JSON)").click()
    download = download_info.value
    assert re.fullmatch(r"kaemdr-[a-z0-9-]+-\d{4}-\d{2}-\d{2}\.json", download.suggested_filename)
    saved = output_dir / "record.json"
    download.save_as(saved)
    record = json.loads(saved.read_text())
    assert record["patient"]["record_number"] == patient.record_number
    assert record["export"]["purpose"] == "subject access request"
    sessions = record["records"]["dosing.DosingSession"]
    assert [row["public_id"] for row in sessions] == [str(session.public_id)]
    assert sessions[0]["status"] == "signed"

    # The pathway's PDF summary, from the same page.
    page.get_by_role("button", name="Pathway summary (PDF)").click()
    expect(page.get_by_role("heading", name=f"Pathway summary of {patient.full_name}")).to_be_visible()
    link = page.get_by_role("link", name="Download the PDF")
    expect(link).to_be_visible(timeout=15000)
    shot(page, output_dir, "02-pathway-summary")
    assert_accessible(page, output_dir, "pathway-summary")
    with page.expect_download() as pdf_info:
        link.click()
    pdf = output_dir / "pathway-summary.pdf"
    pdf_info.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_user_revokes_an_api_token_from_the_account_page(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    clinic = ClinicFactory(name="Harbour Clinic")
    user = UserFactory(
        clinic=clinic, role=Role.THERAPIST, email="sam@harbour.test", full_name="Sam Lindqvist"
    )
    kept, _ = AuthToken.objects.create(user=user)
    revoked, _ = AuthToken.objects.create(user=user)
    sign_in(page, live_server.url, user.email, TEST_PASSWORD)

    open_account(page, "Sam Lindqvist")
    table = page.get_by_role("table", name="Your API tokens")
    expect(table.get_by_role("row")).to_have_count(3)  # the header and two tokens
    expect(table).to_contain_text(kept.token_key[:8])
    expect(table).to_contain_text(revoked.token_key[:8])
    shot(page, output_dir, "01-two-tokens")
    assert_accessible(page, output_dir, "account-tokens")

    page.get_by_role("button", name=f"Revoke token {revoked.token_key[:8]}").click()
    expect(page.get_by_role("alert")).to_contain_text("The API token is revoked.")
    expect(table.get_by_role("row")).to_have_count(2)
    expect(table).not_to_contain_text(revoked.token_key[:8])
    expect(table).to_contain_text(kept.token_key[:8])
    shot(page, output_dir, "02-one-revoked")
    assert list(AuthToken.objects.filter(user=user).values_list("digest", flat=True)) == [kept.digest]
