"""Follow-ups: at most one sent again per crash (issue 19). The pool processes of a real Celery worker
are SIGKILLed again and again while they send the follow-ups that are due; nothing is lost, and each
killed process sends at most one follow-up again.

`follow_ups_dispatch_due` claims, sends and records one follow-up at a time, each in a transaction of
its own that commits as soon as the mail server has taken the follow-up's messages. So a process
killed before the server accepts a follow-up's staff email leaves it unsent (its transaction rolls
back with its connection), and a process killed after the server accepted it and before the commit
leaves that one follow-up unrecorded: it is sent again, a duplicate of it alone. This test counts,
at a real SMTP server, what the server accepted, and holds the worker to that bound.

The set-up is production's: `celery worker --concurrency=2` (prefork) on Redis and PostgreSQL, with
Django's SMTP backend sending to an SMTP server (aiosmtpd, in a thread of the test) that answers 250
to every message a few milliseconds after its DATA, and counts it then by its `Message-ID`, which the
dispatcher fixes per follow-up (`<follow-up-{public_id}-staff@…>`, `…-patient@…`). 2,000 follow-ups
are due; 500 of them at a clinic that sends the patient a copy. The test publishes dispatch runs
and, each time the server has accepted another 100 messages, kills one of the pool processes (never
the worker's main process, which starts a new one and, `acks_late` with `reject_on_worker_lost`,
requeues the run that died), six times. The kills are aimed at three moments:

- `patient`: the server holds a patient's copy unanswered, so that follow-up's staff email has been
  accepted and its transaction is open: the worst moment, which must send it again, once;
- `staff`: the server holds a staff email unanswered, so nothing of that follow-up was accepted: it
  must be sent later, once;
- `any`: whichever pool process is in the middle of a DATA right then, unheld: where the kill lands
  (before the 250, between it and the commit, after the commit) is left to the race.

Then every follow-up must be recorded as sent with one `follow_up.sent` audit event, every message
must have reached the server (none lost), and the follow-ups whose staff email arrived more than
once must number at most the processes killed (and the extra copies too).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.parser
import email.policy
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Envelope
from aiosmtpd.smtp import Session
from django.utils import timezone

from integration.models import FollowUp
from integration.models import IntegrationSettings
from integration.tasks import follow_ups_dispatch
from kaemdr.models import AuditEvent

from ..conftest import require_postgres
from ..factories import FollowUpFactory
from ..factories import PathwayFactory
from ..integration.test_follow_up_worker import CeleryCluster
from ..integration.test_follow_up_worker import CeleryProcess
from ..integration.test_follow_up_worker import RecordingHandler
from ..integration.test_follow_up_worker import _free_port

# A pytest fixture (a Celery worker's broker on Redis DB 13, the test database and the SMTP server
# below), imported under its own name so that this module's test can ask for it.
from ..integration.test_follow_up_worker import celery_cluster as celery_cluster
from ..integration.test_follow_up_worker import header
from ..integration.test_follow_up_worker import patient_message_id
from ..integration.test_follow_up_worker import staff_message_id

STAFF_ONLY = 1500
WITH_PATIENT_COPY = 500
ACCEPT_DELAY = 0.004  # seconds the server takes over each DATA before its 250
KILLS = ("patient", "staff", "any", "patient", "staff", "any")
MESSAGES_BETWEEN_KILLS = 100
RUNS_AT_A_TIME = 2  # dispatch runs published whenever the queue is empty, one per pool process
STEP_SECONDS = 45.0  # to wait for each step between kills
ALL_SENT_SECONDS = 150.0  # to wait, after the last kill, for every follow-up to be recorded as sent


# --- The mail server ---------------------------------------------------------------------------------


class KillWindowHandler(RecordingHandler):
    """The worker tests' recording handler, slowed (`delay` before each 250), that also knows which
    connection is in the middle of a DATA, and can hold the next staff or patient message unanswered
    until the test has killed its sender.

    `in_data` maps the client's port to the Message-ID of the message the server is taking from it
    and has not yet answered. A message whose sender dies meanwhile is never counted: aiosmtpd
    cancels this handler when its connection is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.delay = ACCEPT_DELAY
        self.in_data: dict[int, str] = {}
        self._hold_kind: str | None = None
        self._held: tuple[int, str] | None = None
        self._hold_over = False
        self._headers = email.parser.BytesHeaderParser(policy=email.policy.default)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message_id = header(self._headers.parsebytes(envelope.original_content or b""), "Message-ID")
        port = cast("tuple[str, int]", session.peer)[1]  # typed as a str, but a (host, port)
        with self._lock:
            self.in_data[port] = message_id
            hold = self._hold_kind is not None and f"-{self._hold_kind}@" in message_id
            if hold:
                self._hold_kind, self._held = None, (port, message_id)
        try:
            if hold:
                deadline = time.monotonic() + STEP_SECONDS
                while not self._hold_over and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)  # cancelled here when the sender is killed
            return await super().handle_DATA(server, session, envelope)
        finally:
            with self._lock:
                self.in_data.pop(port, None)

    def hold_next(self, kind: str) -> None:
        """Hold the next message whose Message-ID is of `kind` ("staff" or "patient")."""
        with self._lock:
            self._hold_kind, self._held, self._hold_over = kind, None, False

    def held_message(self) -> tuple[int, str] | None:
        """The client port and Message-ID of the message held, once one is."""
        with self._lock:
            return self._held

    def end_hold(self) -> None:
        with self._lock:
            self._hold_kind, self._held, self._hold_over = None, None, True

    def accepted(self) -> int:
        with self._lock:
            return len(self.delivered)

    def in_data_now(self) -> dict[int, str]:
        with self._lock:
            return dict(self.in_data)


