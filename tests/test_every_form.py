"""Every form works (issue 16): "a test renders every page in each of its states for each role that sees
it, and posts every form it shows to the form's own action, asserting none answers 404, 405 or 500."

`build_clinic` makes one clinic with a member of staff per role and records in each of their states:
pathways at every stage, screenings draft, awaiting a second signature, signed and superseded, safety
alerts open and acknowledged, bookings booked, cancelled, today's and completed, racemic ketamine and
esketamine dosing records pre-dose, dosed, discharged and signed, an EMDR plan with targets and a
logged session, integration notes draft and signed with an experiment, follow-ups open and done, PDF
summaries being made, failed and ready, staff active, deactivated and invited, settings, accounts.

Then each visitor (each role, a prescriber between password and second factor, and an anonymous
visitor) crawls the app breadth-first with the test client from where they start, along the pages'
own links, and afterwards opens every route of the project filled with each record of its kind (the
role may not be allowed to see it):

- a page reached by a link or a redirect must answer 200 or a redirect (403, 404, 405 or 500 there is
  a broken link); a route filled in by the test only must not fail (500, or an exception);
- every `<form>` on every page is sent as a browser sends it with its default values (once per submit
  button, `formaction` honoured; CSRF token and cookie carried, CSRF checks enforced) to its own
  action: the answer must not be 404, 405 or 500, nor the page a redirect leads to; a POST form
  without its CSRF token is reported too. GET forms (filters, search) are sent the same way;
- every route of the project is reached at least once (rendered, or posted to by a form), so a page or
  an action that no state of this clinic shows is reported rather than silently untested.

Every request runs in a savepoint that is rolled back, and every submission from a freshly signed-in
client, so no submission (signing out everywhere included) changes what the next page shows. All the
failures of every visitor are collected and reported at once as (visitor, page, form action, status).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import Resolver404
from django.urls import resolve
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from integration import services as integration_services
from integration import summary_services
from integration.models import Summary
from integration.models import SummaryStatus
from kaemdr import accounts
from kaemdr import services as staff_services
from kaemdr import two_factor
from kaemdr.models import Clinic
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import Stage
from screening import services as screening_services
from screening.models import AssessmentStatus
from screening.rules import Instrument
from sessions.booking import course_rules
from sessions.booking import course_services
from sessions.booking import rota_services
from sessions.booking import services as dosing
from sessions.emdr import services as emdr_services
from sessions.models import Booking
from sessions.models import BookingStatus
from sessions.models import DosingSession
from sessions.models import Room
from sessions.models import SessionStatus
from sessions.models import VitalsReading
from sessions.record import services as record_services

from .access import PLACEHOLDER
from .access import RESOURCE_OF_SEGMENT
from .access import fill
from .access import routes
from .conftest import sign_in_verified
from .factories import ClinicFactory
from .factories import FollowUpFactory
from .factories import PathwayFactory
from .factories import PatientFactory
from .factories import RoomFactory
from .factories import SignedScreeningFactory
from .factories import UserFactory
from .screening.helpers import fill as fill_assessment
from .sessions.dosing_day import backdate_dose
from .sessions.dosing_day import discharge
from .sessions.dosing_day import settled
from .test_access_by_construction import PUBLIC

HOST = "testserver"
BROKEN = (404, 405, 500)
MAX_LINKED_PAGES = 400
"""Pages reached by links, per visitor: the crawl stops there and says so (the routes filled in by
the test are finite and come on top)."""

NOT_FETCHED = frozenset(
    {"logout", "summary_download", "patient_export_download", "room_calendar_feed", "health"}
)
"""Routes never opened with GET: files to download, the private calendar feed, the load balancers'
probe, and signing out (its form is posted like any other)."""

NOT_PAGES = ("/static/", "/api/", "/admin/")
"""Static files, the JSON API and its documentation, the platform admin: not the app's pages."""


# --- Reading a page ---------------------------------------------------------------------------------------


@dataclass
class Control:
    """One form control as the page declares it."""

    tag: str
    name: str
    kind: str = ""
    value: str = ""
    checked: bool = False
    disabled: bool = False
    multiple: bool = False
    options: list[tuple[str, bool, bool]] = field(default_factory=list)  # (value, selected, disabled)
    form_id: str | None = None
    formaction: str | None = None
    formmethod: str | None = None


@dataclass
class Form:
    method: str
    action: str
    element_id: str | None
    controls: list[Control] = field(default_factory=list)


