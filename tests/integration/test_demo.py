"""The demo clinic shows integration as a clinic would have it: notes, experiments under way, and
follow-ups done, due and overdue, all made through the services."""

from __future__ import annotations

import pytest
from django.utils import timezone

from integration.models import Experiment
from integration.models import FollowUp
from integration.models import IntegrationNote
from pathways.demo import demo_clinic_load

pytestmark = pytest.mark.django_db


def test_the_demo_clinic_has_integration_under_way() -> None:
    demo_clinic_load()
    now = timezone.now()
    oliver = {"pathway__patient__record_number": "HB-1006"}
    assert list(IntegrationNote.objects.filter(**oliver).values_list("status", flat=True)) == [
        "signed",
        "signed",
    ]
    assert sorted(Experiment.objects.filter(**oliver).values_list("state", flat=True)) == [
        "kept",
        "planned",
        "tried",
    ]
    overdue = FollowUp.objects.get(**oliver, kind="integration_session", status="open")
    assert overdue.due_at < now
    assert overdue.responsible.email == "therapist@demo.kaemdr.test"
    assert FollowUp.objects.filter(**oliver, kind="check_in", status="done").count() == 8
    # nothing of the past is left to send when `make run` starts, but Tomás's form is still due
    assert not FollowUp.objects.filter(
        status="open", notified_at__isnull=True, notify_at__lt=now - timezone.timedelta(minutes=5)
    ).exists()
    form = FollowUp.objects.get(pathway__patient__record_number="HB-1004", kind="monitoring_form")
    assert form.status == "open"
    assert form.due_at > now
    assert FollowUp.objects.filter(kind="visit_reminder", status="open").count() == 4
