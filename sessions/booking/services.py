"""Writes for dosing rooms and bookings. `booking_create` and `booking_move` are the one door to a
room's calendar: pages, API and tasks all pass through them, so every gate holds everywhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db import transaction
from django.utils import timezone

from kaemdr.audit import audit_record
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.exceptions import Refusal
from kaemdr.exceptions import text_too_long
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import is_active_member
from kaemdr.permissions import require as _require
from pathways.models import Pathway
from pathways.models import Patient
from pathways.models import Stage
from pathways.registry import BOOKING_CHANGED
from pathways.registry import registry
from screening import selectors as screening_selectors
from screening.rules import Agent
from sessions import gates
from sessions.booking import esketamine_rules
from sessions.booking import rota_rules
from sessions.booking import rules
from sessions.booking.selectors import TimeReads
from sessions.booking.selectors import booking_overlaps
from sessions.booking.selectors import booking_time_reads
from sessions.booking.selectors import chair_time_for
from sessions.booking.selectors import dosing_settings_for
from sessions.booking.selectors import esketamine_course
from sessions.booking.selectors import next_free_slot_for
from sessions.booking.selectors import pathway_for_booking
from sessions.models import Booking
from sessions.models import BookingStatus
from sessions.models import DosingSession
from sessions.models import RemsEnrolment
from sessions.models import Room
from sessions.models import RoomClosure
from sessions.models import RoomOpeningHours
from sessions.models import new_calendar_token

BOOKABLE_STAGES = gates.BOOKABLE_STAGES  # preparation and dosing (see `sessions.gates`)


class DosingAuditAction:
    ROOM_CREATED = "room.created"
    ROOM_UPDATED = "room.updated"
    ROOM_HOURS_SET = "room.hours_set"
    ROOM_CLOSED = "room.closure_added"
    ROOM_FEED_ROTATED = "room.feed_rotated"
    REMS_ENROLLED = "rems.enrolment_recorded"
    BOOKED = "booking.created"
    MOVED = "booking.moved"
    CANCELLED = "booking.cancelled"
    CHECKS_UPDATED = "booking.checks_updated"
    VIEWED = "booking.viewed"


# --- Rooms ------------------------------------------------------------------------------------------

ROOM_FIELDS = ("name", "has_bp_monitor", "has_pulse_oximeter", "has_recliner", "is_active")


@transaction.atomic
def room_save(*, actor: User, room: Room | None = None, **fields: Any) -> Room:
    """Create a room (when `room` is None) or change one. Clinic admins only. Taking a room out of
    use revokes its calendar feed's address (a new token), so putting it back in use later does not
    revive the old address."""
    _require(actor, Capability.ROOM_MANAGE, room.clinic_id if room else None)
    unknown = set(fields) - set(ROOM_FIELDS)
    if unknown:
        raise TypeError(f"Unknown room fields: {sorted(unknown)}")
    creating = room is None
    target = (
        Room(clinic_id=actor.member_clinic_id)
        if room is None
        else Room.objects.select_for_update().get(pk=room.pk)
    )
    was_active = target.is_active
    for name, value in fields.items():
        setattr(target, name, value.strip() if isinstance(value, str) else value)
    feed_rotated = not creating and was_active and not target.is_active
    if feed_rotated:
        target.calendar_token = new_calendar_token()
    if (
        Room.objects.filter(clinic_id=target.clinic_id, name__iexact=target.name)
        .exclude(pk=target.pk)
        .exists()
    ):
        raise ValidationError({"name": ValidationError("Another room has this name.", code="duplicate_name")})
    target.full_clean(exclude=["clinic"], validate_unique=False, validate_constraints=False)
    target.save()
    data: dict[str, Any] = {"fields": sorted(fields)}
    if feed_rotated:
        data["feed_rotated"] = True
    audit_record(
        actor=actor,
        action=DosingAuditAction.ROOM_CREATED if creating else DosingAuditAction.ROOM_UPDATED,
        target_type="dosing.Room",
        target_public_id=target.public_id,
        data=data,
    )
    return target


@transaction.atomic
def room_feed_rotate(*, actor: User, room: Room) -> Room:
    """Give the room's calendar feed a new address (a leaked address, someone who has left): the old
    one answers 404 from this commit on, and every calendar subscribed to it must take the new one.
    Clinic admins only; the audit event names the room, never a token."""
    _require(actor, Capability.ROOM_MANAGE, room.clinic_id)
    room = Room.objects.select_for_update().get(pk=room.pk)
    room.calendar_token = new_calendar_token()
    room.save(update_fields=["calendar_token", "updated_at"])
    audit_record(
        actor=actor,
        action=DosingAuditAction.ROOM_FEED_ROTATED,
        target_type="dosing.Room",
        target_public_id=room.public_id,
    )
    return room


@transaction.atomic
def room_set_hours(*, actor: User, room: Room, hours: list[tuple[int, dt.time, dt.time]]) -> Room:
    """Replace the room's weekly opening hours: (weekday, opens, closes), at most one per day."""
    _require(actor, Capability.ROOM_MANAGE, room.clinic_id)
    room = Room.objects.select_for_update().get(pk=room.pk)
    errors = [
        ValidationError(f"{day}: the room must open before it closes.", code="hours_order")
        for day, opens, closes in hours
        if opens >= closes
    ]
    if len({day for day, _, _ in hours}) != len(hours):
        errors.append(ValidationError("Give each weekday at most once.", code="duplicate_day"))
    if errors:
        raise ValidationError({"hours": errors})
    room.opening_hours.all().delete()
    RoomOpeningHours.objects.bulk_create(
        RoomOpeningHours(room=room, weekday=day, opens=opens, closes=closes)
        for day, opens, closes in sorted(hours)
    )
    audit_record(
        actor=actor,
        action=DosingAuditAction.ROOM_HOURS_SET,
        target_type="dosing.Room",
        target_public_id=room.public_id,
        data={"days": sorted(day for day, _, _ in hours)},
    )
    return room


