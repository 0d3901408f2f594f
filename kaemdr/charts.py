"""Charts as SVG made on the server: the same markup in a page and in a PDF.

Drawn here rather than by a charting library so that a chart reads at a glance: a few round
ticks on each axis, dates that never overlap, the clinic's limits and a measure's severity bands
drawn and labelled in the plot (not only in a legend), and the latest value labelled at its point.
Under two points there is no trend to draw: callers show `point_text` ("PHQ-9 14 on 3 Dec 2026")
instead (`line_chart_svg` then returns "").

The SVG uses presentation attributes only (no `<style>`, no script), has `role="img"`, a `<title>`
and a `<desc>` listing the values, and pages show the same figures in text beside every chart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from django.core.cache import cache

logger = logging.getLogger(__name__)

CHART_CACHE_SECONDS = 24 * 3600
# Part of every cache key: change it when the drawing code changes, so no older drawing is served.
_DRAWING_VERSION = "2"

# Dark, distinct colours that keep a 3:1 contrast against white and against the band tints below
# (WCAG 1.4.11 for graphics); text drawn in them keeps 4.5:1 (WCAG 1.4.3).
SERIES_COLOURS = ("#1f3d5a", "#9c3d00", "#146c43", "#5a3e9b", "#842029", "#0a58ca")
# Severity bands, from the lowest to the highest: light tints (the lines and text on them stay dark).
BAND_TINTS = ("#e8f3ec", "#f4f6e0", "#fbf0d9", "#fbe3d6", "#f6d5d5")
TEXT_COLOUR = "#212529"
MUTED_TEXT_COLOUR = "#495057"  # 8.6:1 on white, and at least 7:1 on every band tint
GRID_COLOUR = "#dee2e6"
AXIS_COLOUR = "#6c757d"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
FONT_SIZE = 11
# DejaVu Sans is wide: an average character is about 0.62 em (used to keep labels apart).
CHAR_WIDTH = 0.62 * FONT_SIZE
MAX_Y_TICKS = 5
MAX_X_TICKS = 6
DATE_FORMAT = "%-d %b %Y"


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[dt.datetime, float]]


@dataclass(frozen=True)
class Threshold:
    """A labelled dashed horizontal line (a clinic's limit, a scale's cut-point); `colour_of` names
    the series whose colour it takes (a limit drawn in its reading's colour), otherwise it is grey."""

    label: str
    value: float
    colour_of: str = ""


@dataclass(frozen=True)
class Band:
    """A shaded, labelled range of values, from `low` to `high` (a measure's severity band)."""

    label: str
    low: float
    high: float


def format_value(value: float) -> str:
    """A value as people write it: 14, not 14.0; 12.5 stays 12.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}".rstrip("0").rstrip(".")


def point_text(label: str, when: dt.datetime, value: float, *, tz: dt.tzinfo | None = None) -> str:
    """One value as a small text figure, for when there is no trend to draw: "PHQ-9 14 on 3 Dec 2026"."""
    local = when.astimezone(tz) if tz else when
    return f"{label} {format_value(value)} on {local.strftime(DATE_FORMAT)}"


def drawable(series: Sequence[Series]) -> bool:
    """Whether the series make a trend: at least two distinct instants."""
    return len({when for line in series for when, _ in line.points}) >= 2


# --- Ticks ---------------------------------------------------------------------------------------


def nice_ticks(low: float, high: float, *, max_count: int = MAX_Y_TICKS) -> list[float]:
    """Round values to label an axis from `low` to `high`: every multiple of the smallest step of
    1, 2 or 5 times a power of ten that gives at most `max_count` of them (and so at least two,
    as the next smaller step gave more than `max_count`)."""
    if not high > low:
        return [low]
    span = high - low
    exponent = math.floor(math.log10(span / max_count)) - 1
    while True:
        for multiple in (1, 2, 5):
            step = multiple * 10.0**exponent
            first = math.ceil(low / step - 1e-9)
            last = math.floor(high / step + 1e-9)
            if last - first + 1 <= max_count:
                decimals = max(0, -exponent)
                return [round(k * step, decimals) for k in range(first, last + 1)]
        exponent += 1


@dataclass(frozen=True)
class _Interval:
    unit: str  # minute, hour, day, week, month, year
    count: int


_INTERVALS = tuple(
    _Interval(unit, count)
    for unit, counts in (
        ("minute", (1, 2, 5, 10, 15, 30)),
        ("hour", (1, 2, 3, 6, 12)),
        ("day", (1, 2)),
        ("week", (1, 2)),
        ("month", (1, 2, 3, 6)),
        ("year", (1, 2, 5, 10, 20, 50, 100)),
    )
    for count in counts
)


def _tick_format(interval: _Interval, start: dt.datetime, end: dt.datetime) -> str:
    if interval.unit in ("minute", "hour"):
        return "%H:%M" if start.date() == end.date() else "%-d %b %H:%M"
    if interval.unit in ("day", "week"):
        return "%-d %b" if start.year == end.year else "%-d %b %Y"
    return "%b %Y" if interval.unit == "month" else "%Y"


def _first_tick(start: dt.datetime, interval: _Interval) -> dt.datetime:
    """The first boundary of the interval at or after `start` (naive local time)."""
    n = interval.count
    if interval.unit == "minute":
        floor = start.replace(second=0, microsecond=0, minute=start.minute - start.minute % n)
        step = dt.timedelta(minutes=n)
    elif interval.unit == "hour":
        floor = start.replace(minute=0, second=0, microsecond=0, hour=start.hour - start.hour % n)
        step = dt.timedelta(hours=n)
    elif interval.unit in ("day", "week"):
        floor = start.replace(hour=0, minute=0, second=0, microsecond=0)
        if interval.unit == "week":
            floor -= dt.timedelta(days=floor.weekday())  # Mondays
        step = dt.timedelta(days=n * (7 if interval.unit == "week" else 1))
    elif interval.unit == "month":
        floor = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        floor = floor.replace(month=floor.month - (floor.month - 1) % n)
        return floor if floor >= start else _add_months(floor, n)
    else:
        floor = start.replace(
            year=start.year - start.year % n, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
        )
        return floor if floor >= start else floor.replace(year=floor.year + n)
    return floor if floor >= start else floor + step


def _add_months(when: dt.datetime, months: int) -> dt.datetime:
    index = when.month - 1 + months
    return when.replace(year=when.year + index // 12, month=index % 12 + 1)


def _next_tick(when: dt.datetime, interval: _Interval) -> dt.datetime:
    n = interval.count
    if interval.unit == "minute":
        return when + dt.timedelta(minutes=n)
    if interval.unit == "hour":
        return when + dt.timedelta(hours=n)
    if interval.unit == "day":
        return when + dt.timedelta(days=n)
    if interval.unit == "week":
        return when + dt.timedelta(weeks=n)
    if interval.unit == "month":
        return _add_months(when, n)
    return when.replace(year=when.year + n)


def label_width(text: str) -> float:
    """An estimate of a label's drawn width, a little generous."""
    return len(text) * CHAR_WIDTH


def time_ticks(
    start: dt.datetime,
    end: dt.datetime,
    *,
    width: float,
    tz: dt.tzinfo | None = None,
    gap: float = 12,
    max_count: int = MAX_X_TICKS,
) -> list[tuple[dt.datetime, str]]:
    """Ticks (instant, label) for a time axis `width` pixels long from `start` to `end`: the finest
    interval (minutes, hours, days, weeks, months, years) giving at most `max_count` ticks whose
    labels, centred on their ticks, keep `gap` pixels apart. Without any boundary inside the range,
    the start and end themselves (or the start alone, when both would not fit)."""
    zone = tz or dt.UTC
    local_start = start.astimezone(zone).replace(tzinfo=None)
    local_end = end.astimezone(zone).replace(tzinfo=None)
    seconds = (end - start).total_seconds()

    def x_of(when: dt.datetime) -> float:
        return 0.0 if seconds <= 0 else (when - start).total_seconds() / seconds * width

    def fits(ticks: list[tuple[dt.datetime, str]]) -> bool:
        for (a, a_label), (b, b_label) in itertools.pairwise(ticks):
            if x_of(b) - x_of(a) < (label_width(a_label) + label_width(b_label)) / 2 + gap:
                return False
        return True

    for interval in _INTERVALS:
        fmt = _tick_format(interval, local_start, local_end)
        ticks: list[tuple[dt.datetime, str]] = []
        local = _first_tick(local_start, interval)
        too_many = False
        while local <= local_end:
            instant = local.replace(tzinfo=zone)
            if start <= instant <= end:
                ticks.append((instant, local.strftime(fmt)))
            if len(ticks) > max_count:
                too_many = True
                break
            local = _next_tick(local, interval)
        if too_many or not ticks or not fits(ticks):
            continue
        return ticks
    fmt = "%H:%M" if seconds < 86400 else DATE_FORMAT
    ends = [(start, local_start.strftime(fmt)), (end, local_end.strftime(fmt))]
    return ends if seconds > 0 and fits(ends) else ends[:1]


# --- Drawing -------------------------------------------------------------------------------------


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
    bands: Sequence[Band] = ()

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
            "bands": [[b.label, repr(float(b.low)), repr(float(b.high))] for b in self.bands],
            "tz": str(self.tz) if self.tz is not None else "",
            "size": [self.width, self.height],
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
    bands: Sequence[Band] = (),
    tz: dt.tzinfo | None = None,
    width: int = 640,
    height: int = 280,
) -> str:
    """A dated line chart as an `<svg>` string, with `bands` shaded and `thresholds` as dashed lines,
    each labelled at the right of the plot, and each series' latest value labelled at its point;
    "" when the series hold fewer than two instants (no trend: show `point_text` instead).

    The drawing is a pure function of the arguments, so it is kept in the cache under a digest of
    every argument: a changed reading, limit or time zone is another key, so a kept drawing is
    never out of date. Without a cache it is drawn each time.
    """
    if not drawable(series):
        return ""
    chart = _Chart(title, series, y_min, y_max, thresholds, tz, width, height, bands)
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


