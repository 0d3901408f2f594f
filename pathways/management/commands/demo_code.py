"""`manage.py demo_code`: the demo clinic's current two-factor code (its key is published demo data)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django_otp.plugins.otp_totp.models import TOTPDevice

from kaemdr.two_factor import current_code
from pathways.demo import DEMO_TOTP_DEVICE
from pathways.demo import DEMO_TOTP_KEY


class Command(BaseCommand):
    help = "Print the demo clinic's current two-factor sign-in code (it changes every 30 seconds)."

    def handle(self, *args: Any, **options: Any) -> None:
        device = TOTPDevice.objects.filter(name=DEMO_TOTP_DEVICE, key=DEMO_TOTP_KEY).first()
        if device is None:
            self.stderr.write("The demo clinic is not loaded (run `make run` or `manage.py demo_data`).")
            return
        # The code alone on stdout, so `manage.py demo_code` can be read by eye or piped; it changes
        # every 30 seconds (the command's help says so).
        self.stdout.write(current_code(device))
