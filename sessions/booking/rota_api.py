"""Staff rotas in the JSON API, for clinic admins (404 for anyone else): the rota of each member,
their weekly hours replaced at once, and leave added and removed. The same selectors and services as
the rota pages; staff data, not clinical content, so reads write no read event (as the staff API)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework import permissions
from rest_framework import serializers
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from kaemdr.api import ErrorBody
from kaemdr.api import HasCapability
from kaemdr.api_base import ScopedViewSet
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import Capability
from sessions.booking import rota_rules
from sessions.booking import rota_selectors
from sessions.booking import rota_services
from sessions.models import StaffLeave


class RotaWorkingSpanSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text="Monday is 0")
    starts = serializers.TimeField(help_text="Clinic wall-clock time")
    ends = serializers.TimeField(help_text="Clinic wall-clock time, after `starts` the same day")


class RotaLeaveSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    staff = serializers.UUIDField(source="staff.public_id", read_only=True)

    class Meta:
        model = StaffLeave
        fields = ("id", "staff", "starts_at", "ends_at", "reason")
        read_only_fields = fields


class StaffRotaSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="staff.public_id", help_text="The member of staff's id")
    full_name = serializers.CharField(source="staff.full_name")
    role = serializers.ChoiceField(source="staff.role", choices=Role.choices)
    keeps_rota = serializers.BooleanField(
        help_text="False when no working hours are set: the member can be booked at any time"
    )
    hours = RotaWorkingSpanSerializer(source="spans", many=True)
    hours_text = serializers.CharField(help_text='The hours in words, e.g. "Mon-Fri 08:00-16:00"')
    leave = RotaLeaveSerializer(many=True, help_text="Leave still to come or under way, earliest first")


class RotaLeaveCreateSerializer(serializers.Serializer):
    staff = serializers.UUIDField(help_text="The member of staff's id")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField(
        max_length=rota_rules.LEAVE_REASON_LENGTH, required=False, allow_blank=True, default=""
    )


class RotaAffectedBookingSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    room = serializers.CharField(source="room.name")


class RotaLeaveAddedSerializer(serializers.Serializer):
    leave = RotaLeaveSerializer()
    affected_bookings = RotaAffectedBookingSerializer(
        source="affected",
        many=True,
        help_text="Live bookings naming the member (monitor or prescriber) during the leave: they stay "
        "booked; move them",
    )


class _RotaPermission:
    permission_classes: Any = (permissions.IsAuthenticated, HasCapability)
    required_capability = Capability.ROTA_MANAGE


@extend_schema(tags=["rota"])
class RotaViewSet(_RotaPermission, ScopedViewSet[User]):
    """The clinic's prescribers, monitors and therapists with their rota: weekly working hours (none:
    always available) and leave to come. Clinic admins set a member's hours here."""

    serializer_class = StaffRotaSerializer
    queryset = User.objects.none()  # for the schema; requests use get_queryset
    scoped_queryset = staticmethod(rota_selectors.rota_staff_qs_for_user)
    scoped_object = staticmethod(rota_selectors.get_rota_staff_for_user_or_404)

    def list(self, request: Request) -> Response:
        rows = rota_selectors.rotas(self.get_queryset(), now=timezone.now())
        page = self.paginate_queryset(rows)
        if page is not None:
            return self.get_paginated_response(StaffRotaSerializer(page, many=True).data)
        return Response(StaffRotaSerializer(rows, many=True).data)

    @extend_schema(responses={200: StaffRotaSerializer, 404: ErrorBody})
    def retrieve(self, request: Request, id: str) -> Response:
        return Response(StaffRotaSerializer(self._rota_of(self.get_object())).data)

    @extend_schema(
        request=RotaWorkingSpanSerializer(many=True),
        responses={200: StaffRotaSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    @action(detail=True, methods=["put"])
    def hours(self, request: Request, id: str) -> Response:
        """Replace the member's weekly hours: every span at once (an empty list takes them off rotas:
        always available). At most two spans a day, none overlapping."""
        member = self.get_object()
        body = RotaWorkingSpanSerializer(data=request.data, many=True)
        body.is_valid(raise_exception=True)
        hours = [(row["weekday"], row["starts"], row["ends"]) for row in body.validated_data]
        rota_services.staff_hours_set(actor=self._user(), staff=member, hours=hours)
        return Response(StaffRotaSerializer(self._rota_of(member)).data)

    def _rota_of(self, member: User) -> rota_selectors.StaffRota:
        (rota,) = rota_selectors.rotas(self.get_queryset().filter(pk=member.pk), now=timezone.now())
        return rota


@extend_schema(tags=["rota"])
class RotaLeaveViewSet(
    _RotaPermission,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    ScopedViewSet[StaffLeave],
):
    """The clinic's staff leave still to come or under way: clinic admins add and remove it. Adding
    leave over sessions already booked is allowed; the answer lists them, to move."""

    serializer_class = RotaLeaveSerializer
    queryset = StaffLeave.objects.none()  # for the schema; requests use get_queryset
    scoped_queryset = staticmethod(rota_selectors.leave_qs_for_user)
    scoped_object = staticmethod(rota_selectors.get_leave_for_user_or_404)

    def get_queryset(self) -> Any:
        if self.action != "list":
            return super().get_queryset()
        return super().get_queryset().filter(ends_at__gt=timezone.now()).order_by("starts_at", "id")

    @extend_schema(
        request=RotaLeaveCreateSerializer,
        responses={201: RotaLeaveAddedSerializer, 400: ErrorBody, 404: ErrorBody},
    )
    def create(self, request: Request) -> Response:
        body = RotaLeaveCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        member = rota_selectors.get_rota_staff_for_user_or_404(self._user(), data["staff"])
        added = rota_services.staff_leave_add(
            actor=self._user(),
            staff=member,
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            reason=data["reason"],
        )
        return Response(RotaLeaveAddedSerializer(added).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None, 404: ErrorBody})
    def destroy(self, request: Request, id: str) -> Response:
        rota_services.staff_leave_remove(actor=self._user(), leave=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
