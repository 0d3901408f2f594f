"""Dosing rooms with their equipment, hours and out-of-service periods; chair-time settings; REMS
enrolment; and dosing bookings, which never overlap by room, patient or monitor."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from kaemdr.models import BaseModel
from kaemdr.models import Clinic
from pathways.models import Pathway
from pathways.models import Patient
from screening.models import AGENT_CHOICES
from screening.models import ROUTE_CHOICES
from sessions.booking import course_rules
from sessions.booking import rota_rules
from sessions.booking import rules
from sessions.emdr import rules as emdr_rules

ESKETAMINE_LABEL_CHOICES = [(label.value, name) for label, name in rules.ESKETAMINE_LABEL_NAMES.items()]
EMDR_PROTOCOL_CHOICES = [(protocol.value, name) for protocol, name in emdr_rules.PROTOCOL_LABELS.items()]


def new_calendar_token() -> str:
    return secrets.token_urlsafe(24)


class Room(BaseModel):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="rooms")
    name = models.CharField(max_length=80)
    has_bp_monitor = models.BooleanField(default=True, verbose_name="Blood-pressure monitor")
    has_pulse_oximeter = models.BooleanField(default=True, verbose_name="Pulse oximeter")
    has_recliner = models.BooleanField(default=True, verbose_name="Recliner")
    is_active = models.BooleanField(default=True)
    calendar_token = models.CharField(max_length=64, unique=True, default=new_calendar_token, editable=False)

    class Meta:
        ordering = ("name",)
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="room_name_unique_in_clinic")]

    def __str__(self) -> str:
        return self.name


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class RoomOpeningHours(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ("weekday",)
        constraints = [
            models.UniqueConstraint(fields=["room", "weekday"], name="room_hours_one_per_day"),
            models.CheckConstraint(
                name="room_hours_open_before_close", condition=Q(opens__lt=models.F("closes"))
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"


class RoomClosure(BaseModel):
    """A period the room is out of service (maintenance, equipment fault)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="closures")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ("starts_at",)
        constraints = [
            models.CheckConstraint(
                name="room_closure_starts_before_end", condition=Q(starts_at__lt=models.F("ends_at"))
            )
        ]

    def __str__(self) -> str:
        return f"{self.room} out of service"


class ChairTimeSetting(models.Model):
    """A clinic's chair time for one agent and route (the defaults live in `rules`)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="chair_times")
    agent = models.CharField(max_length=20, choices=AGENT_CHOICES)
    route = models.CharField(max_length=20, choices=ROUTE_CHOICES)
    dosing_minutes = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(5), MaxValueValidator(rules.LONGEST_DOSING_MINUTES)]
    )
    monitoring_minutes = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(30), MaxValueValidator(rules.LONGEST_MONITORING_MINUTES)]
    )
    turnover_minutes = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(rules.LONGEST_TURNOVER_MINUTES)]
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "agent", "route"], name="chair_time_one_per_route"),
            models.CheckConstraint(
                name="chair_time_esketamine_two_hours",
                condition=~Q(agent="esketamine") | Q(monitoring_minutes__gte=120),
            ),
        ]

    def __str__(self) -> str:
        minutes = f"{self.dosing_minutes}+{self.monitoring_minutes}+{self.turnover_minutes}"
        return f"{self.agent} {self.route}: {minutes} min"


class RemsEnrolment(BaseModel):
    """The patient's enrolment in the Spravato REMS, needed before the first esketamine dose."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="rems_enrolment")
    enrolled_on = models.DateField()
    reference = models.CharField(max_length=60, blank=True, verbose_name="REMS reference")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"REMS enrolment of {self.patient_id}"


class BookingStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    CANCELLED = "cancelled", "Cancelled"
    COMPLETED = "completed", "Completed"


LIVE_BOOKING = ~Q(status="cancelled")