@transaction.atomic
def room_closure_add(
    *, actor: User, room: Room, starts_at: dt.datetime, ends_at: dt.datetime, reason: str
) -> RoomClosure:
    """Take the room out of service. Live bookings in the period are named and the closure refused,
    so that nobody's session silently loses its room: move or cancel them first."""
    _require(actor, Capability.ROOM_MANAGE, room.clinic_id)
    room = Room.objects.select_for_update().get(pk=room.pk)
    if starts_at >= ends_at:
        raise ValidationError({"ends_at": ValidationError("The end must be after the start.", code="order")})
    if not reason.strip():
        raise ValidationError({"reason": ValidationError("Give the reason.", code="required")})
    too_long = text_too_long(RoomClosure, "reason", reason, "the reason")
    if too_long:
        raise ValidationError({"reason": too_long})
    affected = (
        Booking.objects.filter(booking_overlaps(starts_at, ends_at), room=room)
        .exclude(status=BookingStatus.CANCELLED)
        .select_related("patient")
    )
    if affected:
        tz = actor.zone
        raise ValidationError(
            [
                ValidationError(
                    rules.describe_clash(
                        what=f"Booked for {b.patient.full_name}",
                        starts_at=b.starts_at,
                        ends_at=b.ends_at,
                        room=room.name,
                        tz=tz,
                    )
                    + " Move or cancel it first.",
                    code="closure_conflict",
                )
                for b in affected
            ]
        )
    closure = RoomClosure.objects.create(
        room=room, starts_at=starts_at, ends_at=ends_at, reason=reason.strip()
    )
    audit_record(
        actor=actor,
        action=DosingAuditAction.ROOM_CLOSED,
        target_type="dosing.Room",
        target_public_id=room.public_id,
    )
    return closure


# --- REMS enrolment ------------------------------------------------------------------------------------


REMS_START = dt.date(2019, 3, 5)
"""The day the FDA approved Spravato with its REMS: no enrolment is older."""


