"""Fill an assessment through the services, as a prescriber would."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kaemdr.models import User
from pathways.models import Pathway
from screening import rules
from screening import services
from screening.models import Assessment

ZERO_ANSWERS: dict[str, Any] = {
    rules.Instrument.PHQ9: [0] * 9,
    rules.Instrument.GAD7: [0] * 7,
    rules.Instrument.PCL5: [0] * 20,
    rules.Instrument.DES2: [0] * 28,
    rules.Instrument.CSSRS: {"q1": False, "q2": False, "q6_lifetime": False},
}


def fill(
    assessment: Assessment,
    actor: User,
    *,
    answers: dict[str, Any] | None = None,
    medications: tuple[tuple[str, str], ...] = (),
    **fields: Any,
) -> Assessment:
    """Complete every part of the draft; `fields` and `answers` override the unremarkable defaults."""
    values: dict[str, Any] = {
        "current_crisis": False,
        "housing_stable": True,
        "has_support_person": True,
        "escort_available": True,
        "agent": rules.Agent.RACEMIC_KETAMINE,
        "route": rules.Route.SUBLINGUAL,
        "systolic": 122,
        "diastolic": 78,
        "heart_rate": 70,
        "weight_kg": Decimal("70.0"),
        "history_reviewed": True,
        "condition_codes": [],
        "medications_reviewed": True,
    }
    values.update(fields)
    services.assessment_update(actor=actor, assessment=assessment, **values)
    for name, medication_class in medications:
        services.medication_add(
            actor=actor, assessment=assessment, name=name, medication_class=medication_class
        )
    for instrument, given in {**ZERO_ANSWERS, **(answers or {})}.items():
        services.measure_record(
            actor=actor,
            pathway=assessment.pathway,
            instrument=instrument,
            answers=given,
            assessment=assessment,
        )
    assessment.refresh_from_db()
    return assessment


def screened(pathway: Pathway, actor: User, **fill_args: Any) -> Assessment:
    """Open and complete the pathway's first assessment (the pathway must be in assessment)."""
    return fill(services.assessment_open(actor=actor, pathway=pathway), actor, **fill_args)