@dataclass(frozen=True)
class Submission:
    """What a browser sends when the form is submitted (with one of its submit buttons, if any)."""

    method: str
    action: str
    data: tuple[tuple[str, str], ...]

    @property
    def has_csrf_token(self) -> bool:
        return any(name == "csrfmiddlewaretoken" and value for name, value in self.data)

    def as_dict(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for name, value in self.data:
            grouped.setdefault(name, []).append(value)
        return grouped


class PageParser(HTMLParser):
    """The links and forms of a page, read with the standard library's parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._owned_by_id: list[Control] = []  # controls with `form="id"`, attached at the end
        self._select: Control | None = None
        self._option: list[Any] | None = None  # [value attribute or None, selected, disabled, text]
        self._textarea: Control | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "form":
            self._form = Form(a.get("method", "get").lower() or "get", a.get("action", ""), a.get("id"))
            self.forms.append(self._form)
        elif tag in ("input", "button", "select", "textarea"):
            kind = a.get("type", {"button": "submit", "input": "text"}.get(tag, "")).lower()
            control = Control(
                tag=tag,
                name=a.get("name", ""),
                kind=kind,
                value=a.get("value", "on" if kind in ("checkbox", "radio") else ""),
                checked="checked" in a,
                disabled="disabled" in a,
                multiple="multiple" in a,
                form_id=a.get("form"),
                formaction=a.get("formaction"),
                formmethod=a.get("formmethod"),
            )
            if control.form_id is not None:
                self._owned_by_id.append(control)
            elif self._form is not None:
                self._form.controls.append(control)
            if tag == "select":
                self._select = control
            elif tag == "textarea":
                self._textarea = control
        elif tag == "option" and self._select is not None:
            self._close_option()
            self._option = [a.get("value"), "selected" in a, "disabled" in a, ""]

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option[3] += data
        elif self._textarea is not None:
            self._textarea.value += data

    def _close_option(self) -> None:
        if self._option is not None and self._select is not None:
            value, selected, disabled, text = self._option
            self._select.options.append((text.strip() if value is None else value, selected, disabled))
        self._option = None

    def handle_endtag(self, tag: str) -> None:
        if tag in ("option", "optgroup", "select"):
            self._close_option()
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            if self._textarea.value.startswith("\n"):  # a browser drops the newline after <textarea>
                self._textarea.value = self._textarea.value[1:]
            self._textarea = None
        elif tag == "form":
            self._form = None

    def close(self) -> None:
        super().close()
        by_id = {form.element_id: form for form in self.forms if form.element_id}
        for control in self._owned_by_id:
            if control.form_id in by_id:
                by_id[control.form_id].controls.append(control)


def parse_page(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return parser


def submissions(form: Form) -> list[Submission]:
    """Each way the form can be sent with its default values: once per submit button (its name and
    value included, its `formaction`/`formmethod` honoured), or once when it has none."""
    pairs: list[tuple[str, str]] = []
    buttons: list[Control] = []
    for control in form.controls:
        if control.disabled:
            continue
        if control.tag == "button" or control.kind in ("submit", "image", "button", "reset"):
            if control.kind in ("submit", "image"):
                buttons.append(control)
        elif not control.name or control.kind == "file":
            continue
        elif control.tag == "select":
            enabled = [(value, selected) for value, selected, disabled in control.options if not disabled]
            chosen = [value for value, selected in enabled if selected]
            if not chosen and enabled and not control.multiple:
                chosen = [enabled[0][0]]
            pairs += [(control.name, value) for value in chosen]
        elif control.kind in ("checkbox", "radio"):
            if control.checked:
                pairs.append((control.name, control.value))
        else:
            pairs.append((control.name, control.value))
    if not buttons:
        return [Submission(form.method, form.action, tuple(pairs))]
    made: list[Submission] = []
    for button in buttons:
        submission = Submission(
            (button.formmethod or form.method).lower(),
            form.action if button.formaction is None else button.formaction,
            tuple(pairs + ([(button.name, button.value)] if button.name else [])),
        )
        if submission not in made:
            made.append(submission)
    return made


def local_path(base: str, href: str) -> str | None:
    """`href` resolved against the page at `base`, as a path with its query (no fragment); None when it
    leaves the app (another host, mailto:, a fragment of the same page)."""
    href = href.strip()
    if not href or href.startswith(("#", "mailto:", "tel:", "javascript:", "data:")):
        return None
    parts = urlsplit(urljoin(f"http://{HOST}{base}", href))
    if parts.scheme not in ("http", "https") or parts.netloc != HOST:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def route_name(path: str) -> str | None:
    try:
        return resolve(urlsplit(path).path).url_name
    except Resolver404:
        return None


def fetchable(path: str) -> bool:
    return not path.startswith(NOT_PAGES) and route_name(path) not in NOT_FETCHED


def variant_key(path: str) -> tuple[str, frozenset[str]]:
    """A path is opened once per set of query parameters: `?page=2` after `?page=1`, or the week after
    next on the calendar, is not followed any further."""
    parts = urlsplit(path)
    return parts.path, frozenset(name for name, _ in parse_qsl(parts.query, keep_blank_values=True))


# --- Sending requests, each in a savepoint that is rolled back ---------------------------------------------


@dataclass(frozen=True)
class Failure:
    visitor: str
    page: str
    action: str
    status: int | str
    detail: str = ""

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.visitor}: page {self.page} -> {self.action}: {self.status}{detail}"


@dataclass
class Outcome:
    status: int
    response: HttpResponse | None = None
    error: str = ""
    redirected_to: str | None = None
    final_status: int | None = None


def rolled_back(request: Callable[[], Outcome]) -> Outcome:
    """Make a request (and whatever it writes) in a savepoint that is then rolled back. An exception the
    view raises counts as a 500."""
    try:
        with transaction.atomic():
            outcome = request()
            transaction.set_rollback(True)
    except Exception as error:
        return Outcome(500, error=f"{type(error).__name__}: {str(error)[:200]}")
    return outcome


def redirect_target(response: HttpResponse, base: str) -> str | None:
    if response.status_code not in (301, 302, 303, 307, 308) or not response.has_header("Location"):
        return None
    return local_path(base, response["Location"])


@dataclass
class FormChecker:
    """Sends the forms of pages as a visitor would, each from a fresh client made by `sign_in` (the
    page's CSRF cookie carried over), and records those that answer 404, 405 or 500."""

    visitor: str
    sign_in: Callable[[], Client]
    failures: list[Failure] = field(default_factory=list)
    reached: set[str] = field(default_factory=set)
    sent: set[tuple[str, str, tuple[tuple[str, str], ...]]] = field(default_factory=set)
    posted: int = 0

    def check_page(self, page: str, html: str, csrf_cookie: str | None) -> None:
        for form in parse_page(html).forms:
            for submission in submissions(form):
                self.check(page, submission, csrf_cookie)

    def check(self, page: str, submission: Submission, csrf_cookie: str | None) -> None:
        target = local_path(page, submission.action or page)
        if target is None or target.startswith(NOT_PAGES):
            return
        if submission.method != "post":
            query = urlencode(submission.data)
            target = urlsplit(target).path + (f"?{query}" if query else "")
        # The same request from another page (the sign-out form is on every page) is sent once.
        data = tuple(pair for pair in submission.data if pair[0] != "csrfmiddlewaretoken")
        if (submission.method, target, data) in self.sent:
            return
        self.sent.add((submission.method, target, data))
        method = "POST" if submission.method == "post" else "GET"
        if method == "POST" and not submission.has_csrf_token:
            self.failures.append(Failure(self.visitor, page, f"POST {target}", "no CSRF token"))
        outcome = rolled_back(lambda: self._send(method, target, submission, csrf_cookie))
        self.posted += method == "POST"
        if outcome.status in BROKEN:
            self.failures.append(
                Failure(self.visitor, page, f"{method} {target}", outcome.status, outcome.error)
            )
        elif outcome.final_status in BROKEN:
            self.failures.append(
                Failure(
                    self.visitor,
                    page,
                    f"{method} {target}",
                    f"{outcome.status}, then {outcome.final_status}",
                    ", ".join(filter(None, [f"at {outcome.redirected_to}", outcome.error])),
                )
            )
        else:
            self.reached.add(route_name(target) or target)
            if outcome.final_status == 200 and outcome.redirected_to:
                self.reached.add(route_name(outcome.redirected_to) or outcome.redirected_to)

    def _send(self, method: str, target: str, submission: Submission, csrf_cookie: str | None) -> Outcome:
        client = self.sign_in()
        if csrf_cookie:
            client.cookies["csrftoken"] = csrf_cookie
        response = client.post(target, submission.as_dict()) if method == "POST" else client.get(target)
        outcome = Outcome(response.status_code, response)
        after = redirect_target(response, target)
        if after is not None and fetchable(after):
            outcome.redirected_to = after
            try:
                outcome.final_status = client.get(after).status_code
            except Exception as error:
                outcome.final_status, outcome.error = 500, f"{type(error).__name__}: {str(error)[:200]}"
        return outcome


# --- The crawl ---------------------------------------------------------------------------------------------


@dataclass
class Visitor:
    """Who crawls: a label, a way to make a client in their state, where they start, and the routes
    filled in by the test that they open after following the links."""

    label: str
    sign_in: Callable[[], Client]
    start: str
    seeds: list[str] = field(default_factory=list)


@dataclass
class CrawlReport:
    pages: int
    linked_pages: int
    posted: int
    failures: list[Failure]
    reached: set[str]


def crawl(visitor: Visitor, post_only: set[str]) -> CrawlReport:
    """Breadth-first from the visitor's start along the pages' own links (at most `MAX_LINKED_PAGES`),
    then its `seeds`, routes filled in by the test that the visitor may not be allowed to see (the links of
    those pages are followed too). Every form of every page is sent. `post_only` gathers the routes
    that answer GET with 405, not opened again for the other records and visitors."""
    client = visitor.sign_in()
    checker = FormChecker(visitor.label, visitor.sign_in)
    links: deque[tuple[str, str]] = deque([(visitor.start, "(start)")])
    routes_left = deque(visitor.seeds)
    seen: set[tuple[str, frozenset[str]]] = set()
    statuses: dict[str, int] = {}
    linked_from: dict[str, str] = {}
    errored: set[str] = set()  # already reported with their exception
    pages = linked_pages = 0
    while links or routes_left:
        if links:
            path, referrer = links.popleft()
            linked_from.setdefault(path, referrer)
        else:
            path, referrer = routes_left.popleft(), ""
            if route_name(path) in post_only:
                continue
        if variant_key(path) in seen or not fetchable(path):
            continue
        if referrer and linked_pages >= MAX_LINKED_PAGES:
            checker.failures.append(
                Failure(
                    visitor.label, referrer, f"GET {path}", "not opened", f"over {MAX_LINKED_PAGES} pages"
                )
            )
            break
        seen.add(variant_key(path))
        pages += 1
        linked_pages += bool(referrer)

        def get(path: str = path) -> Outcome:
            response = client.get(path)
            return Outcome(response.status_code, response)

        outcome = rolled_back(get)
        statuses[path] = outcome.status
        if outcome.response is None:
            checker.failures.append(
                Failure(visitor.label, referrer or "-", f"GET {path}", 500, outcome.error)
            )
            errored.add(path)
            continue
        response = outcome.response
        name = route_name(path)
        if outcome.status == 405 and not referrer and name:
            post_only.add(name)
        after = redirect_target(response, path)
        if after is not None:
            links.append((after, path))
            continue
        if outcome.status != 200:
            continue
        checker.reached.add(name or path)
        if "text/html" not in response.get("Content-Type", ""):
            continue
        page = parse_page(response.content.decode())
        for href in page.links:
            link = local_path(path, href)
            if link is not None and fetchable(link):
                links.append((link, path))
        csrf = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else None
        for form in page.forms:
            for submission in submissions(form):
                checker.check(path, submission, csrf)
    # A page the visitor is shown a link to (or sent to) must open.
    failures = [
        Failure(visitor.label, linked_from[path], f"GET {path}", status, "a link or redirect")
        for path, status in statuses.items()
        if path in linked_from and path not in errored and status in (403, *BROKEN)
    ]
    # Whether a broken form's page is one a link leads to, or one only its address opens.
    failures += [
        Failure(
            f.visitor,
            f.page,
            f.action,
            f.status,
            ", ".join(filter(None, [f.detail, "no link leads to the page"])),
        )
        if f.page in statuses and f.page not in linked_from
        else f
        for f in checker.failures
    ]
    return CrawlReport(pages, linked_pages, checker.posted, failures, checker.reached)


# --- The clinic ------------------------------------------------------------------------------------------


@dataclass
class ClinicWorld:
    """The clinic, one member of staff per role, and its records by kind (the kinds of
    `RESOURCE_OF_SEGMENT`, which fill the routes' ids)."""

    clinic: Clinic
    staff: dict[str, User]
    records: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, kind: str, *objects: Any) -> None:
        self.records.setdefault(kind, []).extend(objects)


def _at(clinic: Clinic, days: int, hour: int) -> dt.datetime:
    day = timezone.localdate() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, 0), tzinfo=zoneinfo.ZoneInfo(clinic.time_zone))


