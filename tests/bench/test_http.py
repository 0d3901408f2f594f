"""A small run of the benchmark's HTTP side (`bench.http`): gunicorn with the production
settings on this test database, wrk on a few pages for a second each. Timings are reported, never
asserted; what is asserted is what is not a timing: each page answered 2xx to every request with
the session made without the sign-in form, a page that redirects is reported as failed rather than
measured, every figure is there, the worker's memory is read, and no server is left running.

gunicorn is another process: it sees only committed rows, hence a transactional test, and it is
pointed at the test database by `run_http` itself (from `django.db.connection.settings_dict`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from bench import http as bench_http
from bench.http import PageSpec
from kaemdr.models import Role
from kaemdr.models import User
from sessions.models import DosingSession
from tests.conftest import require_postgres


@pytest.mark.django_db(transaction=True)
def test_a_small_http_run_measures_every_page_and_stops_the_server(
    staff: dict[str, User], dosing_pathway: Any, complete_session: Callable[..., DosingSession]
) -> None:
    require_postgres()
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    prescriber, monitor = staff[Role.PRESCRIBER], staff[Role.MONITOR]
    session = complete_session(dosing_pathway)
    pages = [
        PageSpec("dashboard, prescriber", reverse("dashboard"), prescriber),
        PageSpec("pathway page", reverse("pathway_detail", args=[dosing_pathway.public_id]), prescriber),
        PageSpec("dosing session record", reverse("session_detail", args=[session.public_id]), monitor),
        PageSpec("dashboard, signed out", reverse("dashboard"), None),
    ]

    results = bench_http.run_http(pages, duration_s=1, connections=2, min_requests_for_rss=150)

    assert results.floor.ok, results.floor.problem
    assert results.floor.rps > 0
    assert results.floor.ratio_to_floor == 1.0
    signed_in = results.signed_in_floor
    assert signed_in is not None
    assert signed_in.ok, signed_in.problem
    assert signed_in.rps > 0
    assert signed_in.ratio_to_floor > 0
    measured, signed_out = results.pages[:3], results.pages[3]
    for page in measured:
        assert page.ok, (page.name, page.problem)
        assert page.requests > 0
        assert page.rps > 0
        assert 0 < page.p50_ms <= page.p99_ms
        assert page.ratio_to_floor > 0
    assert not signed_out.ok
    assert signed_out.problem.startswith("answered 302 to /accounts/login/")
    assert signed_out.rps == 0
    assert results.rss_ok, results.rss_problem
    assert results.requests_before_rss >= 150
    assert results.rss_mb > 0
    names = [figure.name for figure in results.figures()]
    assert names[0] == "trivial view (floor): requests/s"
    assert "pathway page: ratio to the trivial view" in names
    assert "pathway page, cold: ratio to the trivial view" in names
    assert [page.name for page in results.cold_pages] == [page.name for page in results.pages]
    for page in results.cold_pages[:3]:
        assert page.ok, (page.name, page.problem)
        assert page.rps > 0
    assert names[-1].startswith("web worker RSS after ")
    assert not bench_http.process_alive(results.master_pid)
    assert not bench_http.process_alive(results.worker_pid)
