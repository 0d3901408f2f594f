"""Rooms and bookings for the demo clinic: three rooms open every day, one out of service for a morning,
and dosing sessions booked for the patients whose pathways have reached dosing."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any
from unittest import mock

from django.utils import timezone

from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import Stage
from sessions.booking import course_services
from sessions.booking import esketamine_rules
from sessions.booking import rota_services
from sessions.booking import selectors
from sessions.booking import services as booking_services
from sessions.clinic_settings import services as clinic_settings_services
from sessions.models import CourseTemplate
from sessions.models import DosingSession
from sessions.models import Room
from sessions.models import StaffWorkingHours
from sessions.record import services

# Every day of the week, 07:00 to 21:00: someone trying the demo can book a room whatever day (weekends
# too) and most hours they try it; the demo's own bookings still fall on weekdays.
DEMO_ROOM_HOURS = [(day, dt.time(7, 0), dt.time(21, 0)) for day in range(7)]


class SimulatedClock:
    """The server's clock for a record run through the services in less time than it takes: it
    starts now and moves only forward, when told (`advance`)."""

    def __init__(self) -> None:
        self.at = _real_now()

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> dt.datetime:
        self.at += dt.timedelta(**delta)
        return self.at


_real_now = timezone.now


@contextlib.contextmanager
def simulated_clock() -> Iterator[SimulatedClock]:
    """Run services on a `SimulatedClock` (the demo's past sessions, and tests of a whole dosing day):
    every `timezone.now()` reads it, so each time the services check is the time they would see on
    the day. Rows' own `created_at` keep the real clock, which is never later than the simulated one."""
    clock = SimulatedClock()
    with mock.patch("django.utils.timezone.now", clock.now):
        yield clock


def _rooms(admin: User) -> list[Room]:
    existing = list(Room.objects.filter(clinic_id=admin.member_clinic_id).order_by("name"))
    if existing:
        return existing
    # (name, has a pulse oximeter): the Quiet Room has none, so it cannot take esketamine sessions.
    rooms = [
        booking_services.room_save(
            actor=admin,
            name=name,
            has_bp_monitor=True,
            has_pulse_oximeter=oximeter,
            has_recliner=True,
            is_active=True,
        )
        for name, oximeter in (("Harbour Room", True), ("Garden Room", True), ("Quiet Room", False))
    ]
    for room in rooms:
        booking_services.room_set_hours(actor=admin, room=room, hours=DEMO_ROOM_HOURS)
    return rooms


# The demo's rota. Its monitor and first prescriber work whenever the rooms are open (every day 07:00
# to 21:00), so whatever day and hour someone trying the demo books, the session is taken, as before
# rotas. The second prescriber keeps a part-time rota with a split shift on Tuesdays, and a day of
# leave: the calendar's "who is on" row and the rota page show both, and booking him outside his hours
# or on that day is refused with when he is on.
DEMO_ROTAS: dict[str, list[tuple[int, dt.time, dt.time]]] = {
    "monitor@demo.kaemdr.test": [(day, dt.time(7, 0), dt.time(21, 0)) for day in range(7)],
    "prescriber@demo.kaemdr.test": [(day, dt.time(7, 0), dt.time(21, 0)) for day in range(7)],
    "prescriber2@demo.kaemdr.test": [
        (1, dt.time(9, 0), dt.time(13, 0)),
        (1, dt.time(14, 0), dt.time(17, 30)),
        (3, dt.time(9, 0), dt.time(17, 30)),
    ],
}


def _demo_rota(admin: User, staff: dict[str, User]) -> None:
    """Set the demo staff's working hours, and the second prescriber's leave on his next working day
    from tomorrow (he is named by no demo booking, so every booking stays valid), once, through the
    rota services."""
    if StaffWorkingHours.objects.filter(clinic_id=admin.member_clinic_id).exists():
        return
    for email, hours in DEMO_ROTAS.items():
        rota_services.staff_hours_set(actor=admin, staff=staff[email], hours=hours)
    tz = admin.zone
    day = timezone.localdate() + dt.timedelta(days=1)
    while day.weekday() not in (1, 3):
        day += dt.timedelta(days=1)
    rota_services.staff_leave_add(
        actor=admin,
        staff=staff["prescriber2@demo.kaemdr.test"],
        starts_at=dt.datetime.combine(day, dt.time.min, tzinfo=tz),
        ends_at=dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
        reason="Training day",
    )


def _follow_the_uk_label(admin: User) -> str:
    """The demo clinic is in London: it follows the UK summary of product characteristics for
    esketamine (no REMS; the Readiness to Leave checklist before discharge). Set once, through the
    settings service; returns the label."""
    label = booking_services.esketamine_label_of(admin.member_clinic_id)
    if label != esketamine_rules.EsketamineLabel.EU_UK_SMPC:
        clinic_settings_services.dosing_settings_update(
            actor=admin, esketamine_label=esketamine_rules.EsketamineLabel.EU_UK_SMPC
        )
        label = esketamine_rules.EsketamineLabel.EU_UK_SMPC
    return label


def _keep_clinical_content_from_admins(admin: User) -> None:
    """The demo clinic does not let its admins read the clinical content of dosing records (the
    default, kept explicitly): `make run` shows the admin a session's logistics only. Turned on from
    the dosing settings page, through the settings service, it would be audited."""
    if selectors.dosing_settings_for(admin.member_clinic_id).clinic_admins_read_dosing_records:
        clinic_settings_services.dosing_settings_update(actor=admin, clinic_admins_read_dosing_records=False)


def _seed_dose_ranges(admin: User) -> None:
    """The clinic's mg/kg ranges, saved once through the settings service: the sourced defaults, which
    the clinic reviews on its settings page (a dose outside them needs a prescriber's approval)."""
    from sessions.models import DoseRange
    from sessions.record import rules

    if DoseRange.objects.filter(clinic_id=admin.member_clinic_id).exists():
        return
    clinic_settings_services.dosing_settings_update(
        actor=admin,
        dose_ranges=[
            (agent, route, default.minimum_mg_per_kg, default.maximum_mg_per_kg)
            for (agent, route), default in rules.DEFAULT_DOSE_RANGES.items()
        ],
    )


def _next_weekday(day: dt.date, offset: int) -> dt.date:
    day = day + dt.timedelta(days=offset)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def demo_dosing(*, pathway: Pathway, to_stage: str | None, at: dt.datetime, staff: dict[str, User]) -> None:
    """At the end of each demo pathway, book its upcoming sessions (dosing stage) in the coming days."""
    admin = staff["admin@demo.kaemdr.test"]
    rooms = _rooms(admin)
    _demo_rota(admin, staff)
    _seed_dose_ranges(admin)
    _keep_clinical_content_from_admins(admin)
    label = _follow_the_uk_label(admin)
    if pathway.patient.record_number == "HB-1006" and to_stage == Stage.INTEGRATION:
        # A single-incident trauma: his therapist chose the three-prong protocol, and worked it before
        # the repeat measures that raise his open safety alert (which now holds the memory under way).
        _demo_emdr_three_prong(pathway, days_back=40)
    if to_stage is not None:
        return
    record = pathway.patient.record_number
    emdr_plans = {"HB-1004": 30, "HB-1005": 20}
    if record == "HB-1004" and esketamine_rules.rems_enrolment_required(label):  # US: REMS enrolment first
        booking_services.rems_enrolment_record(
            actor=staff["prescriber@demo.kaemdr.test"],
            patient=pathway.patient,
            enrolled_on=timezone.localdate() - dt.timedelta(days=30),
            reference="REMS-55821",
        )
    # (weekdays ahead, hour, minute, room): one monitor, so the sessions of a day do not overlap. Tomás's
    # esketamine course is in induction, twice a week: day 1 three days ago and today fill week 1, so his
    # next two sessions fall in week 2 (from 4 days ahead).
    plans = {
        "HB-1004": [(4, 9, 0, "Harbour Room"), (7, 9, 0, "Harbour Room")],
        "HB-1005": [(1, 13, 0, "Garden Room"), (3, 13, 30, "Garden Room")],
    }
    if record in emdr_plans and record not in ("HB-1004", "HB-1006"):
        _demo_emdr(pathway, days_back=emdr_plans[record])
    if record == "HB-1003":  # in preparation: yesterday's first dose held at the pre-dose checks
        demo_past_session(pathway=pathway, staff=staff, days_ago=1, state="pre_dose", pre_dose_bp=(154, 96))
    if record in DEMO_COURSES and pathway.is_open:
        _demo_course(pathway, prescriber=staff["prescriber@demo.kaemdr.test"], code=DEMO_COURSES[record])
    if pathway.stage != Stage.DOSING or record not in plans:
        return
    if record == "HB-1004":
        demo_past_session(pathway=pathway, staff=staff, days_ago=3)
        _demo_emdr(pathway, days_back=emdr_plans[record])
        # Today's dose, being monitored, its blood pressure rising past the review margin.
        demo_past_session(
            pathway=pathway, staff=staff, days_ago=0, state="dosed", until=62, readings=DEMO_READINGS_RISING
        )
    if record == "HB-1005":  # a record left unsigned two days ago (before her alert of yesterday)
        demo_past_session(pathway=pathway, staff=staff, days_ago=2, dose_mg=35, state="discharged")
    tz = admin.zone
    today = timezone.localdate()
    by_name = {room.name: room for room in rooms}
    for index, (offset, hour, minute, room_name) in enumerate(plans[record]):
        day = _next_weekday(today, offset)
        booking = booking_services.booking_create(
            actor=admin,
            pathway=pathway,
            room=by_name[room_name],
            starts_at=dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz),
            prescriber=staff["prescriber@demo.kaemdr.test"],
            monitor=staff["monitor@demo.kaemdr.test"],
        )
        if index == 0:
            booking_services.booking_checks_update(
                actor=admin,
                booking=booking,
                fasting_instructions_given=True,
                fasting_confirmed=True,
                escort_confirmed=record != "HB-1004",
            )
    if record == "HB-1005":
        _demo_calendar_variety(pathway=pathway, admin=admin, staff=staff, rooms=by_name, tz=tz)


