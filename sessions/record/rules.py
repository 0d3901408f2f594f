"""Dosing-record rules: pre-dose checks, vital-sign limits and flags, dose ranges and overrides, times
entered by hand, discharge criteria and the REMS Patient Monitoring Form. Pure functions over plain
values; each code a rule can refuse with is registered below with its clinical source."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP
from decimal import Decimal

from kaemdr import sources
from kaemdr.formatting import format_figure
from kaemdr.formatting import format_measurement
from screening.rules import AGENT_LABELS
from screening.rules import ROUTE_LABELS
from screening.rules import Agent
from screening.rules import Route
from sessions.booking.rules import ESKETAMINE_MINIMUM_MONITORING_MINUTES
from sessions.booking.rules import SOURCE_SIGNED_RECORD
from sessions.booking.rules import Criterion

ESKETAMINE_DEVICE_MG = 28
ESKETAMINE_DEVICE_GAP = dt.timedelta(minutes=5)
PMF_FILING_DAYS = 7


@dataclass(frozen=True)
class VitalLimits:
    """Clinic limits for readings during monitoring; outside them a reading is flagged at once.

    Sources disagree and several are weak, so every one is a clinic setting (`SOURCE_VITAL_LIMITS`):
    >180/110 (Del Sant 2020; one clinic's rule), heart rate >120, SpO2 below 92%, and a respiratory
    rate outside 10-24 (respiratory depression is a REMS risk)."""

    systolic_max: int = 180
    diastolic_max: int = 110
    heart_rate_max: int = 120
    spo2_min: int = 92
    respiratory_rate_min: int = 10
    respiratory_rate_max: int = 24


@dataclass(frozen=True)
class PreDoseLimits:
    """Blood pressure above which no dose starts without a prescriber's override (a clinic setting;
    the label asks to weigh the rise when baseline is above 140/90, domain.md 1.1)."""

    systolic_max: int = 140
    diastolic_max: int = 90


@dataclass(frozen=True)
class Reading:
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    spo2: int | None
    respiratory_rate: int | None


def vital_flags(reading: Reading, limits: VitalLimits) -> list[str]:
    """What is out of range in one reading, worded for the monitor."""
    flags = []
    if reading.systolic is not None and reading.systolic > limits.systolic_max:
        flags.append(f"Systolic {reading.systolic} is above {limits.systolic_max}.")
    if reading.diastolic is not None and reading.diastolic > limits.diastolic_max:
        flags.append(f"Diastolic {reading.diastolic} is above {limits.diastolic_max}.")
    if reading.heart_rate is not None and reading.heart_rate > limits.heart_rate_max:
        flags.append(f"Heart rate {reading.heart_rate} is above {limits.heart_rate_max}.")
    if reading.spo2 is not None and reading.spo2 < limits.spo2_min:
        flags.append(f"SpO2 {reading.spo2}% is below {limits.spo2_min}%.")
    if reading.respiratory_rate is not None and not (
        limits.respiratory_rate_min <= reading.respiratory_rate <= limits.respiratory_rate_max
    ):
        flags.append(
            f"Respiratory rate {reading.respiratory_rate} is outside "
            f"{limits.respiratory_rate_min}-{limits.respiratory_rate_max}."
        )
    return flags


@dataclass(frozen=True)
class PreDoseChecks:
    fasting_confirmed: bool
    escort_present: bool
    consent_confirmed: bool
    systolic: int | None
    diastolic: int | None


def pre_dose_problems(checks: PreDoseChecks, limits: PreDoseLimits) -> list[str]:
    """Why the dose may not start without a prescriber's override; empty when it may."""
    problems = []
    if not checks.fasting_confirmed:
        problems.append("Fasting is not confirmed.")
    if not checks.escort_present:
        problems.append("No escort is present to take the patient home.")
    if not checks.consent_confirmed:
        problems.append("Consent for this session is not confirmed.")
    if checks.systolic is None or checks.diastolic is None:
        problems.append("Record the pre-dose blood pressure.")
    elif checks.systolic > limits.systolic_max or checks.diastolic > limits.diastolic_max:
        problems.append(
            f"Blood pressure {checks.systolic}/{checks.diastolic} is above the clinic's "
            f"{limits.systolic_max}/{limits.diastolic_max}."
        )
    return problems


def mg_per_kg(dose_mg: float, weight_kg: float) -> float:
    """The racemic-ketamine dose per kilogram, to two decimals (IV is usually 0.5 mg/kg, domain.md 1.5)."""
    if weight_kg <= 0:
        raise ValueError("weight must be positive")
    return round(dose_mg / weight_kg, 2)


# --- Limits no override passes: the blood-pressure ceiling ------------------------------------------

