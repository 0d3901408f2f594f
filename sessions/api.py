"""Dosing rooms and bookings in the JSON API: the same selectors and services as the pages."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import PolymorphicProxySerializer
from drf_spectacular.utils import extend_schema
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins
from rest_framework import permissions
from rest_framework import serializers
from rest_framework import status
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kaemdr.api import ErrorBody
from kaemdr.api import require_or_404
from kaemdr.api_audit import AuditedListMixin
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import Capability
from pathways import services as pathway_services
from pathways.api import ClinicianField
from pathways.api import StaffBriefSerializer
from pathways.selectors import get_pathway_for_user_or_404
from screening.models import AGENT_CHOICES
from screening.models import ROUTE_CHOICES

from . import esketamine_rules
from . import rules
from . import selectors
from . import services
from .models import EMDR_PROTOCOL_CHOICES
from .models import ESKETAMINE_LABEL_CHOICES
from .models import Booking
from .models import DosingSession
from .models import Room
from .models import VitalsReading


class RoomSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Room
        fields = ("id", *services.ROOM_FIELDS)
        validators: list[Any] = []


class HoursSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text="Monday is 0")
    opens = serializers.TimeField()
    closes = serializers.TimeField()


class ClosureSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField(max_length=200)


class FreeSlotsQuerySerializer(serializers.Serializer):
    date = serializers.DateField(
        required=False,
        help_text="The day (clinic time); the room's next open day from tomorrow when left out",
    )
    monitor = ClinicianField(
        role=Role.MONITOR, required=False, help_text="Leave out the monitor's own bookings' times too"
    )
    pathway = serializers.UUIDField(
        required=False,
        help_text="The pathway to book: its planned chair time sets the length, and its patient's bookings "
        "are left out too",
    )
    minutes = serializers.IntegerField(
        required=False, min_value=5, max_value=24 * 60, help_text="The session's length, without a pathway"
    )

    def validate_date(self, value: dt.date) -> dt.date:
        if not rules.within_booking_horizon(value, today=timezone.localdate()):
            raise serializers.ValidationError("Give a day within two years of today.", code="too_far_ahead")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "pathway" not in attrs and "minutes" not in attrs:
            raise serializers.ValidationError({"minutes": "Give the pathway to book, or the minutes."})
        return attrs


class FreeSlotsSerializer(serializers.Serializer):
    date = serializers.DateField()
    minutes = serializers.IntegerField(help_text="The chair time the starts leave room for")
    is_open = serializers.BooleanField(
        help_text="Whether the room opens that day (out-of-service periods aside)"
    )
    opening_hours = serializers.CharField(
        help_text='The room\'s weekly hours in words, e.g. "Mon-Fri 08:00-18:00"'
    )
    slots = serializers.ListField(child=serializers.DateTimeField(), help_text="Free starts, earliest first")
    times = serializers.ListField(
        child=serializers.CharField(), help_text='The same starts as clinic wall-clock times ("09:15")'
    )
    next_free_slot = serializers.DateTimeField(
        allow_null=True, help_text="The first free start from that day on (four weeks ahead at most)"
    )


class RoomFeedSerializer(serializers.Serializer):
    feed_url = serializers.URLField(
        help_text="The room's private iCalendar address; the one before it answers 404 from now on"
    )


@extend_schema(tags=["dosing"])
class RoomViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The clinic's dosing rooms: clinic admins add and change them, set hours, take them out of service,
    and give a room's calendar feed a new address."""

    serializer_class = RoomSerializer
    permission_classes = (permissions.IsAuthenticated,)
    lookup_field = "public_id"  # the id in the URL (and the schema) is the record's public UUID
    lookup_url_kwarg = "id"
    queryset = Room.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self) -> Any:
        require_or_404(self.request.user, Capability.SCHEDULE_VIEW)
        return selectors.room_qs_for_user(self.request.user)  # type: ignore[arg-type]

    def get_object(self) -> Room:
        return selectors.get_room_for_user_or_404(self.request.user, self.kwargs["id"])  # type: ignore[arg-type]

    @extend_schema(responses={201: RoomSerializer, 400: ErrorBody, 404: ErrorBody})
    def create(self, request: Request) -> Response:
        require_or_404(request.user, Capability.ROOM_MANAGE)
        body = RoomSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        room = services.room_save(actor=request.user, **body.validated_data)  # type: ignore[arg-type]
        return Response(RoomSerializer(room).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=HoursSerializer(many=True), responses={200: RoomSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["put"])
    def hours(self, request: Request, id: str) -> Response:
        room = self.get_object()
        require_or_404(request.user, Capability.ROOM_MANAGE)
        body = HoursSerializer(data=request.data, many=True)
        body.is_valid(raise_exception=True)
        hours = [(row["weekday"], row["opens"], row["closes"]) for row in body.validated_data]
        services.room_set_hours(actor=request.user, room=room, hours=hours)  # type: ignore[arg-type]
        return Response(RoomSerializer(room).data)

    @extend_schema(
        request=ClosureSerializer, responses={201: ClosureSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def closures(self, request: Request, id: str) -> Response:
        room = self.get_object()
        require_or_404(request.user, Capability.ROOM_MANAGE)
        body = ClosureSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        closure = services.room_closure_add(actor=request.user, room=room, **body.validated_data)  # type: ignore[arg-type]
        return Response(ClosureSerializer(closure).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[FreeSlotsQuerySerializer],
        responses={200: FreeSlotsSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    @action(detail=True, methods=["get"], url_path="free-slots")
    def free_slots(self, request: Request, id: str) -> Response:
        """The room's free starts on a day for a session (the booking form's list): the same rules the
        booking service refuses by (opening hours, out-of-service periods, the room's, the monitor's and
        the patient's bookings)."""
        room = self.get_object()
        require_or_404(request.user, Capability.BOOKING_MANAGE)
        query = FreeSlotsQuerySerializer(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        user: User = request.user  # type: ignore[assignment]
        patient_id, minutes = None, query.validated_data.get("minutes")
        if "pathway" in query.validated_data:
            pathway = get_pathway_for_user_or_404(user, query.validated_data["pathway"])
            patient_id = pathway.patient_id
            if minutes is None:
                minutes = selectors.planned_chair_minutes(pathway)
                if minutes is None:
                    raise serializers.ValidationError(
                        {"pathway": "The pathway has no signed plan to book yet."}
                    )
            pathway_services.pathway_record_viewed(actor=user, pathway=pathway, via="free_slots_api")
        tz = zoneinfo.ZoneInfo(user.clinic.time_zone)  # type: ignore[union-attr]
        now = timezone.now()
        monitor = query.validated_data.get("monitor")
        availability = selectors.booking_availability(
            rooms=selectors.room_qs_for_user(user),
            room_public_id=room.public_id,
            day=query.validated_data.get("date"),
            after=timezone.localdate() + dt.timedelta(days=1),
            minutes=minutes,
            tz=tz,
            now=now,
            clinic_id=room.clinic_id,
            monitor_public_id=monitor.public_id if monitor else None,
            patient_id=patient_id,
        )
        day = availability.day if availability else query.validated_data.get("date") or timezone.localdate()
        slots = availability.slots if availability else []
        next_free = (
            slots[0]
            if slots
            else selectors.next_free_slot_for(
                room=room,
                from_day=day,
                minutes=minutes,
                tz=tz,
                now=now,
                monitor_id=monitor.pk if monitor else None,
                patient_id=patient_id,
            )
        )
        body = {
            "date": day,
            "minutes": minutes,
            "is_open": availability.is_open if availability else False,
            "opening_hours": availability.hours_text if availability else rules.describe_opening_hours([]),
            "slots": slots,
            "times": [slot.astimezone(tz).strftime("%H:%M") for slot in slots],
            "next_free_slot": next_free,
        }
        return Response(FreeSlotsSerializer(body).data)

    @extend_schema(request=None, responses={200: RoomFeedSerializer, 404: ErrorBody})
    @action(detail=True, methods=["post"], url_path="rotate-feed")
    def rotate_feed(self, request: Request, id: str) -> Response:
        """A new address for the room's calendar feed; the old one answers 404 at once."""
        room = self.get_object()
        require_or_404(request.user, Capability.ROOM_MANAGE)
        room = services.room_feed_rotate(actor=request.user, room=room)  # type: ignore[arg-type]
        feed_url = request.build_absolute_uri(reverse("room_calendar_feed", args=[room.calendar_token]))
        return Response(RoomFeedSerializer({"feed_url": feed_url}).data)


class BookingSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    pathway = serializers.UUIDField(source="pathway.public_id", read_only=True)
    room = serializers.UUIDField(source="room.public_id", read_only=True)
    prescriber = serializers.UUIDField(source="prescriber.public_id", read_only=True)
    monitor = serializers.UUIDField(source="monitor.public_id", read_only=True)

    class Meta:
        model = Booking
        fields = (
            "id",
            "pathway",
            "room",
            "starts_at",
            "ends_at",
            "agent",
            "route",
            "prescriber",
            "monitor",
            "status",
            *services.CHECK_FIELDS,
            "cancelled_at",
            "cancellation_reason",
        )
        read_only_fields = fields


class BookingCreateSerializer(serializers.Serializer):
    pathway = serializers.UUIDField()
    room = serializers.UUIDField()
    starts_at = serializers.DateTimeField()
    prescriber = ClinicianField(role=Role.PRESCRIBER)
    monitor = ClinicianField(role=Role.MONITOR)


class BookingFilterSerializer(serializers.Serializer):
    """The booking list's filters: a time that is not one is refused rather than passed on."""

    room = serializers.UUIDField(required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a keyword, so it cannot be declared above.
        return {
            **super().get_fields(),
            "from": serializers.DateTimeField(required=False),
            "to": serializers.DateTimeField(required=False),
        }


class BookingMoveSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    room = serializers.UUIDField(required=False)


class BookingCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class ChecksSerializer(serializers.Serializer):
    fasting_instructions_given = serializers.BooleanField(required=False)
    fasting_confirmed = serializers.BooleanField(required=False)
    escort_confirmed = serializers.BooleanField(required=False)


@extend_schema(tags=["dosing"])
class BookingViewSet(
    AuditedListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Dosing bookings: book, move (keeping the length), cancel, and record the pre-visit checks.
    Each read, lists included, is audited."""

    serializer_class = BookingSerializer
    audited_model = Booking
    audited_patient = "patient"
    permission_classes = (permissions.IsAuthenticated,)
    lookup_field = "public_id"  # the id in the URL (and the schema) is the record's public UUID
    lookup_url_kwarg = "id"
    queryset = Booking.objects.none()  # for the schema; requests use get_queryset

    def _user(self) -> User:
        return self.request.user  # type: ignore[return-value]

    def get_queryset(self) -> Any:
        bookings = selectors.booking_qs_for_user(self._user()).order_by("starts_at", "id")
        filters = BookingFilterSerializer(
            data={name: value for name, value in self.request.query_params.items() if value}
        )
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        if wanted.get("room"):
            bookings = bookings.filter(room__public_id=wanted["room"])
        if wanted.get("from"):
            bookings = bookings.filter(ends_at__gt=wanted["from"])
        if wanted.get("to"):
            bookings = bookings.filter(starts_at__lt=wanted["to"])
        return bookings

    def get_object(self) -> Booking:
        return selectors.get_booking_for_user_or_404(self._user(), self.kwargs["id"])

    @extend_schema(
        parameters=[
            OpenApiParameter("room", OpenApiTypes.UUID, description="A room's id"),
            OpenApiParameter(
                "from", OpenApiTypes.DATETIME, description="Bookings ending after this time (ISO 8601)"
            ),
            OpenApiParameter(
                "to", OpenApiTypes.DATETIME, description="Bookings starting before this time (ISO 8601)"
            ),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        booking = self.get_object()
        services.booking_viewed(actor=self._user(), booking=booking, via="api")
        return Response(BookingSerializer(booking).data)

    @extend_schema(
        request=BookingCreateSerializer, responses={201: BookingSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    def create(self, request: Request) -> Response:
        user = self._user()
        require_or_404(user, Capability.BOOKING_MANAGE)
        body = BookingCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        pathway = get_pathway_for_user_or_404(user, data["pathway"])
        room = selectors.get_room_for_user_or_404(user, data["room"])
        booking = services.booking_create(
            actor=user,
            pathway=pathway,
            room=room,
            starts_at=data["starts_at"],
            prescriber=data["prescriber"],
            monitor=data["monitor"],
        )
        return Response(BookingSerializer(booking).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=BookingMoveSerializer, responses={200: BookingSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def move(self, request: Request, id: str) -> Response:
        booking = self.get_object()
        require_or_404(request.user, Capability.BOOKING_MANAGE)
        body = BookingMoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        room = None
        if body.validated_data.get("room"):
            room = selectors.get_room_for_user_or_404(self._user(), body.validated_data["room"])
        moved = services.booking_move(
            actor=self._user(), booking=booking, starts_at=body.validated_data["starts_at"], room=room
        )
        return Response(BookingSerializer(moved).data)

    @extend_schema(
        request=BookingCancelSerializer, responses={200: BookingSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, id: str) -> Response:
        booking = self.get_object()
        require_or_404(request.user, Capability.BOOKING_MANAGE)
        body = BookingCancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(
            BookingSerializer(
                services.booking_cancel(actor=self._user(), booking=booking, **body.validated_data)
            ).data
        )

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, 400: ErrorBody, 404: ErrorBody})
    @action(detail=True, methods=["post"])
    def session(self, request: Request, id: str) -> Response:
        """Open the booking's monitoring record (or return the one already open): see /sessions/{id}/."""
        booking = self.get_object()
        require_or_404(request.user, Capability.SESSION_RECORD)
        opened = services.session_open(actor=self._user(), booking=booking)
        return Response(SessionSerializer(selectors.session_with_parts(opened)).data)

    @extend_schema(
        request=ChecksSerializer, responses={200: BookingSerializer, 400: ErrorBody, 404: ErrorBody}
    )
    @action(detail=True, methods=["post"])
    def checks(self, request: Request, id: str) -> Response:
        booking = self.get_object()
        require_or_404(request.user, Capability.BOOKING_CHECKS)
        body = ChecksSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        updated = services.booking_checks_update(actor=self._user(), booking=booking, **body.validated_data)
        return Response(BookingSerializer(updated).data)


class VitalsReadingSerializer(serializers.ModelSerializer):
    entered_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = VitalsReading
        fields = ("taken_at", "entered_at", "entered_late", "is_pre_dose", *services.VITAL_FIELDS, "flags")


class UnmetCriterionSerializer(serializers.Serializer):
    """An unmet criterion: its code, what to do, and the clinical source that asks for it."""

    code = serializers.CharField()
    message = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # `source` is also the name of a field's own attribute, so it cannot be declared above.
        fields = super().get_fields()
        fields["source"] = serializers.CharField(help_text="Where the rule comes from, in plain words.")
        fields["source_url"] = serializers.CharField(
            source="source.url", help_text="A link to that source, where one exists (may be empty)."
        )
        return fields


SESSION_CONTENT_CLINICAL = "clinical"
SESSION_CONTENT_LOGISTICS = "logistics"


class SessionSerializer(serializers.ModelSerializer):
    """The whole monitoring record, for those who may read its clinical content
    (`selectors.can_read_session_clinical`)."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    content = serializers.SerializerMethodField(
        help_text="`clinical`: the whole record. A reader who may not read its clinical content gets "
        "its logistics instead (`content`: `logistics`)."
    )
    booking = serializers.UUIDField(source="booking.public_id", read_only=True)
    vitals = VitalsReadingSerializer(many=True, read_only=True)
    discharge_missing = serializers.SerializerMethodField()
    monitoring_form_missing = serializers.SerializerMethodField()
    bp_review_by = serializers.CharField(source="bp_review_by.full_name", read_only=True, allow_null=True)

    class Meta:
        model = DosingSession
        fields = (
            "id",
            "content",
            "booking",
            "status",
            "fasting_confirmed",
            "escort_present",
            "consent_confirmed",
            "override_problems",
            "override_reason",
            "override_at",
            "dose_override_mg",
            "dose_override_reason",
            "dose_override_at",
            "dose_mg",
            "weight_kg",
            "lot_number",
            "device_times",
            "dose_started_at",
            "dose_started_entered_at",
            "dose_ended_at",
            "dose_ended_entered_at",
            "bp_review_reason",
            "bp_review_by",
            "bp_review_at",
            "dissociation_resolved",
            "discharged_at",
            *services.PMF_FIELDS,
            "pmf_filed_at",
            "pmf_medication_classes",
            "pmf_medications_confirmed_at",
            "leave_checklist",
            "leave_checklist_at",
            "signed_at",
            "vitals",
            "discharge_missing",
            "monitoring_form_missing",
        )
        read_only_fields = fields

    @extend_schema_field({"type": "string", "enum": [SESSION_CONTENT_CLINICAL]})
    def get_content(self, session: DosingSession) -> str:
        return SESSION_CONTENT_CLINICAL

    def _label(self, session: DosingSession) -> str:
        """The clinic's esketamine label, read once per answer (esketamine records only)."""
        if not hasattr(self, "_esketamine_label"):
            self._esketamine_label = services.esketamine_label_of(session.clinic_id)
        return self._esketamine_label

    @extend_schema_field(UnmetCriterionSerializer(many=True))
    def get_discharge_missing(self, session: DosingSession) -> list[dict[str, str]]:
        """What discharge still waits for, assuming alert, oriented and the escort there (the
        discharge request states those) and dissociation resolved only by a CADSS of 0; for esketamine
        under the EU/UK label, the Readiness to Leave items still to confirm."""
        if session.status != "dosed":
            return []
        state = services.discharge_state(session, alert_and_oriented=True, escort_present=True)
        missing = rules.discharge_missing(state)
        if session.booking.agent == "esketamine":
            missing += services.leave_checklist_criteria(session, label=self._label(session))
        return [asdict(criterion) for criterion in missing]

    @extend_schema_field(UnmetCriterionSerializer(many=True))
    def get_monitoring_form_missing(self, session: DosingSession) -> list[dict[str, str]]:
        if session.booking.agent != "esketamine" or not services.monitoring_form_due(
            session, label=self._label(session)
        ):
            return []
        return [asdict(criterion) for criterion in rules.pmf_missing(selectors.pmf_facts(session))]


class RoomBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()


class SessionLogisticsSerializer(serializers.ModelSerializer):
    """A dosing session's logistics: what a clinic admin sees of the record when the clinic does not
    grant its admins the clinical content (`DosingSettings.clinic_admins_read_dosing_records`). No
    vitals, dose, lot, scales, adverse events, overrides, discharge, monitoring form or addenda."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    content = serializers.SerializerMethodField(help_text="`logistics`: the record's logistics only.")
    booking = serializers.UUIDField(source="booking.public_id", read_only=True)
    room = RoomBriefSerializer(source="booking.room", read_only=True)
    starts_at = serializers.DateTimeField(source="booking.starts_at", read_only=True, help_text="Booked")
    ends_at = serializers.DateTimeField(source="booking.ends_at", read_only=True, help_text="Booked")
    prescriber = StaffBriefSerializer(source="booking.prescriber", read_only=True)
    monitor = StaffBriefSerializer(source="booking.monitor", read_only=True)
    opened_at = serializers.DateTimeField(source="created_at", read_only=True)
    opened_by = StaffBriefSerializer(read_only=True)
    signed_by = StaffBriefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = DosingSession
        fields = (
            "id",
            "content",
            "booking",
            "status",
            "room",
            "starts_at",
            "ends_at",
            "prescriber",
            "monitor",
            "opened_at",
            "opened_by",
            "signed_at",
            "signed_by",
        )
        read_only_fields = fields

    @extend_schema_field({"type": "string", "enum": [SESSION_CONTENT_LOGISTICS]})
    def get_content(self, session: DosingSession) -> str:
        return SESSION_CONTENT_LOGISTICS


SESSION_RECORD_RESPONSE = PolymorphicProxySerializer(
    component_name="SessionRecord",
    serializers={
        SESSION_CONTENT_CLINICAL: SessionSerializer,
        SESSION_CONTENT_LOGISTICS: SessionLogisticsSerializer,
    },
    resource_type_field_name="content",
    many=False,
)
"""A record as its reader may see it, told apart by `content`: the whole record (`clinical`), or its
logistics only (`logistics`) for a clinic admin whose clinic does not grant the clinical content."""


class SessionChecksSerializer(serializers.Serializer):
    fasting_confirmed = serializers.BooleanField()
    escort_present = serializers.BooleanField()
    consent_confirmed = serializers.BooleanField()


def _vital_field(name: str) -> serializers.IntegerField:
    """A reading's field with its allowed range; out of it (or not a whole number) the error
    names the range and its unit, as the page does (`rules.VITAL_RANGES`)."""
    allowed = rules.VITAL_RANGES[name]
    message = allowed.message()
    bound = message.replace("%", "%%")  # the range validators' messages are %-formatted, "invalid" is not
    return serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=allowed.low,
        max_value=allowed.high,
        error_messages={"min_value": bound, "max_value": bound, "invalid": message},
    )


class VitalsInputSerializer(serializers.Serializer):
    taken_at = serializers.DateTimeField(required=False)
    systolic = _vital_field("systolic")
    diastolic = _vital_field("diastolic")
    heart_rate = _vital_field("heart_rate")
    spo2 = _vital_field("spo2")
    respiratory_rate = _vital_field("respiratory_rate")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class DoseOverrideSerializer(serializers.Serializer):
    dose_mg = serializers.DecimalField(
        max_digits=6,
        decimal_places=1,
        min_value=Decimal("0.1"),
        max_value=Decimal("1000"),
        help_text="A dose outside the clinic's mg/kg range to approve; the dose may then start at it.",
    )
    reason = serializers.CharField(max_length=2000)


class DoseSerializer(serializers.Serializer):
    dose_mg = serializers.DecimalField(
        max_digits=6, decimal_places=1, help_text="Esketamine: the dose planned, 28, 56 or 84 mg."
    )
    lot_number = serializers.CharField(max_length=40)
    started_at = serializers.DateTimeField(
        required=False,
        help_text="Omit for now (the server's clock). A late entry may go back the clinic's late-entry "
        "minutes, never before the pre-dose blood pressure. Esketamine: the first device.",
    )


class DeviceSerializer(serializers.Serializer):
    given_at = serializers.DateTimeField(
        required=False, help_text="Omit for now; at least 5 minutes after the previous device."
    )


class DoseEndSerializer(serializers.Serializer):
    ended_at = serializers.DateTimeField(required=False, help_text="Omit for now.")


class PmfMedicationsSerializer(serializers.Serializer):
    classes = serializers.ListField(
        child=serializers.ChoiceField(choices=[code for code, _label in selectors.rems_medication_classes()]),
        allow_empty=True,
        max_length=10,
    )


class ScaleInputSerializer(serializers.Serializer):
    scale = serializers.ChoiceField(choices=["cadss", "moaas", "bprs_plus"])
    value = serializers.IntegerField(min_value=0)
    anchors = serializers.ChoiceField(choices=["", "0-6", "1-7"], required=False, default="")
    taken_at = serializers.DateTimeField(required=False, help_text="Omit for now.")


class AdverseEventInputSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=300)
    severity = serializers.ChoiceField(choices=["mild", "moderate", "severe", "serious"])
    action_taken = serializers.CharField(max_length=300)
    occurred_at = serializers.DateTimeField(required=False, help_text="Omit for now.")


class DischargeSerializer(serializers.Serializer):
    alert_and_oriented = serializers.BooleanField()
    escort_present = serializers.BooleanField()
    dissociation_resolved = serializers.BooleanField(
        required=False, default=False, help_text="Not needed when the last CADSS after the dose is 0."
    )


class MonitoringFormSerializer(serializers.Serializer):
    pmf_first_treatment = serializers.BooleanField(required=False, allow_null=True)
    pmf_sedation = serializers.BooleanField(required=False, allow_null=True)
    pmf_dissociation = serializers.BooleanField(required=False, allow_null=True)
    pmf_respiratory_depression = serializers.BooleanField(required=False, allow_null=True)
    pmf_ready_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=480)


class LeaveChecklistSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.ChoiceField(choices=list(esketamine_rules.LEAVE_CHECKLIST_CODES)),
        allow_empty=True,
        max_length=len(esketamine_rules.LEAVE_CHECKLIST_CODES),
        help_text="The Readiness to Leave items confirmed (all of them: an item left out is unconfirmed): "
        + "; ".join(f"{item.code}: {item.text}" for item in esketamine_rules.LEAVE_CHECKLIST)
        + ". Esketamine under the EU/UK label only; discharge waits for every item.",
    )


class AddendumSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=4000)


def _session_step(
    name: str, body: type[serializers.Serializer] | None, capability: Capability, call: Any, url_path: str
) -> Any:
    """One record step as an API action: validate the body, call the service, answer the record."""

    def step(self: Any, request: Request, id: str) -> Response:
        session = self.get_object()
        require_or_404(request.user, capability)
        data: dict[str, Any] = {}
        if body is not None:
            checked = body(data=request.data)
            checked.is_valid(raise_exception=True)
            data = dict(checked.validated_data)
        call(actor=request.user, session=session, **data)
        return Response(SessionSerializer(selectors.session_with_parts(session)).data)

    # DRF maps the HTTP method to the function's name when `action` decorates it: name it first.
    step.__name__ = name
    decorated = action(detail=True, methods=["post"], url_path=url_path)(step)
    return extend_schema(request=body, responses={200: SessionSerializer, 400: ErrorBody, 404: ErrorBody})(
        decorated
    )


@extend_schema(tags=["dosing"])
class SessionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The monitoring record of a dosing session: every step the session page offers, through the
    same services and gates."""

    serializer_class = SessionSerializer
    permission_classes = (permissions.IsAuthenticated,)
    lookup_field = "public_id"  # the id in the URL (and the schema) is the record's public UUID
    lookup_url_kwarg = "id"
    queryset = DosingSession.objects.none()  # for the schema; requests use get_object

    def get_object(self) -> DosingSession:
        user = self.request.user
        return selectors.get_session_for_user_or_404(user, self.kwargs["id"], with_parts=True)  # type: ignore[arg-type]

    @extend_schema(responses={200: SESSION_RECORD_RESPONSE, 404: ErrorBody})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The record: whole for those who may read its clinical content, else its logistics (a clinic
        admin, unless the clinic grants its admins the clinical content); `content` says which."""
        user: User = request.user  # type: ignore[assignment]
        if not selectors.can_read_session_clinical(user):
            logistics = selectors.get_session_for_user_or_404(user, self.kwargs["id"])
            services.session_viewed(actor=user, session=logistics, via="api")
            return Response(SessionLogisticsSerializer(logistics).data)
        session = self.get_object()
        services.session_viewed(actor=user, session=session, via="api")
        return Response(SessionSerializer(session).data)

    checks = _session_step(
        "checks", SessionChecksSerializer, Capability.SESSION_RECORD, services.session_checks_update, "checks"
    )
    vitals = _session_step(
        "vitals", VitalsInputSerializer, Capability.SESSION_RECORD, services.vitals_record, "vitals"
    )
    override = _session_step(
        "override", ReasonSerializer, Capability.SESSION_OVERRIDE, services.session_override_sign, "override"
    )
    dose_override = _session_step(
        "dose_override",
        DoseOverrideSerializer,
        Capability.SESSION_OVERRIDE,
        services.session_dose_override_sign,
        "dose-override",
    )
    dose = _session_step("dose", DoseSerializer, Capability.SESSION_RECORD, services.dose_start, "dose")
    devices = _session_step(
        "devices", DeviceSerializer, Capability.SESSION_RECORD, services.device_record, "devices"
    )
    dose_end = _session_step(
        "dose_end", DoseEndSerializer, Capability.SESSION_RECORD, services.dose_end_record, "dose-end"
    )
    bp_review = _session_step(
        "bp_review",
        ReasonSerializer,
        Capability.SESSION_OVERRIDE,
        services.session_bp_review_sign,
        "bp-review",
    )
    monitoring_form_medications = _session_step(
        "monitoring_form_medications",
        PmfMedicationsSerializer,
        Capability.SESSION_OVERRIDE,
        services.pmf_medications_confirm,
        "monitoring-form-medications",
    )
    scales = _session_step(
        "scales", ScaleInputSerializer, Capability.SESSION_RECORD, services.scale_record, "scales"
    )
    adverse_events = _session_step(
        "adverse_events",
        AdverseEventInputSerializer,
        Capability.SESSION_RECORD,
        services.adverse_event_record,
        "adverse-events",
    )
    discharge = _session_step(
        "discharge", DischargeSerializer, Capability.SESSION_RECORD, services.session_discharge, "discharge"
    )
    monitoring_form = _session_step(
        "monitoring_form",
        MonitoringFormSerializer,
        Capability.SESSION_RECORD,
        services.pmf_update,
        "monitoring-form",
    )
    leave_checklist = _session_step(
        "leave_checklist",
        LeaveChecklistSerializer,
        Capability.SESSION_RECORD,
        services.leave_checklist_record,
        "leave-checklist",
    )
    sign = _session_step("sign", None, Capability.SESSION_RECORD, services.session_sign, "sign")
    monitoring_form_filed = _session_step(
        "monitoring_form_filed",
        None,
        Capability.SESSION_RECORD,
        services.pmf_mark_filed,
        "monitoring-form-filed",
    )
    addenda = _session_step(
        "addenda", AddendumSerializer, Capability.SESSION_RECORD, services.session_addendum_add, "addenda"
    )


class ChairTimeSerializer(serializers.Serializer):
    agent = serializers.ChoiceField(choices=AGENT_CHOICES)
    route = serializers.ChoiceField(choices=ROUTE_CHOICES)
    dosing_minutes = serializers.IntegerField(min_value=5, max_value=240)
    monitoring_minutes = serializers.IntegerField(min_value=30, max_value=480)
    turnover_minutes = serializers.IntegerField(min_value=0, max_value=120)


class DoseRangeSerializer(serializers.Serializer):
    agent = serializers.ChoiceField(choices=sorted({agent for agent, _route in rules.DEFAULT_DOSE_RANGES}))
    route = serializers.ChoiceField(choices=sorted({route for _agent, route in rules.DEFAULT_DOSE_RANGES}))
    minimum_mg_per_kg = serializers.DecimalField(
        max_digits=4, decimal_places=2, min_value=Decimal("0.01"), max_value=rules.DOSE_RANGE_LIMIT_MG_PER_KG
    )
    maximum_mg_per_kg = serializers.DecimalField(
        max_digits=4, decimal_places=2, min_value=Decimal("0.01"), max_value=rules.DOSE_RANGE_LIMIT_MG_PER_KG
    )


class DosingSettingsSerializer(serializers.Serializer):
    predose_systolic_max = serializers.IntegerField(min_value=100, max_value=220)
    predose_diastolic_max = serializers.IntegerField(min_value=60, max_value=140)
    systolic_max = serializers.IntegerField(min_value=120, max_value=250)
    diastolic_max = serializers.IntegerField(min_value=70, max_value=150)
    heart_rate_max = serializers.IntegerField(min_value=80, max_value=200)
    spo2_min = serializers.IntegerField(min_value=80, max_value=99)
    respiratory_rate_min = serializers.IntegerField(min_value=4, max_value=20)
    respiratory_rate_max = serializers.IntegerField(min_value=12, max_value=40)
    minimum_observation_minutes = serializers.IntegerField(min_value=30, max_value=480)
    vitals_interval_minutes = serializers.IntegerField(min_value=5, max_value=60)
    late_entry_minutes = serializers.IntegerField(min_value=0, max_value=60, required=False)
    discharge_bp_window_minutes = serializers.IntegerField(min_value=5, max_value=60, required=False)
    discharge_systolic_max = serializers.IntegerField(min_value=120, max_value=220, required=False)
    discharge_diastolic_max = serializers.IntegerField(min_value=70, max_value=140, required=False)
    bp_rise_systolic_margin = serializers.IntegerField(min_value=10, max_value=80, required=False)
    bp_rise_diastolic_margin = serializers.IntegerField(min_value=5, max_value=60, required=False)
    bp_ceiling_systolic = serializers.IntegerField(
        min_value=120,
        max_value=250,
        required=False,
        help_text="At or above it no override can start a dose; above the pre-dose systolic limit.",
    )
    bp_ceiling_diastolic = serializers.IntegerField(
        min_value=70,
        max_value=150,
        required=False,
        help_text="At or above it no override can start a dose; above the pre-dose diastolic limit.",
    )
    emdr_protocol = serializers.ChoiceField(
        choices=EMDR_PROTOCOL_CHOICES,
        required=False,
        help_text="The EMDR protocol a new plan follows (the therapist can change it on each plan).",
    )
    esketamine_label = serializers.ChoiceField(
        choices=ESKETAMINE_LABEL_CHOICES,
        required=False,
        help_text="The esketamine label the clinic follows: us_pi (US prescribing information: REMS "
        "enrolment, the REMS monitoring form) or eu_uk_smpc (EU/UK summary of product characteristics: day 1 "
        "28 mg from age 65, no REMS, the Readiness to Leave checklist before discharge).",
    )
    clinic_admins_read_dosing_records = serializers.BooleanField(
        required=False,
        help_text="Whether the clinic's admins may read the clinical content of dosing records (vitals, "
        "dose, scales, adverse events, discharge, monitoring form, PDF summaries). Off by default: they "
        "get a session's logistics only (GET /sessions/{id}/ answers `content`: `logistics`).",
    )
    chair_times = ChairTimeSerializer(many=True, required=False)
    dose_ranges = DoseRangeSerializer(
        many=True, required=False, help_text="Racemic ketamine per route, 0 < minimum <= maximum <= 20 mg/kg."
    )


def _settings_body(clinic_id: int) -> dict[str, Any]:
    current = selectors.dosing_settings_for(clinic_id)
    body: dict[str, Any] = {name: getattr(current, name) for name in services.DOSING_SETTING_FIELDS}
    body["chair_times"] = [
        {
            "agent": agent,
            "route": route,
            **{
                "dosing_minutes": chair.dosing_minutes,
                "monitoring_minutes": chair.monitoring_minutes,
                "turnover_minutes": chair.turnover_minutes,
            },
        }
        for agent, route in rules.DEFAULT_CHAIR_TIMES
        for chair in [selectors.chair_time_for(clinic_id, agent=agent, route=route)]
    ]
    body["dose_ranges"] = [
        {
            "agent": agent,
            "route": route,
            "minimum_mg_per_kg": f"{dose_range.minimum_mg_per_kg:.2f}",  # as the serializer's decimals
            "maximum_mg_per_kg": f"{dose_range.maximum_mg_per_kg:.2f}",
        }
        for (agent, route), dose_range in selectors.dose_ranges_for(clinic_id).items()
    ]
    return body


@extend_schema(tags=["dosing"])
class DosingSettingsView(APIView):
    """The clinic's dosing limits and chair times, for clinic admins. JSON only: the chair times are a
    list of objects, which a form body cannot carry (a form's `chair_times` would be dropped)."""

    permission_classes = (permissions.IsAuthenticated,)
    parser_classes = (JSONParser,)

    @extend_schema(responses={200: DosingSettingsSerializer, 404: ErrorBody})
    def get(self, request: Request) -> Response:
        require_or_404(request.user, Capability.CLINIC_SETTINGS_MANAGE)
        return Response(_settings_body(request.user.member_clinic_id))  # type: ignore[union-attr]

    @extend_schema(
        request=DosingSettingsSerializer,
        responses={200: DosingSettingsSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    def put(self, request: Request) -> Response:
        require_or_404(request.user, Capability.CLINIC_SETTINGS_MANAGE)
        body = DosingSettingsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        chairs = [
            (c["agent"], c["route"], c["dosing_minutes"], c["monitoring_minutes"], c["turnover_minutes"])
            for c in data.pop("chair_times", [])
        ]
        ranges = [
            (r["agent"], r["route"], r["minimum_mg_per_kg"], r["maximum_mg_per_kg"])
            for r in data.pop("dose_ranges", [])
        ]
        services.dosing_settings_update(
            actor=request.user,  # type: ignore[arg-type]
            chair_times=chairs,
            dose_ranges=ranges,
            **data,
        )
        return Response(_settings_body(request.user.member_clinic_id))  # type: ignore[union-attr]
