"""The room calendar's time grid (week and day, one room and across rooms), the booking form's next
open day and free starts, its refusals naming the opening hours and the next free slot, and the API's
free starts."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from sessions.booking import services
from sessions.models import Booking

from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db

WEEKDAYS_9_TO_5 = [(day, dt.time(9), dt.time(17)) for day in range(5)]
ALL_DAY = [(day, dt.time(0), dt.time(23, 59)) for day in range(7)]


@pytest.fixture
def admin(staff: dict[str, User]) -> User:
    return staff[Role.CLINIC_ADMIN]


@pytest.fixture
def tz(clinic: Any) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(clinic.time_zone)


def _next(weekday: int, tz: zoneinfo.ZoneInfo) -> dt.date:
    """The next `weekday` (Monday 0) at least two days ahead, in the clinic's zone."""
    day = timezone.now().astimezone(tz).date() + dt.timedelta(days=2)
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def _book(admin: User, staff: dict[str, User], pathway: Any, room: Any, starts_at: dt.datetime) -> Booking:
    return services.booking_create(
        actor=admin,
        pathway=pathway,
        room=room,
        starts_at=starts_at,
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )


def _blocks(html: str, kind: str) -> list[str]:
    return re.findall(rf'<div class="cal-{kind} [^"]*"', html)


# --- The calendar ---------------------------------------------------------------------------------------


