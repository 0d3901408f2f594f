"""Fuzz the writing pages of `screening/`: the draft assessment, medications, measures, signing, safety
alerts and the clinic's screening settings.

Proven for each form, over hostile POST data (out-of-range and 30-digit numbers, NaN/Infinity
decimals, NUL bytes, unknown condition codes and choices): the page never answers 500, and a
refusal writes no row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from kaemdr.models import User
from pathways.models import Stage
from screening import rules
from screening import services
from screening.models import Assessment
from screening.models import SafetyAlert
from tests.factories import PathwayFactory
from tests.screening.helpers import fill

from .helpers import FEW
from .helpers import FUZZ
from .helpers import boolean_field
from .helpers import choice_field
from .helpers import decimal_field
from .helpers import form_data
from .helpers import number_field
from .helpers import post_and_check
from .helpers import text_field

pytestmark = pytest.mark.django_db

CONDITION_CODES = [condition.code for condition in rules.CONDITIONS]
MEDICATION_CLASSES = [medication.code for medication in rules.MEDICATION_CLASSES]


@pytest.fixture
def draft(clinic: Any, prescriber: User, therapist: User) -> Assessment:
    """A draft assessment on a pathway in the assessment stage."""
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        therapist=therapist,
        stage=Stage.ASSESSMENT,
        patient__registered_by=prescriber,
    )
    return services.assessment_open(actor=prescriber, pathway=pathway)


@pytest.fixture
def filled(prescriber: User, draft: Assessment) -> Assessment:
    """A complete draft, ready to sign (its proposal: eligible)."""
    return fill(draft, prescriber)


@pytest.fixture
def alert(prescriber: User, draft: Assessment) -> SafetyAlert:
    """An open urgent alert: PHQ-9 item 9 answered above 0."""
    services.measure_record(
        actor=prescriber, pathway=draft.pathway, instrument=rules.Instrument.PHQ9, answers=[0] * 8 + [2]
    )
    return SafetyAlert.objects.get(pathway=draft.pathway)


@FEW
@given(
    data=form_data(
        {
            "current_crisis": boolean_field(),
            "housing_stable": boolean_field(),
            "has_support_person": boolean_field(),
            "escort_available": boolean_field(),
            "support_notes": text_field("Lives with partner."),
            "agent": choice_field(*[a.value for a in rules.Agent]),
            "route": choice_field(*[r.value for r in rules.Route]),
            "systolic": number_field(120, 300),
            "diastolic": number_field(80),
            "heart_rate": number_field(70),
            "weight_kg": decimal_field("70.5", "0.1", "9999.9"),
            "history_reviewed": boolean_field(),
            "condition_codes": st.one_of(
                st.lists(st.sampled_from(CONDITION_CODES), max_size=3),
                st.lists(choice_field("x"), max_size=2),
            ),
            "medications_reviewed": boolean_field(),
        },
        valid={
            "current_crisis": "false",
            "housing_stable": "true",
            "support_notes": "Lives with partner.",
            "agent": rules.Agent.RACEMIC_KETAMINE.value,
            "route": rules.Route.SUBLINGUAL.value,
            "systolic": "122",
            "diastolic": "78",
            "heart_rate": "70",
            "weight_kg": "70.5",
            "history_reviewed": "on",
            "condition_codes": [],
        },
    )
)
def test_assessment_update_fuzz(
    client_for: Callable[[User], Client], prescriber: User, draft: Assessment, data: Any
) -> None:
    post_and_check(client_for(prescriber), reverse("assessment_detail", args=[draft.public_id]), data)


@FEW
@given(
    data=form_data(
        {
            "name": text_field("Sertraline"),
            "medication_class": choice_field(*MEDICATION_CLASSES),
            "dose": text_field("50 mg daily"),
        },
        valid={"name": "Sertraline", "medication_class": "opioid", "dose": "50 mg daily"},
    )
)
def test_medication_add_fuzz(
    client_for: Callable[[User], Client], prescriber: User, draft: Assessment, data: Any
) -> None:
    post_and_check(client_for(prescriber), reverse("assessment_medication_add", args=[draft.public_id]), data)


@FUZZ
@given(
    instrument=st.sampled_from([i.value for i in rules.Instrument]),
    data=form_data(
        {
            **{f"item_{n}": number_field(0, 1, 3, 4, 100) for n in range(1, 29)},
            **{key: choice_field("true", "false") for key in rules.CSSRS_KEYS},
        },
        valid={
            **{f"item_{n}": "1" for n in range(1, 29)},
            "q1": "false",
            "q2": "false",
            "q6_lifetime": "false",
        },
    ),
)
def test_pathway_measure_fuzz(
    client_for: Callable[[User], Client], therapist: User, pathway: Any, instrument: str, data: Any
) -> None:
    post_and_check(
        client_for(therapist), reverse("pathway_measure", args=[pathway.public_id, instrument]), data
    )


@FEW
@given(
    data=form_data(
        {
            "decision": choice_field(*[d.value for d in rules.Decision]),
            "reason": text_field("Discussed with the team."),
        },
        valid={"decision": rules.Decision.NOT_ELIGIBLE.value, "reason": "Discussed with the team."},
    )
)
def test_assessment_sign_fuzz(
    client_for: Callable[[User], Client], prescriber: User, filled: Assessment, data: Any
) -> None:
    post_and_check(client_for(prescriber), reverse("assessment_sign", args=[filled.public_id]), data)


@FUZZ
@given(
    data=form_data(
        {"action_taken": text_field("Safety plan agreed; crisis line given.")},
        valid={"action_taken": "Safety plan agreed."},
    )
)
def test_alert_acknowledge_fuzz(
    client_for: Callable[[User], Client], prescriber: User, alert: SafetyAlert, data: Any
) -> None:
    post_and_check(client_for(prescriber), reverse("safety_alert_acknowledge", args=[alert.public_id]), data)


@FUZZ
@given(
    data=form_data(
        {
            "bp_systolic_threshold": number_field(140, 100, 220),
            "bp_diastolic_threshold": number_field(90),
            "screening_valid_days": number_field(90, 730),
            "second_signature_codes": st.lists(choice_field(*CONDITION_CODES), max_size=3),
        },
        valid={"bp_systolic_threshold": "150", "bp_diastolic_threshold": "95", "screening_valid_days": "60"},
    )
)
def test_screening_settings_fuzz(client_for: Callable[[User], Client], clinic_admin: User, data: Any) -> None:
    post_and_check(client_for(clinic_admin), reverse("screening_settings"), data)
