"""The demo clinic that `make run` loads: one user per role, patients at every stage.

Everything is written through the services, as a user would, so the timeline and the audit
trail are real. Only the timestamps of the timeline are moved into the past afterwards, so
that the demo reads like a clinic that has been running for a few months.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from kaemdr.models import Clinic
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.permissions import two_factor_required
from kaemdr.two_factor import enrol_with_key

from . import services
from .models import Pathway
from .models import PathwayStageChange
from .models import Patient
from .models import Stage
from .registry import registry

DEMO_CLINIC_SLUG = "harbour-demo"
DEMO_PASSWORD = "kaemdr-demo-2026"  # nosec B105  # the demo clinic's sign-in, published in the README
# The demo's authenticator key (published: demo data only). Prescribers and the clinic admin sign in
# with a code from it: add the base32 secret to an authenticator app, or run `manage.py demo_code`.
DEMO_TOTP_KEY = "6b61656d64722d64656d6f2d746f74702d6b6579"
DEMO_TOTP_DEVICE = "Demo authenticator"

DEMO_STAFF: tuple[tuple[str, str, str], ...] = (
    ("admin@demo.kaemdr.test", "Jo Whitfield", Role.CLINIC_ADMIN),
    ("prescriber@demo.kaemdr.test", "Dr Amara Okafor", Role.PRESCRIBER),
    ("therapist@demo.kaemdr.test", "Sam Lindqvist", Role.THERAPIST),
    ("monitor@demo.kaemdr.test", "Priya Raman RN", Role.MONITOR),
    ("therapist2@demo.kaemdr.test", "Maya Castellanos", Role.THERAPIST),
    ("prescriber2@demo.kaemdr.test", "Dr Ben Hartley", Role.PRESCRIBER),
)

_FORWARD_REASONS: dict[str, str] = {
    Stage.ASSESSMENT: "Referral reviewed: treatment-resistant PTSD with depression; booked for assessment.",
    Stage.PREPARATION: "Assessment complete; starting stabilisation and preparation.",
    Stage.DOSING: "Preparation goals met; ready for monitored dosing.",
    Stage.INTEGRATION: "Dosing block finished; moving to integration.",
    Stage.COMPLETED: "Course complete; follow-up measures stable.",
}


@dataclass(frozen=True)
class DemoPatient:
    record_number: str
    given_name: str
    family_name: str
    date_of_birth: dt.date
    path: tuple[str, ...]
    therapist_index: int | None = 0


def _born(age_this_year: int, month: int, day: int) -> dt.date:
    """A birthday `age_this_year` years before this year's: the demo's patients keep their ages (and
    so the age rules that apply to them, such as esketamine's at 65) whenever the demo is loaded."""
    return dt.date(timezone.localdate().year - age_this_year, month, day)


DEMO_PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient("HB-1001", "Eleanor", "Vance", _born(40, 3, 14), ()),
    DemoPatient("HB-1002", "Marcus", "Adeyemi", _born(47, 11, 2), (Stage.ASSESSMENT,), None),
    DemoPatient("HB-1003", "Hannah", "Kowalski", _born(34, 6, 21), (Stage.ASSESSMENT, Stage.PREPARATION)),
    DemoPatient(
        "HB-1004", "Tomás", "Reyes", _born(51, 1, 9), (Stage.ASSESSMENT, Stage.PREPARATION, Stage.DOSING)
    ),
    DemoPatient(
        "HB-1005",
        "Aisha",
        "Rahman",
        _born(36, 8, 30),
        (Stage.ASSESSMENT, Stage.PREPARATION, Stage.DOSING),
        1,
    ),
    DemoPatient(
        "HB-1006",
        "Oliver",
        "Brandt",
        _born(43, 4, 17),
        (Stage.ASSESSMENT, Stage.PREPARATION, Stage.DOSING, Stage.INTEGRATION),
    ),
    DemoPatient(
        "HB-1007",
        "Grace",
        "Nakamura",
        _born(58, 12, 5),
        (Stage.ASSESSMENT, Stage.PREPARATION, Stage.DOSING, Stage.INTEGRATION, Stage.COMPLETED),
        1,
    ),
    DemoPatient(
        "HB-1008",
        "Daniel",
        "O'Connor",
        _born(31, 2, 28),
        (Stage.ASSESSMENT, Stage.PREPARATION, Stage.ON_HOLD),
    ),
    DemoPatient("HB-1009", "Lucia", "Ferreira", _born(38, 9, 12), (Stage.ASSESSMENT, Stage.DISCONTINUED)),
    DemoPatient("HB-1010", "Samuel", "Achterberg", _born(68, 7, 23), (Stage.ASSESSMENT,)),
    # Aged 17 (and about 110 days) whenever the demo loads: the screening proposes not eligible.
    DemoPatient(
        "HB-1011", "Kai", "Morgan", timezone.localdate() - dt.timedelta(days=6318), (Stage.ASSESSMENT,)
    ),
)

