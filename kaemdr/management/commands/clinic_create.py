from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.core.management.base import CommandParser

from kaemdr.services import clinic_create


class Command(BaseCommand):
    help = "Create a clinic and invite its first clinic admin by email."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--time-zone", default="Europe/London")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-name", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        clinic, admin = clinic_create(
            name=options["name"],
            slug=options["slug"],
            time_zone=options["time_zone"],
            admin_email=options["admin_email"],
            admin_full_name=options["admin_name"],
        )
        self.stdout.write(f"Created {clinic.name}; an invitation went to {admin.email}.")