DEMO_COURSES = {"HB-1005": "iv_racemic", "HB-1004": "esketamine_label"}
"""The demo's courses, each from a sourced default the clinic adopts: Aisha's six IV infusions, Tomás's
esketamine induction and weekly maintenance (the pathway page shows done, booked and still to book)."""


def _demo_course(pathway: Pathway, *, prescriber: User, code: str) -> None:
    """Adopt the default course `code` as a clinic template (once), and set the pathway's course from it
    through the prescriber's services, as the course page does."""
    template = CourseTemplate.objects.filter(clinic_id=pathway.clinic_id, default_code=code).first()
    if template is None:
        template = course_services.course_template_adopt(actor=prescriber, code=code)
    shape = template.shape
    course_services.course_plan_set(
        actor=prescriber,
        pathway=pathway,
        template=template,
        agent=shape.agent,
        route=shape.route,
        sessions=shape.sessions,
        phases=shape.phases,
    )


def _demo_calendar_variety(
    *, pathway: Pathway, admin: User, staff: dict[str, User], rooms: dict[str, Room], tz: dt.tzinfo
) -> None:
    """Give the room calendar what it shades and labels besides booked sessions: a session that was
    cancelled (at the first free start of the afternoon, two weekdays ahead, whatever the rooms'
    hours), and the Quiet Room out of service for a morning the same day."""
    day = _next_weekday(timezone.localdate(), 2)
    garden = rooms["Garden Room"]
    minutes = selectors.planned_chair_minutes(pathway)
    available = selectors.booking_availability(
        rooms=Room.objects.filter(pk=garden.pk),
        room_public_id=garden.public_id,
        day=day,
        after=day,
        minutes=minutes,
        tz=tz,
        now=timezone.now(),
        clinic_id=pathway.clinic_id,
        monitor_public_id=staff["monitor@demo.kaemdr.test"].public_id,
        patient_id=pathway.patient_id,
    )
    afternoon = [slot for slot in (available.slots if available else []) if slot.astimezone(tz).hour >= 14]
    if afternoon:
        booking = booking_services.booking_create(
            actor=admin,
            pathway=pathway,
            room=garden,
            starts_at=afternoon[0],
            prescriber=staff["prescriber@demo.kaemdr.test"],
            monitor=staff["monitor@demo.kaemdr.test"],
        )
        booking_services.booking_cancel(
            actor=admin, booking=booking, reason="She asked to move it to later in the week."
        )
    booking_services.room_closure_add(
        actor=admin,
        room=rooms["Quiet Room"],
        starts_at=dt.datetime.combine(day, dt.time(8, 0), tzinfo=tz),
        ends_at=dt.datetime.combine(day, dt.time(12, 0), tzinfo=tz),
        reason="Recliner service",
    )


