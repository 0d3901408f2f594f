"""A real Celery worker, in its own process, consumes from Redis a task enqueued on commit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from kombu import pools as kombu_pools

from kaemdr import celery_app
from kaemdr import services
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from kaemdr.models import User

from ..conftest import require_postgres
from ..conftest import require_redis
from ..factories import ClinicFactory
from ..factories import UserFactory

WORKER_REDIS_DB = 14


def _redis_url(base: str) -> str:
    return base.rsplit("/", 1)[0] + f"/{WORKER_REDIS_DB}"


def _database_url(database: dict[str, Any]) -> str:
    """The test database (already created by pytest-django) as a URL for the worker process."""
    user = database["USER"] or "postgres"
    password = f":{database['PASSWORD']}" if database["PASSWORD"] else ""
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{database['NAME']}"


def _drop_broker_connections() -> None:
    """Forget the connection and producer pools made for the previous broker URL."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    kombu_pools.reset()  # kombu keeps its own pools per broker URL, closed ones included


@pytest.fixture
def redis_worker(tmp_path: Path, transactional_db: None) -> Iterator[dict[str, Any]]:
    require_postgres()
    broker = _redis_url(require_redis())
    redis.Redis.from_url(broker).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kaemdr.settings.local",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "REDIS_URL": broker,
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "DJANGO_EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "DJANGO_CONN_MAX_AGE": "0",
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kaemdr",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    previous = {
        key: celery_app.conf[key] for key in ("broker_url", "task_always_eager", "broker_transport_options")
    }
    celery_app.conf.update(broker_url=broker, task_always_eager=False, broker_transport_options={})
    _drop_broker_connections()
    try:
        yield {"mail_dir": tmp_path / "mail", "log": tmp_path / "worker.log"}
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
        celery_app.conf.update(**previous)
        _drop_broker_connections()


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
