"""Screening services: drafts, measures and alerts, sign-off, second signatures, versions, the gate."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from pathways import services as pathway_services
from pathways.models import Stage
from screening import rules
from screening import selectors
from screening import services
from screening.models import Assessment
from screening.models import AssessmentStatus
from screening.models import MeasureResponse
from screening.models import SafetyAlert

from ..conftest import require_postgres
from ..factories import PathwayFactory
from ..factories import UserFactory
from .helpers import fill
from .helpers import screened

pytestmark = pytest.mark.django_db


def test_an_assessment_opens_only_in_the_assessment_stage(prescriber: Any, pathway: Any) -> None:
    with pytest.raises(ValidationError, match="Move the pathway to the assessment stage"):
        services.assessment_open(actor=prescriber, pathway=pathway)
    assert not Assessment.objects.exists()


def test_a_draft_saves_half_filled_and_names_what_is_missing(prescriber: Any, assessing: Any) -> None:
    assessment = services.assessment_open(actor=prescriber, pathway=assessing)
    services.assessment_update(actor=prescriber, assessment=assessment, current_crisis=False, systolic=130)

    review = selectors.assessment_review(selectors.assessment_with_parts(assessment))

    assert review.proposal is None
    assert review.missing == [
        "Stability and support: answer all four questions.",
        "Planned agent and route.",
        "Baseline vitals: blood pressure, heart rate and weight.",
        "Medical history: review it against the contraindication catalogue.",
        "Medication review: list current medications, or confirm there are none.",
        "Outcome measure: PHQ-9 (depression).",
        "Outcome measure: GAD-7 (anxiety).",
        "Outcome measure: PCL-5 (PTSD).",
        "Outcome measure: DES-II (dissociation).",
        "Outcome measure: C-SSRS screener (suicide risk).",
    ]
    with pytest.raises(ValidationError, match="Not complete: Planned agent and route"):
        services.assessment_sign(actor=prescriber, assessment=assessment, decision="eligible")


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"systolic": 300}, "systolic", "max_value"),
        ({"heart_rate": 10}, "heart_rate", "min_value"),
        ({"systolic": 120, "diastolic": 125}, "diastolic", "diastolic_above_systolic"),
        ({"agent": "esketamine", "route": "iv"}, "route", "screening_route_mismatch"),
        ({"condition_codes": ["made_up"]}, "condition_codes", "unknown_condition"),
    ],
)
def test_out_of_range_values_are_refused_at_the_field(
    prescriber: Any, assessing: Any, fields: dict[str, Any], field: str, code: str
) -> None:
    assessment = services.assessment_open(actor=prescriber, pathway=assessing)
    with pytest.raises(ValidationError) as refused:
        services.assessment_update(actor=prescriber, assessment=assessment, **fields)
    assert code in [e.code for e in refused.value.error_dict[field]]
    assessment.refresh_from_db()
    assert assessment.systolic is None


def test_measure_answers_out_of_range_name_the_item(prescriber: Any, assessing: Any) -> None:
    assessment = services.assessment_open(actor=prescriber, pathway=assessing)
    with pytest.raises(ValidationError) as refused:
        services.measure_record(
            actor=prescriber,
            pathway=assessing,
            assessment=assessment,
            instrument="phq9",
            answers=[0, 0, 4, 0, 0, 0, 0, 0],
        )
    assert refused.value.message_dict == {
        "item_3": ["Enter a number from 0 to 3."],
        "item_9": ["Answer this item."],
    }
    assert not MeasureResponse.objects.exists()


def test_phq9_item_9_raises_an_urgent_alert_whatever_the_total(prescriber: Any, assessing: Any) -> None:
    response = services.measure_record(
        actor=prescriber, pathway=assessing, instrument="phq9", answers=[0, 0, 0, 0, 0, 0, 0, 0, 1]
    )
    assert (response.total, response.band) == (1, "minimal")
    alert = SafetyAlert.objects.get()
    assert (alert.code, alert.status, alert.pathway) == ("phq9_item9", "open", assessing)
    assert AuditEvent.objects.filter(action="safety_alert.raised").count() == 1


def test_acknowledging_an_alert_needs_the_action_taken(
    prescriber: Any, therapist: Any, assessing: Any
) -> None:
    services.measure_record(
        actor=prescriber,
        pathway=assessing,
        instrument="cssrs",
        answers={"q1": True, "q2": True, "q3": True, "q4": True, "q5": False, "q6_lifetime": False},
    )
    alert = SafetyAlert.objects.get(code="cssrs_high")
    with pytest.raises(ValidationError, match="Record what was done"):
        services.safety_alert_acknowledge(actor=therapist, alert=alert, action_taken=" ")
    services.safety_alert_acknowledge(
        actor=therapist, alert=alert, action_taken="Safety plan; crisis team called."
    )
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", therapist)
    with pytest.raises(ValidationError, match="already acknowledged"):
        services.safety_alert_acknowledge(actor=therapist, alert=alert, action_taken="Again.")


def test_sign_as_proposed_makes_the_screening_current(prescriber: Any, assessing: Any) -> None:
    assessment = screened(assessing, prescriber, medications=(("Diazepam", "benzodiazepine"),))

    signed = services.assessment_sign(
        actor=prescriber, assessment=assessment, decision="eligible_with_precautions"
    )

    assert signed.status == AssessmentStatus.SIGNED
    assert signed.proposal == "eligible_with_precautions"
    assert [r["rule"] for r in signed.proposal_reasons] == ["interaction.benzodiazepine"]
    assert signed.valid_until == signed.signed_at + dt.timedelta(days=90)
    assert selectors.screening_gate_refusals(assessing) == []
    event = AuditEvent.objects.get(action="assessment.signed")
    assert event.data == {
        "decision": "eligible_with_precautions",
        "proposal": "eligible_with_precautions",
        "against_proposal": False,
        "needs_second_signature": False,
    }


def test_deciding_against_the_proposal_needs_a_written_reason(prescriber: Any, assessing: Any) -> None:
    assessment = screened(assessing, prescriber, escort_available=False)
    with pytest.raises(ValidationError) as refused:
        services.assessment_sign(actor=prescriber, assessment=assessment, decision="eligible", reason="  ")
    assert "write the reason" in refused.value.message_dict["reason"][0]
    assessment.refresh_from_db()
    assert assessment.status == AssessmentStatus.DRAFT

    signed = services.assessment_sign(
        actor=prescriber,
        assessment=assessment,
        decision="eligible",
        reason="Escort confirmed by phone today.",
    )
    assert (signed.proposal, signed.decision) == ("eligible_with_precautions", "eligible")


def test_a_signed_screening_is_read_only(prescriber: Any, assessing: Any) -> None:
    assessment = screened(assessing, prescriber)
    services.assessment_sign(actor=prescriber, assessment=assessment, decision="eligible")
    for attempt in (
        lambda: services.assessment_update(actor=prescriber, assessment=assessment, systolic=150),
        lambda: services.medication_add(
            actor=prescriber, assessment=assessment, name="X", medication_class="other"
        ),
        lambda: services.measure_record(
            actor=prescriber, pathway=assessing, assessment=assessment, instrument="phq9", answers=[3] * 9
        ),
        lambda: services.assessment_sign(
            actor=prescriber, assessment=assessment, decision="not_eligible", reason="x"
        ),
    ):
        with pytest.raises(ValidationError, match="read-only"):
            attempt()
    assessment.refresh_from_db()
    assert (assessment.systolic, assessment.decision) == (122, "eligible")


def test_listed_precautions_wait_for_a_second_prescriber(
    prescriber: Any, assessing: Any, clinic: Any
) -> None:
    assessment = screened(assessing, prescriber, condition_codes=["psychosis_history"])
    signed = services.assessment_sign(
        actor=prescriber, assessment=assessment, decision="eligible_with_precautions"
    )
    assert signed.status == AssessmentStatus.AWAITING_COUNTERSIGNATURE
    assert selectors.screening_gate_refusals(assessing) == [
        "The screening is waiting for a second prescriber's signature."
    ]
    with pytest.raises(ValidationError, match="another prescriber"):
        services.assessment_countersign(actor=prescriber, assessment=signed)

    colleague = UserFactory(clinic=clinic, role=Role.PRESCRIBER)
    countersigned = services.assessment_countersign(actor=colleague, assessment=signed)
    assert countersigned.status == AssessmentStatus.SIGNED
    assert selectors.screening_gate_refusals(assessing) == []


def test_a_new_version_supersedes_the_old_only_when_signed(prescriber: Any, assessing: Any) -> None:
    first = screened(assessing, prescriber, answers={"phq9": [2] * 8 + [0]})
    services.assessment_sign(actor=prescriber, assessment=first, decision="eligible")

    second = services.assessment_new_version(actor=prescriber, assessment=first)
    assert (second.version, second.status, second.supersedes_id) == (2, AssessmentStatus.DRAFT, first.pk)
    assert second.measures.count() == 5
    assert all(m.carried_from_id for m in second.measures.all())
    assert selectors.current_screening(assessing) == first  # still current while the new one is a draft

    services.medication_add(actor=prescriber, assessment=second, name="Tramadol", medication_class="opioid")
    services.assessment_sign(actor=prescriber, assessment=second, decision="eligible_with_precautions")
    first.refresh_from_db()
    assert first.status == AssessmentStatus.SUPERSEDED
    assert selectors.current_screening(assessing) == second
    assert [p.total for p in selectors.measure_history(assessing)["phq9"]] == [
        16.0
    ]  # copies left off the chart
    with pytest.raises(ValidationError, match="Only a signed assessment"):
        services.assessment_new_version(actor=prescriber, assessment=first)


def test_the_gate_refuses_preparation_without_a_signed_eligible_screening(
    prescriber: Any, assessing: Any
) -> None:
    with pytest.raises(ValidationError, match="No screening yet"):
        pathway_services.pathway_move(
            actor=prescriber, pathway=assessing, to_stage=Stage.PREPARATION, reason="Go."
        )

    assessment = screened(assessing, prescriber)
    with pytest.raises(ValidationError, match="not signed yet"):
        pathway_services.pathway_move(
            actor=prescriber, pathway=assessing, to_stage=Stage.PREPARATION, reason="Go."
        )

    services.assessment_sign(actor=prescriber, assessment=assessment, decision="eligible")
    pathway_services.pathway_move(
        actor=prescriber, pathway=assessing, to_stage=Stage.PREPARATION, reason="Go."
    )
    assessing.refresh_from_db()
    assert assessing.stage == Stage.PREPARATION


def test_an_absolute_contraindication_keeps_the_pathway_in_assessment(
    prescriber: Any, assessing: Any
) -> None:
    assessment = screened(assessing, prescriber, condition_codes=["intracerebral_haemorrhage"])
    signed = services.assessment_sign(actor=prescriber, assessment=assessment, decision="not_eligible")
    assert signed.proposal == "not_eligible"
    with pytest.raises(ValidationError, match="decided the patient is not eligible"):
        pathway_services.pathway_move(
            actor=prescriber, pathway=assessing, to_stage=Stage.PREPARATION, reason="Go."
        )
    assessing.refresh_from_db()
    assert assessing.stage == Stage.ASSESSMENT


def test_an_expired_screening_stops_the_move_to_dosing(prescriber: Any, assessing: Any) -> None:
    assessment = screened(assessing, prescriber)
    services.assessment_sign(actor=prescriber, assessment=assessment, decision="eligible")
    pathway_services.pathway_move(
        actor=prescriber, pathway=assessing, to_stage=Stage.PREPARATION, reason="Go."
    )
    Assessment.objects.filter(pk=assessment.pk).update(valid_until=timezone.now() - dt.timedelta(minutes=1))

    with pytest.raises(ValidationError, match="expired on"):
        pathway_services.pathway_move(
            actor=prescriber, pathway=assessing, to_stage=Stage.DOSING, reason="Go."
        )


def test_resuming_from_hold_into_dosing_is_gated_too(prescriber: Any, clinic: Any, therapist: Any) -> None:
    held = PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        therapist=therapist,
        stage=Stage.ON_HOLD,
        stage_before_hold=Stage.DOSING,
    )
    with pytest.raises(ValidationError, match="No screening yet"):
        pathway_services.pathway_move(actor=prescriber, pathway=held, to_stage=Stage.DOSING, reason="Back.")


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN])
def test_only_prescribers_sign(staff: dict[str, Any], assessing: Any, role: str) -> None:
    assessment = screened(assessing, staff[Role.PRESCRIBER])
    with pytest.raises(NotFoundOrForbidden):
        services.assessment_sign(actor=staff[role], assessment=assessment, decision="eligible")
    assessment.refresh_from_db()
    assert assessment.status == AssessmentStatus.DRAFT


def test_another_clinics_prescriber_cannot_touch_the_assessment(
    prescriber: Any, assessing: Any, other_clinic: Any
) -> None:
    assessment = services.assessment_open(actor=prescriber, pathway=assessing)
    outsider = UserFactory(clinic=other_clinic, role=Role.PRESCRIBER)
    with pytest.raises(NotFoundOrForbidden):
        services.assessment_update(actor=outsider, assessment=assessment, systolic=130)
    with pytest.raises(NotFoundOrForbidden):
        services.measure_record(actor=outsider, pathway=assessing, instrument="phq9", answers=[0] * 9)


def test_every_step_is_audited_without_clinical_text(prescriber: Any, assessing: Any) -> None:
    assessment = screened(assessing, prescriber, support_notes="Sister Maria drives her home")
    services.assessment_sign(actor=prescriber, assessment=assessment, decision="eligible")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[:2] == ["assessment.opened", "assessment.updated"]
    assert actions.count("measure.recorded") == 5
    assert actions[-1] == "assessment.signed"
    assert not any("Maria" in str(data) for data in AuditEvent.objects.values_list("data", flat=True))


def test_clinic_settings_change_the_proposal_and_validity(
    clinic_admin: Any, prescriber: Any, assessing: Any
) -> None:
    services.screening_settings_update(
        actor=clinic_admin,
        bp_systolic_threshold=160,
        bp_diastolic_threshold=100,
        screening_valid_days=30,
        second_signature_codes=[],
    )
    assessment = screened(
        assessing, prescriber, systolic=150, diastolic=95, condition_codes=["psychosis_history"]
    )
    signed = services.assessment_sign(
        actor=prescriber, assessment=assessment, decision="eligible_with_precautions"
    )
    assert "vitals.baseline_bp" not in [r["rule"] for r in signed.proposal_reasons]
    assert (
        signed.status == AssessmentStatus.SIGNED
    )  # psychosis history no longer needs a second signature here
    assert signed.valid_until == signed.signed_at + dt.timedelta(days=30)
    with pytest.raises(NotFoundOrForbidden):
        services.screening_settings_update(actor=prescriber, screening_valid_days=365)


@pytest.mark.django_db(transaction=True)
def test_two_tabs_signing_at_once_sign_once(clinic: Any, prescriber: Any, therapist: Any) -> None:
    require_postgres()
    pathway = PathwayFactory(
        clinic=clinic, prescriber=prescriber, therapist=therapist, stage=Stage.ASSESSMENT
    )
    assessment = fill(services.assessment_open(actor=prescriber, pathway=pathway), prescriber)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def sign(decision: str) -> None:
        barrier.wait()
        try:
            services.assessment_sign(
                actor=prescriber, assessment=assessment, decision=decision, reason="Tab."
            )
            outcomes.append("signed")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=sign, args=(d,)) for d in ("eligible", "not_eligible")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "signed"]
    assert AuditEvent.objects.filter(action="assessment.signed").count() == 1


def test_measure_scores_are_stored_as_published(prescriber: Any, assessing: Any) -> None:
    response = services.measure_record(
        actor=prescriber, pathway=assessing, instrument="des2", answers=[30] * 28
    )
    assert (float(response.total), response.band) == (30.0, "high")
    assert response.flags[0]["code"] == "des2_high"
    assert rules.score("des2", response.answers).total == 30.0


def test_a_superseded_eligible_screening_no_longer_opens_the_gate(prescriber: Any, assessing: Any) -> None:
    first = screened(assessing, prescriber)
    services.assessment_sign(actor=prescriber, assessment=first, decision="eligible")
    second = services.assessment_new_version(actor=prescriber, assessment=first)
    services.assessment_update(
        actor=prescriber, assessment=second, condition_codes=["ketamine_hypersensitivity"]
    )
    services.assessment_sign(actor=prescriber, assessment=second, decision="not_eligible")

    assert selectors.screening_gate_refusals(assessing) == [
        "The signed screening decided the patient is not eligible."
    ]
    with pytest.raises(ValidationError, match="not eligible"):
        pathway_services.pathway_move(
            actor=prescriber, pathway=assessing, to_stage=Stage.PREPARATION, reason="Go."
        )
