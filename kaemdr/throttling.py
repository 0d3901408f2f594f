"""API throttles beyond DRF's own. Kept apart from `kaemdr.api`: DRF imports throttle classes while
its views load, so this module must import nothing that imports DRF's views.

Every API throttle (DRF's per-user and anonymous ones, and the per-token one here) keeps its history
in the cache, and opens while the cache is unreachable (a miss is an empty history, and the write is
dropped: `kaemdr.cache`): these limits share the server fairly, and a Redis outage should cost
speed, not the API. Password guessing through the token endpoint is not left to them: django-axes
locks it out from the database."""

from __future__ import annotations

from typing import Any

from rest_framework import throttling
from rest_framework.request import Request


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API token (scope "token"), on top of the per-user limit: calls with a token are
    counted by the token, so one leaked token is slowed without slowing its owner's other sessions."""

    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = request.auth
        key = getattr(token, "digest", None)
        if not key:
            return None  # not a token call: the per-user limit applies alone
        return self.cache_format % {"scope": self.scope, "ident": key}