SOURCE_BP_CEILING = sources.clinic_setting(
    "Blood-pressure ceiling",
    default_from=sources.ESC_ESH_2018.at(
        "grade 3 hypertension: systolic 180 and/or diastolic 110 mmHg or more"
    )
    + sources.DEL_SANT_2020.at("systolic above 180 and/or diastolic above 110 mmHg after esketamine"),
)


@dataclass(frozen=True)
class BpCeiling:
    """The pre-dose blood pressure at or above which no override can start a dose (a clinic setting,
    always above the pre-dose limits that an override may pass). The default 180/110 is grade 3
    hypertension (ESC/ESH 2018: 180 and/or 110 or more), the height Del Sant 2020 counted as a
    hypertensive reading after esketamine."""

    systolic: int = 180
    diastolic: int = 110


def bp_ceiling_problem(
    *, systolic: int | None, diastolic: int | None, ceiling: BpCeiling
) -> Criterion | None:
    """Why no override can start the dose at this pre-dose blood pressure, or None: systolic at or
    above the ceiling's systolic, or diastolic at or above its diastolic (either is enough). A missing
    reading is not this rule's refusal: the pre-dose checks ask for it."""
    if systolic is None or diastolic is None:
        return None
    if systolic < ceiling.systolic and diastolic < ceiling.diastolic:
        return None
    return Criterion(
        "dose_bp_ceiling",
        f"Blood pressure {systolic}/{diastolic} is at or above the clinic's ceiling of "
        f"{ceiling.systolic}/{ceiling.diastolic}, where no override can start a dose: let the patient rest "
        "and measure again; if it stays this high, do not dose today and have the blood pressure reviewed "
        "before the session is rebooked.",
        SOURCE_BP_CEILING,
    )


# --- Dose ranges in mg/kg (racemic ketamine; esketamine is fixed-dose and follows its label) ------------

DOSE_RANGE_LIMIT_MG_PER_KG = Decimal(20)
"""What a clinic's range may reach at most (0 < minimum <= maximum <= 20 mg/kg)."""


@dataclass(frozen=True)
class DoseRange:
    """A clinic's usual dose for one agent and route, in mg/kg, and where its default comes from."""

    minimum_mg_per_kg: Decimal
    maximum_mg_per_kg: Decimal
    source: sources.Citation

    def text(self) -> str:
        low = format_figure(self.minimum_mg_per_kg, "mg/kg")
        return f"{low}-{format_measurement(self.maximum_mg_per_kg, 'mg/kg')}"


SOURCE_DOSE_IV = sources.ANDRADE_2017_DOSE.at(
    "intravenous, usually 0.5 mg/kg over 40 minutes; 0.1 to 0.75 mg/kg"
)
SOURCE_DOSE_IM = sources.CHILUKURI_2014.at("intramuscular 0.25 and 0.5 mg/kg") + sources.ANDRADE_2017_DOSE.at(
    "intramuscular bolus doses are safe"
)
SOURCE_DOSE_SUBLINGUAL = sources.LARA_2013.at(
    "10 mg sublingual; bioavailability about 30%"
) + sources.ANDRADE_2017_DOSE.at("intravenous 0.1 to 0.75 mg/kg, the exposure the upper bound matches")
SOURCE_DOSE_ORAL = sources.ORAL_KETAMINE_REVIEW.at(
    "0.25 to 7.0 mg/kg in weight-based sessions; bioavailability 20-25%"
)
DOSE_RANGE_DEFAULT_SOURCES: dict[str, sources.Citation] = {
    Route.IV: SOURCE_DOSE_IV,
    Route.IM: SOURCE_DOSE_IM,
    Route.SUBLINGUAL: SOURCE_DOSE_SUBLINGUAL,
    Route.ORAL: SOURCE_DOSE_ORAL,
}


def dose_range_label(agent: str, route: str) -> str:
    """The agent and route as messages and the settings page name them ("racemic ketamine, intravenous")."""
    agent_label = AGENT_LABELS[Agent(agent)]
    return f"{agent_label[0].lower()}{agent_label[1:]}, {ROUTE_LABELS[Route(route)].lower()}"


def dose_range_source(agent: str, route: str) -> sources.Citation:
    """A range's citation: the clinic setting by name, with the source of its default."""
    default = DOSE_RANGE_DEFAULT_SOURCES.get(Route(route)) if agent == Agent.RACEMIC_KETAMINE else None
    return sources.clinic_setting(f"Dose range, {dose_range_label(agent, route)}", default_from=default)


def _default_range(route: Route, minimum: str, maximum: str) -> DoseRange:
    return DoseRange(Decimal(minimum), Decimal(maximum), dose_range_source(Agent.RACEMIC_KETAMINE, route))


