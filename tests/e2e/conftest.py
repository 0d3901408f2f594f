from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page


def assert_accessible(page: Page, output_dir: Path, name: str) -> None:
    """Run axe-core on the page (WCAG 2.0/2.1 A and AA rules) and fail on any violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
    )
    violations: list[dict[str, Any]] = results.response["violations"]
    (output_dir / f"{name}-axe.json").write_text(json.dumps(violations, indent=2))
    summary = [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {[n['target'] for n in v['nodes'][:3]]})"
        for v in violations
    ]
    assert not violations, f"{name}: " + "; ".join(summary)


def shot(page: Page, output_dir: Path, name: str) -> None:
    page.screenshot(path=str(output_dir / f"{name}.png"), full_page=True)


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A tablet-sized window (iPad in landscape), the size the clinic works on."""
    return {**browser_context_args, "viewport": {"width": 1180, "height": 820}, "locale": "en-GB"}
