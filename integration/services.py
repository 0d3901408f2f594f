"""Writes for integration: notes, experiments, follow-ups and their dispatch.

Pages, the API and the tasks all come through here. Every write checks the actor (`_require`),
runs in one transaction and leaves an audit event; follow-ups are scheduled by handlers that run
inside the transaction of the record that causes them, so a signed dosing record and its
follow-ups land together or not at all.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import itertools
import logging
import re
import uuid
import weakref
from dataclasses import dataclass
from typing import Any
from typing import cast

from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.db import transaction
from django.db.models import Field
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone

from kaemdr import outbox
from kaemdr import page_cache
from kaemdr.audit import audit_event
from kaemdr.audit import audit_record
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.permissions import require as _require
from pathways.models import Pathway
from pathways.models import Stage
from screening.models import MeasureResponse
from sessions.booking import services as booking_services
from sessions.models import Booking
from sessions.models import BookingStatus
from sessions.models import DosingSession
from sessions.models import SessionStatus
from sessions.record import services as dosing_services

from . import rules
from . import task_names
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


def _note_audit(actor: User, action: str, note: IntegrationNote, **data: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="integration.IntegrationNote",
        target_public_id=note.public_id,
        patient_public_id=note.pathway.patient.public_id,
        data=data,
    )


def _follow_up_audit_fields(
    actor: User | None, action: str, follow_up: FollowUp, **data: Any
) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": action,
        "target_type": "integration.FollowUp",
        "target_public_id": follow_up.public_id,
        "clinic_public_id": follow_up.clinic.public_id,
        "patient_public_id": follow_up.patient.public_id,
        "data": {"kind": follow_up.kind, **data},
    }


def _follow_up_audit(actor: User | None, action: str, follow_up: FollowUp, **data: Any) -> None:
    audit_record(**_follow_up_audit_fields(actor, action, follow_up, **data))


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
        raise ValidationError("This note is signed and read-only; add an addendum instead.", code="signed")
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
                        code="integration_no_session",
                    )
                }
            )
        return found
    if not sessions.filter(pk=session.pk).exists():
        raise ValidationError(
            {
                "dosing_session": ValidationError(
                    "Choose a signed dosing session of this pathway.", code="integration_session_not_signed"
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
                code="integration_draft_open",
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
        raise ValidationError(
            "Answer at least one of the prompts before signing.", code="integration_note_empty"
        )
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
        errors["area"] = ValidationError("Choose an area.", code="invalid_choice")
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
        raise ValidationError({field: ValidationError(problem, code="experiment_invalid_move")})
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
    """Send what is due now once the transaction commits (the beat task would, within a minute). The
    follow-up rows are their own outbox, so a broker that is down costs only that wait, never the
    request (`kaemdr.outbox.nudge`)."""
    outbox.nudge(task_names.FOLLOW_UPS_DISPATCH)


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
        tz=session.clinic.zone,
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
        if plan.kind == Kind.MONITORING_FORM and not dosing_services.monitoring_form_owed(
            session, label=booking_services.esketamine_label_of(session.clinic_id)
        ):
            continue  # esketamine under the EU/UK label: no REMS form (its checklist came before discharge)
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
        starts_at=booking.starts_at, tz=booking.clinic.zone, reminder_hour=timings.reminder_hour, now=now
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
    open), the next one is scheduled the clinic's interval later. After a completed course, an outcome
    measure (PHQ-9, GAD-7, PCL-5) closes the outcome follow-up it answers
    (`rules.course_outcome_answered`)."""
    pathway = Pathway.objects.select_related("patient", "prescriber", "clinic").get(pk=response.pathway_id)
    if pathway.stage == Stage.COMPLETED:
        _course_outcome_answered(pathway=pathway, response=response, actor=actor)
    closed = _close_matching(
        actor=actor,
        follow_ups=FollowUp.objects.filter(pathway=pathway, kind=Kind.OUTCOME_MEASURES),
        outcome="Outcome measures recorded.",
    )
    if not closed or not pathway.is_open:
        return
    timings = integration_settings_for(pathway.clinic_id).timings()
    due = rules.next_measures_due(
        administered_at=response.administered_at, tz=pathway.clinic.zone, timings=timings
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


def _course_outcome_answered(*, pathway: Pathway, response: MeasureResponse, actor: User | None) -> None:
    """Close the outcome follow-up after the course that this measure answers, if it is still open."""
    if response.instrument not in rules.COURSE_OUTCOME_INSTRUMENTS or pathway.stage_changed_at is None:
        return
    scheduled = list(
        FollowUp.objects.filter(pathway=pathway, kind=Kind.COURSE_OUTCOME).values_list("sequence", "due_at")
    )
    month = rules.course_outcome_answered(
        completed_at=pathway.stage_changed_at, administered_at=response.administered_at, scheduled=scheduled
    )
    if month is None:
        return
    _close_matching(
        actor=actor,
        follow_ups=FollowUp.objects.filter(pathway=pathway, kind=Kind.COURSE_OUTCOME, sequence=month),
        outcome=f"{response.get_instrument_display()} recorded.",
    )


CLOSED_STAGES = (Stage.COMPLETED, Stage.DISCONTINUED)


def pathway_closed(*, pathway: Pathway, actor: User | None = None, change: Any = None, **_: Any) -> None:
    """A completed or discontinued pathway: what was open is cancelled, except the work that outlives
    the pathway (an esketamine session's REMS monitoring form, `rules.OUTLIVES_PATHWAY_KINDS`); a
    completed course then schedules its outcome follow-ups (`course_outcome_schedule`). Runs inside
    the stage move's transaction, so the move and its follow-ups land together."""
    if pathway.stage not in CLOSED_STAGES:
        return
    open_ones = FollowUp.objects.filter(pathway=pathway, status=FollowUpStatus.OPEN).select_related(
        "clinic", "patient"
    )
    for follow_up in open_ones:
        if rules.cancelled_when_pathway_closes(follow_up.kind):
            _cancel(actor, follow_up, f"The pathway was {pathway.get_stage_display().lower()}.")
    if pathway.stage == Stage.COMPLETED:
        completed_at = getattr(change, "changed_at", None) or pathway.stage_changed_at or timezone.now()
        course_outcome_schedule(pathway=pathway, completed_at=completed_at, actor=actor)


def course_outcome_schedule(
    *, pathway: Pathway, completed_at: dt.datetime, actor: User | None = None
) -> list[FollowUp]:
    """Schedule the outcome measures after a completed course, at each of the clinic's months after
    `completed_at` (calendar months in the clinic's time zone; `rules.follow_ups_after_course`), for
    the pathway's prescriber. Their messages go out when each falls due, from the outbox like every
    follow-up's (`follow_ups_dispatch_due`).

    Idempotent: one row per pathway and month (the `followup_once_per_course_month` constraint), so
    running it again (a retried event or task, a second completion attempt) creates nothing; returns
    what it created. Called inside the completing transaction; audited when it creates anything."""
    pathway = Pathway.objects.select_related("clinic", "patient", "prescriber").get(pk=pathway.pk)
    if pathway.stage != Stage.COMPLETED:
        return []
    timings = integration_settings_for(pathway.clinic_id).timings()
    planned = rules.follow_ups_after_course(
        completed_at=completed_at, tz=pathway.clinic.zone, months=timings.outcome_follow_up_months
    )
    created = []
    for plan in planned:
        follow_up, was_created = FollowUp.objects.get_or_create(
            pathway=pathway,
            kind=plan.kind,
            sequence=plan.sequence,
            defaults={
                "clinic_id": pathway.clinic_id,
                "patient_id": pathway.patient_id,
                "responsible": pathway.prescriber,
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
            target_type="pathways.Pathway",
            target_public_id=pathway.public_id,
            clinic_public_id=pathway.clinic.public_id,
            patient_public_id=pathway.patient.public_id,
            data={"kinds": [f.kind for f in created], "months": [f.sequence for f in created]},
        )
        if any(f.notify_at <= timezone.now() for f in created):
            _dispatch_soon()
    return created


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
        raise ValidationError("This follow-up is already closed.", code="follow_up_closed")
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

# Due follow-ups are read this many at a time, in one query and without locks; each is then claimed,
# sent and recorded in a transaction of its own (`_dispatch_one`; see `follow_ups_dispatch_due`).
DISPATCH_READ_AHEAD = 50
FAILURES_IN_A_ROW_BEFORE_STOPPING = 3

MAIL_DOMAIN = "kaemdr.local"
STAFF_TEMPLATE = "emails/follow_up_staff.txt"
PATIENT_TEMPLATES = {
    Kind.VISIT_REMINDER: "emails/visit_reminder_patient.txt",
    Kind.CHECK_IN: "emails/check_in_patient.txt",
}
# What the dispatcher reads of a due follow-up: what its messages, its audit event, the visit check,
# the retry and a cancellation use. Nothing else of the patient (no contact or clinical detail beyond
# the name, record number and email the messages carry), and a batch's objects build in about 60% of
# the time they took with every column of the five tables.
DUE_FIELDS = (
    "public_id",
    "updated_at",
    "kind",
    "sequence",
    "due_at",
    "attempts",
    "status",
    "clinic__public_id",
    "clinic__name",
    "clinic__time_zone",
    "patient__public_id",
    "patient__given_name",
    "patient__family_name",
    "patient__record_number",
    "patient__email",
    "responsible__email",
    "booking__status",
    "booking__starts_at",
)
SENT_REMINDER_OUTCOME = "Reminder sent."
VISIT_GONE_OUTCOME = "The visit had begun or was no longer booked when the reminder was due."


@dataclass(frozen=True)
class _MailParts:
    """What every follow-up email of a run shares, prepared once a run rather than for each row: the
    compiled templates, and the link to a follow-up split around its public id (one `reverse`)."""

    templates: dict[str, Any]
    link_before_id: str
    link_after_id: str

    def link(self, follow_up: FollowUp) -> str:
        return f"{self.link_before_id}{follow_up.public_id}{self.link_after_id}"


def _mail_parts() -> _MailParts:
    placeholder = str(uuid.UUID(int=0))
    before, after = reverse("follow_up_detail", args=[placeholder]).split(placeholder)
    return _MailParts(
        templates={name: get_template(name) for name in (STAFF_TEMPLATE, *PATIENT_TEMPLATES.values())},
        link_before_id=settings.KAEMDR_BASE_URL.rstrip("/") + before,
        link_after_id=after,
    )


def _patient_copy_due(follow_up: FollowUp, *, send_to_patient: bool) -> bool:
    """Whether the patient gets a copy: the clinic sends them, the patient has an email address, and
    the kind has a patient's message (visit reminders and check-ins)."""
    return bool(send_to_patient and follow_up.patient.email and follow_up.kind in PATIENT_TEMPLATES)


def _messages_for(
    follow_up: FollowUp, *, send_to_patient: bool, parts: _MailParts
) -> list[mail.EmailMessage]:
    """The staff email (the follow-up and a link) and, where enabled, the patient's (a time and a
    practical reminder; no clinical detail). Each has a Message-ID fixed by the follow-up, so a mail
    system can recognise the same message if it is ever handed over twice."""
    tz = follow_up.clinic.zone
    context = {
        "follow_up": follow_up,
        "kind_label": rules.FOLLOW_UP_KIND_LABELS[Kind(follow_up.kind)],
        "clinic_name": follow_up.clinic.name,
        "patient": follow_up.patient,
        "due_local": timezone.localtime(follow_up.due_at, tz),
        "link": parts.link(follow_up),
    }
    staff = mail.EmailMessage(
        subject=f"{context['kind_label']} due {context['due_local']:%a %-d %b %H:%M}: "
        f"{follow_up.patient.record_number}",
        body=parts.templates[STAFF_TEMPLATE].render(context),
        to=[follow_up.responsible.email],
        headers={"Message-ID": f"<follow-up-{follow_up.public_id}-staff@{MAIL_DOMAIN}>"},
    )
    messages = [staff]
    if _patient_copy_due(follow_up, send_to_patient=send_to_patient):
        messages.append(
            mail.EmailMessage(
                subject=f"Your appointment at {follow_up.clinic.name}"
                if follow_up.kind == Kind.VISIT_REMINDER
                else f"A call from {follow_up.clinic.name}",
                body=parts.templates[PATIENT_TEMPLATES[Kind(follow_up.kind)]].render(context),
                to=[follow_up.patient.email],
                headers={"Message-ID": f"<follow-up-{follow_up.public_id}-patient@{MAIL_DOMAIN}>"},
            )
        )
    return messages


def _due_candidates(now: dt.datetime, size: int) -> list[FollowUp]:
    """The next `size` due follow-ups, oldest first, with what their messages need and no more
    (`DUE_FIELDS`), in one query and without locks: each is then claimed, or passed over, in a
    transaction of its own (`_claim`). Ordered by `notify_at` alone, which the `followup_to_send`
    index gives: the query reads only the rows it takes, where a tie-break on `id` made it join and
    sort every due row for each read (12 ms at 2,000 due)."""
    return list(
        FollowUp.objects.filter(status=FollowUpStatus.OPEN, notified_at__isnull=True, notify_at__lte=now)
        .select_related("clinic", "patient", "responsible", "booking")
        .only(*DUE_FIELDS)
        .order_by("notify_at")[:size]
    )


def _claim(follow_up: FollowUp, now: dt.datetime, **fields: Any) -> bool:
    """Inside the caller's transaction: take a follow-up that `_due_candidates` read and write
    `fields` to it, in one statement, if it is still as it was read: open, unsent, due and unchanged
    since (`updated_at` moves with every save, so a reminder moved or handed to someone else
    meanwhile waits for the next read, which sends it with its new values). Returns whether it was
    taken.

    On PostgreSQL the row stays locked (SKIP LOCKED) until the caller's transaction ends: another
    dispatcher passes it over, never waits for it, and a dispatcher that dies holding it (its
    connection gone) leaves it unlocked and unchanged at once. SQLite has no row locks, but each
    transaction holds the database's write lock from its start (`transaction_mode` IMMEDIATE), so
    dispatchers take turns and the second finds the row taken.

    On PostgreSQL the same statement turns `synchronous_commit` off for the caller's transaction
    (`set_config(…, true)` is `SET LOCAL`, here without a round trip of its own): its COMMIT returns
    once the transaction is committed and visible to every other, without waiting for the
    write-ahead log to reach the disk. A worker that dies after that COMMIT cannot undo it; only a
    crash of PostgreSQL itself (or of its machine) within three `wal_writer_delay`s of it (0.6 s by
    default) can, and the follow-ups recorded in that time are then sent again.

    The statement is written out rather than built by the ORM, which took about 1 ms a follow-up to
    compile it, and on PostgreSQL it is planned once per connection (`_execute_planned_once`)."""
    ops = connection.ops
    values = [_follow_up_field(name).get_db_prep_save(value, connection) for name, value in fields.items()]
    values += [
        follow_up.pk,
        str(FollowUpStatus.OPEN),
        ops.adapt_datetimefield_value(now),
        ops.adapt_datetimefield_value(follow_up.updated_at),
    ]
    with connection.cursor() as cursor:
        _execute_planned_once(cursor, _claim_statement(connection.vendor, tuple(fields)), values)
        return cursor.rowcount == 1


@functools.cache
def _follow_up_field(name: str) -> Field[Any, Any]:
    return cast("Field[Any, Any]", FollowUp._meta.get_field(name))


@functools.cache
def _claim_statement(vendor: str, fields: tuple[str, ...]) -> str:
    """`_claim`'s statement, for a database vendor and the fields it writes (`%s` placeholders: the
    values of `fields`, then the row's id, the open status, `now` and the `updated_at` read)."""
    quote, meta = connection.ops.quote_name, FollowUp._meta
    pk, table = quote("id"), quote(meta.db_table)
    assignments = ", ".join(f"{quote(str(_follow_up_field(name).column))} = %s" for name in fields)
    where = (
        f"{pk} = %s AND {quote('status')} = %s AND {quote('notified_at')} IS NULL"
        f" AND {quote('notify_at')} <= %s AND {quote('updated_at')} = %s"
    )
    # Only names from the model's meta are written into the statement; every value is a parameter.
    if vendor != "postgresql":
        return f"UPDATE {table} SET {assignments} WHERE {where}"  # noqa: S608  # nosec B608
    locked = f"SELECT {pk} FROM {table} WHERE {where} FOR UPDATE SKIP LOCKED"  # noqa: S608  # nosec B608
    return (
        f"UPDATE {table} SET {assignments} WHERE {pk} = ({locked})"  # noqa: S608  # nosec B608
        " RETURNING set_config('synchronous_commit', 'off', true)"
    )


# The statements this process has had PostgreSQL plan, by database connection (gone with it).
_planned: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


@functools.cache
def _prepared(sql: str) -> tuple[str, str]:
    """A name for `sql` (`%s` placeholders) as a prepared statement, and the statement that prepares
    it. The name starts with the verb and the table (`kaemdr_update__integration_followup__…`), so
    the suite's audit guard (`tests/audit_guard.py`) sees an EXECUTE of it as the write it is."""
    verb, table = re.match(r"(INSERT INTO|UPDATE)\s+\"?(\w+)", sql).groups()  # type: ignore[union-attr]
    name = f"kaemdr_{verb.split()[0].lower()}__{table}__{hashlib.sha256(sql.encode()).hexdigest()[:12]}"
    numbers = itertools.count(1)
    return name, f"PREPARE {name} AS " + re.sub("%s", lambda _: f"${next(numbers)}", sql)


def _execute_planned_once(cursor: Any, sql: str, values: list[Any]) -> None:
    """Execute `sql` (an INSERT or UPDATE, `%s` placeholders) with `values`. On PostgreSQL, as a
    statement prepared once per connection (PREPARE, then EXECUTE): planning the claim, over the
    follow-up table's 17 indexes, took longer than running it, and the claim and the audit event's
    INSERT are the two statements of every follow-up sent (together 2.5 times faster prepared).

    Not where `DISABLE_SERVER_SIDE_CURSORS` says a transaction-pooling bouncer stands between the app
    and PostgreSQL (it may run each transaction on another server connection, where the statement
    was never prepared), nor on SQLite."""
    if connection.vendor != "postgresql" or connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        cursor.execute(sql, values)
        return
    name, prepare = _prepared(sql)
    planned = _planned.setdefault(connection.connection, set())
    if name not in planned:
        cursor.execute(prepare)  # not undone by a rollback: it lasts as long as the connection
        planned.add(name)
    cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(values))})", values)


