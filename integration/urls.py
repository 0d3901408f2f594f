from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("pathways/<uuid:public_id>/", views.pathway_integration, name="pathway_integration"),
    path("pathways/<uuid:public_id>/notes/", views.note_open, name="integration_note_open"),
    path(
        "pathways/<uuid:public_id>/notes/all/",
        views.pathway_integration_notes,
        name="pathway_integration_notes",
    ),
    path(
        "pathways/<uuid:public_id>/follow-ups/all/",
        views.pathway_integration_follow_ups,
        name="pathway_integration_follow_ups",
    ),
    path("notes/<uuid:public_id>/", views.note_detail, name="integration_note"),
    path("notes/<uuid:public_id>/save/", views.note_save, name="integration_note_save"),
    path("notes/<uuid:public_id>/experiments/", views.experiment_add, name="integration_experiment_add"),
    path(
        "notes/<uuid:public_id>/experiments/<uuid:experiment_id>/",
        views.experiment_review,
        name="integration_experiment_review",
    ),
    path("notes/<uuid:public_id>/addenda/", views.addendum_add, name="integration_addendum_add"),
    path("follow-ups/", views.follow_up_list, name="follow_up_list"),
    path("follow-ups/<uuid:public_id>/", views.follow_up_detail, name="follow_up_detail"),
    path("settings/", views.integration_settings, name="integration_settings"),
    path("summaries/", views.summary_request, name="summary_request"),
    path("summaries/<uuid:public_id>/", views.summary_detail, name="summary_detail"),
    path("summaries/<uuid:public_id>/status/", views.summary_status, name="summary_status"),
    path("summaries/<uuid:public_id>/download/", views.summary_download, name="summary_download"),
]
