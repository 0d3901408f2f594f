"""No lost input on an open safety alert (issue 20): the action taken and the override's reason are one
form, so pressing either button keeps what was typed in the other."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from kaemdr.models import User
from screening import services
from screening.models import SafetyAlert

from ..page_form import press

pytestmark = pytest.mark.django_db

ACTION = "Phoned her at 14:10; safety plan reviewed with her sister."
REASON = "Risk reviewed face to face; passive ideation only, plan in place."


@pytest.fixture
def alert(assessing: object, prescriber: User) -> SafetyAlert:
    services.measure_record(
        actor=prescriber,
        pathway=assessing,
        instrument="phq9",
        answers=[0] * 8 + [1],
    )
    return SafetyAlert.objects.get(pathway=assessing)


def test_a_refused_override_keeps_the_action_typed(
    alert: SafetyAlert, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    response = press(
        client_for(prescriber),
        reverse("safety_alert_acknowledge", args=[alert.public_id]),
        action=reverse("safety_alert_dosing_override", args=[alert.public_id]),
        typed={"action_taken": ACTION, "reason": ""},
    )

    assert response.status_code == 400
    assert ACTION in response.content.decode()
    alert.refresh_from_db()
    assert alert.dosing_override_at is None


def test_a_signed_override_shows_the_action_typed_again_to_be_recorded(
    alert: SafetyAlert, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    response = press(
        client_for(prescriber),
        reverse("safety_alert_acknowledge", args=[alert.public_id]),
        action=reverse("safety_alert_dosing_override", args=[alert.public_id]),
        typed={"action_taken": ACTION, "reason": REASON},
    )

    assert response.status_code == 200
    assert ACTION in response.content.decode()
    alert.refresh_from_db()
    assert alert.dosing_override_at is not None
    assert alert.status == "open"


def test_a_refused_acknowledgement_keeps_the_override_reason_typed(
    alert: SafetyAlert, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    response = press(
        client_for(prescriber),
        reverse("safety_alert_acknowledge", args=[alert.public_id]),
        action=reverse("safety_alert_acknowledge", args=[alert.public_id]),
        typed={"action_taken": "", "reason": REASON},
    )

    assert response.status_code == 400
    assert REASON in response.content.decode()
    alert.refresh_from_db()
    assert alert.status == "open"
