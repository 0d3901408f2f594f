"""The benchmark's cold views: a request carrying `COLD_HEADER` replaces the page-cache versions before
the view runs, so the page is the first view after a change (rendered afresh and stored), as after
any write. Installed only in the benchmark's own server settings (`bench/http.py`), never in the app's.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.http import HttpResponse

from kaemdr import page_cache

COLD_HEADER = "X-Kaemdr-Bench-Cold"
MIDDLEWARE = "bench.cold.ColdViewMiddleware"


class ColdViewMiddleware:
    """Replace the network's page-cache version (which every part's key names) before a request
    that asks for a cold view; any other request passes untouched."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.headers.get(COLD_HEADER):
            page_cache.bump(page_cache.NETWORK)
        return self.get_response(request)