def demo_past_session(
    *,
    pathway: Pathway,
    staff: dict[str, User],
    days_ago: int,
    dose_mg: int = 56,
    state: str = "signed",
    until: int = 127,
    readings: tuple[tuple[int, int, int, int], ...] | None = None,
    pre_dose_bp: tuple[int, int] = (132, 84),
    dose_approval: str = "",
) -> DosingSession:
    """Run a dosing session through the services on a simulated clock (every time checked as on the
    day) up to `until` minutes after the dose and to `state` (signed, discharged, or dosed: still being
    monitored; or pre_dose: held at the checks), then move it back `days_ago` days keeping every
    interval; today's (0) ends now.

    For esketamine (two devices, 56 mg) the demo shows the duties of the clinic's label: under the UK
    label the Readiness to Leave checklist completed before discharge; under the US one a signed record
    whose monitoring form is still to be filed. For racemic ketamine the dose is `dose_mg`; with
    `dose_approval`, a dose outside the clinic's mg/kg range, the prescriber approves it with that reason."""
    from django.db.models import F

    from sessions.models import AdverseEvent
    from sessions.models import Booking
    from sessions.models import ScaleRating
    from sessions.models import VitalsReading

    admin, monitor = staff["admin@demo.kaemdr.test"], staff["monitor@demo.kaemdr.test"]
    prescriber = staff["prescriber@demo.kaemdr.test"]
    room = next(r for r in _rooms(admin) if r.name == "Harbour Room")
    tz = admin.zone
    day = _next_weekday(timezone.localdate(), 7)
    with simulated_clock() as clock:
        booking = booking_services.booking_create(
            actor=admin,
            pathway=pathway,
            room=room,
            starts_at=dt.datetime.combine(day, dt.time(13, 0), tzinfo=tz),
            prescriber=prescriber,
            monitor=monitor,
        )
        booking_services.booking_checks_update(
            actor=admin,
            booking=booking,
            fasting_instructions_given=True,
            fasting_confirmed=True,
            escort_confirmed=True,
        )
        session = _dose_and_monitor(
            booking=booking,
            monitor=monitor,
            prescriber=prescriber,
            clock=clock,
            dose_mg=dose_mg,
            until=until,
            readings=readings or DEMO_READINGS,
            pre_dose_bp=pre_dose_bp,
            stop_before_dose=state == "pre_dose",
            dose_approval=dose_approval,
        )
        started = session.dose_started_at or clock.at
        if session.pmf_required and state in ("signed", "discharged"):
            services.pmf_update(
                actor=monitor,
                session=session,
                pmf_first_treatment=False,
                pmf_sedation=True,
                pmf_dissociation=True,
                pmf_respiratory_depression=False,
                pmf_ready_minutes=95,
            )
        if state == "signed":
            services.session_sign(actor=monitor, session=session)
        ended = clock.at
    # Move the whole session back to its demo day (today's to end now), keeping every interval.
    if days_ago == 0:
        shift = ended - timezone.now()
    else:
        demo_day = timezone.localdate() - dt.timedelta(days=days_ago)
        shift = started - dt.datetime.combine(demo_day, dt.time(13, 10), tzinfo=tz)
    Booking.objects.filter(pk=booking.pk).update(
        starts_at=started - shift - dt.timedelta(minutes=10),
        ends_at=started - shift - dt.timedelta(minutes=10) + (booking.ends_at - booking.starts_at),
    )
    session.refresh_from_db()
    DosingSession.objects.filter(pk=session.pk).update(
        created_at=F("created_at") - shift,
        dose_started_at=F("dose_started_at") - shift,
        dose_started_entered_at=F("dose_started_entered_at") - shift,
        dose_ended_at=F("dose_ended_at") - shift,
        dose_ended_entered_at=F("dose_ended_entered_at") - shift,
        discharged_at=F("discharged_at") - shift,
        signed_at=F("signed_at") - shift,
        dose_override_at=F("dose_override_at") - shift,
        pmf_medications_confirmed_at=F("pmf_medications_confirmed_at") - shift,
        leave_checklist_at=F("leave_checklist_at") - shift,
        device_times=[(dt.datetime.fromisoformat(t) - shift).isoformat() for t in session.device_times],
    )
    for part in (VitalsReading, ScaleRating):
        part.objects.filter(session=session).update(
            taken_at=F("taken_at") - shift, created_at=F("created_at") - shift
        )
    AdverseEvent.objects.filter(session=session).update(
        occurred_at=F("occurred_at") - shift, created_at=F("created_at") - shift
    )
    session.refresh_from_db()
    return session


