"""Pages: the access matrix, bad input kept and explained, audit of views, and flat query counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kaemdr.audit import audit_record
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from pathways.models import Patient
from pathways.models import Stage

from ..access import snapshot
from ..factories import PathwayFactory
from ..factories import PatientFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db

PATIENT_POST = {
    "record_number": "HB-3001",
    "given_name": "Noor",
    "family_name": "Haddad",
    "date_of_birth": "1990-04-12",
    "phone": "07700 900321",
    "email": "noor@example.org",
    "emergency_contact_name": "Sami Haddad",
    "emergency_contact_relationship": "Brother",
    "emergency_contact_phone": "07700 900654",
    "emergency_contact_can_escort": "on",
}

ALL_ROLES = tuple(Role.values)
CLINICAL_VIEWERS = (Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN)


def _routes(
    pathway: Pathway, bare_patient: Patient
) -> list[tuple[str, str, str, dict[str, Any], tuple[str, ...], int]]:
    """(name, method, url, data, roles allowed, status when allowed)."""
    patient = pathway.patient
    return [
        ("dashboard", "get", reverse("dashboard"), {}, ALL_ROLES, 200),
        ("patient_list", "get", reverse("patient_list"), {}, CLINICAL_VIEWERS, 200),
        ("patient_register_form", "get", reverse("patient_register"), {}, (Role.PRESCRIBER,), 200),
        ("patient_register", "post", reverse("patient_register"), PATIENT_POST, (Role.PRESCRIBER,), 302),
        (
            "patient_detail",
            "get",
            reverse("patient_detail", args=[patient.public_id]),
            {},
            CLINICAL_VIEWERS,
            200,
        ),
        (
            "patient_edit_form",
            "get",
            reverse("patient_edit", args=[patient.public_id]),
            {},
            (Role.PRESCRIBER,),
            200,
        ),
        (
            "patient_edit",
            "post",
            reverse("patient_edit", args=[patient.public_id]),
            {**PATIENT_POST, "record_number": patient.record_number, "phone": "07700 111222"},
            (Role.PRESCRIBER,),
            302,
        ),
        (
            "pathway_open_form",
            "get",
            reverse("pathway_open", args=[bare_patient.public_id]),
            {},
            (Role.PRESCRIBER,),
            200,
        ),
        (
            "pathway_open",
            "post",
            reverse("pathway_open", args=[bare_patient.public_id]),
            {"prescriber": str(pathway.prescriber.public_id)},
            (Role.PRESCRIBER,),
            302,
        ),
        (
            "pathway_detail",
            "get",
            reverse("pathway_detail", args=[pathway.public_id]),
            {},
            CLINICAL_VIEWERS,
            200,
        ),
        (
            "pathway_move",
            "post",
            reverse("pathway_move", args=[pathway.public_id]),
            {"to_stage": Stage.ASSESSMENT, "reason": "Referral reviewed.", "expected_stage": Stage.REFERRAL},
            (Role.PRESCRIBER,),
            302,
        ),
        (
            "pathway_care_team",
            "post",
            reverse("pathway_care_team", args=[pathway.public_id]),
            {"prescriber": str(pathway.prescriber.public_id), "therapist": ""},
            (Role.PRESCRIBER,),
            302,
        ),
        ("audit_log", "get", reverse("audit_log"), {}, (Role.CLINIC_ADMIN,), 200),
        ("staff_list", "get", reverse("staff_list"), {}, (Role.CLINIC_ADMIN,), 200),
        ("staff_invite_form", "get", reverse("staff_invite"), {}, (Role.CLINIC_ADMIN,), 200),
        (
            "staff_invite",
            "post",
            reverse("staff_invite"),
            {"full_name": "New Nurse", "email": "new.nurse@example.test", "role": Role.MONITOR},
            (Role.CLINIC_ADMIN,),
            302,
        ),
        (
            "staff_deactivate",
            "post",
            reverse("staff_deactivate", args=[pathway.therapist.public_id]),
            {},
            (Role.CLINIC_ADMIN,),
            302,
        ),
    ]


ROUTE_NAMES = [
    "dashboard",
    "patient_list",
    "patient_register_form",
    "patient_register",
    "patient_detail",
    "patient_edit_form",
    "patient_edit",
    "pathway_open_form",
    "pathway_open",
    "pathway_detail",
    "pathway_move",
    "pathway_care_team",
    "audit_log",
    "staff_list",
    "staff_invite_form",
    "staff_invite",
    "staff_deactivate",
]


# Routes without an object id: an outsider simply sees their own clinic there (tested below).
CLINIC_WIDE_ROUTES = {
    "dashboard",
    "patient_list",
    "staff_list",
    "audit_log",
    "staff_invite_form",
    "staff_invite",
    "patient_register_form",
    "patient_register",
}


# Whole pages (no record) a role may not use: explained with a 403 page rather than a bare 404.
EXPLAINED_REFUSALS = {"patient_register_form": 403, "patient_register": 403}


@pytest.fixture
def world(staff: dict[str, User], clinic: Any, other_clinic: Any) -> dict[str, Any]:
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        patient__registered_by=staff[Role.PRESCRIBER],
    )
    bare_patient = PatientFactory(clinic=clinic, registered_by=staff[Role.PRESCRIBER])
    outsiders = {role: UserFactory(clinic=other_clinic, role=role) for role in Role.values}
    return {"pathway": pathway, "bare_patient": bare_patient, "staff": staff, "outsiders": outsiders}


def _call(client: Client, method: str, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data) if method == "post" else client.get(url)


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
def test_access_matrix_for_pages(
    route_name: str, world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    routes = {r[0]: r for r in _routes(world["pathway"], world["bare_patient"])}
    _, method, url, data, allowed, ok_status = routes[route_name]

    # Anonymous: sent to sign in, nothing written.
    before = snapshot()
    response = _call(client_for(None), method, url, data)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert snapshot() == before

    # Wrong role at the same clinic, and the allowed role at another clinic: 404, nothing written.
    refused = [world["staff"][role] for role in ALL_ROLES if role not in allowed]
    if route_name not in CLINIC_WIDE_ROUTES:
        refused += [world["outsiders"][role] for role in allowed]
    for user in refused:
        before = snapshot()
        response = _call(client_for(user), method, url, data)
        assert response.status_code == EXPLAINED_REFUSALS.get(route_name, 404), (route_name, user.role)
        assert snapshot() == before, (route_name, user.role)

    # Allowed: works.
    for role in allowed:
        response = _call(client_for(world["staff"][role]), method, url, data)
        assert response.status_code == ok_status, (
            route_name,
            role,
            getattr(response, "context", None)
            and response.context.get("form")
            and response.context["form"].errors,
        )
        if method == "post":
            break  # one successful write is enough; a second may legitimately be refused


def test_clinic_wide_pages_show_only_the_users_clinic(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    outsider_patient = PatientFactory(
        clinic=world["outsiders"][Role.PRESCRIBER].clinic,
        registered_by=world["outsiders"][Role.PRESCRIBER],
        family_name="Zzyzx",
    )
    for role in CLINICAL_VIEWERS:
        body = client_for(world["staff"][role]).get(reverse("patient_list")).content.decode()
        assert "Zzyzx" not in body
        assert outsider_patient.record_number not in body
    staff_page = client_for(world["staff"][Role.CLINIC_ADMIN]).get(reverse("staff_list")).content.decode()
    for outsider in world["outsiders"].values():
        assert outsider.email not in staff_page


def test_therapist_sees_only_care_team_patients(
    world: dict[str, Any], client_for: Callable[[User | None], Client], clinic: Any
) -> None:
    other_therapist = UserFactory(clinic=clinic, role=Role.THERAPIST)
    client = client_for(other_therapist)
    assert client.get(reverse("patient_detail", args=[world["pathway"].patient.public_id])).status_code == 404
    assert client.get(reverse("pathway_detail", args=[world["pathway"].public_id])).status_code == 404
    assert world["pathway"].patient.record_number not in client.get(reverse("patient_list")).content.decode()


def test_missing_and_malformed_ids_are_404(
    client_for: Callable[[User | None], Client], prescriber: User
) -> None:
    client = client_for(prescriber)
    assert client.get("/patients/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/patients/42/").status_code == 404


def test_register_patient_with_bad_input_keeps_the_input_and_explains(
    client_for: Callable[[User | None], Client], prescriber: User, patient: Patient
) -> None:
    client = client_for(prescriber)
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    before = snapshot()
    response = client.post(
        reverse("patient_register"),
        {
            **PATIENT_POST,
            "record_number": patient.record_number.lower(),
            "date_of_birth": future,
            "emergency_contact_name": "",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "This field is required." in body  # emergency contact name
    assert snapshot() == before
    # The form has no error for the dates until the required fields are in; fill them and retry.
    response = client.post(
        reverse("patient_register"),
        {**PATIENT_POST, "record_number": patient.record_number.lower(), "date_of_birth": future},
    )
    body = response.content.decode()
    assert "Another patient of this clinic has this record number." in body
    assert "The date of birth cannot be in the future." in body
    assert 'value="Noor"' in body  # the rest of the input is kept
    assert snapshot() == before


def test_move_without_a_reason_is_refused_on_the_page(
    client_for: Callable[[User | None], Client], pathway: Pathway
) -> None:
    client = client_for(pathway.prescriber)
    before = snapshot()
    response = client.post(
        reverse("pathway_move", args=[pathway.public_id]),
        {"to_stage": Stage.ASSESSMENT, "reason": "", "expected_stage": Stage.REFERRAL},
    )
    assert response.status_code == 400
    assert "Give a reason for the move." in response.content.decode()
    assert snapshot()[1:] == before[1:]  # only the view of the page was audited
    pathway.refresh_from_db()
    assert pathway.stage == Stage.REFERRAL


def test_refused_move_by_direct_post_explains_why(
    client_for: Callable[[User | None], Client], pathway: Pathway
) -> None:
    client = client_for(pathway.prescriber)
    response = client.post(
        reverse("pathway_move", args=[pathway.public_id]),
        {"to_stage": Stage.COMPLETED, "reason": "Skip everything."},
    )
    assert response.status_code == 400
    assert "cannot move to completed" in response.content.decode()
    assert PathwayStageChange.objects.filter(pathway=pathway).count() == 1


def test_second_tab_move_is_refused_as_stale(
    client_for: Callable[[User | None], Client], pathway: Pathway
) -> None:
    client = client_for(pathway.prescriber)
    url = reverse("pathway_move", args=[pathway.public_id])
    first = client.post(
        url, {"to_stage": Stage.ASSESSMENT, "reason": "Tab one.", "expected_stage": Stage.REFERRAL}
    )
    second = client.post(
        url, {"to_stage": Stage.ON_HOLD, "reason": "Tab two.", "expected_stage": Stage.REFERRAL}
    )
    assert first.status_code == 302
    assert second.status_code == 400
    assert "has moved to assessment since you opened the page" in second.content.decode()
    pathway.refresh_from_db()
    assert pathway.stage == Stage.ASSESSMENT


def test_viewing_a_patient_and_a_pathway_is_audited(
    client_for: Callable[[User | None], Client], pathway: Pathway, monitor: User
) -> None:
    client = client_for(monitor)
    client.get(reverse("patient_detail", args=[pathway.patient.public_id]))
    client.get(reverse("pathway_detail", args=[pathway.public_id]))
    client.get(reverse("patient_list"))
    actions = list(
        AuditEvent.objects.filter(actor_public_id=monitor.public_id)
        .exclude(action__startswith="auth.")
        .order_by("id")
        .values_list("action", "patient_public_id")
    )
    assert actions == [
        ("patient.viewed", pathway.patient.public_id),
        ("pathway.viewed", pathway.patient.public_id),
        ("patient.list_viewed", pathway.patient.public_id),  # the list shows only this patient
    ]
    request_ids = set(
        AuditEvent.objects.exclude(action__startswith="auth.").values_list("request_id", flat=True)
    )
    assert len(request_ids) == 3
    assert "" not in request_ids


def test_dates_show_in_the_clinics_time_zone(
    client_for: Callable[[User | None], Client], pathway: Pathway, clinic: Any
) -> None:
    clinic.time_zone = "Australia/Sydney"
    clinic.save()
    change = pathway.stage_changes.get()
    change.changed_at = dt.datetime(2026, 7, 1, 15, 30, tzinfo=dt.UTC)  # 01:30 on 2 July in Sydney
    change.save()
    body = (
        client_for(pathway.prescriber)
        .get(reverse("pathway_detail", args=[pathway.public_id]))
        .content.decode()
    )
    assert "2 Jul 2026, 01:30" in body


def _seed_pathways(clinic: Any, prescriber: User, therapist: User, count: int) -> None:
    for _ in range(count):
        PathwayFactory(
            clinic=clinic, prescriber=prescriber, therapist=therapist, patient__registered_by=prescriber
        )


@pytest.mark.parametrize(
    ("url_name", "role"),
    [
        ("dashboard", Role.PRESCRIBER),
        ("dashboard", Role.THERAPIST),
        ("dashboard", Role.MONITOR),
        ("dashboard", Role.CLINIC_ADMIN),
        ("patient_list", Role.PRESCRIBER),
        ("patient_list", Role.THERAPIST),
        ("audit_log", Role.CLINIC_ADMIN),
        ("staff_list", Role.CLINIC_ADMIN),
    ],
)
def test_list_pages_query_count_does_not_grow(
    url_name: str,
    role: str,
    staff: dict[str, User],
    clinic: Any,
    client_for: Callable[[User | None], Client],
) -> None:
    client = client_for(staff[role])
    url = reverse(url_name)

    def queries_for(extra: int) -> int:
        _seed_pathways(clinic, staff[Role.PRESCRIBER], staff[Role.THERAPIST], extra)
        for index in range(extra):
            member = UserFactory(clinic=clinic, role=Role.MONITOR, email=f"m{extra}-{index}@example.test")
            seen = PatientFactory(clinic=clinic, registered_by=staff[Role.PRESCRIBER])
            audit_record(
                actor=member,
                action="patient.viewed",
                target_type="pathways.Patient",
                patient_public_id=seen.public_id,
            )
        client.get(url)  # warm the session
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = queries_for(3)
    large = queries_for(27)  # 30 in all
    assert small == large, f"{url_name} as {role}: {small} queries with 3 rows, {large} with 30"
    assert small <= 11
    print(f"{url_name} as {role}: {small} queries")


@pytest.mark.parametrize("url_name", ["patient_detail", "pathway_detail"])
def test_detail_pages_query_count_does_not_grow(
    url_name: str, pathway: Pathway, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(pathway.prescriber)
    target = pathway.patient.public_id if url_name == "patient_detail" else pathway.public_id
    url = reverse(url_name, args=[target])
    client.get(url)

    def measure() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = measure()
    for index in range(30):
        PathwayStageChange.objects.create(
            pathway=pathway,
            from_stage=Stage.REFERRAL,
            to_stage=Stage.ON_HOLD,
            reason=f"Change {index}",
            changed_by=UserFactory(clinic=pathway.clinic, role=Role.PRESCRIBER),
            changed_at=pathway.stage_changed_at,
        )
        if url_name == "patient_detail":
            PathwayFactory(
                clinic=pathway.clinic,
                patient=pathway.patient,
                stage=Stage.COMPLETED,
                prescriber=UserFactory(clinic=pathway.clinic, role=Role.PRESCRIBER),
                therapist=UserFactory(clinic=pathway.clinic, role=Role.THERAPIST),
            )
    large = measure()
    assert small == large, f"{url_name}: {small} queries before, {large} with 30 more rows"
    # Issue 9: every page within 12 queries, the pathway page with all its stages' sections included
    # (every page at two data sizes: tests/test_query_counts.py).
    assert small <= 11


def test_dashboard_lists_the_longest_waiting_of_each_stage_and_links_to_all(
    staff: dict[str, User], clinic: Any, client_for: Callable[[User | None], Client]
) -> None:
    from pathways.selectors import DASHBOARD_PATHWAYS_PER_STAGE

    prescriber, therapist = staff[Role.PRESCRIBER], staff[Role.THERAPIST]
    count = DASHBOARD_PATHWAYS_PER_STAGE + 3
    _seed_pathways(clinic, prescriber, therapist, count)
    mine = list(Pathway.objects.filter(prescriber=prescriber).order_by("stage_changed_at", "id"))
    stage = mine[0].stage
    assert all(p.stage == stage for p in mine)
    body = client_for(prescriber).get(reverse("dashboard")).content.decode()
    link = reverse("my_pathways_in_stage", args=[stage])
    assert f"the {DASHBOARD_PATHWAYS_PER_STAGE} longest waiting of {count}" in body
    assert f'href="{link}"' in body
    shown = [p for p in mine if reverse("pathway_detail", args=[p.public_id]) in body]
    assert shown == mine[:DASHBOARD_PATHWAYS_PER_STAGE]


def test_my_pathways_in_stage_lists_only_the_users_own_paginated_and_audited(
    staff: dict[str, User], clinic: Any, client_for: Callable[[User | None], Client]
) -> None:
    from pathways.views import PATHWAYS_PER_PAGE

    prescriber, therapist = staff[Role.PRESCRIBER], staff[Role.THERAPIST]
    _seed_pathways(clinic, prescriber, therapist, PATHWAYS_PER_PAGE + 2)
    colleague = UserFactory(clinic=clinic, role=Role.PRESCRIBER)
    theirs = PathwayFactory(
        clinic=clinic, prescriber=colleague, therapist=None, patient__registered_by=colleague
    )
    stage = theirs.stage
    url = reverse("my_pathways_in_stage", args=[stage])
    client = client_for(prescriber)
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    first = client.get(url)
    assert first.status_code == 200
    viewed = list(AuditEvent.objects.filter(id__gt=before, action="pathway.list_viewed"))
    assert [(e.actor_public_id, e.data["via"], e.data["rows"]) for e in viewed] == [
        (prescriber.public_id, "my_pathways_in_stage", PATHWAYS_PER_PAGE)
    ]
    named = set(viewed[0].data["ids"])
    assert len(named) == PATHWAYS_PER_PAGE
    assert set(Pathway.objects.filter(public_id__in=named).values_list("prescriber", flat=True)) == {
        prescriber.pk
    }
    body = first.content.decode()
    assert f"{PATHWAYS_PER_PAGE + 2} pathways" in body
    assert reverse("pathway_detail", args=[theirs.public_id]) not in body
    assert "Page 1 of 2" in body
    second = client.get(url, {"page": 2}).content.decode()
    on_second = [p for p in Pathway.objects.filter(prescriber=prescriber) if str(p.public_id) in second]
    assert len(on_second) == 2
    # The therapist on the care team sees the same list; other roles and unknown stages get 404.
    assert client_for(therapist).get(url).status_code == 200
    for role in (Role.MONITOR, Role.CLINIC_ADMIN):
        assert client_for(staff[role]).get(url).status_code == 404
    assert client.get(reverse("my_pathways_in_stage", args=["no-such-stage"])).status_code == 404


def test_my_pathways_in_stage_query_count_does_not_grow(
    staff: dict[str, User], clinic: Any, client_for: Callable[[User | None], Client]
) -> None:
    prescriber, therapist = staff[Role.PRESCRIBER], staff[Role.THERAPIST]
    client = client_for(prescriber)

    def queries_for(extra: int) -> int:
        _seed_pathways(clinic, prescriber, therapist, extra)
        url = reverse("my_pathways_in_stage", args=[Pathway.objects.filter(prescriber=prescriber)[0].stage])
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = queries_for(3)
    large = queries_for(40)
    assert small == large <= 11
