"""EMDR plans in the JSON API: the same selectors and services as the pages, the same gates."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import extend_schema
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins
from rest_framework import serializers
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from kaemdr.api import ErrorBody
from kaemdr.api import require_or_404
from kaemdr.api_audit import AuditedRetrieveMixin
from kaemdr.api_base import ScopedRecordViewSet
from kaemdr.api_base import ScopedViewSet
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.sources import citation_for
from pathways.selectors import get_pathway_for_user_or_404
from sessions.emdr import rules as emdr_rules
from sessions.emdr import selectors
from sessions.emdr import services
from sessions.models import EMDR_KIND_CHOICES
from sessions.models import EMDR_PROTOCOL_CHOICES
from sessions.models import BilateralStimulation
from sessions.models import DosingSession
from sessions.models import EmdrPlan
from sessions.models import EmdrTarget
from sessions.models import NegativeCognitionTheme


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
    """A readiness criterion: its registered code, label, whether it is met, and its source."""

    code = serializers.CharField()
    met = serializers.BooleanField()
    source_url = serializers.SerializerMethodField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # `label` and `source` are also a serializer's own attributes, so they cannot be class fields.
        return {
            **super().get_fields(),
            "label": serializers.CharField(),
            "source": serializers.SerializerMethodField(method_name="citation_text"),
        }

    @extend_schema_field(serializers.CharField())
    def citation_text(self, criterion: emdr_rules.Criterion) -> str:
        citation = citation_for(criterion.code)
        return citation.text if citation else ""

    def get_source_url(self, criterion: emdr_rules.Criterion) -> str:
        citation = citation_for(criterion.code)
        return citation.url if citation else ""


class PlanSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    pathway = serializers.UUIDField(source="pathway.public_id", read_only=True)
    targets = serializers.SerializerMethodField()
    readiness = serializers.SerializerMethodField()
    ready = serializers.SerializerMethodField()
    next_target = serializers.SerializerMethodField()
    next_target_reason = serializers.SerializerMethodField()

    class Meta:
        model = EmdrPlan
        fields = (
            "id",
            "pathway",
            "protocol",
            "dual_awareness_shown",
            "affect_tolerance_shown",
            "dissociation_interview_recorded",
            "targets",
            "readiness",
            "ready",
            "next_target",
            "next_target_reason",
        )
        read_only_fields = fields

    def _state(self, plan: EmdrPlan) -> selectors.PlanState:
        cache: dict[int, selectors.PlanState] = self.__dict__.setdefault("_plan_states", {})
        if plan.pk not in cache:
            cache[plan.pk] = selectors.plan_state(plan)
        return cache[plan.pk]

    @extend_schema_field(TargetSerializer(many=True))
    def get_targets(self, plan: EmdrPlan) -> Any:
        return TargetSerializer(self._state(plan).targets, many=True).data

    @extend_schema_field(CriterionSerializer(many=True))
    def get_readiness(self, plan: EmdrPlan) -> Any:
        return CriterionSerializer(self._state(plan).checklist, many=True).data

    @extend_schema_field(serializers.BooleanField())
    def get_ready(self, plan: EmdrPlan) -> bool:
        return self._state(plan).ready

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_next_target(self, plan: EmdrPlan) -> str | None:
        """The target the plan proposes next under its protocol (null when nothing may start now)."""
        state = self._state(plan)
        proposal = state.proposal.target
        return next((str(t.public_id) for t in state.targets if proposal and t.pk == proposal.key), None)

    @extend_schema_field(serializers.CharField())
    def get_next_target_reason(self, plan: EmdrPlan) -> str:
        """Why that target is next, or what holds the plan up, in plain words."""
        return self._state(plan).proposal.reason


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
    affect_tolerance_shown = serializers.BooleanField(
        required=False, help_text="Left out, the plan keeps what it has."
    )


class ProtocolInputSerializer(serializers.Serializer):
    protocol = serializers.ChoiceField(choices=EMDR_PROTOCOL_CHOICES)


class ProtocolChangeSerializer(serializers.Serializer):
    changed = serializers.BooleanField()
    notes = serializers.ListField(child=serializers.CharField())
    plan = PlanSerializer()


class PlanCreateSerializer(serializers.Serializer):
    pathway = serializers.UUIDField()


@extend_schema(tags=["emdr"])
class EmdrPlanViewSet(ScopedRecordViewSet[EmdrPlan]):
    """EMDR plans: the therapist of the pathway builds and works them; the prescriber reads them.
    Each read, lists included, is audited."""

    serializer_class = PlanSerializer
    audited_model = EmdrPlan
    queryset = EmdrPlan.objects.none()  # for the schema; requests use get_queryset
    scoped_queryset = staticmethod(selectors.plan_qs_for_user)
    scoped_object = staticmethod(selectors.get_plan_for_user_or_404)

    def get_queryset(self) -> Any:
        plans = super().get_queryset()
        pathway = self.request.query_params.get("pathway")
        return plans.filter(pathway__public_id=pathway) if pathway else plans.order_by("-created_at")

    @extend_schema(parameters=[OpenApiParameter("pathway", str, description="A pathway's id")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def audit_retrieve(self, record: EmdrPlan) -> None:
        services.plan_viewed(actor=self._user(), plan=record, via="api")

    @extend_schema(request=PlanCreateSerializer, responses={201: PlanSerializer, 404: ErrorBody})
    def create(self, request: Request) -> Response:
        require_or_404(request.user, Capability.EMDR_EDIT)
        body = PlanCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pathway = get_pathway_for_user_or_404(request.user, body.validated_data["pathway"])  # type: ignore[arg-type]
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
        request=ProtocolInputSerializer,
        responses={200: ProtocolChangeSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    @action(detail=True, methods=["post"])
    def protocol(self, request: Request, id: str) -> Response:
        """Set the plan's EMDR protocol (the therapist who edits the plan); `notes` say what changes."""
        plan = self.get_object()
        require_or_404(request.user, Capability.EMDR_EDIT)
        body = ProtocolInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = services.plan_protocol_set(actor=request.user, plan=plan, **body.validated_data)  # type: ignore[arg-type]
        return Response(
            {"changed": change.changed, "notes": change.notes, "plan": PlanSerializer(change.plan).data}
        )

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
class EmdrTargetViewSet(AuditedRetrieveMixin, mixins.RetrieveModelMixin, ScopedViewSet[EmdrTarget]):
    """One target of an EMDR plan: read it (audited), start working it through the plan's sequencing
    and readiness gate, or sign an override of that gate."""

    serializer_class = TargetSerializer
    queryset = EmdrTarget.objects.none()  # for the schema; requests use get_object
    scoped_object = staticmethod(selectors.get_target_for_user_or_404)

    def audit_retrieve(self, record: EmdrTarget) -> None:
        services.plan_viewed(actor=self._user(), plan=record.plan, via="api", target=record)

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
        if not (
            has_capability(request.user, Capability.EMDR_EDIT)
            or has_capability(request.user, Capability.EMDR_OVERRIDE_COSIGN)
        ):
            raise NotFound()
        body = OverrideInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        signed = services.target_override_sign(actor=request.user, target=target, **body.validated_data)  # type: ignore[arg-type]
        return Response(TargetSerializer(signed).data)
