"""The transactional outbox (`kaemdr.outbox`): a promised task is a row written in the request's
transaction and published once it commits; a broker that is down is recorded on the row, never
raised; the sweeper publishes again what is past its time, further apart each try, and gives up
after the last; a message delivered twice runs once.

Publishing is either real (a broker on a closed port, which refuses) or recorded (`record_publishes`:
the broker takes every message and no task runs); the tasks themselves run eagerly, as in the rest
of the unit tests. `tests/faults/test_broker_outage.py` does the same with a real worker on Redis."""

from __future__ import annotations

import datetime as dt
import io
import logging
import smtplib
import threading
import uuid
from typing import Any

import pytest
from celery.exceptions import Retry
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.db import transaction
from django.utils import timezone

from kaemdr import celery_app
from kaemdr import outbox
from kaemdr.accounts import password_reset_request
from kaemdr.models import OutboxMessage
from kaemdr.models import User
from kaemdr.tasks import outbox_sweep_task
from kaemdr.tasks import password_reset_send_task
from kaemdr.tasks import staff_invitation_send_task

from ..broker import broker
from ..broker import down_broker_url
from ..broker import record_publishes
from ..conftest import require_postgres

pytestmark = pytest.mark.django_db

INVITE = "kaemdr.tasks.staff_invitation_send_task"


def row(key_arg: str) -> OutboxMessage:
    return OutboxMessage.objects.get(args=[key_arg])


def due_now(*messages: OutboxMessage) -> None:
    OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(next_attempt_at=timezone.now())


