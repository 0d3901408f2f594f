"""Background work for follow-ups. The beat entry `follow-ups-dispatch` (settings) runs
`follow_ups_dispatch` every minute; services also enqueue it on commit when something is due at once.
Both are safe to run any number of times, at once: the rows decide what is sent, not the messages.

Imports run one way: tasks import services, and services enqueue a task by its name
(`integration.task_names`), under which each task here is registered."""

from __future__ import annotations

from celery import shared_task

from kaemdr.outbox import OutboxTask
from kaemdr.request_context import set_request_id

from . import task_names
from .services import follow_ups_dispatch_due
from .summary_services import summary_render


@shared_task(name=task_names.FOLLOW_UPS_DISPATCH, ignore_result=True)
def follow_ups_dispatch(limit: int = 1000) -> int:
    """Send every follow-up that is due (up to `limit` a run); returns how many were sent."""
    set_request_id(None)
    return follow_ups_dispatch_due(limit=limit)


@shared_task(name=task_names.SUMMARY_RENDER, base=OutboxTask, ignore_result=True, acks_late=True)
def summary_render_task(summary_public_id: str) -> bool:
    """Render a queued PDF summary; safe to run twice (the second run finds it done). Published from
    the outbox (`kaemdr.outbox`), so a broker that was down when it was asked for delays it only."""
    set_request_id(None)
    summary = summary_render(summary_public_id=summary_public_id)
    return summary is not None and summary.status == "ready"
