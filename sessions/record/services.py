"""Writes for the dosing record: opening it from a booking, pre-dose checks, vitals, the dose and its
overrides, scales, adverse events, discharge, the monitoring form, signing and addenda. Each is the one
door to its part of the record: pages, API and tasks all pass through it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from kaemdr.audit import audit_record
from kaemdr.exceptions import Refusal
from kaemdr.exceptions import text_too_long
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import require as _require
from pathways.registry import MONITORING_FORM_FILED
from pathways.registry import SESSION_COMPLETED
from pathways.registry import SESSION_OPENED
from pathways.registry import registry
from screening import selectors as screening_selectors
from screening.rules import Agent
from sessions import gates
from sessions.booking import esketamine_rules
from sessions.booking import rules as booking_rules
from sessions.booking.selectors import dosing_settings_for
from sessions.booking.selectors import esketamine_course
from sessions.booking.services import esketamine_label_of
from sessions.booking.services import refusal
from sessions.models import AdverseEvent
from sessions.models import Booking
from sessions.models import BookingStatus
from sessions.models import DosingSession
from sessions.models import DosingSettings
from sessions.models import Scale
from sessions.models import ScaleRating
from sessions.models import SessionAddendum
from sessions.models import SessionStatus
from sessions.models import VitalsReading
from sessions.record import rules
from sessions.record.selectors import bp_ceiling
from sessions.record.selectors import dose_range_for
from sessions.record.selectors import pmf_facts
from sessions.record.selectors import rems_medication_classes
from sessions.record.selectors import vital_limits

# --- The session record ------------------------------------------------------------------------------


class RecordAuditAction:
    OPENED = "session.opened"
    CHECKS = "session.pre_dose_checks"
    VITALS = "session.vitals_recorded"
    OVERRIDE = "session.override_signed"
    DOSE_OVERRIDE = "session.dose_override_signed"
    DOSE = "session.dose_started"
    DEVICE = "session.device_given"
    DOSE_END = "session.dose_ended"
    BP_REVIEW = "session.bp_rise_reviewed"
    PMF_MEDICATIONS = "session.monitoring_form_medications_confirmed"
    SCALE = "session.scale_recorded"
    ADVERSE_EVENT = "session.adverse_event"
    DISCHARGED = "session.discharged"
    PMF = "session.monitoring_form_updated"
    PMF_FILED = "session.monitoring_form_filed"
    LEAVE_CHECKLIST = "session.leave_checklist_recorded"
    SIGNED = "session.signed"
    ADDENDUM = "session.addendum"
    VIEWED = "session.viewed"


def _session_audit(actor: User, action: str, session: DosingSession, **data: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="dosing.DosingSession",
        target_public_id=session.public_id,
        patient_public_id=session.booking.patient.public_id,
        data=data,
    )


def _lock_session(session: DosingSession) -> DosingSession:
    return (
        DosingSession.objects.select_for_update(of=("self",))
        .select_related("booking__patient", "booking__pathway")
        .get(pk=session.pk)
    )


def _require_status(session: DosingSession, *allowed: str) -> None:
    if session.status not in allowed:
        if session.status == SessionStatus.SIGNED:
            raise ValidationError(
                "This record is signed and read-only; add an addendum instead.", code="signed"
            )
        labels = dict(SessionStatus.choices)
        raise ValidationError(
            f"Not possible once the session is '{labels[session.status].lower()}'.", code="wrong_status"
        )


@transaction.atomic
def session_open(*, actor: User, booking: Booking) -> DosingSession:
    """Open the monitoring record of a booked session (once; a second call returns the same record)."""
    _require(actor, Capability.SESSION_RECORD, booking.clinic_id)
    locked = Booking.objects.select_for_update(of=("self",)).select_related("patient").get(pk=booking.pk)
    if locked.status == BookingStatus.CANCELLED:
        raise ValidationError("This booking is cancelled.", code="cancelled")
    existing = DosingSession.objects.filter(booking=locked).first()
    if existing is not None:
        return existing
    session = DosingSession.objects.create(
        booking=locked,
        clinic_id=locked.clinic_id,
        created_at=timezone.now(),  # the record's clock: what entries on it are checked against
        opened_by=actor,
        fasting_confirmed=locked.fasting_confirmed,
        escort_present=False,
        pmf_required=locked.agent == Agent.ESKETAMINE
        and esketamine_rules.monitoring_form_required(esketamine_label_of(locked.clinic_id)),
    )
    _session_audit(actor, RecordAuditAction.OPENED, session)
    registry.emit(SESSION_OPENED, session=session, actor=actor)
    return session


@transaction.atomic
def session_checks_update(
    *,
    actor: User,
    session: DosingSession,
    fasting_confirmed: bool,
    escort_present: bool,
    consent_confirmed: bool,
) -> DosingSession:
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.PRE_DOSE)
    locked.fasting_confirmed, locked.escort_present, locked.consent_confirmed = (
        fasting_confirmed,
        escort_present,
        consent_confirmed,
    )
    locked.save(update_fields=["fasting_confirmed", "escort_present", "consent_confirmed", "updated_at"])
    _session_audit(
        actor,
        RecordAuditAction.CHECKS,
        locked,
        fasting=fasting_confirmed,
        escort=escort_present,
        consent=consent_confirmed,
    )
    return locked


VITAL_FIELDS = ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")


def _local_hm(session: DosingSession, moment: dt.datetime) -> str:
    return f"{moment.astimezone(session.clinic.zone):%H:%M}"


def _pre_dose_reading(session: DosingSession) -> VitalsReading | None:
    """The pre-dose blood pressure the checks use: the latest full one taken before the dose."""
    return (
        session.vitals.filter(is_pre_dose=True, systolic__isnull=False, diastolic__isnull=False)
        .order_by("-taken_at", "-id")
        .first()
    )


def _entry_window(
    session: DosingSession,
    *,
    now: dt.datetime,
    settings: DosingSettings,
    after: dt.datetime | None = None,
    after_code: str = "",
    after_text: str = "",
    late_limited: bool = True,
) -> rules.EntryWindow:
    """When a time entered on `session` may lie: after the record was opened (or `after`, the pre-dose
    reading or the dose, when later), not in the future, and back at most the clinic's late-entry
    minutes (`late_limited`; an adverse event may be recorded any time after the record opened)."""
    floor, code, text = session.created_at, "before_record_opened", "the record was opened"
    if after is not None and after > floor:
        floor, code, text = after, after_code, after_text
    return rules.EntryWindow(
        now=now,
        floor=floor,
        floor_code=code,
        floor_text=f"{text} ({_local_hm(session, floor)})",
        late_minutes=settings.late_entry_minutes if late_limited else 10**6,
    )


def _post_dose_window(
    session: DosingSession, *, now: dt.datetime, settings: DosingSettings
) -> rules.EntryWindow:
    """Post-dose data is never timed before the dose; pre-dose data never before the record opened."""
    if session.dose_started_at is None:
        return _entry_window(session, now=now, settings=settings)
    return _entry_window(
        session,
        now=now,
        settings=settings,
        after=session.dose_started_at,
        after_code="before_dose",
        after_text="the dose started",
    )


def _checked_time(field: str, when: dt.datetime | None, window: rules.EntryWindow) -> dt.datetime:
    """`when` (the server's now when not given) if the window allows it; refused at `field` otherwise."""
    moment = window.now if when is None else when
    problem = rules.entry_time_problem(moment, window)
    if problem is not None:
        raise ValidationError({field: refusal(problem)})
    return moment


def _late_audit(moment: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    """What the audit event adds for an entry made late: both times."""
    if not rules.is_late_entry(moment, now):
        return {}
    return {"late": True, "occurred_at": moment.isoformat(), "entered_at": now.isoformat()}


@transaction.atomic
def vitals_record(
    *, actor: User, session: DosingSession, taken_at: dt.datetime | None = None, **values: int | None
) -> VitalsReading:
    """Record one reading, timed now or (entered late) a little earlier: before the dose it is a pre-dose
    reading, after it never timed before the dose. Out-of-range values are flagged at once."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.PRE_DOSE, SessionStatus.DOSED)
    unknown = set(values) - set(VITAL_FIELDS)
    if unknown:
        raise TypeError(f"Unknown vitals: {sorted(unknown)}")
    if all(values.get(name) is None for name in VITAL_FIELDS):
        raise ValidationError("Enter at least one reading.", code="empty")
    now = timezone.now()
    settings = dosing_settings_for(locked.clinic_id)
    when = _checked_time("taken_at", taken_at, _post_dose_window(locked, now=now, settings=settings))
    if (
        values.get("systolic") is not None
        and values.get("diastolic") is not None
        and (
            values["diastolic"] >= values["systolic"]  # type: ignore[operator]
        )
    ):
        raise ValidationError(
            {
                "diastolic": ValidationError(
                    "The diastolic must be below the systolic.", code="diastolic_above_systolic"
                )
            }
        )
    reading = VitalsReading(
        session=locked,
        taken_at=when,
        is_pre_dose=locked.status == SessionStatus.PRE_DOSE,
        entered_late=rules.is_late_entry(when, now),
        created_at=now,
        recorded_by=actor,
        **{name: values.get(name) for name in VITAL_FIELDS},
    )
    reading.flags = rules.vital_flags(
        rules.Reading(**{name: values.get(name) for name in VITAL_FIELDS}), vital_limits(settings)
    )
    reading.full_clean(exclude=["session", "recorded_by"])
    reading.save()
    _session_audit(
        actor,
        RecordAuditAction.VITALS,
        locked,
        flagged=bool(reading.flags),
        pre_dose=reading.is_pre_dose,
        **_late_audit(when, now),
    )
    return reading


def session_pre_dose_problems(session: DosingSession) -> list[str]:
    """Why the dose may not start yet, from the checklist and the latest full pre-dose blood pressure
    (the same reading the dose's time may not precede)."""
    pre = _pre_dose_reading(session)
    settings = dosing_settings_for(session.clinic_id)
    checks = rules.PreDoseChecks(
        session.fasting_confirmed,
        session.escort_present,
        session.consent_confirmed,
        pre.systolic if pre else None,
        pre.diastolic if pre else None,
    )
    return rules.pre_dose_problems(
        checks, rules.PreDoseLimits(settings.predose_systolic_max, settings.predose_diastolic_max)
    )


def _bp_ceiling_refusal(session: DosingSession) -> Refusal | None:
    """The ceiling's refusal at the pre-dose blood pressure, or None: at or above the clinic's ceiling no
    override can start a dose, whenever signed. Judged on the latest full pre-dose reading and on any
    single value (a systolic or a diastolic alone) taken since, the highest of each: a partial reading
    at the ceiling is not hidden behind an earlier full one."""
    pre = _pre_dose_reading(session)
    if pre is None:
        return None
    since = list(
        session.vitals.filter(is_pre_dose=True, taken_at__gte=pre.taken_at).values_list(
            "systolic", "diastolic"
        )
    )
    problem = rules.bp_ceiling_problem(
        systolic=max([pre.systolic or 0, *(v[0] for v in since if v[0] is not None)]),
        diastolic=max([pre.diastolic or 0, *(v[1] for v in since if v[1] is not None)]),
        ceiling=bp_ceiling(dosing_settings_for(session.clinic_id)),
    )
    return refusal(problem) if problem is not None else None


def _session_weight(session: DosingSession) -> Decimal | None:
    """The patient's weight on the current screening (what the dose per kg is worked out from)."""
    plan = screening_selectors.current_screening(session.booking.pathway)
    return plan.weight_kg if plan is not None else None


def _dose_range_refusal(session: DosingSession, dose: Decimal) -> Refusal | None:
    """Why `dose` may not start on this record, by the clinic's mg/kg range for the booking's agent and
    route, or None: inside the range, no range (esketamine), or a prescriber approved exactly this dose
    on this record (`session_dose_override_sign`). A missing weight is never approved away."""
    booking = session.booking
    dose_range = dose_range_for(session.clinic_id, agent=booking.agent, route=booking.route)
    if dose_range is None:
        return None
    problem = rules.dose_range_problem(
        dose_mg=dose,
        weight_kg=_session_weight(session),
        dose_range=dose_range,
        label=rules.dose_range_label(booking.agent, booking.route),
    )
    if problem is None:
        return None
    approved = session.dose_override_at is not None and session.dose_override_mg == dose
    if problem.code == "dose_outside_range" and approved:
        return None
    return refusal(problem)


@transaction.atomic
def session_override_sign(*, actor: User, session: DosingSession, reason: str) -> DosingSession:
    """A prescriber signs that the dose may start despite the failing checks, with a reason."""
    _require(actor, Capability.SESSION_OVERRIDE, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.PRE_DOSE)
    problems = session_pre_dose_problems(locked)
    if not problems:
        raise ValidationError(
            "Every pre-dose check passes: there is nothing to override.", code="nothing_to_override"
        )
    if "Record the pre-dose blood pressure." in problems:
        raise ValidationError(
            "Record the pre-dose blood pressure first: an override cannot replace it.", code="no_pre_dose_bp"
        )
    ceiling = _bp_ceiling_refusal(locked)
    if ceiling is not None:
        raise ValidationError([ceiling])
    if not reason.strip():
        raise ValidationError(
            {"reason": ValidationError("Give the reason for the override.", code="required")}
        )
    locked.override_problems, locked.override_reason = problems, reason.strip()
    locked.override_by, locked.override_at = actor, timezone.now()
    locked.save()
    _session_audit(actor, RecordAuditAction.OVERRIDE, locked, problems=len(problems))
    return locked


DOSE_OVERRIDE_REASON_MAX = 2000


def _dose_given(dose_mg: Any) -> Decimal | None:
    """A dose in mg as entered (0.1 to 1000, to one decimal), or None when it is not one."""
    try:
        dose = Decimal(str(dose_mg))
    except (InvalidOperation, ValueError):
        return None
    if not dose.is_finite() or dose <= 0 or dose > 1000 or dose != dose.quantize(Decimal("0.1")):
        return None
    return dose


@transaction.atomic
def session_dose_override_sign(
    *, actor: User, session: DosingSession, dose_mg: Any, reason: str
) -> DosingSession:
    """A prescriber approves one dose outside the clinic's mg/kg range for this record, with a reason:
    the dose may then start at exactly that dose (any other outside the range is still refused). Refused
    for a dose inside the range ("nothing to override"), where the agent has no mg/kg range, and without
    the patient's weight; a later approval replaces an earlier one. Prescribers only (others: 404)."""
    _require(actor, Capability.SESSION_OVERRIDE, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.PRE_DOSE)
    dose = _dose_given(dose_mg)
    errors: dict[str, list[ValidationError]] = {}
    if dose is None:
        errors["dose_mg"] = [ValidationError("Enter the dose in mg (0.1 to 1000).", code="invalid_dose")]
    reason = reason.strip()
    if not reason:
        errors["reason"] = [ValidationError("Give the reason for approving this dose.", code="required")]
    elif len(reason) > DOSE_OVERRIDE_REASON_MAX:
        errors["reason"] = [
            ValidationError(f"Keep the reason to {DOSE_OVERRIDE_REASON_MAX} characters.", code="too_long")
        ]
    weight = _session_weight(locked)
    if dose is not None:
        booking = locked.booking
        problem = rules.dose_override_problem(
            dose_mg=dose,
            weight_kg=weight,
            dose_range=dose_range_for(locked.clinic_id, agent=booking.agent, route=booking.route),
            label=rules.dose_range_label(booking.agent, booking.route),
        )
        if problem is not None:
            errors["dose_mg"] = [refusal(problem)]
    if errors:
        raise ValidationError(errors)
    assert dose is not None
    locked.dose_override_mg, locked.dose_override_reason = dose, reason
    locked.dose_override_by, locked.dose_override_at = actor, timezone.now()
    locked.save(
        update_fields=[
            "dose_override_mg",
            "dose_override_reason",
            "dose_override_by",
            "dose_override_at",
            "updated_at",
        ]
    )
    # The approved dose is on the record; the audit log (clinic admins read it) names the record only.
    _session_audit(actor, RecordAuditAction.DOSE_OVERRIDE, locked)
    return locked


def _esketamine_label_errors(
    session: DosingSession, *, dose: Decimal, start: dt.datetime, label: str, tz: dt.tzinfo
) -> dict[str, list[ValidationError]]:
    """What the clinic's esketamine label refuses in this dose (one read of the course): a dose it
    does not give for day 1 or a later day at the patient's age on the dose's date (at `dose_mg`), or
    a third dose in an induction week, a second from week 5 (for the whole record). Day 1 is the
    course's first dose; this dose is day 1 when no other has been given."""
    booking = session.booking
    day = start.astimezone(tz).date()
    given = [
        s.day for s in esketamine_course(booking.pathway_id, tz=tz) if s.dosed and s.booking_id != booking.pk
    ]
    errors: dict[str, list[ValidationError]] = {}
    wrong_dose = esketamine_rules.dose_problem(
        label,
        dose_mg=float(dose),
        age=esketamine_rules.age_on(booking.patient.date_of_birth, day),
        first_dose=not given,
    )
    if wrong_dose is not None:
        errors["dose_mg"] = [refusal(wrong_dose)]
    too_often = esketamine_rules.frequency_problem(
        label, day_one=min([*given, day]), days=[*given, day], new_day=day
    )
    if too_often is not None:
        errors["__all__"] = [refusal(too_often)]
    return errors


@transaction.atomic
def dose_start(
    *,
    actor: User,
    session: DosingSession,
    dose_mg: Any,
    lot_number: str,
    started_at: dt.datetime | None = None,
) -> DosingSession:
    """Start the dose, timed now or (entered late) a little earlier, never before the pre-dose blood
    pressure. Refused while a pre-dose check fails, unless a prescriber's override covers exactly the
    problems there are now; refused too without a current, eligible screening.

    Esketamine: `dose_mg` is the dose planned (28, 56 or 84 mg, one nasal device each 28 mg) and the
    start is the first device; the others are recorded as they are given (`device_record`). The dose
    and the week's count must be ones the clinic's label allows (`_esketamine_label_errors`)."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.PRE_DOSE)
    booking = locked.booking
    refusals = screening_selectors.screening_gate_refusals(booking.pathway)
    if refusals:
        raise ValidationError([ValidationError(text, code="screening_gate") for text in refusals])
    gates.dose_check(actor=actor, pathway=booking.pathway)
    ceiling = _bp_ceiling_refusal(locked)
    if ceiling is not None:  # no override passes the ceiling, however it was signed
        raise ValidationError([ceiling])
    problems = session_pre_dose_problems(locked)
    if problems and not (locked.override_at and set(problems) <= set(locked.override_problems)):
        raise ValidationError(
            [ValidationError(text, code="pre_dose_check") for text in problems]
            + [ValidationError("A prescriber can sign an override with a reason.", code="override_possible")]
        )
    errors: dict[str, list[ValidationError]] = {}
    try:
        dose = Decimal(str(dose_mg))
    except (InvalidOperation, ValueError):
        dose = Decimal(0)
    if not dose.is_finite():  # NaN cannot even be compared; infinity is no dose either
        dose = Decimal(0)
    esketamine = booking.agent == Agent.ESKETAMINE
    if dose <= 0 or dose > 1000:
        errors.setdefault("dose_mg", []).append(ValidationError("Enter the dose in mg.", code="invalid_dose"))
    elif esketamine and rules.esketamine_planned_devices(float(dose)) is None:
        errors.setdefault("dose_mg", []).append(
            Refusal(
                "Esketamine is given in 28 mg devices: enter 28, 56 or 84 mg.",
                code="devices",
                source=rules.SOURCE_LABEL_DEVICES,
            )
        )
    if "dose_mg" not in errors and (outside := _dose_range_refusal(locked, dose)) is not None:
        errors.setdefault("dose_mg", []).append(outside)
    if not lot_number.strip():
        errors.setdefault("lot_number", []).append(ValidationError("Enter the lot number.", code="required"))
    elif too_long := text_too_long(DosingSession, "lot_number", lot_number, "the lot number"):
        errors.setdefault("lot_number", []).append(too_long)
    now = timezone.now()
    settings = dosing_settings_for(locked.clinic_id)
    pre_dose = _pre_dose_reading(locked)
    window = _entry_window(
        locked,
        now=now,
        settings=settings,
        after=pre_dose.taken_at if pre_dose is not None else None,
        after_code="before_pre_dose_reading",
        after_text="the pre-dose blood pressure",
    )
    start = now if started_at is None else started_at
    problem = rules.entry_time_problem(start, window)
    if problem is not None:
        errors.setdefault("started_at", []).append(refusal(problem))
    if esketamine and not errors.keys() & {"dose_mg", "started_at"}:
        label = settings.esketamine_label
        for field, found in _esketamine_label_errors(
            locked, dose=dose, start=start, label=label, tz=actor.zone
        ).items():
            errors.setdefault(field, []).extend(found)
    if errors:
        raise ValidationError(errors)
    plan = screening_selectors.current_screening(booking.pathway)
    locked.dose_mg, locked.lot_number = dose, lot_number.strip()
    locked.weight_kg = plan.weight_kg if plan is not None else None
    locked.device_times = [start.isoformat()] if esketamine else []
    locked.dose_started_at, locked.dose_started_entered_at = start, now
    if esketamine and rules.esketamine_planned_devices(float(dose)) == 1:
        locked.dose_ended_at, locked.dose_ended_entered_at = start, now
    locked.dosed_by, locked.status = actor, SessionStatus.DOSED
    locked.save()
    _session_audit(
        actor,
        RecordAuditAction.DOSE,
        locked,
        agent=booking.agent,
        route=booking.route,
        overridden=bool(problems),
        dose_approved=locked.dose_override_at is not None and locked.dose_override_mg == dose,
        **_late_audit(start, now),
    )
    return locked


@transaction.atomic
def device_record(
    *, actor: User, session: DosingSession, given_at: dt.datetime | None = None
) -> DosingSession:
    """Record the next esketamine device as it is given: at least 5 minutes after the one before, up to
    the devices the dose plans; the last one ends the dose (observation counts from it)."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.DOSED)
    if locked.booking.agent != Agent.ESKETAMINE:
        raise ValidationError("Only esketamine is given in nasal devices.", code="not_esketamine")
    planned = rules.esketamine_planned_devices(float(locked.dose_mg or 0)) or 0
    given = [dt.datetime.fromisoformat(t) for t in locked.device_times]
    if locked.dose_ended_at is not None or len(given) >= planned:
        raise Refusal(
            f"Every planned device is recorded ({len(given)} of {planned}).",
            code="devices_complete",
            source=rules.SOURCE_LABEL_DEVICES,
        )
    now = timezone.now()
    window = _entry_window(
        locked,
        now=now,
        settings=dosing_settings_for(locked.clinic_id),
        after=given[-1],
        after_code="before_previous_device",
        after_text="the previous device",
    )
    when = _checked_time("given_at", given_at, window)
    gap = rules.device_gap_problem(previous=given[-1], given_at=when)
    if gap is not None:
        raise ValidationError({"given_at": refusal(gap)})
    locked.device_times = [*locked.device_times, when.isoformat()]
    update = ["device_times", "updated_at"]
    if len(locked.device_times) == planned:
        locked.dose_ended_at, locked.dose_ended_entered_at = when, now
        update += ["dose_ended_at", "dose_ended_entered_at"]
    locked.save(update_fields=update)
    _session_audit(
        actor, RecordAuditAction.DEVICE, locked, device=len(locked.device_times), **_late_audit(when, now)
    )
    return locked


@transaction.atomic
def dose_end_record(
    *, actor: User, session: DosingSession, ended_at: dt.datetime | None = None
) -> DosingSession:
    """Record when the dose ended (an infusion's end, a lozenge finished, an injection given), timed now
    or a little earlier, never before the start. For esketamine the last planned device ends the dose
    by itself; ending it here stops after fewer devices, and the dose becomes what was given."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.DOSED)
    if locked.dose_ended_at is not None:
        raise ValidationError("The end of the dose is already recorded.", code="already_ended")
    assert locked.dose_started_at is not None  # dosed
    given = [dt.datetime.fromisoformat(t) for t in locked.device_times]
    last = given[-1] if given else locked.dose_started_at
    now = timezone.now()
    window = _entry_window(
        locked,
        now=now,
        settings=dosing_settings_for(locked.clinic_id),
        after=last,
        after_code="before_dose",
        after_text="the last device" if given else "the dose started",
    )
    when = _checked_time("ended_at", ended_at, window)
    locked.dose_ended_at, locked.dose_ended_entered_at = when, now
    data: dict[str, Any] = {"ended": True}
    if given:
        data["planned_mg"] = str(locked.dose_mg)
        locked.dose_mg = Decimal(len(given) * rules.ESKETAMINE_DEVICE_MG)
    locked.save(update_fields=["dose_ended_at", "dose_ended_entered_at", "dose_mg", "updated_at"])
    _session_audit(actor, RecordAuditAction.DOSE_END, locked, **data, **_late_audit(when, now))
    return locked


SCALE_RANGES = {Scale.CADSS: (0, 92), Scale.MOAAS: (0, 5)}
BPRS_RANGES = {"0-6": (0, 24), "1-7": (4, 28)}


@transaction.atomic
def scale_record(
    *,
    actor: User,
    session: DosingSession,
    scale: str,
    value: int,
    anchors: str = "",
    taken_at: dt.datetime | None = None,
) -> ScaleRating:
    """A scale rating in range: CADSS 0-92 (23 items), MOAA/S 0-5, BPRS+ 0-24 or 4-28 by its anchors;
    timed now or a little earlier, after the dose when the dose has started."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.PRE_DOSE, SessionStatus.DOSED)
    if scale == Scale.BPRS_PLUS:
        if anchors not in BPRS_RANGES:
            raise ValidationError(
                {"anchors": ValidationError("Choose the BPRS+ anchors: 0-6 or 1-7.", code="anchors")}
            )
        low, high = BPRS_RANGES[anchors]
    elif scale in SCALE_RANGES:
        low, high = SCALE_RANGES[Scale(scale)]
        anchors = ""
    else:
        raise ValidationError({"scale": ValidationError("Choose a scale.", code="invalid")})
    if not low <= value <= high:
        raise ValidationError(
            {"value": ValidationError(f"Enter a number from {low} to {high}.", code="out_of_range")}
        )
    now = timezone.now()
    window = _post_dose_window(locked, now=now, settings=dosing_settings_for(locked.clinic_id))
    when = _checked_time("taken_at", taken_at, window)
    rating = ScaleRating.objects.create(
        session=locked,
        scale=scale,
        value=value,
        anchors=anchors,
        taken_at=when,
        entered_late=rules.is_late_entry(when, now),
        created_at=now,
        recorded_by=actor,
    )
    _session_audit(actor, RecordAuditAction.SCALE, locked, scale=scale, **_late_audit(when, now))
    return rating


@transaction.atomic
def adverse_event_record(
    *,
    actor: User,
    session: DosingSession,
    description: str,
    severity: str,
    action_taken: str,
    occurred_at: dt.datetime | None = None,
) -> AdverseEvent:
    """An adverse event, timed when it happened: any time since the record opened (marked late when
    entered afterwards), never in the future."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.PRE_DOSE, SessionStatus.DOSED, SessionStatus.DISCHARGED)
    now = timezone.now()
    window = _entry_window(
        locked, now=now, settings=dosing_settings_for(locked.clinic_id), late_limited=False
    )
    when = _checked_time("occurred_at", occurred_at, window)
    event = AdverseEvent(
        session=locked,
        description=description.strip(),
        severity=severity,
        action_taken=action_taken.strip(),
        occurred_at=when,
        entered_late=rules.is_late_entry(when, now),
        created_at=now,
        recorded_by=actor,
    )
    event.full_clean(exclude=["session", "recorded_by"])
    event.save()
    _session_audit(
        actor, RecordAuditAction.ADVERSE_EVENT, locked, severity=severity, **_late_audit(when, now)
    )
    return event


def discharge_limits(settings: DosingSettings) -> rules.DischargeLimits:
    return rules.DischargeLimits(
        systolic_max=settings.discharge_systolic_max,
        diastolic_max=settings.discharge_diastolic_max,
        bp_window_minutes=settings.discharge_bp_window_minutes,
        rise_systolic=settings.bp_rise_systolic_margin,
        rise_diastolic=settings.bp_rise_diastolic_margin,
    )


def discharge_state(
    session: DosingSession,
    *,
    alert_and_oriented: bool,
    escort_present: bool,
    dissociation_resolved: bool = False,
    settings: DosingSettings | None = None,
) -> rules.DischargeState:
    """Where the discharge criteria stand now, from the record's vitals and scales (prefetched, or read
    here); times are in the clinic's zone for the messages."""
    tz = session.clinic.zone
    settings = settings or dosing_settings_for(session.clinic_id)
    started = session.dose_started_at
    vitals = list(session.vitals.all())
    pre = [v for v in vitals if v.is_pre_dose and v.systolic is not None and v.diastolic is not None]
    after = [v for v in vitals if started is not None and not v.is_pre_dose and v.taken_at >= started]
    scales = [s for s in session.scales.all() if started is not None and s.taken_at >= started]
    moaas = [s.value for s in scales if s.scale == Scale.MOAAS]
    cadss = [s.value for s in scales if s.scale == Scale.CADSS]

    def local(moment: dt.datetime | None) -> dt.datetime | None:
        return moment.astimezone(tz) if moment is not None else None

    return rules.DischargeState(
        now=timezone.now().astimezone(tz),
        dose_started_at=local(started),
        observation_from=local(session.dose_ended_at),
        esketamine=session.booking.agent == Agent.ESKETAMINE,
        minimum_minutes=rules.minimum_observation_minutes(
            session.booking.agent, settings.minimum_observation_minutes
        ),
        baseline=(pre[-1].systolic, pre[-1].diastolic) if pre else None,  # type: ignore[arg-type]
        readings=tuple(
            rules.TimedReading(
                v.taken_at.astimezone(tz), v.systolic, v.diastolic, bool(v.flags), v.created_at.astimezone(tz)
            )
            for v in after
        ),
        limits=discharge_limits(settings),
        bp_review_at=local(session.bp_review_at),
        last_moaas=moaas[-1] if moaas else None,
        last_cadss=cadss[-1] if cadss else None,
        dissociation_resolved=dissociation_resolved,
        alert_and_oriented=alert_and_oriented,
        escort_present=escort_present,
    )


REASON_MAX_LENGTH = 2000


@transaction.atomic
def session_bp_review_sign(*, actor: User, session: DosingSession, reason: str) -> DosingSession:
    """A prescriber reviews a rise in blood pressure from the pre-dose baseline that reached the clinic's
    margin, and signs with a reason; a later rise needs a review of its own."""
    _require(actor, Capability.SESSION_OVERRIDE, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.DOSED)
    state = discharge_state(locked, alert_and_oriented=True, escort_present=True)
    risen = rules.bp_rise_needing_review(state)
    if risen is None or rules.review_covers(locked.bp_review_at, risen):
        raise ValidationError(
            "No rise in blood pressure from baseline is waiting for a review.", code="nothing_to_review"
        )
    if not reason.strip():
        raise ValidationError({"reason": ValidationError("Give the reason for the review.", code="required")})
    if len(reason.strip()) > REASON_MAX_LENGTH:
        raise ValidationError(
            {
                "reason": ValidationError(
                    f"Keep the reason to {REASON_MAX_LENGTH} characters.", code="too_long"
                )
            }
        )
    locked.bp_review_reason, locked.bp_review_by, locked.bp_review_at = reason.strip(), actor, timezone.now()
    locked.save(update_fields=["bp_review_reason", "bp_review_by", "bp_review_at", "updated_at"])
    # The reading is named by its time, not its values: the audit log holds ids and codes only.
    _session_audit(actor, RecordAuditAction.BP_REVIEW, locked, reading_taken_at=risen.taken_at.isoformat())
    return locked


@transaction.atomic
def session_discharge(
    *,
    actor: User,
    session: DosingSession,
    alert_and_oriented: bool,
    escort_present: bool,
    dissociation_resolved: bool = False,
) -> DosingSession:
    """Discharge, at the server's time, once every criterion of `rules.discharge_missing` is met, and for
    esketamine under the EU/UK label the Readiness to Leave checklist is complete
    (`leave_checklist_criteria`); otherwise refuse with each unmet one (its code, what to do, and its
    source)."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.DOSED)
    settings = dosing_settings_for(locked.clinic_id)
    missing = rules.discharge_missing(
        discharge_state(
            locked,
            alert_and_oriented=alert_and_oriented,
            escort_present=escort_present,
            dissociation_resolved=dissociation_resolved,
            settings=settings,
        )
    ) + leave_checklist_criteria(locked, label=settings.esketamine_label)
    if missing:
        raise ValidationError([refusal(criterion) for criterion in missing])
    locked.alert_and_oriented, locked.escort_present_at_discharge = alert_and_oriented, escort_present
    locked.dissociation_resolved = dissociation_resolved
    locked.discharged_at, locked.discharged_by, locked.status = (
        timezone.now(),
        actor,
        SessionStatus.DISCHARGED,
    )
    locked.save()
    _session_audit(actor, RecordAuditAction.DISCHARGED, locked)
    return locked


def leave_checklist_due(session: DosingSession, *, label: str) -> bool:
    """Whether discharge of this session waits for the Readiness to Leave checklist: esketamine under the
    EU/UK label (`label`, the clinic's), where there is no REMS monitoring form."""
    return session.booking.agent == Agent.ESKETAMINE and not esketamine_rules.monitoring_form_required(label)


def monitoring_form_due(session: DosingSession, *, label: str) -> bool:
    """Whether this session's record asks for the REMS monitoring form: esketamine under the US label."""
    return session.booking.agent == Agent.ESKETAMINE and esketamine_rules.monitoring_form_required(label)


def monitoring_form_owed(session: DosingSession, *, label: str) -> bool:
    """Whether the record owes the REMS monitoring form now: it is due under the clinic's label
    (`monitoring_form_due`), or the record was signed owing it (`pmf_required`, settled at signature)
    and its filing outlives a later change of label."""
    return monitoring_form_due(session, label=label) or (
        session.status == SessionStatus.SIGNED and session.pmf_required
    )


def leave_checklist_criteria(session: DosingSession, *, label: str) -> list[booking_rules.Criterion]:
    """The Readiness to Leave checklist as a discharge criterion (none when it is not due, or complete)."""
    if not leave_checklist_due(session, label=label):
        return []
    problem = esketamine_rules.leave_checklist_problem(session.leave_checklist)
    return [problem] if problem is not None else []


@transaction.atomic
def leave_checklist_record(*, actor: User, session: DosingSession, items: list[str]) -> DosingSession:
    """A nurse or prescriber who may discharge records the Readiness to Leave items confirmed for this
    session (all of them replace what was recorded; an item left out is unconfirmed). Esketamine under
    the EU/UK label only, while the patient is being monitored; discharge waits for every item."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    if locked.booking.agent != Agent.ESKETAMINE:
        raise ValidationError(
            "Only esketamine sessions have a Readiness to Leave checklist.", code="not_esketamine"
        )
    if not leave_checklist_due(locked, label=esketamine_label_of(locked.clinic_id)):
        raise Refusal(
            "The clinic follows the US prescribing information: esketamine sessions there file the REMS "
            "monitoring form, not the Readiness to Leave checklist.",
            code="leave_checklist_not_applicable",
        )
    _require_status(locked, SessionStatus.DOSED)
    chosen = set(items)
    if chosen - set(esketamine_rules.LEAVE_CHECKLIST_CODES):
        raise ValidationError(
            {"items": ValidationError("Choose among the checklist's items.", code="invalid_choice")}
        )
    locked.leave_checklist = [code for code in esketamine_rules.LEAVE_CHECKLIST_CODES if code in chosen]
    locked.leave_checklist_by, locked.leave_checklist_at = actor, timezone.now()
    locked.save(update_fields=["leave_checklist", "leave_checklist_by", "leave_checklist_at", "updated_at"])
    missing = esketamine_rules.leave_checklist_missing(locked.leave_checklist)
    _session_audit(
        actor,
        RecordAuditAction.LEAVE_CHECKLIST,
        locked,
        items=locked.leave_checklist,
        complete=not missing,
    )
    return locked


def _require_monitoring_form(session: DosingSession, *, label: str) -> None:
    """Refuse monitoring-form data on a record that has no such form (racemic ketamine, or esketamine
    under the EU/UK label)."""
    if session.booking.agent != Agent.ESKETAMINE:
        raise ValidationError("Only esketamine sessions have a monitoring form.", code="not_esketamine")
    if not monitoring_form_due(session, label=label):
        raise Refusal(
            "The clinic follows the EU/UK summary of product characteristics: there is no REMS monitoring "
            "form; complete the Readiness to Leave checklist before discharge instead.",
            code="monitoring_form_not_required",
        )


PMF_FIELDS = (
    "pmf_first_treatment",
    "pmf_sedation",
    "pmf_dissociation",
    "pmf_respiratory_depression",
    "pmf_ready_minutes",
)


@transaction.atomic
def pmf_update(*, actor: User, session: DosingSession, **fields: Any) -> DosingSession:
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    if locked.booking.agent == Agent.ESKETAMINE:  # a racemic record has none either; kept as it was
        _require_monitoring_form(locked, label=esketamine_label_of(locked.clinic_id))
    _require_status(locked, SessionStatus.DOSED, SessionStatus.DISCHARGED)
    unknown = set(fields) - set(PMF_FIELDS)
    if unknown:
        raise TypeError(f"Unknown monitoring-form fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    _session_audit(actor, RecordAuditAction.PMF, locked, fields=sorted(fields))
    return locked


@transaction.atomic
def pmf_medications_confirm(*, actor: User, session: DosingSession, classes: list[str]) -> DosingSession:
    """A prescriber confirms which REMS medication classes the patient takes (the form's concomitant
    medication questions), starting from the screening's medication review."""
    _require(actor, Capability.SESSION_OVERRIDE, session.clinic_id)
    locked = _lock_session(session)
    _require_monitoring_form(locked, label=esketamine_label_of(locked.clinic_id))
    _require_status(locked, SessionStatus.PRE_DOSE, SessionStatus.DOSED, SessionStatus.DISCHARGED)
    allowed = {code for code, _label in rems_medication_classes()}
    if set(classes) - allowed:
        raise ValidationError(
            {"classes": ValidationError("Choose among the REMS medication classes.", code="invalid_choice")}
        )
    locked.pmf_medication_classes = sorted(set(classes))
    locked.pmf_medications_confirmed_by, locked.pmf_medications_confirmed_at = actor, timezone.now()
    locked.save(
        update_fields=[
            "pmf_medication_classes",
            "pmf_medications_confirmed_by",
            "pmf_medications_confirmed_at",
            "updated_at",
        ]
    )
    _session_audit(actor, RecordAuditAction.PMF_MEDICATIONS, locked, classes=locked.pmf_medication_classes)
    return locked


@transaction.atomic
def session_sign(*, actor: User, session: DosingSession) -> DosingSession:
    """Sign the record after discharge; an esketamine record under the US label needs its
    monitoring-form data complete. The booking is then completed. Whether the form is owed (and so
    followed up until filed: `pmf_required`) is settled here, by the label the clinic follows now."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    _require_status(locked, SessionStatus.DISCHARGED)
    if locked.booking.agent == Agent.ESKETAMINE:
        locked.pmf_required = monitoring_form_due(locked, label=esketamine_label_of(locked.clinic_id))
    if locked.pmf_required:
        missing = rules.pmf_missing(pmf_facts(locked))
        if missing:
            raise ValidationError(
                [
                    Refusal(
                        f"Monitoring form: {criterion.message}", code=criterion.code, source=criterion.source
                    )
                    for criterion in missing
                ]
            )
    locked.status, locked.signed_by, locked.signed_at = SessionStatus.SIGNED, actor, timezone.now()
    locked.save()
    Booking.objects.filter(pk=locked.booking_id).update(status=BookingStatus.COMPLETED)
    _session_audit(actor, RecordAuditAction.SIGNED, locked)
    registry.emit(SESSION_COMPLETED, session=locked, actor=actor)
    return locked


@transaction.atomic
def pmf_mark_filed(*, actor: User, session: DosingSession) -> DosingSession:
    """Record that the REMS monitoring form was submitted (due within 7 days of the session)."""
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    if locked.booking.agent != Agent.ESKETAMINE:
        raise ValidationError("Only esketamine sessions have a monitoring form.", code="not_esketamine")
    if locked.status == SessionStatus.SIGNED and not monitoring_form_owed(
        locked, label=esketamine_label_of(locked.clinic_id)
    ):
        raise Refusal(
            "This record was signed under the EU/UK summary of product characteristics: it has no REMS "
            "monitoring form to file.",
            code="monitoring_form_not_required",
        )
    _require_status(locked, SessionStatus.SIGNED)
    if locked.pmf_filed_at is None:
        locked.pmf_filed_at = timezone.now()
        locked.save(update_fields=["pmf_filed_at", "updated_at"])
        _session_audit(actor, RecordAuditAction.PMF_FILED, locked)
        registry.emit(MONITORING_FORM_FILED, session=locked, actor=actor)
    return locked


@transaction.atomic
def session_addendum_add(*, actor: User, session: DosingSession, text: str) -> SessionAddendum:
    _require(actor, Capability.SESSION_RECORD, session.clinic_id)
    locked = _lock_session(session)
    if locked.status != SessionStatus.SIGNED:
        raise ValidationError(
            "Addenda are for signed records; edit the record itself until then.", code="not_signed"
        )
    if not text.strip():
        raise ValidationError({"text": ValidationError("Write the addendum.", code="required")})
    addendum = SessionAddendum.objects.create(session=locked, text=text.strip(), author=actor)
    _session_audit(actor, RecordAuditAction.ADDENDUM, locked)
    return addendum


def session_viewed(*, actor: User, session: DosingSession, via: str) -> None:
    _session_audit(actor, RecordAuditAction.VIEWED, session, via=via)