class Booking(BaseModel):
    """A dosing session booked in a room: chair time from `starts_at` to `ends_at`.

    Never two live bookings of one room, one patient or one monitor at overlapping times: the
    booking service checks, and on PostgreSQL exclusion constraints (migration 0002) refuse it too.
    """

    # Clinic, pathway, patient, room and monitor each lead a composite index below (with the start),
    # which serves lookups by the key alone too: a single-column index of their own would only give
    # PostgreSQL more to weigh when it plans every booking query, and more to write.
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+", db_index=False)
    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="bookings", db_index=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="bookings", db_index=False)
    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="bookings", db_index=False)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    agent = models.CharField(max_length=20, choices=AGENT_CHOICES)
    route = models.CharField(max_length=20, choices=ROUTE_CHOICES)
    prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name="Prescriber onsite"
    )
    monitor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="monitored_bookings", db_index=False
    )
    status = models.CharField(max_length=20, choices=BookingStatus.choices, default=BookingStatus.BOOKED)
    fasting_instructions_given = models.BooleanField(default=False)
    fasting_confirmed = models.BooleanField(default=False)
    escort_confirmed = models.BooleanField(default=False)
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancellation_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("starts_at", "id")
        constraints = [
            models.CheckConstraint(
                name="booking_starts_before_end", condition=Q(starts_at__lt=models.F("ends_at"))
            ),
            # No booking is longer than the longest chair time: a read of the bookings that overlap a
            # window bounds their start from below with it (`rules.LONGEST_BOOKING`), and reads an
            # index range instead of the room's history.
            models.CheckConstraint(
                name="booking_within_longest_chair_time",
                condition=Q(ends_at__lte=models.F("starts_at") + rules.LONGEST_BOOKING),
            ),
            models.CheckConstraint(
                name="booking_cancelled_fields_paired",
                condition=(
                    Q(status="cancelled") & Q(cancelled_at__isnull=False) & Q(cancelled_by__isnull=False)
                )
                | (~Q(status="cancelled") & Q(cancelled_at__isnull=True)),
            ),
        ]
        indexes = [
            models.Index(fields=["room", "starts_at"], name="booking_room_start"),
            models.Index(fields=["clinic", "starts_at"], name="booking_clinic_start"),
            models.Index(fields=["monitor", "starts_at"], name="booking_monitor_start"),
            models.Index(fields=["patient", "starts_at"], name="booking_patient_start"),
            # The pathway page's latest dosing sessions and their full list, newest first: an index
            # scan that stops after a page, however long the treatment.
            models.Index(fields=["pathway", "-starts_at", "-id"], name="booking_pathway_latest"),
            # Clash checks (`selectors.booking_time_reads`): live bookings of a room, patient or monitor
            # that end after the asked start. Reading by end, they skip the years of past bookings before it.
            models.Index(fields=["room", "ends_at"], name="booking_room_live_end", condition=LIVE_BOOKING),
            models.Index(
                fields=["patient", "ends_at"], name="booking_patient_live_end", condition=LIVE_BOOKING
            ),
            models.Index(
                fields=["monitor", "ends_at"], name="booking_monitor_live_end", condition=LIVE_BOOKING
            ),
        ]

    def __str__(self) -> str:
        return f"{self.room} {self.starts_at:%Y-%m-%d %H:%M}"


