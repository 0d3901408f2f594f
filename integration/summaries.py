"""What each PDF summary shows, read in a fixed number of queries, and how it is rendered.

A summary is built in three steps: `source_for` (in `selectors`, named here too) finds the record
the user may see (the same access helpers as the record's own pages), `summary_data` reads
everything the document shows up front into plain values (so its digest is the record's version),
and `render_pdf` lays it out with WeasyPrint from a template, with charts made by the same
server-side SVG code as the pages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zoneinfo
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone

from kaemdr import sources
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from screening import selectors as screening_selectors
from screening.models import Assessment
from screening.models import AssessmentStatus
from sessions.booking import selectors as booking_selectors
from sessions.booking.esketamine_rules import LEAVE_CHECKLIST
from sessions.models import DosingSession
from sessions.models import EmdrSessionLog
from sessions.models import EmdrTarget
from sessions.record import rules as dosing_rules
from sessions.record import selectors as dosing_selectors

from .models import Experiment
from .models import IntegrationNote
from .models import SummaryKind

# The first step, finding the record a user may see, is a scoped read that the access check of a stored
# summary needs too (`selectors.get_summary_for_user_or_404`): it lives in `selectors`, and is named
# here as well so that a summary is built from this module alone.
from .selectors import SummarySource


def _reason_source(reason: dict[str, Any]) -> str:
    """A stored screening finding's source as the catalogue cites its rule today (the text stored with
    an older finding may name a source the catalogue has since put in plain words)."""
    citation = sources.citation_for(str(reason.get("rule", "")))
    return citation.text if citation else str(reason.get("source", ""))


# --- Data --------------------------------------------------------------------------------------------


def _person(user: User | None) -> str:
    return user.full_name if user is not None else ""


def _pmf_pressures(facts: dosing_rules.PmfFacts) -> list[dict[str, Any]]:
    """The monitoring form's three blood pressures, each a reading of its own (or missing)."""
    pressures = facts.blood_pressures
    return [
        {
            "label": label,
            "reading": {"systolic": r.systolic, "diastolic": r.diastolic, "taken_at": r.taken_at}
            if r
            else None,
        }
        for label, r in (
            ("Pre-dose", pressures.pre_dose),
            ("About 40 minutes after the first device", pressures.forty_minutes),
            ("Before discharge", pressures.pre_discharge),
        )
    ]


