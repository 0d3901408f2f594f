"""Esketamine label rules: the label a clinic follows (US prescribing information or EU/UK summary of
product characteristics) sets the doses allowed, the frequency of the course and the duties of a
session. Pure functions over plain values; the services read the course and enforce them.

- **Doses.** US prescribing information, section 2 (treatment-resistant depression): day 1 starts at
  56 mg, later doses are 56 or 84 mg, at any adult age. EU/UK summary of product characteristics,
  section 4.2 (Tables 1 and 2): under 65 the same; at 65 and over day 1 starts at 28 mg and later doses
  are 28, 56 or 84 mg. Age is counted on the dose's date, from the date of birth.
- **Frequency** (both labels): induction twice a week in weeks 1-4; maintenance once a week in weeks
  5-8, then every 2 weeks or once a week. Weeks are counted from day 1, the course's first esketamine
  dose (before any dose, its earliest booking), in the clinic's time zone: days 1-7 are week 1. A week
  allows at most 2 doses or bookings in weeks 1-4 and at most 1 from week 5.
- **Duties.** Under the US label, the REMS: patient enrolment before booking and the Patient
  Monitoring Form after each session, filed within 7 days. Under the EU/UK label there is no REMS;
  the manufacturer's risk-minimisation materials give a Readiness to Leave checklist, completed
  before discharge. Its items here are built from the summary of product characteristics (4.2:
  monitor until clinically stable and ready to leave; 4.4: blood pressure, sedation, dissociation;
  4.7: no driving until the next day after restful sleep): the checklist's own wording was not
  available to us.

It lives with booking, the lowest of the three domains, because the course's frequency and REMS
enrolment are checked when a session is booked; the dosing record reads the doses and duties from here."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

from kaemdr import sources
from kaemdr.formatting import format_figure
from kaemdr.formatting import format_measurement
from sessions.booking.rules import ESKETAMINE_LABEL_NAMES
from sessions.booking.rules import Criterion
from sessions.booking.rules import EsketamineLabel

__all__ = ["ESKETAMINE_LABEL_NAMES", "EsketamineLabel"]

OLDER_ADULT_AGE = 65
"""From this age the EU/UK summary of product characteristics starts at 28 mg (its Table 2)."""
INDUCTION_WEEKS = 4
INDUCTION_DOSES_PER_WEEK = 2
WEEKLY_MAINTENANCE_WEEKS = 4
"""Weeks 5-8: once a week; from week 9 every 2 weeks or once a week (both labels)."""
MAINTENANCE_DOSES_PER_WEEK = 1

# --- Sources ------------------------------------------------------------------------------------------

SOURCE_US_DOSING = sources.SPRAVATO_US_PI.at(
    "section 2, dosage and administration: recommended dosage in treatment-resistant depression"
)
SOURCE_EU_UNDER_65 = sources.SPRAVATO_SMPC.at(
    "section 4.2, posology, Table 1: recommended dosing in adults under 65 years"
)
SOURCE_EU_65_AND_OVER = sources.SPRAVATO_SMPC.at(
    "section 4.2, posology, Table 2: recommended dosing in adults 65 years and older"
)
SOURCE_EU_DOSING = sources.SPRAVATO_SMPC.at(
    "section 4.2, posology, Tables 1 and 2: recommended dosing in adults under 65 and 65 years and older"
)
SOURCE_LEAVE_CHECKLIST = sources.SPRAVATO_UK_RMM.at("completed before discharge") + sources.SPRAVATO_SMPC.at(
    "section 4.2, post-administration observation: monitor until clinically stable and ready to leave"
)
SOURCE_LEAVE_BLOOD_PRESSURE = sources.SPRAVATO_SMPC.at(
    "section 4.2: reassess blood pressure at about 40 minutes and as clinically warranted; section 4.4, "
    "blood pressure"
)
SOURCE_LEAVE_STABLE = sources.SPRAVATO_SMPC.at(
    "section 4.2: monitor until clinically stable and ready to leave; section 4.4, sedation and dissociation"
)
SOURCE_LEAVE_DRIVING = sources.SPRAVATO_SMPC.at(
    "section 4.7: do not drive or use machinery until the next day after a restful sleep"
)

LABEL_DOSING_SOURCE = {EsketamineLabel.US_PI: SOURCE_US_DOSING, EsketamineLabel.EU_UK_SMPC: SOURCE_EU_DOSING}
LABEL_TITLE = {
    EsketamineLabel.US_PI: "the US prescribing information",
    EsketamineLabel.EU_UK_SMPC: "the EU/UK summary of product characteristics",
}

sources.register(
    {
        "label_dose_not_allowed": SOURCE_US_DOSING + SOURCE_EU_DOSING,
        "label_frequency": SOURCE_US_DOSING + SOURCE_EU_DOSING,
        "leave_checklist_incomplete": SOURCE_LEAVE_CHECKLIST,
        "leave_checklist_not_applicable": SOURCE_LEAVE_CHECKLIST,
        "monitoring_form_not_required": sources.SPRAVATO_UK_RMM.at(
            "EU/UK risk minimisation: no REMS and no REMS monitoring form"
        ),
    }
)

# --- Age ------------------------------------------------------------------------------------------------


def age_on(date_of_birth: dt.date, day: dt.date) -> int:
    """Completed years on `day`. Someone born on 29 February turns a year older on 1 March in a year
    without one (the day after 28 February)."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


