"""Backing up and restoring the app's database (and the private files beside it).

The database is the one of record: on PostgreSQL a `pg_dump --format=custom` archive, restored with
`pg_restore`; on the embedded SQLite default a copy made with SQLite's online backup API, which
reads a consistent snapshot of a live database (WAL included), where copying the file would not.
Generated PDF summaries under `KAEMDR_PRIVATE_DIR` go into a tar.gz beside the database backup;
they are also regenerable (a summary whose file is missing is rendered again when asked for).

Every function takes the connection settings as an argument (a `DATABASES` entry), defaulting to
`settings.DATABASES["default"]`, so that a test or an operator can aim at another database. Each
backup and each restore appends an audit event to the database it concerned: the backed-up one
after the dump succeeded, the restored one after the restore (which replaces its audit table).
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import shutil
import sqlite3
import subprocess  # nosec B404  # pg_dump and pg_restore, run with an argument list and no shell
import tarfile
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Literal

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db import DatabaseError
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend

from .audit import audit_record

DatabaseSettings = Mapping[str, Any]
Engine = Literal["postgresql", "sqlite"]

ACTION_BACKUP_MADE = "ops.backup_made"
ACTION_BACKUP_RESTORED = "ops.backup_restored"
AUDIT_TARGET_TYPE = "kaemdr.Backup"
FILE_PREFIX = "kaemdr-"
SUFFIXES: dict[Engine, str] = {"postgresql": ".dump", "sqlite": ".sqlite3"}
PRIVATE_SUFFIX = "-private.tar.gz"
# The first bytes of a pg_dump custom-format archive and of an SQLite database file.
MAGIC: dict[Engine, bytes] = {"postgresql": b"PGDMP", "sqlite": b"SQLite format 3\x00"}
# Partly written summaries (see integration/summary_services.py) are not worth keeping.
PRIVATE_SKIP_PREFIX = ".rendering-"
CONNECT_TIMEOUT_SECONDS = "10"


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and what to do."""


class RestoreRefused(BackupError):
    """The target database already holds tables and replacing them was not asked for."""


@dataclass(frozen=True)
class BackupFiles:
    """What one backup wrote: the database file, and the private files' archive when there were any."""

    database: Path
    private_files: Path | None


def default_database() -> DatabaseSettings:
    """The configured database (`settings.DATABASES["default"]`)."""
    return settings.DATABASES[DEFAULT_DB_ALIAS]


def default_destination() -> Path:
    """Where `make backup` writes: `var/backups/` beside `manage.py`."""
    return Path(settings.BASE_DIR) / "var" / "backups"


def engine_of(database: DatabaseSettings) -> Engine:
    """`postgresql` or `sqlite`; any other engine raises `BackupError`."""
    engine = database.get("ENGINE", "")
    if engine == "django.db.backends.postgresql":
        return "postgresql"
    if engine == "django.db.backends.sqlite3":
        return "sqlite"
    raise BackupError(f"Backups support PostgreSQL and SQLite, not {engine or 'an unnamed engine'}.")


def backup(
    destination_dir: Path | None = None,
    *,
    database: DatabaseSettings | None = None,
    private_dir: Path | None = None,
    now: dt.datetime | None = None,
) -> BackupFiles:
    """Back up `database` into `destination_dir` as `kaemdr-<UTC timestamp>.dump` (PostgreSQL,
    `pg_dump --format=custom`) or `.sqlite3` (SQLite, the online backup API), and `private_dir`
    (default `KAEMDR_PRIVATE_DIR`) as `kaemdr-<timestamp>-private.tar.gz` when it holds files.

    Files are created readable by their owner only (they hold patient data), written under a
    temporary name and linked into place when complete, so a failed backup never looks like a good one.
    An existing backup is never overwritten. The `ops.backup_made` audit event is written to the
    backed-up database after the backup succeeded, so the backup itself does not contain it.
    Raises `BackupError` with a readable message on any failure.
    """
    target = default_database() if database is None else database
    engine = engine_of(target)
    if engine == "postgresql":
        _require_tool("pg_dump")
    destination = default_destination() if destination_dir is None else Path(destination_dir)
    destination.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    database_file = destination / f"{FILE_PREFIX}{stamp}{SUFFIXES[engine]}"
    with _written_atomically(database_file) as partial:
        if engine == "postgresql":
            _pg_dump(target, partial)
        else:
            _sqlite_copy(_sqlite_path(target, must_exist=True), partial)
    private_source = Path(settings.KAEMDR_PRIVATE_DIR) if private_dir is None else Path(private_dir)
    private_archive = _archive_private_files(
        private_source, destination / f"{FILE_PREFIX}{stamp}{PRIVATE_SUFFIX}"
    )
    _audit(
        ACTION_BACKUP_MADE,
        database,
        {
            "engine": engine,
            "file": database_file.name,
            "private_files": private_archive.name if private_archive else None,
        },
    )
    return BackupFiles(database=database_file, private_files=private_archive)


