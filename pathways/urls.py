from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("my-pathways/<str:stage>/", views.my_pathways_in_stage, name="my_pathways_in_stage"),
    path("patients/", views.patient_list, name="patient_list"),
    path("patients/new/", views.patient_register, name="patient_register"),
    path("patients/<uuid:public_id>/", views.patient_detail, name="patient_detail"),
    path("patients/<uuid:public_id>/edit/", views.patient_edit, name="patient_edit"),
    path("patients/<uuid:public_id>/export/", views.patient_export, name="patient_export"),
    path(
        "patients/<uuid:public_id>/export/record.json",
        views.patient_export_download,
        name="patient_export_download",
    ),
    path("patients/<uuid:public_id>/pathways/new/", views.pathway_open, name="pathway_open"),
    path("pathways/<uuid:public_id>/", views.pathway_detail, name="pathway_detail"),
    path("pathways/<uuid:public_id>/move/", views.pathway_move, name="pathway_move"),
    path("pathways/<uuid:public_id>/care-team/", views.pathway_care_team, name="pathway_care_team"),
    path("audit/", views.audit_log, name="audit_log"),
]
