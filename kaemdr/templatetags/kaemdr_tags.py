"""Template helpers shared by every app's pages."""

from __future__ import annotations

import base64

from django import template
from django.utils.html import format_html
from django.utils.html import format_html_join

from kaemdr.sources import Citation
from kaemdr.sources import citation_for

register = template.Library()


@register.filter
def svg_image(svg: str, alt: str) -> str:
    """A server-made SVG chart as an `<img>` with a data URI.

    Inline, a pygal chart carries its own `<style>` element, which the Content Security Policy
    (no inline style) would block; as an image its styles apply inside it, and the page stays
    strict. `alt` names the chart; the figures themselves are listed beside every chart."""
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