# --- Doses ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowedDoses:
    """The doses a label allows for one session, with the label's words for them and where it says so."""

    doses_mg: tuple[int, ...]
    words: str
    source: sources.Citation


def allowed_doses(label: str, *, age: int, first_dose: bool) -> AllowedDoses:
    """The doses (mg) `label` allows for a session: day 1 (the course's first esketamine dose) or a later
    one, for a patient of `age` on the dose's date. The US label has one schedule for all adults; the
    EU/UK label starts lower from 65."""
    if label == EsketamineLabel.US_PI:
        if first_dose:
            return AllowedDoses((56,), "day 1 starting dose: 56 mg (84 mg only after it)", SOURCE_US_DOSING)
        return AllowedDoses((56, 84), "subsequent doses: 56 mg or 84 mg", SOURCE_US_DOSING)
    if age >= OLDER_ADULT_AGE:
        if first_dose:
            return AllowedDoses(
                (28,), "adults 65 years and older, day 1 starting dose: 28 mg", SOURCE_EU_65_AND_OVER
            )
        return AllowedDoses(
            (28, 56, 84),
            "adults 65 years and older, subsequent doses: 28 mg, 56 mg or 84 mg",
            SOURCE_EU_65_AND_OVER,
        )
    if first_dose:
        return AllowedDoses((56,), "adults under 65 years, day 1 starting dose: 56 mg", SOURCE_EU_UNDER_65)
    return AllowedDoses(
        (56, 84), "adults under 65 years, subsequent doses: 56 mg or 84 mg", SOURCE_EU_UNDER_65
    )


def _mg_list(doses: Sequence[int]) -> str:
    return " or ".join(format_figure(dose, "mg") for dose in doses) + " mg"


def dose_problem(label: str, *, dose_mg: float, age: int, first_dose: bool) -> Criterion | None:
    """Why `dose_mg` is not a dose `label` allows for this session (see `allowed_doses`), with the
    label's words and section; None when it is."""
    allowed = allowed_doses(label, age=age, first_dose=first_dose)
    if dose_mg in allowed.doses_mg:
        return None
    when = "the course's first esketamine dose (day 1)" if first_dose else "a dose after day 1"
    if label == EsketamineLabel.EU_UK_SMPC:
        when += f" at age {age}"
    return Criterion(
        "label_dose_not_allowed",
        f"{format_measurement(dose_mg, 'mg')} is not a dose {LABEL_TITLE[EsketamineLabel(label)]} "
        f"gives for {when} "
        f'("{allowed.words}"): enter {_mg_list(allowed.doses_mg)}.',
        allowed.source,
    )


# --- Frequency ------------------------------------------------------------------------------------------


def course_week(day_one: dt.date, day: dt.date) -> int:
    """The course week `day` falls in, counted from day 1 (days 1-7 are week 1). A day before day 1 is
    in week 0 or earlier: the caller takes day 1 as the earliest day of the course, so none is."""
    return (day - day_one).days // 7 + 1


