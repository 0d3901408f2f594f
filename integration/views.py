"""Integration pages: a pathway's integration and its full lists of notes and follow-ups, the note
(draft and signed), its experiments, the follow-ups list and page, and the clinic's follow-up
settings. Views only translate HTTP to services and selectors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from typing import cast
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.http import JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from kaemdr import read_services
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.views import form_errors_from
from kaemdr.views import request_user as _user
from kaemdr.views import require_capability
from pathways.models import Pathway
from pathways.selectors import get_pathway_for_user_or_404
from sessions.models import DosingSession

from . import rules
from . import selectors
from . import services
from . import summary_services
from .forms import AddendumForm
from .forms import ExperimentForm
from .forms import ExperimentReviewForm
from .forms import FollowUpDoneForm
from .forms import IntegrationSettingsForm
from .forms import NoteForm
from .models import FollowUp
from .models import IntegrationNote
from .models import SummaryStatus

FOLLOW_UPS_PER_PAGE = 25
NOTES_PER_PAGE = 25


def _note_url(note: IntegrationNote, anchor: str = "") -> str:
    return reverse("integration_note", args=[note.public_id]) + (f"#{anchor}" if anchor else "")


@require_POST
def note_open(request: HttpRequest, public_id: str) -> HttpResponse:
    """Start an integration note on a pathway (or go back to its draft)."""
    user = _user(request)
    pathway = get_pathway_for_user_or_404(user, public_id)
    require_capability(request, Capability.INTEGRATION_WRITE)
    session = None
    if request.POST.get("dosing_session"):
        session = DosingSession.objects.filter(
            public_id__in=[request.POST["dosing_session"]], booking__pathway=pathway
        ).first()
    _keep_unsent_outcome(request, pathway)
    try:
        note = services.note_open(actor=user, pathway=pathway, dosing_session=session)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(reverse("pathway_detail", args=[pathway.public_id]) + "#integration")
    return HttpResponseRedirect(_note_url(note))


FOLLOW_UP_PAGE_FORM = "follow-up-page"
"""The one form of an open follow-up's page: its outcome field belongs to it, and the button that opens
the integration note posts it too, so the outcome typed is kept rather than thrown away."""


def _unsent_outcome_key(public_id: Any) -> str:
    return f"integration-unsent-outcome-{public_id}"


def _keep_unsent_outcome(request: HttpRequest, pathway: Pathway) -> None:
    """An outcome typed on a follow-up's page when its "Write the integration note" was pressed is no
    part of the note: it is kept in the visitor's own (server-side) session and shown again on the
    follow-up's page until the follow-up is closed."""
    public_id = request.POST.get("follow_up", "")
    outcome = request.POST.get("outcome", "").strip()
    if not public_id or not outcome:
        return
    try:
        public_id = str(uuid.UUID(public_id))
    except ValueError:
        return
    if FollowUp.objects.filter(public_id__in=[public_id], pathway=pathway).exists():
        request.session[_unsent_outcome_key(public_id)] = outcome


def _pathway_for_integration(request: HttpRequest, public_id: str) -> Pathway:
    """The pathway, if the user may read its integration (its notes are therapy notes), else 404."""
    pathway = get_pathway_for_user_or_404(_user(request), public_id)
    require_capability(request, Capability.INTEGRATION_VIEW)
    return pathway


def pathway_integration(request: HttpRequest, public_id: str) -> HttpResponse:
    """A pathway's integration: its latest notes, every experiment with its history, and its open and
    latest closed follow-ups, each list linking to its full, paginated list (a patient treated for
    years has hundreds of notes and thousands of follow-ups; the page must not grow with them)."""
    user = _user(request)
    pathway = _pathway_for_integration(request, public_id)
    notes = selectors.pathway_latest_notes(pathway)
    follow_ups = selectors.pathway_follow_ups_overview(pathway)
    context = {
        "title": f"Integration of {pathway.patient.full_name}",
        "pathway": pathway,
        "patient": pathway.patient,
        "notes": notes,
        "draft": notes.has_draft,
        "experiments": selectors.pathway_experiments(pathway, with_history=True),
        "follow_ups": follow_ups,
        "follow_ups_total": follow_ups.open.total + follow_ups.closed.total,
        "now": timezone.now(),
        "can_write": has_capability(user, Capability.INTEGRATION_WRITE)
        and pathway.therapist_id == user.pk
        and pathway.is_open,
    }
    services.pathway_integration_viewed(actor=user, pathway=pathway)
    return render(request, "integration/pathway.html", context)


