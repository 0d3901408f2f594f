"""Staff management: invite, the invitation email and password, deactivate, and who may do it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from kaemdr import services
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.tasks import staff_invitation_send_task

from ..factories import TEST_PASSWORD
from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def test_invite_creates_staff_without_a_password_and_emails_a_link(
    clinic_admin: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        user = services.staff_invite(
            actor=clinic_admin, email="New.Person@Example.test", full_name="New Person", role=Role.THERAPIST
        )

    assert (user.email, user.clinic_id, user.role) == (
        "new.person@example.test",
        clinic_admin.clinic_id,
        Role.THERAPIST,
    )
    assert not user.has_usable_password()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.person@example.test"]
    assert "/accounts/set-password/" in mail.outbox[0].body
    user.refresh_from_db()
    assert user.invitation_sent_at is not None
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "staff.invited",
        "staff.invitation_sent",
    ]


def test_invitation_task_sends_once_however_often_it_runs(
    clinic_admin: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        user = services.staff_invite(
            actor=clinic_admin, email="once@example.test", full_name="Once Only", role=Role.MONITOR
        )
    assert staff_invitation_send_task(str(user.public_id)) is False
    assert staff_invitation_send_task(str(user.public_id)) is False
    assert len(mail.outbox) == 1


def test_invited_person_sets_a_password_and_signs_in(
    clinic_admin: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        services.staff_invite(
            actor=clinic_admin, email="nurse@example.test", full_name="Nia Nurse", role=Role.MONITOR
        )
    link = re.search(r"http://\S+", mail.outbox[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    client = Client()
    form_page = client.get("/" + path, follow=True)
    assert b"Choose your password" in form_page.content
    set_url = form_page.redirect_chain[-1][0]
    too_short = client.post(set_url, {"new_password1": "short", "new_password2": "short"})
    assert b"too short" in too_short.content
    done = client.post(
        set_url, {"new_password1": "a-long-clinic-pass-2026", "new_password2": "a-long-clinic-pass-2026"}
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("login")
    assert User.objects.get(email="nurse@example.test").check_password("a-long-clinic-pass-2026")
    assert Client().get("/" + path, follow=True).context["validlink"] is False


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR])
def test_only_clinic_admins_manage_staff(staff: dict[str, User], role: str) -> None:
    with pytest.raises(NotFoundOrForbidden):
        services.staff_invite(actor=staff[role], email="x@example.test", full_name="X", role=Role.MONITOR)
    with pytest.raises(NotFoundOrForbidden):
        services.staff_deactivate(actor=staff[role], user=staff[Role.MONITOR])
    assert not User.objects.filter(email="x@example.test").exists()
    assert User.objects.get(pk=staff[Role.MONITOR].pk).is_active


def test_invite_refuses_an_email_in_use_anywhere(clinic_admin: User, other_clinic: Any) -> None:
    UserFactory(clinic=other_clinic, email="taken@example.test")
    with pytest.raises(ValidationError) as refused:
        services.staff_invite(
            actor=clinic_admin, email="TAKEN@example.test", full_name="T", role=Role.MONITOR
        )
    assert refused.value.error_dict["email"][0].code == "email_taken"


def test_deactivate_stops_sign_in_and_is_audited(clinic_admin: User, therapist: User) -> None:
    client = Client()
    client.force_login(therapist)
    services.staff_deactivate(actor=clinic_admin, user=therapist)
    therapist.refresh_from_db()
    assert not therapist.is_active
    assert client.get(reverse("dashboard")).status_code == 302  # the live session is over too
    assert AuditEvent.objects.filter(
        action="staff.deactivated", target_public_id=therapist.public_id
    ).exists()
    services.staff_reactivate(actor=clinic_admin, user=therapist)
    therapist.refresh_from_db()
    assert therapist.is_active


def test_admin_cannot_deactivate_themselves_or_the_last_admin(clinic_admin: User, clinic: Any) -> None:
    with pytest.raises(ValidationError, match="your own account"):
        services.staff_deactivate(actor=clinic_admin, user=clinic_admin)
    second = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN)
    services.staff_deactivate(actor=clinic_admin, user=second)
    assert not User.objects.get(pk=second.pk).is_active


def test_admin_cannot_touch_another_clinics_staff(clinic_admin: User, other_clinic: Any) -> None:
    outsider = UserFactory(clinic=other_clinic, role=Role.THERAPIST)
    with pytest.raises(NotFoundOrForbidden):
        services.staff_deactivate(actor=clinic_admin, user=outsider)
    assert User.objects.get(pk=outsider.pk).is_active


def test_staff_page_shows_errors_next_to_the_field(
    clinic_admin: User, therapist: User, client_for: Any
) -> None:
    response = client_for(clinic_admin).post(
        reverse("staff_invite"), {"full_name": "Dup", "email": therapist.email, "role": Role.MONITOR}
    )
    assert response.status_code == 200
    assert "Someone already signs in with this email." in response.content.decode()
    assert 'value="Dup"' in response.content.decode()


def test_deactivating_yourself_on_the_page_shows_a_message(clinic_admin: User, client_for: Any) -> None:
    response = client_for(clinic_admin).post(
        reverse("staff_deactivate", args=[clinic_admin.public_id]), follow=True
    )
    assert "You cannot deactivate your own account." in response.content.decode()
    clinic_admin.refresh_from_db()
    assert clinic_admin.is_active


# --- Deactivation is for good: reactivation starts with a fresh sign-in (issue 18) -------------------


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def signed_out(client: Client) -> bool:
    """Whether the client's old session is gone: a page sends it to sign in, the API refuses it."""
    page = client.get(reverse("dashboard"))
    return (
        page.status_code == 302
        and page["Location"].startswith(reverse("login"))
        and client.get("/api/v1/pathways/").status_code in (401, 403)
    )


