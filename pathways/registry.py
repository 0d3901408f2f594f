"""Where later apps plug into the pathway without the pathway importing them.

Imports run one way (`integration -> sessions -> screening -> pathways -> kaemdr`). When a later
app must take part in something the pathway owns, it registers a callable here from its
`AppConfig.ready()`, and `pathways` calls whatever is registered:

- a *stage gate* may refuse a stage move (a signed screening before dosing, say);
- a *next-action provider* adds items to a pathway's next actions;
- a *dashboard panel* adds a panel to a role's dashboard, a *pathway panel* a section to the
  pathway page; a *pathway page read* widens the page's one read of the pathway with what a later
  app keeps one of per pathway (its course plan, say), so the panel that shows it costs no query;
- a *record action* adds a button to a record's page (the PDF summary of a session, say);
- a *demo seeder* adds the app's part of the demo clinic for `make run`;
- an *event handler* runs inside the transaction that emitted the event (a completed dosing
  session creating its follow-ups, say), so both land or neither does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from kaemdr.models import User

    from .models import Pathway
    from .rules import NextAction


class StageGate(Protocol):
    def __call__(self, *, pathway: Pathway, to_stage: str) -> list[str]:
        """Reasons the move must be refused; an empty list lets it through."""
        ...


class NextActionProvider(Protocol):
    def __call__(self, *, pathways: list[Pathway]) -> dict[int, list[NextAction]]:
        """Next actions for each of `pathways` by primary key, in a fixed number of queries."""
        ...


@dataclass(frozen=True)
class DashboardPanel:
    """A panel on a dashboard: a title, a template and its context. A dashboard panel names the
    patients it shows in `patients` (loaded with its rows), for the dashboard's read audit; a pathway
    panel shows its pathway's patient, whom the pathway page's audit event names already."""

    title: str
    template_name: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100
    patients: tuple[Any, ...] = ()


class DashboardPanelProvider(Protocol):
    def __call__(self, *, user: User) -> DashboardPanel | None: ...


class PathwayPanelProvider(Protocol):
    def __call__(self, *, pathway: Pathway, user: User) -> DashboardPanel | None:
        """A section of the pathway page for `user`, or None when the role may not see it."""
        ...


class RecordActionProvider(Protocol):
    def __call__(self, *, kind: str, record: Any, user: User) -> DashboardPanel | None:
        """An action offered on a record's page (a PDF summary, say), or None."""
        ...


class PathwayPageRead(Protocol):
    def __call__(self, queryset: QuerySet[Pathway]) -> QuerySet[Pathway]:
        """The pathway page's pathway query, widened (`select_related`, annotations); never narrowed."""
        ...


EventHandler = Callable[..., object]
DemoSeeder = Callable[..., None]