def pathway_integration_notes(request: HttpRequest, public_id: str) -> HttpResponse:
    """Every integration note of a pathway, newest first, a page at a time (the integration page shows
    the latest few). The same readers as the integration page, and audited as a view of it."""
    user = _user(request)
    pathway = _pathway_for_integration(request, public_id)
    page = Paginator(selectors.pathway_notes_qs(pathway), NOTES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "title": f"Integration notes of {pathway.patient.full_name}",
        "pathway": pathway,
        "patient": pathway.patient,
        "page": page,
    }
    services.pathway_integration_viewed(actor=user, pathway=pathway)
    return render(request, "integration/pathway_notes.html", context)


def pathway_integration_follow_ups(request: HttpRequest, public_id: str) -> HttpResponse:
    """Every follow-up of a pathway, open and closed, newest due first, a page at a time (the
    integration page shows the open ones and the latest closed). Readers and audit as that page's."""
    user = _user(request)
    pathway = _pathway_for_integration(request, public_id)
    page = Paginator(selectors.pathway_all_follow_ups_qs(pathway), FOLLOW_UPS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "title": f"Follow-ups of {pathway.patient.full_name}",
        "pathway": pathway,
        "patient": pathway.patient,
        "page": page,
        "now": timezone.now(),
    }
    services.pathway_integration_viewed(actor=user, pathway=pathway)
    return render(request, "integration/pathway_follow_ups.html", context)


def _review_forms(
    note: IntegrationNote, live: list[Any], bound: dict[int, ExperimentReviewForm]
) -> list[dict[str, Any]]:
    return [
        {
            "experiment": experiment,
            "form": bound.get(experiment.pk)
            or ExperimentReviewForm(prefix=f"e{experiment.pk}", initial={"state": experiment.state}),
        }
        for experiment in live
    ]


