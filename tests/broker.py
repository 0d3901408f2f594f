"""Pointing the test process's Celery app at another broker: a closed port (the broker is down), or a
real Redis database (a worker consumes it). Tasks are then published, not run in the test."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from kombu import pools as kombu_pools

from kaemdr import celery_app


def database_url(database: dict[str, Any]) -> str:
    """The test database (already created by pytest-django) as a URL for a worker process."""
    user = database["USER"] or "postgres"
    password = f":{database['PASSWORD']}" if database["PASSWORD"] else ""
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{database['NAME']}"


def solo_worker_command() -> list[str]:
    """`celery worker` with the solo pool, logging each task, without the cluster chatter a single
    test worker has no use for."""
    return [
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
    ]


def closed_port() -> int:
    """A local port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def down_broker_url() -> str:
    return f"redis://127.0.0.1:{closed_port()}/0"


def _drop_broker_connections() -> None:
    """Forget the connection and producer pools made for the previous broker URL (kombu keeps its own
    pools per URL, closed ones included)."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    kombu_pools.reset()


def use_broker(url: str) -> None:
    """Publish to `url` from now on, and stop running tasks eagerly."""
    celery_app.conf.update(broker_url=url, task_always_eager=False, broker_transport_options={})
    _drop_broker_connections()


@contextmanager
def broker(url: str) -> Iterator[None]:
    """Within the block, tasks are published to `url` (see `use_broker`); the test settings' eager
    in-process broker comes back after it."""
    keys = ("broker_url", "task_always_eager", "broker_transport_options")
    previous = {key: celery_app.conf[key] for key in keys}
    use_broker(url)
    try:
        yield
    finally:
        celery_app.conf.update(**previous)
        _drop_broker_connections()


@dataclass
class Published:
    """What was handed to the broker: (task name, args, task id), in order."""

    messages: list[tuple[str, list[str], str]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.messages]


def record_publishes(monkeypatch: Any) -> Published:
    """Replace publishing with a record of it: the broker takes every message, and no task runs."""
    from celery.app.task import Task

    published = Published()

    def apply_async(
        self: Any, args: Any = None, kwargs: Any = None, task_id: Any = None, **options: Any
    ) -> None:
        published.messages.append((self.name, list(args or []), str(task_id)))

    monkeypatch.setattr(Task, "apply_async", apply_async)
    return published
