from __future__ import annotations

from typing import Any

import pytest

from pathways.models import Stage

from ..factories import PathwayFactory


@pytest.fixture
def assessing(clinic: Any, prescriber: Any, therapist: Any) -> Any:
    """A pathway in the assessment stage, with a prescriber and a therapist."""
    return PathwayFactory(
        clinic=clinic,
        prescriber=prescriber,
        therapist=therapist,
        stage=Stage.ASSESSMENT,
        patient__registered_by=prescriber,
    )
