"""Writes for integration: notes, experiments, follow-ups and their dispatch.

Pages, the API and the tasks all come through here. Every write checks the actor (`_require`),
runs in one transaction and leaves an audit event; follow-ups are scheduled by handlers that run
inside the transaction of the record that causes them, so a signed dosing record and its
follow-ups land together or not at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from kaemdr.audit import audit_record
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import Clinic
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.permissions import require as _require
from pathways.models import Pathway
from pathways.models import Stage
from screening.models import MeasureResponse
from sessions.models import Booking
from sessions.models import BookingStatus
from sessions.models import DosingSession
from sessions.models import SessionStatus

from . import rules
from .models import Experiment
from .models import ExperimentUpdate
from .models import FollowUp
from .models import FollowUpStatus
from .models import IntegrationNote
from .models import IntegrationSettings
from .models import NoteAddendum
from .models import NoteStatus
from .selectors import integration_settings_for

logger = logging.getLogger(__name__)

Kind = rules.FollowUpKind


class IntegrationAuditAction:
    NOTE_OPENED = "integration.note_opened"
    NOTE_UPDATED = "integration.note_updated"
    NOTE_SIGNED = "integration.note_signed"
    NOTE_ADDENDUM = "integration.note_addendum_added"
    NOTE_VIEWED = "integration.note_viewed"
    PATHWAY_VIEWED = "integration.pathway_viewed"
    EXPERIMENT_ADDED = "integration.experiment_added"
    EXPERIMENT_REVIEWED = "integration.experiment_reviewed"
    FOLLOW_UPS_SCHEDULED = "follow_up.scheduled"
    FOLLOW_UP_SENT = "follow_up.sent"
    FOLLOW_UP_SEND_FAILED = "follow_up.send_failed"
    FOLLOW_UP_DONE = "follow_up.done"
    FOLLOW_UP_CANCELLED = "follow_up.cancelled"
    FOLLOW_UP_RESCHEDULED = "follow_up.rescheduled"
    FOLLOW_UP_VIEWED = "follow_up.viewed"
    SETTINGS_UPDATED = "integration.settings_updated"


def _tz(clinic: Clinic) -> dt.tzinfo:
    return zoneinfo.ZoneInfo(clinic.time_zone)


def _note_audit(actor: User, action: str, note: IntegrationNote, **data: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="integration.IntegrationNote",
        target_public_id=note.public_id,
        patient_public_id=note.pathway.patient.public_id,
        data=data,
    )


def _follow_up_audit(actor: User | None, action: str, follow_up: FollowUp, **data: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="integration.FollowUp",
        target_public_id=follow_up.public_id,
        clinic_public_id=follow_up.clinic.public_id,
        patient_public_id=follow_up.patient.public_id,
        data={"kind": follow_up.kind, **data},
    )


# --- Notes -------------------------------------------------------------------------------------------

NOTE_FIELDS = ("perception_shift", "newly_possible", "afraid_of_losing", "free_notes")
NOTE_TEXT_LIMIT = 10_000


def _require_author_of_draft(actor: User, note: IntegrationNote) -> IntegrationNote:
    """Lock `note` and check that `actor` wrote it and it is still a draft."""
    _require(actor, Capability.INTEGRATION_WRITE, note.clinic_id)
    locked = (
        IntegrationNote.objects.select_for_update(of=("self",))
        .select_related("pathway__patient")
        .get(pk=note.pk)
    )
    if locked.author_id != actor.pk:
        raise NotFoundOrForbidden()
    if locked.status != NoteStatus.DRAFT:
        raise ValidationError(
            "This note is signed and read-only; add an addendum instead.", code="note_signed"
        )
    return locked


def _session_for_note(pathway: Pathway, session: DosingSession | None) -> DosingSession:
    sessions = DosingSession.objects.filter(booking__pathway=pathway, status=SessionStatus.SIGNED)
    if session is None:
        found = sessions.order_by("-dose_started_at", "-id").first()
        if found is None:
            raise ValidationError(
                {
                    "dosing_session": ValidationError(
                        "An integration note follows a completed dosing session; this pathway has none yet.",
                        code="no_session",
                    )
                }
            )
        return found
    if not sessions.filter(pk=session.pk).exists():
        raise ValidationError(
            {
                "dosing_session": ValidationError(
                    "Choose a signed dosing session of this pathway.", code="invalid_session"
                )
            }
        )
    return session


@transaction.atomic
def note_open(
    *,
    actor: User,
    pathway: Pathway,
    dosing_session: DosingSession | None = None,
    held_at: dt.datetime | None = None,
) -> IntegrationNote:
    """Start an integration note after a dose (the latest signed one unless another is named).

    Only the pathway's therapist writes its notes. A pathway has one draft at a time: when its
    therapist already has one, that draft is returned, so a second tab or a double click never makes
    two.
    """
    _require(actor, Capability.INTEGRATION_WRITE, pathway.clinic_id)
    locked = Pathway.objects.select_for_update().select_related("patient").get(pk=pathway.pk)
    if locked.therapist_id != actor.pk:
        raise NotFoundOrForbidden()
    if not locked.is_open:
        raise ValidationError("This pathway is closed.", code="pathway_closed")
    draft = (
        IntegrationNote.objects.filter(pathway=locked, status=NoteStatus.DRAFT)
        .select_related("author")
        .first()
    )
    if draft is not None:
        if draft.author_id != actor.pk:
            raise ValidationError(
                f"{draft.author.full_name} has a draft note open on this pathway; it is signed first.",
                code="draft_open",
            )
        return draft
    session = _session_for_note(locked, dosing_session)
    when = held_at or timezone.now()
    _check_held_at(when, session)
    note = IntegrationNote.objects.create(
        clinic_id=locked.clinic_id, pathway=locked, dosing_session=session, author=actor, held_at=when
    )
    _note_audit(actor, IntegrationAuditAction.NOTE_OPENED, note, dosing_session=str(session.public_id))
    return note


def _check_held_at(when: dt.datetime, session: DosingSession) -> None:
    if when > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationError({"held_at": ValidationError("This is in the future.", code="future")})
    dosed = session.dose_started_at
    if dosed is not None and when < dosed:
        raise ValidationError(
            {
                "held_at": ValidationError(
                    "An integration session comes after the dose it follows.", code="before_dose"
                )
            }
        )


@transaction.atomic
def note_update(*, actor: User, note: IntegrationNote, **fields: Any) -> IntegrationNote:
    """Save the answers to the prompts (and the session time) of a draft, by its author."""
    locked = _require_author_of_draft(actor, note)
    unknown = set(fields) - {*NOTE_FIELDS, "held_at"}
    if unknown:
        raise TypeError(f"Unknown note fields: {sorted(unknown)}")
    errors = {
        name: ValidationError(f"Keep this under {NOTE_TEXT_LIMIT:,} characters.", code="too_long")
        for name in NOTE_FIELDS
        if len(fields.get(name) or "") > NOTE_TEXT_LIMIT
    }
    if errors:
        raise ValidationError(errors)
    if fields.get("held_at") is not None:
        _check_held_at(fields["held_at"], locked.dosing_session)
    for name, value in fields.items():
        if value is not None:
            setattr(locked, name, value.strip() if isinstance(value, str) else value)
    locked.save()
    _note_audit(actor, IntegrationAuditAction.NOTE_UPDATED, locked, fields=sorted(fields))
    return locked


@transaction.atomic
def note_sign(*, actor: User, note: IntegrationNote) -> IntegrationNote:
    """Sign a draft: it becomes read-only, and the integration session due after its dose is done."""
    locked = _require_author_of_draft(actor, note)
    if not any(getattr(locked, name).strip() for name in NOTE_FIELDS):
        raise ValidationError("Answer at least one of the prompts before signing.", code="empty_note")
    locked.status, locked.signed_at = NoteStatus.SIGNED, timezone.now()
    locked.save()
    _note_audit(actor, IntegrationAuditAction.NOTE_SIGNED, locked)
    _close_matching(
        actor=actor,
        follow_ups=FollowUp.objects.filter(
            dosing_session_id=locked.dosing_session_id, kind=Kind.INTEGRATION_SESSION
        ),
        outcome="Integration note signed.",
    )
    return locked


@transaction.atomic
def note_addendum_add(*, actor: User, note: IntegrationNote, text: str) -> NoteAddendum:
    """Correct or add to a signed note; only its author may, and the note itself stays as signed."""
    _require(actor, Capability.INTEGRATION_WRITE, note.clinic_id)
    locked = (
        IntegrationNote.objects.select_for_update(of=("self",))
        .select_related("pathway__patient")
        .get(pk=note.pk)
    )
    if locked.author_id != actor.pk:
        raise NotFoundOrForbidden()
    if locked.status != NoteStatus.SIGNED:
        raise ValidationError(
            "Addenda are for signed notes; edit the draft itself until then.", code="not_signed"
        )
    if not text.strip():
        raise ValidationError({"text": ValidationError("Write the addendum.", code="required")})
    if len(text) > NOTE_TEXT_LIMIT:
        raise ValidationError(
            {"text": ValidationError("Keep this under 10,000 characters.", code="too_long")}
        )
    addendum = NoteAddendum.objects.create(note=locked, text=text.strip(), author=actor)
    _note_audit(actor, IntegrationAuditAction.NOTE_ADDENDUM, locked)
    return addendum


def note_viewed(*, actor: User, note: IntegrationNote, via: str) -> None:
    _note_audit(actor, IntegrationAuditAction.NOTE_VIEWED, note, via=via)


def pathway_integration_viewed(*, actor: User, pathway: Pathway) -> None:
    audit_record(
        actor=actor,
        action=IntegrationAuditAction.PATHWAY_VIEWED,
        target_type="pathways.Pathway",
        target_public_id=pathway.public_id,
        patient_public_id=pathway.patient.public_id,
    )


# --- Experiments -------------------------------------------------------------------------------------


@transaction.atomic
def experiment_add(*, actor: User, note: IntegrationNote, area: str, description: str) -> Experiment:
    """Agree an experiment in a draft note: an area and exactly what the patient will try."""
    locked = _require_author_of_draft(actor, note)
    errors: dict[str, ValidationError] = {}
    if area not in {a.value for a in rules.ExperimentArea}:
        errors["area"] = ValidationError("Choose an area.", code="invalid_area")
    description = (description or "").strip()
    if not description:
        errors["description"] = ValidationError(
            "Say exactly what the experiment is, such as 'lights out by 23:00 on weeknights'.",
            code="required",
        )
    elif len(description) > 300:
        errors["description"] = ValidationError("Keep this under 300 characters.", code="too_long")
    if errors:
        raise ValidationError(errors)
    experiment = Experiment.objects.create(
        clinic_id=locked.clinic_id,
        pathway_id=locked.pathway_id,
        area=area,
        description=description,
        agreed_in=locked,
    )
    _note_audit(
        actor,
        IntegrationAuditAction.EXPERIMENT_ADDED,
        locked,
        experiment=str(experiment.public_id),
        area=area,
    )
    return experiment


@transaction.atomic
def experiment_review(
    *, actor: User, note: IntegrationNote, experiment: Experiment, state: str, what_happened: str = ""
) -> Experiment:
    """Review an experiment in a draft note: planned, tried, kept or dropped, and what happened."""
    locked_note = _require_author_of_draft(actor, note)
    locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if locked.pathway_id != locked_note.pathway_id:
        raise NotFoundOrForbidden()
    problem = rules.experiment_move_problem(locked.state, state, what_happened=what_happened)
    if problem:
        field = "what_happened" if problem == rules.WHAT_HAPPENED_NEEDED else "state"
        raise ValidationError({field: ValidationError(problem, code="invalid_move")})
    ExperimentUpdate.objects.create(
        experiment=locked,
        note=locked_note,
        from_state=locked.state,
        to_state=state,
        what_happened=what_happened.strip(),
        recorded_by=actor,
    )
    locked.state = state
    if what_happened.strip():
        locked.what_happened = what_happened.strip()
    locked.save()
    _note_audit(
        actor,
        IntegrationAuditAction.EXPERIMENT_REVIEWED,
        locked_note,
        experiment=str(locked.public_id),
        state=state,
    )
    return locked


# --- Follow-ups: scheduling --------------------------------------------------------------------------


def _responsible_for(kind: Kind, *, pathway: Pathway, booking: Booking) -> User:
    """Who answers for a follow-up: the therapist for integration and check-ins (the prescriber when
    the pathway has none), the prescriber for measures and the monitoring form, and the booking's
    monitor for the visit reminder."""
    if kind in (Kind.INTEGRATION_SESSION, Kind.CHECK_IN):
        return pathway.therapist or pathway.prescriber
    if kind == Kind.MONITORING_FORM:
        return booking.prescriber
    if kind == Kind.VISIT_REMINDER:
        return booking.monitor
    return pathway.prescriber


def _dispatch_soon() -> None:
    """Send what is due now once the transaction commits (the beat task would, within a minute)."""
    from .tasks import follow_ups_dispatch

    transaction.on_commit(follow_ups_dispatch.delay)


def follow_ups_schedule_after_session(
    *, session: DosingSession, actor: User | None = None, **_: Any
) -> list[FollowUp]:
    """Schedule what must follow a completed dosing session. Runs inside the signing transaction;
    running it twice changes nothing (one row per session, kind and day)."""
    session = DosingSession.objects.select_related(
        "booking__pathway__patient",
        "booking__pathway__therapist",
        "booking__pathway__prescriber",
        "booking__prescriber",
        "clinic",
    ).get(pk=session.pk)
    booking, pathway = session.booking, session.booking.pathway
    settings_row = integration_settings_for(session.clinic_id)
    last_measures = (
        MeasureResponse.objects.filter(pathway=pathway, carried_from__isnull=True)
        .order_by("-administered_at")
        .values_list("administered_at", flat=True)
        .first()
    )
    completed_at = session.signed_at or timezone.now()
    planned = rules.follow_ups_after_session(
        completed_at=completed_at,
        dosed_at=session.dose_started_at or completed_at,
        agent=booking.agent,
        tz=_tz(session.clinic),
        timings=settings_row.timings(),
        last_measures_at=last_measures,
    )
    has_open_measures = FollowUp.objects.filter(
        pathway=pathway, kind=Kind.OUTCOME_MEASURES, status=FollowUpStatus.OPEN
    ).exists()
    created = []
    for plan in planned:
        if plan.kind == Kind.OUTCOME_MEASURES and has_open_measures:
            continue
        follow_up, was_created = FollowUp.objects.get_or_create(
            dosing_session=session,
            kind=plan.kind,
            sequence=plan.sequence,
            defaults={
                "clinic_id": session.clinic_id,
                "pathway": pathway,
                "patient_id": pathway.patient_id,
                "responsible": _responsible_for(plan.kind, pathway=pathway, booking=booking),
                "due_at": plan.due_at,
                "notify_at": plan.notify_at,
            },
        )
        if was_created:
            created.append(follow_up)
    if created:
        audit_record(
            actor=actor,
            action=IntegrationAuditAction.FOLLOW_UPS_SCHEDULED,
            target_type="dosing.DosingSession",
            target_public_id=session.public_id,
            clinic_public_id=session.clinic.public_id,
            patient_public_id=pathway.patient.public_id,
            data={"kinds": [f.kind for f in created]},
        )
        _dispatch_soon()
    return created


def visit_reminder_sync(*, booking: Booking, actor: User | None = None, **_: Any) -> FollowUp | None:
    """Keep a booking's fasting and escort reminder in step with it: made when it is booked, moved
    (and sent again) when it moves, cancelled when it is cancelled. Runs in the booking's transaction."""
    booking = Booking.objects.select_related("clinic", "pathway", "patient", "monitor").get(pk=booking.pk)
    existing = FollowUp.objects.select_for_update().filter(booking=booking, kind=Kind.VISIT_REMINDER).first()
    if booking.status == BookingStatus.CANCELLED:
        if existing is not None and existing.status == FollowUpStatus.OPEN:
            _cancel(actor, existing, "The booking was cancelled.")
        return existing
    if booking.status != BookingStatus.BOOKED:
        return existing
    timings = integration_settings_for(booking.clinic_id)
    now = timezone.now()
    notify_at = rules.visit_reminder_at(
        starts_at=booking.starts_at, tz=_tz(booking.clinic), reminder_hour=timings.reminder_hour, now=now
    )
    if notify_at is None:
        return existing
    if existing is None:
        existing = FollowUp.objects.create(
            clinic_id=booking.clinic_id,
            pathway=booking.pathway,
            patient=booking.patient,
            kind=Kind.VISIT_REMINDER,
            booking=booking,
            responsible=booking.monitor,
            due_at=booking.starts_at,
            notify_at=notify_at,
        )
        _follow_up_audit(actor, IntegrationAuditAction.FOLLOW_UPS_SCHEDULED, existing)
    elif existing.due_at != booking.starts_at or existing.status != FollowUpStatus.OPEN:
        existing.due_at, existing.notify_at = booking.starts_at, notify_at
        existing.notified_at, existing.patient_notified, existing.attempts = None, False, 0
        existing.status, existing.done_at, existing.done_by, existing.outcome = (
            FollowUpStatus.OPEN,
            None,
            None,
            "",
        )
        existing.responsible = booking.monitor
        existing.save()
        _follow_up_audit(actor, IntegrationAuditAction.FOLLOW_UP_RESCHEDULED, existing)
    else:
        return existing
    if notify_at <= now:
        _dispatch_soon()
    return existing


