"""Pages for staff management, the audit log and signing in. Thin: selectors read, services write."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.encoding import force_str
from django.utils.html import format_html
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.http import require_POST
from django.views.generic import FormView

from . import accounts
from . import services
from . import sources
from .exceptions import error_citation
from .forms import PasswordResetRequestForm
from .forms import SignInForm
from .forms import StaffInviteForm
from .models import User
from .permissions import Capability
from .permissions import has_capability
from .selectors import get_staff_for_user_or_404
from .selectors import staff_qs_for_user


def request_user(request: HttpRequest) -> User:
    """The signed-in member of staff (every page but sign-in requires one, see the middleware)."""
    return request.user  # type: ignore[return-value]


def require_capability(request: HttpRequest, capability: Capability) -> None:
    """404 for a role that may not use the page: forbidden looks the same as missing."""
    if not has_capability(request.user, capability):
        raise Http404()


def not_for_your_role(request: HttpRequest, *, title: str, explanation: str) -> HttpResponse:
    """A whole page the user's role may not use (not a record: those stay 404), explained: who can,
    and where to go instead. 403, and nothing is read or written."""
    context = {"title": title, "explanation": explanation}
    return render(request, "kaemdr/not_for_your_role.html", context, status=403)


def form_errors_from(form: Any, error: ValidationError, *, field_map: dict[str, str] | None = None) -> None:
    """Attach a service's `ValidationError` to the form, field by field where it names fields.

    `field_map` renames a service's field to the form's (a service's `starts_at` is the form's time).
    """
    if hasattr(error, "error_dict"):
        for field, field_errors in error.error_dict.items():
            field = (field_map or {}).get(field, field)
            form.add_error(field if field in form.fields else None, [_with_source(e) for e in field_errors])
    else:
        form.add_error(None, [_with_source(e) for e in error.error_list])


def _with_source(error: ValidationError) -> ValidationError:
    """A rule's refusal as the page shows it: what to do, then the source that asks for it, in plain
    words with its link (the refusal's own citation, else its code's in the catalogue)."""
    citation = error_citation(error)
    if citation is None:
        return error
    message = " ".join(error.messages)
    if citation.url:
        shown = format_html('{} (Source: <a href="{}">{}</a>.)', message, citation.url, citation.text)
    else:
        shown = format_html("{} (Source: {}.)", message, citation.text)
    return ValidationError(shown, code=error.code)


def rule_sources(request: HttpRequest) -> HttpResponse:
    """Where the clinical rules come from: every source the rules cite, with its link, and the codes of
    the rules that cite it (the codes the API's errors carry). Reference material, no patient data."""
    return render(
        request,
        "kaemdr/rule_sources.html",
        {"bibliography": sources.bibliography(), "title": "Sources of the clinical rules"},
    )


@login_not_required
def health(request: HttpRequest) -> HttpResponse:
    """`ok` for load balancers and the benchmark's floor: no session, no query, no template, so it
    shows the cost of the server and the middleware alone."""
    return HttpResponse("ok", content_type="text/plain")


@method_decorator(login_not_required, name="dispatch")
class SignInView(auth_views.LoginView):
    form_class = SignInForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["session_ended"] = self.request.session.pop(accounts.ENDED_KEY, None)
        return context


@login_not_required
def password_reset_request(request: HttpRequest) -> HttpResponse:
    """Ask for a link to choose a new password. The answer is the same whether or not the address
    is known; too many requests (per address, per client) are refused for a while."""
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        if accounts.password_reset_limited(request, email):
            form.add_error(None, "Too many requests for a new password. Try again in an hour.")
            context = {"form": form, "title": "Forgotten password"}
            return render(request, "registration/password_reset_request.html", context, status=429)
        accounts.password_reset_request(email=email)
        return render(request, "registration/password_reset_sent.html", {"title": "Check your email"})
    status = 400 if form.errors else 200
    context = {"form": form, "title": "Forgotten password"}
    return render(request, "registration/password_reset_request.html", context, status=status)


@method_decorator(login_not_required, name="dispatch")
class PasswordSetView(auth_views.PasswordResetConfirmView):
    """Where an invited member of staff, or one who asked for a reset, chooses a password. The link
    carries their public id."""

    template_name = "registration/password_set.html"
    post_reset_login = False

    def get_user(self, uidb64: str) -> User | None:
        try:
            public_id = force_str(urlsafe_base64_decode(uidb64))
            return User.objects.get(public_id=public_id, is_active=True)
        except (TypeError, ValueError, OverflowError, User.DoesNotExist, ValidationError):
            return None

    def get_success_url(self) -> str:
        return reverse("login")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        accounts.password_set(user=form.user)
        messages.success(self.request, "Your password is set. Sign in with your email and new password.")
        return response


def staff_list(request: HttpRequest) -> HttpResponse:
    require_capability(request, Capability.STAFF_MANAGE)
    staff = list(staff_qs_for_user(request.user))  # type: ignore[arg-type]
    return render(request, "kaemdr/staff_list.html", {"staff": staff, "title": "Staff"})


class StaffInviteView(FormView):
    form_class = StaffInviteForm
    template_name = "kaemdr/staff_form.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        require_capability(request, Capability.STAFF_MANAGE)
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form: StaffInviteForm) -> HttpResponse:
        try:
            user = services.staff_invite(actor=self.request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except ValidationError as error:
            form_errors_from(form, error)
            return self.form_invalid(form)
        messages.success(
            self.request,
            f"{user.full_name} was added as {user.get_role_display().lower()}. "
            "An invitation to set a password is on its way.",
        )
        return HttpResponseRedirect(reverse("staff_list"))


@require_POST
def staff_deactivate(request: HttpRequest, public_id: str) -> HttpResponse:
    require_capability(request, Capability.STAFF_MANAGE)
    member = get_staff_for_user_or_404(request.user, public_id)  # type: ignore[arg-type]
    try:
        services.staff_deactivate(actor=request.user, user=member)  # type: ignore[arg-type]
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{member.full_name} can no longer sign in.")
    return HttpResponseRedirect(reverse("staff_list"))


@require_POST
def staff_reactivate(request: HttpRequest, public_id: str) -> HttpResponse:
    require_capability(request, Capability.STAFF_MANAGE)
    member = get_staff_for_user_or_404(request.user, public_id)  # type: ignore[arg-type]
    services.staff_reactivate(actor=request.user, user=member)  # type: ignore[arg-type]
    messages.success(request, f"{member.full_name} can sign in again.")
    return HttpResponseRedirect(reverse("staff_list"))
