"""Follow-up dispatch with real processes: a Celery worker (and beat) on Redis, PostgreSQL, and a
real SMTP server (aiosmtpd, in a thread) that records every message it acknowledged with 250.

What this file proves, counting delivered messages by their fixed `Message-ID`:
- a due follow-up is delivered exactly once however many times the task is enqueued;
- a worker SIGKILLed while the mail server holds its message (the row locked, its transaction open)
  leaves the row unsent, and a new worker delivers it once;
- a Redis flushed of every queued task loses nothing: beat's ticks alone send every due follow-up;
- two workers dispatching at once (and two threads calling the service at once) deliver each
  follow-up once.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import IO
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Envelope
from aiosmtpd.smtp import Session
from django.conf import settings
from django.core import mail
from django.core.mail.backends import locmem
from django.db import connection
from django.db import transaction

from integration import services
from integration.models import FollowUp
from integration.models import FollowUpStatus
from integration.models import IntegrationSettings
from integration.services import follow_ups_dispatch_due
from integration.tasks import follow_ups_dispatch
from kaemdr.models import AuditEvent

from ..broker import broker as broker_at
from ..broker import database_url
from ..conftest import require_postgres
from ..conftest import require_redis
from ..factories import FollowUpFactory
from ..factories import PathwayFactory

# Not 0 (the default) nor 14 (tests/kaemdr/test_celery_worker.py).
REDIS_DB = 13
WAIT_SECONDS = 45.0
TASK = "integration.tasks.follow_ups_dispatch"
SUCCEEDED = re.compile(rf"Task {re.escape(TASK)}\[[^\]]+\] succeeded in [\d.e-]+s: (\d+)")


def staff_message_id(follow_up: FollowUp) -> str:
    return f"<follow-up-{follow_up.public_id}-staff@kaemdr.local>"


def patient_message_id(follow_up: FollowUp) -> str:
    return f"<follow-up-{follow_up.public_id}-patient@kaemdr.local>"


def header(message: Message, name: str) -> str:
    """A header's value, unfolded (Django folds the long Message-ID onto a second line)."""
    return " ".join(str(message[name]).split())


# --- The mail server ---------------------------------------------------------------------------------


class RecordingHandler:
    """An aiosmtpd handler. A message counts as delivered only when this handler answers 250.

    With `hold_first`, the first message is neither accepted nor refused: `handle_DATA` waits (in an
    executor, so the server keeps serving) until `release` is set, with the client still waiting
    for the answer to its DATA. `holding` is set once that message has arrived."""

    def __init__(self) -> None:
        self.port = 0
        self.delivered: list[Message] = []
        self.held: list[Message] = []
        self.hold_first = False
        self.delay = 0.0
        self.holding = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        with self._lock:
            hold = self.hold_first and not self.held
            if hold:
                self.held.append(message)
        if hold:
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 2 * WAIT_SECONDS)
            return "451 4.3.0 Held by the test, never accepted"
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.delivered.append(message)
        return "250 2.0.0 OK"

    def delivered_ids(self) -> list[str]:
        with self._lock:
            return [header(message, "Message-ID") for message in self.delivered]

    def held_ids(self) -> list[str]:
        with self._lock:
            return [header(message, "Message-ID") for message in self.held]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[RecordingHandler]:
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    handler.port = controller.port
    try:
        yield handler
    finally:
        handler.release.set()
        controller.stop()


# --- Celery processes --------------------------------------------------------------------------------


class CeleryProcess:
    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path, log_file: IO[str]) -> None:
        self.name, self.popen, self.log_path, self._log_file = name, popen, log_path, log_file

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def task_results(self) -> list[int]:
        """What each follow_ups_dispatch run this process finished returned (how many it sent)."""
        return [int(sent) for sent in SUCCEEDED.findall(self.log())]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)
        self._log_file.close()


class CeleryCluster:
    """Starts `celery worker` and `celery beat` processes on Redis DB 13 against the test database,
    sending mail to the test SMTP server; the test process enqueues onto the same broker."""

    def __init__(self, tmp_path: Path, broker: str, smtp: RecordingHandler) -> None:
        self.tmp_path, self.broker, self.smtp = tmp_path, broker, smtp
        self.processes: list[CeleryProcess] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "kaemdr.settings.local",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": database_url(connection.settings_dict),
            "DJANGO_CONN_MAX_AGE": "0",
            "REDIS_URL": broker,
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "DJANGO_EMAIL_HOST": "127.0.0.1",
            "DJANGO_EMAIL_PORT": str(smtp.port),
            # Longer than any test holds a message, so the client never gives up by itself.
            "DJANGO_EMAIL_TIMEOUT": str(int(2 * WAIT_SECONDS)),
            "KAEMDR_FOLLOW_UP_DISPATCH_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def _start(self, name: str, args: list[str]) -> CeleryProcess:
        log_path = self.tmp_path / f"{name}.log"
        log_file = log_path.open("w")
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "kaemdr", *args, "--loglevel=INFO"],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        process = CeleryProcess(name, popen, log_path, log_file)
        self.processes.append(process)
        return process

    def worker(self, name: str) -> CeleryProcess:
        """A worker with the solo pool (its pid is the process that sends), ready to consume."""
        process = self._start(
            name,
            [
                "worker",
                "--pool=solo",
                f"--hostname={name}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        self.wait_for(lambda: f"{name}@" in process.log() and " ready." in process.log(), f"{name} ready")
        return process

    def beat(self) -> CeleryProcess:
        return self._start(
            "beat",
            [
                "beat",
                "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
                "--max-interval=1",
                "--pidfile=",
                f"--schedule={self.tmp_path / 'celerybeat-schedule'}",
            ],
        )

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()[-4000:]}" for p in self.processes)

    def task_results(self) -> list[int]:
        return [sent for process in self.processes for sent in process.task_results()]

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            for process in self.processes:
                if process.popen.poll() is not None and process.popen.returncode != -signal.SIGKILL:
                    pytest.fail(f"{process.name} exited ({process.popen.returncode}):\n{self.logs()}")
            time.sleep(0.2)
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}:\n{self.logs()}")

    def stop(self) -> None:
        for process in reversed(self.processes):  # beat before the workers it feeds
            process.stop()


