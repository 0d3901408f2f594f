# Sign-in sessions with their user's id (kaemdr.session_store): a request reads its session, its user
# and their clinic in one statement. The sessions open at the change move over, so nobody is signed out.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def copy_open_sessions(apps, schema_editor):
    """Copy each unexpired row of Django's session table, with the user its signed data names."""
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    database = schema_editor.connection.alias
    old = apps.get_model("sessions", "Session")
    new = apps.get_model("kaemdr", "UserSession")
    store = SessionStore()
    rows = []
    for session in old.objects.using(database).filter(expire_date__gt=timezone.now()).iterator():
        try:
            user_id = int(store.decode(session.session_data)[SESSION_KEY])
        except (KeyError, TypeError, ValueError):
            user_id = None  # not signed in, or data no longer readable: it reads as before
        rows.append(
            new(
                session_key=session.session_key,
                session_data=session.session_data,
                expire_date=session.expire_date,
                user_id=user_id,
            )
        )
    new.objects.using(database).bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('kaemdr', '0007_outbox_message'),
        ('sessions', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='UserSession',
            fields=[
                ('session_key', models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name='session key')),
                ('session_data', models.TextField(verbose_name='session data')),
                ('expire_date', models.DateTimeField(db_index=True, verbose_name='expire date')),
                ('user', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'session',
                'verbose_name_plural': 'sessions',
                'abstract': False,
            },
        ),
        migrations.RunPython(copy_open_sessions, migrations.RunPython.noop, elidable=True),
    ]
