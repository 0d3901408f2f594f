"""Backups and restores: a PostgreSQL round trip into a fresh database that must match table by
table, an SQLite round trip through the online backup API, and the refusals."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import sqlite3
import tarfile
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from psycopg2 import sql

from kaemdr import backups
from kaemdr.audit import audit_record
from kaemdr.models import AuditEvent
from sessions.models import DosingSession

from ..conftest import require_postgres

AUDIT_TABLE = AuditEvent._meta.db_table


def _pg_connect(database: backups.DatabaseSettings) -> Any:
    connection = psycopg2.connect(
        dbname=database["NAME"],
        user=database.get("USER") or None,
        password=database.get("PASSWORD") or None,
        host=database.get("HOST") or None,
        port=database.get("PORT") or None,
    )
    connection.autocommit = True
    return connection


def _app_tables() -> list[str]:
    """Every table of every model (many-to-many tables included) and Django's migration record."""
    tables = {model._meta.db_table for model in apps.get_models(include_auto_created=True)}
    return sorted(tables | {"django_migrations"})


def _fingerprints(database: backups.DatabaseSettings, tables: list[str]) -> dict[str, tuple[int, str]]:
    """Per table: the row count and an md5 of all rows as text, in a fixed order and time zone."""
    connection = _pg_connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
            result = {}
            for table in tables:
                cursor.execute(
                    sql.SQL(
                        "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                        "FROM {} AS t"
                    ).format(sql.Identifier(table))
                )
                count, digest = cursor.fetchone()
                result[table] = (count, digest)
            return result
    finally:
        connection.close()


def _audit_events(database: backups.DatabaseSettings) -> dict[uuid.UUID, str]:
    connection = _pg_connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("SELECT public_id, action FROM {}").format(sql.Identifier(AUDIT_TABLE)))
            return {uuid.UUID(str(public_id)): action for public_id, action in cursor.fetchall()}
    finally:
        connection.close()


@pytest.fixture
def empty_postgres_database() -> Iterator[dict[str, Any]]:
    """A freshly created, empty PostgreSQL database beside the test database, dropped afterwards."""
    require_postgres()
    source = settings.DATABASES["default"]
    name = f"kaemdr_restore_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_connect({**source, "NAME": "postgres"})
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield {**source, "NAME": name}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