class DoseRange(models.Model):
    """A clinic's usual dose range in mg/kg for one agent and route (sourced defaults in `rules`); a
    dose outside it needs a prescriber's override with a reason."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="dose_ranges")
    agent = models.CharField(max_length=20, choices=AGENT_CHOICES)
    route = models.CharField(max_length=20, choices=ROUTE_CHOICES)
    minimum_mg_per_kg = models.DecimalField(
        max_digits=4, decimal_places=2, validators=[MinValueValidator(0), MaxValueValidator(20)]
    )
    maximum_mg_per_kg = models.DecimalField(
        max_digits=4, decimal_places=2, validators=[MinValueValidator(0), MaxValueValidator(20)]
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "agent", "route"], name="dose_range_one_per_route"),
            models.CheckConstraint(
                name="dose_range_ordered", condition=Q(minimum_mg_per_kg__lte=models.F("maximum_mg_per_kg"))
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent} {self.route}: {self.minimum_mg_per_kg}-{self.maximum_mg_per_kg} mg/kg"


class DosingSettings(BaseModel):
    """A clinic's limits for dosing sessions (defaults in `rules`; sources disagree, the clinic sets them)."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="dosing_settings")
    predose_systolic_max = models.PositiveSmallIntegerField(default=140)
    predose_diastolic_max = models.PositiveSmallIntegerField(default=90)
    systolic_max = models.PositiveSmallIntegerField(default=180)
    diastolic_max = models.PositiveSmallIntegerField(default=110)
    heart_rate_max = models.PositiveSmallIntegerField(default=120)
    spo2_min = models.PositiveSmallIntegerField(default=92)
    respiratory_rate_min = models.PositiveSmallIntegerField(default=10)
    respiratory_rate_max = models.PositiveSmallIntegerField(default=24)
    minimum_observation_minutes = models.PositiveSmallIntegerField(default=90)
    vitals_interval_minutes = models.PositiveSmallIntegerField(default=15)
    late_entry_minutes = models.PositiveSmallIntegerField(
        default=10,
        db_default=10,
        help_text="How far back a time entered late may go (dose, devices, vitals, scales).",
    )
    discharge_bp_window_minutes = models.PositiveSmallIntegerField(
        default=15, db_default=15, help_text="Discharge needs a full blood pressure taken this recently."
    )
    discharge_systolic_max = models.PositiveSmallIntegerField(default=180, db_default=180)
    discharge_diastolic_max = models.PositiveSmallIntegerField(default=110, db_default=110)
    bp_rise_systolic_margin = models.PositiveSmallIntegerField(
        default=40,
        db_default=40,
        help_text="A systolic rise from baseline this large needs a prescriber's review.",
    )
    bp_rise_diastolic_margin = models.PositiveSmallIntegerField(
        default=25,
        db_default=25,
        help_text="A diastolic rise from baseline this large needs a prescriber's review.",
    )
    emdr_window_hours = models.PositiveSmallIntegerField(
        default=72, help_text="How long after a dose an EMDR session still counts as tied to it."
    )
    bp_ceiling_systolic = models.PositiveSmallIntegerField(
        default=180,
        db_default=180,
        validators=[MinValueValidator(120), MaxValueValidator(250)],
        help_text="At or above this pre-dose systolic pressure no override can start a dose.",
    )
    bp_ceiling_diastolic = models.PositiveSmallIntegerField(
        default=110,
        db_default=110,
        validators=[MinValueValidator(70), MaxValueValidator(150)],
        help_text="At or above this pre-dose diastolic pressure no override can start a dose.",
    )
    esketamine_label = models.CharField(
        max_length=12,
        choices=ESKETAMINE_LABEL_CHOICES,
        default=rules.EsketamineLabel.US_PI.value,
        db_default=rules.EsketamineLabel.US_PI.value,
        help_text="The label the clinic follows for esketamine: doses, frequency and the duties that go "
        "with it.",
    )
    emdr_protocol = models.CharField(
        max_length=24,
        choices=EMDR_PROTOCOL_CHOICES,
        default=emdr_rules.Protocol.STABILISATION_FIRST.value,
        db_default=emdr_rules.Protocol.STABILISATION_FIRST.value,
        verbose_name="EMDR protocol for new plans",
    )
    clinic_admins_read_dosing_records = models.BooleanField(
        default=False,
        db_default=False,
        verbose_name="Clinic admins may read the clinical content of dosing records",
        help_text="Off: clinic admins see a dosing session's logistics (room, times, staff, status) only, "
        "not its vitals, doses, scales, adverse events, discharge or monitoring form.",
    )

    def __str__(self) -> str:
        return f"Dosing settings of {self.clinic}"


class SessionStatus(models.TextChoices):
    PRE_DOSE = "pre_dose", "Pre-dose checks"
    DOSED = "dosed", "Dosed, monitoring"
    DISCHARGED = "discharged", "Discharged"
    SIGNED = "signed", "Signed"


