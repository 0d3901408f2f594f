"""Screening in the JSON API: the same selectors and services as the pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.validators import MinValueValidator
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
from rest_framework.views import APIView

from kaemdr.api import ErrorBody
from kaemdr.api import require_or_404
from kaemdr.api_audit import AuditedListMixin
from kaemdr.api_base import ScopedRecordViewSet
from kaemdr.api_base import ScopedViewSet
from kaemdr.models import User
from kaemdr.permissions import Capability
from pathways.selectors import get_pathway_for_user_or_404

from . import rules
from . import selectors
from . import services
from .models import INSTRUMENT_CHOICES
from .models import Assessment
from .models import AssessmentMedication
from .models import DecisionChoice
from .models import MeasureResponse
from .models import SafetyAlert


class CanReadScreening(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        require_or_404(request.user, Capability.SCREENING_VIEW)
        return True


class MedicationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = AssessmentMedication
        fields = ("id", "name", "medication_class", "dose")


class MeasureSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    pathway = serializers.UUIDField(source="pathway.public_id", read_only=True)
    total = serializers.FloatField(read_only=True)

    class Meta:
        model = MeasureResponse
        fields = (
            "id",
            "pathway",
            "instrument",
            "answers",
            "total",
            "band",
            "band_label",
            "flags",
            "administered_at",
        )
        read_only_fields = ("band", "band_label", "flags")


class LiveProposalSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=DecisionChoice.choices)
    reasons = serializers.ListField(
        child=serializers.DictField(), help_text="Each reason: {rule, kind, text, source, source_url}."
    )


class AssessmentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    pathway = serializers.UUIDField(source="pathway.public_id", read_only=True)
    medications = MedicationSerializer(many=True, read_only=True)
    measures = MeasureSerializer(many=True, read_only=True)
    missing = serializers.SerializerMethodField()
    live_proposal = serializers.SerializerMethodField()
    proposal_reasons = serializers.SerializerMethodField()
    weight_kg = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True, required=False)
    condition_codes = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(rules.CONDITIONS_BY_CODE)), required=False
    )

    class Meta:
        model = Assessment
        fields = (
            "id",
            "pathway",
            "version",
            "status",
            *services.ASSESSMENT_FIELDS,
            "medications",
            "measures",
            "missing",
            "live_proposal",
            "proposal",
            "proposal_reasons",
            "decision",
            "decision_reason",
            "second_signature_reasons",
            "signed_at",
            "countersigned_at",
            "valid_until",
        )
        read_only_fields = (
            "version",
            "status",
            "proposal",
            "decision",
            "decision_reason",
            "second_signature_reasons",
            "signed_at",
            "countersigned_at",
            "valid_until",
        )

    def _review(self, assessment: Assessment) -> selectors.AssessmentReview:
        """Computed once per assessment per response, for both fields that show it."""
        cache: dict[int, selectors.AssessmentReview] = self.__dict__.setdefault("_reviews", {})
        if assessment.pk not in cache:
            clinic_settings = self.__dict__.setdefault("_settings", {})
            if assessment.clinic_id not in clinic_settings:
                clinic_settings[assessment.clinic_id] = selectors.screening_settings_for(assessment.clinic_id)
            cache[assessment.pk] = selectors.assessment_review(
                assessment, settings=clinic_settings[assessment.clinic_id]
            )
        return cache[assessment.pk]

    @extend_schema_field(
        serializers.ListField(
            child=serializers.DictField(),
            help_text="The reasons of the proposal at signing: {rule, kind, text, source, source_url}, "
            "each rule's source as the catalogue cites it now.",
        )
    )
    def get_proposal_reasons(self, assessment: Assessment) -> list[dict[str, Any]]:
        return selectors.cited_reasons(assessment.proposal_reasons)

    def get_missing(self, assessment: Assessment) -> list[str]:
        return self._review(assessment).missing

    @extend_schema_field(
        LiveProposalSerializer(
            allow_null=True,
            help_text="For a complete draft, what the rules propose now; null while parts are missing "
            "and once the assessment is signed.",
        )
    )
    def get_live_proposal(self, assessment: Assessment) -> dict[str, Any] | None:
        proposal = self._review(assessment).proposal
        if proposal is None or not assessment.is_draft:
            return None
        return {"decision": str(proposal.decision), "reasons": [r.as_dict() for r in proposal.reasons]}


class AssessmentCreateSerializer(serializers.Serializer):
    pathway = serializers.UUIDField()


class MeasureInputSerializer(serializers.Serializer):
    instrument = serializers.ChoiceField(choices=INSTRUMENT_CHOICES)
    answers = serializers.JSONField(
        help_text="A list of item answers, or for the C-SSRS an object of yes/no answers."
    )


# No measure was given before the clinic's records begin; an earlier time is a typing error (and the
# year 1 has no room left for the time-zone arithmetic of the next measures due).
EARLIEST_ADMINISTRATION = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class RepeatMeasureSerializer(MeasureInputSerializer):
    pathway = serializers.UUIDField()
    administered_at = serializers.DateTimeField(
        required=False,
        validators=[
            MinValueValidator(EARLIEST_ADMINISTRATION, message="Give a time from 1 January 2000 on.")
        ],
        help_text="Omit for now; a past administration from 1 January 2000 on (never in the future).",
    )


class SignSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=DecisionChoice.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class RemoveMedicationSerializer(serializers.Serializer):
    medication = serializers.UUIDField()


@extend_schema(tags=["screening"])
class AssessmentViewSet(mixins.UpdateModelMixin, ScopedRecordViewSet[Assessment]):
    """Assessments: open, fill (drafts can be saved half-filled), add medications and measures,
    read the proposal, sign, countersign, start a new version. Each read, lists included, is audited."""

    serializer_class = AssessmentSerializer
    audited_model = Assessment
    permission_classes = (permissions.IsAuthenticated, CanReadScreening)
    http_method_names = ("get", "post", "patch", "head", "options")
    scoped_queryset = staticmethod(selectors.assessment_qs_for_user)
    scoped_object = staticmethod(selectors.get_assessment_for_user_or_404)

    def get_queryset(self) -> Any:
        assessments = super().get_queryset().prefetch_related("medications", "measures")
        pathway = self.request.query_params.get("pathway")
        return (
            assessments.filter(pathway__public_id=pathway) if pathway else assessments.order_by("-created_at")
        )

    def get_object(self) -> Assessment:
        return selectors.assessment_with_parts(super().get_object())

    def _detail(self, assessment: Assessment, *, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.assessment_with_parts(assessment)
        return Response(AssessmentSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    @extend_schema(parameters=[OpenApiParameter("pathway", str, description="A pathway's id")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def audit_retrieve(self, record: Assessment) -> None:
        services.assessment_viewed(actor=self._user(), assessment=record, via="api")

    @extend_schema(
        request=AssessmentCreateSerializer,
        responses={201: AssessmentSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    def create(self, request: Request) -> Response:
        require_or_404(self._user(), Capability.SCREENING_EDIT)
        body = AssessmentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pathway = get_pathway_for_user_or_404(self._user(), body.validated_data["pathway"])
        return self._detail(
            services.assessment_open(actor=self._user(), pathway=pathway), code=status.HTTP_201_CREATED
        )

    @extend_schema(responses={200: AssessmentSerializer, 400: ErrorBody, 404: ErrorBody})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        assessment = self.get_object()
        require_or_404(self._user(), Capability.SCREENING_EDIT)
        serializer = self.get_serializer(assessment, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = services.assessment_update(
            actor=self._user(), assessment=assessment, **serializer.validated_data
        )
        return self._detail(updated)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(
        request=MedicationSerializer, responses={200: AssessmentSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def medications(self, request: Request, id: str) -> Response:
        assessment = self.get_object()
        require_or_404(self._user(), Capability.SCREENING_EDIT)
        body = MedicationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.medication_add(actor=self._user(), assessment=assessment, **body.validated_data)
        return self._detail(assessment)

    @extend_schema(
        request=RemoveMedicationSerializer,
        responses={200: AssessmentSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    @action(detail=True, methods=["post"], url_path="remove-medication")
    def remove_medication(self, request: Request, id: str) -> Response:
        assessment = self.get_object()
        require_or_404(self._user(), Capability.SCREENING_EDIT)
        body = RemoveMedicationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        medication = assessment.medications.filter(public_id=body.validated_data["medication"]).first()
        if medication is None:
            raise NotFound()
        services.medication_remove(actor=self._user(), medication=medication)
        return self._detail(assessment)

    @extend_schema(
        request=MeasureInputSerializer, responses={200: AssessmentSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def measures(self, request: Request, id: str) -> Response:
        assessment = self.get_object()
        require_or_404(self._user(), Capability.SCREENING_EDIT)
        body = MeasureInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.measure_record(
            actor=self._user(), pathway=assessment.pathway, assessment=assessment, **body.validated_data
        )
        return self._detail(assessment)

    @extend_schema(
        request=SignSerializer, responses={200: AssessmentSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def sign(self, request: Request, id: str) -> Response:
        assessment = self.get_object()
        require_or_404(self._user(), Capability.SCREENING_SIGN)
        body = SignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._detail(
            services.assessment_sign(actor=self._user(), assessment=assessment, **body.validated_data)
        )

    @extend_schema(request=None, responses={200: AssessmentSerializer, 400: ErrorBody, 404: ErrorBody})
    @action(detail=True, methods=["post"])
    def countersign(self, request: Request, id: str) -> Response:
        assessment = self.get_object()
        require_or_404(self._user(), Capability.SCREENING_SIGN)
        return self._detail(services.assessment_countersign(actor=self._user(), assessment=assessment))

    @extend_schema(request=None, responses={201: AssessmentSerializer, 400: ErrorBody, 404: ErrorBody})
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request: Request, id: str) -> Response:
        assessment = self.get_object()
        require_or_404(self._user(), Capability.SCREENING_EDIT)
        copy = services.assessment_new_version(actor=self._user(), assessment=assessment)
        return self._detail(copy, code=status.HTTP_201_CREATED)


@extend_schema(tags=["screening"])
class MeasureResponseViewSet(AuditedListMixin, mixins.ListModelMixin, ScopedViewSet[MeasureResponse]):
    """Measures over a pathway's course: list them (audited), or record a repeat administration."""

    serializer_class = MeasureSerializer
    audited_model = MeasureResponse
    permission_classes = (permissions.IsAuthenticated, CanReadScreening)
    scoped_queryset = staticmethod(selectors.measure_qs_for_user)

    def get_queryset(self) -> Any:
        measures = super().get_queryset().select_related("pathway")
        pathway = self.request.query_params.get("pathway")
        measures = measures.filter(pathway__public_id=pathway) if pathway else measures
        return measures.filter(carried_from__isnull=True).order_by("administered_at", "id")

    @extend_schema(parameters=[OpenApiParameter("pathway", str, description="A pathway's id")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=RepeatMeasureSerializer, responses={201: MeasureSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    def create(self, request: Request) -> Response:
        require_or_404(request.user, Capability.MEASURE_RECORD)
        body = RepeatMeasureSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        pathway = get_pathway_for_user_or_404(request.user, data.pop("pathway"))  # type: ignore[arg-type]
        response = services.measure_record(actor=request.user, pathway=pathway, **data)  # type: ignore[arg-type]
        return Response(MeasureSerializer(response).data, status=status.HTTP_201_CREATED)


class SafetyAlertSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    pathway = serializers.UUIDField(source="pathway.public_id", read_only=True)

    blocks_dosing = serializers.BooleanField(
        read_only=True, help_text="Open and not overridden: no dose is booked or started on the pathway."
    )

    class Meta:
        model = SafetyAlert
        fields = (
            "id",
            "pathway",
            "code",
            "text",
            "status",
            "raised_at",
            "acknowledged_at",
            "action_taken",
            "dosing_override_at",
            "dosing_override_reason",
            "blocks_dosing",
        )


class AcknowledgeSerializer(serializers.Serializer):
    action_taken = serializers.CharField(max_length=4000)


class DosingOverrideSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=4000)


class SafetyAlertFilterSerializer(serializers.Serializer):
    """The alert list's filter: an unknown status is refused rather than ignored."""

    status = serializers.ChoiceField(choices=("open", "acknowledged"), required=False)


@extend_schema(tags=["screening"])
class SafetyAlertViewSet(ScopedRecordViewSet[SafetyAlert]):
    """Urgent safety alerts raised by measures: read them (audited, lists included), record the action
    taken, or sign a dosing override."""

    serializer_class = SafetyAlertSerializer
    audited_model = SafetyAlert
    permission_classes = (permissions.IsAuthenticated, CanReadScreening)
    scoped_queryset = staticmethod(selectors.alert_qs_for_user)
    scoped_object = staticmethod(selectors.get_alert_for_user_or_404)

    def get_queryset(self) -> Any:
        alerts = super().get_queryset()
        filters = SafetyAlertFilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data.get("status")
        return alerts.filter(status=wanted) if wanted else alerts

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=["open", "acknowledged"])])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=AcknowledgeSerializer, responses={200: SafetyAlertSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, id: str) -> Response:
        alert = self.get_object()
        require_or_404(request.user, Capability.SAFETY_ALERT_ACKNOWLEDGE)
        body = AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        done = services.safety_alert_acknowledge(actor=request.user, alert=alert, **body.validated_data)  # type: ignore[arg-type]
        return Response(SafetyAlertSerializer(done).data)

    @extend_schema(
        request=DosingOverrideSerializer,
        responses={200: SafetyAlertSerializer, 400: ErrorBody, 404: ErrorBody},
        description="A prescriber signs, with a reason, that dosing may go ahead while the alert stays "
        "open (it stays on the dashboards until the action taken is recorded).",
    )
    @action(detail=True, methods=["post"], url_path="dosing-override")
    def dosing_override(self, request: Request, id: str) -> Response:
        alert = self.get_object()
        require_or_404(request.user, Capability.SAFETY_ALERT_DOSING_OVERRIDE)
        body = DosingOverrideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor: User = request.user  # type: ignore[assignment]
        done = services.safety_alert_dosing_override_sign(actor=actor, alert=alert, **body.validated_data)
        return Response(SafetyAlertSerializer(done).data)


