"""The benchmark behind `make bench`: figures measured in one run, with their targets.

In a database of the benchmark's own (`make bench` points `DATABASE_URL` at it), made once and
reused: the demo clinic, and a clinic network at scale (`bench.data`: 50 clinics,
20,000 patients, 200,000 bookings, 2,000,000 vitals readings, one patient with 500 sessions). Then:

- each main page served by gunicorn as in production and driven by wrk over HTTP
  (`bench.http`): requests/s, p50 and p99, and the ratio to a trivial view of the same
  app measured in the same run (the floor); the worker's memory after 10,000 requests;
- queries per request of each of those pages on the demo clinic and on the network;
- the plans of each page's SELECTs on the network (EXPLAIN ANALYZE): no sequential scan of bookings,
  vitals readings or audit events, and the rows those tables' scans read per row returned;
- in the server: the pathway page of the patient with 500 sessions, and refusing a booking that
  clashes, among all the bookings;
- the render time per page of a pathway summary PDF with 20 sessions;
- follow-ups dispatched per second by one worker process and by a worker as deployed (two
  processes), each exactly once, with the ratio to the same messages handed over without a
  database (the floor).

Timings are reported, never asserted: a small run of the same code is part of the test suite.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import statistics
import time
import traceback
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import mail
from django.db import connection
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from bench.data import build_network
from bench.figures import Figure
from bench.http import PageSpec
from bench.http import run_http
from bench.http import signed_in_session
from integration import selectors as summary_selectors
from integration import services
from integration import summaries
from integration.models import FollowUp
from kaemdr.models import Role
from kaemdr.models import User
from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from pathways.models import Stage
from screening.models import AlertStatus
from screening.models import SafetyAlert
from screening.services import safety_alert_acknowledge
from sessions.demo import demo_past_session
from sessions.models import DosingSession

LONG_PATIENT = "HB-1006"


def _long_pathway(sessions: int) -> Pathway:
    """The demo's integration patient with at least `sessions` signed dosing sessions."""
    demo = demo_clinic_load()
    pathway = Pathway.objects.get(patient__record_number=LONG_PATIENT, clinic=demo.clinic)
    have = DosingSession.objects.filter(booking__pathway=pathway, status="signed").count()
    if have < sessions:
        # The demo leaves this patient's PHQ-9 item 9 alert open, and no booking is taken while an
        # alert waits for its action (`sessions.gates`): record one before adding sessions.
        for alert in SafetyAlert.objects.filter(pathway=pathway, status=AlertStatus.OPEN):
            safety_alert_acknowledge(
                actor=demo.staff["prescriber@demo.kaemdr.test"],
                alert=alert,
                action_taken="Called the patient the same day; safety plan reviewed.",
            )
        # The demo has moved this pathway on to integration, where no dose is booked: the earlier
        # sessions are added as if it were still dosing, then it is put back (the benchmark's own
        # database, so the stage is set directly rather than through the pathway's services).
        Pathway.objects.filter(pk=pathway.pk).update(stage=Stage.DOSING)
        try:
            for index in range(have, sessions):
                demo_past_session(pathway=pathway, staff=demo.staff, days_ago=30 + 2 * index, dose_mg=70)
        finally:
            Pathway.objects.filter(pk=pathway.pk).update(stage=pathway.stage)
    return pathway


def summary_figures(*, sessions: int, repeats: int) -> list[Figure]:
    pathway = _long_pathway(sessions)
    source = summary_selectors.source_unscoped("pathway", pathway.public_id)
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


def _make_due(pathway: Pathway, count: int) -> None:
    """`count` check-ins on `pathway`, due a minute ago (any left by an earlier run removed first)."""
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
        for index in range(count)
    )


def _handed_over_without_database(follow_ups: int) -> float:
    """The floor: follow-ups a second whose messages one process composes and hands to the mail
    backend with no database work at all (the due rows read beforehand, nothing recorded)."""
    due = services._due_candidates(timezone.now(), follow_ups)
    parts = services._mail_parts()
    mail_connection = mail.get_connection()
    started = time.perf_counter()
    for follow_up in due:
        mail_connection.send_messages(services._messages_for(follow_up, send_to_patient=False, parts=parts))
    elapsed = time.perf_counter() - started
    mail.outbox = []
    return len(due) / elapsed if elapsed else 0.0


# In a dispatcher child: the connections it inherited from the parent at fork (see below).
_inherited_connections: list[Any] = []


