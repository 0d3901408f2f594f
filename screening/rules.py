"""Screening rules: the catalogues, the scoring of each outcome measure, and the eligibility proposal.

Pure functions over plain values, no database. Every fact carries its citation from the one catalogue
of sources (`kaemdr.sources`: the label and its section, the guideline or the paper), so that each
reason the proposal gives can be traced to the rule that fired and where that rule comes from; every
reason's rule code and every refusal code the screening services raise is registered with its
citation at the end of this module. What varies by clinic (blood-pressure thresholds, whether only
adults are treated, how long a screening stays current, which precautions need a second signature) is
passed in, never hard-coded here.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from kaemdr import sources
from kaemdr.sources import Citation

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
AGENT_NAMES = {Agent.RACEMIC_KETAMINE: "racemic ketamine", Agent.ESKETAMINE: "esketamine"}
"""The agent's name within a sentence."""
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
    """One finding of the rules: which rule fired (`rule`, a registered code), what it means, and its
    citation."""

    rule: str
    kind: ReasonKind
    text: str
    source: Citation

    def as_dict(self) -> dict[str, str]:
        """The reason as stored with a signed assessment: the citation as plain text and its link (a
        page shows the catalogue's citation of `rule`, falling back to this text for old records)."""
        return {
            "rule": self.rule,
            "kind": str(self.kind),
            "text": self.text,
            "source": self.source.text,
            "source_url": self.source.url,
        }


# --- Contraindication catalogue -----------------------------------------------------------------------

US_PI = sources.SPRAVATO_US_PI
SMPC = sources.SPRAVATO_SMPC
LABEL_CONTRAINDICATIONS = US_PI.at("section 4, contraindications") + SMPC.at("section 4.3, contraindications")
PHASE3 = sources.SPRAVATO_PHASE3.at()
PSYON = sources.PSYON_EXCLUSIONS.at()
INTAKE = sources.KETAMINE_INTAKE_TRIAGE.at()
LABEL_BP_RISE = US_PI.at("section 5.6, increase in blood pressure")
HEPATIC = US_PI.at("section 8.6, hepatic impairment") + SMPC.at(
    "sections 4.2 and 4.4, hepatic impairment (Child-Pugh B and C)"
)
PRESSURE_RISE_ESKETAMINE = SMPC.at("section 4.3, contraindications") + US_PI.at(
    "sections 2.1 and 5.6: do not administer if an increase in blood pressure or intracranial pressure "
    "poses a serious risk"
)


