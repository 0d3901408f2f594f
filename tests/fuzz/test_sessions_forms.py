"""Fuzz the writing pages of `sessions/` (app label `dosing`): rooms, hours and closures, bookings,
REMS, pre-visit checks, every step of the dosing record, the dosing settings and the EMDR plan.

Proven for each form, over hostile POST data (dates at year 1 and 9999, impossible times, unknown
rooms and staff, out-of-range vitals, NaN doses, NUL bytes, 10k-character text): the page never
answers 500, and a refusal writes no row.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from kaemdr.models import User
from sessions.booking import services as booking_services
from sessions.emdr import services as emdr_services
from sessions.emdr.forms import INTERWEAVES
from sessions.models import EMDR_KIND_CHOICES
from sessions.models import BilateralStimulation
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.models import EmdrPlan
from sessions.models import EmdrTarget
from sessions.models import Room
from sessions.record import services as dosing

from .helpers import FEW
from .helpers import FUZZ
from .helpers import boolean_field
from .helpers import choice_field
from .helpers import date_field
from .helpers import decimal_field
from .helpers import form_data
from .helpers import number_field
from .helpers import post_and_check
from .helpers import text_field
from .helpers import time_field
from .helpers import uuid_field

pytestmark = pytest.mark.django_db

TOMORROW = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
NEXT_WEEK = (timezone.localdate() + dt.timedelta(days=7)).isoformat()
YESTERDAY = (timezone.localdate() - dt.timedelta(days=1)).isoformat()


@pytest.fixture
def booking(
    dosing_pathway: Any, room: Room, staff: dict[str, User], clinic_admin: User, monitor: User
) -> Booking:
    tz = zoneinfo.ZoneInfo(dosing_pathway.clinic.time_zone)
    day = timezone.localdate() + dt.timedelta(days=2)
    return booking_services.booking_create(
        actor=clinic_admin,
        pathway=dosing_pathway,
        room=room,
        starts_at=dt.datetime.combine(day, dt.time(9, 0), tzinfo=tz),
        prescriber=dosing_pathway.prescriber,
        monitor=monitor,
    )


@pytest.fixture
def open_session(booking: Booking, monitor: User) -> DosingSession:
    """A record opened, with its checks and a pre-dose reading: ready for the dose."""
    session = dosing.session_open(actor=monitor, booking=booking)
    dosing.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    dosing.vitals_record(
        actor=monitor,
        session=session,
        systolic=128,
        diastolic=82,
        heart_rate=76,
        spo2=98,
        respiratory_rate=14,
    )
    return session


@pytest.fixture
def dosed_session(open_session: DosingSession, monitor: User) -> DosingSession:
    return dosing.dose_start(actor=monitor, session=open_session, dose_mg=100, lot_number="L1")


@pytest.fixture
def signed_session(dosing_pathway: Any, complete_session: Callable[..., DosingSession]) -> DosingSession:
    return complete_session(dosing_pathway)


@pytest.fixture
def plan(dosing_pathway: Any, therapist: User) -> EmdrPlan:
    return emdr_services.plan_open(actor=therapist, pathway=dosing_pathway)


@pytest.fixture
def target(plan: EmdrPlan, therapist: User) -> EmdrTarget:
    return emdr_services.target_add(actor=therapist, plan=plan, kind="past_memory", title="The accident")


@FUZZ
@given(
    data=form_data(
        {
            "name": text_field("Room B"),
            "has_bp_monitor": boolean_field(),
            "has_pulse_oximeter": boolean_field(),
            "has_recliner": boolean_field(),
            "is_active": boolean_field(),
        },
        valid={"name": "Room B", "has_bp_monitor": "on", "is_active": "on"},
    )
)
def test_room_create_fuzz(client_for: Callable[[User], Client], clinic_admin: User, data: Any) -> None:
    post_and_check(client_for(clinic_admin), reverse("room_create"), data)


@FUZZ
@given(
    action=st.sampled_from(["room", "hours", "closure", "", "nope"]),
    data=form_data(
        {
            "room-name": text_field("Harbour Room"),
            "room-is_active": boolean_field(),
            "hours-opens_0": time_field("08:00"),
            "hours-closes_0": time_field("18:00"),
            "hours-opens_6": time_field("10:00"),
            "hours-closes_6": time_field("12:00"),
            "closure-start_date": date_field(NEXT_WEEK),
            "closure-start_time": time_field("08:00"),
            "closure-end_date": date_field(NEXT_WEEK),
            "closure-end_time": time_field("18:00"),
            "closure-reason": text_field("Repainting"),
        },
        valid={
            "room-name": "Harbour Room",
            "room-is_active": "on",
            "hours-opens_0": "08:00",
            "hours-closes_0": "18:00",
            "closure-start_date": NEXT_WEEK,
            "closure-start_time": "08:00",
            "closure-end_date": NEXT_WEEK,
            "closure-end_time": "18:00",
            "closure-reason": "Repainting",
        },
    ),
)
def test_room_detail_fuzz(
    client_for: Callable[[User], Client], clinic_admin: User, room: Room, action: str, data: Any
) -> None:
    post_and_check(
        client_for(clinic_admin), reverse("room_detail", args=[room.public_id]), {**data, "action": action}
    )


@FUZZ
@given(
    action=st.sampled_from(["hours", "leave", "remove_leave", "", "nope"]),
    data=form_data(
        {
            "hours-starts_0_1": time_field("08:00"),
            "hours-ends_0_1": time_field("12:00"),
            "hours-starts_0_2": time_field("13:00"),
            "hours-ends_0_2": time_field("17:00"),
            "hours-starts_6_1": time_field("10:00"),
            "hours-ends_6_1": time_field("12:00"),
            "leave-start_date": date_field(NEXT_WEEK),
            "leave-start_time": time_field("08:00"),
            "leave-end_date": date_field(NEXT_WEEK),
            "leave-end_time": time_field("18:00"),
            "leave-reason": text_field("Annual leave"),
            "leave": uuid_field(),
        },
        valid={
            "hours-starts_0_1": "08:00",
            "hours-ends_0_1": "12:00",
            "hours-starts_0_2": "13:00",
            "hours-ends_0_2": "17:00",
            "leave-start_date": NEXT_WEEK,
            "leave-end_date": NEXT_WEEK,
            "leave-reason": "Annual leave",
        },
    ),
)
def test_rota_staff_fuzz(
    client_for: Callable[[User], Client], clinic_admin: User, monitor: User, action: str, data: Any
) -> None:
    post_and_check(
        client_for(clinic_admin), reverse("rota_staff", args=[monitor.public_id]), {**data, "action": action}
    )


@FUZZ
@given(data=st.data())
def test_booking_create_fuzz(
    client_for: Callable[[User], Client],
    clinic_admin: User,
    monitor: User,
    dosing_pathway: Any,
    room: Room,
    data: Any,
) -> None:
    posted = data.draw(
        form_data(
            {
                "room": uuid_field(room.public_id),
                "date": date_field(TOMORROW, YESTERDAY),
                "time": time_field("09:00", "19:30"),
                "prescriber": uuid_field(dosing_pathway.prescriber.public_id, monitor.public_id),
                "monitor": uuid_field(monitor.public_id),
            },
            valid={
                "room": str(room.public_id),
                "date": TOMORROW,
                "time": "09:00",
                "prescriber": str(dosing_pathway.prescriber.public_id),
                "monitor": str(monitor.public_id),
            },
        )
    )
    post_and_check(
        client_for(clinic_admin), reverse("booking_create", args=[dosing_pathway.public_id]), posted
    )


@FUZZ
@given(
    data=form_data(
        {"enrolled_on": date_field(YESTERDAY, TOMORROW), "reference": text_field("REMS-1")},
        valid={"enrolled_on": YESTERDAY, "reference": "REMS-1"},
    )
)
def test_rems_enrol_fuzz(
    client_for: Callable[[User], Client], prescriber: User, dosing_pathway: Any, data: Any
) -> None:
    post_and_check(
        client_for(prescriber),
        reverse("rems_enrol", args=[dosing_pathway.public_id]),
        data,
        error_message_refuses=True,
    )


@FUZZ
@given(data=st.data())
def test_booking_move_fuzz(
    client_for: Callable[[User], Client], clinic_admin: User, booking: Booking, data: Any
) -> None:
    posted = data.draw(
        form_data(
            {
                "room": uuid_field(booking.room.public_id),
                "date": date_field(NEXT_WEEK, YESTERDAY),
                "time": time_field("10:00", "19:45"),
            },
            valid={"room": str(booking.room.public_id), "date": NEXT_WEEK, "time": "10:00"},
        )
    )
    post_and_check(client_for(clinic_admin), reverse("booking_move", args=[booking.public_id]), posted)


@FUZZ
@given(data=form_data({"reason": text_field("Patient unwell")}, valid={"reason": "Patient unwell"}))
def test_booking_cancel_fuzz(
    client_for: Callable[[User], Client], clinic_admin: User, booking: Booking, data: Any
) -> None:
    post_and_check(client_for(clinic_admin), reverse("booking_cancel", args=[booking.public_id]), data)


@FUZZ
@given(
    data=form_data(
        {
            "fasting_instructions_given": boolean_field(),
            "fasting_confirmed": boolean_field(),
            "escort_confirmed": boolean_field(),
        },
        valid={"fasting_instructions_given": "on"},
    )
)
def test_booking_checks_fuzz(
    client_for: Callable[[User], Client], monitor: User, booking: Booking, data: Any
) -> None:
    post_and_check(client_for(monitor), reverse("booking_checks", args=[booking.public_id]), data)


VITALS = {
    "systolic": number_field(128, 50, 280),
    "diastolic": number_field(82),
    "heart_rate": number_field(76),
    "spo2": number_field(98, 100),
    "respiratory_rate": number_field(14),
    "taken_at": time_field("00:00", "23:59"),
}
VALID_VITALS = {
    "systolic": "128",
    "diastolic": "82",
    "heart_rate": "76",
    "spo2": "98",
    "respiratory_rate": "14",
}
BEFORE_DOSE: dict[str, Any] = {
    "checks": form_data(
        {
            "fasting_confirmed": boolean_field(),
            "escort_present": boolean_field(),
            "consent_confirmed": boolean_field(),
        },
        valid={"fasting_confirmed": "on", "escort_present": "on", "consent_confirmed": "on"},
    ),
    "vitals": form_data(VITALS, valid=VALID_VITALS),
    "override": form_data({"reason": text_field("BP recheck fine")}, valid={"reason": "BP recheck fine"}),
    "dose": form_data(
        {
            "dose_mg": decimal_field("100", "0.1", "99999.9"),
            "lot_number": text_field("L1"),
            "started_at": time_field("00:00", "23:59"),
        },
        valid={"dose_mg": "100", "lot_number": "L1"},
    ),
    "scale": form_data(
        {
            "scale": choice_field("cadss", "moaas"),
            "value": number_field(0, 5),
            "taken_at": time_field("00:00"),
        },
        valid={"scale": "cadss", "value": "0"},
    ),
}
AFTER_DOSE: dict[str, Any] = {
    "vitals": form_data(VITALS, valid=VALID_VITALS),
    "dose_end": form_data({"ended_at": time_field("00:00", "23:59")}, valid={}),
    "device": form_data({"given_at": time_field("00:00", "23:59")}, valid={}),
    "bp_review": form_data({"reason": text_field("Settled")}, valid={"reason": "Settled"}),
    "scale": form_data(
        {
            "scale": choice_field("cadss", "moaas", "bprs_plus"),
            "value": number_field(0, 5, 24, 92),
            "anchors": choice_field("0-6", "1-7"),
            "taken_at": time_field("00:00", "23:59"),
        },
        valid={"scale": "moaas", "value": "5"},
    ),
    "adverse_event": form_data(
        {
            "description": text_field("Nausea"),
            "severity": choice_field("mild", "moderate", "severe", "serious"),
            "action_taken": text_field("Ondansetron"),
            "occurred_at": time_field("00:00", "23:59"),
        },
        valid={"description": "Nausea", "severity": "mild", "action_taken": "Observed"},
    ),
    "discharge": form_data(
        {
            "alert_and_oriented": boolean_field(),
            "escort_present": boolean_field(),
            "dissociation_resolved": boolean_field(),
        },
        valid={"alert_and_oriented": "on", "escort_present": "on"},
    ),
    "pmf": form_data(
        {
            "pmf_first_treatment": boolean_field(),
            "pmf_sedation": boolean_field(),
            "pmf_dissociation": boolean_field(),
            "pmf_respiratory_depression": boolean_field(),
            "pmf_ready_minutes": number_field(0, 480),
        },
        valid={"pmf_first_treatment": "True", "pmf_ready_minutes": "60"},
    ),
    "sign": st.just({}),
    "pmf_filed": st.just({}),
}


@FEW
@given(step=st.sampled_from(sorted(BEFORE_DOSE)).flatmap(lambda a: st.tuples(st.just(a), BEFORE_DOSE[a])))
def test_session_before_dose_fuzz(
    client_for: Callable[[User], Client], prescriber: User, open_session: DosingSession, step: Any
) -> None:
    action, data = step
    url = reverse("session_action", args=[open_session.public_id, action])
    post_and_check(client_for(prescriber), url, data)


@FEW
@given(step=st.sampled_from(sorted(AFTER_DOSE)).flatmap(lambda a: st.tuples(st.just(a), AFTER_DOSE[a])))
def test_session_after_dose_fuzz(
    client_for: Callable[[User], Client], monitor: User, dosed_session: DosingSession, step: Any
) -> None:
    action, data = step
    url = reverse("session_action", args=[dosed_session.public_id, action])
    post_and_check(client_for(monitor), url, data)


@FEW
@given(data=form_data({"text": text_field("Lot number corrected")}, valid={"text": "Lot number corrected"}))
def test_session_addendum_fuzz(
    client_for: Callable[[User], Client], monitor: User, signed_session: DosingSession, data: Any
) -> None:
    url = reverse("session_action", args=[signed_session.public_id, "addendum"])
    post_and_check(client_for(monitor), url, data)


DOSING_SETTING_NUMBERS = {
    "predose_systolic_max": "140",
    "predose_diastolic_max": "90",
    "systolic_max": "180",
    "diastolic_max": "110",
    "heart_rate_max": "120",
    "spo2_min": "92",
    "respiratory_rate_min": "10",
    "respiratory_rate_max": "24",
    "minimum_observation_minutes": "90",
    "vitals_interval_minutes": "15",
    "late_entry_minutes": "10",
    "discharge_bp_window_minutes": "15",
    "discharge_systolic_max": "180",
    "discharge_diastolic_max": "110",
    "bp_rise_systolic_margin": "40",
    "bp_rise_diastolic_margin": "25",
}


@FEW
@given(data=st.data())
def test_dosing_settings_fuzz(client_for: Callable[[User], Client], clinic_admin: User, data: Any) -> None:
    client = client_for(clinic_admin)
    form = client.get(reverse("dosing_settings")).context["form"]
    valid = {**{name: str(form[name].value()) for name in form.fields}, **DOSING_SETTING_NUMBERS}
    posted = data.draw(form_data({name: number_field(valid[name]) for name in valid}, valid=valid))
    post_and_check(client, reverse("dosing_settings"), posted)


@FUZZ
@given(data=st.data())
def test_emdr_target_add_fuzz(
    client_for: Callable[[User], Client], therapist: User, plan: EmdrPlan, target: EmdrTarget, data: Any
) -> None:
    posted = data.draw(
        form_data(
            {
                "kind": choice_field(*[value for value, _ in EMDR_KIND_CHOICES]),
                "title": text_field("Dog bite"),
                "image": text_field("The teeth"),
                "negative_cognition": text_field("I am powerless"),
                "positive_cognition": text_field("I am safe now"),
                "voc": number_field(1, 7, 8),
                "emotions": text_field("fear"),
                "sud": number_field(0, 10, 11),
                "body_location": text_field("chest"),
                "theme": choice_field("safety", "responsibility", "control"),
                "belongs_to": st.lists(uuid_field(target.public_id), max_size=2),
            },
            valid={"kind": "past_memory", "title": "Dog bite", "voc": "2", "sud": "7"},
        )
    )
    post_and_check(client_for(therapist), reverse("emdr_target_add", args=[plan.public_id]), posted)


@FUZZ
@given(
    data=form_data(
        {"dual_awareness_shown": boolean_field(), "dissociation_interview_recorded": boolean_field()},
        valid={"dual_awareness_shown": "on"},
    )
)
def test_emdr_readiness_fuzz(
    client_for: Callable[[User], Client], therapist: User, plan: EmdrPlan, data: Any
) -> None:
    post_and_check(client_for(therapist), reverse("emdr_readiness", args=[plan.public_id]), data)


@FUZZ
@given(data=form_data({"reason": text_field("Stable for months")}, valid={"reason": "Stable for months"}))
def test_emdr_target_override_fuzz(
    client_for: Callable[[User], Client], therapist: User, target: EmdrTarget, data: Any
) -> None:
    post_and_check(
        client_for(therapist),
        reverse("emdr_target_override", args=[target.public_id]),
        data,
        error_message_refuses=True,
    )


@FUZZ
@given(data=st.data())
def test_emdr_session_log_fuzz(
    client_for: Callable[[User], Client], therapist: User, plan: EmdrPlan, target: EmdrTarget, data: Any
) -> None:
    now = timezone.localtime() - dt.timedelta(hours=1)
    valid = {
        "held_date": now.date().isoformat(),
        "held_time": now.strftime("%H:%M"),
        "phase_reached": "4",
        "stimulation": BilateralStimulation.TAPS.value,
        "target": str(target.public_id),
        "sud_start": "7",
        "voc_start": "2",
        "sud_by_set": "6, 5, 4",
        "sud_end": "4",
        "voc_end": "3",
        "closure_technique": "container",
    }
    posted = data.draw(
        form_data(
            {
                "held_date": date_field(valid["held_date"]),
                "held_time": time_field(valid["held_time"]),
                "phase_reached": number_field(1, 8, 9),
                "stimulation": choice_field(*BilateralStimulation.values),
                "dosing_session": uuid_field(),
                "target": uuid_field(target.public_id),
                "sud_start": number_field(0, 10),
                "voc_start": number_field(1, 7),
                "sud_by_set": text_field("6, 5, 4", "99999999999999999999", "-1, 11", "1;2;;3"),
                "sud_end": number_field(0),
                "voc_end": number_field(7),
                "body_scan_clear": boolean_field(),
                "interweaves": st.lists(choice_field(*[value for value, _ in INTERWEAVES]), max_size=3),
                "closure_technique": choice_field("", "container", "calm_place"),
            },
            valid=valid,
        )
    )
    post_and_check(client_for(therapist), reverse("emdr_session_log", args=[plan.public_id]), posted)
