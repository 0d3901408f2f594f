from __future__ import annotations

from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The benchmark: installed only by `kaemdr.settings.bench`, for `manage.py bench`. No models."""

    name = "bench"
    label = "bench"
    verbose_name = "Benchmark"
