"""`manage.py backup` (`make backup`): back up the configured database and the private files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand
from django.core.management.base import CommandError
from django.core.management.base import CommandParser

from kaemdr import backups


class Command(BaseCommand):
    help = (
        "Back up the configured database (pg_dump custom format on PostgreSQL, SQLite's online backup "
        "API on SQLite) and KAEMDR_PRIVATE_DIR (tar.gz) under var/backups/, named by UTC time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--destination",
            type=Path,
            default=None,
            help="Folder for the backup files (default: var/backups/).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            files = backups.backup(options["destination"])
        except backups.BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(str(files.database))
        if files.private_files is not None:
            self.stdout.write(str(files.private_files))
        else:
            self.stdout.write("(no private files to archive; PDF summaries are made again on request)")