def _visit_no_longer_ahead(follow_up: FollowUp, now: dt.datetime) -> bool:
    """For a visit reminder: whether its booking (read with the reminder) has begun or gone."""
    if follow_up.kind != Kind.VISIT_REMINDER or follow_up.booking_id is None:
        return False
    booking = follow_up.booking
    return booking is None or booking.status != BookingStatus.BOOKED or booking.starts_at <= now


class _Outcome(enum.Enum):
    SENT = "sent"
    CANCELLED = "cancelled"
    PASSED_OVER = "passed over"  # another dispatcher holds or has taken it, or it changed since read


class _NotHandedOver(Exception):
    """The mail server did not take a follow-up's staff email (the error, as recorded on the row)."""


def _dispatch_one(
    follow_up: FollowUp, *, mail_connection: Any, now: dt.datetime, parts: _MailParts, send_to_patient: bool
) -> _Outcome:
    """Claim, send and record one follow-up in a transaction of its own, which commits as soon as the
    mail server has taken its messages: the statement that claims the row and marks it sent, its
    audit event, the commit (`follow_ups_dispatch_due`). A visit reminder whose visit has begun or
    gone is cancelled instead. Raises `_NotHandedOver` when the staff email was not taken, the claim
    undone with the rest of the transaction."""
    with transaction.atomic(durable=True):
        if _visit_no_longer_ahead(follow_up, now):
            if not _claim(follow_up, now, updated_at=timezone.now()):
                return _Outcome.PASSED_OVER
            _cancel(None, follow_up, VISIT_GONE_OUTCOME)
            return _Outcome.CANCELLED
        sent_fields: dict[str, Any] = {
            "notified_at": now,
            "patient_notified": _patient_copy_due(follow_up, send_to_patient=send_to_patient),
            "last_error": "",
            "updated_at": timezone.now(),
        }
        if follow_up.kind in rules.NOTICE_ONLY_KINDS:  # a reminder's whole job is its message
            sent_fields.update(status=FollowUpStatus.DONE, done_at=now, outcome=SENT_REMINDER_OUTCOME)
        if not _claim(follow_up, now, **sent_fields):
            return _Outcome.PASSED_OVER
        staff_message, *patient_messages = _messages_for(
            follow_up, send_to_patient=send_to_patient, parts=parts
        )
        try:
            mail_connection.open()  # no-op when already open: one connection serves a whole run
            mail_connection.send_messages([staff_message])
        except Exception as error:  # whatever stops the hand-over, the row waits for a retry
            _close_quietly(mail_connection)
            raise _NotHandedOver(f"{type(error).__name__}: {error}"[:300]) from error
        patient_notified = bool(patient_messages)
        # The staff email is out; a refused patient address must not send it again, so the patient's
        # copy is tried once and a refusal is recorded on the row for the clinic to see.
        if patient_messages:
            try:
                mail_connection.send_messages(patient_messages)
            except Exception as error:  # the patient's copy only: the follow-up itself is sent
                _close_quietly(mail_connection)
                patient_notified = False
                refused = f"Patient email not sent: {type(error).__name__}: {error}"[:300]
                logger.warning("follow-up %s: %s", follow_up.public_id, refused)
                FollowUp.objects.filter(pk=follow_up.pk).update(patient_notified=False, last_error=refused)
        _audit_append(
            audit_event(
                **_follow_up_audit_fields(
                    None, IntegrationAuditAction.FOLLOW_UP_SENT, follow_up, patient_notified=patient_notified
                )
            )
        )
    return _Outcome.SENT


