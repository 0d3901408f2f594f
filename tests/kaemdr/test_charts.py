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


@pytest.fixture
def drawings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The titles of the charts drawn (rather than taken from the cache) from here on."""
    drawn: list[str] = []
    real_draw = charts._draw

    def counted_draw(chart: Any) -> str:
        drawn.append(chart.title)
        return real_draw(chart)

    monkeypatch.setattr(charts, "_draw", counted_draw)
    return drawn


def test_a_kept_chart_is_the_same_drawing_and_is_not_drawn_again(drawings: list[str]) -> None:
    drawn = charts.line_chart_svg(**_arguments())
    assert drawn.startswith('<svg role="img"')
    assert charts.line_chart_svg(**_arguments()) == drawn
    assert drawings == ["PHQ-9"]  # drawn once, then taken from the cache


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
def test_any_change_to_what_is_drawn_is_a_new_drawing(changes: dict[str, Any], drawings: list[str]) -> None:
    before = charts.line_chart_svg(**_arguments())
    changed = charts.line_chart_svg(**_arguments(**changes))
    assert len(drawings) == 2  # the changed chart was drawn, not taken from the cache
    spec = charts._Chart(**{**_arguments(**changes), "width": 640, "height": 280, "x_format": "%-d %b %Y"})
    assert _without_id(changed) == _without_id(charts._draw(spec))
    assert _without_id(changed) != _without_id(before)


def _without_id(svg: str) -> str:
    """The drawing without pygal's random chart id (each drawing gets a new one)."""
    return re.sub(r"chart-[0-9a-f-]{36}", "chart-id", svg)


def test_an_unreachable_cache_only_costs_the_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", unreachable)
    monkeypatch.setattr(cache, "set", unreachable)
    assert charts.line_chart_svg(**_arguments()).startswith('<svg role="img"')