def visit_reminder_close_on_arrival(*, session: DosingSession, actor: User | None = None, **_: Any) -> None:
    """The patient is here: a reminder not yet sent has nothing left to say."""
    pending = FollowUp.objects.filter(
        booking_id=session.booking_id,
        kind=Kind.VISIT_REMINDER,
        status=FollowUpStatus.OPEN,
        notified_at__isnull=True,
    )
    for follow_up in pending.select_related("clinic", "patient"):
        _cancel(actor, follow_up, "The patient arrived before the reminder went out.")


def monitoring_form_filed(*, session: DosingSession, actor: User | None = None, **_: Any) -> None:
    _close_matching(
        actor=actor,
        follow_ups=FollowUp.objects.filter(dosing_session_id=session.pk, kind=Kind.MONITORING_FORM),
        outcome="Monitoring form filed.",
    )


def measures_recorded(*, response: MeasureResponse, actor: User | None = None, **_: Any) -> None:
    """Measures taken again close the open measures follow-up; while the cycle runs (a follow-up was
    open), the next one is scheduled the clinic's interval later."""
    pathway = Pathway.objects.select_related("patient", "prescriber", "clinic").get(pk=response.pathway_id)
    closed = _close_matching(
        actor=actor,
        follow_ups=FollowUp.objects.filter(pathway=pathway, kind=Kind.OUTCOME_MEASURES),
        outcome="Outcome measures recorded.",
    )
    if not closed or not pathway.is_open:
        return
    timings = integration_settings_for(pathway.clinic_id).timings()
    due = rules.next_measures_due(
        administered_at=response.administered_at, tz=_tz(pathway.clinic), timings=timings
    )
    follow_up = FollowUp.objects.create(
        clinic_id=pathway.clinic_id,
        pathway=pathway,
        patient_id=pathway.patient_id,
        kind=Kind.OUTCOME_MEASURES,
        responsible=pathway.prescriber,
        due_at=due,
        notify_at=due,
    )
    _follow_up_audit(actor, IntegrationAuditAction.FOLLOW_UPS_SCHEDULED, follow_up)


