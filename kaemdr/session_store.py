"""The session engine (`SESSION_ENGINE`): database sessions whose read brings the signed-in user and
their clinic in the same statement.

A signed-in request used to cost three round trips to PostgreSQL before its view ran: Django's
connection health check (`SELECT 1`), the session row, then the user row with their clinic. The
health check is gone (`kaemdr.signals.drop_closed_connections`); this module folds the other two into
one. Each session row carries the id of the user signed in to it (`kaemdr.models.UserSession.user`,
written from the session's data at every save), so `load` joins the user and clinic rows to the
session row, by primary keys, with a statement built once per process (no ORM query compiled per
request). `kaemdr.backends.ClinicModelBackend.get_user` then takes the user read with this request's
session (`user_read_with_session`) rather than asking again.

Why not the cache? Sessions live in the database only (issue 19) so that a sign-out, a deactivation
or a change a cache missed while Redis was down can never be served once it is back. A user kept in
the cache would have to be checked against the database on every request to keep that promise, and
that check is the round trip the cache was to save. Read in the session's own statement, the user
costs no round trip at all and is always the committed row: a deactivation, a role or clinic change,
"sign out everywhere", a two-factor reset and a password change are all seen by the very next
request, whatever the cache is doing, with nothing to invalidate.

Everything else is Django's database session engine: the writes, expiry, `clearsessions`, and what
`django.contrib.auth` checks of the session (the user named in its signed data, its backend, the
password-derived hash).
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import itertools
import re
import weakref
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import SessionBase
from django.db import connections
from django.db import router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.utils import timezone

from .models import Clinic
from .models import User
from .models import UserSession

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


@dataclass(frozen=True)
class _Columns:
    """A model's concrete fields as columns of a statement, with the converters the ORM applies to
    each value read (a UUID or a date stored as text on SQLite; none on PostgreSQL)."""

    model: type[Model]
    names: list[str]
    columns: list[str]
    converters: list[tuple[int, list[Converter], Any]]

    @classmethod
    def of(cls, model: type[Model], alias: str, connection: BaseDatabaseWrapper) -> _Columns:
        converters = []
        for index, field in enumerate(model._meta.concrete_fields):
            column = field.get_col(alias)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                converters.append((index, found, column))
        fields = model._meta.concrete_fields
        return cls(
            model=model,
            names=[field.attname for field in fields],
            columns=[str(field.column) for field in fields],
            converters=converters,
        )

    def select(self, alias: str, connection: BaseDatabaseWrapper) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{quote(alias)}.{quote(column)}" for column in self.columns)

    def build(self, values: Sequence[Any], using: str, connection: BaseDatabaseWrapper) -> Model:
        row = list(values)
        for index, converters, column in self.converters:
            for converter in converters:
                row[index] = converter(row[index], column, connection)
        return self.model.from_db(using, self.names, row)


@dataclass(frozen=True)
class _Statements:
    """The two reads of a user with their clinic, built once per database: with a session (by its
    key) and alone (by the user's id)."""

    user: _Columns
    clinic: _Columns
    with_session: str
    alone: str

    def build(self, row: Sequence[Any], using: str, connection: BaseDatabaseWrapper) -> User | None:
        """The user (with their clinic) from the user and clinic columns of a row; None when the
        user's are null (there is no such user)."""
        if row[0] is None:
            return None
        width = len(self.user.names)
        user = self.user.build(row[:width], using, connection)
        assert isinstance(user, User)
        clinic = None if row[width] is None else self.clinic.build(row[width:], using, connection)
        User.clinic.field.set_cached_value(user, clinic)  # as `select_related("clinic")` does
        return user


_statements: dict[tuple[str, str], _Statements] = {}

# The statements this process has had PostgreSQL prepare, by database connection (gone with it).
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


@functools.cache
def _prepare(sql: str) -> tuple[str, str]:
    """A name for `sql` (`%s` placeholders) as a prepared statement, and the statement preparing it."""
    table = re.search(r'FROM "(\w+)"', sql)
    digest = hashlib.sha256(sql.encode()).hexdigest()[:12]
    name = f"kaemdr_select__{table.group(1) if table else 'read'}__{digest}"
    numbers = itertools.count(1)
    return name, f"PREPARE {name} AS " + re.sub("%s", lambda _: f"${next(numbers)}", sql)


def _execute(cursor: Any, connection: BaseDatabaseWrapper, sql: str, values: list[Any]) -> None:
    """Run `sql` (`%s` placeholders) with `values`. On PostgreSQL, as a statement prepared once per
    connection (PREPARE, then EXECUTE): PostgreSQL took longer to plan the three-table read than to
    run it (0.6 ms against 0.2 ms in `EXPLAIN ANALYZE`), on every signed-in request. The name
    starts `kaemdr_select__`: the audit guard's writes start otherwise (`tests/audit_guard.py`).

    Not where `DISABLE_SERVER_SIDE_CURSORS` says a transaction-pooling bouncer stands between the
    app and PostgreSQL (a statement prepared on one server connection may be run on another), nor on
    SQLite; as `integration.services._execute_planned_once` does for its writes."""
    if connection.vendor != "postgresql" or connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        cursor.execute(sql, values)
        return
    name, prepare = _prepare(sql)
    prepared = _prepared.setdefault(connection.connection, set())
    if name not in prepared:
        cursor.execute(prepare)  # not undone by a rollback: it lasts as long as the connection
        prepared.add(name)
    cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(values))})", values)


