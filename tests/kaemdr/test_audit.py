"""The audit trail: append-only everywhere (ORM, database, admin, API), and filtered for admins."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.admin.sites import site
from django.db import DatabaseError
from django.db import connection
from django.db import transaction
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from kaemdr.audit import audit_record
from kaemdr.models import AuditEvent
from kaemdr.models import AuditEventImmutable
from kaemdr.models import Role
from kaemdr.models import User

from ..factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(clinic_admin: User) -> AuditEvent:
    return audit_record(
        actor=clinic_admin,
        action="test.event",
        target_type="kaemdr.User",
        target_public_id=clinic_admin.public_id,
    )


def test_orm_refuses_to_change_or_delete_an_event(event: AuditEvent) -> None:
    event.action = "tampered"
    with pytest.raises(AuditEventImmutable):
        event.save()
    with pytest.raises(AuditEventImmutable):
        event.delete()
    with pytest.raises(AuditEventImmutable):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(AuditEventImmutable):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


@pytest.mark.parametrize(
    "statement", ["UPDATE kaemdr_auditevent SET action = 'tampered'", "DELETE FROM kaemdr_auditevent"]
)
def test_database_refuses_raw_changes(event: AuditEvent, statement: str) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


def test_django_admin_is_read_only_for_audit_events(event: AuditEvent, db: None) -> None:
    superuser = User.objects.create_superuser(email="ops@example.test", password="x", full_name="Ops")
    request = RequestFactory().get("/admin/")
    request.user = superuser
    model_admin = site._registry[AuditEvent]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)


def test_api_offers_no_way_to_change_events(event: AuditEvent, clinic_admin: User) -> None:
    client = APIClient()
    client.force_authenticate(clinic_admin)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/v1/audit-events/", {}, format="json")
        assert response.status_code == 405
        response = getattr(client, method)(f"/api/v1/audit-events/{event.public_id}/", {}, format="json")
        assert response.status_code == 404
    assert AuditEvent.objects.filter(pk=event.pk, action="test.event").exists()


def test_audit_log_filters_by_patient_user_and_date(
    clinic_admin: User, prescriber: User, monitor: User, client_for: Any
) -> None:
    patient = PatientFactory(clinic=clinic_admin.clinic, registered_by=prescriber)
    other = PatientFactory(clinic=clinic_admin.clinic, registered_by=prescriber)
    audit_record(
        actor=prescriber,
        action="patient.viewed",
        target_type="pathways.Patient",
        patient_public_id=patient.public_id,
    )
    audit_record(
        actor=monitor,
        action="patient.viewed",
        target_type="pathways.Patient",
        patient_public_id=other.public_id,
    )
    client = client_for(clinic_admin)

    by_patient = (
        client.get(reverse("audit_log"), {"record_number": patient.record_number.lower()})
        .context["page"]
        .object_list
    )
    assert [e.patient_public_id for e in by_patient] == [patient.public_id]

    by_user = client.get(reverse("audit_log"), {"actor": str(monitor.public_id)}).context["page"].object_list
    assert [e.actor_public_id for e in by_user] == [monitor.public_id]

    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert len(client.get(reverse("audit_log"), {"occurred_from": tomorrow}).context["page"].object_list) == 0

    unknown = client.get(reverse("audit_log"), {"record_number": "NOPE"})
    assert "No patient of this clinic has this record number." in unknown.content.decode()
    backwards = client.get(reverse("audit_log"), {"occurred_from": "2026-05-02", "occurred_to": "2026-05-01"})
    assert "The end date is before the start date." in backwards.content.decode()


def test_audit_api_filters_and_scopes(clinic_admin: User, prescriber: User, other_clinic: Any) -> None:
    from ..factories import UserFactory

    outsider = UserFactory(clinic=other_clinic, role=Role.PRESCRIBER)
    audit_record(actor=outsider, action="patient.viewed", target_type="pathways.Patient")
    mine = audit_record(actor=prescriber, action="patient.viewed", target_type="pathways.Patient")
    client = APIClient()
    client.force_authenticate(clinic_admin)
    rows = client.get("/api/v1/audit-events/").json()["results"]
    assert [row["id"] for row in rows] == [str(mine.public_id)]
    bad = client.get("/api/v1/audit-events/", {"occurred_from": "2026-05-02", "occurred_to": "2026-05-01"})
    assert bad.status_code == 400
    assert bad.json()["errors"] == [
        {"field": "occurred_to", "code": "date_order", "message": "The end date is before the start date."}
    ]