class ScreeningSettingsSerializer(serializers.Serializer):
    bp_systolic_threshold = serializers.IntegerField(min_value=100, max_value=220)
    bp_diastolic_threshold = serializers.IntegerField(min_value=60, max_value=140)
    screening_valid_days = serializers.IntegerField(min_value=7, max_value=730)
    second_signature_codes = serializers.ListField(
        child=serializers.ChoiceField(
            choices=[c.code for c in rules.CONDITIONS if c.severity == rules.Severity.RELATIVE]
        )
    )
    adults_only = serializers.BooleanField(
        required=False,
        help_text="Only adults (18 and over) are eligible for any ketamine (esketamine: always). "
        "Left out, the setting keeps its value.",
    )


@extend_schema(tags=["screening"])
class ScreeningSettingsView(APIView):
    """The clinic's screening settings, for clinic admins."""

    permission_classes = (permissions.IsAuthenticated,)

    @extend_schema(responses={200: ScreeningSettingsSerializer, 404: ErrorBody})
    def get(self, request: Request) -> Response:
        require_or_404(request.user, Capability.CLINIC_SETTINGS_MANAGE)
        current = selectors.screening_settings_for(request.user.member_clinic_id)  # type: ignore[union-attr]
        return Response(ScreeningSettingsSerializer(current).data)

    @extend_schema(
        request=ScreeningSettingsSerializer,
        responses={200: ScreeningSettingsSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    def put(self, request: Request) -> Response:
        require_or_404(request.user, Capability.CLINIC_SETTINGS_MANAGE)
        body = ScreeningSettingsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        saved = services.screening_settings_update(actor=request.user, **body.validated_data)  # type: ignore[arg-type]
        return Response(ScreeningSettingsSerializer(saved).data)