CLOSED_STAGES = (Stage.COMPLETED, Stage.DISCONTINUED)


def pathway_closed(*, pathway: Pathway, actor: User | None = None, **_: Any) -> None:
    """A completed or discontinued pathway has nothing left to follow up."""
    if pathway.stage not in CLOSED_STAGES:
        return
    open_ones = FollowUp.objects.filter(pathway=pathway, status=FollowUpStatus.OPEN).select_related(
        "clinic", "patient"
    )
    for follow_up in open_ones:
        _cancel(actor, follow_up, f"The pathway was {pathway.get_stage_display().lower()}.")


def _close_matching(*, actor: User | None, follow_ups: Any, outcome: str) -> list[FollowUp]:
    closed = []
    for follow_up in (
        follow_ups.filter(status=FollowUpStatus.OPEN)
        .select_for_update(of=("self",))
        .select_related("clinic", "patient")
    ):
        follow_up.status, follow_up.done_at, follow_up.done_by = FollowUpStatus.DONE, timezone.now(), actor
        follow_up.outcome = outcome
        follow_up.save()
        _follow_up_audit(actor, IntegrationAuditAction.FOLLOW_UP_DONE, follow_up, by="record")
        closed.append(follow_up)
    return closed


def _cancel(actor: User | None, follow_up: FollowUp, outcome: str) -> None:
    follow_up.status, follow_up.done_at, follow_up.done_by = FollowUpStatus.CANCELLED, timezone.now(), actor
    follow_up.outcome = outcome
    follow_up.save()
    _follow_up_audit(actor, IntegrationAuditAction.FOLLOW_UP_CANCELLED, follow_up)


