"""Shared fixtures, and the CI guard: in CI, PostgreSQL, Redis and Chromium must be there and no
test may skip. A skipped test in CI fails the run instead."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from kaemdr import two_factor
from kaemdr.models import Clinic
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import two_factor_required
from sessions.booking import services as booking_services
from sessions.models import DosingSession
from sessions.record import services as dosing

from . import audit_guard
from .factories import ClinicFactory
from .factories import PathwayFactory
from .factories import PatientFactory
from .factories import RoomFactory
from .factories import SignedScreeningFactory
from .factories import UserFactory
from .sessions.dosing_day import backdate_dose
from .sessions.dosing_day import settled

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Every service call in the suite must audit what it writes (before any test module imports one).
audit_guard.install()


def _flush_past_the_audit_trigger() -> None:
    """Let the test database's owner empty the audit table between transactional tests.

    Django empties the database after a transactional test (a live server, a worker) with one
    TRUNCATE of every table, which the audit table's statement trigger refuses (migration
    kaemdr 0006). The owner switches that one trigger off around the flush, in the flush's own
    transaction; the app's role can do neither (it owns nothing)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush
    if getattr(original, "__passes_audit_trigger__", False):
        return
    trigger = "kaemdr_audit_event_no_truncate"

    def sql_flush(self: Any, style: Any, tables: Any, **kwargs: Any) -> list[str]:
        statements = original(self, style, tables, **kwargs)
        if statements and "kaemdr_auditevent" in tables:
            return [
                f"ALTER TABLE kaemdr_auditevent DISABLE TRIGGER {trigger}",
                *statements,
                f"ALTER TABLE kaemdr_auditevent ENABLE TRIGGER {trigger}",
            ]
        return statements

    sql_flush.__passes_audit_trigger__ = True
    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]


_flush_past_the_audit_trigger()

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = os.environ.get("KAEMDR_CHROMIUM", "/usr/bin/chromium")
OUTPUT_DIR = Path(settings.BASE_DIR) / "var" / "test-output"


def pytest_sessionstart(session: pytest.Session) -> None:
    if not IN_CI:
        return
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append("PostgreSQL is not reachable (set DATABASE_URL or start it on 127.0.0.1:5432)")
    if not settings.TEST_REDIS_URL:
        problems.append("Redis is not reachable (set REDIS_URL or start it on 127.0.0.1:6379)")
    if not Path(CHROMIUM).exists():
        problems.append(f"Chromium is not installed at {CHROMIUM}")
    if problems:
        raise pytest.UsageError("CI needs the real services: " + "; ".join(problems))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"Skipped in CI, where every test must run: {report.longrepr}"


def require_redis() -> str:
    if not settings.TEST_REDIS_URL:
        pytest.skip("Redis is not reachable")
    return str(settings.TEST_REDIS_URL)


def require_postgres() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL")


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip("Chromium is not installed")
    return {
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """A folder under var/test-output/ for this test's screenshots and samples."""
    folder = OUTPUT_DIR / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def clinic(db: None) -> Clinic:
    return ClinicFactory(name="Harbour Clinic")


@pytest.fixture
def other_clinic(db: None) -> Clinic:
    return ClinicFactory(name="Elsewhere Clinic")


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(role: str = Role.PRESCRIBER, clinic: Clinic | None = None, **kwargs: Any) -> User:
        return UserFactory(role=role, clinic=clinic or ClinicFactory(), **kwargs)

    return make


@pytest.fixture
def staff(clinic: Clinic, make_user: Callable[..., User]) -> dict[str, User]:
    """One active member of staff per role at `clinic`."""
    return {role: make_user(role=role, clinic=clinic) for role in Role.values}


@pytest.fixture
def prescriber(staff: dict[str, User]) -> User:
    return staff[Role.PRESCRIBER]


@pytest.fixture
def therapist(staff: dict[str, User]) -> User:
    return staff[Role.THERAPIST]


@pytest.fixture
def monitor(staff: dict[str, User]) -> User:
    return staff[Role.MONITOR]


@pytest.fixture
def clinic_admin(staff: dict[str, User]) -> User:
    return staff[Role.CLINIC_ADMIN]


@pytest.fixture
def pathway(clinic: Clinic, prescriber: User, therapist: User) -> Any:
    return PathwayFactory(
        clinic=clinic, prescriber=prescriber, therapist=therapist, patient__registered_by=prescriber
    )


@pytest.fixture
def patient(clinic: Clinic, prescriber: User) -> Any:
    return PatientFactory(clinic=clinic, registered_by=prescriber)


def sign_in_verified(client: Client, user: User) -> Client:
    """The test helper for two-factor sign-in: sign `user` in, and, when their role signs in with a
    second factor, give them an authenticator and mark this session as having passed it (as
    `django_otp.login` does). Tests of the sign-in itself go through the real pages instead."""
    client.force_login(user)
    if two_factor_required(user) or two_factor.has_device(user):
        if not two_factor.has_device(user):
            two_factor.enrol_with_key(user=user, key_hex=TOTPDevice().key, name="Test authenticator")
        session = client.session
        session[two_factor.SESSION_KEY] = user.two_factor_epoch
        session.save()
    return client


@pytest.fixture
def client_for() -> Callable[[User | None], Client]:
    def make(user: User | None) -> Client:
        client = Client()
        if user is not None:
            sign_in_verified(client, user)
        return client

    return make


@pytest.fixture
def room(clinic: Clinic) -> Any:
    return RoomFactory(clinic=clinic, name="Harbour Room")


@pytest.fixture
def dosing_pathway(clinic: Clinic, prescriber: User, therapist: User) -> Any:
    """A pathway in dosing with a current signed screening planning sublingual racemic ketamine."""
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        therapist=therapist,
        stage="dosing",
        patient__registered_by=prescriber,
    )
    SignedScreeningFactory(pathway=pathway)
    return pathway


@pytest.fixture
def complete_session(staff: dict[str, Any], room: Any) -> Callable[..., DosingSession]:
    """`complete_session(pathway, days_ahead=0)`: book, dose, discharge and sign a session through the
    services, as a clinic would; the dose is moved 100 minutes back so discharge is allowed (with a
    blood pressure, MOAA/S 5 and CADSS 0 recorded then)."""
    counter = {"n": 0}

    def run(pathway: Any, *, days_ahead: int = 0) -> DosingSession:
        monitor = staff[Role.MONITOR]
        tz = zoneinfo.ZoneInfo(pathway.clinic.time_zone)
        day = timezone.localdate() + dt.timedelta(days=1 + days_ahead + counter["n"])
        counter["n"] += 1
        booking = booking_services.booking_create(
            actor=staff[Role.CLINIC_ADMIN],
            pathway=pathway,
            room=room,
            starts_at=dt.datetime.combine(day, dt.time(9, 0), tzinfo=tz),
            prescriber=staff[Role.PRESCRIBER],
            monitor=monitor,
        )
        session = dosing.session_open(actor=monitor, booking=booking)
        dosing.session_checks_update(
            actor=monitor,
            session=session,
            fasting_confirmed=True,
            escort_present=True,
            consent_confirmed=True,
        )
        dosing.vitals_record(
            actor=monitor,
            session=session,
            systolic=128,
            diastolic=82,
            heart_rate=76,
            spo2=98,
            respiratory_rate=14,
        )
        dosing.dose_start(actor=monitor, session=session, dose_mg=100, lot_number="L1")
        backdate_dose(session, 100)
        settled(monitor, session)
        dosing.session_discharge(actor=monitor, session=session, alert_and_oriented=True, escort_present=True)
        return dosing.session_sign(actor=monitor, session=session)

    return run
