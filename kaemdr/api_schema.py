"""The OpenAPI description of the JSON API: drf-spectacular's, plus the error answers every endpoint shares.

Each endpoint documents its own success and the errors particular to it (`extend_schema`); what any
endpoint can answer is added here, in the shared `ErrorBody` shape, so that the schema lists every
status code a client can meet:

- 404 everywhere: a missing record, another clinic's, a role without access (never a 403), a page
  past the end of a list;
- 400 wherever there is input to refuse: a request body, or a list's filters;
- 401 without valid credentials, on every endpoint that needs them;
- 415 wherever there is a request body that is not JSON (the API reads JSON only);
- 429 when the caller is throttled.

A read-only choice read from a model field that may be blank is answered `""` while unset (a draft's
`decision`, a target's `theme`): its enum says so, as a writable one's does.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions
from rest_framework import serializers


class ApiSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        from .api import ErrorBody

        responses: dict[str, Any] = super()._get_response_bodies(direction=direction)
        for code in self._shared_error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorBody, code, direction=direction)
        return responses

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> Any:
        if (
            isinstance(field, serializers.ChoiceField)
            and field.read_only
            and not field.allow_blank
            and _model_field_may_be_blank(field)
        ):
            # DRF drops `allow_blank` from a read-only field; the answer still carries the blank.
            field.allow_blank = True
        return super()._map_serializer_field(field, direction, bypass_extensions)

    def _shared_error_codes(self) -> list[str]:
        codes = []
        if self.method in ("POST", "PUT", "PATCH") or self._is_list_view():
            codes.append("400")
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes.append("415")
        if not any(
            isinstance(permission, permissions.AllowAny) for permission in self.view.get_permissions()
        ):
            codes.append("401")
        codes.append("404")
        if self.view.get_throttles():
            codes.append("429")
        return codes


def _model_field_may_be_blank(field: serializers.Field) -> bool:
    """Whether a model serializer's `field` reads a model field declared `blank=True`."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    source = field.source or ""
    if model is None or not isinstance(field.parent, serializers.ModelSerializer) or "." in source:
        return False
    try:
        return bool(getattr(model._meta.get_field(source), "blank", False))
    except FieldDoesNotExist:
        return False
