"""A room's calendar feed can be given a new address (issue 18): through the room page and the API,
by the clinic's admins only, audited without the token; the old address answers 404 at once. Taking
a room out of use revokes its address too, so putting it back in use does not revive it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from sessions.booking import services
from sessions.models import Room

from ..factories import RoomFactory

pytestmark = pytest.mark.django_db

NOT_ADMINS = (Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR)


def feed(token: str) -> int:
    """The status the feed's address answers a calendar app with (no sign-in)."""
    return Client().get(reverse("room_calendar_feed", args=[token])).status_code


def api_for(user: User) -> APIClient:
    _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def audit_text() -> str:
    """Every audit event's fields, as one text to search for a token."""
    return json.dumps(list(AuditEvent.objects.values()), default=str)


def test_rotating_the_feed_on_the_room_page_revokes_the_old_address(
    clinic_admin: User, room: Room, client_for: Callable[[User | None], Client]
) -> None:
    old = room.calendar_token
    assert feed(old) == 200
    page = client_for(clinic_admin)
    url = reverse("room_detail", args=[room.public_id])
    assert "The current address stops working at once" in page.get(url).content.decode()

    response = page.post(url, {"action": "feed", "feed-confirm": "on"}, follow=True)

    assert response.status_code == 200
    room.refresh_from_db()
    new = room.calendar_token
    assert new != old
    assert feed(old) == 404
    assert feed(new) == 200
    body = response.content.decode()
    assert "The calendar feed has a new address and the old one no longer works." in body
    assert reverse("room_calendar_feed", args=[new]) in body
    assert old not in body
    event = AuditEvent.objects.get(action="room.feed_rotated")
    assert (event.target_type, event.target_public_id) == ("dosing.Room", room.public_id)
    assert event.actor_public_id == clinic_admin.public_id
    assert event.data == {}
    assert old not in audit_text()
    assert new not in audit_text()


def test_the_room_page_rotates_nothing_until_the_admin_confirms(
    clinic_admin: User, room: Room, client_for: Callable[[User | None], Client]
) -> None:
    old = room.calendar_token

    response = client_for(clinic_admin).post(
        reverse("room_detail", args=[room.public_id]), {"action": "feed"}
    )

    assert response.status_code == 400
    assert "Tick the box to confirm" in response.content.decode()
    assert Room.objects.get(pk=room.pk).calendar_token == old
    assert feed(old) == 200
    assert not AuditEvent.objects.filter(action="room.feed_rotated").exists()


def test_rotating_the_feed_through_the_api_answers_the_new_address(clinic_admin: User, room: Room) -> None:
    old = room.calendar_token

    response = api_for(clinic_admin).post(f"/api/v1/rooms/{room.public_id}/rotate-feed/")

    assert response.status_code == 200
    room.refresh_from_db()
    feed_url = response.json()["feed_url"]
    assert feed_url == f"http://testserver{reverse('room_calendar_feed', args=[room.calendar_token])}"
    assert feed(old) == 404
    assert Client().get(urlsplit(feed_url).path).status_code == 200
    assert AuditEvent.objects.filter(action="room.feed_rotated", target_public_id=room.public_id).count() == 1
    assert old not in audit_text()
    assert room.calendar_token not in audit_text()


def test_taking_a_room_out_of_use_on_the_page_revokes_its_feed_for_good(
    clinic_admin: User, room: Room, client_for: Callable[[User | None], Client]
) -> None:
    old = room.calendar_token
    page = client_for(clinic_admin)
    url = reverse("room_detail", args=[room.public_id])
    fields = {"action": "room", "room-name": room.name, "room-has_bp_monitor": "on"}

    out_of_use = page.post(url, fields, follow=True)  # "In use" left unticked

    assert "its calendar feed&#x27;s address no longer works" in out_of_use.content.decode()
    room.refresh_from_db()
    assert not room.is_active
    assert room.calendar_token != old
    assert feed(old) == 404
    assert feed(room.calendar_token) == 404  # an out-of-use room's feed answers nothing
    updated = AuditEvent.objects.filter(action="room.updated", target_public_id=room.public_id).get()
    assert updated.data["feed_rotated"] is True

    page.post(url, {**fields, "room-is_active": "on"})

    room.refresh_from_db()
    assert room.is_active
    assert feed(old) == 404
    assert feed(room.calendar_token) == 200
    assert old not in audit_text()
    assert room.calendar_token not in audit_text()


def test_a_room_kept_in_use_keeps_its_feed(clinic_admin: User, room: Room) -> None:
    old = room.calendar_token
    services.room_save(actor=clinic_admin, room=room, name="Renamed Room", is_active=True)
    assert Room.objects.get(pk=room.pk).calendar_token == old
    assert feed(old) == 200


@pytest.mark.parametrize("role", NOT_ADMINS)
def test_only_clinic_admins_rotate_a_feed(
    staff: dict[str, User], room: Room, role: str, client_for: Callable[[User | None], Client]
) -> None:
    old = room.calendar_token
    user = staff[role]

    page = client_for(user).post(
        reverse("room_detail", args=[room.public_id]), {"action": "feed", "feed-confirm": "on"}
    )
    api = api_for(user).post(f"/api/v1/rooms/{room.public_id}/rotate-feed/")
    with pytest.raises(NotFoundOrForbidden):
        services.room_feed_rotate(actor=user, room=room)

    assert (page.status_code, api.status_code) == (404, 404)
    assert Room.objects.get(pk=room.pk).calendar_token == old
    assert feed(old) == 200
    assert not AuditEvent.objects.filter(action="room.feed_rotated").exists()


def test_another_clinics_room_feed_cannot_be_rotated(
    clinic_admin: User, other_clinic: Any, client_for: Callable[[User | None], Client]
) -> None:
    theirs = RoomFactory(clinic=other_clinic)
    old = theirs.calendar_token

    page = client_for(clinic_admin).post(
        reverse("room_detail", args=[theirs.public_id]), {"action": "feed", "feed-confirm": "on"}
    )
    api = api_for(clinic_admin).post(f"/api/v1/rooms/{theirs.public_id}/rotate-feed/")
    with pytest.raises(NotFoundOrForbidden):
        services.room_feed_rotate(actor=clinic_admin, room=theirs)

    assert (page.status_code, api.status_code) == (404, 404)
    assert Room.objects.get(pk=theirs.pk).calendar_token == old
    assert feed(old) == 200
    assert not AuditEvent.objects.filter(action="room.feed_rotated").exists()


def test_anonymous_visitors_cannot_rotate_a_feed(room: Room) -> None:
    old = room.calendar_token
    page = Client().post(
        reverse("room_detail", args=[room.public_id]), {"action": "feed", "feed-confirm": "on"}
    )
    api = APIClient().post(f"/api/v1/rooms/{room.public_id}/rotate-feed/")
    assert page.status_code == 302
    assert api.status_code == 401
    assert Room.objects.get(pk=room.pk).calendar_token == old
