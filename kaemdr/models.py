"""Clinics (tenants), staff users with one role each, and the append-only audit trail."""

from __future__ import annotations

import uuid
import zoneinfo
from importlib import import_module
from typing import Any
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.models import BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone


class BaseModel(models.Model):
    """Timestamps, and a random public id for URLs and the API (never the sequential key)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError("Enter a time zone such as Europe/London.", code="invalid_time_zone")


class Clinic(BaseModel):
    """A tenant: every record belongs to exactly one clinic, and staff only ever see their own."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    time_zone = models.CharField(max_length=64, default="Europe/London", validators=[validate_time_zone])
    two_factor_for_everyone = models.BooleanField(
        default=False,
        help_text="Require two-factor sign-in of every member of staff, not only prescribers and admins.",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The clinic's time zone: the one its pages show times in and its staff enter them in."""
        return zoneinfo.ZoneInfo(self.time_zone)


class Role(models.TextChoices):
    PRESCRIBER = "prescriber", "Prescriber"
    THERAPIST = "therapist", "Therapist"
    MONITOR = "monitor", "Monitor (nurse)"
    CLINIC_ADMIN = "clinic_admin", "Clinic admin"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        """Platform operators only reach the Django admin; they belong to no clinic and hold no role."""
        extra.update(is_staff=True, is_superuser=True, clinic=None, role="")
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A member of staff. Signs in with their email; belongs to one clinic with one role."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="staff", null=True, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May sign in to the Django admin.")
    date_joined = models.DateTimeField(default=timezone.now)
    invitation_sent_at = models.DateTimeField(null=True, blank=True)
    # Kept by `kaemdr.two_factor`: whether a confirmed authenticator exists, and a counter bumped at
    # every enrolment, reset or switch-off, so that a session's "second factor passed" mark (the
    # counter it saw) is checked against the user row already loaded, without a query per page.
    two_factor_enabled = models.BooleanField(default=False, editable=False)
    two_factor_epoch = models.PositiveIntegerField(default=0, editable=False)
    # Bumped by "sign out everywhere" (`kaemdr.accounts`): a session signed in under an older value
    # is ended at its next request, again without a query.
    sessions_epoch = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["full_name"]

    class Meta:
        ordering = ("full_name",)
        constraints = [
            models.CheckConstraint(
                name="user_clinic_and_role_together",
                condition=(Q(clinic__isnull=True) & Q(role="")) | (Q(clinic__isnull=False) & ~Q(role="")),
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def member_clinic_id(self) -> int:
        """The clinic of a clinic member. Platform operators belong to none, and have no business in
        clinic data: every clinic-scoped read and write reaches them only after a capability check."""
        if self.clinic_id is None:
            raise PermissionError("This account belongs to no clinic.")
        return self.clinic_id

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The time zone of the member's clinic, in which they read and enter times."""
        if self.clinic is None:
            raise PermissionError("This account belongs to no clinic.")
        return self.clinic.zone


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AuditEventImmutable("Audit events cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditEventImmutable("Audit events cannot be deleted.")


class AuditEventImmutable(Exception):
    """Raised on any attempt to change or delete an audit event through the ORM."""


class AuditEvent(models.Model):
    """One thing that happened: who did what to which record, when, in which request.

    Targets are stored as text (type and public id), never as foreign keys, so an event outlives
    its target and never blocks a delete. `data` holds identifiers and codes only: no free-text
    clinical content. Rows are append-only: the ORM refuses updates and deletes, and on
    PostgreSQL a trigger refuses them too.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    clinic_public_id = models.UUIDField(null=True, blank=True)
    actor_public_id = models.UUIDField(null=True, blank=True)
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_public_id = models.UUIDField(null=True, blank=True)
    patient_public_id = models.UUIDField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ("-occurred_at", "-id")
        indexes = [
            models.Index(fields=["clinic_public_id", "-occurred_at"], name="audit_clinic_time"),
            models.Index(
                fields=["clinic_public_id", "patient_public_id", "-occurred_at"], name="audit_patient"
            ),
            models.Index(fields=["clinic_public_id", "actor_public_id", "-occurred_at"], name="audit_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditEventImmutable("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditEventImmutable("Audit events cannot be deleted.")


class OutboxMessage(models.Model):
    """A task a request promised (a PDF to render, an email to send), written in the request's own
    transaction and handed to the broker after it commits (`kaemdr.outbox`): a broker that is down
    when the request commits delays the task, never loses it.

    `task` and `args` (ids only, as strings) say what to run; `public_id` is the Celery task id of
    every message published for the row, so the task finds its row and marks it done in the same
    transaction as its work. `key` (the task and its arguments) allows one live row per task and
    arguments. The sweeper publishes again a row not done by `next_attempt_at`, at most
    `KAEMDR_OUTBOX_MAX_ATTEMPTS` times, further apart each time. `last_error` holds a code (an
    exception's class name, or `gave_up`), never free text. Its columns change only through
    `kaemdr.outbox`, by conditional updates (no `updated_at`: the times that matter are named)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    task = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    key = models.CharField(max_length=255)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=Q(done_at__isnull=True), name="outbox_one_live_per_key"
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(done_at__isnull=True), name="outbox_due"),
        ]

    def __str__(self) -> str:
        return f"{self.task}({', '.join(self.args)})"


class UserSession(AbstractBaseSession):
    """A sign-in session (`SESSION_ENGINE = "kaemdr.session_store"`): Django's database session row
    with the id of the user signed in to it, so that a request reads its session, its user and their
    clinic in one statement (`kaemdr.session_store`). The database holds the only copy: no cache can
    serve a session that was ended.

    `user` is written from the session's own data at every save and is never trusted alone: the
    session's data (signed) still names the user, and Django's session hash is still checked. No
    foreign-key constraint, so that deleting a user never waits on, or is refused by, their
    sessions (a session whose user is gone reads as signed out)."""

    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )

    @classmethod
    def get_session_store_class(cls) -> type[Any]:
        """The configured engine's store, found by name (as Django finds it): the store reads this
        model, so importing it here would make a circle."""
        return import_module(settings.SESSION_ENGINE).SessionStore
