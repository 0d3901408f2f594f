"""The session page: the dosing record from pre-dose checks to signature, and each of its actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.views import form_errors_from
from kaemdr.views import request_user as _user
from kaemdr.views import require_capability
from sessions.booking import esketamine_rules
from sessions.booking import selectors as booking_selectors
from sessions.models import DosingSession
from sessions.models import SessionStatus
from sessions.models import VitalsReading
from sessions.record import rules
from sessions.record import selectors
from sessions.record import services
from sessions.record.forms import AddendumForm
from sessions.record.forms import AdverseEventForm
from sessions.record.forms import BpReviewForm
from sessions.record.forms import DeviceForm
from sessions.record.forms import DischargeForm
from sessions.record.forms import DoseEndForm
from sessions.record.forms import DoseForm
from sessions.record.forms import DoseOverrideForm
from sessions.record.forms import LeaveChecklistForm
from sessions.record.forms import OverrideForm
from sessions.record.forms import PmfForm
from sessions.record.forms import PmfMedicationsForm
from sessions.record.forms import ScaleForm
from sessions.record.forms import SessionChecksForm
from sessions.record.forms import VitalsForm

# --- The session record ------------------------------------------------------------------------------


@require_POST
def session_open(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    booking = booking_selectors.get_booking_for_user_or_404(user, public_id)
    require_capability(request, Capability.SESSION_RECORD)
    try:
        session = services.session_open(actor=user, booking=booking)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(reverse("booking_detail", args=[booking.public_id]))
    return HttpResponseRedirect(reverse("session_detail", args=[session.public_id]))


def _monitoring_form_shown(session: DosingSession, label: str) -> bool:
    """Whether the record shows the REMS monitoring form: esketamine under the clinic's US label, or a
    signed record that owes it (settled at signature)."""
    return services.monitoring_form_owed(session, label=label)


def _session_forms(session: DosingSession, user: User, *, label: str) -> dict[str, Any]:
    """The forms the record offers at its current status, unbound (`label`: the clinic's esketamine
    label, which sets the monitoring form or the Readiness to Leave checklist)."""
    status = session.status
    can_record = has_capability(user, Capability.SESSION_RECORD)
    forms: dict[str, Any] = {}
    if not can_record:
        return forms
    esketamine = session.booking.agent == "esketamine"
    monitoring_form = _monitoring_form_shown(session, label)
    if status == SessionStatus.PRE_DOSE:
        forms["checks"] = SessionChecksForm(
            initial={
                name: getattr(session, name)
                for name in ("fasting_confirmed", "escort_present", "consent_confirmed")
            }
        )
        forms["dose"] = DoseForm(esketamine=esketamine)
        if has_capability(user, Capability.SESSION_OVERRIDE):
            forms["override"] = OverrideForm()
            if not esketamine:  # esketamine has fixed doses, no mg/kg range to approve a dose outside
                forms["dose_override"] = DoseOverrideForm()
    if status in (SessionStatus.PRE_DOSE, SessionStatus.DOSED):
        forms["vitals"] = VitalsForm()
        forms["scale"] = ScaleForm()
    if status in (SessionStatus.PRE_DOSE, SessionStatus.DOSED, SessionStatus.DISCHARGED):
        forms["adverse_event"] = AdverseEventForm()
    if status == SessionStatus.DOSED:
        forms["discharge"] = DischargeForm(initial={"escort_present": session.escort_present})
        if session.dose_ended_at is None:
            forms["dose_end"] = DoseEndForm()
            if esketamine:
                forms["device"] = DeviceForm()
        if has_capability(user, Capability.SESSION_OVERRIDE):
            forms["bp_review"] = BpReviewForm()
        if services.leave_checklist_due(session, label=label):
            forms["leave_checklist"] = LeaveChecklistForm(initial={"items": session.leave_checklist})
    if monitoring_form and status in (SessionStatus.DOSED, SessionStatus.DISCHARGED):
        forms["pmf"] = PmfForm(initial={name: getattr(session, name) for name in services.PMF_FIELDS})
    if (
        monitoring_form
        and status != SessionStatus.SIGNED
        and has_capability(user, Capability.SESSION_OVERRIDE)
    ):
        forms["pmf_medications"] = PmfMedicationsForm(
            choices=selectors.rems_medication_classes(),
            initial={
                "classes": session.pmf_medication_classes
                if session.pmf_medications_confirmed_at
                else selectors.rems_classes_in_review(session)
            },
        )
    if status == SessionStatus.SIGNED:
        forms["addendum"] = AddendumForm()
    return forms


def _reading_rows(readings: list[VitalsReading], limits: rules.VitalLimits) -> list[dict[str, Any]]:
    """The readings table's rows: each reading with what is near the clinic's limits (a display aid,
    computed here, not stored) and how each cell is marked ("out" or "near")."""
    rows = []
    for reading in readings:
        values = _reading_values(reading)
        near = rules.vital_near_flags(values, limits)
        marks = rules.vital_cell_marks(values, limits)
        pressure = {marks.get("systolic"), marks.get("diastolic")}
        marks["pressure"] = "out" if "out" in pressure else "near" if "near" in pressure else ""
        rows.append({"reading": reading, "near": [n.message for n in near], "marks": marks})
    return rows


def _reading_values(reading: VitalsReading) -> rules.Reading:
    return rules.Reading(
        reading.systolic, reading.diastolic, reading.heart_rate, reading.spo2, reading.respiratory_rate
    )


def _render_session(
    request: HttpRequest,
    session: DosingSession,
    *,
    bound: tuple[str, Any] | None = None,
    status: int = 200,
    parts_loaded: bool = False,
) -> HttpResponse:
    """The record's page; the record is read again with its parts unless the caller just did."""
    user = _user(request)
    full = session if parts_loaded else selectors.session_with_parts(session)
    settings = booking_selectors.dosing_settings_for(full.clinic_id)
    label = settings.esketamine_label
    forms = _session_forms(full, user, label=label)
    if bound is not None:
        forms[bound[0]] = bound[1]
    readings = list(full.vitals.all())
    last = readings[-1] if readings else None
    limits = selectors.vital_limits(settings)
    esketamine = full.booking.agent == "esketamine"
    monitoring_form = _monitoring_form_shown(full, label)
    pmf_facts = selectors.pmf_facts(full, settings=settings) if monitoring_form else None
    # The preview assumes what the discharge form asks (alert, escort, dissociation by CADSS only).
    discharge_missing = (
        rules.discharge_missing(
            services.discharge_state(full, alert_and_oriented=True, escort_present=True, settings=settings)
        )
        + services.leave_checklist_criteria(full, label=label)
        if full.status == SessionStatus.DOSED
        else []
    )
    context: dict[str, Any] = {
        "title": f"Session record of {full.booking.patient.full_name}",
        "session": full,
        "booking": full.booking,
        "patient": full.booking.patient,
        "readings": readings,
        "reading_rows": _reading_rows(readings, limits),
        "vitals_chart": selectors.vitals_chart(
            [(r.taken_at, _reading_values(r)) for r in readings], limits, user.zone
        ),
        "forms": forms,
        "pre_dose_problems": services.session_pre_dose_problems(full)
        if full.status == SessionStatus.PRE_DOSE
        else [],
        "next_vitals_at": (
            last.taken_at + dt.timedelta(minutes=settings.vitals_interval_minutes)
            if last and full.status == SessionStatus.DOSED
            else None
        ),
        "mg_per_kg": (
            rules.mg_per_kg(float(full.dose_mg), float(full.weight_kg))
            if full.dose_mg and full.weight_kg and full.booking.agent != "esketamine"
            else None
        ),
        "dose_range": selectors.session_dose_range(full) if full.status == SessionStatus.PRE_DOSE else None,
        "dose_approved": full.dose_override_at is not None
        and (full.dose_mg is None or full.dose_mg == full.dose_override_mg),
        "discharge_missing": discharge_missing,
        "bp_review_due": any(c.code == "bp_rise_review" for c in discharge_missing),
        "pmf_facts": pmf_facts,
        "pmf_missing": (
            rules.pmf_missing(pmf_facts)
            if pmf_facts is not None and full.status in (SessionStatus.DOSED, SessionStatus.DISCHARGED)
            else []
        ),
        "late_entries": {
            "dose_started": rules.entered_late_at(full.dose_started_at, full.dose_started_entered_at),
            "dose_ended": rules.entered_late_at(full.dose_ended_at, full.dose_ended_entered_at),
        },
        "device_times_local": [
            f"{dt.datetime.fromisoformat(t).astimezone(user.zone):%H:%M}" for t in full.device_times
        ],
        "devices_planned": rules.esketamine_planned_devices(float(full.dose_mg or 0)) if esketamine else None,
        "medication_labels": dict(selectors.rems_medication_classes()),
        "pmf_deadline": (
            rules.pmf_deadline(timezone.localtime(full.dose_started_at).date())
            if monitoring_form and full.dose_started_at is not None
            else None
        ),
        "monitoring_form": monitoring_form,
        "leave_checklist_source": esketamine_rules.SOURCE_LEAVE_CHECKLIST,
        # The Readiness to Leave checklist (EU/UK label), item by item, while due or once recorded.
        "leave_checklist": (
            [(item, item.code in full.leave_checklist) for item in esketamine_rules.LEAVE_CHECKLIST]
            if esketamine and (full.leave_checklist_at or services.leave_checklist_due(full, label=label))
            else []
        ),
        "can_record": has_capability(user, Capability.SESSION_RECORD),
        "can_sign": has_capability(user, Capability.SESSION_RECORD)
        and full.status == SessionStatus.DISCHARGED,
    }
    services.session_viewed(actor=user, session=full, via="page")
    return render(request, "sessions/session_detail.html", context, status=status)


