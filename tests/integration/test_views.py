"""Integration pages and API: who sees and writes what (another clinic and a forbidden role are the
same 404, and a refusal writes nothing), bad input answered next to the field with the rest kept,
views audited, and query counts that do not grow with the data."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from integration import services
from integration.models import Experiment
from integration.models import FollowUp
from integration.models import IntegrationNote
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from sessions.models import DosingSession

from ..access import snapshot
from ..factories import FollowUpFactory
from ..factories import PathwayFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def integration_snapshot() -> tuple[Any, ...]:
    return (
        *snapshot(),
        tuple(IntegrationNote.objects.order_by("pk").values_list("status", "perception_shift")),
        tuple(Experiment.objects.order_by("pk").values_list("state", "description")),
        tuple(FollowUp.objects.order_by("pk").values_list("status", "outcome")),
    )


def api_for(user: User) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def world(
    staff: dict[str, User],
    clinic: Any,
    other_clinic: Any,
    dosing_pathway: Any,
    complete_session: Callable[..., DosingSession],
) -> dict[str, Any]:
    session = complete_session(dosing_pathway)
    therapist = staff[Role.THERAPIST]
    note = services.note_open(actor=therapist, pathway=dosing_pathway)
    experiment = services.experiment_add(
        actor=therapist, note=note, area="sleep", description="Bed by 23:00."
    )
    return {
        "staff": staff,
        "pathway": dosing_pathway,
        "session": session,
        "note": note,
        "experiment": experiment,
        "check_in": FollowUp.objects.get(dosing_session=session, kind="check_in", sequence=1),
        "other_therapist": UserFactory(clinic=clinic, role=Role.THERAPIST),
        "outsider": UserFactory(clinic=other_clinic, role=Role.PRESCRIBER),
        "outsider_admin": UserFactory(clinic=other_clinic, role=Role.CLINIC_ADMIN),
    }


def test_who_reads_a_note(world: dict[str, Any], client_for: Callable[[User | None], Client]) -> None:
    url = reverse("integration_note", args=[world["note"].public_id])
    staff = world["staff"]
    for reader in (staff[Role.THERAPIST], staff[Role.PRESCRIBER]):
        assert client_for(reader).get(url).status_code == 200
    for user in (staff[Role.MONITOR], staff[Role.CLINIC_ADMIN], world["other_therapist"], world["outsider"]):
        assert client_for(user).get(url).status_code == 404, user.role
        assert api_for(user).get(f"/api/v1/integration-notes/{world['note'].public_id}/").status_code == 404
    assert client_for(None).get(url).status_code == 302
    page = reverse("pathway_integration", args=[world["pathway"].public_id])
    assert "Bed by 23:00." in client_for(staff[Role.PRESCRIBER]).get(page).content.decode()
    for user in (staff[Role.MONITOR], staff[Role.CLINIC_ADMIN], world["other_therapist"], world["outsider"]):
        assert client_for(user).get(page).status_code == 404, user.role
    viewed = AuditEvent.objects.filter(
        action="integration.note_viewed", target_public_id=world["note"].public_id
    )
    assert viewed.count() == 2


def test_only_the_author_writes_by_page_or_api(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    note, staff = world["note"], world["staff"]
    before = integration_snapshot()
    for user in (staff[Role.PRESCRIBER], staff[Role.MONITOR], world["other_therapist"], world["outsider"]):
        client = client_for(user)
        assert (
            client.post(
                reverse("integration_note_save", args=[note.public_id]),
                {"held_date": "2026-11-20", "held_time": "10:00", "perception_shift": "x", "sign": "1"},
            ).status_code
            == 404
        )
        assert (
            client.post(
                reverse("integration_experiment_add", args=[note.public_id]),
                {"area": "sleep", "description": "x"},
            ).status_code
            == 404
        )
        assert (
            client.post(reverse("integration_note_open", args=[world["pathway"].public_id])).status_code
            == 404
        )
        api = api_for(user)
        assert api.post(f"/api/v1/integration-notes/{note.public_id}/sign/").status_code == 404
        assert (
            api.patch(
                f"/api/v1/integration-notes/{note.public_id}/", {"perception_shift": "x"}, format="json"
            ).status_code
            == 404
        )
        assert (
            api.post(
                "/api/v1/integration-notes/", {"pathway": str(world["pathway"].public_id)}, format="json"
            ).status_code
            == 404
        )
    assert integration_snapshot() == before


def test_the_therapist_writes_adds_experiments_and_signs_through_the_page(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    note = world["note"]
    client = client_for(world["staff"][Role.THERAPIST])
    page = client.get(reverse("integration_note", args=[note.public_id]))
    assert "What the system is afraid of losing" in page.content.decode()
    refused = client.post(
        reverse("integration_experiment_add", args=[note.public_id]),
        {"area": "boundaries", "description": ""},
    )
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "This field is required." in body
    assert 'value="boundaries" selected' in body  # the area chosen is kept
    today = timezone.localdate()
    kept_input = client.post(
        reverse("integration_note_save", args=[note.public_id]),
        {
            "held_date": (today + dt.timedelta(days=3)).isoformat(),
            "held_time": "10:00",
            "perception_shift": "Could stay with the memory without bracing.",
            "sign": "1",
        },
    )
    assert kept_input.status_code == 400
    assert "This is in the future." in kept_input.content.decode()
    assert "Could stay with the memory without bracing." in kept_input.content.decode()
    assert IntegrationNote.objects.get(pk=note.pk).status == "draft"
    signed = client.post(
        reverse("integration_note_save", args=[note.public_id]),
        {
            "held_date": today.isoformat(),
            "held_time": timezone.localtime().strftime("%H:%M"),
            "perception_shift": "Less braced.",
            "sign": "1",
        },
        follow=True,
    )
    assert "The note is signed." in signed.content.decode()
    assert IntegrationNote.objects.get(pk=note.pk).status == "signed"
    assert FollowUp.objects.get(dosing_session=world["session"], kind="integration_session").status == "done"
    again = client.post(
        reverse("integration_note_save", args=[note.public_id]),
        {"held_date": today.isoformat(), "held_time": "09:00", "perception_shift": "Changed after signing."},
    )
    assert again.status_code == 400
    assert "read-only" in again.content.decode()
    assert IntegrationNote.objects.get(pk=note.pk).perception_shift == "Less braced."


def test_the_api_runs_the_same_note(world: dict[str, Any]) -> None:
    note, api = world["note"], api_for(world["staff"][Role.THERAPIST])
    empty = api.post(
        f"/api/v1/integration-notes/{note.public_id}/experiments/",
        {"area": "sleep", "description": ""},
        format="json",
    )
    assert empty.status_code == 400
    assert [e["field"] for e in empty.json()["errors"]] == ["description"]
    added = api.post(
        f"/api/v1/integration-notes/{note.public_id}/experiments/",
        {"area": "relationships", "description": "Call his brother on Sunday."},
        format="json",
    )
    assert added.status_code == 201
    assert added.json()["state"] == "planned"
    reviewed = api.post(
        f"/api/v1/integration-notes/{note.public_id}/reviews/",
        {"experiment": str(world["experiment"].public_id), "state": "kept"},
        format="json",
    )
    assert reviewed.status_code == 400
    assert reviewed.json()["errors"][0]["field"] == "what_happened"
    assert (
        api.patch(
            f"/api/v1/integration-notes/{note.public_id}/",
            {"newly_possible": "Asking for help."},
            format="json",
        ).status_code
        == 200
    )
    signed = api.post(f"/api/v1/integration-notes/{note.public_id}/sign/")
    assert signed.status_code == 200
    assert signed.json()["status"] == "signed"
    listed = api.get(f"/api/v1/experiments/?pathway={world['pathway'].public_id}").json()
    assert {e["description"] for e in listed["results"]} == {"Bed by 23:00.", "Call his brother on Sunday."}


def test_follow_ups_pages_by_role(world: dict[str, Any], client_for: Callable[[User | None], Client]) -> None:
    staff, check_in = world["staff"], world["check_in"]
    detail = reverse("follow_up_detail", args=[check_in.public_id])
    for user in (
        staff[Role.THERAPIST],
        staff[Role.PRESCRIBER],
        staff[Role.MONITOR],
        staff[Role.CLINIC_ADMIN],
    ):
        assert client_for(user).get(detail).status_code == 200, user.role
        assert client_for(user).get(reverse("follow_up_list") + "?scope=clinic").status_code == 200
    for user in (world["other_therapist"], world["outsider"], world["outsider_admin"]):
        assert client_for(user).get(detail).status_code == 404, user.role
        assert api_for(user).get(f"/api/v1/follow-ups/{check_in.public_id}/").status_code == 404
    clinic_list = (
        client_for(staff[Role.CLINIC_ADMIN]).get(reverse("follow_up_list") + "?scope=clinic").content.decode()
    )
    assert world["pathway"].patient.full_name in clinic_list
    outsider_list = api_for(world["outsider_admin"]).get("/api/v1/follow-ups/?scope=clinic").json()
    assert outsider_list["count"] == 0
    assert (
        AuditEvent.objects.filter(action="follow_up.viewed", target_public_id=check_in.public_id).count() == 4
    )


def test_a_check_in_is_recorded_by_page_and_api_and_refused_to_the_admin(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    staff, check_in = world["staff"], world["check_in"]
    url = reverse("follow_up_detail", args=[check_in.public_id])
    before = integration_snapshot()
    assert client_for(staff[Role.CLINIC_ADMIN]).post(url, {"outcome": "Reached."}).status_code == 404
    assert (
        api_for(staff[Role.CLINIC_ADMIN])
        .post(f"/api/v1/follow-ups/{check_in.public_id}/complete/", {"outcome": "Reached."}, format="json")
        .status_code
        == 404
    )
    assert integration_snapshot() == before
    empty = client_for(staff[Role.MONITOR]).post(url, {"outcome": ""})
    assert empty.status_code == 400
    assert "This field is required." in empty.content.decode()
    done = client_for(staff[Role.MONITOR]).post(url, {"outcome": "Reached by phone."}, follow=True)
    assert "Check-in recorded as done." in done.content.decode()
    again = api_for(staff[Role.THERAPIST]).post(
        f"/api/v1/follow-ups/{check_in.public_id}/complete/", {"outcome": "Again."}, format="json"
    )
    assert again.status_code == 400
    assert {e["code"] for e in again.json()["errors"]} == {"follow_up_closed"}


def test_settings_page_and_api(world: dict[str, Any], client_for: Callable[[User | None], Client]) -> None:
    admin = world["staff"][Role.CLINIC_ADMIN]
    client = client_for(admin)
    bad = client.post(
        reverse("integration_settings"),
        {
            "integration_window_hours": 48,
            "check_in_days": "0, 3",
            "measures_interval_weeks": 4,
            "reminder_hour": 10,
            "outcome_follow_up_months": "1, 3, 6",
        },
    )
    assert bad.status_code == 400
    assert "Check-in days run from 1 to 90 after the session." in bad.content.decode()
    assert 'value="48"' in bad.content.decode()
    saved = client.post(
        reverse("integration_settings"),
        {
            "integration_window_hours": 48,
            "check_in_days": "2, 5",
            "measures_interval_weeks": 4,
            "reminder_hour": 9,
            "outcome_follow_up_months": "1, 3, 6",
        },
        follow=True,
    )
    assert "The follow-up settings are saved." in saved.content.decode()
    api = api_for(admin)
    assert api.get("/api/v1/integration-settings/").json()["check_in_days"] == "2, 5"
    assert (
        api.put(
            "/api/v1/integration-settings/",
            {
                "integration_window_hours": 72,
                "check_in_days": "x",
                "measures_interval_weeks": 4,
                "reminder_hour": 10,
                "patient_emails_enabled": False,
            },
            format="json",
        ).status_code
        == 400
    )
    for user in (world["staff"][Role.PRESCRIBER], world["staff"][Role.THERAPIST]):
        assert client_for(user).get(reverse("integration_settings")).status_code == 404
        assert api_for(user).get("/api/v1/integration-settings/").status_code == 404


def test_the_pathway_page_shows_experiments_notes_and_follow_ups(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    url = reverse("pathway_detail", args=[world["pathway"].public_id])
    therapist_page = client_for(world["staff"][Role.THERAPIST]).get(url).content.decode()
    assert "Bed by 23:00." in therapist_page
    assert "Write an integration note" in therapist_page
    assert "Check-in (day 1)" in therapist_page
    monitor_page = client_for(world["staff"][Role.MONITOR]).get(url).content.decode()
    assert "Check-in (day 1)" in monitor_page
    assert "Bed by 23:00." not in monitor_page  # experiments are therapy notes: not the monitor's


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_query_counts_stay_flat_as_follow_ups_grow(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    staff = world["staff"]
    admin, therapist = client_for(staff[Role.CLINIC_ADMIN]), client_for(staff[Role.THERAPIST])
    urls = [
        (admin, reverse("follow_up_list") + "?scope=clinic"),
        (admin, reverse("follow_up_list") + "?scope=clinic&show=closed"),
        (therapist, reverse("follow_up_list") + "?show=overdue"),
        (therapist, reverse("dashboard")),
        (admin, reverse("dashboard")),
        (therapist, reverse("pathway_detail", args=[world["pathway"].public_id])),
        (therapist, reverse("integration_note", args=[world["note"].public_id])),
        (therapist, reverse("pathway_integration", args=[world["pathway"].public_id])),
        (therapist, reverse("pathway_integration_notes", args=[world["pathway"].public_id])),
        (therapist, reverse("pathway_integration_follow_ups", args=[world["pathway"].public_id])),
        (therapist, reverse("follow_up_detail", args=[world["check_in"].public_id])),
    ]

    def grow(count: int) -> None:
        for index in range(count):
            pathway = PathwayFactory(
                clinic=world["pathway"].clinic,
                therapist=staff[Role.THERAPIST],
                prescriber=staff[Role.PRESCRIBER],
            )
            FollowUpFactory(pathway=pathway, due_at=timezone.now() - dt.timedelta(days=1))
            FollowUpFactory(
                pathway=pathway, status="done", done_at=timezone.now(), done_by=staff[Role.MONITOR]
            )
            FollowUpFactory(
                pathway=world["pathway"], sequence=100 + index, due_at=timezone.now() - dt.timedelta(hours=2)
            )
        note = world["note"]
        for index in range(count):
            services.experiment_add(
                actor=staff[Role.THERAPIST], note=note, area="other", description=f"Step {index}"
            )

    grow(1)
    for client, url in urls:
        client.get(url)
    small = [_count(client, url) for client, url in urls]
    grow(14)
    large = [_count(client, url) for client, url in urls]
    assert large == small, list(zip(urls, small, large, strict=True))
    assert max(large) <= 29


# --- Long histories: the latest few on the page, the rest on paginated full lists --------------------


def _history(world: dict[str, Any], *, notes: int, closed: int) -> None:
    """`notes` more signed notes (newer than the draft) and `closed` more done follow-ups on the
    world's pathway, bulk-written: a patient treated for years, without years of service calls."""
    therapist, pathway = world["staff"][Role.THERAPIST], world["pathway"]
    now = timezone.now()
    start = IntegrationNote.objects.filter(pathway=pathway).count()
    IntegrationNote.objects.bulk_create(
        IntegrationNote(
            clinic=pathway.clinic,
            pathway=pathway,
            dosing_session=world["session"],
            author=therapist,
            held_at=now + dt.timedelta(minutes=start + index + 1),
            perception_shift=f"Shift {start + index}.",
            status="signed",
            signed_at=now,
        )
        for index in range(notes)
    )
    FollowUpFactory.create_batch(
        closed,
        pathway=pathway,
        status="done",
        done_by=therapist,
        done_at=now,
        due_at=now - dt.timedelta(days=3),
        outcome="Reached.",
    )


