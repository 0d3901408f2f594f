"""Fuzz the writing pages of `pathways/` and `kaemdr/` (patients, pathways, care team, staff).

Proven for each form, over hostile POST data (empty, 10k-character and NUL-byte text, impossible
dates, unknown choices and ids): the page never answers 500, and a refusal writes no row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage

from .helpers import FUZZ
from .helpers import boolean_field
from .helpers import choice_field
from .helpers import date_field
from .helpers import form_data
from .helpers import post_and_check
from .helpers import text_field
from .helpers import uuid_field

pytestmark = pytest.mark.django_db

PATIENT_FORM = form_data(
    {
        "record_number": text_field("MRN-77001", "mrn-00001"),
        "given_name": text_field("Ann"),
        "family_name": text_field("Lee"),
        "date_of_birth": date_field("1980-02-29", "2100-01-01"),
        "phone": text_field("07700 900123"),
        "email": text_field("ann@example.org", "not-an-email", "a@b"),
        "emergency_contact_name": text_field("Sam Lee"),
        "emergency_contact_relationship": text_field("Sibling"),
        "emergency_contact_phone": text_field("07700 900456"),
        "emergency_contact_can_escort": boolean_field(),
    },
    valid={
        "record_number": "MRN-77001",
        "given_name": "Ann",
        "family_name": "Lee",
        "date_of_birth": "1980-02-29",
        "phone": "07700 900123",
        "email": "ann@example.org",
        "emergency_contact_name": "Sam Lee",
        "emergency_contact_relationship": "Sibling",
        "emergency_contact_phone": "07700 900456",
        "emergency_contact_can_escort": "on",
    },
)


@FUZZ
@given(data=PATIENT_FORM)
def test_patient_register_fuzz(client_for: Callable[[User], Client], prescriber: User, data: Any) -> None:
    post_and_check(client_for(prescriber), reverse("patient_register"), data)


@FUZZ
@given(data=PATIENT_FORM)
def test_patient_edit_fuzz(
    client_for: Callable[[User], Client], prescriber: User, pathway: Any, data: Any
) -> None:
    post_and_check(client_for(prescriber), reverse("patient_edit", args=[pathway.patient.public_id]), data)


@FUZZ
@given(data=st.data())
def test_pathway_open_fuzz(
    client_for: Callable[[User], Client], prescriber: User, therapist: User, patient: Any, data: Any
) -> None:
    posted = data.draw(
        form_data(
            {
                "prescriber": uuid_field(prescriber.public_id, therapist.public_id),
                "therapist": uuid_field(therapist.public_id, prescriber.public_id),
                "referral_source": text_field("GP"),
                "reason": text_field("Referred for assessment."),
            },
            valid={
                "prescriber": str(prescriber.public_id),
                "therapist": str(therapist.public_id),
                "referral_source": "GP",
                "reason": "Referred.",
            },
        )
    )
    post_and_check(client_for(prescriber), reverse("pathway_open", args=[patient.public_id]), posted)


@FUZZ
@given(
    data=form_data(
        {
            "to_stage": choice_field(*Stage.values),
            "reason": text_field("Ready."),
            "expected_stage": choice_field(*Stage.values),
        },
        valid={"to_stage": Stage.ASSESSMENT, "reason": "Ready.", "expected_stage": Stage.REFERRAL},
    )
)
def test_pathway_move_fuzz(
    client_for: Callable[[User], Client], prescriber: User, pathway: Any, data: Any
) -> None:
    post_and_check(client_for(prescriber), reverse("pathway_move", args=[pathway.public_id]), data)


@FUZZ
@given(data=st.data())
def test_pathway_care_team_fuzz(
    client_for: Callable[[User], Client], prescriber: User, therapist: User, pathway: Any, data: Any
) -> None:
    posted = data.draw(
        form_data(
            {
                "prescriber": uuid_field(prescriber.public_id, therapist.public_id),
                "therapist": uuid_field(therapist.public_id, prescriber.public_id),
            },
            valid={"prescriber": str(prescriber.public_id), "therapist": str(therapist.public_id)},
        )
    )
    post_and_check(client_for(prescriber), reverse("pathway_care_team", args=[pathway.public_id]), posted)


@FUZZ
@given(
    data=form_data(
        {
            "full_name": text_field("Kim Nurse"),
            "email": text_field("kim@example.org", "staff0@example.test", "x@"),
            "role": choice_field(*Role.values),
        },
        valid={"full_name": "Kim Nurse", "email": "kim@example.org", "role": Role.MONITOR},
    )
)
def test_staff_invite_fuzz(client_for: Callable[[User], Client], clinic_admin: User, data: Any) -> None:
    post_and_check(client_for(clinic_admin), reverse("staff_invite"), data)
