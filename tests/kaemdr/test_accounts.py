"""Account safety beyond two-factor sign-in: password reset by email (throttled, saying nothing about
which addresses exist), the absolute session limit, signing out everywhere, and API tokens that
their owner lists and revokes. Each through the pages and the API, each audited."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from kaemdr.accounts import SIGNED_IN_AT_KEY
from kaemdr.models import AuditEvent
from kaemdr.models import User

from ..factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    cache.clear()


def actions_for(user: User) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_public_id=user.public_id)
        .order_by("id")
        .values_list("action", flat=True)
    )


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


# --- Password reset ---------------------------------------------------------------------------------


def request_reset(client: Client, email: str, **extra: Any) -> Any:
    return client.post(reverse("password_reset"), {"email": email}, **extra)


def test_a_password_reset_emails_a_link_that_sets_a_new_password_and_revokes_tokens(
    therapist: User, django_capture_on_commit_callbacks: Any
) -> None:
    _, token = AuthToken.objects.create(user=therapist)
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = request_reset(client, therapist.email.upper())
    assert response.status_code == 200
    assert "Check your email" in response.content.decode()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [therapist.email]
    link = re.search(r"http://\S+/accounts/set-password/\S+/", mail.outbox[0].body)
    assert link is not None
    path = link.group(0).split("://", 1)[1].split("/", 1)[1]
    form_page = client.get(f"/{path}", follow=True)
    assert "Choose your password" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else f"/{path}",
        {"new_password1": "a-new-long-passphrase-42", "new_password2": "a-new-long-passphrase-42"},
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("login")
    therapist.refresh_from_db()
    assert therapist.check_password("a-new-long-passphrase-42")
    assert not AuthToken.objects.filter(user=therapist).exists()
    assert token_client(token).get("/api/v1/pathways/").status_code == 401
    assert actions_for(therapist)[-2:] == ["auth.password_reset_requested", "auth.password_set"]
    # the link works once
    assert "has been used or has expired" in Client().get(f"/{path}", follow=True).content.decode()


def test_a_reset_says_the_same_for_unknown_inactive_and_invited_addresses(
    therapist: User, make_user: Callable[..., User], django_capture_on_commit_callbacks: Any
) -> None:
    inactive = make_user(is_active=False)
    invited = make_user()
    invited.set_unusable_password()
    invited.save()
    known = request_reset(Client(), therapist.email).content
    mail.outbox.clear()
    for email in ("nobody@example.org", inactive.email, invited.email):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = request_reset(Client(), email)
        assert response.status_code == 200
        assert response.content == known
        assert callbacks == []
    assert mail.outbox == []
    assert AuditEvent.objects.filter(action="auth.password_reset_requested").count() == 1


def test_reset_requests_are_limited_per_address_and_per_client(
    therapist: User, monitor: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        answers = [request_reset(Client(), therapist.email).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert len(mail.outbox) == 3
    refused = request_reset(Client(), therapist.email)
    assert "Too many requests" in refused.content.decode()
    # another address from another client is not held up by the first one's limit
    assert request_reset(Client(), monitor.email, REMOTE_ADDR="10.0.0.9").status_code == 200
    # one client trying many addresses is stopped too
    statuses = [
        request_reset(Client(), f"guess{n}@example.org", REMOTE_ADDR="10.0.0.7").status_code
        for n in range(21)
    ]
    assert statuses[:20] == [200] * 20
    assert statuses[20] == 429


def test_a_malformed_reset_address_is_refused_next_to_the_field() -> None:
    response = request_reset(Client(), "not an address")
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert mail.outbox == []


# --- Sessions ---------------------------------------------------------------------------------------


def test_signing_in_and_out_is_audited(monitor: User) -> None:
    client = Client()
    assert (
        client.post(reverse("login"), {"username": monitor.email, "password": TEST_PASSWORD}).status_code
        == 302
    )
    assert isinstance(client.session[SIGNED_IN_AT_KEY], int)
    client.post(reverse("logout"))
    assert actions_for(monitor)[-2:] == ["auth.signed_in", "auth.signed_out"]


def test_a_session_ends_at_its_absolute_limit_however_active(
    monitor: User, client_for: Callable[[User], Client], settings: Any
) -> None:
    client = client_for(monitor)
    assert client.get(reverse("dashboard")).status_code == 200
    session = client.session
    session[SIGNED_IN_AT_KEY] = int(time.time() - settings.SESSION_MAX_HOURS * 3600 - 5)
    session.save()
    ended = client.get(reverse("dashboard"))
    assert ended.status_code == 302
    assert ended["Location"].startswith(reverse("login"))
    login_page = client.get(ended["Location"]).content.decode()
    assert "Your session reached its time limit" in login_page
    assert "auth.session_expired" in actions_for(monitor)
    # the API, through the same session cookie, is signed out too
    assert client.get("/api/v1/pathways/").status_code in (401, 403)


def test_signing_out_everywhere_ends_other_sessions_and_tokens_but_not_this_one(
    therapist: User, client_for: Callable[[User], Client]
) -> None:
    here, elsewhere = client_for(therapist), client_for(therapist)
    _, token = AuthToken.objects.create(user=therapist)
    assert elsewhere.get(reverse("dashboard")).status_code == 200
    response = here.post(reverse("sign_out_everywhere"), follow=True)
    assert "Signed out of every other session and revoked 1 API token(s)." in response.content.decode()
    assert here.get(reverse("dashboard")).status_code == 200
    gone = elsewhere.get(reverse("dashboard"))
    assert gone.status_code == 302
    assert "You were signed out everywhere" in elsewhere.get(gone["Location"]).content.decode()
    assert token_client(token).get("/api/v1/pathways/").status_code == 401
    assert "auth.signed_out_everywhere" in actions_for(therapist)


def test_signing_out_everywhere_through_the_api_revokes_every_token(therapist: User) -> None:
    _, first = AuthToken.objects.create(user=therapist)
    _, second = AuthToken.objects.create(user=therapist)
    response = token_client(first).post("/api/v1/account/sign-out-everywhere/")
    assert response.status_code == 200
    assert response.json() == {"tokens_revoked": 2}
    assert token_client(second).get("/api/v1/pathways/").status_code == 401
    assert token_client(first).get("/api/v1/pathways/").status_code == 401


def test_sign_out_everywhere_is_a_post(therapist: User, client_for: Callable[[User], Client]) -> None:
    client = client_for(therapist)
    assert client.get(reverse("sign_out_everywhere")).status_code == 405
    assert client.get(reverse("dashboard")).status_code == 200


# --- API tokens ---------------------------------------------------------------------------------------


def issue_token(user: User) -> dict[str, Any]:
    response = APIClient().post("/api/v1/auth/token/", {"username": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 200, response.json()
    return dict(response.json())


def test_an_owner_lists_and_revokes_their_own_tokens(
    monitor: User, therapist: User, client_for: Callable[[User], Client]
) -> None:
    first, second = issue_token(monitor), issue_token(monitor)
    theirs = issue_token(therapist)
    listed = token_client(first["token"]).get("/api/v1/account/tokens/")
    assert listed.status_code == 200
    assert {row["token_key"] for row in listed.json()} == {first["token_key"], second["token_key"]}
    assert "token" not in listed.json()[0]  # the secret is shown once, at issue
    # another user's token is not found, through the API or the page
    assert (
        token_client(first["token"]).delete(f"/api/v1/account/tokens/{theirs['token_key']}/").status_code
        == 404
    )
    page = client_for(monitor)
    assert page.post(reverse("api_token_revoke", args=[theirs["token_key"]])).status_code == 404
    assert token_client(theirs["token"]).get("/api/v1/pathways/").status_code == 200
    # the owner revokes one through the API, the other from their account page
    assert (
        token_client(first["token"]).delete(f"/api/v1/account/tokens/{second['token_key']}/").status_code
        == 204
    )
    assert token_client(second["token"]).get("/api/v1/pathways/").status_code == 401
    account = page.get(reverse("account")).content.decode()
    assert first["token_key"][:8] in account
    assert second["token_key"][:8] not in account
    assert page.post(reverse("api_token_revoke", args=[first["token_key"]])).status_code == 302
    assert token_client(first["token"]).get("/api/v1/pathways/").status_code == 401
    assert actions_for(monitor).count("auth.api_token_issued") == 2
    assert actions_for(monitor).count("auth.api_token_revoked") == 2


def test_tokens_expire_and_are_capped_per_user(monitor: User, settings: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    issued = issue_token(monitor)
    AuthToken.objects.filter(token_key=issued["token_key"]).update(
        expiry=timezone.now() - dt.timedelta(seconds=1)
    )
    assert token_client(issued["token"]).get("/api/v1/pathways/").status_code == 401
    settings.KAEMDR_API_TOKENS_PER_USER = 3
    keys = [issue_token(monitor)["token_key"] for _ in range(4)]
    assert set(AuthToken.objects.filter(user=monitor).values_list("token_key", flat=True)) == set(keys[1:])