DEFAULT_DOSE_RANGES: dict[tuple[str, str], DoseRange] = {
    (Agent.RACEMIC_KETAMINE, Route.IV): _default_range(Route.IV, "0.10", "0.75"),
    (Agent.RACEMIC_KETAMINE, Route.IM): _default_range(Route.IM, "0.25", "0.50"),
    (Agent.RACEMIC_KETAMINE, Route.SUBLINGUAL): _default_range(Route.SUBLINGUAL, "0.10", "2.50"),
    (Agent.RACEMIC_KETAMINE, Route.ORAL): _default_range(Route.ORAL, "0.25", "7.00"),
}
"""The sourced defaults a clinic starts from, per agent and route (its own ranges replace them; an agent
and route not here, esketamine, has no mg/kg range). IV and oral are the reviews' ranges; intramuscular
is the doses a trial compared (0.25 and 0.5 mg/kg); sublingual runs from about the very low dose studied
to the IV maximum at about 30% bioavailability (0.75 / 0.3 = 2.5 mg/kg), which no trial set: a
conservative default for the clinic to review."""

SOURCE_DOSE_RANGES = sources.clinic_setting(
    "Dose ranges (mg/kg)",
    default_from=SOURCE_DOSE_IV + SOURCE_DOSE_IM + SOURCE_DOSE_SUBLINGUAL + SOURCE_DOSE_ORAL,
)


def dose_per_kg(dose_mg: Decimal, weight_kg: Decimal) -> Decimal:
    """mg/kg to two decimals, rounded half up: the figure the record shows and the range is checked on."""
    if weight_kg <= 0:
        raise ValueError("weight must be positive")
    return (dose_mg / weight_kg).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def dose_range_problem(
    *, dose_mg: Decimal, weight_kg: Decimal | None, dose_range: DoseRange, label: str
) -> Criterion | None:
    """Why this dose may not start without a prescriber's approval, or None: the patient's weight is
    not recorded (the dose per kg cannot be checked), or the dose per kg (to two decimals) lies below
    the range's minimum or above its maximum; both bounds are inside the range. `label` names the
    agent and route for the message ("racemic ketamine, intravenous")."""
    if weight_kg is None or weight_kg <= 0:
        return Criterion(
            "dose_weight_missing",
            "The patient's weight is not on the current screening, so the dose per kg cannot be checked: "
            "record the weight on the screening before the dose.",
            dose_range.source,
        )
    per_kg = dose_per_kg(dose_mg, weight_kg)
    if dose_range.minimum_mg_per_kg <= per_kg <= dose_range.maximum_mg_per_kg:
        return None
    low = (dose_range.minimum_mg_per_kg * weight_kg).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    high = (dose_range.maximum_mg_per_kg * weight_kg).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return Criterion(
        "dose_outside_range",
        f"{format_measurement(dose_mg, 'mg')} is {format_measurement(per_kg, 'mg/kg')} at "
        f"{format_measurement(weight_kg, 'kg')}, outside the clinic's range of {dose_range.text()} "
        f"({format_figure(low, 'mg')}-{format_measurement(high, 'mg')}) for {label}: check the dose, "
        "or ask a prescriber to "
        "approve this dose on the record with a reason.",
        dose_range.source,
    )


def dose_override_problem(
    *, dose_mg: Decimal, weight_kg: Decimal | None, dose_range: DoseRange | None, label: str
) -> Criterion | None:
    """Why a prescriber cannot approve this dose, or None: there is no mg/kg range for the agent and
    route (esketamine follows its label's fixed doses), the weight is missing, or the dose is inside
    the range, so there is nothing to approve."""
    if dose_range is None:
        return Criterion(
            "dose_override_not_needed",
            f"{label[:1].upper()}{label[1:]} has no mg/kg range in this clinic: there is no dose to approve.",
            SOURCE_DOSE_RANGES,
        )
    problem = dose_range_problem(dose_mg=dose_mg, weight_kg=weight_kg, dose_range=dose_range, label=label)
    if problem is not None:
        return problem if problem.code == "dose_weight_missing" else None
    assert weight_kg is not None  # a dose inside the range was weighed
    return Criterion(
        "dose_override_not_needed",
        f"{format_measurement(dose_mg, 'mg')} is "
        f"{format_measurement(dose_per_kg(dose_mg, weight_kg), 'mg/kg')}, inside the clinic's range for "
        f"{label} ({dose_range.text()}): there is nothing to override; the dose can start as it is.",
        dose_range.source,
    )


sources.register(
    {
        "dose_bp_ceiling": SOURCE_BP_CEILING,
        "dose_outside_range": SOURCE_DOSE_RANGES,
        "dose_weight_missing": SOURCE_DOSE_RANGES,
        "dose_override_not_needed": SOURCE_DOSE_RANGES,
    }
)


def esketamine_planned_devices(dose_mg: float) -> int | None:
    """How many 28 mg devices make `dose_mg` (1 to 3), or None when no whole number of them does."""
    count, rest = divmod(dose_mg, ESKETAMINE_DEVICE_MG)
    return int(count) if rest == 0 and 1 <= count <= 3 else None


