"""The benchmark's plan checks (`bench.runner.plan_figures`): they find a sequential scan of the
tables that grow with a clinic's history (bookings, vitals readings, audit events) in a plan, count
the rows those tables' scans read, and report a figure per main page. At a thousandth of the network
PostgreSQL rightly scans tiny tables whole, so the count of scans is asserted only where a plan is
given (or the query certainly scans); the bench reports it at network scale."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from bench import data as bench_data
from bench import runner
from sessions.models import Booking
from tests.conftest import require_postgres

TABLES = ("dosing_booking", "dosing_vitalsreading", "kaemdr_auditevent")


def _scan(node_type: str, relation: str, **actual: Any) -> dict[str, Any]:
    return {"Node Type": node_type, "Relation Name": relation, **actual}


def test_the_watched_tables_are_bookings_vitals_and_audit_events() -> None:
    assert runner.watched_tables() == TABLES


def test_a_seq_scan_of_a_watched_table_is_found_however_deep_in_the_plan() -> None:
    plan = {
        "Plan": {
            "Node Type": "Limit",
            "Plans": [
                {
                    "Node Type": "Hash Join",
                    "Plans": [
                        _scan("Index Scan", "pathways_pathway"),
                        {"Node Type": "Hash", "Plans": [_scan("Seq Scan", "dosing_booking")]},
                    ],
                },
                _scan("Seq Scan", "kaemdr_auditevent"),
            ],
        }
    }
    assert runner.plan_seq_scans(plan, TABLES) == ["dosing_booking", "kaemdr_auditevent"]


def test_index_scans_and_seq_scans_of_other_tables_are_not_counted() -> None:
    plan = {
        "Plan": {
            "Node Type": "Nested Loop",
            "Plans": [
                _scan("Seq Scan", "dosing_room"),
                _scan("Index Scan", "dosing_booking"),
                _scan("Bitmap Heap Scan", "dosing_vitalsreading"),
                _scan("Index Only Scan", "kaemdr_auditevent"),
            ],
        }
    }
    assert runner.plan_seq_scans(plan, TABLES) == []


def test_rows_read_count_what_the_filters_threw_away_over_every_loop() -> None:
    plan = {
        "Plan": {
            "Node Type": "Nested Loop",
            "Actual Rows": 15,
            "Actual Loops": 1,
            "Plans": [
                _scan("Seq Scan", "dosing_room", **{"Actual Rows": 4, "Actual Loops": 1}),
                _scan(
                    "Index Scan",
                    "dosing_booking",
                    **{"Actual Rows": 5, "Rows Removed by Filter": 300, "Actual Loops": 4},
                ),
                _scan(
                    "Bitmap Heap Scan",
                    "kaemdr_auditevent",
                    **{"Actual Rows": 2, "Rows Removed by Index Recheck": 8, "Actual Loops": 1},
                ),
            ],
        }
    }
    assert runner.plan_rows_read(plan, TABLES) == 4 * 305 + 10
    assert runner.plan_rows_read({"Plan": _scan("Seq Scan", "dosing_booking")}, TABLES) == 0  # no ANALYZE


@pytest.mark.django_db
def test_the_check_runs_on_a_small_network_and_reports_every_page() -> None:
    require_postgres()
    network = bench_data.build_network(scale=0.001, long_sessions=6, log=lambda _: None)

    figures = runner.plan_figures(network)

    pages, _ = runner._network_pages(network.handles)
    scans = [f for f in figures if "sequential scans of bookings, vitals or audit events" in f.name]
    assert [f.name.split(": ")[1] for f in scans] == [page.name for page in pages]
    for figure in scans:
        assert figure.target == "0"
        assert figure.met is (figure.value == 0)
    read = [f for f in figures if "read per row returned" in f.name]
    assert len(read) == len(pages)
    calendar = next(f for f in read if f.name.startswith("plan: room week calendar:"))
    assert calendar.value > 0  # the week's bookings are read: the plans were run with ANALYZE


@pytest.mark.django_db
def test_explaining_a_query_that_scans_bookings_whole_finds_the_scan() -> None:
    require_postgres()
    bench_data.build_network(scale=0.001, long_sessions=6, log=lambda _: None)
    whole = str(Booking.objects.all().query)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM dosing_booking")
        (count,) = cursor.fetchone()

    plans = runner.explain_selects([whole, "INSERT INTO nowhere VALUES (1)"], runner.watched_tables())

    assert plans.seq_scans == ["dosing_booking"]
    assert plans.rows_read == count > 0
    assert plans.rows_returned == count
