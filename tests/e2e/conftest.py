from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext
from playwright.sync_api import Page

WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
IMPACTS = ("minor", "moderate", "serious", "critical")


def _axe_source() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


CSP_WATCH = """
window.__cspRefusals = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspRefusals.push(`${event.violatedDirective} refused ${event.blockedURI || "inline"}`);
});
"""
"""Added to every page before its own scripts (`add_init_script`, run by the browser's DevTools side, which
the page's policy does not govern): each refusal under the page's Content Security Policy is kept."""


def axe_violations(
    page: Page, *, tags: tuple[str, ...] = WCAG_TAGS, minimum_impact: str = "minor"
) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is served, its strict Content Security Policy kept.

    axe's source is evaluated from the test's own side (Playwright's `evaluate`, through DevTools): no
    script tag is added and nothing in the page's policy is loosened. A refusal under the policy while
    axe runs fails the check rather than passing silently, and afterwards the policy is shown to be in
    force: an inline script added to the page is refused."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    before = page.evaluate("(window.__cspRefusals || []).length")
    results = page.evaluate(
        "options => axe.run(document, options)",
        {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]},
    )
    refused = page.evaluate("(window.__cspRefusals || [])")[before:]
    assert not refused, f"{page.url}: axe was refused by the Content Security Policy: {refused}"
    inline_ran = page.evaluate(
        """() => {
            const probe = document.createElement("script");
            probe.textContent = "window.__inlineScriptRan = true";
            document.head.appendChild(probe);
            probe.remove();
            return window.__inlineScriptRan === true;
        }"""
    )
    assert not inline_ran, f"{page.url} runs inline scripts: its strict Content Security Policy is off"
    floor = IMPACTS.index(minimum_impact)
    return [v for v in results["violations"] if IMPACTS.index(v.get("impact") or "minor") >= floor]


def describe(violations: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} "
        f"({len(v['nodes'])} nodes: {[n['target'] for n in v['nodes'][:3]]})"
        for v in violations
    )


def assert_accessible(page: Page, output_dir: Path, name: str) -> None:
    """Run axe-core on the page (WCAG 2.0/2.1 A and AA rules), its strict Content Security Policy kept,
    and fail on any violation."""
    violations = axe_violations(page)
    (output_dir / f"{name}-axe.json").write_text(json.dumps(violations, indent=2))
    assert not violations, f"{name}: " + describe(violations)


@pytest.fixture(autouse=True)
def _csp_refusals_kept(context: BrowserContext) -> None:
    context.add_init_script(CSP_WATCH)


def shot(page: Page, output_dir: Path, name: str) -> None:
    page.screenshot(path=str(output_dir / f"{name}.png"), full_page=True)


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A tablet-sized window (iPad in landscape), the size the clinic works on."""
    return {**browser_context_args, "viewport": {"width": 1180, "height": 820}, "locale": "en-GB"}
