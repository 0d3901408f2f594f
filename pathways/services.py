"""Writes for patients and pathways: atomic, checked against the actor's role, and audited.

`pathway_move` is the one door through which any stage change passes: the pages, the API and
background tasks all call it, so the stage machine and every registered gate apply everywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db import transaction
from django.utils import timezone

from kaemdr.audit import audit_record
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import is_active_member
from kaemdr.permissions import require as _require

from .models import CLOSED_STAGES
from .models import Pathway
from .models import PathwayStageChange
from .models import Patient
from .models import Stage
from .registry import PATHWAY_STAGE_CHANGED
from .registry import PATIENT_DATE_OF_BIRTH_CHANGED
from .registry import registry
from .rules import FORWARD
from .rules import StageMoveRefused
from .rules import check_move


class PathwayAuditAction:
    PATIENT_REGISTERED = "patient.registered"
    PATIENT_UPDATED = "patient.updated"
    PATIENT_VIEWED = "patient.viewed"
    PATIENT_EXPORTED = "patient.exported"
    PATHWAY_OPENED = "pathway.opened"
    PATHWAY_VIEWED = "pathway.viewed"
    PATHWAY_STAGE_CHANGED = "pathway.stage_changed"
    CARE_TEAM_CHANGED = "pathway.care_team_changed"


PATIENT_FIELDS = (
    "record_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "phone",
    "email",
    "emergency_contact_name",
    "emergency_contact_relationship",
    "emergency_contact_phone",
    "emergency_contact_can_escort",
)


def _validate_patient(patient: Patient) -> None:
    """Single-row checks a form or serializer cannot be trusted to have made."""
    errors: dict[str, list[ValidationError]] = {}
    today = timezone.localdate()
    if patient.date_of_birth and patient.date_of_birth > today:
        errors.setdefault("date_of_birth", []).append(
            ValidationError("The date of birth cannot be in the future.", code="future_date_of_birth")
        )
    elif patient.date_of_birth and patient.date_of_birth < dt.date(1900, 1, 1):
        errors.setdefault("date_of_birth", []).append(
            ValidationError("Check the date of birth: it is before 1900.", code="implausible_date_of_birth")
        )
    patient.record_number = patient.record_number.strip()
    duplicate = (
        Patient.objects.filter(clinic_id=patient.clinic_id, record_number__iexact=patient.record_number)
        .exclude(pk=patient.pk)
        .exists()
    )
    if duplicate:
        errors.setdefault("record_number", []).append(
            ValidationError(
                "Another patient of this clinic has this record number.", code="duplicate_record_number"
            )
        )
    try:
        patient.full_clean(
            exclude=["clinic", "registered_by"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as error:
        for name, messages in error.error_dict.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def _save_patient(patient: Patient) -> None:
    """Save, turning a lost race on the record number into the same message as the check above."""
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError:
        raise ValidationError(
            {
                "record_number": ValidationError(
                    "Another patient of this clinic has this record number.", code="duplicate_record_number"
                )
            }
        ) from None


@transaction.atomic
def patient_register(*, actor: User, **fields: Any) -> Patient:
    """Register a patient in the actor's clinic. `fields` are the `PATIENT_FIELDS`."""
    _require(actor, Capability.PATIENT_REGISTER)
    unknown = set(fields) - set(PATIENT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown patient fields: {sorted(unknown)}")
    patient = Patient(clinic_id=actor.member_clinic_id, registered_by=actor, **fields)
    _validate_patient(patient)
    _save_patient(patient)
    audit_record(
        actor=actor,
        action=PathwayAuditAction.PATIENT_REGISTERED,
        target_type="pathways.Patient",
        target_public_id=patient.public_id,
        patient_public_id=patient.public_id,
    )
    return patient


@transaction.atomic
def patient_update(*, actor: User, patient: Patient, **fields: Any) -> Patient:
    """Change a patient's registration details; the audit event names the fields, not their values."""
    _require(actor, Capability.PATIENT_EDIT)
    unknown = set(fields) - set(PATIENT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown patient fields: {sorted(unknown)}")
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.clinic_id != actor.clinic_id:
        raise NotFoundOrForbidden()
    changed = sorted(name for name, value in fields.items() if getattr(patient, name) != value)
    for name, value in fields.items():
        setattr(patient, name, value)
    _validate_patient(patient)
    if not changed:
        return patient
    _save_patient(patient)
    audit_record(
        actor=actor,
        action=PathwayAuditAction.PATIENT_UPDATED,
        target_type="pathways.Patient",
        target_public_id=patient.public_id,
        patient_public_id=patient.public_id,
        data={"fields": changed},
    )
    if "date_of_birth" in changed:
        registry.emit(PATIENT_DATE_OF_BIRTH_CHANGED, patient=patient, actor=actor)
    return patient


def _check_care_team(*, actor: User, prescriber: User, therapist: User | None) -> None:
    errors: dict[str, ValidationError] = {}
    if not is_active_member(prescriber, clinic_id=actor.clinic_id, role=Role.PRESCRIBER):
        errors["prescriber"] = ValidationError(
            "Choose an active prescriber of this clinic.", code="invalid_prescriber"
        )
    if therapist is not None and not is_active_member(
        therapist, clinic_id=actor.clinic_id, role=Role.THERAPIST
    ):
        errors["therapist"] = ValidationError(
            "Choose an active therapist of this clinic.", code="invalid_therapist"
        )
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def pathway_open(
    *,
    actor: User,
    patient: Patient,
    prescriber: User,
    therapist: User | None = None,
    referral_source: str = "",
    reason: str = "",
) -> Pathway:
    """Open a pathway for the patient in the referral stage, with its first timeline row.

    A patient has one open pathway at a time: a second is refused here, and by a database
    constraint when two requests race.
    """
    _require(actor, Capability.PATHWAY_OPEN)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.clinic_id != actor.clinic_id:
        raise NotFoundOrForbidden()
    _check_care_team(actor=actor, prescriber=prescriber, therapist=therapist)
    already_open = "This patient already has an open pathway; complete or discontinue it first."
    if patient.pathways.exclude(stage__in=CLOSED_STAGES).exists():
        raise ValidationError(already_open, code="pathway_already_open")
    now = timezone.now()
    pathway = Pathway(
        clinic_id=actor.member_clinic_id,
        patient=patient,
        stage=Stage.REFERRAL,
        stage_changed_at=now,
        prescriber=prescriber,
        therapist=therapist,
        opened_by=actor,
        referral_source=referral_source.strip(),
    )
    try:
        with transaction.atomic():
            pathway.save()
    except IntegrityError:
        raise ValidationError(already_open, code="pathway_already_open") from None
    PathwayStageChange.objects.create(
        pathway=pathway,
        from_stage="",
        to_stage=Stage.REFERRAL,
        reason=reason.strip() or "Pathway opened.",
        changed_by=actor,
        changed_at=now,
    )
    audit_record(
        actor=actor,
        action=PathwayAuditAction.PATHWAY_OPENED,
        target_type="pathways.Pathway",
        target_public_id=pathway.public_id,
        patient_public_id=patient.public_id,
    )
    return pathway


@transaction.atomic
def pathway_move(
    *, actor: User, pathway: Pathway, to_stage: str, reason: str, expected_stage: str | None = None
) -> PathwayStageChange:
    """Move a pathway to `to_stage`, writing a timeline row and an audit event.

    Refused with a `ValidationError` naming why: the stage machine (`rules.check_move`), any gate
    registered by a later app, an empty reason, or a stale page: `expected_stage` is the stage
    the user saw, and when another tab or user has moved the pathway since, nothing happens.
    The row is locked first, so two moves at once run one after the other.
    """
    _require(actor, Capability.PATHWAY_MOVE)
    return _move(
        actor=actor, pathway=pathway, to_stage=to_stage, reason=reason, expected_stage=expected_stage
    )


@transaction.atomic
def pathway_move_as_step(
    *, actor: User, pathway: Pathway, to_stage: str, reason: str, via: str
) -> PathwayStageChange:
    """A stage move that is one step of another service's write, by whoever may make that write (the
    first dose, started by the monitor, takes a pathway from preparation into dosing).

    The calling service has checked the actor's capability for its own write; the actor need not hold
    `PATHWAY_MOVE`, but must be an active member of the pathway's clinic. Everything else is
    `pathway_move`'s: the row locked, the stage machine, every registered gate, the timeline row
    (by the actor, with `reason`), the audit event (naming `via`) and the event handlers.
    """
    if not (actor.is_active and actor.clinic_id is not None and actor.clinic_id == pathway.clinic_id):
        raise NotFoundOrForbidden()
    return _move(actor=actor, pathway=pathway, to_stage=to_stage, reason=reason, expected_stage=None, via=via)


def _move(
    *, actor: User, pathway: Pathway, to_stage: str, reason: str, expected_stage: str | None, via: str = ""
) -> PathwayStageChange:
    locked = Pathway.objects.select_for_update().select_related("patient").get(pk=pathway.pk)
    if locked.clinic_id != actor.clinic_id:
        raise NotFoundOrForbidden()
    reason = reason.strip()
    if not reason:
        raise ValidationError(
            {"reason": ValidationError("Give a reason for the move.", code="reason_required")}
        )
    if expected_stage is not None and expected_stage != locked.stage:
        raise ValidationError(
            {
                "to_stage": ValidationError(
                    f"This pathway has moved to {locked.get_stage_display().lower()} since you opened "
                    "the page. Review it and try again.",
                    code="stale_stage",
                )
            }
        )
    if via and FORWARD.get(locked.stage) != to_stage:  # a step of another write only moves forward
        labels = dict(Stage.choices)
        raise ValidationError(
            {
                "to_stage": ValidationError(
                    f"A pathway in {labels[locked.stage].lower()} does not move to "
                    f"{labels.get(to_stage, to_stage).lower()} as part of this step.",
                    code="move_refused",
                )
            }
        )
    try:
        check_move(
            stage=locked.stage,
            stage_before_hold=locked.stage_before_hold,
            to_stage=to_stage,
            has_therapist=locked.therapist_id is not None,
        )
        refusals = registry.stage_gate_refusals(pathway=locked, to_stage=to_stage)
        if refusals:
            raise StageMoveRefused(refusals)
    except StageMoveRefused as refused:
        raise ValidationError(
            {
                "to_stage": [
                    ValidationError(reason_text, code="move_refused") for reason_text in refused.reasons
                ]
            }
        ) from None
    from_stage = locked.stage
    now = timezone.now()
    locked.stage_before_hold = from_stage if to_stage == Stage.ON_HOLD else ""
    locked.stage = to_stage
    locked.stage_changed_at = now
    locked.save(update_fields=["stage", "stage_before_hold", "stage_changed_at", "updated_at"])
    change = PathwayStageChange.objects.create(
        pathway=locked,
        from_stage=from_stage,
        to_stage=to_stage,
        reason=reason,
        changed_by=actor,
        changed_at=now,
    )
    audit_record(
        actor=actor,
        action=PathwayAuditAction.PATHWAY_STAGE_CHANGED,
        target_type="pathways.Pathway",
        target_public_id=locked.public_id,
        patient_public_id=locked.patient.public_id,
        data={"from_stage": from_stage, "to_stage": to_stage, **({"via": via} if via else {})},
    )
    registry.emit(PATHWAY_STAGE_CHANGED, pathway=locked, change=change, actor=actor)
    pathway.stage, pathway.stage_before_hold, pathway.stage_changed_at = (
        to_stage,
        locked.stage_before_hold,
        now,
    )
    return change


@transaction.atomic
def pathway_assign_care_team(
    *, actor: User, pathway: Pathway, prescriber: User, therapist: User | None
) -> Pathway:
    """Set the pathway's prescriber and therapist. A closed pathway's care team is history: it stays."""
    _require(actor, Capability.CARE_TEAM_ASSIGN)
    locked = Pathway.objects.select_for_update().select_related("patient").get(pk=pathway.pk)
    if locked.clinic_id != actor.clinic_id:
        raise NotFoundOrForbidden()
    if not locked.is_open:
        raise ValidationError("A closed pathway's care team cannot change.", code="pathway_closed")
    _check_care_team(actor=actor, prescriber=prescriber, therapist=therapist)
    if therapist is None and locked.stage in (Stage.PREPARATION, Stage.DOSING, Stage.INTEGRATION):
        raise ValidationError(
            {
                "therapist": ValidationError(
                    "A pathway in this stage needs a therapist.", code="therapist_required"
                )
            }
        )
    if locked.prescriber_id == prescriber.pk and locked.therapist_id == (therapist.pk if therapist else None):
        return locked
    locked.prescriber, locked.therapist = prescriber, therapist
    locked.save(update_fields=["prescriber", "therapist", "updated_at"])
    audit_record(
        actor=actor,
        action=PathwayAuditAction.CARE_TEAM_CHANGED,
        target_type="pathways.Pathway",
        target_public_id=locked.public_id,
        patient_public_id=locked.patient.public_id,
        data={
            "prescriber": str(prescriber.public_id),
            "therapist": str(therapist.public_id) if therapist else None,
        },
    )
    return locked


def patient_record_viewed(*, actor: User, patient: Patient, via: str) -> None:
    """Audit that `actor` looked at the patient's record (`via` names the page or endpoint)."""
    audit_record(
        actor=actor,
        action=PathwayAuditAction.PATIENT_VIEWED,
        target_type="pathways.Patient",
        target_public_id=patient.public_id,
        patient_public_id=patient.public_id,
        data={"via": via},
    )


def patient_export(*, actor: User, patient: Patient) -> dict[str, Any]:
    """The patient's whole record as a JSON document, for a subject access request (prescribers
    only; see `pathways.export`). Audited, with how many records went out."""
    from .export import patient_export_data

    _require(actor, Capability.PATIENT_EXPORT, patient.clinic_id)
    data = patient_export_data(patient, actor=actor)
    audit_record(
        actor=actor,
        action=PathwayAuditAction.PATIENT_EXPORTED,
        target_type="pathways.Patient",
        target_public_id=patient.public_id,
        patient_public_id=patient.public_id,
        data={"format": "json", "records": sum(len(rows) for rows in data["records"].values()) + 1},
    )
    return data


def pathway_record_viewed(*, actor: User, pathway: Pathway, via: str) -> None:
    audit_record(
        actor=actor,
        action=PathwayAuditAction.PATHWAY_VIEWED,
        target_type="pathways.Pathway",
        target_public_id=pathway.public_id,
        patient_public_id=pathway.patient.public_id,
        data={"via": via},
    )
