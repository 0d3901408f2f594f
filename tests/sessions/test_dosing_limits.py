"""Limits with a ceiling and dose ranges (issue 17, items 2 and 3): the pre-dose blood-pressure ceiling
that no override passes, and the clinic's mg/kg range per agent and route, outside which a dose starts
only at the dose a prescriber approved with a reason. Rules at and around each boundary (each row
names its source); the services through the page (direct POST) and the API, tried around."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from kaemdr import sources
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User
from sessions.booking import services as booking_services
from sessions.clinic_settings import services as clinic_settings_services
from sessions.models import DoseRange
from sessions.models import DosingSession
from sessions.models import DosingSettings
from sessions.record import rules
from sessions.record import selectors
from sessions.record import services

from ..factories import PathwayFactory
from ..factories import SignedScreeningFactory
from .dosing_day import open_record

pytestmark = pytest.mark.django_db

ESC_ESH = "ESC/ESH 2018 grade 3 hypertension: 180 and/or 110 or more"
DEL_SANT = "Del Sant 2020: SBP > 180 and/or DBP > 110 after esketamine"
ANDRADE = "Andrade 2017: IV 0.1-0.75 mg/kg, usually 0.5"
CHILUKURI = "Chilukuri 2014: IM 0.25 and 0.5 mg/kg"
LARA = "Lara 2013: SL 10 mg, ~30% bioavailable; upper bound 0.75 / 0.3"
ORAL_REVIEW = "Andrade 2019 oral review: 0.25-7.0 mg/kg"


# --- rules: the ceiling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("systolic", "diastolic", "refused", "source"),
    [
        (180, 100, True, ESC_ESH),
        (179, 109, False, ESC_ESH),
        (179, 110, True, ESC_ESH),
        (150, 110, True, DEL_SANT),
        (181, 111, True, DEL_SANT),
        (120, 80, False, ESC_ESH),
        (None, None, False, "a missing reading is the pre-dose checks' refusal"),
        (185, None, False, "a partial reading is the pre-dose checks' refusal"),
    ],
)
def test_bp_ceiling_at_and_around_the_default(
    systolic: int | None, diastolic: int | None, refused: bool, source: str
) -> None:
    problem = rules.bp_ceiling_problem(systolic=systolic, diastolic=diastolic, ceiling=rules.BpCeiling())
    assert (problem is not None) is refused, source
    if problem is not None:
        assert problem.code == "dose_bp_ceiling"
        assert "no override can start a dose" in problem.message
        assert problem.source == rules.SOURCE_BP_CEILING


@pytest.mark.parametrize(
    ("systolic", "diastolic", "refused"),
    [(199, 119, False), (200, 100, True), (160, 120, True), (199, 120, True)],
)
def test_bp_ceiling_follows_the_clinics_setting(systolic: int, diastolic: int, refused: bool) -> None:
    ceiling = rules.BpCeiling(systolic=200, diastolic=120)
    problem = rules.bp_ceiling_problem(systolic=systolic, diastolic=diastolic, ceiling=ceiling)
    assert (problem is not None) is refused


def test_bp_ceiling_default_matches_the_model_default() -> None:
    settings = DosingSettings()
    assert (settings.bp_ceiling_systolic, settings.bp_ceiling_diastolic) == (180, 110)
    assert selectors.bp_ceiling(settings) == rules.BpCeiling()


# --- rules: the dose ranges -----------------------------------------------------------------------------

WEIGHT = Decimal("70.0")


@pytest.mark.parametrize(
    ("route", "dose_mg", "outside", "source"),
    [
        ("iv", "35", False, ANDRADE),  # 0.50 mg/kg, the usual dose
        ("iv", "7", False, ANDRADE),  # 0.10, at the minimum
        ("iv", "6.3", True, ANDRADE),  # 0.09, just below
        ("iv", "52.5", False, ANDRADE),  # 0.75, at the maximum
        ("iv", "52.8", False, ANDRADE),  # 0.754 rounds to 0.75: the figure shown is the one checked
        ("iv", "52.9", True, ANDRADE),  # 0.756 rounds to 0.76, just above
        ("iv", "1000", True, ANDRADE),  # 14.29 mg/kg: the example
        ("im", "17.5", False, CHILUKURI),  # 0.25, at the minimum
        ("im", "17.4", False, CHILUKURI),  # 0.2486, shown and checked as 0.25
        ("im", "16.8", True, CHILUKURI),  # 0.24, just below
        ("im", "35", False, CHILUKURI),  # 0.50, at the maximum
        ("im", "35.7", True, CHILUKURI),  # 0.51, just above
        ("sublingual", "7", False, LARA),  # 0.10, at the minimum
        ("sublingual", "6.3", True, LARA),  # 0.09, just below
        ("sublingual", "175", False, LARA),  # 2.50, at the maximum
        ("sublingual", "175.7", True, LARA),  # 2.51, just above
        ("oral", "17.5", False, ORAL_REVIEW),  # 0.25, at the minimum
        ("oral", "16.8", True, ORAL_REVIEW),  # 0.24, just below
        ("oral", "490", False, ORAL_REVIEW),  # 7.00, at the maximum
        ("oral", "490.7", True, ORAL_REVIEW),  # 7.01, just above
    ],
)
def test_dose_range_at_and_around_each_default_bound(
    route: str, dose_mg: str, outside: bool, source: str
) -> None:
    dose = Decimal(dose_mg)
    problem = rules.dose_range_problem(
        dose_mg=dose,
        weight_kg=WEIGHT,
        dose_range=rules.DEFAULT_DOSE_RANGES[("ketamine", route)],
        label=rules.dose_range_label("ketamine", route),
    )
    assert (problem is not None) is outside, source
    if problem is not None:
        assert problem.code == "dose_outside_range"
        assert "ask a prescriber to approve this dose" in problem.message


def test_a_thousand_mg_for_seventy_kg_names_the_range_and_what_to_do() -> None:
    problem = rules.dose_range_problem(
        dose_mg=Decimal("1000"),
        weight_kg=WEIGHT,
        dose_range=rules.DEFAULT_DOSE_RANGES[("ketamine", "iv")],
        label=rules.dose_range_label("ketamine", "iv"),
    )
    assert problem is not None
    assert problem.message == (
        "1000 mg is 14.29 mg/kg at 70 kg, outside the clinic's range of 0.10-0.75 mg/kg (7-52.5 mg) for "
        "racemic ketamine, intravenous: check the dose, or ask a prescriber to approve this dose on the "
        "record with a reason."
    )
    assert "Andrade 2017" in problem.source.text
    assert problem.source.text.startswith("Clinic setting, Dose range, racemic ketamine, intravenous")


def test_a_dose_without_a_weight_is_never_in_range() -> None:
    problem = rules.dose_range_problem(
        dose_mg=Decimal("35"),
        weight_kg=None,
        dose_range=rules.DEFAULT_DOSE_RANGES[("ketamine", "iv")],
        label="racemic ketamine, intravenous",
    )
    assert problem is not None
    assert problem.code == "dose_weight_missing"


@pytest.mark.parametrize(
    ("dose_mg", "has_range", "expected"),
    [
        ("35", True, "dose_override_not_needed"),  # inside: nothing to override
        ("52.5", True, "dose_override_not_needed"),  # at the maximum: still inside
        ("52.9", True, None),  # just above: approvable
        ("1000", True, None),
        ("56", False, "dose_override_not_needed"),  # esketamine: no mg/kg range
    ],
)
def test_what_a_prescriber_may_approve(dose_mg: str, has_range: bool, expected: str | None) -> None:
    problem = rules.dose_override_problem(
        dose_mg=Decimal(dose_mg),
        weight_kg=WEIGHT,
        dose_range=rules.DEFAULT_DOSE_RANGES[("ketamine", "iv")] if has_range else None,
        label="racemic ketamine, intravenous" if has_range else "esketamine (Spravato), nasal spray",
    )
    assert (problem.code if problem else None) == expected


def test_esketamine_has_no_mg_per_kg_range() -> None:
    assert ("esketamine", "intranasal") not in rules.DEFAULT_DOSE_RANGES
    assert selectors.dose_range_for(1, agent="esketamine", route="intranasal") is None


@pytest.mark.parametrize(
    "code", ["dose_bp_ceiling", "dose_outside_range", "dose_weight_missing", "dose_override_not_needed"]
)
def test_each_new_code_is_registered_with_a_source(code: str) -> None:
    citation = sources.citation_for(code)
    assert citation is not None
    assert citation.text.startswith("Clinic setting")
    assert "domain.md" not in citation.text
    assert "rules.py" not in citation.text


# --- the ceiling through the services, the page and the API ---------------------------------------------


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _url(session: DosingSession, action: str) -> str:
    return reverse("session_action", args=[session.public_id, action])


def _api_url(session: DosingSession, action: str) -> str:
    return f"/api/v1/sessions/{session.public_id}/{action}/"


def _codes(response: Any) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


@pytest.fixture
def at_ceiling(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> DosingSession:
    return open_record(staff, dosing_pathway, room, slot(0, 9), pre_dose=(182, 104))


def test_no_override_is_signed_at_the_ceiling_by_page_or_api(
    staff: dict[str, User], at_ceiling: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    prescriber = staff[Role.PRESCRIBER]
    page = client_for(prescriber).post(_url(at_ceiling, "override"), {"reason": "Known hypertension."})
    assert page.status_code == 400
    body = page.content.decode()
    assert "Blood pressure 182/104 is at or above the clinic&#x27;s ceiling of 180/110" in body
    assert "Known hypertension." in body  # the input is kept
    response = api(prescriber).post(_api_url(at_ceiling, "override"), {"reason": "Known."}, format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "dose_bp_ceiling"
    assert error["source"].startswith("Clinic setting, Blood-pressure ceiling")
    assert error["source_url"] == "https://doi.org/10.1093/eurheartj/ehy339"
    with pytest.raises(ValidationError):
        services.session_override_sign(actor=prescriber, session=at_ceiling, reason="Known.")
    at_ceiling.refresh_from_db()
    assert at_ceiling.override_at is None


def test_the_dose_does_not_start_at_the_ceiling_by_page_or_api(
    staff: dict[str, User], at_ceiling: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    monitor = staff[Role.MONITOR]
    page = client_for(monitor).post(_url(at_ceiling, "dose"), {"dose_mg": "35", "lot_number": "L9"})
    assert page.status_code == 400
    assert "no override can start a dose" in page.content.decode()
    response = api(monitor).post(
        _api_url(at_ceiling, "dose"), {"dose_mg": "35", "lot_number": "L9"}, format="json"
    )
    assert response.status_code == 400
    assert _codes(response) == ["dose_bp_ceiling"]  # no "a prescriber can override" beside it
    at_ceiling.refresh_from_db()
    assert at_ceiling.status == "pre_dose"


def test_a_higher_reading_after_the_override_stops_the_dose_second_tab(
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
    client_for: Callable[[User | None], Client],
) -> None:
    """The prescriber signs at 150/95 in one tab; the monitor enters 185/100 in another, then starts
    the dose from the page still showing the override: refused, by page and by API."""
    session = open_record(staff, dosing_pathway, room, slot(0, 9), pre_dose=(150, 95))
    services.session_override_sign(
        actor=staff[Role.PRESCRIBER], session=session, reason="Anxious on arrival."
    )
    services.vitals_record(actor=staff[Role.MONITOR], session=session, systolic=185, diastolic=100)
    page = client_for(staff[Role.MONITOR]).post(_url(session, "dose"), {"dose_mg": "35", "lot_number": "L9"})
    assert page.status_code == 400
    assert "Blood pressure 185/100 is at or above" in page.content.decode()
    response = api(staff[Role.MONITOR]).post(
        _api_url(session, "dose"), {"dose_mg": "35", "lot_number": "L9"}, format="json"
    )
    assert _codes(response) == ["dose_bp_ceiling"]
    session.refresh_from_db()
    assert session.status == "pre_dose"
    assert session.dose_started_at is None


def test_a_ceiling_lowered_after_the_override_stops_the_dose(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    """An override signed under a ceiling of 200/120 covers 185/100 exactly; the clinic then lowers its
    ceiling to 180/110: the override, signed earlier, no longer starts the dose."""
    admin = staff[Role.CLINIC_ADMIN]
    clinic_settings_services.dosing_settings_update(
        actor=admin, bp_ceiling_systolic=200, bp_ceiling_diastolic=120
    )
    session = open_record(staff, dosing_pathway, room, slot(0, 9), pre_dose=(185, 100))
    services.session_override_sign(actor=staff[Role.PRESCRIBER], session=session, reason="Reviewed.")
    clinic_settings_services.dosing_settings_update(
        actor=admin, bp_ceiling_systolic=180, bp_ceiling_diastolic=110
    )
    with pytest.raises(ValidationError) as refused:
        services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=35, lot_number="L9")
    assert [error.code for error in refused.value.error_list] == ["dose_bp_ceiling"]


def test_below_the_ceiling_the_signed_override_still_starts_the_dose(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    session = open_record(staff, dosing_pathway, room, slot(0, 9), pre_dose=(179, 109))
    services.session_override_sign(actor=staff[Role.PRESCRIBER], session=session, reason="Reviewed.")
    dosed = services.dose_start(actor=staff[Role.MONITOR], session=session, dose_mg=35, lot_number="L9")
    assert dosed.status == "dosed"


# --- the dose range through the services, the page and the API ------------------------------------------


@pytest.fixture
def iv_session(
    clinic: Any, staff: dict[str, User], room: Any, slot: Callable[..., dt.datetime]
) -> DosingSession:
    """A record ready for the dose of a 70 kg patient planned for intravenous racemic ketamine."""
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        stage="dosing",
        patient__registered_by=staff[Role.PRESCRIBER],
    )
    SignedScreeningFactory(pathway=pathway, route="iv", weight_kg=Decimal("70.0"))
    return open_record(staff, pathway, room, slot(0, 9))


def test_a_thousand_mg_is_refused_by_page_and_api_without_an_approval(
    staff: dict[str, User], iv_session: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    monitor = staff[Role.MONITOR]
    page = client_for(monitor).post(_url(iv_session, "dose"), {"dose_mg": "1000", "lot_number": "LOT-77"})
    assert page.status_code == 400
    body = page.content.decode()
    assert "1000 mg is 14.29 mg/kg at 70 kg, outside the clinic&#x27;s range" in body
    assert 'value="LOT-77"' in body  # the other input is kept
    assert "Andrade 2017" in body  # the source, in plain words
    response = api(monitor).post(
        _api_url(iv_session, "dose"), {"dose_mg": "1000", "lot_number": "L9"}, format="json"
    )
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["code"], error["field"]) == ("dose_outside_range", "dose_mg")
    assert error["source_url"] == "https://doi.org/10.4088/JCP.17f11738"
    iv_session.refresh_from_db()
    assert iv_session.status == "pre_dose"


def test_a_dose_inside_the_range_starts_without_an_approval(
    staff: dict[str, User], iv_session: DosingSession
) -> None:
    dosed = services.dose_start(
        actor=staff[Role.MONITOR], session=iv_session, dose_mg="52.5", lot_number="L9"
    )
    assert dosed.status == "dosed"


def test_a_prescriber_approves_exactly_one_dose_outside_the_range(
    staff: dict[str, User], iv_session: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    prescriber, monitor = staff[Role.PRESCRIBER], staff[Role.MONITOR]
    page = client_for(prescriber).post(
        _url(iv_session, "dose_override"),
        {"dose_mg": "60", "reason": "Partial response at 0.5 mg/kg over three infusions."},
    )
    assert page.status_code == 302
    assert page["Location"].endswith("#dose_override")
    iv_session.refresh_from_db()
    assert iv_session.dose_override_mg == Decimal("60.0")
    assert iv_session.dose_override_by == prescriber
    event = AuditEvent.objects.get(action="session.dose_override_signed")
    assert event.data == {}  # the dose is on the record; the audit log (clinic admins read it) has none
    other = api(monitor).post(
        _api_url(iv_session, "dose"), {"dose_mg": "61", "lot_number": "L9"}, format="json"
    )
    assert _codes(other) == ["dose_outside_range"]  # only the approved dose
    shown = client_for(monitor).get(reverse("session_detail", args=[iv_session.public_id])).content.decode()
    assert "approved 60 mg outside the range" in shown
    dosed = api(monitor).post(
        _api_url(iv_session, "dose"), {"dose_mg": "60", "lot_number": "L9"}, format="json"
    )
    assert dosed.status_code == 200, dosed.json()
    assert dosed.json()["dose_override_mg"] == "60.0"
    event = AuditEvent.objects.get(action="session.dose_started")
    assert event.data["dose_approved"] is True


def test_approval_is_refused_inside_the_range_and_without_a_reason(
    staff: dict[str, User], iv_session: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    prescriber = staff[Role.PRESCRIBER]
    client = api(prescriber)
    inside = client.post(
        _api_url(iv_session, "dose-override"), {"dose_mg": "35", "reason": "x"}, format="json"
    )
    assert inside.status_code == 400
    assert _codes(inside) == ["dose_override_not_needed"]
    assert "nothing to override" in inside.json()["errors"][0]["message"]
    blank = client.post(_api_url(iv_session, "dose-override"), {"dose_mg": "60", "reason": ""}, format="json")
    assert blank.status_code == 400
    long = client.post(
        _api_url(iv_session, "dose-override"), {"dose_mg": "60", "reason": "x" * 2001}, format="json"
    )
    assert long.status_code == 400
    for dose in ("0", "-5", "1000.1", "NaN", "12.34"):
        bad = client.post(
            _api_url(iv_session, "dose-override"), {"dose_mg": dose, "reason": "x"}, format="json"
        )
        assert bad.status_code == 400, dose
    page = client_for(prescriber).post(_url(iv_session, "dose_override"), {"dose_mg": "60", "reason": " "})
    assert page.status_code == 400
    with pytest.raises(ValidationError) as refused:
        services.session_dose_override_sign(
            actor=prescriber, session=iv_session, dose_mg="60", reason="x" * 2001
        )
    assert "reason" in refused.value.error_dict
    iv_session.refresh_from_db()
    assert iv_session.dose_override_at is None
    assert not AuditEvent.objects.filter(action="session.dose_override_signed").exists()


@pytest.mark.parametrize("role", [Role.MONITOR, Role.THERAPIST, Role.CLINIC_ADMIN])
def test_only_a_prescriber_approves_a_dose_404_otherwise(
    role: str,
    staff: dict[str, User],
    iv_session: DosingSession,
    client_for: Callable[[User | None], Client],
) -> None:
    page = client_for(staff[role]).post(_url(iv_session, "dose_override"), {"dose_mg": "60", "reason": "x"})
    assert page.status_code == 404
    response = api(staff[role]).post(
        _api_url(iv_session, "dose-override"), {"dose_mg": "60", "reason": "x"}, format="json"
    )
    assert response.status_code == 404
    iv_session.refresh_from_db()
    assert iv_session.dose_override_at is None


def test_a_monitor_sees_the_range_but_no_approval_form(
    staff: dict[str, User], iv_session: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    url = reverse("session_detail", args=[iv_session.public_id])
    monitor_page = client_for(staff[Role.MONITOR]).get(url).content.decode()
    assert "Clinic range for racemic ketamine, intravenous: 0.10-0.75 mg/kg (7-52.5 mg at 70 kg)" in (
        monitor_page
    )
    assert "Approve a dose outside the range" not in monitor_page
    prescriber_page = client_for(staff[Role.PRESCRIBER]).get(url).content.decode()
    assert "Approve a dose outside the range" in prescriber_page


def test_an_approval_survives_no_weight_change_of_the_dose_asked(
    staff: dict[str, User], iv_session: DosingSession
) -> None:
    """An approval of 60 mg does not let 600 mg start, nor does a second approval of 60 leave 600 open."""
    prescriber, monitor = staff[Role.PRESCRIBER], staff[Role.MONITOR]
    services.session_dose_override_sign(actor=prescriber, session=iv_session, dose_mg="600", reason="Typo.")
    services.session_dose_override_sign(
        actor=prescriber, session=iv_session, dose_mg="60", reason="Meant 60."
    )
    with pytest.raises(ValidationError):
        services.dose_start(actor=monitor, session=iv_session, dose_mg=600, lot_number="L9")
    assert (
        services.dose_start(actor=monitor, session=iv_session, dose_mg=60, lot_number="L9").status == "dosed"
    )


def test_esketamine_has_no_dose_approval(
    staff: dict[str, User], clinic: Any, room: Any, slot: Callable[..., dt.datetime]
) -> None:
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=staff[Role.PRESCRIBER],
        therapist=staff[Role.THERAPIST],
        stage="dosing",
        patient__registered_by=staff[Role.PRESCRIBER],
    )
    SignedScreeningFactory(pathway=pathway, agent="esketamine", route="intranasal")
    booking_services.rems_enrolment_record(
        actor=staff[Role.PRESCRIBER], patient=pathway.patient, enrolled_on=dt.date(2026, 1, 5), reference="R1"
    )
    session = open_record(staff, pathway, room, slot(0, 9))
    response = api(staff[Role.PRESCRIBER]).post(
        _api_url(session, "dose-override"), {"dose_mg": "112", "reason": "x"}, format="json"
    )
    assert _codes(response) == ["dose_override_not_needed"]


# --- the settings: ceiling and ranges, by page and API ----------------------------------------------------


def test_the_ceiling_must_stay_above_the_pre_dose_limits(staff: dict[str, User]) -> None:
    admin = staff[Role.CLINIC_ADMIN]
    with pytest.raises(ValidationError) as refused:
        clinic_settings_services.dosing_settings_update(
            actor=admin, bp_ceiling_systolic=140, bp_ceiling_diastolic=95
        )
    assert set(refused.value.error_dict) == {"bp_ceiling_systolic"}
    with pytest.raises(ValidationError) as refused:
        clinic_settings_services.dosing_settings_update(
            actor=admin, bp_ceiling_systolic=251, bp_ceiling_diastolic=90
        )
    assert set(refused.value.error_dict) == {"bp_ceiling_systolic", "bp_ceiling_diastolic"}
    settings = clinic_settings_services.dosing_settings_update(
        actor=admin, bp_ceiling_systolic=141, bp_ceiling_diastolic=91
    )
    assert (settings.bp_ceiling_systolic, settings.bp_ceiling_diastolic) == (141, 91)


def test_settings_api_reads_and_writes_the_ceiling_and_ranges(staff: dict[str, User]) -> None:
    client = api(staff[Role.CLINIC_ADMIN])
    body = client.get("/api/v1/dosing-settings/").json()
    assert (body["bp_ceiling_systolic"], body["bp_ceiling_diastolic"]) == (180, 110)
    iv = next(r for r in body["dose_ranges"] if r["route"] == "iv")
    assert (iv["minimum_mg_per_kg"], iv["maximum_mg_per_kg"]) == ("0.10", "0.75")
    body["dose_ranges"] = [
        {"agent": "ketamine", "route": "iv", "minimum_mg_per_kg": "0.20", "maximum_mg_per_kg": "1.00"}
    ]
    body["bp_ceiling_systolic"] = 175
    saved = client.put("/api/v1/dosing-settings/", body, format="json")
    assert saved.status_code == 200, saved.json()
    iv = next(r for r in saved.json()["dose_ranges"] if r["route"] == "iv")
    assert (iv["minimum_mg_per_kg"], iv["maximum_mg_per_kg"]) == ("0.20", "1.00")
    assert saved.json()["bp_ceiling_systolic"] == 175
    for bad in (
        {"agent": "ketamine", "route": "iv", "minimum_mg_per_kg": "0", "maximum_mg_per_kg": "1"},
        {"agent": "ketamine", "route": "iv", "minimum_mg_per_kg": "0.5", "maximum_mg_per_kg": "20.01"},
        {"agent": "ketamine", "route": "iv", "minimum_mg_per_kg": "0.8", "maximum_mg_per_kg": "0.5"},
        {"agent": "esketamine", "route": "intranasal", "minimum_mg_per_kg": "0.5", "maximum_mg_per_kg": "1"},
    ):
        refused = client.put("/api/v1/dosing-settings/", {**body, "dose_ranges": [bad]}, format="json")
        assert refused.status_code == 400, bad
    too_low = client.put("/api/v1/dosing-settings/", {**body, "bp_ceiling_diastolic": 90}, format="json")
    assert too_low.status_code == 400
    assert _codes(too_low) == ["order"]
    row = DoseRange.objects.get(route="iv")
    assert (row.minimum_mg_per_kg, row.maximum_mg_per_kg) == (Decimal("0.20"), Decimal("1.00"))


def test_settings_page_saves_ranges_that_the_dose_start_then_uses(
    staff: dict[str, User], iv_session: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    client = client_for(staff[Role.CLINIC_ADMIN])
    page = client.get(reverse("dosing_settings"))
    form = page.context["form"]
    data = {name: form[name].value() for name in form.fields}
    data.update({"maximum_ketamine_iv": "1.00", "minimum_ketamine_iv": "0.50"})
    refused = client.post(reverse("dosing_settings"), {**data, "maximum_ketamine_iv": "0.40"})
    assert refused.status_code == 400
    assert "The maximum must be at least the minimum." in refused.content.decode()
    assert (
        client.post(reverse("dosing_settings"), {**data, "maximum_ketamine_iv": "20.01"}).status_code == 400
    )
    assert client.post(reverse("dosing_settings"), {**data, "bp_ceiling_systolic": "140"}).status_code == 400
    assert client.post(reverse("dosing_settings"), data).status_code == 302
    with pytest.raises(ValidationError) as refused_dose:  # 35 mg is now 0.50: inside; 30 mg is not
        services.dose_start(actor=staff[Role.MONITOR], session=iv_session, dose_mg=30, lot_number="L9")
    assert refused_dose.value.error_dict["dose_mg"][0].code == "dose_outside_range"
    assert services.dose_start(actor=staff[Role.MONITOR], session=iv_session, dose_mg=70, lot_number="L9")


@pytest.mark.parametrize(
    ("partial", "refused"),
    [({"systolic": 181}, True), ({"diastolic": 112}, True), ({"systolic": 170}, False)],
)
def test_a_partial_reading_at_the_ceiling_is_not_hidden_behind_an_earlier_full_one(
    partial: dict[str, int],
    refused: bool,
    staff: dict[str, User],
    dosing_pathway: Any,
    room: Any,
    slot: Callable[..., dt.datetime],
) -> None:
    """150/95 is overridden; a systolic (or diastolic) alone is then taken at the ceiling: the dose does
    not start, by the API; a partial reading below it changes nothing."""
    session = open_record(staff, dosing_pathway, room, slot(0, 9), pre_dose=(150, 95))
    services.session_override_sign(actor=staff[Role.PRESCRIBER], session=session, reason="Anxious.")
    services.vitals_record(actor=staff[Role.MONITOR], session=session, **partial)
    response = api(staff[Role.MONITOR]).post(
        _api_url(session, "dose"), {"dose_mg": "35", "lot_number": "L9"}, format="json"
    )
    if refused:
        assert response.status_code == 400
        assert _codes(response) == ["dose_bp_ceiling"]
    else:
        assert response.status_code == 200, response.json()