def _listed(html: str, testid: str) -> int:
    """How many rows the list or table body marked `data-testid=testid` holds."""
    found = re.search(rf'<(ul|tbody)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    assert found is not None, testid
    tag, body = found.groups()
    return body.count("<li" if tag == "ul" else "<tr")


def test_the_integration_page_shows_the_latest_notes_and_follow_ups_and_links_to_the_rest(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    _history(world, notes=15, closed=30)
    pathway = world["pathway"]
    html = client_for(world["staff"][Role.THERAPIST]).get(
        reverse("pathway_integration", args=[pathway.public_id])
    )
    page = html.content.decode()
    assert _listed(page, "latest-notes") == 10
    assert "Shift 15." in page
    assert "Shift 5." not in page
    assert reverse("pathway_integration_notes", args=[pathway.public_id]) in page
    assert "All 16 notes" in page  # the 15 signed and the draft
    assert "Continue the draft note" in page  # the draft is older than the ten shown, and still found
    open_count = FollowUp.objects.filter(pathway=pathway, status="open").count()
    assert open_count > 0
    assert _listed(page, "open-follow-ups") == open_count
    assert _listed(page, "closed-follow-ups") == 10
    assert reverse("pathway_integration_follow_ups", args=[pathway.public_id]) in page
    assert f"All {FollowUp.objects.filter(pathway=pathway).count()} follow-ups" in page


def test_the_full_lists_paginate(world: dict[str, Any], client_for: Callable[[User | None], Client]) -> None:
    _history(world, notes=30, closed=30)
    pathway = world["pathway"]
    client = client_for(world["staff"][Role.PRESCRIBER])
    notes = reverse("pathway_integration_notes", args=[pathway.public_id])
    first = client.get(notes).content.decode()
    assert _listed(first, "notes") == 25
    assert "Shift 30." in first
    assert "31 in all" in first
    assert 'aria-label="Pages"' in first
    assert "Page 1 of 2" in first
    second = client.get(notes + "?page=2").content.decode()
    assert _listed(second, "notes") == 6
    assert "Page 2 of 2" in second
    assert "Draft" in second
    # Out of range or not a number: the last or the first page, as every paginated page of the app.
    assert "Page 2 of 2" in client.get(notes + "?page=99").content.decode()
    assert "Page 1 of 2" in client.get(notes + "?page=x").content.decode()
    follow_ups = reverse("pathway_integration_follow_ups", args=[pathway.public_id])
    total = FollowUp.objects.filter(pathway=pathway).count()
    pages = -(-total // 25)
    assert _listed(client.get(follow_ups).content.decode(), "follow-ups") == 25
    last = client.get(follow_ups + f"?page={pages}").content.decode()
    assert _listed(last, "follow-ups") == total - 25 * (pages - 1)
    assert f"Page {pages} of {pages}" in client.get(follow_ups + "?page=99").content.decode()


def test_the_full_lists_have_the_integration_pages_readers_and_are_audited(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    staff, pathway = world["staff"], world["pathway"]
    urls = [
        reverse("pathway_integration_notes", args=[pathway.public_id]),
        reverse("pathway_integration_follow_ups", args=[pathway.public_id]),
    ]
    viewed = AuditEvent.objects.filter(
        action="integration.pathway_viewed", target_public_id=pathway.public_id
    )
    before = viewed.count()
    for url in urls:
        for reader in (staff[Role.THERAPIST], staff[Role.PRESCRIBER]):
            assert client_for(reader).get(url).status_code == 200
        # Notes are therapy notes: not the monitor's or the clinic admin's; nothing of another clinic.
        for user in (
            staff[Role.MONITOR],
            staff[Role.CLINIC_ADMIN],
            world["other_therapist"],
            world["outsider"],
            world["outsider_admin"],
        ):
            assert client_for(user).get(url).status_code == 404, (url, user.role)
        assert client_for(None).get(url).status_code == 302
    assert viewed.count() == before + 4


def test_the_pathway_panel_names_only_the_latest_settled_experiments(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    therapist, note = world["staff"][Role.THERAPIST], world["note"]
    for index in range(15):
        services.experiment_add(actor=therapist, note=note, area="other", description=f"Settled {index}.")
    Experiment.objects.filter(description__startswith="Settled").update(state="kept")
    html = client_for(therapist).get(reverse("pathway_detail", args=[world["pathway"].public_id]))
    page = html.content.decode()
    settled = page.split('data-testid="settled-experiments"', 1)[1].split("</p>", 1)[0]
    assert settled.count("badge") == 10
    assert "the latest 10 of 15" in settled
    assert reverse("pathway_integration", args=[world["pathway"].public_id]) + "#experiments" in settled
    assert "Bed by 23:00." in page  # the live experiment is still listed


def test_query_counts_of_the_full_lists_do_not_grow_with_the_history(
    world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    client, pathway = client_for(world["staff"][Role.THERAPIST]), world["pathway"]
    urls = [
        reverse("pathway_integration", args=[pathway.public_id]),
        reverse("pathway_integration_notes", args=[pathway.public_id]),
        reverse("pathway_integration_notes", args=[pathway.public_id]) + "?page=2",
        reverse("pathway_integration_follow_ups", args=[pathway.public_id]),
        reverse("pathway_integration_follow_ups", args=[pathway.public_id]) + "?page=2",
    ]
    _history(world, notes=30, closed=30)
    for url in urls:
        client.get(url)
    small = [_count(client, url) for url in urls]
    _history(world, notes=120, closed=240)
    large = [_count(client, url) for url in urls]
    assert large == small, list(zip(urls, small, large, strict=True))