@transaction.atomic
def rems_enrolment_record(
    *, actor: User, patient: Patient, enrolled_on: dt.date, reference: str = ""
) -> RemsEnrolment:
    """Record the patient's Spravato REMS enrolment (needed before any esketamine booking)."""
    _require(actor, Capability.REMS_ENROL, patient.clinic_id)
    if enrolled_on > timezone.localdate():
        raise ValidationError({"enrolled_on": ValidationError("This date is in the future.", code="future")})
    if enrolled_on < REMS_START:
        raise ValidationError(
            {
                "enrolled_on": ValidationError(
                    f"The Spravato REMS began on {REMS_START:%-d %B %Y}: check the date.", code="too_early"
                )
            }
        )
    values = {"enrolled_on": enrolled_on, "reference": reference.strip(), "recorded_by": actor}
    # The row's own checks (the reference's length) before writing, so a caller without the page
    # form gets a ValidationError at the field rather than a database error.
    RemsEnrolment(patient=patient, **values).full_clean(
        exclude=["patient", "recorded_by"], validate_unique=False, validate_constraints=False
    )
    enrolment, _ = RemsEnrolment.objects.update_or_create(patient=patient, defaults=values)
    audit_record(
        actor=actor,
        action=DosingAuditAction.REMS_ENROLLED,
        target_type="dosing.RemsEnrolment",
        target_public_id=enrolment.public_id,
        patient_public_id=patient.public_id,
    )
    return enrolment


# --- Esketamine: the label the clinic follows ---------------------------------------------------------


def esketamine_label_of(clinic_id: int) -> str:
    """The esketamine label the clinic follows (one read); a clinic that never chose keeps the US one.

    The label in force when a step is done sets that step's duty: REMS enrolment at booking, the
    monitoring form at signature, the Readiness to Leave checklist at discharge (`esketamine_rules`)."""
    return dosing_settings_for(clinic_id).esketamine_label


def _esketamine_booking_frequency_check(*, booking: Booking, label: str, tz: dt.tzinfo) -> None:
    """Refuse an esketamine booking (new, or moved: `booking.pk` is then its own, left out of the
    count at its old place) that puts more in its course week than the label allows.

    Counted: every dose given and every live booking of the pathway, except bookings of past days that
    never got a dose (they did not happen). Day 1 is the first dose's day, or before any dose the
    earliest booking's; when this booking moves day 1, every week is judged afresh from the new one."""
    today = timezone.now().astimezone(tz).date()
    course = [s for s in esketamine_course(booking.pathway_id, tz=tz) if s.dosed or s.day >= today]
    others = [s for s in course if s.booking_id != booking.pk]
    new_day = booking.starts_at.astimezone(tz).date()
    days = [s.day for s in others] + [new_day]
    dosed = [s.day for s in course if s.dosed]
    day_one = min(dosed) if dosed else min(days)
    day_one_before = min(dosed) if dosed else min((s.day for s in course), default=None)
    problem = esketamine_rules.frequency_problem(
        label, day_one=day_one, days=days, new_day=new_day, every_week=day_one != day_one_before
    )
    if problem is not None:
        raise ValidationError({"starts_at": refusal(problem)})


# --- Bookings ------------------------------------------------------------------------------------------


def _booking_refusals(
    *,
    pathway: Pathway,
    room: Room,
    agent: str,
    screening_refusals: list[str],
    rems_enrolment_required: bool = True,
) -> list[ValidationError]:
    """The gates before any time is looked at: pathway stage, screening, REMS (esketamine under the US
    label: `rems_enrolment_required`), room and equipment.

    `screening_refusals` is the pathway's screening gate (`ScreeningStatus.refusals`) as the caller
    read it: `booking_create` needs the same status for the planned agent and route, so the screening
    is read once, not once for the plan and again for the gate.
    """
    errors: list[ValidationError] = []
    if stage := gates.stage_refusal(pathway, dose=False):
        errors.append(stage)
    for refusal in screening_refusals:
        errors.append(ValidationError(refusal, code="screening_gate"))
    if (
        agent == Agent.ESKETAMINE
        and rems_enrolment_required
        and not RemsEnrolment.objects.filter(patient_id=pathway.patient_id).exists()
    ):
        errors.append(
            ValidationError(
                "Esketamine: record the patient's REMS enrolment before booking.",
                code="rems_enrolment_missing",
            )
        )
    if not room.is_active:
        errors.append(ValidationError(f"{room.name} is not in use.", code="room_inactive"))
    if not room.has_bp_monitor:
        errors.append(ValidationError(f"{room.name} has no blood-pressure monitor.", code="room_bp_monitor"))
    if agent == Agent.ESKETAMINE and not room.has_pulse_oximeter:
        errors.append(
            ValidationError(
                f"{room.name} has no pulse oximeter, which esketamine sessions need: choose a room with one.",
                code="room_pulse_oximeter",
            )
        )
    return errors


