"""What each role may do: the one table every view, API endpoint, selector and service consults.

Roles come from `design.md`: prescribers screen, plan and move pathways; therapists work with the
patients whose care team they are on; monitors (nurses) see the clinic's patients to run dosing
sessions; clinic admins manage staff, rooms and the calendar, and read the audit log (of a dosing
session, its logistics only, unless their clinic grants more: `CLINIC_GRANTED_CAPABILITIES`). Later
issues add capabilities here, next to the role table, so that the rules stay in one place.
"""

from __future__ import annotations

import enum
from typing import Any

from .models import Role


class Capability(enum.StrEnum):
    STAFF_MANAGE = "staff.manage"
    AUDIT_VIEW = "audit.view"
    PATIENT_VIEW_ALL = "patient.view_all"
    PATIENT_VIEW_CARE_TEAM = "patient.view_care_team"
    PATIENT_REGISTER = "patient.register"
    PATIENT_EDIT = "patient.edit"
    PATIENT_EXPORT = "patient.export"  # the whole record, for a subject access request
    PATHWAY_OPEN = "pathway.open"
    PATHWAY_MOVE = "pathway.move"
    CARE_TEAM_ASSIGN = "pathway.assign_care_team"
    SCREENING_VIEW = "screening.view"
    SCREENING_EDIT = "screening.edit"
    SCREENING_SIGN = "screening.sign"
    MEASURE_RECORD = "screening.record_measure"
    SAFETY_ALERT_ACKNOWLEDGE = "screening.acknowledge_alert"
    SAFETY_ALERT_DOSING_OVERRIDE = "screening.override_alert_for_dosing"  # dosing despite an open alert
    CLINIC_SETTINGS_MANAGE = "clinic.manage_settings"
    ROOM_MANAGE = "dosing.manage_rooms"
    ROTA_MANAGE = "dosing.manage_rota"  # staff working hours and leave
    COURSE_SET = "dosing.set_course"  # a pathway's course plan: the prescriber's
    COURSE_TEMPLATE_MANAGE = "dosing.manage_course_templates"  # the clinic's course templates
    BOOKING_MANAGE = "dosing.manage_bookings"
    BOOKING_CHECKS = "dosing.pre_visit_checks"
    SCHEDULE_VIEW = "dosing.view_schedule"
    REMS_ENROL = "dosing.record_rems_enrolment"
    SESSION_RECORD = "dosing.record_session"
    SESSION_VIEW_CLINICAL = "dosing.view_session_clinical"  # vitals, doses, scales, adverse events...
    SESSION_OVERRIDE = "dosing.override_pre_dose"
    EMDR_VIEW = "emdr.view"
    EMDR_EDIT = "emdr.edit"
    EMDR_OVERRIDE_COSIGN = "emdr.cosign_override"
    INTEGRATION_VIEW = "integration.view"
    INTEGRATION_WRITE = "integration.write"
    FOLLOW_UP_VIEW = "integration.view_follow_ups"
    FOLLOW_UP_CHECK_IN = "integration.record_check_in"
    FOLLOW_UP_CLOSE = "integration.close_follow_up"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.PRESCRIBER: frozenset(
        {
            Capability.PATIENT_VIEW_ALL,
            Capability.PATIENT_REGISTER,
            Capability.PATIENT_EDIT,
            Capability.PATIENT_EXPORT,
            Capability.PATHWAY_OPEN,
            Capability.PATHWAY_MOVE,
            Capability.CARE_TEAM_ASSIGN,
            Capability.SCREENING_VIEW,
            Capability.SCREENING_EDIT,
            Capability.SCREENING_SIGN,
            Capability.MEASURE_RECORD,
            Capability.SAFETY_ALERT_ACKNOWLEDGE,
            Capability.SAFETY_ALERT_DOSING_OVERRIDE,
            Capability.SCHEDULE_VIEW,
            Capability.COURSE_SET,
            Capability.COURSE_TEMPLATE_MANAGE,
            Capability.REMS_ENROL,
            Capability.SESSION_RECORD,
            Capability.SESSION_VIEW_CLINICAL,
            Capability.SESSION_OVERRIDE,
            Capability.EMDR_VIEW,
            Capability.EMDR_OVERRIDE_COSIGN,
            Capability.INTEGRATION_VIEW,
            Capability.FOLLOW_UP_VIEW,
            Capability.FOLLOW_UP_CHECK_IN,
            Capability.FOLLOW_UP_CLOSE,
        }
    ),
    Role.THERAPIST: frozenset(
        {
            Capability.PATIENT_VIEW_CARE_TEAM,
            Capability.SCREENING_VIEW,
            Capability.MEASURE_RECORD,
            Capability.SAFETY_ALERT_ACKNOWLEDGE,
            Capability.SESSION_VIEW_CLINICAL,  # of their care team's patients (the bookings they see)
            Capability.EMDR_VIEW,
            Capability.EMDR_EDIT,
            Capability.INTEGRATION_VIEW,
            Capability.INTEGRATION_WRITE,
            Capability.FOLLOW_UP_VIEW,
            Capability.FOLLOW_UP_CHECK_IN,
        }
    ),
    Role.MONITOR: frozenset(
        {
            Capability.PATIENT_VIEW_ALL,
            Capability.SCREENING_VIEW,
            Capability.SCHEDULE_VIEW,
            Capability.BOOKING_CHECKS,
            Capability.SESSION_RECORD,
            Capability.SESSION_VIEW_CLINICAL,
            Capability.FOLLOW_UP_VIEW,
            Capability.FOLLOW_UP_CHECK_IN,
        }
    ),
    Role.CLINIC_ADMIN: frozenset(
        {
            Capability.STAFF_MANAGE,
            Capability.AUDIT_VIEW,
            Capability.PATIENT_VIEW_ALL,
            Capability.CLINIC_SETTINGS_MANAGE,
            Capability.ROOM_MANAGE,
            Capability.ROTA_MANAGE,
            Capability.COURSE_TEMPLATE_MANAGE,
            Capability.BOOKING_MANAGE,
            Capability.BOOKING_CHECKS,
            Capability.SCHEDULE_VIEW,
            Capability.FOLLOW_UP_VIEW,
        }
    ),
}

