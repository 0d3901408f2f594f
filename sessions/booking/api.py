"""Dosing rooms and bookings in the JSON API: the same selectors and services as the pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework import serializers
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from kaemdr.api import ErrorBody
from kaemdr.api import require_or_404
from kaemdr.api_base import ScopedRecordViewSet
from kaemdr.api_base import ScopedViewSet
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import Capability
from pathways import services as pathway_services
from pathways.api import ClinicianField
from pathways.selectors import get_pathway_for_user_or_404
from sessions.booking import rules
from sessions.booking import selectors
from sessions.booking import services
from sessions.models import Booking
from sessions.models import Room


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
class RoomViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet[Room]):
    """The clinic's dosing rooms: clinic admins add and change them, set hours, take them out of service,
    and give a room's calendar feed a new address."""

    serializer_class = RoomSerializer
    queryset = Room.objects.none()  # for the schema; requests use get_queryset
    scoped_queryset = staticmethod(selectors.room_qs_for_user)
    scoped_object = staticmethod(selectors.get_room_for_user_or_404)

    def get_queryset(self) -> Any:
        require_or_404(self.request.user, Capability.SCHEDULE_VIEW)
        return super().get_queryset()

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
        tz = user.zone
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
class BookingViewSet(ScopedRecordViewSet[Booking]):
    """Dosing bookings: book, move (keeping the length), cancel, and record the pre-visit checks.
    Each read, lists included, is audited."""

    serializer_class = BookingSerializer
    audited_model = Booking
    audited_patient = "patient"
    queryset = Booking.objects.none()  # for the schema; requests use get_queryset
    scoped_queryset = staticmethod(selectors.booking_qs_for_user)
    scoped_object = staticmethod(selectors.get_booking_for_user_or_404)

    def get_queryset(self) -> Any:
        bookings = super().get_queryset().order_by("starts_at", "id")
        filters = BookingFilterSerializer(
            data={name: value for name, value in self.request.query_params.items() if value}
        )
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        if wanted.get("room"):
            bookings = bookings.filter(room__public_id=wanted["room"])
        if wanted.get("from") or wanted.get("to"):
            # Both ends bounded (`booking_overlaps`): a week's list reads the week, not the history.
            bookings = bookings.filter(
                selectors.booking_overlaps(
                    wanted.get("from") or dt.datetime.min.replace(tzinfo=dt.UTC),
                    wanted.get("to") or dt.datetime.max.replace(tzinfo=dt.UTC),
                )
            )
        return bookings

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

    def audit_retrieve(self, record: Booking) -> None:
        services.booking_viewed(actor=self._user(), booking=record, via="api")

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
