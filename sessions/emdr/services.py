"""Writes for EMDR plans and session logs. `target_start` is the one door to working a target: the
sequencing and the readiness gate hold for pages, API and any later caller, and a session log on a
target that was never started passes through it too."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from kaemdr.audit import audit_record
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.exceptions import Refusal
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.permissions import require as _require
from pathways.models import Pathway
from sessions.booking.selectors import dosing_settings_for
from sessions.emdr import rules as emdr_rules
from sessions.emdr.selectors import plan_state
from sessions.emdr.selectors import plan_targets
from sessions.emdr.selectors import readiness_facts
from sessions.emdr.selectors import target_facts
from sessions.models import DosingSession
from sessions.models import EmdrPlan
from sessions.models import EmdrSessionLog
from sessions.models import EmdrTarget
from sessions.models import EmdrTargetWork

TARGET_FIELDS = (
    "kind",
    "title",
    "image",
    "negative_cognition",
    "positive_cognition",
    "voc",
    "emotions",
    "sud",
    "body_location",
    "theme",
)


def _audit(
    actor: User, action: str, plan: EmdrPlan, target_type: str, target_public_id: Any, **data: Any
) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type=target_type,
        target_public_id=target_public_id,
        patient_public_id=plan.pathway.patient.public_id,
        data=data,
    )


def _lock_plan(plan: EmdrPlan) -> EmdrPlan:
    return EmdrPlan.objects.select_for_update(of=("self",)).select_related("pathway__patient").get(pk=plan.pk)


def plan_viewed(*, actor: User, plan: EmdrPlan, via: str, target: EmdrTarget | None = None) -> None:
    """Audit a read of the plan (or one of its targets)."""
    audit_record(
        actor=actor,
        action="emdr.viewed",
        target_type="dosing.EmdrTarget" if target else "dosing.EmdrPlan",
        target_public_id=target.public_id if target else plan.public_id,
        patient_public_id=plan.pathway.patient.public_id,
        data={"via": via},
    )


@transaction.atomic
def plan_open(*, actor: User, pathway: Pathway) -> EmdrPlan:
    """The pathway's plan, created on first use by its therapist, following the clinic's default EMDR
    protocol (the therapist may change it on the plan)."""
    _require(actor, Capability.EMDR_EDIT, pathway.clinic_id)
    if pathway.therapist_id != actor.pk:
        raise NotFoundOrForbidden()
    plan = EmdrPlan.objects.filter(pathway=pathway).first()
    if plan is not None:
        return plan
    protocol = dosing_settings_for(pathway.clinic_id).emdr_protocol
    plan, created = EmdrPlan.objects.get_or_create(
        pathway=pathway, defaults={"clinic_id": pathway.clinic_id, "protocol": protocol}
    )
    if created:
        plan = EmdrPlan.objects.select_related("pathway__patient").get(pk=plan.pk)
        _audit(actor, "emdr.plan_opened", plan, "dosing.EmdrPlan", plan.public_id, protocol=plan.protocol)
    return plan


def _require_therapist(actor: User, plan: EmdrPlan) -> None:
    _require(actor, Capability.EMDR_EDIT, plan.clinic_id)
    if plan.pathway.therapist_id != actor.pk:
        raise NotFoundOrForbidden()


@transaction.atomic
def target_add(
    *, actor: User, plan: EmdrPlan, belongs_to: list[EmdrTarget] | None = None, **fields: Any
) -> EmdrTarget:
    """Add a target at the end of the plan, with its assessment fields (SUD 0-10, VOC 1-7)."""
    plan = _lock_plan(plan)
    _require_therapist(actor, plan)
    unknown = set(fields) - set(TARGET_FIELDS)
    if unknown:
        raise TypeError(f"Unknown target fields: {sorted(unknown)}")
    if any(other.plan_id != plan.pk for other in belongs_to or []):
        raise NotFoundOrForbidden()
    problems = {
        name: Refusal(text, code=emdr_rules.RATING_RANGE)
        for name, text in emdr_rules.rating_problems(sud=fields.get("sud"), voc=fields.get("voc")).items()
    }
    if fields.get("kind") not in emdr_rules.KIND_LABELS:
        problems["kind"] = Refusal(
            "Choose the kind of target: a resource, a present-day target, a past memory or a future "
            "template.",
            code=emdr_rules.TARGET_KIND,
        )
    if problems:
        raise ValidationError(problems)
    last = plan.targets.order_by("-order").values_list("order", flat=True).first() or 0
    target = EmdrTarget(plan=plan, order=last + 1, created_by=actor, **fields)
    target.full_clean(exclude=["plan", "created_by", "belongs_to"])
    target.save()
    if belongs_to:
        target.belongs_to.set(belongs_to)
    _audit(actor, "emdr.target_added", plan, "dosing.EmdrTarget", target.public_id, kind=target.kind)
    return target


@transaction.atomic
def plan_readiness_update(
    *,
    actor: User,
    plan: EmdrPlan,
    dual_awareness_shown: bool,
    dissociation_interview_recorded: bool,
    affect_tolerance_shown: bool | None = None,
) -> EmdrPlan:
    """Record the therapist's readiness observations. `affect_tolerance_shown` left out (None) keeps what
    the plan has, so a caller written before the item existed does not withdraw it."""
    plan = _lock_plan(plan)
    _require_therapist(actor, plan)
    plan.dual_awareness_shown = dual_awareness_shown
    plan.dissociation_interview_recorded = dissociation_interview_recorded
    if affect_tolerance_shown is not None:
        plan.affect_tolerance_shown = affect_tolerance_shown
    plan.save(
        update_fields=[
            "dual_awareness_shown",
            "dissociation_interview_recorded",
            "affect_tolerance_shown",
            "updated_at",
        ]
    )
    _audit(
        actor,
        "emdr.readiness_updated",
        plan,
        "dosing.EmdrPlan",
        plan.public_id,
        dual_awareness=dual_awareness_shown,
        interview=dissociation_interview_recorded,
        affect_tolerance=plan.affect_tolerance_shown,
    )
    return plan


@dataclass(frozen=True)
class ProtocolChange:
    """The plan after a protocol change, and what the change means, in plain words."""

    plan: EmdrPlan
    changed: bool
    notes: list[str]


@transaction.atomic
def plan_protocol_set(*, actor: User, plan: EmdrPlan, protocol: str) -> ProtocolChange:
    """Set the order the plan takes its targets in (stabilisation first or the standard three-prong
    protocol): a simple choice of the therapist who edits the plan, with no reason asked, audited. Targets
    under way continue as they are; the notes say what changes for the targets not started yet."""
    plan = _lock_plan(plan)
    _require_therapist(actor, plan)
    if protocol not in emdr_rules.PROTOCOL_LABELS:
        raise ValidationError(
            {
                "protocol": Refusal(
                    "Choose stabilisation first or the standard three-prong protocol.",
                    code=emdr_rules.PROTOCOL_CHOICE,
                )
            }
        )
    old = plan.protocol
    notes = emdr_rules.protocol_change_notes(old=old, new=protocol, targets=target_facts(plan_targets(plan)))
    if old == protocol:
        return ProtocolChange(plan=plan, changed=False, notes=notes)
    plan.protocol = protocol
    plan.save(update_fields=["protocol", "updated_at"])
    _audit(
        actor,
        "emdr.protocol_changed",
        plan,
        "dosing.EmdrPlan",
        plan.public_id,
        previous=old,
        protocol=protocol,
    )
    return ProtocolChange(plan=plan, changed=True, notes=notes)


def start_problems(plan: EmdrPlan, target: EmdrTarget) -> list[Refusal]:
    """Why the target may not be started now, under the plan's protocol: its order, and for a past memory
    the readiness gate unless a therapist and a prescriber have both signed an override. Each refusal
    carries its code and source. Read afresh: `target_start` decides on it."""
    state = plan_state(plan)
    return [Refusal(problem.message, code=problem.code) for problem in state.problems.get(target.pk, [])]


@transaction.atomic
def target_start(*, actor: User, target: EmdrTarget) -> EmdrTarget:
    """Start working a target. The plan row is locked, so the check and the start happen together."""
    plan = _lock_plan(target.plan)
    _require_therapist(actor, plan)
    target = EmdrTarget.objects.select_for_update().get(pk=target.pk)
    if target.state != "not_started":
        return target
    problems = start_problems(plan, target)
    if problems:
        raise ValidationError(list(problems))
    target.state, target.started_at = "in_progress", timezone.now()
    target.save(update_fields=["state", "started_at", "updated_at"])
    _audit(
        actor,
        "emdr.target_started",
        plan,
        "dosing.EmdrTarget",
        target.public_id,
        kind=target.kind,
        overridden=target.override_signed,
    )
    return target


@transaction.atomic
def target_override_sign(*, actor: User, target: EmdrTarget, reason: str = "") -> EmdrTarget:
    """Sign the override of the readiness gate for a past-memory target: the therapist with the
    reason, the prescriber countersigning it. It counts once both have signed."""
    plan = _lock_plan(target.plan)
    target = EmdrTarget.objects.select_for_update().get(pk=target.pk)
    if target.kind != emdr_rules.Kind.PAST_MEMORY:
        raise Refusal(
            "Only a past-memory target has a readiness gate to override; this target follows the plan's "
            "order instead.",
            code=emdr_rules.OVERRIDE_NOT_GATED,
        )
    if has_capability(actor, Capability.EMDR_EDIT):
        _require_therapist(actor, plan)
        if not reason.strip():
            raise ValidationError(
                {"reason": Refusal("Give the reason for the override.", code=emdr_rules.OVERRIDE_REASON)}
            )
        target.override_reason, target.override_therapist = reason.strip(), actor
        target.override_prescriber = None  # a new reason needs a new countersignature
    else:
        _require(actor, Capability.EMDR_OVERRIDE_COSIGN, plan.clinic_id)
        if not target.override_reason:
            raise Refusal(
                "The therapist signs the override with its reason first; then countersign it.",
                code=emdr_rules.OVERRIDE_THERAPIST_FIRST,
            )
        target.override_prescriber = actor
    target.save(update_fields=["override_reason", "override_therapist", "override_prescriber", "updated_at"])
    _audit(
        actor,
        "emdr.override_signed",
        plan,
        "dosing.EmdrTarget",
        target.public_id,
        complete=target.override_signed,
    )
    return target


def _check_processing_readiness(plan: EmdrPlan, worked: list[EmdrTarget]) -> None:
    """A past memory is processed only while there is no crisis and no open high-risk alert: checked
    at every session that works it, not only when it starts, unless its override (the therapist's and
    a prescriber's signatures) covers the readiness gate. A target never started also passes the
    whole start gate (`target_start`)."""
    memories = [t for t in worked if t.kind == emdr_rules.Kind.PAST_MEMORY and not t.override_signed]
    if not memories:
        return
    unmet = emdr_rules.every_session_problems(readiness_facts(plan, plan_targets(plan)))
    if unmet:
        raise ValidationError(
            [
                Refusal(
                    f"{target.title}: {criterion.label.lower()} is not met now, so this past memory is not "
                    f"processed: {emdr_rules.EVERY_SESSION_CRITERIA[criterion.code]} first, or work a "
                    "stabilising target instead (an override by the therapist and a prescriber also "
                    "covers it).",
                    code=criterion.code,
                )
                for target in memories
                for criterion in unmet
            ]
        )


@transaction.atomic
def session_log(
    *,
    actor: User,
    plan: EmdrPlan,
    held_at: dt.datetime,
    phase_reached: int,
    stimulation: str,
    works: list[dict[str, Any]],
    closure_technique: str = "",
    dosing_session: DosingSession | None = None,
) -> EmdrSessionLog:
    """Log an EMDR session. Each entry of `works` names a target of this plan with its SUD and VOC at
    start and end, the SUD after each set, the interweaves used and whether the body scan was clear.

    A target never started passes the start gate first; closure decides each target's state (resolved,
    in progress, blocked), and an incomplete one is flagged for reevaluation next session.
    """
    plan = _lock_plan(plan)
    _require_therapist(actor, plan)
    errors: dict[str, list[ValidationError]] = {}
    if not 1 <= phase_reached <= 8:
        errors.setdefault("phase_reached", []).append(
            Refusal("Choose a phase from 1 to 8.", code=emdr_rules.PHASE_OUT_OF_RANGE)
        )
    if held_at > timezone.now() + dt.timedelta(minutes=5):
        errors.setdefault("held_at", []).append(
            Refusal(
                "This time is in the future: record a session once it has been held.",
                code=emdr_rules.SESSION_IN_FUTURE,
            )
        )
    if dosing_session is not None:
        if dosing_session.booking.pathway_id != plan.pathway_id or dosing_session.dose_started_at is None:
            raise NotFoundOrForbidden()
        window = dt.timedelta(hours=dosing_settings_for(plan.clinic_id).emdr_window_hours)
        if not dosing_session.dose_started_at <= held_at <= dosing_session.dose_started_at + window:
            errors.setdefault("dosing_session", []).append(
                Refusal(
                    f"Only sessions within {window.total_seconds() // 3600:.0f} hours of the dose count as "
                    "tied to it: choose another dose, or leave the session untied.",
                    code=emdr_rules.OUTSIDE_DOSE_WINDOW,
                )
            )
    if not works:
        errors.setdefault("works", []).append(
            Refusal("Record at least one target worked.", code=emdr_rules.NO_TARGET_WORKED)
        )
    targets = {t.pk: t for t in EmdrTarget.objects.select_for_update().filter(plan=plan)}
    for index, work in enumerate(works):
        target = work["target"]
        if target.pk not in targets:
            raise NotFoundOrForbidden()
        for rating in ("start", "end"):
            for name, text in emdr_rules.rating_problems(
                sud=work.get(f"sud_{rating}"), voc=work.get(f"voc_{rating}"), prefix=f"works.{index}."
            ).items():
                errors.setdefault(f"{name}_{rating}", []).append(Refusal(text, code=emdr_rules.RATING_RANGE))
        if any(not 0 <= sud <= 10 for sud in work.get("sud_by_set", [])):
            errors.setdefault(f"works.{index}.sud_by_set", []).append(
                Refusal("SUD is rated from 0 to 10.", code=emdr_rules.RATING_RANGE)
            )
    if errors:
        raise ValidationError(errors)
    _check_processing_readiness(plan, [targets[work["target"].pk] for work in works])
    log = EmdrSessionLog.objects.create(
        plan=plan,
        therapist=actor,
        held_at=held_at,
        phase_reached=phase_reached,
        stimulation=stimulation,
        closure_technique=closure_technique,
        dosing_session=dosing_session,
    )
    for work in works:
        target = targets[work["target"].pk]
        if target.state == "not_started":
            target_start(actor=actor, target=target)
            target.refresh_from_db()
        complete = emdr_rules.closure_complete(
            kind=target.kind,
            sud_end=work.get("sud_end"),
            voc_end=work.get("voc_end"),
            body_scan_clear=work.get("body_scan_clear", False),
        )
        blocked = emdr_rules.is_blocked(
            sud_by_set=work.get("sud_by_set", []),
            voc_start=work.get("voc_start"),
            voc_end=work.get("voc_end"),
            kind=target.kind,
        )
        EmdrTargetWork.objects.create(
            session=log,
            target=target,
            sud_start=work.get("sud_start"),
            sud_end=work.get("sud_end"),
            voc_start=work.get("voc_start"),
            voc_end=work.get("voc_end"),
            sud_by_set=work.get("sud_by_set", []),
            sets=len(work.get("sud_by_set", [])),
            interweaves=work.get("interweaves", []),
            body_scan_clear=work.get("body_scan_clear", False),
            complete=complete,
            blocked=blocked,
        )
        target.state = emdr_rules.state_after(kind=target.kind, complete=complete, blocked=blocked)
        target.needs_reevaluation = not complete
        if work.get("sud_end") is not None:
            target.sud = work["sud_end"]
        if work.get("voc_end") is not None:
            target.voc = work["voc_end"]
        target.save(update_fields=["state", "needs_reevaluation", "sud", "voc", "updated_at"])
    _audit(
        actor,
        "emdr.session_logged",
        plan,
        "dosing.EmdrSessionLog",
        log.public_id,
        targets=len(works),
        phase=phase_reached,
        tied_to_dose=dosing_session is not None,
    )
    return log
