"""Screening rules: the catalogues, the scoring of each outcome measure, and the eligibility proposal.

Pure functions over plain values, no database. Every fact carries its source, as gathered in
`shared/domain.md` (sections 1 and 2), so that each reason the proposal gives can be traced to the
rule that fired and where that rule comes from. What varies by clinic (blood-pressure thresholds,
how long a screening stays current, which precautions need a second signature) is passed in, never
hard-coded here.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

# --- Agents and routes ---------------------------------------------------------------------------


class Agent(enum.StrEnum):
    RACEMIC_KETAMINE = "ketamine"
    ESKETAMINE = "esketamine"


class Route(enum.StrEnum):
    IV = "iv"
    IM = "im"
    SUBLINGUAL = "sublingual"
    ORAL = "oral"
    INTRANASAL = "intranasal"


AGENT_LABELS = {Agent.RACEMIC_KETAMINE: "Racemic ketamine", Agent.ESKETAMINE: "Esketamine (Spravato)"}
ROUTE_LABELS = {
    Route.IV: "Intravenous",
    Route.IM: "Intramuscular",
    Route.SUBLINGUAL: "Sublingual",
    Route.ORAL: "Oral",
    Route.INTRANASAL: "Nasal spray",
}
AGENT_ROUTES: dict[str, frozenset[str]] = {
    Agent.RACEMIC_KETAMINE: frozenset({Route.IV, Route.IM, Route.SUBLINGUAL, Route.ORAL}),
    Agent.ESKETAMINE: frozenset({Route.INTRANASAL}),
}


def route_error(agent: str | None, route: str | None) -> str | None:
    """Why `route` does not go with `agent`, or None. Esketamine is a nasal spray; racemic ketamine is not."""
    if not agent or not route:
        return None
    if route not in AGENT_ROUTES.get(agent, frozenset()):
        return f"{AGENT_LABELS[Agent(agent)]} is not given by the {ROUTE_LABELS[Route(route)].lower()} route."
    return None


# --- Reasons ---------------------------------------------------------------------------------------


class ReasonKind(enum.StrEnum):
    BLOCKER = "blocker"
    PRECAUTION = "precaution"


@dataclass(frozen=True)
class Reason:
    """One finding of the rules: which rule fired, what it means, and its source."""

    rule: str
    kind: ReasonKind
    text: str
    source: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "kind": str(self.kind), "text": self.text, "source": self.source}


# --- Contraindication catalogue (domain.md 1.1-1.2) ---------------------------------------------------

LABEL = "Spravato prescribing information (domain.md 1.1)"
PHASE3 = "Spravato phase-3 exclusions, J&J Medical Connect (domain.md 1.1)"
PSYON = "Psyon clinic exclusion criteria, psyon.cz (domain.md 1.2)"
INTAKE = "Ketamine intake triage, intake.icu (domain.md 1.2)"
APA = "APA consensus, Sanacora et al. 2017, JAMA Psychiatry (domain.md 1.2)"


class Severity(enum.StrEnum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"


@dataclass(frozen=True)
class Condition:
    code: str
    label: str
    severity: Severity
    explanation: str
    source: str


CONDITIONS: tuple[Condition, ...] = (
    Condition(
        "aneurysmal_vascular_disease",
        "Aneurysmal vascular disease (aorta, intracranial or peripheral arteries) or arteriovenous malformation",
        Severity.ABSOLUTE,
        "Ketamine raises blood pressure; the label contraindicates it with aneurysmal disease or an AV malformation.",
        LABEL,
    ),
    Condition(
        "intracerebral_haemorrhage",
        "History of intracerebral haemorrhage",
        Severity.ABSOLUTE,
        "Contraindicated by the label: a blood-pressure rise risks another bleed.",
        LABEL,
    ),
    Condition(
        "ketamine_hypersensitivity",
        "Hypersensitivity to esketamine, ketamine or an excipient",
        Severity.ABSOLUTE,
        "Contraindicated by the label.",
        LABEL,
    ),
    Condition(
        "psychosis_history",
        "Psychotic disorder, current or past",
        Severity.RELATIVE,
        "Ketamine can worsen psychosis: treat only if the benefit outweighs the risk; many clinics exclude it.",
        f"{LABEL}; {PSYON}; {APA}",
    ),
    Condition(
        "psychosis_first_degree_relative",
        "Psychosis in a first-degree relative",
        Severity.RELATIVE,
        "A family history of psychosis raises the risk of a psychotic reaction.",
        PSYON,
    ),
    Condition(
        "pregnancy_or_breastfeeding",
        "Pregnant, planning pregnancy, or breastfeeding",
        Severity.RELATIVE,
        "The label warns of fetal harm and advises against breastfeeding; clinic consent forms exclude pregnancy.",
        f"{LABEL}; clinic consent form (domain.md 1.2)",
    ),
    Condition(
        "substance_use_history",
        "History of substance use disorder or alcohol misuse",
        Severity.RELATIVE,
        "Ketamine is a Schedule III drug with abuse potential: assess the risk and monitor.",
        f"{LABEL}; {APA}",
    ),
    Condition(
        "active_substance_use",
        "Active substance use disorder (abstinent less than a year)",
        Severity.RELATIVE,
        "Active addiction is an exclusion in clinic protocols unless abstinent for at least a year.",
        f"{PSYON}; {INTAKE}",
    ),
    Condition(
        "uncontrolled_hypertension",
        "Uncontrolled hypertension",
        Severity.RELATIVE,
        "Blood pressure peaks about 40 minutes after dosing and lasts about 4 hours; control it first.",
        f"{LABEL}; {INTAKE}",
    ),
    Condition(
        "hypertensive_crisis_history",
        "History of hypertensive crisis",
        Severity.RELATIVE,
        "Excluded from the phase-3 trials because of the pressor effect.",
        PHASE3,
    ),
    Condition(
        "hypertensive_encephalopathy",
        "Hypertensive encephalopathy",
        Severity.RELATIVE,
        "Excluded from the phase-3 trials because of the pressor effect.",
        PHASE3,
    ),
    Condition(
        "raised_intracranial_pressure",
        "Raised intracranial pressure",
        Severity.RELATIVE,
        "Do not give where a rise in blood or intracranial pressure is a serious risk.",
        LABEL,
    ),
    Condition(
        "raised_intraocular_pressure",
        "Raised intraocular pressure or untreated glaucoma",
        Severity.RELATIVE,
        "Excluded from the phase-3 trials.",
        PHASE3,
    ),
    Condition(
        "recent_cardiovascular_event",
        "Myocardial infarction, unstable angina or revascularisation in the last 12 months",
        Severity.RELATIVE,
        "Excluded from the phase-3 trials; the blood-pressure rise strains the heart.",
        PHASE3,
    ),
    Condition(
        "stroke_or_tia",
        "Stroke or transient ischaemic attack",
        Severity.RELATIVE,
        "Excluded from the phase-3 trials.",
        PHASE3,
    ),
    Condition(
        "brain_injury",
        "Brain injury",
        Severity.RELATIVE,
        "Excluded from the phase-3 trials.",
        PHASE3,
    ),
    Condition(
        "significant_ecg_abnormality",
        "Significant ECG abnormality",
        Severity.RELATIVE,
        "Excluded from the phase-3 trials; review cardiac risk before dosing.",
        PHASE3,
    ),
    Condition(
        "ischaemic_heart_disease",
        "Ischaemic heart disease",
        Severity.RELATIVE,
        "Listed by some intake protocols (weak source): review cardiac risk.",
        "droracle.ai 788538 [weak] (domain.md 1.2)",
    ),
    Condition(
        "cerebrovascular_disease",
        "Cerebrovascular disease",
        Severity.RELATIVE,
        "Listed by some intake protocols (weak source): review cerebrovascular risk.",
        "droracle.ai 788538 [weak] (domain.md 1.2)",
    ),
    Condition(
        "severe_personality_disorder",
        "Severe personality disorder",
        Severity.RELATIVE,
        "An exclusion in some clinic protocols.",
        PSYON,
    ),
)
CONDITIONS_BY_CODE: dict[str, Condition] = {condition.code: condition for condition in CONDITIONS}

# Relative contraindications that, by default, need a second prescriber's signature (a clinic setting).
DEFAULT_SECOND_SIGNATURE_CODES: tuple[str, ...] = (
    "psychosis_history",
    "pregnancy_or_breastfeeding",
    "active_substance_use",
)

# --- Medication classes and interactions (domain.md 1.3) -------------------------------------------

ANDRADE = "Andrade 2017, J Clin Psychiatry 78(7) (domain.md 1.3)"
VERAART = "Veraart et al. 2021 review (domain.md 1.3)"
PMF = "Spravato REMS Patient Monitoring Form (domain.md 1.3)"


@dataclass(frozen=True)
class MedicationClass:
    code: str
    label: str
    interaction: str
    source: str
    rems_class: bool = False


MEDICATION_CLASSES: tuple[MedicationClass, ...] = (
    MedicationClass(
        "benzodiazepine",
        "Benzodiazepine",
        "Benzodiazepines may blunt and shorten ketamine's antidepressant effect, and add sedation.",
        f"{ANDRADE}; {VERAART}; {PMF}",
        rems_class=True,
    ),
    MedicationClass(
        "sedative_hypnotic",
        "Non-benzodiazepine sedative hypnotic (e.g. zolpidem)",
        "Adds to sedation; asked on the REMS monitoring form.",
        PMF,
        rems_class=True,
    ),
    MedicationClass(
        "psychostimulant",
        "Psychostimulant",
        "Can add to the rise in blood pressure; asked on the REMS monitoring form.",
        PMF,
        rems_class=True,
    ),
    MedicationClass(
        "maoi",
        "Monoamine oxidase inhibitor (MAOI)",
        "Watch blood pressure; some protocols require stopping it four half-lives before dosing.",
        f"{PMF}; {PSYON}; {VERAART}",
        rems_class=True,
    ),
    MedicationClass(
        "opioid",
        "Opioid (including tramadol)",
        "Adds to sedation and respiratory depression; no opioids for 4 hours after dosing.",
        f"REMS monitoring form video (opioids); {PSYON}; nervanamedical.com discharge rules (domain.md 1.3)",
        rems_class=True,
    ),
    MedicationClass(
        "lamotrigine",
        "Lamotrigine",
        "May reduce ketamine's side effects and probably attenuates its effect.",
        f"{ANDRADE}; {VERAART}",
    ),
    MedicationClass(
        "cyp3a4_inducer",
        "CYP3A4 inducer (e.g. carbamazepine, rifampicin, St John's wort)",
        "Lowers ketamine exposure: the dose may need adjusting.",
        ANDRADE,
    ),
    MedicationClass(
        "cyp3a4_inhibitor",
        "CYP3A4 inhibitor (e.g. clarithromycin, ketoconazole, grapefruit)",
        "Raises ketamine exposure: expect stronger and longer effects.",
        ANDRADE,
    ),
    MedicationClass(
        "cyp2b6_inducer",
        "CYP2B6 inducer (e.g. rifampicin, efavirenz)",
        "Lowers ketamine exposure: the dose may need adjusting.",
        ANDRADE,
    ),
    MedicationClass(
        "cyp2b6_inhibitor",
        "CYP2B6 inhibitor (e.g. ticlopidine, clopidogrel)",
        "Raises ketamine exposure: expect stronger and longer effects.",
        ANDRADE,
    ),
    MedicationClass(
        "antipsychotic",
        "Antipsychotic (clozapine, haloperidol, risperidone)",
        "Interactions have been reported with clozapine, haloperidol and risperidone.",
        VERAART,
    ),
    MedicationClass("antidepressant", "Antidepressant (SSRI, SNRI, TCA and others)", "", ANDRADE),
    MedicationClass("lithium", "Lithium", "", VERAART),
    MedicationClass("other", "Other", "", ""),
)
MEDICATION_CLASSES_BY_CODE: dict[str, MedicationClass] = {m.code: m for m in MEDICATION_CLASSES}


def medication_flags(classes: Iterable[str]) -> list[Reason]:
    """One precaution per interacting class among `classes`, each with its explanation and source."""
    reasons: list[Reason] = []
    for code in sorted(set(classes)):
        medication = MEDICATION_CLASSES_BY_CODE.get(code)
        if medication is not None and medication.interaction:
            reasons.append(
                Reason(
                    f"interaction.{code}",
                    ReasonKind.PRECAUTION,
                    f"{medication.label}: {medication.interaction}",
                    medication.source,
                )
            )
    return reasons


# --- Outcome measures (domain.md 2) ---------------------------------------------------------------


class Instrument(enum.StrEnum):
    PHQ9 = "phq9"
    GAD7 = "gad7"
    PCL5 = "pcl5"
    DES2 = "des2"
    CSSRS = "cssrs"


@dataclass(frozen=True)
class InstrumentSpec:
    code: Instrument
    label: str
    items: tuple[str, ...]
    minimum: int
    maximum: int
    step: int
    total_range: str
    source: str
    prompt: str


PHQ9_ITEMS = (
    "Little interest or pleasure in doing things",
    "Feeling down, depressed or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself, or that you are a failure or have let yourself or your family down",
    "Trouble concentrating on things, such as reading or watching television",
    "Moving or speaking so slowly that others could have noticed, or being so fidgety or restless that "
    "you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead, or of hurting yourself in some way",
)
GAD7_ITEMS = (
    "Feeling nervous, anxious or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid as if something awful might happen",
)
PCL5_ITEMS = (
    "Repeated, disturbing, and unwanted memories of the stressful experience",
    "Repeated, disturbing dreams of the stressful experience",
    "Suddenly feeling or acting as if the stressful experience were actually happening again",
    "Feeling very upset when something reminded you of the stressful experience",
    "Strong physical reactions when something reminded you of the stressful experience",
    "Avoiding memories, thoughts, or feelings related to the stressful experience",
    "Avoiding external reminders of the stressful experience",
    "Trouble remembering important parts of the stressful experience",
    "Strong negative beliefs about yourself, other people, or the world",
    "Blaming yourself or someone else for the stressful experience or what happened after it",
    "Strong negative feelings such as fear, horror, anger, guilt, or shame",
    "Loss of interest in activities that you used to enjoy",
    "Feeling distant or cut off from other people",
    "Trouble experiencing positive feelings",
    "Irritable behaviour, angry outbursts, or acting aggressively",
    "Taking too many risks or doing things that could cause you harm",
    "Being 'superalert' or watchful or on guard",
    "Feeling jumpy or easily startled",
    "Having difficulty concentrating",
    "Trouble falling or staying asleep",
)
DES2_ITEMS = (
    "Suddenly realising, while travelling, that you don't remember part of the trip",
    "Realising, while listening to someone, that you did not hear part of what was said",
    "Finding yourself in a place with no idea how you got there",
    "Finding yourself dressed in clothes you don't remember putting on",
    "Finding new things among your belongings that you don't remember buying",
    "Being approached by people you don't know who call you by another name",
    "Feeling as though you are standing next to yourself or watching yourself",
    "Being told that you sometimes do not recognise friends or family members",
    "Having no memory of some important events in your life",
    "Being accused of lying when you do not think you have lied",
    "Looking in a mirror and not recognising yourself",
    "Feeling that other people, objects and the world around you are not real",
    "Feeling that your body does not seem to belong to you",
    "Remembering a past event so vividly that you feel as if you were reliving it",
    "Not being sure whether things you remember happening really happened or were dreamed",
    "Being in a familiar place but finding it strange and unfamiliar",
    "Becoming so absorbed in a story on television or film that you are unaware of other events",
    "Becoming so involved in a fantasy or daydream that it feels as though it were really happening",
    "Being able to ignore pain",
    "Sitting staring off into space, thinking of nothing, and not aware of the passing of time",
    "Talking out loud to yourself when alone",
    "Acting so differently in one situation compared with another that you feel almost like two people",
    "Doing things with amazing ease and spontaneity that would usually be difficult",
    "Not being sure whether you have done something or have just thought about doing it",
    "Finding evidence that you have done things that you do not remember doing",
    "Finding writings, drawings or notes among your belongings that you must have done but don't remember",
    "Hearing voices inside your head that tell you to do things or comment on things you are doing",
    "Feeling as if you are looking at the world through a fog",
)
CSSRS_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("q1", "Wish to be dead: have you wished you were dead or wished you could go to sleep and not wake up?"),
    ("q2", "Suicidal thoughts: have you actually had any thoughts of killing yourself?"),
    ("q3", "Thoughts with method: have you been thinking about how you might do this?"),
    (
        "q4",
        "Intent without a specific plan: have you had these thoughts and had some intention of acting on them?",
    ),
    (
        "q5",
        "Intent with a plan: have you started to work out or worked out the details of how to kill yourself, "
        "and do you intend to carry out this plan?",
    ),
    (
        "q6_lifetime",
        "Behaviour, lifetime: have you ever done anything, started to do anything, or prepared to do "
        "anything to end your life?",
    ),
    ("q6_past_3_months", "Behaviour in the past 3 months?"),
)

INSTRUMENTS: dict[str, InstrumentSpec] = {
    Instrument.PHQ9: InstrumentSpec(
        Instrument.PHQ9,
        "PHQ-9 (depression)",
        PHQ9_ITEMS,
        0,
        3,
        1,
        "0-27",
        "calcipedia.org PHQ-9 (domain.md 2)",
        "Over the last 2 weeks, how often have you been bothered by: 0 not at all, 1 several days, "
        "2 more than half the days, 3 nearly every day.",
    ),
    Instrument.GAD7: InstrumentSpec(
        Instrument.GAD7,
        "GAD-7 (anxiety)",
        GAD7_ITEMS,
        0,
        3,
        1,
        "0-21",
        "scales.arabpsychology.com; mrcpsych.uk (domain.md 2)",
        "Over the last 2 weeks, how often have you been bothered by: 0 not at all, 1 several days, "
        "2 more than half the days, 3 nearly every day.",
    ),
    Instrument.PCL5: InstrumentSpec(
        Instrument.PCL5,
        "PCL-5 (PTSD)",
        PCL5_ITEMS,
        0,
        4,
        1,
        "0-80",
        "comorbidityguidelines.org.au; onlinemedicaltools.com (domain.md 2)",
        "In the past month, how much were you bothered by: 0 not at all, 1 a little bit, 2 moderately, "
        "3 quite a bit, 4 extremely.",
    ),
    Instrument.DES2: InstrumentSpec(
        Instrument.DES2,
        "DES-II (dissociation)",
        DES2_ITEMS,
        0,
        100,
        10,
        "0-100 (mean)",
        "traumadissociation.com/des.html (domain.md 2)",
        "What percentage of the time does this happen to you, from 0% to 100% in steps of 10?",
    ),
    Instrument.CSSRS: InstrumentSpec(
        Instrument.CSSRS,
        "C-SSRS screener (suicide risk)",
        tuple(text for _, text in CSSRS_QUESTIONS),
        0,
        1,
        1,
        "risk level",
        "docsbay.net triage guidelines; rula.com (domain.md 2)",
        "Yes or no for each question (past month unless stated). If question 2 is no, skip to question 6.",
    ),
}


class AnswerError(ValueError):
    """Answers that do not fit the instrument; `errors` maps an item key to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Flag:
    code: str
    text: str
    urgent: bool = False


