"""The dosing day tried as a hurried or careless user would: times set through the API hours back, a year
that broke the page, discharge after a high reading and a heart-rate-only one, a rise nobody reviewed,
sedation and dissociation unresolved, two requests at once. Each is refused through the page and the
API with its code, a message that says what to do and its source, and nothing is written."""

from __future__ import annotations

import datetime as dt
import re
import threading
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from screening.models import AssessmentMedication
from sessions.demo import simulated_clock
from sessions.models import DosingSession
from sessions.models import RemsEnrolment
from sessions.models import ScaleRating
from sessions.models import VitalsReading
from sessions.record import rules
from sessions.record import selectors
from sessions.record import services

from ..conftest import require_postgres
from .dosing_day import backdate_dose
from .dosing_day import discharge
from .dosing_day import open_record
from .dosing_day import settled

pytestmark = pytest.mark.django_db


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def record_state(session: DosingSession) -> tuple[Any, ...]:
    """What a refused request must leave as it was."""
    fresh = DosingSession.objects.get(pk=session.pk)
    return (
        fresh.status,
        fresh.dose_started_at,
        fresh.dose_ended_at,
        fresh.device_times,
        fresh.discharged_at,
        fresh.bp_review_at,
        VitalsReading.objects.filter(session=session).count(),
        ScaleRating.objects.filter(session=session).count(),
    )


@pytest.fixture
def session(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> DosingSession:
    """An opened record, checks done and a pre-dose blood pressure of 130/85 taken now."""
    return open_record(staff, dosing_pathway, room, slot(0, 9))


@pytest.fixture
def dosed(staff: dict[str, User], session: DosingSession) -> DosingSession:
    """The dose started 130 minutes ago and ended 5 minutes later (moved back in the database)."""
    services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=35, lot_number="L9")
    backdate_dose(session, 130)
    return session


def local_time(session: DosingSession, moment: dt.datetime) -> str:
    return f"{moment.astimezone(zoneinfo.ZoneInfo(session.clinic.time_zone)):%H:%M}"


# --- Times --------------------------------------------------------------------------------------------


