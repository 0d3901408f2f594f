"""The OpenAPI description of the JSON API: drf-spectacular's, plus the error answers every endpoint shares.

Each endpoint documents its own success and the errors particular to it (`extend_schema`); what any
endpoint can answer is added here, in the shared `ErrorBody` shape, so that the schema lists every
status code a client can meet:

- 404 everywhere: a missing record, another clinic's, a role without access (never a 403), a page
  past the end of a list;
- 400 wherever there is input to refuse: a request body, or a list's filters;
- 401 without valid credentials, on every endpoint that needs them;
- 429 when the caller is throttled.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions


class ApiSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        from .api import ErrorBody

        responses: dict[str, Any] = super()._get_response_bodies(direction=direction)
        for code in self._shared_error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorBody, code, direction=direction)
        return responses

    def _shared_error_codes(self) -> list[str]:
        codes = []
        if self.method in ("POST", "PUT", "PATCH") or self._is_list_view():
            codes.append("400")
        if not any(
            isinstance(permission, permissions.AllowAny) for permission in self.view.get_permissions()
        ):
            codes.append("401")
        codes.append("404")
        if self.view.get_throttles():
            codes.append("429")
        return codes