class DosingSession(BaseModel):
    """The monitoring record of one booked dosing session, from pre-dose checks to discharge.

    Signed, it is read-only; corrections are addenda.
    """

    booking = models.OneToOneField(Booking, on_delete=models.PROTECT, related_name="session")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=20, choices=SessionStatus.choices, default=SessionStatus.PRE_DOSE)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    fasting_confirmed = models.BooleanField(default=False, verbose_name="Fasting confirmed")
    escort_present = models.BooleanField(default=False, verbose_name="Escort present")
    consent_confirmed = models.BooleanField(default=False, verbose_name="Consent confirmed")
    override_problems = models.JSONField(default=list, blank=True)
    override_reason = models.TextField(blank=True)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    override_at = models.DateTimeField(null=True, blank=True)

    dose_mg = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    lot_number = models.CharField(max_length=40, blank=True)
    device_times = models.JSONField(default=list, blank=True)
    dose_started_at = models.DateTimeField(null=True, blank=True)
    dose_started_entered_at = models.DateTimeField(
        null=True, blank=True, help_text="When the start was entered (differs from the start when late)."
    )
    dose_ended_at = models.DateTimeField(null=True, blank=True)
    dose_ended_entered_at = models.DateTimeField(null=True, blank=True)
    dosed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    dose_override_mg = models.DecimalField(
        max_digits=6,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="A dose outside the clinic's range that a prescriber has approved, with the reason.",
    )
    dose_override_reason = models.TextField(blank=True, db_default="")
    dose_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    dose_override_at = models.DateTimeField(null=True, blank=True)
    leave_checklist = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text="The Readiness to Leave items confirmed before discharge (EU/UK label), by code.",
    )
    leave_checklist_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    leave_checklist_at = models.DateTimeField(null=True, blank=True)

    bp_review_reason = models.TextField(blank=True, db_default="")
    bp_review_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    bp_review_at = models.DateTimeField(null=True, blank=True)

    alert_and_oriented = models.BooleanField(default=False)
    dissociation_resolved = models.BooleanField(
        default=False,
        db_default=False,
        help_text="The clinician recorded at discharge that dissociation has resolved.",
    )
    escort_present_at_discharge = models.BooleanField(default=False)
    discharged_at = models.DateTimeField(null=True, blank=True)
    discharged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    # The Spravato REMS Patient Monitoring Form (esketamine only).
    pmf_first_treatment = models.BooleanField(null=True, blank=True)
    pmf_sedation = models.BooleanField(null=True, blank=True)
    pmf_dissociation = models.BooleanField(null=True, blank=True)
    pmf_respiratory_depression = models.BooleanField(null=True, blank=True)
    pmf_ready_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="When the patient would have been ready without the 2-hour rule (minutes).",
    )
    pmf_required = models.BooleanField(
        default=False,
        db_default=False,
        editable=False,
        help_text="Whether a REMS monitoring form is due: the booking's agent is esketamine.",
    )
    pmf_filed_at = models.DateTimeField(null=True, blank=True)
    pmf_medication_classes = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text="The REMS medication classes the patient takes, as the prescriber confirmed them.",
    )
    pmf_medications_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    pmf_medications_confirmed_at = models.DateTimeField(null=True, blank=True)

    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="session_override_fields_paired",
                condition=Q(override_by__isnull=True, override_at__isnull=True)
                | (Q(override_by__isnull=False, override_at__isnull=False) & ~Q(override_reason="")),
            ),
            models.CheckConstraint(
                name="session_bp_review_fields_paired",
                condition=Q(bp_review_by__isnull=True, bp_review_at__isnull=True)
                | (Q(bp_review_by__isnull=False, bp_review_at__isnull=False) & ~Q(bp_review_reason="")),
            ),
            models.CheckConstraint(
                name="session_pmf_medications_fields_paired",
                condition=Q(
                    pmf_medications_confirmed_by__isnull=True, pmf_medications_confirmed_at__isnull=True
                )
                | Q(pmf_medications_confirmed_by__isnull=False, pmf_medications_confirmed_at__isnull=False),
            ),
            models.CheckConstraint(
                name="session_signed_fields_paired",
                condition=Q(signed_by__isnull=True, signed_at__isnull=True)
                | Q(signed_by__isnull=False, signed_at__isnull=False, status="signed"),
            ),
        ]
        indexes = [
            # The dashboards' "monitoring forms due": a clinic's dosed esketamine sessions without a
            # filed form, oldest first (`selectors.pmf_due`), without reading the clinic's history or
            # its ketamine sessions, which never file one.
            models.Index(
                fields=["clinic", "dose_started_at"],
                condition=Q(pmf_required=True, pmf_filed_at__isnull=True, dose_started_at__isnull=False),
                name="session_pmf_due",
            )
        ]

    def __str__(self) -> str:
        return f"Session of booking {self.booking_id} ({self.status})"


