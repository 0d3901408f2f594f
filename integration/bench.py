"""The benchmark behind `make bench`: figures measured in one run, with their targets.

So far it measures what the integration app owns: the render time per page of a pathway summary PDF
with many dosing sessions (target 0.25 s a page), the queries that summary's data takes, and
follow-ups dispatched per second by one worker (target 1,000), each sent exactly once. The data is
the demo clinic plus one long-treated patient, made through the services in a database of the
benchmark's own (`make bench` points `DATABASE_URL` at it) and reused when it is there.
Timings are reported, never asserted: a small run of the same code is part of the test suite.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from sessions.demo import demo_past_session
from sessions.models import DosingSession

from . import services
from . import summaries
from .models import FollowUp

LONG_PATIENT = "HB-1006"


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    target: str
    met: bool | None


def _long_pathway(sessions: int) -> Pathway:
    """The demo's integration patient with at least `sessions` signed dosing sessions."""
    demo = demo_clinic_load()
    pathway = Pathway.objects.get(patient__record_number=LONG_PATIENT, clinic=demo.clinic)
    have = DosingSession.objects.filter(booking__pathway=pathway, status="signed").count()
    for index in range(have, sessions):
        demo_past_session(pathway=pathway, staff=demo.staff, days_ago=30 + 2 * index, dose_mg=70)
    return pathway


def summary_figures(*, sessions: int, repeats: int) -> list[Figure]:
    pathway = _long_pathway(sessions)
    source = summaries.source_unscoped("pathway", pathway.public_id)
    with CaptureQueriesContext(connection) as captured:
        data = summaries.summary_data(source)
    per_page: list[float] = []
    pages = 0
    for _ in range(repeats):
        started = time.perf_counter()
        data = summaries.summary_data(source)
        _, pages = summaries.render_pdf(data, generated_at=timezone.now())
        per_page.append((time.perf_counter() - started) / pages)
    count = len(data["body"]["sessions"])
    return [
        Figure(
            f"pathway summary PDF, {count} sessions: seconds per page",
            statistics.median(per_page),
            "s",
            "<= 0.25",
            statistics.median(per_page) <= 0.25,
        ),
        Figure(f"pathway summary PDF, {count} sessions: pages", pages, "pages", "", None),
        Figure(f"pathway summary data, {count} sessions: queries", len(captured), "queries", "fixed", None),
    ]


def dispatch_figures(*, follow_ups: int) -> list[Figure]:
    """Follow-ups made due at once and sent by one dispatcher (Django's in-memory mail backend
    stands for the mail server), then counted: each must have been sent once."""
    pathway = _long_pathway(1)
    FollowUp.objects.filter(kind="check_in", sequence__gte=1000).delete()
    now = timezone.now()
    FollowUp.objects.bulk_create(
        FollowUp(
            clinic_id=pathway.clinic_id,
            pathway=pathway,
            patient_id=pathway.patient_id,
            kind="check_in",
            sequence=1000 + index,
            responsible=pathway.therapist or pathway.prescriber,
            due_at=now,
            notify_at=now - dt.timedelta(minutes=1),
        )
        for index in range(follow_ups)
    )
    previous = settings.EMAIL_BACKEND
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    try:
        started = time.perf_counter()
        sent = services.follow_ups_dispatch_due(limit=follow_ups + 100)
        elapsed = time.perf_counter() - started
        ids = [m.extra_headers["Message-ID"] for m in mail.outbox]
    finally:
        settings.EMAIL_BACKEND = previous
    once = len(ids) == len(set(ids)) == sent >= follow_ups
    rate = sent / elapsed if elapsed else 0.0
    return [
        Figure("follow-ups dispatched per second, one worker", rate, "/s", ">= 1000", rate >= 1000),
        Figure("follow-ups each sent exactly once", 1.0 if once else 0.0, "yes/no", "yes", once),
    ]


def run(*, sessions: int = 20, repeats: int = 3, follow_ups: int = 2000) -> list[Figure]:
    return [*summary_figures(sessions=sessions, repeats=repeats), *dispatch_figures(follow_ups=follow_ups)]


def write_report(figures: list[Figure], folder: Path) -> str:
    """The figures as a Markdown table (returned, and written beside a JSON copy under `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["| figure | value | target | met |", "|---|---|---|---|"]
    for figure in figures:
        met = "" if figure.met is None else ("yes" if figure.met else "**no**")
        rows.append(f"| {figure.name} | {figure.value:,.3f} {figure.unit} | {figure.target} | {met} |")
    table = "\n".join(rows) + "\n"
    payload: dict[str, Any] = {
        "measured_at": timezone.now().isoformat(),
        "database": connection.vendor,
        "figures": [asdict(f) for f in figures],
    }
    (folder / "results.json").write_text(json.dumps(payload, indent=2))
    (folder / "results.md").write_text(table)
    return table