@pytest.fixture
def smtp_server() -> Iterator[KillWindowHandler]:
    """The SMTP server the worker sends to; `celery_cluster` (imported above) asks for it by name."""
    handler = KillWindowHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    handler.port = controller.port
    try:
        yield handler
    finally:
        handler.end_hold()
        handler.release.set()
        controller.stop()


# --- The worker's processes --------------------------------------------------------------------------


def start_prefork_worker(cluster: CeleryCluster, name: str) -> CeleryProcess:
    """`celery worker --concurrency=2` as production runs it (Procfile.dev, docker-compose.yml), ready,
    with its two pool processes started."""
    worker = cluster._start(
        name,
        [
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            f"--hostname={name}@%h",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
    )
    cluster.wait_for(lambda: " ready." in worker.log(), f"{name} to be ready")
    cluster.wait_for(lambda: len(pool_processes(worker)) == 2, f"{name}'s two pool processes")
    return worker


def pool_processes(worker: CeleryProcess) -> list[int]:
    """The live pool processes of the worker (its main process's children): the ones that send."""
    pid = worker.popen.pid
    children: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    for thread in threads:
        try:
            children += [
                int(child) for child in Path(f"/proc/{pid}/task/{thread}/children").read_text().split()
            ]
        except FileNotFoundError:
            continue
    return [child for child in children if _alive(child)]


def _alive(pid: int) -> bool:
    """Running, not gone nor a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def stop_worker(worker: CeleryProcess) -> tuple[float, list[int]]:
    """Stop the worker warm (SIGTERM, then SIGKILL after 15 s: `CeleryProcess.stop`) and wait for its
    pool processes to go with it. Returns how long that took, and the pool processes still running
    15 s later, which are then SIGKILLed: one outliving its worker would keep its database connection
    open past the test."""
    pool = pool_processes(worker)
    started = time.monotonic()
    worker.stop()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pool) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in pool if _alive(pid) and _is_celery(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return time.monotonic() - started, left


def _is_celery(pid: int) -> bool:
    """Still a Celery process (not another that has since been given the same pid)."""
    try:
        return b"celery" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _sender_of(client_port: int, server_port: int, candidates: list[int]) -> int | None:
    """Which of `candidates` holds the TCP connection from `client_port` to the SMTP server: the
    socket's inode from /proc/net/tcp, then the process with that socket among its open files."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state != "01" or fields[9] == "0":  # established, and owned by a process
            continue
        if (
            int(local.rsplit(":", 1)[1], 16) == client_port
            and int(remote.rsplit(":", 1)[1], 16) == server_port
        ):
            inode = fields[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in candidates:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(f"/proc/{pid}/fd/{descriptor}") == target:
                    return pid
            except OSError:
                continue
    return None


@dataclass
class Kill:
    """One pool process killed: how the moment was chosen, and the message the server was taking."""

    aim: str
    pid: int
    message_id: str


# --- Helpers -----------------------------------------------------------------------------------------


def make_due(count: int, start: dt.datetime, *, step: int, offset: int, patient_copy: bool) -> list[FollowUp]:
    """`count` check-ins on one pathway, due `step` milliseconds apart from `start` + `offset` ms
    (so that two such sets interleave), their clinic sending patients a copy or not."""
    pathway = PathwayFactory()
    IntegrationSettings.objects.create(clinic=pathway.clinic, patient_emails_enabled=patient_copy)
    due = [start + dt.timedelta(milliseconds=offset + index * step) for index in range(count)]
    return FollowUp.objects.bulk_create(
        FollowUpFactory.build(pathway=pathway, sequence=index + 1, due_at=when, notify_at=when)
        for index, when in enumerate(due)
    )


def unsent() -> int:
    return FollowUp.objects.filter(notified_at__isnull=True).count()


def staff_id_of(message_id: str) -> str:
    return message_id.replace("-patient@", "-staff@")


def recorded_as_sent(message_id: str) -> bool:
    """Whether the follow-up a Message-ID belongs to is recorded as sent (committed)."""
    public_id = message_id.removeprefix("<follow-up-").rsplit("-", 1)[0]
    return FollowUp.objects.filter(public_id=public_id, notified_at__isnull=False).exists()


# --- The test ----------------------------------------------------------------------------------------


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_pool_processes_killed_mid_dispatch_lose_nothing_and_resend_at_most_one_follow_up_each(
    celery_cluster: CeleryCluster, smtp_server: KillWindowHandler
) -> None:
    require_postgres()
    server = smtp_server
    broker = redis.Redis.from_url(celery_cluster.broker)
    # Due oldest first: every fourth follow-up in the order they are sent has a patient's copy.
    start = timezone.now() - dt.timedelta(minutes=5)
    with_copy = make_due(WITH_PATIENT_COPY, start, step=4, offset=0, patient_copy=True)
    staff_only = [
        follow_up
        for offset in (1, 2, 3)
        for follow_up in make_due(STAFF_ONLY // 3, start, step=4, offset=offset, patient_copy=False)
    ]
    follow_ups = with_copy + staff_only
    assert len(follow_ups) == STAFF_ONLY + WITH_PATIENT_COPY
    expected_ids = {staff_message_id(f) for f in follow_ups} | {patient_message_id(f) for f in with_copy}
    worker = start_prefork_worker(celery_cluster, "killed")
    kills: list[Kill] = []

    def keep_dispatching(condition: Callable[[], bool]) -> Callable[[], bool]:
        """`condition`, with dispatch runs published whenever the queue is empty and work is left
        (a killed run is requeued, but a run that ended early, or hit its limit, is not)."""

        def check() -> bool:
            if broker.llen("celery") == 0 and unsent():
                for _ in range(RUNS_AT_A_TIME):
                    follow_ups_dispatch.delay()
            return condition()

        return check

    def counts() -> str:
        return f"{len(kills)} pool processes killed ({[k.aim for k in kills]}), {server.accepted()} accepted"

    def kill(pid: int, aim: str, message_id: str) -> None:
        assert pid in pool_processes(worker), f"{pid} is not a pool process of the worker"
        os.kill(pid, signal.SIGKILL)
        kills.append(Kill(aim, pid, message_id))

    def kill_the_holder(aim: str) -> None:
        """Hold the next message of `aim`'s kind, and kill the pool process that sent it."""
        server.hold_next(aim)
        celery_cluster.wait_for(
            keep_dispatching(lambda: server.held_message() is not None),
            f"a {aim} message to hold",
            STEP_SECONDS,
        )
        held = server.held_message()
        assert held is not None
        port, message_id = held
        pid = _sender_of(port, server.port, pool_processes(worker))
        assert pid is not None, f"no pool process holds the connection from port {port}: {counts()}"
        kill(pid, aim, message_id)
        # The server saw the connection go, and dropped the message unanswered and uncounted.
        celery_cluster.wait_for(
            lambda: port not in server.in_data_now(), "the held DATA to end", STEP_SECONDS
        )
        server.end_hold()

    def kill_whoever_is_sending() -> None:
        """Kill the pool process whose message the server is taking right now, unheld."""
        deadline = time.monotonic() + STEP_SECONDS
        while time.monotonic() < deadline:
            for port, message_id in server.in_data_now().items():
                pid = _sender_of(port, server.port, pool_processes(worker))
                if pid is not None:
                    kill(pid, "any", message_id)
                    return
            time.sleep(0.001)
        pytest.fail(f"no pool process was in the middle of a DATA for {STEP_SECONDS:.0f}s: {counts()}")

    began = time.monotonic()
    for aim in KILLS:
        target = server.accepted() + MESSAGES_BETWEEN_KILLS
        celery_cluster.wait_for(
            keep_dispatching(lambda target=target: server.accepted() >= target),
            f"{MESSAGES_BETWEEN_KILLS} more messages accepted ({counts()})",
            STEP_SECONDS,
        )
        if aim == "any":
            kill_whoever_is_sending()
        else:
            kill_the_holder(aim)
        # Mid-dispatch: follow-ups were left to send. The main process replaces the killed one
        # (its pool maintenance comes round every few seconds); the next kill does not wait for
        # that, since the other pool process goes on sending meanwhile, and may be the next killed.
        assert unsent() > 0, counts()
        killed = kills[-1]
        # The next kill waits until the follow-up this one interrupted is recorded as sent, so no
        # kill lands on another's resend, and each kill's outcome can be told apart below.
        celery_cluster.wait_for(
            keep_dispatching(lambda killed=killed: recorded_as_sent(killed.message_id)),
            f"the follow-up of {killed.message_id} to be recorded as sent",
            STEP_SECONDS,
        )
    at_last_kill = server.accepted()
    celery_cluster.wait_for(
        keep_dispatching(lambda: unsent() == 0), f"every follow-up to be sent ({counts()})", ALL_SENT_SECONDS
    )
    seconds = time.monotonic() - began
    celery_cluster.wait_for(lambda: len(pool_processes(worker)) == 2, "the pool back to two processes")
    main_alive = worker.popen.poll() is None  # only pool processes were killed
    # Warm: the runs still going find nothing left to send. The count at the server is final.
    stop_seconds, left_running = stop_worker(worker)

    delivered = Counter(server.delivered_ids())
    staff_ids = {staff_message_id(f): f for f in follow_ups}
    resent = sorted(message_id for message_id in staff_ids if delivered[message_id] > 1)
    extra_staff = sum(delivered[message_id] - 1 for message_id in staff_ids)
    extra_patient = sum(delivered[patient_message_id(f)] - 1 for f in with_copy)
    summary = (
        f"{len(kills)} pool processes killed ({', '.join(k.aim for k in kills)}), the last when "
        f"{at_last_kill} messages had been accepted; all sent in {seconds:.1f}s; "
        f"{len(follow_ups)} follow-ups, {sum(delivered.values())} messages accepted for "
        f"{len(expected_ids)}; {len(resent)} follow-ups sent again "
        f"({extra_staff} extra staff, {extra_patient} extra patient emails); "
        f"{len(celery_cluster.task_results())} dispatch runs finished; the worker stopped in "
        f"{stop_seconds:.1f}s, exit code {worker.popen.returncode}"
    )
    print(f"\n{summary}")

    assert len(kills) == len(KILLS) >= 3, summary
    assert main_alive, f"the worker's main process died: {summary}\n{worker.log()[-3000:]}"
    assert left_running == [], f"pool processes outlived their worker: {summary}"
    # Every follow-up recorded as sent, with one audit event each.
    assert unsent() == 0, summary
    sent_events = AuditEvent.objects.filter(action="follow_up.sent").values_list(
        "target_public_id", flat=True
    )
    assert Counter(sent_events) == {f.public_id: 1 for f in follow_ups}, summary
    assert not AuditEvent.objects.filter(action="follow_up.send_failed").exists(), summary
    # None lost: every staff email and every patient's copy reached the server; nothing else did.
    assert set(expected_ids) - set(delivered) == set(), summary
    assert set(delivered) - set(expected_ids) == set(), summary
    # At most one follow-up sent again per process killed, and at most one extra email of each kind.
    assert len(resent) <= len(kills), f"{summary}; sent again: {resent}"
    assert extra_staff <= len(kills), summary
    assert extra_patient <= len(kills), summary
    # The kills aimed at the window did hit it: a follow-up whose staff email the server had accepted
    # when its process died was sent again, once (its patient's copy, dropped unanswered, once); one
    # whose staff email was dropped unanswered was sent once, after.
    for each in kills:
        staff = staff_id_of(each.message_id)
        if each.aim == "patient":
            assert (delivered[staff], delivered[each.message_id]) == (2, 1), f"{each}: {summary}"
            assert staff in resent
        elif each.aim == "staff":
            assert delivered[staff] == 1, f"{each}: {summary}"