# --- Follow-ups: done by hand ------------------------------------------------------------------------


@transaction.atomic
def follow_up_complete(*, actor: User, follow_up: FollowUp, outcome: str) -> FollowUp:
    """Record a check-in (what came of it), or close another follow-up by hand with the reason.

    Check-ins are recorded by anyone who may check in on the pathway's patients; any other kind
    closes itself when its note, measures or form is recorded, and only a prescriber may close one
    by hand (the patient declined the measures, say), with the reason."""
    _require(actor, Capability.FOLLOW_UP_VIEW, follow_up.clinic_id)
    locked = (
        FollowUp.objects.select_for_update(of=("self",))
        .select_related("clinic", "patient")
        .get(pk=follow_up.pk)
    )
    needed = Capability.FOLLOW_UP_CHECK_IN if locked.kind == Kind.CHECK_IN else Capability.FOLLOW_UP_CLOSE
    if not has_capability(actor, needed) or locked.kind in rules.NOTICE_ONLY_KINDS:
        raise NotFoundOrForbidden()
    outcome = (outcome or "").strip()
    if not outcome:
        message = (
            "Say how the check-in went (reached, left a message, no answer)."
            if locked.kind == Kind.CHECK_IN
            else "Give the reason for closing this by hand."
        )
        raise ValidationError({"outcome": ValidationError(message, code="required")})
    if len(outcome) > 300:
        raise ValidationError(
            {"outcome": ValidationError("Keep this under 300 characters.", code="too_long")}
        )
    if locked.status != FollowUpStatus.OPEN:
        raise ValidationError("This follow-up is already closed.", code="closed")
    locked.status, locked.done_at, locked.done_by, locked.outcome = (
        FollowUpStatus.DONE,
        timezone.now(),
        actor,
        outcome,
    )
    locked.save()
    _follow_up_audit(actor, IntegrationAuditAction.FOLLOW_UP_DONE, locked, by="hand")
    return locked


