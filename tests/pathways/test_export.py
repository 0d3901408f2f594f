"""The subject access export: a prescriber downloads a patient's whole record as JSON (every app's
records, found through the relations, and nobody else's), audited, in a number of queries that
does not grow with the record; other roles and other clinics get 404."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import FieldError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Patient
from tests.factories import PathwayFactory
from tests.factories import SignedScreeningFactory

pytestmark = pytest.mark.django_db
OUR_PACKAGES = {"pathways", "screening", "sessions", "integration"}


# Ways from a record to its patient, tried in order (independent of how the export finds them).
PATHS_TO_PATIENT = (
    "patient",
    "pathway__patient",
    "session__booking__pathway__patient",
    "booking__pathway__patient",
    "assessment__pathway__patient",
    "measure_response__pathway__patient",
    "plan__pathway__patient",
    "log__plan__pathway__patient",
    "target__plan__pathway__patient",
    "note__pathway__patient",
    "experiment__pathway__patient",
    "session__plan__pathway__patient",
)


def rows_linked_to(patient: Patient) -> dict[str, int]:
    """How many rows of each of our models belong to the patient, worked out independently of the
    export, through the first path to the patient that the model has."""
    counts: dict[str, int] = {}
    for model in apps.get_models():
        if model.__module__.split(".")[0] not in OUR_PACKAGES or model is Patient:
            continue
        for path in PATHS_TO_PATIENT:
            try:
                count = model._default_manager.filter(**{path: patient}).count()
            except (FieldError, ValueError):
                continue
            if count:
                counts[model._meta.label] = count
            break
    return counts


@pytest.fixture
def treated(dosing_pathway: Any, complete_session: Callable[..., Any]) -> Patient:
    complete_session(dosing_pathway)
    complete_session(dosing_pathway)
    return dosing_pathway.patient


def download(client: Client, patient: Patient) -> Any:
    return client.get(reverse("patient_export_download", args=[patient.public_id]))


def test_a_prescriber_downloads_the_whole_record_and_nobody_elses(
    treated: Patient,
    clinic: Any,
    prescriber: User,
    therapist: User,
    client_for: Callable[[User], Client],
    complete_session: Callable[..., Any],
) -> None:
    neighbour = PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        therapist=therapist,
        stage="dosing",
        patient__registered_by=prescriber,
    )
    SignedScreeningFactory(pathway=neighbour)
    complete_session(neighbour)
    client = client_for(prescriber)
    client.get(reverse("patient_detail", args=[treated.public_id]))  # a view, to show in the trail
    response = download(client, treated)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="kaemdr-')
    assert response["Cache-Control"] == "no-store"
    data = json.loads(response.content)
    assert data["patient"]["record_number"] == treated.record_number
    assert data["export"]["generated_by"] == prescriber.full_name
    exported = {label: len(rows) for label, rows in data["records"].items()}
    expected = rows_linked_to(treated)
    for label, count in expected.items():
        assert exported.get(label) == count, label
    for label in (
        "pathways.Pathway",
        "pathways.PathwayStageChange",
        "screening.Assessment",
        "dosing.Booking",
        "dosing.DosingSession",
        "dosing.VitalsReading",
        "integration.FollowUp",
    ):
        assert exported.get(label, 0) > 0, label
    text = response.content.decode()
    assert str(neighbour.public_id) not in text
    assert str(neighbour.patient.public_id) not in text
    # references are public ids, staff are named, and internal keys are left out
    session = data["records"]["dosing.DosingSession"][0]
    assert "id" not in session
    assert session["booking"] in {row["public_id"] for row in data["records"]["dosing.Booking"]}
    assert data["records"]["pathways.Pathway"][0]["prescriber"] == prescriber.full_name
    assert any(row["action"] == "patient.viewed" for row in data["audit_trail"])
    event = AuditEvent.objects.filter(action="patient.exported").get()
    assert event.patient_public_id == treated.public_id
    assert event.actor_public_id == prescriber.public_id
    assert event.data["records"] == sum(exported.values()) + 1


def test_the_export_page_offers_the_json_and_each_pathways_pdf(
    treated: Patient, prescriber: User, client_for: Callable[[User], Client]
) -> None:
    page = client_for(prescriber).get(reverse("patient_export", args=[treated.public_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert reverse("patient_export_download", args=[treated.public_id]) in html
    assert "PDF summary" in html or "summary" in html.lower()
    detail = client_for(prescriber).get(reverse("patient_detail", args=[treated.public_id])).content.decode()
    assert reverse("patient_export", args=[treated.public_id]) in detail


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN])
def test_other_roles_cannot_export(
    treated: Patient, staff: dict[str, User], client_for: Callable[[User], Client], role: str
) -> None:
    client = client_for(staff[role])
    assert download(client, treated).status_code == 404
    assert client.get(reverse("patient_export", args=[treated.public_id])).status_code == 404
    api = APIClient()
    api.force_authenticate(staff[role])
    assert api.get(f"/api/v1/patients/{treated.public_id}/export/").status_code == 404
    assert not AuditEvent.objects.filter(action="patient.exported").exists()
    detail = client.get(reverse("patient_detail", args=[treated.public_id]))
    if detail.status_code == 200:
        assert reverse("patient_export", args=[treated.public_id]) not in detail.content.decode()


def test_another_clinics_prescriber_gets_404(
    treated: Patient, other_clinic: Any, make_user: Callable[..., User], client_for: Callable[[User], Client]
) -> None:
    outsider = make_user(Role.PRESCRIBER, clinic=other_clinic)
    assert download(client_for(outsider), treated).status_code == 404
    api = APIClient()
    api.force_authenticate(outsider)
    assert api.get(f"/api/v1/patients/{treated.public_id}/export/").status_code == 404


def test_the_api_gives_the_same_document(
    treated: Patient, prescriber: User, client_for: Callable[[User], Client]
) -> None:
    api = APIClient()
    api.force_authenticate(prescriber)
    response = api.get(f"/api/v1/patients/{treated.public_id}/export/")
    assert response.status_code == 200
    from_api = response.json()
    from_page = json.loads(download(client_for(prescriber), treated).content)
    for document in (from_api, from_page):
        document["export"].pop("generated_at")
        document["audit_trail"] = [
            row for row in document["audit_trail"] if row["action"] != "patient.exported"
        ]
    assert from_api["records"] == from_page["records"]
    assert from_api["patient"] == from_page["patient"]


def test_queries_do_not_grow_with_the_record(
    dosing_pathway: Any, prescriber: User, complete_session: Callable[..., Any]
) -> None:
    from pathways import services

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            services.patient_export(actor=prescriber, patient=dosing_pathway.patient)
        return len(captured)

    complete_session(dosing_pathway)
    one = queries()
    for _ in range(4):
        complete_session(dosing_pathway)
    assert queries() == one


def test_every_demo_patients_export_holds_every_record_of_theirs() -> None:
    """On the demo clinic, with EMDR plans and logs, integration notes and experiments: each
    patient's export holds exactly the rows that lead back to them."""
    from pathways.demo import demo_clinic_load

    demo_clinic_load()
    prescriber = User.objects.get(email="prescriber@demo.kaemdr.test")
    labels: set[str] = set()
    for patient in Patient.objects.filter(clinic=prescriber.clinic):
        from pathways import services

        data = services.patient_export(actor=prescriber, patient=patient)
        exported = {label: len(rows) for label, rows in data["records"].items()}
        assert exported == rows_linked_to(patient), patient.record_number
        labels |= set(exported)
    assert {
        "dosing.EmdrPlan",
        "dosing.EmdrSessionLog",
        "integration.IntegrationNote",
        "integration.Experiment",
    } <= labels
