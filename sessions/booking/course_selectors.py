"""Reads for course plans and the clinic's course templates, scoped to the reader's clinic and role.

A pathway's course is read with its progress in one query (`pathway_course`): the plan, the sessions
done (signed records) and those booked and not yet done, counted in the database however long the
treatment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.db.models import OuterRef
from django.db.models import Q
from django.db.models import QuerySet
from django.db.models import Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from kaemdr import sources
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from pathways.models import Pathway
from screening import rules as screening_rules
from sessions.booking import course_rules
from sessions.booking.selectors import dosing_settings_for
from sessions.models import Booking
from sessions.models import BookingStatus
from sessions.models import CoursePlan
from sessions.models import CourseTemplate
from sessions.models import SessionStatus

DEFAULT_KEY_PREFIX = "default:"
"""A sourced default offered before the clinic adopted it is named `default:<code>` in the forms."""


def can_keep_templates(user: User) -> bool:
    return has_capability(user, Capability.COURSE_TEMPLATE_MANAGE)


def course_template_qs_for_user(user: User) -> QuerySet[CourseTemplate]:
    """The clinic's course templates, for those who keep them (clinic admins and prescribers)."""
    if not can_keep_templates(user):
        return CourseTemplate.objects.none()
    return CourseTemplate.objects.filter(clinic_id=user.member_clinic_id)


def get_course_template_for_user_or_404(user: User, public_id: uuid.UUID | str) -> CourseTemplate:
    try:
        return course_template_qs_for_user(user).get(public_id=public_id)
    except (CourseTemplate.DoesNotExist, ValidationError, ValueError) as error:
        raise Http404() from error


@dataclass(frozen=True)
class TemplateOffer:
    """A course to start a plan from: one of the clinic's templates, or a sourced default the clinic has
    not adopted yet (`template` None), with where its numbers come from."""

    key: str
    name: str
    shape: course_rules.CourseShape
    source: sources.Citation | None
    template: CourseTemplate | None

    @property
    def description(self) -> str:
        return course_rules.describe(self.shape)

    @property
    def default_code(self) -> str:
        """The sourced default's code, for one not adopted yet ("" for a clinic template)."""
        return self.key.removeprefix(DEFAULT_KEY_PREFIX) if self.template is None else ""

    @property
    def agent_and_route(self) -> str:
        """ "Racemic ketamine, intravenous" (the agent's and route's labels)."""
        agent = screening_rules.AGENT_LABELS.get(screening_rules.Agent(self.shape.agent), self.shape.agent)
        route = screening_rules.ROUTE_LABELS.get(screening_rules.Route(self.shape.route), self.shape.route)
        return f"{agent}, {route.lower()}"


def course_template_offers(clinic_id: int, *, include_retired: bool = False) -> list[TemplateOffer]:
    """The clinic's templates (those in use, unless `include_retired`), then the sourced defaults it
    has not adopted, each once. Two queries (the templates, the clinic's esketamine label)."""
    every = list(CourseTemplate.objects.filter(clinic_id=clinic_id).order_by("name", "id"))
    templates = [template for template in every if include_retired or template.is_active]
    label = dosing_settings_for(clinic_id).esketamine_label
    adopted = {template.default_code for template in every if template.default_code}  # retired too
    offers = []
    for template in templates:
        default = (
            course_rules.default_template(label, template.default_code) if template.default_code else None
        )
        offers.append(
            TemplateOffer(
                str(template.public_id),
                template.name,
                template.shape,
                default.source if default else None,
                template,
            )
        )
    for default in course_rules.default_templates(label):
        if default.code not in adopted:
            offers.append(
                TemplateOffer(
                    DEFAULT_KEY_PREFIX + default.code, default.name, default.shape, default.source, None
                )
            )
    return offers


# --- A pathway's course ---------------------------------------------------------------------------------


def can_see_course(user: User) -> bool:
    """Who sees a pathway's course: those who see its dosing sessions (schedule readers and the care
    team's therapist)."""
    return has_capability(user, Capability.SCHEDULE_VIEW) or has_capability(
        user, Capability.PATIENT_VIEW_CARE_TEAM
    )


@dataclass(frozen=True)
class PathwayCourse:
    plan: CoursePlan
    progress: course_rules.CourseProgress

    @property
    def description(self) -> str:
        return course_rules.describe(self.plan.shape)

    @property
    def marks(self) -> list[str]:
        """One mark a session, in course order: "done", then "booked", then "to_book"."""
        progress = self.progress
        return ["done"] * progress.done + ["booked"] * progress.booked + ["to_book"] * progress.to_book


_DONE = Q(pathway__bookings__session__status=SessionStatus.SIGNED)
_BOOKED = Q(pathway__bookings__status=BookingStatus.BOOKED) & (
    Q(pathway__bookings__session__isnull=True) | ~Q(pathway__bookings__session__status=SessionStatus.SIGNED)
)
_SET_BY_DEFERRED = tuple(
    f"course_plan__set_by__{field.name}"
    for field in User._meta.concrete_fields
    if field.name not in ("id", "public_id", "full_name")
)


def _bookings_counted(condition: Q) -> Coalesce:
    counted = (
        Booking.objects.filter(pathway_id=OuterRef("pk"))
        .filter(condition)
        .order_by()
        .values("pathway_id")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(counted), 0)


def with_course(queryset: QuerySet[Pathway]) -> QuerySet[Pathway]:
    """The pathway page's read of the pathway, with its course plan (its template, and who set it as a
    name) and the course's progress counted alongside (`course_done`, `course_booked`): the course
    panel then costs no query (`pathways.registry.register_pathway_page_read`)."""
    return (
        queryset.select_related("course_plan__template", "course_plan__set_by")
        .defer(*_SET_BY_DEFERRED)
        .annotate(
            course_done=_bookings_counted(Q(session__status=SessionStatus.SIGNED)),
            course_booked=_bookings_counted(
                Q(status=BookingStatus.BOOKED)
                & (Q(session__isnull=True) | ~Q(session__status=SessionStatus.SIGNED))
            ),
        )
    )


def pathway_course(pathway: Pathway) -> PathwayCourse | None:
    """The pathway's course plan and its progress, or None when no course is set. Done: sessions whose
    record is signed; booked: live bookings not done yet (ahead, or under way); still to book: the
    rest of the planned number. No query for a pathway read by `with_course` (the pathway page), else
    one."""
    if hasattr(pathway, "course_done"):
        try:
            plan = pathway.course_plan
        except CoursePlan.DoesNotExist:
            return None
        done, booked = getattr(pathway, "course_done", 0), getattr(pathway, "course_booked", 0)
    else:
        found = (
            CoursePlan.objects.filter(pathway_id=pathway.pk)
            .select_related("set_by", "template")
            .annotate(
                done=Count("pathway__bookings", filter=_DONE, distinct=True),
                booked=Count("pathway__bookings", filter=_BOOKED, distinct=True),
            )
            .first()
        )
        if found is None:
            return None
        plan, done, booked = found, found.done, found.booked
    return PathwayCourse(plan=plan, progress=course_rules.progress(plan.shape, done=done, booked=booked))
