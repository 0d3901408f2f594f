"""Background work for staff accounts, and the outbox's sweeper. Tasks take ids, re-fetch, and call a
service; the emails are published from the outbox (`kaemdr.outbox`), so each row's is sent once.

Imports run one way: tasks import services, and services enqueue a task by its name
(`kaemdr.task_names`), under which each task here is registered."""

from __future__ import annotations

import smtplib

from celery import shared_task

from . import outbox
from . import task_names
from .accounts import password_reset_send
from .models import User
from .request_context import set_request_id
from .services import staff_invitation_send


@shared_task(
    name=task_names.STAFF_INVITATION_SEND,
    base=outbox.OutboxTask,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def staff_invitation_send_task(user_public_id: str) -> bool:
    """Send a new member of staff their invitation; safe to run twice (the service sends once)."""
    set_request_id(None)
    user = User.objects.filter(public_id=user_public_id).first()
    if user is None:
        return False
    return staff_invitation_send(user=user)


@shared_task(
    name=task_names.PASSWORD_RESET_SEND,
    base=outbox.OutboxTask,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=3,
)
def password_reset_send_task(user_public_id: str) -> bool:
    """Email a requested password-reset link: once per request's outbox row (a failed send rolls
    back and is tried again; a second delivery of the same message finds the row done)."""
    set_request_id(None)
    user = User.objects.select_related("clinic").filter(public_id=user_public_id).first()
    if user is None:
        return False
    return password_reset_send(user=user)


@shared_task(name=task_names.OUTBOX_SWEEP, ignore_result=True)
def outbox_sweep_task() -> int:
    """The beat entry `outbox-sweep`: publish again what the outbox holds past its time (see
    `kaemdr.outbox.sweep`); returns how many were published."""
    set_request_id(None)
    return outbox.sweep()