_SIDE_REASONS: dict[str, str] = {
    Stage.ON_HOLD: "Patient travelling for work for six weeks; resume on return.",
    Stage.DISCONTINUED: "Patient chose a different treatment after assessment.",
}


@dataclass(frozen=True)
class DemoResult:
    clinic: Clinic
    staff: dict[str, User]
    created: bool


@transaction.atomic
def demo_clinic_load() -> DemoResult:
    """Create the demo clinic once; a second call changes nothing and returns what is there."""
    clinic = Clinic.objects.filter(slug=DEMO_CLINIC_SLUG).first()
    created = clinic is None
    if clinic is None:
        clinic = Clinic.objects.create(
            name="Harbour Ketamine & EMDR Clinic", slug=DEMO_CLINIC_SLUG, time_zone="Europe/London"
        )
    staff: dict[str, User] = {}
    for email, full_name, role in DEMO_STAFF:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email, password=DEMO_PASSWORD, full_name=full_name, role=role, clinic=clinic
            )
            if two_factor_required(user):
                enrol_with_key(user=user, key_hex=DEMO_TOTP_KEY, name=DEMO_TOTP_DEVICE)
        staff[email] = user
    prescriber = staff["prescriber@demo.kaemdr.test"]
    therapists = [staff["therapist@demo.kaemdr.test"], staff["therapist2@demo.kaemdr.test"]]
    if created:
        now = timezone.now()
        for index, demo in enumerate(DEMO_PATIENTS):
            start = now - dt.timedelta(days=120 - index * 9)
            _load_patient(demo, prescriber=prescriber, therapists=therapists, start=start, staff=staff)
    return DemoResult(clinic=clinic, staff=staff, created=created)


def _step_time(start: dt.datetime, step: int) -> dt.datetime:
    return start + dt.timedelta(days=step * 12, hours=step)


def _load_patient(
    demo: DemoPatient, *, prescriber: User, therapists: list[User], start: dt.datetime, staff: dict[str, User]
) -> Pathway:
    """Register the patient and walk their pathway. Before each move, and once at the end, every
    registered demo seeder may add what a clinic would have recorded by then (the signed screening
    that lets the pathway into preparation, say)."""
    patient: Patient = services.patient_register(
        actor=prescriber,
        record_number=demo.record_number,
        given_name=demo.given_name,
        family_name=demo.family_name,
        date_of_birth=demo.date_of_birth,
        phone=f"07700 900{demo.record_number[-3:]}",
        email=f"{demo.record_number.lower()}@patients.example.org",
        emergency_contact_name="Alex " + demo.family_name,
        emergency_contact_relationship="Partner",
        emergency_contact_phone=f"07700 901{demo.record_number[-3:]}",
        emergency_contact_can_escort=demo.record_number != "HB-1004",
    )
    therapist = therapists[demo.therapist_index] if demo.therapist_index is not None else None
    pathway = services.pathway_open(
        actor=prescriber,
        patient=patient,
        prescriber=prescriber,
        therapist=therapist,
        referral_source="GP referral",
        reason="Referred by GP for ketamine-assisted EMDR.",
    )
    for step, to_stage in enumerate(demo.path, start=1):
        for seeder in registry.demo_seeders:
            seeder(pathway=pathway, to_stage=to_stage, at=_step_time(start, step), staff=staff)
        reason = _SIDE_REASONS.get(to_stage) or _FORWARD_REASONS[to_stage]
        services.pathway_move(actor=prescriber, pathway=pathway, to_stage=to_stage, reason=reason)
    for seeder in registry.demo_seeders:
        seeder(pathway=pathway, to_stage=None, at=_step_time(start, len(demo.path)), staff=staff)
    # Spread the timeline over the weeks a real course takes (demo only; see the module docstring).
    changes = list(PathwayStageChange.objects.filter(pathway=pathway).order_by("changed_at", "id"))
    for step, change in enumerate(changes):
        PathwayStageChange.objects.filter(pk=change.pk).update(changed_at=_step_time(start, step))
    last = _step_time(start, len(changes) - 1)
    Pathway.objects.filter(pk=pathway.pk).update(created_at=start, stage_changed_at=last)
    Patient.objects.filter(pk=patient.pk).update(created_at=start)
    pathway.refresh_from_db()
    return pathway
