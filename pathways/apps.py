from __future__ import annotations

from django.apps import AppConfig


class PathwaysConfig(AppConfig):
    name = "pathways"
    verbose_name = "Patients and pathways"
    default_auto_field = "django.db.models.BigAutoField"
