"""EMDR pages: the target plan with its readiness checklist, targets with their ratings over time, and
the session log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from kaemdr import charts
from kaemdr.exceptions import error_citation
from kaemdr.exceptions import error_items
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.templatetags.kaemdr_tags import cite
from kaemdr.views import form_errors_from
from kaemdr.views import request_user as _user
from kaemdr.views import require_capability
from pathways.selectors import get_pathway_for_user_or_404
from sessions.emdr import rules as emdr_rules
from sessions.emdr import selectors
from sessions.emdr import services
from sessions.emdr.forms import KIND_BADGES
from sessions.emdr.forms import OverrideForm
from sessions.emdr.forms import ProtocolForm
from sessions.emdr.forms import ReadinessForm
from sessions.emdr.forms import SessionLogForm
from sessions.emdr.forms import TargetForm
from sessions.models import EMDR_KIND_CHOICES
from sessions.models import DosingSession
from sessions.models import EmdrPlan
from sessions.models import EmdrTargetWork


def _plan_url(plan: EmdrPlan, anchor: str = "") -> str:
    return reverse("emdr_plan", args=[plan.public_id]) + (f"#{anchor}" if anchor else "")


def _refusal_message(prefix: str, error: ValidationError) -> SafeString:
    """A service's refusal as a page message: each reason with its source, linked where it has one."""
    parts = []
    for _, item in error_items(error):
        text = " ".join(item.messages)
        citation = error_citation(item)
        parts.append((format_html("{} (Source: {}.)", text, cite(citation)) if citation else text,))
    return format_html("{}{}", prefix, format_html_join(" ", "{}", parts))


