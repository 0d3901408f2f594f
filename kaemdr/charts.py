"""Charts as SVG made on the server with pygal: the same markup in a page and in a PDF.

No JavaScript is embedded (pages keep a strict policy, and WeasyPrint runs none); each chart has a
title and description for screen readers, and pages show the same figures in a table beside it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pygal
from django.core.cache import cache
from pygal.style import Style

logger = logging.getLogger(__name__)

CHART_CACHE_SECONDS = 24 * 3600
# Part of every cache key: change it when the drawing code changes, so no older drawing is served.
_DRAWING_VERSION = "1"

# Dark, distinct colours that keep a 3:1 contrast against white (WCAG 1.4.11 for graphics).
SERIES_COLOURS = ("#1f3d5a", "#9c3d00", "#146c43", "#5a3e9b", "#842029", "#0a58ca")

_STYLE_SETTINGS: dict[str, object] = dict(
    background="white",
    plot_background="white",
    foreground="#212529",
    foreground_strong="#212529",
    foreground_subtle="#6c757d",
    colors=SERIES_COLOURS,
    font_family="DejaVu Sans, Helvetica, Arial, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=12,
    title_font_size=14,
    guide_stroke_color="#dee2e6",
    major_guide_stroke_color="#ced4da",
    stroke_width="2.5",
    opacity="1",
)
_STYLE = Style(**_STYLE_SETTINGS)
_SCRIPT = re.compile(r"<script.*?</script>", re.DOTALL)
# pygal gives every chart's legend the same element ids (for its scripts, removed here): dropped, so
# that several charts on one page or in one PDF never repeat an id.
_LEGEND_ID = re.compile(r'\s(?:id="activate-serie-\d+"|xlink:href="#activate-serie-\d+")')


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[dt.datetime, float]]


@dataclass(frozen=True)
class Threshold:
    """A dashed horizontal line; `colour_of` names the series whose colour it takes (a limit drawn in
    its reading's colour), otherwise it takes the next colour after the series."""

    label: str
    value: float
    colour_of: str = ""


@dataclass(frozen=True)
class _Chart:
    """Everything a drawing depends on."""

    title: str
    series: Sequence[Series]
    y_min: float
    y_max: float
    thresholds: Sequence[Threshold]
    tz: dt.tzinfo | None
    width: int
    height: int
    x_format: str
    y_labels: Sequence[float] = ()
    legend_columns: int = 0

    def cache_key(self) -> str:
        """A digest of every field (instants with their offsets, values as exact decimal strings)."""
        payload = {
            "version": _DRAWING_VERSION,
            "title": self.title,
            "series": [
                [line.label, [[when.isoformat(), repr(float(v))] for when, v in line.points]]
                for line in self.series
            ],
            "range": [repr(float(self.y_min)), repr(float(self.y_max))],
            "thresholds": [[t.label, repr(float(t.value)), t.colour_of] for t in self.thresholds],
            "tz": str(self.tz) if self.tz is not None else "",
            "size": [self.width, self.height],
            "x_format": self.x_format,
            "y_labels": [repr(float(y)) for y in self.y_labels],
            "legend_columns": self.legend_columns,
        }
        digest = hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()
        return f"chart-svg:{digest}"


def line_chart_svg(
    *,
    title: str,
    series: Sequence[Series],
    y_min: float,
    y_max: float,
    thresholds: Sequence[Threshold] = (),
    tz: dt.tzinfo | None = None,
    width: int = 640,
    height: int = 280,
    x_format: str = "%-d %b %Y",
    y_labels: Sequence[float] = (),
    legend_columns: int = 0,
) -> str:
    """A dated line chart, with dashed horizontal lines for thresholds, as an `<svg>` string;
    `y_labels` fixes the values labelled on the vertical axis, `legend_columns` the legend's columns.

    The drawing is a pure function of the arguments, and drawing it costs 10-15 ms, so it is kept
    in the cache under a digest of every argument: a changed reading, limit or time zone is another
    key, so a kept drawing is never out of date. Without a cache it is drawn each time.
    """
    chart = _Chart(
        title, series, y_min, y_max, thresholds, tz, width, height, x_format, y_labels, legend_columns
    )
    key = chart.cache_key()
    try:
        kept = cache.get(key)
    except Exception:  # an unreachable cache only costs the drawing
        logger.warning("chart cache unreachable", exc_info=True)
        kept = None
    if isinstance(kept, str):
        return kept
    svg = _draw(chart)
    try:
        cache.set(key, svg, CHART_CACHE_SECONDS)
    except Exception:
        logger.warning("chart cache unreachable", exc_info=True)
    return svg


def _style(spec: _Chart) -> Style:
    """The house style; with a threshold drawn in a series' colour, the colours in drawing order."""
    if not any(threshold.colour_of for threshold in spec.thresholds):
        return _STYLE
    colours = [SERIES_COLOURS[index % len(SERIES_COLOURS)] for index in range(len(spec.series))]
    by_label = {line.label: colour for line, colour in zip(spec.series, colours, strict=True)}
    for index, threshold in enumerate(spec.thresholds, start=len(spec.series)):
        colours.append(by_label.get(threshold.colour_of, SERIES_COLOURS[index % len(SERIES_COLOURS)]))
    return Style(**{**_STYLE_SETTINGS, "colors": tuple(colours)})


def _draw(spec: _Chart) -> str:
    tz, x_format, series = spec.tz, spec.x_format, spec.series
    # Only when asked for, so that charts without them are drawn as before.
    extra: dict[str, Any] = {}
    if spec.y_labels:
        extra["y_labels"] = list(spec.y_labels)
    if spec.legend_columns:
        extra["legend_at_bottom_columns"] = spec.legend_columns
    chart = pygal.DateTimeLine(
        style=_style(spec),
        width=spec.width,
        height=spec.height,
        title=spec.title,
        range=(spec.y_min, spec.y_max),
        show_dots=True,
        dots_size=4,
        x_label_rotation=0,
        truncate_legend=-1,
        legend_at_bottom=True,
        js=[],
        disable_xml_declaration=True,
        explicit_size=False,
        x_value_formatter=lambda when: (when.astimezone(tz) if tz else when).strftime(x_format),
        print_values=False,
        show_x_guides=False,
        truncate_label=-1,
        x_labels_major_count=5,
        show_minor_x_labels=False,
        **extra,
    )
    for line in series:
        chart.add(line.label, [(when, value) for when, value in line.points])
    if spec.thresholds and any(line.points for line in series):
        every = [when for line in series for when, _ in line.points]
        start, end = min(every), max(every)
        for threshold in spec.thresholds:
            chart.add(
                threshold.label,
                [(start, threshold.value), (end, threshold.value)],
                show_dots=False,
                stroke_style={"width": 1.5, "dasharray": "6, 4"},
            )
    # pygal's tooltip configuration is a script: none is kept.
    svg: str = _LEGEND_ID.sub("", _SCRIPT.sub("", chart.render(is_unicode=True)))
    return svg.replace("<svg ", '<svg role="img" focusable="false" ', 1)