def test_the_api_refuses_a_dose_set_hours_back_before_the_pre_dose_reading(
    staff: dict[str, User], session: DosingSession
) -> None:
    before = record_state(session)
    response = api(staff[Role.MONITOR]).post(
        f"/api/v1/sessions/{session.public_id}/dose/",
        {
            "dose_mg": "35",
            "lot_number": "L9",
            "started_at": (timezone.now() - dt.timedelta(minutes=150)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "started_at"
    assert error["code"] == "before_pre_dose_reading"
    assert error["message"].startswith("This time is before the pre-dose blood pressure (")
    assert error["source"] == rules.SOURCE_RECORDS.text
    assert record_state(session) == before
    # ... and discharge cannot follow at once: the dose never started.
    refused = api(staff[Role.MONITOR]).post(
        f"/api/v1/sessions/{session.public_id}/discharge/",
        {"alert_and_oriented": True, "escort_present": True},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "wrong_status"


def test_a_late_entry_goes_back_at_most_the_clinics_minutes_and_is_marked_and_audited(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    monitor = staff[Role.MONITOR]
    with simulated_clock() as clock:
        session = open_record(staff, dosing_pathway, room, slot(0, 9))
        clock.advance(minutes=30)
        with pytest.raises(ValidationError) as refused:
            services.dose_start(
                actor=monitor,
                session=session,
                dose_mg=35,
                lot_number="L9",
                started_at=clock.at - dt.timedelta(minutes=11),
            )
        assert [e.code for e in refused.value.error_dict["started_at"]] == ["too_late"]
        started = clock.at - dt.timedelta(minutes=10)
        late = services.dose_start(
            actor=monitor, session=session, dose_mg=35, lot_number="L9", started_at=started
        )
        assert (late.dose_started_at, late.dose_started_entered_at) == (started, clock.at)
        event = AuditEvent.objects.filter(action="session.dose_started").latest("id")
        assert event.data["late"] is True
        assert event.data["occurred_at"] == started.isoformat()
        assert event.data["entered_at"] == clock.at.isoformat()
        on_time = services.vitals_record(actor=monitor, session=session, systolic=132, diastolic=84)
        assert on_time.entered_late is False
        with pytest.raises(ValidationError) as before_dose:
            services.vitals_record(
                actor=monitor,
                session=session,
                systolic=132,
                diastolic=84,
                taken_at=started - dt.timedelta(minutes=1),
            )
        assert [e.code for e in before_dose.value.error_dict["taken_at"]] == ["before_dose"]
        with pytest.raises(ValidationError) as future:
            services.scale_record(
                actor=monitor,
                session=session,
                scale="moaas",
                value=5,
                taken_at=clock.at + dt.timedelta(minutes=1),
            )
        assert [e.code for e in future.value.error_dict["taken_at"]] == ["future"]


def test_a_reading_dated_year_one_is_refused_and_the_page_keeps_working(
    staff: dict[str, User], session: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    before = record_state(session)
    response = api(staff[Role.MONITOR]).post(
        f"/api/v1/sessions/{session.public_id}/vitals/",
        {"systolic": 120, "diastolic": 80, "taken_at": "0001-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("taken_at", "before_record_opened")
    ]
    far = api(staff[Role.MONITOR]).post(
        f"/api/v1/sessions/{session.public_id}/scales/",
        {"scale": "moaas", "value": 5, "taken_at": "9999-12-31T23:59:00Z"},
        format="json",
    )
    assert [(e["field"], e["code"]) for e in far.json()["errors"]] == [("taken_at", "future")]
    assert record_state(session) == before
    page = client_for(staff[Role.MONITOR]).get(reverse("session_detail", args=[session.public_id]))
    assert page.status_code == 200


def test_the_page_refuses_a_backdated_reading_next_to_the_field_and_keeps_the_input(
    staff: dict[str, User], session: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    before = record_state(session)
    half_an_hour_ago = timezone.now() - dt.timedelta(minutes=30)
    page = client_for(staff[Role.MONITOR]).post(
        reverse("session_action", args=[session.public_id, "scale"]),
        {"scale": "cadss", "value": "12", "taken_at": local_time(session, half_an_hour_ago)},
    )
    assert page.status_code == 400
    body = page.content.decode()
    assert "This time is before the record was opened (" in body
    assert 'name="value" value="12"' in body
    assert record_state(session) == before


# --- Discharge ------------------------------------------------------------------------------------


def test_discharge_after_196_118_and_a_heart_rate_only_reading_is_refused_by_page_and_api(
    staff: dict[str, User], dosed: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    monitor = staff[Role.MONITOR]
    services.scale_record(actor=monitor, session=dosed, scale="moaas", value=5)
    services.scale_record(actor=monitor, session=dosed, scale="cadss", value=0)
    high = services.vitals_record(actor=monitor, session=dosed, systolic=196, diastolic=118, heart_rate=90)
    assert high.flags == ["Systolic 196 is above 180.", "Diastolic 118 is above 110."]
    services.vitals_record(actor=monitor, session=dosed, heart_rate=84)
    before = record_state(dosed)
    response = api(monitor).post(
        f"/api/v1/sessions/{dosed.public_id}/discharge/",
        {"alert_and_oriented": True, "escort_present": True},
        format="json",
    )
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["errors"]] == [
        "out_of_range_since",
        "discharge_bp_above_limit",
        "bp_rise_review",
    ]
    page = client_for(monitor).post(
        reverse("session_action", args=[dosed.public_id, "discharge"]),
        {"alert_and_oriented": "on", "escort_present": "on"},
    )
    assert page.status_code == 400
    assert "was out of range: take a full blood pressure after it" in page.content.decode()
    assert record_state(dosed) == before


def test_a_rise_from_baseline_needs_a_prescribers_review_before_discharge(
    staff: dict[str, User], dosed: DosingSession
) -> None:
    monitor, prescriber = staff[Role.MONITOR], staff[Role.PRESCRIBER]
    VitalsReading.objects.create(
        session=dosed,
        taken_at=dosed.dose_started_at + dt.timedelta(minutes=40),
        systolic=175,
        diastolic=108,
        recorded_by=monitor,
    )
    settled(monitor, dosed)
    with pytest.raises(ValidationError) as refused:
        discharge(monitor, dosed)
    assert [e.code for e in refused.value.error_list] == ["bp_rise_review"]
    assert getattr(refused.value.error_list[0], "source", None) == rules.SOURCE_LABEL_BP_RISE

    by_monitor = api(monitor).post(
        f"/api/v1/sessions/{dosed.public_id}/bp-review/", {"reason": "Looks fine."}, format="json"
    )
    assert by_monitor.status_code == 404
    blank = api(prescriber).post(
        f"/api/v1/sessions/{dosed.public_id}/bp-review/", {"reason": " "}, format="json"
    )
    assert blank.status_code == 400
    assert DosingSession.objects.get(pk=dosed.pk).bp_review_at is None
    reviewed = api(prescriber).post(
        f"/api/v1/sessions/{dosed.public_id}/bp-review/",
        {"reason": "Settled to 125/80 without treatment; asymptomatic."},
        format="json",
    )
    assert reviewed.status_code == 200, reviewed.json()
    assert reviewed.json()["bp_review_by"] == prescriber.full_name
    event = AuditEvent.objects.get(action="session.bp_rise_reviewed")
    assert set(event.data) == {"reading_taken_at"}  # its time, never its values
    again = api(prescriber).post(
        f"/api/v1/sessions/{dosed.public_id}/bp-review/", {"reason": "Twice."}, format="json"
    )
    assert [e["code"] for e in again.json()["errors"]] == ["nothing_to_review"]
    assert discharge(monitor, dosed).status == "discharged"


@pytest.mark.parametrize(
    ("moaas", "cadss", "resolved", "codes"),
    [
        (4, 0, False, ["sedation_unresolved"]),
        (5, 6, False, ["dissociation_unresolved"]),
        (5, 6, True, []),
        (5, 0, False, []),
    ],
)
def test_discharge_needs_sedation_and_dissociation_resolved(
    staff: dict[str, User],
    dosed: DosingSession,
    client_for: Callable[[User | None], Client],
    moaas: int,
    cadss: int,
    resolved: bool,
    codes: list[str],
) -> None:
    monitor = staff[Role.MONITOR]
    services.vitals_record(actor=monitor, session=dosed, systolic=126, diastolic=80)
    services.scale_record(actor=monitor, session=dosed, scale="moaas", value=moaas)
    services.scale_record(actor=monitor, session=dosed, scale="cadss", value=cadss)
    form = {"alert_and_oriented": "on", "escort_present": "on"}
    if resolved:
        form["dissociation_resolved"] = "on"
    page = client_for(monitor).post(reverse("session_action", args=[dosed.public_id, "discharge"]), form)
    fresh = DosingSession.objects.get(pk=dosed.pk)
    if codes:
        assert page.status_code == 400
        state = services.discharge_state(
            fresh, alert_and_oriented=True, escort_present=True, dissociation_resolved=resolved
        )
        assert [c.code for c in rules.discharge_missing(state)] == codes
        assert fresh.status == "dosed"
    else:
        assert page.status_code == 302
        assert fresh.status == "discharged"
        assert fresh.dissociation_resolved is resolved


def test_readings_taken_before_the_dose_do_not_count_for_discharge(
    staff: dict[str, User], session: DosingSession
) -> None:
    """The pre-dose reading is the baseline, never the reading discharge asks for."""
    monitor = staff[Role.MONITOR]
    services.dose_start(actor=monitor, session=session, dose_mg=35, lot_number="L9")
    services.dose_end_record(actor=monitor, session=session)
    fresh = selectors.session_with_parts(session)
    state = services.discharge_state(fresh, alert_and_oriented=True, escort_present=True)
    assert state.baseline == (130, 85)
    assert state.readings == ()


# --- The monitoring form --------------------------------------------------------------------------


@pytest.fixture
def esketamine_day(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> Callable[..., DosingSession]:
    """`run(readings)`: an esketamine session on the simulated clock, pre-dose 130/85, 56 mg in two
    devices, the given post-dose readings (minutes after the first device), MOAA/S 5 and CADSS 0 at 124,
    discharge at 126 (or the refusal)."""
    RemsEnrolment.objects.create(
        patient=dosing_pathway.patient, enrolled_on=timezone.localdate(), recorded_by=staff[Role.PRESCRIBER]
    )
    dosing_pathway.assessments.update(agent="esketamine", route="intranasal")
    monitor = staff[Role.MONITOR]

    def run(readings: list[int]) -> DosingSession:
        with simulated_clock() as clock:
            session = open_record(staff, dosing_pathway, room, slot(0, 9))
            clock.advance(minutes=3)
            services.dose_start(actor=monitor, session=session, dose_mg=56, lot_number="E1")
            first = clock.at
            clock.advance(minutes=5)
            services.device_record(actor=monitor, session=session)
            for minute in readings:
                clock.at = first + dt.timedelta(minutes=minute)
                services.vitals_record(actor=monitor, session=session, systolic=138, diastolic=86)
            clock.at = first + dt.timedelta(minutes=124)
            services.scale_record(actor=monitor, session=session, scale="moaas", value=5)
            services.scale_record(actor=monitor, session=session, scale="cadss", value=0)
            clock.at = first + dt.timedelta(minutes=126)
            return discharge(monitor, session)

    return run


def test_one_reading_at_40_minutes_no_longer_fills_the_pre_discharge_slot(
    esketamine_day: Callable[..., DosingSession],
) -> None:
    with pytest.raises(ValidationError) as refused:
        esketamine_day([40])  # the case: one blood pressure about 40 minutes after the dose
    assert [e.code for e in refused.value.error_list] == ["discharge_bp_stale"]


def test_the_monitoring_form_takes_three_distinct_readings_and_the_prescribers_medication_classes(
    staff: dict[str, User],
    esketamine_day: Callable[..., DosingSession],
    client_for: Callable[[User | None], Client],
) -> None:
    session = esketamine_day([20, 40, 90, 122])
    facts = selectors.pmf_facts(selectors.session_with_parts(session))
    pressures = facts.blood_pressures
    assert pressures.pre_dose is not None
    assert pressures.forty_minutes is not None
    assert pressures.pre_discharge is not None
    first = session.dose_started_at
    assert first is not None
    assert pressures.forty_minutes.taken_at == first + dt.timedelta(minutes=40)
    assert pressures.pre_discharge.taken_at == first + dt.timedelta(minutes=122)
    assert facts.minutes_monitored == 126
    assert [c.code for c in rules.pmf_missing(facts)] == [
        "pmf_answers",
        "pmf_ready_minutes",
        "pmf_medications",
    ]

    # The medication questions start from the screening's medication review, for the prescriber.
    AssessmentMedication.objects.create(
        assessment=session.booking.pathway.assessments.get(),
        name="Diazepam",
        medication_class="benzodiazepine",
    )
    page = client_for(staff[Role.PRESCRIBER]).get(reverse("session_detail", args=[session.public_id]))
    checkbox = re.search(r'<input[^>]*value="benzodiazepine"[^>]*>', page.content.decode())
    assert checkbox is not None
    assert "checked" in checkbox.group(0)
    assert selectors.rems_classes_in_review(session) == ["benzodiazepine"]
    not_a_class = api(staff[Role.PRESCRIBER]).post(
        f"/api/v1/sessions/{session.public_id}/monitoring-form-medications/",
        {"classes": ["aspirin"]},
        format="json",
    )
    assert not_a_class.status_code == 400
    confirmed = api(staff[Role.PRESCRIBER]).post(
        f"/api/v1/sessions/{session.public_id}/monitoring-form-medications/",
        {"classes": ["benzodiazepine"]},
        format="json",
    )
    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json()["pmf_medication_classes"] == ["benzodiazepine"]
    assert [c["code"] for c in confirmed.json()["monitoring_form_missing"]] == [
        "pmf_answers",
        "pmf_ready_minutes",
    ]


# --- Two requests at once -------------------------------------------------------------------------


def _at_once(*attempts: Callable[[], Any]) -> list[str]:
    """Run the attempts in threads released together; each outcome is "ok" or its error codes."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = ["" for _ in attempts]

    def run(index: int) -> None:
        barrier.wait()
        try:
            attempts[index]()
            outcomes[index] = "ok"
        except ValidationError as error:
            outcomes[index] = ",".join(sorted({e.code or "" for e in error.error_list}))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(attempts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_a_high_reading_and_a_discharge_at_once_never_both_stand(
    staff: dict[str, User], dosed: DosingSession
) -> None:
    require_postgres()
    monitor = staff[Role.MONITOR]
    settled(monitor, dosed)
    outcomes = _at_once(
        lambda: services.vitals_record(actor=monitor, session=dosed, systolic=196, diastolic=118),
        lambda: discharge(monitor, dosed),
    )
    fresh = DosingSession.objects.get(pk=dosed.pk)
    high = VitalsReading.objects.filter(session=dosed, systolic=196).exists()
    assert outcomes in (
        ["ok", "bp_rise_review,discharge_bp_above_limit,out_of_range_since"],
        ["wrong_status", "ok"],
    )
    assert high is (outcomes[0] == "ok")
    assert (fresh.status == "discharged") is (outcomes[1] == "ok")


@pytest.mark.django_db(transaction=True)
def test_two_tabs_starting_the_dose_at_once_start_it_once(
    staff: dict[str, User], session: DosingSession
) -> None:
    require_postgres()
    monitor = staff[Role.MONITOR]
    outcomes = _at_once(
        lambda: services.dose_start(actor=monitor, session=session, dose_mg=35, lot_number="L9"),
        lambda: services.dose_start(actor=monitor, session=session, dose_mg=70, lot_number="L10"),
    )
    assert sorted(outcomes) == ["ok", "wrong_status"]
    fresh = DosingSession.objects.get(pk=session.pk)
    assert fresh.dose_mg in (35, 70)
    assert (
        AuditEvent.objects.filter(action="session.dose_started", target_public_id=session.public_id).count()
        == 1
    )
