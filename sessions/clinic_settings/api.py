"""A clinic's dosing settings in the JSON API: the same service as the settings page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kaemdr.api import ErrorBody
from kaemdr.api import require_or_404
from kaemdr.permissions import Capability
from screening.models import AGENT_CHOICES
from screening.models import ROUTE_CHOICES
from sessions.booking import rules as booking_rules
from sessions.booking import selectors as booking_selectors
from sessions.clinic_settings import services
from sessions.models import EMDR_PROTOCOL_CHOICES
from sessions.models import ESKETAMINE_LABEL_CHOICES
from sessions.record import rules
from sessions.record import selectors


class ChairTimeSerializer(serializers.Serializer):
    agent = serializers.ChoiceField(choices=AGENT_CHOICES)
    route = serializers.ChoiceField(choices=ROUTE_CHOICES)
    dosing_minutes = serializers.IntegerField(min_value=5, max_value=booking_rules.LONGEST_DOSING_MINUTES)
    monitoring_minutes = serializers.IntegerField(
        min_value=30, max_value=booking_rules.LONGEST_MONITORING_MINUTES
    )
    turnover_minutes = serializers.IntegerField(min_value=0, max_value=booking_rules.LONGEST_TURNOVER_MINUTES)


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
    current = booking_selectors.dosing_settings_for(clinic_id)
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
        for agent, route in booking_rules.DEFAULT_CHAIR_TIMES
        for chair in [booking_selectors.chair_time_for(clinic_id, agent=agent, route=route)]
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