def _spread(wanted: list[float], *, spacing: float, low: float, high: float) -> list[float]:
    """Positions as near `wanted` (sorted, increasing) as keeps them `spacing` apart within
    [low, high]: labels pushed down past each other, then back up from the bottom edge."""
    placed: list[float] = []
    for y in wanted:
        placed.append(max(y, placed[-1] + spacing) if placed else max(y, low))
    for index in range(len(placed) - 1, -1, -1):
        ceiling = high if index == len(placed) - 1 else placed[index + 1] - spacing
        placed[index] = min(placed[index], ceiling)
    return placed


def _text(
    x: float, y: float, text: str, *, anchor: str = "start", fill: str = TEXT_COLOUR, **extra: str
) -> str:
    kind = f'class="{extra.pop("class_")}" ' if "class_" in extra else ""
    attributes = "".join(f' {name.replace("_", "-")}="{value}"' for name, value in extra.items())
    position = f'x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"'
    return f"<text {kind}{position}{attributes}>{escape(text)}</text>"


def _halo_text(x: float, y: float, text: str, *, fill: str, kind: str) -> str:
    """Bold text on a white outline, so that it stays readable over lines and bands: drawn twice, as
    WeasyPrint does not know `paint-order` (only the second, in colour, carries the `kind`)."""
    outline = {"stroke": "white", "stroke_width": "3", "stroke_linejoin": "round", "font_weight": "bold"}
    return _text(x, y, text, fill="white", class_="halo", **outline) + _text(
        x, y, text, fill=fill, class_=kind, font_weight="bold"
    )


