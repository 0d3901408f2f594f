"""Pages for dosing rooms, the week calendar, bookings and the iCalendar feed."""

from __future__ import annotations

import datetime as dt
import uuid
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

from kaemdr import page_cache
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
from sessions import gates
from sessions.booking import calendar_feed
from sessions.booking import esketamine_rules
from sessions.booking import rota_selectors
from sessions.booking import rules
from sessions.booking import selectors
from sessions.booking import services
from sessions.booking.forms import BookingForm
from sessions.booking.forms import CancelForm
from sessions.booking.forms import ChecksForm
from sessions.booking.forms import ClosureForm
from sessions.booking.forms import FeedRotateForm
from sessions.booking.forms import MoveForm
from sessions.booking.forms import OpeningHoursForm
from sessions.booking.forms import RemsEnrolmentForm
from sessions.booking.forms import RoomForm
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.models import RemsEnrolment
from sessions.models import Room


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
                    tz = user.zone
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
    part = page_cache.render_part(
        request,
        key=page_cache.part_key(
            "week_calendar", request=request, user=user, args=(view, first_day, room.pk if room else None)
        ),
        template_name="sessions/_week_calendar_body.html",
        build=lambda: _week_calendar_body(
            user, view=view, first_day=first_day, days=days, room=room, today=today
        ),
    )
    read_services.records_viewed_by_ids(actor=user, model=Booking, shown=part.shown, via="calendar")
    return render(request, "sessions/week_calendar.html", {"title": "Room calendar", "body": part.html})


def _week_calendar_body(
    user: User, *, view: str, first_day: dt.date, days: int, room: Room | None, today: dt.date
) -> tuple[dict[str, Any], read_services.Shown]:
    """The room calendar's body context, and the bookings it shows (for the read audit)."""
    grid = selectors.room_calendar(user, first_day=first_day, days=days, room=room, now=timezone.now())
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
        "rota_days": rota_selectors.rota_days(
            user.member_clinic_id, dates=[first_day + dt.timedelta(days=i) for i in range(days)], tz=user.zone
        ),
    }
    return context, read_services.shown_ids(grid.bookings, patient="patient")


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
        tz=user.zone,
        now=timezone.now(),
        clinic_id=pathway.clinic_id,
        monitor_public_id=given["monitor"],
        patient_id=pathway.patient_id,
    )
    day = availability.day if availability else given["date"] or timezone.localdate() + dt.timedelta(days=1)
    time = given["time"]
    if time is None:
        first = availability.slots[0] if availability and availability.slots else None
        time = first.astimezone(user.zone).time() if first else dt.time(9, 0)
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
                starts_at=form.at("date", "time", user.zone),
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
        "slot_links": _slot_links(availability, chosen, user.zone),
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
                starts_at=form.at("date", "time", user.zone),
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
