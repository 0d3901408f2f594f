"""Writes for a clinic's dosing settings: chair times, dose ranges, the blood-pressure ceiling, vital
limits, the esketamine label and the default EMDR protocol. They span every domain of `sessions`,
so they sit above all three."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from kaemdr.audit import audit_record
from kaemdr.exceptions import Refusal
from kaemdr.formatting import format_measurement
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import require as _require
from sessions.booking import rules as booking_rules
from sessions.emdr import rules as emdr_rules
from sessions.models import ChairTimeSetting
from sessions.models import DoseRange
from sessions.models import DosingSettings
from sessions.record import rules

DOSING_SETTING_FIELDS = (
    "predose_systolic_max",
    "predose_diastolic_max",
    "systolic_max",
    "diastolic_max",
    "heart_rate_max",
    "spo2_min",
    "respiratory_rate_min",
    "respiratory_rate_max",
    "minimum_observation_minutes",
    "vitals_interval_minutes",
    "late_entry_minutes",
    "discharge_bp_window_minutes",
    "discharge_systolic_max",
    "discharge_diastolic_max",
    "bp_rise_systolic_margin",
    "bp_rise_diastolic_margin",
    "bp_ceiling_systolic",
    "bp_ceiling_diastolic",
    "esketamine_label",
    "emdr_protocol",
    "clinic_admins_read_dosing_records",
)


def _check_bp_ceiling(current: DosingSettings, errors: dict[str, list[ValidationError]]) -> None:
    """The ceiling within its bounds and above the pre-dose limits: an override may pass a pre-dose
    limit, never the ceiling, so a ceiling at or below the limit would leave nothing to override."""
    pairs = (
        ("bp_ceiling_systolic", "predose_systolic_max", "systolic"),
        ("bp_ceiling_diastolic", "predose_diastolic_max", "diastolic"),
    )
    for name, limit_name, which in pairs:
        value, limit = getattr(current, name), getattr(current, limit_name)
        try:
            DosingSettings._meta.get_field(name).run_validators(value)  # type: ignore[union-attr]
        except ValidationError as error:
            errors.setdefault(name, []).extend(error.error_list)
            continue
        if value <= limit:
            errors.setdefault(name, []).append(
                ValidationError(
                    f"The {which} ceiling must be above the pre-dose {which} limit ({limit}): an override "
                    "can pass the limit, never the ceiling.",
                    code="order",
                )
            )


def _dose_range_setting_problems(
    agent: str, route: str, minimum: Decimal, maximum: Decimal
) -> dict[str, ValidationError]:
    """What is wrong with one range a clinic sets (by form field), or nothing: an agent and route with
    a mg/kg range (not esketamine), and 0 < minimum <= maximum <= 20 mg/kg, to two decimals."""
    if (agent, route) not in rules.DEFAULT_DOSE_RANGES:
        raise TypeError(f"No mg/kg range for {agent} {route}")
    limit = rules.DOSE_RANGE_LIMIT_MG_PER_KG
    problems: dict[str, ValidationError] = {}
    for part, value in (("minimum", minimum), ("maximum", maximum)):
        if not (Decimal(0) < value <= limit) or value != value.quantize(Decimal("0.01")):
            problems[f"{part}_{agent}_{route}"] = ValidationError(
                f"Enter a dose above 0 and at most {format_measurement(limit, 'mg/kg')}, to two decimals.",
                code="out_of_range",
            )
    if not problems and minimum > maximum:
        problems[f"maximum_{agent}_{route}"] = ValidationError(
            "The maximum must be at least the minimum.", code="order"
        )
    return problems


@transaction.atomic
def dosing_settings_update(
    *,
    actor: User,
    chair_times: list[tuple[str, str, int, int, int]] | None = None,
    dose_ranges: list[tuple[str, str, Decimal, Decimal]] | None = None,
    **fields: int | str | bool,
) -> DosingSettings:
    """Change the clinic's dosing limits, chair times and mg/kg dose ranges (clinic admins), and whether
    its clinic admins may read the clinical content of dosing records (a grant, audited with its new
    value). Esketamine chair time keeps at least 2 hours of monitoring, whatever is asked; the
    blood-pressure ceiling stays above the pre-dose limits; a dose range is 0 < minimum <= maximum <= 20
    mg/kg."""
    _require(actor, Capability.CLINIC_SETTINGS_MANAGE)
    unknown = set(fields) - set(DOSING_SETTING_FIELDS)
    if unknown:
        raise TypeError(f"Unknown settings: {sorted(unknown)}")
    current, _ = DosingSettings.objects.select_for_update().get_or_create(clinic_id=actor.member_clinic_id)
    errors: dict[str, list[ValidationError]] = {}
    for name, value in fields.items():
        setattr(current, name, value)
    if current.respiratory_rate_min >= current.respiratory_rate_max:
        errors.setdefault("respiratory_rate_max", []).append(
            ValidationError("The upper limit must be above the lower one.", code="order")
        )
    _check_bp_ceiling(current, errors)
    if current.emdr_protocol not in emdr_rules.PROTOCOL_LABELS:
        errors.setdefault("emdr_protocol", []).append(
            Refusal(
                "Choose stabilisation first or the standard three-prong protocol.",
                code=emdr_rules.PROTOCOL_CHOICE,
            )
        )
    if current.esketamine_label not in set(booking_rules.EsketamineLabel):
        errors.setdefault("esketamine_label", []).append(
            ValidationError(
                "Choose the US prescribing information or the EU/UK label.", code="invalid_choice"
            )
        )
    for agent, route, minimum, maximum in dose_ranges or []:
        for name, range_error in _dose_range_setting_problems(agent, route, minimum, maximum).items():
            errors.setdefault(name, []).append(range_error)
    for agent, route, dosing, monitoring, turnover in chair_times or []:
        # The model's own bounds, here too for a direct caller: a booking can never be longer than the
        # longest chair time (`booking_rules.LONGEST_BOOKING`, a database constraint on bookings).
        for part, minutes in (("dosing", dosing), ("monitoring", monitoring), ("turnover", turnover)):
            try:
                ChairTimeSetting._meta.get_field(f"{part}_minutes").run_validators(minutes)  # type: ignore[union-attr]
            except ValidationError as out_of_bounds:
                errors.setdefault(f"{part}_{agent}_{route}", []).extend(out_of_bounds.error_list)
        problem = booking_rules.chair_time_problem(agent=agent, monitoring_minutes=monitoring)
        if problem:
            errors.setdefault(f"monitoring_{agent}_{route}", []).append(
                ValidationError(problem, code="rems_minimum")
            )
    if errors:
        raise ValidationError(errors)
    current.save()
    for agent, route, dosing, monitoring, turnover in chair_times or []:
        ChairTimeSetting.objects.update_or_create(
            clinic_id=actor.member_clinic_id,
            agent=agent,
            route=route,
            defaults={
                "dosing_minutes": dosing,
                "monitoring_minutes": monitoring,
                "turnover_minutes": turnover,
            },
        )
    for agent, route, minimum, maximum in dose_ranges or []:
        DoseRange.objects.update_or_create(
            clinic_id=actor.member_clinic_id,
            agent=agent,
            route=route,
            defaults={"minimum_mg_per_kg": minimum, "maximum_mg_per_kg": maximum},
        )
    audit_record(
        actor=actor,
        action="dosing_settings.updated",
        target_type="dosing.DosingSettings",
        target_public_id=current.public_id,
        data={
            "fields": sorted(fields),
            "chair_times": len(chair_times or []),
            "dose_ranges": len(dose_ranges or []),
            "clinic_admins_read_dosing_records": current.clinic_admins_read_dosing_records,
        },
    )
    return current
