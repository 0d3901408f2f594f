"""Staff rotas: the rota services, the booking service's refusals (through the service, the booking
page and the API), the rota pages and API for each role, the calendar's "who is on" row, and what the
rota costs the clash check (no statement of its own)."""

from __future__ import annotations

import datetime as dt
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
from django.utils.html import escape
from rest_framework.test import APIClient

from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from sessions.booking import rota_services
from sessions.booking import services
from sessions.models import Booking
from sessions.models import StaffLeave
from sessions.models import StaffWorkingHours

from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db

EVERY_DAY_9_TO_1 = [(day, dt.time(9), dt.time(13)) for day in range(7)]


def book(
    staff: dict[str, User], pathway: Any, room: Any, starts_at: dt.datetime, **overrides: Any
) -> Booking:
    values = {"prescriber": staff[Role.PRESCRIBER], "monitor": staff[Role.MONITOR]}
    values.update(overrides)
    return services.booking_create(
        actor=staff[Role.CLINIC_ADMIN], pathway=pathway, room=room, starts_at=starts_at, **values
    )


def codes(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [e.code or "" for errors in error.error_dict.values() for e in errors]
    return [e.code or "" for e in error.error_list]


def set_hours(staff: dict[str, User], member: User, hours: list[tuple[int, dt.time, dt.time]]) -> None:
    rota_services.staff_hours_set(actor=staff[Role.CLINIC_ADMIN], staff=member, hours=hours)


def add_leave(staff: dict[str, User], member: User, starts_at: dt.datetime, ends_at: dt.datetime) -> Any:
    return rota_services.staff_leave_add(
        actor=staff[Role.CLINIC_ADMIN], staff=member, starts_at=starts_at, ends_at=ends_at, reason="Holiday"
    )


# --- The rota services ---------------------------------------------------------------------------


def test_hours_replace_the_pattern_and_are_audited_without_free_text(staff: dict[str, User]) -> None:
    monitor = staff[Role.MONITOR]
    set_hours(staff, monitor, EVERY_DAY_9_TO_1)
    set_hours(staff, monitor, [(0, dt.time(8), dt.time(12)), (0, dt.time(13), dt.time(17))])

    rows = list(StaffWorkingHours.objects.filter(staff=monitor).values_list("weekday", "starts", "ends"))
    assert rows == [(0, dt.time(8), dt.time(12)), (0, dt.time(13), dt.time(17))]
    event = AuditEvent.objects.filter(action="rota.hours_set").latest("id")
    assert (event.target_public_id, event.data) == (monitor.public_id, {"days": [0], "spans": 2})


def test_overlapping_or_backwards_hours_are_refused_and_nothing_is_written(staff: dict[str, User]) -> None:
    monitor = staff[Role.MONITOR]
    set_hours(staff, monitor, EVERY_DAY_9_TO_1)
    for hours in (
        [(1, dt.time(8), dt.time(12)), (1, dt.time(11), dt.time(14))],
        [(2, dt.time(12), dt.time(9))],
        [(3, dt.time(6), dt.time(7)), (3, dt.time(8), dt.time(9)), (3, dt.time(10), dt.time(11))],
    ):
        with pytest.raises(ValidationError) as refused:
            set_hours(staff, monitor, hours)
        assert codes(refused.value) == ["hours_order"]
    assert StaffWorkingHours.objects.filter(staff=monitor).count() == 7


def test_rotas_are_kept_by_clinic_admins_of_the_clinic_only(
    staff: dict[str, User], other_clinic: Any
) -> None:
    outsider = UserFactory(clinic=other_clinic, role=Role.CLINIC_ADMIN)
    for actor in (staff[Role.PRESCRIBER], staff[Role.MONITOR], staff[Role.THERAPIST], outsider):
        with pytest.raises(NotFoundOrForbidden):
            rota_services.staff_hours_set(actor=actor, staff=staff[Role.MONITOR], hours=EVERY_DAY_9_TO_1)
    with pytest.raises(ValidationError) as refused:  # an admin keeps no rota
        set_hours(staff, staff[Role.CLINIC_ADMIN], EVERY_DAY_9_TO_1)
    assert codes(refused.value) == ["invalid_role"]
    assert not StaffWorkingHours.objects.exists()


def test_leave_is_checked_for_order_length_overlap_and_the_past(staff: dict[str, User]) -> None:
    monitor = staff[Role.MONITOR]
    soon = timezone.now() + dt.timedelta(days=3)
    cases = [
        (soon, soon, "order"),
        (soon, soon + dt.timedelta(days=400), "out_of_range"),
        (soon - dt.timedelta(days=10), soon - dt.timedelta(days=5), "past"),
        (soon + dt.timedelta(days=900), soon + dt.timedelta(days=901), "too_far_ahead"),
    ]
    for starts_at, ends_at, code in cases:
        with pytest.raises(ValidationError) as refused:
            add_leave(staff, monitor, starts_at, ends_at)
        assert codes(refused.value) == [code]
    add_leave(staff, monitor, soon, soon + dt.timedelta(days=2))
    with pytest.raises(ValidationError) as overlapping:
        add_leave(staff, monitor, soon + dt.timedelta(days=1), soon + dt.timedelta(days=4))
    assert codes(overlapping.value) == ["leave_overlap"]
    with pytest.raises(ValidationError) as long_reason:
        rota_services.staff_leave_add(
            actor=staff[Role.CLINIC_ADMIN],
            staff=monitor,
            starts_at=soon + dt.timedelta(days=10),
            ends_at=soon + dt.timedelta(days=11),
            reason="x" * 201,
        )
    assert codes(long_reason.value) == ["too_long"]
    assert StaffLeave.objects.count() == 1


def test_leave_over_booked_sessions_is_added_and_names_them(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    booking = book(staff, dosing_pathway, room, slot(1, 9))
    added = add_leave(staff, staff[Role.MONITOR], slot(1, 0), slot(2, 0))

    assert added.affected == [booking]
    assert Booking.objects.get(pk=booking.pk).status == "booked"
    event = AuditEvent.objects.get(action="rota.leave_added")
    assert event.data == {"staff": str(staff[Role.MONITOR].public_id), "bookings_affected": 1}
    assert "Holiday" not in str(event.data)


def test_removing_leave_frees_the_member_again(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    added = add_leave(staff, staff[Role.MONITOR], slot(1, 0), slot(2, 0))
    rota_services.staff_leave_remove(actor=staff[Role.CLINIC_ADMIN], leave=added.leave)

    assert book(staff, dosing_pathway, room, slot(1, 9)).pk
    assert AuditEvent.objects.filter(action="rota.leave_removed").count() == 1


# --- The booking service respects the rota ------------------------------------------------------


def test_staff_without_a_rota_are_always_on(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    set_hours(staff, UserFactory(clinic=dosing_pathway.clinic, role=Role.MONITOR), EVERY_DAY_9_TO_1)
    assert book(staff, dosing_pathway, room, slot(0, 7)).pk  # the booking's own staff keep no rota


def test_a_booking_outside_the_monitors_hours_is_refused_naming_when_they_work(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    monitor = staff[Role.MONITOR]
    set_hours(
        staff, monitor, [(day, dt.time(8), dt.time(16)) for day in range(5)] + [(5, dt.time(8), dt.time(12))]
    )
    with pytest.raises(ValidationError) as refused:
        book(staff, dosing_pathway, room, slot(0, 14))  # sublingual: 165 minutes, to 16:45

    assert codes(refused.value) == ["staff_off_rota"]
    (message,) = refused.value.messages
    assert message.startswith(f"The monitor {monitor.full_name} works Mon-Fri 08:00-16:00; Sat 08:00-12:00:")
    assert not Booking.objects.exists()
    weekday = next(day for day in range(7) if slot(day).weekday() < 5)
    assert book(staff, dosing_pathway, room, slot(weekday, 13)).pk  # to 15:45


def test_a_booking_on_the_prescribers_leave_is_refused_with_when_it_ends(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    prescriber = staff[Role.PRESCRIBER]
    add_leave(staff, prescriber, slot(0, 0), slot(3, 0))
    with pytest.raises(ValidationError) as refused:
        book(staff, dosing_pathway, room, slot(1, 9))

    assert codes(refused.value) == ["staff_on_leave"]
    tz = zoneinfo.ZoneInfo(dosing_pathway.clinic.time_zone)
    until = slot(3, 0).astimezone(tz)
    assert f"The prescriber {prescriber.full_name} is on leave" in refused.value.messages[0]
    assert f"until {until:%a %-d %b %Y} 00:00" in refused.value.messages[0]


def test_both_staff_are_named_when_both_are_off(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    set_hours(staff, staff[Role.MONITOR], EVERY_DAY_9_TO_1)
    add_leave(staff, staff[Role.PRESCRIBER], slot(0, 0), slot(1, 0))
    with pytest.raises(ValidationError) as refused:
        book(staff, dosing_pathway, room, slot(0, 14))
    assert codes(refused.value) == ["staff_off_rota", "staff_on_leave"]


def test_a_move_onto_the_monitors_leave_is_refused(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    booking = book(staff, dosing_pathway, room, slot(0, 9))
    add_leave(staff, staff[Role.MONITOR], slot(2, 0), slot(3, 0))
    with pytest.raises(ValidationError) as refused:
        services.booking_move(actor=staff[Role.CLINIC_ADMIN], booking=booking, starts_at=slot(2, 9))

    assert codes(refused.value) == ["staff_on_leave"]
    assert Booking.objects.get(pk=booking.pk).starts_at == slot(0, 9)
    assert services.booking_move(actor=staff[Role.CLINIC_ADMIN], booking=booking, starts_at=slot(1, 9)).pk


def test_the_rota_costs_the_clash_check_no_statement(
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
    django_assert_num_queries: Any,
) -> None:
    """A booking refused for the rota, a booking refused for a clash, and a booking made, each in the
    statements they took before rotas (`test_services`: nine for a refused clash), the staff's rota read
    in the time check's one statement."""
    set_hours(staff, staff[Role.MONITOR], EVERY_DAY_9_TO_1)
    add_leave(staff, staff[Role.PRESCRIBER], slot(5, 0), slot(6, 0))
    book(staff, dosing_pathway, room, slot(0, 9))
    other = PathwayFactory(clinic=dosing_pathway.clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other)

    with django_assert_num_queries(9), pytest.raises(ValidationError, match="The room is booked for"):
        book(staff, other, room, slot(0, 10))
    with django_assert_num_queries(9), pytest.raises(ValidationError, match="works"):
        book(staff, other, room, slot(1, 14))
    with CaptureQueriesContext(connection) as made:
        book(staff, other, room, slot(2, 9))
    with CaptureQueriesContext(connection) as made_again:
        book(staff, other, room, slot(3, 9))
    assert len(made) == len(made_again)
    assert sum("dosing_staffworkinghours" in q["sql"] for q in made.captured_queries) == 1
    assert sum("dosing_staffleave" in q["sql"] for q in made.captured_queries) == 1  # the same statement


# --- The booking page and the API refuse too ----------------------------------------------------


def test_the_booking_page_refuses_a_time_on_leave_and_keeps_what_was_typed(
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    monitor = staff[Role.MONITOR]
    add_leave(staff, monitor, slot(1, 0), slot(2, 0))
    response = client_for(staff[Role.CLINIC_ADMIN]).post(
        reverse("booking_create", args=[dosing_pathway.public_id]),
        {
            "room": str(room.public_id),
            "date": slot(1).date().isoformat(),
            "time": "10:15",
            "prescriber": str(staff[Role.PRESCRIBER].public_id),
            "monitor": str(monitor.public_id),
        },
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert f"The monitor {escape(monitor.full_name)} is on leave" in html
    assert 'value="10:15"' in html
    assert not Booking.objects.exists()


def test_the_api_refuses_a_booking_and_a_move_off_the_rota(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    set_hours(staff, staff[Role.MONITOR], EVERY_DAY_9_TO_1)
    api = APIClient()
    api.force_authenticate(staff[Role.CLINIC_ADMIN])
    body = {
        "pathway": str(dosing_pathway.public_id),
        "room": str(room.public_id),
        "prescriber": str(staff[Role.PRESCRIBER].public_id),
        "monitor": str(staff[Role.MONITOR].public_id),
    }
    refused = api.post("/api/v1/bookings/", {**body, "starts_at": slot(0, 12).isoformat()}, format="json")
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert (error["field"], error["code"]) == ("starts_at", "staff_off_rota")
    assert error["source"]
    created = api.post("/api/v1/bookings/", {**body, "starts_at": slot(0, 9).isoformat()}, format="json")
    assert created.status_code == 201
    moved = api.post(
        f"/api/v1/bookings/{created.json()['id']}/move/",
        {"starts_at": slot(1, 11).isoformat()},
        format="json",
    )
    assert moved.status_code == 400
    assert moved.json()["errors"][0]["code"] == "staff_off_rota"


# --- The rota pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR])
def test_the_rota_pages_are_404_to_other_roles(
    role: str, staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(staff[role])
    member = staff[Role.MONITOR]
    assert client.get(reverse("rota")).status_code == 404
    assert client.get(reverse("rota_staff", args=[member.public_id])).status_code == 404
    answer = client.post(
        reverse("rota_staff", args=[member.public_id]), {"action": "hours", "hours-starts_0_1": "09:00"}
    )
    assert answer.status_code == 404
    assert not StaffWorkingHours.objects.exists()


def test_another_clinics_admin_gets_404(
    staff: dict[str, User], other_clinic: Any, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(UserFactory(clinic=other_clinic, role=Role.CLINIC_ADMIN))
    assert client.get(reverse("rota_staff", args=[staff[Role.MONITOR].public_id])).status_code == 404
    assert escape(staff[Role.MONITOR].full_name) not in client.get(reverse("rota")).content.decode()


def test_the_admin_sets_hours_on_the_page_and_a_refusal_keeps_the_typed_times(
    staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(staff[Role.CLINIC_ADMIN])
    member = staff[Role.MONITOR]
    url = reverse("rota_staff", args=[member.public_id])
    refused = client.post(url, {"action": "hours", "hours-starts_0_1": "16:00", "hours-ends_0_1": "08:00"})
    assert refused.status_code == 400
    assert 'value="16:00"' in refused.content.decode()
    assert "The end must be after the start." in refused.content.decode()

    saved = client.post(
        url,
        {
            "action": "hours",
            "hours-starts_0_1": "08:00",
            "hours-ends_0_1": "12:00",
            "hours-starts_0_2": "13:00",
            "hours-ends_0_2": "17:00",
            "hours-starts_4_1": "09:00",
            "hours-ends_4_1": "15:00",
        },
    )
    assert saved.status_code == 302
    page = client.get(reverse("rota")).content.decode()
    assert "Mon 08:00-12:00, 13:00-17:00; Fri 09:00-15:00" in page


def test_the_admin_adds_leave_over_a_booking_and_is_warned_then_removes_it(
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    book(staff, dosing_pathway, room, slot(1, 9))
    client = client_for(staff[Role.CLINIC_ADMIN])
    member = staff[Role.MONITOR]
    url = reverse("rota_staff", args=[member.public_id])
    day = slot(1).date()

    added = client.post(
        url,
        {"action": "leave", "leave-start_date": day.isoformat(), "leave-end_date": day.isoformat()},
        follow=True,
    )
    html = added.content.decode()
    assert f"The leave of {escape(member.full_name)} is added." in html
    assert "1 booked session is during this leave" in html
    assert f"{slot(1, 9):%a %-d %b} 09:00-11:45 in {room.name} (monitor)" in html
    assert escape(dosing_pathway.patient.full_name) not in html  # staff data: the warning names no patient
    leave = StaffLeave.objects.get()
    assert (leave.starts_at, leave.ends_at) == (slot(1, 0), slot(2, 0))

    other_member_leave = add_leave(staff, staff[Role.PRESCRIBER], slot(20, 0), slot(21, 0)).leave
    wrong = client.post(url, {"action": "remove_leave", "leave": str(other_member_leave.public_id)})
    assert wrong.status_code == 404
    removed = client.post(url, {"action": "remove_leave", "leave": str(leave.public_id)})
    assert removed.status_code == 302
    assert list(StaffLeave.objects.all()) == [other_member_leave]


def test_a_refused_leave_keeps_the_typed_dates(
    staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(staff[Role.CLINIC_ADMIN])
    url = reverse("rota_staff", args=[staff[Role.MONITOR].public_id])
    refused = client.post(
        url,
        {
            "action": "leave",
            "leave-start_date": "2020-03-02",
            "leave-end_date": "2020-03-06",
            "leave-reason": "Conference",
        },
    )
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "This leave has already ended" in html
    assert 'value="2020-03-02"' in html
    assert 'value="Conference"' in html


# --- The rota API --------------------------------------------------------------------------------


def test_the_rota_api_lists_sets_hours_adds_and_removes_leave(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    booking = book(staff, dosing_pathway, room, slot(1, 9))
    api = APIClient()
    api.force_authenticate(staff[Role.CLINIC_ADMIN])
    member = staff[Role.MONITOR]

    hours = api.put(
        f"/api/v1/rota/{member.public_id}/hours/",
        [
            {"weekday": 0, "starts": "08:00", "ends": "16:00"},
            {"weekday": 1, "starts": "08:00", "ends": "16:00"},
        ],
        format="json",
    )
    assert hours.status_code == 200
    assert hours.json()["hours_text"] == "Mon-Tue 08:00-16:00"
    overlapping = api.put(
        f"/api/v1/rota/{member.public_id}/hours/",
        [
            {"weekday": 0, "starts": "08:00", "ends": "16:00"},
            {"weekday": 0, "starts": "15:00", "ends": "17:00"},
        ],
        format="json",
    )
    assert overlapping.status_code == 400
    assert overlapping.json()["errors"][0]["code"] == "hours_order"

    added = api.post(
        "/api/v1/rota-leave/",
        {
            "staff": str(member.public_id),
            "starts_at": slot(1, 0).isoformat(),
            "ends_at": slot(2, 0).isoformat(),
            "reason": "Annual leave",
        },
        format="json",
    )
    assert added.status_code == 201
    assert [b["id"] for b in added.json()["affected_bookings"]] == [str(booking.public_id)]
    listed = api.get("/api/v1/rota/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    (row,) = [r for r in rows if r["id"] == str(member.public_id)]
    assert (row["keeps_rota"], len(row["leave"])) == (True, 1)
    leave_id = added.json()["leave"]["id"]
    assert api.get(f"/api/v1/rota-leave/{leave_id}/").json()["reason"] == "Annual leave"
    assert api.delete(f"/api/v1/rota-leave/{leave_id}/").status_code == 204
    assert not StaffLeave.objects.exists()


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR])
def test_the_rota_api_is_404_to_other_roles(role: str, staff: dict[str, User]) -> None:
    leave = add_leave(
        staff,
        staff[Role.THERAPIST],
        timezone.now() + dt.timedelta(days=5),
        timezone.now() + dt.timedelta(days=6),
    ).leave
    api = APIClient()
    api.force_authenticate(staff[role])
    member = staff[Role.MONITOR]
    assert api.get("/api/v1/rota/").status_code == 404
    assert api.get(f"/api/v1/rota/{member.public_id}/").status_code == 404
    assert api.put(f"/api/v1/rota/{member.public_id}/hours/", [], format="json").status_code == 404
    assert api.delete(f"/api/v1/rota-leave/{leave.public_id}/").status_code == 404
    assert StaffLeave.objects.count() == 1


# --- The calendar shows who is on ----------------------------------------------------------------


def test_the_calendar_shows_who_is_on_each_day_and_who_is_on_leave(
    staff: dict[str, User], room: Any, clinic: Any, client_for: Callable[[User | None], Client]
) -> None:
    monitor, prescriber = staff[Role.MONITOR], staff[Role.PRESCRIBER]
    set_hours(staff, monitor, [(day, dt.time(8), dt.time(16)) for day in range(5)])
    set_hours(staff, prescriber, [(day, dt.time(9), dt.time(17)) for day in range(7)])
    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    today = timezone.localdate()
    monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7)
    wednesday = monday + dt.timedelta(days=2)
    add_leave(
        staff,
        monitor,
        dt.datetime.combine(wednesday, dt.time.min, tzinfo=tz),
        dt.datetime.combine(wednesday + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )
    add_leave(
        staff,
        prescriber,
        dt.datetime.combine(monday, dt.time(12), tzinfo=tz),
        dt.datetime.combine(monday, dt.time(14), tzinfo=tz),
    )

    html = client_for(monitor).get(reverse("room_calendar") + f"?week={monday.isoformat()}").content.decode()
    assert "Who is on this week" in html
    monday_row = html.split(f'data-rota-day="{monday.isoformat()}"')[1].split("</li>")[0]
    assert (
        f'{escape(monitor.full_name)} <span class="text-body-secondary">(monitor) 08:00-16:00' in monday_row
    )
    assert "(prescriber) 09:00-12:00, 14:00-17:00" in monday_row
    wednesday_row = html.split(f'data-rota-day="{wednesday.isoformat()}"')[1].split("</li>")[0]
    assert f"on leave: {escape(monitor.full_name)}" in wednesday_row
    saturday_row = html.split(f'data-rota-day="{(monday + dt.timedelta(days=5)).isoformat()}"')[1]
    assert escape(monitor.full_name) not in saturday_row.split("</li>")[0]


def test_a_clinic_without_rotas_shows_no_rota_row(
    staff: dict[str, User], room: Any, client_for: Callable[[User | None], Client]
) -> None:
    html = client_for(staff[Role.CLINIC_ADMIN]).get(reverse("room_calendar")).content.decode()
    assert "Who is on" not in html


def test_a_rota_write_renders_the_cached_calendar_afresh(
    staff: dict[str, User],
    room: Any,
    settings: Any,
    client_for: Callable[[User | None], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PAGE_CACHE_ENABLED = True
    client = client_for(staff[Role.CLINIC_ADMIN])
    assert "Who is on" not in client.get(reverse("room_calendar")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        set_hours(staff, staff[Role.MONITOR], [(day, dt.time(8), dt.time(16)) for day in range(7)])
    assert "Who is on" in client.get(reverse("room_calendar")).content.decode()
