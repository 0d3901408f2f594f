"""Pages for dosing rooms, the week calendar, bookings and the iCalendar feed."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.http import require_POST

from kaemdr import read_services
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.selectors import clinic_clinicians
from kaemdr.views import form_errors_from
from kaemdr.views import request_user as _user
from kaemdr.views import require_capability
from pathways import services as pathway_services
from pathways.selectors import get_pathway_for_user_or_404
from screening import selectors as screening_selectors

from . import calendar_feed
from . import esketamine_rules
from . import gates
from . import rules
from . import selectors
from . import services
from .forms import AddendumForm
from .forms import AdverseEventForm
from .forms import BookingForm
from .forms import BpReviewForm
from .forms import CancelForm
from .forms import ChecksForm
from .forms import ClosureForm
from .forms import DeviceForm
from .forms import DischargeForm
from .forms import DoseEndForm
from .forms import DoseForm
from .forms import DoseOverrideForm
from .forms import DosingSettingsForm
from .forms import FeedRotateForm
from .forms import LeaveChecklistForm
from .forms import MoveForm
from .forms import OpeningHoursForm
from .forms import OverrideForm
from .forms import PmfForm
from .forms import PmfMedicationsForm
from .forms import RemsEnrolmentForm
from .forms import RoomForm
from .forms import ScaleForm
from .forms import SessionChecksForm
from .forms import VitalsForm
from .models import Booking
from .models import DosingSession
from .models import RemsEnrolment
from .models import Room
from .models import SessionStatus
from .models import VitalsReading


def _tz(user: User) -> dt.tzinfo:
    return zoneinfo.ZoneInfo(user.clinic.time_zone)  # type: ignore[union-attr]


def room_list(request: HttpRequest) -> HttpResponse:
    require_capability(request, Capability.ROOM_MANAGE)
    rooms = selectors.room_qs_for_user(_user(request)).prefetch_related("opening_hours")
    return render(request, "sessions/room_list.html", {"title": "Dosing rooms", "rooms": list(rooms)})


def room_create(request: HttpRequest) -> HttpResponse:
    require_capability(request, Capability.ROOM_MANAGE)
    form = RoomForm(request.POST or None, initial={"is_active": True})
    if request.method == "POST" and form.is_valid():
        try:
            room = services.room_save(actor=_user(request), **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, f"{room.name} is added. Set its opening hours.")
            return HttpResponseRedirect(reverse("room_detail", args=[room.public_id]))
    return render(
        request,
        "sessions/room_form.html",
        {"title": "Add a room", "form": form},
        status=400 if form.errors else 200,
    )


def room_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    """A room: its equipment, weekly hours, out-of-service periods and calendar feed address, each
    with its own form."""
    require_capability(request, Capability.ROOM_MANAGE)
    user = _user(request)
    room = selectors.get_room_for_user_or_404(user, public_id)
    form = RoomForm(instance=room, prefix="room")
    hours_form = OpeningHoursForm(initial=OpeningHoursForm.initial_for(room), prefix="hours")
    closure_form = ClosureForm(prefix="closure")
    feed_form = FeedRotateForm(prefix="feed")
    status = 200
    if request.method == "POST":
        status, action = 400, request.POST.get("action")
        try:
            if action == "room":
                form = RoomForm(request.POST, instance=Room.objects.get(pk=room.pk), prefix="room")
                if form.is_valid():
                    saved = services.room_save(actor=user, room=room, **form.cleaned_data)
                    revoked = room.is_active and not saved.is_active
                    messages.success(
                        request,
                        "The room is saved. It is out of use, and its calendar feed's address no longer "
                        "works: calendars need the new one."
                        if revoked
                        else "The room is saved.",
                    )
                    return HttpResponseRedirect(request.path)
            elif action == "hours":
                hours_form = OpeningHoursForm(request.POST, prefix="hours")
                if hours_form.is_valid():
                    services.room_set_hours(actor=user, room=room, hours=hours_form.hours())
                    messages.success(request, "The opening hours are saved.")
                    return HttpResponseRedirect(request.path)
            elif action == "closure":
                closure_form = ClosureForm(request.POST, prefix="closure")
                if closure_form.is_valid():
                    tz = _tz(user)
                    services.room_closure_add(
                        actor=user,
                        room=room,
                        starts_at=closure_form.at("start_date", "start_time", tz),
                        ends_at=closure_form.at("end_date", "end_time", tz),
                        reason=closure_form.cleaned_data["reason"],
                    )
                    messages.success(request, "The room is out of service for that period.")
                    return HttpResponseRedirect(request.path)
            elif action == "feed":
                feed_form = FeedRotateForm(request.POST, prefix="feed")
                if feed_form.is_valid():
                    services.room_feed_rotate(actor=user, room=room)
                    messages.success(
                        request,
                        "The calendar feed has a new address and the old one no longer works. "
                        "Subscribe calendars to the new address.",
                    )
                    return HttpResponseRedirect(request.path)
        except ValidationError as error:
            target = {"room": form, "hours": hours_form, "closure": closure_form, "feed": feed_form}.get(
                action or "", form
            )
            form_errors_from(target, error)
    context = {
        "title": room.name,
        "room": room,
        "form": form,
        "hours_form": hours_form,
        "closure_form": closure_form,
        "feed_form": feed_form,
        "closures": room.closures.filter(ends_at__gte=timezone.now()).order_by("starts_at"),
        "feed_url": request.build_absolute_uri(reverse("room_calendar_feed", args=[room.calendar_token])),
    }
    return render(request, "sessions/room_detail.html", context, status=status)


def week_calendar(request: HttpRequest) -> HttpResponse:
    """The room calendar as a time grid: `?view=week` (default; `week=YYYY-MM-DD` picks it) or
    `?view=day` (`day=YYYY-MM-DD`), across rooms or for one (`room=<id>`)."""
    require_capability(request, Capability.SCHEDULE_VIEW)
    user = _user(request)
    today = timezone.localdate()
    view = "day" if request.GET.get("view") == "day" else "week"
    try:
        chosen = dt.date.fromisoformat(request.GET.get("day" if view == "day" else "week", ""))
    except ValueError:
        chosen = today
    room = None
    if request.GET.get("room"):
        room = selectors.get_room_for_user_or_404(user, request.GET["room"])
    first_day, days = (chosen, 1) if view == "day" else (selectors.week_start(chosen), 7)
    grid = selectors.room_calendar(user, first_day=first_day, days=days, room=room, now=timezone.now())
    read_services.records_viewed(
        actor=user, model=Booking, records=grid.bookings, patient="patient", via="calendar"
    )
    step = dt.timedelta(days=days)
    if view == "day":
        title = f"{room.name}: " if room else ""
        heading = f"{title}{first_day:%A} {first_day.day} {first_day:%B %Y}"
    else:
        heading = f"{room.name + ': week' if room else 'Week'} of {first_day.day} {first_day:%b %Y}"

    def link(**changes: Any) -> str:
        params = {"view": view, "room": str(room.public_id) if room else ""}
        params["day" if view == "day" else "week"] = first_day.isoformat()
        params.update(changes)
        return "?" + urlencode({key: value for key, value in params.items() if value})

    context = {
        "title": "Room calendar",
        "heading": heading,
        "grid": grid,
        "view": view,
        "first_day": first_day,
        "room": room,
        "rooms": list(selectors.room_qs_for_user(user).filter(is_active=True)),
        "previous_link": link(**{"day" if view == "day" else "week": (first_day - step).isoformat()}),
        "next_link": link(**{"day" if view == "day" else "week": (first_day + step).isoformat()}),
        "today_link": link(**{"day" if view == "day" else "week": today.isoformat()}),
        "day_view_link": link(view="day", day=_day_in(first_day, days, today).isoformat(), week=""),
        "week_view_link": link(view="week", week=first_day.isoformat(), day=""),
        "all_rooms_link": link(room=""),
        "can_book": has_capability(user, Capability.BOOKING_MANAGE),
        "states": [(state.value, label) for state, label in rules.CALENDAR_STATE_LABELS.items()],
    }
    return render(request, "sessions/week_calendar.html", context)


def _day_in(first_day: dt.date, days: int, today: dt.date) -> dt.date:
    """The day the day view opens on from a period: today when it is in the period, else its first."""
    return today if first_day <= today < first_day + dt.timedelta(days=days) else first_day


def today_board(request: HttpRequest) -> HttpResponse:
    require_capability(request, Capability.SCHEDULE_VIEW)
    user = _user(request)
    bookings = selectors.todays_board(user, day=timezone.localdate())
    read_services.records_viewed(
        actor=user, model=Booking, records=bookings, patient="patient", via="today_board"
    )
    return render(request, "sessions/today.html", {"title": "Today's sessions", "bookings": bookings})


def _booking_form(
    request: HttpRequest, user: User, pathway: Any, data: Any = None, *, minutes: int | None = None
) -> tuple[BookingForm, selectors.Availability | None, dict[str, str]]:
    """The booking form, opened on the chosen room's next open day (from tomorrow) at its first free
    start, with that day's free starts for the room, the monitor and the patient.

    `?room=`, `?date=`, `?monitor=`, `?prescriber=` and `?time=` choose them without JavaScript (the
    free starts are links that carry them); a posted form shows the free starts of what it posted.
    The choices are read as they are given (a public id, a date): the availability's one query finds
    the room and the monitor within the clinic, so a wrong one simply finds nothing."""
    rooms = selectors.room_qs_for_user(user).filter(is_active=True)
    form = BookingForm(
        data,
        rooms=rooms,
        prescribers=clinic_clinicians(user, role=Role.PRESCRIBER),
        monitors=clinic_clinicians(user, role=Role.MONITOR),
    )
    source = data if data is not None else request.GET
    given = {name: _given(source, name) for name in ("room", "monitor", "prescriber", "date", "time")}
    availability = selectors.booking_availability(
        rooms=rooms,
        room_public_id=given["room"],
        day=given["date"],
        after=timezone.localdate() + dt.timedelta(days=1),
        minutes=minutes,
        tz=_tz(user),
        now=timezone.now(),
        clinic_id=pathway.clinic_id,
        monitor_public_id=given["monitor"],
        patient_id=pathway.patient_id,
    )
    day = availability.day if availability else given["date"] or timezone.localdate() + dt.timedelta(days=1)
    time = given["time"]
    if time is None:
        first = availability.slots[0] if availability and availability.slots else None
        time = first.astimezone(_tz(user)).time() if first else dt.time(9, 0)
    chosen = {
        "room": str(availability.room_public_id if availability else given["room"] or ""),
        "date": day.isoformat(),
        "monitor": str(given["monitor"] or ""),
        "prescriber": str(given["prescriber"] or pathway.prescriber.public_id),
    }
    form.initial = {**chosen, "date": day, "time": time}
    return form, availability, chosen


def _given(source: Any, name: str) -> Any:
    """A choice as given: a public id (room, monitor, prescriber), a date or a time; None when it is
    missing or does not read as one."""
    value = (source.get(name) or "").strip()
    if not value:
        return None
    try:
        if name == "date":
            return dt.date.fromisoformat(value)
        if name == "time":
            return dt.time.fromisoformat(value)
        return uuid.UUID(value)
    except ValueError:
        return None


def _slot_links(
    availability: selectors.Availability | None, chosen: dict[str, str], tz: dt.tzinfo
) -> list[Any]:
    """Each free start as (time, link carrying the form's choices and the time)."""
    if availability is None:
        return []
    links = []
    for slot in availability.slots:
        at = slot.astimezone(tz).strftime("%H:%M")
        links.append((at, "?" + urlencode({**{k: v for k, v in chosen.items() if v}, "time": at})))
    return links


def booking_create(request: HttpRequest, public_id: str) -> HttpResponse:
    """Book a dosing session for a pathway. The gates (screening, REMS, hours, conflicts) are the
    service's; this page shows the ones it can see up front."""
    user = _user(request)
    pathway = get_pathway_for_user_or_404(user, public_id)
    require_capability(request, Capability.BOOKING_MANAGE)
    status = screening_selectors.screening_status(pathway)
    plan = status.current
    minutes = (
        selectors.chair_time_for(pathway.clinic_id, agent=plan.agent, route=plan.route).total_minutes
        if plan is not None and plan.agent and plan.route
        else None
    )
    form, availability, chosen = _booking_form(request, user, pathway, request.POST or None, minutes=minutes)
    if request.method == "POST" and form.is_valid():
        try:
            booking = services.booking_create(
                actor=user,
                pathway=pathway,
                room=form.cleaned_data["room"],
                starts_at=form.at("date", "time", _tz(user)),
                prescriber=form.cleaned_data["prescriber"],
                monitor=form.cleaned_data["monitor"],
            )
        except ValidationError as error:
            form_errors_from(form, error, field_map={"starts_at": "time"})
        else:
            local = timezone.localtime(booking.starts_at)
            messages.success(
                request,
                f"Booked: {booking.room.name}, {local:%a %-d %b %H:%M}-"
                f"{timezone.localtime(booking.ends_at):%H:%M}.",
            )
            return HttpResponseRedirect(reverse("booking_detail", args=[booking.public_id]))
    pathway_services.pathway_record_viewed(actor=user, pathway=pathway, via="booking_page")
    esketamine = status.current is not None and status.current.agent == "esketamine"
    label = services.esketamine_label_of(pathway.clinic_id) if esketamine else ""
    context = {
        "title": "Book a dosing session",
        "form": form,
        "pathway": pathway,
        "patient": pathway.patient,
        "plan": status.current,
        "refusals": gates.display_refusals(pathway) + status.refusals,
        "rems": RemsEnrolment.objects.filter(patient=pathway.patient).first(),
        "esketamine_label_name": esketamine_rules.ESKETAMINE_LABEL_NAMES[
            esketamine_rules.EsketamineLabel(label)
        ]
        if label
        else "",
        "rems_required": bool(label) and esketamine_rules.rems_enrolment_required(label),
        "rems_form": RemsEnrolmentForm() if has_capability(user, Capability.REMS_ENROL) else None,
        "availability": availability,
        "slot_links": _slot_links(availability, chosen, _tz(user)),
        "chosen": chosen,
    }
    return render(request, "sessions/booking_form.html", context, status=400 if form.errors else 200)


BOOKINGS_PER_PAGE = 25


def pathway_bookings(request: HttpRequest, public_id: str) -> HttpResponse:
    """Every dosing session booked on a pathway, newest first, a page at a time: the pathway page
    shows only the latest few, and a patient treated for years has hundreds."""
    user = _user(request)
    pathway = get_pathway_for_user_or_404(user, public_id)
    if not selectors.can_see_pathway_bookings(user):
        raise Http404()  # the same answer as a missing pathway
    page = Paginator(selectors.pathway_bookings_qs(pathway), BOOKINGS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    pathway_services.pathway_record_viewed(actor=user, pathway=pathway, via="dosing_sessions_page")
    context = {
        "title": f"Dosing sessions of {pathway.patient.full_name}",
        "pathway": pathway,
        "patient": pathway.patient,
        "page": page,
    }
    return render(request, "sessions/pathway_bookings.html", context)


@require_POST
def rems_enrol(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    pathway = get_pathway_for_user_or_404(user, public_id)
    require_capability(request, Capability.REMS_ENROL)
    form = RemsEnrolmentForm(request.POST)
    if form.is_valid():
        try:
            services.rems_enrolment_record(actor=user, patient=pathway.patient, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "The REMS enrolment is recorded.")
    else:
        messages.error(request, "Give the enrolment date.")
    return HttpResponseRedirect(reverse("pathway_detail", args=[pathway.public_id]))


def _booking_page(request: HttpRequest, booking: Booking, *, status: int = 200, **forms: Any) -> HttpResponse:
    user = _user(request)
    can_manage = has_capability(user, Capability.BOOKING_MANAGE) and booking.status == "booked"
    can_check = has_capability(user, Capability.BOOKING_CHECKS) and booking.status == "booked"
    local = timezone.localtime(booking.starts_at)
    context = {
        "title": f"Dosing session of {booking.patient.full_name}",
        "booking": booking,
        "patient": booking.patient,
        "minutes": int((booking.ends_at - booking.starts_at).total_seconds() // 60),
        "move_form": forms.get("move_form")
        or (
            MoveForm(
                rooms=selectors.room_qs_for_user(user).filter(is_active=True),
                initial={"room": booking.room.public_id, "date": local.date(), "time": local.time()},
            )
            if can_manage
            else None
        ),
        "cancel_form": forms.get("cancel_form") or (CancelForm() if can_manage else None),
        "session": DosingSession.objects.filter(booking=booking).first(),
        "can_record": has_capability(user, Capability.SESSION_RECORD) and booking.status != "cancelled",
        "checks_form": forms.get("checks_form")
        or (
            ChecksForm(initial={name: getattr(booking, name) for name in services.CHECK_FIELDS})
            if can_check
            else None
        ),
    }
    services.booking_viewed(actor=user, booking=booking, via="page")
    return render(request, "sessions/booking_detail.html", context, status=status)


def booking_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    return _booking_page(request, selectors.get_booking_for_user_or_404(_user(request), public_id))


@require_POST
def booking_move(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    booking = selectors.get_booking_for_user_or_404(user, public_id)
    require_capability(request, Capability.BOOKING_MANAGE)
    form = MoveForm(request.POST, rooms=selectors.room_qs_for_user(user).filter(is_active=True))
    if form.is_valid():
        try:
            moved = services.booking_move(
                actor=user,
                booking=booking,
                starts_at=form.at("date", "time", _tz(user)),
                room=form.cleaned_data["room"],
            )
        except ValidationError as error:
            form_errors_from(form, error, field_map={"starts_at": "time"})
        else:
            messages.success(
                request, f"Moved to {moved.room.name}, {timezone.localtime(moved.starts_at):%a %-d %b %H:%M}."
            )
            return HttpResponseRedirect(reverse("booking_detail", args=[booking.public_id]))
    return _booking_page(request, booking, move_form=form, status=400)


@require_POST
def booking_cancel(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    booking = selectors.get_booking_for_user_or_404(user, public_id)
    require_capability(request, Capability.BOOKING_MANAGE)
    form = CancelForm(request.POST)
    if form.is_valid():
        try:
            services.booking_cancel(actor=user, booking=booking, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, "The booking is cancelled; its slot is free.")
            return HttpResponseRedirect(reverse("pathway_detail", args=[booking.pathway.public_id]))
    return _booking_page(request, booking, cancel_form=form, status=400)


@require_POST
def booking_checks(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    booking = selectors.get_booking_for_user_or_404(user, public_id)
    require_capability(request, Capability.BOOKING_CHECKS)
    form = ChecksForm(request.POST)
    if form.is_valid():
        try:
            services.booking_checks_update(actor=user, booking=booking, **form.cleaned_data)
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, "The pre-visit checks are saved.")
            return HttpResponseRedirect(reverse("booking_detail", args=[booking.public_id]))
    return _booking_page(request, booking, checks_form=form, status=400)


@login_not_required
@require_GET
def room_calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The room's bookings as iCalendar, for calendar clients. The token in the address is the key;
    events carry initials and times only, never a patient's name."""
    room = Room.objects.filter(calendar_token=token, is_active=True).select_related("clinic").first()
    if room is None:
        raise Http404()
    body = calendar_feed.room_feed(room)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response


# --- The session record ------------------------------------------------------------------------------


@require_POST
def session_open(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    booking = selectors.get_booking_for_user_or_404(user, public_id)
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
    settings = selectors.dosing_settings_for(full.clinic_id)
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
            [(r.taken_at, _reading_values(r)) for r in readings], limits, _tz(user)
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
            f"{dt.datetime.fromisoformat(t).astimezone(_tz(user)):%H:%M}" for t in full.device_times
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
    tz = _tz(user)
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


def _routes_with_labels() -> list[tuple[str, str, str]]:
    from screening.rules import AGENT_LABELS
    from screening.rules import ROUTE_LABELS

    return [
        (str(agent), str(route), f"{AGENT_LABELS[agent]}, {ROUTE_LABELS[route].lower()}")  # type: ignore[index]
        for agent, route in rules.DEFAULT_CHAIR_TIMES
    ]


def dosing_settings(request: HttpRequest) -> HttpResponse:
    """The clinic's dosing limits and chair times, for clinic admins."""
    require_capability(request, Capability.CLINIC_SETTINGS_MANAGE)
    user = _user(request)
    current = selectors.dosing_settings_for(user.member_clinic_id)
    initial: dict[str, Any] = {name: getattr(current, name) for name in services.DOSING_SETTING_FIELDS}
    for agent, route, _ in _routes_with_labels():
        chair = selectors.chair_time_for(user.member_clinic_id, agent=agent, route=route)
        initial.update(
            {
                f"dosing_{agent}_{route}": chair.dosing_minutes,
                f"monitoring_{agent}_{route}": chair.monitoring_minutes,
                f"turnover_{agent}_{route}": chair.turnover_minutes,
            }
        )
    for (agent, route), dose_range in selectors.dose_ranges_for(user.member_clinic_id).items():
        initial[f"minimum_{agent}_{route}"] = dose_range.minimum_mg_per_kg
        initial[f"maximum_{agent}_{route}"] = dose_range.maximum_mg_per_kg
    form = DosingSettingsForm(request.POST or None, initial=initial, routes=_routes_with_labels())
    if request.method == "POST" and form.is_valid():
        try:
            services.dosing_settings_update(
                actor=user,
                chair_times=form.chair_times(),
                dose_ranges=form.dose_ranges(),
                **{name: form.cleaned_data[name] for name in services.DOSING_SETTING_FIELDS},
            )
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, "The dosing settings are saved.")
            return HttpResponseRedirect(reverse("dosing_settings"))
    return render(
        request,
        "sessions/settings.html",
        {"title": "Dosing settings", "form": form},
        status=400 if form.errors else 200,
    )
