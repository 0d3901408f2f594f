"""The next step is a click: every next action, count and alert on the dashboards and the pathway page
links to where it is done (for a role that can act or look there, else plain text); each overdue
follow-up shows once; the stage counts open the list of pathways in that stage; every role sees what
is coming up; pages a role may not use explain who can; the forms start from sensible values."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kaemdr.models import Role
from kaemdr.models import User
from pathways import rules
from pathways import selectors
from pathways.models import Pathway
from pathways.models import Stage
from screening import services as screening_services
from screening.models import Assessment
from screening.models import AssessmentStatus
from screening.models import SafetyAlert
from sessions.emdr import services as emdr_services
from sessions.models import Booking
from sessions.models import EmdrTarget

from ..factories import FollowUpFactory
from ..factories import PathwayFactory
from ..factories import PatientFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def _page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def _links_to(html: str, href: str) -> int:
    """How many links on the page go to `href` exactly."""
    return len(re.findall(rf'href="{re.escape(href)}"', html))


def _pathway(clinic: Any, staff: dict[str, User], stage: str, **kwargs: Any) -> Pathway:
    return PathwayFactory(
        clinic=clinic,
        prescriber=staff[Role.PRESCRIBER],
        therapist=kwargs.pop("therapist", staff[Role.THERAPIST]),
        stage=stage,
        patient__registered_by=staff[Role.PRESCRIBER],
        **kwargs,
    )


# --- Next actions link where the viewer acts --------------------------------------------------------


def test_referral_next_action_links_the_prescriber_to_the_move_and_gives_the_therapist_text(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    pathway = _pathway(clinic, staff, Stage.REFERRAL)
    move = reverse("pathway_detail", args=[pathway.public_id]) + "#move-heading"

    prescriber_page = _page(client_for(staff[Role.PRESCRIBER]), reverse("dashboard"))
    therapist_page = _page(client_for(staff[Role.THERAPIST]), reverse("dashboard"))

    assert f'<a href="{move}" data-testid="next-action">Start the assessment</a>' in prescriber_page
    assert "Start the assessment" in therapist_page
    assert _links_to(therapist_page, move) == 0


def test_assign_a_therapist_links_to_the_care_team_page_on_the_pathway_page(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    pathway = _pathway(clinic, staff, Stage.REFERRAL, therapist=None)
    url = reverse("pathway_detail", args=[pathway.public_id])

    prescriber_page = _page(client_for(staff[Role.PRESCRIBER]), url)
    monitor_page = _page(client_for(staff[Role.MONITOR]), url)

    care_team = reverse("pathway_care_team", args=[pathway.public_id])
    assert re.search(
        rf'<a class="fw-semibold" href="{care_team}"[^>]*>Assign a therapist</a>', prescriber_page
    )
    assert "Assign a therapist" in monitor_page
    assert _links_to(monitor_page, care_team) == 0


def test_a_draft_assessment_links_to_the_assessment_for_every_screening_reader(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    pathway = _pathway(clinic, staff, Stage.ASSESSMENT)
    assessment = Assessment.objects.create(
        pathway=pathway, clinic=clinic, version=1, status=AssessmentStatus.DRAFT, opened_by=pathway.prescriber
    )
    href = reverse("assessment_detail", args=[assessment.public_id])

    for role in (Role.PRESCRIBER, Role.THERAPIST):
        page = _page(client_for(staff[role]), reverse("dashboard"))
        assert f'<a href="{href}" data-testid="next-action">Complete and sign the assessment</a>' in page
    pathway_page = _page(client_for(staff[Role.MONITOR]), reverse("pathway_detail", args=[pathway.public_id]))
    assert _links_to(pathway_page, href) >= 1  # monitors read the screening too


def test_an_open_safety_alert_links_to_recording_the_action_only_for_roles_that_record_it(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    pathway = _pathway(clinic, staff, Stage.ASSESSMENT)
    response = screening_services.measure_record(
        actor=staff[Role.THERAPIST], pathway=pathway, instrument="phq9", answers=[0, 0, 0, 0, 0, 0, 0, 0, 1]
    )
    alert: SafetyAlert = response.alerts.get()
    href = reverse("safety_alert_acknowledge", args=[alert.public_id])
    url = reverse("pathway_detail", args=[pathway.public_id])

    prescriber_page = _page(client_for(staff[Role.PRESCRIBER]), url)
    monitor_page = _page(client_for(staff[Role.MONITOR]), url)
    dashboard = _page(client_for(staff[Role.PRESCRIBER]), reverse("dashboard"))

    assert re.search(rf'href="{href}"[^>]*>Urgent: review the safety alert</a>', prescriber_page)
    assert re.search(rf'href="{href}"[^>]*>Urgent: review the safety alert</a>', dashboard)
    assert "Urgent: review the safety alert" in monitor_page
    assert _links_to(monitor_page, href) == 0


@pytest.mark.parametrize(
    ("role", "url_name"),
    [
        (Role.CLINIC_ADMIN, "booking_create"),
        (Role.PRESCRIBER, "pathway_bookings"),
        (Role.THERAPIST, "pathway_bookings"),
        (Role.MONITOR, "pathway_bookings"),
    ],
)
def test_prepare_for_dosing_links_each_role_to_its_own_page(
    role: str, url_name: str, clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    pathway = _pathway(clinic, staff, Stage.PREPARATION)
    SignedScreeningFactory(pathway=pathway)

    page = _page(client_for(staff[role]), reverse("pathway_detail", args=[pathway.public_id]))

    href = reverse(url_name, args=[pathway.public_id])
    assert re.search(rf'href="{href}"[^>]*>Prepare for dosing</a>', page)


def test_a_follow_up_next_action_links_to_the_follow_up(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    pathway = _pathway(clinic, staff, Stage.INTEGRATION)
    follow_up = FollowUpFactory(
        pathway=pathway, responsible=staff[Role.THERAPIST], due_at=timezone.now() + dt.timedelta(days=2)
    )

    page = _page(client_for(staff[Role.THERAPIST]), reverse("dashboard"))

    href = reverse("follow_up_detail", args=[follow_up.public_id])
    assert re.search(rf'<a href="{href}" data-testid="next-action">Day-\d+ check-in</a>', page)


def test_next_actions_have_no_link_without_a_viewer(clinic: Any, staff: dict[str, User]) -> None:
    pathway = _pathway(clinic, staff, Stage.REFERRAL)
    assert [a.url for a in selectors.pathway_next_actions(pathway=pathway)] == [""]
    assert selectors.pathway_next_actions(pathway=pathway, user=staff[Role.PRESCRIBER])[0].url.endswith(
        "#move-heading"
    )


# --- Each overdue follow-up once ------------------------------------------------------------------------


def test_the_prescriber_dashboard_lists_each_overdue_follow_up_once(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    pathway = _pathway(clinic, staff, Stage.INTEGRATION)
    past = timezone.now() - dt.timedelta(days=3)
    theirs = FollowUpFactory(pathway=pathway, responsible=staff[Role.PRESCRIBER], due_at=past)
    others = FollowUpFactory(pathway=pathway, responsible=staff[Role.THERAPIST], due_at=past)

    page = _page(client_for(staff[Role.PRESCRIBER]), reverse("dashboard"))

    mine = page.split('data-testid="overdue-mine"')[1].split("</ul>")[0]
    clinic_part = page.split('data-testid="overdue-clinic"')[1].split("</ul>")[0]
    own_href = reverse("follow_up_detail", args=[theirs.public_id])
    other_href = reverse("follow_up_detail", args=[others.public_id])
    assert _links_to(mine, own_href) == 1
    assert _links_to(clinic_part, own_href) == 0
    assert _links_to(clinic_part, other_href) == 1
    assert 'data-testid="overdue-clinic-count"' in page  # the count is a link to the list too


# --- Stage counts open the list of that stage -------------------------------------------------------


def test_the_clinic_admins_stage_counts_link_to_the_patients_in_that_stage(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    dosing = [_pathway(clinic, staff, Stage.DOSING) for _ in range(2)]
    referral = _pathway(clinic, staff, Stage.REFERRAL)
    client = client_for(staff[Role.CLINIC_ADMIN])

    dashboard = _page(client, reverse("dashboard"))
    listing = _page(client, reverse("patient_list") + "?stage=dosing")

    link = re.search(r'<a [^>]*href="/patients/\?stage=dosing"[^>]*>(.*?)</a>', dashboard, re.S)
    assert link is not None
    assert ">2<" in link.group(1)
    for pathway in dosing:
        assert pathway.patient.record_number in listing
    assert referral.patient.record_number not in listing
    assert "Patients in dosing" in listing


def test_an_unknown_stage_filter_shows_every_patient(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    pathway = _pathway(clinic, staff, Stage.REFERRAL)
    page = _page(client_for(staff[Role.CLINIC_ADMIN]), reverse("patient_list") + "?stage=nonsense")
    assert pathway.patient.record_number in page


def test_the_api_lists_the_pathways_in_a_stage(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    dosing = _pathway(clinic, staff, Stage.DOSING)
    _pathway(clinic, staff, Stage.REFERRAL)
    response = client_for(staff[Role.CLINIC_ADMIN]).get("/api/v1/pathways/?stage=dosing")
    assert response.status_code == 200, response.content
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    assert [row["id"] for row in rows] == [str(dosing.public_id)]


# --- What is coming up --------------------------------------------------------------------------------


def _booking(pathway: Pathway, staff: dict[str, User], room: Any, starts_at: dt.datetime) -> Booking:
    return Booking.objects.create(  # directly: a service refuses a time that has passed
        clinic=pathway.clinic,
        pathway=pathway,
        patient=pathway.patient,
        room=room,
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(hours=2),
        agent="ketamine",
        route="sublingual",
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
        booked_by=staff[Role.CLINIC_ADMIN],
    )


@pytest.fixture
def week(clinic: Any, staff: dict[str, User]) -> dict[str, Booking]:
    """A session today, one the day after tomorrow and one in ten days, on three patients."""
    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    today = timezone.localdate()
    room = RoomFactory(clinic=clinic)

    def at(days: int, hour: int) -> dt.datetime:
        return dt.datetime.combine(today + dt.timedelta(days=days), dt.time(hour, 0), tzinfo=tz)

    return {
        "today": _booking(_pathway(clinic, staff, Stage.DOSING), staff, room, at(0, 8)),
        "soon": _booking(_pathway(clinic, staff, Stage.DOSING), staff, room, at(2, 9)),
        "later": _booking(_pathway(clinic, staff, Stage.DOSING), staff, room, at(10, 9)),
    }


def test_the_monitor_dashboard_shows_today_and_the_next_days_with_names_linking_to_the_booking(
    week: dict[str, Booking], staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    page = _page(client_for(staff[Role.MONITOR]), reverse("dashboard"))

    today, soon, later = week["today"], week["soon"], week["later"]
    today_href = reverse("booking_detail", args=[today.public_id])
    assert f'<a href="{today_href}" data-testid="today-patient">{today.patient.full_name}</a>' in page
    checks = re.search(r'href="([^"]+)" data-testid="checks-to-confirm">Fasting Escort to confirm', page)
    assert checks is not None
    assert checks.group(1) == f"{today_href}#checks-heading"
    upcoming = page.split('data-testid="upcoming-sessions"')[1].split("</ul>")[0]
    soon_href = reverse("booking_detail", args=[soon.public_id])
    start = timezone.localtime(soon.starts_at)
    assert re.search(
        rf'<a href="{soon_href}">{start:%H:%M}\u2013[0-9:]+ {re.escape(soon.patient.full_name)}</a>', upcoming
    )
    sessions_panel = page.split('id="coming-up"')[1].split("</section>")[0]
    assert later.patient.full_name not in sessions_panel
    assert today.patient.full_name not in upcoming


def test_the_monitor_dashboard_shows_what_comes_next_on_a_day_without_sessions(
    week: dict[str, Booking], staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    week["today"].delete()
    page = _page(client_for(staff[Role.MONITOR]), reverse("dashboard"))
    assert "No sessions today." in page
    assert week["soon"].patient.full_name in page


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.THERAPIST, Role.CLINIC_ADMIN])
def test_every_role_sees_what_is_coming_up(
    role: str, week: dict[str, Booking], staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    page = _page(client_for(staff[role]), reverse("dashboard"))
    assert "Coming up in the next 7 days" in page
    assert week["soon"].patient.full_name in page.split('data-testid="upcoming-sessions"')[1]


def test_a_therapist_sees_only_their_care_teams_sessions_coming_up(
    week: dict[str, Booking], clinic: Any, client_for: Callable[[User], Client]
) -> None:
    stranger = UserFactory(clinic=clinic, role=Role.THERAPIST)
    page = _page(client_for(stranger), reverse("dashboard"))
    assert week["soon"].patient.full_name not in page
    assert "Nothing booked in the next 7 days." in page


# --- Pages a role may not use say who can ---------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CLINIC_ADMIN, Role.MONITOR, Role.THERAPIST])
def test_registering_a_patient_explains_who_can_to_other_roles(
    role: str, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    client = client_for(staff[role])

    response = client.get(reverse("patient_register"))
    listing = _page(client, reverse("patient_list"))

    assert response.status_code == 403
    assert "Patients are registered by a prescriber" in response.content.decode()
    assert _links_to(listing, reverse("patient_register")) == 0


# --- Hints and defaults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("highest", "expected"),
    [("HB-1004", "HB-1005"), ("HB-0999", "HB-1000"), ("MRN-9", "MRN-10"), ("12", "13"), ("ABC", "")],
)
def test_next_record_number_continues_the_pattern(highest: str, expected: str) -> None:
    assert rules.next_record_number(highest) == expected


def test_the_registration_form_hints_the_next_free_record_number(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    prescriber = staff[Role.PRESCRIBER]
    for number in ("HB-0012", "hb-0031", "HB-0007", "OLD-9999"):
        PatientFactory(clinic=clinic, registered_by=prescriber, record_number=number)
    PatientFactory(clinic=clinic, registered_by=prescriber, record_number="HB-0020")  # the newest

    page = _page(client_for(prescriber), reverse("patient_register"))

    assert 'placeholder="HB-0032"' in page
    assert "The next free number is HB-0032." in page
    assert 'value="HB-0032"' not in page  # a hint, not assigned


def test_the_registration_form_has_no_hint_for_a_clinic_without_patients(
    staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    page = _page(client_for(staff[Role.PRESCRIBER]), reverse("patient_register"))
    assert "The next free number is" not in page


def test_a_prescriber_opening_a_pathway_is_the_chosen_prescriber(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    prescriber = staff[Role.PRESCRIBER]
    UserFactory(clinic=clinic, role=Role.PRESCRIBER)  # another one to choose from
    patient = PatientFactory(clinic=clinic, registered_by=prescriber)

    page = _page(client_for(prescriber), reverse("pathway_open", args=[patient.public_id]))

    assert re.search(rf'<option value="{prescriber.public_id}" selected>', page)


def test_the_emdr_session_log_starts_on_the_target_in_progress(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    therapist = staff[Role.THERAPIST]
    pathway = _pathway(clinic, staff, Stage.PREPARATION)
    plan = emdr_services.plan_open(actor=therapist, pathway=pathway)
    emdr_services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    worked = emdr_services.target_add(actor=therapist, plan=plan, kind="resource", title="Safe hands")
    EmdrTarget.objects.filter(pk=worked.pk).update(state="in_progress")  # as `target_start` leaves it

    page = _page(client_for(therapist), reverse("emdr_session_log", args=[plan.public_id]))

    assert re.search(rf'<option value="{worked.public_id}" selected>', page)


def test_the_api_gives_each_next_action_the_requesters_link(
    clinic: Any, staff: dict[str, User], client_for: Callable[[User], Client]
) -> None:
    pathway = _pathway(clinic, staff, Stage.REFERRAL)
    url = f"/api/v1/pathways/{pathway.public_id}/"

    for_prescriber = client_for(staff[Role.PRESCRIBER]).get(url).json()["next_actions"]
    for_therapist = client_for(staff[Role.THERAPIST]).get(url).json()["next_actions"]

    move = reverse("pathway_detail", args=[pathway.public_id]) + "#move-heading"
    assert [(a["label"], a["url"]) for a in for_prescriber] == [("Start the assessment", move)]
    assert [(a["label"], a["url"]) for a in for_therapist] == [("Start the assessment", "")]
