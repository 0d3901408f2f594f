"""The demo a newcomer meets after `make run`: `manage.py demo_code` prints the code and nothing else,
the demo's rooms take bookings on any day of the week, and its dates follow today."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import os
import subprocess
import sys
import zoneinfo
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from kaemdr.two_factor import current_code
from kaemdr.two_factor import enrol_with_key
from pathways.demo import DEMO_PATIENTS
from pathways.demo import DEMO_TOTP_DEVICE
from pathways.demo import DEMO_TOTP_KEY
from pathways.demo import demo_clinic_load
from screening.rules import age_on
from sessions.booking import services as session_services
from sessions.models import Booking
from sessions.models import Room

from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_demo_code_prints_only_the_code() -> None:
    device = enrol_with_key(user=UserFactory(), key_hex=DEMO_TOTP_KEY, name=DEMO_TOTP_DEVICE)
    out, err = io.StringIO(), io.StringIO()
    before = current_code(device)
    call_command("demo_code", stdout=out, stderr=err)
    assert out.getvalue() in {f"{before}\n", f"{current_code(device)}\n"}  # the 30 s step may turn
    assert err.getvalue() == ""


@pytest.mark.django_db
def test_demo_code_says_on_stderr_when_the_demo_is_not_loaded() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("demo_code", stdout=out, stderr=err)
    assert out.getvalue() == ""
    assert "The demo clinic is not loaded" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_demo_code_run_from_the_shell_prints_the_code_line_and_no_log() -> None:
    """As a person runs it: a fresh process, with Django's start-up (and its apps' logging) in it."""
    device = enrol_with_key(user=UserFactory(), key_hex=DEMO_TOTP_KEY, name=DEMO_TOTP_DEVICE)
    name = connection.settings_dict["NAME"]
    environment = {**os.environ, "DJANGO_LOG_LEVEL": "INFO"}
    if connection.vendor == "postgresql":  # the test database, whether DATABASE_URL is set or defaulted
        db = connection.settings_dict
        environment["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{name}"
    else:
        environment["DATABASE_URL"] = f"sqlite:///{name}"
    before = current_code(device)
    run = subprocess.run(  # this interpreter, this project's manage.py
        [sys.executable, str(ROOT / "manage.py"), "demo_code"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout in {f"{before}\n", f"{current_code(device)}\n"}
    assert run.stderr == ""


def _next(day: dt.date, weekday: int) -> dt.date:
    """The first `weekday` (Monday 0) after `day`."""
    return day + dt.timedelta(days=(weekday - day.weekday() - 1) % 7 + 1)


@pytest.mark.django_db
@pytest.mark.parametrize(("weekday", "name"), [(5, "Sat"), (6, "Sun")])
def test_a_demo_room_takes_a_booking_at_the_weekend(weekday: int, name: str) -> None:
    demo = demo_clinic_load()
    admin = demo.staff["admin@demo.kaemdr.test"]
    prescriber = demo.staff["prescriber@demo.kaemdr.test"]
    pathway = PathwayFactory(  # a new patient of the demo clinic, screened and signed for dosing
        clinic=demo.clinic,
        prescriber=prescriber,
        therapist=demo.staff["therapist@demo.kaemdr.test"],
        stage="dosing",
        patient__registered_by=prescriber,
    )
    SignedScreeningFactory(pathway=pathway)
    room = Room.objects.get(clinic=demo.clinic, name="Quiet Room")
    tz = zoneinfo.ZoneInfo(demo.clinic.time_zone)
    day = _next(timezone.localdate(), weekday)
    for hour in (7, 11, 17):  # from when the rooms open to a session ending in the evening
        booking = session_services.booking_create(
            actor=admin,
            pathway=pathway,
            room=room,
            starts_at=dt.datetime.combine(day, dt.time(hour, 0), tzinfo=tz),
            prescriber=demo.staff["prescriber@demo.kaemdr.test"],
            monitor=demo.staff["monitor@demo.kaemdr.test"],
        )
        assert (
            Booking.objects.get(pk=booking.pk).starts_at.astimezone(tz).strftime("%a %H:%M")
            == f"{name} {hour:02d}:00"
        )
        session_services.booking_cancel(actor=admin, booking=booking, reason="Demo check of weekend hours.")


@pytest.mark.django_db
def test_the_demo_rooms_open_every_day() -> None:
    demo = demo_clinic_load()
    rooms = Room.objects.filter(clinic=demo.clinic).prefetch_related("opening_hours")
    assert rooms.count() == 3
    for room in rooms:
        assert [h.weekday for h in room.opening_hours.all()] == list(range(7))


def test_the_demo_patients_keep_their_ages_whatever_the_year() -> None:
    """Loaded in a later year, the demo's patients are as old as they are today, so the rules that
    depend on age (esketamine's at 65, under 18 not eligible) show what the README tells."""
    import pathways.demo

    today = timezone.localdate
    this_year = dt.date(today().year, 6, 1)
    later = this_year.replace(year=this_year.year + 7)
    try:
        with mock.patch("django.utils.timezone.localdate", return_value=later):
            importlib.reload(pathways.demo)
            ages_later = {
                p.record_number: age_on(p.date_of_birth, later) for p in pathways.demo.DEMO_PATIENTS
            }
    finally:
        importlib.reload(pathways.demo)
    ages_now = {p.record_number: age_on(p.date_of_birth, this_year) for p in DEMO_PATIENTS}
    kai_now = age_on(next(p for p in DEMO_PATIENTS if p.record_number == "HB-1011").date_of_birth, today())
    assert ages_later.pop("HB-1011") == kai_now == 17  # under 18 the day the demo loads
    ages_now.pop("HB-1011")
    assert ages_later == ages_now
    assert ages_later["HB-1010"] >= 65  # Samuel
    assert ages_later["HB-1004"] < 65  # Tomás, on esketamine


@pytest.mark.parametrize(
    ("arguments", "bind", "shown", "hosts"),
    [
        ([], "127.0.0.1:8000", "http://127.0.0.1:8000/", "localhost,127.0.0.1,[::1],127.0.0.1"),
        (["PORT=8001", "HOST=0.0.0.0"], "0.0.0.0:8001", "http://127.0.0.1:8001/", "*"),
    ],
)
def test_make_run_serves_on_the_port_and_host_given(
    arguments: list[str], bind: str, shown: str, hosts: str
) -> None:
    """`make run PORT=… HOST=…` as the README's first lines tell (a dry run: nothing is started)."""
    # As a user runs it, not as a sub-make of `make test` (whose level and flags would add lines).
    env = {
        k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")
    }
    run = subprocess.run(  # make, in this project
        ["make", "--no-print-directory", "-n", "run", *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
        env=env,
    )
    assert f'echo "kaemdr is starting at {shown} ' in run.stdout
    serve = run.stdout.strip().splitlines()[-1]
    assert serve.startswith(f"KAEMDR_BIND={bind} ")
    assert f'DJANGO_ALLOWED_HOSTS="${{DJANGO_ALLOWED_HOSTS:-{hosts}}}"' in serve
    assert serve.endswith("honcho -f Procfile.dev start")


PAGES_ON_THE_DEMO = """
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import reverse

from kaemdr import two_factor
from kaemdr.models import User
from pathways.models import Pathway

setup_test_environment()
opened = 0
for user in User.objects.filter(email__endswith="@demo.kaemdr.test", is_active=True).order_by("email"):
    client = Client()
    client.force_login(user)
    session = client.session
    session[two_factor.SESSION_KEY] = user.two_factor_epoch
    session.save()
    paths = [reverse("dashboard"), reverse("room_calendar"), reverse("today_board")]
    for pathway in Pathway.objects.filter(clinic_id=user.clinic_id):
        paths.append(reverse("pathway_detail", args=[pathway.public_id]))
        paths.append(reverse("booking_create", args=[pathway.public_id]))
    for path in paths:
        answer = client.get(path)  # a server error raises here, failing the command
        assert answer.status_code in (200, 302, 404), (user.email, path, answer.status_code)
        opened += answer.status_code == 200
print("pages opened:", opened)
"""


def test_the_demo_loads_and_its_pages_open_on_the_embedded_default(tmp_path: Path) -> None:
    """`make run` migrates, loads the demo and serves it on SQLite, not PostgreSQL: the demo and the
    main pages of every demo user must work there too (a UNION of ordered parts, for one, works on
    PostgreSQL alone)."""
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}"}
    outputs = []
    for command in (["migrate", "--noinput", "-v0"], ["demo_data"], ["shell", "-c", PAGES_ON_THE_DEMO]):
        run = subprocess.run(  # this interpreter, this project's manage.py, as `make run` calls it
            [sys.executable, str(ROOT / "manage.py"), *command],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            timeout=900,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        outputs.append(run.stdout)
    assert "@demo.kaemdr.test" in outputs[1]
    assert int(outputs[2].split("pages opened:")[1]) > 20
