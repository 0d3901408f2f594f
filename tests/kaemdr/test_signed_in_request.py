"""What a signed-in request costs and sees: its session, its user and their clinic in one statement
(`kaemdr.session_store`), never from the cache, so every change to the user or their clinic is seen
by the very next request, however it was made.

The changes run with the real Redis cache in use (`ForgivingRedisCache` on the test Redis), as
production has it: nothing the request reads about its user may come from there.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from kaemdr import accounts
from kaemdr import services
from kaemdr import two_factor
from kaemdr.models import Clinic
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.models import UserSession

from ..conftest import require_redis
from ..factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def redis_cache(settings: Any) -> Iterator[None]:
    """The cache on the test Redis, as in production."""
    settings.CACHES = {
        "default": {"BACKEND": "kaemdr.cache.ForgivingRedisCache", "LOCATION": require_redis()}
    }
    cache.clear()
    yield
    cache.clear()


def _warm(client: Client, path: str) -> None:
    """A first request: it may refresh the session's idle expiry (a write, once a minute)."""
    assert client.get(path).status_code == 200


def test_a_signed_in_request_reads_its_session_user_and_clinic_in_one_query(
    monitor: User, client_for: Callable[[User], Client], django_assert_num_queries: Any
) -> None:
    client = client_for(monitor)
    _warm(client, reverse("health"))
    with django_assert_num_queries(1) as captured:
        assert client.get(reverse("health")).status_code == 200
    # The session read (on PostgreSQL, the EXECUTE of the statement prepared for it) is the only one.
    assert "kaemdr_usersession" in captured.captured_queries[0]["sql"]


def test_a_session_row_names_the_user_signed_in_to_it(monitor: User) -> None:
    client = Client()
    assert (
        client.post(reverse("login"), {"username": monitor.email, "password": TEST_PASSWORD}).status_code
        == 302
    )
    key = client.cookies["sessionid"].value
    assert UserSession.objects.get(session_key=key).user_id == monitor.pk
    client.post(reverse("logout"))
    assert not UserSession.objects.filter(session_key=key).exists()
    assert not UserSession.objects.filter(user_id=monitor.pk).exists()


def test_the_session_row_alone_never_signs_anyone_in(
    monitor: User, clinic_admin: User, client_for: Callable[[User], Client]
) -> None:
    """The row's user is only where to look: the session's signed data names the user, and Django
    checks their password-derived hash."""
    client = client_for(monitor)
    key = client.cookies["sessionid"].value
    UserSession.objects.filter(session_key=key).update(user_id=clinic_admin.pk)
    assert client.get(reverse("staff_list")).status_code in (403, 404)  # still the monitor
    assert client.session[SESSION_KEY] == str(monitor.pk)
    UserSession.objects.filter(session_key=key).update(user_id=None)
    assert client.get(reverse("dashboard")).status_code == 200  # found by a query of its own


def _deactivate(user: User, admin: User) -> None:
    services.staff_deactivate(actor=admin, user=user)


def _demote(user: User, admin: User) -> None:
    # A write that bypasses every service (the Django admin, a shell): seen all the same.
    User.objects.filter(pk=user.pk).update(role=Role.THERAPIST)


def _sign_out_everywhere(user: User, admin: User) -> None:
    accounts.sign_out_everywhere(actor=user)


def _reset_two_factor(user: User, admin: User) -> None:
    two_factor.two_factor_reset(actor=admin, member=user)


def _change_password(user: User, admin: User) -> None:
    user.set_password("an-entirely-new-password-1")
    user.save(update_fields=["password"])


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        (_deactivate, "signed out"),
        (_demote, "not allowed"),
        (_sign_out_everywhere, "signed out"),
        (_reset_two_factor, "two-factor set-up"),
        (_change_password, "signed out"),
    ],
    ids=["deactivated", "role changed", "signed out everywhere", "two-factor reset", "password changed"],
)
def test_the_very_next_request_sees_a_change_to_its_user(
    change: Callable[[User, User], None],
    seen: str,
    staff: dict[str, User],
    make_user: Callable[..., User],
    client_for: Callable[[User], Client],
) -> None:
    # Given a clinic admin (two-factor required) signed in, on a page only clinic admins open
    admin = staff[Role.CLINIC_ADMIN]
    member = make_user(role=Role.CLINIC_ADMIN, clinic=admin.clinic)
    client = client_for(member)
    _warm(client, reverse("staff_list"))
    assert client.get(reverse("staff_list")).status_code == 200

    # When their account changes
    change(member, admin)

    # Then their very next request sees it
    response = client.get(reverse("staff_list"))
    if seen == "signed out":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    elif seen == "two-factor set-up":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("two_factor_setup"))
    else:
        assert response.status_code in (403, 404)


def test_the_very_next_request_sees_a_change_to_the_clinic(
    monitor: User, client_for: Callable[[User], Client]
) -> None:
    client = client_for(monitor)
    _warm(client, reverse("dashboard"))
    Clinic.objects.filter(pk=monitor.clinic_id).update(two_factor_for_everyone=True)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor_setup"))
