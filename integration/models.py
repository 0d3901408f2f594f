"""Integration notes and experiments, the clinic's follow-up settings, and follow-ups (the outbox).

A follow-up is a row with its due time and state, never only a message on the broker: the beat
task sends what is due from these rows, so a broker that restarts empty or a worker that dies loses
nothing (`services.follow_ups_dispatch_due` says how nothing is sent twice).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from kaemdr.models import BaseModel
from kaemdr.models import Clinic
from pathways.models import Pathway
from pathways.models import Patient
from sessions.models import Booking
from sessions.models import DosingSession

from . import rules

AREA_CHOICES = [(area.value, label) for area, label in rules.EXPERIMENT_AREA_LABELS.items()]
EXPERIMENT_STATE_CHOICES = [(s.value, label) for s, label in rules.EXPERIMENT_STATE_LABELS.items()]
FOLLOW_UP_KIND_CHOICES = [(k.value, label) for k, label in rules.FOLLOW_UP_KIND_LABELS.items()]


class IntegrationSettings(BaseModel):
    """How a clinic times its follow-ups: every one is the clinic's, each default with its source
    (`rules.SETTING_SOURCES`)."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="integration_settings")
    integration_window_hours = models.PositiveSmallIntegerField(
        default=72,
        validators=[MinValueValidator(1), MaxValueValidator(336)],
        help_text="An integration session is due within this many hours of a dose.",
    )
    check_in_days = models.CharField(
        max_length=60,
        default="1, 3, 7",
        help_text="Days after a dose on which someone checks in, separated by commas.",
    )
    measures_interval_weeks = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(26)],
        help_text="The outcome measures are taken again this many weeks after the last time.",
    )
    reminder_hour = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(6), MaxValueValidator(20)],
        help_text="The hour (clinic time), on the day before a visit, when its fasting and escort "
        "reminder goes out.",
    )
    patient_emails_enabled = models.BooleanField(
        default=False,
        help_text="Also email patients their reminders and check-in notices (never any clinical detail).",
    )
    outcome_follow_up_months = models.CharField(
        max_length=60,
        default="1, 3, 6",
        db_default="1, 3, 6",
        help_text="Months after a course is completed when the outcome measures are taken again, "
        "separated by commas (1 to 24).",
    )

    class Meta:
        verbose_name_plural = "integration settings"

    def timings(self) -> rules.FollowUpTimings:
        return rules.FollowUpTimings(
            integration_window_hours=self.integration_window_hours,
            check_in_days=rules.parse_check_in_days(self.check_in_days),
            measures_interval_weeks=self.measures_interval_weeks,
            reminder_hour=self.reminder_hour,
            outcome_follow_up_months=rules.parse_outcome_follow_up_months(self.outcome_follow_up_months),
        )


class NoteStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SIGNED = "signed", "Signed"


class IntegrationNote(BaseModel):
    """An integration session after a dose, written to the seeds' prompts, signed by its author and
    then read-only (corrections are addenda). One draft per pathway at a time, so a second tab opens
    the same draft rather than a second one."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="integration_notes")
    dosing_session = models.ForeignKey(
        DosingSession, on_delete=models.PROTECT, related_name="integration_notes"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    held_at = models.DateTimeField()
    perception_shift = models.TextField(blank=True, verbose_name="What shifted in perception")
    newly_possible = models.TextField(blank=True, verbose_name="What felt newly possible")
    afraid_of_losing = models.TextField(blank=True, verbose_name="What the system is afraid of losing")
    free_notes = models.TextField(blank=True, verbose_name="Notes")
    status = models.CharField(max_length=10, choices=NoteStatus.choices, default=NoteStatus.DRAFT)
    signed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-held_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["pathway"], condition=Q(status="draft"), name="integration_one_draft_per_pathway"
            )
        ]
        indexes = [models.Index(fields=["pathway", "held_at"], name="integration_note_pathway")]

    def __str__(self) -> str:
        return f"Integration note {self.held_at:%Y-%m-%d}"

    @property
    def is_signed(self) -> bool:
        return self.status == NoteStatus.SIGNED


class NoteAddendum(BaseModel):
    """A correction or addition to a signed note; the note itself never changes."""

    note = models.ForeignKey(IntegrationNote, on_delete=models.PROTECT, related_name="addenda")
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("created_at", "id")


class Experiment(BaseModel):
    """A small, specific change agreed to protect what shifted, tracked from note to note."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="experiments")
    area = models.CharField(max_length=20, choices=AREA_CHOICES)
    description = models.CharField(max_length=300, verbose_name="What exactly")
    state = models.CharField(max_length=10, choices=EXPERIMENT_STATE_CHOICES, default="planned")
    what_happened = models.TextField(blank=True)
    agreed_in = models.ForeignKey(
        IntegrationNote, on_delete=models.PROTECT, related_name="experiments_agreed"
    )

    class Meta:
        ordering = ("created_at", "id")
        indexes = [models.Index(fields=["pathway", "state"], name="experiment_pathway_state")]

    def __str__(self) -> str:
        return self.description

    @property
    def is_live(self) -> bool:
        return self.state in rules.LIVE_EXPERIMENT_STATES


