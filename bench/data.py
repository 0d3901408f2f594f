"""The benchmark's network-scale data set: a clinic group that has run kaemdr for four years.

`build_network(scale=1.0)` fills the current database (the benchmark points `DATABASE_URL` at a
database of its own) with 50 clinics, 20,000 patients with pathways at every stage, signed screenings,
200,000 bookings, about 2,000,000 vitals readings, EMDR plans and logs, integration notes and
experiments, follow-ups and audit events, and one long-treated patient with 500 signed dosing sessions.
`scale` multiplies the counts (at least two clinics), so the test suite builds the same shape at
`scale=0.001` in seconds.

Why not the services: they take tens of milliseconds a session with their checks, locks and audit
rows, so the network would take hours. The rows are generated here instead and sent with PostgreSQL's
COPY (a few small tables with `bulk_create`) from a second thread while the next chunk is generated,
all in ONE transaction: a build either completes or leaves nothing. The database checks everything:
primary keys, unique, check and exclusion constraints (no overlapping bookings) row by row as the rows
arrive, and the foreign keys and partial-unique indexes as they are made again after the load (they
are dropped for it, PostgreSQL's advice for bulk loading: one join instead of a lookup per row).
Measured on a 2-core machine: about 2.5 minutes at scale 1 (vitals ~35 s, follow-ups ~22 s, bookings
~15 s with their three exclusion constraints, keys and indexes ~18 s; twice that while other work
shares the cores), under 2 seconds at 0.001.

Why the data stays valid: the generator follows the services' rules rather than calling them.
- Bookings sit on a grid of three slots a day in each room (08:30, 11:30, 14:30 clinic time; the
  longest chair time, 165 minutes, fits between two), weekdays only, inside the rooms' opening hours.
  One slot holds one booking; a patient has at most one booking a day; the monitors of a slot are
  rotated over the rooms (a clinic has at least as many monitors as rooms), so no room, patient or
  monitor is double-booked. Chair time is the default for the screening's agent and route.
- A pathway's timeline runs referral -> assessment -> preparation -> dosing -> integration ->
  completed (or on hold, or discontinued) with a stage-change row per move. Every booking falls inside
  a signed, eligible screening's 90 days (screenings are signed again every ~80 days of a long course;
  the older versions are superseded). Esketamine patients have a REMS enrolment before their first
  booking, and their rooms have a pulse oximeter.
- Past bookings are completed with a signed dosing record (checks, pre-dose vitals within limits, dose,
  vitals flagged against the default limits by `sessions.record.rules.vital_flags`, discharge after the
  observation time, signature); future ones are booked with their reminder follow-up; a few are
  cancelled. Follow-ups are those `integration.services` schedules after a signed session, done when
  their note, measures, form or check-in was recorded, open when recent, a few of them overdue; every
  message that fell due has been sent, so a dispatcher finds nothing old to send.

The build is reused: when the network's clinics (`net-001`...) are there with the patients the scale
asks for, nothing is written and the summary is read back in a second or so. The same data again is
guaranteed for the same day: the generator is seeded, and times are laid out from today.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import queue
import random
import threading
import time
import uuid
import zoneinfo
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import connection
from django.db import models
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from integration.models import Experiment
from integration.models import ExperimentUpdate
from integration.models import FollowUp
from integration.models import IntegrationNote
from kaemdr.models import AuditEvent
from kaemdr.models import Clinic
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from pathways.models import Patient
from pathways.models import Stage
from screening import rules as screening_rules
from screening.demo import des2
from screening.demo import phq9
from screening.demo import spread
from screening.models import Assessment
from screening.models import AssessmentMedication
from screening.models import MeasureResponse
from screening.models import SafetyAlert
from sessions.booking import rules as booking_rules
from sessions.models import AdverseEvent
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.models import EmdrPlan
from sessions.models import EmdrSessionLog
from sessions.models import EmdrTarget
from sessions.models import EmdrTargetWork
from sessions.models import RemsEnrolment
from sessions.models import Room
from sessions.models import RoomOpeningHours
from sessions.models import ScaleRating
from sessions.models import VitalsReading
from sessions.record import rules as dosing_rules


def _columns(names: str) -> list[str]:
    """Names written as one string (columns in the order of the values each row gives; name lists)."""
    return names.split()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SLUG_PREFIX = "net-"
SEED = 9_2026
BENCH_PASSWORD = "kaemdr-bench-2026"  # nosec B105  # the benchmark's own staff, in its own database
# Prescribers and clinic admins sign in with a second factor: every one of them has this authenticator.
BENCH_TOTP_KEY = "6b61656d64722d62656e63682d746f74702d6b6579"
BENCH_TOTP_DEVICE = "Bench authenticator"

FULL_CLINICS = 50
FULL_PATIENTS = 20_000
FULL_BOOKINGS = 200_000
FULL_VITALS = 2_000_000
HISTORY_DAYS = 4 * 365
FUTURE_DAYS = 8 * 7
SLOT_TIMES = (dt.time(8, 30), dt.time(11, 30), dt.time(14, 30))
OPENS, CLOSES = dt.time(8, 0), dt.time(18, 0)
LONG_RECORD = "N001-00000"  # the long-treated patient (clinic net-001)
TYPICAL_RECORD = "N001-00001"  # the typical pathway in dosing, with notes, an EMDR plan, 30 vitals
LONG_VITALS = 30
TIME_ZONES = ("Europe/London", "Europe/London", "Europe/Dublin", "Europe/Berlin", "America/New_York")

# Current stage of the pathways (after the two handled ones), in proportion: a clinic that has run
# for years holds mostly completed courses.
STAGE_SHARES: tuple[tuple[str, float], ...] = (
    (Stage.REFERRAL, 0.06),
    (Stage.ASSESSMENT, 0.08),
    (Stage.PREPARATION, 0.07),
    (Stage.DOSING, 0.14),
    (Stage.INTEGRATION, 0.10),
    (Stage.ON_HOLD, 0.04),
    (Stage.COMPLETED, 0.38),
    (Stage.DISCONTINUED, 0.13),
)
# (agent, route, share): sublingual racemic ketamine is the commonest; esketamine a quarter.
AGENT_ROUTES: tuple[tuple[str, str, float], ...] = (
    ("ketamine", "sublingual", 0.40),
    ("ketamine", "iv", 0.20),
    ("ketamine", "im", 0.10),
    ("ketamine", "oral", 0.05),
    ("esketamine", "intranasal", 0.25),
)
GIVEN = _columns(
    "Eleanor Marcus Hannah Tomás Aisha Oliver Grace Daniel Lucia Samuel Amara Ben Priya Sam Maya Jo Alex "
    "Chloe Ravi Noah Isla Leo Freya Omar Zara Finn Ivy Hugo Nora Arjun Mei Kofi Elena Jonas Sofia Ewan"
)
FAMILY = _columns(
    "Vance Adeyemi Kowalski Reyes Rahman Brandt Nakamura O'Connor Ferreira Achterberg Okafor Hartley Raman "
    "Lindqvist Castellanos Whitfield Murphy Chen Novak Haddad Patel Jensen Costa Mensah Rossi Müller "
    "Dubois Silva Byrne Kaur Tanaka Eriksen Moreau Walsh Iqbal Petrov"
)
MEDICATIONS = (
    ("Sertraline", "antidepressant", "100 mg"),
    ("Venlafaxine", "antidepressant", "150 mg"),
    ("Lamotrigine", "lamotrigine", "100 mg"),
    ("Diazepam", "benzodiazepine", "5 mg at night"),
    ("Zolpidem", "sedative_hypnotic", "5 mg"),
    ("Quetiapine", "antipsychotic", "25 mg"),
    ("Lithium carbonate", "lithium", "400 mg"),
    ("Propranolol", "other", "40 mg as needed"),
)
RELATIVE_CONDITIONS = ("substance_use_history", "psychosis_first_degree_relative", "brain_injury")
PERCEPTION = (
    "Could look at the memory 'from the hillside' without bracing.",
    "The sense of threat in crowds felt further away.",
    "Noticed the body settling before the mind did.",
    "Saw the old rule as a rule, not a fact.",
)
POSSIBLE = (
    "Saying 'I did what I could' without arguing back.",
    "Going to the Saturday market with a friend.",
    "Asking for help at work without apologising.",
    "Sleeping with the door closed.",
)
AFRAID = (
    "The part that keeps watch is afraid of being caught off guard again.",
    "Worried that relaxing means forgetting.",
    "Afraid that feeling better will not last.",
)
EXPERIMENTS = (
    ("sleep", "Lights out by 23:00 on weeknights, phone charging outside the bedroom."),
    ("self_attack", "Notice the 'useless' voice and answer it with one kind sentence."),
    ("avoidance", "Walk through the market for ten minutes on Saturday."),
    ("boundaries", "Say no to one extra shift a week."),
    ("relationships", "Call a sibling on Sunday evenings."),
)
TARGET_PLAN = (
    # (kind, title, sud, voc, sessions to resolve)
    ("resource", "Calm place: the lake", None, 4, 1),
    ("present_trigger", "Sirens at night", 7, 2, 2),
    ("body_response", "Tight chest in queues", 6, 3, 2),
    ("belief", "I can't protect myself", 6, 3, 2),
    ("past_memory", "The collision", 9, 2, 4),
    ("past_memory", "The hospital corridor", 8, 2, 3),
    ("future_template", "Driving past the junction", 5, 3, 1),
)


# --- What the build returns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConflictHandle:
    """A booked room and time, and everything else a new booking there needs: booking `pathway` into
    `room` at `starts_at` is refused because the room is taken (by the long-treated patient)."""

    room_public_id: str
    starts_at: dt.datetime
    pathway_public_id: str
    prescriber_public_id: str
    monitor_public_id: str
    admin_public_id: str


@dataclass(frozen=True)
class NetworkHandles:
    """Public ids (and the emails of the staff) of what the HTTP benchmark asks for, all in `net-001`."""

    clinic_public_id: str
    clinic_slug: str
    users: dict[str, str]  # role -> public id
    emails: dict[str, str]  # role -> email (password `BENCH_PASSWORD`; TOTP key `BENCH_TOTP_KEY`)
    pathway_public_id: str  # a typical pathway in dosing, with sessions, notes and an EMDR plan
    room_public_id: str
    week: dt.date  # a Monday: the room has bookings that week
    session_30_vitals_public_id: str
    emdr_plan_public_id: str
    integration_pathway_public_id: str
    long_pathway_public_id: str
    long_sessions: int
    conflict: ConflictHandle


@dataclass(frozen=True)
class NetworkSummary:
    scale: float
    created: bool
    elapsed_seconds: float
    counts: dict[str, int]
    table_seconds: dict[str, float]
    handles: NetworkHandles

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for JSON."""
        handles = {k: v for k, v in self.handles.__dict__.items() if k != "conflict"}
        handles["week"] = self.handles.week.isoformat()
        conflict = dict(self.handles.conflict.__dict__)
        conflict["starts_at"] = self.handles.conflict.starts_at.isoformat()
        handles["conflict"] = conflict
        return {
            "scale": self.scale,
            "created": self.created,
            "elapsed_seconds": self.elapsed_seconds,
            "counts": self.counts,
            "table_seconds": self.table_seconds,
            "handles": handles,
        }


@dataclass(frozen=True)
class Sizes:
    """The counts a scale asks for."""

    clinics: int
    patients: int
    bookings: int
    vitals: int
    rooms_per_clinic: int
    prescribers: int
    therapists: int
    monitors: int

    @classmethod
    def for_scale(cls, scale: float) -> Sizes:
        if scale <= 0:
            raise ValueError("The scale must be above 0.")
        clinics = max(2, round(FULL_CLINICS * scale))
        patients = max(10 * clinics, round(FULL_PATIENTS * scale))
        small = scale < 0.05
        return cls(
            clinics=clinics,
            patients=patients,
            bookings=max(20 * clinics, round(FULL_BOOKINGS * scale)),
            vitals=max(200 * clinics, round(FULL_VITALS * scale)),
            rooms_per_clinic=2 if small else 4,
            prescribers=2 if small else 3,
            therapists=2 if small else 4,
            monitors=2 if small else 4,
        )