@pytest.mark.django_db(transaction=True)
def test_postgres_backup_restores_every_table_into_an_empty_database(
    dosing_pathway: Any,
    complete_session: Callable[..., DosingSession],
    empty_postgres_database: dict[str, Any],
    tmp_path: Path,
) -> None:
    # Arrange: a clinic with two signed dosing sessions (follow-ups scheduled, events audited).
    require_postgres()
    complete_session(dosing_pathway)
    complete_session(dosing_pathway)
    source = settings.DATABASES["default"]
    target = empty_postgres_database
    tables = _app_tables()
    before_backup = _fingerprints(source, tables)
    events_before_backup = _audit_events(source)
    assert before_backup[DosingSession._meta.db_table][0] == 2
    assert len(events_before_backup) >= 10
    assert sum(1 for count, _ in before_backup.values() if count) >= 15
    private_dir = tmp_path / "private"
    (private_dir / "summaries").mkdir(parents=True)
    (private_dir / "summaries" / "a.pdf").write_bytes(b"%PDF-1.7 summary")

    # Act
    files = backups.backup(tmp_path / "backups", private_dir=private_dir)

    # Assert: the archive, and one "backup made" event recorded after the dump (so not in it).
    assert files.database.parent == tmp_path / "backups"
    assert files.database.name.startswith("kaemdr-")
    assert files.database.suffix == ".dump"
    assert files.database.read_bytes()[:5] == b"PGDMP"
    assert files.database.stat().st_mode & 0o077 == 0
    assert files.private_files is not None
    with tarfile.open(files.private_files) as tar:
        assert tar.getnames() == ["summaries/a.pdf"]
    events_after_backup = _audit_events(source)
    made = set(events_after_backup) - set(events_before_backup)
    assert [events_after_backup[event] for event in made] == [backups.ACTION_BACKUP_MADE]

    # Act: restore into the empty database.
    backups.restore(files.database, force=False, database=target)

    # Assert: every table matches the source as it was when dumped, row for row; the audit table
    # also holds the one "backup restored" event, written after the restore.
    restored = _fingerprints(target, tables)
    restored_events = _audit_events(target)
    assert {table: value for table, value in restored.items() if table != AUDIT_TABLE} == {
        table: value for table, value in before_backup.items() if table != AUDIT_TABLE
    }
    assert restored[AUDIT_TABLE][0] == before_backup[AUDIT_TABLE][0] + 1
    restore_events = set(restored_events) - set(events_before_backup)
    assert set(events_before_backup) <= set(restored_events)
    assert [restored_events[event] for event in restore_events] == [backups.ACTION_BACKUP_RESTORED]

    # Restoring over the now non-empty database without force is refused and changes nothing.
    with pytest.raises(backups.RestoreRefused, match="--force"):
        backups.restore(files.database, force=False, database=target)
    assert _audit_events(target) == restored_events

    # With force, the tables are replaced: DROP passes the append-only trigger, the earlier restore
    # event goes with the old audit table, and a new one is recorded after the restore.
    backups.restore(files.database, force=True, database=target)
    replaced_events = _audit_events(target)
    replaced_extra = set(replaced_events) - set(events_before_backup)
    assert set(events_before_backup) <= set(replaced_events)
    assert len(replaced_extra) == 1
    assert replaced_extra.isdisjoint(restore_events)
    assert [replaced_events[event] for event in replaced_extra] == [backups.ACTION_BACKUP_RESTORED]
    assert {table: value[0] for table, value in _fingerprints(target, tables).items()} == {
        table: value[0] for table, value in restored.items()
    }


@pytest.mark.django_db(transaction=True)
def test_restore_over_the_configured_database_with_force_records_the_event_after(
    clinic_admin: Any, tmp_path: Path
) -> None:
    require_postgres()
    for _ in range(2):
        audit_record(
            actor=clinic_admin,
            action="test.event",
            target_type="kaemdr.User",
            target_public_id=clinic_admin.public_id,
        )
    files = backups.backup(tmp_path)
    events_in_backup = set(
        AuditEvent.objects.exclude(action=backups.ACTION_BACKUP_MADE).values_list("public_id", flat=True)
    )
    assert len(events_in_backup) == 2

    backups.restore(files.database, force=True)

    restored = AuditEvent.objects.get(action=backups.ACTION_BACKUP_RESTORED)
    assert (
        set(AuditEvent.objects.exclude(pk=restored.pk).values_list("public_id", flat=True))
        == events_in_backup
    )
    assert AuditEvent.objects.order_by("id").last() == restored
    assert restored.actor_public_id is None
    assert restored.target_type == "kaemdr.Backup"
    assert restored.data["engine"] == "postgresql"
    assert restored.data["file"] == files.database.name
    assert restored.data["replaced_tables"] >= len(_app_tables())


def _sqlite(path: Path) -> dict[str, Any]:
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}


def _make_sqlite_source(path: Path) -> None:
    """A WAL-mode database (as the app runs it) with the audit table, its append-only triggers and
    a notes table of three rows."""
    with backups.connection_to(_sqlite(path)) as connection:
        with connection.schema_editor() as editor:
            editor.create_model(AuditEvent)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TRIGGER audit_no_delete BEFORE DELETE ON {AUDIT_TABLE} "
                "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
            )
            cursor.execute("CREATE TABLE note (id integer PRIMARY KEY, body text NOT NULL)")
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.executemany("INSERT INTO note (body) VALUES (?)", [("one",), ("two",), ("three",)])
    writer.commit()
    writer.close()