def _render_note(
    request: HttpRequest,
    note: IntegrationNote,
    *,
    note_form: NoteForm | None = None,
    experiment_form: ExperimentForm | None = None,
    review_forms: dict[int, ExperimentReviewForm] | None = None,
    addendum_form: AddendumForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = _user(request)
    detail = selectors.note_detail(note)
    can_edit = not note.is_signed and note.author_id == user.pk
    held = timezone.localtime(note.held_at, user.zone)
    context = {
        "title": f"Integration note of {note.pathway.patient.full_name}",
        "note": note,
        "pathway": note.pathway,
        "patient": note.pathway.patient,
        "session": note.dosing_session,
        "detail": detail,
        "can_edit": can_edit,
        "can_add_addendum": note.is_signed and note.author_id == user.pk,
        "note_form": note_form
        or NoteForm(
            initial={
                "held_date": held.date(),
                "held_time": held.time().replace(second=0, microsecond=0),
                **{name: getattr(note, name) for name in services.NOTE_FIELDS},
            }
        ),
        "experiment_form": experiment_form or ExperimentForm(),
        "reviews": _review_forms(note, detail.live, review_forms or {}) if can_edit else [],
        "addendum_form": addendum_form or AddendumForm(),
        "area_labels": rules.EXPERIMENT_AREA_LABELS,
        "page_form": NOTE_PAGE_FORM if can_edit else "",
    }
    if can_edit:
        reviews = cast("list[dict[str, Any]]", context["reviews"])
        _on_page_form(context["note_form"], context["experiment_form"], *(r["form"] for r in reviews))
    services.note_viewed(actor=user, note=note, via="page")
    return render(request, "integration/note.html", context, status=status)


def note_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    return _render_note(request, selectors.get_note_for_user_or_404(_user(request), public_id))


def _note_for_writing(request: HttpRequest, public_id: str) -> IntegrationNote:
    note = selectors.get_note_for_user_or_404(_user(request), public_id)
    require_capability(request, Capability.INTEGRATION_WRITE)
    return note


NOTE_PAGE_FORM = "note-page"
"""The one form of a draft note's page: the answers, each experiment's review and a new experiment
all belong to it, and every button posts all of them, so no button throws away what was typed
elsewhere on the page."""

NOTE_MARKER = "with_note"
"""Sent by the page when the note's answers are on it (a post from elsewhere may carry only its part)."""


def _on_page_form(*forms: Any) -> None:
    for form in forms:
        for field in form.fields.values():
            field.widget.attrs["form"] = NOTE_PAGE_FORM


def _note_page_post(
    request: HttpRequest,
    note: IntegrationNote,
    *,
    pressed: str,
    experiment: Any = None,
) -> HttpResponse:
    """Save everything typed on the draft note's page, whichever of its buttons was pressed: the answers,
    each review changed, a new experiment filled in, then the button's own action (`sign`, `review` of
    `experiment`, `add`), each through its audited service, all or nothing. When anything is refused the
    page comes back with everything as typed and the refusal beside its field."""
    user = _user(request)
    posted = request.POST
    note_form = NoteForm(posted) if pressed in ("save", "sign") or NOTE_MARKER in posted else None
    live = selectors.note_detail(note).live
    reviews: dict[int, tuple[Any, ExperimentReviewForm]] = {}
    for item in live:
        if f"e{item.pk}-state" in posted and item.pk != getattr(experiment, "pk", None):
            reviews[item.pk] = (
                item,
                ExperimentReviewForm(
                    posted,
                    prefix=f"e{item.pk}",
                    initial={"state": item.state},
                    empty_permitted=True,
                    use_required_attribute=False,
                ),
            )
    if experiment is not None:
        reviews[experiment.pk] = (experiment, ExperimentReviewForm(posted, prefix=f"e{experiment.pk}"))
    if pressed == "add":
        experiment_form: ExperimentForm | None = ExperimentForm(posted)
    elif "area" in posted:
        experiment_form = ExperimentForm(posted, empty_permitted=True, use_required_attribute=False)
    else:
        experiment_form = None
    forms: list[Any] = [f for f in (note_form, experiment_form) if f is not None]
    forms += [form for _item, form in reviews.values()]
    if all([form.is_valid() for form in forms]):  # a list: every form validated, so all errors show
        step: Any = None
        try:
            with transaction.atomic():
                if note_form is not None:
                    step = note_form
                    data = note_form.cleaned_data
                    held_at = dt.datetime.combine(data["held_date"], data["held_time"], tzinfo=user.zone)
                    services.note_update(
                        actor=user,
                        note=note,
                        held_at=held_at,
                        **{name: data[name] for name in services.NOTE_FIELDS},
                    )
                for item, form in reviews.values():
                    if item is experiment or form.has_changed():
                        step = form
                        services.experiment_review(
                            actor=user, note=note, experiment=item, **form.cleaned_data
                        )
                if experiment_form is not None and (pressed == "add" or experiment_form.has_changed()):
                    step = experiment_form
                    services.experiment_add(actor=user, note=note, **experiment_form.cleaned_data)
                if pressed == "sign":
                    step = note_form
                    services.note_sign(actor=user, note=note)
        except ValidationError as error:
            if step is note_form and note_form is not None:
                form_errors_from(note_form, error, field_map={"held_at": "held_date"})
            else:
                form_errors_from(step, error)
        else:
            if pressed == "sign":
                messages.success(request, "The note is signed. Corrections from now on are addenda.")
            elif pressed == "add":
                messages.success(request, "The experiment is agreed.")
            elif pressed == "review":
                state = reviews[experiment.pk][1].cleaned_data["state"]
                messages.success(
                    request, f"“{experiment.description}” is {rules.EXPERIMENT_STATE_LABELS[state].lower()}."
                )
            else:
                messages.success(request, "The note is saved.")
            return HttpResponseRedirect(
                _note_url(note, "experiments" if pressed in ("add", "review") else "")
            )
    return _render_note(
        request,
        note,
        note_form=note_form,
        experiment_form=experiment_form,
        review_forms={pk: form for pk, (_item, form) in reviews.items()},
        status=400,
    )


@require_POST
def note_save(request: HttpRequest, public_id: str) -> HttpResponse:
    """Save the answers (and whatever else is typed on the page); with `sign`, save and sign in one step."""
    note = _note_for_writing(request, public_id)
    return _note_page_post(request, note, pressed="sign" if "sign" in request.POST else "save")


@require_POST
def experiment_add(request: HttpRequest, public_id: str) -> HttpResponse:
    note = _note_for_writing(request, public_id)
    return _note_page_post(request, note, pressed="add")


@require_POST
def experiment_review(request: HttpRequest, public_id: str, experiment_id: str) -> HttpResponse:
    user = _user(request)
    note = _note_for_writing(request, public_id)
    experiment = selectors.get_experiment_for_user_or_404(user, experiment_id)
    return _note_page_post(request, note, pressed="review", experiment=experiment)


@require_POST
def addendum_add(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    note = _note_for_writing(request, public_id)
    form = AddendumForm(request.POST)
    if form.is_valid():
        try:
            services.note_addendum_add(actor=user, note=note, text=form.cleaned_data["text"])
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, "The addendum is added.")
            return HttpResponseRedirect(_note_url(note, "addenda"))
    return _render_note(request, note, addendum_form=form, status=400)


# --- Follow-ups --------------------------------------------------------------------------------------

SCOPES = {"mine": "Mine", "clinic": "Whole clinic"}
COURSE_OUTCOME_MEASURES = (("phq9", "PHQ-9"), ("gad7", "GAD-7"), ("pcl5", "PCL-5"))
"""The measures an outcome follow-up after the course asks for (`rules.COURSE_OUTCOME_INSTRUMENTS`)."""
SHOWS = {"open": "Open", "overdue": "Overdue", "reminders": "Visit reminders", "closed": "Closed"}


def follow_up_list(request: HttpRequest) -> HttpResponse:
    require_capability(request, Capability.FOLLOW_UP_VIEW)
    user = _user(request)
    scope = request.GET.get("scope", "mine")
    scope = scope if scope in SCOPES else "mine"
    show = request.GET.get("show", "open")
    show = show if show in SHOWS else "open"
    page = Paginator(selectors.follow_ups_list(user, scope=scope, show=show), FOLLOW_UPS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    read_services.records_viewed(
        actor=user, model=FollowUp, records=page.object_list, patient="patient", via="page"
    )
    context = {
        "title": "Follow-ups",
        "page": page,
        "scope": scope,
        "show": show,
        "scopes": SCOPES,
        "shows": SHOWS,
        "extra": urlencode({"scope": scope, "show": show}),
        "now": timezone.now(),
    }
    return render(request, "integration/follow_up_list.html", context)


def _done_form(follow_up: FollowUp, data: Any = None) -> FollowUpDoneForm:
    if follow_up.kind == rules.FollowUpKind.CHECK_IN:
        return FollowUpDoneForm(
            data, label="How did the check-in go?", help_text="Reached, left a message, no answer…"
        )
    return FollowUpDoneForm(
        data, label="Reason for closing by hand", help_text="It closes by itself when its record is made."
    )


def _can_complete(user: User, follow_up: FollowUp) -> bool:
    if not follow_up.is_open or follow_up.kind in rules.NOTICE_ONLY_KINDS:
        return False
    needed = (
        Capability.FOLLOW_UP_CHECK_IN
        if follow_up.kind == rules.FollowUpKind.CHECK_IN
        else Capability.FOLLOW_UP_CLOSE
    )
    return has_capability(user, needed)


def follow_up_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    follow_up = selectors.get_follow_up_for_user_or_404(user, public_id)
    form = _done_form(follow_up, request.POST or None)
    if request.method != "POST":
        unsent = request.session.get(_unsent_outcome_key(follow_up.public_id), "")
        if unsent:
            form.initial["outcome"] = unsent
    form.fields["outcome"].widget.attrs["form"] = FOLLOW_UP_PAGE_FORM
    status = 200
    if request.method == "POST":
        if not _can_complete(user, follow_up):
            raise Http404()  # the same answer as a missing follow-up
        if form.is_valid():
            try:
                services.follow_up_complete(
                    actor=user, follow_up=follow_up, outcome=form.cleaned_data["outcome"]
                )
            except ValidationError as error:
                form_errors_from(form, error)
            else:
                request.session.pop(_unsent_outcome_key(follow_up.public_id), None)
                messages.success(request, f"{follow_up.get_kind_display()} recorded as done.")
                return HttpResponseRedirect(reverse("follow_up_detail", args=[follow_up.public_id]))
        status = 400
    context = {
        "title": f"{follow_up.label} for {follow_up.patient.full_name}",
        "follow_up": follow_up,
        "source": rules.FOLLOW_UP_SOURCES.get(rules.FollowUpKind(follow_up.kind)),
        "measure_links": COURSE_OUTCOME_MEASURES,
        "can_record_measures": follow_up.kind == rules.FollowUpKind.COURSE_OUTCOME
        and has_capability(user, Capability.MEASURE_RECORD)
        and follow_up.pathway.takes_measures,
        "overdue": follow_up.is_open
        and rules.is_overdue(kind=follow_up.kind, due_at=follow_up.due_at, now=timezone.now()),
        "form": form if _can_complete(user, follow_up) else None,
        "page_form": FOLLOW_UP_PAGE_FORM,
        "can_write_note": follow_up.kind == rules.FollowUpKind.INTEGRATION_SESSION
        and has_capability(user, Capability.INTEGRATION_WRITE)
        and follow_up.pathway.therapist_id == user.pk,
    }
    services.follow_up_viewed(actor=user, follow_up=follow_up, via="page")
    return render(request, "integration/follow_up_detail.html", context, status=status)


def integration_settings(request: HttpRequest) -> HttpResponse:
    """The clinic's follow-up timings, for clinic admins."""
    require_capability(request, Capability.CLINIC_SETTINGS_MANAGE)
    user = _user(request)
    current = selectors.integration_settings_for(user.member_clinic_id)
    form = IntegrationSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            services.integration_settings_update(
                actor=user, **{name: form.cleaned_data[name] for name in services.SETTINGS_FIELDS}
            )
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, "The follow-up settings are saved.")
            return HttpResponseRedirect(reverse("integration_settings"))
    return render(
        request,
        "integration/settings.html",
        {"title": "Follow-up settings", "form": form},
        status=400 if form.errors else 200,
    )


# --- Summaries ---------------------------------------------------------------------------------------


@require_POST
def summary_request(request: HttpRequest) -> HttpResponse:
    """Ask for a record's PDF summary, then watch it being made on its page."""
    user = _user(request)
    try:
        summary = summary_services.summary_request(
            actor=user, kind=request.POST.get("kind", ""), record_public_id=request.POST.get("record", "")
        )
    except NotFoundOrForbidden:
        raise Http404() from None
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(request.POST.get("next") or reverse("dashboard"))
    return HttpResponseRedirect(reverse("summary_detail", args=[summary.public_id]))


def summary_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    summary = selectors.get_summary_for_user_or_404(user, public_id)
    read_services.record_viewed(actor=user, record=summary, patient="pathway.patient", via="page")
    context = {
        "title": f"{summary.get_kind_display()} summary of {summary.pathway.patient.full_name}",
        "summary": summary,
        "patient": summary.pathway.patient,
        "retry_offered": summary_services.summary_retry_offered(summary),
    }
    return render(request, "integration/summary.html", context)


def summary_status(request: HttpRequest, public_id: str) -> JsonResponse:
    """The summary's state for the page's script, which offers the download when it is ready, and
    "Try again" when it has waited too long."""
    summary = selectors.get_summary_for_user_or_404(_user(request), public_id)
    return JsonResponse(
        {
            "status": summary.status,
            "pages": summary.page_count,
            "error": summary.error,
            "retry_offered": summary_services.summary_retry_offered(summary),
            "download_url": reverse("summary_download", args=[summary.public_id])
            if summary.status == SummaryStatus.READY
            else None,
        }
    )


def summary_download(request: HttpRequest, public_id: str) -> HttpResponseBase:
    user = _user(request)
    summary = selectors.get_summary_for_user_or_404(user, public_id)
    try:
        path = summary_services.summary_for_download(actor=user, summary=summary)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(reverse("summary_detail", args=[summary.public_id]))
    patient = summary.pathway.patient
    made = timezone.localdate(summary.ready_at)
    name = f"{patient.record_number}-{summary.kind.replace('_', '-')}-{made:%Y-%m-%d}.pdf"
    response = FileResponse(
        path.open("rb"), as_attachment=True, filename=name, content_type="application/pdf"
    )
    response["Cache-Control"] = "private, no-store"
    return response
