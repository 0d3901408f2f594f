"""Fuzz the writing pages of `integration/`: the integration note (save and sign), experiments and
their review, addenda, follow-ups done, and the clinic's follow-up settings.

Proven for each form, over hostile POST data (10k-character and NUL-byte text, dates at year 1 and
9999, unknown areas and states, check-in days that do not parse): the page never answers 500, and a
refusal writes no row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from integration import rules
from integration import services
from integration.models import Experiment
from integration.models import FollowUp
from integration.models import IntegrationNote
from kaemdr.models import User
from sessions.models import DosingSession

from .helpers import FUZZ
from .helpers import boolean_field
from .helpers import choice_field
from .helpers import date_field
from .helpers import form_data
from .helpers import number_field
from .helpers import post_and_check
from .helpers import text_field
from .helpers import time_field

pytestmark = pytest.mark.django_db

AREAS = [area.value for area in rules.ExperimentArea]
STATES = [state.value for state in rules.ExperimentState]


@pytest.fixture
def signed_session(dosing_pathway: Any, complete_session: Callable[..., DosingSession]) -> DosingSession:
    return complete_session(dosing_pathway)


@pytest.fixture
def note(therapist: User, dosing_pathway: Any, signed_session: DosingSession) -> IntegrationNote:
    return services.note_open(actor=therapist, pathway=dosing_pathway, dosing_session=signed_session)


@pytest.fixture
def experiment(therapist: User, note: IntegrationNote) -> Experiment:
    return services.experiment_add(
        actor=therapist, note=note, area=AREAS[0], description="Lights out by 23:00"
    )


@pytest.fixture
def signed_note(therapist: User, note: IntegrationNote) -> IntegrationNote:
    services.note_update(actor=therapist, note=note, perception_shift="Less braced.")
    return services.note_sign(actor=therapist, note=note)


def _now_fields() -> dict[str, str]:
    now = timezone.localtime()
    return {"held_date": now.date().isoformat(), "held_time": now.strftime("%H:%M")}


@FUZZ
@given(
    sign=st.booleans(),
    data=form_data(
        {
            "held_date": date_field(),
            "held_time": time_field(),
            "perception_shift": text_field("The room felt less loud."),
            "newly_possible": text_field("Asking for help."),
            "afraid_of_losing": text_field("Vigilance."),
            "free_notes": text_field("Calm."),
        },
        valid={**_now_fields(), "perception_shift": "The room felt less loud."},
    ),
)
def test_note_save_fuzz(
    client_for: Callable[[User], Client], therapist: User, note: IntegrationNote, sign: bool, data: Any
) -> None:
    posted = {**data, "sign": "1"} if sign else data
    post_and_check(client_for(therapist), reverse("integration_note_save", args=[note.public_id]), posted)


@FUZZ
@given(
    data=form_data(
        {"area": choice_field(*AREAS), "description": text_field("Walk after lunch")},
        valid={"area": AREAS[0], "description": "Walk after lunch"},
    )
)
def test_experiment_add_fuzz(
    client_for: Callable[[User], Client], therapist: User, note: IntegrationNote, data: Any
) -> None:
    post_and_check(client_for(therapist), reverse("integration_experiment_add", args=[note.public_id]), data)


@FUZZ
@given(data=st.data())
def test_experiment_review_fuzz(
    client_for: Callable[[User], Client], therapist: User, experiment: Experiment, data: Any
) -> None:
    prefix = f"e{experiment.pk}"
    posted = data.draw(
        form_data(
            {f"{prefix}-state": choice_field(*STATES), f"{prefix}-what_happened": text_field("Kept it up")},
            valid={f"{prefix}-state": STATES[1], f"{prefix}-what_happened": "Kept it up"},
        )
    )
    url = reverse(
        "integration_experiment_review", args=[experiment.agreed_in.public_id, experiment.public_id]
    )
    post_and_check(client_for(therapist), url, posted)


@FUZZ
@given(data=form_data({"text": text_field("Date corrected.")}, valid={"text": "Date corrected."}))
def test_note_addendum_fuzz(
    client_for: Callable[[User], Client], therapist: User, signed_note: IntegrationNote, data: Any
) -> None:
    post_and_check(
        client_for(therapist), reverse("integration_addendum_add", args=[signed_note.public_id]), data
    )


@FUZZ
@given(data=form_data({"outcome": text_field("Reached; doing well.")}, valid={"outcome": "Reached."}))
def test_follow_up_done_fuzz(
    client_for: Callable[[User], Client], prescriber: User, signed_session: DosingSession, data: Any
) -> None:
    follow_up = FollowUp.objects.filter(kind=rules.FollowUpKind.CHECK_IN).order_by("due_at").first()
    assert follow_up is not None
    post_and_check(client_for(prescriber), reverse("follow_up_detail", args=[follow_up.public_id]), data)


@FUZZ
@given(
    data=form_data(
        {
            "integration_window_hours": number_field(72, 1, 168),
            "check_in_days": text_field("1, 3, 7", "0", "91", "1;2;3", "1,2,3,4,5,6,7,8,9,10,11", "9" * 30),
            "measures_interval_weeks": number_field(4, 26),
            "reminder_hour": number_field(17, 0, 23, 24),
            "patient_emails_enabled": boolean_field(),
        },
        valid={
            "integration_window_hours": "48",
            "check_in_days": "1, 2, 7",
            "measures_interval_weeks": "4",
            "reminder_hour": "17",
        },
    )
)
def test_integration_settings_fuzz(
    client_for: Callable[[User], Client], clinic_admin: User, data: Any
) -> None:
    post_and_check(client_for(clinic_admin), reverse("integration_settings"), data)
