"""Pages for the dashboard, patients, pathways and the audit log. Thin: selectors read, services write."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from kaemdr import page_cache
from kaemdr import read_services
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import can_see_patients
from kaemdr.permissions import has_capability
from kaemdr.selectors import audit_events_for_user
from kaemdr.selectors import clinic_clinicians
from kaemdr.selectors import staff_qs_for_user
from kaemdr.views import form_errors_from
from kaemdr.views import not_for_your_role
from kaemdr.views import request_user as _user
from kaemdr.views import require_capability

from . import selectors
from . import services
from .forms import AuditFilterForm
from .forms import CareTeamForm
from .forms import PathwayMoveForm
from .forms import PathwayOpenForm
from .forms import PatientForm
from .models import Pathway
from .models import Patient
from .models import Stage
from .registry import registry
from .rules import allowed_moves

PATIENTS_PER_PAGE = 25
PATHWAYS_PER_PAGE = 25
AUDIT_EVENTS_PER_PAGE = 50


def dashboard(request: HttpRequest) -> HttpResponse:
    """The landing page after sign-in, shaped by role; later apps add panels through the registry.
    One audit event names every patient it shows, the panels' included, on every view: the body is
    kept in the page cache (`kaemdr.page_cache`) with the ids it shows."""
    user = _user(request)
    part = page_cache.render_part(
        request,
        key=page_cache.part_key("dashboard", request=request, user=user),
        template_name="pathways/_dashboard_body.html",
        build=lambda: _dashboard_body(user),
    )
    read_services.records_viewed_by_ids(actor=user, model=Patient, shown=part.shown, via="dashboard")
    return render(request, "pathways/dashboard.html", {"title": "Dashboard", "body": part.html})


def _dashboard_body(user: User) -> tuple[dict[str, Any], read_services.Shown]:
    """The dashboard's body context, and the patients it shows (for the read audit)."""
    panels = registry.panels_for(user=user)
    context: dict[str, Any] = {"title": "Dashboard", "panels": panels}
    shown: list[Patient] = [patient for panel in panels for patient in panel.patients]
    if user.role in (Role.PRESCRIBER, Role.THERAPIST):
        groups = selectors.my_open_pathways_by_stage(user)
        actions = selectors.pathways_next_actions([p for group in groups for p in group.pathways], user=user)
        context["stage_groups"] = [(group, [(p, actions[p.pk]) for p in group.pathways]) for group in groups]
        shown += [p.patient for group in groups for p in group.pathways]
    elif user.role == Role.MONITOR:
        context["dosing_pathways"] = selectors.pathways_in_stage(user, stage=Stage.DOSING)
        shown += [p.patient for p in context["dosing_pathways"]]
    elif user.role == Role.CLINIC_ADMIN:
        # The panel names each member of staff, their role and whether they are active.
        staff = staff_qs_for_user(user).select_related(None).only("full_name", "role", "is_active")
        context["staff"] = list(staff)
        context["recent_patients"] = selectors.recent_patients(user)
        context["stage_counts"] = selectors.clinic_stage_counts(user)
        shown += context["recent_patients"]
    return context, read_services.shown_ids({patient.pk: patient for patient in shown}.values(), patient="")


