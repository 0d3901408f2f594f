"""PDF summaries: real WeasyPrint output read back with poppler's pdftotext, one file per record
version, the record's access rules on every route, audited downloads, flat queries, and a failed
render shown with a retry and no half file."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from integration import selectors as summary_selectors
from integration import services as integration_services
from integration import summaries
from integration import summary_services
from integration.models import Summary
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from sessions.booking import services as booking_services
from sessions.emdr import services as emdr_services
from sessions.models import DosingSession
from sessions.models import EmdrSessionLog
from sessions.record import services as dosing

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) is not installed")  # a failure in CI (see conftest)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def save_pages(path: Path, output_dir: Path, name: str) -> None:
    """A copy of the PDF and its pages as images, for a look in review."""
    shutil.copy(path, output_dir / f"{name}.pdf")
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(path), str(output_dir / name)], check=True)


@pytest.fixture(autouse=True)
def private_dir(settings: Any, tmp_path: Path) -> Path:
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    return tmp_path / "private"


def make(actor: User, kind: str, record: Any, django_capture_on_commit_callbacks: Any) -> Summary:
    """Ask for a summary and let its (eager) render task run, as the worker would after the commit."""
    with django_capture_on_commit_callbacks(execute=True):
        summary = summary_services.summary_request(actor=actor, kind=kind, record_public_id=record.public_id)
    return Summary.objects.get(pk=summary.pk)


def test_every_summary_of_the_demo_clinic_renders_with_its_figures_and_page_numbers(
    output_dir: Path, private_dir: Path, django_capture_on_commit_callbacks: Any
) -> None:
    demo = demo_clinic_load()
    prescriber, therapist = (
        demo.staff["prescriber@demo.kaemdr.test"],
        demo.staff["therapist@demo.kaemdr.test"],
    )
    esketamine = DosingSession.objects.get(booking__patient__record_number="HB-1004", status="signed")
    oliver = Pathway.objects.get(patient__record_number="HB-1006")
    cases = [
        (
            prescriber,
            "dosing_session",
            esketamine,
            # the demo clinic follows the UK label: the Readiness to Leave checklist, no REMS form
            [
                "Tomás Reyes",
                "HB-1004",
                "56 mg",
                "SPR-40917",
                "148/90",
                "Max 180",
                "Min 92%",
                "Readiness to Leave",
            ],
        ),
        (
            therapist,
            "emdr_session",
            EmdrSessionLog.objects.filter(plan__pathway=oliver).first(),
            ["Oliver Brandt", "Phase reached", "SUD start"],
        ),
        (
            therapist,
            "integration_note",
            oliver.integration_notes.filter(status="signed").order_by("held_at").first(),
            ["What shifted in perception", "Lights out by 23:00"],
        ),
        (
            prescriber,
            "pathway",
            oliver,
            [
                "Stage history",
                "PHQ-9 (depression)",
                "Eligible with precautions",
                "Lamotrigine",
                "Walk through the market",
            ],
        ),
    ]
    for actor, kind, record, expected in cases:
        summary = make(actor, kind, record, django_capture_on_commit_callbacks)
        assert summary.status == "ready", summary.error
        path = summary_services.summary_path(summary)
        text = pdf_text(path)
        for needle in [
            *expected,
            "Confidential",
            "Harbour Ketamine & EMDR Clinic",
            f"Page 1 of {summary.page_count}",
        ]:
            assert needle in text, (kind, needle)
        assert f"Page {summary.page_count} of {summary.page_count}" in text
        save_pages(path, output_dir, kind)
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    assert "DejaVu" in fonts
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:])  # every font embedded
    assert not list(private_dir.glob("summaries/.rendering-*"))


@pytest.fixture
def signed_session(dosing_pathway: Any, complete_session: Callable[..., DosingSession]) -> DosingSession:
    return complete_session(dosing_pathway)


def test_the_same_version_is_one_file_and_a_new_version_a_new_one(
    staff: dict[str, User],
    signed_session: DosingSession,
    private_dir: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    monitor = staff[Role.MONITOR]
    first = make(monitor, "dosing_session", signed_session, django_capture_on_commit_callbacks)
    again = make(monitor, "dosing_session", signed_session, django_capture_on_commit_callbacks)
    assert again.pk == first.pk
    assert len(list((private_dir / "summaries").glob("*.pdf"))) == 1
    assert AuditEvent.objects.filter(action="summary.ready").count() == 1
    dosing.session_addendum_add(
        actor=staff[Role.PRESCRIBER], session=signed_session, text="Lot checked against the log."
    )
    newer = make(monitor, "dosing_session", signed_session, django_capture_on_commit_callbacks)
    assert newer.pk != first.pk
    assert newer.version != first.version
    assert len(list((private_dir / "summaries").glob("*.pdf"))) == 2
    assert "Lot checked against the log." in pdf_text(summary_services.summary_path(newer))
    assert "Lot checked against the log." not in pdf_text(summary_services.summary_path(first))


def test_a_failed_render_is_shown_with_a_retry_and_leaves_no_file(
    staff: dict[str, User],
    signed_session: DosingSession,
    private_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    client_for: Callable[[User | None], Client],
) -> None:
    monitor = staff[Role.MONITOR]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("font cache unavailable")

    monkeypatch.setattr(summaries, "render_pdf", broken)
    failed = make(monitor, "dosing_session", signed_session, django_capture_on_commit_callbacks)
    assert (failed.status, failed.error) == ("failed", "RuntimeError: font cache unavailable")
    assert not list(summary_services.summaries_dir().iterdir())
    page = client_for(monitor).get(reverse("summary_detail", args=[failed.public_id])).content.decode()
    assert "could not be made: RuntimeError: font cache unavailable" in page
    assert "Try again" in page
    monkeypatch.undo()
    retried = make(monitor, "dosing_session", signed_session, django_capture_on_commit_callbacks)
    assert retried.pk == failed.pk
    assert retried.status == "ready"
    assert summary_services.summary_path(retried).exists()


def test_a_render_that_dies_midway_leaves_no_half_file(
    staff: dict[str, User],
    signed_session: DosingSession,
    private_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    import os

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    failed = make(staff[Role.MONITOR], "dosing_session", signed_session, django_capture_on_commit_callbacks)
    assert failed.status == "failed"
    assert list(summary_services.summaries_dir().iterdir()) == []


def test_unsigned_records_are_not_summarised(staff: dict[str, User], dosing_pathway: Any, room: Any) -> None:
    import zoneinfo

    tz = zoneinfo.ZoneInfo(dosing_pathway.clinic.time_zone)
    booking = booking_services.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=dosing_pathway,
        room=room,
        starts_at=dt.datetime.combine(timezone.localdate() + dt.timedelta(days=2), dt.time(9), tzinfo=tz),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )
    open_session = dosing.session_open(actor=staff[Role.MONITOR], booking=booking)
    api = APIClient()
    api.force_authenticate(staff[Role.MONITOR])
    refused = api.post(
        "/api/v1/summaries/", {"kind": "dosing_session", "record": str(open_session.public_id)}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["message"].startswith("Summaries are made from signed records")
    assert not Summary.objects.exists()


def test_summaries_follow_the_records_access_and_downloads_are_audited(
    staff: dict[str, User],
    signed_session: DosingSession,
    other_clinic: Any,
    clinic: Any,
    client_for: Callable[[User | None], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    summary = make(staff[Role.MONITOR], "dosing_session", signed_session, django_capture_on_commit_callbacks)
    pathway = signed_session.booking.pathway
    record_page = reverse("session_detail", args=[signed_session.public_id])
    urls = [
        reverse("summary_detail", args=[summary.public_id]),
        reverse("summary_status", args=[summary.public_id]),
        reverse("summary_download", args=[summary.public_id]),
    ]
    outsider = UserFactory(clinic=other_clinic, role=Role.PRESCRIBER)
    users = [*staff.values(), UserFactory(clinic=clinic, role=Role.THERAPIST), outsider]
    readers = []
    for user in users:
        client = client_for(user)
        # The summary carries the record's clinical content: whoever reads that on the record's page
        # (the clinic admin sees the session's logistics only, and gets the summary's 404).
        page = client.get(record_page)
        may_see_record = page.status_code == 200 and "sessions/session_detail.html" in {
            template.name for template in page.templates
        }
        assert may_see_record == (user.role != Role.CLINIC_ADMIN and user in staff.values()), user.role
        readers += [user] if may_see_record else []
        for url in urls:
            assert client.get(url).status_code == (200 if may_see_record else 404), (user.role, url)
        api = APIClient()
        api.force_authenticate(user)
        assert api.get(f"/api/v1/summaries/{summary.public_id}/download/").status_code == (
            200 if may_see_record else 404
        )
        asked = api.post(
            "/api/v1/summaries/",
            {"kind": "dosing_session", "record": str(signed_session.public_id)},
            format="json",
        )
        assert asked.status_code == (200 if may_see_record else 404)
    assert client_for(outsider).get(urls[2]).status_code == 404
    downloads = AuditEvent.objects.filter(action="summary.downloaded", target_public_id=summary.public_id)
    assert downloads.count() == 2 * len(readers)
    assert downloads.first().patient_public_id == pathway.patient.public_id
    response = client_for(staff[Role.MONITOR]).get(urls[2])
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"".join(response.streaming_content).startswith(b"%PDF-")
    # the pathway summary holds notes and EMDR: its clinicians only
    for user, allowed in (
        (staff[Role.PRESCRIBER], True),
        (staff[Role.THERAPIST], True),
        (staff[Role.MONITOR], False),
        (staff[Role.CLINIC_ADMIN], False),
    ):
        api = APIClient()
        api.force_authenticate(user)
        asked = api.post(
            "/api/v1/summaries/", {"kind": "pathway", "record": str(pathway.public_id)}, format="json"
        )
        assert asked.status_code in ((200, 202) if allowed else (404,)), user.role


def test_the_files_are_outside_every_public_path(settings: Any, private_dir: Path) -> None:
    public = [Path(settings.STATIC_ROOT).resolve(), *(Path(p).resolve() for p in settings.STATICFILES_DIRS)]
    target = summary_services.summaries_dir().resolve()
    assert not any(target.is_relative_to(p) for p in public)
    assert not getattr(settings, "MEDIA_ROOT", "") or not target.is_relative_to(
        Path(settings.MEDIA_ROOT).resolve()
    )


def test_building_the_pathway_summary_takes_the_same_queries_for_1_and_20_sessions(
    staff: dict[str, User], dosing_pathway: Any, complete_session: Callable[..., DosingSession]
) -> None:
    therapist = staff[Role.THERAPIST]
    plan = emdr_services.plan_open(actor=therapist, pathway=dosing_pathway)

    def add_session() -> None:
        session = complete_session(dosing_pathway)
        target = emdr_services.target_add(
            actor=therapist, plan=plan, kind="resource", title=f"Resource {session.pk}"
        )
        emdr_services.session_log(
            actor=therapist,
            plan=plan,
            held_at=timezone.now(),
            phase_reached=5,
            stimulation="taps",
            works=[{"target": target, "voc_start": 4, "voc_end": 6}],
        )
        note = integration_services.note_open(actor=therapist, pathway=dosing_pathway, dosing_session=session)
        integration_services.note_update(actor=therapist, note=note, perception_shift="Calmer.")
        integration_services.experiment_add(
            actor=therapist, note=note, area="sleep", description=f"Step {session.pk}"
        )
        integration_services.note_sign(actor=therapist, note=note)

    def queries() -> tuple[int, dict[str, Any]]:
        source = summary_selectors.source_unscoped("pathway", dosing_pathway.public_id)
        with CaptureQueriesContext(connection) as captured:
            data = summaries.summary_data(source)
        return len(captured), data

    add_session()
    one, small = queries()
    for _ in range(19):
        add_session()
    twenty, large = queries()
    assert len(small["body"]["sessions"]) == 1
    assert len(large["body"]["sessions"]) == 20
    assert len(large["body"]["notes"]) == 20
    assert one == twenty, (one, twenty)
    assert one <= 10