def _rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def test_sqlite_backup_copies_a_live_database_and_restores_it(tmp_path: Path, django_db_blocker: Any) -> None:
    source, target = tmp_path / "source.sqlite3", tmp_path / "target.sqlite3"
    with django_db_blocker.unblock():
        _make_sqlite_source(source)
        # A live database: a committed row still only in the WAL file, which a copy of the
        # database file would miss.
        live = sqlite3.connect(source, isolation_level=None)
        live.execute("PRAGMA wal_autocheckpoint=0")
        live.execute("INSERT INTO note (body) VALUES ('committed, in the WAL')")
        try:
            shutil.copyfile(source, tmp_path / "plain-copy.sqlite3")
            files = backups.backup(
                tmp_path / "backups", database=_sqlite(source), private_dir=tmp_path / "none"
            )
        finally:
            live.close()
        assert ("committed, in the WAL",) not in _rows(
            tmp_path / "plain-copy.sqlite3", "SELECT body FROM note"
        )

        assert files.private_files is None
        assert files.database.suffix == ".sqlite3"
        assert files.database.read_bytes()[:16] == b"SQLite format 3\x00"
        assert not files.database.with_name(files.database.name + "-wal").exists()
        expected_notes = [("one",), ("two",), ("three",), ("committed, in the WAL",)]
        assert _rows(files.database, "SELECT body FROM note ORDER BY id") == expected_notes
        assert _rows(files.database, f"SELECT action FROM {AUDIT_TABLE}") == []
        assert _rows(source, f"SELECT action FROM {AUDIT_TABLE}") == [(backups.ACTION_BACKUP_MADE,)]

        backups.restore(files.database, force=False, database=_sqlite(target))

        assert _rows(target, "SELECT body FROM note ORDER BY id") == expected_notes
        first_restore = _rows(target, f"SELECT public_id, action FROM {AUDIT_TABLE}")
        assert [action for _, action in first_restore] == [backups.ACTION_BACKUP_RESTORED]

        with pytest.raises(backups.RestoreRefused, match="already holds 2 tables"):
            backups.restore(files.database, force=False, database=_sqlite(target))
        assert _rows(target, f"SELECT public_id, action FROM {AUDIT_TABLE}") == first_restore

        backups.restore(files.database, force=True, database=_sqlite(target))

        second_restore = _rows(target, f"SELECT public_id, action FROM {AUDIT_TABLE}")
        assert [action for _, action in second_restore] == [backups.ACTION_BACKUP_RESTORED]
        assert second_restore != first_restore
        assert _rows(target, "SELECT body FROM note ORDER BY id") == expected_notes


def test_backup_archives_private_files_but_not_partial_renders(
    tmp_path: Path, django_db_blocker: Any
) -> None:
    source = tmp_path / "source.sqlite3"
    private_dir = tmp_path / "private"
    (private_dir / "summaries").mkdir(parents=True)
    (private_dir / "summaries" / "b.pdf").write_bytes(b"%PDF b")
    (private_dir / "summaries" / "a.pdf").write_bytes(b"%PDF a")
    (private_dir / "summaries" / ".rendering-x.pdf").write_bytes(b"%PDF half")
    with django_db_blocker.unblock():
        _make_sqlite_source(source)
        files = backups.backup(tmp_path, database=_sqlite(source), private_dir=private_dir)

    assert files.private_files == files.database.with_name(files.database.stem + "-private.tar.gz")
    with tarfile.open(files.private_files) as tar:
        assert tar.getnames() == ["summaries/a.pdf", "summaries/b.pdf"]
        member = tar.extractfile("summaries/a.pdf")
        assert member is not None
        assert member.read() == b"%PDF a"


def test_backup_never_overwrites_an_existing_backup(tmp_path: Path, django_db_blocker: Any) -> None:
    source = tmp_path / "source.sqlite3"
    when = dt.datetime(2026, 12, 2, 17, 30, tzinfo=dt.UTC)
    with django_db_blocker.unblock():
        _make_sqlite_source(source)
        first = backups.backup(tmp_path, database=_sqlite(source), private_dir=tmp_path / "none", now=when)
        original = first.database.read_bytes()

        with pytest.raises(backups.BackupError, match="already exists"):
            backups.backup(tmp_path, database=_sqlite(source), private_dir=tmp_path / "none", now=when)

    assert first.database == tmp_path / "kaemdr-20261202T173000Z.sqlite3"
    assert first.database.read_bytes() == original
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".partial")] == []


