"""Reads for screening, scoped through the pathway's access rules and the reader's role."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.db.models import Q
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from kaemdr import charts
from kaemdr import sources
from kaemdr.exceptions import Refusal
from kaemdr.models import User
from kaemdr.permissions import Capability
from kaemdr.permissions import has_capability
from kaemdr.sources import Citation
from kaemdr.sources import citation_for
from pathways.models import Pathway
from pathways.selectors import pathway_qs_for_user

from . import rules
from .models import AlertStatus
from .models import Assessment
from .models import AssessmentStatus
from .models import MeasureResponse
from .models import SafetyAlert
from .models import ScreeningSettings


def screening_settings_for(clinic_id: int) -> ScreeningSettings:
    """The clinic's settings, or the defaults (unsaved) when the clinic has not changed them."""
    found = ScreeningSettings.objects.filter(clinic_id=clinic_id).first()
    if found is None:
        return ScreeningSettings(
            clinic_id=clinic_id, second_signature_codes=list(rules.DEFAULT_SECOND_SIGNATURE_CODES)
        )
    return found


def thresholds_for(settings: ScreeningSettings) -> rules.Thresholds:
    return rules.Thresholds(
        systolic=settings.bp_systolic_threshold,
        diastolic=settings.bp_diastolic_threshold,
        adults_only=settings.adults_only,
    )


def assessment_qs_for_user(user: User) -> QuerySet[Assessment]:
    """Assessments of pathways the user may see, for roles that may read screenings."""
    if not has_capability(user, Capability.SCREENING_VIEW):
        return Assessment.objects.none()
    return Assessment.objects.filter(pathway__in=pathway_qs_for_user(user)).select_related(
        "pathway", "pathway__patient", "signed_by", "countersigned_by", "opened_by"
    )


