"""The pathway summary PDF draws the page's charts: a measure given twice as a chart with its bands
and its latest value, a measure given once as a value and a date. Read back with pdftotext."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils import timezone

from integration import selectors
from integration import summaries
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage
from screening import services as screening_services
from screening.models import MeasureResponse

from ..factories import PathwayFactory
from ..screening.helpers import screened

pytestmark = pytest.mark.django_db


def test_the_pathway_summary_pdf_draws_the_measure_charts(staff: dict[str, User], output_dir: Path) -> None:
    cache.clear()
    prescriber = staff[Role.PRESCRIBER]
    pathway = PathwayFactory(
        clinic=prescriber.clinic,
        prescriber=prescriber,
        therapist=staff[Role.THERAPIST],
        stage=Stage.ASSESSMENT,
        patient__registered_by=prescriber,
    )
    screened(pathway, prescriber)  # every measure once, all at 0
    four_weeks_ago = timezone.now() - dt.timedelta(days=28)
    MeasureResponse.objects.filter(pathway=pathway).update(administered_at=four_weeks_ago)
    screening_services.measure_record(
        actor=prescriber, pathway=pathway, instrument="phq9", answers=[2] * 8 + [0]
    )  # 16: moderately severe

    data = summaries.summary_data(selectors.SummarySource("pathway", pathway, pathway, "Pathway summary"))
    tz = zoneinfo.ZoneInfo(data["time_zone"])
    charts = summaries._charts(data, tz)
    content, _pages = summaries.render_pdf(data, generated_at=timezone.now())

    path = output_dir / "pathway-charts.pdf"
    path.write_bytes(content)
    assert shutil.which("pdftotext") is not None
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    words = " ".join(text.split())
    # The PHQ-9 chart: its title, its bands labelled in the plot, and its latest value.
    [drawn] = [chart for chart in charts if chart["svg"]]
    assert drawn["label"] == "PHQ-9 (depression)"
    assert drawn["svg"] in render_html(data, tz)  # the very SVG of the page, inline in the PDF
    for band in ("Minimal", "Mild", "Moderate", "Moderately severe", "Severe"):
        assert re.search(rf"\b{band}\b", words), band
    assert "PHQ-9 (depression)" in words
    assert re.search(r"\b16\b", words)
    # GAD-7, PCL-5 and DES-II given once: a value and a date, not a chart.
    given_once = four_weeks_ago.astimezone(tz)
    for short in ("GAD-7", "PCL-5", "DES-II"):
        assert f"{short} 0 on {given_once:%-d %b %Y}" in words, short
    subprocess.run(
        ["pdftoppm", "-png", "-r", "70", str(path), str(output_dir / "pathway-charts")], check=True
    )


def render_html(data: dict[str, Any], tz: dt.tzinfo) -> str:
    """The summary's HTML, as `render_pdf` renders it."""
    return render_to_string(
        "integration/pdf/pathway.html",
        {
            "data": data,
            "body": data["body"],
            "charts": summaries._charts(data, tz),
            "generated_at": timezone.now(),
        },
    )
