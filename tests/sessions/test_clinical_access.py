"""Least privilege (issue 18): a clinic admin sees a dosing session's logistics (room, times, staff,
status), not its clinical content, unless the clinic grants it. The capability table says so, and the
record's page, its API answer and its PDF summary follow it; the clinicians are unaffected."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from integration import summary_services
from integration.models import Summary
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import CLINIC_GRANTED_CAPABILITIES
from kaemdr.permissions import ROLE_CAPABILITIES
from kaemdr.permissions import Capability
from kaemdr.permissions import clinic_grant_for
from kaemdr.permissions import has_capability
from sessions.booking import selectors as booking_selectors
from sessions.clinic_settings import services as clinic_settings_services
from sessions.models import DosingSession
from sessions.models import DosingSettings
from sessions.record import selectors
from sessions.record import services
from sessions.record.api import SessionLogisticsSerializer

from ..access import snapshot
from ..factories import UserFactory
from .dosing_day import backdate_dose
from .dosing_day import discharge
from .dosing_day import open_record
from .dosing_day import settled

pytestmark = pytest.mark.django_db

GRANT = "clinic_admins_read_dosing_records"

LOT = "LOT-CLIN-4471"
ADVERSE_EVENT = "Transient nausea at the chair"
ADVERSE_ACTION = "Ondansetron given by mouth"
ADDENDUM = "Dose lot checked against the controlled drugs register"
CLINICAL_ON_PAGE = (
    LOT,
    ADVERSE_EVENT,
    ADVERSE_ACTION,
    ADDENDUM,
    'id="readings-heading"',  # the vitals table
    'id="vitals-trend"',
    'id="dosed-heading"',  # the dose, its lot and who gave it
    'id="scale-heading"',
    'id="ae-heading"',
    'id="addenda-heading"',
    "mmHg",
)
CLINICAL_IN_JSON = (
    "vitals",
    "dose_mg",
    "weight_kg",
    "lot_number",
    "device_times",
    "dose_started_at",
    "dose_ended_at",
    "override_reason",
    "dose_override_mg",
    "bp_review_reason",
    "dissociation_resolved",
    "discharged_at",
    "discharge_missing",
    "pmf_first_treatment",
    "pmf_medication_classes",
    "monitoring_form_missing",
    "leave_checklist",
    "fasting_confirmed",
    "escort_present",
    "consent_confirmed",
)
ROLES = (Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN)


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def grant(clinic: Any, *, on: bool) -> None:
    DosingSettings.objects.update_or_create(clinic=clinic, defaults={GRANT: on})


def reads_clinical(role: str, *, granted: bool) -> bool:
    """Who reads a dosing record's clinical content: the clinicians always, a clinic admin by grant."""
    return role != Role.CLINIC_ADMIN or granted


