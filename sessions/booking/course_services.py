"""Writes for course plans and the clinic's course templates. A pathway's course is its prescriber's
to set (`Capability.COURSE_SET`); the clinic's templates are kept by its clinic admins and prescribers
(`Capability.COURSE_TEMPLATE_MANAGE`). Pages and the API call these; every change is audited with
what it was and what it became (numbers and codes only, no free text)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db import transaction

from kaemdr import sources
from kaemdr.audit import audit_record
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.exceptions import Refusal
from kaemdr.exceptions import text_too_long
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import require as _require
from pathways.models import Pathway
from sessions.booking import course_rules
from sessions.booking.course_rules import Phase
from sessions.booking.selectors import dosing_settings_for
from sessions.models import CoursePlan
from sessions.models import CourseTemplate


class CourseAuditAction:
    TEMPLATE_CREATED = "course_template.created"
    TEMPLATE_UPDATED = "course_template.updated"
    PLAN_SET = "course_plan.set"
    PLAN_CHANGED = "course_plan.changed"


def _label(clinic_id: int) -> str:
    return dosing_settings_for(clinic_id).esketamine_label


def _check_shape(shape: course_rules.CourseShape, *, clinic_id: int) -> None:
    """Refuse a course the rules find wrong, each error under the field it names: input checks as
    plain errors, rules as refusals with their source."""
    problems = course_rules.shape_problems(shape, label=_label(clinic_id))
    if not problems:
        return
    errors: dict[str, list[ValidationError]] = {}
    for field, criterion in problems:
        error: ValidationError
        if criterion.code in sources.INPUT_CHECK_CODES:
            error = ValidationError(criterion.message, code=criterion.code)
        else:
            error = Refusal(criterion.message, code=criterion.code, source=criterion.source)
        errors.setdefault(field, []).append(error)
    raise ValidationError(errors)


def _shape_data(shape: course_rules.CourseShape) -> dict[str, Any]:
    return {
        "agent": shape.agent,
        "route": shape.route,
        "sessions": shape.sessions,
        "phases": course_rules.phases_as_data(shape.phases),
    }


# --- Templates ------------------------------------------------------------------------------------------


@transaction.atomic
def course_template_save(
    *,
    actor: User,
    template: CourseTemplate | None = None,
    name: str,
    agent: str,
    route: str,
    sessions: int,
    phases: Sequence[Phase],
    is_active: bool = True,
    default_code: str = "",
) -> CourseTemplate:
    """Add a course template to the actor's clinic (`template` None) or change one. Clinic admins and
    prescribers. The course is checked as a plan is (`course_rules.shape_problems`): an esketamine
    template keeps to the label the clinic follows; names are unique in the clinic."""
    _require(actor, Capability.COURSE_TEMPLATE_MANAGE, template.clinic_id if template else None)
    clinic_id = actor.member_clinic_id
    shape = course_rules.CourseShape(agent, route, sessions, tuple(phases))
    name = name.strip()
    errors: dict[str, list[ValidationError]] = {}
    if not name:
        errors["name"] = [ValidationError("Give the template a name.", code="required")]
    elif (too_long := text_too_long(CourseTemplate, "name", name, "the name")) is not None:
        errors["name"] = [too_long]
    try:
        _check_shape(shape, clinic_id=clinic_id)
    except ValidationError as error:
        for field, items in error.error_dict.items():
            errors.setdefault(field, []).extend(items)
    if errors:
        raise ValidationError(errors)
    creating = template is None
    target = (
        CourseTemplate(clinic_id=clinic_id, default_code=default_code)
        if template is None
        else CourseTemplate.objects.select_for_update().get(pk=template.pk)
    )
    before = None if creating else {**_shape_data(target.shape), "is_active": target.is_active}
    target.name = name
    target.agent, target.route, target.sessions = agent, route, sessions
    target.phases = course_rules.phases_as_data(shape.phases)
    target.is_active = is_active
    if CourseTemplate.objects.filter(clinic_id=clinic_id, name=name).exclude(pk=target.pk).exists():
        raise ValidationError(
            {
                "name": ValidationError(
                    "The clinic has a template of that name: choose another.", code="duplicate_name"
                )
            }
        )
    try:
        with transaction.atomic():
            target.save()
    except IntegrityError as error:  # the same name saved at the same moment
        raise ValidationError(
            {
                "name": ValidationError(
                    "The clinic has a template of that name: choose another.", code="duplicate_name"
                )
            }
        ) from error
    after = {**_shape_data(shape), "is_active": is_active}
    audit_record(
        actor=actor,
        action=CourseAuditAction.TEMPLATE_CREATED if creating else CourseAuditAction.TEMPLATE_UPDATED,
        target_type="dosing.CourseTemplate",
        target_public_id=target.public_id,
        data={"after": after, **({"before": before} if before is not None else {}), "default": default_code},
    )
    return target


@transaction.atomic
def course_template_adopt(*, actor: User, code: str) -> CourseTemplate:
    """Make one of the sourced defaults (`course_rules.default_templates`) a template of the actor's
    clinic, under its default name, to edit from there. A default the clinic adopted already is
    refused (its template is the one to change)."""
    _require(actor, Capability.COURSE_TEMPLATE_MANAGE)
    default = course_rules.default_template(_label(actor.member_clinic_id), code)
    if default is None:
        raise NotFoundOrForbidden()
    if CourseTemplate.objects.filter(clinic_id=actor.member_clinic_id, default_code=code).exists():
        raise ValidationError(
            "The clinic has adopted this course already: change its template.", code="duplicate_name"
        )
    shape = default.shape
    return course_template_save(
        actor=actor,
        name=default.name,
        agent=shape.agent,
        route=shape.route,
        sessions=shape.sessions,
        phases=shape.phases,
        default_code=code,
    )


# --- A pathway's course ---------------------------------------------------------------------------------


@transaction.atomic
def course_plan_set(
    *,
    actor: User,
    pathway: Pathway,
    agent: str,
    route: str,
    sessions: int,
    phases: Sequence[Phase],
    template: CourseTemplate | None = None,
) -> CoursePlan:
    """Set the pathway's course, or change it (one plan per pathway, changed in place): its prescriber
    role only, in the pathway's clinic, while the pathway is open. The course is checked by
    `course_rules.shape_problems` (bounds; an esketamine course within the label the clinic follows).
    `template` is the clinic template it started from (None: a default or typed in). Audited with the
    plan before and after."""
    _require(actor, Capability.COURSE_SET, pathway.clinic_id)
    if template is not None and template.clinic_id != pathway.clinic_id:
        raise NotFoundOrForbidden()
    locked = Pathway.objects.select_for_update().get(pk=pathway.pk)
    if not locked.is_open:
        raise Refusal(
            "This pathway is closed: a completed or discontinued pathway takes no new course.",
            code="pathway_closed",
        )
    shape = course_rules.CourseShape(agent, route, sessions, tuple(phases))
    _check_shape(shape, clinic_id=pathway.clinic_id)
    current = CoursePlan.objects.select_for_update().filter(pathway_id=pathway.pk).first()
    before = _shape_data(current.shape) if current is not None else None
    plan = current or CoursePlan(pathway_id=pathway.pk, clinic_id=pathway.clinic_id)
    plan.agent, plan.route, plan.sessions = agent, route, sessions
    plan.phases = course_rules.phases_as_data(shape.phases)
    plan.template = template
    plan.set_by = actor
    plan.save()
    data: dict[str, Any] = {
        "after": _shape_data(shape),
        "template": str(template.public_id) if template is not None else None,
    }
    if before is not None:
        data["before"] = before
    audit_record(
        actor=actor,
        action=CourseAuditAction.PLAN_SET if before is None else CourseAuditAction.PLAN_CHANGED,
        target_type="dosing.CoursePlan",
        target_public_id=plan.public_id,
        patient_public_id=locked.patient.public_id,
        data=data,
    )
    return plan