def _check_horizon(starts_at: dt.datetime) -> None:
    """Refuse a start beyond the booking horizon, before any arithmetic on it."""
    if starts_at - timezone.now() > rules.BOOKING_HORIZON:
        raise ValidationError(
            {"starts_at": ValidationError("Book within the next two years.", code="too_far_ahead")}
        )


def _check_time(*, actor: User, booking: Booking, room: Room, exclude_booking_id: int | None) -> None:
    """Refuse a time that has passed, one outside the room's opening hours, one its monitor or
    prescriber is not on for (on leave, or off their rota: `rota_rules.rota_refusal`), or one that
    clashes (in this order). Called with the room locked: its hours, closures and bookings, and the
    staff's rota, are read after the lock, in a statement of their own (`booking_time_reads`, which
    with a clash also reads what the next free start is looked for among), so a booking that waited
    for the lock sees what the holder committed (hours changed, a closure or a booking added)."""
    tz = actor.zone
    interval = rules.Interval(booking.starts_at, booking.ends_at)
    if booking.starts_at < timezone.now():
        raise ValidationError({"starts_at": ValidationError("This time has passed.", code="past")})
    reads = booking_time_reads(
        room=room,
        patient_id=booking.patient_id,
        monitor=booking.monitor,
        interval=interval,
        tz=tz,
        from_day=booking.starts_at.astimezone(tz).date(),
        now=timezone.now(),
        exclude_booking_id=exclude_booking_id,
        prescriber_id=booking.prescriber_id,
    )
    hours = reads.hours
    if not rules.within_opening_hours(interval, hours, tz):
        local = booking.starts_at.astimezone(tz)
        minutes = int((booking.ends_at - booking.starts_at).total_seconds() // 60)
        if rules.day_opening(local.date(), hours, tz) is None:
            what = f"{room.name} is closed on {local:%A %-d %b}."
        else:
            what = (
                f"{room.name} is not open for the whole session ({local:%a %-d %b %H:%M}, {minutes} minutes)."
            )
        hint = _hours_and_next_free(
            booking, room=room, hours=hours, busy=reads.busy, tz=tz, exclude_booking_id=exclude_booking_id
        )
        raise ValidationError(
            {
                "starts_at": ValidationError(
                    f"{what} {hint}",
                    code="outside_opening_hours",
                )
            }
        )
    _check_rota(booking, interval=interval, reads=reads, tz=tz)
    if reads.conflicts:
        hint = _hours_and_next_free(
            booking, room=room, hours=hours, busy=reads.busy, tz=tz, exclude_booking_id=exclude_booking_id
        )
        raise ValidationError(
            {
                "starts_at": [ValidationError(c.text, code="booking_conflict") for c in reads.conflicts]
                + [ValidationError(hint, code="next_free_slot")]
            }
        )


def _check_rota(booking: Booking, *, interval: rules.Interval, reads: TimeReads, tz: dt.tzinfo) -> None:
    """Refuse a time the booking's monitor or prescriber is not on for: on leave, or outside their
    working hours (a member with none keeps no rota and is always on). Decided on the rota read with
    the clash check (`booking_time_reads`), so it costs no statement of its own. Both are named, each
    with when they work or until when they are away."""
    problems = [
        problem
        for who, member in (("The monitor", booking.monitor), ("The prescriber", booking.prescriber))
        if (
            problem := rota_rules.rota_refusal(
                who=who,
                name=member.full_name,
                interval=interval,
                spans=reads.rota.get(member.pk, []),
                leave=reads.leave.get(member.pk, []),
                tz=tz,
            )
        )
        is not None
    ]
    if problems:
        raise ValidationError({"starts_at": [refusal(problem) for problem in problems]})


def _hours_and_next_free(
    booking: Booking,
    *,
    room: Room,
    hours: list[rules.OpeningHours],
    busy: list[rules.Interval] | None,
    tz: dt.tzinfo,
    exclude_booking_id: int | None,
) -> str:
    """What a refused time is told: the room's opening hours and the next start that the room, the
    patient and the monitor all leave free, from the asked day on: among `busy` when the clash read
    has them (a clash), else read now (hours outside the room's: two reads)."""
    asked = booking.starts_at.astimezone(tz).date()
    slot = next_free_slot_for(
        room=room,
        from_day=asked,
        minutes=int((booking.ends_at - booking.starts_at).total_seconds() // 60),
        tz=tz,
        now=timezone.now(),
        monitor_id=booking.monitor_id,
        patient_id=booking.patient_id,
        exclude_booking_id=exclude_booking_id,
        hours=hours,
        busy=busy,
    )
    return f"{room.name} opens {rules.describe_opening_hours(hours)}. {rules.describe_next_free(slot, tz)}"


def _save_booking(booking: Booking, *, actor: User, room: Room, exclude_booking_id: int | None) -> None:
    """Save, turning the database's exclusion constraint (a lost race) into the same named conflict."""
    try:
        with transaction.atomic():
            booking.save()
    except IntegrityError:
        _check_time(actor=actor, booking=booking, room=room, exclude_booking_id=exclude_booking_id)
        raise ValidationError(
            {"starts_at": ValidationError("Someone booked this time a moment ago.", code="booking_conflict")}
        ) from None


def _check_staff(*, actor: User, prescriber: User, monitor: User) -> None:
    errors: dict[str, ValidationError] = {}
    if not is_active_member(prescriber, clinic_id=actor.clinic_id, role=Role.PRESCRIBER):
        errors["prescriber"] = ValidationError(
            "Choose an active prescriber of this clinic.", code="invalid_prescriber"
        )
    if not is_active_member(monitor, clinic_id=actor.clinic_id, role=Role.MONITOR):
        errors["monitor"] = ValidationError(
            "Choose an active monitor of this clinic.", code="invalid_monitor"
        )
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def booking_create(
    *, actor: User, pathway: Pathway, room: Room, starts_at: dt.datetime, prescriber: User, monitor: User
) -> Booking:
    """Book a dosing session: chair time for the screening's planned agent and route, in a room that
    is open, in service, equipped, and free, for a patient and a monitor who are free too.

    The room row is locked first, so bookings of one room are decided one at a time; on PostgreSQL
    exclusion constraints back this up for the room, the patient and the monitor.

    Every gate is decided afresh, in a fixed number of reads whatever the number of bookings: the room
    locked; the pathway with its screening versions, the screening read once for the gate and the
    plan alike (`pathway_for_booking`); the patient's REMS enrolment (esketamine only); the chair
    time; then the room's opening hours, clashing bookings and closures (`_check_time`). The staff
    are checked on the users given, without a read.
    """
    _require(actor, Capability.BOOKING_MANAGE, pathway.clinic_id)
    if room.clinic_id != actor.clinic_id:
        raise NotFoundOrForbidden()
    gates.booking_check(pathway_id=pathway.pk)
    room = Room.objects.select_for_update().get(pk=room.pk)
    pathway, status = pathway_for_booking(pathway, now=timezone.now())
    _check_staff(actor=actor, prescriber=prescriber, monitor=monitor)
    plan = status.current
    agent = plan.agent if plan is not None else ""
    label = esketamine_label_of(pathway.clinic_id) if agent == Agent.ESKETAMINE else None
    errors = _booking_refusals(
        pathway=pathway,
        room=room,
        agent=agent,
        screening_refusals=status.refusals,
        rems_enrolment_required=label is None or esketamine_rules.rems_enrolment_required(label),
    )
    if errors:
        raise ValidationError(errors)
    assert plan is not None
    chair = chair_time_for(pathway.clinic_id, agent=plan.agent, route=plan.route)
    _check_horizon(starts_at)
    booking = Booking(
        clinic_id=pathway.clinic_id,
        pathway=pathway,
        patient_id=pathway.patient_id,
        room=room,
        starts_at=starts_at,
        ends_at=rules.end_for(starts_at, chair),
        agent=plan.agent,
        route=plan.route,
        prescriber=prescriber,
        monitor=monitor,
        booked_by=actor,
    )
    _check_time(actor=actor, booking=booking, room=room, exclude_booking_id=None)
    if label is not None:
        _esketamine_booking_frequency_check(booking=booking, label=label, tz=actor.zone)
    _save_booking(booking, actor=actor, room=room, exclude_booking_id=None)
    audit_record(
        actor=actor,
        action=DosingAuditAction.BOOKED,
        target_type="dosing.Booking",
        target_public_id=booking.public_id,
        patient_public_id=pathway.patient.public_id,
        data={
            "room": str(room.public_id),
            "minutes": chair.total_minutes,
            "agent": plan.agent,
            "route": plan.route,
        },
    )
    registry.emit(BOOKING_CHANGED, booking=booking, actor=actor)
    return booking


@transaction.atomic
def booking_move(
    *, actor: User, booking: Booking, starts_at: dt.datetime, room: Room | None = None
) -> Booking:
    """Move a live booking to a new start (and room), keeping its length; every check applies again."""
    _require(actor, Capability.BOOKING_MANAGE, booking.clinic_id)
    target_room = room or booking.room
    if target_room.clinic_id != actor.clinic_id:
        raise NotFoundOrForbidden()
    gates.booking_check(pathway_id=booking.pathway_id)
    rooms = sorted({booking.room_id, target_room.pk})
    locked_rooms = {r.pk: r for r in Room.objects.select_for_update().filter(pk__in=rooms).order_by("pk")}
    locked = (
        Booking.objects.select_for_update(of=("self",))
        .select_related("pathway__patient", "monitor", "prescriber")
        .get(pk=booking.pk)
    )
    if locked.status != BookingStatus.BOOKED:
        raise ValidationError("Only a booked session can be moved.", code="not_booked")
    target = locked_rooms[target_room.pk]
    label = esketamine_label_of(locked.clinic_id) if locked.agent == Agent.ESKETAMINE else None
    errors = _booking_refusals(
        pathway=locked.pathway,
        room=target,
        agent=locked.agent,
        screening_refusals=screening_selectors.screening_gate_refusals(locked.pathway),
        rems_enrolment_required=label is None or esketamine_rules.rems_enrolment_required(label),
    )
    if errors:
        raise ValidationError(errors)
    _check_horizon(starts_at)
    interval = rules.moved(rules.Interval(locked.starts_at, locked.ends_at), starts_at)
    before = (locked.room_id, locked.starts_at)
    locked.room, locked.starts_at, locked.ends_at = target, interval.starts_at, interval.ends_at
    _check_time(actor=actor, booking=locked, room=target, exclude_booking_id=locked.pk)
    if label is not None:
        _esketamine_booking_frequency_check(booking=locked, label=label, tz=actor.zone)
    _save_booking(locked, actor=actor, room=target, exclude_booking_id=locked.pk)
    audit_record(
        actor=actor,
        action=DosingAuditAction.MOVED,
        target_type="dosing.Booking",
        target_public_id=locked.public_id,
        patient_public_id=locked.pathway.patient.public_id,
        data={
            "room_changed": before[0] != target.pk,
            "minutes_shifted": int((starts_at - before[1]).total_seconds() // 60),
        },
    )
    registry.emit(BOOKING_CHANGED, booking=locked, actor=actor)
    return locked


@transaction.atomic
def booking_cancel(*, actor: User, booking: Booking, reason: str) -> Booking:
    """Cancel a booking; its slot is free again at once."""
    _require(actor, Capability.BOOKING_MANAGE, booking.clinic_id)
    locked = (
        Booking.objects.select_for_update(of=("self",)).select_related("pathway__patient").get(pk=booking.pk)
    )
    if not reason.strip():
        raise ValidationError({"reason": ValidationError("Give the reason for cancelling.", code="required")})
    if locked.status != BookingStatus.BOOKED:
        raise ValidationError("Only a booked session can be cancelled.", code="not_booked")
    locked.status = BookingStatus.CANCELLED
    locked.cancelled_at = timezone.now()
    locked.cancelled_by = actor
    locked.cancellation_reason = reason.strip()[:300]
    locked.save()
    audit_record(
        actor=actor,
        action=DosingAuditAction.CANCELLED,
        target_type="dosing.Booking",
        target_public_id=locked.public_id,
        patient_public_id=locked.pathway.patient.public_id,
    )
    registry.emit(BOOKING_CHANGED, booking=locked, actor=actor)
    return locked


STAGE_CANCELLING_MOVES: dict[str, str] = {
    Stage.ON_HOLD: "Pathway put on hold",
    Stage.DISCONTINUED: "Pathway discontinued",
    Stage.COMPLETED: "Pathway completed",
}


@transaction.atomic
def bookings_cancel_for_pathway_move(
    *, actor: User, pathway: Pathway, to_stage: str, reason: str
) -> list[Booking]:
    """Cancel the pathway's live bookings still to come whose dosing record is not opened, because the
    pathway was put on hold, discontinued or completed (`sessions.hooks`, in the move's transaction,
    by whoever moved it). Each keeps the move and its reason as its cancellation reason, is audited,
    and takes its reminder with it (`BOOKING_CHANGED`). A booking whose record is open stays, and the
    dose gate refuses it (`sessions.gates`). Any other move cancels nothing."""
    _require(actor, Capability.PATHWAY_MOVE, pathway.clinic_id)
    if to_stage not in STAGE_CANCELLING_MOVES:
        return []
    live = list(
        Booking.objects.select_for_update(of=("self",))
        .filter(pathway_id=pathway.pk, status=BookingStatus.BOOKED, ends_at__gt=timezone.now())
        .select_related("pathway__patient")
        .order_by("starts_at", "id")
    )
    # Read after the lock, in a statement of its own: a record opened meanwhile is seen.
    opened = set(DosingSession.objects.filter(booking__in=live).values_list("booking_id", flat=True))
    text = f"{STAGE_CANCELLING_MOVES[to_stage]}: {reason.strip()}"[:300]
    cancelled = []
    for booking in live:
        if booking.pk in opened:
            continue
        booking.status, booking.cancelled_at, booking.cancelled_by = (
            BookingStatus.CANCELLED,
            timezone.now(),
            actor,
        )
        booking.cancellation_reason = text
        booking.save(
            update_fields=["status", "cancelled_at", "cancelled_by", "cancellation_reason", "updated_at"]
        )
        audit_record(
            actor=actor,
            action=DosingAuditAction.CANCELLED,
            target_type="dosing.Booking",
            target_public_id=booking.public_id,
            patient_public_id=booking.pathway.patient.public_id,
            data={"via": "pathway_stage_changed", "to_stage": to_stage},
        )
        registry.emit(BOOKING_CHANGED, booking=booking, actor=actor)
        cancelled.append(booking)
    return cancelled


CHECK_FIELDS = ("fasting_instructions_given", "fasting_confirmed", "escort_confirmed")


@transaction.atomic
def booking_checks_update(*, actor: User, booking: Booking, **checks: bool) -> Booking:
    """Record the pre-visit checks: fasting instructions given and confirmed, escort confirmed."""
    _require(actor, Capability.BOOKING_CHECKS, booking.clinic_id)
    unknown = set(checks) - set(CHECK_FIELDS)
    if unknown:
        raise TypeError(f"Unknown checks: {sorted(unknown)}")
    locked = (
        Booking.objects.select_for_update(of=("self",)).select_related("pathway__patient").get(pk=booking.pk)
    )
    if locked.status != BookingStatus.BOOKED:
        raise ValidationError("Checks are recorded on booked sessions only.", code="not_booked")
    if checks.get("fasting_confirmed") and not (
        checks.get("fasting_instructions_given") or locked.fasting_instructions_given
    ):
        raise ValidationError(
            {
                "fasting_confirmed": ValidationError(
                    "Give the fasting instructions before confirming them.", code="instructions_first"
                )
            }
        )
    changed = sorted(name for name, value in checks.items() if getattr(locked, name) != value)
    for name, value in checks.items():
        setattr(locked, name, value)
    if changed:
        locked.save(update_fields=[*changed, "updated_at"])
        audit_record(
            actor=actor,
            action=DosingAuditAction.CHECKS_UPDATED,
            target_type="dosing.Booking",
            target_public_id=locked.public_id,
            patient_public_id=locked.pathway.patient.public_id,
            data={"checks": {name: checks[name] for name in changed}},
        )
    return locked


def booking_viewed(*, actor: User, booking: Booking, via: str) -> None:
    audit_record(
        actor=actor,
        action=DosingAuditAction.VIEWED,
        target_type="dosing.Booking",
        target_public_id=booking.public_id,
        patient_public_id=booking.patient.public_id,
        data={"via": via},
    )


def refusal(criterion: rules.Criterion) -> Refusal:
    """A rule's unmet criterion as the error the pages and the API show (code, message, source)."""
    return Refusal(criterion.message, code=criterion.code, source=criterion.source)
