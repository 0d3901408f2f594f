"""Signal receivers (connected in `KaemdrConfig.ready`): sign-in and sign-out, stamped and audited;
no NUL character written to the database; and no request on a database connection the server has
closed."""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections
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


def _server_spoke(raw: Any) -> bool:
    """Whether the server has sent anything on this idle connection's socket: what a PostgreSQL
    server sends an idle client before closing its connection (a restart, `pg_terminate_backend`, an
    idle timeout: an error message, then the end of the stream). A connection with no socket
    (SQLite) never has. A server that vanished without a word (its host cut off) is not seen here,
    nor quickly by Django's `SELECT 1`, which waits on it as long as the first query would."""
    fileno = getattr(raw, "fileno", None)
    if fileno is None:
        return False
    if not hasattr(select, "poll"):  # pragma: no cover - Windows has no poll()
        readable, _, failed = select.select([fileno()], [], [fileno()], 0)
        return bool(readable or failed)
    poller = select.poll()
    poller.register(fileno(), select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def drop_closed_connections(**kwargs: Any) -> None:
    """At the start of a request, close each persistent database connection the server has closed,
    so that the request connects afresh rather than failing on its first query.

    This stands in for Django's `CONN_HEALTH_CHECKS` (off in `kaemdr.settings.base`), which sends
    `SELECT 1` before the first query of every request: a round trip on every signed-in request to
    learn what the socket already says. A server that closes a connection tells the client first, so
    an idle connection whose socket has nothing to read is as alive as the check would find it; one
    with something to read gets Django's own check (`is_usable`), and is closed if it fails (news on
    a live connection, such as a notice, costs that one check). Runs after Django's
    `close_old_connections`, which still drops connections past `CONN_MAX_AGE` or after an error."""
    for connection in connections.all(initialized_only=True):
        raw = connection.connection
        if raw is None or connection.in_atomic_block:
            continue
        if _server_spoke(raw) and not connection.is_usable():
            connection.close()
