from __future__ import annotations

from django.apps import AppConfig


class DosingSessionsConfig(AppConfig):
    """Dosing rooms, bookings and sessions. Labelled `dosing`: `sessions` is Django's own session app."""

    name = "sessions"
    label = "dosing"
    verbose_name = "Dosing rooms and sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sessions import hooks

        hooks.register()