def follow_up_viewed(*, actor: User, follow_up: FollowUp, via: str) -> None:
    _follow_up_audit(actor, IntegrationAuditAction.FOLLOW_UP_VIEWED, follow_up, via=via)


# --- Follow-ups: dispatch ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchOutcome:
    follow_up_id: int
    sent: bool
    error: str = ""
    cancelled: bool = False


def _messages_for(follow_up: FollowUp, *, send_to_patient: bool) -> list[mail.EmailMessage]:
    """The staff email (the follow-up and a link) and, where enabled, the patient's (a time and a
    practical reminder; no clinical detail). Each has a Message-ID fixed by the follow-up, so a mail
    system can recognise the same message if it is ever handed over twice."""
    tz = _tz(follow_up.clinic)
    context = {
        "follow_up": follow_up,
        "kind_label": rules.FOLLOW_UP_KIND_LABELS[Kind(follow_up.kind)],
        "clinic_name": follow_up.clinic.name,
        "patient": follow_up.patient,
        "due_local": timezone.localtime(follow_up.due_at, tz),
        "link": settings.KAEMDR_BASE_URL.rstrip("/")
        + reverse("follow_up_detail", args=[follow_up.public_id]),
    }
    domain = "kaemdr.local"
    staff = mail.EmailMessage(
        subject=f"{context['kind_label']} due {context['due_local']:%a %-d %b %H:%M}: "
        f"{follow_up.patient.record_number}",
        body=render_to_string("emails/follow_up_staff.txt", context),
        to=[follow_up.responsible.email],
        headers={"Message-ID": f"<follow-up-{follow_up.public_id}-staff@{domain}>"},
    )
    messages = [staff]
    if send_to_patient and follow_up.patient.email and follow_up.kind in (Kind.VISIT_REMINDER, Kind.CHECK_IN):
        patient_template = (
            "emails/visit_reminder_patient.txt"
            if follow_up.kind == Kind.VISIT_REMINDER
            else "emails/check_in_patient.txt"
        )
        messages.append(
            mail.EmailMessage(
                subject=f"Your appointment at {follow_up.clinic.name}"
                if follow_up.kind == Kind.VISIT_REMINDER
                else f"A call from {follow_up.clinic.name}",
                body=render_to_string(patient_template, context),
                to=[follow_up.patient.email],
                headers={"Message-ID": f"<follow-up-{follow_up.public_id}-patient@{domain}>"},
            )
        )
    return messages


