"""The health check: load balancers and the benchmark's floor reach it without a session, and it reads
nothing from the database (so it measures the server and the middleware alone)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_health_answers_ok_without_a_session_or_a_query(django_assert_num_queries: Any) -> None:
    client = Client()

    with django_assert_num_queries(0):
        response = client.get(reverse("health"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain"
    assert response.content == b"ok"
    assert "sessionid" not in response.cookies
