"""A small run of the benchmark's own code, so that `make bench` keeps working. It reports timings;
it never asserts them. It does assert what is not a timing: each follow-up sent exactly once, and a
summary's queries the same for 1 and 3 sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from integration import bench

pytestmark = pytest.mark.django_db


def test_a_small_benchmark_run_reports_every_figure(tmp_path: Path, settings: Any) -> None:
    settings.KAEMDR_PRIVATE_DIR = tmp_path / "private"
    small = bench.summary_figures(sessions=1, repeats=1)
    figures = [*bench.summary_figures(sessions=3, repeats=1), *bench.dispatch_figures(follow_ups=25)]
    names = [f.name for f in figures]
    assert names == [
        "pathway summary PDF, 3 sessions: seconds per page",
        "pathway summary PDF, 3 sessions: pages",
        "pathway summary data, 3 sessions: queries",
        "follow-ups dispatched per second, one worker",
        "follow-ups each sent exactly once",
    ]
    assert figures[0].value > 0
    assert figures[2].value == small[2].value  # queries do not grow with the sessions
    assert figures[4].met is True
    table = bench.write_report(figures, tmp_path / "bench")
    assert "| follow-ups each sent exactly once | 1.000 yes/no | yes | yes |" in table
    assert (tmp_path / "bench" / "results.json").exists()
