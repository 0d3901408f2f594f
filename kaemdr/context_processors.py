"""Navigation by role: each signed-in user sees only the sections their role can use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from .permissions import Capability
from .permissions import can_see_patients
from .permissions import has_capability


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    path = request.path
    entries: list[tuple[str, str, bool]] = [("Dashboard", reverse("dashboard"), True)]
    entries.append(("Patients", reverse("patient_list"), can_see_patients(user)))
    entries.append(("Calendar", reverse("room_calendar"), has_capability(user, Capability.SCHEDULE_VIEW)))
    entries.append(("Follow-ups", reverse("follow_up_list"), has_capability(user, Capability.FOLLOW_UP_VIEW)))
    entries.append(("Rooms", reverse("room_list"), has_capability(user, Capability.ROOM_MANAGE)))
    entries.append(
        ("Courses", reverse("course_template_list"), has_capability(user, Capability.COURSE_TEMPLATE_MANAGE))
    )
    entries.append(("Rota", reverse("rota"), has_capability(user, Capability.ROTA_MANAGE)))
    entries.append(("Staff", reverse("staff_list"), has_capability(user, Capability.STAFF_MANAGE)))
    entries.append(("Audit log", reverse("audit_log"), has_capability(user, Capability.AUDIT_VIEW)))
    entries.append(
        ("Settings", reverse("screening_settings"), has_capability(user, Capability.CLINIC_SETTINGS_MANAGE))
    )
    items = []
    for label, url, allowed in entries:
        if allowed:
            active = path == url if url == "/" else path.startswith(url)
            items.append(NavItem(label=label, url=url, active=active))
    return {"nav_items": items}
