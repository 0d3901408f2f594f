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


@register.simple_tag(takes_context=True)
def record_actions(context: template.Context, kind: str, record: Any) -> str:
    """The actions later apps offer on this record's page (see `registry.register_record_action`).

    Each is rendered with the request and its CSRF token only: the page's context processors
    (navigation, messages) would run again for every button of a list.
    """
    from django.middleware.csrf import get_token
    from django.template.loader import render_to_string
    from django.utils.html import format_html_join

    from pathways.registry import registry

    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or record is None:
        return ""
    # The page's own token where it has one: a part kept in the page cache holds a placeholder for it
    # (`kaemdr.page_cache`), put back with the request's token when served.
    token = context.get("csrf_token") or get_token(request)
    parts = (
        (render_to_string(action.template_name, {**action.context, "request": request, "csrf_token": token}),)
        for action in registry.record_actions_for(kind=kind, record=record, user=user)
    )
    return format_html_join("", "{}", parts)  # each part is a rendered, auto-escaped template
