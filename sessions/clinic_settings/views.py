"""The dosing settings page, kept by clinic admins."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from kaemdr.permissions import Capability
from kaemdr.views import form_errors_from
from kaemdr.views import request_user as _user
from kaemdr.views import require_capability
from sessions.booking import rules as booking_rules
from sessions.booking import selectors as booking_selectors
from sessions.clinic_settings import services
from sessions.clinic_settings.forms import DosingSettingsForm
from sessions.record import selectors


def _routes_with_labels() -> list[tuple[str, str, str]]:
    from screening.rules import AGENT_LABELS
    from screening.rules import ROUTE_LABELS

    return [
        (str(agent), str(route), f"{AGENT_LABELS[agent]}, {ROUTE_LABELS[route].lower()}")  # type: ignore[index]
        for agent, route in booking_rules.DEFAULT_CHAIR_TIMES
    ]


def dosing_settings(request: HttpRequest) -> HttpResponse:
    """The clinic's dosing limits and chair times, for clinic admins."""
    require_capability(request, Capability.CLINIC_SETTINGS_MANAGE)
    user = _user(request)
    current = booking_selectors.dosing_settings_for(user.member_clinic_id)
    initial: dict[str, Any] = {name: getattr(current, name) for name in services.DOSING_SETTING_FIELDS}
    for agent, route, _ in _routes_with_labels():
        chair = booking_selectors.chair_time_for(user.member_clinic_id, agent=agent, route=route)
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
