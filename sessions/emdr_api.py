"""EMDR plans in the JSON API: the same selectors and services as the pages, the same gates."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import extend_schema
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins
from rest_framework import permissions
from rest_framework import serializers
from rest_framework import status
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from kaemdr.api import ErrorBody
from kaemdr.api import require_or_404
from kaemdr.permissions import Capability
from pathways.selectors import get_pathway_for_user_or_404

from . import emdr_rules
from . import emdr_selectors as selectors
from . import emdr_services as services
from .models import EMDR_KIND_CHOICES
from .models import BilateralStimulation
from .models import DosingSession
from .models import EmdrPlan
from .models import EmdrTarget
from .models import NegativeCognitionTheme


class TargetSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    belongs_to = serializers.SlugRelatedField(slug_field="public_id", many=True, read_only=True)  # type: ignore[var-annotated]
    override_signed = serializers.BooleanField(read_only=True)

    class Meta:
        model = EmdrTarget
        fields = (
            "id",
            "order",
            *services.TARGET_FIELDS,
            "belongs_to",
            "state",
            "needs_reevaluation",
            "override_reason",
            "override_signed",
        )
        read_only_fields = fields


class TargetInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EMDR_KIND_CHOICES)
    title = serializers.CharField(max_length=120)
    image = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    negative_cognition = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    positive_cognition = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    voc = serializers.IntegerField(required=False, allow_null=True, default=None)
    emotions = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    sud = serializers.IntegerField(required=False, allow_null=True, default=None)
    body_location = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    theme = serializers.ChoiceField(
        choices=NegativeCognitionTheme.choices, required=False, allow_blank=True, default=""
    )
    belongs_to = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)


class CriterionSerializer(serializers.Serializer):
    code = serializers.CharField()
    met = serializers.BooleanField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # `label` is also a serializer's own attribute, so it cannot be declared as a class field.
        return {**super().get_fields(), "label": serializers.CharField()}


class PlanSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    pathway = serializers.UUIDField(source="pathway.public_id", read_only=True)
    targets = serializers.SerializerMethodField()
    readiness = serializers.SerializerMethodField()
    next_target = serializers.SerializerMethodField()

    class Meta:
        model = EmdrPlan
        fields = (
            "id",
            "pathway",
            "dual_awareness_shown",
            "dissociation_interview_recorded",
            "targets",
            "readiness",
            "next_target",
        )
        read_only_fields = fields

    def _targets(self, plan: EmdrPlan) -> list[EmdrTarget]:
        cache: dict[int, list[EmdrTarget]] = self.__dict__.setdefault("_plan_targets", {})
        if plan.pk not in cache:
            cache[plan.pk] = selectors.plan_targets(plan)
        return cache[plan.pk]

    @extend_schema_field(TargetSerializer(many=True))
    def get_targets(self, plan: EmdrPlan) -> Any:
        return TargetSerializer(self._targets(plan), many=True).data

    @extend_schema_field(CriterionSerializer(many=True))
    def get_readiness(self, plan: EmdrPlan) -> Any:
        checklist = emdr_rules.readiness_checklist(selectors.readiness_facts(plan, self._targets(plan)))
        return CriterionSerializer(checklist, many=True).data

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_next_target(self, plan: EmdrPlan) -> str | None:
        targets = self._targets(plan)
        proposal = emdr_rules.next_target(selectors.target_facts(targets))
        return next((str(t.public_id) for t in targets if proposal and t.pk == proposal.key), None)


class WorkSerializer(serializers.Serializer):
    target = serializers.UUIDField()
    sud_start = serializers.IntegerField(required=False, allow_null=True)
    sud_end = serializers.IntegerField(required=False, allow_null=True)
    voc_start = serializers.IntegerField(required=False, allow_null=True)
    voc_end = serializers.IntegerField(required=False, allow_null=True)
    sud_by_set = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    interweaves = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, default=list
    )
    body_scan_clear = serializers.BooleanField(required=False, default=False)


class SessionLogSerializer(serializers.Serializer):
    held_at = serializers.DateTimeField()
    phase_reached = serializers.IntegerField()
    stimulation = serializers.ChoiceField(choices=BilateralStimulation.choices)
    closure_technique = serializers.ChoiceField(
        choices=["", "container", "calm_place"], required=False, default=""
    )
    dosing_session = serializers.UUIDField(required=False, allow_null=True)
    works = WorkSerializer(many=True)


class ReadinessSerializer(serializers.Serializer):
    dual_awareness_shown = serializers.BooleanField()
    dissociation_interview_recorded = serializers.BooleanField()


class PlanCreateSerializer(serializers.Serializer):
    pathway = serializers.UUIDField()


@extend_schema(tags=["emdr"])
class EmdrPlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """EMDR plans: the therapist of the pathway builds and works them; the prescriber reads them."""

    serializer_class = PlanSerializer
    permission_classes = (permissions.IsAuthenticated,)
    lookup_field = "public_id"  # the id in the URL (and the schema) is the record's public UUID
    lookup_url_kwarg = "id"
    queryset = EmdrPlan.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self) -> Any:
        plans = selectors.plan_qs_for_user(self.request.user)  # type: ignore[arg-type]
        pathway = self.request.query_params.get("pathway")
        return plans.filter(pathway__public_id=pathway) if pathway else plans.order_by("-created_at")

    def get_object(self) -> EmdrPlan:
        return selectors.get_plan_for_user_or_404(self.request.user, self.kwargs["id"])  # type: ignore[arg-type]

    @extend_schema(parameters=[OpenApiParameter("pathway", str, description="A pathway's id")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        plan = self.get_object()
        services.plan_viewed(actor=request.user, plan=plan, via="api")  # type: ignore[arg-type]
        return Response(PlanSerializer(plan).data)

    @extend_schema(request=PlanCreateSerializer, responses={201: PlanSerializer, 404: ErrorBody})
    def create(self, request: Request) -> Response:
        body = PlanCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pathway = get_pathway_for_user_or_404(request.user, body.validated_data["pathway"])  # type: ignore[arg-type]
        require_or_404(request.user, Capability.EMDR_EDIT)
        plan = services.plan_open(actor=request.user, pathway=pathway)  # type: ignore[arg-type]
        return Response(PlanSerializer(plan).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=TargetInputSerializer, responses={201: TargetSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def targets(self, request: Request, id: str) -> Response:
        plan = self.get_object()
        require_or_404(request.user, Capability.EMDR_EDIT)
        body = TargetInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        wanted = data.pop("belongs_to")
        belongs_to = list(plan.targets.filter(public_id__in=wanted))
        if len(belongs_to) != len(set(wanted)):
            raise NotFound()
        target = services.target_add(actor=request.user, plan=plan, belongs_to=belongs_to, **data)  # type: ignore[arg-type]
        return Response(TargetSerializer(target).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReadinessSerializer, responses={200: PlanSerializer, 404: ErrorBody})
    @action(detail=True, methods=["post"])
    def readiness(self, request: Request, id: str) -> Response:
        plan = self.get_object()
        require_or_404(request.user, Capability.EMDR_EDIT)
        body = ReadinessSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = services.plan_readiness_update(actor=request.user, plan=plan, **body.validated_data)  # type: ignore[arg-type]
        return Response(PlanSerializer(plan).data)

    @extend_schema(
        request=SessionLogSerializer, responses={201: PlanSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def sessions(self, request: Request, id: str) -> Response:
        plan = self.get_object()
        require_or_404(request.user, Capability.EMDR_EDIT)
        body = SessionLogSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        dosing = None
        if data.get("dosing_session"):
            dosing = (
                DosingSession.objects.filter(public_id=data["dosing_session"])
                .select_related("booking")
                .first()
            )
            if dosing is None:
                raise NotFound()
        targets = {
            t.public_id: t
            for t in EmdrTarget.objects.filter(public_id__in=[w["target"] for w in data["works"]])
        }
        works = []
        for work in data["works"]:
            target = targets.get(work["target"])
            if target is None:
                raise NotFound()
            works.append({**work, "target": target})
        services.session_log(
            actor=request.user,  # type: ignore[arg-type]
            plan=plan,
            held_at=data["held_at"],
            phase_reached=data["phase_reached"],
            stimulation=data["stimulation"],
            closure_technique=data["closure_technique"],
            dosing_session=dosing,
            works=works,
        )
        return Response(PlanSerializer(self.get_object()).data, status=status.HTTP_201_CREATED)


class OverrideInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


@extend_schema(tags=["emdr"])
class EmdrTargetViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TargetSerializer
    permission_classes = (permissions.IsAuthenticated,)
    lookup_field = "public_id"  # the id in the URL (and the schema) is the record's public UUID
    lookup_url_kwarg = "id"
    queryset = EmdrTarget.objects.none()  # for the schema; requests use get_object

    def get_object(self) -> EmdrTarget:
        return selectors.get_target_for_user_or_404(self.request.user, self.kwargs["id"])  # type: ignore[arg-type]

    @extend_schema(request=None, responses={200: TargetSerializer, 400: ErrorBody, 404: ErrorBody})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, id: str) -> Response:
        target = self.get_object()
        require_or_404(request.user, Capability.EMDR_EDIT)
        return Response(TargetSerializer(services.target_start(actor=request.user, target=target)).data)  # type: ignore[arg-type]

    @extend_schema(
        request=OverrideInputSerializer, responses={200: TargetSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def override(self, request: Request, id: str) -> Response:
        # Only therapists and prescribers reach a target at all; which of them signs what is the service's.
        target = self.get_object()
        body = OverrideInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        signed = services.target_override_sign(actor=request.user, target=target, **body.validated_data)  # type: ignore[arg-type]
        return Response(TargetSerializer(signed).data)
