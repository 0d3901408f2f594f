"""No booking is longer than the longest chair time a clinic may set (14 hours,
`rules.LONGEST_BOOKING`): the reads of the bookings that overlap a window (the room calendar, the
clash check, the free starts) bound the start from below with it, and so read an index range instead
of the clinic's booking history."""

import datetime

import django.db.models.expressions
from django.db import migrations
from django.db import models


class Migration(migrations.Migration):
    dependencies = [
        ("dosing", "0012_clinic_admins_read_dosing_records"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="booking",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "ends_at__lte",
                        django.db.models.expressions.CombinedExpression(
                            models.F("starts_at"), "+", models.Value(datetime.timedelta(seconds=50400))
                        ),
                    )
                ),
                name="booking_within_longest_chair_time",
            ),
        ),
    ]
