"""`manage.py outbox_sweep`: publish again the tasks the outbox holds past their time, as the beat entry
`outbox-sweep` does every minute; `--all` publishes every one not done at once (after an outage)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.core.management.base import CommandParser

from kaemdr import outbox
from kaemdr.models import OutboxMessage


class Command(BaseCommand):
    help = (
        "Publish again the outbox's tasks not done past their time (what the beat entry outbox-sweep "
        "does every minute). With --all, every task not done, given up or not, at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="Publish every task not done, now.")

    def handle(self, *args: Any, **options: Any) -> None:
        published = outbox.sweep(limit=100_000, everything=options["all"])
        waiting = OutboxMessage.objects.filter(done_at__isnull=True).count()
        self.stdout.write(f"published {published}; {waiting} not done yet")
