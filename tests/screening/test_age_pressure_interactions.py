"""The catalogue's second pass through the services, the pages and the API: the age rule (with the
clinic's "only adults" setting), the esketamine contraindication only a second prescriber can override
(a single prescriber cannot sign it through, another one countersigning can), the alcohol and
gabapentinoid interaction classes, and the sources the pages and the API show for every reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from kaemdr import sources
from kaemdr.models import Role
from kaemdr.models import User
from pathways import services as pathway_services
from pathways.models import Pathway
from pathways.models import Stage
from screening import rules
from screening import selectors
from screening import services
from screening.models import Assessment
from screening.models import AssessmentStatus

from ..factories import PathwayFactory
from .helpers import screened

pytestmark = pytest.mark.django_db

SANACORA_URL = sources.SANACORA_2017.url
SMPC_URL = sources.SPRAVATO_SMPC.url
FDA_URL = sources.FDA_GABAPENTINOIDS.url
REASON = "Cardiology reviewed: pressure well controlled; benefit outweighs the risk."


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def years_before(day: dt.date, years: int) -> dt.date:
    """The same day `years` earlier; 29 February falls back to 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return dt.date(day.year - years, 2, 28)


def turns_18_tomorrow() -> dt.date:
    """A date of birth whose 18th birthday is tomorrow: the patient is 17 today (17 years and 364 days)."""
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    try:
        return tomorrow.replace(year=tomorrow.year - 18)
    except ValueError:  # tomorrow is 29 February: born on 1 March, 18 years before, turns 18 then
        return dt.date(tomorrow.year - 18, 3, 1)


def turned_18_today() -> dt.date:
    return years_before(timezone.localdate(), 18)


@pytest.fixture
def second_prescriber(make_user: Callable[..., User], clinic: Any) -> User:
    return make_user(Role.PRESCRIBER, clinic=clinic)


def assessing_patient(clinic: Any, prescriber: User, date_of_birth: dt.date) -> Pathway:
    pathway: Pathway = PathwayFactory(  # type: ignore[assignment]
        clinic=clinic,
        prescriber=prescriber,
        stage=Stage.ASSESSMENT,
        patient__registered_by=prescriber,
        patient__date_of_birth=date_of_birth,
    )
    return pathway


# --- the age rule -----------------------------------------------------------------------------------


def test_a_17_year_olds_page_proposes_not_eligible_with_the_age_reason_and_its_source(
    clinic: Any, prescriber: User, client_for: Callable[[User], Client]
) -> None:
    # Arrange
    pathway = assessing_patient(clinic, prescriber, turns_18_tomorrow())
    assessment = screened(pathway, prescriber, route=rules.Route.IV)

    # Act
    page = client_for(prescriber).get(reverse("assessment_detail", args=[assessment.public_id]))

    # Assert
    body = page.content.decode()
    assert page.status_code == 200
    assert '<span class="badge text-bg-danger" id="proposal-decision">Not eligible</span>' in body
    assert "Aged 17: the clinic treats adults (18 and over) only with any ketamine." in body
    assert "Rule <code>age.under_18</code>" in body
    assert f'<a href="{SANACORA_URL}">' in body
    assert "Clinic setting, Only adults (18 and over) are eligible for any ketamine" in body


def test_on_the_18th_birthday_the_age_reason_is_gone(
    clinic: Any, prescriber: User, client_for: Callable[[User], Client]
) -> None:
    # Arrange
    pathway = assessing_patient(clinic, prescriber, turned_18_today())
    assessment = screened(pathway, prescriber)

    # Act
    review = selectors.assessment_review(selectors.assessment_with_parts(assessment))
    body = client_for(prescriber).get(reverse("assessment_detail", args=[assessment.public_id])).content

    # Assert
    assert review.facts.age_years == 18
    assert review.proposal is not None
    assert review.proposal.decision == rules.Decision.ELIGIBLE
    assert b"age.under_18" not in body