def test_the_week_across_rooms_is_a_time_grid_of_days_and_rooms(
    admin: User,
    staff: dict[str, User],
    clinic: Any,
    room: Any,
    dosing_pathway: Any,
    tz: zoneinfo.ZoneInfo,
    client_for: Callable[[User | None], Client],
) -> None:
    weekday_room = RoomFactory(clinic=clinic, name="Weekday Room")
    services.room_set_hours(actor=admin, room=weekday_room, hours=WEEKDAYS_9_TO_5)
    monday = _next(0, tz)
    booking = _book(
        admin, staff, dosing_pathway, weekday_room, dt.datetime.combine(monday, dt.time(10), tzinfo=tz)
    )
    services.room_closure_add(
        actor=admin,
        room=room,
        starts_at=dt.datetime.combine(monday, dt.time(12), tzinfo=tz),
        ends_at=dt.datetime.combine(monday, dt.time(14), tzinfo=tz),
        reason="Recliner repair",
    )

    response = client_for(admin).get(reverse("room_calendar") + f"?week={monday.isoformat()}")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-calendar="week"' in html
    # 7 days x 2 rooms, under day headings; time down the side from 07:00 (the earliest opening).
    assert "cal-cols-14" in html
    assert html.count('class="cal-head cal-sub') == 14
    assert ">07:00</div>" in html
    assert ">19:00</div>" in html
    # The weekday room is shaded before 09:00 and after 17:00 on weekdays, all day at the weekend.
    assert len(_blocks(html, "closed")) == 5 * 2 + 2
    assert "Out of service: Recliner repair" in html
    # The booking: from its start to its end (its chair time), linked, its state in words.
    link = reverse("booking_detail", args=[booking.public_id])
    block = re.search(rf'<a class="d-block booking cal-booking cal-state-booked [^"]*" href="{link}"', html)
    assert block is not None
    start_row = int(re.search(r"cal-rs-(\d+)", block.group(0)).group(1))
    end_row = int(re.search(r"cal-re-(\d+)", block.group(0)).group(1))
    minutes = int((booking.ends_at - booking.starts_at).total_seconds() // 60)
    assert end_row - start_row == -(-minutes // 15)
    assert f"{booking.starts_at.astimezone(tz):%H:%M}-{booking.ends_at.astimezone(tz):%H:%M}" in html
    assert '<span class="cal-state">Booked</span>' in html
    # The utilisation sits above the grid, not in a column of it.
    assert "Room use this week" in html
    assert html.index("Room use this week") < html.index('class="cal-grid')


def test_one_rooms_week_has_a_column_per_day(
    admin: User,
    staff: dict[str, User],
    room: Any,
    dosing_pathway: Any,
    tz: zoneinfo.ZoneInfo,
    client_for: Callable[[User | None], Client],
) -> None:
    monday = _next(0, tz)
    booking = _book(admin, staff, dosing_pathway, room, dt.datetime.combine(monday, dt.time(9), tzinfo=tz))
    services.booking_cancel(actor=admin, booking=booking, reason="Unwell")

    response = client_for(admin).get(
        reverse("room_calendar") + f"?week={monday.isoformat()}&room={room.public_id}"
    )

    html = response.content.decode()
    assert "cal-cols-7" in html
    assert f"{room.name}: week of" in html
    assert html.count('class="cal-head cal-c-') == 7
    assert f">{monday:%a} {monday.day} {monday:%b}</a>" in html
    assert "cal-state-cancelled" in html
    assert '<span class="cal-state">Cancelled</span>' in html


def test_the_day_view_has_a_column_per_room_and_marks_now(
    admin: User,
    clinic: Any,
    room: Any,
    client_for: Callable[[User | None], Client],
) -> None:
    services.room_set_hours(actor=admin, room=room, hours=ALL_DAY)  # the window holds the time now
    other = RoomFactory(clinic=clinic, name="Zeta Room")
    services.room_set_hours(actor=admin, room=other, hours=ALL_DAY)
    today = timezone.localdate()

    response = client_for(admin).get(reverse("room_calendar") + f"?view=day&day={today.isoformat()}")

    html = response.content.decode()
    assert 'data-calendar="day"' in html
    assert "cal-cols-2" in html
    assert f">{room.name}</a>" in html
    assert ">Zeta Room</a>" in html
    now_marks = re.findall(r'class="cal-now cal-c-(\d+) [^"]*" data-now="(\d\d:\d\d)"', html)
    assert [column for column, _ in now_marks] == ["2", "3"]
    assert "Now " in html


def test_the_day_view_of_a_closed_day_is_shaded_and_has_no_now_mark_on_another_day(
    admin: User, room: Any, tz: zoneinfo.ZoneInfo, client_for: Callable[[User | None], Client]
) -> None:
    services.room_set_hours(actor=admin, room=room, hours=WEEKDAYS_9_TO_5)
    saturday = _next(5, tz)

    html = (
        client_for(admin)
        .get(reverse("room_calendar") + f"?view=day&day={saturday.isoformat()}&room={room.public_id}")
        .content.decode()
    )

    assert len(_blocks(html, "closed")) == 1
    assert "cal-now" not in html
    assert f"{room.name}: {saturday:%A}" in html


def test_the_calendar_query_count_is_the_same_for_the_day_view(
    admin: User,
    staff: dict[str, User],
    clinic: Any,
    room: Any,
    tz: zoneinfo.ZoneInfo,
    client_for: Callable[[User | None], Client],
) -> None:
    client = client_for(admin)
    day = _next(2, tz)
    url = reverse("room_calendar") + f"?view=day&day={day.isoformat()}"
    client.get(url)

    def measure() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = measure()
    rooms = [room, RoomFactory(clinic=clinic), RoomFactory(clinic=clinic)]
    for index in range(6):
        pathway = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
        SignedScreeningFactory(pathway=pathway)
        booking = services.booking_create(
            actor=admin,
            pathway=pathway,
            room=rooms[index % 3],
            starts_at=dt.datetime.combine(day, dt.time(8 + index // 3 * 4), tzinfo=tz),
            prescriber=staff[Role.PRESCRIBER],
            monitor=UserFactory(clinic=clinic, role=Role.MONITOR),
        )
        assert booking.pk
    services.room_closure_add(
        actor=admin,
        room=rooms[1],
        starts_at=dt.datetime.combine(day, dt.time(18), tzinfo=tz),
        ends_at=dt.datetime.combine(day, dt.time(19), tzinfo=tz),
        reason="Cleaning",
    )
    assert measure() == small
    assert client.get(url).content.decode().count('class="d-block booking') == 6


def test_a_therapist_cannot_open_the_calendar(
    staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    assert client_for(staff[Role.THERAPIST]).get(reverse("room_calendar") + "?view=day").status_code == 404


# --- The booking form -----------------------------------------------------------------------------------


def test_the_booking_form_opens_on_the_rooms_next_open_day_at_its_first_free_start(
    admin: User,
    staff: dict[str, User],
    room: Any,
    dosing_pathway: Any,
    tz: zoneinfo.ZoneInfo,
    client_for: Callable[[User | None], Client],
) -> None:
    services.room_set_hours(actor=admin, room=room, hours=WEEKDAYS_9_TO_5)
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    expected = tomorrow
    while expected.weekday() >= 5:
        expected += dt.timedelta(days=1)

    html = client_for(admin).get(reverse("booking_create", args=[dosing_pathway.public_id])).content.decode()

    assert f'name="date" value="{expected.isoformat()}"' in html
    assert 'name="time" value="09:00"' in html
    assert f"Free starts on <span data-slot-day>{expected:%A} {expected.day} {expected:%B}" in html
    assert "Opening hours: Mon-Fri 09:00-17:00." in html
    assert 'data-slot="09:00"' in html
    # Sublingual racemic ketamine: 165 minutes of chair time, so 14:15 is the last start before 17:00.
    assert 'data-slot="14:15"' in html
    assert 'data-slot="14:30"' not in html


def test_the_free_starts_leave_out_the_rooms_and_the_monitors_bookings(
    admin: User,
    staff: dict[str, User],
    clinic: Any,
    room: Any,
    dosing_pathway: Any,
    tz: zoneinfo.ZoneInfo,
    client_for: Callable[[User | None], Client],
) -> None:
    day = _next(2, tz)
    other_pathway = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other_pathway)
    other_room = RoomFactory(clinic=clinic, name="Other Room")
    # The monitor is busy 09:00-11:45 in another room.
    _book(admin, staff, other_pathway, other_room, dt.datetime.combine(day, dt.time(9), tzinfo=tz))
    url = reverse("booking_create", args=[dosing_pathway.public_id])
    query = f"?room={room.public_id}&date={day.isoformat()}&monitor={staff[Role.MONITOR].public_id}"

    html = client_for(admin).get(url + query).content.decode()
    without_monitor = (
        client_for(admin).get(url + f"?room={room.public_id}&date={day.isoformat()}").content.decode()
    )

    assert 'data-slot="07:00"' in without_monitor
    assert 'data-slot="07:00"' not in html  # would end 09:45, into the monitor's session
    assert 'data-slot="11:45"' in html
    assert 'name="time" value="11:45"' in html
    # Without JavaScript a start is a link that opens the form with it filled in.
    link = re.search(r'href="(\?[^"]*time=11%3A45)"', html)
    assert link is not None
    again = client_for(admin).get(url + link.group(1).replace("&amp;", "&")).content.decode()
    assert 'name="time" value="11:45"' in again
    assert f'name="date" value="{day.isoformat()}"' in again


def test_a_refusal_outside_the_hours_names_them_and_the_next_free_slot(
    admin: User,
    staff: dict[str, User],
    room: Any,
    dosing_pathway: Any,
    tz: zoneinfo.ZoneInfo,
    client_for: Callable[[User | None], Client],
) -> None:
    services.room_set_hours(actor=admin, room=room, hours=WEEKDAYS_9_TO_5)
    saturday = _next(5, tz)
    monday = saturday + dt.timedelta(days=2)
    body = {
        "room": str(room.public_id),
        "prescriber": str(staff[Role.PRESCRIBER].public_id),
        "monitor": str(staff[Role.MONITOR].public_id),
    }
    client = client_for(admin)
    url = reverse("booking_create", args=[dosing_pathway.public_id])

    closed = client.post(url, {**body, "date": saturday.isoformat(), "time": "10:00"})
    late = client.post(url, {**body, "date": monday.isoformat(), "time": "16:00"})

    assert closed.status_code == 400
    text = closed.content.decode()
    assert f"{room.name} is closed on {saturday:%A} {saturday.day} {saturday:%b}." in text
    assert "opens Mon-Fri 09:00-17:00." in text
    assert f"Next free slot: {monday:%a} {monday.day} {monday:%b} 09:00." in text
    # The form kept the day asked for, and shows it is closed.
    assert "The room is closed that day" in text
    assert "is not open for the whole session" in late.content.decode()
    assert f"Next free slot: {monday:%a} {monday.day} {monday:%b} 09:00." in late.content.decode()
    assert not Booking.objects.exists()


def test_a_clash_names_the_next_free_slot(
    admin: User,
    staff: dict[str, User],
    clinic: Any,
    room: Any,
    dosing_pathway: Any,
    tz: zoneinfo.ZoneInfo,
) -> None:
    day = _next(3, tz)
    _book(admin, staff, dosing_pathway, room, dt.datetime.combine(day, dt.time(9), tzinfo=tz))
    other = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other)

    with pytest.raises(ValidationError) as refused:
        _book(admin, staff, other, room, dt.datetime.combine(day, dt.time(10), tzinfo=tz))

    errors = refused.value.error_dict["starts_at"]
    assert [error.code for error in errors] == ["booking_conflict", "next_free_slot"]
    assert " ".join(refused.value.messages).endswith(
        f"opens Mon-Sun 07:00-20:00. Next free slot: {day:%a} {day.day} {day:%b} 11:45."
    )


# --- The API --------------------------------------------------------------------------------------------


def test_the_api_lists_a_rooms_free_starts_for_a_pathway(
    admin: User,
    staff: dict[str, User],
    room: Any,
    dosing_pathway: Any,
    tz: zoneinfo.ZoneInfo,
) -> None:
    day = _next(1, tz)
    _book(admin, staff, dosing_pathway, room, dt.datetime.combine(day, dt.time(7), tzinfo=tz))
    client = APIClient()
    client.force_authenticate(admin)
    url = f"/api/v1/rooms/{room.public_id}/free-slots/"

    response = client.get(url, {"date": day.isoformat(), "pathway": str(dosing_pathway.public_id)})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["minutes"] == 165
    assert body["is_open"] is True
    assert body["opening_hours"] == "Mon-Sun 07:00-20:00"
    assert body["times"][0] == "09:45"  # after the patient's own session 07:00-09:45
    assert body["times"][-1] == "17:15"
    assert dt.datetime.fromisoformat(body["slots"][0]) == dt.datetime.combine(day, dt.time(9, 45), tzinfo=tz)
    assert body["next_free_slot"] == body["slots"][0]
    assert AuditEvent.objects.filter(action__endswith="viewed", data__via="free_slots_api").exists()


def test_the_api_free_starts_need_a_length_and_a_booking_manager(
    staff: dict[str, User], room: Any, tz: zoneinfo.ZoneInfo
) -> None:
    client = APIClient()
    client.force_authenticate(staff[Role.CLINIC_ADMIN])
    url = f"/api/v1/rooms/{room.public_id}/free-slots/"
    assert client.get(url).status_code == 400
    assert client.get(url, {"minutes": 60}).json()["date"] == (_next_open(timezone.localdate())).isoformat()
    monitor_client = APIClient()
    monitor_client.force_authenticate(staff[Role.THERAPIST])
    assert monitor_client.get(url, {"minutes": 60}).status_code == 404


def _next_open(today: dt.date) -> dt.date:
    return today + dt.timedelta(days=1)  # the factory's rooms open every day


# --- The demo clinic ------------------------------------------------------------------------------------


def test_the_demo_calendar_shows_every_kind_of_block(client_for: Callable[[User | None], Client]) -> None:
    from pathways.demo import demo_clinic_load
    from sessions.models import RoomClosure

    demo_clinic_load()
    admin = User.objects.get(email="admin@demo.kaemdr.test")
    closure = RoomClosure.objects.get(reason="Recliner service")
    cancelled = Booking.objects.get(status="cancelled", patient__record_number="HB-1005")
    day = closure.starts_at.astimezone(zoneinfo.ZoneInfo(admin.clinic.time_zone)).date()
    assert cancelled.starts_at.astimezone(zoneinfo.ZoneInfo(admin.clinic.time_zone)).date() == day

    html = (
        client_for(admin).get(reverse("room_calendar") + f"?view=day&day={day.isoformat()}").content.decode()
    )

    assert "Out of service: Recliner service" in html
    assert "cal-state-cancelled" in html
    assert "Harbour Room" in html
    assert "Quiet Room" in html
    # Today's dose being monitored (HB-1004) is in progress; the past, discharged ones are done.
    today = client_for(admin).get(reverse("room_calendar") + "?view=week").content.decode()
    assert '<span class="cal-state">In progress</span>' in today
