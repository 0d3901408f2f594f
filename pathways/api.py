"""Patients and pathways in the JSON API: the same selectors and services as the pages."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import extend_schema
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins
from rest_framework import permissions
from rest_framework import serializers
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from kaemdr.api import ErrorBody
from kaemdr.api import require_or_404
from kaemdr.api_base import ScopedRecordViewSet
from kaemdr.models import Role
from kaemdr.permissions import Capability
from kaemdr.permissions import can_see_patients
from kaemdr.selectors import clinic_clinicians

from . import selectors
from . import services
from .models import Pathway
from .models import PathwayStageChange
from .models import Patient
from .models import Stage
from .rules import allowed_moves


class CanSeePatients(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if can_see_patients(request.user):
            return True
        raise NotFound()


class PatientSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Patient
        fields = ("id", *services.PATIENT_FIELDS, "created_at")
        read_only_fields = ("created_at",)
        # Uniqueness and date checks are the service's; the database constraint is its backstop.
        validators: list[Any] = []


@extend_schema_field(OpenApiTypes.UUID)
class ClinicianField(serializers.SlugRelatedField):
    """A member of staff of the requester's clinic with a given role, named by id."""

    def __init__(self, *, role: str, **kwargs: Any) -> None:
        self.role = role
        super().__init__(slug_field="public_id", **kwargs)

    def get_queryset(self) -> Any:
        return clinic_clinicians(self.context["request"].user, role=self.role)


class StaffBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    full_name = serializers.CharField()


class StageChangeSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    changed_by = StaffBriefSerializer()

    class Meta:
        model = PathwayStageChange
        fields = ("id", "from_stage", "to_stage", "reason", "changed_by", "changed_at")


