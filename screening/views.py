"""Screening pages: the assessment, its medications and measures, sign-off, alerts, clinic settings."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.html import format_html_join
from django.views.decorators.http import require_POST

from kaemdr import read_services
from kaemdr.exceptions import error_citation
from kaemdr.exceptions import error_items
from kaemdr.formatting import format_score
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.views import form_errors_from
from kaemdr.views import request_user as _user
from kaemdr.views import require_capability
from pathways import services as pathway_services
from pathways.selectors import get_pathway_for_user_or_404

from . import rules
from . import selectors
from . import services
from .forms import AlertAcknowledgeForm
from .forms import AlertDosingOverrideForm
from .forms import AssessmentForm
from .forms import MeasureForm
from .forms import MedicationForm
from .forms import ScreeningSettingsForm
from .forms import SignForm
from .models import Assessment
from .models import AssessmentMedication
from .models import AssessmentStatus


def _assessment_url(assessment: Assessment, anchor: str = "") -> str:
    return reverse("assessment_detail", args=[assessment.public_id]) + (f"#{anchor}" if anchor else "")


def _refusal_message(error: ValidationError) -> str:
    """A refusal shown as a message at the top of the page: each message, then the source that asks for
    it in plain words with its link (as `form_errors_from` shows one beside a form)."""
    shown = []
    for _field, item in error_items(error):
        text = " ".join(str(message) for message in item.messages)
        citation = error_citation(item)
        if citation is None:
            shown.append(format_html("{}", text))
        elif citation.url:
            shown.append(format_html('{} (Source: <a href="{}">{}</a>.)', text, citation.url, citation.text))
        else:
            shown.append(format_html("{} (Source: {}.)", text, citation.text))
    return format_html_join(" ", "{}", ((part,) for part in shown))


def _initial(assessment: Assessment) -> dict[str, Any]:
    return {name: getattr(assessment, name) for name in services.ASSESSMENT_FIELDS}


PAGE_FORM = "assessment-page"
"""The one form of a draft's page: every field on it (the draft's, a medication being added, the
sign-off) belongs to it, and every button posts all of them, so no button throws away what was typed
elsewhere on the page. Each button's own action saves the draft's fields first."""

DRAFT_MARKER = "with_draft"
"""Sent by the page when the draft's fields are on it (the API and older pages do not send it)."""


def _on_page_form(*forms: Any) -> None:
    for form in forms:
        if form is not None:
            for field in form.fields.values():
                field.widget.attrs["form"] = PAGE_FORM


def _unsent_key(assessment: Assessment) -> str:
    return f"screening-unsent-sign-off-{assessment.public_id}"


def _keep_unsent_sign_off(request: HttpRequest, assessment: Assessment) -> None:
    """The sign-off's decision and reason are no part of the draft: when another button of the page was
    pressed they are kept in the visitor's own (server-side) session and shown again, until signed.
    Kept once a reason is typed (a decision against the proposal needs one); a decision left at the
    proposal is not, so that it follows the proposal as the draft changes."""
    if request.POST.get("reason", "").strip():
        request.session[_unsent_key(assessment)] = {
            "decision": request.POST.get("decision", ""),
            "reason": request.POST.get("reason", ""),
        }


def _posted_draft(request: HttpRequest, assessment: Assessment) -> AssessmentForm | None:
    """The draft's fields as posted with any button of the page, when the poster may edit the draft."""
    if DRAFT_MARKER not in request.POST or not assessment.is_draft:
        return None
    if not has_capability(_user(request), Capability.SCREENING_EDIT):
        return None
    return AssessmentForm(request.POST)


def _draft_saved(request: HttpRequest, assessment: Assessment, draft: AssessmentForm | None) -> bool:
    """Save the draft's posted fields (through the audited service) before the button's own action.
    False when they are refused: the page is then shown again with everything as typed."""
    if draft is None:
        return True
    if not draft.is_valid():
        return False
    try:
        services.assessment_update(actor=_user(request), assessment=assessment, **draft.cleaned_data)
    except ValidationError as error:
        form_errors_from(draft, error)
        return False
    return True


