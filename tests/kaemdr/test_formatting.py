"""Numbers for people: one formatter for every page, PDF, message and email (kaemdr/formatting.py),
and the template filters that use it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from decimal import Decimal
from decimal import localcontext

import pytest
from django.template import Context
from django.template import Template
from hypothesis import example
from hypothesis import given
from hypothesis import strategies as st

from kaemdr.formatting import MEASURES
from kaemdr.formatting import format_figure
from kaemdr.formatting import format_measurement
from kaemdr.formatting import format_number
from kaemdr.formatting import format_score

# Every figure the record holds (scores 0-100, doses to 1000 mg and beyond, mg/kg, vitals,
# temperatures), then far beyond: magnitudes where str() and "g" turn to exponents.
decimals = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=Decimal("-1e30"), max_value=Decimal("1e30")
)
tiny_and_huge = st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: abs(d.adjusted()) < 400)
floats = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(decimals, tiny_and_huge, floats, st.integers(min_value=-(10**40), max_value=10**40))
places = st.integers(min_value=0, max_value=6)


def _exact(value: Decimal | float | int) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("2E+1"), "20"),  # the PCL-5 message's "2E+1"
        (Decimal("1E+1"), "10"),  # the DES-II message's "1E+1"
        (Decimal("20.0"), "20"),
        (Decimal("12.5"), "12.5"),
        (Decimal("1.50"), "1.5"),
        (Decimal("0.0"), "0"),
        (Decimal("-0.0"), "0"),
        (Decimal("1E-7"), "0.0000001"),
        (1e22, "10000000000000000000000"),
        (0.1, "0.1"),
        (80, "80"),
    ],
)
def test_format_number_reads_plainly(value: Decimal | float | int, shown: str) -> None:
    assert format_number(value) == shown


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        (Decimal("0.5"), 2, "0.50"),
        (Decimal("0.125"), 2, "0.13"),  # half up, as the dose rules round
        (Decimal("-0.004"), 2, "0.00"),  # never "-0.00"
        (Decimal("2E+1"), 1, "20.0"),
        (36.65, 1, "36.7"),
    ],
)
def test_format_number_to_fixed_places(value: Decimal | float, places: int, shown: str) -> None:
    assert format_number(value, places) == shown


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (Decimal("80.0"), "mg", "80 mg"),
        (Decimal("37.5"), "mg", "37.5 mg"),
        (56, "mg", "56 mg"),
        (Decimal("0.5"), "mg/kg", "0.50 mg/kg"),
        (14.285714, "mg/kg", "14.29 mg/kg"),
        (Decimal("70.0"), "kg", "70 kg"),
        (Decimal("72.5"), "kg", "72.5 kg"),
        (142, "mmHg", "142 mmHg"),
        (88, "bpm", "88 bpm"),
        (97, "%", "97%"),
        (37, "°C", "37.0 °C"),
        (Decimal("36.65"), "°C", "36.7 °C"),
        (16, "breaths/min", "16 breaths/min"),
    ],
)
def test_format_measurement_uses_the_places_of_its_unit(
    value: Decimal | float | int, unit: str, shown: str
) -> None:
    assert format_measurement(value, unit) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(Decimal("2E+1"), "20"), (Decimal("10.0"), "10"), (Decimal("12.5"), "12.5"), (12.46, "12.5")],
)
def test_format_score_shows_a_total_or_a_mean_to_a_tenth(value: Decimal | float, shown: str) -> None:
    assert format_score(value) == shown


def test_format_number_refuses_what_is_not_a_finite_number() -> None:
    with pytest.raises(ValueError, match="finite"):
        format_number(float("nan"))
    with pytest.raises(ValueError, match="finite"):
        format_number(Decimal("Infinity"))
    with pytest.raises(TypeError):
        format_number(True)
    with pytest.raises(ValueError, match="not both"):
        format_number(1, 2, max_places=1)


@given(numbers)
@example(Decimal("2E+1"))
@example(Decimal("1E+1"))
@example(1e-300)
@example(-0.0)
def test_format_number_never_shows_an_exponent_and_keeps_every_digit(value: Decimal | float | int) -> None:
    shown = format_number(value)
    assert "e" not in shown.lower()
    assert shown != "-0"
    if "." in shown:
        assert not shown.endswith("0")
        assert not shown.endswith(".")
    assert Decimal(shown) == _exact(value)
    if isinstance(value, float):
        assert float(shown) == value


@given(numbers, places)
def test_format_number_to_places_round_trips_the_value_rounded(
    value: Decimal | float | int, fixed: int
) -> None:
    shown = format_number(value, fixed)
    assert "e" not in shown.lower()
    assert len(shown.partition(".")[2]) == fixed
    with localcontext() as context:
        context.prec = 1000  # any magnitude drawn here, exactly
        expected = _exact(value).quantize(Decimal(1).scaleb(-fixed), rounding=ROUND_HALF_UP)
        assert Decimal(shown) == expected


@given(numbers, places)
def test_format_number_to_at_most_places_drops_only_trailing_zeros(
    value: Decimal | float | int, at_most: int
) -> None:
    shown = format_number(value, max_places=at_most)
    assert "e" not in shown.lower()
    assert len(shown.partition(".")[2]) <= at_most
    assert Decimal(shown) == Decimal(format_number(value, at_most))


@given(numbers, st.sampled_from(sorted(MEASURES)))
def test_every_unit_reads_without_an_exponent(value: Decimal | float | int, unit: str) -> None:
    shown = format_measurement(value, unit)
    assert "e" not in shown.lower().replace("breaths", "")
    assert shown.startswith(format_figure(value, unit))
    assert shown.endswith(unit)


def _render(source: str, **context: object) -> str:
    return Template("{% load kaemdr_tags %}" + source).render(Context(context))


def test_template_filters_use_the_formatter() -> None:
    assert _render("{{ x|score }}", x=Decimal("2E+1")) == "20"
    assert _render("{{ x|number }}", x=Decimal("1E+1")) == "10"
    assert _render("{{ x|number:2 }}", x=Decimal("0.5")) == "0.50"
    assert _render('{{ x|measure:"mg" }}', x=Decimal("35.0")) == "35 mg"
    assert _render('{{ x|measure:"mg/kg" }}', x=0.5) == "0.50 mg/kg"
    assert _render('{{ x|figure:"mg" }}', x="56.0") == "56"  # a Decimal stored in a PDF's JSON body


def test_template_filters_leave_what_is_missing_to_default() -> None:
    assert _render('{{ x|measure:"mg"|default_if_none:"—" }}', x=None) == "—"
    assert _render("{{ x|score|default:'—' }}", x="") == "—"
    assert _render("{{ x|number }}", x="not a number") == "not a number"
