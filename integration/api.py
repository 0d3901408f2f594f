"""Integration in the JSON API: notes, experiments, follow-ups and the clinic's follow-up settings,
through the same selectors and services as the pages."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import extend_schema
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
from kaemdr.api_audit import AuditedRetrieveMixin
from kaemdr.api_base import ScopedRecordViewSet
from kaemdr.api_base import ScopedViewSet
from kaemdr.models import User
from kaemdr.permissions import Capability
from pathways.selectors import get_pathway_for_user_or_404
from sessions.models import DosingSession

from . import selectors
from . import services
from . import summary_services
from .models import AREA_CHOICES
from .models import EXPERIMENT_STATE_CHOICES
from .models import FOLLOW_UP_KIND_CHOICES
from .models import Experiment
from .models import ExperimentUpdate
from .models import FollowUp
from .models import IntegrationNote
from .models import IntegrationSettings
from .models import NoteAddendum
from .models import Summary
from .models import SummaryKind
from .models import SummaryStatus
from .rules import FollowUpKind


def _actor(request: Request) -> User:
    """The signed-in member of staff (every route requires authentication)."""
    return request.user  # type: ignore[return-value]


class ExperimentUpdateSerializer(serializers.ModelSerializer):
    note = serializers.UUIDField(source="note.public_id", read_only=True)

    class Meta:
        model = ExperimentUpdate
        fields = ("note", "from_state", "to_state", "what_happened", "created_at")
        read_only_fields = fields


class ExperimentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    pathway = serializers.UUIDField(source="pathway.public_id", read_only=True)
    updates = ExperimentUpdateSerializer(many=True, read_only=True)

    class Meta:
        model = Experiment
        fields = ("id", "pathway", "area", "description", "state", "what_happened", "updates", "created_at")
        read_only_fields = fields


class AddendumSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.full_name", read_only=True)

    class Meta:
        model = NoteAddendum
        fields = ("text", "author", "created_at")
        read_only_fields = fields


class NoteSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    pathway = serializers.UUIDField(source="pathway.public_id", read_only=True)
    dosing_session = serializers.UUIDField(source="dosing_session.public_id", read_only=True)
    author = serializers.CharField(source="author.full_name", read_only=True)
    addenda = AddendumSerializer(many=True, read_only=True)

    class Meta:
        model = IntegrationNote
        fields = (
            "id",
            "pathway",
            "dosing_session",
            "author",
            "held_at",
            *services.NOTE_FIELDS,
            "status",
            "signed_at",
            "addenda",
        )
        read_only_fields = fields


class NoteCreateSerializer(serializers.Serializer):
    pathway = serializers.UUIDField()
    dosing_session = serializers.UUIDField(required=False, allow_null=True, default=None)
    held_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class NoteUpdateSerializer(serializers.Serializer):
    held_at = serializers.DateTimeField(required=False)
    perception_shift = serializers.CharField(required=False, allow_blank=True)
    newly_possible = serializers.CharField(required=False, allow_blank=True)
    afraid_of_losing = serializers.CharField(required=False, allow_blank=True)
    free_notes = serializers.CharField(required=False, allow_blank=True)


class ExperimentInputSerializer(serializers.Serializer):
    area = serializers.ChoiceField(choices=AREA_CHOICES)
    description = serializers.CharField(max_length=300, allow_blank=True)


class ReviewInputSerializer(serializers.Serializer):
    experiment = serializers.UUIDField()
    state = serializers.ChoiceField(choices=EXPERIMENT_STATE_CHOICES)
    what_happened = serializers.CharField(required=False, allow_blank=True, default="")


class AddendumInputSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)


@extend_schema(tags=["integration"])
class IntegrationNoteViewSet(ScopedRecordViewSet[IntegrationNote]):
    """Integration notes: the pathway's therapist writes and signs them; prescribers read them. Each
    read, lists included, is audited."""

    serializer_class = NoteSerializer
    audited_model = IntegrationNote
    queryset = IntegrationNote.objects.none()  # for the schema; requests use get_queryset
    scoped_queryset = staticmethod(selectors.note_qs_for_user)
    scoped_object = staticmethod(selectors.get_note_for_user_or_404)

    def get_queryset(self) -> Any:
        notes = super().get_queryset().prefetch_related("addenda__author")
        pathway = self.request.query_params.get("pathway")
        return notes.filter(pathway__public_id=pathway) if pathway else notes

    def _body(self, note: IntegrationNote) -> Any:
        return NoteSerializer(selectors.get_note_for_user_or_404(_actor(self.request), note.public_id)).data

    @extend_schema(parameters=[OpenApiParameter("pathway", str, description="A pathway's id")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def audit_retrieve(self, record: IntegrationNote) -> None:
        services.note_viewed(actor=self._user(), note=record, via="api")

    @extend_schema(
        request=NoteCreateSerializer, responses={201: NoteSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    def create(self, request: Request) -> Response:
        require_or_404(_actor(request), Capability.INTEGRATION_WRITE)
        body = NoteCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        pathway = get_pathway_for_user_or_404(_actor(request), data["pathway"])
        session = None
        if data["dosing_session"]:
            session = DosingSession.objects.filter(
                public_id=data["dosing_session"], booking__pathway=pathway
            ).first()
            if session is None:
                raise NotFound()
        note = services.note_open(
            actor=_actor(request), pathway=pathway, dosing_session=session, held_at=data["held_at"]
        )
        return Response(self._body(note), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=NoteUpdateSerializer, responses={200: NoteSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    def partial_update(self, request: Request, id: str) -> Response:
        note = self.get_object()
        require_or_404(_actor(request), Capability.INTEGRATION_WRITE)
        body = NoteUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = services.note_update(actor=_actor(request), note=note, **body.validated_data)
        return Response(self._body(note))

    @extend_schema(request=None, responses={200: NoteSerializer, 400: ErrorBody, 404: ErrorBody})
    @action(detail=True, methods=["post"])
    def sign(self, request: Request, id: str) -> Response:
        note = self.get_object()
        require_or_404(_actor(request), Capability.INTEGRATION_WRITE)
        return Response(self._body(services.note_sign(actor=_actor(request), note=note)))

    @extend_schema(
        request=AddendumInputSerializer, responses={201: NoteSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def addenda(self, request: Request, id: str) -> Response:
        note = self.get_object()
        require_or_404(_actor(request), Capability.INTEGRATION_WRITE)
        body = AddendumInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.note_addendum_add(actor=_actor(request), note=note, text=body.validated_data["text"])
        return Response(self._body(note), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ExperimentInputSerializer,
        responses={201: ExperimentSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    @action(detail=True, methods=["post"])
    def experiments(self, request: Request, id: str) -> Response:
        note = self.get_object()
        require_or_404(_actor(request), Capability.INTEGRATION_WRITE)
        body = ExperimentInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        experiment = services.experiment_add(actor=_actor(request), note=note, **body.validated_data)
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ReviewInputSerializer, responses={200: ExperimentSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def reviews(self, request: Request, id: str) -> Response:
        note = self.get_object()
        require_or_404(_actor(request), Capability.INTEGRATION_WRITE)
        body = ReviewInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        experiment = selectors.get_experiment_for_user_or_404(_actor(request), data.pop("experiment"))
        experiment = services.experiment_review(
            actor=_actor(request), note=note, experiment=experiment, **data
        )
        return Response(ExperimentSerializer(experiment).data)


@extend_schema(tags=["integration"])
class ExperimentViewSet(ScopedRecordViewSet[Experiment]):
    """Experiments across notes; they change only through a note (`integration-notes/{id}/reviews/`).
    Each read, lists included, is audited."""

    serializer_class = ExperimentSerializer
    audited_model = Experiment
    queryset = Experiment.objects.none()
    scoped_queryset = staticmethod(selectors.experiment_qs_for_user)
    scoped_object = staticmethod(selectors.get_experiment_for_user_or_404)

    def get_queryset(self) -> Any:
        experiments = super().get_queryset().select_related("pathway").prefetch_related("updates__note")
        pathway = self.request.query_params.get("pathway")
        return experiments.filter(pathway__public_id=pathway) if pathway else experiments

    @extend_schema(parameters=[OpenApiParameter("pathway", str, description="A pathway's id")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class FollowUpSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    pathway = serializers.UUIDField(source="pathway.public_id", read_only=True)
    patient = serializers.CharField(source="patient.full_name", read_only=True)
    record_number = serializers.CharField(source="patient.record_number", read_only=True)
    responsible = serializers.CharField(source="responsible.email", read_only=True)
    kind = serializers.ChoiceField(choices=FOLLOW_UP_KIND_CHOICES, read_only=True)

    class Meta:
        model = FollowUp
        fields = (
            "id",
            "pathway",
            "patient",
            "record_number",
            "kind",
            "sequence",
            "responsible",
            "due_at",
            "notify_at",
            "notified_at",
            "patient_notified",
            "status",
            "done_at",
            "outcome",
        )
        read_only_fields = fields


class FollowUpDoneSerializer(serializers.Serializer):
    outcome = serializers.CharField(allow_blank=True, max_length=300)


class FollowUpFilterSerializer(serializers.Serializer):
    """The follow-up list's filters: an unknown value is refused rather than replaced by the default."""

    scope = serializers.ChoiceField(choices=("mine", "clinic"), default="mine")
    show = serializers.ChoiceField(choices=("open", "overdue", "reminders", "closed"), default="open")


