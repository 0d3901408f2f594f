"""Course plans and templates: the services (who may, bounds, the label, the audit), the pathway page's
course panel and its progress, the course page and the templates pages (posted as each role), and the
API (GET/PUT a pathway's course, list/create/update templates)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage
from sessions.booking import course_selectors
from sessions.booking import course_services
from sessions.booking import services as booking_services
from sessions.booking.course_rules import Phase
from sessions.clinic_settings import services as clinic_settings_services
from sessions.models import CoursePlan
from sessions.models import CourseTemplate

from ..access import snapshot

pytestmark = pytest.mark.django_db

IV = {"agent": "ketamine", "route": "iv", "sessions": 6, "phases": (Phase(3, 3, 2, 4),)}
ESKETAMINE = {
    "agent": "esketamine",
    "route": "intranasal",
    "sessions": 12,
    "phases": (Phase(4, 2, 2, 4), Phase(4, 1, 6, 8), Phase(None, 1, 6, 14)),
}


def _form(course: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "agent": course["agent"],
        "route": course["route"],
        "sessions": course["sessions"],
    }
    for number, phase in enumerate(course["phases"], start=1):
        for part, value in phase.as_dict().items():
            data[f"phase_{number}_{part}"] = "" if value is None else value
    return {**data, **extra}


def _json(course: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "agent": course["agent"],
        "route": course["route"],
        "sessions": course["sessions"],
        "phases": [phase.as_dict() for phase in course["phases"]],
        **extra,
    }


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- Services -----------------------------------------------------------------------------------------


def test_the_prescriber_sets_a_course_and_changes_it_in_place_each_change_audited(
    prescriber: User, dosing_pathway: Any
) -> None:
    plan = course_services.course_plan_set(actor=prescriber, pathway=dosing_pathway, **IV)
    assert (plan.agent, plan.route, plan.sessions, plan.set_by) == ("ketamine", "iv", 6, prescriber)
    assert plan.phases == [{"weeks": 3, "per_week": 3, "min_days": 2, "max_days": 4}]
    changed = course_services.course_plan_set(
        actor=prescriber, pathway=dosing_pathway, **{**IV, "sessions": 8}
    )
    assert changed.pk == plan.pk
    assert CoursePlan.objects.filter(pathway=dosing_pathway).count() == 1
    [set_event] = _events("course_plan.set")
    [changed_event] = _events("course_plan.changed")
    assert set_event.patient_public_id == dosing_pathway.patient.public_id
    assert changed_event.data["before"]["sessions"] == 6
    assert changed_event.data["after"]["sessions"] == 8
    assert changed_event.target_public_id == plan.public_id


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN])
def test_only_the_prescriber_role_sets_a_course(
    staff: dict[str, User], dosing_pathway: Any, role: str
) -> None:
    with pytest.raises(Http404):
        course_services.course_plan_set(actor=staff[role], pathway=dosing_pathway, **IV)
    assert not CoursePlan.objects.exists()


def test_a_prescriber_of_another_clinic_gets_404(make_user: Callable[..., User], dosing_pathway: Any) -> None:
    with pytest.raises(Http404):
        course_services.course_plan_set(actor=make_user(role=Role.PRESCRIBER), pathway=dosing_pathway, **IV)


def test_a_closed_pathway_takes_no_course(prescriber: User, dosing_pathway: Any) -> None:
    dosing_pathway.stage = Stage.COMPLETED
    dosing_pathway.save()
    with pytest.raises(ValidationError) as refused:
        course_services.course_plan_set(actor=prescriber, pathway=dosing_pathway, **IV)
    assert refused.value.error_list[0].code == "pathway_closed"


def test_bounds_are_refused_field_by_field(prescriber: User, dosing_pathway: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        course_services.course_plan_set(
            actor=prescriber, pathway=dosing_pathway, **{**IV, "sessions": 60, "phases": (Phase(3, 3, 5, 4),)}
        )
    errors = refused.value.error_dict
    assert errors["sessions"][0].code == "out_of_range"
    assert errors["phase_1_max_days"][0].code == "order"
    assert not CoursePlan.objects.exists()
    assert not _events("course_plan.set")


def test_an_esketamine_course_over_the_label_is_refused_with_its_source(
    prescriber: User, dosing_pathway: Any
) -> None:
    with pytest.raises(ValidationError) as refused:
        course_services.course_plan_set(
            actor=prescriber, pathway=dosing_pathway, **{**ESKETAMINE, "phases": (Phase(None, 2, 2, 4),)}
        )
    [error] = refused.value.error_dict["phase_1_per_week"]
    assert error.code == "label_frequency"
    assert "US prescribing information" in error.source.text


def test_the_label_the_clinic_follows_is_cited(
    clinic_admin: User, prescriber: User, dosing_pathway: Any
) -> None:
    clinic_settings_services.dosing_settings_update(actor=clinic_admin, esketamine_label="eu_uk_smpc")
    with pytest.raises(ValidationError) as refused:
        course_services.course_plan_set(
            actor=prescriber, pathway=dosing_pathway, **{**ESKETAMINE, "phases": (Phase(8, 2, 2, 4),)}
        )
    [error] = refused.value.error_dict["phase_1_per_week"]
    assert "summary of product characteristics" in error.source.text


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.CLINIC_ADMIN])
def test_admins_and_prescribers_keep_the_templates(staff: dict[str, User], role: str) -> None:
    adopted = course_services.course_template_adopt(actor=staff[role], code="iv_racemic")
    assert adopted.default_code == "iv_racemic"
    assert adopted.sessions == 6
    changed = course_services.course_template_save(
        actor=staff[role], template=adopted, name="IV, eight", **{**IV, "sessions": 8}
    )
    assert (changed.pk, changed.name, changed.sessions) == (adopted.pk, "IV, eight", 8)
    assert [
        e.action for e in AuditEvent.objects.filter(target_type="dosing.CourseTemplate").order_by("id")
    ] == [
        "course_template.created",
        "course_template.updated",
    ]
    with pytest.raises(ValidationError):
        course_services.course_template_adopt(actor=staff[role], code="iv_racemic")


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR])
def test_other_roles_do_not_keep_templates(staff: dict[str, User], role: str) -> None:
    with pytest.raises(Http404):
        course_services.course_template_save(actor=staff[role], name="Mine", **IV)
    with pytest.raises(Http404):
        course_services.course_template_adopt(actor=staff[role], code="iv_racemic")
    assert not CourseTemplate.objects.exists()


def test_template_names_are_unique_in_the_clinic(prescriber: User) -> None:
    course_services.course_template_save(actor=prescriber, name="IV", **IV)
    with pytest.raises(ValidationError) as refused:
        course_services.course_template_save(actor=prescriber, name=" IV ", **IV)
    assert refused.value.error_dict["name"][0].code == "duplicate_name"


def test_a_template_of_another_clinic_cannot_be_used(
    prescriber: User, make_user: Callable[..., User], dosing_pathway: Any
) -> None:
    elsewhere = course_services.course_template_save(actor=make_user(role=Role.PRESCRIBER), name="IV", **IV)
    with pytest.raises(Http404):
        course_services.course_plan_set(actor=prescriber, pathway=dosing_pathway, template=elsewhere, **IV)
    with pytest.raises(Http404):
        course_services.course_template_save(actor=prescriber, template=elsewhere, name="Taken", **IV)


def test_offers_list_the_clinics_templates_then_the_defaults_not_adopted(prescriber: User) -> None:
    offers = course_selectors.course_template_offers(prescriber.clinic_id)
    assert [offer.key for offer in offers] == ["default:iv_racemic", "default:esketamine_label"]
    adopted = course_services.course_template_adopt(actor=prescriber, code="iv_racemic")
    course_services.course_template_save(
        actor=prescriber, template=adopted, name=adopted.name, is_active=False, **IV
    )
    assert [offer.key for offer in course_selectors.course_template_offers(prescriber.clinic_id)] == [
        "default:esketamine_label"
    ]
    every = course_selectors.course_template_offers(prescriber.clinic_id, include_retired=True)
    assert [offer.key for offer in every] == [str(adopted.public_id), "default:esketamine_label"]


# --- Progress -----------------------------------------------------------------------------------------


def _book(staff: dict[str, User], pathway: Any, room: Any, days: int) -> Any:
    tz = zoneinfo.ZoneInfo(pathway.clinic.time_zone)
    day = timezone.localdate() + dt.timedelta(days=days)
    return booking_services.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=pathway,
        room=room,
        starts_at=dt.datetime.combine(day, dt.time(14, 0), tzinfo=tz),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )


def test_progress_counts_done_booked_and_still_to_book(
    staff: dict[str, User], dosing_pathway: Any, room: Any, complete_session: Callable[..., Any]
) -> None:
    course_services.course_plan_set(actor=staff[Role.PRESCRIBER], pathway=dosing_pathway, **IV)
    complete_session(dosing_pathway)
    _book(staff, dosing_pathway, room, 5)
    cancelled = _book(staff, dosing_pathway, room, 7)
    booking_services.booking_cancel(actor=staff[Role.CLINIC_ADMIN], booking=cancelled, reason="Unwell.")
    _book(staff, dosing_pathway, room, 9)
    course = course_selectors.pathway_course(dosing_pathway)
    assert course is not None
    assert (course.progress.done, course.progress.booked, course.progress.to_book) == (1, 2, 3)
    assert course.marks == ["done", "booked", "booked", "to_book", "to_book", "to_book"]


def test_the_pathway_page_shows_the_course_and_its_progress(
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    client_for: Callable[[User | None], Client],
) -> None:
    url = reverse("pathway_detail", args=[dosing_pathway.public_id])
    page = client_for(staff[Role.PRESCRIBER]).get(url).content.decode()
    assert "No course set yet" in page
    assert "Set course" in page
    course_services.course_plan_set(actor=staff[Role.PRESCRIBER], pathway=dosing_pathway, **IV)
    _book(staff, dosing_pathway, room, 5)
    for role in (Role.PRESCRIBER, Role.MONITOR, Role.CLINIC_ADMIN, Role.THERAPIST):
        page = client_for(staff[role]).get(url).content.decode()
        assert "6 sessions. Weeks 1 to 3: up to 3 a week, 2 to 4 days apart." in page
        assert 'data-course="done">0<' in page
        assert 'data-course="booked">1<' in page
        assert 'data-course="to_book">5<' in page
        assert ("Change course" in page) is (role == Role.PRESCRIBER)


# --- Pages --------------------------------------------------------------------------------------------


def test_the_course_page_fills_the_form_from_a_template_then_saves_the_edit(
    prescriber: User, dosing_pathway: Any, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(prescriber)
    url = reverse("course_plan_edit", args=[dosing_pathway.public_id])
    page = client.get(url, {"template": "default:iv_racemic"})
    assert page.status_code == 200
    assert page.context["form"].initial["sessions"] == 6
    assert "Andrade 2017" in page.content.decode()
    response = client.post(url, _form({**IV, "sessions": 5}, template="default:iv_racemic"))
    assert response.status_code == 302
    assert response["Location"].endswith("#course")
    plan = CoursePlan.objects.get(pathway=dosing_pathway)
    assert plan.sessions == 5
    assert plan.template is None  # a default not adopted: no clinic template behind it
    again = client.get(url)
    assert again.context["form"].initial["sessions"] == 5
    assert AuditEvent.objects.filter(action="pathway.viewed", data__via="course_page").count() == 2


def test_the_course_page_keeps_typed_input_on_errors(
    prescriber: User, dosing_pathway: Any, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(prescriber)
    url = reverse("course_plan_edit", args=[dosing_pathway.public_id])
    data = _form({**IV, "phases": (Phase(3, 3, 5, 4),)}, phase_2_per_week="2")
    response = client.post(url, data)
    assert response.status_code == 400
    form = response.context["form"]
    assert form.data["phase_1_min_days"] == "5"
    assert form.data["phase_2_per_week"] == "2"
    assert form.errors["phase_2_min_days"]  # a phase half filled in
    response = client.post(url, _form({**IV, "phases": (Phase(3, 3, 5, 4),)}))
    assert response.status_code == 400
    assert "at least the least" in response.content.decode()
    assert 'value="5"' in response.content.decode()
    assert not CoursePlan.objects.exists()


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN])
def test_other_roles_get_404_from_the_course_page_and_nothing_is_written(
    staff: dict[str, User], dosing_pathway: Any, client_for: Callable[[User | None], Client], role: str
) -> None:
    client = client_for(staff[role])
    url = reverse("course_plan_edit", args=[dosing_pathway.public_id])
    before = snapshot()
    assert client.get(url).status_code == 404
    assert client.post(url, _form(IV)).status_code == 404
    assert snapshot() == before
    assert not CoursePlan.objects.exists()


def test_the_templates_pages_adopt_add_and_edit(
    clinic_admin: User, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(clinic_admin)
    listing = client.get(reverse("course_template_list")).content.decode()
    assert "IV racemic ketamine: 6 infusions over 3 weeks" in listing
    assert "sourced default" in listing
    adopted = client.post(reverse("course_template_list"), {"adopt": "esketamine_label"})
    template = CourseTemplate.objects.get(default_code="esketamine_label")
    assert adopted["Location"] == reverse("course_template_edit", args=[template.public_id])
    edit = reverse("course_template_edit", args=[template.public_id])
    assert client.get(edit).context["form"].initial["phase_3_weeks"] is None
    refused = client.post(edit, _form({**ESKETAMINE, "phases": (Phase(6, 2, 2, 4),)}, name=template.name))
    assert refused.status_code == 400
    assert "allows 1 in week 5" in refused.content.decode()
    saved = client.post(edit, _form({**ESKETAMINE, "sessions": 16}, name="Spravato 16", is_active="on"))
    assert saved.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.sessions, template.is_active) == ("Spravato 16", 16, True)
    created = client.post(reverse("course_template_create"), _form(IV, name="IV short", is_active="on"))
    assert created.status_code == 302
    assert CourseTemplate.objects.filter(name="IV short", sessions=6).exists()
    unknown = client.post(reverse("course_template_list"), {"adopt": "nonsense"})
    assert unknown.status_code == 302


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR])
def test_other_roles_get_404_from_the_templates_pages(
    staff: dict[str, User], client_for: Callable[[User | None], Client], role: str
) -> None:
    client = client_for(staff[role])
    for name in ("course_template_list", "course_template_create"):
        assert client.get(reverse(name)).status_code == 404
        assert client.post(reverse(name), _form(IV, name="X", adopt="iv_racemic")).status_code == 404
    assert not CourseTemplate.objects.exists()


# --- API ----------------------------------------------------------------------------------------------


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_puts_and_gets_a_pathways_course(
    staff: dict[str, User], dosing_pathway: Any, room: Any
) -> None:
    url = reverse("api-pathway-course", args=[dosing_pathway.public_id])
    prescriber = _api(staff[Role.PRESCRIBER])
    assert prescriber.get(url).status_code == 404  # none set yet
    template = course_services.course_template_adopt(actor=staff[Role.PRESCRIBER], code="esketamine_label")
    put = prescriber.put(url, _json(ESKETAMINE, template=str(template.public_id)), format="json")
    assert put.status_code == 200, put.content
    body = put.json()
    assert body["sessions"] == 12
    assert body["template"] == str(template.public_id)
    assert body["phases"][2] == {"weeks": None, "per_week": 1, "min_days": 6, "max_days": 14}
    assert body["progress"] == {"planned": 12, "done": 0, "booked": 0, "to_book": 12}
    for role in (Role.MONITOR, Role.CLINIC_ADMIN, Role.THERAPIST):
        read = _api(staff[role]).get(url)
        assert read.status_code == 200
        assert read.json()["id"] == body["id"]
    assert AuditEvent.objects.filter(action="course_plan.viewed", target_public_id=body["id"]).count() == 3


def test_the_api_refuses_a_course_over_the_label_with_its_code_and_source(
    prescriber: User, dosing_pathway: Any
) -> None:
    url = reverse("api-pathway-course", args=[dosing_pathway.public_id])
    body = _json({**ESKETAMINE, "phases": (Phase(None, 2, 2, 4),)})
    response = _api(prescriber).put(url, body, format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "label_frequency"
    assert error["source"]
    assert not CoursePlan.objects.exists()


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN])
def test_the_api_gives_other_roles_404_for_a_put(
    staff: dict[str, User], dosing_pathway: Any, role: str
) -> None:
    url = reverse("api-pathway-course", args=[dosing_pathway.public_id])
    assert _api(staff[role]).put(url, _json(IV), format="json").status_code == 404
    assert not CoursePlan.objects.exists()


def test_the_api_lists_creates_and_updates_templates(staff: dict[str, User]) -> None:
    admin = _api(staff[Role.CLINIC_ADMIN])
    listing = reverse("api-course-template-list")
    created = admin.post(listing, _json(IV, name="IV six"), format="json")
    assert created.status_code == 201, created.content
    detail = reverse("api-course-template-detail", args=[created.json()["id"]])
    updated = admin.put(detail, _json({**IV, "sessions": 7}, name="IV seven", is_active=False), format="json")
    assert updated.status_code == 200, updated.content
    assert updated.json()["sessions"] == 7
    assert updated.json()["is_active"] is False
    assert [row["name"] for row in admin.get(listing).json()["results"]] == ["IV seven"]
    refused = admin.post(listing, _json({**IV, "sessions": 0}, name="None"), format="json")
    assert refused.status_code == 400
    for role in (Role.THERAPIST, Role.MONITOR):
        assert _api(staff[role]).get(listing).status_code == 404
        assert _api(staff[role]).post(listing, _json(IV, name="X"), format="json").status_code == 404


def test_a_course_set_shows_on_a_cached_pathway_page_at_once(
    settings: Any,
    staff: dict[str, User],
    dosing_pathway: Any,
    client_for: Callable[[User | None], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The pathway page's body is cached under the clinic's version: setting or changing a course is
    audited, which replaces the version, so the next view shows the course."""
    from django.core.cache import cache

    settings.PAGE_CACHE_ENABLED = True
    cache.clear()
    client = client_for(staff[Role.MONITOR])
    url = reverse("pathway_detail", args=[dosing_pathway.public_id])
    assert "No course set yet" in client.get(url).content.decode()
    assert "No course set yet" in client.get(url).content.decode()  # from the cache
    with django_capture_on_commit_callbacks(execute=True):
        course_services.course_plan_set(actor=staff[Role.PRESCRIBER], pathway=dosing_pathway, **IV)
    assert "6 sessions." in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        course_services.course_plan_set(
            actor=staff[Role.PRESCRIBER], pathway=dosing_pathway, **{**IV, "sessions": 4}
        )
    assert "4 sessions." in client.get(url).content.decode()
    cache.clear()
