"""Reads for integration: who may see which notes and follow-ups, and the lists the pages show.

Each list is one query (or a fixed few) however much data there is; visibility always starts from
`pathways.selectors.pathway_qs_for_user`, so a therapist sees their own care team's and nobody
sees another clinic's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from typing import Generic
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db.models import BooleanField
from django.db.models import Count
from django.db.models import Exists
from django.db.models import ExpressionWrapper
from django.db.models import F
from django.db.models import Model
from django.db.models import OuterRef
from django.db.models import Prefetch
from django.db.models import Q
from django.db.models import QuerySet
from django.db.models import Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.utils import timezone

from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from pathways.models import Pathway
from pathways.selectors import get_pathway_for_user_or_404
from pathways.selectors import pathway_qs_for_user
from sessions.emdr import selectors as emdr_selectors
from sessions.models import DosingSession
from sessions.models import EmdrSessionLog
from sessions.models import SessionStatus
from sessions.record import selectors as dosing_selectors

from . import rules
from .models import Experiment
from .models import ExperimentUpdate
from .models import FollowUp
from .models import FollowUpStatus
from .models import IntegrationNote
from .models import IntegrationSettings
from .models import NoteAddendum
from .models import NoteStatus
from .models import Summary
from .models import SummaryKind


def integration_settings_for(clinic_id: int) -> IntegrationSettings:
    """The clinic's follow-up settings (defaults until an admin changes them)."""
    found = IntegrationSettings.objects.filter(clinic_id=clinic_id).first()
    return found if found is not None else IntegrationSettings(clinic_id=clinic_id)


# --- Notes and experiments ---------------------------------------------------------------------------


def note_qs_for_user(user: User) -> QuerySet[IntegrationNote]:
    """Notes the user may read: prescribers the clinic's, therapists their care team's."""
    if not has_capability(user, Capability.INTEGRATION_VIEW):
        return IntegrationNote.objects.none()
    return IntegrationNote.objects.filter(pathway__in=pathway_qs_for_user(user).values("pk")).select_related(
        "pathway__patient", "pathway__therapist", "author", "dosing_session__booking"
    )


