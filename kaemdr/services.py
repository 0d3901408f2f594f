"""Writes for clinics' staff. Each is atomic, checks the actor's capability, and is audited."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from . import accounts
from . import outbox
from . import task_names
from .audit import audit_record
from .exceptions import NotFoundOrForbidden
from .models import Clinic
from .models import Role
from .models import User
from .permissions import Capability
from .permissions import require as _require


class StaffAuditAction:
    INVITED = "staff.invited"
    INVITATION_SENT = "staff.invitation_sent"
    DEACTIVATED = "staff.deactivated"
    REACTIVATED = "staff.reactivated"


@transaction.atomic
def staff_invite(*, actor: User, email: str, full_name: str, role: str) -> User:
    """Add a member of staff to the actor's clinic and email them a link to set their password.

    The account has no usable password until they follow the link; the email is an outbox row
    written in this transaction (`kaemdr.outbox`), sent by a Celery task once it commits, or later
    by the sweeper when the broker is down.
    """
    _require(actor, Capability.STAFF_MANAGE)
    email = User.objects.normalize_email(email).strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": ValidationError("Choose a role.", code="invalid_role")})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError(
            {"email": ValidationError("Someone already signs in with this email.", code="email_taken")}
        )
    user = User(email=email, full_name=full_name.strip(), role=role, clinic_id=actor.member_clinic_id)
    user.set_unusable_password()
    user.full_clean()
    user.save()
    audit_record(
        actor=actor,
        action=StaffAuditAction.INVITED,
        target_type="kaemdr.User",
        target_public_id=user.public_id,
        data={"role": role},
    )
    outbox.enqueue(task_names.STAFF_INVITATION_SEND, str(user.public_id))
    return user


def _active_admins_left(user: User) -> int:
    return (
        User.objects.filter(clinic_id=user.member_clinic_id, role=Role.CLINIC_ADMIN, is_active=True)
        .exclude(pk=user.pk)
        .count()
    )


@transaction.atomic
def staff_deactivate(*, actor: User, user: User) -> User:
    """Stop a member of staff signing in (pages and API tokens); their records and history stay.
    Every session they have ends and every API token is revoked, in the same transaction and for
    good (`kaemdr.accounts.sign_out_everywhere`): reactivating them later revives neither.

    An admin cannot deactivate themselves, and a clinic always keeps one active admin, so that
    nobody locks the clinic out of its own staff management.
    """
    _require(actor, Capability.STAFF_MANAGE)
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.clinic_id != actor.clinic_id:
        raise NotFoundOrForbidden()
    if user.pk == actor.pk:
        raise ValidationError("You cannot deactivate your own account.", code="self_deactivation")
    if not user.is_active:
        return user
    if user.role == Role.CLINIC_ADMIN and _active_admins_left(user) == 0:
        raise ValidationError("The clinic must keep at least one active clinic admin.", code="last_admin")
    user.is_active = False
    user.save(update_fields=["is_active"])
    ended = accounts.sign_out_everywhere(actor=actor, user=user)
    audit_record(
        actor=actor,
        action=StaffAuditAction.DEACTIVATED,
        target_type="kaemdr.User",
        target_public_id=user.public_id,
        data={"tokens_revoked": ended.tokens_revoked},
    )
    return user


@transaction.atomic
def staff_reactivate(*, actor: User, user: User) -> User:
    """Let a deactivated member of staff sign in again, afresh: a session or API token that outlived
    the deactivation (one deactivated before deactivation revoked them, or a token issued while it
    was under way) ends here, so they start with a new sign-in."""
    _require(actor, Capability.STAFF_MANAGE)
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.clinic_id != actor.clinic_id:
        raise NotFoundOrForbidden()
    if user.is_active:
        return user
    ended = accounts.sign_out_everywhere(actor=actor, user=user)
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(
        actor=actor,
        action=StaffAuditAction.REACTIVATED,
        target_type="kaemdr.User",
        target_public_id=user.public_id,
        data={"tokens_revoked": ended.tokens_revoked},
    )
    return user


@transaction.atomic
def staff_invitation_send(*, user: User) -> bool:
    """Email the invitation once. Returns False when there is nothing to send (already sent, or the
    person has set a password or been deactivated), so a retried or duplicated task is harmless.

    The row stays locked while the email goes out: a failed send rolls back and the task retries.
    """
    locked = User.objects.select_for_update(of=("self",)).select_related("clinic").get(pk=user.pk)
    if locked.invitation_sent_at is not None or locked.has_usable_password() or not locked.is_active:
        return False
    clinic_name = locked.clinic.name if locked.clinic else "kaemdr"
    body = render_to_string(
        "emails/staff_invitation.txt",
        {"user": locked, "clinic_name": clinic_name, "link": accounts.invitation_link(locked)},
    )
    send_mail(
        subject=f"Your kaemdr account at {clinic_name}",
        message=body,
        from_email=None,
        recipient_list=[locked.email],
    )
    locked.invitation_sent_at = timezone.now()
    locked.save(update_fields=["invitation_sent_at"])
    audit_record(
        actor=None,
        action=StaffAuditAction.INVITATION_SENT,
        target_type="kaemdr.User",
        target_public_id=locked.public_id,
        clinic_public_id=locked.clinic.public_id if locked.clinic else None,
    )
    return True


@transaction.atomic
def clinic_create(
    *, name: str, slug: str, time_zone: str, admin_email: str, admin_full_name: str
) -> tuple[Clinic, User]:
    """Create a clinic with its first clinic admin (a platform operator's job; see `manage.py clinic_create`).

    The admin is invited like any member of staff: they choose their password from the email.
    """
    clinic = Clinic(name=name.strip(), slug=slug.strip(), time_zone=time_zone)
    clinic.full_clean()
    clinic.save()
    admin = User(
        email=User.objects.normalize_email(admin_email).strip().lower(),
        full_name=admin_full_name.strip(),
        role=Role.CLINIC_ADMIN,
        clinic=clinic,
    )
    admin.set_unusable_password()
    admin.full_clean()
    admin.save()
    audit_record(
        actor=None,
        action="clinic.created",
        target_type="kaemdr.Clinic",
        target_public_id=clinic.public_id,
        clinic_public_id=clinic.public_id,
    )
    audit_record(
        actor=None,
        action=StaffAuditAction.INVITED,
        target_type="kaemdr.User",
        target_public_id=admin.public_id,
        clinic_public_id=clinic.public_id,
        data={"role": Role.CLINIC_ADMIN},
    )
    outbox.enqueue(task_names.STAFF_INVITATION_SEND, str(admin.public_id))
    return clinic, admin
