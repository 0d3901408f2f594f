from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import BookingViewSet
from .api import DosingSettingsView
from .api import RoomViewSet
from .api import SessionViewSet
from .emdr_api import EmdrPlanViewSet
from .emdr_api import EmdrTargetViewSet

router = SimpleRouter()
router.register("rooms", RoomViewSet, basename="api-room")
router.register("bookings", BookingViewSet, basename="api-booking")
router.register("sessions", SessionViewSet, basename="api-session")
router.register("emdr-plans", EmdrPlanViewSet, basename="api-emdr-plan")
router.register("emdr-targets", EmdrTargetViewSet, basename="api-emdr-target")

urlpatterns = [
    path("dosing-settings/", DosingSettingsView.as_view(), name="api-dosing-settings"),
    *router.urls,
]
