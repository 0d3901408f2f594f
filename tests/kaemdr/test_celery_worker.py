"""A real Celery worker, in its own process, consumes from Redis a task enqueued on commit."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from kaemdr import services
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User

from ..broker import broker as broker_at
from ..broker import database_url
from ..broker import solo_worker_command
from ..conftest import require_postgres
from ..conftest import require_redis
from ..factories import ClinicFactory
from ..factories import UserFactory

WORKER_REDIS_DB = 14


def _redis_url(base: str) -> str:
    return base.rsplit("/", 1)[0] + f"/{WORKER_REDIS_DB}"


@pytest.fixture
def redis_worker(tmp_path: Path, transactional_db: None) -> Iterator[dict[str, Any]]:
    require_postgres()
    broker = _redis_url(require_redis())
    redis.Redis.from_url(broker).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kaemdr.settings.local",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": broker,
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "DJANGO_EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "DJANGO_CONN_MAX_AGE": "0",
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        solo_worker_command(), cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        with broker_at(broker):
            yield {"mail_dir": tmp_path / "mail", "log": tmp_path / "worker.log"}
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()


@pytest.mark.celery_worker
def test_worker_on_redis_sends_the_invitation_enqueued_on_commit(redis_worker: dict[str, Any]) -> None:
    admin = UserFactory(clinic=ClinicFactory(), role=Role.CLINIC_ADMIN)

    user = services.staff_invite(
        actor=admin, email="worker.test@example.test", full_name="Wanda Worker", role=Role.THERAPIST
    )

    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        if User.objects.get(pk=user.pk).invitation_sent_at is not None:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the worker did not run the task:\n" + redis_worker["log"].read_text()[-3000:])
    sent = list(redis_worker["mail_dir"].glob("*.log"))
    assert len(sent) == 1
    body = sent[0].read_text()
    assert "To: worker.test@example.test" in body
    assert "/accounts/set-password/" in body
    event = AuditEvent.objects.get(action="staff.invitation_sent", target_public_id=user.public_id)
    assert event.actor_label == "system"
    assert event.request_id  # the task tags its own events
