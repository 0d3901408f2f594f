"""`manage.py bench`: measure and print the benchmark's figures (see `bench.runner`).

Available only where the `bench` app is installed (`kaemdr.settings.bench`, as `make bench` runs it).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.management.base import CommandParser

from bench import runner


class Command(BaseCommand):
    help = "Build (or reuse) the benchmark's data, measure its figures, write them under var/bench/."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scale", type=float, default=1.0, help="of the network data set (1.0: 50 clinics)"
        )
        parser.add_argument(
            "--long-sessions", type=int, default=500, help="sessions of the long-treated patient"
        )
        parser.add_argument("--duration", type=float, default=10, help="seconds of load on each page")
        parser.add_argument("--connections", type=int, default=4, help="wrk's open connections")
        parser.add_argument("--rss-requests", type=int, default=10_000, help="requests before reading RSS")
        parser.add_argument(
            "--sessions", type=int, default=20, help="dosing sessions of the summarised pathway"
        )
        parser.add_argument("--repeats", type=int, default=3, help="renders of the summary to time")
        parser.add_argument("--follow-ups", type=int, default=2000, help="follow-ups to dispatch")

    def handle(self, *args: Any, **options: Any) -> None:
        figures = runner.run(
            scale=options["scale"],
            long_sessions=options["long_sessions"],
            duration_s=options["duration"],
            connections=options["connections"],
            rss_requests=options["rss_requests"],
            sessions=options["sessions"],
            repeats=options["repeats"],
            follow_ups=options["follow_ups"],
            log=lambda message: self.stderr.write(message),
            report_folder=settings.VAR_DIR / "bench",
        )
        self.stdout.write(runner.write_report(figures, settings.VAR_DIR / "bench"))
