from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .api import BookingViewSet
from .api import RoomViewSet

router = SimpleRouter()
router.register("rooms", RoomViewSet, basename="api-room")
router.register("bookings", BookingViewSet, basename="api-booking")

urlpatterns = router.urls
