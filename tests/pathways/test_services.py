"""Services that write patients and pathways: rules enforced, rows written, audit left, nothing half done."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from pathways import services
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from pathways.models import Patient
from pathways.models import Stage
from pathways.registry import registry

from ..conftest import require_postgres
from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def patient_fields(**overrides: Any) -> dict[str, Any]:
    fields = {
        "record_number": "HB-2001",
        "given_name": "Rosa",
        "family_name": "Lindgren",
        "date_of_birth": dt.date(1984, 2, 3),
        "phone": "07700 900001",
        "email": "rosa@example.org",
        "emergency_contact_name": "Ivo Lindgren",
        "emergency_contact_relationship": "Partner",
        "emergency_contact_phone": "07700 900002",
        "emergency_contact_can_escort": True,
    }
    fields.update(overrides)
    return fields


def test_patient_register_writes_the_patient_and_an_audit_event(prescriber: Any) -> None:
    patient = services.patient_register(actor=prescriber, **patient_fields())

    assert patient.clinic_id == prescriber.clinic_id
    event = AuditEvent.objects.get(action="patient.registered")
    assert event.actor_public_id == prescriber.public_id
    assert event.patient_public_id == patient.public_id
    assert event.clinic_public_id == prescriber.clinic.public_id
    assert event.data == {}


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"record_number": "hb-2001"}, "record_number", "duplicate_record_number"),
        ({"date_of_birth": dt.date.today() + dt.timedelta(days=2)}, "date_of_birth", "future_date_of_birth"),
        ({"date_of_birth": dt.date(1850, 1, 1)}, "date_of_birth", "implausible_date_of_birth"),
        ({"given_name": ""}, "given_name", "blank"),
        ({"emergency_contact_phone": ""}, "emergency_contact_phone", "blank"),
        ({"email": "not-an-email"}, "email", "invalid"),
    ],
)
def test_patient_register_refuses_bad_input_and_writes_nothing(
    prescriber: Any, overrides: dict[str, Any], field: str, code: str
) -> None:
    services.patient_register(actor=prescriber, **patient_fields())
    before = (Patient.objects.count(), AuditEvent.objects.count())

    with pytest.raises(ValidationError) as refused:
        services.patient_register(
            actor=prescriber,
            **patient_fields(
                **overrides, **({} if field == "record_number" else {"record_number": "HB-2002"})
            ),
        )

    assert [e.code for e in refused.value.error_dict[field]] == [code]
    assert (Patient.objects.count(), AuditEvent.objects.count()) == before


def test_record_numbers_are_per_clinic(prescriber: Any, other_clinic: Any) -> None:
    elsewhere = UserFactory(clinic=other_clinic, role=Role.PRESCRIBER)
    services.patient_register(actor=prescriber, **patient_fields())
    services.patient_register(actor=elsewhere, **patient_fields())
    assert Patient.objects.filter(record_number="HB-2001").count() == 2


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN])
def test_only_prescribers_register_patients(staff: dict[str, Any], role: str) -> None:
    with pytest.raises(NotFoundOrForbidden):
        services.patient_register(actor=staff[role], **patient_fields())
    assert not Patient.objects.exists()
    assert not AuditEvent.objects.exists()


def test_patient_update_audits_field_names_not_values(prescriber: Any, patient: Any) -> None:
    services.patient_update(
        actor=prescriber, patient=patient, phone="07700 999999", given_name=patient.given_name
    )
    event = AuditEvent.objects.get(action="patient.updated")
    assert event.data == {"fields": ["phone"]}
    patient.refresh_from_db()
    assert patient.phone == "07700 999999"


def test_pathway_open_starts_in_referral_with_a_timeline_row(
    prescriber: Any, therapist: Any, patient: Any
) -> None:
    pathway = services.pathway_open(
        actor=prescriber, patient=patient, prescriber=prescriber, therapist=therapist
    )

    assert pathway.stage == Stage.REFERRAL
    change = PathwayStageChange.objects.get(pathway=pathway)
    assert (change.from_stage, change.to_stage, change.changed_by) == ("", Stage.REFERRAL, prescriber)
    assert AuditEvent.objects.filter(action="pathway.opened", target_public_id=pathway.public_id).count() == 1


def test_a_patient_has_one_open_pathway(prescriber: Any, patient: Any) -> None:
    services.pathway_open(actor=prescriber, patient=patient, prescriber=prescriber)
    with pytest.raises(ValidationError, match="already has an open pathway"):
        services.pathway_open(actor=prescriber, patient=patient, prescriber=prescriber)
    assert Pathway.objects.filter(patient=patient).count() == 1


def test_pathway_open_refuses_a_care_team_from_another_clinic(
    prescriber: Any, patient: Any, other_clinic: Any
) -> None:
    outsider = UserFactory(clinic=other_clinic, role=Role.THERAPIST)
    with pytest.raises(ValidationError) as refused:
        services.pathway_open(actor=prescriber, patient=patient, prescriber=prescriber, therapist=outsider)
    assert refused.value.error_dict["therapist"][0].code == "invalid_therapist"
    assert not Pathway.objects.exists()


def test_pathway_move_writes_the_change_and_audits_it(prescriber: Any, pathway: Any) -> None:
    change = services.pathway_move(
        actor=prescriber, pathway=pathway, to_stage=Stage.ASSESSMENT, reason="Referral reviewed."
    )

    pathway.refresh_from_db()
    assert pathway.stage == Stage.ASSESSMENT
    assert (change.from_stage, change.to_stage, change.reason) == (
        Stage.REFERRAL,
        Stage.ASSESSMENT,
        "Referral reviewed.",
    )
    event = AuditEvent.objects.get(action="pathway.stage_changed")
    assert event.data == {"from_stage": "referral", "to_stage": "assessment"}
    assert "Referral reviewed" not in str(event.data)


def test_on_hold_and_back_returns_to_the_stage_it_left(prescriber: Any, pathway: Any) -> None:
    services.pathway_move(actor=prescriber, pathway=pathway, to_stage=Stage.ASSESSMENT, reason="Go.")
    services.pathway_move(actor=prescriber, pathway=pathway, to_stage=Stage.ON_HOLD, reason="Travelling.")
    pathway.refresh_from_db()
    assert (pathway.stage, pathway.stage_before_hold) == (Stage.ON_HOLD, Stage.ASSESSMENT)

    services.pathway_move(actor=prescriber, pathway=pathway, to_stage=Stage.ASSESSMENT, reason="Back.")
    pathway.refresh_from_db()
    assert (pathway.stage, pathway.stage_before_hold) == (Stage.ASSESSMENT, "")
    assert list(pathway.stage_changes.values_list("to_stage", flat=True)) == [
        Stage.REFERRAL,
        Stage.ASSESSMENT,
        Stage.ON_HOLD,
        Stage.ASSESSMENT,
    ]


def test_whole_pathway_to_completion(prescriber: Any, pathway: Any) -> None:
    SignedScreeningFactory(pathway=pathway)
    for stage in (Stage.ASSESSMENT, Stage.PREPARATION, Stage.DOSING, Stage.INTEGRATION, Stage.COMPLETED):
        services.pathway_move(actor=prescriber, pathway=pathway, to_stage=stage, reason=f"To {stage}.")
    pathway.refresh_from_db()
    assert pathway.stage == Stage.COMPLETED
    assert pathway.stage_changes.count() == 6
    with pytest.raises(ValidationError, match="closed pathway does not move"):
        services.pathway_move(actor=prescriber, pathway=pathway, to_stage=Stage.DISCONTINUED, reason="No.")


@pytest.mark.parametrize(
    ("to_stage", "reason", "message"),
    [
        (Stage.DOSING, "Skip ahead.", "cannot move to dosing"),
        (Stage.ASSESSMENT, "   ", "Give a reason for the move."),
        (Stage.REFERRAL, "Again.", "already in referral"),
    ],
)
def test_refused_moves_write_nothing(
    prescriber: Any, pathway: Any, to_stage: str, reason: str, message: str
) -> None:
    before = (PathwayStageChange.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError, match=message):
        services.pathway_move(actor=prescriber, pathway=pathway, to_stage=to_stage, reason=reason)
    pathway.refresh_from_db()
    assert pathway.stage == Stage.REFERRAL
    assert (PathwayStageChange.objects.count(), AuditEvent.objects.count()) == before


def test_a_stale_page_cannot_move_a_pathway_twice(prescriber: Any, pathway: Any) -> None:
    """Two tabs show referral; the first moves it to assessment, the second's move is refused."""
    services.pathway_move(
        actor=prescriber,
        pathway=pathway,
        to_stage=Stage.ASSESSMENT,
        reason="Tab one.",
        expected_stage=Stage.REFERRAL,
    )
    stale = Pathway.objects.get(pk=pathway.pk)
    stale.stage = Stage.REFERRAL  # what the second tab still believes
    with pytest.raises(ValidationError) as refused:
        services.pathway_move(
            actor=prescriber,
            pathway=stale,
            to_stage=Stage.DISCONTINUED,
            reason="Tab two.",
            expected_stage=Stage.REFERRAL,
        )
    assert refused.value.error_dict["to_stage"][0].code == "stale_stage"
    pathway.refresh_from_db()
    assert pathway.stage == Stage.ASSESSMENT


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN])
def test_only_prescribers_move_pathways(staff: dict[str, Any], pathway: Any, role: str) -> None:
    with pytest.raises(NotFoundOrForbidden):
        services.pathway_move(actor=staff[role], pathway=pathway, to_stage=Stage.ASSESSMENT, reason="Try.")
    assert pathway.stage_changes.count() == 1