class NextActionSerializer(serializers.Serializer):
    detail = serializers.CharField()
    url = serializers.CharField(
        help_text="The page where the requester's role does it (a path), or empty where it has none."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # `label` is also a serializer's own attribute, so it cannot be declared as a class field.
        return {"label": serializers.CharField(), **super().get_fields()}


class PathwaySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    patient = serializers.UUIDField(source="patient.public_id", read_only=True)
    prescriber = StaffBriefSerializer(read_only=True)
    therapist = StaffBriefSerializer(read_only=True, allow_null=True)
    allowed_moves = serializers.SerializerMethodField()

    class Meta:
        model = Pathway
        fields: tuple[str, ...] = (
            "id",
            "patient",
            "stage",
            "stage_before_hold",
            "stage_changed_at",
            "prescriber",
            "therapist",
            "referral_source",
            "created_at",
            "allowed_moves",
        )

    def get_allowed_moves(self, pathway: Pathway) -> list[str]:
        return allowed_moves(stage=pathway.stage, stage_before_hold=pathway.stage_before_hold)


class PathwayDetailSerializer(PathwaySerializer):
    timeline = serializers.SerializerMethodField()
    next_actions = serializers.SerializerMethodField()

    class Meta(PathwaySerializer.Meta):
        fields = (*PathwaySerializer.Meta.fields, "timeline", "next_actions")

    @extend_schema_field(StageChangeSerializer(many=True))
    def get_timeline(self, pathway: Pathway) -> list[dict[str, Any]]:
        return StageChangeSerializer(selectors.pathway_timeline(pathway=pathway), many=True).data  # type: ignore[return-value]

    @extend_schema_field(NextActionSerializer(many=True))
    def get_next_actions(self, pathway: Pathway) -> list[dict[str, Any]]:
        request = self.context.get("request")
        actions = selectors.pathway_next_actions(pathway=pathway, user=getattr(request, "user", None))
        return NextActionSerializer(actions, many=True).data  # type: ignore[return-value]


class PatientReferenceSerializer(serializers.Serializer):
    patient = serializers.UUIDField()


class PathwayOpenSerializer(PatientReferenceSerializer):
    prescriber = ClinicianField(role=Role.PRESCRIBER)
    therapist = ClinicianField(role=Role.THERAPIST, required=False, allow_null=True)
    referral_source = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class PathwayMoveSerializer(serializers.Serializer):
    to_stage = serializers.ChoiceField(choices=Stage.choices)
    reason = serializers.CharField(max_length=2000)
    expected_stage = serializers.ChoiceField(
        choices=Stage.choices,
        required=False,
        help_text="The stage the client last saw; the move is refused if the pathway has moved since.",
    )


class CareTeamSerializer(serializers.Serializer):
    prescriber = ClinicianField(role=Role.PRESCRIBER)
    therapist = ClinicianField(role=Role.THERAPIST, allow_null=True)


@extend_schema(tags=["patients"])
class PatientViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, ScopedRecordViewSet[Patient]):
    """Patients of the requester's clinic that their role may see. Each read, lists included, is audited."""

    serializer_class = PatientSerializer
    audited_model = Patient
    audited_patient = ""  # the records are patients
    permission_classes = (permissions.IsAuthenticated, CanSeePatients)
    http_method_names = ("get", "post", "patch", "head", "options")
    scoped_object = staticmethod(selectors.get_patient_for_user_or_404)

    def get_queryset(self) -> Any:
        """The list's own selector: scoped like `patient_qs_for_user`, searched and ordered."""
        return selectors.patient_list(self._user(), search=self.request.query_params.get("q", "")[:100])

    @extend_schema(parameters=[OpenApiParameter("q", str, description="Part of a name or record number")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def audit_retrieve(self, record: Patient) -> None:
        services.patient_record_viewed(actor=self._user(), patient=record, via="api")

    @extend_schema(responses={201: PatientSerializer, 400: ErrorBody, 404: ErrorBody})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        require_or_404(self._user(), Capability.PATIENT_REGISTER)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        patient = services.patient_register(actor=self._user(), **serializer.validated_data)
        return Response(self.get_serializer(patient).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: PatientSerializer, 400: ErrorBody, 404: ErrorBody})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()
        require_or_404(self._user(), Capability.PATIENT_EDIT)
        serializer = self.get_serializer(patient, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        patient = services.patient_update(actor=self._user(), patient=patient, **serializer.validated_data)
        return Response(self.get_serializer(patient).data)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(
        summary="The patient's whole record, for a subject access request (prescribers; audited)",
        responses={200: OpenApiTypes.OBJECT, 404: ErrorBody},
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, id: str) -> Response:
        patient = self.get_object()
        return Response(services.patient_export(actor=self._user(), patient=patient))


class PathwayFilterSerializer(serializers.Serializer):
    """The pathway list's filter: an unknown stage is refused rather than ignored."""

    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    mine = serializers.BooleanField(required=False, default=False)


@extend_schema(tags=["pathways"])
class PathwayViewSet(ScopedRecordViewSet[Pathway]):
    """Pathways the requester may see: open one, move it through its stages, set its care team.
    Each read, lists included, is audited."""

    serializer_class = PathwaySerializer
    audited_model = Pathway
    audited_patient = "patient"
    permission_classes = (permissions.IsAuthenticated, CanSeePatients)
    scoped_object = staticmethod(selectors.get_pathway_for_user_or_404)

    def get_queryset(self) -> Any:
        filters = PathwayFilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        if filters.validated_data["mine"]:
            pathways = selectors.my_open_pathways(self._user())
        else:
            pathways = selectors.pathway_qs_for_user(self._user()).order_by("-stage_changed_at", "id")
        stage = filters.validated_data.get("stage")
        return pathways.filter(stage=stage) if stage else pathways

    @extend_schema(
        parameters=[
            OpenApiParameter("stage", str, enum=Stage.values),
            OpenApiParameter(
                "mine",
                bool,
                description="Only your own open pathways (you are their prescriber or therapist), "
                "longest in their stage first: the dashboard's lists.",
            ),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: PathwayDetailSerializer, 404: ErrorBody})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        pathway = self.get_object()
        services.pathway_record_viewed(actor=self._user(), pathway=pathway, via="api")
        return Response(PathwayDetailSerializer(pathway, context=self.get_serializer_context()).data)

    @extend_schema(
        request=PathwayOpenSerializer,
        responses={201: PathwayDetailSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    def create(self, request: Request) -> Response:
        require_or_404(self._user(), Capability.PATHWAY_OPEN)
        # The patient is resolved before the rest is validated, so that another clinic's patient
        # answers 404 whatever else the body holds.
        reference = PatientReferenceSerializer(data=request.data)
        reference.is_valid(raise_exception=True)
        patient = selectors.get_patient_for_user_or_404(self._user(), reference.validated_data["patient"])
        serializer = PathwayOpenSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("patient")
        pathway = services.pathway_open(actor=self._user(), patient=patient, **data)
        body = PathwayDetailSerializer(pathway, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=PathwayMoveSerializer,
        responses={200: PathwayDetailSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    @action(detail=True, methods=["post"])
    def move(self, request: Request, id: str) -> Response:
        pathway = self.get_object()
        require_or_404(self._user(), Capability.PATHWAY_MOVE)
        serializer = PathwayMoveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.pathway_move(actor=self._user(), pathway=pathway, **serializer.validated_data)
        pathway = self.get_object()
        return Response(PathwayDetailSerializer(pathway, context=self.get_serializer_context()).data)

    @extend_schema(
        request=CareTeamSerializer, responses={200: PathwayDetailSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"], url_path="care-team")
    def care_team(self, request: Request, id: str) -> Response:
        pathway = self.get_object()
        require_or_404(self._user(), Capability.CARE_TEAM_ASSIGN)
        serializer = CareTeamSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        services.pathway_assign_care_team(actor=self._user(), pathway=pathway, **serializer.validated_data)
        pathway = self.get_object()
        return Response(PathwayDetailSerializer(pathway, context=self.get_serializer_context()).data)
