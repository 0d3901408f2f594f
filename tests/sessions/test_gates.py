"""The dosing gates of `sessions.gates`: an open urgent safety alert, raised at any time, stops booking
and dosing; a dose starts only in the dosing stage (the first dose moves a pathway in preparation
into it); hold, discontinuation and completion cancel the bookings still to come; and a past memory's
EMDR readiness (no crisis, no open alert) is checked at every session that processes it.

Each bypass is tried through the service, the page and the API, and refused with nothing written."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from integration.models import FollowUp
from kaemdr import sources
from kaemdr.exceptions import error_items
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from pathways import selectors as pathway_selectors
from pathways import services as pathway_services
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from pathways.models import Stage
from screening import services as screening_services
from screening.models import Assessment
from screening.models import MeasureResponse
from screening.models import SafetyAlert
from sessions import gates
from sessions.booking import services as booking_services
from sessions.emdr import rules as emdr_rules
from sessions.emdr import services as emdr_services
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.models import EmdrPlan
from sessions.models import EmdrSessionLog
from sessions.models import EmdrTarget
from sessions.record import services

from ..access import snapshot
from ..conftest import require_postgres
from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory

pytestmark = pytest.mark.django_db

PHQ9_ITEM9 = [1, 1, 1, 1, 1, 1, 1, 1, 1]
CSSRS_HIGH = {"q1": True, "q2": True, "q3": True, "q4": True, "q5": False, "q6_lifetime": False}
ALERTS = {"phq9": PHQ9_ITEM9, "cssrs": CSSRS_HIGH}


def raise_alert(actor: User, pathway: Any, instrument: str = "phq9") -> SafetyAlert:
    """A repeat measure after the screening was signed, raising an urgent alert."""
    response = screening_services.measure_record(
        actor=actor, pathway=pathway, instrument=instrument, answers=ALERTS[instrument]
    )
    return response.alerts.get()


def book(staff: dict[str, User], pathway: Any, room: Any, starts_at: dt.datetime) -> Booking:
    return booking_services.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=pathway,
        room=room,
        starts_at=starts_at,
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )


def ready(staff: dict[str, User], booking: Booking) -> DosingSession:
    """The booking's record opened, its checks passed and a pre-dose reading in range: ready to dose."""
    monitor = staff[Role.MONITOR]
    session = services.session_open(actor=monitor, booking=booking)
    services.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    services.vitals_record(
        actor=monitor,
        session=session,
        systolic=128,
        diastolic=82,
        heart_rate=76,
        spo2=98,
        respiratory_rate=14,
    )
    return session


def dose(staff: dict[str, User], session: DosingSession) -> DosingSession:
    return services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=100, lot_number="L1")


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def codes(error: ValidationError) -> list[str]:
    return [item.code or "" for _, item in error_items(error)]


def written() -> tuple[Any, ...]:
    """Everything a refused booking, dose or session log could have written (a page that shows the
    refusal audits that it was viewed: that is a read, not a write of the refused request)."""
    return (
        AuditEvent.objects.exclude(action__startswith="auth.").exclude(action__endswith="viewed").count(),
        *snapshot()[1:],
        tuple(Booking.objects.order_by("pk").values_list("status", "starts_at", "room_id")),
        tuple(DosingSession.objects.order_by("pk").values_list("status", "dose_started_at")),
    )


@pytest.fixture
def preparing(clinic: Any, prescriber: User, therapist: User) -> Pathway:
    """A pathway in preparation with a current signed screening (sublingual racemic ketamine)."""
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        therapist=therapist,
        stage=Stage.PREPARATION,
        patient__registered_by=prescriber,
    )
    SignedScreeningFactory(pathway=pathway)
    return pathway