def _dispatcher_process(results: Any, start: Any, limit: int) -> None:
    """One of a worker's processes: dispatch once the others are ready too, and report what it sent
    (how many, when it began and ended, and the Message-IDs handed over)."""
    # A forked child never uses, closes or frees a database connection it inherited: the parent or
    # its threads may still hold the same socket open (two processes on one socket lose the
    # protocol's thread, "lost synchronization with server"). Each alias gets a new one; the old
    # objects are kept referenced until the child exits, which runs no finalizers.
    _inherited_connections.extend(connections[alias] for alias in connections)
    for alias in connections:
        connections[alias] = connections.create_connection(alias)
    try:
        mail.outbox = []
        connection.ensure_connection()
        services._mail_parts()
        start.wait(timeout=60)
        started = time.perf_counter()
        sent = services.follow_ups_dispatch_due(limit=limit)
        ended = time.perf_counter()
        results.put((sent, started, ended, [m.extra_headers["Message-ID"] for m in mail.outbox], ""))
    except BaseException:  # reported to the parent, which fails the figure
        results.put((0, 0.0, 0.0, [], traceback.format_exc()))
    finally:
        connections.close_all()


def _dispatch_in_processes(processes: int, limit: int) -> tuple[int, float, list[str]]:
    """`processes` dispatchers at once, each a forked process with a database connection of its own,
    as a Celery worker's prefork pool runs them: the follow-ups sent, the seconds from the first
    start to the last end, and every Message-ID handed over."""
    connections.close_all()  # no connection is shared with the children
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = context.Barrier(processes)
    children = [
        context.Process(target=_dispatcher_process, args=(results, start, limit)) for _ in range(processes)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=600) for _ in children]
    for child in children:
        child.join(timeout=60)
    errors = [outcome[4] for outcome in outcomes if outcome[4]]
    if errors:
        raise RuntimeError(f"a dispatcher process failed: {errors[0]}")
    elapsed = max(outcome[2] for outcome in outcomes) - min(outcome[1] for outcome in outcomes)
    return sum(outcome[0] for outcome in outcomes), elapsed, [i for outcome in outcomes for i in outcome[3]]


def dispatch_figures(*, follow_ups: int) -> list[Figure]:
    """Follow-ups made due at once and sent, Django's in-memory mail backend standing for the mail
    server, then counted (each must have been sent once): by one worker process, and by a worker as
    production runs it (`--concurrency=2`: two processes dispatching at once, twice as many
    follow-ups). Each rate is also given as a ratio to the floor measured in the same run: the same
    messages composed and handed to the mail backend by one process with no database work, which
    is what one worker process could do if recording each follow-up (a commit of its own) cost
    nothing."""
    pathway = _long_pathway(1)
    previous = settings.EMAIL_BACKEND
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    try:
        _make_due(pathway, follow_ups)
        floor = _handed_over_without_database(follow_ups)
        started = time.perf_counter()
        sent_alone = services.follow_ups_dispatch_due(limit=follow_ups + 100)
        elapsed_alone = time.perf_counter() - started
        ids_alone = [m.extra_headers["Message-ID"] for m in mail.outbox]
        mail.outbox = []
        _make_due(pathway, 2 * follow_ups)
        sent_worker, elapsed_worker, ids_worker = _dispatch_in_processes(2, limit=2 * follow_ups + 100)
    finally:
        settings.EMAIL_BACKEND = previous
    once = (
        len(ids_alone) == len(set(ids_alone)) == sent_alone >= follow_ups
        and len(ids_worker) == len(set(ids_worker)) == sent_worker >= 2 * follow_ups
    )
    alone = sent_alone / elapsed_alone if elapsed_alone else 0.0
    worker = sent_worker / elapsed_worker if elapsed_worker else 0.0
    return [
        Figure(
            "follow-ups dispatched per second, one worker (2 processes, as deployed)",
            worker,
            "/s",
            ">= 1000",
            worker >= 1000,
            worker / floor if floor else None,
        ),
        Figure(
            "follow-ups dispatched per second, one worker process",
            alone,
            "/s",
            "",
            None,
            alone / floor if floor else None,
        ),
        Figure(
            "follow-ups composed and handed over per second, one process, no database (the floor)",
            floor,
            "/s",
            "",
            None,
            1.0,
        ),
        Figure("follow-ups each sent exactly once", 1.0 if once else 0.0, "yes/no", "yes", once),
    ]


