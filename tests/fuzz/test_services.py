"""Fuzz the main write services directly, the way the API, tasks and the admin reach them without a
page form in front: typed arguments with hostile content (NUL bytes, 10k-character text, integers
past 64 bits, datetimes at the ends of the calendar, JSON answers of any shape).

Proven for each service: it either succeeds or refuses with `ValidationError` (or the shared
`NotFoundOrForbidden`) — never `DataError`, `IntegrityError`, `OverflowError`, `TypeError` or
`KeyError` — and a refusal leaves every table of the five apps exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from integration import rules as integration_rules
from integration import services as integration
from integration.models import IntegrationNote
from kaemdr import services as staff_services
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import Role
from kaemdr.models import User
from pathways import services as pathways
from pathways.models import Pathway
from pathways.models import Patient
from pathways.models import Stage
from screening import rules as screening_rules
from screening import services as screening
from screening.models import Assessment
from sessions.booking import rota_services
from sessions.booking import services as booking_services
from sessions.emdr import services as emdr
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.models import EmdrPlan
from sessions.models import EmdrTarget
from sessions.models import Room
from sessions.record import services as dosing
from tests.factories import PathwayFactory

from .helpers import FUZZ
from .helpers import hostile_text
from .helpers import rolled_back
from .helpers import row_counts

pytestmark = pytest.mark.django_db

REFUSALS = (ValidationError, NotFoundOrForbidden)

texts = st.one_of(st.sampled_from(["Plain", "MRN-1"]), hostile_text)
"""Hostile text, NUL bytes included: forms and the API refuse them at the field, and a service
called directly refuses them before the database (`kaemdr.signals.refuse_nul_characters`)."""
ints = st.one_of(
    st.sampled_from([0, 1, 7, 10, 120, 32767, 32768, 2**31, 2**63, -1, -(2**63) - 1]),
    st.integers(min_value=-(10**30), max_value=10**30),
)
dates = st.one_of(st.sampled_from([dt.date.min, dt.date.max, dt.date(2000, 2, 29)]), st.dates())
zones = st.sampled_from(["Europe/London", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
datetimes = st.one_of(
    st.sampled_from([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59)]).flatmap(
        lambda moment: zones.map(lambda zone: moment.replace(tzinfo=zoneinfo.ZoneInfo(zone)))
    ),
    st.datetimes(timezones=zones.map(zoneinfo.ZoneInfo)),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), ints, st.floats(), hostile_text),
    lambda children: st.one_of(
        st.lists(children, max_size=30), st.dictionaries(hostile_text, children, max_size=5)
    ),
    max_leaves=40,
)


def check(service: Callable[..., Any], **kwargs: Any) -> None:
    """Call `service` in a rolled-back savepoint: success, or a refusal that wrote nothing."""
    with rolled_back():
        before = row_counts()
        try:
            service(**kwargs)
        except REFUSALS:
            assert row_counts() == before, f"{service.__name__} refused {kwargs!r} yet wrote rows"


# --- pathways and staff ------------------------------------------------------------------------------------


@FUZZ
@given(
    fields=st.fixed_dictionaries(
        {
            "record_number": texts,
            "given_name": texts,
            "family_name": texts,
            "date_of_birth": dates,
            "phone": texts,
            "email": st.one_of(st.just("a@example.org"), texts),
            "emergency_contact_name": texts,
            "emergency_contact_relationship": texts,
            "emergency_contact_phone": texts,
            "emergency_contact_can_escort": st.booleans(),
        }
    )
)
def test_patient_register_and_update_service_fuzz(prescriber: User, pathway: Pathway, fields: Any) -> None:
    check(pathways.patient_register, actor=prescriber, **fields)
    check(
        pathways.patient_update,
        actor=prescriber,
        patient=Patient.objects.get(pk=pathway.patient_id),
        **fields,
    )


@FUZZ
@given(
    to_stage=st.one_of(st.sampled_from(Stage.values), texts),
    reason=texts,
    expected=st.one_of(st.none(), texts),
)
def test_pathway_move_service_fuzz(
    prescriber: User, pathway: Pathway, to_stage: str, reason: str, expected: str | None
) -> None:
    check(
        pathways.pathway_move,
        actor=prescriber,
        pathway=Pathway.objects.get(pk=pathway.pk),
        to_stage=to_stage,
        reason=reason,
        expected_stage=expected,
    )


@FUZZ
@given(
    email=st.one_of(st.just("new@example.org"), texts),
    full_name=texts,
    role=st.one_of(st.sampled_from(Role.values), texts),
)
def test_staff_invite_service_fuzz(clinic_admin: User, email: str, full_name: str, role: str) -> None:
    check(staff_services.staff_invite, actor=clinic_admin, email=email, full_name=full_name, role=role)


# --- screening ----------------------------------------------------------------------------------------------


@pytest.fixture
def draft(clinic: Any, prescriber: User, therapist: User) -> Assessment:
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        therapist=therapist,
        stage=Stage.ASSESSMENT,
        patient__registered_by=prescriber,
    )
    return screening.assessment_open(actor=prescriber, pathway=pathway)


@FUZZ
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "support_notes": texts,
            "agent": texts,
            "route": texts,
            "systolic": st.one_of(st.none(), ints),
            "diastolic": st.one_of(st.none(), ints),
            "heart_rate": st.one_of(st.none(), ints),
            "weight_kg": st.one_of(st.none(), ints, st.floats(), st.decimals()),
            "condition_codes": st.lists(
                st.one_of(st.sampled_from([c.code for c in screening_rules.CONDITIONS]), texts), max_size=3
            ),
        },
    )
)
def test_assessment_update_service_fuzz(prescriber: User, draft: Assessment, fields: Any) -> None:
    check(
        screening.assessment_update,
        actor=prescriber,
        assessment=Assessment.objects.get(pk=draft.pk),
        **fields,
    )


@FUZZ
@given(name=texts, medication_class=st.one_of(st.just("opioid"), texts), dose=texts)
def test_medication_add_service_fuzz(
    prescriber: User, draft: Assessment, name: str, medication_class: str, dose: str
) -> None:
    check(
        screening.medication_add,
        actor=prescriber,
        assessment=Assessment.objects.get(pk=draft.pk),
        name=name,
        medication_class=medication_class,
        dose=dose,
    )


@FUZZ
@given(
    instrument=st.one_of(st.sampled_from([i.value for i in screening_rules.Instrument]), texts),
    answers=st.one_of(
        st.lists(st.one_of(st.integers(min_value=0, max_value=4), st.none()), min_size=7, max_size=28),
        st.dictionaries(st.sampled_from(list(screening_rules.CSSRS_KEYS)), st.booleans()),
        json_values,
    ),
)
def test_measure_record_service_fuzz(
    therapist: User, pathway: Pathway, instrument: str, answers: Any
) -> None:
    check(
        screening.measure_record,
        actor=therapist,
        pathway=Pathway.objects.get(pk=pathway.pk),
        instrument=instrument,
        answers=answers,
    )


# --- sessions -----------------------------------------------------------------------------------------------


@pytest.fixture
def booking(dosing_pathway: Any, room: Room, clinic_admin: User, monitor: User) -> Booking:
    tz = zoneinfo.ZoneInfo(dosing_pathway.clinic.time_zone)
    day = dt.date.today() + dt.timedelta(days=2)
    return booking_services.booking_create(
        actor=clinic_admin,
        pathway=dosing_pathway,
        room=room,
        starts_at=dt.datetime.combine(day, dt.time(9, 0), tzinfo=tz),
        prescriber=dosing_pathway.prescriber,
        monitor=monitor,
    )


@pytest.fixture
def dosed(booking: Booking, monitor: User) -> DosingSession:
    session = dosing.session_open(actor=monitor, booking=booking)
    dosing.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    dosing.vitals_record(actor=monitor, session=session, systolic=128, diastolic=82)
    return dosing.dose_start(actor=monitor, session=session, dose_mg=100, lot_number="L1")


@FUZZ
@given(name=texts, flags=st.tuples(st.booleans(), st.booleans()))
def test_room_save_service_fuzz(clinic_admin: User, room: Room, name: str, flags: tuple[bool, bool]) -> None:
    check(
        booking_services.room_save, actor=clinic_admin, name=name, has_bp_monitor=flags[0], is_active=flags[1]
    )
    check(booking_services.room_save, actor=clinic_admin, room=Room.objects.get(pk=room.pk), name=name)


@FUZZ
@given(starts_at=datetimes, ends_at=datetimes, reason=texts)
def test_room_closure_service_fuzz(
    clinic_admin: User, room: Room, starts_at: dt.datetime, ends_at: dt.datetime, reason: str
) -> None:
    check(
        booking_services.room_closure_add,
        actor=clinic_admin,
        room=Room.objects.get(pk=room.pk),
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
    )


@FUZZ
@given(
    starts_at=datetimes,
    ends_at=datetimes,
    reason=texts,
    hours=st.lists(st.tuples(ints, st.times(), st.times()), max_size=5),
)
def test_rota_services_fuzz(
    clinic_admin: User,
    monitor: User,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str,
    hours: list[tuple[Any, dt.time, dt.time]],
) -> None:
    check(
        rota_services.staff_leave_add,
        actor=clinic_admin,
        staff=monitor,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
    )
    check(rota_services.staff_hours_set, actor=clinic_admin, staff=monitor, hours=hours)


@FUZZ
@given(starts_at=datetimes)
def test_booking_create_and_move_service_fuzz(
    clinic_admin: User,
    monitor: User,
    dosing_pathway: Any,
    room: Room,
    booking: Booking,
    starts_at: dt.datetime,
) -> None:
    check(
        booking_services.booking_move,
        actor=clinic_admin,
        booking=Booking.objects.get(pk=booking.pk),
        starts_at=starts_at,
    )
    check(
        booking_services.booking_create,
        actor=clinic_admin,
        pathway=Pathway.objects.get(pk=dosing_pathway.pk),
        room=Room.objects.get(pk=room.pk),
        starts_at=starts_at,
        prescriber=dosing_pathway.prescriber,
        monitor=monitor,
    )


@FUZZ
@given(enrolled_on=dates, reference=texts, reason=texts)
def test_rems_and_cancel_service_fuzz(
    prescriber: User, clinic_admin: User, booking: Booking, enrolled_on: dt.date, reference: str, reason: str
) -> None:
    check(
        booking_services.rems_enrolment_record,
        actor=prescriber,
        patient=Patient.objects.get(pk=booking.patient_id),
        enrolled_on=enrolled_on,
        reference=reference,
    )
    check(
        booking_services.booking_cancel,
        actor=clinic_admin,
        booking=Booking.objects.get(pk=booking.pk),
        reason=reason,
    )


@FUZZ
@given(
    vitals=st.fixed_dictionaries(
        {}, optional={name: st.one_of(st.none(), ints) for name in dosing.VITAL_FIELDS}
    ),
    scale=st.one_of(st.sampled_from(["cadss", "moaas", "bprs_plus"]), texts),
    value=ints,
    anchors=st.one_of(st.sampled_from(["", "0-6", "1-7"]), texts),
    text=texts,
    severity=st.one_of(st.sampled_from(["mild", "serious"]), texts),
)
def test_dosing_record_service_fuzz(
    monitor: User,
    dosed: DosingSession,
    vitals: dict[str, Any],
    scale: str,
    value: int,
    anchors: str,
    text: str,
    severity: str,
) -> None:
    def session() -> DosingSession:
        return DosingSession.objects.get(pk=dosed.pk)

    check(dosing.vitals_record, actor=monitor, session=session(), **vitals)
    check(dosing.scale_record, actor=monitor, session=session(), scale=scale, value=value, anchors=anchors)
    check(
        dosing.adverse_event_record,
        actor=monitor,
        session=session(),
        description=text,
        severity=severity,
        action_taken=text,
    )
    check(dosing.session_override_sign, actor=dosed.booking.prescriber, session=session(), reason=text)


@FUZZ
@given(
    dose_mg=st.one_of(ints, st.floats(), st.decimals(), texts),
    lot_number=texts,
)
def test_dose_start_service_fuzz(monitor: User, booking: Booking, dose_mg: Any, lot_number: str) -> None:
    session = dosing.session_open(actor=monitor, booking=Booking.objects.get(pk=booking.pk))
    dosing.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    dosing.vitals_record(actor=monitor, session=session, systolic=128, diastolic=82)
    check(dosing.dose_start, actor=monitor, session=session, dose_mg=dose_mg, lot_number=lot_number)


# --- EMDR ---------------------------------------------------------------------------------------------------


@pytest.fixture
def plan(dosing_pathway: Any, therapist: User) -> EmdrPlan:
    return emdr.plan_open(actor=therapist, pathway=dosing_pathway)


@pytest.fixture
def target(plan: EmdrPlan, therapist: User) -> EmdrTarget:
    return emdr.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")


@FUZZ
@given(
    kind=st.one_of(st.sampled_from(["past_memory", "resource"]), texts),
    title=texts,
    image=texts,
    sud=st.one_of(st.none(), ints),
    voc=st.one_of(st.none(), ints),
)
def test_emdr_target_add_service_fuzz(
    therapist: User, plan: EmdrPlan, kind: str, title: str, image: str, sud: int | None, voc: int | None
) -> None:
    check(
        emdr.target_add,
        actor=therapist,
        plan=EmdrPlan.objects.get(pk=plan.pk),
        kind=kind,
        title=title,
        image=image,
        sud=sud,
        voc=voc,
    )


@FUZZ
@given(
    held_at=datetimes,
    phase=ints,
    stimulation=st.one_of(st.just("taps"), texts),
    closure=st.one_of(st.sampled_from(["", "container"]), texts),
    work=st.fixed_dictionaries(
        {},
        optional={
            "sud_start": st.one_of(st.none(), ints),
            "sud_end": st.one_of(st.none(), ints),
            "voc_start": st.one_of(st.none(), ints),
            "voc_end": st.one_of(st.none(), ints),
            "sud_by_set": st.lists(ints, max_size=5),
            "interweaves": st.lists(st.one_of(st.just("safety"), texts), max_size=3),
            "body_scan_clear": st.booleans(),
        },
    ),
)
def test_emdr_session_log_service_fuzz(
    therapist: User,
    plan: EmdrPlan,
    target: EmdrTarget,
    held_at: dt.datetime,
    phase: int,
    stimulation: str,
    closure: str,
    work: dict[str, Any],
) -> None:
    check(
        emdr.session_log,
        actor=therapist,
        plan=EmdrPlan.objects.get(pk=plan.pk),
        held_at=held_at,
        phase_reached=phase,
        stimulation=stimulation,
        closure_technique=closure,
        works=[{**work, "target": EmdrTarget.objects.get(pk=target.pk)}],
    )


# --- integration --------------------------------------------------------------------------------------------


@pytest.fixture
def note(
    therapist: User, dosing_pathway: Any, complete_session: Callable[..., DosingSession]
) -> IntegrationNote:
    session = complete_session(dosing_pathway)
    return integration.note_open(actor=therapist, pathway=dosing_pathway, dosing_session=session)


@FUZZ
@given(
    held_at=st.one_of(st.none(), datetimes),
    fields=st.fixed_dictionaries({}, optional={name: texts for name in integration.NOTE_FIELDS}),
    area=st.one_of(st.sampled_from([a.value for a in integration_rules.ExperimentArea]), texts),
    description=texts,
)
def test_integration_note_services_fuzz(
    therapist: User,
    note: IntegrationNote,
    held_at: dt.datetime | None,
    fields: dict[str, str],
    area: str,
    description: str,
) -> None:
    def fresh() -> IntegrationNote:
        return IntegrationNote.objects.get(pk=note.pk)

    extra = {"held_at": held_at} if held_at is not None else {}
    check(integration.note_update, actor=therapist, note=fresh(), **fields, **extra)
    check(integration.experiment_add, actor=therapist, note=fresh(), area=area, description=description)
    check(integration.note_addendum_add, actor=therapist, note=fresh(), text=description)


@FUZZ
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "integration_window_hours": ints,
            "check_in_days": texts,
            "measures_interval_weeks": ints,
            "reminder_hour": ints,
            "patient_emails_enabled": st.booleans(),
        },
    )
)
def test_integration_settings_service_fuzz(clinic_admin: User, fields: dict[str, Any]) -> None:
    check(integration.integration_settings_update, actor=clinic_admin, **fields)