def test_a_prescriber_of_another_clinic_cannot_move_the_pathway(pathway: Any, other_clinic: Any) -> None:
    outsider = UserFactory(clinic=other_clinic, role=Role.PRESCRIBER)
    with pytest.raises(NotFoundOrForbidden):
        services.pathway_move(actor=outsider, pathway=pathway, to_stage=Stage.ASSESSMENT, reason="Try.")
    assert pathway.stage_changes.count() == 1


def test_registered_gates_refuse_moves_everywhere(prescriber: Any, pathway: Any) -> None:
    def no_assessment_on_fridays(*, pathway: Any, to_stage: str) -> list[str]:
        return ["Assessments are not started today."] if to_stage == Stage.ASSESSMENT else []

    registry.register_stage_gate(no_assessment_on_fridays)
    try:
        with pytest.raises(ValidationError, match="Assessments are not started today"):
            services.pathway_move(actor=prescriber, pathway=pathway, to_stage=Stage.ASSESSMENT, reason="Go.")
        services.pathway_move(actor=prescriber, pathway=pathway, to_stage=Stage.ON_HOLD, reason="Wait.")
    finally:
        registry.stage_gates.remove(no_assessment_on_fridays)


def test_stage_change_handlers_run_in_the_same_transaction(prescriber: Any, pathway: Any) -> None:
    def failing_handler(**payload: Any) -> None:
        raise RuntimeError("a later app failed")

    registry.register_event_handler("pathway.stage_changed", failing_handler)
    try:
        with pytest.raises(RuntimeError):
            services.pathway_move(actor=prescriber, pathway=pathway, to_stage=Stage.ASSESSMENT, reason="Go.")
    finally:
        registry.event_handlers["pathway.stage_changed"].remove(failing_handler)
    pathway.refresh_from_db()
    assert pathway.stage == Stage.REFERRAL
    assert pathway.stage_changes.count() == 1