def _statements_for(using: str, connection: BaseDatabaseWrapper) -> _Statements:
    key = (using, connection.vendor)
    statements = _statements.get(key)
    if statements is None:
        q = connection.ops.quote_name
        user, clinic = _Columns.of(User, "u", connection), _Columns.of(Clinic, "c", connection)
        columns = f"{user.select('u', connection)}, {clinic.select('c', connection)}"
        clinic_join = (
            f" LEFT OUTER JOIN {q(Clinic._meta.db_table)} {q('c')}"
            f" ON {q('c')}.{q('id')} = {q('u')}.{q(User._meta.get_field('clinic').column)}"
        )
        session = UserSession._meta
        with_session = (
            # Names from the models' own metadata, quoted; the values are parameters.
            f"SELECT {q('s')}.{q('session_data')}, {columns} FROM {q(session.db_table)} {q('s')}"  # noqa: S608  # nosec B608
            f" LEFT OUTER JOIN {q(User._meta.db_table)} {q('u')}"
            f" ON {q('u')}.{q('id')} = {q('s')}.{q(session.get_field('user').column)}{clinic_join}"
            f" WHERE {q('s')}.{q('session_key')} = %s AND {q('s')}.{q('expire_date')} > %s"
        )
        alone = (
            f"SELECT {columns} FROM {q(User._meta.db_table)} {q('u')}{clinic_join}"  # noqa: S608  # nosec B608
            f" WHERE {q('u')}.{q('id')} = %s"
        )
        statements = _statements[key] = _Statements(user, clinic, with_session, alone)
    return statements


def user_with_clinic(user_id: int) -> User | None:
    """The user with this primary key and their clinic, as `User.objects.select_related("clinic")`
    would load them (None when there is no such user): for a request whose session did not bring
    its user (`user_read_with_session`)."""
    using = router.db_for_read(User)
    connection = connections[using]
    statements = _statements_for(using, connection)
    with connection.cursor() as cursor:
        _execute(cursor, connection, statements.alone, [user_id])
        row = cursor.fetchone()
    return None if row is None else statements.build(row, using, connection)


class SessionStore(db.SessionStore):
    """`django.contrib.sessions.backends.db.SessionStore` on `kaemdr.models.UserSession`, whose `load`
    also reads the signed-in user and their clinic (`loaded_user`)."""

    loaded_user: User | None = None
    """The user the session row named when it was loaded, with their clinic, read in the same
    statement; None when it named none (or no longer exists). Not trusted alone: Django's `get_user`
    still checks it against the session's signed data (`user_read_with_session`)."""

    @classmethod
    def get_model_class(cls) -> type[UserSession]:
        return UserSession

    def create_model_instance(self, data: dict[str, Any]) -> UserSession:
        session = super().create_model_instance(data)
        assert isinstance(session, UserSession)
        try:
            session.user_id = int(data[SESSION_KEY])
        except (KeyError, TypeError, ValueError):
            session.user_id = None
        return session

    def load(self) -> dict[str, Any]:
        self.loaded_user = None
        if self.session_key is None:
            return {}
        using = router.db_for_read(self.model)
        connection = connections[using]
        statements = _statements_for(using, connection)
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            _execute(cursor, connection, statements.with_session, [self.session_key, now])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None  # as Django's store does: a save makes a new session
            return {}
        self.loaded_user = statements.build(row[1:], using, connection)
        return self.decode(row[0])


_reading: contextvars.ContextVar[SessionBase | None] = contextvars.ContextVar(
    "kaemdr_reading_session", default=None
)


@contextmanager
def reading_user_of(session: SessionBase) -> Iterator[None]:
    """While Django finds the user of this request's session (`kaemdr.middleware.AuthenticationMiddleware`),
    let the authentication backend take the user read with it."""
    token = _reading.set(session)
    try:
        yield
    finally:
        _reading.reset(token)


def user_read_with_session(user_id: Any) -> User | None:
    """The user read with the session being read (`reading_user_of`) when it is the one `user_id`
    names (the session's signed data), else None: outside such a read, when the row named no user or
    one that no longer exists, the caller asks the database (`user_with_clinic`)."""
    session = _reading.get()
    user = session.loaded_user if isinstance(session, SessionStore) else None
    return user if user is not None and str(user.pk) == str(user_id) else None