def device_gap_problem(*, previous: dt.datetime, given_at: dt.datetime) -> Criterion | None:
    """A device given less than 5 minutes after the previous one (the label's interval), or None."""
    if given_at - previous < ESKETAMINE_DEVICE_GAP:
        return Criterion(
            "device_gap",
            f"The previous device was at {previous:%H:%M}: wait 5 minutes between devices.",
            SOURCE_LABEL_DEVICES,
        )
    return None


def minimum_observation_minutes(agent: str, clinic_minutes: int) -> int:
    """Esketamine is observed at least 2 hours from the first device; other agents per the clinic."""
    if agent == Agent.ESKETAMINE:
        return max(ESKETAMINE_MINIMUM_MONITORING_MINUTES, clinic_minutes)
    return clinic_minutes


# --- Clinical sources the record's rules cite (from the one catalogue, `kaemdr.sources`) ------------------

SOURCE_RECORDS = sources.NMC_CODE.at(
    "10.1, complete records at the time or as soon as possible after an event"
)
SOURCE_REMS_MONITORING = sources.SPRAVATO_REMS.at(
    "monitor at least 2 hours and until sedation, dissociation and respiratory depression resolve"
) + sources.SPRAVATO_US_PI.at("section 2.3, post-administration observation")
SOURCE_LABEL_BP = sources.SPRAVATO_US_PI.at(
    "section 5.6, increase in blood pressure"
) + sources.SPRAVATO_SMPC.at("section 4.4, blood pressure")
SOURCE_LABEL_BP_RISE = sources.SPRAVATO_US_PI.at(
    "section 5.6: 8-19% rose by 40 mmHg systolic and/or 25 mmHg diastolic or more within 1.5 hours"
)
SOURCE_MOAAS = sources.MOAAS.at("5: responds readily to name") + sources.SPRAVATO_REMS.at(
    "monitor until sedation resolves"
)
SOURCE_CADSS = sources.CADSS.at("0 is no dissociation") + sources.SPRAVATO_REMS.at(
    "monitor until dissociation resolves"
)
SOURCE_RCEM = sources.RCEM_SEDATION.at(
    "alert and oriented, vital signs at baseline, a responsible adult escort"
)
SOURCE_LABEL_DEVICES = sources.SPRAVATO_US_PI.at("section 2.4: 28 mg a device, 5 minutes between devices")
SOURCE_PMF = sources.SPRAVATO_PMF.at(
    "blood pressure pre-dose, about 40 minutes post-dose and pre-discharge; concomitant medication classes"
)


# --- Times entered by hand -----------------------------------------------------------------------------

LATE_ENTRY_GRACE = dt.timedelta(minutes=2)
"""A time this close to the moment it is entered is contemporaneous: a time typed to the minute is up
to a minute old before it is even saved."""


@dataclass(frozen=True)
class EntryWindow:
    """When a time entered on the record may lie: not in the future, not before `floor` (the record's
    opening, the pre-dose reading, the dose), and at most `late_minutes` before now."""

    now: dt.datetime
    floor: dt.datetime
    floor_code: str
    floor_text: str  # "the record was opened (09:02)", worded for the message
    late_minutes: int


def entry_time_problem(when: dt.datetime, window: EntryWindow) -> Criterion | None:
    """Why `when` cannot be recorded, or None. The server's clock is the record's clock: a late entry
    may be backdated a little (the clinic sets how far), never into the future or before what it follows."""
    if when > window.now:
        return Criterion(
            "future",
            "This time is in the future: leave the time empty to use the current time.",
            SOURCE_RECORDS,
        )
    if when < window.floor:
        return Criterion(
            window.floor_code,
            f"This time is before {window.floor_text}: check the time, or leave it empty to use the "
            "current time.",
            SOURCE_RECORDS,
        )
    if window.now - when > dt.timedelta(minutes=window.late_minutes):
        return Criterion(
            "too_late",
            f"A late entry may go back at most {window.late_minutes} minutes; record what happened earlier "
            "as an adverse event or an addendum with its time in the text.",
            SOURCE_RECORDS,
        )
    return None


def is_late_entry(when: dt.datetime, now: dt.datetime) -> bool:
    """Whether a time was entered late (and is shown and audited as such)."""
    return now - when > LATE_ENTRY_GRACE


def entered_late_at(at: dt.datetime | None, entered: dt.datetime | None) -> dt.datetime | None:
    """When a time was entered, if that was late (the record shows both times); else None."""
    if at is None or entered is None or not is_late_entry(at, entered):
        return None
    return entered


