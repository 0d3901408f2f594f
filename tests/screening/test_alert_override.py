"""A prescriber's dosing override on an open safety alert: who may sign it, what it needs, where it is
offered (the alert page beside "record the action taken", the pathway page, the API), and that the
alert stays open on the dashboards until the action taken is recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.exceptions import error_items
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from screening import selectors
from screening import services
from screening.models import SafetyAlert

pytestmark = pytest.mark.django_db

REASON = "Seen in clinic: passive thoughts, no plan or intent; safety plan updated."


@pytest.fixture
def alert(therapist: User, assessing: Any) -> SafetyAlert:
    response = services.measure_record(
        actor=therapist, pathway=assessing, instrument="phq9", answers=[0, 0, 0, 0, 0, 0, 0, 0, 1]
    )
    return response.alerts.get()


def override_state(alert: SafetyAlert) -> tuple[Any, ...]:
    alert.refresh_from_db()
    return (
        alert.status,
        alert.dosing_override_by_id,
        alert.dosing_override_at,
        alert.dosing_override_reason,
        AuditEvent.objects.filter(action="safety_alert.dosing_override_signed").count(),
    )


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_prescriber_signs_a_dosing_override_and_the_alert_stays_open(
    prescriber: User, alert: SafetyAlert
) -> None:
    assert selectors.dosing_alert_refusals(alert.pathway)

    signed = services.safety_alert_dosing_override_sign(actor=prescriber, alert=alert, reason=f"  {REASON} ")

    assert (signed.status, signed.dosing_override_by, signed.dosing_override_reason) == (
        "open",
        prescriber,
        REASON,
    )
    assert signed.dosing_override_at is not None
    assert signed.blocks_dosing is False
    assert selectors.dosing_alert_refusals(alert.pathway) == []
    assert selectors.open_alerts_for_dashboard(prescriber) == [signed]
    event = AuditEvent.objects.get(action="safety_alert.dosing_override_signed")
    assert (event.target_public_id, event.data) == (alert.public_id, {"code": "phq9_item9"})


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN])
def test_only_prescribers_sign_a_dosing_override(
    role: str, staff: dict[str, User], alert: SafetyAlert
) -> None:
    before = override_state(alert)
    with pytest.raises(NotFoundOrForbidden):
        services.safety_alert_dosing_override_sign(actor=staff[role], alert=alert, reason=REASON)
    assert override_state(alert) == before


def test_another_clinics_prescriber_cannot_sign(make_user: Callable[..., User], alert: SafetyAlert) -> None:
    before = override_state(alert)
    with pytest.raises(NotFoundOrForbidden):
        services.safety_alert_dosing_override_sign(
            actor=make_user(role=Role.PRESCRIBER), alert=alert, reason=REASON
        )
    assert override_state(alert) == before


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("blank", "alert_override_reason_required"),
        ("acknowledged", "alert_not_open"),
        ("overridden", "alert_already_overridden"),
    ],
)
def test_a_dosing_override_is_refused_with_a_code(
    setup: str, code: str, prescriber: User, therapist: User, alert: SafetyAlert
) -> None:
    reason = " " if setup == "blank" else REASON
    if setup == "acknowledged":
        services.safety_alert_acknowledge(actor=therapist, alert=alert, action_taken="Called; safety plan.")
    if setup == "overridden":
        services.safety_alert_dosing_override_sign(actor=prescriber, alert=alert, reason=REASON)
    before = override_state(alert)

    with pytest.raises(ValidationError) as refused:
        services.safety_alert_dosing_override_sign(actor=prescriber, alert=alert, reason=reason)

    assert [item.code for _, item in error_items(refused.value)] == [code]
    assert override_state(alert) == before


def test_the_alert_page_offers_the_override_beside_the_action_taken(
    prescriber: User, therapist: User, alert: SafetyAlert, client_for: Callable[[User | None], Client]
) -> None:
    url = reverse("safety_alert_acknowledge", args=[alert.public_id])
    page = client_for(prescriber).get(url).content.decode()
    assert "Record the action taken" in page
    assert reverse("safety_alert_dosing_override", args=[alert.public_id]) in page
    assert "no dosing session is booked and no dose is started" in page
    assert (
        reverse("safety_alert_dosing_override", args=[alert.public_id])
        not in client_for(therapist).get(url).content.decode()
    )
    pathway_page = client_for(prescriber).get(reverse("pathway_detail", args=[alert.pathway.public_id]))
    assert "Sign a dosing override" in pathway_page.content.decode()
    assert "Stops booking and dosing" in pathway_page.content.decode()


def test_the_override_by_page_post(
    prescriber: User, therapist: User, alert: SafetyAlert, client_for: Callable[[User | None], Client]
) -> None:
    url = reverse("safety_alert_dosing_override", args=[alert.public_id])
    before = override_state(alert)

    assert client_for(therapist).post(url, {"reason": REASON}).status_code == 404
    blank = client_for(prescriber).post(url, {"reason": ""})
    assert blank.status_code == 400
    assert "Give the reason dosing may go ahead." in blank.content.decode()
    assert override_state(alert) == before

    done = client_for(prescriber).post(url, {"reason": REASON})

    assert done.status_code == 302
    assert override_state(alert)[1] == prescriber.pk
    pathway_page = client_for(prescriber).get(reverse("pathway_detail", args=[alert.pathway.public_id]))
    assert "Dosing override signed" in pathway_page.content.decode()
    again = client_for(prescriber).post(url, {"reason": REASON})
    assert again.status_code == 400
    assert "Dosing is already overridden for this alert." in again.content.decode()


def test_the_override_through_the_api(prescriber: User, therapist: User, alert: SafetyAlert) -> None:
    url = f"/api/v1/safety-alerts/{alert.public_id}/dosing-override/"
    before = override_state(alert)

    assert api(therapist).post(url, {"reason": REASON}, format="json").status_code == 404
    blank = api(prescriber).post(url, {"reason": " "}, format="json")
    assert blank.status_code == 400
    assert override_state(alert) == before

    done = api(prescriber).post(url, {"reason": REASON}, format="json")

    assert done.status_code == 200
    body = done.json()
    assert (body["status"], body["blocks_dosing"], body["dosing_override_reason"]) == ("open", False, REASON)
    listed = api(prescriber).get(f"/api/v1/safety-alerts/{alert.public_id}/").json()
    assert listed["blocks_dosing"] is False
    refused = api(prescriber).post(url, {"reason": REASON}, format="json")
    assert refused.status_code == 400
    assert [e["code"] for e in refused.json()["errors"]] == ["alert_already_overridden"]


def test_the_schema_documents_the_override() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/safety-alerts/{id}/dosing-override/"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/DosingOverrideRequest"
    )
    assert {"200", "400", "404"} <= set(operation["responses"])