@pytest.fixture
def celery_cluster(
    tmp_path: Path, transactional_db: None, smtp_server: RecordingHandler
) -> Iterator[CeleryCluster]:
    require_postgres()
    broker = require_redis().rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    try:
        with broker_at(broker):
            cluster = CeleryCluster(tmp_path, broker, smtp_server)
            try:
                yield cluster
            finally:
                smtp_server.release.set()  # a worker stuck in a held send can then shut down warm
                cluster.stop()
    finally:
        redis.Redis.from_url(broker).flushdb()


# --- Helpers -----------------------------------------------------------------------------------------


def notified(follow_ups: list[FollowUp]) -> bool:
    ids = [f.pk for f in follow_ups]
    return not FollowUp.objects.filter(pk__in=ids, notified_at__isnull=True).exists()


def locked_elsewhere(follow_up: FollowUp) -> bool:
    """True while another transaction holds the row's lock (the dispatcher's FOR UPDATE)."""
    with transaction.atomic():
        free = FollowUp.objects.select_for_update(skip_locked=True).filter(pk=follow_up.pk)
        return not list(free.values_list("pk", flat=True))


def sent_events(follow_up: FollowUp) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="follow_up.sent", target_public_id=follow_up.public_id))


# --- The tests ---------------------------------------------------------------------------------------


@pytest.mark.celery_worker
def test_a_follow_up_enqueued_many_times_is_delivered_once(
    celery_cluster: CeleryCluster, smtp_server: RecordingHandler
) -> None:
    follow_up = FollowUpFactory()
    IntegrationSettings.objects.create(clinic=follow_up.clinic, patient_emails_enabled=True)
    worker = celery_cluster.worker("once")

    for _ in range(5):
        follow_ups_dispatch.delay()

    celery_cluster.wait_for(lambda: len(worker.task_results()) == 5, "five dispatch runs")
    assert worker.task_results().count(1) == 1
    assert sum(worker.task_results()) == 1
    assert Counter(smtp_server.delivered_ids()) == {
        staff_message_id(follow_up): 1,
        patient_message_id(follow_up): 1,
    }
    to = {header(message, "Message-ID"): header(message, "To") for message in smtp_server.delivered}
    assert to[staff_message_id(follow_up)] == follow_up.responsible.email
    assert to[patient_message_id(follow_up)] == follow_up.patient.email
    row = FollowUp.objects.get(pk=follow_up.pk)
    assert row.notified_at is not None
    assert row.status == FollowUpStatus.OPEN  # a check-in stays open until someone records it
    assert row.patient_notified is True
    assert (row.attempts, row.last_error) == (0, "")
    events = sent_events(follow_up)
    assert len(events) == 1
    assert events[0].data == {"kind": "check_in", "patient_notified": True}
    assert events[0].actor_label == "system"
    assert not AuditEvent.objects.filter(action="follow_up.send_failed").exists()


