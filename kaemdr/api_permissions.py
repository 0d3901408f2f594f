"""API authentication beyond DRF's own, kept apart from `kaemdr.api` (DRF imports these classes
while its views load)."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request


class SecondFactorSessionAuthentication(SessionAuthentication):
    """A browser session reaches the API only once its second factor is passed, as for the pages
    (every view, whatever permission classes it names). Tokens are issued only to users who gave
    their second factor (`kaemdr.api.TokenObtainView`)."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        from .two_factor import needs_second_factor

        result = super().authenticate(request)
        if result is not None and needs_second_factor(request._request) is not None:
            return None
        return result
