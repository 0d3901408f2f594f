from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .api import BookingViewSet
from .api import RoomViewSet
from .api import SessionViewSet

router = SimpleRouter()
router.register("rooms", RoomViewSet, basename="api-room")
router.register("bookings", BookingViewSet, basename="api-booking")
router.register("sessions", SessionViewSet, basename="api-session")

urlpatterns = router.urls
