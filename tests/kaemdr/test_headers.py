"""Response headers and API throttling: a strict Content Security Policy with no inline script or
style, frame denial, no sniffing, a referrer policy, a permissions policy; limits per user and per
token."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle

from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.throttling import TokenRateThrottle

pytestmark = pytest.mark.django_db


def policy(response: Any) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().split(" ", 1)[1] if " " in part.strip() else ""
        for part in response["Content-Security-Policy"].split(";")
        if part.strip()
    }


def test_pages_carry_a_strict_policy_and_the_other_headers(
    staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    for url in (reverse("dashboard"), reverse("login"), reverse("follow_up_list")):
        response = client_for(staff[Role.PRESCRIBER] if url != reverse("login") else None).get(url)
        directives = policy(response)
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["object-src"] == "'none'"
        assert "unsafe" not in response["Content-Security-Policy"]
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert "camera=()" in response["Permissions-Policy"]
        assert "geolocation=()" in response["Permissions-Policy"]


def test_only_the_api_documentation_relaxes_styles(
    staff: dict[str, User], client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(staff[Role.PRESCRIBER])
    for url in ("/api/docs/", "/api/redoc/"):
        response = client.get(url)
        assert response.status_code == 200
        assert "'unsafe-inline'" in policy(response)["style-src"]
        assert policy(response)["script-src"] == "'self'"
        assert "fonts.googleapis.com" not in response.content.decode()  # assets are served locally


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=\"|\son[a-z]+=\"", re.IGNORECASE)


def test_no_page_template_has_inline_script_style_or_event_handlers() -> None:
    """By construction: a new template with an inline script, style or handler fails here (the PDF
    templates are not web pages, and are left out)."""
    root = Path(settings.BASE_DIR) / "templates"
    offenders = []
    for path in root.rglob("*.html"):
        if "pdf" in path.relative_to(root).parts:
            continue
        text = path.read_text()
        if INLINE_SCRIPT.search(text) or INLINE_STYLE.search(text):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []


@pytest.fixture
def low_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    cache.clear()
    monkeypatch.setattr(UserRateThrottle, "rate", "6/minute", raising=False)
    monkeypatch.setattr(TokenRateThrottle, "rate", "3/minute", raising=False)


def test_the_api_is_throttled_per_token_and_per_user(staff: dict[str, User], low_limits: None) -> None:
    prescriber = staff[Role.PRESCRIBER]
    _, token = AuthToken.objects.create(user=prescriber)
    with_token = APIClient()
    with_token.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert [with_token.get("/api/v1/patients/").status_code for _ in range(4)] == [200, 200, 200, 429]
    limited = with_token.get("/api/v1/patients/").json()
    assert limited["status"] == 429
    assert limited["code"] == "throttled"
    session = APIClient()
    session.force_authenticate(prescriber)
    # the token's limit is its own; the user's covers every way in (5 calls counted so far)
    assert [session.get("/api/v1/patients/").status_code for _ in range(2)] == [200, 429]
    other = APIClient()
    other.force_authenticate(staff[Role.MONITOR])
    assert other.get("/api/v1/patients/").status_code == 200
