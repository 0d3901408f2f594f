"""On PostgreSQL, the database itself refuses overlapping live bookings of one room, one patient or
one monitor (exclusion constraints on the half-open time range). btree_gist lets the equality on
the foreign keys share the GiST index with the range overlap. Other databases rely on the service,
which locks the room row and checks before it writes."""

from django.db import migrations

RANGE = "tstzrange(starts_at, ends_at, '[)')"
CONSTRAINTS = {
    "booking_room_no_overlap": "room_id",
    "booking_patient_no_overlap": "patient_id",
    "booking_monitor_no_overlap": "monitor_id",
}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist;")
    for name, column in CONSTRAINTS.items():
        schema_editor.execute(
            f"ALTER TABLE dosing_booking ADD CONSTRAINT {name} EXCLUDE USING gist "
            f"({column} WITH =, {RANGE} WITH &&) WHERE (status <> 'cancelled');"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in CONSTRAINTS:
        schema_editor.execute(f"ALTER TABLE dosing_booking DROP CONSTRAINT IF EXISTS {name};")


class Migration(migrations.Migration):
    dependencies = [("dosing", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
