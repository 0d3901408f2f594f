"""A date of birth corrected after a screening was signed: the age rules are decided afresh, so no
booking or dose rests on a decision made about a different age (page and API alike)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from screening.models import ScreeningSettings
from screening.selectors import screening_status

from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory
from ..pathways.test_views import PATIENT_POST

pytestmark = pytest.mark.django_db


def _born(age: int) -> dt.date:
    """A date of birth that makes the patient `age` today (1 January, so never a 29 February)."""
    return dt.date(timezone.localdate().year - age, 1, 1)


def _signed_pathway(staff: dict[str, User], clinic: Any, agent: str, route: str) -> Any:
    pathway = PathwayFactory(clinic=clinic, stage="dosing", prescriber=staff[Role.PRESCRIBER])
    pathway.patient.date_of_birth = _born(30)
    pathway.patient.save()
    SignedScreeningFactory(pathway=pathway, agent=agent, route=route)
    assert screening_status(pathway).current is not None
    return pathway


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize(("agent", "route"), [("esketamine", "intranasal"), ("ketamine", "iv")])
def test_a_corrected_date_of_birth_under_18_ends_the_signed_screening_by_api(
    agent: str, route: str, staff: dict[str, User], clinic: Any
) -> None:
    pathway = _signed_pathway(staff, clinic, agent, route)
    response = _api(staff[Role.PRESCRIBER]).patch(
        f"/api/v1/patients/{pathway.patient.public_id}/",
        {"date_of_birth": _born(16).isoformat()},
        format="json",
    )
    assert response.status_code == 200
    status = screening_status(pathway)
    assert status.current is None
    assert status.refusals[0].startswith("The signed screening expired on")
    event = AuditEvent.objects.get(action="assessment.ended_by_age")
    expected = "age.under_18.esketamine" if agent == "esketamine" else "age.under_18"
    assert event.data["rule"] == expected


def test_the_page_correction_ends_it_too_and_an_adult_correction_leaves_it(
    staff: dict[str, User], clinic: Any, client_for: Callable[[User | None], Client]
) -> None:
    pathway = _signed_pathway(staff, clinic, "esketamine", "intranasal")
    patient = pathway.patient
    edit = {**PATIENT_POST, "record_number": patient.record_number}
    page = client_for(staff[Role.PRESCRIBER])
    adult = page.post(reverse("patient_edit", args=[patient.public_id]), {**edit, "date_of_birth": _born(40)})
    assert adult.status_code == 302
    assert screening_status(pathway).current is not None
    minor = page.post(reverse("patient_edit", args=[patient.public_id]), {**edit, "date_of_birth": _born(17)})
    assert minor.status_code == 302
    assert screening_status(pathway).current is None
    assert AuditEvent.objects.filter(action="assessment.ended_by_age").count() == 1


def test_with_adults_only_off_a_minor_keeps_a_racemic_screening_but_not_esketamine(
    staff: dict[str, User], clinic: Any
) -> None:
    ScreeningSettings.objects.update_or_create(clinic=clinic, defaults={"adults_only": False})
    racemic = _signed_pathway(staff, clinic, "ketamine", "iv")
    _api(staff[Role.PRESCRIBER]).patch(
        f"/api/v1/patients/{racemic.patient.public_id}/",
        {"date_of_birth": _born(16).isoformat()},
        format="json",
    )
    assert screening_status(racemic).current is not None
    assert not AuditEvent.objects.filter(action="assessment.ended_by_age").exists()
