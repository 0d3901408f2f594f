"""`manage.py bench` and where the `bench` app lives: the command hands its options to `bench.runner.run`
and writes the report under `VAR_DIR/bench/`; only `kaemdr.settings.bench` installs the app (neither
production nor the tests do); and no clinical app imports it. The benchmark itself is run small in
`tests/bench/test_runner.py`."""

from __future__ import annotations

import ast
import importlib
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management import find_commands

import bench
from bench import runner
from bench.figures import Figure
from bench.management.commands.bench import Command

ROOT = Path(__file__).resolve().parent.parent.parent
CLINICAL_APPS = ("kaemdr", "pathways", "screening", "sessions", "integration")


def test_bench_command_passes_its_options_to_the_run_and_writes_the_report(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.VAR_DIR = tmp_path
    received: dict[str, Any] = {}

    def run(**options: Any) -> list[Figure]:
        received.update(options)
        options["log"]("measured")
        return [Figure("follow-ups each sent exactly once", 1.0, "yes/no", "yes", True)]

    monkeypatch.setattr(runner, "run", run)
    out, err = StringIO(), StringIO()

    call_command(
        Command(),
        *("--scale", "0.001", "--long-sessions", "12", "--duration", "1", "--connections", "2"),
        *("--rss-requests", "100", "--sessions", "3", "--repeats", "1", "--follow-ups", "25"),
        stdout=out,
        stderr=err,
    )

    assert {key: value for key, value in received.items() if key != "log"} == {
        "scale": 0.001,
        "long_sessions": 12,
        "duration_s": 1.0,
        "connections": 2,
        "rss_requests": 100,
        "sessions": 3,
        "repeats": 1,
        "follow_ups": 25,
        "report_folder": tmp_path / "bench",
    }
    assert "measured" in err.getvalue()
    assert "| follow-ups each sent exactly once | 1 yes/no | yes |  | yes |" in out.getvalue()
    report = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert [figure["name"] for figure in report["figures"]] == ["follow-ups each sent exactly once"]


def test_bench_command_is_found_in_the_bench_app() -> None:
    assert find_commands(str(Path(bench.__file__).parent / "management")) == ["bench"]


def test_bench_app_is_installed_by_the_bench_settings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SECRET_KEY", "test-only")
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "localhost")
    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    bench_settings = importlib.import_module("kaemdr.settings.bench")
    production = importlib.import_module("kaemdr.settings.production")

    assert bench_settings.INSTALLED_APPS[-1] == "bench"
    assert bench_settings.DEBUG is False
    assert "bench" not in production.INSTALLED_APPS
    assert "bench" not in django_settings.INSTALLED_APPS


def _imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_no_clinical_module_imports_bench() -> None:
    importing = sorted(
        str(path.relative_to(ROOT))
        for app in CLINICAL_APPS
        for path in (ROOT / app).rglob("*.py")
        if any(name == "bench" or name.startswith("bench.") for name in _imports(path))
    )

    assert importing == []
