"""Patients, their pathways (one per course of treatment) and every stage change of a pathway."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from kaemdr.models import BaseModel
from kaemdr.models import Clinic


class Stage(models.TextChoices):
    REFERRAL = "referral", "Referral"
    ASSESSMENT = "assessment", "Assessment"
    PREPARATION = "preparation", "Preparation"
    DOSING = "dosing", "Dosing"
    INTEGRATION = "integration", "Integration"
    COMPLETED = "completed", "Completed"
    ON_HOLD = "on_hold", "On hold"
    DISCONTINUED = "discontinued", "Discontinued"


CLOSED_STAGES = (Stage.COMPLETED, Stage.DISCONTINUED)


class Patient(BaseModel):
    """A person in the clinic's care. The record number is unique within the clinic, ignoring case."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    record_number = models.CharField(max_length=32)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    phone = models.CharField(max_length=32)
    email = models.EmailField(blank=True)
    emergency_contact_name = models.CharField(max_length=150)
    emergency_contact_relationship = models.CharField(max_length=60, blank=True)
    emergency_contact_phone = models.CharField(max_length=32)
    emergency_contact_can_escort = models.BooleanField(
        default=False, help_text="This person can take the patient home after a dosing session."
    )
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("family_name", "given_name")
        constraints = [
            models.UniqueConstraint(
                Lower("record_number"), "clinic", name="patient_record_number_unique_in_clinic"
            ),
        ]
        indexes = [models.Index(fields=["clinic", "family_name", "given_name"], name="patient_clinic_name")]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.record_number})"

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class Pathway(BaseModel):
    """One course of treatment of one patient, moving through `Stage`s by `pathways.services.pathway_move`.

    `stage_before_hold` remembers where an on-hold pathway resumes. A patient has at most one
    open (not completed or discontinued) pathway at a time.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="pathways")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="pathways")
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.REFERRAL)
    stage_before_hold = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    stage_changed_at = models.DateTimeField()
    prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="prescribed_pathways"
    )
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="therapy_pathways",
        null=True,
        blank=True,
    )
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    referral_source = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ("-stage_changed_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=~Q(stage__in=["completed", "discontinued"]),
                name="pathway_one_open_per_patient",
            ),
            models.CheckConstraint(
                name="pathway_hold_remembers_stage",
                condition=(Q(stage="on_hold") & ~Q(stage_before_hold=""))
                | (~Q(stage="on_hold") & Q(stage_before_hold="")),
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "prescriber", "stage"], name="pathway_prescriber_stage"),
            models.Index(fields=["clinic", "therapist", "stage"], name="pathway_therapist_stage"),
            models.Index(fields=["clinic", "stage"], name="pathway_clinic_stage"),
        ]

    def __str__(self) -> str:
        return f"Pathway of {self.patient} ({self.get_stage_display()})"

    @property
    def is_open(self) -> bool:
        return self.stage not in CLOSED_STAGES

    @property
    def takes_measures(self) -> bool:
        """Whether outcome measures may still be recorded on it: while it is open, and after the course
        is completed, when its outcome follow-ups at months after completion ask for them. A
        discontinued pathway takes none."""
        return self.stage != Stage.DISCONTINUED


class PathwayStageChange(BaseModel):
    """One move of a pathway from one stage to another: who, when and why. Never edited."""

    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="stage_changes")
    from_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    reason = models.TextField()
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ("changed_at", "id")
        indexes = [models.Index(fields=["pathway", "changed_at"], name="stage_change_pathway_time")]

    def __str__(self) -> str:
        return f"{self.from_stage or 'opened'} -> {self.to_stage}"