@pytest.mark.parametrize(
    ("agent", "route", "adults_only", "rule"),
    [
        (rules.Agent.RACEMIC_KETAMINE, rules.Route.SUBLINGUAL, True, "age.under_18"),
        (rules.Agent.RACEMIC_KETAMINE, rules.Route.SUBLINGUAL, False, None),
        (rules.Agent.ESKETAMINE, rules.Route.INTRANASAL, True, "age.under_18.esketamine"),
        (rules.Agent.ESKETAMINE, rules.Route.INTRANASAL, False, "age.under_18.esketamine"),
    ],
    ids=["ketamine_setting_on", "ketamine_setting_off", "esketamine_setting_on", "esketamine_setting_off"],
)
def test_the_api_proposal_for_a_17_year_old_follows_the_agent_and_the_clinic_setting(
    clinic: Any,
    prescriber: User,
    clinic_admin: User,
    agent: str,
    route: str,
    adults_only: bool,
    rule: str | None,
) -> None:
    # Arrange: the clinic admin sets the setting through the API.
    settings = api(clinic_admin).get("/api/v1/screening-settings/").json()
    saved = api(clinic_admin).put(
        "/api/v1/screening-settings/", {**settings, "adults_only": adults_only}, format="json"
    )
    assert saved.status_code == 200
    assert saved.json()["adults_only"] is adults_only
    pathway = assessing_patient(clinic, prescriber, turns_18_tomorrow())
    assessment = screened(pathway, prescriber, agent=agent, route=route)

    # Act
    body = api(prescriber).get(f"/api/v1/assessments/{assessment.public_id}/").json()

    # Assert
    reasons = body["live_proposal"]["reasons"]
    if rule is None:
        assert body["live_proposal"]["decision"] == "eligible"
        assert reasons == []
    else:
        citation = sources.citation_for(rule)
        assert citation is not None
        assert body["live_proposal"]["decision"] == "not_eligible"
        assert [(r["rule"], r["kind"], r["source"], r["source_url"]) for r in reasons] == [
            (rule, "blocker", citation.text, citation.url)
        ]


def test_the_adults_only_setting_is_kept_when_a_put_leaves_it_out(clinic_admin: User) -> None:
    # Arrange
    client = api(clinic_admin)
    current = client.get("/api/v1/screening-settings/").json()
    client.put("/api/v1/screening-settings/", {**current, "adults_only": False}, format="json")

    # Act
    without = {key: value for key, value in current.items() if key != "adults_only"}
    kept = client.put("/api/v1/screening-settings/", without, format="json")

    # Assert
    assert kept.status_code == 200
    assert kept.json()["adults_only"] is False


def test_the_settings_page_turns_the_adults_only_setting_off(
    clinic_admin: User, client_for: Callable[[User], Client]
) -> None:
    # Arrange
    client = client_for(clinic_admin)
    page = client.get(reverse("screening_settings")).content.decode()
    assert "Only adults (18 and over) are eligible for any ketamine" in page

    # Act: the form posted without the box ticked.
    saved = client.post(
        reverse("screening_settings"),
        {"bp_systolic_threshold": "140", "bp_diastolic_threshold": "90", "screening_valid_days": "90"},
    )

    # Assert
    assert saved.status_code == 302
    assert selectors.screening_settings_for(clinic_admin.member_clinic_id).adults_only is False


def test_a_single_prescriber_cannot_sign_a_17_year_old_through(
    clinic: Any, prescriber: User, client_for: Callable[[User], Client]
) -> None:
    # Arrange
    pathway = assessing_patient(clinic, prescriber, turns_18_tomorrow())
    assessment = screened(pathway, prescriber)
    client = client_for(prescriber)
    url = reverse("assessment_sign", args=[assessment.public_id])

    # Act: no reason, then with a reason.
    refused = client.post(url, {"decision": "eligible"})
    signed = client.post(url, {"decision": "eligible", "reason": "Turns 18 tomorrow."})

    # Assert
    assert refused.status_code == 400
    assert (
        "The rules propose &#x27;Not eligible&#x27;. To decide &#x27;Eligible&#x27;, write the reason."
        in (refused.content.decode())
    )
    assert signed.status_code == 302
    assessment.refresh_from_db()
    assert assessment.status == AssessmentStatus.AWAITING_COUNTERSIGNATURE
    with pytest.raises(ValidationError, match="second prescriber"):
        pathway_services.pathway_move(
            actor=prescriber, pathway=pathway, to_stage=Stage.PREPARATION, reason="Go."
        )


# --- a rise in blood pressure or intracranial pressure, for esketamine ---------------------------------


@pytest.fixture
def no_clinic_second_signatures(clinic_admin: User) -> None:
    """The clinic's own list of second-signature codes emptied: the label's rule must still hold."""
    services.screening_settings_update(actor=clinic_admin, second_signature_codes=[])


