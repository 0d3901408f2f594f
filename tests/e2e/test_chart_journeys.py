"""Charts in the browser: a new patient's measures (each given once) read as a value and a date,
an established patient's as charts over their bands with the latest value labelled, and the
session record's vitals trend with the clinic's limits; at the tablet's width and at 1280 px."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from pathways.demo import DEMO_PASSWORD
from pathways.demo import demo_clinic_load
from pathways.models import Pathway
from sessions.models import DosingSession

from .conftest import assert_accessible
from .conftest import shot
from .test_foundation_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _chart_svgs(page: Page) -> list[str]:
    """The SVG of each chart image on the page."""
    sources = page.locator("img.chart-img").evaluate_all("images => images.map(image => image.src)")
    return [base64.b64decode(source.split(",", 1)[1]).decode() for source in sources]


def test_new_and_established_patients_charts_and_the_vitals_trend(
    page: Page, live_server: Any, output_dir: Path
) -> None:
    demo_clinic_load()
    base = live_server.url
    new = Pathway.objects.get(patient__record_number="HB-1008")  # screened once
    established = Pathway.objects.get(patient__record_number="HB-1006")  # repeat measures since
    record = DosingSession.objects.filter(booking__patient__record_number="HB-1004", status="signed").first()
    assert record is not None
    sign_in(page, base, "prescriber@demo.kaemdr.test", DEMO_PASSWORD)

    for width in (1180, 1280):
        page.set_viewport_size({"width": width, "height": 820})

        # A new patient: every measure given once is a value and a date, no chart.
        page.goto(f"{base}/pathways/{new.public_id}/")
        screening = page.locator("#screening")
        expect(screening.get_by_role("heading", name="Measures over time")).to_be_visible()
        figures = screening.locator(".chart-point")
        expect(figures.first).to_be_visible()
        assert re.fullmatch(r"PHQ-9 16 on \d{1,2} \w{3} \d{4}", figures.first.locator("strong").inner_text())
        expect(screening.locator("img.chart-img")).to_have_count(0)
        screening.scroll_into_view_if_needed()
        shot(page, output_dir, f"01-new-patient-{width}")
        screening.screenshot(path=str(output_dir / f"01-new-patient-measures-{width}.png"))
        assert_accessible(page, output_dir, f"new-patient-{width}")

        # An established patient: PHQ-9 and PCL-5 drawn over their bands, the latest value labelled.
        page.goto(f"{base}/pathways/{established.public_id}/")
        screening = page.locator("#screening")
        charts = screening.locator("img.chart-img")
        expect(charts.first).to_be_visible()
        assert page.evaluate("document.querySelector('img.chart-img').naturalWidth") > 0
        svgs = _chart_svgs(page)
        phq9 = next(svg for svg in svgs if "<title>PHQ-9 (depression)</title>" in svg)
        assert re.findall(r'<text class="band-label"[^>]*>([^<]*)</text>', phq9)
        assert re.findall(r'<text class="latest"[^>]*>([^<]*)</text>', phq9) == ["8"]  # 12, 9, then 8
        expect(screening.get_by_text("Shaded bands and dashed lines")).to_be_visible()
        screening.scroll_into_view_if_needed()
        shot(page, output_dir, f"02-established-patient-{width}")
        screening.screenshot(path=str(output_dir / f"02-established-patient-measures-{width}.png"))
        assert_accessible(page, output_dir, f"established-patient-{width}")

        # The session record's vitals trend, with the clinic's limits labelled in the plot.
        page.goto(f"{base}/dosing/sessions/{record.public_id}/")
        trend = page.locator("#vitals-trend")
        expect(trend.locator("img.chart-img")).to_be_visible()
        [vitals] = _chart_svgs(page)
        limits = re.findall(r'<text class="threshold-label"[^>]*>([^<]*)</text>', vitals)
        assert sorted(limits) == ["Max 110", "Max 120", "Max 180", "Min 92%"]
        trend.scroll_into_view_if_needed()
        trend.screenshot(path=str(output_dir / f"03-vitals-trend-{width}.png"))
        assert_accessible(page, output_dir, f"vitals-trend-{width}")
