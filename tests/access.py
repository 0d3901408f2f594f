"""Helpers for the access matrix: who may use each route, and proof that a refusal wrote nothing."""

from __future__ import annotations

from typing import Any

from kaemdr.models import AuditEvent
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from pathways.models import Patient


def record_audit_events() -> int:
    """Audit events about records, leaving out signing in and out (a test's own sign-in writes one)."""
    return AuditEvent.objects.exclude(action__startswith="auth.").count()


def snapshot() -> tuple[Any, ...]:
    """Everything a refused request could have written."""
    return (
        record_audit_events(),
        Patient.objects.count(),
        tuple(Patient.objects.order_by("pk").values_list("phone", "given_name")),
        tuple(Pathway.objects.order_by("pk").values_list("stage", "therapist_id")),
        PathwayStageChange.objects.count(),
        tuple(User.objects.order_by("pk").values_list("is_active", "role")),
    )