def restore(
    path: Path | str | None, *, force: bool = False, database: DatabaseSettings | None = None
) -> None:
    """Restore the backup at `path` into `database` (default: the configured one).

    Refuses with `BackupError` when no path is given, when the file does not exist or is not a
    backup of this database's engine, and with `RestoreRefused` when the target already holds
    tables, unless `force` is true. PostgreSQL: `pg_restore --no-owner --no-privileges
    --single-transaction` (plus `--clean --if-exists` when replacing tables), so a failure leaves
    the target as it was; dropping the append-only audit table is allowed (its trigger refuses
    UPDATE and DELETE, not DROP). SQLite: the backup API copies every page into the target file,
    which is created when missing. The `ops.backup_restored` event is written after the restore,
    into the restored database, so it survives the audit table being replaced. Private files are
    not restored here: extract the `-private.tar.gz` into `KAEMDR_PRIVATE_DIR` by hand, or let the
    summaries be made again on request.
    """
    if path is None or str(path) == "":
        raise BackupError("Name the backup to restore: make restore BACKUP=var/backups/kaemdr-….dump")
    backup_file = Path(path)
    if not backup_file.is_file():
        raise BackupError(f"There is no backup file at {backup_file}.")
    target = default_database() if database is None else database
    engine = engine_of(target)
    with backup_file.open("rb") as handle:
        header = handle.read(len(MAGIC[engine]))
    if header != MAGIC[engine]:
        kind = "a pg_dump custom-format archive" if engine == "postgresql" else "an SQLite database"
        raise BackupError(f"{backup_file} is not {kind}, so it cannot be restored into {_describe(target)}.")
    if engine == "postgresql":
        _require_tool("pg_restore")
    tables = table_count(target)
    if tables and not force:
        raise RestoreRefused(
            f"Refusing to restore: {_describe(target)} already holds {tables} tables, which the backup "
            "would replace. "
            "Pass --force (make restore BACKUP=… FORCE=1) to replace them."
        )
    if engine == "postgresql":
        _pg_restore(backup_file, target, clean=bool(tables))
    else:
        _sqlite_copy(backup_file, _sqlite_path(target, must_exist=False))
    _audit(
        ACTION_BACKUP_RESTORED,
        database,
        {"engine": engine, "file": backup_file.name, "replaced_tables": tables},
    )


def table_count(database: DatabaseSettings) -> int:
    """How many tables `database` holds outside the system schemas (0 for a missing SQLite file)."""
    if engine_of(database) == "sqlite" and not _sqlite_path(database, must_exist=False).exists():
        return 0
    if engine_of(database) == "postgresql":
        query = (
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE %s"
        )
        params = ["pg_toast%"]
    else:
        query = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE %s"
        params = ["sqlite_%"]
    try:
        with connection_to(database) as wrapper, wrapper.cursor() as cursor:
            cursor.execute(query, params)
            row = cursor.fetchone()
    except DatabaseError as error:
        raise BackupError(f"Cannot reach {_describe(database)}: {error}".strip()) from error
    return int(row[0]) if row else 0


@contextmanager
def connection_to(database: DatabaseSettings) -> Iterator[BaseDatabaseWrapper]:
    """A new Django connection to `database`, separate from the app's, closed on exit."""
    configured = connections.configure_settings({DEFAULT_DB_ALIAS: copy.deepcopy(dict(database))})
    wrapper: BaseDatabaseWrapper = load_backend(configured[DEFAULT_DB_ALIAS]["ENGINE"]).DatabaseWrapper(
        configured[DEFAULT_DB_ALIAS], DEFAULT_DB_ALIAS
    )
    try:
        yield wrapper
    finally:
        wrapper.close()


def _audit(action: str, database: DatabaseSettings | None, data: dict[str, Any]) -> None:
    """Record `action` in `database` through `audit_record`, the one writer of audit events.

    For the configured database that is the app's own connection. For another one, a separate
    connection stands in as the default while the event is written, so that the event lands in
    the database the backup or restore concerned.
    """
    if database is None:
        audit_record(actor=None, action=action, target_type=AUDIT_TARGET_TYPE, data=data)
        return
    with connection_to(database) as wrapper:
        app_connection = connections[DEFAULT_DB_ALIAS]
        connections[DEFAULT_DB_ALIAS] = wrapper
        try:
            audit_record(actor=None, action=action, target_type=AUDIT_TARGET_TYPE, data=data)
        finally:
            connections[DEFAULT_DB_ALIAS] = app_connection


