"""The versioned page cache (`kaemdr.page_cache`): every cached part shows a change on the very next
request, and a repeat view with nothing changed reads the cache and still writes its read event.

The property: for any sequence of writes through the services that touch a page (book, move and
cancel a booking; record a measure; open a note; close a follow-up; put the pathway on hold and back;
deactivate and reactivate a member of staff), after each write the next view of every cached part
(each role's dashboard, the pathway page, the room calendar's weeks) is the page a fresh, uncached
render gives.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.db import transaction
from django.test import Client
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from integration import services as integration_services
from integration.models import FollowUp
from kaemdr import page_cache
from kaemdr import services as staff_services
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways import services as pathway_services
from pathways.rules import allowed_moves
from screening import services as screening_services
from sessions.booking import services as booking_services
from sessions.models import Booking

from .conftest import sign_in_verified
from .factories import UserFactory

pytestmark = pytest.mark.django_db

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


@pytest.fixture
def page_cache_on(settings: Any) -> Iterator[Any]:
    settings.PAGE_CACHE_ENABLED = True
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture
def world(
    page_cache_on: Any,
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    complete_session: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
) -> dict[str, Any]:
    """A dosing pathway with one signed session (its follow-ups open), a signed-in client per role,
    and a second monitor for the staff changes."""
    with django_capture_on_commit_callbacks(execute=True):
        complete_session(dosing_pathway)
    clients = {role: sign_in_verified(Client(), user) for role, user in staff.items()}
    extra = UserFactory(role=Role.MONITOR, clinic=dosing_pathway.clinic, full_name="Second Monitor")
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(dosing_pathway.clinic.time_zone)).date()
    calendar = reverse("room_calendar")
    pathway_url = reverse("pathway_detail", args=[dosing_pathway.public_id])
    views = [(clients[role], reverse("dashboard")) for role in Role.values]
    views += [(clients[role], pathway_url) for role in (Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR)]
    views += [
        (clients[role], f"{calendar}?week={day.isoformat()}")
        for role in (Role.MONITOR, Role.CLINIC_ADMIN)
        for day in (today, today + dt.timedelta(days=7))
    ]
    return {"staff": staff, "pathway": dosing_pathway, "room": room, "extra": extra, "views": views}


def _page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return CSRF.sub('name="csrfmiddlewaretoken" value=""', response.content.decode())


def _cached_and_fresh(settings: Any, client: Client, url: str) -> tuple[str, str]:
    """The page as served (from the cache where it can be) and as a fresh render, in one minute (the
    parts' keys name the minute: across a minute's end, both are rendered again)."""
    while True:
        minute = timezone.now().replace(second=0, microsecond=0)
        served = _page(client, url)
        settings.PAGE_CACHE_ENABLED = False
        try:
            fresh = _page(client, url)
        finally:
            settings.PAGE_CACHE_ENABLED = True
        if timezone.now().replace(second=0, microsecond=0) == minute:
            return served, fresh


def _write(step: tuple[Any, ...], world: dict[str, Any]) -> None:
    """One write through its service; a refusal (a clash, a gate, a closed follow-up) writes nothing."""
    staff, pathway, room = world["staff"], world["pathway"], world["room"]
    pathway.refresh_from_db()
    zone = zoneinfo.ZoneInfo(pathway.clinic.time_zone)
    kind = step[0]
    live = Booking.objects.filter(pathway=pathway, status="booked").order_by("starts_at")
    if kind == "book":
        day = timezone.now().astimezone(zone).date() + dt.timedelta(days=step[1])
        booking_services.booking_create(
            actor=staff[Role.CLINIC_ADMIN],
            pathway=pathway,
            room=room,
            starts_at=dt.datetime.combine(day, dt.time(step[2]), tzinfo=zone),
            prescriber=staff[Role.PRESCRIBER],
            monitor=staff[Role.MONITOR],
        )
    elif kind == "move" and live:
        booking = live[0]
        booking_services.booking_move(
            actor=staff[Role.CLINIC_ADMIN],
            booking=booking,
            starts_at=booking.starts_at + dt.timedelta(days=step[1], hours=step[2] - 12),
        )
    elif kind == "cancel" and live:
        booking_services.booking_cancel(actor=staff[Role.CLINIC_ADMIN], booking=live[0], reason="Unwell")
    elif kind == "measure":
        screening_services.measure_record(
            actor=staff[Role.THERAPIST], pathway=pathway, instrument="phq9", answers=step[1]
        )
    elif kind == "note":
        integration_services.note_open(actor=staff[Role.THERAPIST], pathway=pathway)
    elif kind == "follow_up":
        follow_up = FollowUp.objects.filter(pathway=pathway, kind="check_in", status="open").first()
        if follow_up is not None:
            integration_services.follow_up_complete(
                actor=staff[Role.MONITOR], follow_up=follow_up, outcome="Reached by phone."
            )
    elif kind == "hold":
        moves = allowed_moves(stage=pathway.stage, stage_before_hold=pathway.stage_before_hold)
        to_stage = "on_hold" if "on_hold" in moves else "dosing" if "dosing" in moves else None
        if to_stage is not None:
            pathway_services.pathway_move(
                actor=staff[Role.PRESCRIBER], pathway=pathway, to_stage=to_stage, reason="Travelling."
            )
    elif kind == "staff":
        extra = User.objects.get(pk=world["extra"].pk)
        change = staff_services.staff_reactivate if not extra.is_active else staff_services.staff_deactivate
        change(actor=staff[Role.CLINIC_ADMIN], user=extra)


STEPS = st.one_of(
    st.tuples(st.just("book"), st.integers(1, 9), st.integers(8, 17)),
    st.tuples(st.just("move"), st.integers(-1, 3), st.integers(9, 15)),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("measure"), st.sampled_from([[0] * 9, [1] * 8 + [2], [2] * 8 + [0]])),
    st.tuples(st.just("note")),
    st.tuples(st.just("follow_up")),
    st.tuples(st.just("hold")),
    st.tuples(st.just("staff")),
)


@hypothesis_settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEPS, min_size=1, max_size=4))
def test_every_cached_part_shows_a_write_on_the_next_request(
    steps: list[tuple[Any, ...]],
    world: dict[str, Any],
    page_cache_on: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Given every cached part viewed once (the cache warm), in a transaction undone after the example
    with transaction.atomic():
        cache.clear()
        for client, url in world["views"]:
            _page(client, url)
        for step in steps:
            # When a write commits (its on-commit work runs, the page-cache version bump among it)
            with django_capture_on_commit_callbacks(execute=True):
                try:
                    with transaction.atomic():
                        _write(step, world)
                except (ValidationError, NotFoundOrForbidden):
                    pass
            # Then the next view of every cached part is what a fresh render shows
            for client, url in world["views"]:
                served, fresh = _cached_and_fresh(page_cache_on, client, url)
                assert served == fresh, (step, url)
        transaction.set_rollback(True)


def _pages(world: dict[str, Any]) -> list[tuple[Client, str]]:
    return [world["views"][0], world["views"][4], world["views"][7]]  # dashboard, pathway, calendar


@pytest.mark.parametrize("index", [0, 1, 2], ids=["dashboard", "pathway", "calendar"])
def test_a_repeat_view_reads_the_cache_and_still_writes_its_read_event(
    world: dict[str, Any], index: int
) -> None:
    client, url = _pages(world)[index]
    counts, events, bodies = [], [], []
    for _ in range(3):
        before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        with CaptureQueriesContext(connection) as queries:
            bodies.append(_page(client, url))
        counts.append(len(queries))
        read = AuditEvent.objects.filter(id__gt=before, action__regex=r"viewed$")
        events.append([(e.action, e.target_public_id, e.patient_public_id, e.data) for e in read])
    assert counts[1] < counts[0], counts
    assert counts[2] == counts[1], counts
    assert bodies[0] == bodies[1] == bodies[2]
    assert len(events[0]) == 1
    assert events[0] == events[1] == events[2]


def test_a_write_outside_any_clinic_page_still_replaces_the_version_after_commit(
    page_cache_on: Any, django_capture_on_commit_callbacks: Any
) -> None:
    key = page_cache._version_key("some-clinic")
    [version] = page_cache._versions(["some-clinic"]) or [""]
    with django_capture_on_commit_callbacks(execute=True):
        page_cache.bump_on_commit(action="booking.viewed", clinic_public_id="some-clinic")
    assert cache.get(key) == version, "a read event replaces nothing"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        page_cache.bump_on_commit(action="booking.created", clinic_public_id="some-clinic")
    assert cache.get(key) == version, "nothing is replaced before the commit"
    for callback in callbacks:
        callback()
    assert cache.get(key) != version
    cache.delete(key)
    [fresh] = page_cache._versions(["some-clinic"]) or [""]
    assert fresh not in ("", version), "a lost version comes back as a new one, never an old one"


def test_the_benchmarks_cold_request_is_the_first_view_after_a_change(
    world: dict[str, Any], settings: Any
) -> None:
    from bench.cold import COLD_HEADER
    from bench.cold import MIDDLEWARE

    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    client, url = _pages(world)[1]
    counts = []
    for headers in ({}, {COLD_HEADER: "1"}, {COLD_HEADER: "1"}, {}, {COLD_HEADER: "1"}):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url, headers=headers).status_code == 200
        counts.append(len(queries))
    assert counts[1] == counts[2] == counts[4] > counts[3], counts


def test_while_the_cache_is_unreachable_every_view_is_rendered_afresh(
    world: dict[str, Any], settings: Any
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "kaemdr.cache.ForgivingRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"RETRY_SECONDS": 60},
        }
    }
    client, url = _pages(world)[0]
    assert (
        page_cache.part_key(
            "dashboard", request=RequestFactory().get("/"), user=world["staff"][Role.PRESCRIBER]
        )
        is None
    )
    counts, bodies = [], []
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            bodies.append(_page(client, url))
        counts.append(len(queries))
    assert counts[1] == counts[2], "no view is served from a cache that does not answer"
    assert bodies[1] == bodies[2]
