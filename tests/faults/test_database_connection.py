"""PostgreSQL closes a web process's persistent connection between two requests (a restart, a
terminated backend, an idle timeout), and the next request still answers: it connects afresh,
found out by the connection's socket (`kaemdr.signals.drop_closed_connections`), with no health
check's `SELECT 1` before the first query of every request (`CONN_HEALTH_CHECKS` is off).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg2
import pytest
from django.core.signals import request_started
from django.db import Error as DatabaseError
from django.db import connection
from django.test import Client
from django.urls import reverse

from kaemdr import signals
from kaemdr.models import User

from ..conftest import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)


def _backend_pid() -> int:
    assert connection.connection is not None
    return int(connection.connection.info.backend_pid)


def _terminate(pid: int) -> None:
    """End that backend from another connection, and wait until its client has been told."""
    with psycopg2.connect(**connection.get_connection_params()) as other, other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    other.close()
    deadline = time.monotonic() + 5
    while not signals._server_spoke(connection.connection):
        assert time.monotonic() < deadline, "the server never closed the connection"
        time.sleep(0.01)


@pytest.fixture
def is_usable_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each health check (`SELECT 1`) of the default connection, and what it found."""
    calls: list[bool] = []
    checked = connection.is_usable

    def spy() -> bool:
        calls.append(checked())
        return calls[-1]

    monkeypatch.setattr(connection, "is_usable", spy)
    return calls


def test_a_request_on_a_live_connection_runs_no_health_check(
    monitor: User, client_for: Callable[[User], Client], is_usable_calls: list[bool]
) -> None:
    require_postgres()
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is False
    client = client_for(monitor)
    assert client.get(reverse("dashboard")).status_code == 200
    pid = _backend_pid()
    for _ in range(3):
        assert client.get(reverse("dashboard")).status_code == 200
    assert _backend_pid() == pid
    assert is_usable_calls == []


def test_the_request_after_the_server_closed_the_connection_reconnects_and_answers(
    monitor: User, client_for: Callable[[User], Client], is_usable_calls: list[bool]
) -> None:
    require_postgres()
    client = client_for(monitor)
    assert client.get(reverse("dashboard")).status_code == 200
    pid = _backend_pid()

    _terminate(pid)

    assert client.get(reverse("dashboard")).status_code == 200
    assert _backend_pid() != pid
    assert is_usable_calls == [False]  # checked once, found closed, replaced


def test_without_the_socket_check_that_request_would_fail(
    monitor: User, client_for: Callable[[User], Client]
) -> None:
    """What the check is for: with neither it nor Django's health check, the first request after
    the server closed the connection fails."""
    require_postgres()
    client = client_for(monitor)
    assert client.get(reverse("dashboard")).status_code == 200
    _terminate(_backend_pid())
    request_started.disconnect(dispatch_uid="kaemdr.drop_closed_connections")
    try:
        with pytest.raises(DatabaseError):
            client.get(reverse("dashboard"))
    finally:
        request_started.connect(
            signals.drop_closed_connections, dispatch_uid="kaemdr.drop_closed_connections"
        )
        connection.close()
