"""Per-request context: a request id for the audit trail and the clinic's time zone for display."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from .request_context import reset_request_id
from .request_context import set_request_id
from .session_store import reading_user_of

_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_LAST_SEEN_KEY = "kaemdr_last_seen"


class RequestContextMiddleware:
    """Tags the request with an id (kept from `X-Request-ID` when well formed) and activates the
    signed-in user's clinic time zone, so every date on a page is in the clinic's local time."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        token = set_request_id(incoming if _REQUEST_ID_PATTERN.match(incoming) else None)
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        clinic = getattr(user, "clinic", None) if signed_in else None
        if clinic is not None:
            timezone.activate(clinic.zone)
        if signed_in:
            _keep_session_alive(request)
        try:
            response = self.get_response(request)
        finally:
            timezone.deactivate()
            reset_request_id(token)
        return response


def _keep_session_alive(request: HttpRequest) -> None:
    """Push the idle expiry forward when the session was last refreshed over a minute ago.

    Saving on every request (SESSION_SAVE_EVERY_REQUEST) costs three queries per page; refreshing
    once a minute keeps the idle limit to within a minute for a fraction of that.
    """
    now = int(time.time())
    last = request.session.get(_LAST_SEEN_KEY, 0)
    if not isinstance(last, int) or now - last >= settings.SESSION_REFRESH_SECONDS:
        request.session[_LAST_SEEN_KEY] = now


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's `request.user`, found by Django's `get_user` (the session's user, backend and
    password-derived hash all checked as ever), with the user read in the same statement as the
    session (`kaemdr.session_store`) rather than by a query of their own."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _signed_in_user(request))  # type: ignore[assignment]


def _signed_in_user(request: HttpRequest) -> Any:
    if not hasattr(request, "_cached_user"):
        with reading_user_of(request.session):
            request._cached_user = auth.get_user(request)  # type: ignore[attr-defined]
    return request._cached_user  # type: ignore[attr-defined]


class SessionLimitsMiddleware:
    """Ends a signed-in session past its absolute limit or after its owner signed out everywhere
    (`kaemdr.accounts`), before any view runs: the request goes on anonymous, so a page redirects
    to sign-in (which says why) and the API answers 401."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from .accounts import session_end
        from .accounts import session_end_reason

        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            reason = session_end_reason(request, user)
            if reason is not None:
                session_end(request, user, reason)
        return self.get_response(request)


class PagesLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Django's login-required default for every page; the API answers for itself (session or
    token authentication, with a JSON 401/403 rather than a redirect to the login page)."""

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class TwoFactorMiddleware:
    """After the password, the second factor: a signed-in user who must pass one (or set one up)
    reaches no page but the verify or set-up page and signing out. The API checks for itself
    (`kaemdr.api_permissions.SecondFactorPassed`)."""

    EXEMPT = frozenset({"two_factor_verify", "two_factor_setup", "two_factor_recovery_codes", "logout"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        from django.shortcuts import redirect
        from django.urls import reverse
        from django.utils.http import urlencode

        from .two_factor import needs_second_factor

        if request.path_info.startswith("/api/"):
            return None
        match = request.resolver_match
        if match is not None and match.url_name in self.EXEMPT:
            return None
        step = needs_second_factor(request)
        if step is None:
            return None
        return redirect(f"{reverse(f'two_factor_{step}')}?{urlencode({'next': request.get_full_path()})}")
