"""At the chair (issue 16, item 7): out-of-range input is answered with the allowed range, by the page
and by the API; readings near the clinic's limits are flagged in the table; the record shows the
vitals trend with the limits drawn as lines, the same chart as the session's PDF summary."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.core.validators import MaxValueValidator
from django.core.validators import MinValueValidator
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from integration import selectors as summary_selectors
from integration import summaries
from kaemdr import charts
from kaemdr.models import Role
from kaemdr.models import User
from sessions.booking import services
from sessions.models import DosingSession
from sessions.models import VitalsReading
from sessions.record import rules
from sessions.record import selectors
from sessions.record import services as record_services
from sessions.record import views
from sessions.record.forms import VitalsForm

pytestmark = pytest.mark.django_db

LIMITS = rules.VitalLimits()  # 180/110, heart rate 120, SpO2 at least 92, respiratory rate 10-24


# --- the allowed ranges -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", list(rules.VITAL_RANGES))
def test_vital_ranges_are_the_models_validators(field: str) -> None:
    validators = VitalsReading._meta.get_field(field).validators
    low = next(v.limit_value for v in validators if isinstance(v, MinValueValidator))
    high = next(v.limit_value for v in validators if isinstance(v, MaxValueValidator))
    assert (rules.VITAL_RANGES[field].low, rules.VITAL_RANGES[field].high) == (low, high)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("systolic", "300", "Enter a systolic between 50 and 280 mmHg."),
        ("systolic", "49", "Enter a systolic between 50 and 280 mmHg."),
        ("diastolic", "181", "Enter a diastolic between 20 and 180 mmHg."),
        ("heart_rate", "19", "Enter a heart rate between 20 and 250 bpm."),
        ("spo2", "101", "Enter an SpO2 between 50 and 100%."),
        ("respiratory_rate", "61", "Enter a respiratory rate between 2 and 60 breaths/min."),
        ("respiratory_rate", "1.5", "Enter a respiratory rate between 2 and 60 breaths/min."),
    ],
)
def test_vitals_form_names_the_allowed_range(field: str, value: str, message: str) -> None:
    form = VitalsForm({field: value})
    assert not form.is_valid()
    assert form.errors[field] == [message]


def test_vitals_form_fields_have_units_and_a_numeric_keypad() -> None:
    form = VitalsForm()
    readings = [name for name in form.fields if name != "taken_at"]
    assert [str(form[name].label) for name in readings] == [
        'Systolic <span class="vital-unit">mmHg</span>',
        'Diastolic <span class="vital-unit">mmHg</span>',
        'Heart rate <span class="vital-unit">bpm</span>',
        'SpO2 <span class="vital-unit">%</span>',
        'Resp. rate <span class="vital-unit">/min</span>',
    ]
    assert all(form.fields[name].widget.attrs["inputmode"] == "numeric" for name in readings)
    assert str(form["taken_at"].label) == "Taken at, if entered late"  # a time, on a row of its own


@pytest.fixture
def session(
    staff: dict[str, User], dosing_pathway: Any, room: Any, slot: Callable[..., dt.datetime]
) -> DosingSession:
    booking = services.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=dosing_pathway,
        room=room,
        starts_at=slot(0, 9),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )
    return record_services.session_open(actor=staff[Role.MONITOR], booking=booking)


def test_an_out_of_range_reading_is_refused_on_the_page_with_the_range_and_the_input_kept(
    staff: dict[str, User], session: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    response = client_for(staff[Role.MONITOR]).post(
        reverse("session_action", args=[session.public_id, "vitals"]),
        {"systolic": "300", "diastolic": "84", "heart_rate": "76", "spo2": "98", "respiratory_rate": "14"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    systolic = re.search(r'<input[^>]*name="systolic"[^>]*>', html)
    assert systolic is not None
    assert 'value="300"' in systolic.group(0)
    assert "is-invalid" in systolic.group(0)
    # The message sits with its field (crispy's feedback right after the input), not elsewhere.
    after = html[systolic.end() : systolic.end() + 300]
    assert "Enter a systolic between 50 and 280 mmHg." in after
    diastolic = re.search(r'<input[^>]*name="diastolic"[^>]*>', html)
    assert diastolic is not None
    assert 'value="84"' in diastolic.group(0)
    assert "is-invalid" not in diastolic.group(0)
    assert not VitalsReading.objects.filter(session=session).exists()


def test_an_out_of_range_reading_is_refused_by_the_api_with_the_range(
    staff: dict[str, User], session: DosingSession
) -> None:
    client = APIClient()
    client.force_authenticate(staff[Role.MONITOR])
    response = client.post(
        f"/api/v1/sessions/{session.public_id}/vitals/", {"spo2": 120, "heart_rate": 80}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "spo2", "code": "max_value", "message": "Enter an SpO2 between 50 and 100%."}
    ]
    assert not VitalsReading.objects.filter(session=session).exists()


# --- near the limits ------------------------------------------------------------------------------


def reading(**values: int) -> rules.Reading:
    fields = {"systolic": None, "diastolic": None, "heart_rate": None, "spo2": None, "respiratory_rate": None}
    return rules.Reading(**{**fields, **values})


@pytest.mark.parametrize(
    ("values", "near"),
    [
        ({"systolic": 169}, []),
        ({"systolic": 170}, [("systolic", "Systolic 170 is near the limit of 180.")]),
        ({"systolic": 180}, [("systolic", "Systolic 180 is near the limit of 180.")]),
        ({"systolic": 181}, []),  # out of range: flagged by vital_flags, not near
        ({"diastolic": 99}, []),
        ({"diastolic": 100}, [("diastolic", "Diastolic 100 is near the limit of 110.")]),
        ({"diastolic": 111}, []),
        ({"heart_rate": 109}, []),
        ({"heart_rate": 110}, [("heart_rate", "Heart rate 110 is near the limit of 120.")]),
        ({"heart_rate": 121}, []),
        ({"spo2": 95}, []),
        ({"spo2": 94}, [("spo2", "SpO2 94% is near the limit of 92%.")]),
        ({"spo2": 92}, [("spo2", "SpO2 92% is near the limit of 92%.")]),
        ({"spo2": 91}, []),
        ({"respiratory_rate": 9}, []),
        ({"respiratory_rate": 10}, [("respiratory_rate", "Respiratory rate 10 is near the limit of 10.")]),
        ({"respiratory_rate": 12}, [("respiratory_rate", "Respiratory rate 12 is near the limit of 10.")]),
        ({"respiratory_rate": 13}, []),
        ({"respiratory_rate": 21}, []),
        ({"respiratory_rate": 22}, [("respiratory_rate", "Respiratory rate 22 is near the limit of 24.")]),
        ({"respiratory_rate": 25}, []),
        ({}, []),
        (
            {"systolic": 175, "diastolic": 80, "heart_rate": 112, "spo2": 98, "respiratory_rate": 14},
            [
                ("systolic", "Systolic 175 is near the limit of 180."),
                ("heart_rate", "Heart rate 112 is near the limit of 120."),
            ],
        ),
    ],
)
def test_vital_near_flags(values: dict[str, int], near: list[tuple[str, str]]) -> None:
    flagged = rules.vital_near_flags(reading(**values), LIMITS)
    assert [(n.field, n.message) for n in flagged] == near


def test_vital_near_flags_follow_the_clinics_limits() -> None:
    limits = rules.VitalLimits(systolic_max=160, spo2_min=90)
    assert [n.field for n in rules.vital_near_flags(reading(systolic=150, spo2=92), limits)] == [
        "systolic",
        "spo2",
    ]
    assert rules.vital_near_flags(reading(systolic=149, spo2=93), limits) == []


def test_vital_cell_marks_name_each_cell_out_or_near() -> None:
    marks = rules.vital_cell_marks(
        reading(systolic=196, diastolic=104, heart_rate=80, spo2=90, respiratory_rate=23), LIMITS
    )
    assert marks == {"systolic": "out", "diastolic": "near", "spo2": "out", "respiratory_rate": "near"}


def _record(session: DosingSession, monitor: User, minutes: int, **values: int) -> VitalsReading:
    """A reading at `minutes` after 09:00 today, flagged as the service flags it."""
    taken_at = dt.datetime.combine(dt.date(2026, 11, 23), dt.time(9, 0), tzinfo=dt.UTC) + dt.timedelta(
        minutes=minutes
    )
    fields = {"systolic": None, "diastolic": None, "heart_rate": None, "spo2": None, "respiratory_rate": None}
    fields.update(values)
    return VitalsReading.objects.create(
        session=session,
        taken_at=taken_at,
        is_pre_dose=minutes == 0,
        recorded_by=monitor,
        flags=rules.vital_flags(rules.Reading(**fields), LIMITS),
        **fields,
    )


@pytest.fixture
def readings(staff: dict[str, User], session: DosingSession) -> list[VitalsReading]:
    monitor = staff[Role.MONITOR]
    return [
        _record(session, monitor, 0, systolic=128, diastolic=82, heart_rate=76, spo2=98, respiratory_rate=14),
        _record(
            session, monitor, 15, systolic=174, diastolic=96, heart_rate=88, spo2=97, respiratory_rate=16
        ),
        _record(
            session, monitor, 30, systolic=196, diastolic=104, heart_rate=92, spo2=96, respiratory_rate=16
        ),
        _record(
            session, monitor, 45, systolic=132, diastolic=84, heart_rate=78, spo2=98, respiratory_rate=14
        ),
    ]


def _row(html: str, time: str) -> str:
    found = re.search(rf"<tr[^>]*>\s*<td>{time}.*?</tr>", html, re.DOTALL)
    assert found is not None, time
    return found.group(0)


def test_the_record_flags_readings_near_and_beyond_the_limits(
    staff: dict[str, User],
    session: DosingSession,
    readings: list[VitalsReading],
    client_for: Callable[[User | None], Client],
) -> None:
    html = client_for(staff[Role.MONITOR]).get(reverse("session_detail", args=[session.public_id])).content
    page = html.decode()
    tz = zoneinfo.ZoneInfo(session.clinic.time_zone)

    def at(r: VitalsReading) -> str:
        return r.taken_at.astimezone(tz).strftime("%H:%M")

    calm, near, out, _ = readings
    assert "near limit" not in _row(page, at(calm))
    assert "table-warning" not in _row(page, at(calm))
    near_row = _row(page, at(near))
    assert near_row.startswith('<tr class="table-warning">')
    assert '<span class="badge text-bg-warning border border-dark-subtle">near limit</span>' in near_row
    assert "Systolic 174 is near the limit of 180." in near_row
    assert '<span class="vital-value vital-near">174</span>' in near_row
    assert '<span class="vital-mark vital-mark-near">near limit</span>' in near_row
    out_row = _row(page, at(out))
    assert out_row.startswith('<tr class="table-danger">')
    assert "Systolic 196 is above 180." in out_row
    assert '<span class="vital-value vital-out">196</span>' in out_row
    assert '<span class="vital-mark vital-mark-out">out of range</span>' in out_row
    assert '<span class="vital-value vital-near">104</span>' in out_row  # diastolic near its limit


def _svg_of_page(html: str) -> str:
    import base64

    found = re.search(r'<img class="chart-img" src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', html)
    assert found is not None
    assert found.group(2).startswith("Vitals trend: systolic, diastolic, heart rate and SpO2")
    return base64.b64decode(found.group(1)).decode()


def test_the_record_shows_the_vitals_trend_with_a_text_alternative(
    staff: dict[str, User],
    session: DosingSession,
    readings: list[VitalsReading],
    client_for: Callable[[User | None], Client],
) -> None:
    page = client_for(staff[Role.MONITOR]).get(reverse("session_detail", args=[session.public_id])).content
    html = page.decode()
    assert 'id="vitals-trend"' in html
    svg = _svg_of_page(html)
    assert svg.startswith('<svg role="img"')
    assert "<script" not in svg
    assert "4 readings from" in html
    assert "the latest: blood pressure 132/84, heart rate 78, SpO2 98%." in html
    assert "systolic 180, diastolic 110, heart rate 120, SpO2 at least 92%." in html


def test_no_trend_without_readings(
    staff: dict[str, User], session: DosingSession, client_for: Callable[[User | None], Client]
) -> None:
    html = client_for(staff[Role.MONITOR]).get(reverse("session_detail", args=[session.public_id])).content
    assert b'id="vitals-trend"' not in html
    assert b"No readings yet." in html


def _chart_readings() -> list[tuple[dt.datetime, rules.Reading]]:
    start = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    return [
        (start, reading(systolic=128, diastolic=82, heart_rate=76, spo2=98)),
        (start + dt.timedelta(minutes=15), reading(systolic=174, diastolic=96, heart_rate=88, spo2=97)),
        (start + dt.timedelta(minutes=30), reading(systolic=132, diastolic=84, heart_rate=78, spo2=93)),
    ]


def test_the_vitals_chart_draws_four_readings_and_the_four_limits_as_labelled_lines() -> None:
    cache.clear()
    chart = selectors.vitals_chart(_chart_readings(), LIMITS, zoneinfo.ZoneInfo("Europe/London"))
    assert chart is not None
    svg = chart["svg"]
    for label in ("Systolic", "Diastolic", "Heart rate", "SpO2 %"):
        assert f">{label}</text>" in svg  # the legend
    # Each limit labelled in the plot, in its reading's colour (the legend's colour of that reading).
    legend = {
        label: colour
        for colour, label in re.findall(r'fill="(#\w+)">(Systolic|Diastolic|Heart rate|SpO2 %)</text>', svg)
    }
    found = re.findall(r'<text class="threshold-label"[^>]* fill="(#\w+)">([^<]+)</text>', svg)
    assert {label: colour for colour, label in found} == {
        "Max 180": legend["Systolic"],
        "Max 110": legend["Diastolic"],
        "Max 120": legend["Heart rate"],
        "Min 92%": legend["SpO2 %"],
    }
    assert len(set(legend.values())) == 4
    # Each reading's latest value labelled at its point: 132/84, 78, 93.
    assert sorted(re.findall(r'<text class="latest"[^>]*>([^<]*)</text>', svg)) == sorted(
        ["132", "84", "78", "93"]
    )


def test_the_vitals_chart_limit_lines_sit_at_the_limits() -> None:
    """A limit line is flat at its value: both its ends on the same height as each other, and a
    higher limit drawn higher (smaller y) than a lower one."""
    cache.clear()
    chart = selectors.vitals_chart(_chart_readings(), LIMITS, zoneinfo.ZoneInfo("Europe/London"))
    assert chart is not None
    lines = re.findall(
        r'<line class="threshold" x1="[\d.]+" y1="([\d.]+)" x2="[\d.]+" y2="([\d.]+)"', chart["svg"]
    )
    assert len(lines) == 4
    assert all(y1 == y2 for y1, y2 in lines)
    systolic, diastolic, heart_rate, spo2 = (float(y1) for y1, _ in lines)
    assert systolic < heart_rate < diastolic < spo2  # 180 above 120 above 110 above 92


def test_one_reading_time_is_a_text_figure_not_a_chart() -> None:
    """One reading is no trend: no drawing, but the reading and its time in words; none without any."""
    first, second, _ = _chart_readings()
    assert selectors.vitals_chart([], LIMITS, dt.UTC) is None
    one = selectors.vitals_chart([first], LIMITS, dt.UTC)
    assert one is not None
    assert one["svg"] == ""
    assert one["summary"].startswith("1 reading at 09:00; the latest: blood pressure 128/82, heart rate 76")
    assert "drawn as dashed lines" not in one["summary"]
    # Two readings but only one with a charted value: still one time, no trend.
    only_one_charted = selectors.vitals_chart(
        [first, (second[0], reading(respiratory_rate=14))], LIMITS, dt.UTC
    )
    assert only_one_charted is not None
    assert only_one_charted["svg"] == ""
    two = selectors.vitals_chart([first, second], LIMITS, dt.UTC)
    assert two is not None
    assert two["svg"].startswith('<svg role="img"')


def test_the_record_page_and_the_pdf_summary_draw_the_same_chart(
    staff: dict[str, User],
    session: DosingSession,
    readings: list[VitalsReading],
    client_for: Callable[[User | None], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache.clear()
    drawn: list[str] = []
    shared = selectors.vitals_chart

    def counted(*args: Any, **kwargs: Any) -> dict[str, str] | None:
        chart = shared(*args, **kwargs)
        drawn.append(chart["svg"] if chart else "")
        return chart

    monkeypatch.setattr(selectors, "vitals_chart", counted)
    page = client_for(staff[Role.MONITOR]).get(reverse("session_detail", args=[session.public_id]))
    page_svg = _svg_of_page(page.content.decode())

    # The PDF's charts, from the summary's data of the same record (signed or not, the data and the
    # chart are read the same way).
    source = summary_selectors.SummarySource("dosing_session", session, session.booking.pathway, "Session")
    data = summaries.summary_data(source)
    pdf_charts = summaries._charts(data, zoneinfo.ZoneInfo(data["time_zone"]))

    assert len(drawn) == 2  # one drawing for the page, one for the PDF, by the same function
    assert [chart["svg"] for chart in pdf_charts] == [page_svg]  # the same bytes (a cached drawing)
    assert drawn == [page_svg, page_svg]


def test_the_shared_chart_is_drawn_once_and_kept(
    staff: dict[str, User],
    session: DosingSession,
    readings: list[VitalsReading],
    client_for: Callable[[User | None], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache.clear()
    drawings: list[str] = []
    real_draw = charts._draw

    def counted_draw(chart: Any) -> str:
        drawings.append(chart.title)
        return real_draw(chart)

    monkeypatch.setattr(charts, "_draw", counted_draw)
    client = client_for(staff[Role.MONITOR])
    url = reverse("session_detail", args=[session.public_id])
    first = _svg_of_page(client.get(url).content.decode())
    assert _svg_of_page(client.get(url).content.decode()) == first
    assert drawings == ["Vitals over the session"]


def test_reading_rows_mark_the_pressure_cell_by_its_worse_value(
    staff: dict[str, User], session: DosingSession, readings: list[VitalsReading]
) -> None:
    rows = views._reading_rows(readings, LIMITS)
    assert [row["marks"]["pressure"] for row in rows] == ["", "near", "out", ""]
    assert [bool(row["near"]) for row in rows] == [False, True, True, False]