def test_deactivating_and_reactivating_on_the_pages_revives_no_session_or_token(
    clinic_admin: User, therapist: User, client_for: Any
) -> None:
    old_session = client_for(therapist)
    _, old_token = AuthToken.objects.create(user=therapist)
    assert old_session.get(reverse("dashboard")).status_code == 200
    admin = client_for(clinic_admin)

    assert admin.post(reverse("staff_deactivate", args=[therapist.public_id])).status_code == 302

    assert not AuthToken.objects.filter(user=therapist).exists()
    # while deactivated, neither the session nor the token reaches anything
    assert signed_out(old_session)
    assert token_client(old_token).get("/api/v1/pathways/").status_code == 401

    assert admin.post(reverse("staff_reactivate", args=[therapist.public_id])).status_code == 302

    assert User.objects.get(pk=therapist.pk).is_active
    assert signed_out(old_session)
    assert token_client(old_token).get("/api/v1/pathways/").status_code == 401
    therapist.refresh_from_db()  # as signing in loads them
    assert client_for(therapist).get(reverse("dashboard")).status_code == 200  # a fresh sign-in works
    deactivated = AuditEvent.objects.get(action="staff.deactivated", target_public_id=therapist.public_id)
    assert deactivated.data == {"tokens_revoked": 1}
    assert deactivated.actor_public_id == clinic_admin.public_id


def test_a_session_untouched_while_deactivated_still_ends_at_reactivation(
    clinic_admin: User, monitor: User, client_for: Any
) -> None:
    old_session = client_for(monitor)
    assert old_session.get(reverse("dashboard")).status_code == 200
    services.staff_deactivate(actor=clinic_admin, user=monitor)
    services.staff_reactivate(actor=clinic_admin, user=monitor)

    ended = old_session.get(reverse("dashboard"))

    assert ended.status_code == 302
    assert ended["Location"].startswith(reverse("login"))
    assert "Sign in again." in old_session.get(ended["Location"]).content.decode()


def test_deactivating_and_reactivating_through_the_api_revives_no_session_or_token(
    clinic_admin: User, prescriber: User, client_for: Any
) -> None:
    old_session = client_for(prescriber)
    _, old_token = AuthToken.objects.create(user=prescriber)
    _, admin_token = AuthToken.objects.create(user=clinic_admin)
    admin = token_client(admin_token)

    deactivated = admin.post(f"/api/v1/staff/{prescriber.public_id}/deactivate/")

    assert deactivated.status_code == 200
    assert deactivated.json()["is_active"] is False
    assert token_client(old_token).get("/api/v1/pathways/").status_code == 401
    assert signed_out(old_session)
    # nor can a new token be had meanwhile
    refused = APIClient().post(
        "/api/v1/auth/token/", {"username": prescriber.email, "password": TEST_PASSWORD}
    )
    assert refused.status_code == 400
    assert not AuthToken.objects.filter(user=prescriber).exists()

    reactivated = admin.post(f"/api/v1/staff/{prescriber.public_id}/reactivate/")

    assert reactivated.status_code == 200
    assert reactivated.json()["is_active"] is True
    assert token_client(old_token).get("/api/v1/pathways/").status_code == 401
    assert signed_out(old_session)
    assert not AuthToken.objects.filter(user=prescriber).exists()
    prescriber.refresh_from_db()  # as signing in loads them
    assert client_for(prescriber).get(reverse("dashboard")).status_code == 200


def test_reactivation_revokes_what_outlived_the_deactivation(clinic_admin: User, therapist: User) -> None:
    """An account deactivated before deactivation revoked anything (or a token issued while it was
    under way) still starts clean."""
    User.objects.filter(pk=therapist.pk).update(is_active=False)
    _, leftover = AuthToken.objects.create(user=therapist)
    epoch = User.objects.get(pk=therapist.pk).sessions_epoch

    services.staff_reactivate(actor=clinic_admin, user=therapist)

    assert token_client(leftover).get("/api/v1/pathways/").status_code == 401
    assert User.objects.get(pk=therapist.pk).sessions_epoch == epoch + 1
    reactivated = AuditEvent.objects.get(action="staff.reactivated", target_public_id=therapist.public_id)
    assert reactivated.data == {"tokens_revoked": 1}


def test_a_refused_deactivation_revokes_nothing(clinic_admin: User, client_for: Any) -> None:
    _, token = AuthToken.objects.create(user=clinic_admin)
    session = client_for(clinic_admin)
    with pytest.raises(ValidationError):
        services.staff_deactivate(actor=clinic_admin, user=clinic_admin)
    assert token_client(token).get("/api/v1/pathways/").status_code == 200
    assert session.get(reverse("dashboard")).status_code == 200
