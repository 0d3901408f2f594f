"""Charts: one point is a text figure, not a chart; otherwise a few round ticks, dates that do not
overlap, limits and bands labelled in the plot, the latest value labelled; and kept in the cache."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import zoneinfo
from typing import Any

import pytest
from django.core.cache import cache
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kaemdr import charts

START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
LONDON = zoneinfo.ZoneInfo("Europe/London")
PHQ9_BANDS = [
    charts.Band("Minimal", 0, 5),
    charts.Band("Mild", 5, 10),
    charts.Band("Moderate", 10, 15),
    charts.Band("Moderately severe", 15, 20),
    charts.Band("Severe", 20, 27),
]


def _arguments(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "title": "PHQ-9",
        "series": [charts.Series("PHQ-9", [(START + dt.timedelta(weeks=i), 20.0 - 2 * i) for i in range(4)])],
        "y_min": 0,
        "y_max": 27,
        "thresholds": [charts.Threshold("Moderate (10)", 10)],
        "tz": LONDON,
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


# --- One point: a value and a date, no chart -------------------------------------------------------


def test_one_point_is_no_chart(drawings: list[str]) -> None:
    one = [charts.Series("PHQ-9", [(START, 14.0)])]
    assert charts.line_chart_svg(**_arguments(series=one)) == ""
    assert drawings == []


def test_two_readings_at_one_instant_are_no_chart() -> None:
    same = [charts.Series("Systolic", [(START, 120.0)]), charts.Series("Diastolic", [(START, 80.0)])]
    assert charts.line_chart_svg(**_arguments(series=same)) == ""


def test_one_point_reads_as_a_value_and_a_date() -> None:
    when = dt.datetime(2026, 12, 3, 23, 30, tzinfo=dt.UTC)  # 4 Dec in Sydney
    assert charts.point_text("PHQ-9", when, 14.0, tz=LONDON) == "PHQ-9 14 on 3 Dec 2026"
    assert charts.point_text("DES-II", when, 32.5, tz=zoneinfo.ZoneInfo("Australia/Sydney")) == (
        "DES-II 32.5 on 4 Dec 2026"
    )


# --- Ticks -----------------------------------------------------------------------------------------


def _nice_step(step: float) -> float | None:
    """The step of 1, 2 or 5 times a power of ten that `step` is (up to rounding), or None."""
    exponent = math.floor(math.log10(step) + 1e-9)
    for nice in (1, 2, 5, 10):
        if math.isclose(step / 10**exponent, nice, rel_tol=1e-6):
            return nice * 10.0**exponent
    return None


@settings(max_examples=300, deadline=None)
@given(
    low=st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
    span=st.floats(min_value=1e-3, max_value=1e5, allow_nan=False),
)
def test_value_ticks_are_few_round_and_inside_the_range(low: float, span: float) -> None:
    high = low + span
    ticks = charts.nice_ticks(low, high)
    assert 2 <= len(ticks) <= charts.MAX_Y_TICKS
    assert all(low - span * 1e-6 <= tick <= high + span * 1e-6 for tick in ticks)
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    assert all(math.isclose(step, steps[0], rel_tol=1e-6, abs_tol=1e-9) for step in steps)
    step = _nice_step(steps[0])
    assert step is not None
    # Each tick a whole multiple of the step (0, 5, 10; never 3, 8, 13).
    assert all(math.isclose(tick / step, round(tick / step), rel_tol=1e-9, abs_tol=1e-6) for tick in ticks)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0, 27, [0, 10, 20]), (0, 80, [0, 20, 40, 60, 80]), (40, 200, [50, 100, 150, 200]), (0, 10, [0, 5, 10])],
)
def test_value_ticks_of_the_charted_scales(low: float, high: float, expected: list[float]) -> None:
    assert charts.nice_ticks(low, high) == expected


@settings(max_examples=300, deadline=None)
@given(
    start_minutes=st.integers(min_value=0, max_value=60 * 24 * 365 * 3),
    span_minutes=st.integers(min_value=1, max_value=60 * 24 * 365 * 30),
    width=st.integers(min_value=120, max_value=900),
    zone=st.sampled_from(["Europe/London", "America/New_York", "Australia/Sydney", "UTC"]),
)
def test_date_ticks_never_overlap_and_stay_in_the_range(
    start_minutes: int, span_minutes: int, width: int, zone: str
) -> None:
    tz = zoneinfo.ZoneInfo(zone)
    start = START + dt.timedelta(minutes=start_minutes)
    end = start + dt.timedelta(minutes=span_minutes)
    ticks = charts.time_ticks(start, end, width=width, tz=tz)
    assert ticks
    assert all(start <= when <= end for when, _ in ticks)
    assert [when for when, _ in ticks] == sorted({when for when, _ in ticks})
    seconds = (end - start).total_seconds()
    for (a, a_label), (b, b_label) in itertools.pairwise(ticks):
        apart = (b - a).total_seconds() / seconds * width
        assert apart >= (charts.label_width(a_label) + charts.label_width(b_label)) / 2 + 12
    assert len(ticks) <= charts.MAX_X_TICKS  # few enough to read at a glance


@pytest.mark.parametrize(
    ("span", "labels"),
    [
        (dt.timedelta(hours=2), ["09:00", "09:30", "10:00", "10:30", "11:00"]),
        (dt.timedelta(weeks=4), ["9 Nov", "16 Nov", "23 Nov", "30 Nov"]),
        (dt.timedelta(days=365), ["Jan 2027", "Mar 2027", "May 2027", "Jul 2027", "Sep 2027", "Nov 2027"]),
        (dt.timedelta(days=365 * 8), ["2028", "2030", "2032", "2034"]),
    ],
)
def test_date_ticks_are_spaced_by_the_range(span: dt.timedelta, labels: list[str]) -> None:
    ticks = charts.time_ticks(START, START + span, width=446, tz=dt.UTC)
    assert [label for _, label in ticks] == labels


# --- What a chart shows ----------------------------------------------------------------------------


def _texts(svg: str, kind: str) -> list[str]:
    return re.findall(rf'<text class="{kind}"[^>]*>([^<]*)</text>', svg)


def test_a_chart_shows_few_value_ticks_and_its_dates() -> None:
    svg = charts.line_chart_svg(**_arguments())
    assert _texts(svg, "y-tick") == ["0", "10", "20"]
    assert _texts(svg, "x-tick") == ["9 Nov", "16 Nov", "23 Nov"]


def test_bands_are_shaded_and_labelled_in_the_plot() -> None:
    svg = charts.line_chart_svg(**_arguments(bands=PHQ9_BANDS))
    assert len(re.findall(r'<rect class="band"', svg)) == 5
    assert _texts(svg, "band-label") == ["Severe", "Moderately severe", "Moderate", "Mild", "Minimal"]
    # Each band is shaded from its low to its high value: higher bands higher up (smaller y).
    tops = [float(y) for y in re.findall(r'<rect class="band" x="[\d.]+" y="([\d.]+)"', svg)]
    assert tops == sorted(tops, reverse=True)


def test_limits_are_labelled_lines_at_their_values_in_their_readings_colour() -> None:
    series = [
        charts.Series("Systolic", [(START, 130.0), (START + dt.timedelta(minutes=30), 150.0)]),
        charts.Series("SpO2 %", [(START, 98.0), (START + dt.timedelta(minutes=30), 96.0)]),
    ]
    limits = [charts.Threshold("Max 180", 180, "Systolic"), charts.Threshold("Min 92%", 92, "SpO2 %")]
    svg = charts.line_chart_svg(**_arguments(series=series, thresholds=limits, y_min=40, y_max=200))
    assert _texts(svg, "threshold-label") == ["Max 180", "Min 92%"]
    lines = re.findall(
        r'<line class="threshold" x1="[\d.]+" y1="([\d.]+)" x2="[\d.]+" y2="([\d.]+)" stroke="(#\w+)"', svg
    )
    (systolic_y, systolic_y2, systolic_colour), (spo2_y, spo2_y2, spo2_colour) = lines
    assert systolic_y == systolic_y2  # flat
    assert spo2_y == spo2_y2
    assert float(systolic_y) < float(spo2_y)  # 180 above 92
    assert (systolic_colour, spo2_colour) == charts.SERIES_COLOURS[:2]
    label_colours = re.findall(r'<text class="threshold-label"[^>]* fill="(#\w+)"', svg)
    assert label_colours == list(charts.SERIES_COLOURS[:2])


def test_the_latest_value_is_labelled_at_its_point() -> None:
    svg = charts.line_chart_svg(**_arguments())
    last_point = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)[-1]
    labels = re.findall(r'<text class="latest" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg)
    assert {text for *_, text in labels} == {"14"}  # 20, 18, 16, then 14: the latest
    x, y, _ = labels[-1]
    assert 0 < float(x) - float(last_point[0]) <= 10  # just right of the point
    assert abs(float(y) - 4 - float(last_point[1])) <= 1  # on its height


def test_a_chart_is_accessible_without_sight() -> None:
    svg = charts.line_chart_svg(**_arguments(bands=PHQ9_BANDS))
    assert svg.startswith('<svg role="img"')
    assert "<title>PHQ-9</title>" in svg
    description = re.search(r"<desc>([^<]*)</desc>", svg)
    assert description is not None
    assert "20 on 2 Nov 2026, 18 on 9 Nov 2026, 16 on 16 Nov 2026, 14 on 23 Nov 2026 (the latest)" in (
        description.group(1)
    )
    assert "Moderately severe from 15" in description.group(1)
    assert "Moderate (10) at 10" in description.group(1)
    for banned in ("<script", "<style", "style="):  # nothing a strict page policy would block
        assert banned not in svg


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_colours_keep_their_contrast_on_white_and_on_every_band() -> None:
    for background in ("#ffffff", *charts.BAND_TINTS):
        for colour in charts.SERIES_COLOURS:
            assert _contrast(colour, background) >= 4.5, (colour, background)  # text in a series' colour
        assert _contrast(charts.MUTED_TEXT_COLOUR, background) >= 4.5
        assert _contrast(charts.AXIS_COLOUR, background) >= 3  # lines (graphics: 3:1)


# --- The cache ---------------------------------------------------------------------------------------


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
        {"bands": PHQ9_BANDS},
        {"tz": zoneinfo.ZoneInfo("America/New_York")},
        {"title": "GAD-7"},
        {"y_max": 21},
    ],
)
def test_any_change_to_what_is_drawn_is_a_new_drawing(changes: dict[str, Any], drawings: list[str]) -> None:
    before = charts.line_chart_svg(**_arguments())
    changed = charts.line_chart_svg(**_arguments(**changes))
    assert len(drawings) == 2  # the changed chart was drawn, not taken from the cache
    spec = charts._Chart(**{**_arguments(**changes), "width": 640, "height": 280})
    assert changed == charts._draw(spec)
    assert changed != before


def test_an_unreachable_cache_only_costs_the_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", unreachable)
    monkeypatch.setattr(cache, "set", unreachable)
    assert charts.line_chart_svg(**_arguments()).startswith('<svg role="img"')
