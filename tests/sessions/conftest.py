from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone


@pytest.fixture
def slot(clinic: Any) -> Callable[..., dt.datetime]:
    """`slot(days_ahead, hour, minute)`: an aware time in the clinic's zone, days from tomorrow."""
    tz = zoneinfo.ZoneInfo(clinic.time_zone)

    def make(days: int = 0, hour: int = 9, minute: int = 0) -> dt.datetime:
        day = timezone.localdate() + dt.timedelta(days=1 + days)
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)

    return make