# The demo's monitored course, minutes after the first dose: (minutes, systolic, diastolic, heart rate).
DEMO_READINGS = (
    (20, 141, 88, 84),
    (40, 148, 90, 86),
    (60, 139, 86, 80),
    (90, 131, 82, 76),
    (124, 126, 80, 74),
)
# A rise from the baseline 132/84 past the clinic's review margin (40/25) at 40 minutes.
DEMO_READINGS_RISING = ((20, 152, 94, 88), (40, 176, 108, 96), (60, 158, 98, 90))


def _dose_and_monitor(
    *,
    booking: Any,
    monitor: User,
    prescriber: User,
    clock: SimulatedClock,
    dose_mg: int,
    until: int,
    readings: tuple[tuple[int, int, int, int], ...],
    pre_dose_bp: tuple[int, int],
    stop_before_dose: bool,
    dose_approval: str = "",
) -> DosingSession:
    """Open the record and run it on `clock` as a monitor would at the chair: checks, the pre-dose
    reading, the dose (esketamine: two devices 5 minutes apart), its end, readings at the clinic's times,
    sedation and dissociation rated as they wane, and discharge at `until` minutes when that is after
    the last reading (stopping at the state reached otherwise)."""
    session = services.session_open(actor=monitor, booking=booking)
    services.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    services.vitals_record(
        actor=monitor,
        session=session,
        systolic=pre_dose_bp[0],
        diastolic=pre_dose_bp[1],
        heart_rate=78,
        spo2=98,
        respiratory_rate=14,
    )
    if stop_before_dose:
        return session
    clock.advance(minutes=6)
    esketamine = booking.agent == "esketamine"
    if esketamine:
        if session.pmf_required:  # the US label's monitoring form asks for the medication classes
            services.pmf_medications_confirm(actor=prescriber, session=session, classes=[])
        session = services.dose_start(actor=monitor, session=session, dose_mg=56, lot_number="SPR-40917")
        clock.advance(minutes=5)
        services.device_record(actor=monitor, session=session)
    else:
        if dose_approval:  # a dose outside the clinic's mg/kg range: the prescriber approves it first
            services.session_dose_override_sign(
                actor=prescriber, session=session, dose_mg=dose_mg, reason=dose_approval
            )
            clock.advance(minutes=2)
        session = services.dose_start(actor=monitor, session=session, dose_mg=dose_mg, lot_number="KET-22871")
        clock.advance(minutes=5)
        services.dose_end_record(actor=monitor, session=session)
    started = session.dose_started_at
    assert started is not None
    for minutes, systolic, diastolic, heart_rate in readings:
        if minutes > until:
            return session
        clock.at = started + dt.timedelta(minutes=minutes)
        services.vitals_record(
            actor=monitor,
            session=session,
            systolic=systolic,
            diastolic=diastolic,
            heart_rate=heart_rate,
            spo2=97,
            respiratory_rate=14,
        )
        if minutes == 40:
            services.scale_record(actor=monitor, session=session, scale="moaas", value=4)
            services.scale_record(actor=monitor, session=session, scale="cadss", value=14)
    if until < 125:
        return session
    services.scale_record(actor=monitor, session=session, scale="moaas", value=5)
    services.scale_record(actor=monitor, session=session, scale="cadss", value=0)
    clock.at = started + dt.timedelta(minutes=until)
    if esketamine and not session.pmf_required:  # the UK label: Readiness to Leave before discharge
        services.leave_checklist_record(
            actor=monitor, session=session, items=list(esketamine_rules.LEAVE_CHECKLIST_CODES)
        )
    return services.session_discharge(
        actor=monitor, session=session, alert_and_oriented=True, escort_present=True
    )


