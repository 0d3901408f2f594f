"""The app's PostgreSQL role: it reads and writes the app's tables, only reads and adds audit events,
and owns nothing.

Production runs with two roles. The owner runs the migrations and owns every table, function and
trigger. The app (web, worker, beat) connects as a second role that owns nothing: on the audit table
it holds SELECT and INSERT only, so UPDATE, DELETE and TRUNCATE are refused before any trigger is
reached, and, not being the owner, it can neither switch the table's triggers off, nor replace
their function, nor drop the table. The triggers (kaemdr 0002 and 0006) stop the owner from
changing or emptying the log too.

`grant_app_role` creates or updates that role and its privileges, then checks the result. It is
idempotent and runs as the owner after every `migrate` (`manage.py db_roles --migrate` does both):
tables later migrations create are granted by the owner's default privileges meanwhile, and the
next run puts the audit table back to read-and-insert should a migration have recreated it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import environ
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db import connections
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from .backups import connection_to
from .models import AuditEvent

DatabaseSettings = Mapping[str, Any]

POSTGRESQL = "django.db.backends.postgresql"
AUDIT_TABLE: str = AuditEvent._meta.db_table
# The app reads these and never writes them.
READ_ONLY_TABLES = ("django_migrations",)
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
# The migrations' triggers that keep audit events from being changed, deleted or truncated.
AUDIT_TRIGGERS = ("kaemdr_audit_event_no_update_or_delete", "kaemdr_audit_event_no_truncate")
ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# The attributes the app's role must not have (pg_roles columns).
FORBIDDEN_ATTRIBUTES = {
    "rolsuper": "SUPERUSER",
    "rolcreatedb": "CREATEDB",
    "rolcreaterole": "CREATEROLE",
    "rolreplication": "REPLICATION",
    "rolbypassrls": "BYPASSRLS",
}
ROLE_QUERY = (
    "SELECT oid, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles "
    "WHERE rolname = %s"
)


class RoleError(Exception):
    """The app's role could not be set up as asked; the message says why and what to do."""


def quote(identifier: str) -> str:
    """`identifier` quoted for PostgreSQL (doubling any double quote inside)."""
    return '"' + identifier.replace('"', '""') + '"'


def owner_database(
    app: DatabaseSettings | None = None, owner_url: str | None = None
) -> DatabaseSettings | None:
    """The owner's connection settings (`DATABASE_OWNER_URL`), or None when that is unset and the
    configured connection is the owner's (the embedded default, development and the tests).

    The owner's URL must name the same database as `DATABASE_URL`; the other settings (options,
    time zone) are the app's."""
    app = settings.DATABASES[DEFAULT_DB_ALIAS] if app is None else app
    owner_url = settings.DATABASE_OWNER_URL if owner_url is None else owner_url
    if not owner_url:
        return None
    owner = environ.Env.db_url_config(owner_url)
    if owner["ENGINE"] != POSTGRESQL or app["ENGINE"] != POSTGRESQL:
        raise RoleError("DATABASE_OWNER_URL and DATABASE_URL must both name a PostgreSQL database.")
    if owner.get("NAME") != app.get("NAME"):
        raise RoleError(
            f"DATABASE_OWNER_URL names the database {owner.get('NAME')!r} and DATABASE_URL "
            f"{app.get('NAME')!r}: they must name the same one."
        )
    merged = copy.deepcopy(dict(app))
    merged.update({key: owner.get(key, "") for key in ("USER", "PASSWORD", "HOST", "PORT")})
    merged["OPTIONS"] = {**merged.get("OPTIONS", {}), **owner.get("OPTIONS", {})}
    merged["CONN_MAX_AGE"] = 0
    return merged


def app_role_from_settings(
    *,
    role: str | None,
    password: str | None,
    app: DatabaseSettings | None = None,
    owner_url: str | None = None,
) -> tuple[str, str | None]:
    """The app's role and its password: `role` when given, else the user of `DATABASE_URL` when
    `DATABASE_OWNER_URL` is set (so `DATABASE_URL` is the app's); the password is `password` when
    given, else `DATABASE_URL`'s when the role is its user there, else None (left as it is)."""
    app = settings.DATABASES[DEFAULT_DB_ALIAS] if app is None else app
    owner_url = settings.DATABASE_OWNER_URL if owner_url is None else owner_url
    if role is None:
        if not owner_url:
            raise RoleError(
                "Name the app's role: set DATABASE_OWNER_URL (the owner) beside DATABASE_URL (the app's "
                "role), or pass --role."
            )
        role = str(app.get("USER") or "")
    if password is None and owner_url and role == app.get("USER"):
        password = str(app.get("PASSWORD") or "") or None
    if not ROLE_NAME.fullmatch(role):
        raise RoleError(
            f"{role!r} is not a role name this command makes (letters, digits and _, at most 63)."
        )
    return role, password


