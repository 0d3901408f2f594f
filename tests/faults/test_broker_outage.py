"""The broker is down while staff ask for things to be done later, and comes back (issue 19).

With the test process's Celery app pointed at a closed port, a monitor asks for a PDF summary (page
and API), a clinic admin invites a member of staff, and a therapist asks for a password reset: each
answers as usual, and each task waits as an outbox row that never reached the broker. The summary
offers "Try again" once it has waited, which also answers while the broker is down. Then the broker
is back (a Redis database of the test's own) with a real worker: one run of the beat's sweeper task
publishes the three, the worker renders the PDF and sends the two emails, exactly once each; a
second sweep publishes nothing, and the same messages delivered again do nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integration.models import Summary
from integration.models import SummaryStatus
from integration.tasks import summary_render_task
from kaemdr import celery_app
from kaemdr.models import AuditEvent
from kaemdr.models import OutboxMessage
from kaemdr.models import Role
from kaemdr.models import User
from kaemdr.tasks import outbox_sweep_task
from kaemdr.tasks import password_reset_send_task
from kaemdr.tasks import staff_invitation_send_task
from sessions.models import DosingSession

from ..broker import broker
from ..broker import database_url
from ..broker import down_broker_url
from ..broker import solo_worker_command
from ..conftest import require_postgres
from ..conftest import require_redis

# Not 0, 13 (tests/integration/test_follow_up_worker.py) nor 14 (tests/kaemdr/test_celery_worker.py).
REDIS_DB = 12
WAIT_SECONDS = 60.0
SWEPT = re.compile(r"Task kaemdr\.tasks\.outbox_sweep_task\[[^\]]+\] succeeded in [\d.e-]+s: (\d+)")
NEW_MEMBER = "new.member@example.test"


class Worker:
    """`celery worker` (solo pool) on the test's Redis database, against the test database, writing
    emails to files and summaries to the test's private folder."""

    def __init__(self, tmp_path: Path, broker_url: str, private_dir: Path) -> None:
        self.mail_dir = tmp_path / "mail"
        self.log_path = tmp_path / "worker.log"
        self._log: IO[str] = self.log_path.open("w")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "kaemdr.settings.local",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": database_url(connection.settings_dict),
            "DJANGO_CONN_MAX_AGE": "0",
            "REDIS_URL": broker_url,
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "DJANGO_EMAIL_FILE_PATH": str(self.mail_dir),
            "KAEMDR_PRIVATE_DIR": str(private_dir),
            "PYTHONUNBUFFERED": "1",
        }
        self.popen = subprocess.Popen(
            solo_worker_command(), cwd=settings.BASE_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if condition():
                return
            if self.popen.poll() is not None:
                pytest.fail(f"the worker exited ({self.popen.returncode}):\n{self.log()[-4000:]}")
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}:\n{self.log()[-4000:]}")

    def sweeps(self) -> list[int]:
        """What each run of the sweeper task returned (how many it published)."""
        return [int(count) for count in SWEPT.findall(self.log())]

    def emails(self) -> list[str]:
        """Every message the worker sent, one string each."""
        if not self.mail_dir.exists():
            return []
        text = "".join(path.read_text() for path in sorted(self.mail_dir.iterdir()))
        return [part for part in text.split("-" * 79) if "Subject:" in part]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)
        self._log.close()


@pytest.fixture
def redis_broker_url() -> Iterator[str]:
    require_postgres()
    url = require_redis().rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    try:
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()


@pytest.fixture
def private_dir(settings: Any, tmp_path: Path) -> Path:
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    return tmp_path / "private"


