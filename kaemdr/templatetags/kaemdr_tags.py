"""Template helpers shared by every app's pages."""

from __future__ import annotations

import base64

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def svg_image(svg: str, alt: str) -> str:
    """A server-made SVG chart as an `<img>` with a data URI.

    Inline, a pygal chart carries its own `<style>` element, which the Content Security Policy
    (no inline style) would block; as an image its styles apply inside it, and the page stays
    strict. `alt` names the chart; the figures themselves are listed beside every chart."""
    encoded = base64.b64encode(svg.encode()).decode()
    return format_html('<img class="chart-img" src="data:image/svg+xml;base64,{}" alt="{}">', encoded, alt)