def time_of_day_to_instant(time_of_day: dt.time, now: dt.datetime) -> dt.datetime:
    """The instant a time of day typed at the chair means: today in `now`'s zone, or yesterday when
    that would be more than 12 hours ahead (a reading at 23:58 entered at 00:05). A time a little
    ahead stays ahead, so it is refused as in the future rather than taken as yesterday's."""
    today = now.replace(hour=time_of_day.hour, minute=time_of_day.minute, second=0, microsecond=0)
    if today - now > dt.timedelta(hours=12):
        return today - dt.timedelta(days=1)
    return today


# --- Discharge ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimedReading:
    """A vitals row after the dose, as the discharge and monitoring-form rules read it."""

    taken_at: dt.datetime
    systolic: int | None
    diastolic: int | None
    out_of_range: bool
    entered_at: dt.datetime | None = None  # when it reached the record (later than `taken_at` if late)

    @property
    def has_blood_pressure(self) -> bool:
        return self.systolic is not None and self.diastolic is not None

    @property
    def on_record_at(self) -> dt.datetime:
        return self.entered_at or self.taken_at


def review_covers(reviewed_at: dt.datetime | None, reading: TimedReading) -> bool:
    """Whether a prescriber's review covers `reading`: signed once the reading was on the record. A
    reading entered after the review, even timed before it, was never seen by the reviewer."""
    return reviewed_at is not None and reviewed_at >= reading.on_record_at


@dataclass(frozen=True)
class DischargeLimits:
    """The clinic's discharge settings (defaults in the model; sources in domain.md 1.1 and 1.5)."""

    systolic_max: int = 180
    diastolic_max: int = 110
    bp_window_minutes: int = 15
    rise_systolic: int = 40
    rise_diastolic: int = 25


@dataclass(frozen=True)
class DischargeState:
    now: dt.datetime
    dose_started_at: dt.datetime | None
    observation_from: dt.datetime | None  # the last device, or the dose's end; None until recorded
    esketamine: bool
    minimum_minutes: int
    baseline: tuple[int, int] | None  # the pre-dose blood pressure
    readings: tuple[TimedReading, ...]  # after the dose, oldest first
    limits: DischargeLimits
    bp_review_at: dt.datetime | None
    last_moaas: int | None  # after the dose
    last_cadss: int | None  # after the dose
    dissociation_resolved: bool
    alert_and_oriented: bool
    escort_present: bool


def _hm(moment: dt.datetime) -> str:
    return f"{moment:%H:%M}"


def bp_rise_needing_review(state: DischargeState) -> TimedReading | None:
    """The latest reading whose rise from the pre-dose baseline reaches the clinic's margin, if any."""
    if state.baseline is None:
        return None
    base_systolic, base_diastolic = state.baseline
    risen = [
        r
        for r in state.readings
        if r.has_blood_pressure
        and (
            r.systolic - base_systolic >= state.limits.rise_systolic  # type: ignore[operator]
            or r.diastolic - base_diastolic >= state.limits.rise_diastolic  # type: ignore[operator]
        )
    ]
    return max(risen, key=lambda r: r.on_record_at) if risen else None


def _discharge_bp_missing(state: DischargeState) -> list[Criterion]:
    limits = state.limits
    with_bp = [r for r in state.readings if r.has_blood_pressure]
    window = f"{limits.bp_window_minutes} minutes"
    if not with_bp:
        return [
            Criterion(
                "discharge_bp_missing",
                f"Take a full blood pressure (systolic and diastolic) within {window} before discharge.",
                SOURCE_LABEL_BP,
            )
        ]
    last = with_bp[-1]
    problems = []
    if state.now - last.taken_at > dt.timedelta(minutes=limits.bp_window_minutes):
        problems.append(
            Criterion(
                "discharge_bp_stale",
                f"The last full blood pressure was at {_hm(last.taken_at)}: take another, discharge needs "
                f"one from the last {window}.",
                SOURCE_LABEL_BP,
            )
        )
    flagged = [r for r in state.readings if r.out_of_range]
    if flagged and state.readings.index(flagged[-1]) >= state.readings.index(last):
        problems.append(
            Criterion(
                "out_of_range_since",
                f"The reading at {_hm(flagged[-1].taken_at)} was out of range: take a full blood pressure "
                "after it, within the limits, before discharge.",
                SOURCE_LABEL_BP,
            )
        )
    if last.systolic > limits.systolic_max or last.diastolic > limits.diastolic_max:  # type: ignore[operator]
        problems.append(
            Criterion(
                "discharge_bp_above_limit",
                f"Blood pressure {last.systolic}/{last.diastolic} is above the clinic's discharge limit "
                f"{limits.systolic_max}/{limits.diastolic_max}: keep observing and measure again.",
                SOURCE_LABEL_BP,
            )
        )
    risen = bp_rise_needing_review(state)
    if risen is not None and not review_covers(state.bp_review_at, risen):
        base_systolic, base_diastolic = state.baseline  # type: ignore[misc]
        problems.append(
            Criterion(
                "bp_rise_review",
                f"Blood pressure rose to {risen.systolic}/{risen.diastolic} at {_hm(risen.taken_at)} from "
                f"{base_systolic}/{base_diastolic} before the dose (the clinic reviews a rise of "
                f"{limits.rise_systolic}/{limits.rise_diastolic} or more): a prescriber must review it and "
                "sign with a reason before discharge.",
                SOURCE_LABEL_BP_RISE,
            )
        )
    return problems


