"""`manage.py bench`: measure and print the benchmark's figures (see `integration.bench`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.management.base import CommandParser

from integration import bench


class Command(BaseCommand):
    help = "Measure the benchmark's figures and write them under var/bench/."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sessions", type=int, default=20, help="dosing sessions of the long pathway")
        parser.add_argument("--repeats", type=int, default=3, help="renders of the summary to time")
        parser.add_argument("--follow-ups", type=int, default=2000, help="follow-ups to dispatch")

    def handle(self, *args: Any, **options: Any) -> None:
        figures = bench.run(
            sessions=options["sessions"], repeats=options["repeats"], follow_ups=options["follow_ups"]
        )
        self.stdout.write(bench.write_report(figures, settings.VAR_DIR / "bench"))
