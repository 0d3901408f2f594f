"""Writes of staff rotas: a member's weekly working hours and their leave, kept by clinic admins. The
booking service reads them with its clash check (`selectors.booking_time_reads`) and refuses a session
its monitor or prescriber is not on for (`rota_rules.rota_refusal`).

Every write is audited, so the clinic's cached pages (the room calendar's "who is on" row) are
rendered afresh after it (`kaemdr.page_cache`). Audit events carry no leave reason (free text)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from kaemdr.audit import audit_record
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.exceptions import text_too_long
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import require as _require
from sessions.booking import rota_rules
from sessions.booking import rules
from sessions.booking.rota_selectors import ROTA_ROLES
from sessions.booking.selectors import booking_overlaps
from sessions.models import Booking
from sessions.models import BookingStatus
from sessions.models import StaffLeave
from sessions.models import StaffWorkingHours


class RotaAuditAction:
    HOURS_SET = "rota.hours_set"
    LEAVE_ADDED = "rota.leave_added"
    LEAVE_REMOVED = "rota.leave_removed"


def _member_locked(actor: User, staff: User) -> User:
    """The member whose rota is written, locked (their rota is decided one write at a time): an active
    member of the actor's clinic with a role that keeps a rota. Clinic admins only."""
    _require(actor, Capability.ROTA_MANAGE, staff.clinic_id)
    member = User.objects.select_for_update().get(pk=staff.pk)
    if not member.is_active or member.role not in ROTA_ROLES:
        raise ValidationError(
            "Rotas are kept for active prescribers, monitors and therapists.", code="invalid_role"
        )
    return member


@transaction.atomic
def staff_hours_set(
    *, actor: User, staff: User, hours: Sequence[tuple[int, dt.time, dt.time]]
) -> list[rota_rules.WorkingSpan]:
    """Replace the member's weekly working hours with `hours`: (weekday, starts, ends) spans, several
    a day allowed, none overlapping another of its day (`rota_rules.hours_problems`). An empty list
    takes the member off rotas: always available again. Bookings already made stay as they are (the
    rota is checked when a booking is made or moved)."""
    member = _member_locked(actor, staff)
    spans = sorted(
        (rota_rules.WorkingSpan(day, starts, ends) for day, starts, ends in hours),
        key=lambda s: (s.weekday, s.starts),
    )
    problems = rota_rules.hours_problems(spans)
    if problems:
        raise ValidationError({"hours": [ValidationError(text, code="hours_order") for text in problems]})
    StaffWorkingHours.objects.filter(staff_id=member.pk).delete()
    StaffWorkingHours.objects.bulk_create(
        StaffWorkingHours(
            clinic_id=member.member_clinic_id, staff=member, weekday=s.weekday, starts=s.starts, ends=s.ends
        )
        for s in spans
    )
    audit_record(
        actor=actor,
        action=RotaAuditAction.HOURS_SET,
        target_type="kaemdr.User",
        target_public_id=member.public_id,
        data={"days": sorted({s.weekday for s in spans}), "spans": len(spans)},
    )
    return spans


@dataclass(frozen=True)
class LeaveAdded:
    """A leave period added, and the live bookings that name its member (as monitor or prescriber)
    within it, earliest first: allowed, but the admin is told to move them or change their staff."""

    leave: StaffLeave
    affected: list[Booking]


def _leave_refusals(
    *,
    member: User,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str,
    now: dt.datetime,
    zone: dt.tzinfo,
) -> dict[str, ValidationError]:
    if starts_at >= ends_at:
        return {"ends_at": ValidationError("The end must be after the start.", code="order")}
    errors: dict[str, ValidationError] = {}
    if ends_at - starts_at > rota_rules.LONGEST_LEAVE:
        errors["ends_at"] = ValidationError(
            "Add leave of a year at most; add a longer absence as several periods, or deactivate the "
            "account.",
            code="out_of_range",
        )
    elif ends_at <= now:
        errors["ends_at"] = ValidationError(
            "This leave has already ended: add leave still to come or under way.", code="past"
        )
    elif starts_at - now > rules.BOOKING_HORIZON:
        errors["starts_at"] = ValidationError(
            "Add leave starting within the next two years.", code="too_far_ahead"
        )
    too_long = text_too_long(StaffLeave, "reason", reason, "the reason")
    if too_long:
        errors["reason"] = too_long
    if not errors:
        already = (
            StaffLeave.objects.filter(
                staff_id=member.pk,
                starts_at__lt=ends_at,
                ends_at__gt=starts_at,
                starts_at__gte=starts_at - rota_rules.LONGEST_LEAVE,
            )
            .order_by("starts_at")
            .first()
        )
        if already is not None:
            errors["starts_at"] = ValidationError(
                f"{member.full_name} is already on leave "
                f"{rota_rules.describe_leave(rota_rules.Leave(already.starts_at, already.ends_at), zone)}:"
                " remove that period first, or add leave that does not overlap it.",
                code="leave_overlap",
            )
    return errors


@transaction.atomic
def staff_leave_add(
    *, actor: User, staff: User, starts_at: dt.datetime, ends_at: dt.datetime, reason: str = ""
) -> LeaveAdded:
    """Add a leave period for the member: from this commit on no booking or move names them in it
    (`rota_rules.rota_refusal`). Bookings already made that name them in it are allowed to stay, and
    returned (`LeaveAdded.affected`) so the page and the API can list them for the admin to move."""
    member = _member_locked(actor, staff)
    errors = _leave_refusals(
        member=member,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        now=timezone.now(),
        zone=actor.zone,
    )
    if errors:
        raise ValidationError(errors)
    leave = StaffLeave.objects.create(
        clinic_id=member.member_clinic_id,
        staff=member,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip(),
        created_by=actor,
    )
    affected = list(
        Booking.objects.filter(booking_overlaps(starts_at, ends_at), Q(monitor=member) | Q(prescriber=member))
        .exclude(status=BookingStatus.CANCELLED)
        .select_related("room")
        .order_by("starts_at", "id")
    )
    audit_record(
        actor=actor,
        action=RotaAuditAction.LEAVE_ADDED,
        target_type="dosing.StaffLeave",
        target_public_id=leave.public_id,
        data={"staff": str(member.public_id), "bookings_affected": len(affected)},
    )
    return LeaveAdded(leave=leave, affected=affected)


@transaction.atomic
def staff_leave_remove(*, actor: User, leave: StaffLeave) -> None:
    """Remove a leave period (entered by mistake, or cancelled): its member can be booked in it again."""
    _require(actor, Capability.ROTA_MANAGE, leave.clinic_id)
    locked = (
        StaffLeave.objects.select_for_update(of=("self",)).filter(pk=leave.pk).select_related("staff").first()
    )
    if locked is None:
        raise NotFoundOrForbidden()
    audit_record(
        actor=actor,
        action=RotaAuditAction.LEAVE_REMOVED,
        target_type="dosing.StaffLeave",
        target_public_id=locked.public_id,
        data={"staff": str(locked.staff.public_id)},
    )
    locked.delete()
