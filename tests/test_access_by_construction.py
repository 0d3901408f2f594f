"""Access by construction: every URL the project serves is walked, so that a new view without access
control fails here, whoever forgets it.

- Every route but a short, explained list of public ones answers an anonymous visitor with the
  sign-in redirect (pages) or 401/403 (API), for GET and POST alike.
- Every route that takes an id is called with the id of another clinic's object, by every role of
  this clinic, GET and POST: the answer is 404 (or 405 for a method the route does not have, which
  tells nothing), and nothing is written. A route whose kind of object this test does not know
  fails, until it is added to `RESOURCE_OF_SEGMENT`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from kaemdr.models import Role
from kaemdr.models import User

from .access import PLACEHOLDER
from .access import fill
from .access import one_of_everything
from .access import record_audit_events
from .access import routes
from .access import snapshot
from .access import world_values
from .factories import UserFactory

pytestmark = pytest.mark.django_db

# Routes anyone may open, and why.
PUBLIC = {
    "login": "the sign-in page",
    "logout": "signing out needs no session",
    "password_reset": "asking for a password-reset email (throttled; says nothing about the address)",
    "password_set": "an invited member of staff chooses a password from the emailed link (token-checked)",
    "room_calendar_feed": "calendar apps cannot sign in; a private token guards each feed (initials only)",
    "api-token": "exchanging an email and password for an API token",
    "health": "load balancers and the benchmark probe it; it answers `ok` and reads nothing",
}


def dummy(name: str, before: str) -> str:
    return {
        "token": "x" * 20,
        "instrument": "phq9",
        "action": "vitals",
        "uidb64": "MQ",
        "token_key": "abcd1234",
    }.get(name, str(uuid.uuid4()))


def test_every_route_but_the_public_ones_requires_sign_in(client: Client) -> None:
    api = APIClient()
    checked = 0
    for name, route in routes():
        if name in PUBLIC:
            continue
        path = fill(route, dummy)
        for method in ("get", "post"):
            if path.startswith("/api/"):
                response = getattr(api, method)(path)
                assert response.status_code in (401, 403), (name, method, response.status_code)
            else:
                response = getattr(client, method)(path)
                assert response.status_code == 302, (name, method, response.status_code)
                assert response["Location"].startswith("/accounts/login/"), (name, response["Location"])
            checked += 1
    assert checked > 200  # the walk found the routes


@pytest.fixture
def foreign(
    other_clinic: Any,
    settings: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> dict[str, Any]:
    """One of everything, in another clinic, made through the services."""
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    team = {role: UserFactory(clinic=other_clinic, role=role) for role in Role.values}
    return one_of_everything(other_clinic, team, django_capture_on_commit_callbacks)


def test_every_route_with_an_id_answers_404_for_another_clinics_object(
    staff: dict[str, User], foreign: dict[str, Any], client_for: Callable[[User | None], Client]
) -> None:
    unknown: list[str] = []
    foreign_value = world_values(foreign, unknown)

    with_ids = [
        (name, fill(route, foreign_value))
        for name, route in routes()
        if name not in PUBLIC
        and PLACEHOLDER.search(route)
        # pathway_measure is added below; my_pathways_in_stage names a stage, not an object, and
        # lists only the user's own pathways (tests/pathways/test_views.py)
        and name not in ("pathway_measure", "my_pathways_in_stage")
    ]
    assert unknown == [], f"routes with ids of an unknown kind: {unknown}"
    # pathway_measure takes a pathway id and an instrument: included through the same mapping
    with_ids += [("pathway_measure", f"/screening/pathways/{foreign['pathway'].public_id}/measures/phq9/")]
    assert len(with_ids) > 80
    before = snapshot()
    audit_before = record_audit_events()
    for user in staff.values():
        client = client_for(user)
        api = APIClient()
        api.force_authenticate(user)
        for name, path in with_ids:
            for method in ("get", "post"):
                caller = api if path.startswith("/api/") else client
                response = getattr(caller, method)(path)
                assert response.status_code in (404, 405), (
                    user.role,
                    name,
                    method,
                    path,
                    response.status_code,
                )
    assert snapshot() == before
    assert record_audit_events() == audit_before  # nothing seen, nothing written
