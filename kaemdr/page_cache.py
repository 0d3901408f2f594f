"""Repeat views from a versioned cache: a page's parts (a dashboard's body, a pathway page's, a room
calendar's) kept as rendered HTML under keys that change whenever anything they show may change.

**The key** of a part names everything its HTML depends on:

- the *clinic version*: a random token in the cache per clinic, replaced after the commit of every
  audited write in that clinic (`bump_on_commit`, called by `kaemdr.audit`; every write is audited,
  `tests/audit_guard.py`). Read events (`*.viewed`, `*.downloaded`, `*.exported`) replace nothing.
  A write with no clinic replaces the *network version*, which every key names too;
- the viewer: their id, role, clinic, sessions epoch and time zone (what the capability checks, the
  care-team filters and the dates read);
- the *minute*, clinic-local: parts that change with time alone ("today", due and overdue follow-ups,
  the calendar's now-line) are never more than the minute they were rendered in behind;
- what the page was asked for: its path and query, and what the view read from them (the pathway,
  the week and room).

A missing version (evicted, Redis restarted) becomes a fresh random token (`cache.add`), never an
earlier value, so no key that was ever dropped can come back. While Redis cannot be reached
(`kaemdr.cache.ForgivingRedisCache`) every read is a miss and nothing is stored: pages render as if
there were no cache. A version that could not be replaced during an outage is replaced by the process
that lost it when Redis answers again (the network version), and in any case the minute in every key
ends its life within a minute.

**Read after write.** The version is replaced after the write's transaction commits, by the request
that wrote, before its response leaves (`transaction.on_commit` runs as the request's atomic block
exits). So any request that starts after a write's response has been sent reads the new version and
renders afresh. A reader racing the commit either reads the old version (and stores under a key no
later request asks for) or the new one after the commit (and renders committed data): it can never
store data from before the commit under the new version.

**What is not cached:** the read audit. A part's entry carries the ids it showed (`shown`), and the
page writes its read event from them on every view, hit or miss. A CSRF token is never stored: a part
is rendered with a placeholder in its place, put back with the request's own token when served.

Tests run with `PAGE_CACHE_ENABLED = False` (their factories write without services); the tests of
this module switch it on.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.context import make_context
from django.template.loader import get_template
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.safestring import mark_safe

if TYPE_CHECKING:
    from .models import User

PREFIX = "pc"
NETWORK = "network"
TIMEOUT_SECONDS = 120  # a part's key holds the minute: it is never asked for after the next one
VERSION_TIMEOUT_SECONDS = 7 * 24 * 3600
CSRF_PLACEHOLDER = "kaemdr-page-cache-csrf-token"
READ_ACTION = re.compile(r"[._](viewed|downloaded|exported)$")

_lost_bump = False  # a version this process could not replace (Redis down): replace the network's


def enabled() -> bool:
    return bool(getattr(settings, "PAGE_CACHE_ENABLED", True))


def _version_key(scope: str) -> str:
    return f"{PREFIX}:v:{scope}"


def _cache_down() -> bool:
    outage = getattr(cache, "outage", None)
    return bool(outage is not None and outage.down)


def bump(scope: str) -> None:
    """Replace the version of `scope` (a clinic's public id, or `NETWORK`): every part keyed by it is
    rendered afresh on its next view."""
    global _lost_bump
    cache.set(_version_key(scope), uuid.uuid4().hex, VERSION_TIMEOUT_SECONDS)
    if _cache_down():
        _lost_bump = True


def bump_on_commit(*, action: str, clinic_public_id: uuid.UUID | str | None) -> None:
    """After the current transaction commits, replace the version of the clinic a write event names
    (the network's when it names none). Read events change nothing and replace nothing."""
    if not enabled() or READ_ACTION.search(action):
        return
    scope = str(clinic_public_id) if clinic_public_id is not None else NETWORK
    transaction.on_commit(lambda: bump(scope), robust=True)


def _versions(scopes: list[str]) -> list[str] | None:
    """The current version of each scope, a fresh one for any missing; None when the cache does not
    answer (the caller renders without it)."""
    global _lost_bump
    keys = [_version_key(scope) for scope in scopes]
    found = cache.get_many(keys)
    if _lost_bump and not _cache_down() and found:
        _lost_bump = False
        cache.set(_version_key(NETWORK), uuid.uuid4().hex, VERSION_TIMEOUT_SECONDS)
        found = cache.get_many(keys)
    versions = []
    for key in keys:
        version = found.get(key)
        if version is None:
            cache.add(key, uuid.uuid4().hex, VERSION_TIMEOUT_SECONDS)
            version = cache.get(key)
            if version is None:
                return None
        versions.append(str(version))
    return versions


def part_key(name: str, *, request: HttpRequest, user: User, args: tuple[Any, ...] = ()) -> str | None:
    """The key of part `name` for `user` at the request's path and query (a part may link back to
    it), with the page's own `args`; None when it must not be cached (the cache is switched off or
    does not answer)."""
    if not enabled():
        return None
    clinic = user.clinic.public_id if user.clinic_id is not None else None  # type: ignore[union-attr]
    scopes = [NETWORK] if clinic is None else [NETWORK, str(clinic)]
    versions = _versions(scopes)
    if versions is None:
        return None
    now = timezone.localtime()
    viewer = (user.pk, user.role, user.clinic_id, user.sessions_epoch, str(now.tzinfo))
    raw = repr((name, versions, viewer, now.strftime("%Y-%m-%dT%H:%M"), request.get_full_path(), args))
    return f"{PREFIX}:{name}:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class Part:
    """A rendered part: its HTML (with the request's CSRF token) and the ids it showed."""

    html: SafeString
    shown: Any
    hit: bool


def render_part(
    request: HttpRequest,
    *,
    key: str | None,
    template_name: str,
    build: Callable[[], tuple[dict[str, Any], Any]],
) -> Part:
    """The part under `key`, or `build()`'s `(context, shown)` rendered with `template_name` (and
    stored under `key` when there is one). `shown` is what the page's read audit names."""
    if key is not None:
        entry = cache.get(key)
        if entry is not None:
            html, shown = entry
            return Part(html=_with_token(request, html), shown=shown, hit=True)
    context, shown = build()
    template = get_template(template_name)
    engine_template = template.template  # type: ignore[attr-defined]
    request_context = make_context(context, request, autoescape=template.backend.engine.autoescape)  # type: ignore[attr-defined]
    request_context.update({"csrf_token": CSRF_PLACEHOLDER})  # wins over the context processor's
    html = engine_template.render(request_context)
    if key is not None:
        cache.set(key, (str(html), shown), TIMEOUT_SECONDS)
    return Part(html=_with_token(request, html), shown=shown, hit=False)


def _with_token(request: HttpRequest, html: str) -> SafeString:
    if CSRF_PLACEHOLDER in html:
        html = html.replace(CSRF_PLACEHOLDER, get_token(request))
    return mark_safe(html)  # noqa: S308  # nosec B308: rendered by our own templates
