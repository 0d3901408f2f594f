"""Dosing-room scheduling rules: chair time, opening hours, out-of-service periods and overlaps.

Pure functions over plain values. Chair time is dosing + monitoring + a turnover buffer, per agent
and route; the clinic sets the minutes (defaults below), except that esketamine is never monitored
for less than the two hours its REMS requires (domain.md 1.4).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

from screening.rules import Agent
from screening.rules import Route

ESKETAMINE_MINIMUM_MONITORING_MINUTES = 120  # FDA REMS: monitor at least 2 hours (domain.md 1.4)


@dataclass(frozen=True)
class ChairTime:
    """Minutes a booking holds its room for one agent and route."""

    dosing_minutes: int
    monitoring_minutes: int
    turnover_minutes: int

    @property
    def total_minutes(self) -> int:
        return self.dosing_minutes + self.monitoring_minutes + self.turnover_minutes


# Defaults a clinic starts from (domain.md 1.4-1.5): IV 0.5 mg/kg over 40 minutes; sublingual peaks at
# about 40 minutes and fades over 1-2 hours; IM acts in about 5 minutes and lasts about an hour;
# esketamine uses up to 3 devices 5 minutes apart and then at least 2 hours of monitoring.
DEFAULT_CHAIR_TIMES: dict[tuple[str, str], ChairTime] = {
    (Agent.RACEMIC_KETAMINE, Route.IV): ChairTime(40, 90, 15),
    (Agent.RACEMIC_KETAMINE, Route.IM): ChairTime(10, 90, 15),
    (Agent.RACEMIC_KETAMINE, Route.SUBLINGUAL): ChairTime(30, 120, 15),
    (Agent.RACEMIC_KETAMINE, Route.ORAL): ChairTime(30, 120, 15),
    (Agent.ESKETAMINE, Route.INTRANASAL): ChairTime(15, ESKETAMINE_MINIMUM_MONITORING_MINUTES, 15),
}


def chair_time_problem(*, agent: str, monitoring_minutes: int) -> str | None:
    """Why a clinic's chair time cannot be used, or None: esketamine needs 2 hours of monitoring."""
    if agent == Agent.ESKETAMINE and monitoring_minutes < ESKETAMINE_MINIMUM_MONITORING_MINUTES:
        return "Esketamine needs at least 120 minutes of monitoring (REMS)."
    return None


@dataclass(frozen=True)
class Interval:
    starts_at: dt.datetime
    ends_at: dt.datetime

    def overlaps(self, other: Interval) -> bool:
        """Half-open intervals: a booking may start the minute the previous one ends."""
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at


@dataclass(frozen=True)
class OpeningHours:
    weekday: int  # Monday is 0
    opens: dt.time
    closes: dt.time


def within_opening_hours(interval: Interval, hours: Iterable[OpeningHours], tz: dt.tzinfo) -> bool:
    """Whether the whole interval falls inside one day's opening hours, in the clinic's time zone."""
    start = interval.starts_at.astimezone(tz)
    end = interval.ends_at.astimezone(tz)
    if start.date() != end.date():
        return False
    return any(
        day.weekday == start.weekday() and day.opens <= start.time() and end.time() <= day.closes
        for day in hours
    )


def end_for(starts_at: dt.datetime, chair_time: ChairTime) -> dt.datetime:
    return starts_at + dt.timedelta(minutes=chair_time.total_minutes)


def moved(interval: Interval, new_start: dt.datetime) -> Interval:
    """The same length, starting at `new_start`."""
    return Interval(new_start, new_start + (interval.ends_at - interval.starts_at))


@dataclass(frozen=True)
class Conflict:
    """Something a booking would clash with, worded for the person booking."""

    kind: str
    text: str


def describe_clash(
    *, what: str, starts_at: dt.datetime, ends_at: dt.datetime, room: str, tz: dt.tzinfo
) -> str:
    start, end = starts_at.astimezone(tz), ends_at.astimezone(tz)
    return f"{what}: {room}, {start:%a %-d %b %H:%M}-{end:%H:%M}."


def utilisation(booked: Sequence[Interval], open_minutes: int) -> float:
    """Share of the open minutes that bookings take (0.0-1.0)."""
    if open_minutes <= 0:
        return 0.0
    minutes = sum((b.ends_at - b.starts_at).total_seconds() / 60 for b in booked)
    return min(1.0, minutes / open_minutes)


# --- The session record ---------------------------------------------------------------------------

ESKETAMINE_DEVICE_MG = 28
ESKETAMINE_DEVICE_GAP = dt.timedelta(minutes=5)
PMF_FILING_DAYS = 7


