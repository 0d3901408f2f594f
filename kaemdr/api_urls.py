from __future__ import annotations

from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import SimpleRouter

from .api import AuditEventViewSet
from .api import StaffViewSet

router = SimpleRouter()
router.register("staff", StaffViewSet, basename="api-staff")
router.register("audit-events", AuditEventViewSet, basename="api-audit-event")

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    *router.urls,
]
