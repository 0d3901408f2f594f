"""The measures' charts: one administration is a text figure; two or more a chart over the scale's
bands and cut-points exactly as `rules` scores them."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from django.core.cache import cache

from screening import rules
from screening import selectors
from screening.selectors import SeriesPoint

LONDON = zoneinfo.ZoneInfo("Europe/London")
FIRST = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


def test_one_administration_is_a_value_and_a_date_not_a_chart() -> None:
    [chart] = selectors.measure_charts({"phq9": [SeriesPoint(FIRST, 14.0, "Moderate")]}, LONDON)
    assert chart["svg"] == ""
    assert chart["text"] == "PHQ-9 14 on 3 Dec 2026"
    assert chart["band"] == "Moderate"


@pytest.mark.parametrize(
    ("instrument", "bands", "lines"),
    [
        ("phq9", [label for _, _, label in rules.PHQ9_BANDS], []),
        ("gad7", [label for _, _, label in rules.GAD7_BANDS], ["Evaluate further (10)"]),
        ("pcl5", ["Below the cut-point", "Cut-point range (31-33)", "Probable PTSD"], []),
        ("des2", ["Below 30", "High (30 or more)"], []),
    ],
)
def test_two_administrations_are_a_chart_over_the_scales_bands(
    instrument: str, bands: list[str], lines: list[str]
) -> None:
    points = [SeriesPoint(FIRST, 12.0, ""), SeriesPoint(FIRST + dt.timedelta(weeks=4), 8.0, "")]
    [chart] = selectors.measure_charts({instrument: points}, LONDON)
    svg = chart["svg"]
    assert svg.startswith('<svg role="img"')
    assert sorted(re.findall(r'<text class="band-label"[^>]*>([^<]*)</text>', svg)) == sorted(bands)
    assert re.findall(r'<text class="threshold-label"[^>]*>([^<]*)</text>', svg) == lines
    assert re.findall(r'<text class="latest"[^>]*>([^<]*)</text>', svg)[-1] == "8"
    assert chart["source"] == rules.INSTRUMENTS[instrument].source  # where the bands come from


def test_the_bands_start_at_the_totals_the_scoring_bands_at() -> None:
    """Each band's shading begins at the total `rules` puts in it (PHQ-9: 5, 10, 15, 20)."""
    charted = {band.label: band.low for band in selectors.CHARTED[rules.Instrument.PHQ9][1]}
    for total, _, label in rules.PHQ9_BANDS:
        assert charted[label] == total
    pcl5 = {band.label: band.low for band in selectors.CHARTED[rules.Instrument.PCL5][1]}
    assert pcl5["Probable PTSD"] == rules.PCL5_PROBABLE_PTSD
