"""No lost input (issue 20), in the browser: on a draft screening and a draft integration note, every
field of the page is typed into, each sub-form's button is pressed ("Add medication", "Remove", "Update"
a review, "Add experiment"), and everything typed elsewhere on the page is still there afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Page
from playwright.sync_api import expect

from integration import services as integration_services
from kaemdr.models import User
from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from screening.models import Assessment

from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIELDS_OF = """formId => {
    const form = document.getElementById(formId);
    const values = {};
    for (const element of form.elements) {
        if (!element.name || ["hidden", "submit", "button"].includes(element.type)) continue;
        if (element.type === "radio" || element.type === "checkbox") {
            values[element.name] = values[element.name] || [];
            if (element.checked) values[element.name].push(element.value);
        } else {
            values[element.name] = element.value;
        }
    }
    return values;
}"""
"""Every field of the page's form (those placed anywhere on the page with `form="id"` included) and
its value: the checked values of a radio group or checkboxes, the text of the others."""


def type_into_every_field(page: Page, form_id: str, chosen: dict[str, str]) -> dict[str, Any]:
    """Type into, choose or tick every field of the form (`chosen` gives a value where one matters,
    a text field gets its own sentence, a radio group its first choice not yet checked, a checkbox is
    ticked); the fields' values afterwards."""
    names = page.evaluate(FIELDS_OF, form_id)
    for name in names:
        controls = page.locator(f'[form="{form_id}"][name="{name}"]')
        first = controls.first
        kind = first.get_attribute("type") or first.evaluate("element => element.tagName.toLowerCase()")
        if kind in ("date", "time"):
            continue  # the note's date and time are filled in already and kept as they are
        if kind == "radio":
            value = chosen.get(name) or controls.nth(1).get_attribute("value")
            page.locator(f'[form="{form_id}"][name="{name}"][value="{value}"]').check()
        elif kind == "checkbox":
            controls.first.check()
        elif kind == "select":
            if name in chosen:
                first.select_option(chosen[name])
            else:
                options = first.locator("option")
                first.select_option(index=options.count() - 1)
        else:
            first.fill(chosen.get(name, f"Typed into {name} on the page."))
    return page.evaluate(FIELDS_OF, form_id)


def kept(page: Page, form_id: str, typed: dict[str, Any], consumed: set[str]) -> None:
    now = page.evaluate(FIELDS_OF, form_id)
    lost = {name: (value, now.get(name)) for name, value in typed.items() if name not in consumed}
    lost = {name: pair for name, pair in lost.items() if pair[0] != pair[1]}
    assert not lost, f"typed and then lost (typed, now): {lost}"


DRAFT_VALUES = {
    "systolic": "124",
    "diastolic": "79",
    "heart_rate": "66",
    "weight_kg": "71.5",
    "agent": "ketamine",
    "route": "sublingual",
    "current_crisis": "False",
    "housing_stable": "True",
    "has_support_person": "True",
    "escort_available": "True",
    "name": "Sertraline",
    "dose": "50 mg mornings",
    "decision": "eligible",
}
MEDICATION_FIELDS = {"name", "medication_class", "dose"}


