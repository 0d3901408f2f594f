"""Nothing can empty or change the audit log (issue 19).

The app connects in production as a role that owns nothing (`manage.py db_roles`): on the audit
table it may read and add, and every way of changing, deleting or truncating events, or of getting
past the triggers that stop the owner doing so, is refused to it. The owner itself is stopped by
the triggers of kaemdr 0002 (UPDATE, DELETE) and 0006 (TRUNCATE).

Roles belong to the whole PostgreSQL cluster, not to the test database: each test makes a role of
its own, with a name no other run uses, and drops it afterwards.
"""

from __future__ import annotations

import io
import secrets
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.errors
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS
from django.db import DatabaseError
from django.db import connection
from django.db import connections
from django.db import transaction

from kaemdr import db_roles
from kaemdr.audit import audit_record
from kaemdr.db_roles import quote
from kaemdr.models import AuditEvent
from pathways.models import Patient

from ..conftest import require_postgres
from ..factories import PatientFactory

AUDIT = "kaemdr_auditevent"
INSERT_EVENT = (
    f"INSERT INTO {AUDIT} (public_id, occurred_at, actor_label, action, target_type, request_id, data) "
    "VALUES (%s, now(), '', 'test.app_role', 'test', '', '{}') RETURNING id"
)


@dataclass
class AppRole:
    name: str
    password: str
    connect: Callable[[], Any]


@pytest.fixture
def app_role(transactional_db: None) -> Iterator[AppRole]:
    """The app's role, made by `manage.py db_roles` in the test database and committed (a second
    connection logs in as it), with `connect()` for autocommit connections as that role."""
    require_postgres()
    name = f"kaemdr_test_app_{uuid.uuid4().hex[:12]}"
    password = secrets.token_urlsafe(18)
    opened: list[Any] = []
    settings_dict = connection.settings_dict

    def connect() -> Any:
        conn = psycopg2.connect(
            dbname=settings_dict["NAME"],
            host=settings_dict.get("HOST") or "127.0.0.1",
            port=settings_dict.get("PORT") or 5432,
            user=name,
            password=password,
        )
        conn.autocommit = True
        opened.append(conn)
        return conn

    call_command("db_roles", role=name, password=password, stdout=io.StringIO())
    try:
        yield AppRole(name=name, password=password, connect=connect)
    finally:
        for conn in opened:
            conn.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {quote(name)}")
            cursor.execute(f"DROP ROLE {quote(name)}")


def committed_event() -> AuditEvent:
    return audit_record(actor=None, action="test.committed", target_type="test")


def acl_state(role: str) -> tuple[Any, ...]:
    """The role's attributes, the privileges on the audit table and the default privileges."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = %s",
            [role],
        )
        attributes = cursor.fetchone()
        cursor.execute("SELECT relacl::text[] FROM pg_class WHERE oid = to_regclass(%s)", [AUDIT])
        audit_acl = sorted(cursor.fetchone()[0])
        cursor.execute(
            "SELECT defaclobjtype, defaclacl::text[] FROM pg_default_acl ORDER BY defaclobjtype, defaclrole"
        )
        defaults = [(kind, sorted(acl)) for kind, acl in cursor.fetchall()]
    return attributes, audit_acl, defaults


def test_the_app_role_reads_and_adds_audit_events(app_role: AppRole) -> None:
    earlier = committed_event()
    public_id = uuid.uuid4()
    with app_role.connect().cursor() as cursor:
        cursor.execute(INSERT_EVENT, [str(public_id)])
        cursor.execute(f"SELECT action FROM {AUDIT} WHERE public_id = %s", [str(earlier.public_id)])
        assert cursor.fetchone() == ("test.committed",)
    assert AuditEvent.objects.filter(public_id=public_id, action="test.app_role").exists()
    assert db_roles.problems(app_role.name) == []


REFUSED = {
    "update": f"UPDATE {AUDIT} SET action = 'changed'",
    "delete": f"DELETE FROM {AUDIT}",
    "truncate": f"TRUNCATE {AUDIT}",
    "truncate-cascade": f"TRUNCATE {AUDIT} CASCADE",
    "disable-trigger": f"ALTER TABLE {AUDIT} DISABLE TRIGGER kaemdr_audit_event_no_truncate",
    "disable-all-triggers": f"ALTER TABLE {AUDIT} DISABLE TRIGGER ALL",
    "drop-trigger": f"DROP TRIGGER kaemdr_audit_event_no_update_or_delete ON {AUDIT}",
    "replace-trigger-function": (
        "CREATE OR REPLACE FUNCTION kaemdr_audit_event_immutable() RETURNS trigger AS "
        "$$ BEGIN RETURN OLD; END; $$ LANGUAGE plpgsql"
    ),
    "skip-triggers-as-replica": "SET session_replication_role = replica",
    "rename-table": f"ALTER TABLE {AUDIT} RENAME TO kaemdr_auditevent_old",
    "drop-table": f"DROP TABLE {AUDIT}",
    "create-table": "CREATE TABLE kaemdr_not_the_app_s (id int)",
}


@pytest.mark.parametrize("statement", REFUSED.values(), ids=REFUSED.keys())
def test_the_app_role_cannot_change_empty_or_unprotect_the_audit_table(
    app_role: AppRole, statement: str
) -> None:
    event = committed_event()
    with app_role.connect().cursor() as cursor, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cursor.execute(statement)
    assert AuditEvent.objects.filter(public_id=event.public_id, action="test.committed").exists()
    assert db_roles.problems(app_role.name) == []


def test_the_app_role_writes_the_app_s_other_tables(app_role: AppRole) -> None:
    patient = PatientFactory(phone="01632 960000")
    with app_role.connect().cursor() as cursor:
        cursor.execute(
            f"UPDATE {Patient._meta.db_table} SET phone = %s WHERE id = %s", ["01632 960123", patient.pk]
        )
        assert cursor.rowcount == 1
    patient.refresh_from_db()
    assert patient.phone == "01632 960123"


def test_the_role_command_is_idempotent_and_later_tables_are_granted(app_role: AppRole) -> None:
    before = acl_state(app_role.name)
    output = io.StringIO()
    call_command("db_roles", role=app_role.name, password=app_role.password, stdout=output)
    call_command("db_roles", role=app_role.name, stdout=output)  # no password: left as it is
    assert acl_state(app_role.name) == before
    assert "updated the role" in output.getvalue()
    assert db_roles.problems(app_role.name) == []

    # A later migration's table, created by the owner: the default privileges grant it to the app.
    table = f"kaemdr_test_later_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text)"
        )
    try:
        with app_role.connect().cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} (note) VALUES ('added') RETURNING id")
            (row_id,) = cursor.fetchone()
            cursor.execute(f"UPDATE {table} SET note = 'changed' WHERE id = %s", [row_id])
            cursor.execute(f"SELECT note FROM {table}")
            assert cursor.fetchall() == [("changed",)]
            cursor.execute(f"DELETE FROM {table}")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(f"TRUNCATE {table}")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(f"DROP TABLE {table}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")


def test_the_role_command_migrates_and_grants_as_the_owner_s_own_url(
    app_role: AppRole, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`db_roles --migrate` with DATABASE_OWNER_URL: a connection of the owner's own stands in for the
    app's while the migrations and grants run, and the app's is back afterwards."""
    app_connection = connections[DEFAULT_DB_ALIAS]
    opened: list[Any] = []
    connection_to = db_roles.connection_to

    def recording_connection_to(database: Any) -> Any:
        opened.append(database)
        return connection_to(database)

    monkeypatch.setattr(db_roles, "connection_to", recording_connection_to)
    params = connection.settings_dict
    settings.DATABASE_OWNER_URL = (
        f"postgres://{params['USER']}@{params.get('HOST') or '127.0.0.1'}:{params.get('PORT') or 5432}/"
        f"{params['NAME']}"
    )
    output = io.StringIO()
    call_command("db_roles", "--migrate", role=app_role.name, password=app_role.password, stdout=output)
    assert "No migrations to apply" in output.getvalue()
    assert "checked:" in output.getvalue()
    assert [database["NAME"] for database in opened] == [params["NAME"]]
    assert connections[DEFAULT_DB_ALIAS] is app_connection
    assert db_roles.problems(app_role.name) == []