# --- Alerts stop a dose --------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", ["phq9", "cssrs"])
def test_an_alert_raised_after_the_screening_stops_booking_by_service_page_and_api(
    instrument: str,
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    alert = raise_alert(staff[Role.THERAPIST], dosing_pathway, instrument)
    before = written()

    with pytest.raises(ValidationError) as refused:
        book(staff, dosing_pathway, room, slot(0, 9))
    assert codes(refused.value) == ["safety_alert_open"]
    item = refused.value.error_list[0]
    assert item.message.startswith("Record the action taken on the open safety alert (")
    assert "or have a prescriber sign a dosing override" in item.message
    assert str(item.source).startswith("Kroenke" if instrument == "phq9" else "Posner")

    page = client_for(staff[Role.CLINIC_ADMIN]).post(
        reverse("booking_create", args=[dosing_pathway.public_id]),
        {
            "room": str(room.public_id),
            "date": slot(0).date().isoformat(),
            "time": "09:00",
            "prescriber": str(staff[Role.PRESCRIBER].public_id),
            "monitor": str(staff[Role.MONITOR].public_id),
        },
    )
    assert page.status_code == 400
    assert "Record the action taken on the open safety alert" in page.content.decode()

    response = api(staff[Role.CLINIC_ADMIN]).post(
        "/api/v1/bookings/",
        {
            "pathway": str(dosing_pathway.public_id),
            "room": str(room.public_id),
            "starts_at": slot(0, 9).isoformat(),
            "prescriber": str(staff[Role.PRESCRIBER].public_id),
            "monitor": str(staff[Role.MONITOR].public_id),
        },
        format="json",
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == "safety_alert_open"
    assert "source" in error
    assert written() == before
    assert alert.status == "open"


def test_the_booking_page_shows_the_alert_before_anything_is_posted(
    staff: dict[str, User], dosing_pathway: Any, client_for: Callable[[User | None], Client]
) -> None:
    raise_alert(staff[Role.THERAPIST], dosing_pathway)
    page = client_for(staff[Role.CLINIC_ADMIN]).get(
        reverse("booking_create", args=[dosing_pathway.public_id])
    )
    body = page.content.decode()
    assert "Cannot be booked yet:" in body
    assert "Record the action taken on the open safety alert (PHQ-9 item 9 above 0" in body


def test_an_alert_stops_moving_a_booking(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    booking = book(staff, dosing_pathway, room, slot(0, 9))
    raise_alert(staff[Role.PRESCRIBER], dosing_pathway, "cssrs")
    before = written()

    with pytest.raises(ValidationError) as refused:
        booking_services.booking_move(actor=staff[Role.CLINIC_ADMIN], booking=booking, starts_at=slot(1, 9))

    assert codes(refused.value) == ["safety_alert_open"]
    assert written() == before


def test_an_alert_stops_the_dose_by_service_page_and_api(
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    session = ready(staff, book(staff, dosing_pathway, room, slot(0, 9)))
    raise_alert(staff[Role.THERAPIST], dosing_pathway)  # after the booking, before the dose
    before = written()

    with pytest.raises(ValidationError) as refused:
        dose(staff, session)
    assert codes(refused.value) == ["safety_alert_open"]

    page = client_for(staff[Role.MONITOR]).post(
        reverse("session_action", args=[session.public_id, "dose"]), {"dose_mg": "100", "lot_number": "L1"}
    )
    assert page.status_code == 400
    assert "Record the action taken on the open safety alert" in page.content.decode()

    response = api(staff[Role.MONITOR]).post(
        f"/api/v1/sessions/{session.public_id}/dose/", {"dose_mg": "100", "lot_number": "L1"}, format="json"
    )
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["errors"]] == ["safety_alert_open"]
    assert written() == before


def test_every_open_alert_is_named_whatever_raised_it(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    """A baseline alert (from the screening's own measures) counts as much as a repeat measure's."""
    baseline = MeasureResponse.objects.create(
        clinic=dosing_pathway.clinic,
        pathway=dosing_pathway,
        assessment=Assessment.objects.get(pathway=dosing_pathway),
        instrument="phq9",
        answers=PHQ9_ITEM9,
        total=9,
        band="mild",
        band_label="Mild",
        administered_at=timezone.now() - dt.timedelta(days=40),
        recorded_by=staff[Role.PRESCRIBER],
    )
    SafetyAlert.objects.create(
        clinic=dosing_pathway.clinic,
        pathway=dosing_pathway,
        measure_response=baseline,
        code="phq9_item9",
        text="PHQ-9 item 9 answered above 0.",
        raised_at=timezone.now() - dt.timedelta(days=40),
    )
    raise_alert(staff[Role.THERAPIST], dosing_pathway, "cssrs")

    with pytest.raises(ValidationError) as refused:
        book(staff, dosing_pathway, room, slot(0, 9))

    assert codes(refused.value) == ["safety_alert_open", "safety_alert_open"]
    assert "PHQ-9 item 9 above 0" in refused.value.messages[0]
    assert "high suicide risk on the C-SSRS" in refused.value.messages[1]


def test_recording_the_action_taken_or_a_dosing_override_lets_booking_and_dose_through(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    first = raise_alert(staff[Role.THERAPIST], dosing_pathway)
    screening_services.safety_alert_acknowledge(
        actor=staff[Role.THERAPIST], alert=first, action_taken="Called; safety plan reviewed."
    )
    session = ready(staff, book(staff, dosing_pathway, room, slot(0, 9)))
    second = raise_alert(staff[Role.THERAPIST], dosing_pathway, "cssrs")
    with pytest.raises(ValidationError):
        dose(staff, session)

    screening_services.safety_alert_dosing_override_sign(
        actor=staff[Role.PRESCRIBER], alert=second, reason="Seen today: no intent; prescriber onsite."
    )

    assert dose(staff, session).status == "dosed"
    second.refresh_from_db()
    assert second.status == "open"  # still on the dashboards until the action taken is recorded


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("what", ["booking", "dose"])
def test_an_alert_and_a_booking_or_dose_at_the_same_moment_are_decided_one_after_the_other(
    what: str, staff: dict[str, User], room: Any, slot: Callable[..., dt.datetime], clinic: Any
) -> None:
    """The alert's transaction holds the pathway's lock; the booking (or dose) asked for meanwhile
    waits for it, then sees the alert and is refused."""
    require_postgres()
    pathway = PathwayFactory(
        clinic=clinic, prescriber=staff[Role.PRESCRIBER], therapist=staff[Role.THERAPIST], stage=Stage.DOSING
    )
    SignedScreeningFactory(pathway=pathway)
    session = ready(staff, book(staff, pathway, room, slot(0, 9))) if what == "dose" else None
    alert_written, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def alert() -> None:
        try:
            with transaction.atomic():
                raise_alert(staff[Role.THERAPIST], pathway)
                alert_written.set()
                release.wait(10)
        finally:
            connection.close()

    def attempt() -> None:
        alert_written.wait(10)
        try:
            if session is None:
                book(staff, pathway, room, slot(1, 9))
            else:
                dose(staff, session)
            outcome["result"] = "done"
        except ValidationError as error:
            outcome["result"] = codes(error)
        finally:
            outcome["at"] = time.monotonic()
            connection.close()

    threads = [threading.Thread(target=alert), threading.Thread(target=attempt)]
    for thread in threads:
        thread.start()
    assert alert_written.wait(10)
    time.sleep(0.5)
    assert "result" not in outcome  # waiting for the pathway's lock, not deciding on what it saw
    released_at = time.monotonic()
    release.set()
    for thread in threads:
        thread.join(10)

    assert outcome["result"] == ["safety_alert_open"]
    assert outcome["at"] >= released_at
    assert Booking.objects.count() == (1 if session is not None else 0)
    assert not DosingSession.objects.filter(dose_started_at__isnull=False).exists()


# --- Stage ----------------------------------------------------------------------------------------------


def test_the_first_dose_moves_a_pathway_in_preparation_into_dosing_with_a_timeline_row(
    staff: dict[str, User],
    preparing: Pathway,
    room: Any,
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    booking = book(staff, preparing, room, slot(0, 9))  # booking ahead from preparation stays allowed
    session = ready(staff, booking)
    preparing.refresh_from_db()
    assert preparing.stage == Stage.PREPARATION
    assert pathway_selectors.pathway_next_actions(pathway=preparing)[0].label == "Prepare for dosing"

    dose(staff, session)

    preparing.refresh_from_db()
    assert preparing.stage == Stage.DOSING
    change = PathwayStageChange.objects.filter(pathway=preparing).latest("changed_at", "id")
    assert (change.from_stage, change.to_stage, change.reason, change.changed_by) == (
        Stage.PREPARATION,
        Stage.DOSING,
        gates.FIRST_DOSE_REASON,
        staff[Role.MONITOR],
    )
    event = AuditEvent.objects.get(action="pathway.stage_changed")
    assert event.data == {"from_stage": "preparation", "to_stage": "dosing", "via": "dose_start"}
    assert event.actor_public_id == staff[Role.MONITOR].public_id
    assert pathway_selectors.pathway_next_actions(pathway=preparing)[0].label == "Run the dosing sessions"
    page = client_for(staff[Role.PRESCRIBER]).get(reverse("pathway_detail", args=[preparing.public_id]))
    body = page.content.decode()
    assert "Run the dosing sessions" in body
    assert "Prepare for dosing" not in body
    assert "First dose started." in body
    dashboard = client_for(staff[Role.PRESCRIBER]).get(reverse("dashboard")).content.decode()
    assert "Run the dosing sessions" in dashboard
    monitor_board = client_for(staff[Role.MONITOR]).get(reverse("dashboard")).content.decode()
    assert preparing.patient.full_name in monitor_board.split("Patients in the dosing stage")[1]

    second = ready(staff, book(staff, preparing, room, slot(1, 9)))
    dose(staff, second)
    assert PathwayStageChange.objects.filter(pathway=preparing, to_stage=Stage.DOSING).count() == 1


def test_a_refused_first_dose_leaves_the_pathway_in_preparation(
    staff: dict[str, User], preparing: Pathway, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    session = ready(staff, book(staff, preparing, room, slot(0, 9)))
    before = written()

    with pytest.raises(ValidationError):
        services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=0, lot_number="L1")

    assert written() == before
    preparing.refresh_from_db()
    assert preparing.stage == Stage.PREPARATION


@pytest.mark.parametrize("stage", [Stage.INTEGRATION, Stage.ASSESSMENT, Stage.REFERRAL, Stage.COMPLETED])
def test_booking_is_refused_outside_preparation_and_dosing(
    stage: str, staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    Pathway.objects.filter(pk=dosing_pathway.pk).update(stage=stage)
    before = written()

    with pytest.raises(ValidationError) as refused:
        book(staff, dosing_pathway, room, slot(0, 9))

    assert "wrong_stage" in codes(refused.value)
    wrong = next(e for e in refused.value.error_list if e.code == "wrong_stage")
    assert wrong.source == gates.STAGE_SOURCE
    assert written() == before


def _move(staff: dict[str, User], pathway: Any, stage: str, reason: str) -> None:
    if stage in (Stage.ON_HOLD, Stage.DISCONTINUED):
        pathway_services.pathway_move(
            actor=staff[Role.PRESCRIBER], pathway=pathway, to_stage=stage, reason=reason
        )
    else:  # completed and integration, as a later app's or a long course's history would leave them
        Pathway.objects.filter(pk=pathway.pk).update(stage=stage)


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        (
            Stage.ON_HOLD,
            "The pathway is on hold (Travelling for work.): resume it to dosing before you start a dose.",
        ),
        (
            Stage.DISCONTINUED,
            "The pathway is discontinued (Travelling for work.): no dose is booked or started",
        ),
        (Stage.COMPLETED, "The pathway is completed: open a new pathway"),
        (Stage.INTEGRATION, "The pathway has moved on to integration"),
    ],
)
def test_a_dose_is_refused_on_hold_discontinued_completed_or_in_integration_by_service_page_and_api(
    stage: str,
    message: str,
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    """The record was opened before the move, so its booking is kept; the dose is still refused."""
    session = ready(staff, book(staff, dosing_pathway, room, slot(0, 9)))
    _move(staff, dosing_pathway, stage, "Travelling for work.")
    before = written()

    with pytest.raises(ValidationError) as refused:
        dose(staff, session)
    assert codes(refused.value) == ["wrong_stage"]
    assert refused.value.messages[0].startswith(message)

    page = client_for(staff[Role.MONITOR]).post(
        reverse("session_action", args=[session.public_id, "dose"]), {"dose_mg": "100", "lot_number": "L1"}
    )
    assert page.status_code == 400
    response = api(staff[Role.MONITOR]).post(
        f"/api/v1/sessions/{session.public_id}/dose/", {"dose_mg": "100", "lot_number": "L1"}, format="json"
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["code"], error["source"]) == ("wrong_stage", gates.STAGE_SOURCE.text)
    assert written() == before


@pytest.mark.parametrize(
    ("stage", "prefix"),
    [(Stage.ON_HOLD, "Pathway put on hold"), (Stage.DISCONTINUED, "Pathway discontinued")],
)
def test_hold_or_discontinuation_cancels_the_bookings_still_to_come_with_the_reason(
    stage: str,
    prefix: str,
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    opened = ready(staff, book(staff, dosing_pathway, room, slot(0, 9)))
    later = book(staff, dosing_pathway, room, slot(2, 9))
    latest = book(staff, dosing_pathway, room, slot(3, 9))
    prescriber = client_for(staff[Role.PRESCRIBER])

    response = prescriber.post(
        reverse("pathway_move", args=[dosing_pathway.public_id]),
        {"to_stage": stage, "reason": "Travelling for work.", "expected_stage": Stage.DOSING},
    )

    assert response.status_code == 302
    reason = f"{prefix}: Travelling for work."
    for booking in (later, latest):
        booking.refresh_from_db()
        assert (booking.status, booking.cancellation_reason, booking.cancelled_by) == (
            "cancelled",
            reason,
            staff[Role.PRESCRIBER],
        )
        assert FollowUp.objects.get(booking=booking, kind="visit_reminder").status == "cancelled"
    cancelled = AuditEvent.objects.filter(action="booking.cancelled")
    assert {e.target_public_id for e in cancelled} == {later.public_id, latest.public_id}
    assert all(e.data == {"via": "pathway_stage_changed", "to_stage": stage} for e in cancelled)
    assert Booking.objects.get(pk=opened.booking_id).status == "booked"  # its record is open
    with pytest.raises(ValidationError, match="The pathway is"):
        dose(staff, opened)
    admin = client_for(staff[Role.CLINIC_ADMIN])
    assert reason in admin.get(reverse("booking_detail", args=[later.public_id])).content.decode()
    assert reason in admin.get(reverse("pathway_detail", args=[dosing_pathway.public_id])).content.decode()
    with pytest.raises(ValidationError) as refused:  # and none is booked or moved while it lasts
        book(staff, dosing_pathway, room, slot(4, 9))
    assert "wrong_stage" in codes(refused.value)


def test_the_past_and_a_move_forward_cancel_nothing(
    staff: dict[str, User], preparing: Pathway, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    booking = book(staff, preparing, room, slot(0, 9))
    pathway_services.pathway_move(
        actor=staff[Role.PRESCRIBER], pathway=preparing, to_stage=Stage.DOSING, reason="Ready."
    )
    booking.refresh_from_db()
    assert booking.status == "booked"
    assert not booking_services.bookings_cancel_for_pathway_move(
        actor=staff[Role.PRESCRIBER], pathway=preparing, to_stage=Stage.INTEGRATION, reason="Done."
    )


# --- EMDR readiness at every session -------------------------------------------------------------------


@pytest.fixture
def plan(clinic: Any, prescriber: User, therapist: User) -> EmdrPlan:
    """A plan whose resource and trigger are processed, dual awareness shown, no crisis, DES-II low."""
    pathway = PathwayFactory(clinic=clinic, prescriber=prescriber, therapist=therapist, stage="preparation")
    SignedScreeningFactory(pathway=pathway)
    Assessment.objects.filter(pathway=pathway).update(current_crisis=False)
    MeasureResponse.objects.create(
        clinic=clinic,
        pathway=pathway,
        instrument="des2",
        answers=[10] * 28,
        total=10,
        band="below_30",
        band_label="Below 30",
        administered_at=timezone.now(),
        recorded_by=prescriber,
    )
    plan = emdr_services.plan_open(actor=therapist, pathway=pathway)
    resource = emdr_services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    trigger = emdr_services.target_add(actor=therapist, plan=plan, kind="present_trigger", title="Sirens")
    log(therapist, plan, {"target": resource, "voc_start": 4, "voc_end": 6})
    log(
        therapist,
        plan,
        {
            "target": trigger,
            "sud_start": 5,
            "sud_end": 0,
            "voc_start": 3,
            "voc_end": 7,
            "body_scan_clear": True,
        },
    )
    return emdr_services.plan_readiness_update(
        actor=therapist,
        plan=plan,
        dual_awareness_shown=True,
        dissociation_interview_recorded=False,
        affect_tolerance_shown=True,
    )


def log(therapist: User, plan: EmdrPlan, *works: dict[str, Any]) -> EmdrSessionLog:
    return emdr_services.session_log(
        actor=therapist,
        plan=plan,
        held_at=timezone.now(),
        phase_reached=4,
        stimulation="eye_movements",
        closure_technique="container",
        works=list(works),
    )


def memory_under_way(therapist: User, plan: EmdrPlan) -> EmdrTarget:
    """A past memory started at a first session (readiness met then), left incomplete."""
    memory = emdr_services.target_add(actor=therapist, plan=plan, kind="past_memory", title="The accident")
    log(therapist, plan, {"target": memory, "sud_start": 8, "sud_end": 5, "voc_start": 2, "voc_end": 3})
    memory.refresh_from_db()
    assert memory.state == "in_progress"
    return memory


def test_a_past_memory_is_checked_again_at_the_next_session_by_service_page_and_api(
    staff: dict[str, User], plan: EmdrPlan, client_for: Callable[[User | None], Client]
) -> None:
    therapist = staff[Role.THERAPIST]
    memory = memory_under_way(therapist, plan)
    alert = raise_alert(staff[Role.PRESCRIBER], plan.pathway)
    before = (EmdrSessionLog.objects.count(), written(), memory.sud, memory.state)

    with pytest.raises(ValidationError) as refused:
        log(therapist, plan, {"target": memory, "sud_start": 5, "sud_end": 3, "voc_start": 3, "voc_end": 4})
    assert codes(refused.value) == [emdr_rules.READINESS_NO_RISK_ALERT]
    [item] = refused.value.error_list
    assert item.message.startswith(
        "The accident: no high c-ssrs risk or phq-9 item-9 alert open is not met now"
    )
    assert item.source == sources.citation_for(emdr_rules.READINESS_NO_RISK_ALERT)

    now = timezone.localtime()
    page = client_for(therapist).post(
        reverse("emdr_session_log", args=[plan.public_id]),
        {
            "held_date": now.date().isoformat(),
            "held_time": now.strftime("%H:%M"),
            "phase_reached": "4",
            "stimulation": "eye_movements",
            "target": str(memory.public_id),
            "sud_start": "5",
            "sud_end": "3",
            "voc_start": "3",
            "voc_end": "4",
            "sud_by_set": "5, 3",
            "closure_technique": "container",
        },
    )
    assert page.status_code == 400
    assert "this past memory is not processed" in page.content.decode()
    response = api(therapist).post(
        f"/api/v1/emdr-plans/{plan.public_id}/sessions/",
        {
            "held_at": timezone.now().isoformat(),
            "phase_reached": 4,
            "stimulation": "eye_movements",
            "closure_technique": "container",
            "works": [{"target": str(memory.public_id), "sud_start": 5, "sud_end": 3}],
        },
        format="json",
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["code"], error["source"]) == (
        emdr_rules.READINESS_NO_RISK_ALERT,
        sources.citation_for(emdr_rules.READINESS_NO_RISK_ALERT).text,
    )
    memory.refresh_from_db()
    assert (EmdrSessionLog.objects.count(), written(), memory.sud, memory.state) == before

    # A dosing override is about dosing: the trauma work still waits for the action taken.
    screening_services.safety_alert_dosing_override_sign(
        actor=staff[Role.PRESCRIBER], alert=alert, reason="Dosing may go ahead."
    )
    with pytest.raises(ValidationError, match="not processed"):
        log(therapist, plan, {"target": memory, "sud_start": 5, "sud_end": 3})
    screening_services.safety_alert_acknowledge(
        actor=therapist, alert=alert, action_taken="Safety plan reviewed; no current intent."
    )
    assert log(therapist, plan, {"target": memory, "sud_start": 5, "sud_end": 3}).work.count() == 1


def test_a_crisis_recorded_since_the_start_stops_the_next_session(
    staff: dict[str, User], plan: EmdrPlan
) -> None:
    therapist = staff[Role.THERAPIST]
    memory = memory_under_way(therapist, plan)
    Assessment.objects.filter(pathway=plan.pathway).update(current_crisis=True)

    with pytest.raises(ValidationError) as refused:
        log(therapist, plan, {"target": memory, "sud_start": 5, "sud_end": 3})

    assert "no current crisis is not met now" in refused.value.messages[0]
    assert "record a current screening that finds no crisis first" in refused.value.messages[0]


def test_the_targets_signed_override_covers_the_check_and_stabilising_work_goes_on(
    staff: dict[str, User], plan: EmdrPlan
) -> None:
    therapist = staff[Role.THERAPIST]
    memory = memory_under_way(therapist, plan)
    raise_alert(staff[Role.PRESCRIBER], plan.pathway)
    belief = emdr_services.target_add(
        actor=therapist, plan=plan, kind="belief", title="I can't protect myself"
    )

    log(therapist, plan, {"target": belief, "sud_start": 4, "sud_end": 2})  # not trauma processing
    emdr_services.target_override_sign(
        actor=therapist, target=memory, reason="Processing is the safety plan."
    )
    emdr_services.target_override_sign(actor=staff[Role.PRESCRIBER], target=memory)

    assert log(therapist, plan, {"target": memory, "sud_start": 5, "sud_end": 3}).work.count() == 1