def _dosing_record(world: ClinicWorld, pathway: Pathway, room: Room, status: str, day: int) -> DosingSession:
    """A monitoring record driven through the services to `status` (the observation moved 150 minutes
    back with `tests/sessions/dosing_day.py`). The dose, discharge and signature fall back to writing
    the state directly when the rules (being tightened) refuse, so the page is shown in that state
    whatever the rules ask for today."""
    admin, monitor = world.staff[Role.CLINIC_ADMIN], world.staff[Role.MONITOR]
    booking = dosing.booking_create(
        actor=admin,
        pathway=pathway,
        room=room,
        starts_at=_at(world.clinic, day, 9),
        prescriber=world.staff[Role.PRESCRIBER],
        monitor=monitor,
    )
    session = record_services.session_open(actor=monitor, booking=booking)
    if status == SessionStatus.PRE_DOSE:
        return session
    esketamine = booking.agent == "esketamine"
    dose = 56 if esketamine else 100
    record_services.session_checks_update(
        actor=monitor, session=session, fasting_confirmed=True, escort_present=True, consent_confirmed=True
    )
    record_services.vitals_record(
        actor=monitor,
        session=session,
        systolic=128,
        diastolic=82,
        heart_rate=76,
        spo2=98,
        respiratory_rate=14,
    )
    now = timezone.now()
    try:
        record_services.dose_start(actor=monitor, session=session, dose_mg=dose, lot_number="LOT-1")
    except ValidationError:
        DosingSession.objects.filter(pk=session.pk).update(
            status=SessionStatus.DOSED,
            dose_mg=dose,
            lot_number="LOT-1",
            dose_started_at=now,
            dosed_by=monitor,
            device_times=[now.isoformat()] if esketamine else [],
        )
    session.refresh_from_db()
    if status == SessionStatus.DOSED:
        return session
    backdate_dose(session, 150)
    # Readings during the observation (written directly: the services take readings as they happen).
    started = session.dose_started_at or now
    VitalsReading.objects.bulk_create(
        VitalsReading(
            session=session,
            taken_at=started + dt.timedelta(minutes=minutes),
            systolic=126,
            diastolic=80,
            heart_rate=72,
            spo2=98,
            respiratory_rate=14,
            recorded_by=monitor,
        )
        for minutes in (40, 90)
    )
    try:
        settled(monitor, session)
        session = discharge(monitor, session)
    except ValidationError:
        DosingSession.objects.filter(pk=session.pk).update(
            status=SessionStatus.DISCHARGED,
            alert_and_oriented=True,
            escort_present_at_discharge=True,
            discharged_at=timezone.now(),
            discharged_by=monitor,
        )
        session.refresh_from_db()
    if status == SessionStatus.DISCHARGED:
        return session
    try:
        if esketamine:
            record_services.pmf_update(
                actor=monitor,
                session=session,
                pmf_first_treatment=False,
                pmf_sedation=True,
                pmf_dissociation=True,
                pmf_respiratory_depression=False,
                pmf_ready_minutes=95,
            )
        session = record_services.session_sign(actor=monitor, session=session)
    except ValidationError:
        DosingSession.objects.filter(pk=session.pk).update(
            status=SessionStatus.SIGNED, signed_by=monitor, signed_at=timezone.now()
        )
        Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.COMPLETED)
        session.refresh_from_db()
    return session