def _render_session_logistics(request: HttpRequest, session: DosingSession) -> HttpResponse:
    """The record's logistics, for a reader who may see the booking but not the record's clinical
    content (a clinic admin whose clinic does not grant it): room, booked times, staff, status, when
    it was opened and signed. Nothing clinical is read, so nothing clinical can reach the page."""
    booking = session.booking
    context = {
        "title": f"Dosing session of {booking.patient.full_name}",
        "session": session,
        "booking": booking,
        "patient": booking.patient,
    }
    services.session_viewed(actor=_user(request), session=session, via="page")
    return render(request, "sessions/session_logistics.html", context)


def session_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    if not selectors.can_read_session_clinical(user):
        return _render_session_logistics(request, selectors.get_session_for_user_or_404(user, public_id))
    session = selectors.get_session_for_user_or_404(user, public_id, with_parts=True)
    return _render_session(request, session, parts_loaded=True)


SESSION_ACTIONS = (
    "leave_checklist",
    "checks",
    "vitals",
    "override",
    "dose_override",
    "dose",
    "device",
    "dose_end",
    "bp_review",
    "pmf_medications",
    "scale",
    "adverse_event",
    "discharge",
    "pmf",
    "sign",
    "pmf_filed",
    "addendum",
)


def _entered(time_of_day: dt.time | None, tz: dt.tzinfo) -> dt.datetime | None:
    """A time of day typed on the record as the instant it means (None: now, by the server's clock)."""
    if time_of_day is None:
        return None
    return rules.time_of_day_to_instant(time_of_day, timezone.now().astimezone(tz))