def _describe(database: DatabaseSettings) -> str:
    if engine_of(database) == "sqlite":
        return f"the SQLite database {database.get('NAME')}"
    host = database.get("HOST") or "the local socket"
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"the PostgreSQL database {database.get('NAME')} on {host}{port}"


def _require_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed or not on PATH; install the PostgreSQL client tools "
            "(apt-get install postgresql-client) of the server's major version or newer."
        )
    return found


def _pg_connection_args(database: DatabaseSettings) -> tuple[list[str], dict[str, str]]:
    """Command-line arguments and environment for pg_dump/pg_restore; the password goes in the
    environment (PGPASSWORD), never on the command line where `ps` shows it."""
    args = [f"--dbname={database.get('NAME') or ''}"]
    if database.get("HOST"):
        args.append(f"--host={database['HOST']}")
    if database.get("PORT"):
        args.append(f"--port={database['PORT']}")
    if database.get("USER"):
        args.append(f"--username={database['USER']}")
    env = dict(os.environ)
    env.setdefault("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECONDS)
    if database.get("PASSWORD"):
        env["PGPASSWORD"] = str(database["PASSWORD"])
    sslmode = (database.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = str(sslmode)
    return [*args, "--no-password"], env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        # An argument list (no shell), the tool resolved on PATH by `_require_tool`, our own arguments.
        subprocess.run(args, check=True, env=env, capture_output=True, text=True)  # noqa: S603  # nosec B603
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip()
        raise BackupError(f"{what} failed (exit {error.returncode}): {detail}") from error


def _pg_dump(database: DatabaseSettings, output: Path) -> None:
    tool = _require_tool("pg_dump")
    connection_args, env = _pg_connection_args(database)
    _run(
        [tool, "--format=custom", f"--file={output}", *connection_args],
        env,
        f"pg_dump of {_describe(database)}",
    )


def _pg_restore(backup_file: Path, database: DatabaseSettings, *, clean: bool) -> None:
    tool = _require_tool("pg_restore")
    connection_args, env = _pg_connection_args(database)
    replace = ["--clean", "--if-exists"] if clean else []
    _run(
        [
            tool,
            *connection_args,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            *replace,
            str(backup_file),
        ],
        env,
        f"pg_restore into {_describe(database)}",
    )


def _sqlite_path(database: DatabaseSettings, *, must_exist: bool) -> Path:
    name = str(database.get("NAME") or "")
    if not name or name == ":memory:" or "mode=memory" in name:
        raise BackupError("An in-memory SQLite database cannot be backed up or restored.")
    path = Path(name)
    if must_exist and not path.is_file():
        raise BackupError(f"There is no SQLite database at {path}; run `make migrate` first.")
    return path


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy every page of `source` into `target` with the online backup API: it reads one
    consistent snapshot (committed WAL content included), while writers may carry on. The copy is
    left in rollback-journal mode, so it is one self-contained file."""
    try:
        reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        try:
            writer = sqlite3.connect(target)
            try:
                reader.backup(writer)
                writer.execute("PRAGMA journal_mode=DELETE")
            finally:
                writer.close()
        finally:
            reader.close()
    except sqlite3.Error as error:
        raise BackupError(f"Copying {source} to {target} failed: {error}") from error


def _archive_private_files(private_dir: Path, archive: Path) -> Path | None:
    """Write the files under `private_dir` into `archive` (tar.gz, paths relative to the folder);
    None, and no archive, when there is no folder or nothing in it."""
    if not private_dir.is_dir():
        return None
    members = sorted(
        path
        for path in private_dir.rglob("*")
        if path.is_file() and not path.name.startswith(PRIVATE_SKIP_PREFIX)
    )
    if not members:
        return None
    with _written_atomically(archive) as partial, tarfile.open(partial, mode="w:gz") as tar:
        for member in members:
            tar.add(member, arcname=str(member.relative_to(private_dir)), recursive=False)
    return archive


@contextmanager
def _written_atomically(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`, created empty and owner-only; link it to `final`
    when the block succeeds (a hard link never replaces an existing file), remove it either way."""
    if final.exists():
        raise BackupError(f"{final} already exists; wait a second and run the backup again.")
    partial = final.with_name(f".{final.name}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        yield partial
        try:
            os.link(partial, final)
        except FileExistsError as error:
            raise BackupError(f"{final} already exists; wait a second and run the backup again.") from error
    finally:
        partial.unlink(missing_ok=True)