class VitalsReading(BaseModel):
    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="vitals")
    taken_at = models.DateTimeField()
    is_pre_dose = models.BooleanField(default=False)
    systolic = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(50), MaxValueValidator(280)]
    )
    diastolic = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(20), MaxValueValidator(180)]
    )
    heart_rate = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(20), MaxValueValidator(250)]
    )
    spo2 = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        verbose_name="SpO2 (%)",
        validators=[MinValueValidator(50), MaxValueValidator(100)],
    )
    respiratory_rate = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(2), MaxValueValidator(60)]
    )
    flags = models.JSONField(default=list, blank=True)
    entered_late = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Entered after the time it was taken (`created_at` is when it was entered).",
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("taken_at", "id")
        indexes = [models.Index(fields=["session", "taken_at"], name="vitals_session_time")]

    def __str__(self) -> str:
        return f"Vitals at {self.taken_at:%H:%M}"


class Scale(models.TextChoices):
    CADSS = "cadss", "CADSS (dissociation, 23 items, 0-92)"
    MOAAS = "moaas", "MOAA/S (sedation, 0-5)"
    BPRS_PLUS = "bprs_plus", "BPRS+ (4 items)"


class ScaleRating(BaseModel):
    """One rating of an in-session scale. BPRS+ keeps its anchor convention (0-6 or 1-7 per item)."""

    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="scales")
    scale = models.CharField(max_length=20, choices=Scale.choices)
    value = models.PositiveSmallIntegerField()
    anchors = models.CharField(max_length=10, blank=True, help_text="BPRS+ anchor convention: 0-6 or 1-7.")
    taken_at = models.DateTimeField()
    entered_late = models.BooleanField(default=False, db_default=False)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("taken_at", "id")

    def __str__(self) -> str:
        return f"{self.scale} {self.value}"


class Severity(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"
    SERIOUS = "serious", "Serious adverse event"


class AdverseEvent(BaseModel):
    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="adverse_events")
    occurred_at = models.DateTimeField()
    description = models.CharField(max_length=300)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    action_taken = models.CharField(max_length=300)
    entered_late = models.BooleanField(default=False, db_default=False)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("occurred_at", "id")

    def __str__(self) -> str:
        return f"{self.severity} adverse event"


class SessionAddendum(BaseModel):
    """A correction or addition to a signed record: who and when, the record itself unchanged."""

    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="addenda")
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"Addendum by {self.author_id}"


# --- EMDR ----------------------------------------------------------------------------------------------

EMDR_KIND_CHOICES = [(kind.value, label) for kind, label in emdr_rules.KIND_LABELS.items()]
EMDR_STATE_CHOICES = [
    (emdr_rules.State.NOT_STARTED.value, "Not started"),
    (emdr_rules.State.IN_PROGRESS.value, "In progress"),
    (emdr_rules.State.RESOLVED.value, "Resolved"),
    (emdr_rules.State.BLOCKED.value, "Blocked"),
]


class EmdrPlan(BaseModel):
    """A pathway's EMDR plan: its targets, and what the therapist has observed for the readiness gate."""

    pathway = models.OneToOneField(Pathway, on_delete=models.PROTECT, related_name="emdr_plan")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    dual_awareness_shown = models.BooleanField(default=False)
    dissociation_interview_recorded = models.BooleanField(
        default=False, help_text="A structured dissociation interview (DDIS or SCID-D) is on file."
    )
    affect_tolerance_shown = models.BooleanField(
        default=False,
        db_default=False,
        verbose_name="Affect tolerance shown",
        help_text="Can notice rising distress and return to the window of tolerance with the skills "
        "practised.",
    )
    protocol = models.CharField(
        max_length=24,
        choices=EMDR_PROTOCOL_CHOICES,
        default=emdr_rules.Protocol.STABILISATION_FIRST.value,
        db_default=emdr_rules.Protocol.STABILISATION_FIRST.value,
        verbose_name="EMDR protocol",
    )

    def __str__(self) -> str:
        return f"EMDR plan of {self.pathway_id}"


class NegativeCognitionTheme(models.TextChoices):
    RESPONSIBILITY = "responsibility", "Responsibility / defectiveness"
    SAFETY = "safety", "Safety / vulnerability"
    CONTROL = "control", "Control / choice"