def get_assessment_for_user_or_404(user: User, public_id: uuid.UUID | str) -> Assessment:
    try:
        return assessment_qs_for_user(user).get(public_id=public_id)
    except (Assessment.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such assessment.") from None


def measure_qs_for_user(user: User) -> QuerySet[MeasureResponse]:
    if not has_capability(user, Capability.SCREENING_VIEW):
        return MeasureResponse.objects.none()
    return MeasureResponse.objects.filter(pathway__in=pathway_qs_for_user(user)).select_related("recorded_by")


def alert_qs_for_user(user: User) -> QuerySet[SafetyAlert]:
    if not has_capability(user, Capability.SCREENING_VIEW):
        return SafetyAlert.objects.none()
    return SafetyAlert.objects.filter(pathway__in=pathway_qs_for_user(user)).select_related(
        "pathway__patient", "acknowledged_by", "dosing_override_by"
    )


def get_alert_for_user_or_404(user: User, public_id: uuid.UUID | str) -> SafetyAlert:
    try:
        return alert_qs_for_user(user).get(public_id=public_id)
    except (SafetyAlert.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such alert.") from None


def assessment_with_parts(assessment: Assessment) -> Assessment:
    """The assessment with its medications and measures loaded (two queries)."""
    return (
        Assessment.objects.select_related(
            "pathway", "pathway__patient", "signed_by", "countersigned_by", "opened_by"
        )
        .prefetch_related(
            "medications", Prefetch("measures", queryset=MeasureResponse.objects.order_by("instrument"))
        )
        .get(pk=assessment.pk)
    )


def scores_of(measures: list[MeasureResponse]) -> dict[str, rules.MeasureScore]:
    """Re-score stored answers with the rules, so that the proposal always uses the published scoring."""
    return {measure.instrument: rules.score(measure.instrument, measure.answers) for measure in measures}


def assessment_facts(assessment: Assessment, *, on: dt.date | None = None) -> rules.AssessmentFacts:
    """The assessment as plain facts for the rules; medications and measures should be prefetched."""
    patient = assessment.pathway.patient
    return rules.AssessmentFacts(
        agent=assessment.agent or None,
        route=assessment.route or None,
        age_years=rules.age_on(patient.date_of_birth, on or timezone.localdate()),
        current_crisis=assessment.current_crisis,
        housing_stable=assessment.housing_stable,
        has_support_person=assessment.has_support_person,
        escort_available=assessment.escort_available,
        systolic=assessment.systolic,
        diastolic=assessment.diastolic,
        heart_rate=assessment.heart_rate,
        weight_kg=float(assessment.weight_kg) if assessment.weight_kg is not None else None,
        history_reviewed=assessment.history_reviewed,
        medications_reviewed=assessment.medications_reviewed,
        condition_codes=frozenset(assessment.condition_codes),
        medication_classes=tuple(m.medication_class for m in assessment.medications.all()),
        scores=scores_of(list(assessment.measures.all())),
    )


def cited_reasons(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A signed assessment's stored reasons with each rule's citation from the catalogue (its source
    in plain words and its link); a rule the catalogue does not know keeps the text stored with it."""
    cited = []
    for reason in stored:
        citation = citation_for(str(reason.get("rule", "")))
        source = {"source": citation.text, "source_url": citation.url} if citation else {}
        cited.append({**reason, "source_url": reason.get("source_url", ""), **source})
    return cited


@dataclass(frozen=True)
class AssessmentReview:
    """Everything the assessment page and API show about where an assessment stands."""

    facts: rules.AssessmentFacts
    missing: list[str]
    proposal: rules.Proposal | None
    second_signature_reasons: list[str]


def assessment_review(
    assessment: Assessment, *, settings: ScreeningSettings | None = None
) -> AssessmentReview:
    """Missing parts, and for a complete draft the live proposal; for a signed one, what was signed.

    A caller reviewing many assessments of one clinic passes its `settings` (read once).
    """
    settings = settings or screening_settings_for(assessment.clinic_id)
    facts = assessment_facts(assessment)
    missing = rules.missing_parts(facts)
    proposal = None if missing else rules.propose(facts, thresholds_for(settings))
    second: list[str] = []
    if proposal is not None:
        second = rules.second_signature_reasons(
            proposal=proposal.decision,
            decision=proposal.decision,
            condition_codes=facts.condition_codes,
            second_signature_codes=settings.second_signature_codes,
            agent=facts.agent,
        )
    return AssessmentReview(facts=facts, missing=missing, proposal=proposal, second_signature_reasons=second)


@dataclass(frozen=True)
class ScreeningStatus:
    """Where a pathway's screening stands: its latest version, the current signed one, and why (if
    at all) the pathway may not go on to preparation, dosing or a dosing booking."""

    latest: Assessment | None
    current: Assessment | None
    refusals: list[str]


def screening_status(pathway: Pathway, *, now: dt.datetime | None = None) -> ScreeningStatus:
    """One query for all versions (a pathway has a handful), then `screening_status_of`."""
    versions = list(
        Assessment.objects.filter(pathway=pathway)
        .select_related("signed_by", "countersigned_by")
        .order_by("-version")
    )
    return screening_status_of(versions, now=now or timezone.now())


def screening_status_for_display(pathway: Pathway) -> ScreeningStatus:
    """`screening_status`, read once per pathway object, for the parts of one page that all show it
    (the screening panel and the next actions). Never used to decide a gate: gates read afresh."""
    cached: ScreeningStatus | None = getattr(pathway, "_screening_status", None)
    if cached is None:
        # The page names who signed and countersigned: their names, not their whole user rows.
        versions = list(
            Assessment.objects.filter(pathway=pathway)
            .select_related("signed_by", "countersigned_by")
            .defer(*_SIGNERS_DEFERRED)
            .order_by("-version")
        )
        cached = screening_status_of(versions, now=timezone.now())
        pathway._screening_status = cached  # type: ignore[attr-defined]
    return cached


_SIGNERS_DEFERRED = tuple(
    f"{signer}__{field.name}"
    for signer in ("signed_by", "countersigned_by")
    for field in User._meta.concrete_fields
    if field.name not in ("id", "public_id", "full_name")
)
"""What the pathway page leaves unread of who signed a screening (`screening_status_for_display`)."""


GATE_FIELDS = ("version", "status", "decision", "valid_until")
"""What `screening_status_of` reads of a screening version: a caller that only needs the gate can
read just these."""


def screening_status_of(versions: list[Assessment], *, now: dt.datetime) -> ScreeningStatus:
    """The gate: a current, signed screening whose decision is eligible or eligible with precautions.

    `versions` are one pathway's assessments, newest first. A draft new version does not withdraw
    the signed one it will replace; it only counts once signed.
    """
    latest = versions[0] if versions else None
    signed = [v for v in versions if v.status == AssessmentStatus.SIGNED]
    current = next(
        (v for v in signed if rules.screening_is_current(valid_until=v.valid_until, now=now)), None
    )
    refusals: list[str] = []
    if current is not None:
        if current.decision not in rules.ELIGIBLE_DECISIONS:
            refusals.append("The signed screening decided the patient is not eligible.")
    elif latest is None:
        refusals.append("No screening yet: complete and sign an assessment first.")
    elif latest.status == AssessmentStatus.AWAITING_COUNTERSIGNATURE:
        refusals.append("The screening is waiting for a second prescriber's signature.")
    elif signed and signed[0].valid_until is not None:
        expired_on = timezone.localtime(signed[0].valid_until).date()
        refusals.append(
            f"The signed screening expired on {expired_on:%-d %b %Y}: screen again and sign a new version."
        )
    else:
        refusals.append("The screening is not signed yet.")
    return ScreeningStatus(latest=latest, current=current, refusals=refusals)


def current_screening(pathway: Pathway, *, now: dt.datetime | None = None) -> Assessment | None:
    return screening_status(pathway, now=now).current


def screening_gate_refusals(pathway: Pathway, *, now: dt.datetime | None = None) -> list[str]:
    """Why the pathway may not go on to preparation, dosing or a dosing booking; empty when it may."""
    return screening_status(pathway, now=now).refusals


def open_alerts(pathway: Pathway) -> list[SafetyAlert]:
    """The pathway's open safety alerts, read once per pathway object (the page's panel and its next
    actions both ask)."""
    cached: list[SafetyAlert] | None = getattr(pathway, "_open_safety_alerts", None)
    if cached is None:
        cached = list(SafetyAlert.objects.filter(pathway=pathway, status="open").order_by("-raised_at"))
        pathway._open_safety_alerts = cached  # type: ignore[attr-defined]
    return cached


ALERT_LABELS = {"phq9_item9": "PHQ-9 item 9 above 0", "cssrs_high": "high suicide risk on the C-SSRS"}
DOSING_ALERT_GATE_SOURCE = sources.STAGED_PATHWAY.at("an urgent safety finding is addressed before any dose")


def dosing_blocking_alerts() -> QuerySet[SafetyAlert]:
    """Alerts that stop dosing: open (no action recorded yet) and not overridden for dosing by a
    prescriber, whatever raised them (a baseline or a repeat measure) and whenever."""
    return SafetyAlert.objects.filter(status=AlertStatus.OPEN, dosing_override_at__isnull=True)


def dosing_alert_refusal(alert: SafetyAlert) -> Refusal:
    """What the dosing gates say about one blocking alert: what it is, and what to do."""
    what = ALERT_LABELS.get(alert.code, alert.text)
    raised = timezone.localtime(alert.raised_at)
    return Refusal(
        f"Record the action taken on the open safety alert ({what}, raised {raised:%-d %b %Y %H:%M}) "
        "or have a prescriber sign a dosing override with a reason.",
        code="safety_alert_open",
        source=alert_source(alert.code) + DOSING_ALERT_GATE_SOURCE,
    )


def alert_source(code: str) -> Citation:
    """The citation of the measure flag that raised an alert (an unknown code: both urgent flags')."""
    flags = rules.MEASURE_REASON_SOURCES
    return flags.get(code) or flags["phq9_item9"] + flags["cssrs_high"]


def dosing_alert_refusals(pathway: Pathway) -> list[Refusal]:
    """The refusals of the pathway's open, un-overridden urgent alerts, oldest first (one query)."""
    alerts = dosing_blocking_alerts().filter(pathway_id=pathway.pk).order_by("raised_at", "id")
    return [dosing_alert_refusal(alert) for alert in alerts.only("code", "text", "raised_at")]


def open_alerts_for_dashboard(user: User, *, limit: int = 20) -> list[SafetyAlert]:
    """Open alerts on the user's own pathways (prescriber or therapist); the clinic's for nobody else.
    Only what the dashboard panel shows is loaded (the alert, its pathway's id, the patient's name,
    record number and id): no user rows for who acknowledged or overrode it."""
    if not has_capability(user, Capability.SAFETY_ALERT_ACKNOWLEDGE):
        return []
    mine = Q(pathway__prescriber=user) | Q(pathway__therapist=user)
    alerts = (
        alert_qs_for_user(user)
        .select_related(None)
        .select_related("pathway__patient")
        .only(
            "public_id",
            "text",
            "raised_at",
            "dosing_override_at",
            "pathway__public_id",
            "pathway__patient__public_id",
            "pathway__patient__given_name",
            "pathway__patient__family_name",
            "pathway__patient__record_number",
        )
    )
    return list(alerts.filter(mine, status="open").order_by("-raised_at")[:limit])


@dataclass(frozen=True)
class SeriesPoint:
    when: dt.datetime
    total: float
    band_label: str


def measure_history(pathway: Pathway) -> dict[str, list[SeriesPoint]]:
    """Each instrument's totals over time (one query), leaving out copies carried into a new version."""
    series: dict[str, list[SeriesPoint]] = defaultdict(list)
    rows = MeasureResponse.objects.filter(pathway=pathway, carried_from__isnull=True).order_by(
        "administered_at", "id"
    )
    for row in rows.only("instrument", "total", "band_label", "administered_at"):
        series[row.instrument].append(SeriesPoint(row.administered_at, float(row.total), row.band_label))
    return dict(series)


def _bands(bands: tuple[tuple[float, str, str], ...], top: float) -> list[charts.Band]:
    """A scale's bands as `rules` scores them ((lowest total, code, label), increasing), each up to
    the next one's lowest total and the last up to the scale's maximum."""
    highs = [lowest for lowest, _, _ in bands[1:]] + [top]
    return [charts.Band(label, lowest, high) for (lowest, _, label), high in zip(bands, highs, strict=True)]


# Each charted measure: its scale's maximum, its bands and its lines, from the cut-points the scoring
# in `rules` uses (and cites in `rules.INSTRUMENTS[...].source`); none is set here.
CHARTED: dict[str, tuple[int, list[charts.Band], list[charts.Threshold]]] = {
    rules.Instrument.PHQ9: (27, _bands(rules.PHQ9_BANDS, 27), []),
    rules.Instrument.GAD7: (
        21,
        _bands(rules.GAD7_BANDS, 21),
        [charts.Threshold("Evaluate further (10)", 10)],
    ),
    rules.Instrument.PCL5: (
        80,
        _bands(
            (
                (0, "below_cut_point", "Below the cut-point"),
                (
                    rules.PCL5_LOWER_CUT_POINT,
                    "cut_point_range",
                    f"Cut-point range ({rules.PCL5_LOWER_CUT_POINT}-{rules.PCL5_PROBABLE_PTSD})",
                ),
                (rules.PCL5_PROBABLE_PTSD, "probable_ptsd", "Probable PTSD"),
            ),
            80,
        ),
        [],
    ),
    rules.Instrument.DES2: (
        100,
        _bands(((0, "below_30", "Below 30"), (rules.DES2_HIGH, "high", "High (30 or more)")), 100),
        [],
    ),
}


def measure_charts(history: dict[str, list[SeriesPoint]], tz: Any) -> list[dict[str, Any]]:
    """Each charted measure over time (from `measure_history`): with two administrations or more, an
    SVG line chart over its scale's bands and cut-points (`svg`); with one, no chart but a text
    figure (`text`, "PHQ-9 14 on 3 Dec 2026"). The same on the pathway page and in the pathway
    summary PDF; `source` cites the scale's scoring, where the bands come from."""
    rendered = []
    for instrument, (y_max, bands, thresholds) in CHARTED.items():
        points = history.get(instrument, [])
        if not points:
            continue
        spec = rules.INSTRUMENTS[instrument]
        short = spec.label.split(" (")[0]  # "PHQ-9 (depression)" -> "PHQ-9"
        latest = points[-1]
        rendered.append(
            {
                "label": spec.label,
                "points": points,
                "source": spec.source,
                "text": charts.point_text(short, latest.when, latest.total, tz=tz),
                "band": latest.band_label,
                "svg": charts.line_chart_svg(
                    title=spec.label,
                    series=[charts.Series(short, [(p.when, p.total) for p in points])],
                    y_min=0,
                    y_max=y_max,
                    bands=bands,
                    thresholds=thresholds,
                    tz=tz,
                    height=240,
                ),
            }
        )
    return rendered
