"""Screening in the browser: a prescriber screens a demo patient end to end and signs; a patient with
an absolute contraindication cannot move on; a 17-year-old is proposed not eligible, and an esketamine
label contraindication waits for a second prescriber."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page
from playwright.sync_api import expect

from kaemdr import sources
from kaemdr.models import Role
from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from pathways.models import Stage
from screening.models import Assessment

from ..factories import TEST_PASSWORD
from ..factories import ClinicFactory
from ..factories import PathwayFactory
from ..factories import UserFactory
from ..screening.helpers import screened
from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def answer_all(page: Page, items: int, value: int) -> None:
    for item in range(1, items + 1):
        page.locator(f'input[name="item_{item}"][value="{value}"]').check()


def move(page: Page, to_stage: str, reason: str) -> None:
    page.get_by_label("Move to").select_option(to_stage)
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Move pathway").click()


def test_prescriber_screens_signs_and_moves_to_preparation(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    base = live_server.url
    eleanor = Pathway.objects.get(patient__record_number="HB-1001")
    sign_in(page, base, "prescriber@demo.kaemdr.test", DEMO_PASSWORD)

    page.goto(f"{base}/pathways/{eleanor.public_id}/")
    move(page, Stage.ASSESSMENT, "Referral reviewed.")
    page.get_by_role("button", name="Open the assessment").click()
    expect(page.get_by_role("heading", name="Screening of Eleanor Vance")).to_be_visible()

    # Stability, plan, vitals, history and the medication review, saved as a draft.
    for name, value in (
        ("current_crisis", "False"),
        ("housing_stable", "True"),
        ("has_support_person", "True"),
        ("escort_available", "True"),
    ):
        page.locator(f'input[name="{name}"][value="{value}"]').check()
    page.get_by_label("Planned agent").select_option("ketamine")
    page.get_by_label("Planned route").select_option("sublingual")
    page.get_by_label("Systolic (mmHg)").fill("128")
    page.get_by_label("Diastolic (mmHg)").fill("82")
    page.get_by_label("Heart rate (bpm)").fill("74")
    page.get_by_label("Weight (kg)").fill("64.5")
    page.get_by_label("I have reviewed the medical history against the catalogue below").check()
    page.get_by_label("The medication list below is complete (or the patient takes none)").check()
    page.get_by_role("button", name="Save the draft").click()
    expect(page.get_by_role("alert").first).to_contain_text("The assessment is saved.")
    expect(page.locator('input[name="current_crisis"][value="False"]')).to_be_checked()
    expect(page.get_by_label("Planned route")).to_have_value("sublingual")

    page.locator("#id_name").fill("Lorazepam")
    page.get_by_label("Class").select_option("benzodiazepine")
    page.get_by_label("Dose and timing").fill("1 mg as needed")
    page.get_by_role("button", name="Add medication").click()
    expect(page.locator("#medications")).to_contain_text("Lorazepam")

    # The five measures, item by item.
    for label, items, answer in (
        ("PHQ-9 (depression)", 9, 1),
        ("GAD-7 (anxiety)", 7, 2),
        ("PCL-5 (PTSD)", 20, 2),
        ("DES-II (dissociation)", 28, 10),
    ):
        page.get_by_role("link", name=f"Enter {label}").click()
        if label.startswith("PHQ-9"):
            answer_all(page, items - 1, answer)  # leave item 9 out first: the form says so
            page.get_by_role("button", name="Save and score").click()
            expect(page.get_by_text("Answer this item.")).to_be_visible()
            shot(page, output_dir, "01-measure-missing-item")
            assert_accessible(page, output_dir, "measure-form")
            page.locator('input[name="item_9"][value="0"]').check()
        else:
            answer_all(page, items, answer)
        page.get_by_role("button", name="Save and score").click()
        expect(page.get_by_role("alert").first).to_contain_text("recorded")
    page.get_by_role("link", name="Enter C-SSRS screener (suicide risk)").click()
    page.locator('input[name="q1"][value="false"]').check()
    page.locator('input[name="q2"][value="false"]').check()
    page.locator('input[name="q6_lifetime"][value="false"]').check()
    page.get_by_role("button", name="Save and score").click()

    # The proposal shows the precaution with its source; the prescriber signs it.
    expect(page.locator("#proposal-decision")).to_have_text("Eligible with precautions")
    expect(page.get_by_text("Benzodiazepine: Benzodiazepines may blunt")).to_be_visible()
    shot(page, output_dir, "02-assessment-proposal")
    assert_accessible(page, output_dir, "assessment-page")
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text("The eligibility decision is signed.")

    move(page, Stage.PREPARATION, "Screening signed; starting preparation.")
    expect(page.locator("#current-stage")).to_have_text("Preparation")
    shot(page, output_dir, "03-pathway-in-preparation")
    assert_accessible(page, output_dir, "pathway-with-screening")
    assert Assessment.objects.get(pathway=eleanor).decision == "eligible_with_precautions"

    # A patient whose signed screening found an absolute contraindication cannot move on.
    samuel = Pathway.objects.get(patient__record_number="HB-1010")
    page.goto(f"{base}/pathways/{samuel.public_id}/")
    expect(page.get_by_text("Preparation and dosing are locked:")).to_be_visible()
    move(page, Stage.PREPARATION, "Trying anyway.")
    expect(
        page.get_by_text("The signed screening decided the patient is not eligible.").first
    ).to_be_visible()
    expect(page.locator("#current-stage")).to_have_text("Assessment")
    shot(page, output_dir, "04-not-eligible-refused")
    samuel.refresh_from_db()
    assert samuel.stage == Stage.ASSESSMENT


def test_a_17_year_old_is_not_eligible_and_a_label_contraindication_needs_a_second_prescriber(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    """The age rule and the esketamine blood-pressure contraindication, each with its source linked; a
    single prescriber's signature leaves the second waiting; another prescriber countersigns."""
    base = live_server.url
    clinic = ClinicFactory(name="Harbour Clinic", time_zone="Europe/London")
    first = UserFactory(
        clinic=clinic, role=Role.PRESCRIBER, email="amara@harbour.test", full_name="Dr Amara Okafor"
    )
    second = UserFactory(
        clinic=clinic, role=Role.PRESCRIBER, email="ben@harbour.test", full_name="Dr Ben Hartley"
    )
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    try:  # the 18th birthday is tomorrow
        born = tomorrow.replace(year=tomorrow.year - 18)
    except ValueError:  # tomorrow is 29 February
        born = dt.date(tomorrow.year - 18, 3, 1)
    seventeen = PathwayFactory(
        clinic=clinic,
        prescriber=first,
        stage=Stage.ASSESSMENT,
        patient__registered_by=first,
        patient__given_name="Kai",
        patient__family_name="Morgan",
        patient__date_of_birth=born,
    )
    young = screened(seventeen, first, route="iv")
    at_risk = PathwayFactory(
        clinic=clinic,
        prescriber=first,
        stage=Stage.ASSESSMENT,
        patient__registered_by=first,
        patient__given_name="Rosa",
        patient__family_name="Lindgren",
    )
    risky = screened(
        at_risk, first, agent="esketamine", route="intranasal", condition_codes=["pressure_rise_serious_risk"]
    )

    sign_in(page, base, first.email, TEST_PASSWORD)
    page.goto(f"{base}/screening/assessments/{young.public_id}/")
    expect(page.locator("#proposal-decision")).to_have_text("Not eligible")
    reason = page.locator(".list-group-item", has_text="Aged 17")
    expect(reason).to_contain_text("the clinic treats adults (18 and over) only")
    expect(reason.get_by_role("link", name=re.compile("Sanacora et al. 2017"))).to_have_attribute(
        "href", sources.SANACORA_2017.url
    )
    expect(reason).to_contain_text("Clinic setting, Only adults (18 and over) are eligible for any ketamine")
    reason.scroll_into_view_if_needed()
    shot(page, output_dir, "05-aged-17-not-eligible")
    assert_accessible(page, output_dir, "assessment-aged-17")

    page.goto(f"{base}/screening/assessments/{risky.public_id}/")
    expect(page.locator("#proposal-decision")).to_have_text("Not eligible")
    contraindication = page.locator(".list-group-item", has_text="Contraindicated for esketamine")
    expect(contraindication.get_by_role("link", name=re.compile("section 4.3"))).to_have_attribute(
        "href", sources.SPRAVATO_SMPC.url
    )
    page.get_by_label("Eligible with precautions").check()
    page.get_by_label("Reason (required when deciding against the proposal)").fill(
        "Cardiology reviewed: pressure controlled; benefit outweighs the risk."
    )
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text("A second prescriber must countersign")
    page.goto(f"{base}/screening/assessments/{risky.public_id}/")
    expect(
        page.get_by_text("the label contraindicates esketamine, so only a second prescriber")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Countersign")).to_have_count(0)
    shot(page, output_dir, "06-awaiting-a-second-prescriber")
    page.get_by_role("button", name="Dr Amara Okafor").click()
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, base, second.email, TEST_PASSWORD)
    page.goto(f"{base}/screening/assessments/{risky.public_id}/")
    page.get_by_role("button", name="Countersign").click()
    expect(page.get_by_role("alert").first).to_contain_text("Countersigned: the screening is current.")
    shot(page, output_dir, "07-countersigned")
    risky.refresh_from_db()
    assert (risky.status, risky.countersigned_by) == ("signed", second)
