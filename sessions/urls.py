from __future__ import annotations

from django.urls import path
from django.urls import re_path

from sessions.booking import course_views
from sessions.booking import rota_views
from sessions.booking import views
from sessions.clinic_settings import views as clinic_settings_views
from sessions.emdr import views as emdr_views
from sessions.record import views as record_views

urlpatterns = [
    path("rooms/", views.room_list, name="room_list"),
    path("rooms/new/", views.room_create, name="room_create"),
    path("rooms/<uuid:public_id>/", views.room_detail, name="room_detail"),
    # A feed's token is URL-safe base64 (`new_calendar_token`): anything else is no feed.
    re_path(
        r"^rooms/feed/(?P<token>[A-Za-z0-9_-]{1,64})\.ics$",
        views.room_calendar_feed,
        name="room_calendar_feed",
    ),
    path("rota/", rota_views.rota_list, name="rota"),
    path("rota/<uuid:public_id>/", rota_views.rota_staff, name="rota_staff"),
    path("calendar/", views.week_calendar, name="room_calendar"),
    path("today/", views.today_board, name="today_board"),
    path("settings/", clinic_settings_views.dosing_settings, name="dosing_settings"),
    path("pathways/<uuid:public_id>/book/", views.booking_create, name="booking_create"),
    path("pathways/<uuid:public_id>/rems/", views.rems_enrol, name="rems_enrol"),
    path("pathways/<uuid:public_id>/course/", course_views.course_plan_edit, name="course_plan_edit"),
    path("course-templates/", course_views.course_template_list, name="course_template_list"),
    path("course-templates/new/", course_views.course_template_create, name="course_template_create"),
    path(
        "course-templates/<uuid:public_id>/", course_views.course_template_edit, name="course_template_edit"
    ),
    path("pathways/<uuid:public_id>/sessions/", views.pathway_bookings, name="pathway_bookings"),
    path("bookings/<uuid:public_id>/", views.booking_detail, name="booking_detail"),
    path("bookings/<uuid:public_id>/move/", views.booking_move, name="booking_move"),
    path("bookings/<uuid:public_id>/cancel/", views.booking_cancel, name="booking_cancel"),
    path("bookings/<uuid:public_id>/checks/", views.booking_checks, name="booking_checks"),
    path("bookings/<uuid:public_id>/session/", record_views.session_open, name="session_open"),
    path("sessions/<uuid:public_id>/", record_views.session_detail, name="session_detail"),
    path("sessions/<uuid:public_id>/<str:action>/", record_views.session_action, name="session_action"),
    path("pathways/<uuid:public_id>/emdr/", emdr_views.plan_open, name="emdr_plan_open"),
    path("emdr/<uuid:public_id>/", emdr_views.plan_detail, name="emdr_plan"),
    path("emdr/<uuid:public_id>/targets/", emdr_views.target_add, name="emdr_target_add"),
    path("emdr/<uuid:public_id>/readiness/", emdr_views.readiness_update, name="emdr_readiness"),
    path("emdr/<uuid:public_id>/protocol/", emdr_views.protocol_set, name="emdr_protocol"),
    path("emdr/<uuid:public_id>/log/", emdr_views.session_log, name="emdr_session_log"),
    path("emdr/targets/<uuid:public_id>/", emdr_views.target_detail, name="emdr_target"),
    path("emdr/targets/<uuid:public_id>/start/", emdr_views.target_start, name="emdr_target_start"),
    path("emdr/targets/<uuid:public_id>/override/", emdr_views.target_override, name="emdr_target_override"),
]