def _ask_for_summary(client: Client, session: DosingSession) -> Any:
    return client.post(
        reverse("summary_request"), {"kind": "dosing_session", "record": str(session.public_id)}
    )


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_nothing_promised_is_lost_while_the_broker_is_down_and_all_of_it_is_done_once_when_it_returns(
    redis_broker_url: str,
    private_dir: Path,
    tmp_path: Path,
    staff: dict[str, User],
    dosing_pathway: Any,
    complete_session: Callable[..., DosingSession],
    client_for: Callable[[User | None], Client],
) -> None:
    signed = complete_session(dosing_pathway)
    monitor, therapist = staff[Role.MONITOR], staff[Role.THERAPIST]
    nurse = client_for(monitor)
    admin = client_for(staff[Role.CLINIC_ADMIN])
    for client in (nurse, admin):
        client.raise_request_exception = False  # a 500 is an answer to look at, not an exception

    # Given the broker is down
    with broker(down_broker_url()):
        # When staff ask for a summary (page and API), an invitation and a password reset
        asked = _ask_for_summary(nurse, signed)
        by_api = nurse.post(
            "/api/v1/summaries/",
            {"kind": "dosing_session", "record": str(signed.public_id)},
            content_type="application/json",
        )
        invited = admin.post(
            reverse("staff_invite"),
            {"full_name": "Nia Newcomer", "email": NEW_MEMBER, "role": Role.THERAPIST},
        )
        reset = Client(raise_request_exception=False).post(
            reverse("password_reset"), {"email": therapist.email}
        )

        # Then each answers as usual
        assert asked.status_code == 302, asked.content.decode()[:500]
        assert by_api.status_code == 202, by_api.content.decode()[:500]
        assert invited.status_code == 302, invited.content.decode()[:500]
        assert invited["Location"] == reverse("staff_list")
        assert reset.status_code == 200
        assert "Check your email" in reset.content.decode()
        # ... and each task waits in the outbox, never having reached the broker
        summary = Summary.objects.get(record_public_id=signed.public_id)
        newcomer = User.objects.get(email=NEW_MEMBER)
        waiting = {(m.task, tuple(m.args)): m for m in OutboxMessage.objects.all()}
        assert set(waiting) == {
            (summary_render_task.name, (str(summary.public_id),)),
            (staff_invitation_send_task.name, (str(newcomer.public_id),)),
            (password_reset_send_task.name, (str(therapist.public_id),)),
        }
        assert {(m.published_at, m.done_at, m.last_error) for m in waiting.values()} == {
            (None, None, "OperationalError")
        }
        assert nurse.get(asked["Location"]).status_code == 200

        # When the summary has waited past the wait, its page offers "Try again"
        Summary.objects.filter(pk=summary.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=2))
        page = nurse.get(asked["Location"]).content.decode()
        assert "<div data-summary-action>" in page
        assert ">Try again</button>" in page
        # ... which answers too while the broker is still down, and leaves the render waiting
        again = _ask_for_summary(nurse, signed)
        assert again.status_code == 302
        assert again["Location"] == asked["Location"]
        assert OutboxMessage.objects.get(task=summary_render_task.name).published_at is None
        # ... and a role that may not see the record still gets 404
        assert admin.get(asked["Location"]).status_code == 404
        assert _ask_for_summary(admin, signed).status_code == 404

    assert Summary.objects.get(pk=summary.pk).status == SummaryStatus.PENDING
    # asked for, asked again by the API (never published, so queued again), and "Try again"
    assert (
        AuditEvent.objects.filter(action="summary.requested", target_public_id=summary.public_id).count() == 3
    )

    # When the broker is back, with a worker, and beat's sweeper task runs
    with broker(redis_broker_url):
        worker = Worker(tmp_path, redis_broker_url, private_dir)
        try:
            worker.wait_for(lambda: " ready." in worker.log(), "the worker to start")
            outbox_sweep_task.delay()
            worker.wait_for(
                lambda: not OutboxMessage.objects.filter(done_at__isnull=True).exists(),
                "every outbox row to be done",
            )

            # Then the PDF is made and each email sent, exactly once
            assert worker.sweeps() == [3]
            summary.refresh_from_db()
            assert summary.status == SummaryStatus.READY, summary.error
            emails = worker.emails()
            assert len(emails) == 2, emails
            assert sum(f"To: {NEW_MEMBER}" in e for e in emails) == 1
            assert sum(f"To: {therapist.email}" in e for e in emails) == 1
            assert User.objects.get(pk=newcomer.pk).invitation_sent_at is not None

            # When the sweeper runs again, and every message is delivered a second time
            outbox_sweep_task.delay()
            for message in OutboxMessage.objects.all():
                celery_app.tasks[message.task].apply_async(args=message.args, task_id=str(message.public_id))
            worker.wait_for(lambda: worker.log().count("is done already") == 3, "the three duplicates")

            # Then nothing more is published or done
            assert worker.sweeps() == [3, 0]
            assert len(worker.emails()) == 2
            for action, target in (
                ("summary.ready", summary.public_id),
                ("staff.invitation_sent", newcomer.public_id),
            ):
                assert AuditEvent.objects.filter(action=action, target_public_id=target).count() == 1
        finally:
            worker.stop()

    download = nurse.get(reverse("summary_download", args=[summary.public_id]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"%PDF-")