def _demo_emdr_three_prong(pathway: Pathway, *, days_back: int) -> None:
    """An EMDR plan on the standard three-prong protocol, chosen by the therapist for a single-incident
    trauma in a stable patient: a resource installed in preparation, the touchstone memory processed,
    the second past memory left incomplete at the last session (so the plan proposes to continue it),
    the present triggers waiting for the past memories, and a future template for them."""
    from sessions.emdr import rules as emdr_rules
    from sessions.emdr import services as emdr_services
    from sessions.models import EmdrPlan

    therapist = pathway.therapist
    if therapist is None:
        return
    plan = emdr_services.plan_open(actor=therapist, pathway=pathway)
    emdr_services.plan_protocol_set(actor=therapist, plan=plan, protocol=emdr_rules.Protocol.THREE_PRONG)
    now = timezone.now()

    def add(kind: str, title: str, **fields: Any) -> Any:
        return emdr_services.target_add(actor=therapist, plan=plan, kind=kind, title=title, **fields)

    resource = add("resource", "Calm place: the allotment")
    collision = add(
        "past_memory",
        "The collision on the ring road",
        image="The lorry filling the windscreen",
        negative_cognition="I am going to die",
        positive_cognition="I survived; it is over",
        sud=9,
        voc=2,
        emotions="Terror",
        body_location="Chest and hands",
        theme="safety",
    )
    hospital = add(
        "past_memory",
        "Waiting alone in the hospital corridor",
        image="The strip light and the empty chairs",
        negative_cognition="I am powerless",
        positive_cognition="I can get help when I need it",
        sud=7,
        voc=3,
        emotions="Helplessness",
        body_location="Stomach",
        theme="control",
    )
    sirens = add(
        "present_trigger",
        "Sirens behind the car",
        negative_cognition="I am in danger",
        positive_cognition="I am safe now",
        sud=6,
        voc=3,
        theme="safety",
    )
    junction = add(
        "present_trigger",
        "Driving through the ring-road junction",
        negative_cognition="I can't control what happens",
        positive_cognition="I can drive carefully and cope",
        sud=7,
        voc=2,
        theme="control",
    )
    emdr_services.target_add(
        actor=therapist,
        plan=plan,
        kind="future_template",
        title="Driving to work on the ring road next month",
        positive_cognition="I can drive calmly",
        belongs_to=[sirens, junction],
    )

    def log(days: int, target: Any, **work: Any) -> None:
        emdr_services.session_log(
            actor=therapist,
            plan=plan,
            held_at=now - dt.timedelta(days=days),
            phase_reached=7 if work.get("body_scan_clear") else 4,
            stimulation="eye_movements",
            works=[{"target": target, **work}],
            closure_technique="" if work.get("body_scan_clear") else "container",
        )

    log(days_back, resource, voc_start=4, voc_end=6)
    emdr_services.plan_readiness_update(
        actor=therapist,
        plan=plan,
        dual_awareness_shown=True,
        dissociation_interview_recorded=False,
        affect_tolerance_shown=True,
    )
    if emdr_services.start_problems(EmdrPlan.objects.get(pk=plan.pk), collision):
        return  # readiness not met (a crisis or an open alert): the plan shows why
    log(days_back - 7, collision, sud_start=9, sud_end=5, voc_start=2, voc_end=4, sud_by_set=[9, 7, 5])
    log(
        days_back - 14,
        collision,
        sud_start=5,
        sud_end=0,
        voc_start=4,
        voc_end=7,
        sud_by_set=[5, 3, 1, 0],
        body_scan_clear=True,
    )
    log(days_back - 21, hospital, sud_start=7, sud_end=4, voc_start=3, voc_end=4, sud_by_set=[7, 6, 4])


