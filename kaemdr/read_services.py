"""The read audit: every read of clinical content leaves one audit event per request.

A page, an API answer or a download that shows clinical records calls `record_viewed` (one record)
or `records_viewed` (a list, a calendar, a dashboard). The event names the records shown and their
patients by public id, never their content, so `data` holds codes and ids only; lists are
paginated, so it stays small. Its action is `<kind>.viewed` or `<kind>.list_viewed`, the kind named
after the model (`safety_alert.list_viewed`), the convention the older read events follow.

The records must arrive with their patients loaded (`select_related`): naming them costs no query.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import Model

from .audit import audit_record
from .models import AuditEvent
from .models import User


def record_kind(model: type[Model]) -> str:
    """The code a model's read events are named by: `SafetyAlert` -> `safety_alert`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower()


def patient_of(record: Model, patient: str) -> Any:
    """The patient of `record` along the dotted attribute path `patient` ("" when the record is the
    patient), or None where the path ends early."""
    value: Any = record
    for name in filter(None, patient.split(".")):
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


def record_viewed(*, actor: User, record: Model, patient: str, via: str) -> AuditEvent:
    """Audit that `actor` read one record (its page, its API answer, its download). `patient` is the
    dotted path from the record to its patient ("" when the record is a patient); `via` says where
    ("page", "api", ...)."""
    owner = patient_of(record, patient)
    return audit_record(
        actor=actor,
        action=f"{record_kind(type(record))}.viewed",
        target_type=record._meta.label,
        target_public_id=record.public_id,  # type: ignore[attr-defined]
        patient_public_id=owner.public_id if owner is not None else None,
        data={"via": via},
    )


def records_viewed(
    *, actor: User, model: type[Model], records: Iterable[Model], patient: str, via: str
) -> AuditEvent:
    """Audit that `actor` was shown a list of `model` records (one page of it): one event naming
    each record (`ids`) and each of their patients (`patients`) by public id, in the order shown.
    When every record belongs to one patient, the event names that patient too, so the audit log
    finds it by patient."""
    return records_viewed_by_ids(actor=actor, model=model, shown=shown_ids(records, patient=patient), via=via)


Shown = tuple[list[str], list[str]]
"""What a list showed, by public id: its records' and their patients' (each once), in the order shown."""


def shown_ids(records: Iterable[Model], *, patient: str) -> Shown:
    """The ids `records_viewed` names for `records`: kept with a cached part (`kaemdr.page_cache`),
    so a repeat view writes the same event without reading the records again."""
    ids: list[str] = []
    patients: dict[str, None] = {}  # a dict keeps the order shown
    for record in records:
        ids.append(str(record.public_id))  # type: ignore[attr-defined]
        owner = patient_of(record, patient)
        if owner is not None:
            patients[str(owner.public_id)] = None
    return ids, list(patients)


def records_viewed_by_ids(*, actor: User, model: type[Model], shown: Shown, via: str) -> AuditEvent:
    """`records_viewed` from the ids `shown_ids` took of the records shown."""
    ids, patients = shown
    return audit_record(
        actor=actor,
        action=f"{record_kind(model)}.list_viewed",
        target_type=model._meta.label,
        patient_public_id=uuid.UUID(patients[0]) if len(patients) == 1 else None,
        data={"via": via, "rows": len(ids), "ids": list(ids), "patients": list(patients)},
    )
