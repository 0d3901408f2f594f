"""`manage.py restore PATH [--force]` (`make restore BACKUP=PATH [FORCE=1]`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.core.management.base import CommandError
from django.core.management.base import CommandParser

from kaemdr import backups


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into the configured database. Refuses when the "
        "database already holds tables, unless --force is given. Stop the web server and workers first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default=None, help="The .dump or .sqlite3 file to restore.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace the tables the database already holds (FORCE=1 with make).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backups.restore(options["path"], force=options["force"])
        except backups.BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Restored {options['path']}.")
