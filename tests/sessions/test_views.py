"""Dosing pages and API: access matrix, bad input kept, the iCalendar feed, flat query counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import icalendar
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape
from rest_framework.test import APIClient

from kaemdr import sources
from kaemdr.models import Role
from kaemdr.models import User
from sessions.booking import services
from sessions.models import Booking

from ..access import snapshot
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db
ALL_ROLES = tuple(Role.values)


def dosing_snapshot() -> tuple[Any, ...]:
    return (*snapshot(), tuple(Booking.objects.order_by("pk").values_list("status", "starts_at", "room_id")))


@pytest.fixture
def world(
    staff: dict[str, User],
    clinic: Any,
    other_clinic: Any,
    room: Any,
    dosing_pathway: Any,
    slot: Callable[..., dt.datetime],
) -> dict[str, Any]:
    booking = services.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=dosing_pathway,
        room=room,
        starts_at=slot(0, 9),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )
    outsiders = {role: UserFactory(clinic=other_clinic, role=role) for role in Role.values}
    return {
        "booking": booking,
        "room": room,
        "pathway": dosing_pathway,
        "staff": staff,
        "outsiders": outsiders,
        "slot": slot,
    }


def _routes(world: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any], tuple[str, ...], int, bool]]:
    booking, room, pathway, slot = world["booking"], world["room"], world["pathway"], world["slot"]
    staff = world["staff"]
    later = slot(1, 13)
    return {
        "room_list": ("get", reverse("room_list"), {}, (Role.CLINIC_ADMIN,), 200, False),
        "room_create": (
            "post",
            reverse("room_create"),
            {"name": "New Room", "has_bp_monitor": "on", "is_active": "on"},
            (Role.CLINIC_ADMIN,),
            302,
            False,
        ),
        "room_detail": (
            "get",
            reverse("room_detail", args=[room.public_id]),
            {},
            (Role.CLINIC_ADMIN,),
            200,
            True,
        ),
        "calendar": (
            "get",
            reverse("room_calendar"),
            {},
            (Role.CLINIC_ADMIN, Role.PRESCRIBER, Role.MONITOR),
            200,
            False,
        ),
        "today": (
            "get",
            reverse("today_board"),
            {},
            (Role.CLINIC_ADMIN, Role.PRESCRIBER, Role.MONITOR),
            200,
            False,
        ),
        "booking_detail": (
            "get",
            reverse("booking_detail", args=[booking.public_id]),
            {},
            (Role.CLINIC_ADMIN, Role.PRESCRIBER, Role.MONITOR, Role.THERAPIST),
            200,
            True,
        ),
        "booking_create": (
            "post",
            reverse("booking_create", args=[pathway.public_id]),
            {
                "room": str(room.public_id),
                "date": later.date().isoformat(),
                "time": "13:00",
                "prescriber": str(staff[Role.PRESCRIBER].public_id),
                "monitor": str(staff[Role.MONITOR].public_id),
            },
            (Role.CLINIC_ADMIN,),
            302,
            True,
        ),
        "booking_move": (
            "post",
            reverse("booking_move", args=[booking.public_id]),
            {
                "room": str(room.public_id),
                "date": slot(2).date().isoformat(),
                "time": "10:00",
            },
            (Role.CLINIC_ADMIN,),
            302,
            True,
        ),
        "booking_checks": (
            "post",
            reverse("booking_checks", args=[booking.public_id]),
            {"fasting_instructions_given": "on"},
            (Role.CLINIC_ADMIN, Role.MONITOR),
            302,
            True,
        ),
        "booking_cancel": (
            "post",
            reverse("booking_cancel", args=[booking.public_id]),
            {"reason": "Unwell"},
            (Role.CLINIC_ADMIN,),
            302,
            True,
        ),
    }


ROUTES = [
    "room_list",
    "room_create",
    "room_detail",
    "calendar",
    "today",
    "booking_detail",
    "booking_create",
    "booking_move",
    "booking_checks",
    "booking_cancel",
]


@pytest.mark.parametrize("name", ROUTES)
def test_access_matrix_for_dosing_pages(
    name: str, world: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    method, url, data, allowed, ok_status, takes_id = _routes(world)[name]

    def call(user: User | None) -> Any:
        client = client_for(user)
        return client.post(url, data) if method == "post" else client.get(url)

    before = dosing_snapshot()
    response = call(None)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert dosing_snapshot() == before

    refused = [world["staff"][role] for role in ALL_ROLES if role not in allowed]
    if takes_id:
        refused += [world["outsiders"][role] for role in allowed]
    for user in refused:
        before = dosing_snapshot()
        assert call(user).status_code == 404, (name, user.role)
        assert dosing_snapshot() == before, (name, user.role)

    response = call(world["staff"][allowed[0]])
    assert response.status_code == ok_status, (
        name,
        getattr(response, "context", None)
        and response.context.get("form")
        and response.context["form"].errors,
    )


def test_a_conflict_on_the_booking_page_is_named_and_the_input_kept(
    world: dict[str, Any], client_for: Callable[[User | None], Client], clinic: Any
) -> None:
    staff, slot = world["staff"], world["slot"]
    other = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other)
    second_monitor = UserFactory(clinic=clinic, role=Role.MONITOR)
    before = dosing_snapshot()
    response = client_for(staff[Role.CLINIC_ADMIN]).post(
        reverse("booking_create", args=[other.public_id]),
        {
            "room": str(world["room"].public_id),
            "date": slot(0).date().isoformat(),
            "time": "10:30",
            "prescriber": str(staff[Role.PRESCRIBER].public_id),
            "monitor": str(second_monitor.public_id),
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert f"The room is booked for {world['pathway'].patient.full_name}: Harbour Room" in body
    # The refusal names its source in plain words, with the link where the source has one.
    citation = sources.citation_for("booking_conflict")
    assert citation is not None
    assert citation.url
    assert f'(Source: <a href="{citation.url}">{escape(citation.text)}</a>.)' in body
    assert 'value="10:30"' in body
    assert dosing_snapshot() == before


def test_the_room_feed_is_real_icalendar_with_initials_only(world: dict[str, Any]) -> None:
    room, booking = world["room"], world["booking"]
    response = Client().get(reverse("room_calendar_feed", args=[room.calendar_token]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    patient = booking.patient
    initials = f"{patient.given_name[0]}{patient.family_name[0]}".upper()
    assert str(events[0]["summary"]) == f"Dosing session ({initials})"
    assert events[0].decoded("dtstart") == booking.starts_at
    assert patient.family_name not in response.content.decode()


def test_a_wrong_feed_token_is_404(world: dict[str, Any]) -> None:
    assert Client().get(reverse("room_calendar_feed", args=["not-the-token"])).status_code == 404


def test_the_week_calendar_query_count_stays_flat(
    world: dict[str, Any], client_for: Callable[[User | None], Client], clinic: Any
) -> None:
    staff, slot = world["staff"], world["slot"]
    client = client_for(staff[Role.CLINIC_ADMIN])
    url = reverse("room_calendar") + f"?week={slot(0).date().isoformat()}"
    client.get(url)

    def measure() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = measure()
    rooms = [RoomFactory(clinic=clinic) for _ in range(3)]
    for index in range(27):
        pathway = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
        SignedScreeningFactory(pathway=pathway)
        services.booking_create(
            actor=staff[Role.CLINIC_ADMIN],
            pathway=pathway,
            room=rooms[index % 3],
            starts_at=slot(index // 9, 8 + (index % 9 // 3) * 3),
            prescriber=staff[Role.PRESCRIBER],
            monitor=UserFactory(clinic=clinic, role=Role.MONITOR),
        )
    large = measure()
    assert small == large
    assert small <= 11
    assert client.get(url).content.decode().count('class="d-block booking') >= 10


def test_the_api_books_and_names_a_conflict(world: dict[str, Any], clinic: Any) -> None:
    staff, slot = world["staff"], world["slot"]
    client = APIClient()
    client.force_authenticate(staff[Role.CLINIC_ADMIN])
    other = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other)
    body = {
        "pathway": str(other.public_id),
        "room": str(world["room"].public_id),
        "prescriber": str(staff[Role.PRESCRIBER].public_id),
        "monitor": str(UserFactory(clinic=clinic, role=Role.MONITOR).public_id),
    }
    clash = client.post("/api/v1/bookings/", {**body, "starts_at": slot(0, 10).isoformat()}, format="json")
    assert clash.status_code == 400
    assert clash.json()["errors"][0]["code"] == "booking_conflict"
    assert clash.json()["errors"][0]["field"] == "starts_at"
    citation = sources.citation_for("booking_conflict")
    assert citation is not None
    assert (clash.json()["errors"][0]["source"], clash.json()["errors"][0]["source_url"]) == (
        citation.text,
        citation.url,
    )
    created = client.post("/api/v1/bookings/", {**body, "starts_at": slot(0, 13).isoformat()}, format="json")
    assert created.status_code == 201
    moved = client.post(
        f"/api/v1/bookings/{created.json()['id']}/move/",
        {"starts_at": slot(1, 13).isoformat()},
        format="json",
    )
    assert moved.status_code == 200
    assert moved.json()["starts_at"] == slot(1, 13).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def test_the_api_refuses_other_roles_and_clinics(world: dict[str, Any]) -> None:
    for user in (world["staff"][Role.MONITOR], world["outsiders"][Role.CLINIC_ADMIN]):
        client = APIClient()
        client.force_authenticate(user)
        before = dosing_snapshot()
        response = client.post(
            f"/api/v1/bookings/{world['booking'].public_id}/cancel/", {"reason": "x"}, format="json"
        )
        assert response.status_code == 404
        assert dosing_snapshot() == before
