"""Follow-ups when a pathway closes: an open REMS monitoring-form follow-up outlives completion and
discontinuation (and still closes when the form is filed), and completing a course schedules the outcome
measures at the clinic's months after it: exactly once, at the right dates, closed by the measures that
answer them or by a prescriber's reason, through the services, the pages and the API."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db import connection
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from integration import rules
from integration import selectors
from integration import services
from integration import tasks
from integration.models import FollowUp
from integration.models import IntegrationSettings
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways import services as pathway_services
from pathways.models import Pathway
from pathways.models import Stage
from pathways.registry import PATHWAY_STAGE_CHANGED
from pathways.registry import registry
from screening import services as screening_services
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.record import services as dosing

from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db

PHQ9_MILD = [1, 1, 1, 1, 1, 0, 0, 0, 0]
GAD7_MILD = [1, 1, 1, 1, 1, 0, 0]
DES2_LOW = [0] * 28
KIND = rules.FollowUpKind.COURSE_OUTCOME


def api_for(user: User) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def course_follow_ups(pathway: Pathway) -> dict[int, FollowUp]:
    return {f.sequence: f for f in FollowUp.objects.filter(pathway=pathway, kind=KIND)}


def move(actor: User, pathway: Pathway, *stages: str) -> None:
    for stage in stages:
        pathway_services.pathway_move(actor=actor, pathway=pathway, to_stage=stage, reason="As planned.")


@pytest.fixture
def esketamine_session(
    staff: dict[str, User], dosing_pathway: Pathway, complete_session: Callable[..., DosingSession]
) -> DosingSession:
    """A signed esketamine session whose REMS monitoring form is not filed yet, with its follow-ups."""
    session = complete_session(dosing_pathway)
    Booking.objects.filter(pk=session.booking_id).update(agent="esketamine")
    DosingSession.objects.filter(pk=session.pk).update(pmf_required=True, pmf_filed_at=None)
    FollowUp.objects.filter(dosing_session=session).delete()
    session.refresh_from_db()
    services.follow_ups_schedule_after_session(session=session)
    return session


@pytest.fixture
def integration_pathway(clinic: Any, prescriber: User, therapist: User) -> Pathway:
    """A pathway in integration, ready to be completed."""
    pathway = PathwayFactory(
        clinic=clinic, prescriber=prescriber, therapist=therapist, stage=Stage.INTEGRATION
    )
    SignedScreeningFactory(pathway=pathway)
    return pathway


# --- the monitoring form outlives the pathway ---------------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "word"),
    [
        ((Stage.INTEGRATION, Stage.COMPLETED), "completed"),
        ((Stage.DISCONTINUED,), "discontinued"),
        ((Stage.ON_HOLD, Stage.DISCONTINUED), "discontinued"),
    ],
)
def test_an_open_monitoring_form_follow_up_outlives_the_pathway_and_closes_when_filed(
    staff: dict[str, User], esketamine_session: DosingSession, stages: tuple[str, ...], word: str
) -> None:
    pathway = esketamine_session.booking.pathway
    form = FollowUp.objects.get(dosing_session=esketamine_session, kind="monitoring_form")
    move(staff[Role.PRESCRIBER], pathway, *stages)
    form.refresh_from_db()
    assert form.status == "open"
    work = FollowUp.objects.filter(
        pathway=pathway, kind__in=["integration_session", "check_in", "outcome_measures"]
    )
    assert {(f.status, f.outcome) for f in work} == {("cancelled", f"The pathway was {word}.")}
    assert not FollowUp.objects.filter(pathway=pathway, status="open").exclude(pk=form.pk).exclude(kind=KIND)
    # overdue, it is on the lists and dashboards where overdue forms show
    FollowUp.objects.filter(pk=form.pk).update(due_at=timezone.now() - dt.timedelta(hours=1))
    prescriber = staff[Role.PRESCRIBER]
    assert form in selectors.follow_ups_list(prescriber, show="overdue")
    assert form in selectors.overdue_follow_ups(prescriber, mine=False)[0]
    assert form in selectors.pathway_follow_ups(Pathway.objects.get(pk=pathway.pk))
    dosing.pmf_mark_filed(actor=staff[Role.MONITOR], session=esketamine_session)
    form.refresh_from_db()
    assert (form.status, form.outcome) == ("done", "Monitoring form filed.")


def test_an_overdue_form_after_completion_shows_on_the_dashboard_and_its_page_links_the_record(
    staff: dict[str, User],
    esketamine_session: DosingSession,
    client_for: Callable[[User | None], Client],
) -> None:
    pathway = esketamine_session.booking.pathway
    move(staff[Role.PRESCRIBER], pathway, Stage.INTEGRATION, Stage.COMPLETED)
    form = FollowUp.objects.get(dosing_session=esketamine_session, kind="monitoring_form")
    FollowUp.objects.filter(pk=form.pk).update(due_at=timezone.now() - dt.timedelta(hours=1))
    client = client_for(staff[Role.PRESCRIBER])
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert f"REMS monitoring form: {pathway.patient.full_name}" in dashboard
    page = client.get(reverse("follow_up_detail", args=[form.public_id])).content.decode()
    assert "The pathway is completed, but the form is still due." in page
    assert reverse("session_detail", args=[esketamine_session.public_id]) in page
    assert "Spravato REMS (FDA REMS 386)" in page  # its source
    listed = api_for(staff[Role.PRESCRIBER]).get("/api/v1/follow-ups/?scope=clinic&show=overdue").json()
    assert [row["id"] for row in listed["results"]] == [str(form.public_id)]


# --- completing a course schedules the outcome measures -------------------------------------------------


def test_completing_a_course_schedules_the_outcome_follow_ups_once(
    staff: dict[str, User], integration_pathway: Pathway
) -> None:
    prescriber = staff[Role.PRESCRIBER]
    move(prescriber, integration_pathway, Stage.COMPLETED)
    integration_pathway.refresh_from_db()
    completed_at = integration_pathway.stage_changed_at
    tz = zoneinfo.ZoneInfo(integration_pathway.clinic.time_zone)
    found = course_follow_ups(integration_pathway)
    assert sorted(found) == [1, 3, 6]
    for month, follow_up in found.items():
        assert follow_up.due_at == rules.add_months(completed_at, months=month, tz=tz)
        assert follow_up.notify_at == follow_up.due_at
        assert (follow_up.status, follow_up.responsible, follow_up.dosing_session) == (
            "open",
            prescriber,
            None,
        )
    scheduled = AuditEvent.objects.filter(
        action="follow_up.scheduled", target_public_id=integration_pathway.public_id
    )
    assert [event.data["months"] for event in scheduled] == [[1, 3, 6]]
    # the handler run again (a retried event or task) and the service called again create nothing
    change = integration_pathway.stage_changes.order_by("-id").first()
    registry.emit(PATHWAY_STAGE_CHANGED, pathway=integration_pathway, change=change, actor=prescriber)
    assert services.course_outcome_schedule(pathway=integration_pathway, completed_at=completed_at) == []
    # a second completion is refused by the stage machine, and adds nothing either
    with pytest.raises(ValidationError):
        move(prescriber, integration_pathway, Stage.COMPLETED)
    assert FollowUp.objects.filter(pathway=integration_pathway, kind=KIND).count() == 3
    assert scheduled.count() == 1


def test_the_database_refuses_a_second_follow_up_for_the_same_month(
    staff: dict[str, User], integration_pathway: Pathway
) -> None:
    move(staff[Role.PRESCRIBER], integration_pathway, Stage.COMPLETED)
    one = course_follow_ups(integration_pathway)[1]
    with pytest.raises(IntegrityError), transaction.atomic():
        FollowUp.objects.create(
            clinic_id=one.clinic_id,
            pathway=integration_pathway,
            patient_id=one.patient_id,
            kind=KIND,
            sequence=1,
            responsible=one.responsible,
            due_at=one.due_at,
            notify_at=one.notify_at,
        )


@pytest.mark.parametrize(
    ("time_zone", "completed", "months", "due"),
    [
        ("Europe/London", (2025, 1, 31, 14, 0), "1, 3, 6", [(2025, 2, 28), (2025, 4, 30), (2025, 7, 31)]),
        ("Europe/London", (2024, 1, 31, 9, 0), "1", [(2024, 2, 29)]),
        ("Europe/London", (2025, 8, 31, 16, 45), "1, 6", [(2025, 9, 30), (2026, 2, 28)]),
        ("America/New_York", (2025, 1, 31, 22, 0), "1, 3", [(2025, 2, 28), (2025, 4, 30)]),
        ("Australia/Sydney", (2025, 3, 1, 0, 30), "1, 12", [(2025, 4, 1), (2026, 3, 1)]),
        ("Europe/London", (2025, 6, 15, 11, 0), "24", [(2027, 6, 15)]),
    ],
)
def test_completion_schedules_exactly_the_clinics_months_on_their_calendar_days(
    time_zone: str,
    completed: tuple[int, int, int, int, int],
    months: str,
    due: list[tuple[int, int, int]],
) -> None:
    clinic = ClinicFactory(time_zone=time_zone)
    IntegrationSettings.objects.create(clinic=clinic, outcome_follow_up_months=months)
    prescriber = UserFactory(clinic=clinic, role=Role.PRESCRIBER)
    pathway = PathwayFactory(clinic=clinic, prescriber=prescriber, stage=Stage.COMPLETED)
    tz = zoneinfo.ZoneInfo(time_zone)
    completed_at = dt.datetime(*completed, tzinfo=tz)
    created = services.course_outcome_schedule(pathway=pathway, completed_at=completed_at)
    assert [f.sequence for f in created] == list(rules.parse_outcome_follow_up_months(months))
    local = [
        timezone.localtime(f.due_at, tz) for f in FollowUp.objects.filter(pathway=pathway).order_by("due_at")
    ]
    assert [(d.year, d.month, d.day) for d in local] == due
    assert {(d.hour, d.minute) for d in local} == {completed[3:]}  # the local clock time of completion


def test_only_a_completed_course_is_scheduled(
    staff: dict[str, User], esketamine_session: DosingSession
) -> None:
    pathway = esketamine_session.booking.pathway
    move(staff[Role.PRESCRIBER], pathway, Stage.DISCONTINUED)
    assert course_follow_ups(pathway) == {}
    assert services.course_outcome_schedule(pathway=pathway, completed_at=timezone.now()) == []


def test_the_outcome_follow_ups_are_sent_once_when_due_by_a_task_run_twice(
    staff: dict[str, User], integration_pathway: Pathway
) -> None:
    move(staff[Role.PRESCRIBER], integration_pathway, Stage.COMPLETED)
    found = course_follow_ups(integration_pathway)
    mail.outbox.clear()
    assert tasks.follow_ups_dispatch() == 0  # nothing is due yet
    FollowUp.objects.filter(pk=found[1].pk).update(notify_at=timezone.now() - dt.timedelta(minutes=1))
    assert tasks.follow_ups_dispatch() == 1
    assert tasks.follow_ups_dispatch() == 0  # the task retried: the row decides, nothing is sent again
    ids = Counter(message.extra_headers["Message-ID"] for message in mail.outbox)
    assert ids == Counter({f"<follow-up-{found[1].public_id}-staff@kaemdr.local>": 1})
    message = mail.outbox[0]
    assert message.to == [staff[Role.PRESCRIBER].email]
    assert message.subject.startswith("Outcome measures after the course due ")
    assert course_follow_ups(integration_pathway)[1].status == "open"  # work, not only a message


# --- closed by the measures that answer them, or by hand --------------------------------------------------


@pytest.fixture
def completed_weeks_ago(staff: dict[str, User], integration_pathway: Pathway) -> Pathway:
    """The course was completed 40 days ago: the 1-month follow-up is 10 days overdue."""
    move(staff[Role.PRESCRIBER], integration_pathway, Stage.COMPLETED)
    FollowUp.objects.filter(pathway=integration_pathway, kind=KIND).delete()
    completed_at = timezone.now() - dt.timedelta(days=40)
    Pathway.objects.filter(pk=integration_pathway.pk).update(stage_changed_at=completed_at)
    integration_pathway.refresh_from_db()
    services.course_outcome_schedule(pathway=integration_pathway, completed_at=completed_at)
    return integration_pathway


def test_measures_recorded_close_the_follow_up_they_answer_and_no_other(
    staff: dict[str, User], completed_weeks_ago: Pathway
) -> None:
    prescriber = staff[Role.PRESCRIBER]
    record = screening_services.measure_record
    record(actor=prescriber, pathway=completed_weeks_ago, instrument="des2", answers=DES2_LOW)
    assert {m: f.status for m, f in course_follow_ups(completed_weeks_ago).items()} == {
        1: "open",
        3: "open",
        6: "open",
    }  # a screen, not an outcome measure
    record(actor=prescriber, pathway=completed_weeks_ago, instrument="phq9", answers=PHQ9_MILD)
    record(actor=prescriber, pathway=completed_weeks_ago, instrument="gad7", answers=GAD7_MILD)
    found = course_follow_ups(completed_weeks_ago)
    assert {m: f.status for m, f in found.items()} == {1: "done", 3: "open", 6: "open"}
    assert (found[1].outcome, found[1].done_by) == ("PHQ-9 (depression) recorded.", prescriber)
    assert not FollowUp.objects.filter(pathway=completed_weeks_ago, kind="outcome_measures", status="open")


def test_a_completed_pathway_takes_measures_by_page_and_api_and_a_discontinued_one_does_not(
    staff: dict[str, User],
    completed_weeks_ago: Pathway,
    client_for: Callable[[User | None], Client],
) -> None:
    prescriber = staff[Role.PRESCRIBER]
    follow_up = course_follow_ups(completed_weeks_ago)[1]
    page = (
        client_for(prescriber).get(reverse("follow_up_detail", args=[follow_up.public_id])).content.decode()
    )
    measure_url = reverse("pathway_measure", args=[completed_weeks_ago.public_id, "phq9"])
    assert measure_url in page
    assert "NCT05604794" in page  # where the months come from
    posted = api_for(prescriber).post(
        "/api/v1/measures/",
        {"pathway": str(completed_weeks_ago.public_id), "instrument": "pcl5", "answers": [1] * 20},
        format="json",
    )
    assert posted.status_code == 201, posted.content
    assert course_follow_ups(completed_weeks_ago)[1].status == "done"
    discontinued = PathwayFactory(
        clinic=completed_weeks_ago.clinic, prescriber=prescriber, stage=Stage.DISCONTINUED
    )
    url = reverse("pathway_measure", args=[discontinued.public_id, "phq9"])
    assert client_for(prescriber).get(url).status_code == 404
    refused = api_for(prescriber).post(
        "/api/v1/measures/",
        {"pathway": str(discontinued.public_id), "instrument": "phq9", "answers": PHQ9_MILD},
        format="json",
    )
    assert refused.status_code == 404


def test_a_prescriber_closes_an_outcome_follow_up_by_hand_with_a_reason(
    staff: dict[str, User], completed_weeks_ago: Pathway, client_for: Callable[[User | None], Client]
) -> None:
    three = course_follow_ups(completed_weeks_ago)[3]
    url = reverse("follow_up_detail", args=[three.public_id])
    for role in (Role.THERAPIST, Role.MONITOR, Role.CLINIC_ADMIN):
        assert client_for(staff[role]).post(url, {"outcome": "Declined."}).status_code == 404
    empty = client_for(staff[Role.PRESCRIBER]).post(url, {"outcome": ""})
    assert empty.status_code == 400
    assert course_follow_ups(completed_weeks_ago)[3].status == "open"
    done = client_for(staff[Role.PRESCRIBER]).post(url, {"outcome": "Moved abroad; declined the measures."})
    assert done.status_code == 302
    closed = course_follow_ups(completed_weeks_ago)[3]
    assert (closed.status, closed.outcome) == ("done", "Moved abroad; declined the measures.")
    again = api_for(staff[Role.PRESCRIBER]).post(
        f"/api/v1/follow-ups/{three.public_id}/complete/", {"outcome": "Again."}, format="json"
    )
    assert again.status_code == 400
    error = again.json()["errors"][0]
    assert (error["code"], error["source"]) == (
        "follow_up_closed",
        rules.SOURCE_FOLLOW_UP_RECORD.text,
    )
    assert error["source"].startswith("GMC, Good medical practice (2024): keeping records")


def test_the_completed_pathway_page_lists_its_outcome_follow_ups(
    staff: dict[str, User], integration_pathway: Pathway, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(staff[Role.PRESCRIBER])
    response = client.post(
        reverse("pathway_move", args=[integration_pathway.public_id]),
        {"to_stage": Stage.COMPLETED, "reason": "Course complete.", "expected_stage": Stage.INTEGRATION},
        follow=True,
    )
    page = response.content.decode()
    assert "The pathway moved to completed." in page
    for label in ("(1 month)", "(3 months)", "(6 months)"):
        assert f"Outcome measures after the course {label}" in page


# --- the clinic's months --------------------------------------------------------------------------------


SETTINGS_FORM = {
    "integration_window_hours": 72,
    "check_in_days": "1, 3, 7",
    "measures_interval_weeks": 4,
    "reminder_hour": 10,
}


def test_a_clinic_without_settings_has_the_default_months(clinic: Any) -> None:
    assert selectors.integration_settings_for(clinic.pk).timings().outcome_follow_up_months == (1, 3, 6)
    # an existing clinic's row (made before the setting existed) gets the default from the database
    row = IntegrationSettings(clinic=clinic)
    fields = [
        f
        for f in IntegrationSettings._meta.local_concrete_fields
        if f.column not in ("id", "outcome_follow_up_months")
    ]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(f.pre_save(row, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {IntegrationSettings._meta.db_table} ({columns}) "
            f"VALUES ({', '.join(['%s'] * len(fields))})",
            values,
        )
    assert IntegrationSettings.objects.get(clinic=clinic).outcome_follow_up_months == "1, 3, 6"


@pytest.mark.parametrize(
    ("months", "saved", "message"),
    [
        ("1, 3, 6", "1, 3, 6", None),
        ("1", "1", None),
        ("24, 12, 1", "1, 12, 24", None),
        ("0, 3", None, "Outcome follow-ups run from 1 to 24 months after the course."),
        ("1, 25", None, "Outcome follow-ups run from 1 to 24 months after the course."),
        ("three", None, "Give whole months separated by commas, such as 1, 3, 6."),
        ("1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13", None, "12 outcome follow-ups at most."),
    ],
)
def test_the_months_are_bounded_on_the_page_and_in_the_api(
    staff: dict[str, User],
    client_for: Callable[[User | None], Client],
    months: str,
    saved: str | None,
    message: str | None,
) -> None:
    admin = staff[Role.CLINIC_ADMIN]
    page = client_for(admin).post(
        reverse("integration_settings"),
        {**SETTINGS_FORM, "integration_window_hours": 48, "outcome_follow_up_months": months},
    )
    api = api_for(admin).put(
        "/api/v1/integration-settings/",
        {**SETTINGS_FORM, "outcome_follow_up_months": months, "patient_emails_enabled": False},
        format="json",
    )
    if message is None:
        assert page.status_code == 302
        assert api.status_code == 200
        assert api.json()["outcome_follow_up_months"] == saved
        assert IntegrationSettings.objects.get(clinic=admin.clinic).outcome_follow_up_months == saved
        return
    assert page.status_code == 400
    body = page.content.decode()
    assert f"{message} (Source: " in body  # next to the field, with its source
    assert "Clinic setting, Outcome follow-up months" in body
    assert 'value="48"' in body  # the rest of the input kept
    assert api.status_code == 400
    error = api.json()["errors"][0]
    assert (error["field"], error["code"], error["message"]) == (
        "outcome_follow_up_months",
        "outcome_follow_up_months_invalid",
        message,
    )
    assert error["source"].startswith("Clinic setting, Outcome follow-up months; ")
    assert error["source_url"] == "https://clinicaltrials.gov/study/NCT05604794"
    assert not IntegrationSettings.objects.filter(clinic=admin.clinic).exclude(
        outcome_follow_up_months="1, 3, 6"
    )


def test_the_clinics_months_shape_the_schedule_and_apply_from_then_on(
    staff: dict[str, User], integration_pathway: Pathway
) -> None:
    services.integration_settings_update(actor=staff[Role.CLINIC_ADMIN], outcome_follow_up_months="2, 12")
    move(staff[Role.PRESCRIBER], integration_pathway, Stage.COMPLETED)
    assert sorted(course_follow_ups(integration_pathway)) == [2, 12]
    assert AuditEvent.objects.filter(action="integration.settings_updated").count() == 1
    with pytest.raises(NotFoundOrForbidden):
        services.integration_settings_update(actor=staff[Role.PRESCRIBER], outcome_follow_up_months="1")
    assert (
        IntegrationSettings.objects.get(clinic=integration_pathway.clinic).outcome_follow_up_months == "2, 12"
    )