@require_POST
def assessment_open(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    pathway = get_pathway_for_user_or_404(user, public_id)
    require_capability(request, Capability.SCREENING_EDIT)
    try:
        assessment = services.assessment_open(actor=user, pathway=pathway)
    except ValidationError as error:
        messages.error(request, _refusal_message(error))
        return HttpResponseRedirect(reverse("pathway_detail", args=[pathway.public_id]))
    return HttpResponseRedirect(_assessment_url(assessment))


def _render_assessment(
    request: HttpRequest,
    assessment: Assessment,
    *,
    form: AssessmentForm | None = None,
    medication_form: MedicationForm | None = None,
    sign_form: SignForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page; after a refused post every form on it is shown as posted (those whose button was
    not pressed without errors while left empty), so nothing typed is lost."""
    user = _user(request)
    full = selectors.assessment_with_parts(assessment)
    review = selectors.assessment_review(full)
    can_edit = has_capability(user, Capability.SCREENING_EDIT) and full.is_draft
    can_sign = has_capability(user, Capability.SCREENING_SIGN)
    if request.method == "POST":
        posted = request.POST
        if can_edit and form is None and DRAFT_MARKER in posted:
            form = AssessmentForm(posted)
        if can_edit and medication_form is None and "name" in posted:
            medication_form = MedicationForm(posted, empty_permitted=True, use_required_attribute=False)
        if can_sign and full.is_draft and sign_form is None and "decision" in posted:
            sign_form = SignForm(posted, empty_permitted=True, use_required_attribute=False)
    if can_edit and form is None:
        form = AssessmentForm(initial=_initial(full))
    if can_edit and medication_form is None:
        medication_form = MedicationForm()
    if can_sign and full.is_draft and sign_form is None and review.proposal is not None:
        unsent = request.session.get(_unsent_key(full), {})
        sign_form = SignForm(
            initial={
                "decision": unsent.get("decision") or review.proposal.decision,
                "reason": unsent.get("reason", ""),
            }
        )
    if can_edit:
        _on_page_form(form, medication_form, sign_form if full.is_draft else None)
    measures = {m.instrument: m for m in full.measures.all()}
    services.assessment_viewed(actor=user, assessment=full, via="page")
    context = {
        "title": f"Screening of {full.pathway.patient.full_name}",
        "assessment": full,
        "pathway": full.pathway,
        "patient": full.pathway.patient,
        "review": review,
        "form": form if can_edit else None,
        "medication_form": medication_form if can_edit else None,
        "sign_form": sign_form if can_sign and full.is_draft else None,
        "can_edit": can_edit,
        "page_form": PAGE_FORM if can_edit else "",
        "can_countersign": (
            can_sign
            and full.status == AssessmentStatus.AWAITING_COUNTERSIGNATURE
            and full.signed_by_id != user.pk
        ),
        "can_new_version": (
            has_capability(user, Capability.SCREENING_EDIT)
            and full.status in (AssessmentStatus.SIGNED, AssessmentStatus.AWAITING_COUNTERSIGNATURE)
            and full.pathway.is_open
            and not hasattr(full, "superseded_by")
        ),
        "measure_rows": [
            (instrument.value, rules.INSTRUMENTS[instrument].label, measures.get(instrument))
            for instrument in rules.Instrument
        ],
        "decision_labels": {d.value: label for d, label in rules.DECISION_LABELS.items()},
        "conditions": [c for c in rules.CONDITIONS if c.code in set(full.condition_codes)],
    }
    return render(request, "screening/assessment_detail.html", context, status=status)


def assessment_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    """The assessment: edit a draft (saved as it is, half-filled or not), or read a signed one."""
    user = _user(request)
    assessment = selectors.get_assessment_for_user_or_404(user, public_id)
    if request.method != "POST":
        return _render_assessment(request, assessment)
    require_capability(request, Capability.SCREENING_EDIT)
    form = AssessmentForm(request.POST)
    # A medication typed in but not yet added is added with the draft rather than thrown away.
    medication = MedicationForm(request.POST, empty_permitted=True, use_required_attribute=False)
    if _draft_saved(request, assessment, form) and medication.is_valid():
        _keep_unsent_sign_off(request, assessment)
        if not medication.has_changed():
            messages.success(request, "The assessment is saved.")
            return HttpResponseRedirect(_assessment_url(assessment, "review"))
        try:
            services.medication_add(actor=user, assessment=assessment, **medication.cleaned_data)
        except ValidationError as error:
            form_errors_from(medication, error)
        else:
            messages.success(
                request,
                f"The assessment is saved and {medication.cleaned_data['name']} is on the medication list.",
            )
            return HttpResponseRedirect(_assessment_url(assessment, "review"))
    return _render_assessment(request, assessment, form=form, medication_form=medication, status=400)


@require_POST
def medication_add(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    assessment = selectors.get_assessment_for_user_or_404(user, public_id)
    require_capability(request, Capability.SCREENING_EDIT)
    draft = _posted_draft(request, assessment)
    form = MedicationForm(request.POST)
    if _draft_saved(request, assessment, draft) and form.is_valid():
        try:
            services.medication_add(actor=user, assessment=assessment, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            _keep_unsent_sign_off(request, assessment)
            messages.success(request, f"{form.cleaned_data['name']} is on the medication list.")
            return HttpResponseRedirect(_assessment_url(assessment, "medications"))
    return _render_assessment(request, assessment, form=draft, medication_form=form, status=400)


@require_POST
def medication_remove(request: HttpRequest, public_id: str, medication_id: str) -> HttpResponse:
    user = _user(request)
    assessment = selectors.get_assessment_for_user_or_404(user, public_id)
    require_capability(request, Capability.SCREENING_EDIT)
    medication = AssessmentMedication.objects.filter(assessment=assessment, public_id=medication_id).first()
    if medication is None:
        raise Http404()
    draft = _posted_draft(request, assessment)
    if not _draft_saved(request, assessment, draft):
        return _render_assessment(request, assessment, form=draft, status=400)
    try:
        services.medication_remove(actor=user, medication=medication)
    except ValidationError as error:
        messages.error(request, _refusal_message(error))
    else:
        _keep_unsent_sign_off(request, assessment)
    return HttpResponseRedirect(_assessment_url(assessment, "medications"))


def _measure_page(
    request: HttpRequest, *, pathway: Any, instrument: str, assessment: Assessment | None, back_url: str
) -> HttpResponse:
    user = _user(request)
    if instrument not in rules.Instrument.__members__.values():
        raise Http404()
    initial: dict[str, Any] = {}
    if assessment is not None:
        existing = assessment.measures.filter(instrument=instrument).first()
        initial = MeasureForm.initial_from(instrument, existing.answers) if existing else {}
    form = MeasureForm(request.POST or None, instrument=instrument, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            response = services.measure_record(
                actor=user,
                pathway=pathway,
                instrument=instrument,
                answers=form.answers(),
                assessment=assessment,
            )
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            figure = "" if instrument == rules.Instrument.CSSRS else f"{format_score(response.total)}, "
            messages.success(request, f"{form.spec.label}: {figure}{response.band_label} recorded.")
            for flag in response.flags:
                if flag.get("urgent"):
                    messages.error(request, f"Urgent: {flag['text']}")
            return HttpResponseRedirect(back_url)
    status = 400 if request.method == "POST" else 200
    if assessment is not None:
        services.assessment_viewed(actor=user, assessment=assessment, via="measure_page")
    else:
        pathway_services.pathway_record_viewed(actor=user, pathway=pathway, via="measure_page")
    context = {
        "title": form.spec.label,
        "form": form,
        "spec": form.spec,
        "pathway": pathway,
        "patient": pathway.patient,
        "assessment": assessment,
        "back_url": back_url,
    }
    return render(request, "screening/measure_form.html", context, status=status)


def assessment_measure(request: HttpRequest, public_id: str, instrument: str) -> HttpResponse:
    user = _user(request)
    assessment = selectors.get_assessment_for_user_or_404(user, public_id)
    require_capability(request, Capability.SCREENING_EDIT)
    return _measure_page(
        request,
        pathway=assessment.pathway,
        instrument=instrument,
        assessment=assessment,
        back_url=_assessment_url(assessment, "measures"),
    )


def pathway_measure(request: HttpRequest, public_id: str, instrument: str) -> HttpResponse:
    """A repeat administration of a measure on the pathway, outside any assessment."""
    user = _user(request)
    pathway = get_pathway_for_user_or_404(user, public_id)
    require_capability(request, Capability.MEASURE_RECORD)
    if not pathway.takes_measures:
        raise Http404()  # a discontinued pathway takes no measures: its form would only answer 404
    return _measure_page(
        request,
        pathway=pathway,
        instrument=instrument,
        assessment=None,
        back_url=reverse("pathway_detail", args=[pathway.public_id]),
    )


@require_POST
def assessment_sign(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    assessment = selectors.get_assessment_for_user_or_404(user, public_id)
    require_capability(request, Capability.SCREENING_SIGN)
    draft = _posted_draft(request, assessment)
    form = SignForm(request.POST)
    if _draft_saved(request, assessment, draft) and form.is_valid():
        try:
            signed = services.assessment_sign(actor=user, assessment=assessment, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            request.session.pop(_unsent_key(assessment), None)
            if signed.status == AssessmentStatus.AWAITING_COUNTERSIGNATURE:
                messages.warning(request, "Signed. A second prescriber must countersign before it counts.")
            else:
                messages.success(request, "The eligibility decision is signed.")
            return HttpResponseRedirect(reverse("pathway_detail", args=[assessment.pathway.public_id]))
    return _render_assessment(request, assessment, form=draft, sign_form=form, status=400)


@require_POST
def assessment_countersign(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    assessment = selectors.get_assessment_for_user_or_404(user, public_id)
    require_capability(request, Capability.SCREENING_SIGN)
    try:
        services.assessment_countersign(actor=user, assessment=assessment)
    except ValidationError as error:
        messages.error(request, _refusal_message(error))
        return HttpResponseRedirect(_assessment_url(assessment))
    messages.success(request, "Countersigned: the screening is current.")
    return HttpResponseRedirect(reverse("pathway_detail", args=[assessment.pathway.public_id]))


@require_POST
def assessment_new_version(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    assessment = selectors.get_assessment_for_user_or_404(user, public_id)
    require_capability(request, Capability.SCREENING_EDIT)
    try:
        copy = services.assessment_new_version(actor=user, assessment=assessment)
    except ValidationError as error:
        messages.error(request, _refusal_message(error))
        return HttpResponseRedirect(_assessment_url(assessment))
    messages.success(request, f"Version {copy.version} started from version {assessment.version}.")
    return HttpResponseRedirect(_assessment_url(copy))


ALERT_PAGE_FORM = "alert-page"
"""The one form of an open alert's page: the action taken and the override's reason both belong to it."""


def _alert_page(
    request: HttpRequest,
    alert: Any,
    *,
    form: AlertAcknowledgeForm | None = None,
    override_form: AlertDosingOverrideForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The alert with what can be done about it: record the action taken and, for a prescriber while
    the alert is open and stops dosing, a dosing override beside it."""
    user = _user(request)
    can_override = (
        has_capability(user, Capability.SAFETY_ALERT_DOSING_OVERRIDE)
        and alert.status == "open"
        and alert.dosing_override_at is None
    )
    if request.method == "POST":
        # One form for the page: after a post each part comes back as typed (the part whose button was
        # not pressed without errors while left empty), so nothing typed beside the other is lost.
        if form is None and "action_taken" in request.POST:
            form = AlertAcknowledgeForm(request.POST, empty_permitted=True, use_required_attribute=False)
        if override_form is None and can_override and "reason" in request.POST:
            override_form = AlertDosingOverrideForm(
                request.POST, empty_permitted=True, use_required_attribute=False
            )
    context = {
        "title": "Safety alert",
        "alert": alert,
        "form": form or AlertAcknowledgeForm(),
        "override_form": override_form or (AlertDosingOverrideForm() if can_override else None),
        "patient": alert.pathway.patient,
        "page_form": ALERT_PAGE_FORM if alert.status == "open" else "",
    }
    if alert.status == "open":
        for shown in (context["form"], context["override_form"]):
            for field in shown.fields.values() if shown is not None else ():
                field.widget.attrs["form"] = ALERT_PAGE_FORM
    read_services.record_viewed(actor=user, record=alert, patient="pathway.patient", via="page")
    return render(request, "screening/alert_acknowledge.html", context, status=status)


def alert_acknowledge(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    alert = selectors.get_alert_for_user_or_404(user, public_id)
    require_capability(request, Capability.SAFETY_ALERT_ACKNOWLEDGE)
    form = AlertAcknowledgeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.safety_alert_acknowledge(actor=user, alert=alert, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, "The alert is acknowledged.")
            return HttpResponseRedirect(reverse("pathway_detail", args=[alert.pathway.public_id]))
    return _alert_page(request, alert, form=form, status=400 if request.method == "POST" else 200)


@require_POST
def alert_dosing_override(request: HttpRequest, public_id: str) -> HttpResponse:
    """A prescriber signs that dosing may go ahead while the alert stays open (with a reason)."""
    user = _user(request)
    alert = selectors.get_alert_for_user_or_404(user, public_id)
    require_capability(request, Capability.SAFETY_ALERT_DOSING_OVERRIDE)
    form = AlertDosingOverrideForm(request.POST)
    if form.is_valid():
        try:
            services.safety_alert_dosing_override_sign(actor=user, alert=alert, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(
                request, "Dosing override signed: the alert stays open until the action taken is recorded."
            )
            if request.POST.get("action_taken", "").strip():
                # The action taken typed beside the override is not recorded by it: it is shown again,
                # as typed, to be recorded with its own button.
                alert.refresh_from_db()
                return _alert_page(request, alert)
            return HttpResponseRedirect(reverse("pathway_detail", args=[alert.pathway.public_id]))
    return _alert_page(request, alert, override_form=form, status=400)


def screening_settings(request: HttpRequest) -> HttpResponse:
    require_capability(request, Capability.CLINIC_SETTINGS_MANAGE)
    user = _user(request)
    current = selectors.screening_settings_for(user.member_clinic_id)
    initial = {name: getattr(current, name) for name in services.SETTINGS_FIELDS}
    form = ScreeningSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.screening_settings_update(actor=user, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, "The screening settings are saved.")
            return HttpResponseRedirect(reverse("screening_settings"))
    status = 400 if request.method == "POST" else 200
    return render(
        request, "screening/settings.html", {"title": "Screening settings", "form": form}, status=status
    )
