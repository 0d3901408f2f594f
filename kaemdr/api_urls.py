from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import ApiTokenViewSet
from .api import AuditEventViewSet
from .api import SignOutEverywhereView
from .api import StaffViewSet
from .api import TokenObtainView

router = SimpleRouter()
router.register("staff", StaffViewSet, basename="api-staff")
router.register("audit-events", AuditEventViewSet, basename="api-audit-event")
router.register("account/tokens", ApiTokenViewSet, basename="api-token-list")

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="api-token"),
    path("account/sign-out-everywhere/", SignOutEverywhereView.as_view(), name="api-sign-out-everywhere"),
    *router.urls,
]
