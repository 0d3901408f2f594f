"""Booking services: every gate, named conflicts, moves and cancellations, and races on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db import connection
from django.db import transaction
from django.utils import timezone

from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from pathways.models import Stage
from screening.models import Assessment
from sessions.booking import services
from sessions.models import Booking
from sessions.models import ChairTimeSetting

from ..conftest import require_postgres
from ..conftest import sign_in_verified
from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def book(staff: dict[str, Any], pathway: Any, room: Any, starts_at: dt.datetime, **overrides: Any) -> Booking:
    values = {"prescriber": staff[Role.PRESCRIBER], "monitor": staff[Role.MONITOR]}
    values.update(overrides)
    return services.booking_create(
        actor=staff[Role.CLINIC_ADMIN], pathway=pathway, room=room, starts_at=starts_at, **values
    )


def refused_codes(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [e.code or "" for errors in error.error_dict.values() for e in errors]
    return [e.code or "" for e in error.error_list]


def test_a_booking_takes_the_chair_time_of_the_planned_route(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    booking = book(staff, dosing_pathway, room, slot(0, 9))

    assert (booking.agent, booking.route) == ("ketamine", "sublingual")
    assert booking.ends_at - booking.starts_at == dt.timedelta(minutes=30 + 120 + 15)
    event = AuditEvent.objects.get(action="booking.created")
    assert event.data["minutes"] == 165


def test_clinic_chair_time_settings_apply(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    ChairTimeSetting.objects.create(
        clinic=clinic,
        agent="ketamine",
        route="sublingual",
        dosing_minutes=20,
        monitoring_minutes=60,
        turnover_minutes=10,
    )
    booking = book(staff, dosing_pathway, room, slot(0, 9))
    assert booking.ends_at - booking.starts_at == dt.timedelta(minutes=90)


def test_a_refused_booking_names_the_booking_it_clashes_with(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    book(staff, dosing_pathway, room, slot(0, 9))
    other = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other)
    second_monitor = UserFactory(clinic=clinic, role=Role.MONITOR)

    with pytest.raises(ValidationError) as refused:
        book(staff, other, room, slot(0, 10), monitor=second_monitor)

    message = refused.value.message_dict["starts_at"][0]
    assert message.startswith(f"The room is booked for {dosing_pathway.patient.full_name}: Harbour Room, ")
    assert message.endswith("09:00-11:45.")
    assert Booking.objects.count() == 1


def test_the_same_patient_and_the_same_monitor_are_never_double_booked(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    book(staff, dosing_pathway, room, slot(0, 9))
    other_room = RoomFactory(clinic=clinic, name="Garden Room")
    with pytest.raises(ValidationError, match="The patient is already booked"):
        book(
            staff,
            dosing_pathway,
            other_room,
            slot(0, 10),
            monitor=UserFactory(clinic=clinic, role=Role.MONITOR),
        )

    other = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other)
    with pytest.raises(
        ValidationError, match=f"The monitor {staff[Role.MONITOR].full_name} is already booked"
    ):
        book(staff, other, other_room, slot(0, 10))


def test_back_to_back_bookings_are_allowed(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    first = book(staff, dosing_pathway, room, slot(0, 9))
    other = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other)
    second = book(staff, other, room, first.ends_at)
    assert second.starts_at == first.ends_at


def test_a_clashing_booking_is_refused_in_the_same_queries_however_many_bookings_there_are(
    staff: dict[str, Any],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
    clinic: Any,
    django_assert_num_queries: Any,
) -> None:
    """Nine queries: the savepoint; the pathway locked, then its alerts that stop dosing
    (`sessions.gates`); the room locked; the pathway with its screening versions (one query, the
    screening read once for the plan and the gate); the chair time; one statement for the time (the
    opening hours, the clashing bookings, the room's closures and, for the next free slot the refusal
    names, the four weeks' bookings of the room, patient and monitor: `booking_time_reads`); the
    savepoint rolled back and released."""
    book(staff, dosing_pathway, room, slot(0, 9))
    other = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other)
    other_monitor = UserFactory(clinic=clinic, role=Role.MONITOR)
    other_room = RoomFactory(clinic=clinic, name="Garden Room")

    def refuse() -> None:
        with pytest.raises(ValidationError, match="The room is booked for"):
            book(staff, other, room, slot(0, 10), monitor=other_monitor)

    with django_assert_num_queries(9):
        refuse()
    for day in range(1, 16):
        book(staff, dosing_pathway, room, slot(day, 9))
        book(staff, other, other_room, slot(day, 9), monitor=other_monitor)
    assert Booking.objects.count() == 31
    with django_assert_num_queries(9):
        refuse()


def test_the_gates_are_all_reported_in_their_order(
    staff: dict[str, Any], clinic: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    pathway = PathwayFactory(clinic=clinic, stage=Stage.ASSESSMENT, prescriber=staff[Role.PRESCRIBER])
    room.is_active, room.has_bp_monitor = False, False
    room.save()

    with pytest.raises(ValidationError) as refused:
        book(staff, pathway, room, slot(0, 9))

    assert [(e.code, e.message) for e in refused.value.error_list] == [
        (
            "wrong_stage",
            "The pathway is in assessment: sign an eligible screening and move it to preparation before "
            "you book a dosing session.",
        ),
        ("screening_gate", "No screening yet: complete and sign an assessment first."),
        ("room_inactive", "Harbour Room is not in use."),
        ("room_bp_monitor", "Harbour Room has no blood-pressure monitor."),
    ]


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("no_screening", "screening_gate"),
        ("expired_screening", "screening_gate"),
        ("wrong_stage", "wrong_stage"),
        ("esketamine_without_rems", "rems_enrolment_missing"),
        ("esketamine_without_oximeter", "room_pulse_oximeter"),
        ("inactive_room", "room_inactive"),
    ],
)
def test_gates_before_any_time_is_booked(
    setup: str, code: str, staff: dict[str, Any], clinic: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    pathway = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    screening = None if setup == "no_screening" else SignedScreeningFactory(pathway=pathway)
    if setup == "expired_screening":
        Assessment.objects.filter(pk=screening.pk).update(
            valid_until=timezone.now() - dt.timedelta(seconds=1)
        )
    if setup == "wrong_stage":
        pathway.stage = Stage.ASSESSMENT
        pathway.save()
    if setup.startswith("esketamine"):
        Assessment.objects.filter(pk=screening.pk).update(agent="esketamine", route="intranasal")
    if setup == "esketamine_without_oximeter":
        from sessions.models import RemsEnrolment

        RemsEnrolment.objects.create(
            patient=pathway.patient, enrolled_on=timezone.localdate(), recorded_by=staff[Role.PRESCRIBER]
        )
        room.has_pulse_oximeter = False
        room.save()
    if setup == "inactive_room":
        room.is_active = False
        room.save()
    before = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        book(staff, pathway, room, slot(0, 9))

    assert code in refused_codes(refused.value)
    assert not Booking.objects.exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    ("hour", "minute", "code"),
    [(6, 30, "outside_opening_hours"), (18, 0, "outside_opening_hours")],
)
def test_bookings_stay_inside_opening_hours(
    hour: int,
    minute: int,
    code: str,
    staff: dict[str, Any],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
) -> None:
    with pytest.raises(ValidationError) as refused:
        book(staff, dosing_pathway, room, slot(0, hour, minute))
    assert refused_codes(refused.value) == [code]


def test_no_booking_in_the_past_or_in_an_out_of_service_period(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    with pytest.raises(ValidationError, match="This time has passed"):
        book(staff, dosing_pathway, room, timezone.now() - dt.timedelta(hours=1))
    services.room_closure_add(
        actor=staff[Role.CLINIC_ADMIN],
        room=room,
        starts_at=slot(0, 8),
        ends_at=slot(0, 12),
        reason="Recliner repair",
    )
    with pytest.raises(ValidationError, match=r"The room is out of service \(Recliner repair\)"):
        book(staff, dosing_pathway, room, slot(0, 11))


def test_a_closure_over_a_live_booking_is_refused_and_names_it(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    book(staff, dosing_pathway, room, slot(0, 9))
    with pytest.raises(ValidationError, match="Move or cancel it first"):
        services.room_closure_add(
            actor=staff[Role.CLINIC_ADMIN],
            room=room,
            starts_at=slot(0, 8),
            ends_at=slot(0, 10),
            reason="Cleaning",
        )


def test_cancelling_frees_the_slot(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    first = book(staff, dosing_pathway, room, slot(0, 9))
    with pytest.raises(ValidationError, match="Give the reason"):
        services.booking_cancel(actor=staff[Role.CLINIC_ADMIN], booking=first, reason=" ")
    services.booking_cancel(actor=staff[Role.CLINIC_ADMIN], booking=first, reason="Patient unwell")
    again = book(staff, dosing_pathway, room, slot(0, 9))
    assert again.status == "booked"


def test_a_move_keeps_its_length_and_is_checked_again(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    booking = book(staff, dosing_pathway, room, slot(0, 9))
    length = booking.ends_at - booking.starts_at
    moved = services.booking_move(actor=staff[Role.CLINIC_ADMIN], booking=booking, starts_at=slot(1, 13))
    assert (moved.starts_at, moved.ends_at - moved.starts_at) == (slot(1, 13), length)

    other = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=other)
    blocker = book(staff, other, room, slot(2, 9), monitor=UserFactory(clinic=clinic, role=Role.MONITOR))
    with pytest.raises(ValidationError, match="The room is booked for"):
        services.booking_move(actor=staff[Role.CLINIC_ADMIN], booking=moved, starts_at=slot(2, 10))
    moved.refresh_from_db()
    assert moved.starts_at == slot(1, 13)
    assert blocker.starts_at == slot(2, 9)


def test_pre_visit_checks_need_the_instructions_first(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    booking = book(staff, dosing_pathway, room, slot(0, 9))
    with pytest.raises(ValidationError, match="Give the fasting instructions before confirming"):
        services.booking_checks_update(actor=staff[Role.MONITOR], booking=booking, fasting_confirmed=True)
    services.booking_checks_update(
        actor=staff[Role.MONITOR],
        booking=booking,
        fasting_instructions_given=True,
        fasting_confirmed=True,
        escort_confirmed=True,
    )
    booking.refresh_from_db()
    assert (booking.fasting_confirmed, booking.escort_confirmed) == (True, True)


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.THERAPIST, Role.MONITOR])
def test_only_clinic_admins_book(
    role: str, staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    with pytest.raises(NotFoundOrForbidden):
        services.booking_create(
            actor=staff[role],
            pathway=dosing_pathway,
            room=room,
            starts_at=slot(0, 9),
            prescriber=staff[Role.PRESCRIBER],
            monitor=staff[Role.MONITOR],
        )
    assert not Booking.objects.exists()


def test_another_clinics_room_cannot_be_booked(
    staff: dict[str, Any], dosing_pathway: Any, slot: Callable[..., dt.datetime], other_clinic: Any
) -> None:
    with pytest.raises(NotFoundOrForbidden):
        book(staff, dosing_pathway, RoomFactory(clinic=other_clinic), slot(0, 9))


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_overlapping_rooms_even_without_the_service(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    require_postgres()
    first = book(staff, dosing_pathway, room, slot(0, 9))
    other = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    with pytest.raises(IntegrityError, match="booking_room_no_overlap"), transaction.atomic():
        Booking.objects.create(
            clinic=clinic,
            pathway=other,
            patient=other.patient,
            room=room,
            starts_at=slot(0, 10),
            ends_at=slot(0, 11),
            agent="ketamine",
            route="sublingual",
            prescriber=staff[Role.PRESCRIBER],
            monitor=UserFactory(clinic=clinic, role=Role.MONITOR),
            booked_by=staff[Role.CLINIC_ADMIN],
        )
    services.booking_cancel(actor=staff[Role.CLINIC_ADMIN], booking=first, reason="Freed")
    Booking.objects.create(  # a cancelled booking no longer holds the room
        clinic=clinic,
        pathway=other,
        patient=other.patient,
        room=room,
        starts_at=slot(0, 10),
        ends_at=slot(0, 11),
        agent="ketamine",
        route="sublingual",
        prescriber=staff[Role.PRESCRIBER],
        monitor=UserFactory(clinic=clinic, role=Role.MONITOR),
        booked_by=staff[Role.CLINIC_ADMIN],
    )


def _race(count: int, attempt: Callable[[int], None]) -> list[str]:
    barrier = threading.Barrier(count)
    outcomes: list[str] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            attempt(index)
            outcomes.append("booked")
        except ValidationError as error:
            outcomes.append(" ".join(error.messages))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_many_requests_racing_for_one_room_slot_book_it_once(
    staff: dict[str, Any], room: Any, slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    require_postgres()
    racers = []
    for _ in range(8):
        pathway = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
        SignedScreeningFactory(pathway=pathway)
        racers.append((pathway, UserFactory(clinic=clinic, role=Role.MONITOR)))

    outcomes = _race(8, lambda i: book(staff, racers[i][0], room, slot(0, 9), monitor=racers[i][1]))

    assert outcomes.count("booked") == 1
    assert all(o.startswith("The room is booked for") for o in outcomes if o != "booked")
    assert Booking.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("shared", ["patient", "monitor"])
def test_racing_bookings_of_one_patient_or_monitor_in_different_rooms_book_once(
    shared: str, staff: dict[str, Any], slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    require_postgres()
    rooms = [RoomFactory(clinic=clinic) for _ in range(6)]
    common = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    SignedScreeningFactory(pathway=common)
    racers = []
    for _ in range(6):
        pathway = common
        if shared == "monitor":
            pathway = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
            SignedScreeningFactory(pathway=pathway)
        monitor = (
            staff[Role.MONITOR] if shared == "monitor" else UserFactory(clinic=clinic, role=Role.MONITOR)
        )
        racers.append((pathway, monitor))

    outcomes = _race(6, lambda i: book(staff, racers[i][0], rooms[i], slot(0, 9), monitor=racers[i][1]))

    assert outcomes.count("booked") == 1, outcomes
    assert Booking.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_page_requests_for_one_slot_book_it_once(
    staff: dict[str, Any], room: Any, slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    """The same race through the whole request stack: six signed-in admins post the booking page at once."""
    from django.test import Client
    from django.urls import reverse

    require_postgres()
    pathways = []
    for _ in range(6):
        pathway = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
        SignedScreeningFactory(pathway=pathway)
        pathways.append((pathway, UserFactory(clinic=clinic, role=Role.MONITOR)))
    clients = []
    for _ in range(6):
        client = Client()
        sign_in_verified(client, staff[Role.CLINIC_ADMIN])
        clients.append(client)
    barrier = threading.Barrier(6)
    statuses: list[tuple[int, str]] = []

    def post(index: int) -> None:
        pathway, monitor = pathways[index]
        barrier.wait()
        try:
            response = clients[index].post(
                reverse("booking_create", args=[pathway.public_id]),
                {
                    "room": str(room.public_id),
                    "date": slot(0).date().isoformat(),
                    "time": "09:00",
                    "prescriber": str(staff[Role.PRESCRIBER].public_id),
                    "monitor": str(monitor.public_id),
                },
            )
            statuses.append((response.status_code, response.content.decode()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(code for code, _ in statuses) == [302, 400, 400, 400, 400, 400]
    assert all("The room is booked for" in body for code, body in statuses if code == 400)
    assert Booking.objects.count() == 1
