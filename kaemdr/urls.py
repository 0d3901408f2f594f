"""The project's URLs. Each app's pages and API routes are included by name, so imports stay one way."""

from __future__ import annotations

from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include
from django.urls import path
from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView
from drf_spectacular.views import SpectacularRedocView
from drf_spectacular.views import SpectacularSwaggerSplitView

from . import account_views
from . import views
from .api import TOKEN_KEY_PATTERN

DOCS_STYLES = csp_update({"style-src": ["'unsafe-inline'"]})

admin.site.site_header = "kaemdr platform admin"

# Under /api/ these answer the API's error body (JSON), elsewhere the pages (`kaemdr.api`).
handler404 = "kaemdr.api.not_found"
handler500 = "kaemdr.api.server_error"

urlpatterns = [
    path("healthz", views.health, name="health"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password-reset/", views.password_reset_request, name="password_reset"),
    path("accounts/set-password/<uidb64>/<token>/", views.PasswordSetView.as_view(), name="password_set"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(template_name="registration/password_change.html"),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="registration/password_change_done.html"),
        name="password_change_done",
    ),
    path("accounts/two-factor/", account_views.verify, name="two_factor_verify"),
    path("accounts/two-factor/setup/", account_views.setup, name="two_factor_setup"),
    path(
        "accounts/two-factor/recovery-codes/",
        account_views.recovery_codes,
        name="two_factor_recovery_codes",
    ),
    path(
        "accounts/two-factor/recovery-codes/new/",
        account_views.recovery_codes_regenerate,
        name="two_factor_recovery_codes_regenerate",
    ),
    path("accounts/two-factor/off/", account_views.disable, name="two_factor_disable"),
    path("accounts/", account_views.account, name="account"),
    path("accounts/sign-out-everywhere/", account_views.sign_out_everywhere, name="sign_out_everywhere"),
    # A token's visible prefix, as the API names it: anything else is no token (404 from the resolver).
    re_path(
        rf"^accounts/tokens/(?P<token_key>{TOKEN_KEY_PATTERN})/revoke/$",
        account_views.token_revoke,
        name="api_token_revoke",
    ),
    path("sources/", views.rule_sources, name="rule_sources"),
    path("staff/", views.staff_list, name="staff_list"),
    path(
        "staff/<uuid:public_id>/two-factor-reset/",
        account_views.staff_reset,
        name="staff_two_factor_reset",
    ),
    path("staff/add/", views.StaffInviteView.as_view(), name="staff_invite"),
    path("staff/<uuid:public_id>/deactivate/", views.staff_deactivate, name="staff_deactivate"),
    path("staff/<uuid:public_id>/reactivate/", views.staff_reactivate, name="staff_reactivate"),
    path("api/v1/", include("kaemdr.api_urls")),
    path("api/v1/", include("pathways.api_urls")),
    path("api/v1/", include("screening.api_urls")),
    path("api/v1/", include("sessions.api_urls")),
    path("api/v1/", include("integration.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The documentation widgets set styles from their scripts: styles are relaxed on these two pages.
    path(
        "api/docs/", DOCS_STYLES(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"
    ),
    path("api/redoc/", DOCS_STYLES(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    path("screening/", include("screening.urls")),
    path("dosing/", include("sessions.urls")),
    path("integration/", include("integration.urls")),
    path("admin/", admin.site.urls),
    path("", include("pathways.urls")),
]
