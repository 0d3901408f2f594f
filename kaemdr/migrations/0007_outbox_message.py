# The transactional outbox (kaemdr.outbox): tasks a request promises, written with the request.

import django.utils.timezone
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('kaemdr', '0006_audit_event_no_truncate'),
    ]

    operations = [
        migrations.CreateModel(
            name='OutboxMessage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('task', models.CharField(max_length=200)),
                ('args', models.JSONField(blank=True, default=list)),
                ('key', models.CharField(max_length=255)),
                ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('published_at', models.DateTimeField(blank=True, null=True)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('done_at', models.DateTimeField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, max_length=64)),
            ],
            options={
                'indexes': [models.Index(condition=models.Q(('done_at__isnull', True)), fields=['next_attempt_at'], name='outbox_due')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('done_at__isnull', True)), fields=('key',), name='outbox_one_live_per_key')],
            },
        ),
    ]
