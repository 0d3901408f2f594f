"""Errors shared by every app's services."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import Http404

from .sources import Citation
from .sources import citation_for


class NotFoundOrForbidden(Http404):
    """Raised when the object is missing or the actor may not touch it: the two look the same (404)."""

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message)


class Refusal(ValidationError):
    """A rule's refusal: a `ValidationError` with its code and the clinical source that asks for it.

    The citation is the code's, from the one catalogue (`kaemdr.sources`), unless the rule names a
    narrower one. It travels like any `ValidationError` (alone, in a list, or under a field name); the
    API's error body carries `source` and `source_url` beside the code and the message
    (`kaemdr.api.exception_handler`), and pages show it after the message with its link.
    """

    def __init__(self, message: str, *, code: str, source: Citation | None = None) -> None:
        super().__init__(message, code=code)
        self.source: Citation | None = source or citation_for(code)


def error_items(error: ValidationError) -> list[tuple[str | None, ValidationError]]:
    """Each single error of `error` with the field it names (None for the whole request), in order."""
    if hasattr(error, "error_dict"):
        return [
            (None if name == "__all__" else name, item)
            for name, items in error.error_dict.items()
            for item in items
        ]
    return [(None, item) for item in error.error_list]


def error_citation(error: ValidationError) -> Citation | None:
    """The source of a single error: a refusal's own citation, else its code's in the catalogue, else
    None (an input check, such as a missing field, is not a clinical rule)."""
    source = getattr(error, "source", None)
    if isinstance(source, Citation):
        return source
    return citation_for(error.code) if error.code else None


def text_too_long(model: type[Model], field: str, value: str, label: str) -> ValidationError | None:
    """The refusal of text longer than the model's column holds (stripped, as it is saved), else None:
    a direct caller of a service gets a message next to the field, not a database error."""
    limit = getattr(model._meta.get_field(field), "max_length", None) or 0
    if len(value.strip()) <= limit:
        return None
    return ValidationError(f"Keep {label} to {limit} characters.", code="too_long")