def _audit_append(event: AuditEvent) -> None:
    """Append one audit event built by `audit_event`, as `audit_record` would, in one INSERT planned
    once per connection (`_execute_planned_once`): the dispatcher appends one for every follow-up it
    sends, in the transaction that records it as sent."""
    fields = _audit_fields()
    values = [field.get_db_prep_save(field.pre_save(event, True), connection) for field in fields]
    with connection.cursor() as cursor:
        _execute_planned_once(cursor, _audit_statement(), values)
    page_cache.bump_on_commit(action=event.action, clinic_public_id=event.clinic_public_id)


@functools.cache
def _audit_fields() -> list[Any]:
    return [field for field in AuditEvent._meta.concrete_fields if not field.primary_key]


@functools.cache
def _audit_statement() -> str:
    quote = connection.ops.quote_name
    table, columns = quote(AuditEvent._meta.db_table), ", ".join(quote(f.column) for f in _audit_fields())
    placeholders = ", ".join(["%s"] * len(_audit_fields()))
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608  # nosec B608


def _record_failure(follow_up: FollowUp, now: dt.datetime, failure: str) -> None:
    """In a transaction of its own (the failed send's was undone): keep the follow-up for a retry
    after its back-off (`rules.retry_delay`), with the error, and audit the attempt. Nothing is
    written if another dispatcher has taken the row meanwhile."""
    logger.warning("follow-up %s not sent: %s", follow_up.public_id, failure)
    attempts = follow_up.attempts + 1
    with transaction.atomic(durable=True):
        if _claim(
            follow_up,
            now,
            attempts=attempts,
            last_error=failure,
            notify_at=now + rules.retry_delay(attempts),
            updated_at=timezone.now(),
        ):
            _follow_up_audit(None, IntegrationAuditAction.FOLLOW_UP_SEND_FAILED, follow_up, attempts=attempts)