class ExperimentUpdate(BaseModel):
    """One review of an experiment in a note: where it stood, where it went, and what happened."""

    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="updates")
    note = models.ForeignKey(IntegrationNote, on_delete=models.PROTECT, related_name="experiment_updates")
    from_state = models.CharField(max_length=10, choices=EXPERIMENT_STATE_CHOICES)
    to_state = models.CharField(max_length=10, choices=EXPERIMENT_STATE_CHOICES)
    what_happened = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("created_at", "id")


class FollowUpStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class FollowUp(BaseModel):
    """Something that must follow a dose or precede a visit, with its due time and state.

    `notify_at`/`notified_at` are the outbox: the dispatcher sends rows whose `notify_at` has come
    and whose `notified_at` is empty, and sets `notified_at` in the same transaction as the send.
    `status` is the work itself: open until the matching note, measure, form or check-in is recorded.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="follow_ups")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=FOLLOW_UP_KIND_CHOICES)
    sequence = models.PositiveSmallIntegerField(
        default=0,
        help_text="The day of a check-in, or the month after the course of an outcome follow-up; "
        "0 otherwise.",
    )
    dosing_session = models.ForeignKey(
        DosingSession, on_delete=models.PROTECT, null=True, blank=True, related_name="follow_ups"
    )
    booking = models.ForeignKey(
        Booking, on_delete=models.PROTECT, null=True, blank=True, related_name="follow_ups"
    )
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="follow_ups"
    )
    due_at = models.DateTimeField()
    notify_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)
    patient_notified = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(
        max_length=300, blank=True, help_text="How it was done, or why it was cancelled."
    )

    class Meta:
        ordering = ("due_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["dosing_session", "kind", "sequence"],
                condition=Q(dosing_session__isnull=False),
                name="followup_once_per_session",
            ),
            models.UniqueConstraint(
                fields=["booking", "kind"],
                condition=Q(booking__isnull=False),
                name="followup_once_per_booking",
            ),
            models.UniqueConstraint(
                fields=["pathway"],
                condition=Q(status="open", kind="outcome_measures"),
                name="followup_one_open_measures_per_pathway",
            ),
            models.UniqueConstraint(
                fields=["pathway", "kind", "sequence"],
                condition=Q(kind="course_outcome"),
                name="followup_once_per_course_month",
            ),
        ]
        indexes = [
            models.Index(
                fields=["notify_at"],
                condition=Q(status="open", notified_at__isnull=True),
                name="followup_to_send",
            ),
            models.Index(fields=["clinic", "status", "due_at"], name="followup_clinic_due"),
            models.Index(fields=["responsible", "status", "due_at"], name="followup_responsible_due"),
            models.Index(fields=["pathway", "status"], name="followup_pathway"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} due {self.due_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.status == FollowUpStatus.OPEN

    @property
    def label(self) -> str:
        """What pages call it: its kind, with the day of a check-in or the month of an outcome
        follow-up after the course."""
        return rules.follow_up_label(self.kind, self.sequence)


class SummaryKind(models.TextChoices):
    DOSING_SESSION = "dosing_session", "Dosing session"
    EMDR_SESSION = "emdr_session", "EMDR session"
    INTEGRATION_NOTE = "integration_note", "Integration note"
    PATHWAY = "pathway", "Whole pathway"


class SummaryStatus(models.TextChoices):
    PENDING = "pending", "Being made"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Summary(BaseModel):
    """A PDF summary of one version of a record, made by a Celery task and stored privately.

    `version` is a digest of the data the summary shows: asking again for an unchanged record
    returns the stored file, and any change (an addendum, a new session) makes a new summary. The
    file lives under `KAEMDR_PRIVATE_DIR`, never under a public path, and is served only through a
    view that checks access to the record again."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="summaries")
    kind = models.CharField(max_length=20, choices=SummaryKind.choices)
    record_public_id = models.UUIDField()
    version = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=SummaryStatus.choices, default=SummaryStatus.PENDING)
    file_name = models.CharField(max_length=120, blank=True)
    page_count = models.PositiveSmallIntegerField(null=True, blank=True)
    byte_size = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "record_public_id", "version"], name="summary_one_per_record_version"
            )
        ]
        indexes = [models.Index(fields=["kind", "record_public_id"], name="summary_record")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} summary ({self.get_status_display()})"
