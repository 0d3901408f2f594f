"""Sign-in sessions, password resets and API tokens: the account rules beyond two-factor sign-in.

- A session lasts at most `SESSION_MAX_HOURS` from its sign-in, however active (the idle limit is
  Django's cookie age, pushed forward by `RequestContextMiddleware`), and ends at once when its owner
  signs out everywhere or is deactivated (for good, with their API tokens: reactivating the account
  revives neither). Both are checked against values already loaded (the session and the user
  row): no query per request.
- A password reset emails a link (the invitation's set-password page) only to an active account with
  a password; the page says the same whether or not the address is known, and requests are limited
  per address and per client address.
- API tokens are django-rest-knox tokens: stored hashed, with an expiry; their owner lists and
  revokes them; issuing one needs the second factor where sign-in does (`kaemdr.api`).

Every step is audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_ratelimit.core import is_ratelimited
from knox.models import AuthToken

from . import outbox
from . import task_names
from .audit import audit_record
from .exceptions import NotFoundOrForbidden
from .models import User

SIGNED_IN_AT_KEY = "kaemdr_signed_in_at"
SESSIONS_EPOCH_KEY = "kaemdr_sessions_epoch"
ENDED_KEY = "kaemdr_session_ended"


class AccountAuditAction:
    SIGNED_IN = "auth.signed_in"
    SIGNED_OUT = "auth.signed_out"
    SESSION_EXPIRED = "auth.session_expired"
    SIGNED_OUT_EVERYWHERE = "auth.signed_out_everywhere"
    PASSWORD_RESET_REQUESTED = "auth.password_reset_requested"  # nosec B105  # an audit action, not a secret
    PASSWORD_SET = "auth.password_set"  # nosec B105  # an audit action, not a secret
    TOKEN_ISSUED = "auth.api_token_issued"  # nosec B105  # an audit action, not a secret
    TOKEN_REVOKED = "auth.api_token_revoked"  # nosec B105  # an audit action, not a secret


def _audit(actor: User | None, action: str, user: User, **data: object) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="kaemdr.User",
        target_public_id=user.public_id,
        clinic_public_id=user.clinic.public_id if user.clinic_id and user.clinic else None,
        data=dict(data),
    )


# --- Sessions ---------------------------------------------------------------------------------------


def session_started(request: HttpRequest, user: User) -> None:
    """Stamp a new sign-in's session with its start and the owner's sessions counter (at sign-in)."""
    request.session[SIGNED_IN_AT_KEY] = int(time.time())
    request.session[SESSIONS_EPOCH_KEY] = user.sessions_epoch
    _audit(user, AccountAuditAction.SIGNED_IN, user)


def session_end_reason(request: HttpRequest, user: User, *, now: float | None = None) -> str | None:
    """Why this signed-in session must end now ("expired" past the absolute limit, "revoked" after
    sign-out-everywhere), or None. A session from before these stamps existed is stamped now."""
    now = time.time() if now is None else now
    session = request.session
    started = session.get(SIGNED_IN_AT_KEY)
    if not isinstance(started, int):
        session[SIGNED_IN_AT_KEY] = int(now)
        session[SESSIONS_EPOCH_KEY] = user.sessions_epoch
        return None
    if session.get(SESSIONS_EPOCH_KEY) != user.sessions_epoch:
        return "revoked"
    if now - started > settings.SESSION_MAX_HOURS * 3600:
        return "expired"
    return None


def session_end(request: HttpRequest, user: User, reason: str) -> None:
    """End the session (it becomes anonymous), audit why, and leave the reason for the sign-in page."""
    if reason == "expired":
        _audit(user, AccountAuditAction.SESSION_EXPIRED, user)
    logout(request)
    request.session[ENDED_KEY] = reason


@dataclass(frozen=True)
class SignedOutEverywhere:
    tokens_revoked: int
    sessions_epoch: int


@transaction.atomic
def sign_out_everywhere(*, actor: User, user: User | None = None) -> SignedOutEverywhere:
    """End every session of `user` (the actor, unless a clinic admin deactivating or reactivating
    someone names them: `kaemdr.services`) and revoke all their API tokens, for good: a session ends
    at its next request, even once a deactivated account is active again, because its sessions
    counter has moved on. A page keeps its own session by taking the new counter (`keep_session`)."""
    user = actor if user is None else user
    User.objects.filter(pk=user.pk).update(sessions_epoch=F("sessions_epoch") + 1)
    user.refresh_from_db(fields=["sessions_epoch"])
    tokens_revoked, _ = AuthToken.objects.filter(user=user).delete()
    _audit(actor, AccountAuditAction.SIGNED_OUT_EVERYWHERE, user, tokens_revoked=tokens_revoked)
    return SignedOutEverywhere(tokens_revoked=tokens_revoked, sessions_epoch=user.sessions_epoch)


def keep_session(request: HttpRequest, result: SignedOutEverywhere) -> None:
    """Keep the session that asked to sign out everywhere else signed in."""
    request.session[SESSIONS_EPOCH_KEY] = result.sessions_epoch


# --- Password reset -----------------------------------------------------------------------------------


def password_reset_limited(request: HttpRequest, email: str) -> bool:
    """Whether this request goes over the reset limits: per address (so nobody's inbox is flooded)
    and per client address (so addresses cannot be tried in bulk). Counts the request.

    The counts live in the cache. While it is unreachable they cannot be kept, and the request is
    refused (django-ratelimit with `RATELIMIT_FAIL_OPEN = False`): these limits guard other people's
    inboxes and the account list, and a reset can wait for Redis. Sign-in itself does not depend on
    the cache: its lock-out is django-axes' database handler."""
    by_address = is_ratelimited(
        request,
        group="kaemdr.password_reset.email",
        key=lambda _group, _request: email.strip().lower(),
        rate=settings.KAEMDR_PASSWORD_RESET_RATE_PER_EMAIL,
        increment=True,
    )
    by_client = is_ratelimited(
        request,
        group="kaemdr.password_reset.ip",
        key="ip",
        rate=settings.KAEMDR_PASSWORD_RESET_RATE_PER_IP,
        increment=True,
    )
    return bool(by_address or by_client)


@transaction.atomic
def password_reset_request(*, email: str) -> None:
    """Email a link to choose a new password when the address is an active account's (one that has
    set a password: an invited member of staff follows their invitation). Says nothing about
    whether it was: the email goes out from a Celery task after commit, so the answer takes as
    long either way. The email is an outbox row written with the audit event (`kaemdr.outbox`): a
    broker that is down delays it, never loses it. Each request is an email of its own (the limits
    of `password_reset_limited` bound them)."""
    user = (
        User.objects.select_related("clinic")
        .filter(email__iexact=email.strip(), is_active=True)
        .exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .first()
    )
    if user is None:
        return
    _audit(None, AccountAuditAction.PASSWORD_RESET_REQUESTED, user)
    outbox.enqueue(task_names.PASSWORD_RESET_SEND, str(user.public_id), coalesce=False)


def invitation_link(user: User) -> str:
    """The absolute link to the set-password page that lets its user choose a password: the one an
    invitation (`kaemdr.services.staff_invitation_send`) and a password reset both email. Valid once,
    for `PASSWORD_RESET_TIMEOUT` (Django's token generator)."""
    uidb64 = urlsafe_base64_encode(force_bytes(str(user.public_id)))
    token = default_token_generator.make_token(user)
    path = reverse("password_set", kwargs={"uidb64": uidb64, "token": token})
    return f"{settings.KAEMDR_BASE_URL.rstrip('/')}{path}"


def password_reset_send(*, user: User) -> bool:
    """Email the link to choose a new password (valid once, for `PASSWORD_RESET_TIMEOUT`). False
    when the account can no longer use it (deactivated meanwhile)."""
    if not user.is_active:
        return False
    clinic_name = user.clinic.name if user.clinic_id and user.clinic else "kaemdr"
    body = render_to_string(
        "emails/password_reset.txt",
        {"user": user, "clinic_name": clinic_name, "link": invitation_link(user)},
    )
    send_mail(
        subject=f"Choose a new kaemdr password ({clinic_name})",
        message=body,
        from_email=None,
        recipient_list=[user.email],
    )
    return True


def password_set(*, user: User) -> None:
    """After a new password is chosen from an emailed link: revoke the API tokens (Django's session
    hash already ends the other sessions) and audit it."""
    AuthToken.objects.filter(user=user).delete()
    _audit(user, AccountAuditAction.PASSWORD_SET, user)


# --- API tokens ---------------------------------------------------------------------------------------


def api_token_issue(*, user: User) -> tuple[AuthToken, str]:
    """A new API token for a user who has passed sign-in (and its second factor): the token row, and
    the secret, shown once. At most `KAEMDR_API_TOKENS_PER_USER`: the oldest goes first."""
    live = list(AuthToken.objects.filter(user=user).order_by("-created").values_list("digest", flat=True))
    surplus = live[settings.KAEMDR_API_TOKENS_PER_USER - 1 :]
    if surplus:
        AuthToken.objects.filter(digest__in=surplus).delete()
    token, secret = AuthToken.objects.create(user=user)
    _audit(user, AccountAuditAction.TOKEN_ISSUED, user, token=token.token_key[:8])
    return token, secret


def api_tokens_for(user: User) -> list[AuthToken]:
    """The user's unexpired API tokens, newest first."""
    return list(
        AuthToken.objects.filter(user=user)
        .exclude(expiry__lt=timezone.now())
        .order_by("-created")
        .only("digest", "token_key", "created", "expiry", "user_id")
    )


def api_token_revoke(*, actor: User, token_key: str) -> None:
    """Revoke one of the actor's own tokens, named by its visible prefix. Another user's token, or
    none, is not found."""
    deleted, _ = AuthToken.objects.filter(user=actor, token_key=token_key).delete()
    if not deleted:
        raise NotFoundOrForbidden()
    _audit(actor, AccountAuditAction.TOKEN_REVOKED, actor, token=token_key[:8])
