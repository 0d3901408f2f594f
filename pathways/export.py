"""A patient's whole record as JSON, for a subject access request.

The record is found by following every relation that leads back to the patient, whatever app
defined it: the pathway knows nothing of screening, dosing or integration (imports run one way),
yet a model added to any of them later is in the export without a change here. A record is
reached through each foreign key that points at a record already collected (a pathway at the
patient, an assessment at the pathway, a vitals reading at the dosing session ...), one query per
relation and round, so the number of queries depends on the schema, never on how long the
patient has been treated.

Values are as stored, with references given as the other record's public id and staff by name.
Internal fields (storage names, database keys) are left out.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections import defaultdict
from typing import Any

from django.apps import apps
from django.db import models
from django.utils import timezone

from kaemdr.models import AuditEvent
from kaemdr.models import User

from .models import Patient

# Apps whose records belong to a patient (the kaemdr app holds staff and clinics, not patient data).
PATIENT_APPS = ("pathways", "screening", "dosing", "integration")  # app labels (sessions is "dosing")
# Fields that say nothing about the patient and only describe where or how the system keeps things.
INTERNAL_FIELDS = frozenset({"id", "file_name", "feed_token", "version"})
FORMAT_VERSION = 1


PublicIds = dict[tuple[Any, int], Any]


def _value(
    record: models.Model, field: models.Field[Any, Any], staff: dict[int, str], public_ids: PublicIds
) -> Any:
    if isinstance(field, models.ForeignKey):
        target_id = getattr(record, field.attname)
        if target_id is None:
            return None
        if field.related_model is User:
            return staff.get(target_id, "")
        public_id = public_ids.get((field.related_model, target_id))
        return str(public_id) if public_id is not None else target_id
    value = getattr(record, field.attname)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def _rows(records: list[models.Model], staff: dict[int, str], public_ids: PublicIds) -> list[dict[str, Any]]:
    rows = []
    for record in sorted(records, key=lambda r: r.pk):
        fields = [
            f
            for f in record._meta.concrete_fields
            if f.name not in INTERNAL_FIELDS and not (isinstance(f, models.ForeignKey) and f.name == "clinic")
        ]
        rows.append({field.name: _value(record, field, staff, public_ids) for field in fields})
    return rows


def collect_patient_records(patient: Patient) -> dict[type[models.Model], dict[int, models.Model]]:
    """Every record of the patient's apps reached from the patient through foreign keys, by model.

    Rounds: each relation into a model that gained records in the last round is queried once for
    those new records, until a round finds nothing new."""
    collected: dict[type[models.Model], dict[int, models.Model]] = defaultdict(dict)
    collected[Patient][patient.pk] = patient
    new: dict[type[models.Model], set[int]] = {Patient: {patient.pk}}
    relations = [
        field
        for model in apps.get_models()
        if model._meta.app_label in PATIENT_APPS
        for field in model._meta.concrete_fields
        if isinstance(field, models.ForeignKey) and field.related_model._meta.app_label in PATIENT_APPS
    ]
    while new:
        found: dict[type[models.Model], set[int]] = defaultdict(set)
        for field in relations:
            parent_ids = new.get(field.related_model)
            if not parent_ids:
                continue
            model = field.model
            for record in model._default_manager.filter(**{f"{field.attname}__in": parent_ids}):
                if record.pk not in collected[model]:
                    collected[model][record.pk] = record
                    found[model].add(record.pk)
        new = dict(found)
    return collected


def patient_export_data(patient: Patient, *, actor: User) -> dict[str, Any]:
    """The JSON document of a subject access export (see the module docstring)."""
    collected = collect_patient_records(patient)
    public_ids = {
        (type(record), record.pk): getattr(record, "public_id", None)
        for records in collected.values()
        for record in records.values()
    }
    staff_ids = {
        getattr(record, field.attname)
        for records in collected.values()
        for record in records.values()
        for field in record._meta.concrete_fields
        if isinstance(field, models.ForeignKey) and field.related_model is User
    }
    staff = dict(User.objects.filter(pk__in=staff_ids - {None}).values_list("pk", "full_name"))
    audit_trail = [
        {
            "at": event.occurred_at.isoformat(),
            "by": event.actor_label,
            "action": event.action,
            "record": event.target_type,
        }
        for event in AuditEvent.objects.filter(patient_public_id=patient.public_id).order_by(
            "occurred_at", "id"
        )
    ]
    records = {
        model._meta.label: _rows(list(by_pk.values()), staff, public_ids)
        for model, by_pk in sorted(collected.items(), key=lambda item: item[0]._meta.label)
        if model is not Patient and by_pk
    }
    return {
        "export": {
            "format_version": FORMAT_VERSION,
            "generated_at": timezone.now().isoformat(),
            "generated_by": actor.full_name,
            "clinic": actor.clinic.name if actor.clinic else "",
            "purpose": "subject access request",
        },
        "patient": _rows([patient], staff, public_ids)[0],
        "records": records,
        "audit_trail": audit_trail,
    }
