"""Template helpers for the PDF summaries."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

register = template.Library()

_CSS_ESCAPES = {"\\": "\\5c ", '"': "\\22 ", "<": "\\3c ", ">": "\\3e ", "\n": " ", "\r": " "}


@register.filter
def css_string(value: object) -> SafeString:
    """`value` for a CSS string in a `<style>` block (the page header's clinic and patient): quotes,
    backslashes and angle brackets become CSS escapes, so no text can end the string or the block."""
    text = "".join(_CSS_ESCAPES.get(char, char) for char in str(value))
    return SafeString(text)  # nosec B703  # escaped above for a CSS string: nothing can end it
