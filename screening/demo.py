"""Screenings for the demo clinic, written through the services as a prescriber would.

Before a demo pathway enters preparation it gets a complete, signed screening (with a precaution or
two, as real patients have: Oliver Brandt's bladder symptoms after street ketamine, say); one patient
in assessment has a complete draft ready to sign, another (Kai Morgan, aged 17) a complete draft the
rules propose not eligible for his age, one was found not eligible (an absolute contraindication), and
patients further on have repeat measures that show the change over time, one of them with an open
safety alert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from typing import Any

from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import Stage

from . import rules
from . import selectors
from . import services
from .models import Assessment
from .models import AssessmentStatus
from .models import SafetyAlert


def spread(total: int, items: int, top: int) -> list[int]:
    """`items` answers from 0 to `top` adding up to `total`, as evenly as possible."""
    answers = [total // items] * items
    for index in range(total % items):
        answers[index] += 1
    assert max(answers) <= top, "total too high for the scale"
    return answers


def phq9(total: int, item9: int = 0) -> list[int]:
    answers = spread(total - item9, 8, 3)
    return [*answers, item9]


def des2(mean: int) -> list[int]:
    return [mean // 10 * 10] * 28


CSSRS_NONE = {"q1": False, "q2": False, "q6_lifetime": False}
CSSRS_LOW = {"q1": True, "q2": False, "q6_lifetime": False}


@dataclass(frozen=True)
class DemoScreening:
    agent: str
    route: str
    conditions: tuple[str, ...] = ()
    medications: tuple[tuple[str, str, str], ...] = ()
    escort: bool = True
    blood_pressure: tuple[int, int] = (124, 78)
    weight: str = "72.0"
    phq9: int = 16
    gad7: int = 12
    pcl5: int = 48
    des2: int = 20
    cssrs: dict[str, bool] = field(default_factory=lambda: dict(CSSRS_LOW))
    decision: str | None = None  # None: sign what the rules propose
    decision_reason: str = ""
    sign: bool = True


SCREENINGS: dict[str, DemoScreening] = {
    "HB-1002": DemoScreening(
        rules.Agent.RACEMIC_KETAMINE,
        rules.Route.SUBLINGUAL,
        medications=(
            ("Diazepam", "benzodiazepine", "5 mg at night"),
            ("Sertraline", "antidepressant", "100 mg"),
        ),
        des2=34,
        sign=False,
    ),
    "HB-1003": DemoScreening(
        rules.Agent.RACEMIC_KETAMINE,
        rules.Route.IM,
        medications=(("Sertraline", "antidepressant", "50 mg"),),
    ),
    "HB-1004": DemoScreening(
        rules.Agent.ESKETAMINE,
        rules.Route.INTRANASAL,
        escort=False,
        blood_pressure=(146, 88),
        weight="88.5",
        medications=(("Venlafaxine", "antidepressant", "150 mg"),),
        phq9=21,
        pcl5=55,
    ),
    "HB-1005": DemoScreening(
        rules.Agent.RACEMIC_KETAMINE,
        rules.Route.IV,
        conditions=("psychosis_history",),
        pcl5=61,
    ),
    "HB-1006": DemoScreening(
        rules.Agent.RACEMIC_KETAMINE,
        rules.Route.SUBLINGUAL,
        conditions=("substance_use_history", "cystitis"),
        medications=(("Lamotrigine", "lamotrigine", "100 mg"),),
    ),
    "HB-1007": DemoScreening(rules.Agent.ESKETAMINE, rules.Route.INTRANASAL, phq9=19, pcl5=44),
    "HB-1008": DemoScreening(rules.Agent.RACEMIC_KETAMINE, rules.Route.ORAL),
    "HB-1009": DemoScreening(
        rules.Agent.ESKETAMINE,
        rules.Route.INTRANASAL,
        conditions=("aneurysmal_vascular_disease",),
    ),
    "HB-1010": DemoScreening(
        rules.Agent.ESKETAMINE,
        rules.Route.INTRANASAL,
        conditions=("intracerebral_haemorrhage",),
        blood_pressure=(152, 92),
    ),
    # Aged 17: under the clinic's "only adults" setting (on by default) not eligible for any ketamine.
    "HB-1011": DemoScreening(
        rules.Agent.RACEMIC_KETAMINE,
        rules.Route.IV,
        medications=(("Fluoxetine", "antidepressant", "20 mg"),),
        weight="61.0",
        phq9=18,
        pcl5=52,
        sign=False,
    ),
}

# Repeat PHQ-9 / PCL-5 totals every few weeks after preparation: (days after, PHQ-9, item 9, PCL-5).
FOLLOW_UPS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "HB-1004": ((18, 17, 0, 47),),
    "HB-1005": ((12, 13, 0, 50),),
    "HB-1006": ((7, 12, 0, 39), (14, 9, 0, 31), (21, 8, 1, 28)),
    "HB-1007": ((7, 14, 0, 36), (14, 9, 0, 27), (21, 5, 0, 19)),
}


def _screen(pathway: Pathway, demo: DemoScreening, *, at: dt.datetime, staff: dict[str, User]) -> Assessment:
    prescriber = pathway.prescriber
    assessment = services.assessment_open(actor=prescriber, pathway=pathway)
    services.assessment_update(
        actor=prescriber,
        assessment=assessment,
        current_crisis=False,
        housing_stable=True,
        has_support_person=True,
        escort_available=demo.escort,
        support_notes="Partner at home; attends the first session." if demo.escort else "Lives alone.",
        agent=demo.agent,
        route=demo.route,
        systolic=demo.blood_pressure[0],
        diastolic=demo.blood_pressure[1],
        heart_rate=72,
        weight_kg=Decimal(demo.weight),
        history_reviewed=True,
        condition_codes=list(demo.conditions),
        medications_reviewed=True,
    )
    for name, medication_class, dose in demo.medications:
        services.medication_add(
            actor=prescriber, assessment=assessment, name=name, medication_class=medication_class, dose=dose
        )
    answers: dict[str, Any] = {
        rules.Instrument.PHQ9: phq9(demo.phq9),
        rules.Instrument.GAD7: spread(demo.gad7, 7, 3),
        rules.Instrument.PCL5: spread(demo.pcl5, 20, 4),
        rules.Instrument.DES2: des2(demo.des2),
        rules.Instrument.CSSRS: demo.cssrs,
    }
    for instrument, given in answers.items():
        services.measure_record(
            actor=prescriber,
            pathway=pathway,
            instrument=instrument,
            answers=given,
            assessment=assessment,
            administered_at=at - dt.timedelta(days=2),
        )
    if demo.sign:
        proposal = selectors.assessment_review(selectors.assessment_with_parts(assessment)).proposal
        assert proposal is not None, "the demo screening is complete"
        decision = demo.decision or proposal.decision
        assessment = services.assessment_sign(
            actor=prescriber, assessment=assessment, decision=decision, reason=demo.decision_reason
        )
        if assessment.status == AssessmentStatus.AWAITING_COUNTERSIGNATURE:
            assessment = services.assessment_countersign(
                actor=staff["prescriber2@demo.kaemdr.test"], assessment=assessment
            )
        signed_at = at - dt.timedelta(days=1)
        Assessment.objects.filter(pk=assessment.pk).update(
            signed_at=signed_at,
            countersigned_at=signed_at if assessment.countersigned_by_id else None,
            valid_until=signed_at + (assessment.valid_until - assessment.signed_at),  # type: ignore[operator]
            created_at=at - dt.timedelta(days=3),
        )
    return assessment


def demo_screenings(
    *, pathway: Pathway, to_stage: str | None, at: dt.datetime, staff: dict[str, User]
) -> None:
    record = pathway.patient.record_number
    demo = SCREENINGS.get(record)
    if demo is None:
        return
    screened = pathway.assessments.exists()
    entering_after_assessment = to_stage in (Stage.PREPARATION, Stage.DISCONTINUED)
    if not screened and (
        entering_after_assessment or (to_stage is None and pathway.stage == Stage.ASSESSMENT)
    ):
        _screen(pathway, demo, at=at, staff=staff)
    # Follow-up measures are taken while the pathway is open: at the end, or just before it closes.
    closing = to_stage in (Stage.COMPLETED, Stage.DISCONTINUED)
    if (to_stage is None and pathway.is_open) or closing:
        prepared_at = at - dt.timedelta(days=12 * 2)
        for days_after, total, item9, pcl5 in FOLLOW_UPS.get(record, ()):
            when = min(prepared_at + dt.timedelta(days=days_after), at)
            services.measure_record(
                actor=pathway.prescriber,
                pathway=pathway,
                instrument=rules.Instrument.PHQ9,
                answers=phq9(total, item9),
                administered_at=when,
            )
            services.measure_record(
                actor=pathway.prescriber,
                pathway=pathway,
                instrument=rules.Instrument.PCL5,
                answers=spread(pcl5, 20, 4),
                administered_at=when,
            )
        for alert in SafetyAlert.objects.filter(pathway=pathway).select_related("measure_response"):
            SafetyAlert.objects.filter(pk=alert.pk).update(raised_at=alert.measure_response.administered_at)
