from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .api import PathwayViewSet
from .api import PatientViewSet

router = SimpleRouter()
router.register("patients", PatientViewSet, basename="api-patient")
router.register("pathways", PathwayViewSet, basename="api-pathway")

urlpatterns = router.urls