def build_clinic() -> ClinicWorld:
    """One clinic with a member of staff per role and records in each of their states."""
    clinic = ClinicFactory(name="Every Form Clinic", time_zone="Europe/London")
    staff = {role: UserFactory(clinic=clinic, role=role) for role in Role.values}
    world = ClinicWorld(clinic=clinic, staff=staff)
    prescriber, therapist = staff[Role.PRESCRIBER], staff[Role.THERAPIST]
    monitor, admin = staff[Role.MONITOR], staff[Role.CLINIC_ADMIN]
    second_prescriber = UserFactory(clinic=clinic, role=Role.PRESCRIBER)
    # Staff: a therapist who chose two-factor sign-in (so "Turn off" shows), a deactivated member, an
    # invited one, API tokens to revoke.
    two_factor.enrol_with_key(user=therapist, key_hex=TOTPDevice().key, name="Phone")
    leaver = UserFactory(clinic=clinic, role=Role.THERAPIST)
    staff_services.staff_deactivate(actor=admin, user=leaver)
    invited = staff_services.staff_invite(
        actor=admin, email="new.nurse@example.test", full_name="New Nurse", role="monitor"
    )
    world.add("invited", invited)
    for user in staff.values():
        accounts.api_token_issue(user=user)
    world.add("staff", leaver, second_prescriber)
    # Rotas: the second prescriber works a split shift on weekdays and has leave ahead (so the rota
    # page shows its remove button); the staff the bookings below name keep no rota.
    rota_services.staff_hours_set(
        actor=admin,
        staff=second_prescriber,
        hours=[(day, dt.time(9), dt.time(12)) for day in range(5)]
        + [(day, dt.time(13), dt.time(17)) for day in range(5)],
    )
    world.add(
        "leave",
        rota_services.staff_leave_add(
            actor=admin,
            staff=second_prescriber,
            starts_at=_at(clinic, 40, 0),
            ends_at=_at(clinic, 42, 0),
            reason="Annual leave",
        ).leave,
    )

    def pathway(stage: str) -> Pathway:
        made = PathwayFactory(
            clinic=clinic,
            prescriber=prescriber,
            therapist=therapist,
            stage=stage,
            stage_before_hold=Stage.PREPARATION if stage == Stage.ON_HOLD else "",
            patient__registered_by=prescriber,
        )
        world.add("pathway", made)
        world.add("patient", made.patient)
        return made

    for stage in (Stage.REFERRAL, Stage.ON_HOLD, Stage.COMPLETED, Stage.DISCONTINUED, Stage.INTEGRATION):
        pathway(stage)
    world.add("patient", PatientFactory(clinic=clinic, registered_by=prescriber))  # no pathway yet

    # Screening: a draft with a medication and a baseline measure, one awaiting its second signature,
    # a signed one (preparation), and in dosing a signed version that superseded an earlier one.
    assessing = pathway(Stage.ASSESSMENT)
    draft = screening_services.assessment_open(actor=prescriber, pathway=assessing)
    medication = screening_services.medication_add(
        actor=prescriber, assessment=draft, name="Sertraline", medication_class="antidepressant"
    )
    screening_services.measure_record(
        actor=prescriber, pathway=assessing, instrument="gad7", answers=[1] * 7, assessment=draft
    )
    complete = fill_assessment(
        screening_services.assessment_open(actor=prescriber, pathway=pathway(Stage.ASSESSMENT)), prescriber
    )
    pathway(Stage.ASSESSMENT)  # none opened yet
    awaiting = SignedScreeningFactory(
        pathway=pathway(Stage.ASSESSMENT),
        status=AssessmentStatus.AWAITING_COUNTERSIGNATURE,
        signed_by=second_prescriber,
        decision="eligible_with_precautions",
        valid_until=None,
    )
    prepared = SignedScreeningFactory(pathway=pathway(Stage.PREPARATION))
    ketamine = pathway(Stage.DOSING)
    earlier = SignedScreeningFactory(pathway=ketamine, status=AssessmentStatus.SUPERSEDED, valid_until=None)
    current = SignedScreeningFactory(pathway=ketamine, version=2, supersedes=earlier)
    esketamine = pathway(Stage.DOSING)
    spravato = SignedScreeningFactory(pathway=esketamine, agent="esketamine", route="intranasal")
    dosing.rems_enrolment_record(
        actor=prescriber, patient=esketamine.patient, enrolled_on=timezone.localdate() - dt.timedelta(days=30)
    )
    not_enrolled = pathway(Stage.DOSING)
    SignedScreeningFactory(pathway=not_enrolled, agent="esketamine", route="intranasal")
    world.add("assessment", draft, complete, awaiting, prepared, earlier, current, spravato)

    # Courses: the IV default adopted as a template (the esketamine one left to adopt), a course set on
    # the ketamine pathway from it, and the esketamine pathway's course typed in from the label's default.
    iv_template = course_services.course_template_adopt(actor=prescriber, code="iv_racemic")
    world.add("course_template", iv_template)
    for on, shape, template in (
        (ketamine, iv_template.shape, iv_template),
        (esketamine, course_rules.esketamine_default_shape(), None),
    ):
        course_services.course_plan_set(
            actor=prescriber,
            pathway=on,
            template=template,
            agent=shape.agent,
            route=shape.route,
            sessions=shape.sessions,
            phases=shape.phases,
        )
    world.add("medication", medication)

    # Rooms and bookings: booked ahead, cancelled, today's, and a record in each status per agent.
    room = RoomFactory(clinic=clinic, name="Harbour Room")
    dosing.room_closure_add(
        actor=admin, room=room, starts_at=_at(clinic, 60, 9), ends_at=_at(clinic, 60, 12), reason="Service"
    )
    other_room = RoomFactory(clinic=clinic, name="Garden Room")
    world.add("room", room, other_room)
    booked = dosing.booking_create(
        actor=admin,
        pathway=ketamine,
        room=room,
        starts_at=_at(clinic, 20, 9),
        prescriber=prescriber,
        monitor=monitor,
    )
    cancelled = dosing.booking_create(
        actor=admin,
        pathway=ketamine,
        room=room,
        starts_at=_at(clinic, 21, 9),
        prescriber=prescriber,
        monitor=monitor,
    )
    dosing.booking_cancel(actor=admin, booking=cancelled, reason="Unwell.")
    today = Booking.objects.create(
        clinic=clinic,
        pathway=esketamine,
        patient=esketamine.patient,
        room=other_room,
        starts_at=_at(clinic, 0, 8),
        ends_at=_at(clinic, 0, 10),
        agent="esketamine",
        route="intranasal",
        prescriber=prescriber,
        monitor=monitor,
        booked_by=admin,
    )
    world.add("booking", booked, cancelled, today)
    records: dict[tuple[str, str], DosingSession] = {}
    day = 1
    for agent, on in (("ketamine", ketamine), ("esketamine", esketamine)):
        for status in SessionStatus.values:
            # Esketamine a week apart: its label allows two a week in induction, one from week 5.
            day = day + 7 - day % 7 if agent == "esketamine" else day
            records[agent, status] = _dosing_record(world, on, room, status, day)
            day += 1
    world.add("session", *records.values())
    world.add("booking", *(record.booking for record in records.values()))

    # EMDR: a plan with a resource worked in a logged session, a past memory whose override the
    # therapist signed (the prescriber's countersignature pending), and a target not started.
    signed = records["ketamine", SessionStatus.SIGNED]
    plan = emdr_services.plan_open(actor=therapist, pathway=ketamine)
    resource = emdr_services.target_add(actor=therapist, plan=plan, kind="resource", title="Calm place")
    memory = emdr_services.target_add(
        actor=therapist, plan=plan, kind="past_memory", title="The accident", sud=8
    )
    trigger = emdr_services.target_add(
        actor=therapist, plan=plan, kind="present_trigger", title="Sirens", sud=5
    )
    emdr_services.target_override_sign(actor=therapist, target=memory, reason="Stable for months.")
    emdr_services.session_log(
        actor=therapist,
        plan=plan,
        held_at=timezone.now() - dt.timedelta(hours=1),
        phase_reached=5,
        stimulation="taps",
        works=[{"target": resource, "sud_start": 0, "sud_end": 0, "voc_start": 5, "voc_end": 7}],
    )
    world.add("plan", plan)
    world.add("target", resource, memory, trigger)

    # Integration: a signed note with an experiment, then a draft reviewing it, on the ketamine pathway.
    note = integration_services.note_open(actor=therapist, pathway=ketamine, dosing_session=signed)
    experiment = integration_services.experiment_add(
        actor=therapist, note=note, area="sleep", description="Lights out by 23:00."
    )
    integration_services.note_update(actor=therapist, note=note, perception_shift="Lighter.")
    integration_services.note_sign(actor=therapist, note=note)
    integration_services.note_addendum_add(actor=therapist, note=note, text="Called back.")
    draft_note = integration_services.note_open(actor=therapist, pathway=ketamine, dosing_session=signed)
    world.add("note", note, draft_note)
    world.add("experiment", experiment)

    # Follow-ups: an open check-in, a done one, overdue outcome measures; those the signed record
    # scheduled, and the booking's visit reminder.
    due = timezone.now() - dt.timedelta(days=2)
    follow_ups = [
        FollowUpFactory(pathway=ketamine, kind="check_in", responsible=therapist, due_at=due, notify_at=due),
        FollowUpFactory(pathway=ketamine, kind="check_in", responsible=monitor, due_at=due, notify_at=due),
        FollowUpFactory(
            pathway=esketamine, kind="outcome_measures", responsible=prescriber, due_at=due, notify_at=due
        ),
    ]
    integration_services.follow_up_complete(actor=therapist, follow_up=follow_ups[1], outcome="Reached.")
    world.add("follow_up", *follow_ups, *signed.follow_ups.all(), *booked.follow_ups.all())

    # PDF summaries: being made, failed (offers "Try again") and ready.
    summaries = [
        summary_services.summary_request(
            actor=prescriber, kind="pathway", record_public_id=ketamine.public_id
        ),
        summary_services.summary_request(
            actor=monitor, kind="dosing_session", record_public_id=signed.public_id
        ),
        summary_services.summary_request(
            actor=therapist, kind="integration_note", record_public_id=note.public_id
        ),
    ]
    Summary.objects.filter(pk=summaries[1].pk).update(status=SummaryStatus.FAILED, error="Renderer stopped.")
    Summary.objects.filter(pk=summaries[2].pk).update(
        status=SummaryStatus.READY,
        file_name="note.pdf",
        page_count=2,
        byte_size=1000,
        ready_at=timezone.now(),
    )
    world.add("summary", *summaries)
    # Safety alerts, last (an open one stops booking): one open, one acknowledged.
    screening_services.measure_record(
        actor=therapist, pathway=ketamine, instrument="phq9", answers=[1] * 8 + [2]
    )
    screening_services.measure_record(
        actor=therapist, pathway=esketamine, instrument="phq9", answers=[0] * 8 + [1]
    )
    alerts = [*ketamine.safety_alerts.all(), *esketamine.safety_alerts.all()]
    screening_services.safety_alert_acknowledge(
        actor=prescriber, alert=alerts[-1], action_taken="Safety plan."
    )
    world.add("alert", *alerts)
    return world


