"""Two-factor sign-in with django-otp: a TOTP authenticator app and single-use recovery codes.

Prescribers and clinic admins must use it (a clinic may ask it of everyone; anyone may choose it).
After the password, `TwoFactorMiddleware` sends a signed-in user who has not passed the second
factor in this session to the verify page (or, when it is required and they have no device yet, to
the set-up page). Every step is audited; wrong codes are slowed by django-otp's throttling.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .audit import audit_record
from .exceptions import NotFoundOrForbidden
from .models import User
from .permissions import Capability
from .permissions import require as _require
from .permissions import two_factor_required

TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


class TwoFactorAuditAction:
    ENROLLED = "auth.two_factor_enrolled"
    VERIFIED = "auth.two_factor_verified"
    FAILED = "auth.two_factor_failed"
    RECOVERY_USED = "auth.recovery_code_used"
    RECOVERY_REGENERATED = "auth.recovery_codes_regenerated"
    DISABLED = "auth.two_factor_disabled"
    RESET = "auth.two_factor_reset"


def _audit(actor: User | None, action: str, user: User, **data: object) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="kaemdr.User",
        target_public_id=user.public_id,
        clinic_public_id=user.clinic.public_id if user.clinic else None,
        data=dict(data),
    )


SESSION_KEY = "kaemdr_second_factor"


def has_device(user: User) -> bool:
    return bool(user.two_factor_enabled)


def needs_second_factor(request: HttpRequest) -> str | None:
    """`"verify"` or `"setup"` when the signed-in user must pass (or set up) a second factor before
    going on, or None. A user who chose two-factor sign-in must pass it too. No query: the user row
    is loaded already, and the session carries the enrolment counter it passed at."""
    user = request.user
    if not user.is_authenticated:
        return None
    if user.two_factor_enabled:
        passed = request.session.get(SESSION_KEY) == user.two_factor_epoch
        return None if passed else "verify"
    return "setup" if two_factor_required(user) else None


def _passed(request: HttpRequest, user: User) -> None:
    """Mark this session as having passed the second factor (with a new session key, as at sign-in)."""
    request.session.cycle_key()
    request.session[SESSION_KEY] = user.two_factor_epoch


def _bump(user: User, *, enabled: bool) -> None:
    User.objects.filter(pk=user.pk).update(
        two_factor_enabled=enabled, two_factor_epoch=F("two_factor_epoch") + 1
    )
    user.refresh_from_db(fields=["two_factor_enabled", "two_factor_epoch"])


def pending_device(user: User) -> TOTPDevice:
    """The authenticator being set up (made once, kept until confirmed, so a reload shows the same
    secret)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [f"{secrets.randbelow(10**8):08d}" for _ in range(settings.KAEMDR_RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@dataclass(frozen=True)
class Enrolment:
    recovery_codes: list[str]


@transaction.atomic
def totp_confirm(*, request: HttpRequest, token: str) -> Enrolment:
    """Confirm the pending authenticator with a code from it; the session counts as verified, and
    ten single-use recovery codes are made (shown once)."""
    user: User = request.user  # type: ignore[assignment]
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    if device is None:
        raise ValidationError("Start the set-up again.", code="no_pending_device")
    if not device.verify_token((token or "").replace(" ", "")):
        raise ValidationError(
            {"code": ValidationError("That code is not right; try the current one.", code="invalid")}
        )
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save()
    codes = _new_recovery_codes(user)
    _bump(user, enabled=True)
    _passed(request, user)
    _audit(user, TwoFactorAuditAction.ENROLLED, user)
    return Enrolment(recovery_codes=codes)


def verify(*, request: HttpRequest, token: str) -> bool:
    """Pass the second factor with an authenticator code or a recovery code (used up once used)."""
    user: User = request.user  # type: ignore[assignment]
    token = (token or "").replace(" ", "")
    for device in devices_for_user(user, confirmed=True):
        if device.verify_is_allowed()[0] and device.verify_token(token):
            _passed(request, user)
            used_recovery = isinstance(device, StaticDevice)
            _audit(
                user,
                TwoFactorAuditAction.RECOVERY_USED if used_recovery else TwoFactorAuditAction.VERIFIED,
                user,
            )
            return True
    _audit(user, TwoFactorAuditAction.FAILED, user)
    return False


@transaction.atomic
def recovery_codes_regenerate(*, actor: User) -> list[str]:
    if not has_device(actor):
        raise ValidationError("Set up an authenticator app first.", code="no_device")
    codes = _new_recovery_codes(actor)
    _audit(actor, TwoFactorAuditAction.RECOVERY_REGENERATED, actor)
    return codes


@transaction.atomic
def two_factor_disable(*, actor: User) -> None:
    """Turn off a second factor the actor chose; refused where it is required."""
    if two_factor_required(actor):
        raise ValidationError("Your role requires two-factor sign-in.", code="required")
    TOTPDevice.objects.filter(user=actor).delete()
    StaticDevice.objects.filter(user=actor).delete()
    _bump(actor, enabled=False)
    _audit(actor, TwoFactorAuditAction.DISABLED, actor)


@transaction.atomic
def two_factor_reset(*, actor: User, member: User) -> None:
    """A clinic admin clears a colleague's lost authenticator; they set up a new one at their next
    sign-in. Never one's own (another admin does that)."""
    _require(actor, Capability.STAFF_MANAGE, member.clinic_id)
    if member.pk == actor.pk:
        raise ValidationError("Another clinic admin resets your two-factor sign-in.", code="own_account")
    if member.clinic_id != actor.clinic_id:
        raise NotFoundOrForbidden()
    TOTPDevice.objects.filter(user=member).delete()
    StaticDevice.objects.filter(user=member).delete()
    _bump(member, enabled=False)  # their sessions' second factor no longer counts
    _audit(actor, TwoFactorAuditAction.RESET, member)


def enrol_with_key(*, user: User, key_hex: str, name: str) -> TOTPDevice:
    """An authenticator with a key chosen in advance: for the demo clinic only, whose key is
    published so that a reviewer can sign in (see `manage.py demo_code`)."""
    device, _ = TOTPDevice.objects.update_or_create(
        user=user, name=name, defaults={"key": key_hex, "confirmed": True}
    )
    _bump(user, enabled=True)
    return device


def current_code(device: TOTPDevice) -> str:
    """The code the device's authenticator shows now (for the demo's sign-in help and for tests)."""
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"