DISPATCH_BATCH = 200


def _due_candidates(now: dt.datetime, limit: int) -> list[FollowUp]:
    """The next due follow-ups, oldest first, with what their messages need, in one query and
    without locks: each is claimed (or skipped) in its own transaction by `_claim`."""
    return list(
        FollowUp.objects.filter(status=FollowUpStatus.OPEN, notified_at__isnull=True, notify_at__lte=now)
        .select_related("clinic", "patient", "responsible", "booking")
        .order_by("notify_at", "id")[:limit]
    )


def _still_due(candidate: FollowUp, now: dt.datetime) -> Any:
    """The candidate's row if it is still exactly as read: open, unsent, due, and unchanged since
    (`updated_at` moves with every edit, so a reminder moved or handed to someone else meanwhile
    waits for the next round with its new values)."""
    return FollowUp.objects.filter(
        pk=candidate.pk,
        status=FollowUpStatus.OPEN,
        notified_at__isnull=True,
        notify_at__lte=now,
        updated_at=candidate.updated_at,
    )


def _claim(candidate: FollowUp, now: dt.datetime, **sent_fields: Any) -> bool:
    """Inside the caller's transaction: take the row for sending and write it as sent, in one
    statement (the transaction commits only after the mail server accepts; a failed send undoes
    it in the same transaction).

    On PostgreSQL the row is locked with SKIP LOCKED: another dispatcher holding it is passed over,
    never waited for. On SQLite, which has no row locks, the conditional update itself claims it:
    the second writer waits for the first and then finds the row taken."""
    still_due = _still_due(candidate, now)
    if connection.features.has_select_for_update_skip_locked:
        locked = still_due.select_for_update(skip_locked=True).values("pk")
        return FollowUp.objects.filter(pk__in=locked).update(**sent_fields) == 1
    return still_due.update(**sent_fields) == 1


