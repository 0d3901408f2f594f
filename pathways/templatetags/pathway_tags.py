"""Template helpers for pathway pages: the stage badge."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html

from pathways.models import Stage

register = template.Library()

_LABELS = dict(Stage.choices)


@register.filter
def get_item(mapping: dict[Any, Any], key: Any) -> Any:
    """`mapping[key]` in a template, or None."""
    return mapping.get(key)


@register.simple_tag
def stage_badge(stage: str) -> str:
    """A coloured badge with the stage's name (the colour is never the only cue: the text says it)."""
    return format_html('<span class="badge stage-badge stage-{}">{}</span>', stage, _LABELS.get(stage, stage))
