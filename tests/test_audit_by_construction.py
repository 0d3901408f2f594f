"""Audit by construction: the guard of `tests/audit_guard.py` covers every service, and it fails a
service that writes without an audit event. With it installed, the whole suite is the proof that
every service that writes leaves an audit event (on every call any test makes)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from kaemdr.models import AuditEvent
from kaemdr.models import User
from pathways import services as pathway_services

from . import audit_guard

pytestmark = pytest.mark.django_db


def test_every_public_service_function_is_guarded() -> None:
    functions = audit_guard.service_functions()
    assert len(functions) > 90  # the walk found the service modules' functions
    unguarded = [
        name
        for name, (_module, _attribute, function) in functions.items()
        if name not in audit_guard.UNAUDITED and not hasattr(function, "__audit_guarded__")
    ]
    assert unguarded == []
    assert set(audit_guard.UNAUDITED) <= set(functions)  # no stale exemptions


def test_every_module_named_like_a_service_module_is_listed() -> None:
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.BASE_DIR)
    found = {
        ".".join(path.relative_to(root).with_suffix("").parts)
        for package in ("kaemdr", "pathways", "screening", "sessions", "integration")
        for path in (root / package).rglob("*services.py")
    }
    assert found <= set(audit_guard.SERVICE_MODULES)


def test_the_guard_fails_a_write_without_an_audit_event(
    patient: Any, prescriber: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pathway_services, "audit_record", lambda **kwargs: None)
    with pytest.raises(audit_guard.UnauditedWrite, match=r"pathways\.services\.patient_update wrote to"):
        pathway_services.patient_update(actor=prescriber, patient=patient, phone="07700 900999")


def test_the_guard_lets_an_audited_write_and_a_read_through(patient: Any, prescriber: User) -> None:
    before = AuditEvent.objects.count()
    pathway_services.patient_update(actor=prescriber, patient=patient, phone="07700 900998")
    assert AuditEvent.objects.count() == before + 1
    # a refused call writes nothing and raises its own error, not the guard's
    with pytest.raises(ValidationError):
        pathway_services.patient_update(actor=prescriber, patient=patient, phone="")
