"""Regressions for what Schemathesis found in the JSON API (`tests/test_api_schemathesis.py`)."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Stage

from .factories import FollowUpFactory
from .factories import PathwayFactory


def api_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def test_every_record_id_in_a_url_is_documented_as_a_uuid(schema: dict[str, Any]) -> None:
    # The ids were documented as integers (the primary key), so clients and fuzzers sent integers.
    wrong = [
        f"{method} {path}"
        for method, path, op in operations(schema)
        for parameter in op.get("parameters", [])
        if parameter["in"] == "path"
        and parameter["name"] == "id"
        and parameter["schema"] != {"type": "string", "format": "uuid"}
    ]
    assert wrong == []


def test_every_operation_documents_the_shared_error_answers(schema: dict[str, Any]) -> None:
    missing = []
    for method, path, op in operations(schema):
        expected = {"404", "429"}
        if method in ("POST", "PUT", "PATCH"):
            expected.add("400")
        if path != "/api/v1/auth/token/":
            expected.add("401")
        if not expected <= set(op["responses"]):
            missing.append(f"{method} {path}: {sorted(expected - set(op['responses']))}")
    assert missing == []
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    not_found = schema["paths"]["/api/v1/pathways/"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["schema"] == error_body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/api/v1/patients/{}/", Role.PRESCRIBER),
        ("/api/v1/pathways/{}/", Role.PRESCRIBER),
        ("/api/v1/assessments/{}/", Role.PRESCRIBER),
        ("/api/v1/safety-alerts/{}/", Role.PRESCRIBER),
        ("/api/v1/bookings/{}/", Role.CLINIC_ADMIN),
        ("/api/v1/rooms/{}/", Role.CLINIC_ADMIN),
        ("/api/v1/sessions/{}/", Role.PRESCRIBER),
        ("/api/v1/emdr-plans/{}/", Role.THERAPIST),
        ("/api/v1/emdr-targets/{}/", Role.THERAPIST),
        ("/api/v1/integration-notes/{}/", Role.THERAPIST),
        ("/api/v1/experiments/{}/", Role.THERAPIST),
        ("/api/v1/follow-ups/{}/", Role.PRESCRIBER),
        ("/api/v1/summaries/{}/", Role.PRESCRIBER),
        ("/api/v1/staff/{}/", Role.CLINIC_ADMIN),
    ],
)
@pytest.mark.parametrize("bad_id", ["0", "not-a-uuid", "85658a12-c290-4889-ae8e"])
def test_a_malformed_id_is_a_404_like_a_missing_record(
    staff: dict[str, User], path: str, role: str, bad_id: str
) -> None:
    # The selectors caught ValueError, but a UUID lookup refuses a malformed value with Django's
    # ValidationError, which the API answered 400 "... is not a valid UUID".
    response = api_for(staff[role]).get(path.format(bad_id))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.fixture
def two_pathways(clinic: Any, staff: dict[str, User]) -> list[Any]:
    return [
        PathwayFactory(
            clinic=clinic,
            prescriber=staff[Role.PRESCRIBER],
            therapist=staff[Role.THERAPIST],
            stage=stage,
            patient__registered_by=staff[Role.PRESCRIBER],
        )
        for stage in (Stage.REFERRAL, Stage.DOSING)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/api/v1/pathways/?stage=Dosing", "stage"),
        ("/api/v1/pathways/?stage=", "stage"),
        ("/api/v1/safety-alerts/?status=Open", "status"),
        ("/api/v1/follow-ups/?show=all", "show"),
        ("/api/v1/follow-ups/?scope=everyone", "scope"),
    ],
)
def test_an_unknown_list_filter_is_refused_not_ignored(
    staff: dict[str, User], two_pathways: list[Any], query: str, field: str
) -> None:
    # An unknown value used to be dropped silently: `?stage=Dosing` listed every stage, and
    # `?status=Open` every alert, acknowledged ones included.
    response = api_for(staff[Role.PRESCRIBER]).get(query)
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]


@pytest.mark.django_db
def test_a_known_list_filter_still_filters(staff: dict[str, User], two_pathways: list[Any]) -> None:
    client = api_for(staff[Role.PRESCRIBER])
    listed = client.get("/api/v1/pathways/", {"stage": Stage.DOSING}).json()["results"]
    assert [item["id"] for item in listed] == [str(two_pathways[1].public_id)]
    assert client.get("/api/v1/pathways/").json()["count"] == 2
    follow_up = FollowUpFactory(pathway=two_pathways[1])
    mine = api_for(staff[Role.THERAPIST]).get("/api/v1/follow-ups/", {"scope": "mine", "show": "open"})
    assert [item["id"] for item in mine.json()["results"]] == [str(follow_up.public_id)]


# --- The contract: what the schema says is what is answered (issue 18) -------------------------------


def assert_error_shape(response: Any, status: int) -> dict[str, Any]:
    """The documented `ErrorBody`: JSON with status, code, detail and errors of {field, code, message}."""
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"status", "code", "detail", "errors"}
    assert body["status"] == status
    assert isinstance(body["code"], str)
    assert isinstance(body["detail"], str)
    assert body["errors"]
    assert all({"field", "code", "message"} <= set(item) for item in body["errors"])
    return body


def test_the_blank_and_null_answers_are_in_the_schema(schema: dict[str, Any]) -> None:
    # A draft's `decision` and `proposal` are "", an EMDR target's `theme` is "" until it is set, and
    # `live_proposal` is null while the draft is incomplete: the schema refused all four.
    components = schema["components"]["schemas"]
    blank = {"$ref": "#/components/schemas/BlankEnum"}
    assert components["BlankEnum"]["enum"] == [""]
    assessment = components["Assessment"]["properties"]
    assert blank in assessment["decision"]["oneOf"]
    assert blank in assessment["proposal"]["oneOf"]
    assert blank in components["Target"]["properties"]["theme"]["oneOf"]
    live = assessment["live_proposal"]
    assert live["nullable"] is True
    assert live["allOf"] == [{"$ref": "#/components/schemas/LiveProposal"}]
    assert components["LiveProposal"]["properties"]["decision"] == {"$ref": "#/components/schemas/Decision"}


def test_every_body_is_json_only_and_its_415_documented(schema: dict[str, Any]) -> None:
    # Form and multipart bodies were documented (and read: a missing boolean read as false).
    wrong = [
        f"{method} {path}"
        for method, path, op in operations(schema)
        if "requestBody" in op
        and (set(op["requestBody"]["content"]) != {"application/json"} or "415" not in op["responses"])
    ]
    assert wrong == []


@pytest.mark.django_db
def test_a_draft_answers_blank_decision_and_null_live_proposal(
    staff: dict[str, User], dosing_pathway: Any
) -> None:
    from screening import services as screening_services

    draft = screening_services.assessment_new_version(
        actor=staff[Role.PRESCRIBER], assessment=dosing_pathway.assessments.get()
    )
    body = api_for(staff[Role.PRESCRIBER]).get(f"/api/v1/assessments/{draft.public_id}/").json()
    assert (body["decision"], body["proposal"]) == ("", "")
    assert body["live_proposal"] is None or set(body["live_proposal"]) == {"decision", "reasons"}


@pytest.fixture
def open_session(staff: dict[str, User], dosing_pathway: Any, room: Any) -> Any:
    import datetime as dt
    import zoneinfo

    from django.utils import timezone

    from sessions.booking import services as dosing
    from sessions.record import services as record_services

    tz = zoneinfo.ZoneInfo(dosing_pathway.clinic.time_zone)
    booking = dosing.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=dosing_pathway,
        room=room,
        starts_at=dt.datetime.combine(timezone.localdate() + dt.timedelta(days=2), dt.time(9), tzinfo=tz),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )
    return record_services.session_open(actor=staff[Role.MONITOR], booking=booking)


@pytest.mark.django_db
@pytest.mark.parametrize("body_format", ["multipart", None])
def test_a_form_body_is_refused_with_415_not_read_as_false(
    staff: dict[str, User], open_session: Any, body_format: str | None
) -> None:
    # A form without `consent_confirmed` read it as false, so the checks answered 200 without it.
    client = api_for(staff[Role.MONITOR])
    path = f"/api/v1/sessions/{open_session.public_id}/checks/"
    data = {"fasting_confirmed": "true", "escort_present": "true"}
    if body_format is None:
        response = client.post(
            path,
            "fasting_confirmed=true&escort_present=true",
            content_type="application/x-www-form-urlencoded",
        )
    else:
        response = client.post(path, data, format=body_format)
    assert assert_error_shape(response, 415)["code"] == "unsupported_media_type"
    open_session.refresh_from_db()
    assert (open_session.fasting_confirmed, open_session.escort_present) == (False, False)
    # The same checks as JSON, without the consent, are refused for the missing field.
    refused = client.post(path, data, format="json")
    assert [error["field"] for error in assert_error_shape(refused, 400)["errors"]] == ["consent_confirmed"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/assessments/0.5/",
        "/api/v1/assessments/0.5/sign/",
        "/api/v1/assessments/%C2%ABl./",
        "/api/v1/no-such-thing/",
        "/api/v2/pathways/",
    ],
)
def test_a_path_no_route_matches_answers_the_json_404(staff: dict[str, User], path: str) -> None:
    # An id that does not match a route's pattern fell through to the HTML "Not found" page.
    for client in (api_for(staff[Role.PRESCRIBER]), APIClient()):
        for method in ("get", "post"):
            body = assert_error_shape(getattr(client, method)(path), 404)
            assert body["code"] == "not_found"


@pytest.mark.django_db
def test_a_page_that_is_not_found_is_still_the_page(client_for: Any, staff: dict[str, User]) -> None:
    response = client_for(staff[Role.PRESCRIBER]).get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "path"), [(Role.PRESCRIBER, "/api/v1/pathways/"), (Role.THERAPIST, "/api/v1/staff/")]
)
@pytest.mark.parametrize("method", ["TRACE", "PUT", "DELETE", "CONNECT"])
def test_a_method_the_route_does_not_have_is_a_405_for_every_role(
    staff: dict[str, User], role: str, path: str, method: str
) -> None:
    # A therapist, who may not use the staff routes, got 404 for TRACE: the permission check ran
    # before the method was looked at.
    response = api_for(staff[role]).generic(method, path)
    assert assert_error_shape(response, 405)["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_trace_is_a_405_on_every_api_route_for_every_role(staff: dict[str, User]) -> None:
    import uuid

    from .access import fill
    from .access import routes

    def value(name: str, before: str) -> str:
        return "abcd1234" if name == "token_key" else str(uuid.uuid4())

    paths = [fill(route, value) for _name, route in routes() if route.startswith("api/v1/")]
    assert len(paths) > 60
    wrong = [
        (role, path, response.status_code)
        for role, user in staff.items()
        for path in paths
        for response in [api_for(user).generic("TRACE", path)]
        if response.status_code != 405 or response.json()["code"] != "method_not_allowed"
    ]
    assert wrong == []


@pytest.mark.django_db
def test_a_server_error_under_the_api_answers_the_json_500(
    staff: dict[str, User], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pathways import selectors

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(selectors, "pathway_qs_for_user", broken)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(staff[Role.PRESCRIBER])
    body = assert_error_shape(client.get("/api/v1/pathways/"), 500)
    assert body["code"] == "server_error"
    assert "database" not in str(body)  # nothing of the exception reaches the client
    assert "the database went away" in caplog.text  # it is logged with its traceback


@pytest.mark.django_db
def test_a_throttled_call_answers_the_json_429(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.cache import cache
    from rest_framework.throttling import AnonRateThrottle

    cache.clear()
    monkeypatch.setattr(AnonRateThrottle, "rate", "2/minute", raising=False)
    client = APIClient()
    answers = [
        client.post("/api/v1/auth/token/", {"username": "a@example.org", "password": "x"}) for _ in range(3)
    ]
    assert [answer.status_code for answer in answers] == [400, 400, 429]
    assert assert_error_shape(answers[2], 429)["code"] == "throttled"
    assert int(answers[2]["Retry-After"]) > 0