def _demo_emdr(pathway: Pathway, *, days_back: int) -> None:
    """An EMDR plan worked over the last weeks: a resource installed, stabilisation in progress or
    done, and for the furthest patients a trauma target under way, one session incomplete."""
    from sessions.emdr import services as emdr_services
    from sessions.models import DosingSession
    from sessions.models import EmdrPlan

    therapist = pathway.therapist
    if therapist is None:
        return
    plan = emdr_services.plan_open(actor=therapist, pathway=pathway)
    now = timezone.now()
    resource = emdr_services.target_add(
        actor=therapist, plan=plan, kind="resource", title="Calm place: the lake"
    )
    trigger = emdr_services.target_add(
        actor=therapist,
        plan=plan,
        kind="present_trigger",
        title="Sirens at night",
        image="Blue lights through the curtains",
        negative_cognition="I am in danger",
        positive_cognition="I am safe now",
        sud=7,
        voc=2,
        emotions="Fear",
        body_location="Chest",
        theme="safety",
    )
    belief = emdr_services.target_add(
        actor=therapist,
        plan=plan,
        kind="belief",
        title="I can't protect myself",
        negative_cognition="I can't protect myself",
        sud=6,
        voc=3,
        theme="control",
    )
    memory = emdr_services.target_add(
        actor=therapist,
        plan=plan,
        kind="past_memory",
        title="The collision",
        image="The moment of impact",
        negative_cognition="I should have done something",
        positive_cognition="I did the best I could",
        sud=9,
        voc=2,
        emotions="Guilt",
        body_location="Throat",
        theme="responsibility",
    )

    def held(days: int) -> dt.datetime:
        return now - dt.timedelta(days=days)

    def log(days: int, target: Any, **work: Any) -> None:
        emdr_services.session_log(
            actor=therapist,
            plan=plan,
            held_at=held(days),
            phase_reached=7,
            stimulation="eye_movements",
            works=[{"target": target, **work}],
            closure_technique="" if work.get("body_scan_clear") else "container",
        )

    log(days_back, resource, voc_start=4, voc_end=6)
    log(days_back - 7, trigger, sud_start=7, sud_end=4, voc_start=2, voc_end=4, sud_by_set=[7, 6, 4])
    if days_back < 25:
        return
    log(
        days_back - 14,
        trigger,
        sud_start=4,
        sud_end=0,
        voc_start=4,
        voc_end=7,
        sud_by_set=[4, 2, 0],
        body_scan_clear=True,
    )
    log(
        days_back - 17,
        belief,
        sud_start=6,
        sud_end=1,
        voc_start=3,
        voc_end=6,
        sud_by_set=[6, 3, 1],
        body_scan_clear=True,
    )
    emdr_services.plan_readiness_update(
        actor=therapist,
        plan=plan,
        dual_awareness_shown=True,
        dissociation_interview_recorded=False,
        affect_tolerance_shown=True,
    )
    if emdr_services.start_problems(EmdrPlan.objects.get(pk=plan.pk), memory):
        return  # an open safety alert keeps the trauma target locked: the plan shows why
    dosed = DosingSession.objects.filter(booking__pathway=pathway, dose_started_at__isnull=False).first()
    if dosed is not None and dosed.dose_started_at is not None:
        emdr_services.session_log(
            actor=therapist,
            plan=plan,
            held_at=dosed.dose_started_at + dt.timedelta(minutes=95),
            phase_reached=4,
            stimulation="taps",
            dosing_session=dosed,
            closure_technique="calm_place",
            works=[
                {
                    "target": memory,
                    "sud_start": 9,
                    "sud_end": 6,
                    "voc_start": 2,
                    "voc_end": 3,
                    "sud_by_set": [9, 8, 6],
                }
            ],
        )
    else:
        log(days_back - 21, memory, sud_start=9, sud_end=5, voc_start=2, voc_end=3, sud_by_set=[9, 7, 5])