@pytest.fixture
def backup_of_the_configured_engine(tmp_path: Path) -> Path:
    """A file whose header says it is a backup for the configured engine (the refusals come first)."""
    engine = backups.engine_of(settings.DATABASES["default"])
    path = tmp_path / f"kaemdr-20260101T000000Z{backups.SUFFIXES[engine]}"
    path.write_bytes(backups.MAGIC[engine] + b"\x00" * 64)
    return path


@pytest.mark.django_db
def test_restore_command_without_a_backup_is_refused() -> None:
    with pytest.raises(CommandError, match=r"make restore BACKUP="):
        call_command("restore")
    assert not AuditEvent.objects.filter(action=backups.ACTION_BACKUP_RESTORED).exists()


@pytest.mark.django_db
def test_restore_command_with_a_missing_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "kaemdr-20260101T000000Z.dump"
    with pytest.raises(CommandError, match=re.escape(f"There is no backup file at {missing}.")):
        call_command("restore", str(missing))
    assert not AuditEvent.objects.filter(action=backups.ACTION_BACKUP_RESTORED).exists()


@pytest.mark.django_db
def test_restore_command_with_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not a backup")
    with pytest.raises(CommandError, match="cannot be restored into"):
        call_command("restore", str(other), "--force")
    assert not AuditEvent.objects.filter(action=backups.ACTION_BACKUP_RESTORED).exists()


@pytest.mark.django_db
def test_restore_command_over_a_database_with_tables_needs_force(
    backup_of_the_configured_engine: Path,
) -> None:
    require_postgres()  # the SQLite test database is in memory, which restore refuses outright
    with pytest.raises(CommandError, match=r"already holds \d+ tables.*--force.*FORCE=1"):
        call_command("restore", str(backup_of_the_configured_engine))
    assert not AuditEvent.objects.filter(action=backups.ACTION_BACKUP_RESTORED).exists()


@pytest.mark.django_db
def test_backup_command_prints_the_path_of_a_new_dump(tmp_path: Path) -> None:
    require_postgres()
    out = io.StringIO()

    call_command("backup", destination=tmp_path, stdout=out)

    printed = out.getvalue().splitlines()
    dumps = sorted(tmp_path.glob("kaemdr-*.dump"))
    assert len(dumps) == 1
    assert printed[0] == str(dumps[0])
    assert dumps[0].read_bytes()[:5] == b"PGDMP"
    assert AuditEvent.objects.get(action=backups.ACTION_BACKUP_MADE).data["file"] == dumps[0].name


def test_backup_of_another_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(backups.BackupError, match=r"PostgreSQL and SQLite, not django\.db\.backends\.mysql"):
        backups.backup(tmp_path, database={"ENGINE": "django.db.backends.mysql", "NAME": "x"})
    assert list(tmp_path.iterdir()) == []


POSTGRES_ELSEWHERE = {"ENGINE": "django.db.backends.postgresql", "NAME": "kaemdr_unreachable"}


def _without(tool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(backups.shutil, "which", lambda name: None if name == tool else real_which(name))


def test_backup_without_pg_dump_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without("pg_dump", monkeypatch)

    with pytest.raises(backups.BackupError, match="pg_dump is not installed or not on PATH"):
        backups.backup(tmp_path / "out", database=POSTGRES_ELSEWHERE)

    assert not (tmp_path / "out").exists()


def test_restore_without_pg_restore_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without("pg_restore", monkeypatch)
    dump = tmp_path / "kaemdr-20260101T000000Z.dump"
    dump.write_bytes(backups.MAGIC["postgresql"])

    with pytest.raises(backups.BackupError, match="pg_restore is not installed or not on PATH"):
        backups.restore(dump, database=POSTGRES_ELSEWHERE)
