"""Assessments (versioned screenings with a signed eligibility decision), their medication review,
outcome-measure responses, the safety alerts those raise, and each clinic's screening settings."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from kaemdr.models import BaseModel
from kaemdr.models import Clinic
from pathways.models import Pathway

from . import rules


class ScreeningSettings(BaseModel):
    """What varies by clinic. A clinic without a row uses the defaults below."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="screening_settings")
    bp_systolic_threshold = models.PositiveSmallIntegerField(
        default=140,
        validators=[MinValueValidator(100), MaxValueValidator(220)],
        help_text="Baseline systolic pressure above this is a precaution (mmHg).",
    )
    bp_diastolic_threshold = models.PositiveSmallIntegerField(
        default=90,
        validators=[MinValueValidator(60), MaxValueValidator(140)],
        help_text="Baseline diastolic pressure above this is a precaution (mmHg).",
    )
    screening_valid_days = models.PositiveSmallIntegerField(
        default=90,
        validators=[MinValueValidator(7), MaxValueValidator(730)],
        help_text="How long a signed screening stays current.",
    )
    second_signature_codes = models.JSONField(
        default=list,
        blank=True,
        help_text="Relative contraindications that need a second prescriber's signature.",
    )
    adults_only = models.BooleanField(
        default=True,
        db_default=True,
        verbose_name="Only adults (18 and over) are eligible for any ketamine",
        help_text="Esketamine is never given under 18 (its label); this extends the limit to racemic "
        "ketamine, as the consensus statement on ketamine for mood disorders covers adults.",
    )

    def __str__(self) -> str:
        return f"Screening settings of {self.clinic}"


class AssessmentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_COUNTERSIGNATURE = "awaiting_countersignature", "Awaiting second signature"
    SIGNED = "signed", "Signed"
    SUPERSEDED = "superseded", "Superseded"


class DecisionChoice(models.TextChoices):
    ELIGIBLE = rules.Decision.ELIGIBLE, "Eligible"
    ELIGIBLE_WITH_PRECAUTIONS = rules.Decision.ELIGIBLE_WITH_PRECAUTIONS, "Eligible with precautions"
    NOT_ELIGIBLE = rules.Decision.NOT_ELIGIBLE, "Not eligible"


AGENT_CHOICES = [(agent.value, label) for agent, label in rules.AGENT_LABELS.items()]
ROUTE_CHOICES = [(route.value, label) for route, label in rules.ROUTE_LABELS.items()]
INSTRUMENT_CHOICES = [(i.value, rules.INSTRUMENTS[i].label) for i in rules.Instrument]


