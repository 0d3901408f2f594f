"""Reads for EMDR plans: scoped through the pathway's access rules; therapists their own, prescribers read."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Exists
from django.db.models import OuterRef
from django.db.models import QuerySet
from django.db.models import Subquery
from django.db.models import Value
from django.db.models.functions import Coalesce
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
from sessions.emdr import rules as emdr_rules
from sessions.models import DosingSession
from sessions.models import DosingSettings
from sessions.models import EmdrPlan
from sessions.models import EmdrTarget


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
            override_signed=t.override_signed,
            title=t.title,
        )
        for t in targets
    ]


def plan_targets(plan: EmdrPlan) -> list[EmdrTarget]:
    return list(plan.targets.prefetch_related("belongs_to").order_by("order", "id"))


@dataclass(frozen=True)
class TargetBadge:
    title: str
    state: str
    state_label: str


@dataclass(frozen=True)
class PlanSummary:
    """The pathway page's view of an EMDR plan: its id for the link, and each target's title and state."""

    public_id: uuid.UUID
    targets: list[TargetBadge]


def current_target(plan: EmdrPlan) -> EmdrTarget | None:
    """The target the plan is working on: the first in the plan's order that is in progress (blocked
    ones wait), for the session log form to start from. One query."""
    return plan.targets.filter(state=emdr_rules.State.IN_PROGRESS).order_by("order", "id").first()


def plan_summary(pathway: Pathway) -> PlanSummary | None:
    """The pathway's plan with its targets in order, or None when no plan is open yet.

    One query whether or not the plan has targets (the plan LEFT JOINed to its targets), so the
    pathway page costs the same before and after the first target is added.
    """
    rows = list(
        EmdrPlan.objects.filter(pathway=pathway)
        .values("public_id", "targets__title", "targets__state")
        .order_by("targets__order", "targets__id")
    )
    if not rows:
        return None
    labels = dict(EmdrTarget._meta.get_field("state").choices or [])
    targets = [
        TargetBadge(row["targets__title"], row["targets__state"], str(labels.get(row["targets__state"], "")))
        for row in rows
        if row["targets__state"] is not None
    ]
    return PlanSummary(public_id=rows[0]["public_id"], targets=targets)


def readiness_facts(plan: EmdrPlan, targets: list[EmdrTarget]) -> emdr_rules.ReadinessFacts:
    """The readiness criteria from the plan, the screening and the measures (two queries: the
    screening's versions, then the latest DES-II and any open high-risk alert together). Read afresh
    on every call: `target_start` decides its gate on it."""
    pathway: Pathway = plan.pathway
    current = screening_selectors.current_screening(pathway)
    latest_des2 = (
        MeasureResponse.objects.filter(pathway=OuterRef("pk"), instrument="des2", carried_from__isnull=True)
        .order_by("-administered_at", "-id")
        .values("total")[:1]
    )
    high_risk_alerts = SafetyAlert.objects.filter(
        pathway=OuterRef("pk"), status="open", code__in=["cssrs_high", "phq9_item9"]
    )
    signals = (
        Pathway.objects.filter(pk=pathway.pk)
        .annotate(des2=Subquery(latest_des2), high_risk_alert_open=Exists(high_risk_alerts))
        .values("des2", "high_risk_alert_open")
        .get()
    )
    des2 = signals["des2"]
    facts = target_facts(targets)
    return emdr_rules.ReadinessFacts(
        resource_installed=emdr_rules.resource_installed(facts),
        dual_awareness_shown=plan.dual_awareness_shown,
        stabilisation_at_sud_0_1=emdr_rules.stabilisation_done(facts),
        current_crisis=current.current_crisis if current is not None else None,
        high_risk_alert_open=signals["high_risk_alert_open"],
        des2_mean=float(des2) if des2 is not None else None,
        dissociation_interview_recorded=plan.dissociation_interview_recorded,
        affect_tolerance_shown=plan.affect_tolerance_shown,
    )


@dataclass(frozen=True)
class PlanState:
    """Everything the plan page and the API's plan show about what comes next: the targets, the readiness
    checklist under the plan's protocol, each target's start problems, and the proposal with its reason."""

    targets: list[EmdrTarget]
    facts: list[emdr_rules.TargetFacts]
    checklist: list[emdr_rules.Criterion]
    ready: bool
    problems: dict[int, list[emdr_rules.Problem]]
    proposal: emdr_rules.Proposal


def plan_state(plan: EmdrPlan, targets: list[EmdrTarget] | None = None) -> PlanState:
    """The plan's state under its protocol (the targets with their links, then the readiness signals:
    three queries, whatever the number of targets)."""
    targets = plan_targets(plan) if targets is None else targets
    facts = target_facts(targets)
    checklist = emdr_rules.readiness_checklist(readiness_facts(plan, targets), protocol=plan.protocol)
    return PlanState(
        targets=targets,
        facts=facts,
        checklist=checklist,
        ready=emdr_rules.readiness_met(checklist),
        problems={
            fact.key: emdr_rules.start_problems(fact, facts, protocol=plan.protocol, checklist=checklist)
            for fact in facts
            if fact.state == emdr_rules.State.NOT_STARTED
        },
        proposal=emdr_rules.propose_next(facts, protocol=plan.protocol, checklist=checklist),
    )


@dataclass(frozen=True)
class DosingWindow:
    session: DosingSession
    opens_at: dt.datetime
    closes_at: dt.datetime

    @property
    def is_open(self) -> bool:
        return self.opens_at <= timezone.now() <= self.closes_at


DOSING_WINDOWS_SHOWN = 10
"""How many of the latest doses the plan page and the session log offer: an EMDR session ties to a
recent dose (72 hours by default), and a patient treated for years has hundreds."""


def dosing_windows(plan: EmdrPlan, *, limit: int = DOSING_WINDOWS_SHOWN) -> list[DosingWindow]:
    """The latest `limit` dosed sessions of the pathway, oldest first, each with the window in which
    EMDR counts as tied to it. One query: the clinic's window length (or the default, while the
    clinic has not saved its dosing settings) comes with each session."""
    default_hours = DosingSettings._meta.get_field("emdr_window_hours").get_default()
    clinic_hours = DosingSettings.objects.filter(clinic_id=OuterRef("clinic_id")).values("emdr_window_hours")
    sessions = list(
        DosingSession.objects.filter(booking__pathway_id=plan.pathway_id, dose_started_at__isnull=False)
        .annotate(window_hours=Coalesce(Subquery(clinic_hours[:1]), Value(default_hours)))
        .order_by("-dose_started_at", "-id")[:limit]
    )
    windows = []
    for session in reversed(sessions):
        started = session.dose_started_at
        assert started is not None
        hours = session.window_hours
        windows.append(DosingWindow(session, started, started + dt.timedelta(hours=hours)))
    return windows