def pressure_risk(clinic: Any, prescriber: User, agent: str = rules.Agent.ESKETAMINE) -> Assessment:
    pathway = assessing_patient(clinic, prescriber, dt.date(1970, 1, 1))
    route = rules.Route.INTRANASAL if agent == rules.Agent.ESKETAMINE else rules.Route.SUBLINGUAL
    return screened(
        pathway, prescriber, agent=agent, route=route, condition_codes=["pressure_rise_serious_risk"]
    )


@pytest.mark.usefixtures("no_clinic_second_signatures")
def test_the_pressure_contraindication_needs_a_second_prescriber_on_the_pages(
    clinic: Any, prescriber: User, second_prescriber: User, client_for: Callable[[User], Client]
) -> None:
    # Arrange
    assessment = pressure_risk(clinic, prescriber)
    page = (
        client_for(prescriber).get(reverse("assessment_detail", args=[assessment.public_id])).content.decode()
    )
    assert '<span class="badge text-bg-danger" id="proposal-decision">Not eligible</span>' in page
    assert "Contraindicated for esketamine: A rise in blood pressure or intracranial pressure" in page
    assert f'<a href="{SMPC_URL}">' in page
    first = client_for(prescriber)

    # Act: the one prescriber signs against the proposal and tries to countersign too.
    signed = first.post(
        reverse("assessment_sign", args=[assessment.public_id]),
        {"decision": "eligible_with_precautions", "reason": REASON},
    )
    countersign_url = reverse("assessment_countersign", args=[assessment.public_id])
    same = first.post(countersign_url, follow=True)

    # Assert: waiting for a second prescriber, the gate shut.
    assert signed.status_code == 302
    assessment.refresh_from_db()
    assert assessment.status == AssessmentStatus.AWAITING_COUNTERSIGNATURE
    assert assessment.second_signature_reasons[0] == (
        "A rise in blood pressure or intracranial pressure is a serious risk: the label contraindicates "
        "esketamine, so only a second prescriber can override it."
    )
    shown = same.content.decode()
    assert "The second signature must come from another prescriber" in shown
    assert "(Source: " in shown
    assert selectors.screening_gate_refusals(assessment.pathway) == [
        "The screening is waiting for a second prescriber's signature."
    ]

    # Act: another prescriber countersigns.
    other = client_for(second_prescriber).post(countersign_url)

    # Assert
    assert other.status_code == 302
    assessment.refresh_from_db()
    assert assessment.status == AssessmentStatus.SIGNED
    assert assessment.countersigned_by == second_prescriber
    assert selectors.screening_gate_refusals(assessment.pathway) == []


@pytest.mark.usefixtures("no_clinic_second_signatures")
def test_the_pressure_contraindication_needs_a_second_prescriber_through_the_api(
    clinic: Any, prescriber: User, second_prescriber: User
) -> None:
    # Arrange
    assessment = pressure_risk(clinic, prescriber)
    url = f"/api/v1/assessments/{assessment.public_id}/"
    client = api(prescriber)
    live = client.get(url).json()["live_proposal"]
    assert live["decision"] == "not_eligible"
    assert [r["rule"] for r in live["reasons"]] == ["condition.pressure_rise_serious_risk.esketamine"]
    assert live["reasons"][0]["source_url"] == SMPC_URL

    # Act
    signed = client.post(f"{url}sign/", {"decision": "eligible", "reason": REASON}, format="json")
    same = client.post(f"{url}countersign/", format="json")

    # Assert
    assert signed.status_code == 200
    assert signed.json()["status"] == "awaiting_countersignature"
    assert same.status_code == 400
    error = same.json()["errors"][0]
    assert error["code"] == "countersignature_same_prescriber"
    assert error["source"] == rules.REFUSAL_SOURCES["countersignature_same_prescriber"].text
    assert api(prescriber).get(url).json()["status"] == "awaiting_countersignature"

    # Act
    other = api(second_prescriber).post(f"{url}countersign/", format="json")

    # Assert
    assert other.status_code == 200
    assert other.json()["status"] == "signed"
    reasons = other.json()["proposal_reasons"]
    assert [(r["rule"], r["source_url"]) for r in reasons] == [
        ("condition.pressure_rise_serious_risk.esketamine", SMPC_URL)
    ]


