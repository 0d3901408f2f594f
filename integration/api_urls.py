from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import ExperimentViewSet
from .api import FollowUpViewSet
from .api import IntegrationNoteViewSet
from .api import IntegrationSettingsView
from .api import SummaryViewSet

router = SimpleRouter()
router.register("integration-notes", IntegrationNoteViewSet, basename="api-integration-note")
router.register("experiments", ExperimentViewSet, basename="api-experiment")
router.register("follow-ups", FollowUpViewSet, basename="api-follow-up")
router.register("summaries", SummaryViewSet, basename="api-summary")

urlpatterns = [
    path("integration-settings/", IntegrationSettingsView.as_view(), name="api-integration-settings"),
    *router.urls,
]