class EmdrTarget(BaseModel):
    plan = models.ForeignKey(EmdrPlan, on_delete=models.PROTECT, related_name="targets")
    order = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20, choices=EMDR_KIND_CHOICES)
    title = models.CharField(max_length=120)
    image = models.CharField(max_length=300, blank=True, verbose_name="Image or worst part")
    negative_cognition = models.CharField(max_length=200, blank=True)
    positive_cognition = models.CharField(max_length=200, blank=True)
    voc = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name="VOC (1-7)")
    emotions = models.CharField(max_length=200, blank=True)
    sud = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name="SUD (0-10)")
    body_location = models.CharField(max_length=120, blank=True)
    theme = models.CharField(
        max_length=20,
        choices=NegativeCognitionTheme.choices,
        blank=True,
        verbose_name="Negative-cognition theme",
    )
    belongs_to = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="future_templates"
    )
    state = models.CharField(max_length=20, choices=EMDR_STATE_CHOICES, default="not_started")
    needs_reevaluation = models.BooleanField(default=False)
    override_reason = models.TextField(blank=True)
    override_therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    override_prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("plan", "order", "id")
        constraints = [
            models.CheckConstraint(
                name="emdr_target_sud_range", condition=Q(sud__isnull=True) | Q(sud__lte=10)
            ),
            models.CheckConstraint(
                name="emdr_target_voc_range", condition=Q(voc__isnull=True) | Q(voc__gte=1, voc__lte=7)
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def override_signed(self) -> bool:
        return bool(self.override_reason and self.override_therapist_id and self.override_prescriber_id)


class BilateralStimulation(models.TextChoices):
    EYE_MOVEMENTS = "eye_movements", "Eye movements"
    TAPS = "taps", "Taps"
    TONES = "tones", "Tones"


class EmdrSessionLog(BaseModel):
    """One EMDR session of a pathway, optionally tied to a dosing session (as effects wane, or after it)."""

    plan = models.ForeignKey(EmdrPlan, on_delete=models.PROTECT, related_name="sessions")
    therapist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    held_at = models.DateTimeField()
    dosing_session = models.ForeignKey(
        DosingSession, on_delete=models.PROTECT, null=True, blank=True, related_name="emdr_sessions"
    )
    phase_reached = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(8)])
    stimulation = models.CharField(max_length=20, choices=BilateralStimulation.choices)
    closure_technique = models.CharField(
        max_length=20, blank=True, choices=[("container", "Container"), ("calm_place", "Calm place")]
    )

    class Meta:
        ordering = ("held_at", "id")

    def __str__(self) -> str:
        return f"EMDR session {self.held_at:%Y-%m-%d}"


class EmdrTargetWork(BaseModel):
    """A target worked in a session: SUD and VOC at its start and end, the sets, interweaves, closure."""

    session = models.ForeignKey(EmdrSessionLog, on_delete=models.PROTECT, related_name="work")
    target = models.ForeignKey(EmdrTarget, on_delete=models.PROTECT, related_name="work")
    sud_start = models.PositiveSmallIntegerField(null=True, blank=True)
    sud_end = models.PositiveSmallIntegerField(null=True, blank=True)
    voc_start = models.PositiveSmallIntegerField(null=True, blank=True)
    voc_end = models.PositiveSmallIntegerField(null=True, blank=True)
    sud_by_set = models.JSONField(default=list, blank=True)
    sets = models.PositiveSmallIntegerField(default=0)
    interweaves = models.JSONField(default=list, blank=True)
    body_scan_clear = models.BooleanField(default=False)
    complete = models.BooleanField(default=False)
    blocked = models.BooleanField(default=False)

    class Meta:
        ordering = ("session__held_at", "id")

    def __str__(self) -> str:
        return f"{self.target_id} in {self.session_id}"


