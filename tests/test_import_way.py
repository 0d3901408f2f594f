"""Imports run one way (design.md, "Apps and what each owns" and "Inside the bigger apps").

Between apps: `integration -> sessions -> screening -> pathways -> kaemdr`; an earlier stage never
imports a later one (a later one plugs in through `pathways.registry`), and no clinical module
imports the benchmark. Inside `sessions/`, the domains stack the same way: `clinic_settings` over
`emdr` over `record` over `booking`; `sessions.models` and `sessions.gates` sit below the domains and
read only their pure rules; `hooks`, `demo`, `urls` and `api_urls` sit above them all. Rules modules
are pure: no services, selectors or pages. And no two modules import each other, directly or round a circle:
tasks call services, services enqueue tasks by name.

Every import is read from the source, including those inside functions, so a lazy import that turns
a circle into a working program still counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)

# Highest first: a module may import its own app and the apps after it.
APP_ORDER = ("integration", "sessions", "screening", "pathways", "kaemdr")

# Inside `sessions/`: a domain may import itself and the domains after it.
SESSIONS_DOMAINS = ("clinic_settings", "emdr", "record", "booking")
SESSIONS_BELOW_DOMAINS = ("models", "gates")
SESSIONS_ABOVE_DOMAINS = ("apps", "hooks", "demo", "demo_alerts", "urls", "api_urls")

PURE_HELPERS = ("kaemdr.sources", "kaemdr.formatting")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source_files() -> Iterator[Path]:
    for app in (*APP_ORDER, "bench"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _imports(path: Path) -> set[str]:
    """Every project module `path` imports, at the top or inside a function. `from a import b` counts
    as `a.b` when `a.b` is a module of ours, else as `a`."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {name for name in found if name in MODULES}


MODULES = {_module_name(path): path for path in _source_files()}
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _app(module: str) -> str:
    return module.split(".")[0]


def _sessions_part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_graph_is_read() -> None:
    """The reader finds the imports it is meant to judge (a broken reader would pass everything)."""
    assert "sessions.booking.services" in GRAPH["sessions.record.services"]
    assert "pathways.models" in GRAPH["sessions.models"]
    assert len(MODULES) > 100


def test_apps_import_one_way() -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, imports in GRAPH.items()
        if _app(module) in APP_ORDER
        for imported in sorted(imports)
        if _app(imported) in APP_ORDER and APP_ORDER.index(_app(imported)) < APP_ORDER.index(_app(module))
    ]
    assert wrong == []


def test_no_clinical_module_imports_the_benchmark() -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, imports in GRAPH.items()
        if _app(module) != "bench"
        for imported in sorted(imports)
        if _app(imported) == "bench"
    ]
    assert wrong == []


def _sessions_allowed(module: str, imported: str) -> bool:
    mine, theirs = _sessions_part(module), _sessions_part(imported)
    if mine in SESSIONS_ABOVE_DOMAINS:
        return True
    if theirs in SESSIONS_ABOVE_DOMAINS:
        return False
    if mine in SESSIONS_BELOW_DOMAINS:
        return theirs in SESSIONS_BELOW_DOMAINS or _is_rules(imported)
    if mine in SESSIONS_DOMAINS:
        if theirs in SESSIONS_BELOW_DOMAINS:
            return True
        return SESSIONS_DOMAINS.index(theirs) >= SESSIONS_DOMAINS.index(mine)
    return False  # a new top-level module of `sessions` must be placed in one of the lists above


@pytest.mark.parametrize(
    ("module", "imported", "allowed"),
    [
        ("sessions.emdr.services", "sessions.record.services", True),
        ("sessions.record.services", "sessions.booking.selectors", True),
        ("sessions.booking.services", "sessions.record.services", False),
        ("sessions.record.views", "sessions.emdr.rules", False),
        ("sessions.models", "sessions.emdr.rules", True),
        ("sessions.models", "sessions.booking.services", False),
        ("sessions.booking.api", "sessions.hooks", False),
        ("sessions.hooks", "sessions.emdr.selectors", True),
    ],
)
def test_the_sessions_rule_itself(module: str, imported: str, allowed: bool) -> None:
    assert _sessions_allowed(module, imported) is allowed


def test_sessions_domains_import_one_way() -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, imports in GRAPH.items()
        if _app(module) == "sessions"
        for imported in sorted(imports)
        if _app(imported) == "sessions" and imported != "sessions" and not _sessions_allowed(module, imported)
    ]
    assert wrong == []


def _is_rules(module: str) -> bool:
    return module.rpartition(".")[2].endswith("rules")


def test_rules_are_pure() -> None:
    """A rules module calls no service, selector or page: it imports only other rules, the catalogue of
    sources and the number formatting, and the choices and enums that models and permissions name."""
    wrong = [
        f"{module} imports {imported}"
        for module, imports in GRAPH.items()
        if _is_rules(module)
        for imported in sorted(imports)
        if not (
            _is_rules(imported)
            or imported in PURE_HELPERS
            or imported.endswith(".models")
            or imported in ("kaemdr.permissions", _app(imported))
        )
    ]
    assert wrong == []


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    """No module imports one that imports it back, directly or round a circle, lazily or not: tasks
    call services, and services enqueue tasks by name (`kaemdr.outbox`)."""
    assert _circles(GRAPH) == []


def test_a_circle_is_found() -> None:
    graph = {"a.tasks": {"a.services"}, "a.services": {"a.outbox", "a.tasks"}, "a.outbox": set()}
    assert _circles(graph) == [["a.services", "a.tasks"]]
