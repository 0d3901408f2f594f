"""The demo clinic shows integration as a clinic would have it: notes, experiments under way, and
follow-ups done, due and overdue, all made through the services."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from integration import rules
from integration.models import Experiment
from integration.models import FollowUp
from integration.models import IntegrationNote
from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from sessions.booking.esketamine_rules import LEAVE_CHECKLIST_CODES
from sessions.models import DosingSession

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
    # nothing of the past is left to send when `make run` starts
    assert not FollowUp.objects.filter(
        status="open", notified_at__isnull=True, notify_at__lt=now - timezone.timedelta(minutes=5)
    ).exists()
    # the demo clinic is in London and follows the UK label: no REMS monitoring form for Tomás's
    # esketamine sessions; his signed one completed the Readiness to Leave checklist before discharge
    assert not FollowUp.objects.filter(kind="monitoring_form").exists()
    signed = DosingSession.objects.get(booking__patient__record_number="HB-1004", status="signed")
    assert signed.leave_checklist == list(LEAVE_CHECKLIST_CODES)
    assert not signed.pmf_required
    assert FollowUp.objects.filter(kind="visit_reminder", status="open").count() == 4


def test_the_demo_has_a_completed_course_with_its_outcome_follow_ups() -> None:
    demo_clinic_load()
    grace = Pathway.objects.select_related("clinic").get(patient__record_number="HB-1007")
    assert grace.stage == "completed"
    tz = zoneinfo.ZoneInfo(grace.clinic.time_zone)
    follow_ups = list(FollowUp.objects.filter(pathway=grace, kind="course_outcome").order_by("due_at"))
    assert [(f.sequence, f.status) for f in follow_ups] == [(1, "open"), (3, "open"), (6, "open")]
    for follow_up in follow_ups:  # from the day the course was completed on the demo's timeline
        assert follow_up.due_at == rules.add_months(grace.stage_changed_at, months=follow_up.sequence, tz=tz)
        assert follow_up.responsible.email == "prescriber@demo.kaemdr.test"
    assert timezone.now() < follow_ups[0].due_at < timezone.now() + dt.timedelta(days=31)  # due soon
