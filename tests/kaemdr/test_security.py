"""Security basics: sign-in everywhere, idle sessions, lock-out after failures, production settings."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client
from django.urls import URLPattern
from django.urls import URLResolver
from django.urls import get_resolver
from django.urls import reverse
from django.utils import timezone

from kaemdr.models import User
from kaemdr.models import UserSession as Session

from ..conftest import sign_in_verified
from ..factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

# The room feed is reached by calendar clients with a secret token instead of a session; load balancers
# probe the health check without one.
PUBLIC_PAGES = {"login", "password_reset", "password_set", "room_calendar_feed", "health"}
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def _page_patterns() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append((pattern.name or "", prefix + str(pattern.pattern)))

    walk(get_resolver().url_patterns, "")
    return [(name, route) for name, route in found if not route.startswith(("admin/", "api/"))]


def test_every_page_but_sign_in_requires_login() -> None:
    client = Client()
    checked = 0
    for name, route in _page_patterns():
        if name in PUBLIC_PAGES:
            continue
        # a regular expression's group (a token's prefix) as a value it matches
        route = re.sub(r"\(\?P<\w+>[^)]*\)", "abcd1234", route.replace("^", "").replace("$", ""))
        path = "/" + re.sub(r"<str:\w+>", "phq9", re.sub(r"<uuid:\w+>", ZERO_UUID, route))
        path = re.sub(r"<\w+>", "x", path)
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(reverse("login")), path
        checked += 1
    assert checked >= 15


def test_the_api_and_its_schema_need_a_signed_in_user() -> None:
    """DRF answers for its own views (the schema and its docs included): 401 without a session or token."""
    client = Client()
    for path in (
        "/api/schema/",
        "/api/docs/",
        "/api/redoc/",
        "/api/v1/patients/",
        "/api/v1/emdr-plans/",
        "/api/v1/bookings/",
    ):
        assert client.get(path).status_code == 401, path


def test_sessions_expire_after_idle_minutes(prescriber: User) -> None:
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_IDLE_MINUTES * 60 == 30 * 60
    client = Client()
    sign_in_verified(client, prescriber)
    key = client.session.session_key
    # Twenty-five idle minutes later: five minutes of the session are left.
    session = client.session
    session["kaemdr_last_seen"] = int(time.time()) - 25 * 60
    session.save()
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() + dt.timedelta(minutes=5))

    assert client.get(reverse("dashboard")).status_code == 200
    pushed = Session.objects.get(session_key=key).expire_date - timezone.now()
    assert dt.timedelta(minutes=29) < pushed <= dt.timedelta(minutes=30)  # activity keeps it alive

    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    if hasattr(store, "cache_key"):  # with Redis, the cached copy lapses with the row (its timeout)
        caches[settings.SESSION_CACHE_ALIAS].delete(store.cache_key)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_is_throttled_after_repeated_failures(prescriber: User) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(reverse("login"), {"username": prescriber.email, "password": "wrong-password"})
        assert response.status_code == 200
        assert "Please enter a correct email and password" in response.content.decode()
    assert (
        client.post(reverse("login"), {"username": prescriber.email, "password": "wrong"}).status_code == 429
    )
    locked = client.post(reverse("login"), {"username": prescriber.email, "password": TEST_PASSWORD})
    assert locked.status_code == 429
    assert "Sign-in is locked for now" in locked.content.decode()


def test_login_with_email_and_password(prescriber: User) -> None:
    client = Client()
    response = client.post(reverse("login"), {"username": prescriber.email, "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")


def test_production_settings_pass_the_deploy_check() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "kaemdr.settings.production",
        "DJANGO_SECRET_KEY": "x" * 30 + "-production-secret-from-the-environment-0123456789",
        "DJANGO_ALLOWED_HOSTS": "kaemdr.example.org",
        "DATABASE_URL": "sqlite:///:memory:",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(
        {"DJANGO_SETTINGS_MODULE": "kaemdr.settings.production", "DJANGO_ALLOWED_HOSTS": "x.example.org"}
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_bootstrap_is_served_locally(prescriber: User) -> None:
    client = Client()
    sign_in_verified(client, prescriber)
    body = client.get(reverse("dashboard")).content.decode()
    assert "/static/bootstrap/css/bootstrap.min.css" in body
    assert "cdn" not in body.lower()
    assert '<html lang="en-GB">' in body
