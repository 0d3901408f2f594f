from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("pathways/<uuid:public_id>/assessment/", views.assessment_open, name="assessment_open"),
    path(
        "pathways/<uuid:public_id>/measures/<str:instrument>/", views.pathway_measure, name="pathway_measure"
    ),
    path("assessments/<uuid:public_id>/", views.assessment_detail, name="assessment_detail"),
    path("assessments/<uuid:public_id>/medications/", views.medication_add, name="assessment_medication_add"),
    path(
        "assessments/<uuid:public_id>/medications/<uuid:medication_id>/remove/",
        views.medication_remove,
        name="assessment_medication_remove",
    ),
    path(
        "assessments/<uuid:public_id>/measures/<str:instrument>/",
        views.assessment_measure,
        name="assessment_measure",
    ),
    path("assessments/<uuid:public_id>/sign/", views.assessment_sign, name="assessment_sign"),
    path(
        "assessments/<uuid:public_id>/countersign/",
        views.assessment_countersign,
        name="assessment_countersign",
    ),
    path(
        "assessments/<uuid:public_id>/new-version/",
        views.assessment_new_version,
        name="assessment_new_version",
    ),
    path("alerts/<uuid:public_id>/", views.alert_acknowledge, name="safety_alert_acknowledge"),
    path(
        "alerts/<uuid:public_id>/dosing-override/",
        views.alert_dosing_override,
        name="safety_alert_dosing_override",
    ),
    path("settings/", views.screening_settings, name="screening_settings"),
]