def get_note_for_user_or_404(user: User, public_id: uuid.UUID | str) -> IntegrationNote:
    try:
        return note_qs_for_user(user).get(public_id=public_id)
    except (IntegrationNote.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such note.") from None


def experiment_qs_for_user(user: User) -> QuerySet[Experiment]:
    if not has_capability(user, Capability.INTEGRATION_VIEW):
        return Experiment.objects.none()
    return Experiment.objects.filter(pathway__in=pathway_qs_for_user(user).values("pk"))


def get_experiment_for_user_or_404(user: User, public_id: uuid.UUID | str) -> Experiment:
    try:
        return experiment_qs_for_user(user).select_related("pathway").get(public_id=public_id)
    except (Experiment.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such experiment.") from None


PATHWAY_NOTES_SHOWN = 10
"""How many notes the integration page shows: the latest, with a link to the full list. A patient
treated for years has hundreds; the page must not grow with them."""

PATHWAY_OPEN_FOLLOW_UPS_SHOWN = 25
"""How many open follow-ups the integration page shows (soonest due first). A pathway has a handful
open at a time; the cap only keeps a neglected one's page bounded."""

PATHWAY_CLOSED_FOLLOW_UPS_SHOWN = 10
"""How many closed follow-ups the integration page shows: the latest, with a link to the full list."""

PANEL_SETTLED_EXPERIMENTS_SHOWN = 10
"""How many settled experiments the pathway page's integration panel names: the latest ones."""


def pathway_notes_qs(pathway: Pathway) -> QuerySet[IntegrationNote]:
    """The pathway's notes, newest first, with what a row shows (author, the dose it follows)."""
    return (
        IntegrationNote.objects.filter(pathway=pathway)
        .select_related("author", "dosing_session__booking")
        .order_by("-held_at", "-id")
    )


RowT = TypeVar("RowT", bound=Model)


@dataclass(frozen=True)
class Latest(Generic[RowT]):
    """The first rows of a longer list, and how many rows the whole list has."""

    rows: list[RowT]
    total: int

    @property
    def has_more(self) -> bool:
        """Whether the list has more rows than shown (then the page links to the full list)."""
        return self.total > len(self.rows)


def _latest(qs: QuerySet[RowT], limit: int) -> Latest[RowT]:
    """The first `limit` rows of `qs` and its total, in one query: the total is a window count over
    the whole filtered set, computed before the LIMIT."""
    rows: list[RowT] = list(qs.annotate(list_total=Window(Count("id")))[:limit])
    return Latest(rows=rows, total=getattr(rows[0], "list_total", 0) if rows else 0)


@dataclass(frozen=True)
class LatestNotes(Latest[IntegrationNote]):
    has_draft: bool
    """Whether the pathway has a draft note (shown or not): the page offers to continue it."""


def pathway_latest_notes(pathway: Pathway, *, limit: int = PATHWAY_NOTES_SHOWN) -> LatestNotes:
    """The integration page's notes: the latest `limit`, how many there are, and whether one is a
    draft, in one query however many notes the pathway has."""
    draft = IntegrationNote.objects.filter(pathway=OuterRef("pathway"), status=NoteStatus.DRAFT)
    notes: QuerySet[IntegrationNote] = pathway_notes_qs(pathway).annotate(pathway_has_draft=Exists(draft))
    latest = _latest(notes, limit)
    return LatestNotes(
        rows=latest.rows,
        total=latest.total,
        has_draft=bool(latest.rows) and getattr(latest.rows[0], "pathway_has_draft", False),
    )


def pathway_experiments(pathway: Pathway, *, with_history: bool = False) -> list[Experiment]:
    """Every experiment of the pathway, live ones first (one query; two with their history)."""
    experiments = Experiment.objects.filter(pathway=pathway).order_by("created_at", "id")
    if with_history:
        experiments = experiments.prefetch_related(
            Prefetch(
                "updates", queryset=ExperimentUpdate.objects.select_related("note").order_by("created_at")
            )
        )
    return sorted(experiments, key=lambda e: (not e.is_live, e.created_at))


@dataclass(frozen=True)
class PanelExperiments:
    live: list[Experiment]
    """Every live (planned or tried) experiment, oldest first."""
    settled: Latest[Experiment]
    """The latest settled (kept or dropped) experiments, most recently settled first, and how many."""


def pathway_panel_experiments(
    pathway: Pathway, *, settled_limit: int = PANEL_SETTLED_EXPERIMENTS_SHOWN
) -> PanelExperiments:
    """The pathway page's integration panel: the live experiments and the latest settled ones, in one
    query however many have been settled over the years (the rest are on the integration page).

    Window functions number and count each side (live, settled) before the filter keeps every live
    one and the first `settled_limit` settled ones."""
    live = Q(state__in=sorted(rules.LIVE_EXPERIMENT_STATES))
    side = ExpressionWrapper(live, output_field=BooleanField())
    rows: list[Experiment] = list(
        Experiment.objects.filter(pathway=pathway)
        .annotate(
            side_rank=Window(
                RowNumber(), partition_by=[side], order_by=[F("updated_at").desc(), F("id").desc()]
            ),
            side_total=Window(Count("id"), partition_by=[side]),
        )
        .filter(live | Q(side_rank__lte=settled_limit))
        .order_by("created_at", "id")
    )
    settled = sorted((e for e in rows if not e.is_live), key=lambda e: getattr(e, "side_rank", 0))
    return PanelExperiments(
        live=[e for e in rows if e.is_live],
        settled=Latest(rows=settled, total=getattr(settled[0], "side_total", 0) if settled else 0),
    )


@dataclass(frozen=True)
class NoteDetail:
    addenda: list[NoteAddendum]
    agreed: list[Experiment]
    reviewed: list[ExperimentUpdate]
    live: list[Experiment]


def note_detail(note: IntegrationNote) -> NoteDetail:
    """What a note's page shows: its addenda, the experiments agreed in it and reviewed in it, and
    (for a draft) the live experiments agreed in earlier notes, to review. A fixed number of queries."""
    return NoteDetail(
        addenda=list(note.addenda.select_related("author")),
        agreed=list(note.experiments_agreed.order_by("created_at", "id")),
        reviewed=list(note.experiment_updates.select_related("experiment").order_by("created_at", "id")),
        live=[e for e in pathway_experiments(note.pathway) if e.is_live and e.agreed_in_id != note.pk]
        if not note.is_signed
        else [],
    )


def completed_sessions(pathway: Pathway) -> list[DosingSession]:
    """The pathway's signed dosing sessions, newest first: what an integration note can follow."""
    return list(
        DosingSession.objects.filter(booking__pathway=pathway, status=SessionStatus.SIGNED)
        .select_related("booking")
        .order_by("-dose_started_at", "-id")
    )


# --- Follow-ups --------------------------------------------------------------------------------------


def follow_up_qs_for_user(user: User) -> QuerySet[FollowUp]:
    """Follow-ups on pathways the user may see, with what a list row shows loaded in the same query."""
    if not has_capability(user, Capability.FOLLOW_UP_VIEW):
        return FollowUp.objects.none()
    visible = FollowUp.objects.filter(clinic_id=user.member_clinic_id)
    if not has_capability(user, Capability.PATIENT_VIEW_ALL):
        visible = visible.filter(pathway__in=pathway_qs_for_user(user).values("pk"))
    return visible.select_related("patient", "pathway", "responsible", "done_by", "booking")


def get_follow_up_for_user_or_404(user: User, public_id: uuid.UUID | str) -> FollowUp:
    try:
        return follow_up_qs_for_user(user).select_related("dosing_session").get(public_id=public_id)
    except (FollowUp.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such follow-up.") from None


def _work(qs: QuerySet[FollowUp]) -> QuerySet[FollowUp]:
    return qs.filter(status=FollowUpStatus.OPEN).exclude(kind__in=list(rules.NOTICE_ONLY_KINDS))


def follow_ups_list(
    user: User, *, scope: str = "mine", show: str = "open", now: dt.datetime | None = None
) -> QuerySet[FollowUp]:
    """The follow-ups page: `scope` "mine" (responsible) or "clinic"; `show` "open", "overdue",
    "reminders" (the messages to patients before a visit) or "closed"."""
    now = now or timezone.now()
    visible = follow_up_qs_for_user(user)
    if scope == "mine":
        visible = visible.filter(responsible=user)
    if show == "overdue":
        return _work(visible).filter(due_at__lt=now).order_by("due_at", "id")
    if show == "reminders":
        return visible.filter(kind__in=list(rules.NOTICE_ONLY_KINDS)).order_by("-due_at", "-id")
    if show == "closed":
        return visible.exclude(status=FollowUpStatus.OPEN).order_by("-done_at", "-due_at", "-id")
    return _work(visible).order_by("due_at", "id")


_FOLLOW_UP_ROW_FIELDS = ("public_id", "kind", "sequence", "due_at", "responsible__full_name")
"""What a follow-up's line on a panel prints: its label (kind and sequence), when it is due and who is
responsible, by name (no whole user row for a name)."""


def overdue_follow_ups(
    user: User, *, mine: bool, limit: int = 10, others_only: bool = False
) -> tuple[list[FollowUp], int]:
    """The first `limit` overdue follow-ups (the user's own, or the clinic's) and how many there are.
    With `others_only`, the clinic's leave out the user's own (a dashboard that lists those already
    shows each item once).

    One query: the total is a window count over the whole filtered set, computed before the LIMIT,
    so the dashboard panel costs the same with ten overdue follow-ups as with ten thousand.
    """
    overdue_qs = follow_ups_list(user, scope="mine" if mine else "clinic", show="overdue")
    if others_only and not mine:
        overdue_qs = overdue_qs.exclude(responsible=user)
    # The panel names the patient and who is responsible: the list page's other joins cost more to
    # plan than the query costs to run.
    # Of them, only the fields the panel prints (`integration/overdue_panel.html`) are loaded.
    overdue = _latest(
        overdue_qs.select_related(None)
        .select_related("patient", "responsible")
        .only(*_FOLLOW_UP_ROW_FIELDS, "patient__public_id", "patient__given_name", "patient__family_name"),
        limit,
    )
    return overdue.rows, overdue.total


def open_follow_ups_for(pathways: list[Pathway]) -> dict[int, list[FollowUp]]:
    """Each pathway's open work (not reminders), soonest first, in one query for all of them.

    The result is kept on each pathway object, so that the pathway page's next actions and its
    integration section, which both need it, share the one query. Only what those print is loaded
    (`_FOLLOW_UP_ROW_FIELDS`, the status and the reminder's times): any other field costs a query."""
    missing = [p for p in pathways if not hasattr(p, "_open_follow_ups")]
    if missing:
        found: dict[int, list[FollowUp]] = {p.pk: [] for p in missing}
        rows = (
            _work(FollowUp.objects.filter(pathway__in=[p.pk for p in missing]))
            .select_related("responsible")
            .only(*_FOLLOW_UP_ROW_FIELDS, "pathway_id", "status", "notify_at", "notified_at")
        )
        for follow_up in rows.order_by("due_at", "id"):
            found[follow_up.pathway_id].append(follow_up)
        for pathway in missing:
            pathway._open_follow_ups = found[pathway.pk]  # type: ignore[attr-defined]
    return {p.pk: p._open_follow_ups for p in pathways}  # type: ignore[attr-defined]


def pathway_follow_ups(pathway: Pathway) -> list[FollowUp]:
    """The pathway's open follow-ups, soonest first."""
    return open_follow_ups_for([pathway])[pathway.pk]


def pathway_all_follow_ups_qs(pathway: Pathway) -> QuerySet[FollowUp]:
    """Every follow-up of the pathway, newest due first: its full history, a page at a time."""
    return (
        FollowUp.objects.filter(pathway=pathway)
        .select_related("responsible", "done_by")
        .order_by("-due_at", "-id")
    )


@dataclass(frozen=True)
class PathwayFollowUps:
    open: Latest[FollowUp]
    """The open follow-ups (visit reminders included), soonest due first."""
    closed: Latest[FollowUp]
    """The latest closed (done or cancelled) follow-ups, latest closed first."""


def pathway_follow_ups_overview(
    pathway: Pathway,
    *,
    open_limit: int = PATHWAY_OPEN_FOLLOW_UPS_SHOWN,
    closed_limit: int = PATHWAY_CLOSED_FOLLOW_UPS_SHOWN,
) -> PathwayFollowUps:
    """The integration page's follow-ups: what is open and the latest closed, with their totals (two
    queries however long the pathway's history; the rest is on the full list)."""
    rows = FollowUp.objects.filter(pathway=pathway).select_related("responsible", "done_by")
    return PathwayFollowUps(
        open=_latest(rows.filter(status=FollowUpStatus.OPEN).order_by("due_at", "id"), open_limit),
        closed=_latest(
            rows.exclude(status=FollowUpStatus.OPEN).order_by(
                F("done_at").desc(nulls_last=True), "-due_at", "-id"
            ),
            closed_limit,
        ),
    )


# --- Summaries ---------------------------------------------------------------------------------------
# The record a PDF summary is of, and whether the user may see it: the first step of building one
# (`integration.summaries`), and the access check of a stored one.


class NotSummarisable(Exception):
    """The record exists and may be seen, but is not a finished record yet (an unsigned draft)."""


@dataclass(frozen=True)
class SummarySource:
    """The record a summary is of, with its pathway and the summary's title."""

    kind: str
    record: Any
    pathway: Pathway
    title: str


def _emdr_logs() -> QuerySet[EmdrSessionLog]:
    return EmdrSessionLog.objects.select_related(
        "plan__pathway__patient", "plan__pathway__clinic", "therapist"
    )


def source_for(user: User, kind: str, public_id: uuid.UUID | str) -> SummarySource:
    """The record of `kind` that `user` may see, or Http404 (missing and forbidden alike)."""
    if kind == SummaryKind.DOSING_SESSION:
        # The summary carries the record's clinical content: a reader of its logistics only (a clinic
        # admin whose clinic does not grant more) gets the answer a missing record gets.
        session = dosing_selectors.get_session_clinical_for_user_or_404(user, public_id)
        return _source(kind, session)
    if kind == SummaryKind.EMDR_SESSION:
        try:
            log = _emdr_logs().get(plan__in=emdr_selectors.plan_qs_for_user(user), public_id=public_id)
        except (EmdrSessionLog.DoesNotExist, ValidationError, ValueError, TypeError):
            raise Http404("No such session.") from None
        return _source(kind, log)
    if kind == SummaryKind.INTEGRATION_NOTE:
        return _source(kind, get_note_for_user_or_404(user, public_id))
    if kind == SummaryKind.PATHWAY:
        # The whole pathway holds screening, EMDR and integration notes: its clinicians only.
        if not has_capability(user, Capability.INTEGRATION_VIEW):
            raise Http404("No such pathway.")
        return _source(kind, get_pathway_for_user_or_404(user, public_id))
    raise Http404("No such summary.")


def source_unscoped(kind: str, public_id: uuid.UUID | str) -> SummarySource:
    """The record for a background task, which acts for whoever asked (checked when they asked)."""
    model: Any = {
        SummaryKind.DOSING_SESSION: dosing_selectors.session_qs_for_user_unscoped(),
        SummaryKind.EMDR_SESSION: _emdr_logs(),
        SummaryKind.INTEGRATION_NOTE: IntegrationNote.objects.select_related("pathway__patient", "author"),
        SummaryKind.PATHWAY: Pathway.objects.select_related("patient", "prescriber", "therapist"),
    }[SummaryKind(kind)]
    return _source(kind, model.get(public_id=public_id))


def _source(kind: str, record: Any) -> SummarySource:
    if kind == SummaryKind.DOSING_SESSION:
        if record.status != SessionStatus.SIGNED:
            raise NotSummarisable("Summaries are made from signed records; sign the session record first.")
        when = timezone.localtime(record.dose_started_at or record.created_at)
        return SummarySource(kind, record, record.booking.pathway, f"Dosing session of {when:%-d %B %Y}")
    if kind == SummaryKind.EMDR_SESSION:
        when = timezone.localtime(record.held_at)
        return SummarySource(kind, record, record.plan.pathway, f"EMDR session of {when:%-d %B %Y}")
    if kind == SummaryKind.INTEGRATION_NOTE:
        if record.status != NoteStatus.SIGNED:
            raise NotSummarisable("Summaries are made from signed notes; sign the note first.")
        when = timezone.localtime(record.held_at)
        return SummarySource(kind, record, record.pathway, f"Integration note of {when:%-d %B %Y}")
    return SummarySource(kind, record, record, "Pathway summary")


def get_summary_for_user_or_404(user: User, public_id: uuid.UUID | str) -> Summary:
    """A summary whose record the user may see (the record's own access check), else 404."""
    try:
        summary = Summary.objects.select_related("pathway__patient", "pathway__clinic").get(
            public_id=public_id, clinic_id=user.member_clinic_id
        )
    except (Summary.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such summary.") from None
    with contextlib.suppress(NotSummarisable):  # signed when summarised: access is what matters
        source_for(user, summary.kind, summary.record_public_id)
    return summary
