"""Outcome follow-ups after a completed course: the clinic's months (1, 3 and 6 by default, also for
clinics that exist already) and the new follow-up kind, once per pathway and month."""

from django.db import migrations
from django.db import models


class Migration(migrations.Migration):
    dependencies = [
        ("integration", "0002_summary"),
    ]

    operations = [
        migrations.AddField(
            model_name="integrationsettings",
            name="outcome_follow_up_months",
            field=models.CharField(
                db_default="1, 3, 6",
                default="1, 3, 6",
                help_text="Months after a course is completed when the outcome measures are taken again, "
                "separated by commas (1 to 24).",
                max_length=60,
            ),
        ),
        migrations.AlterField(
            model_name="followup",
            name="kind",
            field=models.CharField(
                choices=[
                    ("integration_session", "Integration session"),
                    ("check_in", "Check-in"),
                    ("outcome_measures", "Outcome measures"),
                    ("monitoring_form", "REMS monitoring form"),
                    ("visit_reminder", "Fasting and escort reminder"),
                    ("course_outcome", "Outcome measures after the course"),
                ],
                max_length=24,
            ),
        ),
        migrations.AlterField(
            model_name="followup",
            name="sequence",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="The day of a check-in, or the month after the course of an outcome follow-up; "
                "0 otherwise.",
            ),
        ),
        migrations.AddConstraint(
            model_name="followup",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "course_outcome")),
                fields=("pathway", "kind", "sequence"),
                name="followup_once_per_course_month",
            ),
        ),
    ]
