"""Staff management: invite, the invitation email and password, deactivate, and who may do it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from kaemdr import services
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.tasks import staff_invitation_send_task

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
