"""The read audit's service: one event per read, naming records and patients by id only."""

from __future__ import annotations

from typing import Any

import pytest

from kaemdr import read_services
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.selectors import audit_events_for_user
from pathways.models import Pathway
from pathways.models import Patient
from screening.models import SafetyAlert
from sessions.models import EmdrTarget

from ..factories import PathwayFactory

pytestmark = pytest.mark.django_db


def test_record_kind_is_the_models_name_in_snake_case() -> None:
    assert read_services.record_kind(SafetyAlert) == "safety_alert"
    assert read_services.record_kind(EmdrTarget) == "emdr_target"
    assert read_services.record_kind(Patient) == "patient"


def test_a_list_read_names_each_row_and_each_patient_once_in_the_order_shown(
    clinic: Any, prescriber: User
) -> None:
    first, second = (
        PathwayFactory(clinic=clinic, prescriber=prescriber, patient__registered_by=prescriber)
        for _ in range(2)
    )
    again = PathwayFactory(clinic=clinic, prescriber=prescriber, patient=first.patient, stage="completed")
    rows = list(Pathway.objects.filter(pk__in=[second.pk, first.pk, again.pk]).order_by("-pk"))
    event = read_services.records_viewed(
        actor=prescriber, model=Pathway, records=rows, patient="patient", via="page"
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.target_type, stored.target_public_id) == (
        "pathway.list_viewed",
        "pathways.Pathway",
        None,
    )
    assert stored.patient_public_id is None  # two patients: the data names them
    assert stored.data == {
        "via": "page",
        "rows": 3,
        "ids": [str(row.public_id) for row in rows],
        "patients": list(dict.fromkeys(str(row.patient.public_id) for row in rows)),
    }
    assert stored.actor_public_id == prescriber.public_id
    assert stored.clinic_public_id == clinic.public_id


def test_a_list_of_one_patients_records_names_the_patient_for_the_audit_logs_filter(
    pathway: Pathway, prescriber: User
) -> None:
    event = read_services.records_viewed(
        actor=prescriber, model=Pathway, records=[pathway], patient="patient", via="api"
    )
    assert event.patient_public_id == pathway.patient.public_id


def test_the_audit_logs_patient_filter_finds_the_lists_that_showed_the_patient(
    clinic: Any, prescriber: User, staff: dict[str, User]
) -> None:
    first, second, third = (
        Pathway.objects.get(
            pk=PathwayFactory(clinic=clinic, prescriber=prescriber, patient__registered_by=prescriber).pk
        )
        for _ in range(3)
    )
    shown_two = read_services.records_viewed(
        actor=prescriber, model=Pathway, records=[first, second], patient="patient", via="page"
    )
    shown_third = read_services.records_viewed(
        actor=prescriber, model=Pathway, records=[third], patient="patient", via="api"
    )
    admin = staff[Role.CLINIC_ADMIN]
    for pathway, expected in ((first, [shown_two]), (second, [shown_two]), (third, [shown_third])):
        found = audit_events_for_user(admin, patient_public_id=pathway.patient.public_id)
        assert [e.pk for e in found if e.action.endswith(".list_viewed")] == [e.pk for e in expected]


def test_an_empty_list_read_is_still_recorded(prescriber: User) -> None:
    event = read_services.records_viewed(
        actor=prescriber, model=SafetyAlert, records=[], patient="pathway.patient", via="api"
    )
    assert (event.action, event.patient_public_id, event.data) == (
        "safety_alert.list_viewed",
        None,
        {"via": "api", "rows": 0, "ids": [], "patients": []},
    )


def test_one_records_read_names_it_and_its_patient(pathway: Pathway, prescriber: User) -> None:
    event = read_services.record_viewed(actor=prescriber, record=pathway, patient="patient", via="page")
    assert (event.action, event.target_public_id, event.patient_public_id, event.data) == (
        "pathway.viewed",
        pathway.public_id,
        pathway.patient.public_id,
        {"via": "page"},
    )


def test_a_patients_read_names_the_patient_as_its_own_patient(pathway: Pathway, prescriber: User) -> None:
    patient = pathway.patient
    event = read_services.record_viewed(actor=prescriber, record=patient, patient="", via="page")
    assert (event.action, event.target_public_id, event.patient_public_id) == (
        "patient.viewed",
        patient.public_id,
        patient.public_id,
    )
