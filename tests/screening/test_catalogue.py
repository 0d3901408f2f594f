"""The screening catalogue's second pass as pure rules: age from the date of birth (esketamine by its
label, any ketamine by the clinic's "only adults" setting), the esketamine contraindication where a rise
in blood pressure or intracranial pressure is a serious risk (a second prescriber's override only),
hepatic impairment and cystitis as precautions, alcohol and gabapentinoids as interaction classes, and
the citation every reason's rule code and every refusal code carries. No database is touched.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import pytest

from kaemdr import sources
from screening import rules
from screening.rules import CONDITIONS_BY_CODE
from screening.rules import MEDICATION_CLASSES_BY_CODE
from screening.rules import Agent
from screening.rules import Decision
from screening.rules import ReasonKind
from screening.rules import Route
from screening.rules import Thresholds
from screening.rules import age_on
from screening.rules import age_refusal
from screening.rules import propose
from screening.rules import second_signature_reasons

from .test_rules import complete_facts
from .test_rules import rules_of

ROUTE_OF = {Agent.ESKETAMINE: Route.INTRANASAL, Agent.RACEMIC_KETAMINE: Route.IV}
BORN = dt.date(2008, 6, 15)
EIGHTEENTH = dt.date(2026, 6, 15)
LEAPLING = dt.date(2008, 2, 29)

# --- age_on at the 18th birthday ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date_of_birth", "day", "age"),
    [
        (BORN, EIGHTEENTH - dt.timedelta(days=1), 17),
        (BORN, EIGHTEENTH, 18),
        (BORN, EIGHTEENTH + dt.timedelta(days=1), 18),
        (LEAPLING, dt.date(2026, 2, 28), 17),
        (LEAPLING, dt.date(2026, 3, 1), 18),
        (LEAPLING, dt.date(2024, 2, 28), 15),
        (LEAPLING, dt.date(2024, 2, 29), 16),
    ],
    ids=[
        "17y364d",
        "18th_birthday",
        "day_after",
        "leapling_feb_28_common_year",
        "leapling_mar_1_common_year",
        "leapling_feb_28_leap_year",
        "leapling_feb_29_leap_year",
    ],
)
def test_age_on_the_18th_birthday_boundary(date_of_birth: dt.date, day: dt.date, age: int) -> None:
    # Act / Assert
    assert age_on(date_of_birth, day) == age


# --- the age rule, for each agent, at 17y364d and on the 18th birthday, setting on and off -----------

ESKETAMINE_UNDER_18 = "age.under_18.esketamine"
ANY_KETAMINE_UNDER_18 = "age.under_18"


@pytest.mark.parametrize(
    ("agent", "day", "adults_only", "rule"),
    [
        (Agent.ESKETAMINE, EIGHTEENTH - dt.timedelta(days=1), True, ESKETAMINE_UNDER_18),
        (Agent.ESKETAMINE, EIGHTEENTH - dt.timedelta(days=1), False, ESKETAMINE_UNDER_18),
        (Agent.ESKETAMINE, EIGHTEENTH, True, None),
        (Agent.ESKETAMINE, EIGHTEENTH, False, None),
        (Agent.RACEMIC_KETAMINE, EIGHTEENTH - dt.timedelta(days=1), True, ANY_KETAMINE_UNDER_18),
        (Agent.RACEMIC_KETAMINE, EIGHTEENTH - dt.timedelta(days=1), False, None),
        (Agent.RACEMIC_KETAMINE, EIGHTEENTH, True, None),
        (Agent.RACEMIC_KETAMINE, EIGHTEENTH, False, None),
    ],
    ids=[
        "esketamine_17y364d_setting_on",
        "esketamine_17y364d_setting_off",
        "esketamine_18th_birthday_setting_on",
        "esketamine_18th_birthday_setting_off",
        "ketamine_17y364d_setting_on",
        "ketamine_17y364d_setting_off",
        "ketamine_18th_birthday_setting_on",
        "ketamine_18th_birthday_setting_off",
    ],
)
def test_propose_under_18_by_agent_and_setting(
    agent: Agent, day: dt.date, adults_only: bool, rule: str | None
) -> None:
    # Arrange
    facts = replace(complete_facts(), agent=agent, route=ROUTE_OF[agent], age_years=age_on(BORN, day))

    # Act
    proposal = propose(facts, Thresholds(adults_only=adults_only))

    # Assert
    assert rules_of(proposal.reasons) == ([rule] if rule else [])
    assert proposal.decision == (Decision.NOT_ELIGIBLE if rule else Decision.ELIGIBLE)
    if rule:
        assert proposal.reasons[0].kind == ReasonKind.BLOCKER
        assert proposal.reasons[0].source == sources.citation_for(rule)


def test_age_reason_for_esketamine_cites_both_labels_paediatric_sections() -> None:
    # Act
    reason = age_refusal(age_years=17, agent=Agent.ESKETAMINE, adults_only=False)

    # Assert
    assert reason is not None
    assert reason.text.startswith("Aged 17: esketamine is for adults only")
    assert [(ref.source, ref.where) for ref in reason.source.references] == [
        (sources.SPRAVATO_US_PI, "section 8.4, pediatric use"),
        (sources.SPRAVATO_SMPC, "section 4.2, paediatric population"),
    ]


def test_age_reason_for_any_ketamine_cites_the_consensus_and_the_clinic_setting() -> None:
    # Act
    reason = age_refusal(age_years=12, agent=Agent.RACEMIC_KETAMINE, adults_only=True)

    # Assert
    assert reason is not None
    assert reason.text.startswith("Aged 12: the clinic treats adults (18 and over) only")
    assert [ref.source for ref in reason.source.references] == [sources.SANACORA_2017, sources.CLINIC_SETTING]
    assert "Only adults (18 and over) are eligible for any ketamine" in reason.source.text


@pytest.mark.parametrize("agent", [Agent.ESKETAMINE, Agent.RACEMIC_KETAMINE, None])
def test_age_unknown_gives_no_reason(agent: str | None) -> None:
    # Act / Assert
    assert age_refusal(age_years=None, agent=agent, adults_only=True) is None


def test_age_reason_comes_first_among_several() -> None:
    # Arrange
    facts = replace(complete_facts(), age_years=16, condition_codes=frozenset({"cystitis"}))

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert rules_of(proposal.reasons) == [ANY_KETAMINE_UNDER_18, "condition.cystitis"]
    assert proposal.decision == Decision.NOT_ELIGIBLE


# --- a rise in blood pressure or intracranial pressure is a serious risk --------------------------

PRESSURE_CODES = ("pressure_rise_serious_risk", "raised_intracranial_pressure")


@pytest.mark.parametrize("code", PRESSURE_CODES)
@pytest.mark.parametrize(
    ("agent", "rule_suffix", "kind", "decision"),
    [
        (Agent.ESKETAMINE, ".esketamine", ReasonKind.BLOCKER, Decision.NOT_ELIGIBLE),
        (Agent.RACEMIC_KETAMINE, "", ReasonKind.PRECAUTION, Decision.ELIGIBLE_WITH_PRECAUTIONS),
    ],
    ids=["esketamine_contraindicated", "ketamine_precaution"],
)
def test_pressure_rise_is_an_esketamine_contraindication_and_a_ketamine_precaution(
    code: str, agent: Agent, rule_suffix: str, kind: ReasonKind, decision: Decision
) -> None:
    # Arrange
    facts = replace(complete_facts(), agent=agent, route=ROUTE_OF[agent], condition_codes=frozenset({code}))

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert rules_of(proposal.reasons) == [f"condition.{code}{rule_suffix}"]
    assert proposal.reasons[0].kind == kind
    assert proposal.decision == decision


def test_pressure_rise_for_esketamine_cites_smpc_4_3_and_us_pi_2_1_and_5_6() -> None:
    # Arrange
    facts = replace(
        complete_facts(),
        agent=Agent.ESKETAMINE,
        route=Route.INTRANASAL,
        condition_codes=frozenset({"pressure_rise_serious_risk"}),
    )

    # Act
    reason = propose(facts, Thresholds()).reasons[0]

    # Assert
    assert reason.text.startswith(
        "Contraindicated for esketamine: A rise in blood pressure or intracranial pressure is a serious risk."
    )
    assert [(ref.source, ref.where.split(",")[0]) for ref in reason.source.references] == [
        (sources.SPRAVATO_SMPC, "section 4.3"),
        (
            sources.SPRAVATO_US_PI,
            "sections 2.1 and 5.6: do not administer if an increase in blood pressure or "
            "intracranial pressure poses a serious risk",
        ),
    ]


PRESSURE_SECOND_SIGNATURE = (
    "A rise in blood pressure or intracranial pressure is a serious risk: the label contraindicates "
    "esketamine, so only a second prescriber can override it."
)
OVERRIDE = "Deciding eligible against a 'not eligible' proposal needs a second prescriber's signature."


@pytest.mark.parametrize(
    ("agent", "decision", "clinic_codes", "expected"),
    [
        (Agent.ESKETAMINE, "eligible_with_precautions", (), [PRESSURE_SECOND_SIGNATURE, OVERRIDE]),
        (
            Agent.ESKETAMINE,
            "eligible",
            ("pressure_rise_serious_risk",),
            [PRESSURE_SECOND_SIGNATURE, OVERRIDE],
        ),
        (Agent.ESKETAMINE, "not_eligible", (), []),
        (Agent.RACEMIC_KETAMINE, "eligible_with_precautions", (), []),
        (
            Agent.RACEMIC_KETAMINE,
            "eligible_with_precautions",
            ("pressure_rise_serious_risk",),
            [
                "A rise in blood pressure or intracranial pressure is a serious risk needs a second "
                "prescriber's signature (clinic setting)."
            ],
        ),
    ],
    ids=[
        "esketamine_not_on_clinic_list",
        "esketamine_on_clinic_list",
        "esketamine_decided_not_eligible",
        "ketamine_not_on_clinic_list",
        "ketamine_on_clinic_list",
    ],
)
def test_second_signature_for_the_pressure_rule_is_always_needed_for_esketamine_only(
    agent: Agent, decision: str, clinic_codes: tuple[str, ...], expected: list[str]
) -> None:
    # Arrange
    facts = replace(
        complete_facts(),
        agent=agent,
        route=ROUTE_OF[agent],
        condition_codes=frozenset({"pressure_rise_serious_risk"}),
    )
    proposal = propose(facts, Thresholds())

    # Act
    reasons = second_signature_reasons(
        proposal=proposal.decision,
        decision=decision,
        condition_codes=facts.condition_codes,
        second_signature_codes=clinic_codes,
        agent=agent,
    )

    # Assert
    assert reasons == expected


# --- hepatic impairment and cystitis --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cited"),
    [
        ("hepatic_impairment_moderate", ["section 8.6, hepatic impairment", "sections 4.2 and 4.4"]),
        ("hepatic_impairment_severe", ["section 8.6, hepatic impairment", "Child-Pugh B and C"]),
        ("cystitis", ["section 5.9, ulcerative or interstitial cystitis", "Chu et al. 2008"]),
    ],
)
@pytest.mark.parametrize("agent", [Agent.ESKETAMINE, Agent.RACEMIC_KETAMINE])
def test_hepatic_impairment_and_cystitis_are_precautions_with_their_sources(
    code: str, cited: list[str], agent: Agent
) -> None:
    # Arrange
    facts = replace(complete_facts(), agent=agent, route=ROUTE_OF[agent], condition_codes=frozenset({code}))

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.ELIGIBLE_WITH_PRECAUTIONS
    assert rules_of(proposal.reasons) == [f"condition.{code}"]
    assert all(part in proposal.reasons[0].source.text for part in cited)


def test_severe_hepatic_impairment_says_esketamine_is_not_recommended() -> None:
    # Assert
    assert "esketamine is not recommended" in CONDITIONS_BY_CODE["hepatic_impairment_severe"].explanation
    assert (
        "monitor for adverse reactions for longer"
        in CONDITIONS_BY_CODE["hepatic_impairment_moderate"].explanation
    )
    assert "ketamine" in CONDITIONS_BY_CODE["cystitis"].label


# --- alcohol and gabapentinoids -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "said", "cited"),
    [
        (
            "alcohol",
            "no alcohol on the day of dosing or for 24 hours after it",
            [sources.SPRAVATO_US_PI, sources.DISCHARGE_ADVICE],
        ),
        (
            "gabapentinoid",
            "can depress breathing",
            [sources.FDA_GABAPENTINOIDS, sources.MHRA_GABAPENTINOIDS, sources.SPRAVATO_US_PI],
        ),
    ],
)
def test_alcohol_and_gabapentinoids_are_interaction_precautions(
    code: str, said: str, cited: list[sources.Source]
) -> None:
    # Arrange
    facts = replace(complete_facts(), medication_classes=(code,))

    # Act
    proposal = propose(facts, Thresholds())

    # Assert
    assert proposal.decision == Decision.ELIGIBLE_WITH_PRECAUTIONS
    assert rules_of(proposal.reasons) == [f"interaction.{code}"]
    assert said in proposal.reasons[0].text
    assert sorted(ref.source.title for ref in proposal.reasons[0].source.references) == sorted(
        source.title for source in cited
    )
    assert not MEDICATION_CLASSES_BY_CODE[code].rems_class


# --- every code has a citation, with no internal file names ----------------------------------------

INTERNAL = re.compile(
    r"domain\.md|design\.md|\.py\b|calcipedia|pesi\.com|droracle|arabpsychology|mrcpsych|comorbidity|"
    r"onlinemedicaltools|traumadissociation|docsbay|rula\.com|intake\.icu",
    re.IGNORECASE,
)
SCREENING = Path(rules.__file__).parent
INPUT_CHECKS = {
    "unknown_condition",
    "diastolic_above_systolic",
    "invalid_answer",
    "future",
    "alert_action_required",
    "invalid",
}
"""Refusal codes of the screening services that check input shape: no clinical rule, no citation."""


def every_reason_code() -> set[str]:
    """Every rule code a proposal can give, found by proposing with each condition for each agent,
    each medication class, each flagging measure, and each other rule tripped."""
    codes: set[str] = set()
    for agent in (Agent.ESKETAMINE, Agent.RACEMIC_KETAMINE):
        base = replace(complete_facts(), agent=agent, route=ROUTE_OF[agent])
        everything = replace(
            base,
            age_years=70,
            condition_codes=frozenset(CONDITIONS_BY_CODE),
            medication_classes=tuple(MEDICATION_CLASSES_BY_CODE),
            current_crisis=True,
            housing_stable=False,
            has_support_person=False,
            escort_available=False,
            systolic=200,
        )
        codes |= set(rules_of(propose(everything, Thresholds()).reasons))
        codes |= set(rules_of(propose(replace(base, age_years=17), Thresholds()).reasons))
    for flag in rules.MEASURE_REASON_SOURCES:
        codes.add(f"measure.{flag}")
    return codes


def test_every_reason_code_a_proposal_gives_is_registered_with_a_clean_citation() -> None:
    # Act
    codes = every_reason_code()

    # Assert
    assert codes == set(rules.reason_sources())
    for code in codes:
        citation = sources.citation_for(code)
        assert citation, code
        assert not INTERNAL.search(citation.text), (code, citation.text)


def test_every_refusal_code_the_screening_raises_is_registered_or_an_input_check() -> None:
    # Arrange: every `code="..."` in the screening's services and selectors.
    raised = set()
    for module in ("services.py", "selectors.py"):
        raised |= set(re.findall(r'code="([a-z0-9_]+)"', (SCREENING / module).read_text()))

    # Assert
    assert raised - INPUT_CHECKS == set(rules.REFUSAL_SOURCES)
    for code in rules.REFUSAL_SOURCES:
        citation = sources.citation_for(code)
        assert citation, code
        assert not INTERNAL.search(citation.text), (code, citation.text)
    for code in INPUT_CHECKS - {"future"}:
        assert sources.citation_for(code) is None, code
        assert code in sources.INPUT_CHECK_CODES, code


@pytest.mark.parametrize("spec", list(rules.INSTRUMENTS.values()), ids=list(rules.INSTRUMENTS))
def test_every_measure_cites_its_instrument_and_no_web_site(spec: rules.InstrumentSpec) -> None:
    # Assert
    expected = {
        "phq9": sources.PHQ9,
        "gad7": sources.GAD7,
        "pcl5": sources.PCL5,
        "des2": sources.DES2,
        "cssrs": sources.CSSRS,
    }[spec.code]
    assert [ref.source for ref in spec.source.references] == [expected]
    assert not INTERNAL.search(spec.source.text)


def test_no_internal_reference_left_in_the_screening_sources() -> None:
    # Assert: the rules, selectors and templates name no internal file or web-site nickname as a source.
    for path in [*SCREENING.glob("*.py"), *(SCREENING.parent / "templates" / "screening").glob("*.html")]:
        text = path.read_text()
        assert not re.search(r"domain\.md|design\.md|calcipedia|pesi\.com|droracle", text), path