CLINIC_GRANTED_CAPABILITIES: dict[str, dict[Capability, str]] = {
    Role.CLINIC_ADMIN: {Capability.SESSION_VIEW_CLINICAL: "clinic_admins_read_dosing_records"},
}
"""Capabilities a role holds only where its clinic grants them, each with the name of the clinic's
setting that grants it (off until the clinic turns it on). Least privilege: a clinic admin runs the
rooms and the calendar, so sees a dosing session's logistics (room, times, staff, status), not its
vitals, doses, scales or adverse events, unless the clinic lets its admins read them. The app that
owns the setting reads it (`sessions.record.selectors.can_read_session_clinical`, the one check the
record's page, its API answer and its PDF summary consult). Whoever records, overrides or exports a
record holds the capability by the table (`tests/sessions/test_clinical_access.py` keeps it so)."""


def has_capability(user: Any, capability: Capability) -> bool:
    """True when `user` is an active clinic member whose role grants `capability`.

    Platform superusers hold no clinic role, so they have no capability in the clinic pages.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if not user.is_active or user.clinic_id is None:
        return False
    return capability in ROLE_CAPABILITIES.get(user.role, frozenset())


def clinic_grant_for(user: Any, capability: Capability) -> str | None:
    """The name of the clinic setting that would give an active clinic member's role `capability`
    (`CLINIC_GRANTED_CAPABILITIES`), or None when no clinic setting can give it to them."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if not user.is_active or user.clinic_id is None:
        return None
    return CLINIC_GRANTED_CAPABILITIES.get(user.role, {}).get(capability)


def require(actor: Any, capability: Capability, clinic_id: int | None = None) -> None:
    """For services: refuse an actor without `capability`, or outside the record's clinic, with the
    same error as a missing record (the pages and the API answer it with 404)."""
    from .exceptions import NotFoundOrForbidden

    if not has_capability(actor, capability) or (clinic_id is not None and clinic_id != actor.clinic_id):
        raise NotFoundOrForbidden()


def is_active_member(user: Any, *, clinic_id: int | None, role: str) -> bool:
    """Whether `user` is an active member of the clinic with `role` (a care team's or a booking's staff)."""
    return bool(user.clinic_id == clinic_id and user.role == role and user.is_active)


def can_see_patients(user: Any) -> bool:
    return has_capability(user, Capability.PATIENT_VIEW_ALL) or has_capability(
        user, Capability.PATIENT_VIEW_CARE_TEAM
    )


TWO_FACTOR_ROLES = frozenset({Role.PRESCRIBER, Role.CLINIC_ADMIN})


def two_factor_required(user: Any) -> bool:
    """Prescribers and clinic admins always sign in with a second factor; everyone else when their
    clinic asks for it (anyone may choose to)."""
    if user is None or not getattr(user, "is_authenticated", False) or user.clinic_id is None:
        return False
    return user.role in TWO_FACTOR_ROLES or bool(user.clinic.two_factor_for_everyone)
