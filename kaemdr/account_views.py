"""Account pages: two-factor sign-in (verify after the password, set up an authenticator from a QR
code, recovery codes shown once, a clinic admin's reset of a colleague's device), and the account
page with its API tokens and "sign out everywhere"."""

from __future__ import annotations

import base64
import datetime as dt
import io
from typing import Any

import segno
from crispy_forms.helper import FormHelper
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import accounts
from . import two_factor
from .permissions import Capability
from .permissions import two_factor_required
from .selectors import get_staff_for_user_or_404
from .views import form_errors_from
from .views import request_user
from .views import require_capability

RECOVERY_SESSION_KEY = "kaemdr_new_recovery_codes"


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("dashboard")


def verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a code from the authenticator app, or a recovery code."""
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if two_factor.verify(request=request, token=form.cleaned_data["code"]):
            return HttpResponseRedirect(_next(request))
        form.add_error("code", "That code is not right. Use the current one, or one of your recovery codes.")
    context = {"title": "Two-factor sign-in", "form": form, "next": _next(request)}
    return render(request, "registration/two_factor_verify.html", context, status=400 if form.errors else 200)


def _qr_data_uri(config_url: str) -> str:
    # A standalone SVG document: an <img> shows SVG only with its namespace, which `svg_inline` leaves out.
    svg = io.BytesIO()
    segno.make(config_url, error="m").save(
        svg, kind="svg", xmldecl=False, scale=5, border=2, dark="#111", light="#fff"
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()


def setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the QR code (or type the secret), then give a code from it."""
    user = request_user(request)
    device = two_factor.pending_device(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            enrolment = two_factor.totp_confirm(request=request, token=form.cleaned_data["code"])
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            request.session[RECOVERY_SESSION_KEY] = enrolment.recovery_codes
            return HttpResponseRedirect(f"{reverse('two_factor_recovery_codes')}?next={_next(request)}")
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    context = {
        "title": "Set up two-factor sign-in",
        "form": form,
        "qr": _qr_data_uri(device.config_url),
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "required": two_factor_required(user),
        "next": _next(request),
    }
    return render(request, "registration/two_factor_setup.html", context, status=400 if form.errors else 200)


def recovery_codes(request: HttpRequest) -> HttpResponse:
    """The new recovery codes, shown once."""
    codes = request.session.pop(RECOVERY_SESSION_KEY, None)
    if not codes:
        return HttpResponseRedirect(reverse("account"))
    context = {"title": "Your recovery codes", "codes": codes, "next": _next(request)}
    return render(request, "registration/two_factor_recovery_codes.html", context)


def account(request: HttpRequest) -> HttpResponse:
    """The signed-in user's account: two-factor sign-in and its recovery codes, this session, the
    API tokens, and signing out everywhere."""
    user = request_user(request)
    signed_in_at = request.session.get(accounts.SIGNED_IN_AT_KEY)
    context = {
        "title": "Your account",
        "has_device": two_factor.has_device(user),
        "required": two_factor_required(user),
        "signed_in_at": dt.datetime.fromtimestamp(signed_in_at, tz=dt.UTC) if signed_in_at else None,
        "session_max_hours": settings.SESSION_MAX_HOURS,
        "tokens": accounts.api_tokens_for(user),
    }
    return render(request, "kaemdr/account.html", context)


@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """End the user's other sessions and revoke their API tokens; this one stays signed in."""
    result = accounts.sign_out_everywhere(actor=request_user(request))
    accounts.keep_session(request, result)
    revoked = f" and revoked {result.tokens_revoked} API token(s)" if result.tokens_revoked else ""
    messages.success(request, f"Signed out of every other session{revoked}.")
    return HttpResponseRedirect(reverse("account"))


@require_POST
def token_revoke(request: HttpRequest, token_key: str) -> HttpResponse:
    accounts.api_token_revoke(actor=request_user(request), token_key=token_key)
    messages.success(request, "The API token is revoked.")
    return HttpResponseRedirect(reverse("account"))


@require_POST
def recovery_codes_regenerate(request: HttpRequest) -> HttpResponse:
    try:
        request.session[RECOVERY_SESSION_KEY] = two_factor.recovery_codes_regenerate(
            actor=request_user(request)
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(reverse("account"))
    return HttpResponseRedirect(reverse("two_factor_recovery_codes"))


@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    try:
        two_factor.two_factor_disable(actor=request_user(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Two-factor sign-in is off.")
    return HttpResponseRedirect(reverse("account"))


@require_POST
def staff_reset(request: HttpRequest, public_id: str) -> HttpResponse:
    """A clinic admin resets a colleague's two-factor sign-in (a lost phone)."""
    require_capability(request, Capability.STAFF_MANAGE)
    member = get_staff_for_user_or_404(request_user(request), public_id)
    try:
        two_factor.two_factor_reset(actor=request_user(request), member=member)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, f"{member.full_name} sets up two-factor sign-in again at their next sign-in."
        )
    return HttpResponseRedirect(reverse("staff_list"))
