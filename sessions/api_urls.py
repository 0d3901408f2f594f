from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from sessions.booking.api import RoomViewSet
from sessions.booking.course_api import CourseTemplateViewSet
from sessions.booking.course_api import PathwayCourseView
from sessions.booking.rota_api import RotaLeaveViewSet
from sessions.booking.rota_api import RotaViewSet
from sessions.clinic_settings.api import DosingSettingsView
from sessions.emdr.api import EmdrPlanViewSet
from sessions.emdr.api import EmdrTargetViewSet
from sessions.record.api import BookingViewSet
from sessions.record.api import SessionViewSet

router = SimpleRouter()
router.register("rooms", RoomViewSet, basename="api-room")
router.register("rota", RotaViewSet, basename="api-rota")
router.register("rota-leave", RotaLeaveViewSet, basename="api-rota-leave")
router.register("course-templates", CourseTemplateViewSet, basename="api-course-template")
router.register("bookings", BookingViewSet, basename="api-booking")
router.register("sessions", SessionViewSet, basename="api-session")
router.register("emdr-plans", EmdrPlanViewSet, basename="api-emdr-plan")
router.register("emdr-targets", EmdrTargetViewSet, basename="api-emdr-target")

urlpatterns = [
    path("dosing-settings/", DosingSettingsView.as_view(), name="api-dosing-settings"),
    path("pathways/<uuid:id>/course/", PathwayCourseView.as_view(), name="api-pathway-course"),
    *router.urls,
]