def test_a_task_is_a_row_written_with_the_request_and_published_once_it_commits(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    published = record_publishes(monkeypatch)
    user_id = str(uuid.uuid4())

    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        assert outbox.enqueue(staff_invitation_send_task, user_id) is True
        message = row(user_id)
        assert (message.task, message.published_at, message.attempts) == (INVITE, None, 0)
    assert published.messages == []  # nothing leaves before the commit

    for callback in callbacks:
        callback()
    assert published.messages == [(INVITE, [user_id], str(message.public_id))]
    message.refresh_from_db()
    assert message.attempts == 1
    assert message.published_at is not None
    assert message.done_at is None
    grace = dt.timedelta(seconds=settings.KAEMDR_OUTBOX_GRACE_SECONDS)
    assert message.next_attempt_at == message.published_at + grace


def test_a_rolled_back_request_leaves_no_row_and_publishes_nothing(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    published = record_publishes(monkeypatch)

    def failing_request() -> None:
        with transaction.atomic():
            outbox.enqueue(staff_invitation_send_task, str(uuid.uuid4()))
            raise RuntimeError("the request fails after asking")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        failing_request()

    assert not OutboxMessage.objects.exists()
    assert published.messages == []


def test_a_broker_that_is_down_is_recorded_on_the_row_and_never_raised(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kaemdr.outbox")
    user_id = str(uuid.uuid4())

    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True):
        assert outbox.enqueue(staff_invitation_send_task, user_id) is True

    message = row(user_id)
    assert (message.attempts, message.published_at, message.done_at) == (0, None, None)
    assert message.last_error == "OperationalError"
    assert message.next_attempt_at <= timezone.now()  # due at the very next sweep
    assert any("the broker did not take" in record.getMessage() for record in caplog.records)


def test_asking_again_for_a_live_task_publishes_it_only_when_it_never_reached_the_broker(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    user_id = str(uuid.uuid4())
    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue(staff_invitation_send_task, user_id)
    published = record_publishes(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.enqueue(staff_invitation_send_task, user_id) is True  # never published
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.enqueue(staff_invitation_send_task, user_id) is False  # on its way
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.enqueue(staff_invitation_send_task, user_id, republish_after=dt.timedelta(0)) is True

    assert OutboxMessage.objects.count() == 1
    assert published.names() == [INVITE, INVITE]
    assert row(user_id).attempts == 2


def test_without_coalescing_every_call_is_a_row_of_its_own(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    published = record_publishes(monkeypatch)
    user_id = str(uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue(password_reset_send_task, user_id, coalesce=False)
        outbox.enqueue(password_reset_send_task, user_id, coalesce=False)
    assert OutboxMessage.objects.filter(args=[user_id]).count() == 2
    assert len({task_id for _, _, task_id in published.messages}) == 2


def test_outbox_arguments_are_ids_as_strings() -> None:
    with pytest.raises(TypeError):
        outbox.enqueue(staff_invitation_send_task, uuid.uuid4())


def test_the_sweeper_publishes_what_is_due_oldest_first_and_stops_at_a_broker_error(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    now = timezone.now()
    ids = [str(uuid.uuid4()) for _ in range(4)]
    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True):
        for user_id in ids:
            outbox.enqueue(staff_invitation_send_task, user_id)
    never, lost, on_its_way, done = (row(user_id) for user_id in ids)
    OutboxMessage.objects.filter(pk=never.pk).update(next_attempt_at=now - dt.timedelta(seconds=30))
    OutboxMessage.objects.filter(pk=lost.pk).update(
        attempts=1, published_at=now - dt.timedelta(minutes=5), next_attempt_at=now - dt.timedelta(minutes=3)
    )
    OutboxMessage.objects.filter(pk=on_its_way.pk).update(
        attempts=1, published_at=now, next_attempt_at=now + dt.timedelta(minutes=2)
    )
    OutboxMessage.objects.filter(pk=done.pk).update(done_at=now)

    with broker(down_broker_url()):
        assert outbox.sweep() == 0  # the first refusal ends the sweep
    lost.refresh_from_db()
    assert (lost.attempts, lost.last_error) == (1, "OperationalError")  # the oldest was tried
    assert row(ids[0]).last_error == "OperationalError"  # and the next one, untouched, still waits

    published = record_publishes(monkeypatch)
    assert outbox.sweep() == 2
    # the one refused a moment ago is due now, after the one due half a minute ago
    assert [args for _, args, _ in published.messages] == [[ids[0]], [ids[1]]]
    assert outbox.sweep() == 0  # nothing is due again before its wait is over
    assert len(published.messages) == 2


def test_the_sweeper_waits_twice_as_long_after_each_try_and_gives_up_after_the_last(
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    caplog.set_level(logging.ERROR, logger="kaemdr.outbox")
    settings.KAEMDR_OUTBOX_GRACE_SECONDS = 120
    settings.KAEMDR_OUTBOX_MAX_ATTEMPTS = 7
    published = record_publishes(monkeypatch)
    user_id = str(uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue(staff_invitation_send_task, user_id)
    waits = []
    for _ in range(6):
        message = row(user_id)
        waits.append((message.next_attempt_at - message.published_at).total_seconds())
        due_now(message)
        assert outbox.sweep() == 1
    message = row(user_id)
    waits.append((message.next_attempt_at - message.published_at).total_seconds())
    assert waits == [120, 240, 480, 960, 1920, 3600, 3600]
    assert message.attempts == 7

    due_now(message)
    assert outbox.sweep() == 0
    assert outbox.sweep() == 0
    assert row(user_id).last_error == outbox.GAVE_UP
    gave_up = [r for r in caplog.records if "giving up" in r.getMessage()]
    assert len(gave_up) == 1  # logged once, as an error
    assert len(published.messages) == 7

    call_command("outbox_sweep", "--all", stdout=io.StringIO())
    assert len(published.messages) == 8  # an operator publishes it again
    assert row(user_id).last_error == ""


def test_the_sweeper_forgets_rows_done_a_week_ago(monkeypatch: pytest.MonkeyPatch) -> None:
    record_publishes(monkeypatch)  # the rows are written outside a request: nothing publishes them
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    outbox.enqueue(staff_invitation_send_task, old)
    outbox.enqueue(staff_invitation_send_task, recent)
    OutboxMessage.objects.filter(args=[old]).update(done_at=timezone.now() - dt.timedelta(days=8))
    OutboxMessage.objects.filter(args=[recent]).update(done_at=timezone.now() - dt.timedelta(days=6))
    outbox.sweep()
    assert list(OutboxMessage.objects.values_list("args", flat=True)) == [[recent]]


def test_a_message_delivered_twice_sends_its_email_once(
    therapist: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        password_reset_request(email=therapist.email)
    assert len(mail.outbox) == 1
    message = OutboxMessage.objects.get(task=password_reset_send_task.name)
    assert message.done_at is not None

    again = password_reset_send_task.apply(args=[str(therapist.public_id)], task_id=str(message.public_id))

    assert again.result is None
    assert len(mail.outbox) == 1


def test_a_failed_send_leaves_the_row_due_and_the_next_delivery_sends_it(
    therapist: User, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True):
        password_reset_request(email=therapist.email)
    message = OutboxMessage.objects.get(task=password_reset_send_task.name)

    def refused(*args: Any, **kwargs: Any) -> None:
        raise smtplib.SMTPServerDisconnected("the mail server went away")

    monkeypatch.setattr("kaemdr.accounts.send_mail", refused)
    with pytest.raises((Retry, smtplib.SMTPServerDisconnected)):  # eager: its retries run at once
        password_reset_send_task.apply(args=[str(therapist.public_id)], task_id=str(message.public_id))
    message.refresh_from_db()
    assert message.done_at is None
    assert mail.outbox == []

    monkeypatch.undo()
    assert (
        password_reset_send_task.apply(args=[str(therapist.public_id)], task_id=str(message.public_id)).result
        is True
    )
    message.refresh_from_db()
    assert message.done_at is not None
    assert len(mail.outbox) == 1


def test_a_task_called_without_a_row_simply_runs(therapist: User) -> None:
    assert password_reset_send_task.apply(args=[str(therapist.public_id)]).result is True
    assert password_reset_send_task(str(therapist.public_id)) is True
    assert len(mail.outbox) == 2


def test_beat_runs_the_sweeper_every_minute() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["outbox-sweep"]
    assert entry["task"] == outbox_sweep_task.name
    assert entry["schedule"] == 60.0
    assert entry["task"] in celery_app.tasks


@pytest.mark.django_db(transaction=True)
def test_a_message_delivered_while_another_run_holds_its_row_does_nothing(
    therapist: User, caplog: pytest.LogCaptureFixture
) -> None:
    require_postgres()  # SQLite has no row locks: its IMMEDIATE transactions queue instead
    caplog.set_level(logging.INFO, logger="kaemdr.outbox")
    with broker(down_broker_url()):
        password_reset_request(email=therapist.email)
    message = OutboxMessage.objects.get(task=password_reset_send_task.name)
    holding, release = threading.Event(), threading.Event()

    def another_run() -> None:
        try:
            with transaction.atomic():
                OutboxMessage.objects.select_for_update().get(pk=message.pk)
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=another_run)
    thread.start()
    try:
        assert holding.wait(timeout=30)
        skipped = password_reset_send_task.apply(
            args=[str(therapist.public_id)], task_id=str(message.public_id)
        )
    finally:
        release.set()
        thread.join(timeout=30)

    assert skipped.result is None
    assert mail.outbox == []
    assert any("is running elsewhere" in record.getMessage() for record in caplog.records)
    sent = password_reset_send_task.apply(args=[str(therapist.public_id)], task_id=str(message.public_id))
    assert sent.result is True
    assert len(mail.outbox) == 1


def test_a_nudge_to_a_broker_that_is_down_is_logged_and_never_raised(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kaemdr.outbox")
    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True):
        outbox.nudge(outbox_sweep_task)
    assert any("beat runs it later" in record.getMessage() for record in caplog.records)
    assert not OutboxMessage.objects.exists()

    published = record_publishes(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        outbox.nudge(outbox_sweep_task)
    assert published.names() == [outbox_sweep_task.name]


def test_a_nudge_to_the_follow_up_dispatcher_with_the_broker_down_is_logged_and_never_raised(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Signing a record or booking a visit nudges the dispatcher on commit (`integration.services.
    _dispatch_soon`); its follow-up rows are their own outbox, so a broker that is down costs only the
    wait for beat, never the request."""
    from integration.tasks import follow_ups_dispatch

    caplog.set_level(logging.WARNING, logger="kaemdr.outbox")
    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True) as callbacks:
        outbox.nudge(follow_ups_dispatch)

    assert len(callbacks) == 1
    assert not OutboxMessage.objects.exists()  # no row: beat runs the dispatcher anyway
    assert any("beat runs it later" in record.getMessage() for record in caplog.records)


def test_each_task_is_registered_under_the_name_services_enqueue_it_by() -> None:
    """Services enqueue by name (`task_names`) and never import the tasks; the names are stored in
    outbox rows and beat schedules, so they are the tasks' registered names and never change."""
    from integration import task_names as integration_task_names
    from integration.tasks import follow_ups_dispatch
    from integration.tasks import summary_render_task
    from kaemdr import task_names

    assert {
        task_names.STAFF_INVITATION_SEND: staff_invitation_send_task,
        task_names.PASSWORD_RESET_SEND: password_reset_send_task,
        task_names.OUTBOX_SWEEP: outbox_sweep_task,
        integration_task_names.FOLLOW_UPS_DISPATCH: follow_ups_dispatch,
        integration_task_names.SUMMARY_RENDER: summary_render_task,
    } == {
        "kaemdr.tasks.staff_invitation_send_task": celery_app.tasks[task_names.STAFF_INVITATION_SEND],
        "kaemdr.tasks.password_reset_send_task": celery_app.tasks[task_names.PASSWORD_RESET_SEND],
        "kaemdr.tasks.outbox_sweep_task": celery_app.tasks[task_names.OUTBOX_SWEEP],
        "integration.tasks.follow_ups_dispatch": celery_app.tasks[integration_task_names.FOLLOW_UPS_DISPATCH],
        "integration.tasks.summary_render_task": celery_app.tasks[integration_task_names.SUMMARY_RENDER],
    }
    assert all(entry["task"] in celery_app.tasks for entry in settings.CELERY_BEAT_SCHEDULE.values())


def test_a_process_that_never_imported_the_tasks_finds_them_by_name() -> None:
    """A web process or a management command publishes a task by its name before anything imported
    its module: the outbox imports the apps' task modules then, as a worker does when it starts."""
    import os
    import subprocess  # nosec B404  # the test's own interpreter, with fixed arguments
    import sys
    from pathlib import Path

    script = (
        "import sys, django; django.setup(); from kaemdr import outbox; "
        "assert 'kaemdr.tasks' not in sys.modules and 'integration.tasks' not in sys.modules; "
        "print(outbox.registered_task(sys.argv[1]).name, outbox.registered_task(sys.argv[2]).name)"
    )
    names = ["kaemdr.tasks.password_reset_send_task", "integration.tasks.summary_render_task"]
    done = subprocess.run(  # nosec B603
        [sys.executable, "-c", script, *names],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == names
    with pytest.raises(KeyError):
        outbox.registered_task("kaemdr.tasks.no_such_task")
