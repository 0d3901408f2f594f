"""A small run of the whole benchmark's code (`bench.runner.run`), so that `make bench` keeps
working: the network data at a thousandth of its size, gunicorn and wrk for a second a page, a few
renders and dispatches. It reports timings and never asserts them. It asserts what is not a timing:
every figure is there, every page answered, queries stay within the budget, the clashing booking is
refused each time, each follow-up is sent exactly once, and the report is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import runner
from tests.conftest import require_postgres


@pytest.mark.django_db(transaction=True)
def test_a_small_benchmark_run_reports_every_figure(tmp_path: Path, settings: Any) -> None:
    require_postgres()
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    figures = runner.run(
        scale=0.001,
        long_sessions=12,
        duration_s=1,
        connections=2,
        rss_requests=100,
        sessions=3,
        repeats=1,
        follow_ups=25,
        log=lambda message: None,
    )
    by_name = {figure.name: figure for figure in figures}
    names = list(by_name)
    for expected in (
        "trivial view (the floor): requests/s",
        "pathway page, 12 sessions: ms in the server",
        "pathway page, 12 sessions: queries",
        "conflicting booking refused every time",
        "pathway summary PDF, 3 sessions: seconds per page",
        "follow-ups dispatched per second, one worker (2 processes, as deployed)",
        "follow-ups dispatched per second, one worker process",
        "follow-ups composed and handed over per second, one process, no database (the floor)",
        "follow-ups each sent exactly once",
    ):
        assert expected in names, expected
    for page in ("dashboard, prescriber", "pathway page", "room week calendar", "dosing session record"):
        served = [f for f in figures if f.name.startswith(f"{page}: requests/s")]
        assert served, page
        assert served[0].value > 0, page
        assert served[0].ratio_to_floor is not None
        assert served[0].ratio_to_floor > 0
        queries = [f for f in figures if f.name.startswith(f"{page}: queries")]
        assert queries, page
        assert queries[0].value <= 12, (page, queries)
    assert any(f.name.startswith("web worker RSS after") and f.value > 0 for f in figures)
    assert any(f.name.startswith("conflicting booking refused among") for f in figures)
    assert by_name["conflicting booking refused every time"].met is True
    assert by_name["follow-ups each sent exactly once"].met is True
    for name in (
        "follow-ups dispatched per second, one worker (2 processes, as deployed)",
        "follow-ups dispatched per second, one worker process",
    ):
        dispatch = by_name[name]
        assert dispatch.value > 0, name
        assert dispatch.ratio_to_floor is not None, name
        assert dispatch.ratio_to_floor > 0, name
    table = runner.write_report(figures, tmp_path / "bench")
    assert "| follow-ups each sent exactly once | 1 yes/no | yes |  | yes |" in table, table
    report = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert len(report["figures"]) == len(figures)
