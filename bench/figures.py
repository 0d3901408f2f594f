"""A figure of the benchmark: the type every part of it reports in (`bench.runner`, `bench.http`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured value with its target. `met` is None where no target applies; `ratio_to_floor`
    is the value over the floor measured in the same run, where the figure has one."""

    name: str
    value: float
    unit: str
    target: str
    met: bool | None
    ratio_to_floor: float | None = None