# --- Plans: the rows to write, as plain values ----------------------------------------------------------


def _uid(rng: random.Random) -> str:
    """A random public id, deterministic under the seed (PostgreSQL reads 32 hex digits as a UUID)."""
    return f"{rng.getrandbits(128):032x}"


@dataclass(slots=True)
class _Staff:
    id: int
    public_id: str
    email: str


@dataclass(slots=True)
class _Room:
    id: int
    index: int
    oximeter: bool


@dataclass(slots=True)
class _Clinic:
    index: int
    id: int
    public_id: str
    slug: str
    tz: zoneinfo.ZoneInfo
    today: dt.date
    prescribers: list[_Staff]
    therapists: list[_Staff]
    monitors: list[_Staff]
    admin: _Staff
    rooms: list[_Room]
    used: dict[int, int] = field(default_factory=dict)  # day ordinal -> bitmask of (room, slot)

    def at(self, day: dt.date, clock: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, clock, tzinfo=self.tz).astimezone(dt.UTC)


@dataclass(slots=True)
class _Session:
    id: int
    public_id: str
    dose_started_at: dt.datetime
    dose_ended_at: dt.datetime
    discharged_at: dt.datetime
    signed_at: dt.datetime
    vitals: int


@dataclass(slots=True)
class _Booking:
    id: int
    public_id: str
    room: _Room
    monitor: _Staff
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    session: _Session | None = None
    created_at: dt.datetime = _EPOCH


@dataclass(slots=True)
class _Screening:
    id: int
    public_id: str
    signed_at: dt.datetime


@dataclass(slots=True)
class _Pathway:
    id: int
    public_id: str
    clinic: _Clinic
    patient_id: int
    patient_public_id: str
    date_of_birth: dt.date
    target: str  # the stage it ends in
    variant: str  # how an on-hold or discontinued pathway got there: "early" or "dosing"
    prescriber: _Staff
    therapist: _Staff | None
    agent: str
    route: str
    weight: Decimal
    sessions_wanted: int = 0
    future_wanted: int = 0
    gap_days: int = 7
    stage: str = ""
    before_hold: str = ""
    opened_at: dt.datetime = _EPOCH
    moves: list[tuple[str, str, dt.datetime]] = field(default_factory=list)
    screenings: list[_Screening] = field(default_factory=list)
    draft_assessment: bool = False
    not_eligible: bool = False
    bookings: list[_Booking] = field(default_factory=list)
    prepared_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None

    @property
    def stage_changed_at(self) -> dt.datetime:
        return self.moves[-1][2]

    @property
    def is_open(self) -> bool:
        return self.stage not in (Stage.COMPLETED, Stage.DISCONTINUED)

    def signed_sessions(self) -> list[tuple[_Booking, _Session]]:
        return [(b, b.session) for b in self.bookings if b.session is not None]


class _Ids:
    """Primary keys handed out in blocks from the table's own identity sequence, so rows written with
    COPY can be referred to before they are written, and later inserts through Django continue after."""

    BLOCK = 20_000

    def __init__(self, cursor: Any, model: type[models.Model], lock: threading.Lock) -> None:
        self.cursor, self.table, self.lock = cursor, model._meta.db_table, lock
        self.next_id, self.last = 1, 0

    def take(self) -> int:
        if self.next_id > self.last:
            with self.lock:  # not while the writer thread is in a COPY on the same connection
                self._reserve()
        taken = self.next_id
        self.next_id += 1
        return taken

    def _reserve(self) -> None:
        self.cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), nextval(pg_get_serial_sequence(%s, 'id')) + %s)",
            [self.table, self.table, self.BLOCK - 1],
        )
        self.last = self.cursor.fetchone()[0]
        self.next_id = self.last - self.BLOCK + 1


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _cell(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        return value.translate(_ESCAPES)
    if kind is bool:
        return "t" if value else "f"
    if kind is int or kind is Decimal or kind is float:
        return str(value)
    if kind is dt.datetime or kind is dt.date or kind is dt.time:
        return value.isoformat()
    if kind is list or kind is dict:
        return json.dumps(value).translate(_ESCAPES)
    return str(value).translate(_ESCAPES)


class _Writer:
    """Sends the COPY chunks from a second thread, in the order given, while the main thread generates
    the next ones: the generator (Python) and PostgreSQL each keep one core busy. It uses its own cursor
    on the same connection (psycopg2 serialises the connection's commands), so it stays inside the
    build's transaction. An error in the thread is raised in the main thread at the next call."""

    def __init__(self, raw_connection: Any) -> None:
        self.cursor = raw_connection.cursor()
        # One connection, two threads: psycopg2 does not keep a COPY and another command apart, so
        # the main thread's own commands (reserving keys) take this lock, which a COPY holds.
        self.lock = threading.Lock()
        self.queue: queue.Queue[tuple[str, io.StringIO] | None] = queue.Queue(maxsize=3)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bench-data-copy", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    sql, buffer = item
                    buffer.seek(0)
                    with self.lock:
                        self.cursor.copy_expert(sql, buffer)
            except BaseException as error:  # handed to the main thread, which raises it
                self.error = error
            finally:
                self.queue.task_done()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, sql: str, buffer: io.StringIO) -> None:
        self._raise()
        self.queue.put((sql, buffer))

    def wait(self) -> None:
        """Until every chunk given so far is in the database."""
        self.queue.join()
        self._raise()

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.cursor.close()


class _Copy:
    """Rows of one table, sent with COPY every `chunk` rows (through the writer thread). Rows that
    refer to other rows are sent after them (`after`), so each COPY could be checked as it ends."""

    def __init__(
        self,
        writer: _Writer,
        model: type[models.Model],
        columns: Iterable[str],
        *,
        after: Iterable[_Copy] = (),
        chunk: int = 50_000,
    ) -> None:
        self.writer, self.chunk, self.after = writer, chunk, tuple(after)
        quoted = ", ".join(f'"{column}"' for column in columns)
        self.sql = f'COPY "{model._meta.db_table}" ({quoted}) FROM STDIN'
        self.buffer, self.pending, self.rows = io.StringIO(), 0, 0

    def add(self, *values: Any) -> None:
        self.buffer.write("\t".join([_cell(v) for v in values]))
        self.buffer.write("\n")
        self.pending += 1
        if self.pending >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        for parent in self.after:  # rows this chunk refers to go first
            parent.flush()
        self.writer.submit(self.sql, self.buffer)
        self.rows += self.pending
        self.buffer, self.pending = io.StringIO(), 0

    def close(self) -> int:
        """Send what is left and wait until it is written; the rows written."""
        self.flush()
        self.writer.wait()
        return self.rows


class _Relaxed:
    """The foreign keys and plain indexes of the tables loaded with COPY, dropped for the load and made
    again after it, as PostgreSQL's "Populating a Database" advises: adding a foreign key back checks
    every row in one join instead of one lookup per row, and an index is built once instead of updated
    row by row. Nothing goes unchecked: re-adding a foreign key or a unique index validates all rows,
    and the primary keys, unique, check and exclusion constraints stay in place during the load. DDL
    is transactional in PostgreSQL, so a failed build puts them back too. The tables are locked while
    the build runs (the benchmark's database is its own)."""

    def __init__(self, cursor: Any, tables: Iterable[str]) -> None:
        self.cursor, self.tables = cursor, list(tables)
        self.foreign_keys: list[tuple[str, str, str]] = []  # table, name, definition
        self.indexes: list[str] = []  # CREATE INDEX statements

    def drop(self) -> None:
        cursor = self.cursor
        for table in self.tables:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
                [table],
            )
            for name, definition in cursor.fetchall():
                self.foreign_keys.append((table, name, definition))
                cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            cursor.execute(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) "
                "ORDER BY i.relname",
                [table],
            )
            for name, definition in cursor.fetchall():
                self.indexes.append(definition)
                cursor.execute(f'DROP INDEX "{name}"')

    def restore(self) -> None:
        for definition in self.indexes:
            self.cursor.execute(definition)
        for table, name, definition in self.foreign_keys:
            self.cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')


class _Timer:
    """Time and rows per table, logged as each is written."""

    def __init__(self, log: Callable[[str], Any]) -> None:
        self.log, self.seconds, self.rows = log, dict[str, float](), dict[str, int]()
        self.started = time.perf_counter()

    def done(self, name: str, started: float | None, rows: int) -> None:
        """Log a table written since `started`, or (None) one written in the same pass as the one before,
        whose time that one's includes."""
        self.rows[name] = self.rows.get(name, 0) + rows
        if started is None:
            self.log(f"  {name}: {rows:,} rows (in the same pass)")
            return
        took = time.perf_counter() - started
        self.seconds[name] = round(self.seconds.get(name, 0.0) + took, 2)
        rate = rows / took if took else 0.0
        self.log(f"  {name}: {rows:,} rows in {took:.1f} s ({rate:,.0f}/s)")


# The tables written with COPY, whose foreign keys and plain indexes are made again after the load.
COPIED: tuple[type[models.Model], ...] = (
    Patient,
    Pathway,
    PathwayStageChange,
    RemsEnrolment,
    Assessment,
    AssessmentMedication,
    MeasureResponse,
    SafetyAlert,
    Booking,
    DosingSession,
    ScaleRating,
    AdverseEvent,
    VitalsReading,
    EmdrPlan,
    EmdrTarget,
    EmdrTarget.belongs_to.through,
    EmdrSessionLog,
    EmdrTargetWork,
    IntegrationNote,
    Experiment,
    ExperimentUpdate,
    FollowUp,
    AuditEvent,
)


# --- The entry point ------------------------------------------------------------------------------------


def build_network(
    *, scale: float = 1.0, long_sessions: int = 500, log: Callable[[str], Any] = print
) -> NetworkSummary:
    """Build the network data set in the current (PostgreSQL) database, or reuse it when it is there.

    Returns the counts present, the seconds taken (and per table when built) and the handles the
    benchmark needs. Raises RuntimeError on another database engine, or when the database holds a
    network of another scale (audit events are append-only, so a network is never deleted: point
    `DATABASE_URL` at a fresh database instead).
    """
    if connection.vendor != "postgresql":
        raise RuntimeError("The network data set is written with COPY: it needs PostgreSQL.")
    started = time.perf_counter()
    sizes = Sizes.for_scale(scale)
    present = Clinic.objects.filter(slug__startswith=SLUG_PREFIX).count()
    if present:
        patients = Patient.objects.filter(clinic__slug__startswith=SLUG_PREFIX).count()
        if present != sizes.clinics or patients != sizes.patients:
            raise RuntimeError(
                f"This database holds a network of {present} clinics and {patients:,} patients, not the "
                f"{sizes.clinics} and {sizes.patients:,} of scale {scale}: use a fresh database."
            )
        log(f"Network data set already there ({present} clinics, {patients:,} patients): reused.")
        handles = network_handles()
        return NetworkSummary(
            scale=scale,
            created=False,
            elapsed_seconds=round(time.perf_counter() - started, 2),
            counts=network_counts(),
            table_seconds={},
            handles=handles,
        )
    log(
        f"Building the network data set at scale {scale}: {sizes.clinics} clinics, {sizes.patients:,} "
        f"patients, ~{sizes.bookings:,} bookings, ~{sizes.vitals:,} vitals readings."
    )
    timer = _Timer(log)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        _Builder(cursor=cursor, sizes=sizes, long_sessions=long_sessions, timer=timer).build()
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    _analyse(timer)
    elapsed = round(time.perf_counter() - started, 2)
    log(f"Network data set built in {elapsed:.1f} s.")
    return NetworkSummary(
        scale=scale,
        created=True,
        elapsed_seconds=elapsed,
        counts=network_counts(),
        table_seconds=dict(timer.seconds),
        handles=network_handles(),
    )


def _analyse(timer: _Timer) -> None:
    """Fresh planner statistics (and, outside a transaction, the visibility map) for the tables just
    filled, as autovacuum would give them a little later: the benchmark measures the app, not a planner
    that has never seen the data."""
    started = time.perf_counter()
    tables = [model._meta.db_table for model in COPIED]
    with connection.cursor() as cursor:
        statement = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
        for table in tables:
            cursor.execute(f"{statement} {table}")
    timer.done("vacuum and analyze", started, len(tables))


