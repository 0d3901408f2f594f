"""Shared pieces of the write fuzz tests: hostile-input strategies, a row-count snapshot of every app
table, and one `post_and_check` that states the property for a page form.

The property: whatever a signed-in member of staff allowed on a page posts, the answer is never a
server error, and when the page refuses the input (a 4xx status, or the form shown again with
errors) not one row was written anywhere. Audit events of *views* (a refused form re-shows the
record, and every view of a patient record is audited) are the only rows a refusal may add.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.contrib import messages
from django.db import transaction
from django.forms import BaseForm
from django.http import HttpResponse
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import settings
from hypothesis import strategies as st

from kaemdr.models import AuditEvent

APP_LABELS = ("kaemdr", "pathways", "screening", "dosing", "integration")
VIEW_ACTION = re.compile(r"[._]viewed$")

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    database=None,
)
"""Every fuzz test's settings: deterministic (the same examples on every run), no time limit."""

FEW = settings(FUZZ, max_examples=12)
"""For the slow pages (the dosing record and the assessment render a lot)."""

HUGE = "x" * 10_000
NUL_TEXTS = ("\x00", "a\x00b", "Ann\x00", "\x00" * 3)

# --- Strategies ---------------------------------------------------------------------------------------

hostile_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(["", " ", HUGE, "é" * 5_000, "😀" * 300, "<script>alert(1)</script>", "' OR 1=1 --"]),
    st.sampled_from(NUL_TEXTS),
    st.text(max_size=40),
)
"""Free text as an attacker or a confused browser sends it: empty, 10k characters, NUL bytes, emoji."""


def text_field(*valid: str) -> st.SearchStrategy[str]:
    """A text field: one of `valid` often, hostile text otherwise."""
    return st.one_of(st.sampled_from(valid or ("Plain text",)), hostile_text)


def number_field(*valid: int | str) -> st.SearchStrategy[str]:
    """A number as posted: valid values, bounds, negatives, values past 64 bits, non-numbers."""
    return st.one_of(
        st.sampled_from([str(v) for v in valid] or ["1"]),
        st.sampled_from(["", "-1", "0", "32767", "32768", "2147483648", "9" * 30, "-" + "9" * 30]),
        st.sampled_from(["1e309", "NaN", "Infinity", "-Infinity", "1.5", "1,5", "abc", "\x00", "0x10"]),
        st.integers(min_value=-(10**20), max_value=10**20).map(str),
    )


def decimal_field(*valid: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(valid or ("1.0",)),
        number_field(),
        st.sampled_from(["0.05", "99999.9", "1e5", "-0", "12345678901234567890.123"]),
    )


EDGE_DATES = (
    dt.date.min,
    dt.date.min + dt.timedelta(days=1),
    dt.date.max - dt.timedelta(days=1),
    dt.date.max,
)
EDGE_ZONES = (dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(-dt.timedelta(hours=12)))

any_date: st.SearchStrategy[dt.date] = st.one_of(st.sampled_from(EDGE_DATES), st.dates())
"""Any day a `date` holds, 1 January of year 1 to 31 December 9999, the edges often."""

any_datetime: st.SearchStrategy[dt.datetime] = st.one_of(
    st.sampled_from(
        [
            dt.datetime.combine(day, moment, tzinfo=zone)
            for day in (dt.date.min, dt.date.max)
            for moment in (dt.time.min, dt.time.max)
            for zone in (None, *EDGE_ZONES)
        ]
    ),
    st.datetimes(
        timezones=st.one_of(
            st.none(),
            st.sampled_from(EDGE_ZONES),
            # an offset as ISO 8601 writes one, in whole minutes (a zone's old local mean time has seconds)
            st.integers(min_value=-12 * 60, max_value=14 * 60).map(
                lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
            ),
        )
    ),
)
"""Any moment a `datetime` holds, naive or at any offset from -12:00 to +14:00, the edges often: the
first and last moments of the calendar shifted out of range by their offset, most of all."""


def date_field(*valid: str) -> st.SearchStrategy[str]:
    """A date as posted: valid ones, every day from date.min to date.max, and impossible ones."""
    return st.one_of(
        st.sampled_from(valid or ("2026-03-02",)),
        any_date.map(dt.date.isoformat),
        st.sampled_from(
            ["", "0001-01-01", "9999-12-31", "2026-02-30", "2026-13-01", "31/12/2026", "99999-01-01"]
        ),
        st.sampled_from(["tomorrow", "\x00", "2026-01-01T10:00", "-2026-01-01", "0000-12-31", "10000-01-01"]),
    )


def datetime_field(*valid: str) -> st.SearchStrategy[str]:
    """An ISO 8601 moment as an API client sends it: valid ones, any moment in any zone, and nonsense."""
    return st.one_of(
        st.sampled_from(valid or ("2026-03-02T09:00:00+00:00",)),
        any_datetime.map(dt.datetime.isoformat),
        st.sampled_from(
            ["", "0000-12-31T23:59:59Z", "10000-01-01T00:00:00Z", "2026-02-30T09:00", "9999-12-31T24:00"]
        ),
        st.sampled_from(["now", "\x00", "2026-01-01T10:00+25:00", "1e309", "-0001-01-01T00:00:00"]),
    )


def time_field(*valid: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(valid or ("09:00",)),
        st.times().map(lambda moment: moment.isoformat(timespec="minutes")),
        st.sampled_from(["", "00:00", "23:59", "24:00", "25:61", "9", "noon", "\x00", "09:00:00.999999"]),
    )


