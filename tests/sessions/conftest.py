from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from pathways.models import Stage

from ..factories import PathwayFactory
from ..factories import RoomFactory
from ..factories import SignedScreeningFactory


@pytest.fixture
def room(clinic: Any) -> Any:
    return RoomFactory(clinic=clinic, name="Harbour Room")


@pytest.fixture
def dosing_pathway(clinic: Any, prescriber: Any, therapist: Any) -> Any:
    """A pathway in dosing with a current signed screening planning sublingual racemic ketamine."""
    pathway = PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        therapist=therapist,
        stage=Stage.DOSING,
        patient__registered_by=prescriber,
    )
    SignedScreeningFactory(pathway=pathway)
    return pathway


@pytest.fixture
def slot(clinic: Any) -> Callable[..., dt.datetime]:
    """`slot(days_ahead, hour, minute)`: an aware time in the clinic's zone, days from tomorrow."""
    tz = zoneinfo.ZoneInfo(clinic.time_zone)

    def make(days: int = 0, hour: int = 9, minute: int = 0) -> dt.datetime:
        day = timezone.localdate() + dt.timedelta(days=1 + days)
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)

    return make