def _visit_no_longer_ahead(follow_up: FollowUp, now: dt.datetime) -> bool:
    """For a visit reminder: whether its booking (read again, inside the claim) has begun or gone."""
    if follow_up.kind != Kind.VISIT_REMINDER or follow_up.booking_id is None:
        return False
    booking = Booking.objects.filter(pk=follow_up.booking_id).values_list("status", "starts_at").first()
    return booking is None or booking[0] != BookingStatus.BOOKED or booking[1] <= now


def _dispatch_one(
    follow_up: FollowUp, *, mail_connection: Any, now: dt.datetime, send_to_patient: bool
) -> DispatchOutcome:
    """Send one follow-up's messages, exactly once (see `follow_ups_dispatch_due`): two statements
    in the common case, the claim that marks the row sent and its audit event."""
    staff_message, *patient_messages = _messages_for(follow_up, send_to_patient=send_to_patient)
    sent_fields: dict[str, Any] = {
        "notified_at": now,
        "patient_notified": bool(patient_messages),
        "last_error": "",
        "updated_at": timezone.now(),
    }
    if follow_up.kind in rules.NOTICE_ONLY_KINDS:
        sent_fields.update(status=FollowUpStatus.DONE, done_at=now, outcome="Reminder sent.")
    with transaction.atomic():
        if _visit_no_longer_ahead(follow_up, now):
            if not _claim(follow_up, now, updated_at=timezone.now()):
                return DispatchOutcome(follow_up.pk, sent=False)
            _cancel(None, follow_up, "The visit had begun or was no longer booked when the reminder was due.")
            return DispatchOutcome(follow_up.pk, sent=False, cancelled=True)
        if not _claim(follow_up, now, **sent_fields):
            return DispatchOutcome(follow_up.pk, sent=False)
        try:
            mail_connection.open()  # no-op when already open: one connection serves a whole run
            mail_connection.send_messages([staff_message])
        except Exception as error:  # whatever stops the hand-over, the row waits for a retry
            _close_quietly(mail_connection)
            failure = f"{type(error).__name__}: {error}"[:300]
            logger.warning("follow-up %s not sent: %s", follow_up.public_id, failure)
            attempts = follow_up.attempts + 1
            FollowUp.objects.filter(pk=follow_up.pk).update(
                notified_at=None,
                patient_notified=False,
                status=FollowUpStatus.OPEN,
                done_at=None,
                outcome="",
                attempts=F("attempts") + 1,
                last_error=failure,
                notify_at=now + rules.retry_delay(attempts),
                updated_at=timezone.now(),
            )
            _follow_up_audit(None, IntegrationAuditAction.FOLLOW_UP_SEND_FAILED, follow_up, attempts=attempts)
            return DispatchOutcome(follow_up.pk, sent=False, error=failure)
        # The staff email is out; a refused patient address must not send it again, so the patient's
        # copy is tried once and a refusal is recorded on the row for the clinic to see.
        if patient_messages:
            try:
                mail_connection.send_messages(patient_messages)
            except Exception as error:  # the patient's copy only: the follow-up itself is sent
                _close_quietly(mail_connection)
                refused = f"Patient email not sent: {type(error).__name__}: {error}"[:300]
                logger.warning("follow-up %s: %s", follow_up.public_id, refused)
                sent_fields.update(patient_notified=False, last_error=refused)
                FollowUp.objects.filter(pk=follow_up.pk).update(patient_notified=False, last_error=refused)
        for name, value in sent_fields.items():
            setattr(follow_up, name, value)
        _follow_up_audit(
            None,
            IntegrationAuditAction.FOLLOW_UP_SENT,
            follow_up,
            patient_notified=follow_up.patient_notified,
        )
        return DispatchOutcome(follow_up.pk, sent=True)


