"""Audit by construction: every service that writes leaves an audit event, on every call in the suite.

`install()` (from `tests/conftest.py`, before any test module imports a service) wraps each public
function of every service module. A wrapped call that returns normally after writing a row (an
INSERT, UPDATE or DELETE on any table but the audit trail's) must also have inserted an audit event
in the same call, or the test that made the call fails. A new service module, or a new function in
one, is guarded without a change here; `tests/test_audit_by_construction.py` proves the guard covers
them all and catches a service that forgets.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from django.db import connection

# Every module whose public functions are services: writes go through them (see style.md).
SERVICE_MODULES = (
    "kaemdr.services",
    "kaemdr.accounts",
    "kaemdr.two_factor",
    "kaemdr.read_services",
    "pathways.services",
    "screening.services",
    "sessions.booking.services",
    "sessions.booking.rota_services",
    "sessions.booking.course_services",
    "sessions.record.services",
    "sessions.emdr.services",
    "sessions.clinic_settings.services",
    "integration.services",
    "integration.summary_services",
)

# Writes that are not about a record and need no audit event of their own, with the reason.
UNAUDITED = {
    "kaemdr.two_factor.pending_device": "an authenticator being set up, unused until confirmed (audited)",
    "kaemdr.two_factor.enrol_with_key": "the demo clinic's published authenticator, made by `demo_data` only",
}

# A write, or the EXECUTE of a statement prepared for one (named `kaemdr_<verb>__<table>__…` by
# `integration.services._prepared`).
_WRITE = re.compile(
    r'^\s*(?:(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?|EXECUTE\s+kaemdr_(?:insert|update|delete)__(\w+?)__)',
    re.IGNORECASE,
)
AUDIT_TABLE = "kaemdr_auditevent"
# Tables a service may touch as a side effect of Django or a library, not as a record.
SIDE_TABLES = frozenset(
    {"django_session", "kaemdr_usersession", "otp_totp_totpdevice", "otp_static_staticdevice"}
)


class UnauditedWrite(AssertionError):
    pass


class _Recorder:
    def __init__(self) -> None:
        self.tables: set[str] = set()
        self.audited = False

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        match = _WRITE.match(sql)
        if match:
            table = (match.group(1) or match.group(2)).lower()
            if table == AUDIT_TABLE:
                self.audited = True
            elif table not in SIDE_TABLES:
                self.tables.add(table)
        return execute(sql, params, many, context)


def service_functions() -> dict[str, tuple[ModuleType, str, Callable[..., Any]]]:
    """Every public function defined in a service module, by qualified name."""
    found = {}
    for module_name in SERVICE_MODULES:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(value):
                continue
            original = getattr(value, "__audit_guarded__", value)
            if original.__module__ == module_name:
                found[f"{module_name}.{name}"] = (module, name, value)
    return found


def guard(qualified_name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, failing a call that wrote a record without an audit event."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        recorder = _Recorder()
        with connection.execute_wrapper(recorder):
            result = function(*args, **kwargs)
        if recorder.tables and not recorder.audited:
            raise UnauditedWrite(
                f"{qualified_name} wrote to {sorted(recorder.tables)} without an audit event"
            )
        return result

    guarded.__audit_guarded__ = function
    return guarded


def install() -> list[str]:
    """Wrap every service (idempotent); returns the names guarded."""
    names = []
    for qualified_name, (module, name, function) in service_functions().items():
        if qualified_name in UNAUDITED or hasattr(function, "__audit_guarded__"):
            names.append(qualified_name)
            continue
        setattr(module, name, guard(qualified_name, function))
        names.append(qualified_name)
    return names
