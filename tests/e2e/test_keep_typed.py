"""No lost input (issue 20) on the pages of several forms that post on their own (the dosing record,
a booking, a room): text typed into one form is still there after another form is submitted, whether
that submit succeeds (the page comes back redirected) or is refused (the page comes back with status
400). `keep_typed.js` keeps it in the tab's sessionStorage between the submit and the page that comes
back; once its own form is submitted, it is not put back again."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page
from playwright.sync_api import expect

from sessions.record import services

from ..factories import TEST_PASSWORD
from .bookings import booking_tomorrow
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WHAT_HAPPENED = "Nausea after the first reading, settled with rest"
ACTION_TAKEN = "Observed, water offered"


def save_reading(page: Page, systolic: str) -> None:
    form = page.locator("#vitals form")
    form.get_by_label("Systolic").fill(systolic)
    form.get_by_label("Diastolic").fill("80")
    form.get_by_label("Heart rate").fill("72")
    page.get_by_role("button", name="Save reading").click()


def test_the_dosing_record_keeps_what_was_typed_into_another_form(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    made = booking_tomorrow(admin={"email": "admin@harbour.test"}, monitor={"email": "nurse@harbour.test"})
    booking = made.booking
    session = services.session_open(actor=made.monitor, booking=booking)
    url = f"{live_server.url}/dosing/sessions/{session.public_id}/"
    sign_in(page, live_server.url, made.monitor.email, TEST_PASSWORD)
    page.goto(url)
    event = page.locator("#adverse_event form")
    what, action, severity = (
        event.locator("[name=description]"),
        event.locator("[name=action_taken]"),
        event.locator("[name=severity]"),
    )
    what.fill(WHAT_HAPPENED)
    action.fill(ACTION_TAKEN)
    severity.select_option("moderate")

    # A reading saved: the page comes back (redirected) with the adverse event still typed in.
    save_reading(page, "128")
    expect(page.get_by_role("cell", name="128/80")).to_be_visible()
    expect(what).to_have_value(WHAT_HAPPENED)
    expect(action).to_have_value(ACTION_TAKEN)
    expect(severity).to_have_value("moderate")
    shot(page, output_dir, "01-reading-saved-event-kept")

    # A reading refused (status 400): the refused reading and the adverse event are both still there.
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        save_reading(page, "abc")
    assert answer.value.status == 400
    expect(page.locator("#vitals .invalid-feedback").first).to_be_visible()
    expect(page.locator("#vitals form").get_by_label("Systolic")).to_have_value("abc")
    expect(what).to_have_value(WHAT_HAPPENED)
    expect(action).to_have_value(ACTION_TAKEN)
    expect(severity).to_have_value("moderate")
    shot(page, output_dir, "02-reading-refused-event-kept")

    # The adverse event submitted: it is recorded, and its text is not put back into the empty form,
    # neither now nor after the next reading.
    page.get_by_role("button", name="Record adverse event").click()
    expect(page.locator("#adverse_event").get_by_text(WHAT_HAPPENED)).to_be_visible()
    expect(what).to_have_value("")
    expect(action).to_have_value("")
    save_reading(page, "126")
    expect(page.get_by_role("cell", name="126/80")).to_be_visible()
    expect(what).to_have_value("")
    expect(action).to_have_value("")

    # What is put back is kept only from a submit to the page it brings: a later plain visit of the
    # page starts from what the server renders.
    what.fill("Typed, then the page left without a submit")
    save_reading(page, "124")
    expect(what).to_have_value("Typed, then the page left without a submit")
    page.goto(url)
    expect(what).to_have_value("")
    assert page.evaluate("Object.keys(window.sessionStorage)") == []


def test_a_booking_keeps_a_cancel_reason_typed_before_the_checks_are_saved(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    made = booking_tomorrow(admin={"email": "admin@harbour.test"}, monitor={"email": "nurse@harbour.test"})
    booking = made.booking
    sign_in(page, live_server.url, made.admin.email, TEST_PASSWORD)
    reason = page.get_by_label("Reason for cancelling")
    confirmed = page.get_by_label("Patient confirmed they will fast")
    given = page.get_by_label("Fasting instructions given")

    # Without the script (the control), the reason typed is lost when the checks are refused.
    page.route("**/keep_typed.js", lambda route: route.abort())
    page.goto(f"{live_server.url}/dosing/bookings/{booking.public_id}/")
    reason.fill("The patient has a chest infection")
    confirmed.check()
    page.get_by_role("button", name="Save checks").click()
    expect(page.get_by_text("Give the fasting instructions before confirming them.")).to_be_visible()
    expect(reason).to_have_value("")
    page.unroute("**/keep_typed.js")

    # With it: the checks refused (status 400), then saved, and the reason is still there each time.
    page.goto(f"{live_server.url}/dosing/bookings/{booking.public_id}/")
    reason.fill("The patient has a chest infection")
    confirmed.check()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Save checks").click()
    assert answer.value.status == 400
    expect(page.get_by_text("Give the fasting instructions before confirming them.")).to_be_visible()
    expect(confirmed).to_be_checked()
    expect(reason).to_have_value("The patient has a chest infection")
    given.check()
    page.get_by_role("button", name="Save checks").click()
    expect(page.get_by_text("The pre-visit checks are saved.")).to_be_visible()
    expect(given).to_be_checked()
    expect(reason).to_have_value("The patient has a chest infection")
    shot(page, output_dir, "03-booking-checks-saved-reason-kept")

    page.get_by_role("button", name="Cancel the booking").click()
    expect(page.get_by_text("Cancelled: The patient has a chest infection")).to_be_visible()
    booking.refresh_from_db()
    assert booking.cancellation_reason == "The patient has a chest infection"


def test_a_room_keeps_a_closure_reason_typed_before_the_hours_are_saved(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    made = booking_tomorrow(admin={"email": "admin@harbour.test"}, monitor={"email": "nurse@harbour.test"})
    room = made.room
    sign_in(page, live_server.url, made.admin.email, TEST_PASSWORD)
    page.goto(f"{live_server.url}/dosing/rooms/{room.public_id}/")
    reason = page.locator("[name=closure-reason]")
    reason.fill("Chair repair")

    # What would be kept, seen without leaving the page (a submit event that submits nothing): the
    # other forms' typed fields only, never the submitted form's, a hidden field or the CSRF token.
    hours = page.locator("form").filter(has=page.locator("input[name=action][value=hours]"))
    hours.get_by_label("Saturday opens").fill("10:00")
    hours.get_by_label("Saturday closes").fill("14:00")
    kept = json.loads(
        page.evaluate(
            """form => {
                form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
                return Object.values(Object.fromEntries(Object.entries(window.sessionStorage)))[0];
            }""",
            hours.element_handle(),
        )
    )
    assert list(kept["forms"].values()) == [{"closure-reason": "Chair repair"}]
    page.evaluate("window.sessionStorage.clear()")

    # The hours refused (a day with one time only): the reason is still there, the refused hours too.
    hours.get_by_label("Saturday closes").fill("")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Save hours").click()
    assert answer.value.status == 400
    expect(page.get_by_text("Give both times for Saturday, or neither.")).to_be_visible()
    expect(hours.get_by_label("Saturday opens")).to_have_value("10:00")
    expect(reason).to_have_value("Chair repair")
    shot(page, output_dir, "04-room-hours-refused-reason-kept")

    # The hours saved: the reason is still there.
    hours.get_by_label("Saturday closes").fill("14:00")
    page.get_by_role("button", name="Save hours").click()
    expect(page.get_by_text("The opening hours are saved.")).to_be_visible()
    expect(hours.get_by_label("Saturday closes")).to_have_value(re.compile(r"^14:00"))
    expect(reason).to_have_value("Chair repair")

    # The closure submitted with its reason: the reason is not put back afterwards.
    day = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    closure = page.locator("form").filter(has=page.locator("input[name=action][value=closure]"))
    closure.get_by_label("From (date)").fill(day)
    closure.get_by_label("From (time)").fill("08:00")
    closure.get_by_label("Until (date)").fill(day)
    closure.get_by_label("Until (time)").fill("12:00")
    page.get_by_role("button", name="Take out of service").click()
    expect(page.get_by_text("The room is out of service for that period.")).to_be_visible()
    expect(page.get_by_text(": Chair repair")).to_be_visible()
    expect(reason).to_have_value("")
    page.get_by_role("button", name="Save hours").click()
    expect(page.get_by_text("The opening hours are saved.")).to_be_visible()
    expect(reason).to_have_value("")