@dataclass(frozen=True)
class VitalLimits:
    """Clinic limits for readings during monitoring; outside them a reading is flagged at once.

    Defaults come from the sources in domain.md 1.5, several of them weak, so every one is a clinic
    setting: >180/110 (Del Sant 2020; one clinic's rule), heart rate >120, SpO2 below 92%, and a
    respiratory rate outside 10-24 (respiratory depression is a REMS risk).
    """

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


def esketamine_device_problems(device_times: Sequence[dt.datetime], dose_mg: float) -> list[str]:
    """Esketamine is 28 mg a device, 1 to 3 devices, at least 5 minutes apart (label, domain.md 1.4)."""
    problems = []
    count = len(device_times)
    if not 1 <= count <= 3:
        problems.append("Record 1 to 3 nasal devices.")
    elif dose_mg != count * ESKETAMINE_DEVICE_MG:
        plural = "s" if count > 1 else ""
        problems.append(f"{count} device{plural} make {count * ESKETAMINE_DEVICE_MG} mg, not {dose_mg:g} mg.")
    ordered = sorted(device_times)
    for earlier, later in itertools.pairwise(ordered):
        if later - earlier < ESKETAMINE_DEVICE_GAP:
            problems.append(f"Devices at {earlier:%H:%M} and {later:%H:%M} are less than 5 minutes apart.")
    return problems


def minimum_observation_minutes(agent: str, clinic_minutes: int) -> int:
    """Esketamine is observed at least 2 hours from the first device; other agents per the clinic."""
    if agent == Agent.ESKETAMINE:
        return max(ESKETAMINE_MINIMUM_MONITORING_MINUTES, clinic_minutes)
    return clinic_minutes


@dataclass(frozen=True)
class DischargeState:
    now: dt.datetime
    dose_started_at: dt.datetime | None
    minimum_minutes: int
    last_reading_flags: list[str] | None  # None when no reading after the dose
    alert_and_oriented: bool
    escort_present: bool


def discharge_missing(state: DischargeState) -> list[str]:
    """What still stands between the patient and discharge (RCEM criteria; REMS 2-hour rule)."""
    missing = []
    if state.dose_started_at is None:
        return ["The dose has not been recorded."]
    ready_at = state.dose_started_at + dt.timedelta(minutes=state.minimum_minutes)
    if state.now < ready_at:
        left = int((ready_at - state.now).total_seconds() // 60) + 1
        missing.append(f"Observation continues until {ready_at:%H:%M} ({left} more minutes).")
    if state.last_reading_flags is None:
        missing.append("Record vitals before discharge.")
    elif state.last_reading_flags:
        missing.append("The last vitals are out of range: " + " ".join(state.last_reading_flags))
    if not state.alert_and_oriented:
        missing.append("The patient must be alert and oriented.")
    if not state.escort_present:
        missing.append("The escort must be present.")
    return missing


def pmf_deadline(session_day: dt.date) -> dt.date:
    """The REMS Patient Monitoring Form is filed within 7 days of the session."""
    return session_day + dt.timedelta(days=PMF_FILING_DAYS)


@dataclass(frozen=True)
class PmfFacts:
    """What the REMS Patient Monitoring Form asks, as recorded (None: not answered)."""

    first_treatment: bool | None
    sedation: bool | None
    dissociation: bool | None
    respiratory_depression: bool | None
    ready_minutes: int | None
    has_pre_dose_bp: bool
    has_40_minute_bp: bool
    has_pre_discharge_bp: bool
    minutes_monitored: int | None


def pmf_missing(facts: PmfFacts) -> list[str]:
    """The monitoring-form fields still missing before an esketamine record can be signed."""
    missing = []
    answers = (facts.first_treatment, facts.sedation, facts.dissociation, facts.respiratory_depression)
    if any(answer is None for answer in answers):
        missing.append("Answer first treatment, sedation, dissociation and respiratory depression.")
    if facts.ready_minutes is None:
        missing.append("When would the patient have been ready without the 2-hour rule?")
    if not facts.has_pre_dose_bp:
        missing.append("Blood pressure before dosing.")
    if not facts.has_40_minute_bp:
        missing.append("Blood pressure about 40 minutes after dosing (30-50 minutes).")
    if not facts.has_pre_discharge_bp:
        missing.append("Blood pressure before discharge.")
    if facts.minutes_monitored is None or facts.minutes_monitored < ESKETAMINE_MINIMUM_MONITORING_MINUTES:
        missing.append("At least 120 minutes monitored from the first device to the end of monitoring.")
    return missing
