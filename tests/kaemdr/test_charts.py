"""Charts kept in the cache: a kept drawing is exactly the drawing, and any change is a new one."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import pytest
from django.core.cache import cache

from kaemdr import charts

START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def _arguments(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "title": "PHQ-9",
        "series": [charts.Series("PHQ-9", [(START + dt.timedelta(weeks=i), 20.0 - 2 * i) for i in range(4)])],
        "y_min": 0,
        "y_max": 27,
        "thresholds": [charts.Threshold("Moderate", 10)],
        "tz": zoneinfo.ZoneInfo("Europe/London"),
    }
    arguments.update(changes)
    return arguments


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


def test_a_kept_chart_is_the_same_drawing_and_is_not_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = charts.line_chart_svg(**_arguments())
    assert drawn.startswith('<svg role="img"')
    calls: list[str] = []
    real_draw = charts._draw

    def counted_draw(**kwargs: Any) -> str:
        calls.append("drawn")
        return real_draw(**kwargs)

    monkeypatch.setattr(charts, "_draw", counted_draw)
    assert charts.line_chart_svg(**_arguments()) == drawn
    assert calls == []


@pytest.mark.parametrize(
    "changes",
    [
        {"series": [charts.Series("PHQ-9", [(START, 20.0), (START + dt.timedelta(weeks=1), 19.0)])]},
        {"series": [charts.Series("PHQ-9", [(START, 20.0), (START + dt.timedelta(weeks=1), 18.5)])]},
        {"thresholds": [charts.Threshold("Moderate", 11)]},
        {"tz": zoneinfo.ZoneInfo("America/New_York")},
        {"title": "GAD-7"},
        {"y_max": 21},
    ],
)
def test_any_change_to_what_is_drawn_is_a_new_drawing(
    changes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    charts.line_chart_svg(**_arguments())
    calls: list[str] = []
    real_draw = charts._draw

    def counted_draw(**kwargs: Any) -> str:
        calls.append("drawn")
        return real_draw(**kwargs)

    monkeypatch.setattr(charts, "_draw", counted_draw)
    changed = charts.line_chart_svg(**_arguments(**changes))
    assert calls == ["drawn"]
    fresh = real_draw(**_arguments(**changes), width=640, height=280, x_format="%-d %b %Y")
    assert _without_id(changed) == _without_id(fresh)


def _without_id(svg: str) -> str:
    """The drawing without pygal's random chart id (each drawing gets a new one)."""
    return re.sub(r"chart-[0-9a-f-]{36}", "chart-id", svg)


def test_an_unreachable_cache_only_costs_the_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", unreachable)
    monkeypatch.setattr(cache, "set", unreachable)
    assert charts.line_chart_svg(**_arguments()).startswith('<svg role="img"')