def seeds(world: ClinicWorld) -> list[str]:
    """Every page route of the project filled with each record of its kind (and each instrument, stage
    or record step it takes), so that each page is opened in each state whether or not a link leads
    there. A route whose id names a record this clinic does not have is left out (and reported as
    never reached)."""
    pages: list[str] = []
    for name, route in routes():
        if name in PUBLIC or name in NOT_FETCHED or route.startswith("api/"):
            continue
        for path in _filled(world, route):
            if path not in pages:
                pages.append(path)
    return pages


def _filled(world: ClinicWorld, route: str) -> list[str]:
    names = {match.group(2) or match.group(3) for match in PLACEHOLDER.finditer(route)}
    segment = route.split("<", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    records = world.records.get(RESOURCE_OF_SEGMENT.get(segment, ""), []) if "public_id" in names else [None]
    extras = (
        [str(i) for i in Instrument]
        if "instrument" in names
        else [str(s) for s in Stage]
        if "stage" in names
        else ["vitals"]
        if "action" in names
        else [""]
    )
    paths = []
    for record in records:
        for extra in extras:
            values = {"instrument": extra, "stage": extra, "action": extra}
            if record is not None:
                values["public_id"] = str(record.public_id)
            if "medication_id" in names:
                values["medication_id"] = str(world.records["medication"][0].public_id)
            if "experiment_id" in names:
                values["experiment_id"] = str(world.records["experiment"][0].public_id)
            if names <= values.keys():
                paths.append(fill(route, lambda name, before, values=values: values[name]))
    return paths


def visitors(world: ClinicWorld) -> list[Visitor]:
    """Each role signed in (with the second factor where they have one), opening every route filled
    in; a prescriber who gave the password but not yet the code; an anonymous visitor, opening the
    public pages (signing in, asking for a reset, and an invited member's set-password link)."""

    def signed_in(user: User) -> Callable[[], Client]:
        return lambda: sign_in_verified(Client(enforce_csrf_checks=True), user)

    def password_only() -> Client:
        client = Client(enforce_csrf_checks=True)
        client.force_login(world.staff[Role.PRESCRIBER])
        return client

    pages = seeds(world)
    invitation = urlsplit(accounts.invitation_link(world.records["invited"][0])).path
    return [
        *(
            Visitor(str(role), signed_in(world.staff[role]), reverse("dashboard"), pages)
            for role in Role.values
        ),
        Visitor("prescriber before the second factor", password_only, reverse("dashboard")),
        Visitor(
            "anonymous",
            lambda: Client(enforce_csrf_checks=True),
            reverse("login"),
            [reverse("password_reset"), invitation],
        ),
    ]


def check_every_form(world: ClinicWorld) -> tuple[list[Failure], dict[str, CrawlReport]]:
    """Crawl as every visitor; the failures of all, and each visitor's report."""
    post_only: set[str] = set()
    reports = {visitor.label: crawl(visitor, post_only) for visitor in visitors(world)}
    failures = [failure for report in reports.values() for failure in report.failures]
    reached = set().union(*(report.reached for report in reports.values()))
    failures += [
        Failure("every visitor", "-", name, "never reached", "no page of this clinic leads there")
        for name, route in routes()
        if not route.startswith("api/") and name not in NOT_FETCHED and name not in reached
    ]
    return failures, reports


@pytest.mark.django_db
def test_every_form_on_every_page_reaches_its_action() -> None:
    """Issue 16, "every form works": see the module's docstring for what is crawled and sent."""
    failures, reports = check_every_form(build_clinic())

    listing = "\n".join(f"  {failure}" for failure in failures)
    assert failures == [], f"{len(failures)} broken pages or forms:\n{listing}"
    assert all(report.posted for report in reports.values())


@pytest.mark.django_db
def test_the_checker_reports_a_form_whose_action_is_gone(
    staff: dict[str, User], dosing_pathway: Pathway, room: Room
) -> None:
    """The checker can fail: the session record's own page passes; the same page with one form posting
    to a step the view does not know (404), one to a GET-only route (405) and one without its CSRF
    token is reported with each (visitor, page, action, status)."""
    monitor = staff[Role.MONITOR]
    booking = dosing.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=dosing_pathway,
        room=room,
        starts_at=_at(dosing_pathway.clinic, 1, 9),
        prescriber=staff[Role.PRESCRIBER],
        monitor=monitor,
    )
    session = record_services.session_open(actor=monitor, booking=booking)
    page = reverse("session_detail", args=[session.public_id])
    client = sign_in_verified(Client(enforce_csrf_checks=True), monitor)
    html = client.get(page).content.decode()
    csrf = client.cookies["csrftoken"].value
    vitals = reverse("session_action", args=[session.public_id, "vitals"])
    scale = reverse("session_action", args=[session.public_id, "scale"])
    assert f'action="{vitals}"' in html
    assert f'action="{scale}"' in html
    feed = reverse("room_calendar_feed", args=[room.calendar_token])

    def checker() -> FormChecker:
        return FormChecker("monitor", lambda: sign_in_verified(Client(enforce_csrf_checks=True), monitor))

    intact = checker()
    intact.check_page(page, html, csrf)
    assert intact.failures == []
    assert intact.posted >= 3

    # As if "vitals" had gone from SESSION_ACTIONS: the record's view answers 404 for a step it lacks.
    teleport = reverse("session_action", args=[session.public_id, "teleport"])
    without_token = (
        f'<form method="post" action="{vitals}"><input name="systolic" value="120"><button>Go</button>'
    )
    broken_html = (
        html.replace(f'action="{vitals}"', f'action="{teleport}"').replace(
            f'action="{scale}"', f'action="{feed}"'
        )
        + without_token
        + "</form>"
    )
    broken = checker()
    broken.check_page(page, broken_html, csrf)
    assert sorted(map(str, broken.failures)) == sorted(
        [
            f"monitor: page {page} -> POST {teleport}: 404",
            f"monitor: page {page} -> POST {feed}: 405",
            f"monitor: page {page} -> POST {vitals}: no CSRF token",
        ]
    )