@contextmanager
def connected_as_owner() -> Iterator[BaseDatabaseWrapper]:
    """The owner's connection standing in as the default one while the block runs (so that
    `migrate` and the grants run as the owner), or the default connection itself when
    `DATABASE_OWNER_URL` is unset."""
    owner = owner_database()
    if owner is None:
        yield connections[DEFAULT_DB_ALIAS]
        return
    with connection_to(owner) as wrapper:
        app_connection = connections[DEFAULT_DB_ALIAS]
        connections[DEFAULT_DB_ALIAS] = wrapper
        try:
            yield wrapper
        finally:
            connections[DEFAULT_DB_ALIAS] = app_connection


def grant_app_role(role: str, password: str | None = None, *, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Create or update the app's role `role` through the connection `using` (the owner's), in one
    transaction, and check the result. Returns what was done, one line each; raises RoleError (and
    changes nothing) when the role would not be what it must be."""
    wrapper = connections[using]
    if wrapper.vendor != "postgresql":
        raise RoleError("Database roles are PostgreSQL's: the embedded SQLite default has none.")
    if not ROLE_NAME.fullmatch(role):
        raise RoleError(
            f"{role!r} is not a role name this command makes (letters, digits and _, at most 63)."
        )
    done: list[str] = []
    with transaction.atomic(using=using), wrapper.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, current_database(), n.nspname, pg_get_userbyid(c.relowner) "
            "FROM (SELECT to_regclass(%s) AS oid) a LEFT JOIN pg_class c ON c.oid = a.oid "
            "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace",
            [AUDIT_TABLE],
        )
        current_user, database, schema, owner = cursor.fetchone()
        if owner is None:
            raise RoleError(f"There is no {AUDIT_TABLE} table in {database}: run the migrations first.")
        if role in (current_user, owner):
            raise RoleError(
                f"The app's role {role!r} would be the owner: the app must connect as a role of its own "
                "(DATABASE_URL), the migrations as the owner (DATABASE_OWNER_URL)."
            )
        cursor.execute(ROLE_QUERY, [role])
        existing = cursor.fetchone()
        verifier = _password_verifier(wrapper, role, password)
        password_clause = " PASSWORD %s" if verifier else ""
        params = [verifier] if verifier else []
        if existing is None:
            cursor.execute(
                f"CREATE ROLE {quote(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                f"NOBYPASSRLS{password_clause}",
                params,
            )
            done.append(f"created the role {role}")
        else:
            # Naming SUPERUSER, REPLICATION or BYPASSRLS at all takes a superuser: only when they are set.
            held = dict(zip(FORBIDDEN_ATTRIBUTES.values(), existing[1:], strict=True))
            strip = [f"NO{word}" for word in ("SUPERUSER", "REPLICATION", "BYPASSRLS") if held[word]]
            cursor.execute(
                f"ALTER ROLE {quote(role)} {' '.join(['LOGIN', 'NOCREATEDB', 'NOCREATEROLE', *strip])}"
                f"{password_clause}",
                params,
            )
            done.append(f"updated the role {role}" + (" (and its password)" if verifier else ""))
        r, s, o = quote(role), quote(schema), quote(owner)
        audit = f"{s}.{quote(AUDIT_TABLE)}"
        for statement in (
            f"GRANT CONNECT ON DATABASE {quote(database)} TO {r}",
            f"GRANT USAGE ON SCHEMA {s} TO {r}",
            f"REVOKE CREATE ON SCHEMA {s} FROM {r}",
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
            f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {s} TO {r}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
            f"REVOKE ALL ON {audit} FROM {r}, PUBLIC",
            f"GRANT SELECT, INSERT ON {audit} TO {r}",
            *(
                f"REVOKE ALL ON {s}.{quote(table)} FROM {r}; GRANT SELECT ON {s}.{quote(table)} TO {r}"
                for table in READ_ONLY_TABLES
            ),
            # Tables and sequences the owner's later migrations create are the app's to use too.
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} GRANT {TABLE_PRIVILEGES} ON TABLES TO {r}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {r}",
        ):
            cursor.execute(statement)
        done.append(
            f"granted {TABLE_PRIVILEGES} on every table in {schema} (and on the tables {owner} creates "
            f"later), SELECT and INSERT only on {AUDIT_TABLE}, SELECT only on {', '.join(READ_ONLY_TABLES)}"
        )
        found = problems(role, using=using)
        if found:
            raise RoleError(f"The role {role} is not what the app's role must be: " + "; ".join(found) + ".")
        done.append(f"checked: {role} owns nothing and cannot change, delete or truncate audit events")
    return done


def problems(role: str, *, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """What is wrong with `role` as the app's role in this database (nothing, when all is well)."""
    found: list[str] = []
    with connections[using].cursor() as cursor:
        cursor.execute(ROLE_QUERY, [role])
        row = cursor.fetchone()
        if row is None:
            return [f"there is no role {role}"]
        oid, *attributes = row
        found += [
            f"it has {word}" for word, on in zip(FORBIDDEN_ATTRIBUTES.values(), attributes, strict=True) if on
        ]
        # Ownership anywhere in the cluster (tables, functions, schemas, databases): pg_shdepend's 'o'.
        cursor.execute("SELECT count(*) FROM pg_shdepend WHERE refobjid = %s AND deptype = 'o'", [oid])
        owned = cursor.fetchone()[0]
        if owned:
            found.append(f"it owns {owned} object(s)")
        cursor.execute(
            "SELECT c.relnamespace, pg_get_userbyid(c.relowner), pg_has_role(%s, c.relowner, 'MEMBER') "
            "FROM pg_class c WHERE c.oid = to_regclass(%s)",
            [role, AUDIT_TABLE],
        )
        audit_row = cursor.fetchone()
        if audit_row is None:
            return [*found, f"there is no {AUDIT_TABLE} table"]
        schema, owner, member_of_owner = audit_row
        if member_of_owner:
            found.append(f"it is a member of the owner {owner}, and so may do what the owner may")
        cursor.execute(
            "SELECT has_schema_privilege(%s, %s::oid, 'CREATE'), "
            "has_table_privilege(%s, %s, 'SELECT'), has_table_privilege(%s, %s, 'INSERT'), "
            "has_any_column_privilege(%s, %s, 'UPDATE'), has_table_privilege(%s, %s, 'DELETE'), "
            "has_table_privilege(%s, %s, 'TRUNCATE'), has_table_privilege(%s, %s, 'TRIGGER'), "
            "has_any_column_privilege(%s, %s, 'REFERENCES')",
            [role, schema, *([role, AUDIT_TABLE] * 7)],
        )
        create, select, insert, *changes = cursor.fetchone()
        if create:
            found.append("it may create objects in the schema")
        if not (select and insert):
            found.append(f"it may not read and add to {AUDIT_TABLE}")
        found += [
            f"it may {word} {AUDIT_TABLE}"
            for word, on in zip(
                ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES"), changes, strict=True
            )
            if on
        ]
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::oid "
            "AND c.relkind IN ('r', 'p') AND c.relname <> ALL(%s) AND NOT ("
            "has_table_privilege(%s, c.oid, 'SELECT') AND has_table_privilege(%s, c.oid, 'INSERT') AND "
            "has_table_privilege(%s, c.oid, 'UPDATE') AND has_table_privilege(%s, c.oid, 'DELETE')) "
            "ORDER BY 1",
            [schema, [AUDIT_TABLE, *READ_ONLY_TABLES], role, role, role, role],
        )
        ungranted = [name for (name,) in cursor.fetchall()]
        if ungranted:
            found.append(f"it may not read and write {', '.join(ungranted)}")
        cursor.execute(
            "SELECT t.tgname FROM pg_trigger t WHERE t.tgrelid = to_regclass(%s) AND t.tgname = ANY(%s) "
            "AND t.tgenabled IN ('O', 'A')",
            [AUDIT_TABLE, list(AUDIT_TRIGGERS)],
        )
        enabled = {name for (name,) in cursor.fetchall()}
        found += [
            f"the trigger {name} is missing or disabled" for name in AUDIT_TRIGGERS if name not in enabled
        ]
    return found


def _password_verifier(wrapper: BaseDatabaseWrapper, role: str, password: str | None) -> str | None:
    """`password` as the server stores it (SCRAM), made by libpq, so the plain password is never sent
    to the server, nor written to its statement log."""
    if not password:
        return None
    from psycopg2.extensions import encrypt_password

    wrapper.ensure_connection()
    return str(encrypt_password(password, role, wrapper.connection))
