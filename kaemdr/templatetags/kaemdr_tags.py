"""Template helpers shared by every app's pages."""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from decimal import InvalidOperation

from django import template
from django.utils.html import format_html
from django.utils.html import format_html_join

from kaemdr import formatting
from kaemdr.sources import Citation
from kaemdr.sources import citation_for

register = template.Library()


@register.filter
def svg_image(svg: str, alt: str) -> str:
    """A server-made SVG chart as an `<img>` with a data URI.

    As an image the drawing stays self-contained (its sizes and text never meet the page's styles),
    and the page stays strict under the Content Security Policy whatever a drawing holds. `alt`
    names the chart; the figures themselves are listed beside every chart."""
    encoded = base64.b64encode(svg.encode()).decode()
    return format_html('<img class="chart-img" src="data:image/svg+xml;base64,{}" alt="{}">', encoded, alt)


@register.filter
def cite(citation: Citation | str | None) -> str:
    """A rule's source as pages show it: each reference in plain words, linked where it has an address.

    A plain string (a source stored with an older record) is shown as it is."""
    if not citation:
        return ""
    if not isinstance(citation, Citation):
        return format_html("{}", citation)
    return format_html_join(
        "; ",
        "{}",
        (
            (format_html('<a href="{}">{}</a>', ref.source.url, ref.text) if ref.source.url else ref.text,)
            for ref in citation.references
        ),
    )


@register.filter
def cite_code(code: str) -> str:
    """The catalogue's citation of a rule code (for findings stored by code), linked as `cite` does."""
    return cite(citation_for(code))


def _shown(value: object, show: Callable[[formatting.Number | str], str]) -> object:
    """`show(value)`; None and "" pass through, so `|default_if_none:"—"` and `|default` still apply."""
    if value is None or value == "":
        return value
    if isinstance(value, bool) or not isinstance(value, Decimal | float | int | str):
        return value
    try:
        return show(value)
    except InvalidOperation:  # a string that is not a number (a stored "—") is shown as it is
        return value


@register.filter
def number(value: object, places: int | str | None = None) -> object:
    """A number for people (see `kaemdr.formatting.format_number`): `{{ x|number }}` drops trailing
    zeros, `{{ x|number:2 }}` shows exactly two places. Never scientific notation."""
    fixed = None if places in (None, "") else int(places)
    return _shown(value, lambda v: formatting.format_number(v, fixed))


@register.filter
def score(value: object) -> object:
    """An outcome measure's total: 20, not 2E+1 or 20.0."""
    return _shown(value, formatting.format_score)


@register.filter
def measure(value: object, unit: str) -> object:
    """A measured figure with its unit, to that unit's places: `{{ dose|measure:"mg" }}` reads "80 mg"."""
    return _shown(value, lambda v: formatting.format_measurement(v, unit))


@register.filter
def figure(value: object, unit: str) -> object:
    """The figure alone, to `unit`'s places (a cell whose column header names the unit)."""
    return _shown(value, lambda v: formatting.format_figure(v, unit))