# --- Pages ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    role: str


def main_pages(
    *,
    pathway: Any,
    room: Any,
    week: dt.date,
    session: Any,
    plan: Any,
    integration_pathway: Any,
) -> list[Page]:
    """The main pages of the issue: each role's dashboard, the pathway page, the room's week calendar,
    a dosing session record, the EMDR plan and the integration notes, with who opens them."""
    return [
        Page("dashboard, prescriber", reverse("dashboard"), Role.PRESCRIBER),
        Page("dashboard, therapist", reverse("dashboard"), Role.THERAPIST),
        Page("dashboard, monitor", reverse("dashboard"), Role.MONITOR),
        Page("dashboard, clinic admin", reverse("dashboard"), Role.CLINIC_ADMIN),
        Page("pathway page", reverse("pathway_detail", args=[pathway.public_id]), Role.PRESCRIBER),
        Page(
            "room week calendar",
            f"{reverse('room_calendar')}?week={week.isoformat()}&room={room.public_id}",
            Role.CLINIC_ADMIN,
        ),
        Page("dosing session record", reverse("session_detail", args=[session.public_id]), Role.MONITOR),
        Page("EMDR plan", reverse("emdr_plan", args=[plan.public_id]), Role.THERAPIST),
        Page(
            "integration notes",
            reverse("pathway_integration", args=[integration_pathway.public_id]),
            Role.THERAPIST,
        ),
    ]


def _signed_in_client(user: User) -> Client:
    # A host the settings allow (outside the test runner, "testserver" is not one).
    client = Client(HTTP_HOST=next((h for h in settings.ALLOWED_HOSTS if h and "*" not in h), "localhost"))
    client.cookies[settings.SESSION_COOKIE_NAME] = signed_in_session(user, secret_key=settings.SECRET_KEY)
    return client


