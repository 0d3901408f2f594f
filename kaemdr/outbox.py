"""The transactional outbox: every task a page promises (a PDF to render, an invitation or a
password-reset email to send) is a row (`OutboxMessage`) written in the request's own transaction,
and handed to the broker only after that commits.

- `enqueue(task, *ids)`, called by a service inside its transaction, writes the row and publishes it
  on commit. A broker that is down (or does not answer within about a second) is logged and
  recorded on the row, never raised: the request answers as usual and the task waits.
- `sweep()`, run by the beat entry `outbox-sweep` every minute (and by `manage.py outbox_sweep`),
  publishes again every row not done by its `next_attempt_at`: at once after a failed publish,
  `KAEMDR_OUTBOX_GRACE_SECONDS` after a publish that did not lead to the task being done (a message
  lost with a flushed Redis, a worker killed), then twice as long after each try, up to an hour,
  and at most `KAEMDR_OUTBOX_MAX_ATTEMPTS` times.
- Tasks published from here use `OutboxTask` as their base: the row's id is the Celery task id, and
  the task's work and the row's `done_at` commit together, so however many times a message is
  delivered the work is done once (an email goes out at most once per row, unless the worker dies
  between the mail server's acceptance and the commit, the one window no outbox closes).

The rows decide what runs, not the messages: a message may be lost or delivered twice, a row is
neither.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import logging
import uuid
from typing import Any

from celery import Task
from django.conf import settings
from django.db import IntegrityError
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from .models import OutboxMessage

logger = logging.getLogger(__name__)

# What a broker that refuses or does not answer raises from `apply_async` (kombu wraps the
# transport's connection errors in OperationalError; a socket error may come through as itself).
PUBLISH_ERRORS = (OperationalError, OSError)
# Celery retries a refused publish: at most twice, 0.2 s apart, so a page waits well under a second.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
MAX_WAIT_BETWEEN_TRIES = dt.timedelta(hours=1)
KEEP_DONE = dt.timedelta(days=7)
SWEEP_LIMIT = 500
GAVE_UP = "gave_up"
KEY_MAX_LENGTH = 255


class Published(enum.Enum):
    SENT = "sent"  # the broker has the message
    SKIPPED = "skipped"  # done meanwhile, or claimed by another publisher
    FAILED = "failed"  # the broker refused or did not answer; the row waits for the next sweep


def _grace() -> dt.timedelta:
    return dt.timedelta(seconds=settings.KAEMDR_OUTBOX_GRACE_SECONDS)


def _wait_after(attempts: int) -> dt.timedelta:
    """How long after its `attempts`-th publish a row not done is published again."""
    return min(_grace() * 2 ** max(attempts - 1, 0), MAX_WAIT_BETWEEN_TRIES)


def _key(task_name: str, args: tuple[str, ...]) -> str:
    return f"{task_name}:{','.join(args)}"


def _task_name(task: Task | str) -> str:
    return task if isinstance(task, str) else str(task.name)


def registered_task(name: str) -> Task:
    """The Celery task registered under `name`; KeyError (celery's NotRegistered) when none is.

    Services enqueue by name (each app's `task_names`) and never import the tasks, which import
    them. So a process that has not imported the apps' `tasks` modules yet (a web process, a
    management command) imports them here, once, when it first publishes a name it does not know,
    as a worker does when it starts."""
    from .celery import app

    if name not in app.tasks:
        _import_task_modules()
    return app.tasks[name]


@functools.cache
def _import_task_modules() -> None:
    """Import every installed app's `tasks` module (Celery's autodiscovery, done now), once."""
    from .celery import app

    app.autodiscover_tasks(force=True)


def enqueue(
    task: Task | str,
    *args: str,
    coalesce: bool = True,
    republish_after: dt.timedelta | None = None,
) -> bool:
    """Record, in the caller's transaction, that `task(*args)` must run, and publish it once the
    transaction commits (at once outside one). `args` are ids, as strings.

    With `coalesce` (the default), a live (not yet done) row for the same task and arguments is used
    instead of a new one: it is published again when it never reached the broker, or when its last
    publish is older than `republish_after` (by default the sweeper's grace), and left alone
    otherwise, as it is on its way. Without, every call is a row (and a run) of its own. Returns
    whether a publish was scheduled."""
    if not all(isinstance(arg, str) for arg in args):
        raise TypeError("Outbox tasks take ids, as strings.")
    name = _task_name(task)
    key = _key(name, args) if coalesce else _key(name, (*args, f"#{uuid.uuid4()}"))
    if len(key) > KEY_MAX_LENGTH:
        raise ValueError(f"Outbox key too long: {key[:80]}...")
    now = timezone.now()
    live = (
        OutboxMessage.objects.filter(key=key, done_at__isnull=True).only("pk", "published_at").first()
        if coalesce
        else None
    )
    if live is None:
        try:
            with transaction.atomic():
                live = OutboxMessage.objects.create(
                    task=name, args=list(args), key=key, next_attempt_at=now + _grace()
                )
        except IntegrityError:  # another request wrote it meanwhile, and publishes it
            return False
    else:
        wait = _grace() if republish_after is None else republish_after
        if live.published_at is not None and live.published_at > now - wait:
            return False
    message_id = live.pk
    transaction.on_commit(lambda: publish(message_id))
    return True


def nudge(task: Task | str, *args: str) -> None:
    """Publish `task(*args)` once the transaction commits, without a row: for a task whose own rows
    are its outbox and that beat runs anyway (the follow-up dispatcher), so that a lost message
    costs only a wait. A broker error is logged, never raised."""
    name = _task_name(task)

    def send() -> None:
        try:
            registered_task(name).apply_async(args=list(args), retry_policy=PUBLISH_RETRY_POLICY)
        except PUBLISH_ERRORS as error:
            logger.warning(
                "outbox: the broker did not take %s (%s); beat runs it later", name, type(error).__name__
            )

    transaction.on_commit(send)


def publish(message_id: int) -> Published:
    """Hand one row's message to the broker; call it outside any transaction (it is an on-commit
    callback, or the sweeper's).

    The row is claimed first: its attempt counted and its next try set, provided nobody claimed it
    since it was read. No lock is held while the message is on its way, so the task can take the
    row's lock as soon as it arrives. A broker error puts the claim back and leaves the row due at
    the next sweep; it is logged, never raised."""
    message = (
        OutboxMessage.objects.filter(pk=message_id, done_at__isnull=True)
        .only("pk", "public_id", "task", "args", "attempts", "published_at")
        .first()
    )
    if message is None:
        return Published.SKIPPED
    now = timezone.now()
    attempts = message.attempts + 1
    claimed = OutboxMessage.objects.filter(
        pk=message.pk, done_at__isnull=True, attempts=message.attempts
    ).update(attempts=attempts, published_at=now, next_attempt_at=now + _wait_after(attempts), last_error="")
    if not claimed:
        return Published.SKIPPED
    if attempts >= settings.KAEMDR_OUTBOX_MAX_ATTEMPTS:
        logger.error("outbox: publishing %s for the last time (try %d)", message, attempts)
    try:
        registered_task(message.task).apply_async(
            args=message.args, task_id=str(message.public_id), retry_policy=PUBLISH_RETRY_POLICY
        )
    except PUBLISH_ERRORS as error:
        logger.warning(
            "outbox: the broker did not take %s (%s); the sweeper tries again", message, type(error).__name__
        )
        OutboxMessage.objects.filter(pk=message.pk, done_at__isnull=True, attempts=attempts).update(
            attempts=message.attempts,
            published_at=message.published_at,
            next_attempt_at=now,
            last_error=type(error).__name__[:64],
        )
        return Published.FAILED
    except KeyError:  # celery's NotRegistered: a task renamed or removed since the row was written
        logger.error("outbox: no task named %s; it is tried again later", message.task)
        OutboxMessage.objects.filter(pk=message.pk).update(last_error="NotRegistered")
        return Published.FAILED
    return Published.SENT


def sweep(*, limit: int = SWEEP_LIMIT, everything: bool = False) -> int:
    """Publish again each row not done whose next try has come, oldest first (up to `limit`),
    stopping at the first broker error (the next sweep tries again); give up on rows out of tries
    (logged once each, as an error); forget rows done more than a week ago. Returns how many were
    published. Safe to run any number of times, at once: a row is claimed before it is published.

    `everything` publishes every row not done at once, given up or not (after an outage, from
    `manage.py outbox_sweep --all`)."""
    now = timezone.now()
    max_attempts = settings.KAEMDR_OUTBOX_MAX_ATTEMPTS
    pending = OutboxMessage.objects.filter(done_at__isnull=True)
    due = pending.filter(next_attempt_at__lte=now)
    spent = due.filter(attempts__gte=max_attempts).exclude(last_error=GAVE_UP)
    for message in spent.only("pk", "task", "args", "attempts"):
        logger.error("outbox: %s was published %d times and never done; giving up", message, message.attempts)
    spent.update(last_error=GAVE_UP)
    to_publish = pending if everything else due.filter(attempts__lt=max_attempts)
    published = 0
    for message_id in to_publish.order_by("next_attempt_at").values_list("pk", flat=True)[:limit]:
        outcome = publish(message_id)
        if outcome is Published.FAILED:
            break
        published += outcome is Published.SENT
    OutboxMessage.objects.filter(done_at__lt=now - KEEP_DONE).delete()
    return published


class OutboxTask(Task):
    """The base of a task published from the outbox.

    Run for a row (its task id is the row's public id), the task locks the row, does nothing when
    the row is done or another run holds it, and otherwise runs and marks the row done in the same
    transaction: a failure (or a retry) rolls both back, and the row stays due. Run any other way
    (called directly, or published without a row), it simply runs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        message_id = self.request.id
        if self.request.called_directly or not _is_uuid(message_id):
            return super().__call__(*args, **kwargs)
        with transaction.atomic():
            row = (
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(public_id=message_id)
                .values_list("pk", "done_at")
                .first()
            )
            if row is not None:
                pk, done_at = row
                if done_at is not None:
                    logger.info("outbox: %s[%s] is done already", self.name, message_id)
                    return None
                result = super().__call__(*args, **kwargs)
                OutboxMessage.objects.filter(pk=pk).update(done_at=timezone.now(), last_error="")
                return result
        if OutboxMessage.objects.filter(public_id=message_id).exists():
            logger.info("outbox: %s[%s] is running elsewhere", self.name, message_id)
            return None
        return super().__call__(*args, **kwargs)


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