def network_counts() -> dict[str, int]:
    """The rows of the network's clinics, table by table."""
    clinic_ids = list(Clinic.objects.filter(slug__startswith=SLUG_PREFIX).values_list("id", flat=True))
    in_network = {"clinic_id__in": clinic_ids}
    sessions = DosingSession.objects.filter(**in_network)
    return {
        "clinics": len(clinic_ids),
        "staff": User.objects.filter(**in_network).count(),
        "rooms": Room.objects.filter(**in_network).count(),
        "patients": Patient.objects.filter(**in_network).count(),
        "pathways": Pathway.objects.filter(**in_network).count(),
        "stage_changes": PathwayStageChange.objects.filter(pathway__clinic_id__in=clinic_ids).count(),
        "assessments": Assessment.objects.filter(**in_network).count(),
        "measures": MeasureResponse.objects.filter(**in_network).count(),
        "safety_alerts": SafetyAlert.objects.filter(**in_network).count(),
        "bookings": Booking.objects.filter(**in_network).count(),
        "dosing_sessions": sessions.count(),
        "signed_sessions": sessions.filter(status="signed").count(),
        "vitals": VitalsReading.objects.filter(session__clinic_id__in=clinic_ids).count(),
        "scale_ratings": ScaleRating.objects.filter(session__clinic_id__in=clinic_ids).count(),
        "emdr_plans": EmdrPlan.objects.filter(**in_network).count(),
        "emdr_targets": EmdrTarget.objects.filter(plan__clinic_id__in=clinic_ids).count(),
        "emdr_session_logs": EmdrSessionLog.objects.filter(plan__clinic_id__in=clinic_ids).count(),
        "integration_notes": IntegrationNote.objects.filter(**in_network).count(),
        "experiments": Experiment.objects.filter(**in_network).count(),
        "follow_ups": FollowUp.objects.filter(**in_network).count(),
        "follow_ups_open": FollowUp.objects.filter(**in_network, status="open").count(),
        "follow_ups_overdue": FollowUp.objects.filter(**in_network, status="open", due_at__lt=timezone.now())
        .exclude(kind="visit_reminder")
        .count(),
        "audit_events": AuditEvent.objects.filter(
            clinic_public_id__in=Clinic.objects.filter(id__in=clinic_ids).values("public_id")
        ).count(),
    }


def network_handles() -> NetworkHandles:
    """Find the benchmark's handles in a built network (the same after a build and on reuse)."""
    clinic = Clinic.objects.get(slug=f"{SLUG_PREFIX}001")
    first = {
        role: User.objects.filter(clinic=clinic, role=role).order_by("email").first()
        for role in (Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN)
    }
    users = {role: user for role, user in first.items() if user is not None}
    typical = Pathway.objects.get(clinic=clinic, patient__record_number=TYPICAL_RECORD, stage=Stage.DOSING)
    long = Pathway.objects.get(clinic=clinic, patient__record_number=LONG_RECORD, stage=Stage.DOSING)
    session = (
        DosingSession.objects.filter(booking__pathway=typical, status="signed")
        .order_by("-booking__starts_at")
        .first()
    )
    assert session is not None, "the typical pathway has signed sessions"
    booked = Booking.objects.filter(pathway=long, status="booked")
    conflict = booked.filter(starts_at__gt=timezone.now()).order_by("starts_at").first() or booked.last()
    assert conflict is not None, "the long-treated patient has a session booked"
    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    today = timezone.now().astimezone(tz).date()
    week = today - dt.timedelta(days=today.weekday() + 7)
    return NetworkHandles(
        clinic_public_id=str(clinic.public_id),
        clinic_slug=clinic.slug,
        users={str(role.value): str(user.public_id) for role, user in users.items()},
        emails={str(role.value): user.email for role, user in users.items()},
        pathway_public_id=str(typical.public_id),
        room_public_id=str(conflict.room.public_id),
        week=week,
        session_30_vitals_public_id=str(session.public_id),
        emdr_plan_public_id=str(EmdrPlan.objects.get(pathway=typical).public_id),
        integration_pathway_public_id=str(typical.public_id),
        long_pathway_public_id=str(long.public_id),
        long_sessions=DosingSession.objects.filter(booking__pathway=long, status="signed").count(),
        conflict=ConflictHandle(
            room_public_id=str(conflict.room.public_id),
            starts_at=conflict.starts_at,
            pathway_public_id=str(typical.public_id),
            prescriber_public_id=str(users[Role.PRESCRIBER].public_id),
            monitor_public_id=str(users[Role.MONITOR].public_id),
            admin_public_id=str(users[Role.CLINIC_ADMIN].public_id),
        ),
    )


# --- The builder ----------------------------------------------------------------------------------------


def _apportion(total: int, shares: Iterable[tuple[str, float]], minimum: int) -> list[str]:
    """`total` labels in the given shares (largest remainders), each at least `minimum` when it fits."""
    shares = list(shares)
    floor = minimum if total >= minimum * len(shares) else 0
    rest = total - floor * len(shares)
    exact = [(label, share * rest) for label, share in shares]
    counts = {label: floor + int(value) for label, value in exact}
    leftovers = sorted(exact, key=lambda pair: pair[1] - int(pair[1]), reverse=True)
    for label, _ in leftovers[: total - sum(counts.values())]:
        counts[label] += 1
    return [label for label, _ in shares for _ in range(counts[label])]


