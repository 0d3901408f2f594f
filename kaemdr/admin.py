"""The Django admin, for platform operators only. Audit events are read only here, as everywhere."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditEvent
from .models import Clinic
from .models import OutboxMessage
from .models import User


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "time_zone", "created_at")
    search_fields = ("name", "slug")


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("email", "full_name", "clinic", "role", "is_active")
    list_filter = ("role", "is_active", "clinic")
    search_fields = ("email", "full_name")
    fields = (
        "email",
        "full_name",
        "clinic",
        "role",
        "is_active",
        "is_staff",
        "is_superuser",
        "last_login",
        "date_joined",
    )
    readonly_fields = ("last_login", "date_joined")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "actor_label", "action", "target_type", "target_public_id")
    list_filter = ("action",)
    search_fields = ("actor_label", "action", "request_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """The outbox, to look at (`manage.py outbox_sweep --all` publishes what is waiting again)."""

    list_display = (
        "created_at",
        "task",
        "attempts",
        "published_at",
        "next_attempt_at",
        "done_at",
        "last_error",
    )
    list_filter = ("task", "last_error")
    search_fields = ("key",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
