from __future__ import annotations

from django.apps import AppConfig


class KaemdrConfig(AppConfig):
    name = "kaemdr"
    verbose_name = "kaemdr: clinics, staff and audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.contrib.auth.signals import user_logged_out
        from django.core.signals import request_started
        from django.db.backends.signals import connection_created

        from . import signals

        user_logged_in.connect(signals.on_signed_in, dispatch_uid="kaemdr.signed_in")
        user_logged_out.connect(signals.on_signed_out, dispatch_uid="kaemdr.signed_out")
        connection_created.connect(signals.on_connection_created, dispatch_uid="kaemdr.refuse_nul_characters")
        # After Django's own `close_old_connections` (connected when `django.db` is imported).
        request_started.connect(
            signals.drop_closed_connections, dispatch_uid="kaemdr.drop_closed_connections"
        )
