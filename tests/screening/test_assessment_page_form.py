"""No lost input on a draft screening (issue 20): every button of the page (save the draft, add or remove
a medication, sign) posts the whole page, and its action saves the draft's fields first through the
audited service; a refusal shows the page again with everything as typed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from kaemdr.models import AuditEvent
from kaemdr.models import User
from screening import services
from screening.models import Assessment
from screening.models import AssessmentMedication
from screening.models import AssessmentStatus

from ..page_form import press
from .helpers import fill

pytestmark = pytest.mark.django_db

TYPED = {
    "support_notes": "Sister Ana drives her home on dosing days.",
    "systolic": "128",
    "housing_stable": "True",
}


def _actions(assessment: Assessment) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_public_id=assessment.public_id)
        .exclude(action__endswith="viewed")
        .order_by("pk")
        .values_list("action", flat=True)
    )


@pytest.fixture
def draft(assessing: object, prescriber: User) -> Assessment:
    return services.assessment_open(actor=prescriber, pathway=assessing)


def test_add_medication_saves_the_draft_typed_beside_it(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(prescriber)
    page = reverse("assessment_detail", args=[draft.public_id])
    before = _actions(draft)

    response = press(
        client,
        page,
        action=reverse("assessment_medication_add", args=[draft.public_id]),
        typed={**TYPED, "name": "Sertraline", "medication_class": "benzodiazepine", "dose": "50 mg mornings"},
    )

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.support_notes == TYPED["support_notes"]
    assert draft.systolic == 128
    assert draft.housing_stable is True
    assert list(draft.medications.values_list("name", "dose")) == [("Sertraline", "50 mg mornings")]
    assert _actions(draft)[len(before) :] == ["assessment.updated", "assessment.medication_added"]
    shown = client.get(page).content.decode()
    assert TYPED["support_notes"] in shown


def test_a_refused_medication_keeps_everything_typed(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(prescriber)

    response = press(
        client,
        reverse("assessment_detail", args=[draft.public_id]),
        action=reverse("assessment_medication_add", args=[draft.public_id]),
        typed={**TYPED, "name": "Sertraline", "medication_class": ""},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert TYPED["support_notes"] in body
    assert 'value="Sertraline"' in body
    assert 'value="128"' in body
    assert not AssessmentMedication.objects.filter(assessment=draft).exists()


def test_a_refused_draft_adds_no_medication_and_keeps_everything_typed(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(prescriber)
    before = _actions(draft)

    response = press(
        client,
        reverse("assessment_detail", args=[draft.public_id]),
        action=reverse("assessment_medication_add", args=[draft.public_id]),
        typed={**TYPED, "systolic": "9999", "name": "Sertraline", "medication_class": "benzodiazepine"},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert TYPED["support_notes"] in body
    assert 'value="9999"' in body
    assert 'value="Sertraline"' in body
    assert not AssessmentMedication.objects.filter(assessment=draft).exists()
    draft.refresh_from_db()
    assert draft.support_notes == ""
    assert _actions(draft) == before


def test_save_the_draft_adds_a_medication_typed_but_not_added(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(prescriber)

    response = press(
        client,
        reverse("assessment_detail", args=[draft.public_id]),
        action=reverse("assessment_detail", args=[draft.public_id]),
        typed={**TYPED, "name": "Zolpidem", "medication_class": "sedative_hypnotic"},
    )

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.support_notes == TYPED["support_notes"]
    assert list(draft.medications.values_list("name", flat=True)) == ["Zolpidem"]


def test_save_the_draft_with_the_medication_left_empty_adds_none(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    response = press(
        client_for(prescriber),
        reverse("assessment_detail", args=[draft.public_id]),
        action=reverse("assessment_detail", args=[draft.public_id]),
        typed=TYPED,
    )

    assert response.status_code == 302
    assert not AssessmentMedication.objects.filter(assessment=draft).exists()


def test_remove_medication_saves_the_draft_typed(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    medication = services.medication_add(
        actor=prescriber, assessment=draft, name="Sertraline", medication_class="benzodiazepine"
    )

    response = press(
        client_for(prescriber),
        reverse("assessment_detail", args=[draft.public_id]),
        action=reverse("assessment_medication_remove", args=[draft.public_id, medication.public_id]),
        typed=TYPED,
    )

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.support_notes == TYPED["support_notes"]
    assert not AssessmentMedication.objects.filter(assessment=draft).exists()


def test_sign_saves_the_draft_typed_and_signs_what_was_on_the_page(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    fill(draft, prescriber)
    client = client_for(prescriber)

    response = press(
        client,
        reverse("assessment_detail", args=[draft.public_id]),
        action=reverse("assessment_sign", args=[draft.public_id]),
        typed={"support_notes": TYPED["support_notes"], "decision": "eligible"},
    )

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == AssessmentStatus.SIGNED
    assert draft.support_notes == TYPED["support_notes"]


def test_a_refused_signature_keeps_the_reason_and_the_draft_typed(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    fill(draft, prescriber)

    response = press(
        client_for(prescriber),
        reverse("assessment_detail", args=[draft.public_id]),
        action=reverse("assessment_sign", args=[draft.public_id]),
        typed={"support_notes": TYPED["support_notes"], "decision": "not_eligible", "reason": ""},
    )

    assert response.status_code == 400
    assert TYPED["support_notes"] in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == AssessmentStatus.DRAFT


def test_a_post_without_the_page_fields_changes_only_its_own_part(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    """The medication's own fields alone (as before, or from another client) leave the draft as it is."""
    services.assessment_update(actor=prescriber, assessment=draft, support_notes="Kept.")

    response = client_for(prescriber).post(
        reverse("assessment_medication_add", args=[draft.public_id]),
        {"name": "Sertraline", "medication_class": "benzodiazepine"},
    )

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.support_notes == "Kept."
    assert draft.medications.count() == 1


def test_the_sign_off_typed_beside_an_added_medication_is_shown_again_until_signed(
    draft: Assessment, prescriber: User, client_for: Callable[[User | None], Client]
) -> None:
    fill(draft, prescriber)
    client = client_for(prescriber)
    page = reverse("assessment_detail", args=[draft.public_id])
    reason = "Low-risk anxiolytic only; reviewed with the GP."

    press(
        client,
        page,
        action=reverse("assessment_medication_add", args=[draft.public_id]),
        typed={"name": "Sertraline", "medication_class": "benzodiazepine", "reason": reason},
    )

    assert reason in client.get(page).content.decode()
    signed = press(
        client,
        page,
        action=reverse("assessment_sign", args=[draft.public_id]),
        typed={"decision": "eligible_with_precautions"},
    )
    assert signed.status_code == 302
    draft.refresh_from_db()
    assert draft.decision_reason == reason
    assert f"screening-unsent-sign-off-{draft.public_id}" not in client.session  # signed: nothing kept
