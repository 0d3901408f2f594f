"""Writing audit events. Services call `audit_record` inside their own transaction; the follow-up
dispatcher builds each with `audit_event` and appends it with a statement of its own
(`integration.services._audit_append`), in the transaction that records the follow-up as sent."""

from __future__ import annotations

import uuid
from typing import Any

from . import page_cache
from .models import AuditEvent
from .models import User
from .request_context import current_request_id


def audit_event(
    *,
    actor: User | None,
    action: str,
    target_type: str,
    target_public_id: uuid.UUID | None = None,
    clinic_public_id: uuid.UUID | None = None,
    patient_public_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """One audit event, built but not saved (its `occurred_at` is now). `data` must hold identifiers
    and codes only, never clinical free text.

    The clinic defaults to the actor's, so a caller only names it for events with no actor
    (a background task acting for the clinic).
    """
    if clinic_public_id is None and actor is not None and actor.clinic is not None:
        clinic_public_id = actor.clinic.public_id
    return AuditEvent(
        clinic_public_id=clinic_public_id,
        actor_public_id=actor.public_id if actor is not None else None,
        actor_label=actor.email if actor is not None else "system",
        action=action,
        target_type=target_type,
        target_public_id=target_public_id,
        patient_public_id=patient_public_id,
        request_id=current_request_id(),
        data=data or {},
    )


def audit_record(
    *,
    actor: User | None,
    action: str,
    target_type: str,
    target_public_id: uuid.UUID | None = None,
    clinic_public_id: uuid.UUID | None = None,
    patient_public_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event (see `audit_event` for what it holds). A write event replaces its
    clinic's page-cache version once the transaction commits (`page_cache.bump_on_commit`)."""
    event = audit_event(
        actor=actor,
        action=action,
        target_type=target_type,
        target_public_id=target_public_id,
        clinic_public_id=clinic_public_id,
        patient_public_id=patient_public_id,
        data=data,
    )
    event.save(force_insert=True)
    page_cache.bump_on_commit(action=action, clinic_public_id=event.clinic_public_id)
    return event
