from __future__ import annotations

import base64
from typing import Any

from django.core.management.base import BaseCommand

from pathways.demo import DEMO_PASSWORD
from pathways.demo import DEMO_TOTP_KEY
from pathways.demo import demo_clinic_load


class Command(BaseCommand):
    help = "Load the demo clinic (idempotent) and print its sign-ins."

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_clinic_load()
        verb = "Loaded" if result.created else "Kept"
        self.stdout.write(self.style.SUCCESS(f"{verb} the demo clinic: {result.clinic.name}"))
        self.stdout.write(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
        for user in result.staff.values():
            self.stdout.write(f"  {user.get_role_display():<18} {user.email}")
        secret = base64.b32encode(bytes.fromhex(DEMO_TOTP_KEY)).decode()
        self.stdout.write(
            "Prescribers and the clinic admin also give a two-factor code: add the secret "
            f"{secret} to an authenticator app, or run `.venv/bin/python manage.py demo_code`."
        )