@pytest.mark.celery_worker
def test_a_worker_killed_mid_send_leaves_the_row_unsent_and_the_next_worker_sends_it_once(
    celery_cluster: CeleryCluster, smtp_server: RecordingHandler
) -> None:
    follow_up = FollowUpFactory()
    smtp_server.hold_first = True
    first = celery_cluster.worker("doomed")

    follow_ups_dispatch.delay()
    celery_cluster.wait_for(smtp_server.holding.is_set, "the worker to hand over its message")
    # Mid-send: the server has the message but has not answered; the worker's transaction is open.
    assert smtp_server.held_ids() == [staff_message_id(follow_up)]
    assert locked_elsewhere(follow_up)
    assert FollowUp.objects.get(pk=follow_up.pk).notified_at is None

    os.kill(first.popen.pid, signal.SIGKILL)
    first.popen.wait(timeout=15)
    celery_cluster.wait_for(lambda: not locked_elsewhere(follow_up), "PostgreSQL to drop the dead lock")

    row = FollowUp.objects.get(pk=follow_up.pk)
    assert row.notified_at is None  # rolled back with the dead worker's transaction
    assert (row.attempts, row.last_error, row.status) == (0, "", FollowUpStatus.OPEN)
    assert smtp_server.delivered_ids() == []
    assert sent_events(follow_up) == []

    smtp_server.release.set()
    second = celery_cluster.worker("survivor")
    follow_ups_dispatch.delay()
    celery_cluster.wait_for(lambda: second.task_results() != [], "the new worker's dispatch run")

    assert second.task_results() == [1]
    assert smtp_server.delivered_ids() == [staff_message_id(follow_up)]
    assert smtp_server.held_ids() == [staff_message_id(follow_up)]  # the one never acknowledged
    row = FollowUp.objects.get(pk=follow_up.pk)
    assert row.notified_at is not None
    assert (row.attempts, row.last_error) == (0, "")
    assert len(sent_events(follow_up)) == 1


@pytest.mark.celery_worker
def test_a_flushed_broker_loses_nothing_beat_sends_every_due_follow_up_once(
    celery_cluster: CeleryCluster, smtp_server: RecordingHandler
) -> None:
    follow_ups = FollowUpFactory.create_batch(4)
    for _ in range(3):
        follow_ups_dispatch.delay()
    broker = redis.Redis.from_url(celery_cluster.broker)
    assert broker.llen("celery") == 3  # the three runs wait in the queue...
    broker.flushdb()
    assert broker.dbsize() == 0  # ...and are gone, as after a Redis restart without persistence

    worker = celery_cluster.worker("after-flush")
    beat = celery_cluster.beat()
    celery_cluster.wait_for(lambda: notified(follow_ups), "every follow-up to be sent", timeout=60)
    runs = len(worker.task_results())
    # Two more ticks after the last send: any run that would send again has had its chance.
    celery_cluster.wait_for(lambda: len(worker.task_results()) >= runs + 2, "two more beat ticks")

    assert "Sending due task follow-ups-dispatch (integration.tasks.follow_ups_dispatch)" in beat.log()
    assert Counter(smtp_server.delivered_ids()) == {staff_message_id(f): 1 for f in follow_ups}
    assert sum(worker.task_results()) == len(follow_ups)
    for follow_up in follow_ups:
        assert len(sent_events(follow_up)) == 1


@pytest.mark.celery_worker
def test_two_workers_dispatching_at_once_deliver_each_follow_up_once(
    celery_cluster: CeleryCluster, smtp_server: RecordingHandler
) -> None:
    follow_ups = FollowUpFactory.create_batch(60, pathway=PathwayFactory())
    smtp_server.delay = 0.03  # each send takes a moment, so the two workers' runs overlap
    workers = [celery_cluster.worker("left"), celery_cluster.worker("right")]

    for _ in range(10):
        follow_ups_dispatch.delay()

    celery_cluster.wait_for(lambda: len(celery_cluster.task_results()) == 10, "ten dispatch runs")
    assert notified(follow_ups)
    assert Counter(smtp_server.delivered_ids()) == {staff_message_id(f): 1 for f in follow_ups}
    assert sum(celery_cluster.task_results()) == 60
    # Both processes sent some: the rows were shared out, not sent by one while the other idled.
    assert all(sum(worker.task_results()) > 0 for worker in workers), celery_cluster.logs()
    assert AuditEvent.objects.filter(action="follow_up.sent").count() == 60
    assert not AuditEvent.objects.filter(action="follow_up.send_failed").exists()


def test_two_threads_dispatching_at_once_on_postgres_send_each_follow_up_once(
    transactional_db: None, mailoutbox: list[mail.EmailMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_postgres()
    # Reads of five, so that 40 rows make eight reads for the two to share out.
    monkeypatch.setattr(services, "DISPATCH_READ_AHEAD", 5)
    follow_ups = FollowUpFactory.create_batch(40, pathway=PathwayFactory())
    original_send = locmem.EmailBackend.send_messages

    def slow_send(self: locmem.EmailBackend, messages: Any) -> int:
        time.sleep(0.005)  # hold the row lock a moment, as a real mail server would
        return original_send(self, messages)

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", slow_send)
    start = threading.Barrier(2)
    sent: dict[str, int] = {}
    errors: list[BaseException] = []

    def dispatcher(name: str) -> None:
        try:
            start.wait(timeout=10)
            sent[name] = follow_ups_dispatch_due()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_SECONDS)
    assert not any(thread.is_alive() for thread in threads)

    assert errors == []
    assert sum(sent.values()) == len(follow_ups)
    # Both sent some: they really ran at once, each skipping the row the other held.
    assert sent["a"] > 0
    assert sent["b"] > 0
    assert len(mailoutbox) == len(follow_ups)
    message_ids = [message.extra_headers["Message-ID"] for message in mailoutbox]
    assert sorted(message_ids) == sorted(staff_message_id(f) for f in follow_ups)
    assert notified(follow_ups)
