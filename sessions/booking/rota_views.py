"""The rota pages, for clinic admins (anyone else gets 404): the staff with their weekly hours and
leave to come, and a member's page to set their hours and add or remove leave. Staff data, not
clinical content: nothing here names a patient, so no read is audited (as the staff list)."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone

from kaemdr.permissions import Capability
from kaemdr.views import form_errors_from
from kaemdr.views import request_user as _user
from kaemdr.views import require_capability
from sessions.booking import rota_selectors
from sessions.booking import rota_services
from sessions.booking.rota_forms import LeaveForm
from sessions.booking.rota_forms import LeaveRemoveForm
from sessions.booking.rota_forms import WorkingHoursForm
from sessions.models import Booking
from sessions.models import Weekday


def rota_list(request: HttpRequest) -> HttpResponse:
    require_capability(request, Capability.ROTA_MANAGE)
    user = _user(request)
    staff = rota_selectors.rotas(rota_selectors.rota_staff_qs_for_user(user), now=timezone.now())
    return render(request, "sessions/rota_list.html", {"title": "Rota", "rotas": staff})


def rota_staff(request: HttpRequest, public_id: str) -> HttpResponse:
    """A member's rota: their weekly hours (a row per weekday, a second span for a split shift) and
    their leave, each with its own form; what was typed is kept when a form is refused."""
    require_capability(request, Capability.ROTA_MANAGE)
    user = _user(request)
    member = rota_selectors.get_rota_staff_for_user_or_404(user, public_id)
    (rota,) = rota_selectors.rotas(
        rota_selectors.rota_staff_qs_for_user(user).filter(pk=member.pk), now=timezone.now()
    )
    hours_form = WorkingHoursForm(initial=WorkingHoursForm.initial_for(rota.spans), prefix="hours")
    leave_form = LeaveForm(prefix="leave")
    status = 200
    if request.method == "POST":
        status, action = 400, request.POST.get("action")
        try:
            if action == "hours":
                hours_form = WorkingHoursForm(request.POST, prefix="hours")
                if hours_form.is_valid():
                    rota_services.staff_hours_set(actor=user, staff=member, hours=hours_form.hours())
                    messages.success(request, f"{member.full_name}'s working hours are saved.")
                    return HttpResponseRedirect(request.path)
            elif action == "leave":
                leave_form = LeaveForm(request.POST, prefix="leave")
                if leave_form.is_valid():
                    tz = user.zone
                    added = rota_services.staff_leave_add(
                        actor=user,
                        staff=member,
                        starts_at=leave_form.starts_at(tz),
                        ends_at=leave_form.ends_at(tz),
                        reason=leave_form.cleaned_data["reason"],
                    )
                    messages.success(request, f"The leave of {member.full_name} is added.")
                    if added.affected:
                        messages.warning(request, _affected_text(member.full_name, added, tz))
                    return HttpResponseRedirect(request.path)
            elif action == "remove_leave":
                remove_form = LeaveRemoveForm(request.POST)
                if not remove_form.is_valid():
                    raise Http404()
                leave = rota_selectors.get_leave_for_user_or_404(user, remove_form.cleaned_data["leave"])
                if leave.staff_id != member.pk:
                    raise Http404()
                rota_services.staff_leave_remove(actor=user, leave=leave)
                messages.success(request, f"The leave of {member.full_name} is removed.")
                return HttpResponseRedirect(request.path)
            else:
                raise Http404()
        except ValidationError as error:
            form_errors_from(leave_form if action == "leave" else hours_form, error)
    context = {
        "title": f"Rota of {member.full_name}",
        "member": member,
        "rota": rota,
        "hours_form": hours_form,
        "leave_form": leave_form,
        "weekdays": Weekday.choices,
    }
    return render(request, "sessions/rota_staff.html", context, status=status)


def _affected_text(name: str, added: rota_services.LeaveAdded, tz: dt.tzinfo) -> str:
    """The warning after leave over sessions already booked: each one's time, room and part, with what
    to do (the leave is added: the bookings stay until moved)."""
    listed = "; ".join(
        f"{booking.starts_at.astimezone(tz):%a %-d %b %H:%M}-{booking.ends_at.astimezone(tz):%H:%M} "
        f"in {booking.room.name} ({_part(booking, added.leave.staff_id)})"
        for booking in added.affected
    )
    count = len(added.affected)
    sessions = "session is" if count == 1 else "sessions are"
    return (
        f"{count} booked {sessions} during this leave with {name} as monitor or prescriber: {listed}. "
        "They stay booked: move them to a time they are on, or cancel and rebook them with someone else."
    )


def _part(booking: Booking, staff_id: int) -> str:
    return "monitor" if booking.monitor_id == staff_id else "prescriber"
