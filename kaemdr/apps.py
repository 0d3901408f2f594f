from __future__ import annotations

from django.apps import AppConfig


class KaemdrConfig(AppConfig):
    name = "kaemdr"
    verbose_name = "kaemdr: clinics, staff and audit"
    default_auto_field = "django.db.models.BigAutoField"
