"""Two-factor sign-in through the real pages: set-up with a code from the authenticator, recovery
codes shown once, the second step at every sign-in, recovery codes used up, an admin's reset, and
the API's token and session paths."""

from __future__ import annotations

import base64
import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from kaemdr.models import AuditEvent
from kaemdr.models import User

from ..factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def code_for(secret: str) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{TOTP(key).token():06d}"


def password_sign_in(client: Client, user: User) -> None:
    response = client.post(reverse("login"), {"username": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 302


def test_a_prescriber_sets_up_two_factor_at_first_sign_in_and_passes_it_next_time(prescriber: User) -> None:
    client = Client()
    password_sign_in(client, prescriber)
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 302
    assert dashboard["Location"].startswith(reverse("two_factor_setup"))
    page = client.get(dashboard["Location"]).content.decode()
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    assert 'src="data:image/svg+xml;base64,' in page  # the QR code, as an image (CSP)
    wrong = client.post(
        reverse("two_factor_setup"), {"code": "000000" if code_for(secret) != "000000" else "111111"}
    )
    assert wrong.status_code == 400
    assert "That code is not right" in wrong.content.decode()
    import time

    time.sleep(1.1)  # django-otp slows the next try after a wrong code
    done = client.post(reverse("two_factor_setup"), {"code": code_for(secret)})
    assert done.status_code == 302, done.content.decode()[:500]
    codes_page = client.get(done["Location"]).content.decode()
    codes = re.findall(r'<li class="col">(\d{8})</li>', codes_page)
    assert len(codes) == 10
    assert client.get(reverse("two_factor_recovery_codes")).status_code == 302  # shown once
    assert client.get(reverse("dashboard")).status_code == 200
    # the next sign-in asks for a code; a recovery code works once
    other = Client()
    password_sign_in(other, prescriber)
    assert other.get(reverse("dashboard"))["Location"].startswith(reverse("two_factor_verify"))
    assert other.post(reverse("two_factor_verify"), {"code": codes[0]}).status_code == 302
    assert other.get(reverse("dashboard")).status_code == 200
    third = Client()
    password_sign_in(third, prescriber)
    assert third.post(reverse("two_factor_verify"), {"code": codes[0]}).status_code == 400
    actions = set(
        AuditEvent.objects.filter(target_public_id=prescriber.public_id).values_list("action", flat=True)
    )
    assert {"auth.two_factor_enrolled", "auth.recovery_code_used", "auth.two_factor_failed"} <= actions


def test_an_admin_reset_ends_the_second_factor_of_every_session(clinic_admin: User, prescriber: User) -> None:
    from ..conftest import sign_in_verified

    signed_in = sign_in_verified(Client(), prescriber)
    assert signed_in.get(reverse("dashboard")).status_code == 200
    admin = sign_in_verified(Client(), clinic_admin)
    assert admin.post(reverse("staff_two_factor_reset", args=[prescriber.public_id])).status_code == 302
    prescriber.refresh_from_db()
    assert not prescriber.two_factor_enabled
    assert not TOTPDevice.objects.filter(user=prescriber).exists()
    assert signed_in.get(reverse("dashboard"))["Location"].startswith(reverse("two_factor_setup"))
    assert AuditEvent.objects.filter(
        action="auth.two_factor_reset", target_public_id=prescriber.public_id
    ).exists()
    own = admin.post(reverse("staff_two_factor_reset", args=[clinic_admin.public_id]), follow=True)
    assert "Another clinic admin resets your two-factor sign-in." in own.content.decode()


def test_a_session_without_the_second_factor_cannot_use_the_api(prescriber: User) -> None:
    client = Client()
    password_sign_in(client, prescriber)
    assert client.get("/api/v1/pathways/").status_code in (401, 403)


def test_roles_without_the_requirement_may_turn_it_on_and_off(monitor: User) -> None:
    from ..conftest import sign_in_verified

    client = sign_in_verified(Client(), monitor)
    assert client.get(reverse("dashboard")).status_code == 200  # no set-up asked of a monitor
    assert "Set up two-factor sign-in" in client.get(reverse("account")).content.decode()
    monitor.clinic.two_factor_for_everyone = True
    monitor.clinic.save()
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("two_factor_setup"))
