"""On PostgreSQL, refuse UPDATE and DELETE of audit events in the database itself.

The ORM already refuses them (`AuditEventQuerySet`); the trigger also stops raw SQL and any
other client of the database. SQLite (the embedded default) gets the same with its own triggers.
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION kaemdr_audit_event_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER kaemdr_audit_event_no_update_or_delete
    BEFORE UPDATE OR DELETE ON kaemdr_auditevent
    FOR EACH ROW EXECUTE FUNCTION kaemdr_audit_event_immutable();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS kaemdr_audit_event_no_update_or_delete ON kaemdr_auditevent;
DROP FUNCTION IF EXISTS kaemdr_audit_event_immutable();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER kaemdr_audit_event_no_update BEFORE UPDATE ON kaemdr_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;""",
    """CREATE TRIGGER kaemdr_audit_event_no_delete BEFORE DELETE ON kaemdr_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS kaemdr_audit_event_no_update;",
    "DROP TRIGGER IF EXISTS kaemdr_audit_event_no_delete;",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("kaemdr", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
