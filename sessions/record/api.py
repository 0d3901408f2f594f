"""The dosing record in the JSON API: the same selectors and services as the session page."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import PolymorphicProxySerializer
from drf_spectacular.utils import extend_schema
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from kaemdr.api import ErrorBody
from kaemdr.api import require_or_404
from kaemdr.api_base import ScopedViewSet
from kaemdr.models import User
from kaemdr.permissions import Capability
from pathways.api import StaffBriefSerializer
from sessions.booking import api as booking_api
from sessions.booking import esketamine_rules
from sessions.booking import services as booking_services
from sessions.models import DosingSession
from sessions.models import VitalsReading
from sessions.record import rules
from sessions.record import selectors
from sessions.record import services


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
            self._esketamine_label = booking_services.esketamine_label_of(session.clinic_id)
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


def _session_with_parts_or_404(user: User, public_id: Any) -> DosingSession:
    return selectors.get_session_for_user_or_404(user, public_id, with_parts=True)


@extend_schema(tags=["dosing"])
class SessionViewSet(mixins.RetrieveModelMixin, ScopedViewSet[DosingSession]):
    """The monitoring record of a dosing session: every step the session page offers, through the
    same services and gates."""

    serializer_class = SessionSerializer
    queryset = DosingSession.objects.none()  # for the schema; requests use get_object
    scoped_object = staticmethod(_session_with_parts_or_404)

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


class BookingViewSet(booking_api.BookingViewSet):
    # The bookings API with the one action that belongs to the dosing record: opening it. It lives here
    # because a booking knows nothing of the record, while the record starts from a booking. The
    # schema describes the bookings as the booking domain does.
    __doc__ = booking_api.BookingViewSet.__doc__

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, 400: ErrorBody, 404: ErrorBody})
    @action(detail=True, methods=["post"])
    def session(self, request: Request, id: str) -> Response:
        """Open the booking's monitoring record (or return the one already open): see /sessions/{id}/."""
        booking = self.get_object()
        require_or_404(request.user, Capability.SESSION_RECORD)
        opened = services.session_open(actor=self._user(), booking=booking)
        return Response(SessionSerializer(selectors.session_with_parts(opened)).data)
