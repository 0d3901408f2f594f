"""Input at the edges never answers 500 (issue 18): an over-long email at sign-in is a failed sign-in,
and audit-log dates outside the log's span are refused next to the field (page) or in the error body
(API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from kaemdr.models import Role
from kaemdr.models import User

pytestmark = pytest.mark.django_db

LONG_EMAIL = "a" * 300 + "@example.org"


@pytest.mark.parametrize("email", [LONG_EMAIL, "b" * 255, "c" * 243 + "@example.org"])
def test_an_over_long_email_is_a_failed_sign_in_on_the_page(email: str, staff: dict[str, User]) -> None:
    response = Client().post(reverse("login"), {"username": email, "password": "not-the-password"})
    assert response.status_code == 200
    assert "Please enter a correct email and password" in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated


@pytest.mark.parametrize("email", [LONG_EMAIL, "b" * 255])
def test_an_over_long_email_is_refused_by_the_token_endpoint(email: str, staff: dict[str, User]) -> None:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": email, "password": "not-the-password"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "username"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"occurred_to": "9999-12-31"}, "occurred_to"),
        ({"occurred_from": "0001-01-01"}, "occurred_from"),
        ({"occurred_from": "1999-12-31", "occurred_to": "3000-01-01"}, "occurred_from"),
    ],
)
def test_audit_log_dates_outside_its_span_are_refused_not_a_500(
    query: dict[str, str], field: str, staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    admin = staff[Role.CLINIC_ADMIN]
    page = client_for(admin).get(reverse("audit_log"), query)
    assert page.status_code in (200, 400)
    assert "Choose a date" in page.content.decode()
    api = APIClient()
    api.force_authenticate(admin)
    response = api.get("/api/v1/audit-events/", query)
    assert response.status_code == 400
    assert field in {error["field"] for error in response.json()["errors"]}


def test_the_widest_accepted_dates_still_list_the_log(
    staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    admin = staff[Role.CLINIC_ADMIN]
    query: dict[str, Any] = {"occurred_from": "2000-01-01", "occurred_to": "2999-12-31"}
    assert client_for(admin).get(reverse("audit_log"), query).status_code == 200
    api = APIClient()
    api.force_authenticate(admin)
    assert api.get("/api/v1/audit-events/", query).status_code == 200