class StaffWorkingHours(models.Model):
    """One span of a member of staff's weekly working pattern: `weekday` from `starts` to `ends`, in the
    clinic's time zone. Several spans a day make a split shift; the rota service keeps a day's spans
    apart (`rota_rules.hours_problems`) and replaces the whole pattern at once. A member with no span at
    all keeps no rota and is always available (`rota_rules`)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", db_index=False)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="working_hours", db_index=False
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, validators=[MaxValueValidator(6)])
    starts = models.TimeField()
    ends = models.TimeField()

    class Meta:
        ordering = ("staff", "weekday", "starts")
        constraints = [
            models.CheckConstraint(
                name="staff_hours_start_before_end", condition=Q(starts__lt=models.F("ends"))
            ),
            models.CheckConstraint(name="staff_hours_weekday", condition=Q(weekday__lte=6)),
            models.UniqueConstraint(
                fields=["staff", "weekday", "starts"], name="staff_hours_one_start_a_day"
            ),
        ]
        indexes = [
            # The clinic's rota for the week calendar; the staff's own lead the unique constraint above.
            models.Index(fields=["clinic", "weekday"], name="staff_hours_clinic_day"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.starts:%H:%M}-{self.ends:%H:%M}"


class StaffLeave(BaseModel):
    """A period a member of staff is away (holiday, sickness, training): no booking names them in it.
    Never longer than `rota_rules.LONGEST_LEAVE`, so reads of the leave over a window are index ranges."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", db_index=False)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leave", db_index=False
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=rota_rules.LEAVE_REASON_LENGTH, blank=True, db_default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("starts_at", "id")
        constraints = [
            models.CheckConstraint(
                name="staff_leave_starts_before_end", condition=Q(starts_at__lt=models.F("ends_at"))
            ),
            models.CheckConstraint(
                name="staff_leave_within_longest",
                condition=Q(ends_at__lte=models.F("starts_at") + rota_rules.LONGEST_LEAVE),
            ),
        ]
        indexes = [
            # A member's leave that ends after a moment (the booking check, the rota page), and the
            # clinic's over a window (the week calendar).
            models.Index(fields=["staff", "ends_at"], name="staff_leave_staff_end"),
            models.Index(fields=["clinic", "starts_at"], name="staff_leave_clinic_start"),
        ]

    def __str__(self) -> str:
        return f"Leave of {self.staff_id} from {self.starts_at:%Y-%m-%d}"


# --- Course plans --------------------------------------------------------------------------------------


def _course_sessions_validators() -> list[MinValueValidator | MaxValueValidator]:
    return [MinValueValidator(course_rules.MIN_SESSIONS), MaxValueValidator(course_rules.MAX_SESSIONS)]


COURSE_SESSIONS_BOUNDED = Q(sessions__gte=course_rules.MIN_SESSIONS, sessions__lte=course_rules.MAX_SESSIONS)


class CourseTemplate(BaseModel):
    """A course a clinic plans from: agent and route, sessions and phases (`course_rules`). Adopted from
    a sourced default (`default_code`) or made by the clinic; kept by its clinic admins and prescribers,
    never deleted (a plan names the template it came from), retired with `is_active`."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=80)
    agent = models.CharField(max_length=20, choices=AGENT_CHOICES)
    route = models.CharField(max_length=20, choices=ROUTE_CHOICES)
    sessions = models.PositiveSmallIntegerField(validators=_course_sessions_validators())
    phases = models.JSONField(
        default=list,
        db_default=[],
        help_text="Phases: weeks (empty: runs on), sessions a week, days apart.",
    )
    default_code = models.CharField(
        max_length=40,
        blank=True,
        default="",
        db_default="",
        help_text="The sourced default it was adopted from.",
    )
    is_active = models.BooleanField(default=True, db_default=True, verbose_name="In use")

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="course_template_name_unique_in_clinic"),
            models.CheckConstraint(
                name="course_template_sessions_bounded", condition=COURSE_SESSIONS_BOUNDED
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def shape(self) -> course_rules.CourseShape:
        return course_rules.CourseShape(
            agent=self.agent,
            route=self.route,
            sessions=self.sessions,
            phases=course_rules.phases_from_data(self.phases),
        )


class CoursePlan(BaseModel):
    """A pathway's course: one row per pathway, changed in place by its prescriber (each change
    audited with what it was and what it became). Agent, route, sessions and phases are copied from the
    template chosen and edited for the patient."""

    pathway = models.OneToOneField(Pathway, on_delete=models.PROTECT, related_name="course_plan")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    template = models.ForeignKey(
        CourseTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    agent = models.CharField(max_length=20, choices=AGENT_CHOICES)
    route = models.CharField(max_length=20, choices=ROUTE_CHOICES)
    sessions = models.PositiveSmallIntegerField(validators=_course_sessions_validators())
    phases = models.JSONField(default=list, db_default=[])
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(name="course_plan_sessions_bounded", condition=COURSE_SESSIONS_BOUNDED),
        ]

    def __str__(self) -> str:
        return f"Course of {self.pathway_id}"

    @property
    def shape(self) -> course_rules.CourseShape:
        return course_rules.CourseShape(
            agent=self.agent,
            route=self.route,
            sessions=self.sessions,
            phases=course_rules.phases_from_data(self.phases),
        )
