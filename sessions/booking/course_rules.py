"""Course plans: how many dosing sessions a pathway's course holds, and how they are spaced.

Pure functions over plain values. A course is an agent and route, a number of sessions and one to
`MAX_PHASES` phases, each a number of course weeks (the last may run on, `weeks=None`) with at most
`per_week` sessions in each of its weeks and `min_days`-`max_days` days from one session to the next.
Course weeks are counted from day 1, the course's first session, as the esketamine label counts them
(`esketamine_rules.course_week`: days 1-7 are week 1). A session belongs to the phase of the week it
falls in; its spacing is judged by that phase.

Both courses the clinic starts from are expressible:

- **IV racemic ketamine** (off-label): a course of 6 infusions, 2 or 3 a week, over 2-3 weeks
  (Andrade 2017). One phase: 3 weeks, at most 3 a week.
- **Esketamine** (Spravato), the frequency of the label the clinic follows (`esketamine_rules`, whose
  numbers are read here, never copied): twice a week in weeks 1-4, once a week in weeks 5-8, then
  once a week or every 2 weeks. Three phases; the default course is weeks 1-8 (12 sessions).

How many days apart sessions fall ("2-3 days apart" in induction) is a convention no source gives
[unverified]: the defaults below are where a clinic's template starts, and the clinic edits them; a
refusal over spacing cites the template, a clinic setting. The slot finder reads a plan through
`sessions_wanted` and `spacing_problem`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from kaemdr import sources
from screening import rules as screening_rules
from screening.rules import Agent
from screening.rules import Route
from sessions.booking import esketamine_rules
from sessions.booking.rules import Criterion
from sessions.booking.rules import EsketamineLabel

MIN_SESSIONS = 1
MAX_SESSIONS = 52
"""A course holds 1 to 52 sessions (a year of weekly maintenance at most, planned at once)."""
MAX_PHASES = 4
MAX_PHASE_WEEKS = 52
MAX_PER_WEEK = 7
MIN_DAYS_APART = 1
MAX_DAYS_APART = 28
"""Days from one session to the next: at least the next day, at most four weeks."""

SOURCE_SPACING = sources.clinic_setting("Course templates: days between sessions")
SOURCE_PHASES = sources.clinic_setting("Course templates: phases, weeks and sessions a week")
SOURCE_IV_RACEMIC = sources.ANDRADE_2017_DOSE.at(
    "frequency and duration: infusions 2 or 3 times a week, a course of 6 over 2 to 3 weeks"
)
SOURCE_ROUTE = sources.SPRAVATO_US_PI.at("section 2, dosage and administration: for nasal use only") + (
    sources.ANDRADE_2017_DOSE.at("routes of racemic ketamine")
)

sources.register(
    {
        "course_spacing_too_close": SOURCE_SPACING,
        "course_spacing_too_far": SOURCE_SPACING,
        "course_week_full": SOURCE_PHASES,
        "course_past_phases": SOURCE_PHASES,
        "course_phase_unreachable": SOURCE_PHASES,
        "course_sessions_beyond_phases": SOURCE_PHASES,
        "course_route_mismatch": SOURCE_ROUTE,
    }
)


@dataclass(frozen=True)
class Phase:
    """A stretch of the course: `weeks` course weeks (None: until the course ends, the last phase
    only), at most `per_week` sessions in each of them, each `min_days` to `max_days` days after the
    session before it."""

    weeks: int | None
    per_week: int
    min_days: int
    max_days: int

    def as_dict(self) -> dict[str, int | None]:
        return {
            "weeks": self.weeks,
            "per_week": self.per_week,
            "min_days": self.min_days,
            "max_days": self.max_days,
        }

    @classmethod
    def from_dict(cls, value: dict[str, object]) -> Phase:
        """The phase a stored or posted dict describes (see `phases_from_data` for checking one)."""
        weeks = value.get("weeks")
        return cls(
            weeks=None if weeks in (None, "") else int(weeks),  # type: ignore[call-overload]
            per_week=int(value["per_week"]),  # type: ignore[call-overload]
            min_days=int(value["min_days"]),  # type: ignore[call-overload]
            max_days=int(value["max_days"]),  # type: ignore[call-overload]
        )


@dataclass(frozen=True)
class CourseShape:
    """A course as the rules read it: from a clinic's template or a pathway's plan."""

    agent: str
    route: str
    sessions: int
    phases: tuple[Phase, ...]


def phases_as_data(phases: Sequence[Phase]) -> list[dict[str, int | None]]:
    """How phases are stored (the models' JSON) and answered (the API)."""
    return [phase.as_dict() for phase in phases]


def phases_from_data(data: object) -> tuple[Phase, ...]:
    """The phases of stored JSON. Raises ValueError on a shape that is not a list of phase dicts
    (the services check the values with `shape_problems`)."""
    if not isinstance(data, list):
        raise ValueError("Phases are a list.")
    try:
        return tuple(Phase.from_dict(item) for item in data)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError("Each phase has weeks, per_week, min_days and max_days.") from error


# --- Defaults -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaultTemplate:
    """A course a clinic may adopt as its template, with where its numbers come from."""

    code: str
    name: str
    shape: CourseShape
    source: sources.Citation


INDUCTION_DAYS = (2, 4)
WEEKLY_DAYS = (6, 8)
ONGOING_DAYS = (6, 14)
IV_RACEMIC_DAYS = (2, 4)
"""Days apart in the defaults [unverified: a convention, "2-3 days apart"]: the template's, which the
clinic edits. Twice a week within fixed course weeks needs up to 4 days between two sessions (Monday and
Thursday, then Monday); "every 2 weeks or once a week" is 6 to 14."""

IV_RACEMIC_SESSIONS = 6
IV_RACEMIC_WEEKS = 3
IV_RACEMIC_PER_WEEK = 3


def esketamine_default_shape() -> CourseShape:
    """The label's frequency as a course (both labels agree on it): weeks 1-4 twice a week, weeks 5-8
    once a week, then once a week or every 2 weeks; weeks 1-8 planned."""
    induction = esketamine_rules.INDUCTION_WEEKS
    weekly = esketamine_rules.WEEKLY_MAINTENANCE_WEEKS
    twice, once = esketamine_rules.INDUCTION_DOSES_PER_WEEK, esketamine_rules.MAINTENANCE_DOSES_PER_WEEK
    return CourseShape(
        agent=Agent.ESKETAMINE,
        route=Route.INTRANASAL,
        sessions=induction * twice + weekly * once,
        phases=(
            Phase(induction, twice, *INDUCTION_DAYS),
            Phase(weekly, once, *WEEKLY_DAYS),
            Phase(None, once, *ONGOING_DAYS),
        ),
    )


def default_templates(label: str) -> tuple[DefaultTemplate, ...]:
    """The sourced courses a clinic following esketamine `label` starts from."""
    return (
        DefaultTemplate(
            "iv_racemic",
            "IV racemic ketamine: 6 infusions over 3 weeks",
            CourseShape(
                agent=Agent.RACEMIC_KETAMINE,
                route=Route.IV,
                sessions=IV_RACEMIC_SESSIONS,
                phases=(Phase(IV_RACEMIC_WEEKS, IV_RACEMIC_PER_WEEK, *IV_RACEMIC_DAYS),),
            ),
            SOURCE_IV_RACEMIC + SOURCE_SPACING,
        ),
        DefaultTemplate(
            "esketamine_label",
            "Esketamine: induction and weekly maintenance (weeks 1-8)",
            esketamine_default_shape(),
            esketamine_rules.LABEL_DOSING_SOURCE[EsketamineLabel(label)] + SOURCE_SPACING,
        ),
    )


def default_template(label: str, code: str) -> DefaultTemplate | None:
    return next((item for item in default_templates(label) if item.code == code), None)


# --- Weeks and phases ---------------------------------------------------------------------------------


def phase_bounds(phases: Sequence[Phase]) -> list[tuple[int, int | None]]:
    """The first and last course week of each phase (None: runs on)."""
    bounds: list[tuple[int, int | None]] = []
    start = 1
    for phase in phases:
        end = None if phase.weeks is None else start + phase.weeks - 1
        bounds.append((start, end))
        if end is None:
            break
        start = end + 1
    return bounds


def phase_index_for_week(phases: Sequence[Phase], week: int) -> int | None:
    """The index of the phase course week `week` falls in, or None after the last (finite) phase."""
    for index, (start, end) in enumerate(phase_bounds(phases)):
        if week >= start and (end is None or week <= end):
            return index
    return None


def _weeks_words(start: int, end: int | None) -> str:
    if end is None:
        return f"from week {start}"
    return f"week {start}" if start == end else f"weeks {start} to {end}"


def _per_week_words(count: int) -> str:
    return {1: "once a week", 2: "twice a week"}.get(count, f"up to {count} a week")


def describe_phase(phase: Phase, start: int, end: int | None) -> str:
    return (
        f"{_weeks_words(start, end)}: {_per_week_words(phase.per_week)}, "
        f"{phase.min_days} to {phase.max_days} days apart"
    )


def describe(shape: CourseShape) -> str:
    """The course in plain words: "6 sessions. Weeks 1 to 3: up to 3 a week, 2 to 4 days apart."."""
    count = f"{shape.sessions} session{'s' if shape.sessions != 1 else ''}"
    parts = [
        describe_phase(phase, start, end)
        for phase, (start, end) in zip(shape.phases, phase_bounds(shape.phases), strict=False)
    ]
    pattern = "; ".join(parts)
    return f"{count}. {pattern[:1].upper()}{pattern[1:]}." if pattern else f"{count}."


def sessions_wanted(plan: CourseShape) -> int:
    """How many sessions the course books in all (done, booked and still to book)."""
    return plan.sessions


# --- Checking a course -------------------------------------------------------------------------------


def _bounded(value: int, low: int, high: int) -> bool:
    return isinstance(value, int) and low <= value <= high


def smallest_even_gap(per_week: int) -> int:
    """The fewest days apart that sessions at one fixed spacing can keep and still hold at most
    `per_week` in any 7 days: 7 for once a week, 4 for twice, 3 for three times, then 2 and 1."""
    gap = 1
    while -(-7 // gap) > per_week:
        gap += 1
    return gap


def shape_problems(shape: CourseShape, *, label: str) -> list[tuple[str, Criterion]]:
    """Everything wrong with a course, each with the field it names ("sessions", "route",
    "phase_2_max_days"...), or nothing. Bounds (input checks): 1-52 sessions, 1-4 phases, each of
    1-52 weeks (only the last may run on), 1-7 a week, 1-28 days apart, the least no more than the most.
    Rules: the route goes with the agent; each phase can keep its own numbers (its sessions a week fit
    in a week at its least spacing, and a fixed spacing within its range keeps to its sessions a week);
    a course whose last phase ends holds no more sessions than its phases can; an esketamine course
    holds no more a week than `label`'s frequency allows in any week (`esketamine_rules.week_limit`)."""
    problems: list[tuple[str, Criterion]] = []
    if not _bounded(shape.sessions, MIN_SESSIONS, MAX_SESSIONS):
        problems.append(
            (
                "sessions",
                Criterion(
                    "out_of_range",
                    f"Enter {MIN_SESSIONS} to {MAX_SESSIONS} sessions.",
                    SOURCE_PHASES,
                ),
            )
        )
    route_error = screening_rules.route_error(shape.agent, shape.route)
    if route_error:
        problems.append(
            (
                "route",
                Criterion(
                    "course_route_mismatch", f"{route_error} Choose a route that goes with it.", SOURCE_ROUTE
                ),
            )
        )
    if not 1 <= len(shape.phases) <= MAX_PHASES:
        problems.append(
            (
                "phases",
                Criterion("out_of_range", f"Give 1 to {MAX_PHASES} phases.", SOURCE_PHASES),
            )
        )
        return problems
    last = len(shape.phases) - 1
    for index, phase in enumerate(shape.phases):
        problems += _phase_problems(phase, index, is_last=index == last)
    if problems:
        return problems
    capacity = _capacity(shape.phases)
    if capacity is not None and shape.sessions > capacity:
        problems.append(
            (
                "sessions",
                Criterion(
                    "course_sessions_beyond_phases",
                    f"The phases hold at most {capacity} sessions ({describe_weeks(shape.phases)}): plan "
                    f"{capacity} or fewer, or lengthen a phase, or leave the last phase's weeks empty so it "
                    "runs on.",
                    SOURCE_PHASES,
                ),
            )
        )
    if shape.agent == Agent.ESKETAMINE:
        found = label_frequency_problem(shape.phases, label=label)
        if found is not None:
            problems.append(found)
    return problems


def describe_weeks(phases: Sequence[Phase]) -> str:
    return "; ".join(
        f"{_weeks_words(start, end)} {_per_week_words(phase.per_week)}"
        for phase, (start, end) in zip(phases, phase_bounds(phases), strict=False)
    )


def _capacity(phases: Sequence[Phase]) -> int | None:
    """The most sessions the phases hold, or None when the last runs on."""
    if phases and phases[-1].weeks is None:
        return None
    return sum((phase.weeks or 0) * phase.per_week for phase in phases)


def _phase_problems(phase: Phase, index: int, *, is_last: bool) -> list[tuple[str, Criterion]]:
    number = index + 1
    prefix = f"phase_{number}_"
    found: list[tuple[str, Criterion]] = []

    def bound(field: str, value: int, low: int, high: int, what: str) -> None:
        if not _bounded(value, low, high):
            found.append(
                (
                    prefix + field,
                    Criterion(
                        "out_of_range", f"Phase {number}: enter {low} to {high} {what}.", SOURCE_PHASES
                    ),
                )
            )

    if phase.weeks is None:
        if not is_last:
            found.append(
                (
                    prefix + "weeks",
                    Criterion(
                        "required",
                        f"Phase {number}: enter its weeks (only the last phase may run on).",
                        SOURCE_PHASES,
                    ),
                )
            )
    else:
        bound("weeks", phase.weeks, 1, MAX_PHASE_WEEKS, "weeks")
    bound("per_week", phase.per_week, 1, MAX_PER_WEEK, "sessions a week")
    bound("min_days", phase.min_days, MIN_DAYS_APART, MAX_DAYS_APART, "days apart at least")
    bound("max_days", phase.max_days, MIN_DAYS_APART, MAX_DAYS_APART, "days apart at most")
    if found:
        return found
    if phase.min_days > phase.max_days:
        found.append(
            (
                prefix + "max_days",
                Criterion(
                    "order",
                    f"Phase {number}: the most days apart must be at least the least ({phase.min_days}).",
                    SOURCE_SPACING,
                ),
            )
        )
    elif (phase.per_week - 1) * phase.min_days > 6:
        found.append(
            (
                prefix + "per_week",
                Criterion(
                    "course_phase_unreachable",
                    f"Phase {number}: {phase.per_week} sessions at least {phase.min_days} days apart do not "
                    f"fit in a week: lower the sessions a week to "
                    f"{6 // phase.min_days + 1}, or the least days apart.",
                    SOURCE_PHASES,
                ),
            )
        )
    elif phase.max_days < smallest_even_gap(phase.per_week):
        gap = smallest_even_gap(phase.per_week)
        found.append(
            (
                prefix + "max_days",
                Criterion(
                    "course_phase_unreachable",
                    f"Phase {number}: sessions at most {phase.max_days} days apart cannot keep to "
                    f"{_per_week_words(phase.per_week)} week after week: allow at least {gap} days apart at "
                    "most, or more sessions a week.",
                    SOURCE_PHASES,
                ),
            )
        )
    return found


def label_frequency_problem(phases: Sequence[Phase], *, label: str) -> tuple[str, Criterion] | None:
    """The first phase of an esketamine course that allows more sessions in one of its weeks than the
    label's frequency (`esketamine_rules.week_limit`), with the field it names; None when none does.
    A phase that runs on is judged up to the first week whose limit holds from then on."""
    settled = esketamine_rules.INDUCTION_WEEKS + 1  # from here the label's limit no longer changes
    for index, (phase, (start, end)) in enumerate(zip(phases, phase_bounds(phases), strict=False)):
        last = end if end is not None else max(start, settled)
        for week in range(start, last + 1):
            limit = esketamine_rules.week_limit(week)
            if phase.per_week > limit:
                title = esketamine_rules.LABEL_TITLE[EsketamineLabel(label)]
                return (
                    f"phase_{index + 1}_per_week",
                    Criterion(
                        "label_frequency",
                        f"Phase {index + 1} ({_weeks_words(start, end)}) allows {phase.per_week} esketamine "
                        f"sessions a week; {title} allows {limit} in week {week} (twice a week in weeks 1 "
                        f"to {esketamine_rules.INDUCTION_WEEKS}, once a week after): lower its sessions a "
                        "week, or end the phase earlier.",
                        esketamine_rules.LABEL_DOSING_SOURCE[EsketamineLabel(label)],
                    ),
                )
    return None


# --- Spacing of booked days ---------------------------------------------------------------------------


def spacing_problem(
    previous: dt.date | None, proposed: dt.date, plan: CourseShape, *, day_one: dt.date | None = None
) -> Criterion | None:
    """Why a session on `proposed` does not keep the course's spacing after the one on `previous`
    (None: it is the first), in the clinic's zone; None when it does. `day_one` is the course's first
    session (its weeks are counted from it; `previous` when left out, which suits a course's second
    session only). The phase of the week `proposed` falls in sets the spacing; a day after the
    course's last phase is refused."""
    if previous is None:
        return None
    first = day_one or previous
    week = esketamine_rules.course_week(first, proposed)
    index = phase_index_for_week(plan.phases, week)
    if index is None:
        return Criterion(
            "course_past_phases",
            f"{proposed:%a %-d %b} falls in week {week} of the course (day 1 {first:%a %-d %b}), after its "
            f"last phase ({describe_weeks(plan.phases)}): choose an earlier day, or change the course.",
            SOURCE_PHASES,
        )
    phase = plan.phases[index]
    gap = (proposed - previous).days
    start, end = phase_bounds(plan.phases)[index]
    where = f"in {_weeks_words(start, end)}"
    if gap < phase.min_days:
        earliest = previous + dt.timedelta(days=phase.min_days)
        return Criterion(
            "course_spacing_too_close",
            f"{proposed:%a %-d %b} is {gap} day{'s' if gap != 1 else ''} after the session before "
            f"({previous:%a %-d %b}); the course keeps sessions at least {phase.min_days} days apart "
            f"{where}: choose {earliest:%a %-d %b} or later.",
            SOURCE_SPACING,
        )
    if gap > phase.max_days:
        latest = previous + dt.timedelta(days=phase.max_days)
        return Criterion(
            "course_spacing_too_far",
            f"{proposed:%a %-d %b} is {gap} days after the session before ({previous:%a %-d %b}); the course "
            f"keeps sessions at most {phase.max_days} days apart {where}: choose {latest:%a %-d %b} or "
            "earlier.",
            SOURCE_SPACING,
        )
    return None


def week_problem(
    days: Sequence[dt.date], proposed: dt.date, plan: CourseShape, *, day_one: dt.date
) -> Criterion | None:
    """Why the course week of `proposed` would hold more sessions than its phase allows, counting
    `days` (the course's other sessions); None when it would not."""
    week = esketamine_rules.course_week(day_one, proposed)
    index = phase_index_for_week(plan.phases, week)
    if index is None:
        return None  # `spacing_problem` answers a day after the last phase
    held = 1 + sum(1 for day in days if esketamine_rules.course_week(day_one, day) == week)
    limit = plan.phases[index].per_week
    if held <= limit:
        return None
    start = day_one + dt.timedelta(days=7 * (week - 1))
    return Criterion(
        "course_week_full",
        f"Week {week} of the course ({start:%a %-d %b} to {start + dt.timedelta(days=6):%a %-d %b}) would "
        f"hold {held} sessions; the course allows {_per_week_words(limit)} then: choose a day in another "
        "week.",
        SOURCE_PHASES,
    )


def schedule_problems(days: Sequence[dt.date], plan: CourseShape) -> list[Criterion]:
    """Everything wrong with a whole schedule (the days of a course's sessions, any order): more days
    than sessions, spacing, weeks over their phase's count. Day 1 is the earliest day."""
    ordered = sorted(days)
    found: list[Criterion] = []
    if len(ordered) > plan.sessions:
        found.append(
            Criterion(
                "course_sessions_beyond_phases",
                f"{len(ordered)} sessions for a course of {plan.sessions}: cancel one, or change the course.",
                SOURCE_PHASES,
            )
        )
    if not ordered:
        return found
    day_one = ordered[0]
    counts = Counter(esketamine_rules.course_week(day_one, day) for day in ordered)
    for previous, day in itertools.pairwise(ordered):
        problem = spacing_problem(previous, day, plan, day_one=day_one)
        if problem is not None:
            found.append(problem)
    for week, held in sorted(counts.items()):
        index = phase_index_for_week(plan.phases, week)
        if index is not None and held > plan.phases[index].per_week:
            day = next(day for day in ordered if esketamine_rules.course_week(day_one, day) == week)
            others = [other for other in ordered if other != day]
            problem = week_problem(others, day, plan, day_one=day_one)
            if problem is not None:
                found.append(problem)
    return found


def _fits(
    days: list[dt.date], counts: Counter[int], day: dt.date, plan: CourseShape, day_one: dt.date
) -> bool:
    week = esketamine_rules.course_week(day_one, day)
    index = phase_index_for_week(plan.phases, week)
    if index is None or counts[week] >= plan.phases[index].per_week:
        return False
    return spacing_problem(days[-1] if days else None, day, plan, day_one=day_one) is None


def earliest_days(plan: CourseShape, day_one: dt.date) -> list[dt.date]:
    """The earliest days a course starting on `day_one` can keep, each session as early as its spacing
    and its week allow while leaving a day for the next one (a session on a day from which no next day
    fits is passed over, when another day fits). Shorter than `plan.sessions` only when the phases end
    first. For the slot finder's first guess and the tests."""
    days: list[dt.date] = [day_one]
    counts: Counter[int] = Counter({1: 1})
    while len(days) < plan.sessions:
        previous = days[-1]
        candidates = [previous + dt.timedelta(days=step) for step in range(1, MAX_DAYS_APART + 1)]
        fitting = [day for day in candidates if _fits(days, counts, day, plan, day_one)]
        if not fitting:
            break
        chosen = fitting[0]
        if len(days) + 1 < plan.sessions:
            for day in fitting:
                week = esketamine_rules.course_week(day_one, day)
                after = [*days, day]
                counted = counts + Counter({week: 1})
                if any(
                    _fits(after, counted, day + dt.timedelta(days=step), plan, day_one)
                    for step in range(1, MAX_DAYS_APART + 1)
                ):
                    chosen = day
                    break
        days.append(chosen)
        counts[esketamine_rules.course_week(day_one, chosen)] += 1
    return days


# --- Progress -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CourseProgress:
    """Where a course stands: sessions done (signed records), booked (live bookings not yet done),
    still to book; `beyond` counts sessions done or booked past the planned number."""

    planned: int
    done: int
    booked: int

    @property
    def to_book(self) -> int:
        return max(0, self.planned - self.done - self.booked)

    @property
    def beyond(self) -> int:
        return max(0, self.done + self.booked - self.planned)


def progress(plan: CourseShape, *, done: int, booked: int) -> CourseProgress:
    return CourseProgress(planned=sessions_wanted(plan), done=done, booked=booked)