@dataclass(frozen=True)
class MeasureScore:
    """The published score of one administration: total, band and flags."""

    instrument: Instrument
    total: float
    band: str
    band_label: str
    flags: tuple[Flag, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_urgent_flag(self) -> bool:
        return any(flag.urgent for flag in self.flags)


def _check_items(spec: InstrumentSpec, answers: Any) -> list[int]:
    if not isinstance(answers, list | tuple):
        raise AnswerError({"answers": f"Give {len(spec.items)} answers, one per item."})
    errors: dict[str, str] = {}
    values: list[int] = []
    for index in range(len(spec.items)):
        key = f"item_{index + 1}"
        value = answers[index] if index < len(answers) else None
        if value is None or value == "":
            errors[key] = "Answer this item."
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            errors[key] = "Enter a whole number."
            continue
        if not spec.minimum <= value <= spec.maximum:
            errors[key] = f"Enter a number from {spec.minimum} to {spec.maximum}."
        elif (value - spec.minimum) % spec.step:
            errors[key] = f"Enter a multiple of {spec.step}."
        values.append(value)
    if len(answers) > len(spec.items):
        errors["answers"] = f"There are {len(spec.items)} items, not {len(answers)}."
    if errors:
        raise AnswerError(errors)
    return values


def _band(total: float, bands: tuple[tuple[float, str, str], ...]) -> tuple[str, str]:
    """`bands` are (lowest total, code, label), in increasing order."""
    code, label = bands[0][1], bands[0][2]
    for lowest, band_code, band_label in bands:
        if total >= lowest:
            code, label = band_code, band_label
    return code, label


PHQ9_BANDS = (
    (0, "minimal", "Minimal"),
    (5, "mild", "Mild"),
    (10, "moderate", "Moderate"),
    (15, "moderately_severe", "Moderately severe"),
    (20, "severe", "Severe"),
)
GAD7_BANDS = (
    (0, "minimal", "Minimal"),
    (5, "mild", "Mild"),
    (10, "moderate", "Moderate"),
    (15, "severe", "Severe"),
)
PCL5_PROBABLE_PTSD = 33
PCL5_LOWER_CUT_POINT = 31
DES2_HIGH = 30.0


def score_phq9(answers: Any) -> MeasureScore:
    values = _check_items(INSTRUMENTS[Instrument.PHQ9], answers)
    total = sum(values)
    band, label = _band(total, PHQ9_BANDS)
    flags: tuple[Flag, ...] = ()
    if values[8] > 0:
        flags = (
            Flag(
                "phq9_item9",
                "PHQ-9 item 9 (thoughts of death or self-harm) answered above 0: "
                "urgent follow-up, whatever the total.",
                urgent=True,
            ),
        )
    return MeasureScore(Instrument.PHQ9, total, band, label, flags, {"item_9": values[8]})


def score_gad7(answers: Any) -> MeasureScore:
    values = _check_items(INSTRUMENTS[Instrument.GAD7], answers)
    total = sum(values)
    band, label = _band(total, GAD7_BANDS)
    flags: tuple[Flag, ...] = ()
    if total >= 10:
        flags = (Flag("gad7_evaluate", "GAD-7 of 10 or more: evaluate further for an anxiety disorder."),)
    return MeasureScore(Instrument.GAD7, total, band, label, flags)


PCL5_CLUSTERS = {"B": range(0, 5), "C": range(5, 7), "D": range(7, 14), "E": range(14, 20)}
PCL5_CLUSTER_NEEDS = {"B": 1, "C": 1, "D": 2, "E": 2}


def score_pcl5(answers: Any) -> MeasureScore:
    """Total 0-80; 31-33 is the cut-point range for probable PTSD (33 used for the band); and the
    DSM-5 provisional diagnosis: items rated 2 or more in at least 1 B, 1 C, 2 D and 2 E items."""
    values = _check_items(INSTRUMENTS[Instrument.PCL5], answers)
    total = sum(values)
    clusters = {name: sum(values[i] for i in items) for name, items in PCL5_CLUSTERS.items()}
    endorsed = {name: sum(1 for i in items if values[i] >= 2) for name, items in PCL5_CLUSTERS.items()}
    provisional = all(endorsed[name] >= needed for name, needed in PCL5_CLUSTER_NEEDS.items())
    if total >= PCL5_PROBABLE_PTSD:
        band, label = "probable_ptsd", "Probable PTSD"
    elif total >= PCL5_LOWER_CUT_POINT:
        band, label = "cut_point_range", "Within the 31-33 cut-point range"
    else:
        band, label = "below_cut_point", "Below the cut-point"
    flags: list[Flag] = []
    if provisional:
        flags.append(
            Flag("pcl5_provisional_dx", "Meets the DSM-5 symptom pattern for a provisional PTSD diagnosis.")
        )
    return MeasureScore(
        Instrument.PCL5,
        total,
        band,
        label,
        tuple(flags),
        {"clusters": clusters, "provisional_diagnosis": provisional},
    )


def score_des2(answers: Any) -> MeasureScore:
    """The mean of the 28 items (0-100). 30 or more is high: a structured interview is recommended."""
    values = _check_items(INSTRUMENTS[Instrument.DES2], answers)
    mean = round(sum(values) / len(values), 1)
    flags: tuple[Flag, ...] = ()
    if mean >= DES2_HIGH:
        band, label = "high", "High (30 or more)"
        flags = (
            Flag(
                "des2_high",
                "DES-II of 30 or more: a structured dissociation interview (DDIS or SCID-D) "
                "is recommended, and EMDR trauma processing waits for it.",
            ),
        )
    else:
        band, label = "below_30", "Below 30"
    return MeasureScore(Instrument.DES2, mean, band, label, flags)


CSSRS_KEYS = tuple(key for key, _ in CSSRS_QUESTIONS)
CSSRS_RISK_ORDER = ("none", "low", "moderate", "high")


def score_cssrs(answers: Any) -> MeasureScore:
    """C-SSRS screener risk: high for intent (Q4/Q5) in the past month or behaviour in the past 3 months;
    moderate for a method (Q3) or lifetime behaviour; low for a wish to be dead or thoughts (Q1-2).

    Q3-Q5 are asked only when Q2 is yes, and the past-3-months question only when there was behaviour.
    """
    if not isinstance(answers, Mapping):
        raise AnswerError({"answers": "Answer each question yes or no."})
    errors: dict[str, str] = {}

    def yes_no(key: str, *, asked: bool) -> bool | None:
        value = answers.get(key)
        if not asked:
            if value is not None:
                errors[key] = "Leave this unanswered: it is skipped by the answers above."
            return None
        if not isinstance(value, bool):
            errors[key] = "Answer yes or no."
            return None
        return value

    q1 = yes_no("q1", asked=True)
    q2 = yes_no("q2", asked=True)
    q3 = yes_no("q3", asked=q2 is True)
    q4 = yes_no("q4", asked=q2 is True)
    q5 = yes_no("q5", asked=q2 is True)
    q6_lifetime = yes_no("q6_lifetime", asked=True)
    q6_recent = yes_no("q6_past_3_months", asked=q6_lifetime is True)
    unknown = set(answers) - set(CSSRS_KEYS)
    if unknown:
        errors["answers"] = f"Unknown questions: {', '.join(sorted(unknown))}."
    if errors:
        raise AnswerError(errors)
    if q4 or q5 or q6_recent:
        risk = "high"
    elif q3 or q6_lifetime:
        risk = "moderate"
    elif q1 or q2:
        risk = "low"
    else:
        risk = "none"
    labels = {
        "none": "No risk identified",
        "low": "Low risk",
        "moderate": "Moderate risk",
        "high": "High risk",
    }
    flags: tuple[Flag, ...] = ()
    if risk == "high":
        flags = (
            Flag(
                "cssrs_high",
                "High suicide risk on the C-SSRS screener: immediate referral and safety plan.",
                urgent=True,
            ),
        )
    elif risk == "moderate":
        flags = (
            Flag(
                "cssrs_moderate",
                "Moderate suicide risk on the C-SSRS screener: clinician review and safety plan.",
            ),
        )
    return MeasureScore(Instrument.CSSRS, float(CSSRS_RISK_ORDER.index(risk)), risk, labels[risk], flags)


SCORERS = {
    Instrument.PHQ9: score_phq9,
    Instrument.GAD7: score_gad7,
    Instrument.PCL5: score_pcl5,
    Instrument.DES2: score_des2,
    Instrument.CSSRS: score_cssrs,
}


def score(instrument: str, answers: Any) -> MeasureScore:
    """Score one administration; raises `AnswerError` naming each item that is missing or out of range."""
    try:
        scorer = SCORERS[Instrument(instrument)]
    except ValueError:
        raise AnswerError({"instrument": f"'{instrument}' is not a measure kaemdr scores."}) from None
    return scorer(answers)


# --- Eligibility ----------------------------------------------------------------------------------


class Decision(enum.StrEnum):
    ELIGIBLE = "eligible"
    ELIGIBLE_WITH_PRECAUTIONS = "eligible_with_precautions"
    NOT_ELIGIBLE = "not_eligible"


DECISION_LABELS = {
    Decision.ELIGIBLE: "Eligible",
    Decision.ELIGIBLE_WITH_PRECAUTIONS: "Eligible with precautions",
    Decision.NOT_ELIGIBLE: "Not eligible",
}
ELIGIBLE_DECISIONS = frozenset({Decision.ELIGIBLE, Decision.ELIGIBLE_WITH_PRECAUTIONS})


@dataclass(frozen=True)
class Thresholds:
    """Clinic settings the proposal needs."""

    systolic: int = 140
    diastolic: int = 90


@dataclass(frozen=True)
class AssessmentFacts:
    """What the prescriber recorded, as plain values. None means not recorded yet."""

    agent: str | None
    route: str | None
    age_years: int | None
    current_crisis: bool | None
    housing_stable: bool | None
    has_support_person: bool | None
    escort_available: bool | None
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    weight_kg: float | None
    history_reviewed: bool
    medications_reviewed: bool
    condition_codes: frozenset[str] = frozenset()
    medication_classes: tuple[str, ...] = ()
    scores: Mapping[str, MeasureScore] = field(default_factory=dict)


def missing_parts(facts: AssessmentFacts) -> list[str]:
    """What still has to be recorded before the assessment can be scored and signed, in form order."""
    missing: list[str] = []
    stability = (facts.current_crisis, facts.housing_stable, facts.has_support_person, facts.escort_available)
    if any(answer is None for answer in stability):
        missing.append("Stability and support: answer all four questions.")
    if not facts.agent or not facts.route:
        missing.append("Planned agent and route.")
    elif route_error(facts.agent, facts.route):
        missing.append("A route that goes with the planned agent.")
    if None in (facts.systolic, facts.diastolic, facts.heart_rate, facts.weight_kg):
        missing.append("Baseline vitals: blood pressure, heart rate and weight.")
    if not facts.history_reviewed:
        missing.append("Medical history: review it against the contraindication catalogue.")
    if not facts.medications_reviewed:
        missing.append("Medication review: list current medications, or confirm there are none.")
    for instrument in Instrument:
        if instrument not in facts.scores:
            missing.append(f"Outcome measure: {INSTRUMENTS[instrument].label}.")
    return missing


@dataclass(frozen=True)
class Proposal:
    decision: Decision
    reasons: tuple[Reason, ...]

    @property
    def blockers(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.kind == ReasonKind.BLOCKER)

    @property
    def precautions(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.kind == ReasonKind.PRECAUTION)


def propose(facts: AssessmentFacts, thresholds: Thresholds) -> Proposal:
    """The eligibility proposal for a complete assessment: every reason, and the decision they make.

    Any blocker makes it not eligible; otherwise any precaution makes it eligible with precautions.
    """
    reasons: list[Reason] = []
    for code in sorted(facts.condition_codes):
        condition = CONDITIONS_BY_CODE.get(code)
        if condition is None:
            continue
        kind = ReasonKind.BLOCKER if condition.severity == Severity.ABSOLUTE else ReasonKind.PRECAUTION
        prefix = "Absolute contraindication" if kind == ReasonKind.BLOCKER else "Relative contraindication"
        reasons.append(
            Reason(
                f"condition.{code}",
                kind,
                f"{prefix}: {condition.label}. {condition.explanation}",
                condition.source,
            )
        )

    if facts.current_crisis:
        reasons.append(
            Reason(
                "stability.current_crisis",
                ReasonKind.BLOCKER,
                "Current crisis: stabilise first; dosing and trauma work wait until it has passed.",
                "Readiness criteria, pesi.com blog 2188 (domain.md 3); seeds: stability first",
            )
        )
    if facts.housing_stable is False:
        reasons.append(
            Reason(
                "stability.housing",
                ReasonKind.PRECAUTION,
                "Housing is not stable: plan support around the dosing days.",
                "Seeds: assessment of stability and support",
            )
        )
    if facts.has_support_person is False:
        reasons.append(
            Reason(
                "stability.support_person",
                ReasonKind.PRECAUTION,
                "No support person: identify one before dosing.",
                "RCEM discharge model: care available at home (domain.md 1.5)",
            )
        )
    if facts.escort_available is False:
        reasons.append(
            Reason(
                "stability.escort",
                ReasonKind.PRECAUTION,
                "No escort home yet: a responsible adult must take the patient home after each dose "
                "(no driving until the next day).",
                "RCEM discharge; Spravato label (domain.md 1.4-1.5)",
            )
        )

    if (
        facts.systolic is not None
        and facts.diastolic is not None
        and (facts.systolic > thresholds.systolic or facts.diastolic > thresholds.diastolic)
    ):
        reasons.append(
            Reason(
                "vitals.baseline_bp",
                ReasonKind.PRECAUTION,
                f"Baseline blood pressure {facts.systolic}/{facts.diastolic} is above the clinic's "
                f"{thresholds.systolic}/{thresholds.diastolic}: weigh the short-term rise after dosing.",
                "Spravato PI via droracle.ai 538624 (domain.md 1.1); clinic setting",
            )
        )
    if facts.agent == Agent.ESKETAMINE and facts.age_years is not None and facts.age_years >= 65:
        reasons.append(
            Reason(
                "dose.esketamine_65",
                ReasonKind.PRECAUTION,
                "Aged 65 or over: esketamine starts at 28 mg on day 1.",
                "Spravato dosing (domain.md 1.4)",
            )
        )

    reasons.extend(medication_flags(facts.medication_classes))

    for instrument in Instrument:
        measured = facts.scores.get(instrument)
        if measured is None:
            continue
        for flag in measured.flags:
            if flag.code == "cssrs_high":
                kind = ReasonKind.BLOCKER
            elif flag.code in ("phq9_item9", "cssrs_moderate", "des2_high"):
                kind = ReasonKind.PRECAUTION
            else:
                continue
            reasons.append(Reason(f"measure.{flag.code}", kind, flag.text, INSTRUMENTS[instrument].source))

    if any(reason.kind == ReasonKind.BLOCKER for reason in reasons):
        decision = Decision.NOT_ELIGIBLE
    elif reasons:
        decision = Decision.ELIGIBLE_WITH_PRECAUTIONS
    else:
        decision = Decision.ELIGIBLE
    return Proposal(decision, tuple(reasons))


def age_on(date_of_birth: dt.date, day: dt.date) -> int:
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


# --- Sign-off --------------------------------------------------------------------------------------


def signature_problem(*, proposal: Decision, decision: str, reason: str) -> str | None:
    """Why the decision cannot be signed as it stands, or None. Going against the proposal needs a reason."""
    if decision not in Decision.__members__.values():
        return "Choose a decision."
    if decision != proposal and not reason.strip():
        return (
            f"The rules propose '{DECISION_LABELS[proposal]}'. To decide '{DECISION_LABELS[Decision(decision)]}', "
            "write the reason."
        )
    return None


def second_signature_reasons(
    *,
    proposal: Decision,
    decision: str,
    condition_codes: Iterable[str],
    second_signature_codes: Iterable[str],
) -> list[str]:
    """Why an eligible decision needs a second prescriber: a listed precaution, or overriding 'not eligible'."""
    if decision not in ELIGIBLE_DECISIONS:
        return []
    reasons = [
        f"{CONDITIONS_BY_CODE[code].label} needs a second prescriber's signature (clinic setting)."
        for code in sorted(set(condition_codes) & set(second_signature_codes))
        if code in CONDITIONS_BY_CODE
    ]
    if proposal == Decision.NOT_ELIGIBLE:
        reasons.append(
            "Deciding eligible against a 'not eligible' proposal needs a second prescriber's signature."
        )
    return reasons


def screening_valid_until(*, signed_at: dt.datetime, valid_days: int) -> dt.datetime:
    """A signed screening stays current for the clinic's number of days from its signature; the end is
    fixed at signing, so a later change of the setting does not shorten or stretch it."""
    return signed_at + dt.timedelta(days=valid_days)


def screening_is_current(*, valid_until: dt.datetime | None, now: dt.datetime) -> bool:
    return valid_until is not None and now < valid_until
