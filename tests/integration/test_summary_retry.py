"""A PDF summary asked for while the broker is down: the page and the API answer as usual and the
render waits in the outbox; asking again queues it when it never reached the broker; a summary
pending past the wait offers "Try again" (page, its status poll and the API), which queues it again
once, audited; the roles that may not see the record get 404 and change nothing. The real worker
renders such a summary in `tests/faults/test_broker_outage.py`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integration.models import Summary
from integration.models import SummaryStatus
from integration.tasks import summary_render_task
from kaemdr import outbox
from kaemdr.models import AuditEvent
from kaemdr.models import OutboxMessage
from kaemdr.models import Role
from kaemdr.models import User
from sessions.models import DosingSession

from ..broker import broker
from ..broker import down_broker_url
from ..broker import record_publishes
from ..factories import UserFactory

pytestmark = pytest.mark.django_db

HIDDEN_ACTION = "<div data-summary-action hidden>"
SHOWN_ACTION = "<div data-summary-action>"


@pytest.fixture(autouse=True)
def private_dir(settings: Any, tmp_path: Path) -> Path:
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    return tmp_path / "private"


@pytest.fixture
def signed_session(dosing_pathway: Any, complete_session: Callable[..., DosingSession]) -> DosingSession:
    return complete_session(dosing_pathway)


def ask(client: Client, session: DosingSession) -> Any:
    return client.post(
        reverse("summary_request"), {"kind": "dosing_session", "record": str(session.public_id)}
    )


def requested_events(summary: Summary) -> list[dict[str, Any]]:
    return list(
        AuditEvent.objects.filter(action="summary.requested", target_public_id=summary.public_id)
        .order_by("id")
        .values_list("data", flat=True)
    )


def past_the_wait(summary: Summary) -> None:
    Summary.objects.filter(pk=summary.pk).update(updated_at=timezone.now() - dt.timedelta(seconds=61))


def test_a_summary_asked_for_while_the_broker_is_down_answers_and_waits_in_the_outbox(
    staff: dict[str, User],
    signed_session: DosingSession,
    client_for: Callable[[User | None], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    nurse = client_for(staff[Role.MONITOR])
    nurse.raise_request_exception = False

    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True):
        asked = ask(nurse, signed_session)
        by_api = nurse.post(
            "/api/v1/summaries/",
            {"kind": "dosing_session", "record": str(signed_session.public_id)},
            content_type="application/json",
        )

    assert asked.status_code == 302
    summary = Summary.objects.get(record_public_id=signed_session.public_id)
    assert asked["Location"] == reverse("summary_detail", args=[summary.public_id])
    assert by_api.status_code == 202
    assert by_api.json()["status"] == "pending"
    assert by_api.json()["retry_offered"] is False
    page = nurse.get(asked["Location"]).content.decode()
    assert "The summary is being made" in page
    assert HIDDEN_ACTION in page  # no "Try again" before the wait
    message = OutboxMessage.objects.get(task=summary_render_task.name)
    assert message.args == [str(summary.public_id)]
    assert (message.published_at, message.done_at, message.last_error) == (None, None, "OperationalError")
    assert summary.status == SummaryStatus.PENDING


def test_asking_again_queues_a_summary_that_never_reached_the_broker_once(
    staff: dict[str, User],
    signed_session: DosingSession,
    client_for: Callable[[User | None], Client],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    nurse = client_for(staff[Role.MONITOR])
    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True):
        ask(nurse, signed_session)
    summary = Summary.objects.get(record_public_id=signed_session.public_id)
    published = record_publishes(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        assert ask(nurse, signed_session).status_code == 302  # the broker is back
    with django_capture_on_commit_callbacks(execute=True):
        assert ask(nurse, signed_session).status_code == 302  # and now it is on its way

    assert published.messages == [
        (summary_render_task.name, [str(summary.public_id)], str(OutboxMessage.objects.get().public_id))
    ]
    assert requested_events(summary) == [
        {"kind": "dosing_session", "record": str(signed_session.public_id), "retry": False},
        {"kind": "dosing_session", "record": str(signed_session.public_id), "retry": True, "requeued": True},
    ]


def test_a_summary_pending_past_the_wait_offers_try_again_which_queues_it_again(
    staff: dict[str, User],
    signed_session: DosingSession,
    client_for: Callable[[User | None], Client],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    published = record_publishes(monkeypatch)  # the broker takes it, and no worker ever runs it
    nurse = client_for(staff[Role.MONITOR])
    with django_capture_on_commit_callbacks(execute=True):
        ask(nurse, signed_session)
    summary = Summary.objects.get(record_public_id=signed_session.public_id)
    detail = reverse("summary_detail", args=[summary.public_id])
    status = reverse("summary_status", args=[summary.public_id])
    assert nurse.get(status).json()["retry_offered"] is False

    past_the_wait(summary)

    page = nurse.get(detail).content.decode()
    assert SHOWN_ACTION in page
    assert "taking longer than it should" in page
    assert ">Try again</button>" in page
    assert nurse.get(status).json()["retry_offered"] is True
    assert nurse.get(f"/api/v1/summaries/{summary.public_id}/").json()["retry_offered"] is True

    with django_capture_on_commit_callbacks(execute=True):  # the page's "Try again" form
        again = ask(nurse, signed_session)
    with django_capture_on_commit_callbacks(execute=True):  # a second click: on its way again
        ask(nurse, signed_session)

    assert again["Location"] == detail
    assert len(published.messages) == 2
    assert published.messages[0] == published.messages[1]  # the same row, the same task id
    assert [event["retry"] for event in requested_events(summary)] == [False, True]
    assert HIDDEN_ACTION in nurse.get(detail).content.decode()  # the wait starts again
    assert Summary.objects.get(pk=summary.pk).status == SummaryStatus.PENDING

    past_the_wait(summary)
    with django_capture_on_commit_callbacks(execute=True):  # "Try again" through the API
        by_api = nurse.post(
            "/api/v1/summaries/",
            {"kind": "dosing_session", "record": str(signed_session.public_id)},
            content_type="application/json",
        )
    assert by_api.status_code == 202
    assert by_api.json()["retry_offered"] is False
    assert len(published.messages) == 3


def test_the_sweeper_has_a_summary_asked_for_while_the_broker_was_down_rendered_once(
    staff: dict[str, User],
    signed_session: DosingSession,
    client_for: Callable[[User | None], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True):
        ask(client_for(staff[Role.MONITOR]), signed_session)
    summary = Summary.objects.get(record_public_id=signed_session.public_id)

    assert outbox.sweep() == 1  # the tasks run eagerly here: the sweep renders it

    summary.refresh_from_db()
    assert summary.status == SummaryStatus.READY
    assert OutboxMessage.objects.get().done_at is not None
    assert outbox.sweep() == 0
    assert AuditEvent.objects.filter(action="summary.ready", target_public_id=summary.public_id).count() == 1


def test_roles_refused_the_record_get_404_and_queue_nothing(
    staff: dict[str, User],
    signed_session: DosingSession,
    other_clinic: Any,
    client_for: Callable[[User | None], Client],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with broker(down_broker_url()), django_capture_on_commit_callbacks(execute=True):
        ask(client_for(staff[Role.MONITOR]), signed_session)
    summary = Summary.objects.get(record_public_id=signed_session.public_id)
    past_the_wait(summary)
    published = record_publishes(monkeypatch)
    events = AuditEvent.objects.filter(action__startswith="summary.").count()

    for user in (staff[Role.CLINIC_ADMIN], UserFactory(clinic=other_clinic, role=Role.PRESCRIBER)):
        client = client_for(user)
        with django_capture_on_commit_callbacks(execute=True):
            assert ask(client, signed_session).status_code == 404, user.role
            api = client.post(
                "/api/v1/summaries/",
                {"kind": "dosing_session", "record": str(signed_session.public_id)},
                content_type="application/json",
            )
            assert api.status_code == 404, user.role
        assert client.get(reverse("summary_detail", args=[summary.public_id])).status_code == 404
        assert client.get(reverse("summary_status", args=[summary.public_id])).status_code == 404

    assert published.messages == []
    assert AuditEvent.objects.filter(action__startswith="summary.").count() == events
    assert OutboxMessage.objects.get().published_at is None