@pytest.mark.usefixtures("no_clinic_second_signatures")
def test_for_racemic_ketamine_the_pressure_risk_stays_a_precaution_one_prescriber_signs(
    clinic: Any, prescriber: User
) -> None:
    # Arrange
    assessment = pressure_risk(clinic, prescriber, agent=rules.Agent.RACEMIC_KETAMINE)

    # Act
    signed = services.assessment_sign(
        actor=prescriber, assessment=assessment, decision="eligible_with_precautions"
    )

    # Assert
    assert signed.status == AssessmentStatus.SIGNED
    assert signed.proposal == "eligible_with_precautions"
    assert [r["rule"] for r in signed.proposal_reasons] == ["condition.pressure_rise_serious_risk"]


# --- alcohol and gabapentinoids ----------------------------------------------------------------------


def test_alcohol_and_gabapentinoids_are_flagged_through_the_api_and_on_the_page(
    assessing: Any, prescriber: User, client_for: Callable[[User], Client]
) -> None:
    # Arrange
    assessment = screened(assessing, prescriber)
    url = f"/api/v1/assessments/{assessment.public_id}/"
    client = api(prescriber)

    # Act
    for name, medication_class in (("Pregabalin", "gabapentinoid"), ("Alcohol", "alcohol")):
        added = client.post(
            f"{url}medications/", {"name": name, "medication_class": medication_class}, format="json"
        )
        assert added.status_code == 200, added.json()
    bad = client.post(f"{url}medications/", {"name": "Wine", "medication_class": "alcoholic"}, format="json")

    # Assert
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "medication_class"
    reasons = client.get(url).json()["live_proposal"]["reasons"]
    assert [(r["rule"], r["kind"]) for r in reasons] == [
        ("interaction.alcohol", "precaution"),
        ("interaction.gabapentinoid", "precaution"),
    ]
    assert reasons[1]["source_url"] == FDA_URL
    assert "MHRA Drug Safety Update" in reasons[1]["source"]
    page = (
        client_for(prescriber).get(reverse("assessment_detail", args=[assessment.public_id])).content.decode()
    )
    assert "Gabapentinoid (gabapentin, pregabalin): Adds to sedation and can depress breathing" in page
    assert "Alcohol, regular or heavy use: Adds to sedation: no alcohol on the day of dosing" in page
    assert f'<a href="{FDA_URL}">' in page


# --- sources shown for stored reasons and on the measure form ---------------------------------------


def test_a_stored_reason_shows_the_catalogues_citation_not_its_old_text(
    assessing: Any, prescriber: User, client_for: Callable[[User], Client]
) -> None:
    # Arrange: an assessment signed before the catalogue, its reason's source stored as old text.
    assessment = screened(assessing, prescriber, escort_available=False)
    services.assessment_sign(actor=prescriber, assessment=assessment, decision="eligible_with_precautions")
    old = [
        {
            "rule": "stability.escort",
            "kind": "precaution",
            "text": "No escort.",
            "source": "RCEM (domain.md 1.5)",
        }
    ]
    Assessment.objects.filter(pk=assessment.pk).update(proposal_reasons=old)
    citation = sources.citation_for("stability.escort")
    assert citation is not None

    # Act
    page = (
        client_for(prescriber).get(reverse("assessment_detail", args=[assessment.public_id])).content.decode()
    )
    body = api(prescriber).get(f"/api/v1/assessments/{assessment.public_id}/").json()

    # Assert
    assert "domain.md" not in page
    assert "Royal College of Emergency Medicine" in page
    assert body["proposal_reasons"] == [{**old[0], "source": citation.text, "source_url": citation.url}]


def test_the_measure_form_cites_the_instrument_without_web_site_names(
    assessing: Any, prescriber: User, client_for: Callable[[User], Client]
) -> None:
    # Arrange
    assessment = services.assessment_open(actor=prescriber, pathway=assessing)

    # Act
    page = client_for(prescriber).get(reverse("assessment_measure", args=[assessment.public_id, "phq9"]))

    # Assert
    body = page.content.decode()
    assert page.status_code == 200
    assert f'Source: <a href="{sources.PHQ9.url}">Kroenke, Spitzer and Williams 2001' in body
    for nickname in ("calcipedia", "domain.md", "pesi.com", "droracle"):
        assert nickname not in body