@extend_schema(tags=["integration"])
class FollowUpViewSet(ScopedRecordViewSet[FollowUp]):
    """What must follow each dose, and the reminders before each visit. Each read, lists included, is
    audited."""

    serializer_class = FollowUpSerializer
    audited_model = FollowUp
    audited_patient = "patient"
    queryset = FollowUp.objects.none()
    scoped_object = staticmethod(selectors.get_follow_up_for_user_or_404)

    def get_queryset(self) -> Any:
        """The list's own selector: scoped like `follow_up_qs_for_user`, filtered and ordered."""
        filters = FollowUpFilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        return selectors.follow_ups_list(
            self._user(), scope=filters.validated_data["scope"], show=filters.validated_data["show"]
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "scope", str, enum=["mine", "clinic"], description="The user's own or the clinic's"
            ),
            OpenApiParameter("show", str, enum=["open", "overdue", "reminders", "closed"]),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def audit_retrieve(self, record: FollowUp) -> None:
        services.follow_up_viewed(actor=self._user(), follow_up=record, via="api")

    @extend_schema(
        request=FollowUpDoneSerializer, responses={200: FollowUpSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, id: str) -> Response:
        follow_up = self.get_object()
        # Who may complete it depends on its kind (as on the page), checked before the body is read.
        require_or_404(
            _actor(request),
            Capability.FOLLOW_UP_CHECK_IN
            if follow_up.kind == FollowUpKind.CHECK_IN
            else Capability.FOLLOW_UP_CLOSE,
        )
        body = FollowUpDoneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        done = services.follow_up_complete(
            actor=_actor(request), follow_up=follow_up, outcome=body.validated_data["outcome"]
        )
        return Response(
            FollowUpSerializer(selectors.get_follow_up_for_user_or_404(_actor(request), done.public_id)).data
        )


class IntegrationSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = IntegrationSettings
        fields = services.SETTINGS_FIELDS


class IntegrationSettingsView(APIView):
    """The clinic's follow-up timings, for clinic admins."""

    permission_classes = (permissions.IsAuthenticated,)

    @extend_schema(responses={200: IntegrationSettingsSerializer, 404: ErrorBody})
    def get(self, request: Request) -> Response:
        require_or_404(_actor(request), Capability.CLINIC_SETTINGS_MANAGE)
        return Response(
            IntegrationSettingsSerializer(
                selectors.integration_settings_for(_actor(request).member_clinic_id)
            ).data
        )

    @extend_schema(
        request=IntegrationSettingsSerializer,
        responses={200: IntegrationSettingsSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    def put(self, request: Request) -> Response:
        require_or_404(_actor(request), Capability.CLINIC_SETTINGS_MANAGE)
        body = IntegrationSettingsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = services.integration_settings_update(actor=_actor(request), **body.validated_data)
        return Response(IntegrationSettingsSerializer(row).data)


class SummarySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    record = serializers.UUIDField(source="record_public_id", read_only=True)
    download_url = serializers.SerializerMethodField()
    retry_offered = serializers.SerializerMethodField()

    class Meta:
        model = Summary
        fields = (
            "id",
            "kind",
            "record",
            "version",
            "status",
            "page_count",
            "byte_size",
            "error",
            "ready_at",
            "download_url",
            "retry_offered",
        )
        read_only_fields = fields

    def get_download_url(self, summary: Summary) -> str | None:
        if summary.status != SummaryStatus.READY:
            return None
        return f"/api/v1/summaries/{summary.public_id}/download/"

    def get_retry_offered(self, summary: Summary) -> bool:
        """True when asking again (POST /summaries/ with the same kind and record) is worth it: the
        summary failed, or has been pending past the wait and asking again queues it again."""
        return summary_services.summary_retry_offered(summary)


class SummaryRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SummaryKind.choices)
    record = serializers.UUIDField()


@extend_schema(tags=["summaries"])
class SummaryViewSet(AuditedRetrieveMixin, mixins.RetrieveModelMixin, ScopedViewSet[Summary]):
    """PDF summaries of signed records: ask (202 while it is made), poll, download (each read audited).
    Asking again for one being made queues it again when it never reached the task queue, or once
    `retry_offered` is true (pending past the wait): that is "Try again"."""

    serializer_class = SummarySerializer
    audited_model = Summary
    queryset = Summary.objects.none()
    scoped_object = staticmethod(selectors.get_summary_for_user_or_404)

    @extend_schema(
        request=SummaryRequestSerializer,
        responses={200: SummarySerializer, 202: SummarySerializer, 400: ErrorBody, 404: ErrorBody},
        description="Ask for the summary of a signed record: 200 with the stored one when it is ready, "
        "202 while it is made. Asked again while it is made, it is queued again when it never reached "
        "the task queue or when `retry_offered` is true (pending past the wait): this is the page's "
        '"Try again". A task queue that is down delays the render; it never fails the request.',
    )
    def create(self, request: Request) -> Response:
        body = SummaryRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        summary = summary_services.summary_request(
            actor=_actor(request),
            kind=body.validated_data["kind"],
            record_public_id=body.validated_data["record"],
        )
        ready = summary.status == SummaryStatus.READY
        return Response(
            SummarySerializer(summary).data, status=status.HTTP_200_OK if ready else status.HTTP_202_ACCEPTED
        )

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY, 400: ErrorBody, 404: ErrorBody})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, id: str) -> FileResponse:
        summary = self.get_object()
        path = summary_services.summary_for_download(actor=_actor(request), summary=summary)
        response = FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"{summary.kind}.pdf",
            content_type="application/pdf",
        )
        response["Cache-Control"] = "private, no-store"
        return response