class Assessment(BaseModel):
    """One version of a pathway's screening. Editable while a draft; read-only once signed.

    A change to a signed screening is a new version (`supersedes`) that replaces it when signed.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="assessments")
    version = models.PositiveSmallIntegerField(default=1)
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    status = models.CharField(max_length=30, choices=AssessmentStatus.choices, default=AssessmentStatus.DRAFT)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    current_crisis = models.BooleanField(null=True, blank=True, verbose_name="In a current crisis")
    housing_stable = models.BooleanField(null=True, blank=True, verbose_name="Housing is stable")
    has_support_person = models.BooleanField(null=True, blank=True, verbose_name="Has a support person")
    escort_available = models.BooleanField(null=True, blank=True, verbose_name="An escort home is available")
    support_notes = models.CharField(max_length=500, blank=True, verbose_name="Support person and notes")

    agent = models.CharField(max_length=20, choices=AGENT_CHOICES, blank=True, verbose_name="Planned agent")
    route = models.CharField(max_length=20, choices=ROUTE_CHOICES, blank=True, verbose_name="Planned route")

    systolic = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(60), MaxValueValidator(260)],
        verbose_name="Systolic (mmHg)",
    )
    diastolic = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(30), MaxValueValidator(160)],
        verbose_name="Diastolic (mmHg)",
    )
    heart_rate = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(25), MaxValueValidator(250)],
        verbose_name="Heart rate (bpm)",
    )
    weight_kg = models.DecimalField(
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(25), MaxValueValidator(350)],
        verbose_name="Weight (kg)",
    )

    history_reviewed = models.BooleanField(default=False)
    condition_codes = models.JSONField(default=list, blank=True)
    medications_reviewed = models.BooleanField(default=False)

    proposal = models.CharField(max_length=30, choices=DecisionChoice.choices, blank=True)
    proposal_reasons = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=30, choices=DecisionChoice.choices, blank=True)
    decision_reason = models.TextField(blank=True)
    second_signature_reasons = models.JSONField(default=list, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    countersigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    countersigned_at = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("pathway", "-version")
        constraints = [
            models.UniqueConstraint(fields=["pathway", "version"], name="assessment_version_unique"),
            models.UniqueConstraint(
                fields=["pathway"],
                condition=Q(status__in=["draft", "awaiting_countersignature"]),
                name="assessment_one_unsigned_per_pathway",
            ),
            models.CheckConstraint(
                name="assessment_signed_fields_paired",
                condition=(Q(signed_at__isnull=True) & Q(signed_by__isnull=True))
                | (Q(signed_at__isnull=False) & Q(signed_by__isnull=False) & ~Q(decision="")),
            ),
            models.CheckConstraint(
                name="assessment_countersigned_fields_paired",
                condition=Q(countersigned_at__isnull=True, countersigned_by__isnull=True)
                | Q(countersigned_at__isnull=False, countersigned_by__isnull=False),
            ),
        ]
        indexes = [models.Index(fields=["pathway", "status"], name="assessment_pathway_status")]

    def __str__(self) -> str:
        return f"Screening v{self.version} of {self.pathway_id} ({self.status})"

    @property
    def is_draft(self) -> bool:
        return self.status == AssessmentStatus.DRAFT


class AssessmentMedication(BaseModel):
    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="medications")
    name = models.CharField(max_length=120)
    medication_class = models.CharField(
        max_length=30, choices=[(m.code, m.label) for m in rules.MEDICATION_CLASSES], verbose_name="Class"
    )
    dose = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ("name", "id")

    def __str__(self) -> str:
        return self.name


class MeasureResponse(BaseModel):
    """One administration of an outcome measure, answered item by item and scored as published.

    Linked to the assessment whose baseline it is, or to the pathway alone when re-administered
    later. A new assessment version carries the previous version's responses over (`carried_from`);
    those copies are left out of the scores-over-time chart.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="measure_responses")
    assessment = models.ForeignKey(
        Assessment, on_delete=models.PROTECT, null=True, blank=True, related_name="measures"
    )
    carried_from = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    instrument = models.CharField(max_length=10, choices=INSTRUMENT_CHOICES)
    answers = models.JSONField()
    total = models.DecimalField(max_digits=5, decimal_places=1)
    band = models.CharField(max_length=30)
    band_label = models.CharField(max_length=60)
    flags = models.JSONField(default=list, blank=True)
    administered_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("administered_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "instrument"],
                condition=Q(assessment__isnull=False),
                name="measure_one_per_instrument_per_assessment",
            ),
        ]
        indexes = [
            models.Index(fields=["pathway", "instrument", "administered_at"], name="measure_pathway_time")
        ]

    def __str__(self) -> str:
        return f"{self.instrument} {self.total} ({self.band})"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"


class SafetyAlert(BaseModel):
    """An urgent safety finding (PHQ-9 item 9 above 0, high C-SSRS risk) until a clinician records
    what was done about it."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="safety_alerts")
    measure_response = models.ForeignKey(MeasureResponse, on_delete=models.PROTECT, related_name="alerts")
    code = models.CharField(max_length=30)
    text = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    raised_at = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    action_taken = models.TextField(blank=True)
    dosing_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    dosing_override_at = models.DateTimeField(null=True, blank=True)
    dosing_override_reason = models.TextField(blank=True)
    """A prescriber's signed decision that dosing may go ahead while the alert is still open (it stays
    open, on the dashboards, until the action taken is recorded)."""

    class Meta:
        ordering = ("-raised_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["measure_response", "code"], name="alert_once_per_response_and_code"
            ),
            models.CheckConstraint(
                name="alert_acknowledged_fields_paired",
                condition=(Q(status="open") & Q(acknowledged_at__isnull=True))
                | (
                    Q(status="acknowledged")
                    & Q(acknowledged_at__isnull=False)
                    & Q(acknowledged_by__isnull=False)
                ),
            ),
            models.CheckConstraint(
                name="alert_dosing_override_fields_paired",
                condition=Q(
                    dosing_override_by__isnull=True,
                    dosing_override_at__isnull=True,
                    dosing_override_reason="",
                )
                | (
                    Q(dosing_override_by__isnull=False, dosing_override_at__isnull=False)
                    & ~Q(dosing_override_reason="")
                ),
            ),
        ]
        indexes = [models.Index(fields=["clinic", "status"], name="alert_clinic_status")]

    def __str__(self) -> str:
        return f"{self.code} ({self.status})"

    @property
    def blocks_dosing(self) -> bool:
        """Open and not overridden for dosing by a prescriber: no dose is booked or started."""
        return self.status == AlertStatus.OPEN and self.dosing_override_at is None