PRESCRIBER_ACTIONS = ("override", "dose_override", "bp_review", "pmf_medications")


@require_POST
def session_action(request: HttpRequest, public_id: str, action: str) -> HttpResponse:
    """One step of the record (`action`), through its service; a refusal re-shows the page with the
    reasons at the form, the rest of the input kept."""
    user = _user(request)
    session = selectors.get_session_for_user_or_404(user, public_id)
    if action not in SESSION_ACTIONS:
        raise Http404()
    require_capability(
        request,
        Capability.SESSION_OVERRIDE if action in PRESCRIBER_ACTIONS else Capability.SESSION_RECORD,
    )
    tz = user.zone
    form: Any = None
    try:
        if action == "sign":
            services.session_sign(actor=user, session=session)
            messages.success(request, "The record is signed.")
        elif action == "pmf_filed":
            services.pmf_mark_filed(actor=user, session=session)
            messages.success(request, "The monitoring form is marked as filed.")
        else:
            form = {
                "checks": lambda: SessionChecksForm(request.POST),
                "vitals": lambda: VitalsForm(request.POST),
                "override": lambda: OverrideForm(request.POST),
                "dose_override": lambda: DoseOverrideForm(request.POST),
                "dose": lambda: DoseForm(request.POST, esketamine=session.booking.agent == "esketamine"),
                "device": lambda: DeviceForm(request.POST),
                "dose_end": lambda: DoseEndForm(request.POST),
                "bp_review": lambda: BpReviewForm(request.POST),
                "pmf_medications": lambda: PmfMedicationsForm(
                    request.POST, choices=selectors.rems_medication_classes()
                ),
                "scale": lambda: ScaleForm(request.POST),
                "adverse_event": lambda: AdverseEventForm(request.POST),
                "discharge": lambda: DischargeForm(request.POST),
                "leave_checklist": lambda: LeaveChecklistForm(request.POST),
                "pmf": lambda: PmfForm(request.POST),
                "addendum": lambda: AddendumForm(request.POST),
            }[action]()
            if not form.is_valid():
                return _render_session(request, session, bound=(action, form), status=400)
            data = form.cleaned_data
            if action == "checks":
                services.session_checks_update(actor=user, session=session, **data)
            elif action == "vitals":
                reading = services.vitals_record(
                    actor=user, session=session, **{**data, "taken_at": _entered(data.get("taken_at"), tz)}
                )
                for flag in reading.flags:
                    messages.error(request, f"Out of range: {flag}")
            elif action == "override":
                services.session_override_sign(actor=user, session=session, **data)
            elif action == "dose_override":
                services.session_dose_override_sign(actor=user, session=session, **data)
            elif action == "dose":
                services.dose_start(
                    actor=user,
                    session=session,
                    dose_mg=data["dose_mg"],
                    lot_number=data["lot_number"],
                    started_at=_entered(data["started_at"], tz),
                )
            elif action == "device":
                services.device_record(actor=user, session=session, given_at=_entered(data["given_at"], tz))
            elif action == "dose_end":
                services.dose_end_record(actor=user, session=session, ended_at=_entered(data["ended_at"], tz))
            elif action == "bp_review":
                services.session_bp_review_sign(actor=user, session=session, **data)
            elif action == "pmf_medications":
                services.pmf_medications_confirm(actor=user, session=session, **data)
            elif action == "scale":
                services.scale_record(
                    actor=user, session=session, **{**data, "taken_at": _entered(data["taken_at"], tz)}
                )
            elif action == "adverse_event":
                services.adverse_event_record(
                    actor=user, session=session, **{**data, "occurred_at": _entered(data["occurred_at"], tz)}
                )
            elif action == "discharge":
                services.session_discharge(actor=user, session=session, **data)
            elif action == "leave_checklist":
                services.leave_checklist_record(actor=user, session=session, **data)
            elif action == "pmf":
                services.pmf_update(actor=user, session=session, **data)
            elif action == "addendum":
                services.session_addendum_add(actor=user, session=session, **data)
            messages.success(request, "Saved.")
    except ValidationError as error:
        if form is None:
            messages.error(request, " ".join(error.messages))
            return _render_session(request, session, status=400)
        form_errors_from(form, error)
        return _render_session(request, session, bound=(action, form), status=400)
    return HttpResponseRedirect(reverse("session_detail", args=[session.public_id]) + f"#{action}")
