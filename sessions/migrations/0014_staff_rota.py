"""Staff rotas: each member's weekly working hours (spans of a weekday) and their leave periods. A
member with no working hours keeps no rota and is always available, so bookings made before this
migration, and clinics that keep no rotas, are judged as before."""

import datetime
import uuid

import django.core.validators
import django.db.models.deletion
import django.db.models.expressions
import django.utils.timezone
from django.conf import settings
from django.db import migrations
from django.db import models


class Migration(migrations.Migration):
    dependencies = [
        ("dosing", "0013_booking_within_longest_chair_time"),
        ("kaemdr", "0008_user_session"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="StaffLeave",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("starts_at", models.DateTimeField()),
                ("ends_at", models.DateTimeField()),
                ("reason", models.CharField(blank=True, db_default="", max_length=200)),
                (
                    "clinic",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="kaemdr.clinic",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "staff",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="leave",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ("starts_at", "id"),
                "indexes": [
                    models.Index(fields=["staff", "ends_at"], name="staff_leave_staff_end"),
                    models.Index(fields=["clinic", "starts_at"], name="staff_leave_clinic_start"),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("starts_at__lt", models.F("ends_at"))),
                        name="staff_leave_starts_before_end",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "ends_at__lte",
                                django.db.models.expressions.CombinedExpression(
                                    models.F("starts_at"), "+", models.Value(datetime.timedelta(days=366))
                                ),
                            )
                        ),
                        name="staff_leave_within_longest",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="StaffWorkingHours",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "weekday",
                    models.PositiveSmallIntegerField(
                        choices=[
                            (0, "Monday"),
                            (1, "Tuesday"),
                            (2, "Wednesday"),
                            (3, "Thursday"),
                            (4, "Friday"),
                            (5, "Saturday"),
                            (6, "Sunday"),
                        ],
                        validators=[django.core.validators.MaxValueValidator(6)],
                    ),
                ),
                ("starts", models.TimeField()),
                ("ends", models.TimeField()),
                (
                    "clinic",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="kaemdr.clinic",
                    ),
                ),
                (
                    "staff",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="working_hours",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ("staff", "weekday", "starts"),
                "indexes": [models.Index(fields=["clinic", "weekday"], name="staff_hours_clinic_day")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("starts__lt", models.F("ends"))),
                        name="staff_hours_start_before_end",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("weekday__lte", 6)), name="staff_hours_weekday"
                    ),
                    models.UniqueConstraint(
                        fields=("staff", "weekday", "starts"), name="staff_hours_one_start_a_day"
                    ),
                ],
            },
        ),
    ]