def _description(spec: _Chart, tz: dt.tzinfo | None) -> str:
    every = [when for line in spec.series for when, _ in line.points]
    same_day = (max(every) - min(every)) < dt.timedelta(days=1)
    fmt = "%H:%M" if same_day else DATE_FORMAT
    parts = []
    for line in spec.series:
        if not line.points:
            continue
        values = ", ".join(
            f"{format_value(v)} at {(w.astimezone(tz) if tz else w).strftime(fmt)}"
            if same_day
            else f"{format_value(v)} on {(w.astimezone(tz) if tz else w).strftime(fmt)}"
            for w, v in line.points
        )
        parts.append(f"{line.label}: {values} (the latest).")
    if spec.bands:
        parts.append("Bands: " + "; ".join(f"{b.label} from {format_value(b.low)}" for b in spec.bands) + ".")
    if spec.thresholds:
        parts.append(
            "Lines: " + "; ".join(f"{t.label} at {format_value(t.value)}" for t in spec.thresholds) + "."
        )
    return " ".join(parts)


def _draw(spec: _Chart) -> str:
    tz = spec.tz
    width, height = spec.width, spec.height
    colours = {line.label: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, line in enumerate(spec.series)}
    y_ticks = nice_ticks(spec.y_min, spec.y_max)
    y_labels = [format_value(v) for v in y_ticks]
    latest_labels = [format_value(line.points[-1][1]) for line in spec.series if line.points]
    side_labels = [t.label for t in spec.thresholds] + [b.label for b in spec.bands]
    legend = len(spec.series) > 1

    top = 30.0
    left = max(label_width(text) for text in y_labels) + 12
    latest_column = max(label_width(text) for text in latest_labels) + 12
    side_column = (max(label_width(text) for text in side_labels) + 14) if side_labels else 0
    right = width - latest_column - side_column - 4
    bottom = height - 26 - (22 if legend else 0)
    x0, x1 = left + 8, right - 8  # points keep clear of the axes

    every = [when for line in spec.series for when, _ in line.points]
    start, end = min(every), max(every)
    seconds = (end - start).total_seconds()

    def x_of(when: dt.datetime) -> float:
        return x0 + (when - start).total_seconds() / seconds * (x1 - x0)

    def y_of(value: float) -> float:
        clamped = min(max(value, spec.y_min), spec.y_max)
        return bottom - (clamped - spec.y_min) / max(spec.y_max - spec.y_min, 1e-9) * (bottom - top)

    out = [
        f'<svg role="img" focusable="false" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="{FONT_SIZE}">',
        f"<title>{escape(spec.title)}</title>",
        f"<desc>{escape(_description(spec, tz))}</desc>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        _text(left, 18, spec.title, font_size="14", font_weight="bold"),
    ]
    # Bands, shaded across the plot, each a tint up the severity scale.
    side: list[tuple[float, str, str, str]] = []  # wanted y, label, text colour, kind
    for index, band in enumerate(spec.bands):
        tint = BAND_TINTS[round(index * (len(BAND_TINTS) - 1) / max(1, len(spec.bands) - 1))]
        y_top, y_bottom = y_of(band.high), y_of(band.low)
        out.append(
            f'<rect class="band" x="{left:.1f}" y="{y_top:.1f}" width="{right - left:.1f}" '
            f'height="{y_bottom - y_top:.1f}" fill="{tint}"/>'
        )
        side.append(((y_top + y_bottom) / 2, band.label, MUTED_TEXT_COLOUR, "band"))
    # Grid and the vertical axis's labels.
    for value, text in zip(y_ticks, y_labels, strict=True):
        y = y_of(value)
        out.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="{GRID_COLOUR}"/>'
        )
        out.append(_text(left - 6, y + 4, text, anchor="end", fill=MUTED_TEXT_COLOUR, class_="y-tick"))
    # The time axis.
    out.append(
        f'<line x1="{left:.1f}" y1="{bottom:.1f}" x2="{right:.1f}" y2="{bottom:.1f}" stroke="{AXIS_COLOUR}"/>'
    )
    for when, text in time_ticks(start, end, width=x1 - x0, tz=tz):
        x = x_of(when)
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 4:.1f}" '
            f'stroke="{AXIS_COLOUR}"/>'
        )
        out.append(_text(x, bottom + 16, text, anchor="middle", fill=MUTED_TEXT_COLOUR, class_="x-tick"))
    # Limits and cut-points: dashed lines across the plot, on to their labels.
    label_x = width - side_column + 4
    for threshold in spec.thresholds:
        colour = colours.get(threshold.colour_of, AXIS_COLOUR)
        y = y_of(threshold.value)
        out.append(
            f'<line class="threshold" x1="{left:.1f}" y1="{y:.1f}" x2="{label_x - 4:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        side.append((y, threshold.label, colours.get(threshold.colour_of, TEXT_COLOUR), "threshold"))
    side.sort(key=lambda item: item[0])
    placed = _spread([y + 4 for y, *_ in side], spacing=FONT_SIZE + 2, low=top + 4, high=bottom + 4)
    for y, (_, text, colour, kind) in zip(placed, side, strict=True):
        out.append(_text(label_x, y, text, fill=colour, class_=f"{kind}-label"))
    # The series, each with its latest value labelled beside its last point.
    latest: list[tuple[float, float, str, str]] = []
    for line in spec.series:
        if not line.points:
            continue
        colour = colours[line.label]
        coordinates = [(x_of(when), y_of(value)) for when, value in line.points]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
        out.append(
            f'<polyline class="series" points="{path}" fill="none" stroke="{colour}" stroke-width="2.5" '
            'stroke-linejoin="round"/>'
        )
        out.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}" stroke="white" stroke-width="1"/>'
            for x, y in coordinates
        )
        x, y = coordinates[-1]
        latest.append((y, x, format_value(line.points[-1][1]), colour))
    latest.sort()
    placed = _spread([y + 4 for y, *_ in latest], spacing=FONT_SIZE + 2, low=top + 4, high=bottom + 4)
    for y, (_, x, text, colour) in zip(placed, latest, strict=True):
        out.append(_halo_text(x + 7, y, text, fill=colour, kind="latest"))
    # A legend when there is more than one series (one series is named by the title).
    if legend:
        x = left
        y = height - 10
        for line in spec.series:
            colour = colours[line.label]
            out.append(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 18:.1f}" y2="{y - 4:.1f}" stroke="{colour}" '
                'stroke-width="2.5"/>'
            )
            out.append(_text(x + 22, y, line.label, fill=colour))
            x += 22 + label_width(line.label) + 16
    out.append("</svg>")
    return "".join(out)
