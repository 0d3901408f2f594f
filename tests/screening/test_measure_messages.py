"""What a person reads after scoring a measure, and on the assessment page: totals as numbers
("PCL-5 (PTSD): 20"), never as the Decimal's scientific notation ("2E+1")."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage
from screening import services
from screening.models import Assessment
from screening.models import MeasureResponse

from ..factories import PathwayFactory
from .helpers import fill

pytestmark = pytest.mark.django_db


@pytest.fixture
def assessment(staff: dict[str, User], clinic: Any) -> Assessment:
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        stage=Stage.ASSESSMENT,
        patient__registered_by=staff[Role.PRESCRIBER],
    )
    return services.assessment_open(actor=staff[Role.PRESCRIBER], pathway=pathway)


def _score(client: Client, assessment: Assessment, instrument: str, answers: list[int]) -> list[str]:
    response = client.post(
        reverse("assessment_measure", args=[assessment.public_id, instrument]),
        {f"item_{index}": str(answer) for index, answer in enumerate(answers, start=1)},
    )
    assert response.status_code == 302
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    ("instrument", "answers", "stored", "message"),
    [
        # 20 items at 1: a total of 20, which Decimal.normalize() showed as "2E+1"
        ("pcl5", [1] * 20, Decimal("20.0"), "PCL-5 (PTSD): 20, "),
        # 28 items at 10: a mean of 10.0, shown as "1E+1"
        ("des2", [10] * 28, Decimal("10.0"), "DES-II (dissociation): 10, "),
        # a mean with a tenth keeps it
        ("des2", [10] * 14 + [20] * 14, Decimal("15.0"), "DES-II (dissociation): 15, "),
        ("des2", [10] * 27 + [20], Decimal("10.4"), "DES-II (dissociation): 10.4, "),
        ("phq9", [1] * 8 + [0], Decimal("8.0"), "PHQ-9 (depression): 8, "),
    ],
)
def test_measure_message_shows_the_total_as_a_number(
    client_for: Callable[[User | None], Client],
    staff: dict[str, User],
    assessment: Assessment,
    instrument: str,
    answers: list[int],
    stored: Decimal,
    message: str,
) -> None:
    shown = _score(client_for(staff[Role.PRESCRIBER]), assessment, instrument, answers)
    assert MeasureResponse.objects.get(assessment=assessment, instrument=instrument).total == stored
    assert len(shown) == 1
    assert shown[0].startswith(message)
    assert shown[0].endswith(" recorded.")
    assert "E+" not in shown[0]


def test_signed_assessment_page_shows_totals_and_weight_as_numbers(
    client_for: Callable[[User | None], Client], staff: dict[str, User], assessment: Assessment
) -> None:
    prescriber = staff[Role.PRESCRIBER]
    fill(
        assessment,
        prescriber,
        answers={"pcl5": [1] * 20, "des2": [10] * 27 + [20]},
        weight_kg=Decimal("70.0"),
    )
    services.assessment_sign(actor=prescriber, assessment=assessment, decision="eligible")
    body = (
        client_for(prescriber).get(reverse("assessment_detail", args=[assessment.public_id])).content.decode()
    )
    assert "<td>20</td>" in body
    assert "<td>10.4</td>" in body
    assert "122/78 mmHg, 70 bpm, 70 kg" in body
    assert "70.0" not in body
    assert "E+" not in body
