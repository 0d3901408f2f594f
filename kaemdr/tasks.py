"""Background work for staff accounts. Tasks take ids, re-fetch, and call a service."""

from __future__ import annotations

import smtplib

from celery import shared_task

from .models import User
from .request_context import set_request_id
from .services import staff_invitation_send


@shared_task(
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
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=3,
)
def password_reset_send_task(user_public_id: str) -> bool:
    """Email a requested password-reset link (a retry after a failed send sends it again)."""
    from .accounts import password_reset_send

    set_request_id(None)
    user = User.objects.select_related("clinic").filter(public_id=user_public_id).first()
    if user is None:
        return False
    return password_reset_send(user=user)