@pytest.fixture
def record(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> DosingSession:
    """A signed record with every kind of clinical content: vitals, a dose and its lot, scales, an
    adverse event, a discharge and an addendum."""
    monitor = staff[Role.MONITOR]
    session = open_record(staff, dosing_pathway, room, slot(0, 9), pre_dose=(131, 83))
    services.dose_start(actor=monitor, session=session, dose_mg=100, lot_number=LOT)
    backdate_dose(session, 100)
    settled(monitor, session, systolic=127, diastolic=81)
    services.adverse_event_record(
        actor=monitor,
        session=session,
        description=ADVERSE_EVENT,
        severity="mild",
        action_taken=ADVERSE_ACTION,
    )
    discharge(monitor, session)
    signed = services.session_sign(actor=monitor, session=session)
    services.session_addendum_add(actor=staff[Role.PRESCRIBER], session=signed, text=ADDENDUM)
    return signed


# --- The table -------------------------------------------------------------------------------------


def test_the_table_gives_clinical_reading_to_the_clinicians_and_to_clinic_admins_only_by_grant() -> None:
    holders = {
        role
        for role, capabilities in ROLE_CAPABILITIES.items()
        if Capability.SESSION_VIEW_CLINICAL in capabilities
    }
    assert holders == {Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR}
    assert CLINIC_GRANTED_CAPABILITIES == {Role.CLINIC_ADMIN: {Capability.SESSION_VIEW_CLINICAL: GRANT}}
    field = DosingSettings._meta.get_field(GRANT)
    assert field.default is False  # off until the clinic turns it on
    assert field.db_default is False  # rows loaded without it (COPY) are off too


def test_whoever_writes_or_carries_a_record_out_reads_its_clinical_content() -> None:
    """Recording, overriding, exporting the patient's record and the pathway summary all hold the
    record's content: each role that may do one of them reads it by the table, with no grant needed."""
    carriers = (
        Capability.SESSION_RECORD,
        Capability.SESSION_OVERRIDE,
        Capability.PATIENT_EXPORT,
        Capability.INTEGRATION_VIEW,
    )
    for role, capabilities in ROLE_CAPABILITIES.items():
        if capabilities & set(carriers):
            assert Capability.SESSION_VIEW_CLINICAL in capabilities, role


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("granted", [False, True])
def test_the_one_check_follows_the_table_and_the_clinics_grant(
    role: str, granted: bool, staff: dict[str, User], clinic: Any
) -> None:
    grant(clinic, on=granted)
    user = staff[role]
    assert has_capability(user, Capability.SESSION_VIEW_CLINICAL) == (role != Role.CLINIC_ADMIN)
    assert clinic_grant_for(user, Capability.SESSION_VIEW_CLINICAL) == (
        GRANT if role == Role.CLINIC_ADMIN else None
    )
    assert selectors.can_read_session_clinical(user) == reads_clinical(role, granted=granted)


def test_another_clinics_grant_gives_nothing_here(
    staff: dict[str, User],
    clinic: Any,
    other_clinic: Any,
    record: DosingSession,
    client_for: Callable[..., Client],
) -> None:
    grant(other_clinic, on=True)
    outsider = UserFactory(clinic=other_clinic, role=Role.CLINIC_ADMIN)
    assert selectors.can_read_session_clinical(outsider)  # for their own clinic's records
    assert not selectors.can_read_session_clinical(staff[Role.CLINIC_ADMIN])
    assert client_for(outsider).get(reverse("session_detail", args=[record.public_id])).status_code == 404
    assert api(outsider).get(f"/api/v1/sessions/{record.public_id}/").status_code == 404
    inactive = UserFactory(clinic=clinic, role=Role.CLINIC_ADMIN, is_active=False)
    grant(clinic, on=True)
    assert not selectors.can_read_session_clinical(inactive)


# --- The record's page -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("granted", [False, True])
def test_the_record_page_shows_clinical_content_only_to_its_readers(
    role: str,
    granted: bool,
    staff: dict[str, User],
    clinic: Any,
    record: DosingSession,
    client_for: Callable[..., Client],
) -> None:
    grant(clinic, on=granted)
    response = client_for(staff[role]).get(reverse("session_detail", args=[record.public_id]))
    assert response.status_code == 200
    page = response.content.decode()
    booking = record.booking
    # the logistics, for everyone who may see the booking
    for logistics in (
        booking.room.name,
        booking.patient.full_name,
        booking.monitor.full_name,
        booking.prescriber.full_name,
        'id="session-status"',
        "Signed",
    ):
        assert logistics in page, (role, logistics)
    shown = [marker for marker in CLINICAL_ON_PAGE if marker in page]
    if reads_clinical(role, granted=granted):
        assert shown == list(CLINICAL_ON_PAGE), role
        assert "sessions/session_detail.html" in {t.name for t in response.templates}
    else:
        assert shown == [], shown
        assert 'id="logistics-only"' in page
        assert "Summary (PDF)" not in page  # the summary carries the clinical content
        assert "sessions/session_detail.html" not in {t.name for t in response.templates}
        assert response.context["session"].signed_by == staff[Role.MONITOR]
        assert record.signed_at is not None


def test_the_logistics_page_is_audited_as_a_view_and_writes_nothing_else(
    staff: dict[str, User], record: DosingSession, client_for: Callable[..., Client]
) -> None:
    before = snapshot()
    client_for(staff[Role.CLINIC_ADMIN]).get(reverse("session_detail", args=[record.public_id]))
    viewed = AuditEvent.objects.filter(action="session.viewed", target_public_id=record.public_id)
    assert viewed.filter(actor_public_id=staff[Role.CLINIC_ADMIN].public_id).count() == 1
    assert snapshot()[1:] == before[1:]


# --- The API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("granted", [False, True])
def test_the_api_answers_the_whole_record_only_to_its_readers(
    role: str, granted: bool, staff: dict[str, User], clinic: Any, record: DosingSession
) -> None:
    grant(clinic, on=granted)
    response = api(staff[role]).get(f"/api/v1/sessions/{record.public_id}/")
    assert response.status_code == 200
    body = response.json()
    text = json.dumps(body)
    if reads_clinical(role, granted=granted):
        assert body["content"] == "clinical"
        assert body["lot_number"] == LOT
        assert [reading["systolic"] for reading in body["vitals"]] == [131, 127]
    else:
        assert body["content"] == "logistics"
        assert set(body) == set(SessionLogisticsSerializer.Meta.fields)
        assert not set(body) & set(CLINICAL_IN_JSON)
        for marker in (LOT, ADVERSE_EVENT, ADDENDUM, "systolic", "mg"):
            assert marker not in text, marker
        booking = record.booking
        assert body["status"] == "signed"
        assert body["room"] == {"id": str(booking.room.public_id), "name": booking.room.name}
        assert body["monitor"]["full_name"] == booking.monitor.full_name
        assert body["prescriber"]["full_name"] == booking.prescriber.full_name
        assert body["opened_by"]["full_name"] == staff[Role.MONITOR].full_name
        assert body["signed_by"]["full_name"] == staff[Role.MONITOR].full_name
        assert body["signed_at"] is not None
        assert body["opened_at"] is not None
        assert dt.datetime.fromisoformat(body["starts_at"]) == booking.starts_at


def test_the_schema_documents_both_answers_told_apart_by_content() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    answer = schema["paths"]["/api/v1/sessions/{id}/"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SessionRecord"}
    record = schema["components"]["schemas"]["SessionRecord"]
    assert record["discriminator"] == {
        "propertyName": "content",
        "mapping": {
            "clinical": "#/components/schemas/Session",
            "logistics": "#/components/schemas/SessionLogistics",
        },
    }
    logistics = schema["components"]["schemas"]["SessionLogistics"]["properties"]
    assert not set(logistics) & set(CLINICAL_IN_JSON)


# --- The PDF summary -------------------------------------------------------------------------------


@pytest.fixture
def summary(
    staff: dict[str, User],
    record: DosingSession,
    settings: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> Summary:
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    with django_capture_on_commit_callbacks(execute=True):
        asked = summary_services.summary_request(
            actor=staff[Role.MONITOR], kind="dosing_session", record_public_id=record.public_id
        )
    made = Summary.objects.get(pk=asked.pk)
    assert made.status == "ready", made.error
    return made


@pytest.mark.parametrize("granted", [False, True])
def test_the_summary_is_404_for_a_clinic_admin_without_the_grant(
    granted: bool,
    staff: dict[str, User],
    clinic: Any,
    record: DosingSession,
    summary: Summary,
    client_for: Callable[..., Client],
) -> None:
    grant(clinic, on=granted)
    admin = staff[Role.CLINIC_ADMIN]
    expected = 200 if granted else 404
    client = client_for(admin)
    for name in ("summary_detail", "summary_status", "summary_download"):
        assert client.get(reverse(name, args=[summary.public_id])).status_code == expected, name
    assert api(admin).get(f"/api/v1/summaries/{summary.public_id}/").status_code == expected
    assert api(admin).get(f"/api/v1/summaries/{summary.public_id}/download/").status_code == expected
    before = Summary.objects.count(), AuditEvent.objects.filter(action__startswith="summary.").count()
    asked = api(admin).post(
        "/api/v1/summaries/", {"kind": "dosing_session", "record": str(record.public_id)}, format="json"
    )
    assert asked.status_code == expected
    page = client.post(
        reverse("summary_request"), {"kind": "dosing_session", "record": str(record.public_id)}
    )
    assert page.status_code == (302 if granted else 404)
    if not granted:
        assert (
            Summary.objects.count(),
            AuditEvent.objects.filter(action__startswith="summary.").count(),
        ) == before
        downloads = AuditEvent.objects.filter(action="summary.downloaded", actor_public_id=admin.public_id)
        assert not downloads.exists()
    # the clinicians are unaffected
    assert (
        client_for(staff[Role.MONITOR]).get(reverse("summary_detail", args=[summary.public_id])).status_code
        == 200
    )


# --- The grant: the clinic admin's to change, audited ------------------------------------------------


def test_a_clinic_admin_turns_the_grant_on_from_the_settings_page_and_it_is_audited(
    staff: dict[str, User], clinic: Any, record: DosingSession, client_for: Callable[..., Client]
) -> None:
    admin = staff[Role.CLINIC_ADMIN]
    client = client_for(admin)
    page = client.get(reverse("dosing_settings"))
    assert 'name="clinic_admins_read_dosing_records"' in page.content.decode()
    assert page.context["form"].initial[GRANT] is False
    body = api(admin).get("/api/v1/dosing-settings/").json()
    assert body[GRANT] is False
    data = {name: body[name] for name in clinic_settings_services.DOSING_SETTING_FIELDS if name != GRANT}
    data[GRANT] = "on"
    for c in body["chair_times"]:
        for part in ("dosing", "monitoring", "turnover"):
            data[f"{part}_{c['agent']}_{c['route']}"] = c[f"{part}_minutes"]
    for r in body["dose_ranges"]:
        for part in ("minimum", "maximum"):
            data[f"{part}_{r['agent']}_{r['route']}"] = r[f"{part}_mg_per_kg"]
    assert client.post(reverse("dosing_settings"), data).status_code == 302
    assert selectors.can_read_session_clinical(admin)
    event = AuditEvent.objects.filter(action="dosing_settings.updated").latest("occurred_at")
    assert event.actor_public_id == admin.public_id
    assert event.data[GRANT] is True
    assert LOT in client.get(reverse("session_detail", args=[record.public_id])).content.decode()
    # and off again through the API
    current = api(admin).get("/api/v1/dosing-settings/").json()
    assert current[GRANT] is True
    off = api(admin).put("/api/v1/dosing-settings/", {**current, GRANT: False}, format="json")
    assert off.status_code == 200, off.json()
    assert off.json()[GRANT] is False
    assert (
        AuditEvent.objects.filter(action="dosing_settings.updated").latest("occurred_at").data[GRANT] is False
    )
    assert LOT not in client.get(reverse("session_detail", args=[record.public_id])).content.decode()


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR])
def test_only_a_clinic_admin_changes_the_grant(
    role: str, staff: dict[str, User], client_for: Callable[..., Client]
) -> None:
    before = snapshot(), DosingSettings.objects.filter(**{GRANT: True}).count()
    assert api(staff[role]).put("/api/v1/dosing-settings/", {GRANT: True}, format="json").status_code == 404
    assert client_for(staff[role]).post(reverse("dosing_settings"), {GRANT: "on"}).status_code == 404
    with pytest.raises(NotFoundOrForbidden):
        clinic_settings_services.dosing_settings_update(
            actor=staff[role], clinic_admins_read_dosing_records=True
        )
    assert (snapshot(), DosingSettings.objects.filter(**{GRANT: True}).count()) == before


def test_a_new_clinic_keeps_dosing_records_from_its_admins(clinic: Any, staff: dict[str, User]) -> None:
    assert not DosingSettings.objects.filter(clinic=clinic).exists()
    assert booking_selectors.dosing_settings_for(clinic.pk).clinic_admins_read_dosing_records is False
    assert not selectors.can_read_session_clinical(staff[Role.CLINIC_ADMIN])


def test_the_demo_clinic_shows_its_admin_a_sessions_logistics(client_for: Callable[..., Client]) -> None:
    from pathways.demo import demo_clinic_load

    demo = demo_clinic_load()
    admin = demo.staff["admin@demo.kaemdr.test"]
    assert not booking_selectors.dosing_settings_for(admin.member_clinic_id).clinic_admins_read_dosing_records
    signed = DosingSession.objects.get(booking__patient__record_number="HB-1004", status="signed")
    page = client_for(admin).get(reverse("session_detail", args=[signed.public_id])).content.decode()
    assert 'id="logistics-only"' in page
    assert signed.lot_number not in page
    clinical = client_for(demo.staff["prescriber@demo.kaemdr.test"]).get(
        reverse("session_detail", args=[signed.public_id])
    )
    assert signed.lot_number in clinical.content.decode()
