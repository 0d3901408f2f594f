"""The Celery app. Tasks are found in each installed app's `tasks.py`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaemdr.settings.local")

app = Celery("kaemdr")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