def test_care_team_needs_a_therapist_from_preparation_on(prescriber: Any, pathway: Any) -> None:
    SignedScreeningFactory(pathway=pathway)
    for stage in (Stage.ASSESSMENT, Stage.PREPARATION):
        services.pathway_move(actor=prescriber, pathway=pathway, to_stage=stage, reason="Go.")
    with pytest.raises(ValidationError) as refused:
        services.pathway_assign_care_team(
            actor=prescriber, pathway=pathway, prescriber=prescriber, therapist=None
        )
    assert refused.value.error_dict["therapist"][0].code == "therapist_required"


def test_care_team_change_is_audited_with_ids(prescriber: Any, pathway: Any, clinic: Any) -> None:
    new_therapist = UserFactory(clinic=clinic, role=Role.THERAPIST)
    services.pathway_assign_care_team(
        actor=prescriber, pathway=pathway, prescriber=prescriber, therapist=new_therapist
    )
    pathway.refresh_from_db()
    assert pathway.therapist == new_therapist
    event = AuditEvent.objects.get(action="pathway.care_team_changed")
    assert event.data["therapist"] == str(new_therapist.public_id)


@pytest.mark.django_db(transaction=True)
def test_two_moves_at_once_apply_one_after_the_other(clinic: Any, prescriber: Any, therapist: Any) -> None:
    """Two requests move the same pathway at the same moment; the row lock serialises them, and the
    second is judged against the stage the first left, so exactly one move from referral lands."""
    require_postgres()
    pathway = PathwayFactory(
        clinic=clinic, prescriber=prescriber, therapist=therapist, patient__registered_by=prescriber
    )
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def move(to_stage: str) -> None:
        barrier.wait()
        try:
            services.pathway_move(
                actor=prescriber,
                pathway=Pathway.objects.get(pk=pathway.pk),
                to_stage=to_stage,
                reason="Race.",
                expected_stage=Stage.REFERRAL,
            )
            outcomes.append("moved")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=move, args=(stage,)) for stage in (Stage.ASSESSMENT, Stage.DISCONTINUED)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["moved", "refused"]
    assert PathwayStageChange.objects.filter(pathway=pathway).count() == 2
    assert AuditEvent.objects.filter(action="pathway.stage_changed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_registrations_racing_for_one_record_number_leave_one_patient(
    clinic: Any, prescriber: Any
) -> None:
    require_postgres()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def register(name: str) -> None:
        barrier.wait()
        try:
            services.patient_register(actor=prescriber, **patient_fields(given_name=name))
            outcomes.append("registered")
        except ValidationError as error:
            outcomes.append(error.error_dict["record_number"][0].code or "")
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(name,)) for name in ("Rosa", "Rosalind")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["duplicate_record_number", "registered"]
    assert Patient.objects.filter(record_number="HB-2001").count() == 1
    assert AuditEvent.objects.filter(action="patient.registered").count() == 1


def test_view_audits_name_the_record_without_content(prescriber: Any, pathway: Any) -> None:
    services.pathway_record_viewed(actor=prescriber, pathway=pathway, via="page")
    event = AuditEvent.objects.get(action="pathway.viewed")
    assert (event.target_public_id, event.patient_public_id) == (pathway.public_id, pathway.patient.public_id)
    assert event.data == {"via": "page"}
