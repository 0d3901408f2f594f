from __future__ import annotations

from django.apps import AppConfig


class IntegrationConfig(AppConfig):
    """Integration notes, experiments, follow-ups and reminders: the pathway's last stage."""

    name = "integration"
    verbose_name = "Integration and follow-ups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import hooks

        hooks.register()
