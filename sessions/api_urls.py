from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import BookingViewSet
from .api import DosingSettingsView
from .api import RoomViewSet
from .api import SessionViewSet

router = SimpleRouter()
router.register("rooms", RoomViewSet, basename="api-room")
router.register("bookings", BookingViewSet, basename="api-booking")
router.register("sessions", SessionViewSet, basename="api-session")

urlpatterns = [
    path("dosing-settings/", DosingSettingsView.as_view(), name="api-dosing-settings"),
    *router.urls,
]