def test_the_role_command_refuses_a_role_that_could_act_as_the_owner(app_role: AppRole) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (owner,) = cursor.fetchone()
    with pytest.raises(CommandError, match="would be the owner"):
        call_command("db_roles", role=owner, stdout=io.StringIO())

    before = acl_state(app_role.name)
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT {quote(owner)} TO {quote(app_role.name)}")
    try:
        assert any("member of the owner" in problem for problem in db_roles.problems(app_role.name))
        with pytest.raises(CommandError, match="member of the owner"):
            call_command("db_roles", role=app_role.name, stdout=io.StringIO())
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REVOKE {quote(owner)} FROM {quote(app_role.name)}")
    assert acl_state(app_role.name) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        f"TRUNCATE {AUDIT}",
        f"TRUNCATE {AUDIT}, kaemdr_clinic CASCADE",
        f"UPDATE {AUDIT} SET action = 'x'",
        f"DELETE FROM {AUDIT}",
    ],
    ids=["truncate", "truncate-with-others", "update", "delete"],
)
def test_not_even_the_owner_can_change_or_empty_the_audit_table(statement: str) -> None:
    require_postgres()
    event = committed_event()
    with (
        pytest.raises(DatabaseError, match="audit events are append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.filter(public_id=event.public_id).exists()


def test_the_owner_is_named_by_its_own_url() -> None:
    app = {
        "ENGINE": db_roles.POSTGRESQL,
        "NAME": "kaemdr",
        "USER": "kaemdr_app",
        "PASSWORD": "app-secret",
        "HOST": "db",
        "PORT": 5432,
        "OPTIONS": {"sslmode": "require"},
    }
    owner = db_roles.owner_database(app, "postgres://kaemdr:owner-secret@db:5432/kaemdr")
    assert owner is not None
    assert (owner["USER"], owner["PASSWORD"], owner["NAME"]) == ("kaemdr", "owner-secret", "kaemdr")
    assert owner["OPTIONS"] == {"sslmode": "require"}
    assert db_roles.owner_database(app, "") is None
    with pytest.raises(db_roles.RoleError, match="same one"):
        db_roles.owner_database(app, "postgres://kaemdr:owner-secret@db:5432/elsewhere")

    # With an owner's URL, DATABASE_URL is the app's: its user and password are the role's.
    owner_url = "postgres://kaemdr:owner-secret@db:5432/kaemdr"
    assert db_roles.app_role_from_settings(role=None, password=None, app=app, owner_url=owner_url) == (
        "kaemdr_app",
        "app-secret",
    )
    assert db_roles.app_role_from_settings(role="other", password=None, app=app, owner_url=owner_url) == (
        "other",
        None,
    )
    with pytest.raises(db_roles.RoleError, match="--role"):
        db_roles.app_role_from_settings(role=None, password=None, app=app, owner_url="")
    with pytest.raises(db_roles.RoleError, match="not a role name"):
        db_roles.app_role_from_settings(role='x"; DROP ROLE y; --', password=None, app=app, owner_url="")