def follow_ups_dispatch_due(*, limit: int = 1000, now: dt.datetime | None = None) -> int:
    """Send up to `limit` due follow-ups over one mail connection; returns how many were sent. A
    failed send is audited and its row tried again after its back-off; three failures in a row stop
    the run (the rows left wait for the next run). A visit reminder whose visit has begun or gone is
    cancelled, not sent.

    Due rows are read 50 at a time without locks (`_due_candidates`); each is then dispatched in a
    transaction of its own (`_dispatch_one`): one statement claims the row and marks it sent
    (`_claim`: SKIP LOCKED on PostgreSQL), its messages are handed to the mail server, its audit
    event is added, and the transaction commits, without waiting for the disk (`_claim`). Hence:
    - two dispatchers never send the same row: a row is locked by one from its claim to the commit
      that records it as sent, and the others pass locked rows over;
    - a worker process that dies before the mail server accepts a row's staff email leaves the row
      unsent (its transaction rolls back, its lock goes with its connection), and the next run
      sends it;
    - a worker process that dies after the mail server accepted and before the commit (a window of
      a few statements) leaves that one row unrecorded, and the next run sends it again: at most
      one follow-up per process killed, its staff email and, where the clinic sends them, the
      patient's copy, so each recipient gets at most one duplicate. Every other follow-up it sent is
      committed, which a dead worker cannot undo; the fixed Message-ID lets a mail system
      recognise the duplicate;
    - a crash of PostgreSQL itself (or its machine) can forget the commits of its last 0.6 s
      (three `wal_writer_delay`s), whose follow-ups are then sent again;
    - every row recorded as sent has its audit event, written in the same transaction;
    - a broker that restarts empty loses nothing, since the rows are the queue.
    """
    now = now or timezone.now()
    sent = failures_in_a_row = 0
    mail_connection = mail.get_connection()
    parts = _mail_parts()
    patient_emails: dict[int, bool] = {}
    reads_without_progress = 0
    try:
        while sent < limit and failures_in_a_row < FAILURES_IN_A_ROW_BEFORE_STOPPING:
            candidates = _due_candidates(now, min(DISPATCH_READ_AHEAD, limit - sent))
            if not candidates:
                break
            for clinic_id in {f.clinic_id for f in candidates} - set(patient_emails):
                patient_emails[clinic_id] = integration_settings_for(clinic_id).patient_emails_enabled
            progressed = False
            for follow_up in candidates:
                if failures_in_a_row >= FAILURES_IN_A_ROW_BEFORE_STOPPING:
                    break
                try:
                    outcome = _dispatch_one(
                        follow_up,
                        mail_connection=mail_connection,
                        now=now,
                        parts=parts,
                        send_to_patient=patient_emails[follow_up.clinic_id],
                    )
                except _NotHandedOver as failure:
                    _record_failure(follow_up, now, str(failure))
                    failures_in_a_row += 1
                    progressed = True
                    continue
                if outcome is _Outcome.SENT:
                    sent += 1
                    failures_in_a_row = 0
                progressed = progressed or outcome is not _Outcome.PASSED_OVER
            # A read whose every row another dispatcher took (it was ahead in the same rows) is
            # followed by a fresh one; a second such read in a row leaves what is left to them.
            reads_without_progress = 0 if progressed else reads_without_progress + 1
            if reads_without_progress == 2:
                break
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
    "outcome_follow_up_months",
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
    errors: dict[str, ValidationError] = {}
    for name, parse, code in (
        ("check_in_days", rules.parse_check_in_days, "check_in_days_invalid"),
        (
            "outcome_follow_up_months",
            rules.parse_outcome_follow_up_months,
            "outcome_follow_up_months_invalid",
        ),
    ):
        if name in fields:
            try:
                setattr(row, name, rules.format_days(parse(str(fields[name]))))
            except ValueError as error:
                errors[name] = ValidationError(str(error), code=code)
    if errors:
        raise ValidationError(errors)
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