@require_POST
def plan_open(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    pathway = get_pathway_for_user_or_404(user, public_id)
    require_capability(request, Capability.EMDR_EDIT)
    try:
        plan = services.plan_open(actor=user, pathway=pathway)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(reverse("pathway_detail", args=[pathway.public_id]))
    return HttpResponseRedirect(_plan_url(plan))


PLAN_PAGE_FORM = "emdr-plan-page"
"""The one form of the EMDR plan's page for its therapist: a target being added, the readiness
observations, the protocol and each override's reason all belong to it, and every button (add, save
observations, change protocol, start, sign an override) posts all of them. The button's own action
runs with whatever else was changed on the page, all or nothing; a reason typed for an override that
was not signed is kept in the visitor's own (server-side) session. A refusal shows the page again with
everything as typed."""

PLAN_MARKER = "with_plan"
"""Sent by the page's one form (a post from elsewhere carries only its own part, as before)."""

TARGET_INITIAL = {"kind": EMDR_KIND_CHOICES[0][0]}


def _can_edit_plan(user: Any, plan: EmdrPlan) -> bool:
    return has_capability(user, Capability.EMDR_EDIT) and plan.pathway.therapist_id == user.pk


def _override_prefix(target: Any) -> str:
    return f"o-{target.public_id}"


def _unsent_override_key(target: Any) -> str:
    return f"emdr-unsent-override-{target.public_id}"


def _readiness_initial(plan: EmdrPlan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in ReadinessForm.base_fields}


def _on_plan_page_form(*forms: Any) -> None:
    for form in forms:
        if form is not None:
            for field in form.fields.values():
                field.widget.attrs["form"] = PLAN_PAGE_FORM


def _render_plan(
    request: HttpRequest, plan: EmdrPlan, *, target_form: TargetForm | None = None, status: int = 200
) -> HttpResponse:
    """The plan's page; after a refused post of its one form every field is shown as posted."""
    user = _user(request)
    state = selectors.plan_state(plan)
    targets, checklist, ready, proposal = state.targets, state.checklist, state.ready, state.proposal
    can_edit = _can_edit_plan(user, plan)
    posted = request.POST if request.method == "POST" and PLAN_MARKER in request.POST else None
    rows = []
    for target in targets:
        # The row shows why a target waits; for a past memory the readiness card already lists the
        # criteria, so only its order problems are repeated here.
        problems = [
            problem
            for problem in state.problems.get(target.pk, [])
            if not problem.code.startswith("emdr_readiness_")
        ]
        rows.append(
            {
                "target": target,
                "badge": KIND_BADGES[emdr_rules.State(target.state)],
                "problems": problems,
                "is_next": proposal.target is not None and proposal.target.key == target.pk,
                "gated": target.kind == emdr_rules.Kind.PAST_MEMORY and target.state == "not_started",
                "override_form": _override_form(request, target, posted) if can_edit else OverrideForm(),
            }
        )
    proposed = next((t for t in targets if proposal.target and t.pk == proposal.target.key), None)
    context = {
        "title": f"EMDR plan of {plan.pathway.patient.full_name}",
        "plan": plan,
        "pathway": plan.pathway,
        "patient": plan.pathway.patient,
        "rows": rows,
        "checklist": checklist,
        "ready": ready,
        "proposal": proposal,
        "proposed": proposed,
        "protocol_label": emdr_rules.PROTOCOL_LABELS[emdr_rules.Protocol(plan.protocol)],
        "protocol_form": ProtocolForm(
            initial={"protocol": posted.get("protocol", plan.protocol) if posted else plan.protocol}
        )
        if can_edit
        else None,
        "windows": selectors.dosing_windows(plan),
        "can_edit": can_edit,
        "can_cosign": has_capability(user, Capability.EMDR_OVERRIDE_COSIGN),
        "target_form": target_form
        or (TargetForm(targets=targets, initial=TARGET_INITIAL) if can_edit else None),
        "readiness_form": ReadinessForm(
            initial={name: name in posted for name in ReadinessForm.base_fields}
            if posted
            else _readiness_initial(plan)
        )
        if can_edit
        else None,
        "override_form": OverrideForm(),
        "page_form": PLAN_PAGE_FORM if can_edit else "",
        "blocked_steps": emdr_rules.BLOCKED_NEXT_STEPS,
        "sessions": list(
            plan.sessions.prefetch_related(
                Prefetch("work", queryset=EmdrTargetWork.objects.select_related("target"))
            ).order_by("-held_at", "-id")[:20]
        ),
    }
    if can_edit:
        _on_plan_page_form(
            context["target_form"],
            context["readiness_form"],
            context["protocol_form"],
            *(row["override_form"] for row in rows),
        )
    services.plan_viewed(actor=user, plan=plan, via="page")
    return render(request, "sessions/emdr_plan.html", context, status=status)


def _override_form(request: HttpRequest, target: Any, posted: Any) -> OverrideForm:
    """A gated target's override reason on its therapist's page: as posted after a refusal, else as
    kept from an earlier post of the page, else empty."""
    prefix = _override_prefix(target)
    if posted is not None:
        reason = posted.get(f"{prefix}-reason", "")
    else:
        reason = request.session.get(_unsent_override_key(target), "")
    return OverrideForm(prefix=prefix, initial={"reason": reason})


def _plan_page_post(
    request: HttpRequest, plan: EmdrPlan, *, pressed: str, target: Any = None
) -> HttpResponse:
    """Save everything changed on the plan's page, whichever of its buttons was pressed (`add`,
    `readiness`, `protocol`, `start` or `override` of `target`), each through its audited service, all
    or nothing; the pressed button's own action last. Override reasons typed for targets not signed
    are kept in the session. A refusal shows the page again with everything as typed."""
    user = _user(request)
    posted = request.POST
    targets = list(plan.targets.all())
    target_form = TargetForm(
        posted,
        targets=targets,
        initial=TARGET_INITIAL,
        **({} if pressed == "add" else {"empty_permitted": True, "use_required_attribute": False}),
    )
    readiness_form = ReadinessForm(posted, initial=_readiness_initial(plan))
    protocol_form = (
        ProtocolForm(posted, initial={"protocol": plan.protocol}) if "protocol" in posted else None
    )
    forms: list[Any] = [f for f in (target_form, readiness_form, protocol_form) if f is not None]
    if all([form.is_valid() for form in forms]):  # a list: every form validated, so all errors show
        step: Any = None
        notes: list[str] = []
        try:
            with transaction.atomic():
                if pressed == "readiness" or readiness_form.has_changed():
                    step = readiness_form
                    services.plan_readiness_update(actor=user, plan=plan, **readiness_form.cleaned_data)
                if protocol_form is not None and (pressed == "protocol" or protocol_form.has_changed()):
                    step = protocol_form
                    change = services.plan_protocol_set(
                        actor=user, plan=plan, protocol=protocol_form.cleaned_data["protocol"]
                    )
                    notes += (["The protocol is changed."] if change.changed else []) + change.notes
                if pressed == "add" or target_form.has_changed():
                    step = target_form
                    data = dict(target_form.cleaned_data)
                    belongs_to = list(data.pop("belongs_to"))
                    services.target_add(actor=user, plan=plan, belongs_to=belongs_to, **data)
                if pressed == "start":
                    step = None
                    services.target_start(actor=user, target=target)
                if pressed == "override":
                    step = None
                    signed = services.target_override_sign(
                        actor=user,
                        target=target,
                        reason=posted.get(f"{_override_prefix(target)}-reason", ""),
                    )
        except ValidationError as error:
            if step is target_form:
                form_errors_from(target_form, error)
            else:
                prefix = f"{target.title} cannot start yet: " if pressed == "start" else ""
                messages.error(request, _refusal_message(prefix, error))
        else:
            for item in targets:
                reason = posted.get(f"{_override_prefix(item)}-reason", "").strip()
                key = _unsent_override_key(item)
                if reason and not (item == target and pressed == "override"):
                    request.session[key] = reason
                elif f"{_override_prefix(item)}-reason" in posted or item == target:
                    request.session.pop(key, None)  # signed, or emptied on the page
            if pressed == "override":
                notes = [
                    "The override is signed by both."
                    if signed.override_signed
                    else "Signed; the override counts once the prescriber countersigns."
                ]
            messages.success(request, _plan_page_message(pressed, target, target_form, notes))
            anchor = {"readiness": "readiness", "protocol": "protocol"}.get(pressed, "targets")
            return HttpResponseRedirect(_plan_url(plan, anchor))
    return _render_plan(request, plan, target_form=target_form, status=400)


def _plan_page_message(pressed: str, target: Any, target_form: TargetForm, notes: list[str]) -> str:
    """The success message of the button pressed, with what a protocol changed alongside it did."""
    if pressed == "add":
        return " ".join([f"{target_form.cleaned_data['title']} is on the plan.", *notes])
    if pressed == "start":
        return " ".join([f"{target.title} is in progress.", *notes])
    if pressed == "override":
        return notes[0]
    if pressed == "protocol":
        return " ".join(notes) or "The plan is saved."
    return "The readiness checklist is saved." if pressed == "readiness" else "The plan is saved."


def _from_plan_page(request: HttpRequest, plan: EmdrPlan) -> bool:
    return PLAN_MARKER in request.POST and _can_edit_plan(_user(request), plan)


def plan_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    """The plan's page; a post of its one form (Enter in a field) saves whatever was changed on it."""
    plan = selectors.get_plan_for_user_or_404(_user(request), public_id)
    if request.method == "POST":
        require_capability(request, Capability.EMDR_EDIT)
        if not _from_plan_page(request, plan):
            raise Http404()  # the same answer as a missing plan
        return _plan_page_post(request, plan, pressed="save")
    return _render_plan(request, plan)


@require_POST
def target_add(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    plan = selectors.get_plan_for_user_or_404(user, public_id)
    require_capability(request, Capability.EMDR_EDIT)
    if _from_plan_page(request, plan):
        return _plan_page_post(request, plan, pressed="add")
    form = TargetForm(request.POST, targets=list(plan.targets.all()))
    if form.is_valid():
        data = dict(form.cleaned_data)
        belongs_to = list(data.pop("belongs_to"))
        try:
            services.target_add(actor=user, plan=plan, belongs_to=belongs_to, **data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, f"{data['title']} is on the plan.")
            return HttpResponseRedirect(_plan_url(plan, "targets"))
    return _render_plan(request, plan, target_form=form, status=400)


@require_POST
def readiness_update(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    plan = selectors.get_plan_for_user_or_404(user, public_id)
    require_capability(request, Capability.EMDR_EDIT)
    if _from_plan_page(request, plan):
        return _plan_page_post(request, plan, pressed="readiness")
    form = ReadinessForm(request.POST)
    form.is_valid()
    services.plan_readiness_update(actor=user, plan=plan, **form.cleaned_data)
    messages.success(request, "The readiness checklist is saved.")
    return HttpResponseRedirect(_plan_url(plan, "readiness"))


@require_POST
def protocol_set(request: HttpRequest, public_id: str) -> HttpResponse:
    """Change the order the plan takes its targets in; the message says what changes."""
    user = _user(request)
    plan = selectors.get_plan_for_user_or_404(user, public_id)
    require_capability(request, Capability.EMDR_EDIT)
    if _from_plan_page(request, plan):
        return _plan_page_post(request, plan, pressed="protocol")
    form = ProtocolForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("protocol", [])))
        return HttpResponseRedirect(_plan_url(plan, "protocol"))
    try:
        change = services.plan_protocol_set(actor=user, plan=plan, protocol=form.cleaned_data["protocol"])
    except ValidationError as error:
        messages.error(request, _refusal_message("", error))
    else:
        if change.changed:
            messages.success(request, "The protocol is changed. " + " ".join(change.notes))
        else:
            messages.info(request, " ".join(change.notes))
    return HttpResponseRedirect(_plan_url(plan, "protocol"))


@require_POST
def target_start(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    target = selectors.get_target_for_user_or_404(user, public_id)
    require_capability(request, Capability.EMDR_EDIT)
    if _from_plan_page(request, target.plan):
        return _plan_page_post(request, target.plan, pressed="start", target=target)
    try:
        services.target_start(actor=user, target=target)
    except ValidationError as error:
        messages.error(request, _refusal_message(f"{target.title} cannot start yet: ", error))
    else:
        messages.success(request, f"{target.title} is in progress.")
    return HttpResponseRedirect(_plan_url(target.plan, "targets"))


@require_POST
def target_override(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    # Only therapists and prescribers reach a target at all; which of them signs what is the service's.
    target = selectors.get_target_for_user_or_404(user, public_id)
    if _from_plan_page(request, target.plan):
        return _plan_page_post(request, target.plan, pressed="override", target=target)
    form = OverrideForm(request.POST)
    form.is_valid()
    try:
        signed = services.target_override_sign(
            actor=user, target=target, reason=form.cleaned_data.get("reason", "")
        )
    except ValidationError as error:
        messages.error(request, _refusal_message("", error))
    else:
        messages.success(
            request,
            "The override is signed by both."
            if signed.override_signed
            else "Signed; the override counts once the prescriber countersigns.",
        )
    return HttpResponseRedirect(_plan_url(target.plan, "targets"))


def _dosing_choices(plan: EmdrPlan) -> list[tuple[str, str]]:
    return [
        (
            str(window.session.public_id),
            f"Dose of {timezone.localtime(window.opens_at):%a %-d %b %H:%M}"
            + (" (window open)" if window.is_open else ""),
        )
        for window in selectors.dosing_windows(plan)
    ]


def session_log(request: HttpRequest, public_id: str) -> HttpResponse:
    """Log an EMDR session with the target worked, its ratings and its closure."""
    user = _user(request)
    plan = selectors.get_plan_for_user_or_404(user, public_id)
    require_capability(request, Capability.EMDR_EDIT)
    now = timezone.localtime()
    under_way = selectors.current_target(plan) if request.method != "POST" else None
    form = SessionLogForm(
        request.POST or None,
        targets=plan.targets.exclude(state="resolved"),
        dosing_choices=_dosing_choices(plan),
        initial={
            "held_date": now.date(),
            "held_time": now.time().replace(second=0, microsecond=0),
            "phase_reached": 7,
            "target": under_way.public_id if under_way else None,
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        tz = user.zone
        dosing = None
        if data.get("dosing_session"):
            dosing = DosingSession.objects.filter(
                public_id=data["dosing_session"], booking__pathway_id=plan.pathway_id
            ).first()
        work = {
            name: data.get(name)
            for name in (
                "sud_start",
                "sud_end",
                "voc_start",
                "voc_end",
                "sud_by_set",
                "interweaves",
                "body_scan_clear",
            )
        }
        work["target"] = data["target"]
        try:
            services.session_log(
                actor=user,
                plan=plan,
                held_at=dt.datetime.combine(data["held_date"], data["held_time"], tzinfo=tz),
                phase_reached=data["phase_reached"],
                stimulation=data["stimulation"],
                closure_technique=data.get("closure_technique", ""),
                dosing_session=dosing,
                works=[work],
            )
        except ValidationError as error:
            form_errors_from(
                form,
                error,
                field_map={
                    "works.0.sud_start": "sud_start",
                    "works.0.sud_end": "sud_end",
                    "works.0.voc_start": "voc_start",
                    "works.0.voc_end": "voc_end",
                    "works.0.sud_by_set": "sud_by_set",
                    "held_at": "held_date",
                },
            )
        else:
            messages.success(request, "The session is logged.")
            return HttpResponseRedirect(_plan_url(plan, "targets"))
    services.plan_viewed(actor=user, plan=plan, via="session_log_page")
    context = {"title": "Log an EMDR session", "form": form, "plan": plan, "patient": plan.pathway.patient}
    return render(request, "sessions/emdr_log.html", context, status=400 if form.errors else 200)


def target_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    """A target with its SUD and VOC across sessions, as a chart and a table."""
    user = _user(request)
    target = selectors.get_target_for_user_or_404(user, public_id)
    works = list(
        EmdrTargetWork.objects.filter(target=target).select_related("session").order_by("session__held_at")
    )
    tz = user.zone
    points_sud = [(w.session.held_at, float(w.sud_end)) for w in works if w.sud_end is not None]
    points_voc = [(w.session.held_at, float(w.voc_end)) for w in works if w.voc_end is not None]
    chart = (
        charts.line_chart_svg(
            title=f"{target.title}: SUD and VOC at the end of each session",
            series=[charts.Series("SUD (0-10)", points_sud), charts.Series("VOC (1-7)", points_voc)],
            y_min=0,
            y_max=10,
            thresholds=[
                charts.Threshold("SUD 1", 1, "SUD (0-10)"),
                charts.Threshold("VOC 6", 6, "VOC (1-7)"),
            ],
            tz=tz,
        )
        if works
        else ""
    )
    # One session is no trend: its end values as text ("SUD 2 on 3 Dec 2026").
    chart_text = (
        "; ".join(
            charts.point_text(label, *points[-1], tz=tz)
            for label, points in (("SUD", points_sud), ("VOC", points_voc))
            if points
        )
        if works and not chart
        else ""
    )
    context: dict[str, Any] = {
        "title": target.title,
        "target": target,
        "chart_text": chart_text,
        "plan": target.plan,
        "patient": target.plan.pathway.patient,
        "works": works,
        "chart": chart,
    }
    services.plan_viewed(actor=user, plan=target.plan, via="page", target=target)
    return render(request, "sessions/emdr_target.html", context)
