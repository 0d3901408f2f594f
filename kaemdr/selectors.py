"""Reads for staff and the audit log, always scoped to the reader's clinic and role."""

from __future__ import annotations

import datetime as dt
import uuid

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models import QuerySet
from django.http import Http404

from .models import AuditEvent
from .models import User
from .permissions import Capability
from .permissions import has_capability


def staff_qs_for_user(user: User) -> QuerySet[User]:
    """The staff of the user's clinic that the user may manage; empty for other roles."""
    if not has_capability(user, Capability.STAFF_MANAGE):
        return User.objects.none()
    return (
        User.objects.filter(clinic_id=user.member_clinic_id)
        .select_related("clinic")
        .order_by("-is_active", "full_name")
    )


def get_staff_for_user_or_404(user: User, public_id: uuid.UUID | str) -> User:
    """One member of staff, or 404 alike for missing, another clinic's, or a role that may not manage."""
    try:
        return staff_qs_for_user(user).get(public_id=public_id)
    except (User.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such member of staff.") from None


def clinic_clinicians(user: User, *, role: str = "", roles: tuple[str, ...] = ()) -> QuerySet[User]:
    """Active staff of the user's clinic with `role` (or any of `roles`): choices for a care team."""
    if user.clinic_id is None:
        return User.objects.none()
    wanted = roles or (role,)
    return User.objects.filter(clinic_id=user.member_clinic_id, role__in=wanted, is_active=True).order_by(
        "full_name"
    )


AUDIT_DATE_FIRST = dt.date(2000, 1, 1)
AUDIT_DATE_LAST = dt.date(2999, 12, 31)
"""The dates an audit-log filter accepts: wide enough for any record, narrow enough to stay a date in
every time zone."""


def audit_events_for_user(
    user: User,
    *,
    patient_public_id: uuid.UUID | None = None,
    actor_public_id: uuid.UUID | None = None,
    occurred_from: dt.date | None = None,
    occurred_to: dt.date | None = None,
    tz: dt.tzinfo | None = None,
) -> QuerySet[AuditEvent]:
    """The clinic's audit events, newest first, for readers allowed to see them (clinic admins).

    Dates are whole days in the clinic's time zone `tz`, both ends included.
    """
    if not has_capability(user, Capability.AUDIT_VIEW):
        return AuditEvent.objects.none()
    events = AuditEvent.objects.filter(clinic_public_id=user.clinic.public_id)  # type: ignore[union-attr]
    if patient_public_id is not None:
        # A list read names each of its patients in its data (`kaemdr.read_services.records_viewed`):
        # who was shown this patient in a list is part of the patient's trail too.
        events = events.filter(
            Q(patient_public_id=patient_public_id)
            | Q(action__endswith=".list_viewed", data__patients__icontains=str(patient_public_id))
        )
    if actor_public_id is not None:
        events = events.filter(actor_public_id=actor_public_id)
    zone = tz or dt.UTC
    # Dates outside the log's span filter nothing out (and would overflow the calendar once zoned).
    occurred_from = occurred_from if occurred_from and occurred_from > AUDIT_DATE_FIRST else None
    occurred_to = occurred_to if occurred_to and occurred_to < AUDIT_DATE_LAST else None
    if occurred_from is not None:
        events = events.filter(occurred_at__gte=dt.datetime.combine(occurred_from, dt.time.min, tzinfo=zone))
    if occurred_to is not None:
        next_day = occurred_to + dt.timedelta(days=1)
        events = events.filter(occurred_at__lt=dt.datetime.combine(next_day, dt.time.min, tzinfo=zone))
    return events.order_by("-occurred_at", "-id")