class _Builder:
    """Plans the network in memory, then writes it table by table in foreign-key order."""

    def __init__(self, *, cursor: Any, sizes: Sizes, long_sessions: int, timer: _Timer) -> None:
        self.cursor, self.sizes, self.long_sessions, self.timer = cursor, sizes, long_sessions, timer
        self.rng = random.Random(SEED)  # noqa: S311  # nosec B311  # made-up data, no secret
        self.now = timezone.now().replace(second=0, microsecond=0)
        self.clinics: list[_Clinic] = []
        self.pathways: list[_Pathway] = []
        self.limits = dosing_rules.VitalLimits()

    def ids(self, model: type[models.Model]) -> _Ids:
        return _Ids(self.cursor, model, self.writer.lock)

    def copy(self, model: type[models.Model], columns: Iterable[str], *after: _Copy) -> _Copy:
        return _Copy(self.writer, model, columns, after=after)

    def build(self) -> None:
        self.write_clinics_and_staff()
        self.writer = _Writer(connection.connection)
        try:
            started = time.perf_counter()
            self.plan_pathways()
            self.timer.done("plan (pathways, bookings, sessions in memory)", started, len(self.pathways))
            started = time.perf_counter()
            relaxed = _Relaxed(self.cursor, [model._meta.db_table for model in COPIED])
            relaxed.drop()
            self.timer.done("foreign keys and plain indexes dropped", started, len(relaxed.foreign_keys))
            self.write_patients_and_pathways()
            self.write_screenings()
            self.write_bookings_and_sessions()
            self.write_vitals()
            self.write_emdr()
            self.write_integration()
            self.write_follow_ups()
            self.write_audit()
            self.writer.wait()
        finally:
            self.writer.stop()
        started = time.perf_counter()
        relaxed.restore()
        rows = len(relaxed.indexes) + len(relaxed.foreign_keys)
        self.timer.done("indexes built and foreign keys checked", started, rows)

    # --- clinics, staff, rooms (bulk_create: a few hundred rows) ---------------------------------------

    def write_clinics_and_staff(self) -> None:
        started = time.perf_counter()
        sizes, rng = self.sizes, self.rng
        clinics = Clinic.objects.bulk_create(
            Clinic(
                name=f"{FAMILY[i % len(FAMILY)]} Ketamine & EMDR Clinic {i + 1:03d}",
                slug=f"{SLUG_PREFIX}{i + 1:03d}",
                time_zone=TIME_ZONES[i % len(TIME_ZONES)],
                created_at=self.now - dt.timedelta(days=HISTORY_DAYS + 30),
            )
            for i in range(sizes.clinics)
        )
        password = make_password(BENCH_PASSWORD)
        roles = (
            (Role.PRESCRIBER, "prescriber", sizes.prescribers),
            (Role.THERAPIST, "therapist", sizes.therapists),
            (Role.MONITOR, "monitor", sizes.monitors),
            (Role.CLINIC_ADMIN, "admin", 1),
        )
        users: list[User] = []
        for clinic in clinics:
            for role, word, count in roles:
                for k in range(1, count + 1):
                    name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
                    users.append(
                        User(
                            email=f"{word}{k}@{clinic.slug}.bench.kaemdr.test",
                            full_name=f"Dr {name}" if role == Role.PRESCRIBER else name,
                            clinic=clinic,
                            role=role,
                            password=password,
                            date_joined=clinic.created_at,
                            two_factor_enabled=role in (Role.PRESCRIBER, Role.CLINIC_ADMIN),
                            two_factor_epoch=1 if role in (Role.PRESCRIBER, Role.CLINIC_ADMIN) else 0,
                        )
                    )
        users = User.objects.bulk_create(users)
        TOTPDevice.objects.bulk_create(
            TOTPDevice(user=u, name=BENCH_TOTP_DEVICE, key=BENCH_TOTP_KEY, confirmed=True)
            for u in users
            if u.two_factor_enabled
        )
        rooms = Room.objects.bulk_create(
            Room(
                clinic=clinic,
                name=f"Room {chr(ord('A') + r)}",
                # The last room of a larger clinic has no pulse oximeter: no esketamine there.
                has_pulse_oximeter=not (sizes.rooms_per_clinic > 2 and r == sizes.rooms_per_clinic - 1),
                created_at=clinic.created_at,
            )
            for clinic in clinics
            for r in range(sizes.rooms_per_clinic)
        )
        RoomOpeningHours.objects.bulk_create(
            RoomOpeningHours(room=room, weekday=day, opens=OPENS, closes=CLOSES)
            for room in rooms
            for day in range(5)
        )
        by_clinic: dict[int, list[User]] = {}
        for user in users:
            by_clinic.setdefault(user.clinic_id or 0, []).append(user)

        def staff(clinic: Clinic, role: str) -> list[_Staff]:
            return [
                _Staff(u.pk, str(u.public_id), u.email)
                for u in sorted(by_clinic[clinic.pk], key=lambda u: u.email)
                if u.role == role
            ]

        for index, clinic in enumerate(clinics):
            tz = zoneinfo.ZoneInfo(clinic.time_zone)
            clinic_rooms = [r for r in rooms if r.clinic_id == clinic.pk]
            self.clinics.append(
                _Clinic(
                    index=index,
                    id=clinic.pk,
                    public_id=str(clinic.public_id),
                    slug=clinic.slug,
                    tz=tz,
                    today=self.now.astimezone(tz).date(),
                    prescribers=staff(clinic, Role.PRESCRIBER),
                    therapists=staff(clinic, Role.THERAPIST),
                    monitors=staff(clinic, Role.MONITOR),
                    admin=staff(clinic, Role.CLINIC_ADMIN)[0],
                    rooms=[_Room(r.pk, i, r.has_pulse_oximeter) for i, r in enumerate(clinic_rooms)],
                )
            )
        self.timer.done("clinics, staff, authenticators, rooms, hours", started, len(users) + len(rooms))

    # --- planning ------------------------------------------------------------------------------------

    def plan_pathways(self) -> None:
        """Who is where, and when every booking of every pathway falls."""
        sizes, rng = self.sizes, self.rng
        patient_ids, pathway_ids = self.ids(Patient), self.ids(Pathway)
        per_clinic = [
            sizes.patients // sizes.clinics + (i < sizes.patients % sizes.clinics)
            for i in range(sizes.clinics)
        ]
        agents = [(a, r) for a, r, _ in AGENT_ROUTES]
        agent_weights = [w for _, _, w in AGENT_ROUTES]
        for clinic, count in zip(self.clinics, per_clinic, strict=True):
            stages = [Stage.DOSING, Stage.DOSING, *_apportion(count - 2, STAGE_SHARES, 1)]
            head = stages[:2]
            tail = stages[2:]
            rng.shuffle(tail)
            for index, stage in enumerate(head + tail):
                agent, route = rng.choices(agents, agent_weights)[0]
                handled = clinic.index == 0 and index < 2
                if handled:
                    agent, route = "ketamine", "sublingual"
                needs_therapist = stage not in (Stage.REFERRAL, Stage.ASSESSMENT) or rng.random() < 0.7
                self.pathways.append(
                    _Pathway(
                        id=pathway_ids.take(),
                        public_id=_uid(rng),
                        clinic=clinic,
                        patient_id=patient_ids.take(),
                        patient_public_id=_uid(rng),
                        date_of_birth=dt.date(
                            rng.randint(1950, 2003), rng.randint(1, 12), rng.randint(1, 28)
                        ),
                        target=stage,
                        variant=rng.choice(("early", "dosing")),
                        prescriber=clinic.prescribers[0] if handled else rng.choice(clinic.prescribers),
                        therapist=(clinic.therapists[0] if handled else rng.choice(clinic.therapists))
                        if needs_therapist
                        else None,
                        agent=agent,
                        route=route,
                        weight=Decimal(rng.randint(520, 1100)) / 10,
                    )
                )
        self._share_out_bookings()
        booking_ids, session_ids = self.ids(Booking), self.ids(DosingSession)
        for pathway in self.pathways:
            self._plan_timeline(pathway, booking_ids, session_ids)

    def _doses(self, pathway: _Pathway) -> bool:
        if pathway.target in (Stage.DOSING, Stage.INTEGRATION, Stage.COMPLETED):
            return True
        return pathway.target in (Stage.ON_HOLD, Stage.DISCONTINUED) and pathway.variant == "dosing"

    def _share_out_bookings(self) -> None:
        """Sessions per pathway, in proportion to its stage, scaled so that the total meets the bookings
        asked for (the long-treated and the typical pathway have theirs fixed)."""
        rng = self.rng
        raw: dict[int, float] = {}
        fixed = 0
        for pathway in self.pathways:
            if pathway is self.pathways[0]:
                pathway.sessions_wanted, pathway.future_wanted = self.long_sessions, 2
                fixed += self.long_sessions + 2
            elif pathway is self.pathways[1]:
                pathway.sessions_wanted, pathway.future_wanted = 16, 2
                fixed += 18
            elif self._doses(pathway):
                spans: dict[str, tuple[int, int]] = {
                    Stage.DOSING: (2, 14),
                    Stage.INTEGRATION: (6, 20),
                    Stage.COMPLETED: (6, 26),
                }
                low, high = spans.get(pathway.target, (1, 6))
                raw[pathway.id] = rng.uniform(low, high)
                pathway.future_wanted = rng.choice((1, 2)) if pathway.target == Stage.DOSING else 0
                fixed += pathway.future_wanted
        # About 4% more bookings are cancelled ones, made on the way, and about 4% of the sessions asked
        # for do not fit before today (a course that would run into the future is cut short).
        budget = max(len(raw), round((self.sizes.bookings - fixed) / 1.04 * 1.045))
        factor = budget / sum(raw.values()) if raw else 0.0
        for pathway in self.pathways:
            if pathway.id in raw:
                pathway.sessions_wanted = max(1, round(raw[pathway.id] * factor))
                pathway.gap_days = (
                    rng.choice((3, 4, 7, 7, 7, 14))
                    if pathway.sessions_wanted > 6
                    else rng.choice((2, 3, 4, 7))
                )

    def _take_slot(
        self,
        clinic: _Clinic,
        day: dt.date,
        agent: str,
        *,
        before: dt.date | None,
        fixed: tuple[int, int] | None = None,
    ) -> tuple[dt.date, _Room, int] | None:
        """The first free (room, slot) on `day` or a later weekday (before `before`), marked as used."""
        rng, slots = self.rng, len(SLOT_TIMES)
        while before is None or day < before:
            if day.weekday() < 5:
                used = clinic.used.get(day.toordinal(), 0)
                if fixed is not None:
                    room_index, slot = fixed
                    free = [] if used & (1 << (room_index * slots + slot)) else [(room_index, slot)]
                else:
                    free = [
                        (room.index, slot)
                        for room in clinic.rooms
                        if room.oximeter or agent != "esketamine"
                        for slot in range(slots)
                        if not used & (1 << (room.index * slots + slot))
                    ]
                if free:
                    room_index, slot = free[0] if fixed is not None else rng.choice(free)
                    clinic.used[day.toordinal()] = used | (1 << (room_index * slots + slot))
                    return day, clinic.rooms[room_index], slot
            day += dt.timedelta(days=1)
        return None

    def _add_booking(
        self,
        pathway: _Pathway,
        placed: tuple[dt.date, _Room, int],
        *,
        status: str,
        booking_ids: _Ids,
        session_ids: _Ids,
    ) -> _Booking:
        rng, clinic = self.rng, pathway.clinic
        day, room, slot = placed
        chair = booking_rules.DEFAULT_CHAIR_TIMES[(pathway.agent, pathway.route)]
        starts_at = clinic.at(day, SLOT_TIMES[slot])
        monitor = clinic.monitors[(room.index + day.toordinal()) % len(clinic.monitors)]
        booking = _Booking(
            id=booking_ids.take(),
            public_id=_uid(rng),
            room=room,
            monitor=monitor,
            starts_at=starts_at,
            ends_at=booking_rules.end_for(starts_at, chair),
            status=status,
        )
        if status == "completed":
            dose = starts_at + dt.timedelta(minutes=rng.randint(12, 20))
            discharged = dose + dt.timedelta(
                minutes=chair.dosing_minutes + chair.monitoring_minutes - 15 + rng.randint(0, 10)
            )
            booking.session = _Session(
                id=session_ids.take(),
                public_id=_uid(rng),
                dose_started_at=dose,
                dose_ended_at=dose + dt.timedelta(minutes=max(1, chair.dosing_minutes - rng.randint(0, 5))),
                discharged_at=discharged,
                signed_at=discharged + dt.timedelta(minutes=rng.randint(5, 40)),
                vitals=0,
            )
        pathway.bookings.append(booking)
        return booking

    def _plan_timeline(self, pathway: _Pathway, booking_ids: _Ids, session_ids: _Ids) -> None:
        """Lay out the pathway's stage moves, screenings and bookings, ending in its target stage."""
        rng, clinic, now = self.rng, pathway.clinic, self.now
        today = clinic.today
        days = dt.timedelta(days=1)
        is_long = clinic.index == 0 and pathway is self.pathways[0]
        is_typical = clinic.index == 0 and pathway is self.pathways[1]
        span = dt.timedelta(days=pathway.sessions_wanted * pathway.gap_days)
        lead = dt.timedelta(days=rng.randint(30, 70))  # referral to the first dose
        target = pathway.target
        # When the first session would fall (the course is anchored at now for open pathways).
        if is_long:
            first_day = None
        elif target == Stage.DOSING:
            first_day = today - span + days * rng.randint(0, min(5, pathway.gap_days))
        elif target == Stage.INTEGRATION:
            first_day = today - span - days * rng.randint(5, 40)
        elif target == Stage.ON_HOLD and pathway.variant == "dosing":
            first_day = today - span - days * rng.randint(5, 60)
        elif self._doses(pathway):  # completed, or discontinued during dosing
            latest = today - span - days * 60
            earliest = today - days * (HISTORY_DAYS - 90)
            first_day = earliest + days * rng.randint(0, max(0, (latest - earliest).days))
        else:
            first_day = None
        sessions: list[_Booking] = []
        if is_long:
            sessions = self._plan_long(pathway, booking_ids, session_ids)
        elif first_day is not None:
            day = first_day
            for _ in range(pathway.sessions_wanted):
                if rng.random() < 0.04:  # a booking cancelled and made again a day later
                    placed = self._take_slot(clinic, day, pathway.agent, before=today)
                    if placed is not None:
                        self._add_booking(
                            pathway,
                            placed,
                            status="cancelled",
                            booking_ids=booking_ids,
                            session_ids=session_ids,
                        )
                        day = placed[0] + days
                placed = self._take_slot(clinic, day, pathway.agent, before=today)
                if placed is None:
                    break
                sessions.append(
                    self._add_booking(
                        pathway, placed, status="completed", booking_ids=booking_ids, session_ids=session_ids
                    )
                )
                day = placed[0] + days * max(1, pathway.gap_days + rng.randint(-1, 1))
            if target == Stage.DOSING:
                day = max(day, today + days)
                for _ in range(pathway.future_wanted):
                    placed = self._take_slot(clinic, day, pathway.agent, before=today + days * FUTURE_DAYS)
                    if placed is None:
                        break
                    self._add_booking(
                        pathway, placed, status="booked", booking_ids=booking_ids, session_ids=session_ids
                    )
                    day = placed[0] + days * max(2, pathway.gap_days)
        if is_typical:
            assert sessions, "the typical pathway has sessions"
        if not sessions:  # no session fitted: a booking cancelled on the way is no history of its own
            pathway.bookings = [b for b in pathway.bookings if b.status == "booked"]
        # The stage moves, from the first session (or from now when there is none).
        if sessions:
            first_dose = sessions[0].starts_at
            last_dose = sessions[-1].starts_at
        else:
            first_dose = last_dose = now - dt.timedelta(days=rng.randint(3, 40))
            if target in (Stage.COMPLETED, Stage.DISCONTINUED) or (target == Stage.ON_HOLD and not sessions):
                first_dose = last_dose = now - dt.timedelta(days=rng.randint(60, HISTORY_DAYS - 120))
        dosing_at = first_dose - dt.timedelta(days=rng.randint(2, 9), hours=rng.randint(0, 5))
        prepared_at = dosing_at - dt.timedelta(days=rng.randint(14, 28))
        assessed_at = prepared_at - dt.timedelta(days=rng.randint(7, 21))
        opened_at = min(assessed_at - dt.timedelta(days=rng.randint(3, 14)), first_dose - lead)
        moves: list[tuple[str, str, dt.datetime]] = [("", Stage.REFERRAL, opened_at)]
        if target == Stage.REFERRAL:
            moves = [
                ("", Stage.REFERRAL, now - dt.timedelta(days=rng.randint(1, 30), hours=rng.randint(0, 8)))
            ]
        elif target == Stage.ASSESSMENT:
            assessed_at = now - dt.timedelta(days=rng.randint(2, 40))
            opened_at = assessed_at - dt.timedelta(days=rng.randint(3, 14))
            moves = [("", Stage.REFERRAL, opened_at), (Stage.REFERRAL, Stage.ASSESSMENT, assessed_at)]
            pathway.draft_assessment = rng.random() < 0.5
        elif target == Stage.PREPARATION or (target == Stage.ON_HOLD and not sessions):
            prepared_at = now - dt.timedelta(days=rng.randint(5, 45))
            assessed_at = prepared_at - dt.timedelta(days=rng.randint(7, 21))
            opened_at = assessed_at - dt.timedelta(days=rng.randint(3, 14))
            moves = [
                ("", Stage.REFERRAL, opened_at),
                (Stage.REFERRAL, Stage.ASSESSMENT, assessed_at),
                (Stage.ASSESSMENT, Stage.PREPARATION, prepared_at),
            ]
            if target == Stage.ON_HOLD:
                moves.append((Stage.PREPARATION, Stage.ON_HOLD, now - dt.timedelta(days=rng.randint(1, 4))))
        elif target == Stage.DISCONTINUED and not sessions:
            # Discontinued after the assessment: found not eligible, or chose another treatment.
            moves.append((Stage.REFERRAL, Stage.ASSESSMENT, assessed_at))
            pathway.not_eligible = rng.random() < 0.5
            moves.append(
                (Stage.ASSESSMENT, Stage.DISCONTINUED, assessed_at + dt.timedelta(days=rng.randint(7, 21)))
            )
        else:
            moves.append((Stage.REFERRAL, Stage.ASSESSMENT, assessed_at))
            moves.append((Stage.ASSESSMENT, Stage.PREPARATION, prepared_at))
            moves.append((Stage.PREPARATION, Stage.DOSING, dosing_at))
            after = last_dose + dt.timedelta(days=rng.randint(1, 3), hours=rng.randint(1, 6))
            if target in (Stage.INTEGRATION, Stage.COMPLETED):
                moves.append((Stage.DOSING, Stage.INTEGRATION, after))
            if target == Stage.COMPLETED:
                moves.append(
                    (Stage.INTEGRATION, Stage.COMPLETED, after + dt.timedelta(days=rng.randint(28, 84)))
                )
            elif target == Stage.ON_HOLD:
                moves.append((Stage.DOSING, Stage.ON_HOLD, min(after, now - dt.timedelta(hours=2))))
            elif target == Stage.DISCONTINUED:
                moves.append((Stage.DOSING, Stage.DISCONTINUED, after))
        moves = [(a, b, min(at, now - dt.timedelta(minutes=30))) for a, b, at in moves]
        pathway.moves = moves
        pathway.opened_at = moves[0][2]
        pathway.stage = moves[-1][1]
        pathway.before_hold = moves[-1][0] if pathway.stage == Stage.ON_HOLD else ""
        if any(to == Stage.PREPARATION for _, to, _ in moves):
            pathway.prepared_at = next(at for _, to, at in moves if to == Stage.PREPARATION)
        if not pathway.is_open:
            pathway.closed_at = moves[-1][2]
        # Screenings: signed the day before preparation, then again every ~80 days while sessions are
        # booked, so that every booking falls inside a current one.
        if pathway.prepared_at is not None or pathway.not_eligible:
            signed = (pathway.prepared_at or moves[-1][2]) - dt.timedelta(days=1, hours=rng.randint(0, 6))
            last_needed = max([b.starts_at for b in pathway.bookings], default=signed)
            if pathway.stage in (Stage.DOSING, Stage.PREPARATION, Stage.INTEGRATION, Stage.ON_HOLD):
                last_needed = max(last_needed, now)
            signs = [signed]
            while signs[-1] + dt.timedelta(days=85) < last_needed and not pathway.not_eligible:
                following = signs[-1] + dt.timedelta(days=rng.randint(70, 82))
                if following >= now:
                    break
                signs.append(following)
            if (is_long or is_typical) and signs[-1] < now - dt.timedelta(days=30):
                # The handled pathways are screened lately, so the benchmark can book them for weeks.
                signs.append(now - dt.timedelta(days=rng.randint(5, 20)))
            pathway.screenings = [_Screening(0, _uid(rng), at) for at in signs]

    def _plan_long(self, pathway: _Pathway, booking_ids: _Ids, session_ids: _Ids) -> list[_Booking]:
        """The long-treated patient: Monday, Wednesday and Friday at 08:30 in Room A, back from
        yesterday for `long_sessions` sessions, and the next two booked."""
        clinic, days = pathway.clinic, dt.timedelta(days=1)
        wanted: list[dt.date] = []
        day = clinic.today - days
        while len(wanted) < pathway.sessions_wanted:
            if day.weekday() in (0, 2, 4):
                wanted.append(day)
            day -= days
        sessions = []
        for day in reversed(wanted):
            placed = self._take_slot(clinic, day, pathway.agent, before=day + days, fixed=(0, 0))
            assert placed is not None, "the long patient's slots are taken first"
            sessions.append(
                self._add_booking(
                    pathway, placed, status="completed", booking_ids=booking_ids, session_ids=session_ids
                )
            )
        day = clinic.today + days
        booked = 0
        while booked < pathway.future_wanted:
            if day.weekday() in (0, 2, 4):
                placed = self._take_slot(clinic, day, pathway.agent, before=day + days, fixed=(0, 0))
                assert placed is not None
                self._add_booking(
                    pathway, placed, status="booked", booking_ids=booking_ids, session_ids=session_ids
                )
                booked += 1
            day += days
        return sessions

    # --- patients and pathways -----------------------------------------------------------------------

    def write_patients_and_pathways(self) -> None:
        rng = self.rng
        started = time.perf_counter()
        patients = self.copy(
            Patient,
            _columns(
                "id public_id created_at updated_at clinic_id record_number given_name family_name "
                "date_of_birth phone email emergency_contact_name emergency_contact_relationship "
                "emergency_contact_phone emergency_contact_can_escort registered_by_id"
            ),
        )
        per_clinic: dict[int, int] = {}
        for pathway in self.pathways:
            number = per_clinic.get(pathway.clinic.index, 0)
            per_clinic[pathway.clinic.index] = number + 1
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            record = f"N{pathway.clinic.index + 1:03d}-{number:05d}"
            patients.add(
                pathway.patient_id,
                pathway.patient_public_id,
                pathway.opened_at,
                pathway.opened_at,
                pathway.clinic.id,
                record,
                given,
                family,
                pathway.date_of_birth,
                f"07700 9{rng.randint(0, 99999):05d}",
                f"{record.lower()}@patients.example.org" if rng.random() < 0.8 else "",
                f"{rng.choice(GIVEN)} {family}",
                rng.choice(("Partner", "Sibling", "Parent", "Friend")),
                f"07700 9{rng.randint(0, 99999):05d}",
                pathway.agent != "esketamine" or rng.random() < 0.9,
                pathway.prescriber.id,
            )
        self.timer.done("patients", started, patients.close())
        started = time.perf_counter()
        pathways = self.copy(
            Pathway,
            _columns(
                "id public_id created_at updated_at clinic_id patient_id stage stage_before_hold "
                "stage_changed_at prescriber_id therapist_id opened_by_id referral_source"
            ),
        )
        changes = self.copy(
            PathwayStageChange,
            _columns(
                "public_id created_at updated_at pathway_id from_stage to_stage reason changed_by_id "
                "changed_at"
            ),
        )
        reasons: dict[str, str] = {
            Stage.REFERRAL: "Referred by GP for ketamine-assisted EMDR.",
            Stage.ASSESSMENT: "Referral reviewed: treatment-resistant PTSD with depression; to assess.",
            Stage.PREPARATION: "Assessment complete; starting stabilisation and preparation.",
            Stage.DOSING: "Preparation goals met; ready for monitored dosing.",
            Stage.INTEGRATION: "Dosing block finished; moving to integration.",
            Stage.COMPLETED: "Course complete; follow-up measures stable.",
            Stage.ON_HOLD: "Patient travelling for work for six weeks; resume on return.",
            Stage.DISCONTINUED: "Patient chose a different treatment.",
        }
        for pathway in self.pathways:
            pathways.add(
                pathway.id,
                pathway.public_id,
                pathway.opened_at,
                pathway.stage_changed_at,
                pathway.clinic.id,
                pathway.patient_id,
                pathway.stage,
                pathway.before_hold,
                pathway.stage_changed_at,
                pathway.prescriber.id,
                pathway.therapist.id if pathway.therapist else None,
                pathway.prescriber.id,
                rng.choice(
                    ("GP referral", "Community mental health team", "Self-referral", "Trauma service")
                ),
            )
            for from_stage, to_stage, at in pathway.moves:
                reason = reasons[to_stage]
                if to_stage == Stage.DISCONTINUED and pathway.not_eligible:
                    reason = "Not eligible after screening (absolute contraindication)."
                changes.add(
                    _uid(rng), at, at, pathway.id, from_stage, to_stage, reason, pathway.prescriber.id, at
                )
        self.timer.done("pathways", started, pathways.close())
        self.timer.done("pathway stage changes", None, changes.close())
        started = time.perf_counter()
        rems = self.copy(
            RemsEnrolment,
            _columns("public_id created_at updated_at patient_id enrolled_on reference recorded_by_id"),
        )
        for pathway in self.pathways:
            if pathway.agent == "esketamine" and pathway.bookings:
                at = pathway.bookings[0].starts_at - dt.timedelta(days=rng.randint(3, 10))
                rems.add(
                    _uid(rng),
                    at,
                    at,
                    pathway.patient_id,
                    at.date(),
                    f"REMS-{rng.randint(10000, 99999)}",
                    pathway.prescriber.id,
                )
        self.timer.done("REMS enrolments", started, rems.close())

    # --- screenings ----------------------------------------------------------------------------------

    def _answers(self, pathway: _Pathway, *, improvement: float) -> dict[str, Any]:
        """Baseline answers for the five measures (`improvement` 0-1 lowers the symptom totals)."""
        rng = self.rng
        level = 1 - 0.6 * improvement
        item9 = 1 if rng.random() < 0.04 else 0
        return {
            "phq9": phq9(max(item9, round(rng.randint(12, 22) * level)), item9),
            "gad7": spread(round(rng.randint(9, 18) * level), 7, 3),
            "pcl5": spread(round(rng.randint(38, 62) * level), 20, 4),
            "des2": des2(rng.choice((10, 10, 20, 20, 20, 30)) if not pathway.not_eligible else 20),
            "cssrs": {"q1": rng.random() < 0.4, "q2": False, "q6_lifetime": False},
        }

    def write_screenings(self) -> None:
        rng, now = self.rng, self.now
        started = time.perf_counter()
        assessment_ids, measure_ids = self.ids(Assessment), self.ids(MeasureResponse)
        assessments = self.copy(
            Assessment,
            _columns(
                "id public_id created_at updated_at clinic_id pathway_id version supersedes_id status "
                "opened_by_id current_crisis housing_stable has_support_person escort_available "
                "support_notes agent route systolic diastolic heart_rate weight_kg history_reviewed "
                "condition_codes medications_reviewed proposal proposal_reasons decision decision_reason "
                "second_signature_reasons signed_by_id signed_at countersigned_by_id countersigned_at "
                "valid_until"
            ),
        )
        medications = self.copy(
            AssessmentMedication,
            _columns("public_id created_at updated_at assessment_id name medication_class dose"),
            assessments,
        )
        measure_columns = _columns(
            "id public_id created_at updated_at clinic_id pathway_id assessment_id carried_from_id "
            "instrument answers total band band_label flags administered_at recorded_by_id"
        )
        measures = self.copy(MeasureResponse, measure_columns, assessments)
        alerts = self.copy(
            SafetyAlert,
            _columns(
                "public_id created_at updated_at clinic_id pathway_id measure_response_id code text status "
                "raised_at acknowledged_by_id acknowledged_at action_taken dosing_override_reason"
            ),
            measures,
        )

        def measure(
            pathway: _Pathway, instrument: str, answers: Any, at: dt.datetime, assessment_id: int | None
        ) -> Any:
            scored = screening_rules.score(instrument, answers)
            measure_id = measure_ids.take()
            measures.add(
                measure_id,
                _uid(rng),
                at,
                at,
                pathway.clinic.id,
                pathway.id,
                assessment_id,
                None,
                instrument,
                answers,
                Decimal(str(scored.total)),
                scored.band,
                scored.band_label,
                [{"code": f.code, "text": f.text, "urgent": f.urgent} for f in scored.flags],
                at,
                pathway.prescriber.id,
            )
            for flag in scored.flags:
                if flag.urgent:
                    recent = now - at < dt.timedelta(days=3) and pathway.is_open
                    acknowledged = None if recent else at + dt.timedelta(hours=rng.randint(1, 20))
                    alerts.add(
                        _uid(rng),
                        at,
                        acknowledged or at,
                        pathway.clinic.id,
                        pathway.id,
                        measure_id,
                        flag.code,
                        flag.text,
                        "open" if recent else "acknowledged",
                        at,
                        None if recent else pathway.prescriber.id,
                        acknowledged,
                        ""
                        if recent
                        else "Called the patient the same day; safety plan reviewed, no current intent.",
                        "",
                    )
            return scored

        for pathway in self.pathways:
            clinic = pathway.clinic
            if pathway.draft_assessment:
                at = pathway.stage_changed_at + dt.timedelta(hours=2)
                assessment_id = assessment_ids.take()
                assessments.add(
                    assessment_id,
                    _uid(rng),
                    at,
                    at,
                    clinic.id,
                    pathway.id,
                    1,
                    None,
                    "draft",
                    pathway.prescriber.id,
                    False,
                    True,
                    True,
                    True,
                    "",
                    pathway.agent,
                    pathway.route,
                    None,
                    None,
                    None,
                    None,
                    False,
                    [],
                    False,
                    "",
                    [],
                    "",
                    "",
                    [],
                    None,
                    None,
                    None,
                    None,
                    None,
                )
                answers = self._answers(pathway, improvement=0)
                measure(pathway, "phq9", answers["phq9"], at, assessment_id)
                measure(pathway, "gad7", answers["gad7"], at, assessment_id)
                continue
            previous_id: int | None = None
            conditions = ["intracerebral_haemorrhage"] if pathway.not_eligible else []
            if not pathway.not_eligible and rng.random() < 0.12:
                conditions = [rng.choice(RELATIVE_CONDITIONS)]
            if not pathway.not_eligible and rng.random() < 0.02:
                conditions.append("psychosis_history")  # a second prescriber signs these
            meds = rng.sample(MEDICATIONS, rng.choice((0, 0, 1, 1, 2)))
            escort = rng.random() < 0.92
            systolic, diastolic = rng.randint(108, 146), rng.randint(66, 92)
            for version, screening in enumerate(pathway.screenings, start=1):
                screening.id = assessment_id = assessment_ids.take()
                signed_at = screening.signed_at
                opened = signed_at - dt.timedelta(days=3)
                answers = self._answers(pathway, improvement=min(1.0, (version - 1) / 6))
                instruments = ("phq9", "gad7", "pcl5", "des2", "cssrs")
                scores = {name: screening_rules.score(name, answers[name]) for name in instruments}
                facts = screening_rules.AssessmentFacts(
                    agent=pathway.agent,
                    route=pathway.route,
                    age_years=screening_rules.age_on(pathway.date_of_birth, signed_at.date()),
                    current_crisis=False,
                    housing_stable=True,
                    has_support_person=True,
                    escort_available=escort,
                    systolic=systolic,
                    diastolic=diastolic,
                    heart_rate=72,
                    weight_kg=float(pathway.weight),
                    history_reviewed=True,
                    medications_reviewed=True,
                    condition_codes=frozenset(conditions),
                    medication_classes=tuple(m[1] for m in meds),
                    scores=scores,
                )
                proposal = screening_rules.propose(facts, screening_rules.Thresholds())
                decision = proposal.decision
                if not pathway.not_eligible:
                    assert decision != screening_rules.Decision.NOT_ELIGIBLE, "the plan has no blockers"
                second = screening_rules.second_signature_reasons(
                    proposal=proposal.decision,
                    decision=decision,
                    condition_codes=conditions,
                    second_signature_codes=screening_rules.DEFAULT_SECOND_SIGNATURE_CODES,
                )
                countersigner = (
                    next(p for p in clinic.prescribers if p.id != pathway.prescriber.id) if second else None
                )
                last = version == len(pathway.screenings)
                assessments.add(
                    assessment_id,
                    screening.public_id,
                    opened,
                    signed_at,
                    clinic.id,
                    pathway.id,
                    version,
                    previous_id,
                    "signed" if last else "superseded",
                    pathway.prescriber.id,
                    False,
                    True,
                    True,
                    escort,
                    "Partner at home; attends the first session." if escort else "Lives alone.",
                    pathway.agent,
                    pathway.route,
                    systolic,
                    diastolic,
                    72,
                    pathway.weight,
                    True,
                    conditions,
                    True,
                    str(proposal.decision),
                    [r.as_dict() for r in proposal.reasons],
                    str(decision),
                    "",
                    second,
                    pathway.prescriber.id,
                    signed_at,
                    countersigner.id if countersigner else None,
                    signed_at if countersigner else None,
                    signed_at + dt.timedelta(days=90),
                )
                for name in instruments:  # after their assessment: COPY checks the key as it ends
                    measure(pathway, name, answers[name], signed_at - dt.timedelta(days=2), assessment_id)
                for name, medication_class, dose in meds:
                    medications.add(_uid(rng), opened, opened, assessment_id, name, medication_class, dose)
                previous_id = assessment_id
        self.timer.done("assessments", started, assessments.close())
        self.timer.done("medications", None, medications.close())
        self.timer.done("baseline measures", None, measures.close())
        self.timer.done("safety alerts", None, alerts.close())
        self.measures, self.alerts, self.measure_ids = measures, alerts, measure_ids
        self.measure_recorder = measure

    # --- bookings, sessions, scales, adverse events --------------------------------------------------

    def write_bookings_and_sessions(self) -> None:
        rng, now = self.rng, self.now
        started = time.perf_counter()
        bookings = self.copy(
            Booking,
            _columns(
                "id public_id created_at updated_at clinic_id pathway_id patient_id room_id starts_at "
                "ends_at agent route prescriber_id monitor_id status fasting_instructions_given "
                "fasting_confirmed escort_confirmed booked_by_id cancelled_at cancelled_by_id "
                "cancellation_reason"
            ),
        )
        for pathway in self.pathways:
            clinic = pathway.clinic
            for booking in pathway.bookings:
                # Booked a few days ahead, once the screening that covers the day was signed (the gate).
                covering = max(
                    (s.signed_at for s in pathway.screenings if s.signed_at <= booking.starts_at),
                    default=booking.starts_at - dt.timedelta(days=1),
                )
                created = min(
                    max(
                        booking.starts_at - dt.timedelta(days=rng.randint(2, 21)),
                        covering + dt.timedelta(hours=1),
                    ),
                    booking.starts_at - dt.timedelta(minutes=10),
                    now - dt.timedelta(hours=1),
                )
                booking.created_at = created
                past = booking.status != "booked"
                cancelled = booking.status == "cancelled"
                cancelled_at = (
                    max(created, booking.starts_at - dt.timedelta(hours=rng.randint(3, 40)))
                    if cancelled
                    else None
                )
                bookings.add(
                    booking.id,
                    booking.public_id,
                    created,
                    cancelled_at or (booking.starts_at if past else created),
                    clinic.id,
                    pathway.id,
                    pathway.patient_id,
                    booking.room.id,
                    booking.starts_at,
                    booking.ends_at,
                    pathway.agent,
                    pathway.route,
                    pathway.prescriber.id,
                    booking.monitor.id,
                    booking.status,
                    past,
                    past and not cancelled,
                    past and not cancelled,
                    clinic.admin.id,
                    cancelled_at,
                    clinic.admin.id if cancelled else None,
                    "Patient unwell; rebooked for the next available day." if cancelled else "",
                )
        self.timer.done("bookings", started, bookings.close())
        started = time.perf_counter()
        sessions = self.copy(
            DosingSession,
            _columns(
                "id public_id created_at updated_at booking_id clinic_id status opened_by_id "
                "fasting_confirmed escort_present consent_confirmed override_problems override_reason "
                "override_by_id override_at dose_mg weight_kg lot_number device_times dose_started_at "
                "dose_ended_at dosed_by_id alert_and_oriented escort_present_at_discharge discharged_at "
                "discharged_by_id pmf_first_treatment pmf_sedation pmf_dissociation "
                "pmf_respiratory_depression pmf_ready_minutes pmf_required pmf_filed_at "
                "signed_by_id signed_at"
            ),
        )
        scales = self.copy(
            ScaleRating,
            _columns(
                "public_id created_at updated_at session_id scale value anchors taken_at recorded_by_id"
            ),
            sessions,
        )
        adverse = self.copy(
            AdverseEvent,
            _columns(
                "public_id created_at updated_at session_id occurred_at description severity action_taken "
                "recorded_by_id"
            ),
            sessions,
        )
        self.session_count = 0
        for pathway in self.pathways:
            esketamine = pathway.agent == "esketamine"
            base_dose = {"iv": pathway.weight / 2, "im": pathway.weight * Decimal("0.6")}.get(pathway.route)
            for number, (booking, session) in enumerate(pathway.signed_sessions()):
                self.session_count += 1
                monitor = booking.monitor.id
                opened = booking.starts_at + dt.timedelta(minutes=3)
                dose_at = session.dose_started_at
                pmf: tuple[bool | None, bool | None, bool | None, bool | None, int | None]
                if esketamine:
                    devices = 3 if number >= 2 and rng.random() < 0.6 else 2
                    dose_mg = Decimal(28 * devices)
                    device_times = [
                        (dose_at + dt.timedelta(minutes=5 * i)).isoformat() for i in range(devices)
                    ]
                    filed = session.signed_at + dt.timedelta(days=rng.randint(1, 5), hours=rng.randint(0, 6))
                    pmf = (number == 0, rng.random() < 0.4, rng.random() < 0.6, False, rng.randint(70, 110))
                    pmf_filed = filed if filed < now else None
                else:
                    dose_mg = (base_dose or Decimal(rng.choice((100, 150, 200, 250, 300)))).quantize(
                        Decimal("0.1")
                    )
                    device_times, pmf, pmf_filed = [], (None, None, None, None, None), None
                sessions.add(
                    session.id,
                    session.public_id,
                    opened,
                    session.signed_at,
                    booking.id,
                    pathway.clinic.id,
                    "signed",
                    monitor,
                    True,
                    True,
                    True,
                    [],
                    "",
                    None,
                    None,
                    dose_mg,
                    pathway.weight,
                    f"LOT-{rng.randint(10000, 99999)}",
                    device_times,
                    dose_at,
                    session.dose_ended_at,
                    monitor,
                    True,
                    True,
                    session.discharged_at,
                    monitor,
                    *pmf,
                    esketamine,
                    pmf_filed,
                    monitor,
                    session.signed_at,
                )
                moaas_at = dose_at + dt.timedelta(minutes=40)
                scales.add(
                    _uid(rng),
                    moaas_at,
                    moaas_at,
                    session.id,
                    "moaas",
                    rng.choice((3, 4, 4, 5)),
                    "",
                    moaas_at,
                    monitor,
                )
                if rng.random() < 0.5:
                    scales.add(
                        _uid(rng),
                        moaas_at,
                        moaas_at,
                        session.id,
                        "cadss",
                        rng.randint(4, 40),
                        "",
                        moaas_at,
                        monitor,
                    )
                if rng.random() < 0.02:
                    at = dose_at + dt.timedelta(minutes=rng.randint(20, 60))
                    adverse.add(
                        _uid(rng),
                        at,
                        at,
                        session.id,
                        at,
                        "Nausea after the dose.",
                        "mild",
                        "Ondansetron 4 mg; settled within 20 minutes.",
                        monitor,
                    )
        self.timer.done("dosing sessions", started, sessions.close())
        self.timer.done("scale ratings", None, scales.close())
        self.timer.done("adverse events", None, adverse.close())

    # --- vitals --------------------------------------------------------------------------------------

    def write_vitals(self) -> None:
        """About ten readings a session (a pre-dose one, then every 15 minutes or so to discharge), so
        that the total meets the count asked for; the typical pathway's last session has exactly 30."""
        rng, limits = self.rng, self.limits
        started = time.perf_counter()
        columns = _columns(
            "public_id created_at updated_at session_id taken_at is_pre_dose systolic diastolic heart_rate "
            "spo2 respiratory_rate flags recorded_by_id"
        )
        vitals = self.copy(VitalsReading, columns)
        sessions = max(1, self.session_count)
        mean = max(3.0, self.sizes.vitals / sessions)
        whole, fraction = int(mean), mean - int(mean)
        typical_last = self.pathways[1].signed_sessions()[-1][1]
        reading = dosing_rules.Reading
        for pathway in self.pathways:
            for booking, session in pathway.signed_sessions():
                if session is typical_last:
                    count = LONG_VITALS
                else:
                    count = max(3, whole + rng.randint(-2, 2) + (rng.random() < fraction))
                session.vitals = count
                base_sys, base_dia = rng.randint(112, 136), rng.randint(68, 84)
                heart = rng.randint(62, 86)
                monitor = booking.monitor.id
                pre_at = session.dose_started_at - dt.timedelta(minutes=rng.randint(3, 8))
                span = (session.discharged_at - session.dose_started_at).total_seconds() - 300
                step = span / max(1, count - 1)
                for i in range(count):
                    if i == 0:
                        at, sys_, dia = pre_at, base_sys, base_dia
                    else:
                        at = session.dose_started_at + dt.timedelta(seconds=300 + step * (i - 1))
                        rise = max(
                            0.0, 1 - abs((at - session.dose_started_at).total_seconds() / 60 - 40) / 60
                        )
                        sys_ = base_sys + round(rise * rng.randint(8, 28)) + rng.randint(-4, 4)
                        dia = base_dia + round(rise * rng.randint(4, 14)) + rng.randint(-3, 3)
                        if rng.random() < 0.004:
                            sys_ += 50  # now and then a reading over the limit, flagged as the service would
                    last = i == count - 1
                    if last:
                        sys_, dia = base_sys + rng.randint(-2, 6), base_dia + rng.randint(-2, 4)
                    hr = heart + rng.randint(-6, 14)
                    spo2 = rng.choice((96, 97, 97, 98, 98, 99)) if last or rng.random() > 0.003 else 91
                    rr = rng.randint(12, 18)
                    flags = dosing_rules.vital_flags(reading(sys_, dia, hr, spo2, rr), limits)
                    vitals.add(
                        _uid(rng), at, at, session.id, at, i == 0, sys_, dia, hr, spo2, rr, flags, monitor
                    )
        self.timer.done("vitals readings", started, vitals.close())

    # --- EMDR ----------------------------------------------------------------------------------------

    def write_emdr(self) -> None:
        """A plan for each pathway that reached preparation with a therapist: its targets worked in order
        (a resource, the present-day targets, then past memories once ready, then a future template),
        weekly in preparation and then in about half the dosing sessions, as the effects wane."""
        rng, now = self.rng, self.now
        started = time.perf_counter()
        plan_ids, target_ids, log_ids = self.ids(EmdrPlan), self.ids(EmdrTarget), self.ids(EmdrSessionLog)
        plans = self.copy(
            EmdrPlan,
            _columns(
                "id public_id created_at updated_at pathway_id clinic_id dual_awareness_shown "
                "dissociation_interview_recorded"
            ),
        )
        targets = self.copy(
            EmdrTarget,
            _columns(
                "id public_id created_at updated_at plan_id order kind title image negative_cognition "
                "positive_cognition voc emotions sud body_location theme state needs_reevaluation "
                "override_reason override_therapist_id override_prescriber_id started_at created_by_id"
            ),
            plans,
        )
        links = self.copy(EmdrTarget.belongs_to.through, ("from_emdrtarget_id", "to_emdrtarget_id"), targets)
        logs = self.copy(
            EmdrSessionLog,
            _columns(
                "id public_id created_at updated_at plan_id therapist_id held_at dosing_session_id "
                "phase_reached stimulation closure_technique"
            ),
            plans,
        )
        works = self.copy(
            EmdrTargetWork,
            _columns(
                "public_id created_at updated_at session_id target_id sud_start sud_end voc_start voc_end "
                "sud_by_set sets interweaves body_scan_clear complete blocked"
            ),
            logs,
            targets,
        )
        cognitions = {
            "present_trigger": ("I am in danger", "I am safe now", "Fear", "Chest", "safety"),
            "body_response": ("I am not in control", "I can handle this", "Panic", "Stomach", "control"),
            "belief": ("I can't protect myself", "I can protect myself", "Shame", "Shoulders", "control"),
            "past_memory": (
                "I should have done something",
                "I did the best I could",
                "Guilt",
                "Throat",
                "responsibility",
            ),
            "future_template": ("I will freeze", "I can cope", "Worry", "Hands", "control"),
        }
        queue = [index for index, plan in enumerate(TARGET_PLAN) for _ in range(plan[4])]
        for pathway in self.pathways:
            if pathway.therapist is None or pathway.prepared_at is None:
                continue
            therapist = pathway.therapist.id
            plan_at = pathway.prepared_at + dt.timedelta(days=rng.randint(1, 6))
            if plan_at >= now - dt.timedelta(days=1):
                continue
            # When EMDR sessions were held: weekly in preparation, then with about half the doses.
            held: list[tuple[dt.datetime, int | None]] = []
            prep_end = pathway.bookings[0].starts_at if pathway.bookings else (pathway.closed_at or now)
            at = plan_at + dt.timedelta(days=rng.randint(1, 5))
            while at < prep_end - dt.timedelta(days=1) and len(held) < 4:
                held.append((at, None))
                at += dt.timedelta(days=7)
            for _booking, session in pathway.signed_sessions():
                if rng.random() < 0.5:
                    held.append(
                        (session.dose_started_at + dt.timedelta(minutes=rng.randint(80, 110)), session.id)
                    )
            held = held[: len(queue)]
            # Work the targets in order, each for as many sessions as it takes (see `emdr_rules`).
            done = [0] * len(TARGET_PLAN)
            started_at: list[dt.datetime | None] = [None] * len(TARGET_PLAN)
            last: list[tuple[int | None, int, bool] | None] = [None] * len(TARGET_PLAN)
            worked = []
            for step, (held_at, session_id) in enumerate(held):
                which = queue[step]
                kind, _title, first_sud, first_voc, needed = TARGET_PLAN[which]
                done[which] += 1
                started_at[which] = started_at[which] or held_at
                complete = done[which] == needed
                sud_start: int | None
                sud_end: int | None
                if kind == "resource":
                    sud_start = sud_end = None
                    voc_start, voc_end, sets = first_voc or 4, 6, []
                else:
                    sud0 = first_sud or 6
                    sud_start = round(sud0 * (1 - (done[which] - 1) / needed))
                    sud_end = (
                        0
                        if complete
                        else min(sud_start - 1, max(2, round(sud0 * (1 - done[which] / needed))))
                    )
                    voc_start = min(6, (first_voc or 2) + done[which] - 1)
                    voc_end = 7 if complete else voc_start + 1
                    sets = sorted({sud_start, (sud_start + sud_end) // 2, sud_end}, reverse=True)
                last[which] = (sud_end, voc_end, complete)
                worked.append(
                    (held_at, session_id, which, sud_start, sud_end, voc_start, voc_end, sets, complete)
                )
            past_memory = any(TARGET_PLAN[w[2]][0] == "past_memory" for w in worked)
            plan_id = plan_ids.take()
            plans.add(
                plan_id, _uid(rng), plan_at, plan_at, pathway.id, pathway.clinic.id, past_memory, past_memory
            )
            ids = []
            for which, (kind, title, first_sud, first_voc, _needed) in enumerate(TARGET_PLAN):
                target_id = target_ids.take()
                ids.append(target_id)
                texts = cognitions.get(kind, ("", "", "", "", ""))
                outcome = last[which]
                state = "not_started" if outcome is None else ("resolved" if outcome[2] else "in_progress")
                sud = outcome[0] if outcome is not None and outcome[0] is not None else first_sud
                voc = outcome[1] if outcome is not None else first_voc
                targets.add(
                    target_id,
                    _uid(rng),
                    plan_at,
                    started_at[which] or plan_at,
                    plan_id,
                    which + 1,
                    kind,
                    title,
                    "The worst moment" if kind == "past_memory" else "",
                    texts[0],
                    texts[1],
                    voc,
                    texts[2],
                    sud,
                    texts[3],
                    texts[4],
                    state,
                    outcome is not None and not outcome[2],
                    "",
                    None,
                    None,
                    started_at[which],
                    therapist,
                )
            for which, (kind, *_rest) in enumerate(TARGET_PLAN):
                if kind == "past_memory":
                    links.add(ids[-1], ids[which])  # the future template belongs to the past memories
            for held_at, session_id, which, sud_start, sud_end, voc_start, voc_end, sets, complete in worked:
                log_id = log_ids.take()
                logs.add(
                    log_id,
                    _uid(rng),
                    held_at,
                    held_at,
                    plan_id,
                    therapist,
                    held_at,
                    session_id,
                    7 if complete else rng.choice((4, 5, 6)),
                    rng.choice(("eye_movements", "eye_movements", "taps", "tones")),
                    "calm_place" if complete else "container",
                )
                works.add(
                    _uid(rng),
                    held_at,
                    held_at,
                    log_id,
                    ids[which],
                    sud_start,
                    sud_end,
                    voc_start,
                    voc_end,
                    sets,
                    len(sets),
                    [],
                    complete,
                    complete,
                    False,
                )
        self.timer.done("EMDR plans", started, plans.close())
        self.timer.done("EMDR targets", None, targets.close() + links.close())
        self.timer.done("EMDR session logs", None, logs.close())
        self.timer.done("EMDR target work", None, works.close())

    # --- integration notes and experiments -----------------------------------------------------------

    def write_integration(self) -> None:
        """A note one to three days after each dose (signed, but for some of the latest: a draft or not
        written yet), with experiments agreed in the first notes and reviewed in the next ones."""
        rng, now = self.rng, self.now
        started = time.perf_counter()
        note_ids, experiment_ids = self.ids(IntegrationNote), self.ids(Experiment)
        notes = self.copy(
            IntegrationNote,
            _columns(
                "id public_id created_at updated_at clinic_id pathway_id dosing_session_id author_id "
                "held_at perception_shift newly_possible afraid_of_losing free_notes status signed_at"
            ),
        )
        experiments = self.copy(
            Experiment,
            _columns(
                "id public_id created_at updated_at clinic_id pathway_id area description state "
                "what_happened agreed_in_id"
            ),
            notes,
        )
        updates = self.copy(
            ExperimentUpdate,
            _columns(
                "public_id created_at updated_at experiment_id note_id from_state to_state what_happened "
                "recorded_by_id"
            ),
            experiments,
        )
        self.notes: dict[int, tuple[str, dt.datetime | None, str]] = {}  # session -> status, signed at, id
        for pathway in self.pathways:
            if pathway.therapist is None:
                continue
            author = pathway.therapist.id
            signed_notes: list[tuple[int, dt.datetime]] = []
            sessions = pathway.signed_sessions()
            for position, (_booking, session) in enumerate(sessions):
                held = session.dose_started_at + dt.timedelta(
                    days=rng.randint(1, 3), hours=rng.randint(-2, 3)
                )
                recent = now - held < dt.timedelta(days=10)
                if held >= now - dt.timedelta(hours=1) or (recent and rng.random() < 0.25):
                    continue  # not written yet: its integration follow-up is open (overdue when past due)
                latest = position == len(sessions) - 1
                draft = latest and pathway.is_open and recent and rng.random() < 0.4
                signed_at = None if draft else held + dt.timedelta(hours=1, minutes=rng.randint(0, 50))
                note_id, note_public_id = note_ids.take(), _uid(rng)
                notes.add(
                    note_id,
                    note_public_id,
                    held,
                    signed_at or held,
                    pathway.clinic.id,
                    pathway.id,
                    session.id,
                    author,
                    held,
                    rng.choice(PERCEPTION),
                    rng.choice(POSSIBLE),
                    rng.choice(AFRAID),
                    "Grounded well at close; container used." if rng.random() < 0.5 else "",
                    "draft" if draft else "signed",
                    signed_at,
                )
                self.notes[session.id] = ("draft" if draft else "signed", signed_at, note_public_id)
                if signed_at is not None:
                    signed_notes.append((note_id, held))
            # Experiments: two agreed in the first note and one in the second, reviewed in the next notes.
            chosen = rng.sample(EXPERIMENTS, 3)
            for k, (area, description) in enumerate(chosen):
                agreed = 0 if k < 2 else 1
                if agreed >= len(signed_notes):
                    break
                note_id, at = signed_notes[agreed]
                path = [
                    ("planned", "tried", "Three evenings of five."),
                    ("tried", "kept", "Now does it without prompting."),
                ]
                if rng.random() < 0.25:
                    path[1] = ("tried", "dropped", "Stopped after a hard week; not the right step yet.")
                state, happened = "planned", ""
                experiment_id = experiment_ids.take()
                rows = []
                for step, (from_state, to_state, text) in enumerate(path, start=1):
                    if agreed + step >= len(signed_notes):
                        break
                    review_note, review_at = signed_notes[agreed + step]
                    rows.append((review_note, review_at, from_state, to_state, text))
                    state, happened = to_state, text
                experiments.add(
                    experiment_id,
                    _uid(rng),
                    at,
                    rows[-1][1] if rows else at,
                    pathway.clinic.id,
                    pathway.id,
                    area,
                    description,
                    state,
                    happened,
                    note_id,
                )
                for review_note, review_at, from_state, to_state, text in rows:
                    updates.add(
                        _uid(rng),
                        review_at,
                        review_at,
                        experiment_id,
                        review_note,
                        from_state,
                        to_state,
                        text,
                        author,
                    )
        self.timer.done("integration notes", started, notes.close())
        self.timer.done("experiments", None, experiments.close())
        self.timer.done("experiment updates", None, updates.close())

    # --- follow-ups ----------------------------------------------------------------------------------

    def write_follow_ups(self) -> None:
        """What `integration.services` schedules, in the state a running clinic leaves it: a reminder
        for each booking, and after each signed session an integration session, the check-ins, the
        monitoring form (esketamine) and, every four weeks, the outcome measures (recorded as repeat
        PHQ-9 and PCL-5 when done). Every message that fell due was sent a minute later."""
        rng, now = self.rng, self.now
        started = time.perf_counter()
        columns = _columns(
            "public_id created_at updated_at clinic_id pathway_id patient_id kind sequence "
            "dosing_session_id booking_id responsible_id due_at notify_at notified_at patient_notified "
            "attempts last_error status done_at done_by_id outcome"
        )
        rows = self.copy(FollowUp, columns)
        repeat = 0

        def add(
            pathway: _Pathway,
            kind: str,
            sequence: int,
            session_id: int | None,
            booking_id: int | None,
            responsible: int,
            created: dt.datetime,
            due: dt.datetime,
            notify: dt.datetime,
            status: str,
            done_at: dt.datetime | None,
            done_by: int | None,
            outcome: str,
        ) -> None:
            sent = notify + dt.timedelta(seconds=rng.randint(5, 90)) if notify <= now else None
            rows.add(
                _uid(rng),
                created,
                done_at or sent or created,
                pathway.clinic.id,
                pathway.id,
                pathway.patient_id,
                kind,
                sequence,
                session_id,
                booking_id,
                responsible,
                due,
                notify,
                sent,
                False,
                1 if sent else 0,
                "",
                status,
                done_at,
                done_by,
                outcome,
            )

        def measures_done(pathway: _Pathway, follow_up: tuple[dt.datetime, int, dt.datetime]) -> None:
            due, session_id, created = follow_up
            done_at = min(due + dt.timedelta(hours=2), now - dt.timedelta(minutes=30))
            add(
                pathway,
                "outcome_measures",
                0,
                session_id,
                None,
                pathway.prescriber.id,
                created,
                due,
                due,
                "done",
                done_at,
                pathway.prescriber.id,
                "Outcome measures recorded.",
            )

        for pathway in self.pathways:
            clinic = pathway.clinic
            tz = clinic.tz
            caring = (pathway.therapist or pathway.prescriber).id
            closed = pathway.closed_at
            for booking in pathway.bookings:
                reminder = dt.datetime.combine(
                    booking.starts_at.astimezone(tz).date() - dt.timedelta(days=1), dt.time(10), tzinfo=tz
                ).astimezone(dt.UTC)
                created = booking.created_at
                if booking.status == "cancelled":
                    cancelled = max(created, booking.starts_at - dt.timedelta(hours=3))
                    add(
                        pathway,
                        "visit_reminder",
                        0,
                        None,
                        booking.id,
                        booking.monitor.id,
                        created,
                        booking.starts_at,
                        reminder,
                        "cancelled",
                        cancelled,
                        clinic.admin.id,
                        "The booking was cancelled.",
                    )
                elif booking.status == "booked":
                    add(
                        pathway,
                        "visit_reminder",
                        0,
                        None,
                        booking.id,
                        booking.monitor.id,
                        created,
                        booking.starts_at,
                        max(reminder, created),
                        "open",
                        None,
                        None,
                        "",
                    )
                else:
                    add(
                        pathway,
                        "visit_reminder",
                        0,
                        None,
                        booking.id,
                        booking.monitor.id,
                        created,
                        booking.starts_at,
                        reminder,
                        "done",
                        reminder + dt.timedelta(minutes=1),
                        None,
                        "Reminder sent.",
                    )
            # The outcome measures: one follow-up open at a time, scheduled after a signed session four
            # weeks after the last measures, done when they were taken again (repeat PHQ-9 and PCL-5).
            open_measures: tuple[dt.datetime, int, dt.datetime] | None = None  # due, session id, created
            last_measured = pathway.screenings[-1].signed_at if pathway.screenings else None
            sessions = pathway.signed_sessions()
            for number, (booking, session) in enumerate(sessions):
                signed, dose = session.signed_at, session.dose_started_at
                if open_measures is not None and open_measures[0] <= signed:
                    repeat += self._repeat_measures(pathway, open_measures[0], number / len(sessions))
                    measures_done(pathway, open_measures)
                    last_measured, open_measures = open_measures[0], None
                note = self.notes.get(session.id)
                due = dose + dt.timedelta(hours=72)
                if note is not None and note[0] == "signed":
                    add(
                        pathway,
                        "integration_session",
                        0,
                        session.id,
                        None,
                        caring,
                        signed,
                        due,
                        signed,
                        "done",
                        note[1],
                        caring,
                        "Integration note signed.",
                    )
                elif closed is not None:
                    add(
                        pathway,
                        "integration_session",
                        0,
                        session.id,
                        None,
                        caring,
                        signed,
                        due,
                        signed,
                        "cancelled",
                        closed,
                        pathway.prescriber.id,
                        "The pathway was closed.",
                    )
                else:
                    add(
                        pathway,
                        "integration_session",
                        0,
                        session.id,
                        None,
                        caring,
                        signed,
                        due,
                        signed,
                        "open",
                        None,
                        None,
                        "",
                    )
                for day in (1, 3, 7):
                    check = same_wall_time(dose, day, tz)
                    if check < now - dt.timedelta(days=2) or (check < now and rng.random() < 0.6):
                        add(
                            pathway,
                            "check_in",
                            day,
                            session.id,
                            None,
                            caring,
                            signed,
                            check,
                            check,
                            "done",
                            check + dt.timedelta(hours=rng.randint(1, 6)),
                            caring,
                            rng.choice(
                                (
                                    "Reached by phone: settled.",
                                    "Reached: sleeping better.",
                                    "Left a message; called back the same day.",
                                )
                            ),
                        )
                    else:
                        add(
                            pathway,
                            "check_in",
                            day,
                            session.id,
                            None,
                            caring,
                            signed,
                            check,
                            check,
                            "open",
                            None,
                            None,
                            "",
                        )
                if pathway.agent == "esketamine":
                    deadline = dt.datetime.combine(
                        dose.astimezone(tz).date() + dt.timedelta(days=7), dt.time(23, 59, 59), tzinfo=tz
                    ).astimezone(dt.UTC)
                    filed = signed + dt.timedelta(days=rng.randint(1, 5))
                    if filed < now:
                        add(
                            pathway,
                            "monitoring_form",
                            0,
                            session.id,
                            None,
                            pathway.prescriber.id,
                            signed,
                            deadline,
                            signed,
                            "done",
                            filed,
                            booking.monitor.id,
                            "Monitoring form filed.",
                        )
                    else:
                        add(
                            pathway,
                            "monitoring_form",
                            0,
                            session.id,
                            None,
                            pathway.prescriber.id,
                            signed,
                            deadline,
                            signed,
                            "open",
                            None,
                            None,
                            "",
                        )
                if open_measures is None:
                    due = max(same_wall_time(last_measured or dose, 28, tz), signed)
                    open_measures = (due, session.id, signed)
            if open_measures is not None:
                due, session_id, created = open_measures
                if closed is not None and due > closed:
                    add(
                        pathway,
                        "outcome_measures",
                        0,
                        session_id,
                        None,
                        pathway.prescriber.id,
                        created,
                        due,
                        due,
                        "cancelled",
                        closed,
                        pathway.prescriber.id,
                        "The pathway was closed.",
                    )
                elif due < now - dt.timedelta(days=7) or closed is not None:
                    repeat += self._repeat_measures(pathway, due, 1.0)
                    measures_done(pathway, open_measures)
                else:
                    add(
                        pathway,
                        "outcome_measures",
                        0,
                        session_id,
                        None,
                        pathway.prescriber.id,
                        created,
                        due,
                        due,
                        "open",
                        None,
                        None,
                        "",
                    )
        self.timer.done("follow-ups", started, rows.close())
        self.measures.close()
        self.alerts.close()
        self.timer.done("repeat measures", None, repeat)

    def _repeat_measures(self, pathway: _Pathway, at: dt.datetime, progress: float) -> int:
        """PHQ-9 and PCL-5 again (improving over the course), as recorded for a measures follow-up."""
        answers = self._answers(pathway, improvement=min(1.0, 0.3 + progress))
        at = min(at, self.now - dt.timedelta(hours=1))
        self.measure_recorder(pathway, "phq9", answers["phq9"], at, None)
        self.measure_recorder(pathway, "pcl5", answers["pcl5"], at, None)
        return 2

    # --- audit events --------------------------------------------------------------------------------

    def write_audit(self) -> None:
        """The audit trail the services would have left for the main writes: patients registered, stage
        moves, screenings signed, bookings made, dosing records and integration notes signed."""
        rng = self.rng
        started = time.perf_counter()
        events = self.copy(
            AuditEvent,
            _columns(
                "public_id occurred_at clinic_public_id actor_public_id actor_label action target_type "
                "target_public_id patient_public_id request_id data"
            ),
        )

        def event(
            pathway: _Pathway,
            at: dt.datetime,
            actor: _Staff,
            action: str,
            target: str,
            target_id: str,
            data: dict[str, Any],
        ) -> None:
            events.add(
                _uid(rng),
                at,
                pathway.clinic.public_id,
                actor.public_id,
                actor.email,
                action,
                target,
                target_id,
                pathway.patient_public_id,
                f"bench-{rng.getrandbits(48):012x}",
                data,
            )

        for pathway in self.pathways:
            prescriber = pathway.prescriber

            event(
                pathway,
                pathway.opened_at,
                prescriber,
                "patient.registered",
                "pathways.Patient",
                pathway.patient_public_id,
                {},
            )
            for from_stage, to_stage, at in pathway.moves:
                if from_stage:
                    event(
                        pathway,
                        at,
                        prescriber,
                        "pathway.stage_changed",
                        "pathways.Pathway",
                        pathway.public_id,
                        {"from": from_stage, "to": to_stage},
                    )
                else:
                    event(
                        pathway, at, prescriber, "pathway.opened", "pathways.Pathway", pathway.public_id, {}
                    )
            for screening in pathway.screenings:
                event(
                    pathway,
                    screening.signed_at,
                    prescriber,
                    "assessment.signed",
                    "screening.Assessment",
                    screening.public_id,
                    {"decision": "not_eligible" if pathway.not_eligible else "eligible"},
                )
            admin = pathway.clinic.admin
            for booking in pathway.bookings:
                at = booking.created_at
                event(
                    pathway,
                    at,
                    admin,
                    "booking.created",
                    "dosing.Booking",
                    booking.public_id,
                    {"agent": pathway.agent, "route": pathway.route},
                )
                if booking.session is not None:
                    event(
                        pathway,
                        booking.session.signed_at,
                        booking.monitor,
                        "session.signed",
                        "dosing.DosingSession",
                        booking.session.public_id,
                        {},
                    )
                    note = self.notes.get(booking.session.id)
                    if note is not None and note[1] is not None and pathway.therapist is not None:
                        event(
                            pathway,
                            note[1],
                            pathway.therapist,
                            "integration.note_signed",
                            "integration.IntegrationNote",
                            note[2],
                            {},
                        )
        self.timer.done("audit events", started, events.close())


def same_wall_time(moment: dt.datetime, days: int, tz: dt.tzinfo) -> dt.datetime:
    """`days` calendar days later at the same clinic clock time (as `integration.rules` does it)."""
    local = moment.astimezone(tz)
    day = local.date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=tz).astimezone(dt.UTC)


__all__ = [
    "BENCH_PASSWORD",
    "BENCH_TOTP_KEY",
    "ConflictHandle",
    "NetworkHandles",
    "NetworkSummary",
    "Sizes",
    "build_network",
    "network_counts",
    "network_handles",
]
_ = uuid  # public ids are written as 32 hex digits; `uuid` is what reads them back