def _dosing_data(session: DosingSession) -> dict[str, Any]:
    full = dosing_selectors.session_with_parts(session)
    limits = booking_selectors.dosing_settings_for(full.clinic_id)
    booking = full.booking
    medication_labels = dict(dosing_selectors.rems_medication_classes())
    mg_per_kg = (
        dosing_rules.mg_per_kg(float(full.dose_mg), float(full.weight_kg))
        if full.dose_mg and full.weight_kg and booking.agent != "esketamine"
        else None
    )
    return {
        "agent": booking.get_agent_display(),
        "route": booking.get_route_display(),
        "room": booking.room.name,
        "booked_start": booking.starts_at,
        "monitor": _person(booking.monitor),
        "prescriber": _person(booking.prescriber),
        "dose_mg": full.dose_mg,
        "weight_kg": full.weight_kg,
        "mg_per_kg": round(mg_per_kg, 2) if mg_per_kg is not None else None,
        "lot_number": full.lot_number,
        "device_times": [dt.datetime.fromisoformat(t) for t in full.device_times],
        "dose_started_at": full.dose_started_at,
        "dose_started_entered_late": dosing_rules.entered_late_at(
            full.dose_started_at, full.dose_started_entered_at
        ),
        "dose_ended_at": full.dose_ended_at,
        "dose_ended_entered_late": dosing_rules.entered_late_at(
            full.dose_ended_at, full.dose_ended_entered_at
        ),
        "bp_review": {
            "by": _person(full.bp_review_by),
            "at": full.bp_review_at,
            "reason": full.bp_review_reason,
        }
        if full.bp_review_at
        else None,
        "dosed_by": _person(full.dosed_by),
        "checks": [
            ("Fasting confirmed", full.fasting_confirmed),
            ("Escort present", full.escort_present),
            ("Consent confirmed", full.consent_confirmed),
        ],
        "override": {
            "problems": list(full.override_problems),
            "reason": full.override_reason,
            "by": _person(full.override_by),
            "at": full.override_at,
        }
        if full.override_at
        else None,
        "limits": {
            "systolic_max": limits.systolic_max,
            "diastolic_max": limits.diastolic_max,
            "heart_rate_max": limits.heart_rate_max,
            "spo2_min": limits.spo2_min,
        },
        "vitals": [
            {
                "taken_at": v.taken_at,
                "pre_dose": v.is_pre_dose,
                "systolic": v.systolic,
                "diastolic": v.diastolic,
                "heart_rate": v.heart_rate,
                "spo2": v.spo2,
                "respiratory_rate": v.respiratory_rate,
                "flags": list(v.flags),
                "entered_late_at": v.created_at if v.entered_late else None,
            }
            for v in full.vitals.all()
        ],
        "scales": [
            {
                "scale": s.get_scale_display(),
                "value": s.value,
                "anchors": s.anchors,
                "taken_at": s.taken_at,
                "entered_late_at": s.created_at if s.entered_late else None,
            }
            for s in full.scales.all()
        ],
        "adverse_events": [
            {
                "occurred_at": e.occurred_at,
                "description": e.description,
                "severity": e.get_severity_display(),
                "action_taken": e.action_taken,
                "entered_late_at": e.created_at if e.entered_late else None,
            }
            for e in full.adverse_events.all()
        ],
        "discharge": {
            "at": full.discharged_at,
            "by": _person(full.discharged_by),
            "alert_and_oriented": full.alert_and_oriented,
            "escort": full.escort_present_at_discharge,
            "dissociation_resolved": full.dissociation_resolved,
            # The Readiness to Leave checklist (esketamine under the EU/UK label), once recorded.
            "leave_checklist": [item.text for item in LEAVE_CHECKLIST if item.code in full.leave_checklist]
            if full.leave_checklist_at
            else None,
            "leave_checklist_by": _person(full.leave_checklist_by),
            "leave_checklist_at": full.leave_checklist_at,
        },
        "pmf": {
            "first_treatment": full.pmf_first_treatment,
            "sedation": full.pmf_sedation,
            "dissociation": full.pmf_dissociation,
            "respiratory_depression": full.pmf_respiratory_depression,
            "ready_minutes": full.pmf_ready_minutes,
            "filed_at": full.pmf_filed_at,
            "medication_classes": [medication_labels[code] for code in full.pmf_medication_classes],
            "medications_confirmed_by": _person(full.pmf_medications_confirmed_by),
            "blood_pressures": _pmf_pressures(dosing_selectors.pmf_facts(full, settings=limits)),
        }
        if full.pmf_required
        else None,
        "signed_by": _person(full.signed_by),
        "signed_at": full.signed_at,
        "addenda": [
            {"text": a.text, "author": _person(a.author), "at": a.created_at} for a in full.addenda.all()
        ],
    }


def _emdr_session_data(log: EmdrSessionLog) -> dict[str, Any]:
    works = log.work.select_related("target").order_by("id")
    return {
        "held_at": log.held_at,
        "therapist": _person(log.therapist),
        "phase_reached": log.phase_reached,
        "stimulation": log.get_stimulation_display(),
        "closure": log.get_closure_technique_display() if log.closure_technique else "",
        "tied_to_dose": log.dosing_session_id is not None,
        "works": [
            {
                "target": w.target.title,
                "kind": w.target.get_kind_display(),
                "sud_start": w.sud_start,
                "sud_end": w.sud_end,
                "voc_start": w.voc_start,
                "voc_end": w.voc_end,
                "sud_by_set": list(w.sud_by_set),
                "interweaves": list(w.interweaves),
                "body_scan_clear": w.body_scan_clear,
                "complete": w.complete,
                "blocked": w.blocked,
            }
            for w in works
        ],
    }


