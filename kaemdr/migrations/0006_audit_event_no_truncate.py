"""On PostgreSQL, refuse TRUNCATE of the audit table too.

The row triggers of 0002 stop UPDATE and DELETE, but TRUNCATE fires no row trigger: this statement
trigger closes that way of emptying the log. (SQLite has no TRUNCATE.)
"""

from django.db import migrations

FORWARD = """
CREATE TRIGGER kaemdr_audit_event_no_truncate
    BEFORE TRUNCATE ON kaemdr_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION kaemdr_audit_event_immutable();
"""
BACKWARD = "DROP TRIGGER IF EXISTS kaemdr_audit_event_no_truncate ON kaemdr_auditevent;"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("kaemdr", "0005_user_sessions_epoch")]
    operations = [migrations.RunPython(forward, backward)]
