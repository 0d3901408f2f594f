from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("rooms/", views.room_list, name="room_list"),
    path("rooms/new/", views.room_create, name="room_create"),
    path("rooms/<uuid:public_id>/", views.room_detail, name="room_detail"),
    path("rooms/feed/<str:token>.ics", views.room_calendar_feed, name="room_calendar_feed"),
    path("calendar/", views.week_calendar, name="room_calendar"),
    path("today/", views.today_board, name="today_board"),
    path("settings/", views.dosing_settings, name="dosing_settings"),
    path("pathways/<uuid:public_id>/book/", views.booking_create, name="booking_create"),
    path("pathways/<uuid:public_id>/rems/", views.rems_enrol, name="rems_enrol"),
    path("bookings/<uuid:public_id>/", views.booking_detail, name="booking_detail"),
    path("bookings/<uuid:public_id>/move/", views.booking_move, name="booking_move"),
    path("bookings/<uuid:public_id>/cancel/", views.booking_cancel, name="booking_cancel"),
    path("bookings/<uuid:public_id>/checks/", views.booking_checks, name="booking_checks"),
    path("bookings/<uuid:public_id>/session/", views.session_open, name="session_open"),
    path("sessions/<uuid:public_id>/", views.session_detail, name="session_detail"),
    path("sessions/<uuid:public_id>/<str:action>/", views.session_action, name="session_action"),
]
