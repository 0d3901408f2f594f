"""Errors shared by every app's services."""

from __future__ import annotations

from django.http import Http404


class NotFoundOrForbidden(Http404):
    """Raised when the object is missing or the actor may not touch it: the two look the same (404)."""

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message)
