"""Sign-in and sign-out, stamped and audited (connected in `KaemdrConfig.ready`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import User


def on_signed_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    from .accounts import session_started

    if request is not None and hasattr(request, "session"):
        session_started(request, user)


def on_signed_out(sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any) -> None:
    from .accounts import AccountAuditAction
    from .audit import audit_record

    if user is None:
        return
    audit_record(
        actor=user,
        action=AccountAuditAction.SIGNED_OUT,
        target_type="kaemdr.User",
        target_public_id=user.public_id,
    )
