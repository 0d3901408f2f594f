"""Reads of patients and pathways, scoped to the reader's clinic and role.

Prescribers, monitors and clinic admins see every patient of their clinic; therapists see the
patients whose pathway names them on the care team. Anything else answers 404, like a missing row.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from dataclasses import replace

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.db.models import F
from django.db.models import Prefetch
from django.db.models import Q
from django.db.models import QuerySet
from django.db.models import Window
from django.db.models.functions import Length
from django.db.models.functions import Lower
from django.db.models.functions import RowNumber
from django.http import Http404
from django.urls import reverse

from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability

from .models import CLOSED_STAGES
from .models import Pathway
from .models import PathwayStageChange
from .models import Patient
from .models import Stage
from .registry import registry
from .rules import NextAction
from .rules import next_record_number
from .rules import record_number_parts
from .rules import stage_next_actions


def patient_qs_for_user(user: User) -> QuerySet[Patient]:
    """Patients the user may see. The one place that decides patient visibility."""
    if has_capability(user, Capability.PATIENT_VIEW_ALL):
        return Patient.objects.filter(clinic_id=user.member_clinic_id)
    if has_capability(user, Capability.PATIENT_VIEW_CARE_TEAM):
        on_team = Pathway.objects.filter(clinic_id=user.member_clinic_id, therapist=user).values("patient_id")
        return Patient.objects.filter(clinic_id=user.member_clinic_id, pk__in=on_team)
    return Patient.objects.none()


def get_patient_for_user_or_404(user: User, public_id: uuid.UUID | str) -> Patient:
    try:
        return patient_qs_for_user(user).select_related("registered_by").get(public_id=public_id)
    except (Patient.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such patient.") from None


def pathway_qs_for_user(user: User) -> QuerySet[Pathway]:
    """Pathways the user may see, with their patient and care team loaded in the same query."""
    related = Pathway.objects.select_related("patient", "prescriber", "therapist")
    if has_capability(user, Capability.PATIENT_VIEW_ALL):
        return related.filter(clinic_id=user.member_clinic_id)
    if has_capability(user, Capability.PATIENT_VIEW_CARE_TEAM):
        return related.filter(clinic_id=user.member_clinic_id, therapist=user)
    return Pathway.objects.none()


def get_pathway_for_user_or_404(user: User, public_id: uuid.UUID | str) -> Pathway:
    try:
        return pathway_qs_for_user(user).get(public_id=public_id)
    except (Pathway.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such pathway.") from None


STAFF_NAME_FIELDS = ("public_id", "full_name")
"""What a page shows of a member of staff it names (a care team, who made a change): with `only()`,
a name costs two columns, not a whole user row (its password hash, second factor, epochs)."""

_CARE_TEAM_DEFERRED = tuple(
    f"{member}__{field.name}"
    for member in ("prescriber", "therapist")
    for field in User._meta.concrete_fields
    if field.name not in ("id", *STAFF_NAME_FIELDS)
)


def get_pathway_page_for_user_or_404(user: User, public_id: uuid.UUID | str) -> Pathway:
    """`get_pathway_for_user_or_404` for the pathway page, which names the care team and nothing more
    of them: their user rows are read as names (`STAFF_NAME_FIELDS`). Pages that change the pathway or
    its team read the whole rows. Later apps widen the same read with what they keep one of per pathway
    (`registry.pathway_page_queryset`), so their panels cost no query of their own."""
    try:
        queryset = registry.pathway_page_queryset(pathway_qs_for_user(user).defer(*_CARE_TEAM_DEFERRED))
        return queryset.get(public_id=public_id)
    except (Pathway.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such pathway.") from None


def patient_list(user: User, *, search: str = "", stage: str = "") -> QuerySet[Patient]:
    """The patient list page: visible patients with their open pathway (if any) in two queries.

    With a `stage` (a `Stage` value; anything else is ignored), only the patients with a visible
    pathway in that stage, and that pathway in place of the open one (a completed stage's is closed):
    the clinic admin's stage counts link here.
    """
    patients = patient_qs_for_user(user)
    search = search.strip()
    if search:
        patients = patients.filter(
            Q(record_number__icontains=search)
            | Q(family_name__icontains=search)
            | Q(given_name__icontains=search)
        )
    if stage in Stage.values:
        shown = pathway_qs_for_user(user).filter(stage=stage)
        patients = patients.filter(pk__in=shown.values("patient_id"))
    else:
        shown = pathway_qs_for_user(user).exclude(stage__in=CLOSED_STAGES)
    return patients.prefetch_related(Prefetch("pathways", queryset=shown, to_attr="open_pathways")).order_by(
        "family_name", "given_name", "id"
    )


def patient_pathways(user: User, *, patient: Patient) -> list[Pathway]:
    """The patient's pathways that the user may see, newest first."""
    return list(pathway_qs_for_user(user).filter(patient=patient).order_by("-created_at"))


def pathway_timeline(*, pathway: Pathway) -> list[PathwayStageChange]:
    """The pathway's stage changes, oldest first, with who made each by name (the page's timeline and
    the API's `StaffBriefSerializer`): only those fields are loaded."""
    changes = pathway.stage_changes.select_related("changed_by").only(
        "pathway",  # the related manager sets each change's pathway: deferred, a query per row
        "public_id",
        "from_stage",
        "to_stage",
        "reason",
        "changed_at",
        *(f"changed_by__{name}" for name in STAFF_NAME_FIELDS),
    )
    return list(changes.order_by("changed_at", "id"))


def next_action_for_viewer(action: NextAction, user: User | None) -> NextAction:
    """The action with `url` set to the first of its targets the viewer's role may use, or without a
    link when none (and for no viewer): a role sees a link only where it can act or look."""
    for target in action.targets:
        if user is not None and has_capability(user, Capability(target.capability)):
            url = reverse(target.url_name, args=target.args)
            return replace(action, url=f"{url}#{target.fragment}" if target.fragment else url)
    return replace(action, url="")


def pathways_next_actions(
    pathways: list[Pathway], *, user: User | None = None
) -> dict[int, list[NextAction]]:
    """Each pathway's next actions: later apps' items (more specific) first, then the stage's own,
    each linking to where `user` does it (`next_action_for_viewer`).

    A fixed number of queries however many pathways: registered providers work on the whole list.
    """
    extra = registry.extra_next_actions(pathways=pathways)
    return {
        pathway.pk: [
            next_action_for_viewer(action, user)
            for action in extra.get(pathway.pk, [])
            + stage_next_actions(
                stage=pathway.stage,
                stage_before_hold=pathway.stage_before_hold,
                has_therapist=pathway.therapist_id is not None,
                public_id=str(pathway.public_id),
            )
        ]
        for pathway in pathways
    }


def pathway_next_actions(*, pathway: Pathway, user: User | None = None) -> list[NextAction]:
    return pathways_next_actions([pathway], user=user)[pathway.pk]


DASHBOARD_PATHWAYS_PER_STAGE = 10
"""How many of a clinician's pathways the dashboard lists in each stage: the longest waiting ones,
with the stage's total and a link to all of them (`my_open_pathways`, paginated by its page)."""


_PATHWAY_ROW_FIELDS = (
    "public_id",
    "stage",
    "stage_before_hold",
    "stage_changed_at",
    "therapist",
    "patient__public_id",
    "patient__given_name",
    "patient__family_name",
    "patient__record_number",
)
"""What a dashboard's row of a pathway shows (`pathways/_my_pathway_rows.html`) and its next actions
read (`pathways_next_actions` and the registered providers): the patient by name and record number,
the care team not at all (the therapist's id says whether there is one)."""


@dataclass(frozen=True)
class StageGroup:
    stage: str
    label: str
    pathways: list[Pathway]
    total: int

    @property
    def has_more(self) -> bool:
        return self.total > len(self.pathways)


def my_open_pathways(user: User) -> QuerySet[Pathway]:
    """The open pathways that name the user as prescriber or therapist, longest in their stage first."""
    return (
        pathway_qs_for_user(user)
        .exclude(stage__in=CLOSED_STAGES)
        .filter(Q(prescriber=user) | Q(therapist=user))
        .order_by("stage_changed_at", "id")
    )


def my_open_pathways_by_stage(
    user: User, *, per_stage: int = DASHBOARD_PATHWAYS_PER_STAGE
) -> list[StageGroup]:
    """The prescriber's or therapist's own open pathways, grouped by stage in pathway order: in each
    stage the `per_stage` longest waiting, and how many there are. One query, however long the
    caseload: the rank and the total are window functions over each stage."""
    in_stage_order = [F("stage_changed_at").asc(), F("id").asc()]
    ranked = (
        my_open_pathways(user)
        .annotate(
            stage_rank=Window(RowNumber(), partition_by=[F("stage")], order_by=in_stage_order),
            stage_total=Window(Count("id"), partition_by=[F("stage")]),
        )
        .filter(stage_rank__lte=per_stage)
    )
    pathways: list[Pathway] = list(
        ranked.select_related(None).select_related("patient").only(*_PATHWAY_ROW_FIELDS)
    )
    groups: list[StageGroup] = []
    for stage, label in Stage.choices:
        members = [p for p in pathways if p.stage == stage]
        if members:
            total: int = members[0].stage_total  # type: ignore[attr-defined]  # the window annotation
            groups.append(StageGroup(stage=stage, label=label, pathways=members, total=total))
    return groups


@dataclass(frozen=True)
class StageCount:
    stage: str
    label: str
    count: int


def clinic_stage_counts(user: User) -> list[StageCount]:
    """How many of the clinic's visible pathways sit in each stage, in pathway order."""
    rows = pathway_qs_for_user(user).order_by().values("stage").annotate(total=Count("id"))
    counts = {row["stage"]: row["total"] for row in rows}
    return [StageCount(stage, label, counts.get(stage, 0)) for stage, label in Stage.choices]


def pathways_in_stage(user: User, *, stage: str, limit: int = 50) -> list[Pathway]:
    """The monitor's dashboard list: the pathways in `stage`, with only what a row shows loaded (the
    patient's name, record number and escort, the prescriber's name)."""
    rows = (
        pathway_qs_for_user(user)
        .select_related(None)
        .select_related("patient", "prescriber")
        .only(
            "public_id",
            "patient__public_id",
            "patient__given_name",
            "patient__family_name",
            "patient__record_number",
            "patient__emergency_contact_can_escort",
            "prescriber__full_name",
        )
    )
    return list(rows.filter(stage=stage).order_by("patient__family_name", "id")[:limit])


def recent_patients(user: User, *, limit: int = 10) -> list[Patient]:
    """The clinic admin's dashboard list: the latest registered, by name and record number only."""
    latest = patient_qs_for_user(user).only("public_id", "given_name", "family_name", "record_number")
    return list(latest.order_by("-created_at", "-id")[:limit])


def next_free_record_number(user: User) -> str:
    """A hint for the registration form: the next free record number in the clinic's pattern, taken
    from the most recently registered patient's (prefix and number), continued after the highest
    number the clinic has with that prefix. Empty when the clinic has no patients yet or its numbers
    end in no digits. Two queries, however many patients; never assigned, only suggested."""
    latest = patient_qs_for_user(user).order_by("-created_at", "-id").values_list("record_number", flat=True)
    newest = latest.first()
    parts = record_number_parts(newest) if newest else None
    if parts is None:
        return ""
    prefix = parts[0]
    highest = (
        patient_qs_for_user(user)
        .filter(record_number__iregex=rf"^{re.escape(prefix)}[0-9]+$")
        .annotate(number_length=Length("record_number"))
        .order_by("-number_length", Lower("record_number").desc())
        .values_list("record_number", flat=True)
        .first()
    )
    digits = (record_number_parts(highest) if highest else None) or parts
    return next_record_number(prefix + digits[1])  # in the newest's spelling of the prefix