class Severity(enum.StrEnum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"


@dataclass(frozen=True)
class AgentRule:
    """How a condition counts for one agent where that agent's label says more than the catalogue
    does for ketamine in general: its severity, why, the source, and whether deciding eligible always
    needs a second prescriber (whatever the clinic's list of second-signature codes says)."""

    severity: Severity
    explanation: str
    source: Citation
    second_signature: bool = False


@dataclass(frozen=True)
class Condition:
    code: str
    label: str
    severity: Severity
    explanation: str
    source: Citation
    for_agent: Mapping[str, AgentRule] = field(default_factory=dict)
    """Agent-specific rules (by `Agent` value); an agent not named here follows the fields above."""

    def rule_code(self, agent: str | None) -> str:
        """The reason's rule code for `agent`: `condition.<code>`, or `condition.<code>.<agent>` where
        the agent has its own rule."""
        return f"condition.{self.code}.{agent}" if agent in self.for_agent else f"condition.{self.code}"


# The esketamine label's contraindication "where an increase in blood pressure or intracranial pressure
# poses a serious risk": a blocker only a second prescriber can override (never removed by a setting).
PRESSURE_RISE_FOR_ESKETAMINE = AgentRule(
    Severity.ABSOLUTE,
    "The esketamine label says not to give it where a rise in blood pressure or intracranial pressure "
    "is a serious risk. Choose another treatment, or have a second prescriber countersign a decision "
    "to go ahead.",
    PRESSURE_RISE_ESKETAMINE,
    second_signature=True,
)

CONDITIONS: tuple[Condition, ...] = (
    Condition(
        "aneurysmal_vascular_disease",
        "Aneurysmal vascular disease (aorta, intracranial or peripheral arteries) or arteriovenous malformation",
        Severity.ABSOLUTE,
        "Ketamine raises blood pressure; the label contraindicates it with aneurysmal disease or an AV malformation.",
        LABEL_CONTRAINDICATIONS,
    ),
    Condition(
        "intracerebral_haemorrhage",
        "History of intracerebral haemorrhage",
        Severity.ABSOLUTE,
        "Contraindicated by the label: a blood-pressure rise risks another bleed.",
        LABEL_CONTRAINDICATIONS,
    ),
    Condition(
        "ketamine_hypersensitivity",
        "Hypersensitivity to esketamine, ketamine or an excipient",
        Severity.ABSOLUTE,
        "Contraindicated by the label.",
        LABEL_CONTRAINDICATIONS,
    ),
    Condition(
        "pressure_rise_serious_risk",
        "A rise in blood pressure or intracranial pressure is a serious risk",
        Severity.RELATIVE,
        "Ketamine raises blood pressure for a few hours after each dose: weigh that rise against the "
        "benefit, and control blood pressure first.",
        LABEL_BP_RISE + sources.SANACORA_2017.at("pre-treatment medical evaluation; blood pressure"),
        for_agent={Agent.ESKETAMINE: PRESSURE_RISE_FOR_ESKETAMINE},
    ),
    Condition(
        "psychosis_history",
        "Psychotic disorder, current or past",
        Severity.RELATIVE,
        "Ketamine can worsen psychosis: treat only if the benefit outweighs the risk; many clinics exclude it.",
        US_PI.at("section 5.2, dissociation: patients with psychosis")
        + PSYON
        + sources.SANACORA_2017.at("pre-treatment evaluation: history of psychosis"),
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
        US_PI.at("sections 5.10, embryo-fetal toxicity, and 8.1-8.2, pregnancy and lactation")
        + sources.CLINIC_CONSENT.at(),
    ),
    Condition(
        "substance_use_history",
        "History of substance use disorder or alcohol misuse",
        Severity.RELATIVE,
        "Ketamine is a Schedule III drug with abuse potential: assess the risk and monitor.",
        US_PI.at("section 5.3, abuse and misuse")
        + sources.SANACORA_2017.at("pre-treatment evaluation: substance use history"),
    ),
    Condition(
        "active_substance_use",
        "Active substance use disorder (abstinent less than a year)",
        Severity.RELATIVE,
        "Active addiction is an exclusion in clinic protocols unless abstinent for at least a year.",
        PSYON + INTAKE,
    ),
    Condition(
        "uncontrolled_hypertension",
        "Uncontrolled hypertension",
        Severity.RELATIVE,
        "Blood pressure peaks about 40 minutes after dosing and lasts about 4 hours; control it first.",
        LABEL_BP_RISE + INTAKE,
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
        "Excluded from the phase-3 trials: a further rise in intracranial pressure is a serious risk.",
        PHASE3,
        for_agent={Agent.ESKETAMINE: PRESSURE_RISE_FOR_ESKETAMINE},
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
        "Listed by some intake protocols (a secondary source): review cardiac risk.",
        INTAKE + PHASE3,
    ),
    Condition(
        "cerebrovascular_disease",
        "Cerebrovascular disease",
        Severity.RELATIVE,
        "Listed by some intake protocols (a secondary source): review cerebrovascular risk.",
        INTAKE + PHASE3,
    ),
    Condition(
        "severe_personality_disorder",
        "Severe personality disorder",
        Severity.RELATIVE,
        "An exclusion in some clinic protocols.",
        PSYON,
    ),
    Condition(
        "hepatic_impairment_moderate",
        "Moderate hepatic impairment (Child-Pugh B)",
        Severity.RELATIVE,
        "Exposure is higher: monitor for adverse reactions for longer after each dose (for esketamine, "
        "use the 84 mg dose with caution).",
        HEPATIC,
    ),
    Condition(
        "hepatic_impairment_severe",
        "Severe hepatic impairment (Child-Pugh C)",
        Severity.RELATIVE,
        "Not studied: esketamine is not recommended. Ketamine is cleared by the liver, so with any "
        "ketamine expect stronger and longer effects and monitor for longer.",
        HEPATIC,
    ),
    Condition(
        "cystitis",
        "Ulcerative or interstitial cystitis, or bladder symptoms after ketamine use",
        Severity.RELATIVE,
        "Ketamine can cause ulcerative or interstitial cystitis: ask about urinary frequency, urgency, "
        "pain and blood in the urine before each dose, and stop if symptoms appear or worsen.",
        US_PI.at("section 5.9, ulcerative or interstitial cystitis") + sources.KETAMINE_CYSTITIS.at(),
    ),
)
CONDITIONS_BY_CODE: dict[str, Condition] = {condition.code: condition for condition in CONDITIONS}

# Relative contraindications that, by default, need a second prescriber's signature (a clinic setting).
DEFAULT_SECOND_SIGNATURE_CODES: tuple[str, ...] = (
    "psychosis_history",
    "pregnancy_or_breastfeeding",
    "active_substance_use",
)

# --- Medication classes and interactions ------------------------------------------------------------

ANDRADE = sources.ANDRADE_2017_INTERACTIONS.at()
ANDRADE_CYP = sources.ANDRADE_2017_INTERACTIONS.at("metabolism by CYP3A4 and CYP2B6")
VERAART = sources.VERAART_2021.at()
PMF = sources.SPRAVATO_PMF.at("concomitant medications")
CNS_DEPRESSANTS = US_PI.at("section 7.1, CNS depressants")


@dataclass(frozen=True)
class MedicationClass:
    code: str
    label: str
    interaction: str
    source: Citation | None
    rems_class: bool = False


MEDICATION_CLASSES: tuple[MedicationClass, ...] = (
    MedicationClass(
        "benzodiazepine",
        "Benzodiazepine",
        "Benzodiazepines may blunt and shorten ketamine's antidepressant effect, and add sedation.",
        ANDRADE + VERAART + PMF,
        rems_class=True,
    ),
    MedicationClass(
        "sedative_hypnotic",
        "Non-benzodiazepine sedative hypnotic (e.g. zolpidem)",
        "Adds to sedation; asked on the REMS monitoring form.",
        PMF + CNS_DEPRESSANTS,
        rems_class=True,
    ),
    MedicationClass(
        "psychostimulant",
        "Psychostimulant",
        "Can add to the rise in blood pressure; asked on the REMS monitoring form.",
        PMF + US_PI.at("section 7.2, psychostimulants"),
        rems_class=True,
    ),
    MedicationClass(
        "maoi",
        "Monoamine oxidase inhibitor (MAOI)",
        "Watch blood pressure; some protocols require stopping it four half-lives before dosing.",
        PMF + US_PI.at("section 7.3, monoamine oxidase inhibitors") + PSYON + VERAART,
        rems_class=True,
    ),
    MedicationClass(
        "opioid",
        "Opioid (including tramadol)",
        "Adds to sedation and respiratory depression; no opioids for 4 hours after dosing.",
        CNS_DEPRESSANTS + PMF + PSYON + sources.DISCHARGE_ADVICE.at("no opioids for 4 hours"),
        rems_class=True,
    ),
    MedicationClass(
        "gabapentinoid",
        "Gabapentinoid (gabapentin, pregabalin)",
        "Adds to sedation and can depress breathing: watch breathing and oxygen saturation closely "
        "after each dose.",
        sources.FDA_GABAPENTINOIDS.at() + sources.MHRA_GABAPENTINOIDS.at() + CNS_DEPRESSANTS,
    ),
    MedicationClass(
        "alcohol",
        "Alcohol, regular or heavy use",
        "Adds to sedation: no alcohol on the day of dosing or for 24 hours after it.",
        CNS_DEPRESSANTS + sources.DISCHARGE_ADVICE.at("no alcohol that day and for 24 hours"),
    ),
    MedicationClass(
        "lamotrigine",
        "Lamotrigine",
        "May reduce ketamine's side effects and probably attenuates its effect.",
        ANDRADE + VERAART,
    ),
    MedicationClass(
        "cyp3a4_inducer",
        "CYP3A4 inducer (e.g. carbamazepine, rifampicin, St John's wort)",
        "Lowers ketamine exposure: the dose may need adjusting.",
        ANDRADE_CYP,
    ),
    MedicationClass(
        "cyp3a4_inhibitor",
        "CYP3A4 inhibitor (e.g. clarithromycin, ketoconazole, grapefruit)",
        "Raises ketamine exposure: expect stronger and longer effects.",
        ANDRADE_CYP,
    ),
    MedicationClass(
        "cyp2b6_inducer",
        "CYP2B6 inducer (e.g. rifampicin, efavirenz)",
        "Lowers ketamine exposure: the dose may need adjusting.",
        ANDRADE_CYP,
    ),
    MedicationClass(
        "cyp2b6_inhibitor",
        "CYP2B6 inhibitor (e.g. ticlopidine, clopidogrel)",
        "Raises ketamine exposure: expect stronger and longer effects.",
        ANDRADE_CYP,
    ),
    MedicationClass(
        "antipsychotic",
        "Antipsychotic (clozapine, haloperidol, risperidone)",
        "Interactions have been reported with clozapine, haloperidol and risperidone.",
        VERAART,
    ),
    MedicationClass("antidepressant", "Antidepressant (SSRI, SNRI, TCA and others)", "", ANDRADE),
    MedicationClass("lithium", "Lithium", "", VERAART),
    MedicationClass("other", "Other", "", None),
)
MEDICATION_CLASSES_BY_CODE: dict[str, MedicationClass] = {m.code: m for m in MEDICATION_CLASSES}


def medication_flags(classes: Iterable[str]) -> list[Reason]:
    """One precaution per interacting class among `classes`, each with its explanation and source."""
    reasons: list[Reason] = []
    for code in sorted(set(classes)):
        medication = MEDICATION_CLASSES_BY_CODE.get(code)
        if medication is not None and medication.interaction and medication.source:
            reasons.append(
                Reason(
                    f"interaction.{code}",
                    ReasonKind.PRECAUTION,
                    f"{medication.label}: {medication.interaction}",
                    medication.source,
                )
            )
    return reasons


# --- Outcome measures --------------------------------------------------------------------------------


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
    source: Citation
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
        sources.PHQ9.at("scoring: total 0-27, severity bands at 5, 10, 15 and 20; item 9"),
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
        sources.GAD7.at("scoring: total 0-21, bands at 5, 10 and 15; 10 or more, evaluate further"),
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
        sources.PCL5.at("scoring: total 0-80, clusters B-E and the DSM-5 provisional diagnosis"),
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
        sources.DES2.at("scoring: the mean of 28 items; 30 or more is high"),
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
        sources.CSSRS.at("screener version: risk triage"),
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
    """Clinic settings the proposal needs: the baseline blood-pressure thresholds, and whether only
    adults are eligible for any ketamine (esketamine never goes below 18, whatever this says)."""

    systolic: int = 140
    diastolic: int = 90
    adults_only: bool = True


ADULT_AGE = 18
"""Esketamine is for adults: its safety and efficacy below 18 are not established (both labels)."""
ESKETAMINE_LOWER_START_AGE = 65


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
    age_reason = age_refusal(age_years=facts.age_years, agent=facts.agent, adults_only=thresholds.adults_only)
    if age_reason is not None:
        reasons.append(age_reason)
    for code in sorted(facts.condition_codes):
        condition = CONDITIONS_BY_CODE.get(code)
        if condition is None:
            continue
        reasons.append(condition_reason(condition, agent=facts.agent))

    if facts.current_crisis:
        reasons.append(
            Reason(
                "stability.current_crisis",
                ReasonKind.BLOCKER,
                "Current crisis: stabilise first; dosing and trauma work wait until it has passed.",
                STATIC_REASON_SOURCES["stability.current_crisis"],
            )
        )
    if facts.housing_stable is False:
        reasons.append(
            Reason(
                "stability.housing",
                ReasonKind.PRECAUTION,
                "Housing is not stable: plan support around the dosing days.",
                STATIC_REASON_SOURCES["stability.housing"],
            )
        )
    if facts.has_support_person is False:
        reasons.append(
            Reason(
                "stability.support_person",
                ReasonKind.PRECAUTION,
                "No support person: identify one before dosing.",
                STATIC_REASON_SOURCES["stability.support_person"],
            )
        )
    if facts.escort_available is False:
        reasons.append(
            Reason(
                "stability.escort",
                ReasonKind.PRECAUTION,
                "No escort home yet: a responsible adult must take the patient home after each dose "
                "(no driving until the next day).",
                STATIC_REASON_SOURCES["stability.escort"],
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
                STATIC_REASON_SOURCES["vitals.baseline_bp"],
            )
        )
    if (
        facts.agent == Agent.ESKETAMINE
        and facts.age_years is not None
        and facts.age_years >= ESKETAMINE_LOWER_START_AGE
    ):
        reasons.append(
            Reason(
                "dose.esketamine_65",
                ReasonKind.PRECAUTION,
                "Aged 65 or over: under the EU/UK summary of product characteristics esketamine starts at "
                "28 mg on day 1.",
                STATIC_REASON_SOURCES["dose.esketamine_65"],
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
            reasons.append(Reason(f"measure.{flag.code}", kind, flag.text, MEASURE_REASON_SOURCES[flag.code]))

    if any(reason.kind == ReasonKind.BLOCKER for reason in reasons):
        decision = Decision.NOT_ELIGIBLE
    elif reasons:
        decision = Decision.ELIGIBLE_WITH_PRECAUTIONS
    else:
        decision = Decision.ELIGIBLE
    return Proposal(decision, tuple(reasons))


def age_on(date_of_birth: dt.date, day: dt.date) -> int:
    """Completed years of age on `day` (the day of the screening): the birthday itself counts, so a
    patient is 18 from the 18th birthday on. Someone born on 29 February turns a year older on 1 March
    in a common year (28 February is still the day before the birthday), as UK law counts it."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def age_refusal(*, age_years: int | None, agent: str | None, adults_only: bool) -> Reason | None:
    """The blocker for a patient under 18, or None. Esketamine: always (its label covers adults only).
    Any other agent: only while the clinic's "only adults" setting is on (its default), since the
    consensus on ketamine for mood disorders covers adults. An unknown age gives no reason."""
    if age_years is None or age_years >= ADULT_AGE:
        return None
    if agent == Agent.ESKETAMINE:
        return Reason(
            "age.under_18.esketamine",
            ReasonKind.BLOCKER,
            f"Aged {age_years}: esketamine is for adults only; its safety and efficacy under 18 are not "
            "established. Do not plan esketamine before the 18th birthday.",
            STATIC_REASON_SOURCES["age.under_18.esketamine"],
        )
    if not adults_only:
        return None
    return Reason(
        "age.under_18",
        ReasonKind.BLOCKER,
        f"Aged {age_years}: the clinic treats adults (18 and over) only with any ketamine. Refer to a "
        "service for young people, or screen again from the 18th birthday.",
        STATIC_REASON_SOURCES["age.under_18"],
    )


def condition_reason(condition: Condition, *, agent: str | None) -> Reason:
    """The reason a recorded condition gives for the planned agent: its agent-specific rule where it
    has one (esketamine's label contraindications), else the catalogue's general one."""
    agent_rule = condition.for_agent.get(agent) if agent else None
    if agent is not None and agent_rule is not None:
        kind = ReasonKind.BLOCKER if agent_rule.severity == Severity.ABSOLUTE else ReasonKind.PRECAUTION
        name = AGENT_NAMES[Agent(agent)]
        prefix = f"Contraindicated for {name}" if kind == ReasonKind.BLOCKER else f"Precaution for {name}"
        return Reason(
            condition.rule_code(agent),
            kind,
            f"{prefix}: {condition.label}. {agent_rule.explanation}",
            agent_rule.source,
        )
    kind = ReasonKind.BLOCKER if condition.severity == Severity.ABSOLUTE else ReasonKind.PRECAUTION
    prefix = "Absolute contraindication" if kind == ReasonKind.BLOCKER else "Relative contraindication"
    return Reason(
        condition.rule_code(None),
        kind,
        f"{prefix}: {condition.label}. {condition.explanation}",
        condition.source,
    )


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
    agent: str | None = None,
) -> list[str]:
    """Why an eligible decision needs a second prescriber: a condition the planned agent's label
    contraindicates with a second-signature override (always, whatever the clinic's list), a condition
    on the clinic's list, or overriding 'not eligible'."""
    if decision not in ELIGIBLE_DECISIONS:
        return []
    clinic_codes = set(second_signature_codes)
    reasons: list[str] = []
    for code in sorted(set(condition_codes)):
        condition = CONDITIONS_BY_CODE.get(code)
        if condition is None:
            continue
        agent_rule = condition.for_agent.get(agent) if agent else None
        if agent is not None and agent_rule is not None and agent_rule.second_signature:
            reasons.append(
                f"{condition.label}: the label contraindicates {AGENT_NAMES[Agent(agent)]}, so only a "
                "second prescriber can override it."
            )
        elif code in clinic_codes:
            reasons.append(f"{condition.label} needs a second prescriber's signature (clinic setting).")
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


# --- Citations: every reason's rule code and every refusal code, registered once -------------------

STATIC_REASON_SOURCES: dict[str, Citation] = {
    "age.under_18.esketamine": US_PI.at("section 8.4, pediatric use")
    + SMPC.at("section 4.2, paediatric population"),
    "age.under_18": sources.SANACORA_2017.at("scope: adults with mood disorders")
    + sources.clinic_setting("Only adults (18 and over) are eligible for any ketamine"),
    "stability.current_crisis": sources.EMDR_READINESS.at("no current crisis")
    + sources.CLOITRE_2012.at("phase 1: safety and stabilisation first"),
    "stability.housing": sources.CLOITRE_2012.at("phase 1: safety and stabilisation first")
    + sources.STAGED_PATHWAY.at("assessment of stability and support"),
    "stability.support_person": sources.RCEM_SEDATION.at("discharge: care available at home"),
    "stability.escort": sources.RCEM_SEDATION.at("discharge: a responsible adult escort")
    + US_PI.at("section 5.8, impaired ability to drive and operate machinery"),
    "vitals.baseline_bp": sources.clinic_setting(
        "Systolic threshold and Diastolic threshold",
        default_from=US_PI.at("section 2.1: baseline above 140 systolic or 90 diastolic, weigh the rise"),
    ),
    "dose.esketamine_65": SMPC.at("section 4.2, posology: 65 and over start at 28 mg"),
}
"""The citations of the proposal's reasons that do not come from a catalogue entry."""

MEASURE_REASON_SOURCES: dict[str, Citation] = {
    "phq9_item9": sources.PHQ9.at("item 9, thoughts of death or self-harm: follow up whatever the total"),
    "cssrs_high": sources.CSSRS.at("screener triage: intent or plan in the past month, or recent behaviour"),
    "cssrs_moderate": sources.CSSRS.at("screener triage: a method, or lifetime behaviour"),
    "des2_high": sources.DES2.at("30 or more: a structured dissociation interview"),
}
"""The citations of the measure flags that are reasons (`measure.<flag>`) and of the safety alerts
the urgent ones raise."""

RECORD_RULES = sources.GMC_RECORDS.at()
PATHWAY = sources.STAGED_PATHWAY

REFUSAL_SOURCES: dict[str, Citation] = {
    "assessment_signed": RECORD_RULES
    + PATHWAY.at("a signed screening is read-only; a change is a new version"),
    "assessment_exists": PATHWAY.at("one screening per pathway, changed by new versions"),
    "assessment_wrong_stage": PATHWAY.at("screening happens in the assessment stage"),
    "assessment_incomplete": sources.SANACORA_2017.at("pre-treatment evaluation")
    + PATHWAY.at("no eligibility decision before the assessment is complete"),
    "assessment_decision_needs_reason": RECORD_RULES
    + PATHWAY.at("a decision against the rules' proposal carries its reason"),
    "assessment_not_awaiting_countersignature": PATHWAY.at("second signatures"),
    "countersignature_same_prescriber": PATHWAY.at("a second signature comes from another prescriber")
    + sources.clinic_setting("Relative contraindications that need a second prescriber's signature"),
    "assessment_not_signed": PATHWAY.at("a new version starts from a signed screening"),
    "assessment_pathway_closed": PATHWAY.at("a completed or discontinued pathway takes no new screening"),
    "assessment_not_latest": RECORD_RULES + PATHWAY.at("one line of screening versions"),
    "assessment_version_race": RECORD_RULES,
    "screening_route_mismatch": US_PI.at("section 2, dosage and administration: for nasal use only")
    + sources.ANDRADE_2017_DOSE.at("routes of racemic ketamine"),
    "alert_already_acknowledged": RECORD_RULES,
    "alert_not_open": PATHWAY.at("an urgent safety finding stops dosing until it is addressed"),
    "alert_already_overridden": RECORD_RULES,
    "alert_override_reason_required": PATHWAY.at("every override is signed by a prescriber with a reason")
    + RECORD_RULES,
    "safety_alert_open": MEASURE_REASON_SOURCES["phq9_item9"]
    + MEASURE_REASON_SOURCES["cssrs_high"]
    + PATHWAY.at("an urgent safety finding is addressed before any dose"),
}
"""The screening services' and selectors' refusals that are rules (input checks, such as an answer
out of range or a date in the future, are not, and carry no citation)."""


def reason_sources() -> dict[str, Citation]:
    """Every rule code a proposal's reason can carry, with its citation."""
    codes: dict[str, Citation] = {}
    for condition in CONDITIONS:
        codes[condition.rule_code(None)] = condition.source
        for agent, agent_rule in condition.for_agent.items():
            codes[condition.rule_code(agent)] = agent_rule.source
    for medication in MEDICATION_CLASSES:
        if medication.interaction and medication.source:
            codes[f"interaction.{medication.code}"] = medication.source
    codes.update({f"measure.{flag}": citation for flag, citation in MEASURE_REASON_SOURCES.items()})
    codes.update(STATIC_REASON_SOURCES)
    return codes


sources.register(reason_sources())
sources.register(REFUSAL_SOURCES)
