"""One catalogue of sources: every code a rule can refuse or flag with is registered with a citation, in
plain words a user can check, with no internal file names; pages and the API show it.

The walk reads the apps' source (not a list kept by hand): every `code="..."` given to a
`ValidationError`, a `Refusal` or an `ErrorDetail`, every code a rule's `Criterion` or `Reason` is made
with, and every floor code of an entry window. A new rule whose code is not registered fails here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils.html import escape

from kaemdr import sources

ROOT = Path(__file__).resolve().parent.parent
APPS = ("kaemdr", "pathways", "screening", "sessions", "integration")
ERROR_CALLS = {"ValidationError", "Refusal", "ErrorDetail"}
FINDING_CALLS = {"Criterion", "Reason"}
CODE_KEYWORDS = {"code", "after_code", "floor_code"}
INTERNAL = re.compile(
    r"\.md\b|\.py\b|\bdomain\b|\bdesign\b|\bseeds?\b|\[weak\]|pesi\.com|droracle|calcipedia|docsbay|intake\.icu|"
    r"squid-app|behavenet",
    re.IGNORECASE,
)


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _codes_in(path: Path) -> set[str]:
    codes: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        for keyword in node.keywords:
            value = keyword.value
            if (
                keyword.arg in CODE_KEYWORDS
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ) and (keyword.arg != "code" or name in ERROR_CALLS | FINDING_CALLS):
                codes.add(value.value)
        if name in FINDING_CALLS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                codes.add(first.value)
    return codes


def _app_modules() -> list[Path]:
    return [
        path for app in APPS for path in sorted((ROOT / app).rglob("*.py")) if "migrations" not in path.parts
    ]


def rule_codes() -> dict[str, set[str]]:
    """Every literal code in the apps' source, with the modules that use it."""
    found: dict[str, set[str]] = {}
    for path in _app_modules():
        for code in _codes_in(path):
            found.setdefault(code, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_walk_finds_the_codes_it_is_meant_to_find() -> None:
    """The walk itself: it sees refusals, findings and entry-window codes (else the test below proves
    nothing)."""
    found = rule_codes()
    for code in ("rems_enrolment_missing", "booking_conflict", "observation_time", "before_pre_dose_reading"):
        assert code in found, code
    assert len(found) > 100


def test_every_code_a_rule_can_return_has_a_source() -> None:
    apps.get_models()  # every app's rules module is imported (they register their codes on import)
    registered = sources.registered()
    unsourced = {
        code: sorted(where)
        for code, where in rule_codes().items()
        if code not in registered and code not in sources.INPUT_CHECK_CODES
    }
    assert unsourced == {}, (
        "Register these codes with a citation in their app's rules (kaemdr.sources.register)"
    )


def test_every_registered_citation_is_plain_words_a_user_can_check() -> None:
    for code, citation in sources.registered().items():
        assert citation.references, code
        for reference in citation.references:
            assert reference.source.title.strip(), code
            assert not INTERNAL.search(reference.text), (code, reference.text)
            assert not reference.source.url or reference.source.url.startswith("https://"), (code, reference)
        assert code not in sources.INPUT_CHECK_CODES or code in {"future"}, code


def test_the_bibliography_names_no_internal_file() -> None:
    for name, value in vars(sources).items():
        if isinstance(value, sources.Source):
            assert not INTERNAL.search(value.title), name


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("rems_enrolment_missing", "Spravato REMS (FDA REMS 386)"),
        ("booking_conflict", "Clinic setting, rooms, opening hours, closures and chair time"),
        ("future", "NMC, The Code"),
    ],
)
def test_a_code_keeps_its_citation(code: str, expected: str) -> None:
    citation = sources.citation_for(code)
    assert citation is not None
    assert citation.text.startswith(expected)


def test_a_code_cannot_be_registered_with_two_sources() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        sources.register({"booking_conflict": sources.PHQ9.at()})
    with pytest.raises(ValueError, match="no citation"):
        sources.register({"a_new_code": sources.Citation(())})


@pytest.mark.django_db
def test_every_role_can_read_where_the_rules_come_from(staff: dict, client_for: Callable) -> None:
    """The sources page lists each cited source with its link and the codes of the rules citing it."""
    for user in staff.values():
        response = client_for(user).get(reverse("rule_sources"))
        assert response.status_code == 200
    body = response.content.decode()
    rems = sources.SPRAVATO_REMS
    assert f'<a href="{escape(rems.url)}">{escape(rems.title)}</a>' in body
    assert "<code>rems_enrolment_missing</code>: patients enrolled before the first dose" in body
    assert not INTERNAL.search(body.split("<main", 1)[1])
    assert client_for(None).get(reverse("rule_sources")).status_code == 302
