"""Pages for a pathway's course plan (its prescriber sets it from a template, then edits it) and the
clinic's course templates (kept by clinic admins and prescribers)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from kaemdr.permissions import Capability
from kaemdr.views import form_errors_from
from kaemdr.views import request_user as _user
from kaemdr.views import require_capability
from pathways import services as pathway_services
from pathways.selectors import get_pathway_for_user_or_404
from sessions.booking import course_rules
from sessions.booking import course_selectors
from sessions.booking import course_services
from sessions.booking.course_forms import CoursePlanForm
from sessions.booking.course_forms import CourseTemplateForm
from sessions.booking.course_forms import TemplateChoiceForm
from sessions.booking.course_selectors import TemplateOffer
from sessions.models import CoursePlan


def _offer(offers: list[TemplateOffer], key: str) -> TemplateOffer | None:
    return next((offer for offer in offers if offer.key == key), None) if key else None


def course_plan_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    """Set or change a pathway's course: choose a template (a GET form: `?template=<key>` fills the
    course form from it), then edit the sessions and spacing and save. The pathway's prescriber role
    only; the page shows the patient, so each view is audited as a read of the pathway."""
    require_capability(request, Capability.COURSE_SET)
    user = _user(request)
    pathway = get_pathway_for_user_or_404(user, public_id)
    offers = course_selectors.course_template_offers(pathway.clinic_id)
    current = CoursePlan.objects.filter(pathway_id=pathway.pk).select_related("template").first()
    chosen_key = request.GET.get("template", "")
    chosen = _offer(offers, chosen_key)
    choice_form = TemplateChoiceForm(
        initial={"template": chosen.key if chosen else ""},
        choices=[(offer.key, offer.name) for offer in offers],
    )
    status = 200
    if request.method == "POST":
        form = CoursePlanForm(request.POST)
        chosen = _offer(offers, request.POST.get("template", ""))
        if form.is_valid():
            template = chosen.template if chosen is not None else None
            if template is None and current is not None and not form.cleaned_data["template"]:
                template = current.template  # edited in place: still the template it came from
            try:
                course_services.course_plan_set(
                    actor=user, pathway=pathway, template=template, **form.course()
                )
            except ValidationError as error:
                form_errors_from(form, error)
            else:
                messages.success(request, "The course is saved.")
                return HttpResponseRedirect(reverse("pathway_detail", args=[pathway.public_id]) + "#course")
        status = 400
    elif chosen is not None:
        form = CoursePlanForm(initial={**CoursePlanForm.initial_for(chosen.shape), "template": chosen.key})
    elif current is not None:
        key = str(current.template.public_id) if current.template else ""
        form = CoursePlanForm(initial={**CoursePlanForm.initial_for(current.shape), "template": key})
    else:
        form = CoursePlanForm()
    pathway_services.pathway_record_viewed(actor=user, pathway=pathway, via="course_page")
    context = {
        "title": f"Course of {pathway.patient.full_name}",
        "pathway": pathway,
        "patient": pathway.patient,
        "form": form,
        "choice_form": choice_form,
        "chosen": chosen,
        "current": current,
        "current_description": course_rules.describe(current.shape) if current else "",
        "offers": offers,
    }
    return render(request, "sessions/course_plan_form.html", context, status=status)


# --- The clinic's templates -----------------------------------------------------------------------------


def course_template_list(request: HttpRequest) -> HttpResponse:
    """The clinic's course templates (in use and retired) and the sourced defaults not adopted yet,
    each with its pattern in words and its source; POST `adopt=<code>` adopts a default."""
    require_capability(request, Capability.COURSE_TEMPLATE_MANAGE)
    user = _user(request)
    if request.method == "POST":
        try:
            template = course_services.course_template_adopt(actor=user, code=request.POST.get("adopt", ""))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        except Http404:
            messages.error(request, "That default course is not offered: choose one from the list.")
        else:
            messages.success(request, f"{template.name} is now one of the clinic's templates.")
            return HttpResponseRedirect(reverse("course_template_edit", args=[template.public_id]))
        return HttpResponseRedirect(request.path)
    offers = course_selectors.course_template_offers(user.member_clinic_id, include_retired=True)
    context = {"title": "Course templates", "offers": offers}
    return render(request, "sessions/course_template_list.html", context)


def course_template_create(request: HttpRequest) -> HttpResponse:
    """A new template, blank or started from one listed (`?from=<key>`)."""
    require_capability(request, Capability.COURSE_TEMPLATE_MANAGE)
    user = _user(request)
    if request.method == "POST":
        form = CourseTemplateForm(request.POST)
        if form.is_valid():
            try:
                template = course_services.course_template_save(
                    actor=user,
                    name=form.cleaned_data["name"],
                    is_active=form.cleaned_data["is_active"],
                    **form.course(),
                )
            except ValidationError as error:
                form_errors_from(form, error)
            else:
                messages.success(request, f"{template.name} is added.")
                return HttpResponseRedirect(reverse("course_template_list"))
    else:
        offers = course_selectors.course_template_offers(user.member_clinic_id)
        start = _offer(offers, request.GET.get("from", ""))
        initial = CourseTemplateForm.initial_for(start.shape) if start else {}
        form = CourseTemplateForm(initial={**initial, "is_active": True})
    context = {"title": "Add a course template", "form": form, "template": None}
    return render(request, "sessions/course_template_form.html", context, status=400 if form.errors else 200)


def course_template_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    require_capability(request, Capability.COURSE_TEMPLATE_MANAGE)
    user = _user(request)
    template = course_selectors.get_course_template_for_user_or_404(user, public_id)
    if request.method == "POST":
        form = CourseTemplateForm(request.POST)
        if form.is_valid():
            try:
                course_services.course_template_save(
                    actor=user,
                    template=template,
                    name=form.cleaned_data["name"],
                    is_active=form.cleaned_data["is_active"],
                    default_code=template.default_code,
                    **form.course(),
                )
            except ValidationError as error:
                form_errors_from(form, error)
            else:
                messages.success(request, "The template is saved.")
                return HttpResponseRedirect(reverse("course_template_list"))
    else:
        form = CourseTemplateForm(
            initial={
                **CourseTemplateForm.initial_for(template.shape),
                "name": template.name,
                "is_active": template.is_active,
            }
        )
    context = {"title": template.name, "form": form, "template": template}
    return render(request, "sessions/course_template_form.html", context, status=400 if form.errors else 200)
