"""Errors shared by every app's services."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404


class NotFoundOrForbidden(Http404):
    """Raised when the object is missing or the actor may not touch it: the two look the same (404)."""

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message)


class Refusal(ValidationError):
    """A rule's refusal: a `ValidationError` with its code and the clinical source that asks for it.

    It travels like any `ValidationError` (alone, in a list, or under a field name), and the API's
    error body carries the source beside the code and the message (`kaemdr.api.exception_handler`).
    """

    def __init__(self, message: str, *, code: str, source: str) -> None:
        super().__init__(message, code=code)
        self.source = source


def error_items(error: ValidationError) -> list[tuple[str | None, ValidationError]]:
    """Each single error of `error` with the field it names (None for the whole request), in order."""
    if hasattr(error, "error_dict"):
        return [
            (None if name == "__all__" else name, item)
            for name, items in error.error_dict.items()
            for item in items
        ]
    return [(None, item) for item in error.error_list]
