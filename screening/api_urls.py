from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import AssessmentViewSet
from .api import MeasureResponseViewSet
from .api import SafetyAlertViewSet
from .api import ScreeningSettingsView

router = SimpleRouter()
router.register("assessments", AssessmentViewSet, basename="api-assessment")
router.register("measures", MeasureResponseViewSet, basename="api-measure")
router.register("safety-alerts", SafetyAlertViewSet, basename="api-safety-alert")

urlpatterns = [
    path("screening-settings/", ScreeningSettingsView.as_view(), name="api-screening-settings"),
    *router.urls,
]