def follow_ups_dispatch_due(*, limit: int = 1000, now: dt.datetime | None = None) -> int:
    """Send up to `limit` due follow-ups over one mail connection, each exactly once; returns how
    many were sent. Stops early when the mail server fails three times in a row (the rows wait for
    the next run).

    The due rows are read in batches (one query for a batch and one for their clinics' settings);
    each row is then claimed and marked sent in its own transaction with the send, which commits
    only once the mail server has accepted the message:
    - two dispatchers never send the same row (`_claim`);
    - a worker that dies before the mail server accepts leaves the row unsent, and the next run
      sends it;
    - a broker that restarts empty loses nothing, since the rows are the queue.
    The one window left is between the server's acceptance and the commit, milliseconds long, for
    one message at most; the fixed Message-ID lets the mail system spot a duplicate from it.
    """
    now = now or timezone.now()
    sent = failures_in_a_row = 0
    mail_connection = mail.get_connection()
    patient_emails: dict[int, bool] = {}
    try:
        while sent < limit:
            batch = _due_candidates(now, min(DISPATCH_BATCH, limit - sent))
            if not batch:
                break
            for clinic_id in {f.clinic_id for f in batch} - set(patient_emails):
                patient_emails[clinic_id] = integration_settings_for(clinic_id).patient_emails_enabled
            progressed = False
            for follow_up in batch:
                outcome = _dispatch_one(
                    follow_up,
                    mail_connection=mail_connection,
                    now=now,
                    send_to_patient=patient_emails[follow_up.clinic_id],
                )
                progressed = progressed or outcome.sent or outcome.cancelled or bool(outcome.error)
                if outcome.sent:
                    sent += 1
                    failures_in_a_row = 0
                elif outcome.error:
                    failures_in_a_row += 1
                    if failures_in_a_row >= 3:
                        return sent
            if not progressed:
                break  # what is left is another dispatcher's, or changed meanwhile: the next run takes it
    finally:
        _close_quietly(mail_connection)
    return sent


def _close_quietly(mail_connection: Any) -> None:
    try:
        mail_connection.close()
    except Exception:  # a broken connection is dropped either way
        logger.debug("closing the mail connection failed", exc_info=True)


# --- Settings ----------------------------------------------------------------------------------------

SETTINGS_FIELDS = (
    "integration_window_hours",
    "check_in_days",
    "measures_interval_weeks",
    "reminder_hour",
    "patient_emails_enabled",
)


@transaction.atomic
def integration_settings_update(*, actor: User, **fields: Any) -> IntegrationSettings:
    """Change the clinic's follow-up timings; they apply to follow-ups scheduled from now on."""
    _require(actor, Capability.CLINIC_SETTINGS_MANAGE)
    unknown = set(fields) - set(SETTINGS_FIELDS)
    if unknown:
        raise TypeError(f"Unknown settings: {sorted(unknown)}")
    row, _ = IntegrationSettings.objects.select_for_update().get_or_create(clinic_id=actor.member_clinic_id)
    for name, value in fields.items():
        setattr(row, name, value)
    if "check_in_days" in fields:
        try:
            row.check_in_days = rules.format_days(rules.parse_check_in_days(str(fields["check_in_days"])))
        except ValueError as error:
            raise ValidationError({"check_in_days": ValidationError(str(error), code="invalid")}) from None
    row.full_clean(exclude=["clinic"])
    row.save()
    audit_record(
        actor=actor,
        action=IntegrationAuditAction.SETTINGS_UPDATED,
        target_type="integration.IntegrationSettings",
        target_public_id=row.public_id,
        data={"fields": sorted(fields)},
    )
    return row
