"""Reads for EMDR plans: scoped through the pathway's access rules; therapists their own, prescribers read."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from pathways.models import Pathway
from pathways.selectors import pathway_qs_for_user
from screening import selectors as screening_selectors
from screening.models import MeasureResponse
from screening.models import SafetyAlert

from . import emdr_rules
from .models import DosingSession
from .models import EmdrPlan
from .models import EmdrTarget
from .selectors import dosing_settings_for


def plan_qs_for_user(user: User) -> QuerySet[EmdrPlan]:
    if not has_capability(user, Capability.EMDR_VIEW):
        return EmdrPlan.objects.none()
    return EmdrPlan.objects.filter(pathway__in=pathway_qs_for_user(user)).select_related("pathway__patient")


def get_plan_for_user_or_404(user: User, public_id: uuid.UUID | str) -> EmdrPlan:
    try:
        return plan_qs_for_user(user).get(public_id=public_id)
    except (EmdrPlan.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such plan.") from None


def get_target_for_user_or_404(user: User, public_id: uuid.UUID | str) -> EmdrTarget:
    try:
        return EmdrTarget.objects.select_related("plan__pathway__patient").get(
            public_id=public_id, plan__in=plan_qs_for_user(user)
        )
    except (EmdrTarget.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such target.") from None


def target_facts(targets: list[EmdrTarget]) -> list[emdr_rules.TargetFacts]:
    """Targets as plain facts; `belongs_to` should be prefetched."""
    return [
        emdr_rules.TargetFacts(
            key=t.pk,
            kind=t.kind,
            order=t.order,
            state=t.state,
            last_sud=t.sud,
            belongs_to=tuple(other.pk for other in t.belongs_to.all()),
        )
        for t in targets
    ]


def plan_targets(plan: EmdrPlan) -> list[EmdrTarget]:
    return list(plan.targets.prefetch_related("belongs_to").order_by("order", "id"))


def readiness_facts(plan: EmdrPlan, targets: list[EmdrTarget]) -> emdr_rules.ReadinessFacts:
    """The readiness criteria from the plan, the screening and the measures (three queries)."""
    pathway: Pathway = plan.pathway
    current = screening_selectors.current_screening(pathway)
    des2 = (
        MeasureResponse.objects.filter(pathway=pathway, instrument="des2", carried_from__isnull=True)
        .order_by("-administered_at", "-id")
        .values_list("total", flat=True)
        .first()
    )
    stabilisation = [t for t in targets if t.kind in emdr_rules.STABILISATION_KINDS]
    return emdr_rules.ReadinessFacts(
        resource_installed=any(t.kind == emdr_rules.Kind.RESOURCE and t.state == "resolved" for t in targets),
        dual_awareness_shown=plan.dual_awareness_shown,
        stabilisation_at_sud_0_1=bool(stabilisation)
        and all(t.state == "resolved" and (t.sud or 0) <= emdr_rules.SUD_RESOLVED for t in stabilisation),
        current_crisis=current.current_crisis if current is not None else None,
        high_risk_alert_open=SafetyAlert.objects.filter(
            pathway=pathway, status="open", code__in=["cssrs_high", "phq9_item9"]
        ).exists(),
        des2_mean=float(des2) if des2 is not None else None,
        dissociation_interview_recorded=plan.dissociation_interview_recorded,
    )


@dataclass(frozen=True)
class DosingWindow:
    session: DosingSession
    opens_at: dt.datetime
    closes_at: dt.datetime

    @property
    def is_open(self) -> bool:
        return self.opens_at <= timezone.now() <= self.closes_at


def dosing_windows(plan: EmdrPlan) -> list[DosingWindow]:
    """Each dosed session of the pathway with the window in which EMDR counts as tied to it."""
    sessions = list(
        DosingSession.objects.filter(
            booking__pathway_id=plan.pathway_id, dose_started_at__isnull=False
        ).order_by("dose_started_at")
    )
    if not sessions:
        return []
    hours = dosing_settings_for(plan.clinic_id).emdr_window_hours
    windows = []
    for session in sessions:
        started = session.dose_started_at
        assert started is not None
        windows.append(DosingWindow(session, started, started + dt.timedelta(hours=hours)))
    return windows