def week_limit(week: int) -> int:
    """How many doses or bookings a course week allows: twice a week in induction (weeks 1-4), once a
    week from maintenance (week 5) on."""
    return INDUCTION_DOSES_PER_WEEK if week <= INDUCTION_WEEKS else MAINTENANCE_DOSES_PER_WEEK


def _frequency_words(week: int) -> str:
    if week <= INDUCTION_WEEKS:
        return "induction phase, weeks 1 to 4: twice a week"
    if week <= INDUCTION_WEEKS + WEEKLY_MAINTENANCE_WEEKS:
        return "maintenance phase, weeks 5 to 8: once a week"
    return "maintenance phase, week 9 and after: every 2 weeks or once a week"


def frequency_problem(
    label: str, *, day_one: dt.date, days: Iterable[dt.date], new_day: dt.date, every_week: bool = False
) -> Criterion | None:
    """Why the course, with `new_day` among its `days` (each a dose given or a live booking, in the
    clinic's zone), holds more in a week than `label` allows; None when it does not.

    Only the week of `new_day` is judged, unless `every_week`: when the new day moves day 1 (a booking
    before every other, before any dose), every week is counted afresh from the new day 1."""
    counts = Counter(course_week(day_one, day) for day in days)
    weeks = sorted(counts) if every_week else [course_week(day_one, new_day)]
    for week in weeks:
        limit = week_limit(week)
        if counts[week] > limit:
            start = day_one + dt.timedelta(days=7 * (week - 1))
            end = start + dt.timedelta(days=6)
            return Criterion(
                "label_frequency",
                f"Week {week} of the esketamine course ({start:%a %-d %b} to {end:%a %-d %b}, day 1 "
                f"{day_one:%a %-d %b}) would hold {counts[week]} doses or bookings; "
                f'{LABEL_TITLE[EsketamineLabel(label)]} allows {limit} ("{_frequency_words(week)}"): '
                "choose a day in another week, or cancel a session of that week first.",
                LABEL_DOSING_SOURCE[EsketamineLabel(label)],
            )
    return None


# --- Duties ---------------------------------------------------------------------------------------------


def monitoring_form_required(label: str) -> bool:
    """Whether an esketamine session opened under `label` owes the REMS Patient Monitoring Form (and its
    7-day filing); otherwise it owes the Readiness to Leave checklist before discharge."""
    return label == EsketamineLabel.US_PI


def rems_enrolment_required(label: str) -> bool:
    """Whether `label` asks for the patient's REMS enrolment before an esketamine session is booked."""
    return label == EsketamineLabel.US_PI


@dataclass(frozen=True)
class LeaveItem:
    code: str
    text: str
    source: sources.Citation


LEAVE_CHECKLIST: tuple[LeaveItem, ...] = (
    LeaveItem(
        "blood_pressure",
        "Blood pressure reassessed after the dose and at an acceptable level",
        SOURCE_LEAVE_BLOOD_PRESSURE,
    ),
    LeaveItem(
        "clinically_stable",
        "No longer sedated or dissociated, and clinically stable",
        SOURCE_LEAVE_STABLE,
    ),
    LeaveItem(
        "no_driving",
        "Told not to drive or use machinery until the next day, after a restful sleep",
        SOURCE_LEAVE_DRIVING,
    ),
    LeaveItem(
        "way_home",
        "Has a way home that is not driving themselves",
        SOURCE_LEAVE_DRIVING,
    ),
)
LEAVE_CHECKLIST_CODES = tuple(item.code for item in LEAVE_CHECKLIST)


def leave_checklist_missing(confirmed: Iterable[str]) -> list[LeaveItem]:
    """The Readiness to Leave items not confirmed yet, in checklist order."""
    done = set(confirmed)
    return [item for item in LEAVE_CHECKLIST if item.code not in done]


def leave_checklist_problem(confirmed: Iterable[str]) -> Criterion | None:
    """Discharge of a session under the EU/UK label waits for the whole checklist: what is missing,
    by name; None when every item is confirmed."""
    missing = leave_checklist_missing(confirmed)
    if not missing:
        return None
    return Criterion(
        "leave_checklist_incomplete",
        "Complete the Readiness to Leave checklist before discharge; still to confirm: "
        + "; ".join(item.text for item in missing)
        + ".",
        SOURCE_LEAVE_CHECKLIST,
    )