def my_pathways_in_stage(request: HttpRequest, stage: str) -> HttpResponse:
    """Every open pathway of the clinician's own in one stage (the dashboard lists the first few),
    paginated, with each one's next action."""
    user = _user(request)
    labels = dict(Stage.choices)
    if user.role not in (Role.PRESCRIBER, Role.THERAPIST) or stage not in labels:
        raise Http404()
    page = Paginator(selectors.my_open_pathways(user).filter(stage=stage), PATHWAYS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    pathways = list(page.object_list)
    actions = selectors.pathways_next_actions(pathways, user=user)
    read_services.records_viewed(
        actor=user, model=Pathway, records=pathways, patient="patient", via="my_pathways_in_stage"
    )
    return render(
        request,
        "pathways/my_pathways_in_stage.html",
        {
            "title": f"Your pathways in {labels[stage].lower()}",
            "stage_label": labels[stage],
            "page": page,
            "rows": [(p, actions[p.pk]) for p in pathways],
        },
    )


def patient_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not can_see_patients(user):
        require_capability(request, Capability.PATIENT_VIEW_ALL)
    search = request.GET.get("q", "")[:100]
    stage = request.GET.get("stage", "")
    stage = stage if stage in Stage.values else ""
    page = Paginator(selectors.patient_list(user, search=search, stage=stage), PATIENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    read_services.records_viewed(actor=user, model=Patient, records=page.object_list, patient="", via="page")
    return render(
        request,
        "pathways/patient_list.html",
        {
            "title": f"Patients in {Stage(stage).label.lower()}" if stage else "Patients",
            "page": page,
            "search": search,
            "stage": stage,
            "stage_label": Stage(stage).label if stage else "",
            "pager_query": urlencode(
                {key: value for key, value in (("q", search), ("stage", stage)) if value}
            ),
            "can_register": has_capability(user, Capability.PATIENT_REGISTER),
        },
    )


def patient_register(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not has_capability(user, Capability.PATIENT_REGISTER):
        return not_for_your_role(
            request,
            title="Register a patient",
            explanation=(
                "Patients are registered by a prescriber, who takes the referral and opens the "
                "pathway. Ask one of your clinic's prescribers to register the patient; you will then "
                "find them in the patient list."
            ),
        )
    next_free = selectors.next_free_record_number(user)
    form = PatientForm(request.POST or None, record_number_hint=next_free)
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_register(actor=user, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, f"{patient.full_name} is registered.")
            return HttpResponseRedirect(reverse("patient_detail", args=[patient.public_id]))
    return render(request, "pathways/patient_form.html", {"title": "Register a patient", "form": form})


def patient_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    patient = selectors.get_patient_for_user_or_404(user, public_id)
    pathways = selectors.patient_pathways(user, patient=patient)
    services.patient_record_viewed(actor=user, patient=patient, via="page")
    return render(
        request,
        "pathways/patient_detail.html",
        {
            "title": patient.full_name,
            "patient": patient,
            "pathways": pathways,
            "has_open_pathway": any(p.is_open for p in pathways),
            "can_edit": has_capability(user, Capability.PATIENT_EDIT),
            "can_open_pathway": has_capability(user, Capability.PATHWAY_OPEN),
            "can_view_audit": has_capability(user, Capability.AUDIT_VIEW),
            "can_export": has_capability(user, Capability.PATIENT_EXPORT),
        },
    )


def patient_export(request: HttpRequest, public_id: str) -> HttpResponse:
    """A subject access request: the whole record as JSON, and each pathway's PDF summary."""
    user = _user(request)
    patient = selectors.get_patient_for_user_or_404(user, public_id)
    require_capability(request, Capability.PATIENT_EXPORT)
    pathways = selectors.patient_pathways(user, patient=patient)
    services.patient_record_viewed(actor=user, patient=patient, via="export_page")
    context = {"title": f"Export the record of {patient.full_name}", "patient": patient, "pathways": pathways}
    return render(request, "pathways/patient_export.html", context)


def patient_export_download(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    patient = selectors.get_patient_for_user_or_404(user, public_id)
    require_capability(request, Capability.PATIENT_EXPORT)
    data = services.patient_export(actor=user, patient=patient)
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    name = f"kaemdr-{slugify(patient.record_number)}-{timezone.localdate():%Y-%m-%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


def patient_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    patient = selectors.get_patient_for_user_or_404(user, public_id)
    require_capability(request, Capability.PATIENT_EDIT)
    initial = {name: getattr(patient, name) for name in services.PATIENT_FIELDS}
    form = PatientForm(request.POST or None, initial=initial, submit_label="Save changes")
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_update(actor=user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, "The patient's details are saved.")
            return HttpResponseRedirect(reverse("patient_detail", args=[patient.public_id]))
    services.patient_record_viewed(actor=user, patient=patient, via="edit_page")
    return render(
        request,
        "pathways/patient_form.html",
        {"title": f"Edit {patient.full_name}", "form": form, "patient": patient},
    )


def pathway_open(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    patient = selectors.get_patient_for_user_or_404(user, public_id)
    require_capability(request, Capability.PATHWAY_OPEN)
    form = PathwayOpenForm(
        request.POST or None,
        initial={"prescriber": str(user.public_id) if user.role == Role.PRESCRIBER else ""},
        clinicians=list(clinic_clinicians(user, roles=(Role.PRESCRIBER, Role.THERAPIST))),
        submit_label="Open pathway",
    )
    if request.method == "POST" and form.is_valid():
        try:
            pathway = services.pathway_open(actor=user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, f"A pathway is open for {patient.full_name}, in referral.")
            return HttpResponseRedirect(reverse("pathway_detail", args=[pathway.public_id]))
    services.patient_record_viewed(actor=user, patient=patient, via="pathway_open_page")
    return render(
        request, "pathways/pathway_open.html", {"title": "Open a pathway", "form": form, "patient": patient}
    )


def _pathway_page(
    request: HttpRequest, pathway: Pathway, *, move_form: PathwayMoveForm | None = None, status: int = 200
) -> HttpResponse:
    """The pathway page: every stage's section, through the registry, in a fixed number of queries
    (at most 12, whatever the length of the treatment; `tests/test_query_counts.py`).

    Changing the care team has its own page (`pathway_care_team`): its form lists the clinic's
    clinicians, a query every view of this page would otherwise pay for a rare change. The body is
    kept in the page cache (`kaemdr.page_cache`); the read event is written on every view.
    """
    user = _user(request)
    services.pathway_record_viewed(actor=user, pathway=pathway, via="page")
    key = None  # a form posted back with its errors is this request's own
    if move_form is None:
        args = (pathway.pk, pathway.stage, pathway.updated_at.isoformat())
        key = page_cache.part_key("pathway", request=request, user=user, args=args)
    part = page_cache.render_part(
        request,
        key=key,
        template_name="pathways/_pathway_body.html",
        build=lambda: (_pathway_body(pathway, user=user, move_form=move_form), None),
    )
    context = {"title": f"Pathway of {pathway.patient.full_name}", "body": part.html}
    return render(request, "pathways/pathway_detail.html", context, status=status)


def _pathway_body(pathway: Pathway, *, user: User, move_form: PathwayMoveForm | None) -> dict[str, Any]:
    """The pathway page's body context: every section, the registry's panels among them."""
    allowed = allowed_moves(stage=pathway.stage, stage_before_hold=pathway.stage_before_hold)
    can_move = has_capability(user, Capability.PATHWAY_MOVE) and bool(allowed)
    if can_move and move_form is None:
        move_form = PathwayMoveForm(
            allowed=allowed, initial={"expected_stage": pathway.stage, "to_stage": allowed[0]}
        )
    return {
        "title": f"Pathway of {pathway.patient.full_name}",
        "pathway": pathway,
        "patient": pathway.patient,
        "timeline": selectors.pathway_timeline(pathway=pathway),
        "next_actions": selectors.pathway_next_actions(pathway=pathway, user=user),
        "stage_track": _stage_track(pathway),
        "move_form": move_form if can_move else None,
        "panels": registry.pathway_panels_for(pathway=pathway, user=user),
        "can_assign": has_capability(user, Capability.CARE_TEAM_ASSIGN) and pathway.is_open,
    }


def _stage_track(pathway: Pathway) -> list[dict[str, Any]]:
    """The main stages with where this pathway stands, for the progress bar at the top of the page."""
    from .rules import STAGE_ORDER

    current = pathway.stage_before_hold if pathway.stage == Stage.ON_HOLD else pathway.stage
    reached = STAGE_ORDER.index(current) if current in STAGE_ORDER else -1
    labels = dict(Stage.choices)
    return [
        {"stage": stage, "label": labels[stage], "done": index < reached, "current": index == reached}
        for index, stage in enumerate(STAGE_ORDER)
    ]


def pathway_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    pathway = selectors.get_pathway_page_for_user_or_404(_user(request), public_id)
    return _pathway_page(request, pathway)


@require_POST
def pathway_move(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    pathway = selectors.get_pathway_for_user_or_404(user, public_id)
    require_capability(request, Capability.PATHWAY_MOVE)
    allowed = allowed_moves(stage=pathway.stage, stage_before_hold=pathway.stage_before_hold)
    form = PathwayMoveForm(request.POST, allowed=allowed)
    if form.is_valid():
        try:
            change = services.pathway_move(
                actor=user,
                pathway=pathway,
                to_stage=form.cleaned_data["to_stage"],
                reason=form.cleaned_data["reason"],
                expected_stage=form.cleaned_data.get("expected_stage") or None,
            )
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, f"The pathway moved to {change.get_to_stage_display().lower()}.")
            return HttpResponseRedirect(reverse("pathway_detail", args=[pathway.public_id]))
    pathway.refresh_from_db()
    return _pathway_page(request, pathway, move_form=form, status=400)


def pathway_care_team(request: HttpRequest, public_id: str) -> HttpResponse:
    """Change the pathway's prescriber and therapist (the form lists the clinic's clinicians)."""
    user = _user(request)
    pathway = selectors.get_pathway_for_user_or_404(user, public_id)
    require_capability(request, Capability.CARE_TEAM_ASSIGN)
    form = CareTeamForm(
        request.POST or None,
        initial={
            "prescriber": pathway.prescriber.public_id,
            "therapist": getattr(pathway.therapist, "public_id", None),
        },
        clinicians=list(clinic_clinicians(user, roles=(Role.PRESCRIBER, Role.THERAPIST))),
        submit_label="Save care team",
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.pathway_assign_care_team(actor=user, pathway=pathway, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, "The care team is saved.")
            return HttpResponseRedirect(reverse("pathway_detail", args=[pathway.public_id]))
    services.pathway_record_viewed(actor=user, pathway=pathway, via="care_team_page")
    context = {"title": "Change the care team", "form": form, "pathway": pathway, "patient": pathway.patient}
    return render(request, "pathways/care_team.html", context, status=400 if form.errors else 200)


def audit_log(request: HttpRequest) -> HttpResponse:
    """The clinic's audit log for clinic admins, filtered by patient record number, user and dates."""
    require_capability(request, Capability.AUDIT_VIEW)
    user = _user(request)
    actors = list(User.objects.filter(clinic_id=user.member_clinic_id).order_by("full_name"))
    form = AuditFilterForm(request.GET or None, actors=actors)
    events = audit_events_for_user(user).none()
    if not form.is_bound or form.is_valid():
        filters: dict[str, Any] = {}
        if form.is_bound:
            data = form.cleaned_data
            filters = {"occurred_from": data.get("occurred_from"), "occurred_to": data.get("occurred_to")}
            if data.get("actor"):
                filters["actor_public_id"] = data["actor"]
            if data.get("record_number"):
                patient = (
                    selectors.patient_qs_for_user(user)
                    .filter(record_number__iexact=data["record_number"].strip())
                    .first()
                )
                if patient is None:
                    form.add_error("record_number", "No patient of this clinic has this record number.")
                else:
                    filters["patient_public_id"] = patient.public_id
        if not form.errors:
            zone = user.zone
            events = audit_events_for_user(user, tz=zone, **filters)
    page = Paginator(events, AUDIT_EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    patient_ids = {event.patient_public_id for event in page.object_list if event.patient_public_id}
    patients = selectors.patient_qs_for_user(user).filter(public_id__in=patient_ids) if patient_ids else []
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "pathways/audit_log.html",
        {
            "title": "Audit log",
            "form": form,
            "page": page,
            "actors_by_id": {actor.public_id: actor for actor in actors},
            "patients_by_id": {patient.public_id: patient for patient in patients},
            "query_string": query.urlencode(),
        },
    )