def _note_data(note: IntegrationNote) -> dict[str, Any]:
    experiments = list(Experiment.objects.filter(pathway_id=note.pathway_id).order_by("created_at", "id"))
    reviews = list(note.experiment_updates.select_related("experiment").order_by("created_at", "id"))
    return {
        "held_at": note.held_at,
        "author": _person(note.author),
        "dose_of": note.dosing_session.dose_started_at,
        "prompts": [
            ("What shifted in perception", note.perception_shift),
            ("What felt newly possible", note.newly_possible),
            ("What the system is afraid of losing", note.afraid_of_losing),
            ("Notes", note.free_notes),
        ],
        "agreed": [
            {"area": e.get_area_display(), "description": e.description}
            for e in experiments
            if e.agreed_in_id == note.pk
        ],
        "reviews": [
            {
                "description": r.experiment.description,
                "from": r.get_from_state_display(),
                "to": r.get_to_state_display(),
                "what_happened": r.what_happened,
            }
            for r in reviews
        ],
        "experiments": _experiment_rows(experiments),
        "signed_at": note.signed_at,
        "addenda": [
            {"text": a.text, "author": _person(a.author), "at": a.created_at}
            for a in note.addenda.select_related("author")
        ],
    }


def _experiment_rows(experiments: list[Experiment]) -> list[dict[str, Any]]:
    return [
        {
            "area": e.get_area_display(),
            "description": e.description,
            "state": e.get_state_display(),
            "what_happened": e.what_happened,
        }
        for e in experiments
    ]


def _pathway_data(pathway: Pathway) -> dict[str, Any]:
    changes = (
        PathwayStageChange.objects.filter(pathway=pathway)
        .select_related("changed_by")
        .order_by("changed_at", "id")
    )
    screening = (
        Assessment.objects.filter(
            pathway=pathway, status__in=[AssessmentStatus.SIGNED, AssessmentStatus.SUPERSEDED]
        )
        .select_related("signed_by", "countersigned_by")
        .order_by("-version")
        .first()
    )
    history = screening_selectors.measure_history(pathway)
    sessions = (
        DosingSession.objects.filter(booking__pathway=pathway)
        .select_related("booking__room")
        .annotate(
            vitals_count=Count("vitals", distinct=True), adverse_count=Count("adverse_events", distinct=True)
        )
        .order_by("dose_started_at", "id")
    )
    targets = (
        EmdrTarget.objects.filter(plan__pathway=pathway)
        .annotate(sessions_worked=Count("work"))
        .order_by("order", "id")
    )
    notes = IntegrationNote.objects.filter(pathway=pathway).select_related("author").order_by("held_at", "id")
    experiments = list(Experiment.objects.filter(pathway=pathway).order_by("created_at", "id"))
    return {
        "stage": pathway.get_stage_display(),
        "prescriber": _person(pathway.prescriber),
        "therapist": _person(pathway.therapist),
        "opened_at": pathway.created_at,
        "stages": [
            {
                "at": c.changed_at,
                "from": c.get_from_stage_display() if c.from_stage else "",
                "to": c.get_to_stage_display(),
                "reason": c.reason,
                "by": _person(c.changed_by),
            }
            for c in changes
        ],
        "screening": {
            "version": screening.version,
            "status": screening.get_status_display(),
            "agent": screening.get_agent_display(),
            "route": screening.get_route_display(),
            "proposal": screening.get_proposal_display(),
            "decision": screening.get_decision_display(),
            "decision_reason": screening.decision_reason,
            "reasons": [
                {"kind": r.get("kind", ""), "text": r.get("text", ""), "source": _reason_source(r)}
                for r in screening.proposal_reasons
            ],
            "signed_by": _person(screening.signed_by),
            "signed_at": screening.signed_at,
            "countersigned_by": _person(screening.countersigned_by),
            "valid_until": screening.valid_until,
        }
        if screening is not None
        else None,
        "measures": {
            instrument: [{"when": p.when, "total": p.total, "band": p.band_label} for p in points]
            for instrument, points in sorted(history.items())
        },
        "sessions": [
            {
                "date": s.dose_started_at or s.booking.starts_at,
                "agent": s.booking.get_agent_display(),
                "route": s.booking.get_route_display(),
                "dose_mg": s.dose_mg,
                "room": s.booking.room.name,
                "status": s.get_status_display(),
                "vitals": s.vitals_count,
                "adverse_events": s.adverse_count,
            }
            for s in sessions
        ],
        "targets": [
            {
                "order": t.order,
                "title": t.title,
                "kind": t.get_kind_display(),
                "state": t.get_state_display(),
                "sud": t.sud,
                "voc": t.voc,
                "sessions": t.sessions_worked,
            }
            for t in targets
        ],
        "notes": [
            {
                "held_at": n.held_at,
                "author": _person(n.author),
                "status": n.get_status_display(),
                "perception_shift": n.perception_shift,
                "newly_possible": n.newly_possible,
            }
            for n in notes
        ],
        "experiments": _experiment_rows(experiments),
    }


