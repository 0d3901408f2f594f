"""No lost input on an open follow-up's page (issue 20): the outcome typed beside "Write the integration
note" is posted with that button and kept (in the visitor's own server-side session) until the
follow-up is closed, rather than thrown away."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from integration.models import FollowUp
from integration.models import IntegrationNote
from kaemdr import permissions
from kaemdr.models import Role
from kaemdr.models import User
from sessions.models import DosingSession

from ..page_form import press

pytestmark = pytest.mark.django_db

OUTCOME = "Rang twice, booked the session for Thursday."


@pytest.fixture
def follow_up(dosing_pathway: Any, complete_session: Callable[..., DosingSession]) -> FollowUp:
    session = complete_session(dosing_pathway)
    return FollowUp.objects.get(dosing_session=session, kind="integration_session")


@pytest.fixture
def closing_therapist(therapist: User, monkeypatch: pytest.MonkeyPatch) -> User:
    """A therapist whose role may also close a follow-up by hand, so both forms share the page."""
    caps = permissions.ROLE_CAPABILITIES[Role.THERAPIST] | {permissions.Capability.FOLLOW_UP_CLOSE}
    monkeypatch.setitem(permissions.ROLE_CAPABILITIES, Role.THERAPIST, caps)
    return therapist


def test_the_outcome_typed_is_kept_when_the_integration_note_is_opened(
    follow_up: FollowUp, closing_therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(closing_therapist)
    page = reverse("follow_up_detail", args=[follow_up.public_id])

    response = press(
        client,
        page,
        action=reverse("integration_note_open", args=[follow_up.pathway.public_id]),
        typed={"outcome": OUTCOME},
    )

    note = IntegrationNote.objects.get(pathway=follow_up.pathway)
    assert response.status_code == 302
    assert response["Location"] == reverse("integration_note", args=[note.public_id])
    assert note.dosing_session_id == follow_up.dosing_session_id
    follow_up.refresh_from_db()
    assert follow_up.status == "open"  # opening the note closes nothing
    assert OUTCOME in client.get(page).content.decode()

    closed = press(client, page, action=page, typed={})
    assert closed.status_code == 302
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.outcome) == ("done", OUTCOME)
    assert not [
        key for key, _value in client.session.items() if key.startswith("integration-unsent-outcome-")
    ]


def test_an_outcome_for_another_pathways_follow_up_is_not_kept(
    follow_up: FollowUp,
    closing_therapist: User,
    client_for: Callable[[User | None], Client],
    other_clinic: Any,
) -> None:
    client = client_for(closing_therapist)
    client.post(
        reverse("integration_note_open", args=[follow_up.pathway.public_id]),
        {"follow_up": "not-a-uuid", "outcome": OUTCOME},
    )
    assert not [
        key for key, _value in client.session.items() if key.startswith("integration-unsent-outcome-")
    ]


def test_without_the_close_form_the_button_keeps_its_own_form(
    follow_up: FollowUp, therapist: User, client_for: Callable[[User | None], Client]
) -> None:
    page = client_for(therapist).get(reverse("follow_up_detail", args=[follow_up.public_id])).content.decode()
    assert "Write the integration note" in page
    assert 'id="follow-up-page"' not in page
