from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from sessions.booking.api import RoomViewSet
from sessions.clinic_settings.api import DosingSettingsView
from sessions.emdr.api import EmdrPlanViewSet
from sessions.emdr.api import EmdrTargetViewSet
from sessions.record.api import BookingViewSet
from sessions.record.api import SessionViewSet

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
