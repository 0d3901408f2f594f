"""Reads for the dosing record, scoped to the reader's clinic and role: the session with its parts,
the dose range and limits that apply, the monitoring form's facts and the vitals chart."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from kaemdr import charts
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import clinic_grant_for
from kaemdr.permissions import has_capability
from screening import selectors as screening_selectors
from screening.models import AssessmentMedication
from screening.rules import MEDICATION_CLASSES
from sessions.booking.selectors import booking_qs_for_user
from sessions.booking.selectors import dosing_settings_for
from sessions.models import DoseRange
from sessions.models import DosingSession
from sessions.models import DosingSettings
from sessions.models import VitalsReading
from sessions.record import rules


def dose_range_for(clinic_id: int, *, agent: str, route: str) -> rules.DoseRange | None:
    """The clinic's mg/kg range for the agent and route, or the sourced default; None where there is
    none (esketamine is fixed-dose and follows its label). One query, as for chair time: the defaults
    stand until the clinic saves its own, like `chair_time_for`."""
    default = rules.DEFAULT_DOSE_RANGES.get((agent, route))
    if default is None:
        return None
    for minimum, maximum in DoseRange.objects.filter(
        clinic_id=clinic_id, agent=agent, route=route
    ).values_list("minimum_mg_per_kg", "maximum_mg_per_kg"):
        return rules.DoseRange(minimum, maximum, default.source)
    return default


def dose_ranges_for(clinic_id: int) -> dict[tuple[str, str], rules.DoseRange]:
    """Every range the clinic works with (its own, else the default), for the settings page (one query)."""
    saved = {
        (agent, route): (minimum, maximum)
        for agent, route, minimum, maximum in DoseRange.objects.filter(clinic_id=clinic_id).values_list(
            "agent", "route", "minimum_mg_per_kg", "maximum_mg_per_kg"
        )
    }
    return {
        key: rules.DoseRange(*saved[key], default.source) if key in saved else default
        for key, default in rules.DEFAULT_DOSE_RANGES.items()
    }


@dataclass(frozen=True)
class SessionDoseRange:
    """What the record shows before the dose: the clinic's range for the booking's agent and route,
    the weight it is worked out from, and the range in mg at that weight."""

    label: str
    dose_range: rules.DoseRange
    weight_kg: Decimal | None

    @property
    def mg(self) -> tuple[Decimal, Decimal] | None:
        if not self.weight_kg:
            return None
        tenth = Decimal("0.1")
        return (
            (self.dose_range.minimum_mg_per_kg * self.weight_kg).quantize(tenth, rounding=ROUND_HALF_UP),
            (self.dose_range.maximum_mg_per_kg * self.weight_kg).quantize(tenth, rounding=ROUND_HALF_UP),
        )


def session_dose_range(session: DosingSession) -> SessionDoseRange | None:
    """The range the dose start will check, with the weight on the current screening; None for an
    agent without a mg/kg range (esketamine)."""
    booking = session.booking
    dose_range = dose_range_for(session.clinic_id, agent=booking.agent, route=booking.route)
    if dose_range is None:
        return None
    plan = screening_selectors.current_screening(booking.pathway)
    return SessionDoseRange(
        rules.dose_range_label(booking.agent, booking.route),
        dose_range,
        plan.weight_kg if plan is not None else None,
    )


def bp_ceiling(settings: DosingSettings) -> rules.BpCeiling:
    return rules.BpCeiling(settings.bp_ceiling_systolic, settings.bp_ceiling_diastolic)


def vital_limits(settings: DosingSettings) -> rules.VitalLimits:
    return rules.VitalLimits(
        settings.systolic_max,
        settings.diastolic_max,
        settings.heart_rate_max,
        settings.spo2_min,
        settings.respiratory_rate_min,
        settings.respiratory_rate_max,
    )


SESSION_PARTS = ("vitals", "scales", "adverse_events", "addenda__author")
SESSION_STAFF = (
    "opened_by",
    "override_by",
    "dosed_by",
    "bp_review_by",
    "discharged_by",
    "signed_by",
    "pmf_medications_confirmed_by",
    "dose_override_by",
    "leave_checklist_by",
)
BOOKING_STAFF = ("monitor", "prescriber")


def _session_records(*, with_parts: bool) -> QuerySet[DosingSession]:
    """Records with their booking, room, patient and pathway joined (and their parts prefetched);
    their staff come separately (`_with_staff`): with the six staff joins too, PostgreSQL took
    15 ms to plan the statement."""
    records = DosingSession.objects.select_related("booking__room", "booking__patient", "booking__pathway")
    return records.prefetch_related(*SESSION_PARTS) if with_parts else records


def _with_staff(session: DosingSession) -> DosingSession:
    """Attach the staff the record and its booking name, read in one query."""
    booking = session.booking
    ids = {getattr(session, f"{field}_id") for field in SESSION_STAFF}
    ids |= {getattr(booking, f"{field}_id") for field in BOOKING_STAFF}
    staff = User.objects.in_bulk(ids - {None})
    for field in SESSION_STAFF:
        setattr(session, field, staff.get(getattr(session, f"{field}_id")))
    for field in BOOKING_STAFF:
        setattr(booking, field, staff[getattr(booking, f"{field}_id")])
    return session


def can_read_session_clinical(user: User) -> bool:
    """Whether `user` may read the clinical content of the dosing records they may see: vitals, dose,
    drug lot, scales, adverse events, overrides, discharge, the monitoring form and addenda.

    The one check for it: the record's page, its API answer and its PDF summary ask here. The
    roles the table gives `SESSION_VIEW_CLINICAL` read it; a clinic admin only where the clinic grants
    it (`DosingSettings.clinic_admins_read_dosing_records`, one query), else sees the record's
    logistics: room, booked times, staff, status, when it was opened and signed."""
    if has_capability(user, Capability.SESSION_VIEW_CLINICAL):
        return True
    grant = clinic_grant_for(user, Capability.SESSION_VIEW_CLINICAL)
    if grant is None:
        return False
    return DosingSettings.objects.filter(clinic_id=user.member_clinic_id, **{grant: True}).exists()


def get_session_for_user_or_404(
    user: User, public_id: uuid.UUID | str, *, with_parts: bool = False
) -> DosingSession:
    """The record if the user may see its booking (else 404), with its staff; `with_parts` loads its
    vitals, scales, adverse events and addenda too, as `session_with_parts` does.

    Seeing the booking is not reading the record's clinical content: a caller that shows or carries
    that content checks `can_read_session_clinical` (or uses `get_session_clinical_for_user_or_404`)."""
    records = _session_records(with_parts=with_parts).filter(booking__in=booking_qs_for_user(user))
    try:
        return _with_staff(records.get(public_id=public_id))
    except (DosingSession.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such session.") from None


def get_session_clinical_for_user_or_404(user: User, public_id: uuid.UUID | str) -> DosingSession:
    """The record, for what carries its clinical content out of its page (the PDF summary): 404 unless
    the user may see it and read its clinical content, the same answer as for a missing record."""
    if not can_read_session_clinical(user):
        raise Http404("No such session.")
    return get_session_for_user_or_404(user, public_id)


def session_with_parts(session: DosingSession) -> DosingSession:
    """The record read again, with its staff, vitals, scales, adverse events and addenda (six queries)."""
    return _with_staff(_session_records(with_parts=True).get(pk=session.pk))


def session_qs_for_user_unscoped() -> QuerySet[DosingSession]:
    """Session records with what their pages show, before any scoping (callers scope or re-read)."""
    return DosingSession.objects.select_related(
        "booking__room",
        "booking__patient",
        "booking__pathway",
        "booking__monitor",
        "booking__prescriber",
        "override_by",
        "dosed_by",
        "discharged_by",
        "signed_by",
    )


def pmf_facts(session: DosingSession, *, settings: DosingSettings | None = None) -> rules.PmfFacts:
    """The monitoring-form facts from the record (vitals should be prefetched): its three blood
    pressures picked as distinct readings (`rules.pmf_blood_pressures`), minutes from the first device
    to discharge, and whether a prescriber confirmed the medication classes."""
    settings = settings or dosing_settings_for(session.clinic_id)
    started = session.dose_started_at

    def timed(reading: VitalsReading) -> rules.TimedReading:
        return rules.TimedReading(reading.taken_at, reading.systolic, reading.diastolic, bool(reading.flags))

    vitals = list(session.vitals.all())
    end = session.discharged_at
    return rules.PmfFacts(
        first_treatment=session.pmf_first_treatment,
        sedation=session.pmf_sedation,
        dissociation=session.pmf_dissociation,
        respiratory_depression=session.pmf_respiratory_depression,
        ready_minutes=session.pmf_ready_minutes,
        blood_pressures=rules.pmf_blood_pressures(
            pre_dose=[timed(v) for v in vitals if v.is_pre_dose],
            after_dose=[
                timed(v)
                for v in vitals
                if not v.is_pre_dose and started is not None and v.taken_at >= started
            ],
            first_device_at=started,
            discharged_at=end,
            window_minutes=settings.discharge_bp_window_minutes,
        ),
        minutes_monitored=int((end - started).total_seconds() // 60) if started and end else None,
        medications_confirmed=session.pmf_medications_confirmed_at is not None,
    )


def rems_medication_classes() -> list[tuple[str, str]]:
    """The medication classes the REMS monitoring form asks about (with opioids), as (code, label)."""
    return [(c.code, c.label) for c in MEDICATION_CLASSES if c.rems_class]


def rems_classes_in_review(session: DosingSession) -> list[str]:
    """The REMS medication classes the screening's medication review lists for the session's pathway:
    what the prescriber confirms on the monitoring form (one query)."""
    plan = screening_selectors.current_screening(session.booking.pathway)
    if plan is None:
        return []
    rems = {code for code, _label in rems_medication_classes()}
    codes = AssessmentMedication.objects.filter(assessment=plan).values_list("medication_class", flat=True)
    return sorted({code for code in codes if code in rems})


def pmf_due(user: User, *, limit: int = 30) -> list[DosingSession]:
    """Esketamine sessions whose monitoring form is not filed yet, oldest first (the 7-day rule), for
    the dashboard's panel: only its fields are loaded (the session's id and dose time, the patient's
    name and id); reading any other field costs a query per row."""
    if not has_capability(user, Capability.SESSION_RECORD) and not has_capability(
        user, Capability.SCHEDULE_VIEW
    ):
        return []
    # Scoped by the session's own clinic (the roles here read the whole clinic's schedule), so the
    # partial index `session_pmf_due` serves it instead of a join over every booking; and only
    # what the panel shows is joined (eleven tables took PostgreSQL 25 ms to plan).
    sessions = DosingSession.objects.select_related("booking__patient").filter(
        clinic_id=user.member_clinic_id
    )
    if not has_capability(user, Capability.SCHEDULE_VIEW):
        sessions = sessions.filter(booking__in=booking_qs_for_user(user))
    return list(
        sessions.filter(pmf_required=True, dose_started_at__isnull=False, pmf_filed_at__isnull=True)
        .only(
            "public_id",
            "dose_started_at",
            "booking__patient__public_id",
            "booking__patient__given_name",
            "booking__patient__family_name",
        )
        .order_by("dose_started_at")[:limit]
    )


VITALS_CHART_LABEL = "Vitals over the session"


def vitals_chart(
    readings: list[tuple[dt.datetime, rules.Reading]], limits: rules.VitalLimits, tz: dt.tzinfo
) -> dict[str, str] | None:
    """The record's vitals trend: systolic, diastolic, heart rate and SpO2 over the session, with the
    clinic's limits for each as a labelled dashed line in its reading's colour, as an SVG (`label`,
    `svg`) and a text alternative (`summary`). The same chart on the record's page and in its PDF
    summary (`integration.summaries`); drawings are cached by `charts.line_chart_svg`. With one
    reading time there is no trend: `svg` is "" and `summary` gives the reading and its time.
    None without readings.
    """
    if not readings:
        return None

    def line(label: str, field: str) -> charts.Series:
        points = [(when, float(getattr(r, field))) for when, r in readings if getattr(r, field) is not None]
        return charts.Series(label, points)

    series = [
        line("Systolic", "systolic"),
        line("Diastolic", "diastolic"),
        line("Heart rate", "heart_rate"),
        line("SpO2 %", "spo2"),
    ]
    values = [value for s in series for _, value in s.points]
    if not values:
        return None
    # Room for the highest value and limit above, and for the lowest value below (from 40 when all
    # are above 50, so that the usual readings are not squeezed into the top half).
    top = int(max([*values, limits.systolic_max])) + 20
    y_max = max(200, -(-top // 20) * 20)
    y_min = 40 if min(values) >= 50 else 0
    svg = charts.line_chart_svg(
        title=VITALS_CHART_LABEL,
        series=series,
        y_min=y_min,
        y_max=y_max,
        # Each limit is labelled at the right of the plot in its reading's colour: "Max 180".
        thresholds=[
            charts.Threshold(f"Max {limits.systolic_max}", limits.systolic_max, "Systolic"),
            charts.Threshold(f"Max {limits.diastolic_max}", limits.diastolic_max, "Diastolic"),
            charts.Threshold(f"Max {limits.heart_rate_max}", limits.heart_rate_max, "Heart rate"),
            charts.Threshold(f"Min {limits.spo2_min}%", limits.spo2_min, "SpO2 %"),
        ],
        tz=tz,
        width=560,
        height=340,
    )
    first, last = readings[0][0].astimezone(tz), readings[-1][0].astimezone(tz)
    latest = readings[-1][1]

    def shown(value: int | None, suffix: str = "") -> str:
        return "not taken" if value is None else f"{value}{suffix}"

    pressure = (
        f"{latest.systolic}/{latest.diastolic}"
        if latest.systolic is not None and latest.diastolic is not None
        else f"{shown(latest.systolic)} systolic, {shown(latest.diastolic)} diastolic"
    )
    span = f"at {first:%H:%M}" if first == last else f"from {first:%H:%M} to {last:%H:%M}"
    summary = (
        f"{len(readings)} reading{'s' if len(readings) != 1 else ''} {span}; "
        f"the latest: blood pressure {pressure}, "
        f"heart rate {shown(latest.heart_rate)}, SpO2 {shown(latest.spo2, '%')}. "
        f"The clinic's limits{', drawn as dashed lines' if svg else ''}: "
        f"systolic {limits.systolic_max}, diastolic "
        f"{limits.diastolic_max}, heart rate {limits.heart_rate_max}, SpO2 at least {limits.spo2_min}%."
    )
    return {"label": VITALS_CHART_LABEL, "svg": svg, "summary": summary}