def summary_data(source: SummarySource) -> dict[str, Any]:
    """Everything the summary shows, as plain values, in a fixed number of queries."""
    pathway = source.pathway
    patient = pathway.patient
    header = {
        "kind": source.kind,
        "title": source.title,
        "clinic": pathway.clinic.name,
        "time_zone": pathway.clinic.time_zone,
        "patient": patient.full_name,
        "record_number": patient.record_number,
        "date_of_birth": patient.date_of_birth,
    }
    builders: dict[str, Callable[[Any], dict[str, Any]]] = {
        SummaryKind.DOSING_SESSION: _dosing_data,
        SummaryKind.EMDR_SESSION: _emdr_session_data,
        SummaryKind.INTEGRATION_NOTE: _note_data,
        SummaryKind.PATHWAY: _pathway_data,
    }
    return {**header, "body": builders[SummaryKind(source.kind)](source.record)}


def version_of(data: dict[str, Any]) -> str:
    """A digest of the data: the same record gives the same version; any change, a new one."""
    encoded = json.dumps(data, cls=DjangoJSONEncoder, sort_keys=True, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


# --- Rendering ---------------------------------------------------------------------------------------


def _charts(data: dict[str, Any], tz: dt.tzinfo) -> list[dict[str, str]]:
    body = data["body"]
    if data["kind"] == SummaryKind.DOSING_SESSION and body["vitals"]:
        # The record page's own chart (`_render_session`), from the same readings and limits.
        limits = body["limits"]
        chart = dosing_selectors.vitals_chart(
            [
                (
                    r["taken_at"],
                    dosing_rules.Reading(
                        r["systolic"], r["diastolic"], r["heart_rate"], r["spo2"], r["respiratory_rate"]
                    ),
                )
                for r in body["vitals"]
            ],
            dosing_rules.VitalLimits(
                systolic_max=limits["systolic_max"],
                diastolic_max=limits["diastolic_max"],
                heart_rate_max=limits["heart_rate_max"],
                spo2_min=limits["spo2_min"],
            ),
            tz,
        )
        # One reading is no trend (its figures are in the table beside it).
        return [{"label": chart["label"], "svg": chart["svg"]}] if chart and chart["svg"] else []
    if data["kind"] == SummaryKind.PATHWAY:
        history = {
            instrument: [screening_selectors.SeriesPoint(p["when"], p["total"], p["band"]) for p in points]
            for instrument, points in body["measures"].items()
        }
        # A measure given once is a text figure ("PHQ-9 14 on 3 Dec 2026"), not a chart.
        return [
            {"label": c["label"], "svg": c["svg"], "text": c["text"], "band": c["band"]}
            for c in screening_selectors.measure_charts(history, tz)
        ]
    return []


def render_pdf(data: dict[str, Any], *, generated_at: dt.datetime) -> tuple[bytes, int]:
    """The summary as PDF bytes and its page count. Times are shown in the clinic's zone."""
    from weasyprint import HTML

    tz = zoneinfo.ZoneInfo(data["time_zone"])
    with timezone.override(tz):
        html = render_to_string(
            f"integration/pdf/{data['kind']}.html",
            {"data": data, "body": data["body"], "charts": _charts(data, tz), "generated_at": generated_at},
        )
    document = HTML(string=html, base_url=str(settings.BASE_DIR)).render()
    return document.write_pdf(), len(document.pages)
