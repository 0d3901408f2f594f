"""Course plans and course templates in the JSON API: the same selectors and services as the pages."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework import permissions
from rest_framework import serializers
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kaemdr import read_services
from kaemdr.api import ErrorBody
from kaemdr.api import require_or_404
from kaemdr.api_base import ScopedViewSet
from kaemdr.models import User
from kaemdr.permissions import Capability
from pathways.selectors import get_pathway_for_user_or_404
from screening.models import AGENT_CHOICES
from screening.models import ROUTE_CHOICES
from sessions.booking import course_rules
from sessions.booking import course_selectors
from sessions.booking import course_services
from sessions.booking.course_rules import Phase
from sessions.models import CourseTemplate


class PhaseSerializer(serializers.Serializer):
    weeks = serializers.IntegerField(
        min_value=1,
        max_value=course_rules.MAX_PHASE_WEEKS,
        allow_null=True,
        help_text="Course weeks in the phase; null in the last phase: it runs on until the course ends",
    )
    per_week = serializers.IntegerField(
        min_value=1, max_value=course_rules.MAX_PER_WEEK, help_text="Sessions a week, at most"
    )
    min_days = serializers.IntegerField(
        min_value=course_rules.MIN_DAYS_APART,
        max_value=course_rules.MAX_DAYS_APART,
        help_text="Days after the session before, at least",
    )
    max_days = serializers.IntegerField(
        min_value=course_rules.MIN_DAYS_APART,
        max_value=course_rules.MAX_DAYS_APART,
        help_text="Days after the session before, at most",
    )


class CourseFieldsSerializer(serializers.Serializer):
    agent = serializers.ChoiceField(choices=AGENT_CHOICES)
    route = serializers.ChoiceField(choices=ROUTE_CHOICES)
    sessions = serializers.IntegerField(
        min_value=course_rules.MIN_SESSIONS, max_value=course_rules.MAX_SESSIONS
    )
    phases = PhaseSerializer(
        many=True,
        help_text=f"1 to {course_rules.MAX_PHASES} phases, in order; weeks count from the first session",
    )

    def validate_phases(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not 1 <= len(value) <= course_rules.MAX_PHASES:
            raise serializers.ValidationError(
                f"Give 1 to {course_rules.MAX_PHASES} phases.", code="out_of_range"
            )
        return value

    def course(self) -> dict[str, Any]:
        data = self.validated_data
        return {
            "agent": data["agent"],
            "route": data["route"],
            "sessions": data["sessions"],
            "phases": tuple(Phase(**phase) for phase in data["phases"]),
        }


class ProgressSerializer(serializers.Serializer):
    planned = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Sessions whose record is signed")
    booked = serializers.IntegerField(help_text="Live bookings not done yet")
    to_book = serializers.IntegerField(help_text="Planned sessions neither done nor booked")


class CoursePlanSerializer(CourseFieldsSerializer):
    id = serializers.UUIDField(read_only=True, help_text="The course plan's id")
    pathway = serializers.UUIDField(read_only=True)
    template = serializers.UUIDField(
        required=False, allow_null=True, help_text="The clinic's course template it started from"
    )
    description = serializers.CharField(read_only=True, help_text="The course in plain words")
    progress = ProgressSerializer(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


def _plan_body(course: course_selectors.PathwayCourse, pathway_id: Any) -> dict[str, Any]:
    plan, progress = course.plan, course.progress
    return {
        "id": plan.public_id,
        "pathway": pathway_id,
        "agent": plan.agent,
        "route": plan.route,
        "sessions": plan.sessions,
        "phases": course_rules.phases_as_data(plan.shape.phases),
        "template": plan.template.public_id if plan.template_id else None,  # type: ignore[union-attr]
        "description": course.description,
        "progress": {
            "planned": progress.planned,
            "done": progress.done,
            "booked": progress.booked,
            "to_book": progress.to_book,
        },
        "updated_at": plan.updated_at,
    }


@extend_schema(tags=["dosing"])
class PathwayCourseView(APIView):
    """A pathway's course plan and its progress. Those who see its dosing sessions read it (audited);
    its prescriber role sets or changes it (PUT: the whole plan)."""

    permission_classes = (permissions.IsAuthenticated,)
    parser_classes = (JSONParser,)

    def _read(self, user: User, public_id: str) -> tuple[Any, course_selectors.PathwayCourse]:
        pathway = get_pathway_for_user_or_404(user, public_id)
        course = course_selectors.pathway_course(pathway)
        if course is None:
            raise NotFound("No course is set for this pathway.")
        return pathway, course

    @extend_schema(responses={200: CoursePlanSerializer, 404: ErrorBody})
    def get(self, request: Request, id: str) -> Response:
        user: User = request.user  # type: ignore[assignment]
        if not course_selectors.can_see_course(user):
            raise NotFound()
        pathway, course = self._read(user, id)
        course.plan.pathway = pathway
        read_services.record_viewed(actor=user, record=course.plan, patient="pathway.patient", via="api")
        return Response(CoursePlanSerializer(_plan_body(course, pathway.public_id)).data)

    @extend_schema(
        request=CoursePlanSerializer, responses={200: CoursePlanSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    def put(self, request: Request, id: str) -> Response:
        user: User = request.user  # type: ignore[assignment]
        require_or_404(user, Capability.COURSE_SET)
        pathway = get_pathway_for_user_or_404(user, id)
        body = CoursePlanSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        template = None
        if body.validated_data.get("template"):
            template = course_selectors.get_course_template_for_user_or_404(
                user, body.validated_data["template"]
            )
        course_services.course_plan_set(actor=user, pathway=pathway, template=template, **body.course())
        course = course_selectors.pathway_course(pathway)
        assert course is not None  # just set
        return Response(CoursePlanSerializer(_plan_body(course, pathway.public_id)).data)


class CourseTemplateSerializer(CourseFieldsSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    name = serializers.CharField(max_length=80)
    is_active = serializers.BooleanField(default=True, help_text="Offered when a course is set")
    default_code = serializers.CharField(
        read_only=True, help_text="The sourced default it was adopted from (empty: the clinic's own)"
    )
    description = serializers.SerializerMethodField(help_text="The course in plain words")

    def get_description(self, template: CourseTemplate) -> str:
        return course_rules.describe(template.shape)


@extend_schema(tags=["dosing"])
class CourseTemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet[CourseTemplate]):
    """The clinic's course templates, for clinic admins and prescribers: list, add, change (PUT: the
    whole template). No patient data."""

    serializer_class = CourseTemplateSerializer
    queryset = CourseTemplate.objects.none()  # for the schema; requests use get_queryset
    scoped_queryset = staticmethod(course_selectors.course_template_qs_for_user)
    scoped_object = staticmethod(course_selectors.get_course_template_for_user_or_404)
    http_method_names = ("get", "post", "put", "head", "options")
    parser_classes = (JSONParser,)

    def get_queryset(self) -> Any:
        require_or_404(self.request.user, Capability.COURSE_TEMPLATE_MANAGE)
        return super().get_queryset().order_by("name", "id")

    def _save(self, template: CourseTemplate | None) -> CourseTemplate:
        body = CourseTemplateSerializer(data=self.request.data)
        body.is_valid(raise_exception=True)
        return course_services.course_template_save(
            actor=self._user(),
            template=template,
            name=body.validated_data["name"],
            is_active=body.validated_data["is_active"],
            **body.course(),
        )

    @extend_schema(responses={201: CourseTemplateSerializer, 400: ErrorBody, 404: ErrorBody})
    def create(self, request: Request) -> Response:
        require_or_404(request.user, Capability.COURSE_TEMPLATE_MANAGE)
        template = self._save(None)
        return Response(CourseTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: CourseTemplateSerializer, 400: ErrorBody, 404: ErrorBody})
    def update(self, request: Request, id: str) -> Response:
        require_or_404(request.user, Capability.COURSE_TEMPLATE_MANAGE)
        template = self._save(self.get_object())
        return Response(CourseTemplateSerializer(template).data)