def _get(client: Client, path: str) -> int:
    """GET `path` in the server, in process; the number of queries it took (a refused page raises)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}")
    return len(captured)


def page_queries(pages: list[Page], users: dict[str, User]) -> dict[str, int]:
    """Queries per request of each page (a warm request: the session's once-a-minute refresh done),
    as the first view after a change: the page-cache version is replaced before it (a repeat view
    reads fewer)."""
    from kaemdr import page_cache

    clients = {role: _signed_in_client(user) for role, user in users.items()}
    counts = {}
    for page in pages:
        _get(clients[page.role], page.path)
        page_cache.bump(page_cache.NETWORK)
        counts[page.name] = _get(clients[page.role], page.path)
    return counts


def _demo_pages() -> tuple[list[Page], dict[str, User]]:
    """The same pages on the demo clinic (its integration patient, HB-1006, has them all)."""
    from sessions.models import EmdrPlan
    from sessions.models import Room

    demo = demo_clinic_load()
    pathway = Pathway.objects.get(patient__record_number=LONG_PATIENT, clinic=demo.clinic)
    session = (
        DosingSession.objects.filter(booking__pathway=pathway, status="signed")
        .order_by("dose_started_at")
        .first()
    )
    assert session is not None
    room = Room.objects.filter(clinic=demo.clinic).order_by("name").first()
    plan = EmdrPlan.objects.filter(pathway__clinic=demo.clinic).order_by("id").first()
    pages = main_pages(
        pathway=pathway,
        room=room,
        week=timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday()),
        session=session,
        plan=plan,
        integration_pathway=pathway,
    )
    roles = {
        Role.PRESCRIBER: pathway.prescriber,
        Role.THERAPIST: plan.pathway.therapist if plan else pathway.therapist,
        Role.MONITOR: session.booking.monitor,
        Role.CLINIC_ADMIN: User.objects.filter(clinic=demo.clinic, role=Role.CLINIC_ADMIN).first(),
    }
    return pages, {role: user for role, user in roles.items() if user is not None}


def _network_pages(handles: Any) -> tuple[list[Page], dict[str, User]]:
    from sessions.models import EmdrPlan
    from sessions.models import Room

    pages = main_pages(
        pathway=Pathway.objects.get(public_id=handles.pathway_public_id),
        room=Room.objects.get(public_id=handles.room_public_id),
        week=handles.week,
        session=DosingSession.objects.get(public_id=handles.session_30_vitals_public_id),
        plan=EmdrPlan.objects.get(public_id=handles.emdr_plan_public_id),
        integration_pathway=Pathway.objects.get(public_id=handles.integration_pathway_public_id),
    )
    users = {role: User.objects.get(public_id=public_id) for role, public_id in handles.users.items()}
    return pages, users


def query_figures(network: Any) -> list[Figure]:
    """Queries per page on the demo clinic and on the network: at most 12, and the same on both."""
    demo_pages, demo_users = _demo_pages()
    net_pages, net_users = _network_pages(network.handles)
    demo = page_queries(demo_pages, demo_users)
    net = page_queries(net_pages, net_users)
    figures = []
    for name in demo:
        met = demo[name] == net[name] <= 12
        figures.append(
            Figure(f"{name}: queries, demo / network", net[name], f"(demo {demo[name]})", "<= 12, same", met)
        )
    return figures


def watched_tables() -> tuple[str, ...]:
    """The tables that grow with the clinic's history, which no page may scan whole: bookings, vitals
    readings and audit events."""
    from kaemdr.models import AuditEvent
    from sessions.models import Booking
    from sessions.models import VitalsReading

    return tuple(model._meta.db_table for model in (Booking, VitalsReading, AuditEvent))


def _plan_nodes(node: dict[str, Any]) -> Any:
    """Every node of an EXPLAIN (FORMAT JSON) plan, the node itself first (init plans and subplans
    are among its "Plans")."""
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def plan_seq_scans(plan: dict[str, Any], tables: tuple[str, ...]) -> list[str]:
    """The tables of `tables` that the plan (one EXPLAIN (FORMAT JSON) statement: the dict with "Plan")
    reads by a sequential scan, once per scan node (parallel ones too)."""
    return [
        node["Relation Name"]
        for node in _plan_nodes(plan["Plan"])
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in tables
    ]


def plan_rows_read(plan: dict[str, Any], tables: tuple[str, ...]) -> int:
    """Rows that the scans of `tables` read in an EXPLAIN ANALYZE plan: those they passed on and those
    their filters (and the index recheck) threw away, over every loop. (A plan without ANALYZE has no
    actual rows: 0.)"""
    read = 0.0
    for node in _plan_nodes(plan["Plan"]):
        if node.get("Relation Name") in tables and "Actual Rows" in node:
            per_loop = (
                node["Actual Rows"]
                + node.get("Rows Removed by Filter", 0)
                + node.get("Rows Removed by Index Recheck", 0)
            )
            read += per_loop * node.get("Actual Loops", 1)
    return round(read)


@dataclass(frozen=True)
class PagePlans:
    """What the plans of one page's SELECTs show: the sequential scans of the watched tables (by table
    name, once per scan), the rows the watched tables' scans read, and the rows the statements
    returned (each statement at least 1, so a count costs as much as the one row it gives)."""

    seq_scans: list[str]
    rows_read: int
    rows_returned: int


def explain_selects(statements: list[str], tables: tuple[str, ...]) -> PagePlans:
    """EXPLAIN (ANALYZE, FORMAT JSON) each SELECT of `statements` (SQL as run, parameters in; other
    statements are skipped: a page's writes are not run again) and sum up what the plans show.
    PostgreSQL only."""
    seq_scans: list[str] = []
    rows_read = rows_returned = 0
    with connection.cursor() as cursor:
        for sql in statements:
            if not sql.lstrip("( ").upper().startswith(("SELECT", "WITH")) or " FOR UPDATE" in sql.upper():
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            raw = cursor.fetchone()[0]
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
            seq_scans += plan_seq_scans(plan, tables)
            rows_read += plan_rows_read(plan, tables)
            rows_returned += max(
                1, round(plan["Plan"].get("Actual Rows", 0) * plan["Plan"].get("Actual Loops", 1))
            )
    return PagePlans(seq_scans=seq_scans, rows_read=rows_read, rows_returned=rows_returned)


def page_plans(pages: list[Page], users: dict[str, User]) -> dict[str, PagePlans]:
    """The plans of each page's SELECTs, as a warm request runs them (see `page_queries`) with the page
    cache off: a repeat view served from it would run none of the reads whose plans matter."""
    clients = {role: _signed_in_client(user) for role, user in users.items()}
    tables = watched_tables()
    plans = {}
    with override_settings(PAGE_CACHE_ENABLED=False):
        for page in pages:
            _get(clients[page.role], page.path)
            with CaptureQueriesContext(connection) as captured:
                _get(clients[page.role], page.path)
            statements = [query["sql"] for query in captured.captured_queries]
            plans[page.name] = explain_selects(statements, tables)
    return plans


def plan_figures(network: Any) -> list[Figure]:
    """The plans of each main page at network scale: no sequential scan of bookings, vitals or audit
    events (target 0), and the rows those tables' scans read per row the page's statements return
    (reported: a page that reads history it does not show reads many rows per row)."""
    pages, users = _network_pages(network.handles)
    figures = []
    for name, plans in page_plans(pages, users).items():
        scans = len(plans.seq_scans)
        figures.append(
            Figure(
                f"plan: {name}: sequential scans of bookings, vitals or audit events"
                + (f" ({', '.join(sorted(set(plans.seq_scans)))})" if scans else ""),
                scans,
                "scans",
                "0",
                scans == 0,
            )
        )
        figures.append(
            Figure(
                f"plan: {name}: rows of bookings, vitals and audit events read per row returned "
                f"({plans.rows_read:,} read, {plans.rows_returned:,} returned)",
                plans.rows_read / plans.rows_returned,
                "rows",
                "",
                None,
            )
        )
    return figures


def _median_seconds(action: Any, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def long_pathway_figures(network: Any, *, repeats: int = 7) -> list[Figure]:
    """The pathway page of the patient with the most sessions, timed in the server (in process)."""
    handles = network.handles
    prescriber = User.objects.get(public_id=handles.users[Role.PRESCRIBER])
    client = _signed_in_client(prescriber)
    path = reverse("pathway_detail", args=[handles.long_pathway_public_id])
    _get(client, path)  # the session's once-a-minute refresh, as for every page's figure
    queries = _get(client, path)
    seconds = _median_seconds(lambda: _get(client, path), repeats)
    return [
        Figure(
            f"pathway page, {handles.long_sessions} sessions: ms in the server",
            seconds * 1000,
            "ms",
            "<= 100",
            seconds <= 0.1,
        ),
        Figure(
            f"pathway page, {handles.long_sessions} sessions: queries",
            queries,
            "queries",
            "<= 12",
            queries <= 12,
        ),
    ]


def conflict_figures(network: Any, *, repeats: int = 21) -> list[Figure]:
    """Refusing a booking into a taken room and time, through the service the pages and API use."""
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from sessions.booking import services as dosing
    from sessions.models import Booking
    from sessions.models import Room

    conflict = network.handles.conflict
    admin = User.objects.select_related("clinic").get(public_id=conflict.admin_public_id)
    arguments = {
        "actor": admin,
        "pathway": Pathway.objects.select_related("patient", "clinic").get(
            public_id=conflict.pathway_public_id
        ),
        "room": Room.objects.get(public_id=conflict.room_public_id),
        "starts_at": conflict.starts_at,
        "prescriber": User.objects.get(public_id=conflict.prescriber_public_id),
        "monitor": User.objects.get(public_id=conflict.monitor_public_id),
    }
    refused: list[bool] = []

    def attempt() -> None:
        # As a request makes it: the service's own transaction is the outermost, and a refusal rolls
        # it back. Were the booking made (a failure the figure below reports), it is removed again.
        try:
            made = dosing.booking_create(**arguments)
        except ValidationError:
            refused.append(True)
        else:
            refused.append(False)
            with transaction.atomic():
                FollowUp.objects.filter(booking=made).delete()
                made.delete()

    seconds = _median_seconds(attempt, repeats)
    bookings = Booking.objects.count()
    return [
        Figure(
            f"conflicting booking refused among {bookings:,} bookings: ms in the server",
            seconds * 1000,
            "ms",
            "<= 5",
            seconds <= 0.005,
        ),
        Figure(
            "conflicting booking refused every time",
            1.0 if all(refused) else 0.0,
            "yes/no",
            "yes",
            all(refused),
        ),
    ]


def http_figures(network: Any, *, duration_s: float, connections: int, rss_requests: int) -> list[Figure]:
    """Each main page over HTTP against the floor, repeat and cold views side by side, and the
    worker's memory after the run."""
    pages, users = _network_pages(network.handles)
    long_page = Page(
        f"pathway page, {network.handles.long_sessions} sessions",
        reverse("pathway_detail", args=[network.handles.long_pathway_public_id]),
        Role.PRESCRIBER,
    )
    specs = [PageSpec(page.name, page.path, users[page.role]) for page in [*pages, long_page]]
    results = run_http(
        specs, duration_s=duration_s, connections=connections, min_requests_for_rss=rss_requests
    )
    figures = [
        Figure("trivial view (the floor): requests/s", results.floor.rps, "/s", "", None, 1.0),
    ]
    signed_in = results.signed_in_floor
    if signed_in is not None:
        figures.append(
            Figure(
                f"trivial view signed in, session and user read (p50 {signed_in.p50_ms:.1f} ms): requests/s",
                signed_in.rps,
                "/s",
                "",
                None,
                signed_in.ratio_to_floor,
            )
        )
    for page in results.pages:
        figures.append(
            Figure(
                f"{page.name}: requests/s, repeat view (p50 {page.p50_ms:.1f} ms, p99 {page.p99_ms:.1f} ms)",
                page.rps,
                "/s",
                ">= 0.15x floor",
                page.ok and page.ratio_to_floor >= 0.15,
                page.ratio_to_floor,
            )
        )
        cold = results.cold_of(page)
        if cold is not None:  # beside it: the first view after a change (`bench.cold`)
            figures.append(
                Figure(
                    f"{page.name}, cold: requests/s, first view after a change (p50 {cold.p50_ms:.1f} ms)",
                    cold.rps,
                    "/s",
                    ">= 0.06x floor",
                    cold.ok and cold.ratio_to_floor >= 0.06,
                    cold.ratio_to_floor,
                )
            )
    figures.append(
        Figure(
            f"web worker RSS after {results.requests_before_rss:,} requests",
            results.rss_mb,
            "MB",
            "<= 150",
            results.rss_ok and results.rss_mb <= 150,
        )
    )
    return figures


def run(
    *,
    scale: float = 1.0,
    long_sessions: int = 500,
    duration_s: float = 10,
    connections: int = 4,
    rss_requests: int = 10_000,
    sessions: int = 20,
    repeats: int = 3,
    follow_ups: int = 2000,
    log: Any = print,
    report_folder: Path | None = None,
) -> list[Figure]:
    """Every figure of the benchmark, in one run (the data built first, or reused)."""
    network = build_network(scale=scale, long_sessions=long_sessions, log=log)
    log(f"network data: {'built' if network.created else 'reused'} in {network.elapsed_seconds:.1f} s")
    figures = [
        Figure(
            "network data set: seconds to " + ("build" if network.created else "find (reused)"),
            network.elapsed_seconds,
            "s",
            "",
            None,
        ),
        *(
            Figure(f"network data set: {name}", count, "rows", "", None)
            for name, count in network.counts.items()
        ),
    ]
    # The quick, in-process figures first; each step's figures are kept (and written, when a folder
    # is given) before the next, so a long run that stops late keeps what it measured.
    steps: list[tuple[str, Any]] = [
        ("queries per page", lambda: query_figures(network)),
        ("plans of the pages", lambda: plan_figures(network)),
        ("the long pathway", lambda: long_pathway_figures(network)),
        ("a clashing booking", lambda: conflict_figures(network)),
        ("summary PDF", lambda: summary_figures(sessions=sessions, repeats=repeats)),
        ("follow-up dispatch", lambda: dispatch_figures(follow_ups=follow_ups)),
        (
            "pages over HTTP",
            lambda: http_figures(
                network, duration_s=duration_s, connections=connections, rss_requests=rss_requests
            ),
        ),
    ]
    for name, step in steps:
        log(f"{name} ...")
        figures += step()
        if report_folder is not None:
            write_report(figures, report_folder)
    return figures


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"


def write_report(figures: list[Figure], folder: Path) -> str:
    """The figures as a Markdown table (returned, and written beside a JSON copy under `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["| figure | value | target | ratio to floor | met |", "|---|---|---|---|---|"]
    for figure in figures:
        met = "" if figure.met is None else ("yes" if figure.met else "**no**")
        ratio = "" if figure.ratio_to_floor is None else f"{figure.ratio_to_floor:.2f}x"
        rows.append(
            f"| {figure.name} | {_number(figure.value)} {figure.unit} | {figure.target} | {ratio} | {met} |"
        )
    table = "\n".join(rows) + "\n"
    payload: dict[str, Any] = {
        "measured_at": timezone.now().isoformat(),
        "database": connection.vendor,
        "figures": [asdict(f) for f in figures],
    }
    (folder / "results.json").write_text(json.dumps(payload, indent=2))
    (folder / "results.md").write_text(table)
    return table
