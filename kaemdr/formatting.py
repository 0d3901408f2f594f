"""How numbers read wherever people see them: pages, PDFs, flash and refusal messages, emails.

One module so a score or a dose reads the same everywhere: never in scientific notation (``20``, not
``2E+1``, which is what ``Decimal.normalize()`` gives), with no trailing zeros unless the measure is
shown to fixed places (mg/kg to two decimals, a temperature to one), and rounded half up, as the
clinical rules round. Pure functions, no Django: rules, services, templates and tasks all use it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from decimal import Decimal
from decimal import localcontext
from typing import NamedTuple

Number = Decimal | float | int


class Measure(NamedTuple):
    """How one kind of figure is shown: its unit, and its places (fixed, or at most)."""

    unit: str
    places: int
    fixed: bool


#: Every measured figure the record shows, by unit. Places follow the record's own precision: doses
#: and weights to a tenth (80 mg, 37.5 mg, 72.5 kg); mg/kg always to two places, as the clinic's
#: ranges are written (0.50 mg/kg); blood pressure, heart rate, SpO2 and breathing rate are whole
#: numbers; a temperature is read to a tenth of a degree and shown so (37.0 °C).
MEASURES: dict[str, Measure] = {
    "mg": Measure("mg", 1, fixed=False),
    "mg/kg": Measure("mg/kg", 2, fixed=True),
    "kg": Measure("kg", 1, fixed=False),
    "mmHg": Measure("mmHg", 0, fixed=True),
    "bpm": Measure("bpm", 0, fixed=True),
    "%": Measure("%", 0, fixed=True),
    "breaths/min": Measure("breaths/min", 0, fixed=True),
    "°C": Measure("°C", 1, fixed=True),
}

#: Outcome-measure totals are whole numbers, or a mean to a tenth (DES-II): at most one place.
SCORE_PLACES = 1


def _as_decimal(value: Number | str) -> Decimal:
    """`value` as an exact Decimal; a float as its shortest repr (0.1 is 0.1, not 0.1000000000000000055)."""
    if isinstance(value, bool):
        raise TypeError("a yes/no is not a number to show")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        number = Decimal(value.strip())
    else:
        raise TypeError(f"cannot show {type(value).__name__} as a number")
    if not number.is_finite():
        raise ValueError("only finite numbers can be shown")
    return number


def _rounded(number: Decimal, places: int) -> Decimal:
    """`number` rounded half up to `places`, with enough precision for any magnitude."""
    with localcontext() as context:
        context.prec = max(28, number.adjusted() + places + 2)
        return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _plain(number: Decimal) -> str:
    """Positional notation (never an exponent), with no negative zero."""
    text = f"{number:f}"
    if number.is_zero() and text.startswith("-"):
        text = text[1:]
    return text


def format_number(value: Number | str, places: int | None = None, *, max_places: int | None = None) -> str:
    """`value` for people to read.

    - `places` given: rounded half up to exactly that many places, trailing zeros kept (0.50).
    - `max_places` given: rounded half up to at most that many places, trailing zeros dropped (20, 12.5).
    - neither: every digit the value has, trailing zeros dropped (20.0 reads 20; 0.1 reads 0.1).

    Never in scientific notation, never "-0". Floats are taken at their shortest repr."""
    if places is not None and max_places is not None:
        raise ValueError("give places (fixed) or max_places, not both")
    number = _as_decimal(value)
    if places is not None:
        return _plain(_rounded(number, places))
    if max_places is not None:
        number = _rounded(number, max_places)
    text = _plain(number)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_score(value: Number | str) -> str:
    """An outcome measure's total as the record shows it: 20, not 2E+1 or 20.0; a DES-II mean 12.5."""
    return format_number(value, max_places=SCORE_PLACES)


def format_figure(value: Number | str, unit: str) -> str:
    """The figure alone, to the places `MEASURES` gives `unit` (a table cell whose header names it)."""
    measure = MEASURES[unit]
    if measure.fixed:
        return format_number(value, measure.places)
    return format_number(value, max_places=measure.places)


def format_measurement(value: Number | str, unit: str) -> str:
    """A measured figure with its unit, to the places `MEASURES` gives that unit: "80 mg",
    "0.50 mg/kg", "72.5 kg", "98%", "37.0 °C". A unit not in `MEASURES` is an error."""
    figure = format_figure(value, unit)
    return f"{figure}%" if unit == "%" else f"{figure} {unit}"