def test_a_draft_screening_keeps_everything_typed_when_a_medication_is_added_or_removed(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    draft = Assessment.objects.filter(status="draft").select_related("pathway__prescriber").first()
    assert draft is not None
    prescriber: User = draft.pathway.prescriber
    sign_in(page, live_server.url, prescriber.email, DEMO_PASSWORD)
    page.goto(f"{live_server.url}/screening/assessments/{draft.public_id}/")

    typed = type_into_every_field(page, "assessment-page", DRAFT_VALUES)
    assert typed["support_notes"] == "Typed into support_notes on the page."
    assert typed["reason"] == "Typed into reason on the page."  # the sign-off's reason, on the page too
    shot(page, output_dir, "1-typed")
    page.get_by_role("button", name="Add medication").click()
    expect(page.get_by_role("alert").first).to_contain_text("Sertraline is on the medication list.")
    expect(page.locator("#medications")).to_contain_text("50 mg mornings")
    kept(page, "assessment-page", typed, consumed=MEDICATION_FIELDS)
    shot(page, output_dir, "2-medication-added")
    assert_accessible(page, output_dir, "2-medication-added")

    page.locator('[name="support_notes"]').fill("Her sister drives her home.")
    again = page.evaluate(FIELDS_OF, "assessment-page")
    page.get_by_role("button", name="Remove Sertraline").click()
    expect(page.locator("#medications")).not_to_contain_text("Sertraline")
    kept(page, "assessment-page", again, consumed=MEDICATION_FIELDS)
    shot(page, output_dir, "3-medication-removed")
    page.set_viewport_size({"width": 1280, "height": 900})
    shot(page, output_dir, "3-medication-removed-1280")


def test_a_draft_note_keeps_everything_typed_when_a_review_is_updated_or_an_experiment_added(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    oliver = Pathway.objects.select_related("therapist").get(patient__record_number="HB-1006")
    note = integration_services.note_open(actor=oliver.therapist, pathway=oliver)
    sign_in(page, live_server.url, oliver.therapist.email, DEMO_PASSWORD)
    page.goto(f"{live_server.url}/integration/notes/{note.public_id}/")
    reviews = page.locator("[data-testid^=review-]")
    assert reviews.count() >= 1  # experiments agreed in earlier notes, to review here

    chosen = {"area": "sleep", "description": "Phone out of the bedroom at 22:30."}
    for name in page.evaluate(FIELDS_OF, "note-page"):
        if name.endswith("-state"):
            chosen[name] = "tried"
    typed = type_into_every_field(page, "note-page", chosen)
    assert typed["perception_shift"] == "Typed into perception_shift on the page."
    shot(page, output_dir, "1-typed")
    reviews.first.get_by_role("button", name="Update").click()
    expect(page.get_by_role("alert").first).to_contain_text("is tried")
    review_fields = {name for name in typed if name.startswith("e") and "-" in name}
    kept(page, "note-page", typed, consumed={"area", "description"} | review_fields)
    expect(page.locator("#experiments")).to_contain_text("Phone out of the bedroom at 22:30.")
    shot(page, output_dir, "2-review-updated")
    assert_accessible(page, output_dir, "2-review-updated")

    page.get_by_label("Notes").fill("Settled by the end; agreed to call if the nights get worse.")
    page.get_by_label("Area").select_option("relationships")
    page.get_by_label("What exactly").fill("Call Sam on Thursdays.")
    again = page.evaluate(FIELDS_OF, "note-page")
    page.get_by_role("button", name="Add experiment").click()
    expect(page.get_by_role("alert").first).to_contain_text("The experiment is agreed.")
    kept(page, "note-page", again, consumed={"area", "description"} | review_fields)
    expect(page.locator("#experiments")).to_contain_text("Call Sam on Thursdays.")
    shot(page, output_dir, "3-experiment-added")
    page.set_viewport_size({"width": 1280, "height": 900})
    shot(page, output_dir, "3-experiment-added-1280")


def test_the_emdr_plan_keeps_everything_typed_when_a_target_is_added_or_refused_to_start(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    from sessions.emdr import selectors as emdr_selectors
    from sessions.models import EmdrPlan

    demo_clinic_load()
    plan = next(
        p
        for p in EmdrPlan.objects.select_related("pathway__therapist").order_by("pk")
        if {c.code for c in emdr_selectors.plan_state(p).checklist if not c.met} - OBSERVED
        and p.targets.filter(kind="past_memory", state="not_started").exists()
    )
    gated = plan.targets.filter(kind="past_memory", state="not_started").order_by("order").first()
    assert gated is not None
    sign_in(page, live_server.url, plan.pathway.therapist.email, DEMO_PASSWORD)
    page.goto(live_server.url + reverse("emdr_plan", args=[plan.public_id]))
    open_details = "details => details.forEach(d => { d.open = true; })"
    page.locator("details").evaluate_all(open_details)

    reason = f"o-{gated.public_id}-reason"
    chosen = {"kind": "present_trigger", "sud": "6", "voc": "3", reason: "Typed override reason."}
    typed = type_into_every_field(page, "emdr-plan-page", chosen)
    shot(page, output_dir, "1-typed")
    page.get_by_role("button", name=f"Start {gated.title}").click()
    expect(page.get_by_role("alert").first).to_contain_text(f"{gated.title} cannot start yet")
    kept(page, "emdr-plan-page", typed, consumed=set())
    shot(page, output_dir, "2-start-refused")
    assert_accessible(page, output_dir, "2-start-refused")

    page.get_by_role("button", name="Add target").click()
    expect(page.get_by_role("alert").first).to_contain_text("is on the plan.")
    target_fields = set(TARGET_FIELDS)
    after = page.evaluate(FIELDS_OF, "emdr-plan-page")
    assert after[reason] == "Typed override reason."  # kept, not signed
    assert {k: v for k, v in after.items() if k not in target_fields} == {
        k: v for k, v in typed.items() if k not in target_fields
    }
    shot(page, output_dir, "3-target-added")
    page.set_viewport_size({"width": 1280, "height": 900})
    shot(page, output_dir, "3-target-added-1280")


OBSERVED = {
    "emdr_readiness_dual_awareness",
    "emdr_readiness_affect_tolerance",
    "emdr_readiness_dissociation",
}
"""The readiness criteria the page's observations tick; a plan with another unmet stays gated."""
TARGET_FIELDS = {
    "kind",
    "title",
    "image",
    "negative_cognition",
    "positive_cognition",
    "voc",
    "emotions",
    "sud",
    "body_location",
    "theme",
    "belongs_to",
}
