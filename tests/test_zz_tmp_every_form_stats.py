import pytest

from .test_every_form import build_clinic, check_every_form


@pytest.mark.django_db
def test_stats() -> None:
    failures, reports = check_every_form(build_clinic())
    for label, r in reports.items():
        print("REPORT", label, r.pages, r.linked_pages, r.posted)
    print("FAILURES", len(failures))
