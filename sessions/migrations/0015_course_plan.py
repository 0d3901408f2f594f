"""Course plans: clinic course templates (agent, route, sessions, phases) and one course plan per pathway,
set by its prescriber (`sessions.booking.course_rules`)."""

import uuid

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations
from django.db import models


class Migration(migrations.Migration):
    dependencies = [
        ("dosing", "0014_staff_rota"),
        ("kaemdr", "0008_user_session"),
        ("pathways", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CourseTemplate",
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
                ("name", models.CharField(max_length=80)),
                (
                    "agent",
                    models.CharField(
                        choices=[("ketamine", "Racemic ketamine"), ("esketamine", "Esketamine (Spravato)")],
                        max_length=20,
                    ),
                ),
                (
                    "route",
                    models.CharField(
                        choices=[
                            ("iv", "Intravenous"),
                            ("im", "Intramuscular"),
                            ("sublingual", "Sublingual"),
                            ("oral", "Oral"),
                            ("intranasal", "Nasal spray"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "sessions",
                    models.PositiveSmallIntegerField(
                        validators=[
                            django.core.validators.MinValueValidator(1),
                            django.core.validators.MaxValueValidator(52),
                        ]
                    ),
                ),
                (
                    "phases",
                    models.JSONField(
                        db_default=[],
                        default=list,
                        help_text="Phases: weeks (empty: runs on), sessions a week, days apart.",
                    ),
                ),
                (
                    "default_code",
                    models.CharField(
                        blank=True,
                        db_default="",
                        default="",
                        help_text="The sourced default it was adopted from.",
                        max_length=40,
                    ),
                ),
                ("is_active", models.BooleanField(db_default=True, default=True, verbose_name="In use")),
                (
                    "clinic",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="kaemdr.clinic"
                    ),
                ),
            ],
            options={
                "ordering": ("name", "id"),
            },
        ),
        migrations.CreateModel(
            name="CoursePlan",
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
                (
                    "agent",
                    models.CharField(
                        choices=[("ketamine", "Racemic ketamine"), ("esketamine", "Esketamine (Spravato)")],
                        max_length=20,
                    ),
                ),
                (
                    "route",
                    models.CharField(
                        choices=[
                            ("iv", "Intravenous"),
                            ("im", "Intramuscular"),
                            ("sublingual", "Sublingual"),
                            ("oral", "Oral"),
                            ("intranasal", "Nasal spray"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "sessions",
                    models.PositiveSmallIntegerField(
                        validators=[
                            django.core.validators.MinValueValidator(1),
                            django.core.validators.MaxValueValidator(52),
                        ]
                    ),
                ),
                ("phases", models.JSONField(db_default=[], default=list)),
                (
                    "clinic",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="kaemdr.clinic"
                    ),
                ),
                (
                    "pathway",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="course_plan",
                        to="pathways.pathway",
                    ),
                ),
                (
                    "set_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "template",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="dosing.coursetemplate",
                    ),
                ),
            ],
        ),
        migrations.AddConstraint(
            model_name="coursetemplate",
            constraint=models.UniqueConstraint(
                fields=("clinic", "name"), name="course_template_name_unique_in_clinic"
            ),
        ),
        migrations.AddConstraint(
            model_name="coursetemplate",
            constraint=models.CheckConstraint(
                condition=models.Q(("sessions__gte", 1), ("sessions__lte", 52)),
                name="course_template_sessions_bounded",
            ),
        ),
        migrations.AddConstraint(
            model_name="courseplan",
            constraint=models.CheckConstraint(
                condition=models.Q(("sessions__gte", 1), ("sessions__lte", 52)),
                name="course_plan_sessions_bounded",
            ),
        ),
    ]