def discharge_missing(state: DischargeState) -> list[Criterion]:
    """What still stands between the patient and discharge, each with what to do and its source:
    the minimum observation from the last dose or device (REMS 2 hours for esketamine); a recent full
    blood pressure, after any out-of-range reading and within the discharge limits; a prescriber's
    review of a large rise from baseline; sedation (MOAA/S 5) and dissociation resolved; alert and
    oriented; the escort present."""
    if state.dose_started_at is None:
        return [Criterion("dose_not_recorded", "Record the dose first.", SOURCE_REMS_MONITORING)]
    missing = []
    if state.observation_from is None:
        missing.append(
            Criterion(
                "dose_end_not_recorded",
                "Record every device given, or the end of the dose: observation counts from the last dose."
                if state.esketamine
                else "Record when the dose ended: observation counts from the end of the dose.",
                SOURCE_REMS_MONITORING,
            )
        )
    else:
        ready_at = state.observation_from + dt.timedelta(minutes=state.minimum_minutes)
        if state.now < ready_at:
            left = int((ready_at - state.now).total_seconds() // 60) + 1
            missing.append(
                Criterion(
                    "observation_time",
                    f"Observation continues until {_hm(ready_at)} ({left} more minutes, "
                    f"{state.minimum_minutes} from {_hm(state.observation_from)}).",
                    SOURCE_REMS_MONITORING,
                )
            )
    missing.extend(_discharge_bp_missing(state))
    if state.last_moaas is None:
        missing.append(
            Criterion(
                "sedation_not_rated",
                "Rate sedation (MOAA/S) after the dose: discharge needs 5, responds readily to name.",
                SOURCE_MOAAS,
            )
        )
    elif state.last_moaas < 5:
        missing.append(
            Criterion(
                "sedation_unresolved",
                f"The last MOAA/S is {state.last_moaas}: keep observing until the patient responds readily "
                "to their name (5), and rate it again.",
                SOURCE_MOAAS,
            )
        )
    if not (state.dissociation_resolved or state.last_cadss == 0):
        missing.append(
            Criterion(
                "dissociation_unresolved",
                "Rate CADSS again (0 when resolved), or record below that dissociation has resolved."
                if state.last_cadss
                else "Rate CADSS after the dose (0 when resolved), or record below that dissociation has "
                "resolved.",
                SOURCE_CADSS,
            )
        )
    if not state.alert_and_oriented:
        missing.append(Criterion("not_alert", "The patient must be alert and oriented.", SOURCE_RCEM))
    if not state.escort_present:
        missing.append(
            Criterion("escort_absent", "The escort must be present to take the patient home.", SOURCE_RCEM)
        )
    return missing


def pmf_deadline(session_day: dt.date) -> dt.date:
    """The REMS Patient Monitoring Form is filed within 7 days of the session."""
    return session_day + dt.timedelta(days=PMF_FILING_DAYS)


PMF_FORTY_MINUTES_FROM = dt.timedelta(minutes=30)
PMF_FORTY_MINUTES_TO = dt.timedelta(minutes=50)


@dataclass(frozen=True)
class PmfBloodPressures:
    """The three blood pressures the monitoring form asks for, each a distinct reading (or None)."""

    pre_dose: TimedReading | None
    forty_minutes: TimedReading | None
    pre_discharge: TimedReading | None


def pmf_blood_pressures(
    *,
    pre_dose: Sequence[TimedReading],
    after_dose: Sequence[TimedReading],
    first_device_at: dt.datetime | None,
    discharged_at: dt.datetime | None,
    window_minutes: int,
) -> PmfBloodPressures:
    """Pick the form's readings: the last pre-dose one; the pre-discharge one, taken within the
    clinic's discharge window before discharge; and, among the others, the one nearest 40 minutes after
    the first device (30-50 minutes). One reading never fills two slots."""
    before = [r for r in pre_dose if r.has_blood_pressure]
    after = [r for r in after_dose if r.has_blood_pressure]
    pre_discharge = None
    if discharged_at is not None:
        recent = [
            r
            for r in after
            if r.taken_at <= discharged_at
            and discharged_at - r.taken_at <= dt.timedelta(minutes=window_minutes)
        ]
        pre_discharge = recent[-1] if recent else None
    forty = None
    if first_device_at is not None:
        around = [
            r
            for r in after
            if r is not pre_discharge
            and PMF_FORTY_MINUTES_FROM <= r.taken_at - first_device_at <= PMF_FORTY_MINUTES_TO
        ]
        target = first_device_at + dt.timedelta(minutes=40)
        forty = min(around, key=lambda r: abs(r.taken_at - target), default=None)
    return PmfBloodPressures(before[-1] if before else None, forty, pre_discharge)


@dataclass(frozen=True)
class PmfFacts:
    """What the REMS Patient Monitoring Form asks, as recorded (None: not answered)."""

    first_treatment: bool | None
    sedation: bool | None
    dissociation: bool | None
    respiratory_depression: bool | None
    ready_minutes: int | None
    blood_pressures: PmfBloodPressures
    minutes_monitored: int | None
    medications_confirmed: bool


def pmf_missing(facts: PmfFacts) -> list[Criterion]:
    """The monitoring-form fields still missing before an esketamine record can be signed."""
    missing = []
    answers = (facts.first_treatment, facts.sedation, facts.dissociation, facts.respiratory_depression)
    if any(answer is None for answer in answers):
        missing.append(
            Criterion(
                "pmf_answers",
                "Answer first treatment, sedation, dissociation and respiratory depression.",
                SOURCE_PMF,
            )
        )
    if facts.ready_minutes is None:
        missing.append(
            Criterion(
                "pmf_ready_minutes",
                "When would the patient have been ready without the 2-hour rule?",
                SOURCE_PMF,
            )
        )
    if not facts.medications_confirmed:
        missing.append(
            Criterion(
                "pmf_medications",
                "A prescriber confirms the concomitant medication classes (from the medication review).",
                SOURCE_PMF,
            )
        )
    pressures = facts.blood_pressures
    if pressures.pre_dose is None:
        missing.append(Criterion("pmf_bp_pre_dose", "Blood pressure before dosing.", SOURCE_PMF))
    if pressures.forty_minutes is None:
        missing.append(
            Criterion(
                "pmf_bp_40_minutes",
                "Blood pressure about 40 minutes after the first device (30-50 minutes), a reading of "
                "its own.",
                SOURCE_PMF,
            )
        )
    if pressures.pre_discharge is None:
        missing.append(
            Criterion(
                "pmf_bp_pre_discharge",
                "Blood pressure before discharge (within the discharge window), a reading of its own.",
                SOURCE_PMF,
            )
        )
    if facts.minutes_monitored is None or facts.minutes_monitored < ESKETAMINE_MINIMUM_MONITORING_MINUTES:
        missing.append(
            Criterion(
                "pmf_minutes_monitored",
                "At least 120 minutes monitored from the first device to the end of monitoring.",
                SOURCE_REMS_MONITORING,
            )
        )
    return missing


# --- At the chair: allowed ranges and near-limit flags (display aids) ---------------------------


@dataclass(frozen=True)
class VitalRange:
    """What a reading's field may hold at all (the model's validators), worded for the monitor."""

    name: str  # with its article: "a systolic"
    low: int
    high: int
    unit: str

    def message(self) -> str:
        space = "" if self.unit == "%" else " "
        return f"Enter {self.name} between {self.low} and {self.high}{space}{self.unit}."


VITAL_RANGES: dict[str, VitalRange] = {
    "systolic": VitalRange("a systolic", 50, 280, "mmHg"),
    "diastolic": VitalRange("a diastolic", 20, 180, "mmHg"),
    "heart_rate": VitalRange("a heart rate", 20, 250, "bpm"),
    "spo2": VitalRange("an SpO2", 50, 100, "%"),
    "respiratory_rate": VitalRange("a respiratory rate", 2, 60, "breaths/min"),
}

# How close to a clinic limit a value in range is shown as "near limit" (a display aid, not stored).
NEAR_LIMIT_MARGINS = {"systolic": 10, "diastolic": 10, "heart_rate": 10, "spo2": 2, "respiratory_rate": 2}


@dataclass(frozen=True)
class NearLimit:
    field: str
    message: str


def vital_near_flags(reading: Reading, limits: VitalLimits) -> list[NearLimit]:
    """The values inside the clinic's limits but within a small margin of one (NEAR_LIMIT_MARGINS):
    systolic, diastolic and heart rate near their maximum, SpO2 near its minimum, the respiratory
    rate near either bound. A value on the limit itself is in range, so near it; one beyond it is
    out of range (`vital_flags`), not near."""
    near = []
    maxima = (
        ("systolic", "Systolic", reading.systolic, limits.systolic_max),
        ("diastolic", "Diastolic", reading.diastolic, limits.diastolic_max),
        ("heart_rate", "Heart rate", reading.heart_rate, limits.heart_rate_max),
    )
    for field, label, value, limit in maxima:
        if value is not None and limit - NEAR_LIMIT_MARGINS[field] <= value <= limit:
            near.append(NearLimit(field, f"{label} {value} is near the limit of {limit}."))
    spo2, spo2_margin = reading.spo2, NEAR_LIMIT_MARGINS["spo2"]
    if spo2 is not None and limits.spo2_min <= spo2 <= limits.spo2_min + spo2_margin:
        near.append(NearLimit("spo2", f"SpO2 {spo2}% is near the limit of {limits.spo2_min}%."))
    rate, rate_margin = reading.respiratory_rate, NEAR_LIMIT_MARGINS["respiratory_rate"]
    if rate is not None:
        low, high = limits.respiratory_rate_min, limits.respiratory_rate_max
        if low <= rate <= min(low + rate_margin, high):
            near.append(NearLimit("respiratory_rate", f"Respiratory rate {rate} is near the limit of {low}."))
        elif max(high - rate_margin, low) <= rate <= high:
            near.append(
                NearLimit("respiratory_rate", f"Respiratory rate {rate} is near the limit of {high}.")
            )
    return near


def vital_cell_marks(reading: Reading, limits: VitalLimits) -> dict[str, str]:
    """Each field of a reading outside the clinic's limits ("out") or near one ("near"), for marking
    the cells of the readings table; fields in range and away from the limits are left out."""
    fields = ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")
    marks = {near.field: "near" for near in vital_near_flags(reading, limits)}
    for field in fields:
        alone = Reading(**{name: getattr(reading, name) if name == field else None for name in fields})
        if vital_flags(alone, limits):
            marks[field] = "out"
    return marks


SOURCE_PRE_DOSE = (
    sources.SPRAVATO_US_PI.at("section 2.1, assess blood pressure before dosing")
    + sources.FASTING_GUIDANCE.at()
    + sources.RCEM_SEDATION.at("a responsible adult escort")
)

SOURCE_VITAL_LIMITS = sources.clinic_setting(
    "vital-sign limits during monitoring",
    default_from=sources.DEL_SANT_2020.at("SBP above 180 and/or DBP above 110")
    + sources.SPRAVATO_REMS.at("respiratory depression; pulse oximetry every session"),
)

sources.register(
    {
        # The dosing record: pre-dose checks and the dose
        "pre_dose_check": SOURCE_PRE_DOSE,
        "override_possible": SOURCE_PRE_DOSE,
        "nothing_to_override": SOURCE_PRE_DOSE,
        "no_pre_dose_bp": SOURCE_LABEL_BP,
        "devices": SOURCE_LABEL_DEVICES,
        "device_gap": SOURCE_LABEL_DEVICES,
        "devices_complete": SOURCE_LABEL_DEVICES,
        "not_esketamine": SOURCE_LABEL_DEVICES,
        "already_ended": SOURCE_RECORDS,
        # Times entered on the record
        "future": SOURCE_RECORDS,
        "too_late": SOURCE_RECORDS,
        "before_dose": SOURCE_RECORDS,
        "before_pre_dose_reading": SOURCE_RECORDS,
        "before_previous_device": SOURCE_RECORDS,
        "before_record_opened": SOURCE_RECORDS,
        # Discharge
        "dose_not_recorded": SOURCE_REMS_MONITORING,
        "dose_end_not_recorded": SOURCE_REMS_MONITORING,
        "observation_time": SOURCE_REMS_MONITORING,
        "discharge_bp_missing": SOURCE_LABEL_BP,
        "discharge_bp_stale": SOURCE_LABEL_BP,
        "out_of_range_since": SOURCE_LABEL_BP,
        "discharge_bp_above_limit": SOURCE_LABEL_BP,
        "bp_rise_review": SOURCE_LABEL_BP_RISE,
        "nothing_to_review": SOURCE_LABEL_BP_RISE,
        "sedation_not_rated": SOURCE_MOAAS,
        "sedation_unresolved": SOURCE_MOAAS,
        "dissociation_unresolved": SOURCE_CADSS,
        "not_alert": SOURCE_RCEM,
        "escort_absent": SOURCE_RCEM,
        # The REMS monitoring form
        "vital_out_of_range": SOURCE_VITAL_LIMITS,
        "vital_near_limit": SOURCE_VITAL_LIMITS,
        "pmf_answers": SOURCE_PMF,
        "pmf_ready_minutes": SOURCE_PMF,
        "pmf_medications": SOURCE_PMF,
        "pmf_bp_pre_dose": SOURCE_PMF,
        "pmf_bp_40_minutes": SOURCE_PMF,
        "pmf_bp_pre_discharge": SOURCE_PMF,
        "pmf_minutes_monitored": SOURCE_PMF,
        # A signed record
        "signed": SOURCE_SIGNED_RECORD,
        "not_signed": SOURCE_SIGNED_RECORD,
        "wrong_status": SOURCE_SIGNED_RECORD,
    }
)