def username_field(*valid: str) -> st.SearchStrategy[str]:
    """A username or email as typed at sign-in: any length (past the 150 and 255 characters of the
    fields and the lock-out records, to 10,000), any script, NUL bytes, emoji."""
    return st.one_of(
        st.sampled_from(valid or ("ann@example.org",)),
        st.integers(min_value=150, max_value=10_000).map(lambda length: "a" * (length - 12) + "@example.org"),
        st.sampled_from(["", " ", "\x00", "ann\x00@example.org", "é" * 256, "😀" * 300 + "@example.org"]),
        st.text(max_size=300),
        st.text(min_size=250, max_size=600, alphabet=st.characters(codec="utf-8")),
    )


ODD_IDS = (
    "0",
    "0.5",
    "-1",
    "1e309",
    "NaN",
    "null",
    "9" * 40,
    str(2**64),
    "\x00",
    "%00",
    " ",
    "é",
    "é😀",
    "😀",
    "x" * 300,
    "85658a12-c290-4889-ae8e",
    "85658A12-C290-4889-AE8E-4A6B5DA6E6E1",
    "{85658a12-c290-4889-ae8e-4a6b5da6e6e1}",
    "85658a12c2904889ae8e4a6b5da6e6e1",
    "85658a12-c290-4889-ae8e-4a6b5da6e6e1x",
)

odd_id: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(ODD_IDS),
    st.integers(min_value=-(2**128), max_value=2**128).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(min_size=1, max_size=60),
)
"""An id in a URL that is not one: a decimal, a huge integer, a UUID almost, text in any script."""


def choice_field(*valid: str) -> st.SearchStrategy[str]:
    """A choice: a real one, or a value the form never offered."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(["", "nope", "\x00", HUGE]), hostile_text)


def boolean_field() -> st.SearchStrategy[str]:
    return st.sampled_from(["", "on", "true", "false", "True", "1", "0", "maybe", "\x00"])


def uuid_field(*valid: Any) -> st.SearchStrategy[str]:
    """A public id: one the page offers, a well-formed one that exists nowhere, or not a UUID at all."""
    return st.one_of(
        st.sampled_from([str(v) for v in valid] or [str(uuid.uuid4())]),
        st.uuids().map(str),
        st.sampled_from(["", "not-a-uuid", "\x00", "1", HUGE]),
    )


def form_data(fields: dict[str, st.SearchStrategy[Any]], *, valid: dict[str, Any]) -> Any:
    """POST data: the `valid` form with one to three fields made hostile (so a bad value reaches the
    service and the database, not only the form), the valid form itself, or every field hostile or
    missing."""
    names = sorted(fields)

    def spoil(chosen: list[str]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({name: fields[name] for name in chosen}).map(
            lambda bad: {**valid, **bad}
        )

    return st.one_of(
        st.just(dict(valid)),
        st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True).flatmap(spoil),
        st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True).flatmap(spoil),
        st.fixed_dictionaries({}, optional=dict(fields)),
    )


# --- The property ---------------------------------------------------------------------------------------


def row_counts() -> dict[str, int]:
    """Rows in every table of the five apps; audit events counted without the views' own events."""
    counts: dict[str, int] = {}
    for label in APP_LABELS:
        for model in apps.get_app_config(label).get_models():
            if model is AuditEvent:
                continue
            counts[model._meta.label] = model._default_manager.count()
    counts["kaemdr.AuditEvent (writes)"] = sum(
        1 for action in AuditEvent.objects.values_list("action", flat=True) if not VIEW_ACTION.search(action)
    )
    return counts


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run one example in a savepoint that is always rolled back, so examples never see each other."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def refused(response: HttpResponse, *, error_message_refuses: bool = False) -> bool:
    """True when the page refused the input: a 4xx status, a form shown again with its errors, or,
    for the pages that answer a refused button with a redirect (`error_message_refuses`), a redirect
    carrying an error message. (Elsewhere an error message can be news, not a refusal: an urgent
    safety flag on a measure that was recorded.)"""
    if 400 <= response.status_code < 500:
        return True
    if error_message_refuses:
        storage = getattr(response.wsgi_request, "_messages", None)
        if any(message.level >= messages.ERROR for message in getattr(storage, "_queued_messages", [])):
            return True
    if response.status_code != 200 or response.context is None:
        return False
    contexts = response.context if isinstance(response.context, list) else [response.context]
    return any(
        isinstance(value, BaseForm) and value.is_bound and bool(value.errors)
        for context in contexts
        for value in context.flatten().values()
    )


def post_and_check(
    client: Client,
    url: str,
    data: dict[str, Any],
    *,
    snapshot: Callable[[], dict[str, int]] = row_counts,
    error_message_refuses: bool = False,
) -> HttpResponse:
    """POST `data` and assert the property: never a 500, and a refusal writes nothing."""
    with rolled_back():
        before = snapshot()
        response = client.post(url, data)
        assert response.status_code < 500, f"{url} answered {response.status_code} to {data!r}"
        was_refused = refused(response, error_message_refuses=error_message_refuses)
        event(f"{response.status_code} {'refused' if was_refused else 'accepted'}")
        if was_refused:
            after = snapshot()
            changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            assert not changed, f"{url} refused {data!r} ({response.status_code}) yet wrote {changed}"
    return response
