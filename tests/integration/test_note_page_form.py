"""No lost input on a draft integration note (issue 20): every button of the page (save, save and sign,
update a review, add an experiment) posts the whole page and saves everything typed on it through the
audited services, all or nothing; a refusal shows the page again with everything as typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from integration import services
from integration.models import Experiment
from integration.models import IntegrationNote
from kaemdr.models import AuditEvent
from kaemdr.models import User
from sessions.models import DosingSession

from ..page_form import press

pytestmark = pytest.mark.django_db

ANSWERS = {
    "perception_shift": "The memory felt further away, like a photograph.",
    "newly_possible": "Saying no to my brother without panic.",
    "free_notes": "Tearful at the start, settled by the end.",
}


@pytest.fixture
def note(
    dosing_pathway: Any, therapist: User, complete_session: Callable[..., DosingSession]
) -> IntegrationNote:
    complete_session(dosing_pathway)
    return services.note_open(actor=therapist, pathway=dosing_pathway)


@pytest.fixture
def earlier(note: IntegrationNote, therapist: User) -> tuple[IntegrationNote, Experiment]:
    """An experiment agreed in an earlier, signed note, and the next note's draft that reviews it."""
    experiment = services.experiment_add(
        actor=therapist, note=note, area="sleep", description="Bed by 23:00."
    )
    services.note_update(actor=therapist, note=note, perception_shift="Lighter.")
    services.note_sign(actor=therapist, note=note)
    return services.note_open(actor=therapist, pathway=note.pathway), experiment


def _writes(note: IntegrationNote) -> list[str]:
    return list(
        AuditEvent.objects.filter(patient_public_id=note.pathway.patient.public_id)
        .filter(action__startswith="integration.")
        .exclude(action__endswith="viewed")
        .order_by("pk")
        .values_list("action", flat=True)
    )


def test_add_experiment_saves_the_answers_typed_beside_it(
    note: IntegrationNote, therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(therapist)
    page = reverse("integration_note", args=[note.public_id])
    before = _writes(note)

    response = press(
        client,
        page,
        action=reverse("integration_experiment_add", args=[note.public_id]),
        typed={**ANSWERS, "area": "sleep", "description": "Phone out of the bedroom at 22:30."},
    )

    assert response.status_code == 302
    note.refresh_from_db()
    assert note.perception_shift == ANSWERS["perception_shift"]
    assert note.free_notes == ANSWERS["free_notes"]
    assert list(Experiment.objects.filter(pathway=note.pathway).values_list("description", flat=True)) == [
        "Phone out of the bedroom at 22:30."
    ]
    assert _writes(note)[len(before) :] == ["integration.note_updated", "integration.experiment_added"]
    assert ANSWERS["newly_possible"] in client.get(page).content.decode()


def test_a_refused_experiment_saves_nothing_and_keeps_everything_typed(
    note: IntegrationNote, therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    before = _writes(note)

    response = press(
        client_for(therapist),
        reverse("integration_note", args=[note.public_id]),
        action=reverse("integration_experiment_add", args=[note.public_id]),
        typed={**ANSWERS, "area": "", "description": "Walk to the harbour on Sundays."},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert ANSWERS["perception_shift"] in body
    assert "Walk to the harbour on Sundays." in body
    note.refresh_from_db()
    assert note.perception_shift == ""
    assert not Experiment.objects.filter(pathway=note.pathway).exists()
    assert _writes(note) == before


def test_updating_a_review_saves_the_answers_and_the_new_experiment_typed(
    earlier: tuple[IntegrationNote, Experiment],
    therapist: User,
    client_for: Callable[[User | None], Client],
) -> None:
    note, experiment = earlier

    response = press(
        client_for(therapist),
        reverse("integration_note", args=[note.public_id]),
        action=reverse("integration_experiment_review", args=[note.public_id, experiment.public_id]),
        typed={
            **ANSWERS,
            f"e{experiment.pk}-state": "tried",
            f"e{experiment.pk}-what_happened": "Managed four nights out of seven.",
            "area": "avoidance",
            "description": "Ten minutes' walk after lunch.",
        },
    )

    assert response.status_code == 302
    note.refresh_from_db()
    experiment.refresh_from_db()
    assert note.newly_possible == ANSWERS["newly_possible"]
    assert experiment.state == "tried"
    assert Experiment.objects.filter(
        pathway=note.pathway, description="Ten minutes' walk after lunch."
    ).exists()


def test_save_draft_keeps_a_review_and_an_experiment_typed_but_not_pressed(
    earlier: tuple[IntegrationNote, Experiment],
    therapist: User,
    client_for: Callable[[User | None], Client],
) -> None:
    note, experiment = earlier

    response = press(
        client_for(therapist),
        reverse("integration_note", args=[note.public_id]),
        action=reverse("integration_note_save", args=[note.public_id]),
        typed={
            **ANSWERS,
            f"e{experiment.pk}-state": "kept",
            f"e{experiment.pk}-what_happened": "In bed by eleven most nights now.",
            "area": "relationships",
            "description": "Call Sam on Thursdays.",
        },
    )

    assert response.status_code == 302
    experiment.refresh_from_db()
    assert experiment.state == "kept"
    assert Experiment.objects.filter(pathway=note.pathway, description="Call Sam on Thursdays.").exists()
    note.refresh_from_db()
    assert not note.is_signed


def test_save_draft_with_the_new_experiment_left_empty_adds_none(
    note: IntegrationNote, therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    response = press(
        client_for(therapist),
        reverse("integration_note", args=[note.public_id]),
        action=reverse("integration_note_save", args=[note.public_id]),
        typed=ANSWERS,
    )

    assert response.status_code == 302
    assert not Experiment.objects.filter(pathway=note.pathway).exists()
    note.refresh_from_db()
    assert note.free_notes == ANSWERS["free_notes"]


def test_save_and_sign_adds_the_experiment_typed_before_signing(
    note: IntegrationNote, therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    response = press(
        client_for(therapist),
        reverse("integration_note", args=[note.public_id]),
        action=reverse("integration_note_save", args=[note.public_id]),
        typed={**ANSWERS, "area": "sleep", "description": "No screens after ten."},
        button=("sign", "1"),
    )

    assert response.status_code == 302
    note.refresh_from_db()
    assert note.is_signed
    assert Experiment.objects.filter(pathway=note.pathway, description="No screens after ten.").exists()


def test_a_post_of_the_experiment_alone_leaves_the_answers_as_they_are(
    note: IntegrationNote, therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    services.note_update(actor=therapist, note=note, perception_shift="Kept.")

    response = client_for(therapist).post(
        reverse("integration_experiment_add", args=[note.public_id]),
        {"area": "sleep", "description": "Bed by 23:00."},
    )

    assert response.status_code == 302
    note.refresh_from_db()
    assert note.perception_shift == "Kept."
    assert Experiment.objects.filter(pathway=note.pathway).count() == 1