class PathwayRegistry:
    """The registered gates, next-action providers, dashboard panels and event handlers."""

    def __init__(self) -> None:
        self.stage_gates: list[StageGate] = []
        self.next_action_providers: list[NextActionProvider] = []
        self.dashboard_panels: list[DashboardPanelProvider] = []
        self.pathway_panels: list[PathwayPanelProvider] = []
        self.event_handlers: dict[str, list[EventHandler]] = defaultdict(list)
        self.demo_seeders: list[DemoSeeder] = []
        self.record_actions: list[RecordActionProvider] = []
        self.pathway_page_reads: list[PathwayPageRead] = []

    def register_stage_gate(self, gate: StageGate) -> StageGate:
        if gate not in self.stage_gates:
            self.stage_gates.append(gate)
        return gate

    def register_next_actions(self, provider: NextActionProvider) -> NextActionProvider:
        if provider not in self.next_action_providers:
            self.next_action_providers.append(provider)
        return provider

    def register_dashboard_panel(self, provider: DashboardPanelProvider) -> DashboardPanelProvider:
        if provider not in self.dashboard_panels:
            self.dashboard_panels.append(provider)
        return provider

    def register_pathway_panel(self, provider: PathwayPanelProvider) -> PathwayPanelProvider:
        if provider not in self.pathway_panels:
            self.pathway_panels.append(provider)
        return provider

    def register_event_handler(self, event: str, handler: EventHandler) -> EventHandler:
        if handler not in self.event_handlers[event]:
            self.event_handlers[event].append(handler)
        return handler

    def register_demo_seeder(self, seeder: DemoSeeder) -> DemoSeeder:
        """`seeder(pathway=..., to_stage=..., at=..., staff=...)` runs while the demo clinic loads:
        before each move of each demo pathway (`to_stage` is where it goes, `at` when, in the demo's
        past) and once at the end with `to_stage=None`. `staff` maps demo emails to users."""
        if seeder not in self.demo_seeders:
            self.demo_seeders.append(seeder)
        return seeder

    def register_pathway_page_read(self, read: PathwayPageRead) -> PathwayPageRead:
        if read not in self.pathway_page_reads:
            self.pathway_page_reads.append(read)
        return read

    def pathway_page_queryset(self, queryset: QuerySet[Pathway]) -> QuerySet[Pathway]:
        """The pathway page's read of its pathway, with what each registered read adds to it."""
        for read in self.pathway_page_reads:
            queryset = read(queryset)
        return queryset

    def register_record_action(self, provider: RecordActionProvider) -> RecordActionProvider:
        """`provider(kind=..., record=..., user=...)` adds an action to a record's page, where the page
        places `{% record_actions "kind" record %}` (kinds: dosing_session, emdr_session, pathway, ...)."""
        if provider not in self.record_actions:
            self.record_actions.append(provider)
        return provider

    def record_actions_for(self, *, kind: str, record: Any, user: User) -> list[DashboardPanel]:
        actions = [
            a for provider in self.record_actions if (a := provider(kind=kind, record=record, user=user))
        ]
        return sorted(actions, key=lambda action: action.order)

    def stage_gate_refusals(self, *, pathway: Pathway, to_stage: str) -> list[str]:
        return [reason for gate in self.stage_gates for reason in gate(pathway=pathway, to_stage=to_stage)]

    def extra_next_actions(self, *, pathways: list[Pathway]) -> dict[int, list[NextAction]]:
        actions: dict[int, list[NextAction]] = {pathway.pk: [] for pathway in pathways}
        for provider in self.next_action_providers:
            for pathway_id, extra in provider(pathways=pathways).items():
                actions.setdefault(pathway_id, []).extend(extra)
        return actions

    def pathway_panels_for(self, *, pathway: Pathway, user: User) -> list[DashboardPanel]:
        panels = [
            panel for provider in self.pathway_panels if (panel := provider(pathway=pathway, user=user))
        ]
        return sorted(panels, key=lambda panel: panel.order)

    def panels_for(self, *, user: User) -> list[DashboardPanel]:
        panels = [panel for provider in self.dashboard_panels if (panel := provider(user=user)) is not None]
        return sorted(panels, key=lambda panel: panel.order)

    def emit(self, event: str, **payload: Any) -> None:
        """Call every handler of `event` now, inside the caller's transaction."""
        for handler in self.event_handlers.get(event, []):
            handler(**payload)


registry = PathwayRegistry()

PATHWAY_STAGE_CHANGED = "pathway.stage_changed"
SESSION_COMPLETED = "dosing.session_completed"
"""A dosing session's record was signed: `session`, `actor`."""
BOOKING_CHANGED = "dosing.booking_changed"
"""A booking was made, moved or cancelled: `booking`, `actor`."""
SESSION_OPENED = "dosing.session_opened"
"""The patient arrived and a session record was opened for a booking: `session`, `actor`."""
MONITORING_FORM_FILED = "dosing.monitoring_form_filed"
"""An esketamine session's REMS monitoring form was filed: `session`, `actor`."""
PATIENT_DATE_OF_BIRTH_CHANGED = "pathways.patient_date_of_birth_changed"
"""A patient's date of birth was corrected: `patient`, `actor` (the age rules are decided afresh)."""
MEASURE_RECORDED = "screening.measure_recorded"
"""An outcome measure was taken again on a pathway (not a screening's baseline): `response`, `actor`."""
