"""The benchmark's network data set, built small (`scale=0.001`) with the same code as the full one: the
counts in proportion, every constraint still in place and holding, a second call that reuses what is
there, the handles the HTTP benchmark needs, and the main pages rendering the built data for each role.
Timings are logged, never asserted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bench import data as bench_data
from integration.models import FollowUp
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import Stage
from sessions.booking import services as dosing
from sessions.models import Booking
from sessions.models import DosingSession
from sessions.models import Room
from tests.conftest import require_postgres

pytestmark = pytest.mark.django_db

LONG_SESSIONS = 24


@pytest.fixture
def network(db: None) -> bench_data.NetworkSummary:
    require_postgres()
    return bench_data.build_network(scale=0.001, long_sessions=LONG_SESSIONS, log=lambda _: None)


def _schema() -> tuple[list[tuple[str, str]], list[str]]:
    """Every constraint (name; definition, deferrability, validated) and every index name of the schema.
    (An index's definition is not compared: PostgreSQL prints the `IN` list of a partial index it
    parsed again with its casts moved, the same predicate.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) || condeferrable || condeferred || convalidated "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        )
        constraints = [(name, definition) for name, definition in cursor.fetchall()]
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
        indexes = [name for (name,) in cursor.fetchall()]
    return constraints, indexes


def test_build_network_counts_are_in_proportion(network: bench_data.NetworkSummary) -> None:
    counts = network.counts
    assert network.created is True
    assert counts["clinics"] == 2
    assert counts["patients"] == counts["pathways"] == 20
    assert counts["rooms"] == 4
    assert 170 <= counts["bookings"] <= 230  # ~200: about 200,000 at scale 1
    assert counts["dosing_sessions"] == counts["signed_sessions"] < counts["bookings"]
    assert 1_700 <= counts["vitals"] <= 2_300  # ~10 readings a session: about 2,000,000 at scale 1
    assert counts["assessments"] > 0
    assert counts["measures"] >= 5 * counts["assessments"] // 2
    assert counts["emdr_plans"] > 0
    assert counts["emdr_session_logs"] > 0
    assert counts["integration_notes"] > 0
    assert counts["experiments"] > 0
    assert counts["follow_ups"] > counts["bookings"]
    assert 0 < counts["follow_ups_overdue"] <= counts["follow_ups_open"] < counts["follow_ups"] // 5
    assert counts["audit_events"] > counts["bookings"]
    assert set(Pathway.objects.values_list("stage", flat=True)) == set(Stage.values)
    assert set(FollowUp.objects.values_list("status", flat=True)) == {"open", "done", "cancelled"}
    assert set(Booking.objects.values_list("status", flat=True)) == {"booked", "completed", "cancelled"}


def test_build_network_keeps_every_constraint_and_index() -> None:
    require_postgres()
    before = _schema()
    bench_data.build_network(scale=0.001, long_sessions=LONG_SESSIONS, log=lambda _: None)
    after = _schema()
    assert after == before  # the foreign keys and indexes dropped for the load are all back, validated


def test_build_network_second_call_reuses_what_is_there(network: bench_data.NetworkSummary) -> None:
    bookings = Booking.objects.count()
    again = bench_data.build_network(scale=0.001, long_sessions=LONG_SESSIONS, log=lambda _: None)
    assert again.created is False
    assert again.counts == network.counts
    assert Booking.objects.count() == bookings
    assert again.handles == network.handles


def test_build_network_refuses_a_database_of_another_scale(network: bench_data.NetworkSummary) -> None:
    with pytest.raises(RuntimeError, match="fresh database"):
        bench_data.build_network(scale=0.002, log=lambda _: None)


def test_build_network_long_treated_patient_has_every_session_signed(
    network: bench_data.NetworkSummary,
) -> None:
    handles = network.handles
    assert handles.long_sessions == LONG_SESSIONS
    long = Pathway.objects.get(public_id=handles.long_pathway_public_id)
    assert long.stage == Stage.DOSING
    signed = DosingSession.objects.filter(booking__pathway=long, status="signed")
    assert signed.count() == LONG_SESSIONS
    assert not signed.filter(signed_at__isnull=True).exists()


def test_build_network_known_session_has_30_vitals(network: bench_data.NetworkSummary) -> None:
    session = DosingSession.objects.get(public_id=network.handles.session_30_vitals_public_id)
    assert session.vitals.count() == 30
    assert session.vitals.filter(is_pre_dose=True).count() == 1


def test_build_network_booked_time_refuses_a_new_booking(network: bench_data.NetworkSummary) -> None:
    conflict = network.handles.conflict
    assert conflict.starts_at > timezone.now()
    with pytest.raises(ValidationError) as refused:
        dosing.booking_create(
            actor=User.objects.get(public_id=conflict.admin_public_id),
            pathway=Pathway.objects.get(public_id=conflict.pathway_public_id),
            room=Room.objects.get(public_id=conflict.room_public_id),
            starts_at=conflict.starts_at,
            prescriber=User.objects.get(public_id=conflict.prescriber_public_id),
            monitor=User.objects.get(public_id=conflict.monitor_public_id),
        )
    codes = [error.code for errors in refused.value.error_dict.values() for error in errors]
    assert "booking_conflict" in codes


def _pages(handles: bench_data.NetworkHandles) -> list[tuple[str, str]]:
    """(role, url) of each page the HTTP benchmark measures."""
    week = f"?room={handles.room_public_id}&week={handles.week.isoformat()}"
    return [
        (Role.PRESCRIBER, reverse("dashboard")),
        (Role.THERAPIST, reverse("dashboard")),
        (Role.MONITOR, reverse("dashboard")),
        (Role.CLINIC_ADMIN, reverse("dashboard")),
        (Role.PRESCRIBER, reverse("pathway_detail", args=[handles.pathway_public_id])),
        (Role.PRESCRIBER, reverse("pathway_detail", args=[handles.long_pathway_public_id])),
        (Role.CLINIC_ADMIN, reverse("room_calendar") + week),
        (Role.MONITOR, reverse("session_detail", args=[handles.session_30_vitals_public_id])),
        (Role.THERAPIST, reverse("emdr_plan", args=[handles.emdr_plan_public_id])),
        (Role.THERAPIST, reverse("pathway_integration", args=[handles.integration_pathway_public_id])),
    ]


def test_build_network_main_pages_render_for_their_roles(
    network: bench_data.NetworkSummary, client_for: Callable[[User | None], Client]
) -> None:
    handles = network.handles
    clients: dict[str, Any] = {
        role: client_for(User.objects.get(public_id=public_id)) for role, public_id in handles.users.items()
    }
    for role, url in _pages(handles):
        response = clients[role].get(url)
        assert response.status_code == 200, (role, url)
    calendar = clients[Role.CLINIC_ADMIN].get(reverse("room_calendar") + f"?week={handles.week.isoformat()}")
    assert calendar.status_code == 200
    assert Booking.objects.filter(
        room__public_id=handles.room_public_id,
        starts_at__date__gte=handles.week,
        starts_at__date__lt=handles.week + timezone.timedelta(days=7),
    ).exists()
