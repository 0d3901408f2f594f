"""Writes for screening: open and fill an assessment, record measures, sign, countersign, supersede.

Each is atomic, checks the actor's role and clinic, and leaves an audit event with codes only.
A signed assessment never changes: a change is `assessment_new_version`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db import transaction
from django.utils import timezone

from kaemdr.audit import audit_record
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import require as _require
from pathways.models import Pathway
from pathways.models import Stage
from pathways.registry import MEASURE_RECORDED
from pathways.registry import registry

from . import rules
from .models import AlertStatus
from .models import Assessment
from .models import AssessmentMedication
from .models import AssessmentStatus
from .models import MeasureResponse
from .models import SafetyAlert
from .models import ScreeningSettings
from .selectors import assessment_facts
from .selectors import assessment_with_parts
from .selectors import screening_settings_for
from .selectors import thresholds_for


class ScreeningAuditAction:
    OPENED = "assessment.opened"
    UPDATED = "assessment.updated"
    VIEWED = "assessment.viewed"
    MEDICATION_ADDED = "assessment.medication_added"
    MEDICATION_REMOVED = "assessment.medication_removed"
    SIGNED = "assessment.signed"
    COUNTERSIGNED = "assessment.countersigned"
    SUPERSEDED = "assessment.superseded"
    MEASURE_RECORDED = "measure.recorded"
    ALERT_RAISED = "safety_alert.raised"
    ALERT_ACKNOWLEDGED = "safety_alert.acknowledged"
    ALERT_DOSING_OVERRIDDEN = "safety_alert.dosing_override_signed"
    ENDED_BY_AGE = "assessment.ended_by_age"
    SETTINGS_UPDATED = "screening_settings.updated"


ASSESSMENT_FIELDS = (
    "current_crisis",
    "housing_stable",
    "has_support_person",
    "escort_available",
    "support_notes",
    "agent",
    "route",
    "systolic",
    "diastolic",
    "heart_rate",
    "weight_kg",
    "history_reviewed",
    "condition_codes",
    "medications_reviewed",
)


def _audit(actor: User | None, action: str, assessment: Assessment, **data: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="screening.Assessment",
        target_public_id=assessment.public_id,
        patient_public_id=assessment.pathway.patient.public_id,
        data=data,
    )


def _lock(assessment: Assessment) -> Assessment:
    return (
        Assessment.objects.select_for_update(of=("self",))
        .select_related("pathway__patient")
        .get(pk=assessment.pk)
    )


def _require_draft(assessment: Assessment) -> None:
    if assessment.status != AssessmentStatus.DRAFT:
        raise ValidationError(
            "This assessment is signed and read-only. Start a new version to change it.",
            code="assessment_signed",
        )


@transaction.atomic
def assessment_open(*, actor: User, pathway: Pathway) -> Assessment:
    """Open the pathway's first assessment. The pathway must be in the assessment stage; later
    changes go through `assessment_new_version`."""
    _require(actor, Capability.SCREENING_EDIT, pathway.clinic_id)
    pathway = Pathway.objects.select_for_update().select_related("patient").get(pk=pathway.pk)
    if pathway.assessments.exists():
        raise ValidationError(
            "This pathway already has an assessment: continue it, or start a new version of the signed one.",
            code="assessment_exists",
        )
    if pathway.stage != Stage.ASSESSMENT:
        raise ValidationError(
            "Move the pathway to the assessment stage before opening an assessment.",
            code="assessment_wrong_stage",
        )
    assessment = Assessment.objects.create(
        clinic_id=pathway.clinic_id, pathway=pathway, opened_by=actor, version=1
    )
    _audit(actor, ScreeningAuditAction.OPENED, assessment, version=1)
    return assessment


def _clean_fields(assessment: Assessment, fields: dict[str, Any]) -> None:
    errors: dict[str, list[ValidationError]] = {}
    unknown = set(fields) - set(ASSESSMENT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown assessment fields: {sorted(unknown)}")
    if "condition_codes" in fields:
        codes = fields["condition_codes"]
        if not isinstance(codes, list | tuple) or any(code not in rules.CONDITIONS_BY_CODE for code in codes):
            errors.setdefault("condition_codes", []).append(
                ValidationError("Choose conditions from the catalogue.", code="unknown_condition")
            )
        else:
            fields["condition_codes"] = sorted(set(codes))
    if fields.get("weight_kg") is not None:
        try:
            fields["weight_kg"] = Decimal(str(fields["weight_kg"])).quantize(Decimal("0.1"))
        except (InvalidOperation, ValueError):
            # Not a number, or too large to hold: `full_clean` below names it against the field.
            fields["weight_kg"] = Decimal("NaN")
    for name, value in fields.items():
        setattr(assessment, name, value)
    # An agent or route outside the catalogue is refused by `full_clean` below, against its field.
    agents, routes = {a.value for a in rules.Agent}, {r.value for r in rules.Route}
    if assessment.agent in agents and assessment.route in routes:
        problem = rules.route_error(assessment.agent, assessment.route)
        if problem:
            errors.setdefault("route", []).append(ValidationError(problem, code="screening_route_mismatch"))
    if (
        assessment.systolic is not None
        and assessment.diastolic is not None
        and assessment.diastolic >= assessment.systolic
    ):
        errors.setdefault("diastolic", []).append(
            ValidationError(
                "The diastolic pressure must be below the systolic.", code="diastolic_above_systolic"
            )
        )
    try:
        assessment.full_clean(
            exclude=["clinic", "pathway", "opened_by", "supersedes"],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as error:
        for name, messages in error.error_dict.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def assessment_update(*, actor: User, assessment: Assessment, **fields: Any) -> Assessment:
    """Save part or all of a draft. Half-filled drafts are fine; out-of-range values are refused."""
    _require(actor, Capability.SCREENING_EDIT, assessment.clinic_id)
    assessment = _lock(assessment)
    _require_draft(assessment)
    before = {name: getattr(assessment, name) for name in fields}
    _clean_fields(assessment, dict(fields))
    changed = sorted(name for name in fields if getattr(assessment, name) != before[name])
    if changed:
        assessment.save()
        _audit(actor, ScreeningAuditAction.UPDATED, assessment, fields=changed)
    return assessment


@transaction.atomic
def medication_add(
    *, actor: User, assessment: Assessment, name: str, medication_class: str, dose: str = ""
) -> AssessmentMedication:
    _require(actor, Capability.SCREENING_EDIT, assessment.clinic_id)
    assessment = _lock(assessment)
    _require_draft(assessment)
    medication = AssessmentMedication(
        assessment=assessment, name=name.strip(), medication_class=medication_class, dose=dose.strip()
    )
    medication.full_clean(exclude=["assessment"])
    medication.save()
    _audit(actor, ScreeningAuditAction.MEDICATION_ADDED, assessment, medication_class=medication_class)
    return medication


@transaction.atomic
def medication_remove(*, actor: User, medication: AssessmentMedication) -> None:
    _require(actor, Capability.SCREENING_EDIT, medication.assessment.clinic_id)
    assessment = _lock(medication.assessment)
    _require_draft(assessment)
    medication_class = medication.medication_class
    AssessmentMedication.objects.filter(pk=medication.pk, assessment=assessment).delete()
    _audit(actor, ScreeningAuditAction.MEDICATION_REMOVED, assessment, medication_class=medication_class)


@transaction.atomic
def measure_record(
    *,
    actor: User,
    pathway: Pathway,
    instrument: str,
    answers: Any,
    assessment: Assessment | None = None,
    administered_at: dt.datetime | None = None,
) -> MeasureResponse:
    """Record one administration, scored by the rules; urgent flags raise safety alerts.

    With an assessment (a draft), it is that assessment's baseline for the instrument and replaces
    an earlier entry; without one, it is a repeat administration on the pathway.
    """
    _require(actor, Capability.MEASURE_RECORD, pathway.clinic_id)
    if assessment is None and not pathway.takes_measures:
        raise NotFoundOrForbidden()  # a discontinued pathway takes no more measures (a completed one
        # does: its outcome follow-ups after the course ask for them)
    if assessment is not None:
        _require(actor, Capability.SCREENING_EDIT, assessment.clinic_id)
        assessment = _lock(assessment)
        _require_draft(assessment)
        if assessment.pathway_id != pathway.pk:
            raise NotFoundOrForbidden()
    try:
        scored = rules.score(instrument, answers)
    except rules.AnswerError as error:
        raise ValidationError(
            {key: ValidationError(message, code="invalid_answer") for key, message in error.errors.items()}
        ) from None
    when = administered_at or timezone.now()
    if when > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationError({"administered_at": ValidationError("This is in the future.", code="future")})
    values = {
        "clinic_id": pathway.clinic_id,
        "pathway": pathway,
        "answers": answers,
        "total": Decimal(str(scored.total)),
        "band": scored.band,
        "band_label": scored.band_label,
        "flags": [{"code": f.code, "text": f.text, "urgent": f.urgent} for f in scored.flags],
        "administered_at": when,
        "recorded_by": actor,
    }
    existing = (
        MeasureResponse.objects.select_for_update()
        .filter(assessment=assessment, instrument=instrument)
        .first()
        if assessment is not None
        else None
    )
    if existing is not None:
        for name, value in values.items():
            setattr(existing, name, value)
        existing.carried_from = None
        existing.save()
        response = existing
    else:
        response = MeasureResponse.objects.create(
            assessment=assessment, instrument=scored.instrument, **values
        )
    audit_record(
        actor=actor,
        action=ScreeningAuditAction.MEASURE_RECORDED,
        target_type="screening.MeasureResponse",
        target_public_id=response.public_id,
        patient_public_id=pathway.patient.public_id,
        data={"instrument": instrument, "band": scored.band, "flags": [f.code for f in scored.flags]},
    )
    for flag in scored.flags:
        if flag.urgent:
            _raise_alert(actor=actor, pathway=pathway, response=response, code=flag.code, text=flag.text)
    if assessment is None:
        registry.emit(MEASURE_RECORDED, response=response, actor=actor)
    return response


def _raise_alert(*, actor: User, pathway: Pathway, response: MeasureResponse, code: str, text: str) -> None:
    # The pathway row is locked as the dosing gates lock it (`sessions.gates`), so an alert and a
    # booking or dose made at the same moment are decided one after the other: never both unseen.
    Pathway.objects.select_for_update().filter(pk=pathway.pk).values_list("pk", flat=True).get()
    alert, created = SafetyAlert.objects.get_or_create(
        measure_response=response,
        code=code,
        defaults={
            "clinic_id": pathway.clinic_id,
            "pathway": pathway,
            "text": text[:300],
            "raised_at": timezone.now(),
        },
    )
    if created:
        audit_record(
            actor=actor,
            action=ScreeningAuditAction.ALERT_RAISED,
            target_type="screening.SafetyAlert",
            target_public_id=alert.public_id,
            patient_public_id=pathway.patient.public_id,
            data={"code": code},
        )


@transaction.atomic
def safety_alert_acknowledge(*, actor: User, alert: SafetyAlert, action_taken: str) -> SafetyAlert:
    """Close an alert by recording what was done (a safety plan, a referral, a call)."""
    _require(actor, Capability.SAFETY_ALERT_ACKNOWLEDGE, alert.clinic_id)
    alert = (
        SafetyAlert.objects.select_for_update(of=("self",))
        .select_related("pathway__patient")
        .get(pk=alert.pk)
    )
    if not action_taken.strip():
        raise ValidationError(
            {
                "action_taken": ValidationError(
                    "Record what was done about this alert.", code="alert_action_required"
                )
            }
        )
    if alert.status != "open":
        raise ValidationError("This alert is already acknowledged.", code="alert_already_acknowledged")
    alert.status = "acknowledged"
    alert.acknowledged_by = actor
    alert.acknowledged_at = timezone.now()
    alert.action_taken = action_taken.strip()
    alert.save()
    audit_record(
        actor=actor,
        action=ScreeningAuditAction.ALERT_ACKNOWLEDGED,
        target_type="screening.SafetyAlert",
        target_public_id=alert.public_id,
        patient_public_id=alert.pathway.patient.public_id,
        data={"code": alert.code},
    )
    return alert


@transaction.atomic
def safety_alert_dosing_override_sign(*, actor: User, alert: SafetyAlert, reason: str) -> SafetyAlert:
    """A prescriber signs, with a reason, that dosing may go ahead while the alert is still open.

    The alert stays open (on the pathway page and the dashboards) until someone records the action
    taken; only the dosing gates (`sessions.gates`) let a booking and a dose through. Refused on an
    acknowledged alert (nothing blocks dosing any more), on one already overridden, and without a
    reason."""
    _require(actor, Capability.SAFETY_ALERT_DOSING_OVERRIDE, alert.clinic_id)
    alert = (
        SafetyAlert.objects.select_for_update(of=("self",))
        .select_related("pathway__patient")
        .get(pk=alert.pk)
    )
    if alert.status != AlertStatus.OPEN:
        raise ValidationError(
            "This alert is acknowledged: it no longer stops dosing, so there is nothing to override.",
            code="alert_not_open",
        )
    if alert.dosing_override_at is not None:
        raise ValidationError("Dosing is already overridden for this alert.", code="alert_already_overridden")
    reason = reason.strip()
    if not reason:
        raise ValidationError(
            {
                "reason": ValidationError(
                    "Give the reason dosing may go ahead.", code="alert_override_reason_required"
                )
            }
        )
    alert.dosing_override_by, alert.dosing_override_at = actor, timezone.now()
    alert.dosing_override_reason = reason
    alert.save(
        update_fields=["dosing_override_by", "dosing_override_at", "dosing_override_reason", "updated_at"]
    )
    audit_record(
        actor=actor,
        action=ScreeningAuditAction.ALERT_DOSING_OVERRIDDEN,
        target_type="screening.SafetyAlert",
        target_public_id=alert.public_id,
        patient_public_id=alert.pathway.patient.public_id,
        data={"code": alert.code},
    )
    return alert


def _supersede_previous(assessment: Assessment, actor: User) -> None:
    previous = assessment.supersedes
    if previous is not None and previous.status == AssessmentStatus.SIGNED:
        Assessment.objects.filter(pk=previous.pk).update(status=AssessmentStatus.SUPERSEDED)
        _audit(actor, ScreeningAuditAction.SUPERSEDED, previous, superseded_by_version=assessment.version)


def _make_current(assessment: Assessment, *, at: dt.datetime, settings: ScreeningSettings) -> None:
    assessment.status = AssessmentStatus.SIGNED
    assessment.valid_until = rules.screening_valid_until(
        signed_at=at, valid_days=settings.screening_valid_days
    )


@transaction.atomic
def assessment_sign(*, actor: User, assessment: Assessment, decision: str, reason: str = "") -> Assessment:
    """Sign the eligibility decision of a complete draft. Prescribers only.

    The proposal is computed afresh from what is recorded now and stored with the signature.
    Deciding against it needs a written reason; a decision that the clinic wants two prescribers
    for waits for `assessment_countersign`.
    """
    _require(actor, Capability.SCREENING_SIGN, assessment.clinic_id)
    assessment = _lock(assessment)
    _require_draft(assessment)
    full = assessment_with_parts(assessment)
    facts = assessment_facts(full)
    missing = rules.missing_parts(facts)
    if missing:
        raise ValidationError(
            [ValidationError(f"Not complete: {part}", code="assessment_incomplete") for part in missing]
        )
    settings = screening_settings_for(assessment.clinic_id)
    proposal = rules.propose(facts, thresholds_for(settings))
    problem = rules.signature_problem(proposal=proposal.decision, decision=decision, reason=reason)
    if problem:
        field = "decision" if decision not in rules.Decision.__members__.values() else "reason"
        raise ValidationError({field: ValidationError(problem, code="assessment_decision_needs_reason")})
    second = rules.second_signature_reasons(
        proposal=proposal.decision,
        decision=decision,
        condition_codes=facts.condition_codes,
        second_signature_codes=settings.second_signature_codes,
        agent=facts.agent,
    )
    now = timezone.now()
    assessment.proposal = proposal.decision
    assessment.proposal_reasons = [r.as_dict() for r in proposal.reasons]
    assessment.decision = decision
    assessment.decision_reason = reason.strip()
    assessment.second_signature_reasons = second
    assessment.signed_by = actor
    assessment.signed_at = now
    if second:
        assessment.status = AssessmentStatus.AWAITING_COUNTERSIGNATURE
    else:
        _make_current(assessment, at=now, settings=settings)
    assessment.save()
    _audit(
        actor,
        ScreeningAuditAction.SIGNED,
        assessment,
        decision=decision,
        proposal=proposal.decision,
        against_proposal=decision != proposal.decision,
        needs_second_signature=bool(second),
    )
    if not second:
        _supersede_previous(assessment, actor)
    return assessment


@transaction.atomic
def assessment_countersign(*, actor: User, assessment: Assessment) -> Assessment:
    """A second prescriber (not the first signer) confirms a decision that needs two signatures."""
    _require(actor, Capability.SCREENING_SIGN, assessment.clinic_id)
    assessment = _lock(assessment)
    if assessment.status != AssessmentStatus.AWAITING_COUNTERSIGNATURE:
        raise ValidationError(
            "This assessment is not waiting for a second signature.",
            code="assessment_not_awaiting_countersignature",
        )
    if assessment.signed_by_id == actor.pk:
        raise ValidationError(
            "The second signature must come from another prescriber: ask a colleague to countersign.",
            code="countersignature_same_prescriber",
        )
    now = timezone.now()
    assessment.countersigned_by = actor
    assessment.countersigned_at = now
    _make_current(assessment, at=now, settings=screening_settings_for(assessment.clinic_id))
    assessment.save()
    _audit(actor, ScreeningAuditAction.COUNTERSIGNED, assessment, decision=assessment.decision)
    _supersede_previous(assessment, actor)
    return assessment


@transaction.atomic
def assessment_new_version(*, actor: User, assessment: Assessment) -> Assessment:
    """Start a new draft from a signed (or awaiting) version: everything is copied, measures included
    (marked as carried over), and the new version supersedes the old one once it is signed."""
    _require(actor, Capability.SCREENING_EDIT, assessment.clinic_id)
    source = _lock(assessment)
    if source.status not in (AssessmentStatus.SIGNED, AssessmentStatus.AWAITING_COUNTERSIGNATURE):
        raise ValidationError("Only a signed assessment gets a new version.", code="assessment_not_signed")
    pathway = Pathway.objects.select_for_update().get(pk=source.pathway_id)
    if not pathway.is_open:
        raise ValidationError(
            "This pathway is closed: open a new pathway to screen again.", code="assessment_pathway_closed"
        )
    latest = Assessment.objects.filter(pathway=pathway).order_by("-version").first()
    if latest is not None and latest.pk != source.pk:
        raise ValidationError("A newer version exists: work on that one.", code="assessment_not_latest")
    if source.status == AssessmentStatus.AWAITING_COUNTERSIGNATURE:
        # The unsigned decision is withdrawn: the new draft replaces it.
        Assessment.objects.filter(pk=source.pk).update(status=AssessmentStatus.SUPERSEDED)
        supersedes = source.supersedes
    else:
        supersedes = source
    copy = Assessment(
        clinic_id=source.clinic_id,
        pathway=pathway,
        version=source.version + 1,
        supersedes=supersedes,
        opened_by=actor,
        **{name: getattr(source, name) for name in ASSESSMENT_FIELDS},
    )
    try:
        with transaction.atomic():
            copy.save()
    except IntegrityError:
        raise ValidationError(
            "A new version was started at the same time: open the newest version.",
            code="assessment_version_race",
        ) from None
    AssessmentMedication.objects.bulk_create(
        AssessmentMedication(assessment=copy, name=m.name, medication_class=m.medication_class, dose=m.dose)
        for m in source.medications.all()
    )
    MeasureResponse.objects.bulk_create(
        MeasureResponse(
            clinic_id=m.clinic_id,
            pathway_id=m.pathway_id,
            assessment=copy,
            carried_from=m,
            instrument=m.instrument,
            answers=m.answers,
            total=m.total,
            band=m.band,
            band_label=m.band_label,
            flags=m.flags,
            administered_at=m.administered_at,
            recorded_by_id=m.recorded_by_id,
        )
        for m in source.measures.all()
    )
    _audit(actor, ScreeningAuditAction.OPENED, copy, version=copy.version, from_version=source.version)
    return copy


def assessment_viewed(*, actor: User, assessment: Assessment, via: str) -> None:
    _audit(actor, ScreeningAuditAction.VIEWED, assessment, via=via)


SETTINGS_FIELDS = (
    "bp_systolic_threshold",
    "bp_diastolic_threshold",
    "screening_valid_days",
    "second_signature_codes",
    "adults_only",
)


@transaction.atomic
def screening_settings_update(*, actor: User, **fields: Any) -> ScreeningSettings:
    """Change the clinic's screening settings (clinic admins). Applies to screenings signed from now on.
    A setting not given keeps its value."""
    _require(actor, Capability.CLINIC_SETTINGS_MANAGE)
    unknown = set(fields) - set(SETTINGS_FIELDS)
    if unknown:
        raise TypeError(f"Unknown settings: {sorted(unknown)}")
    settings, created = ScreeningSettings.objects.select_for_update().get_or_create(
        clinic_id=actor.member_clinic_id,
        defaults={"second_signature_codes": list(rules.DEFAULT_SECOND_SIGNATURE_CODES)},
    )
    codes = fields.get("second_signature_codes")
    if codes is not None:
        relative = {c.code for c in rules.CONDITIONS if c.severity == rules.Severity.RELATIVE}
        if any(code not in relative for code in codes):
            raise ValidationError(
                {
                    "second_signature_codes": ValidationError(
                        "Choose relative contraindications.", code="invalid"
                    )
                }
            )
        fields["second_signature_codes"] = sorted(set(codes))
    changed = sorted(name for name, value in fields.items() if getattr(settings, name) != value)
    for name, value in fields.items():
        setattr(settings, name, value)
    settings.full_clean(exclude=["clinic"])
    if changed or created:  # a save that changes nothing writes nothing (and needs no audit event)
        settings.save()
        audit_record(
            actor=actor,
            action=ScreeningAuditAction.SETTINGS_UPDATED,
            target_type="screening.ScreeningSettings",
            target_public_id=settings.public_id,
            data={"fields": changed},
        )
    return settings


@transaction.atomic
def screenings_recheck_age(*, patient: Any, actor: User) -> list[Assessment]:
    """After the patient's date of birth is corrected, end now every current signed screening of an
    open pathway that the age rules refuse at today's age (`rules.age_refusal`), so that no booking or
    dose rests on a decision made about a different age; the pathway then needs a new screening,
    whose proposal names the age reason. Each ended screening is audited with the rule. Returns them."""
    now = timezone.now()
    adults_only = screening_settings_for(patient.clinic_id).adults_only
    age = rules.age_on(patient.date_of_birth, timezone.localdate())
    ended = []
    current = (
        Assessment.objects.select_for_update()
        .filter(pathway__patient=patient, status=AssessmentStatus.SIGNED, valid_until__gt=now)
        .exclude(pathway__stage__in=(Stage.COMPLETED, Stage.DISCONTINUED))
    )
    for assessment in current:
        reason = rules.age_refusal(age_years=age, agent=assessment.agent or None, adults_only=adults_only)
        if reason is None:
            continue
        assessment.valid_until = now
        assessment.save(update_fields=["valid_until", "updated_at"])
        audit_record(
            actor=actor,
            action=ScreeningAuditAction.ENDED_BY_AGE,
            target_type="screening.Assessment",
            target_public_id=assessment.public_id,
            patient_public_id=patient.public_id,
            data={"rule": reason.rule, "version": assessment.version},
        )
        ended.append(assessment)
    return ended
