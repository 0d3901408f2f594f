"""Signal receivers (connected in `KaemdrConfig.ready`): sign-in and sign-out, stamped and audited;
and no NUL character written to the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db.backends.base.base import BaseDatabaseWrapper
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


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


def refuse_nul_characters(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """A database execute wrapper: refuse a NUL character in any query's parameters as bad input.
    PostgreSQL cannot store or compare one and would fail the request. Forms and the API refuse it
    at the field already; this holds for every other caller of a service (a lookup before a write
    included), before the query runs, so the transaction stays usable."""
    if many and params is not None:
        params = list(params)
    if params and _has_nul(params):
        raise ValidationError("Remove the NUL character from the text.", code="null_characters")
    return execute(sql, params, many, context)


def on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if refuse_nul_characters not in connection.execute_wrappers:
        connection.execute_wrappers.append(refuse_nul_characters)
