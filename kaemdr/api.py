"""The staff and audit parts of the JSON API, and the API's shared error format.

Every error body has the same shape, so a client reads them one way:

    {"status": 400, "code": "invalid", "detail": "Check the fields below.",
     "errors": [{"field": "record_number", "code": "duplicate_record_number", "message": "..."}]}

`field` is null for an error about the request as a whole.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxValueValidator
from django.core.validators import MinValueValidator
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import JsonResponse
from django.views import defaults
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from rest_framework import exceptions
from rest_framework import mixins
from rest_framework import permissions
from rest_framework import serializers
from rest_framework import throttling
from rest_framework import viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import accounts
from . import services
from .api_base import ScopedViewSet
from .exceptions import error_citation
from .exceptions import error_items
from .forms import SIGN_IN_USERNAME_MAX_LENGTH
from .models import AuditEvent
from .models import Role
from .models import User
from .permissions import Capability
from .permissions import has_capability
from .selectors import AUDIT_DATE_FIRST
from .selectors import AUDIT_DATE_LAST
from .selectors import audit_events_for_user
from .selectors import get_staff_for_user_or_404
from .selectors import staff_qs_for_user
from .sources import Citation
from .sources import citation_for


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # `source` is also the name of a field's own attribute, so it cannot be declared above.
        fields = super().get_fields()
        fields["source"] = serializers.CharField(
            required=False,
            help_text="Where the rule that refused comes from, in plain words (label and section, guideline, "
            "paper, or clinic setting), where a rule did.",
        )
        fields["source_url"] = serializers.CharField(
            required=False, help_text="A link to that source, where one exists (may be empty)."
        )
        return fields


class ErrorBodySerializer(serializers.Serializer):
    """The body of every API error (documented in the schema as `ErrorBody`)."""

    status = serializers.IntegerField()
    code = serializers.CharField()
    detail = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # `errors` is also the name of a serializer's own attribute, so it cannot be declared above.
        fields = super().get_fields()
        fields["errors"] = ErrorItemSerializer(many=True)
        return fields


ErrorBody = ErrorBodySerializer


def _flatten(details: Any, field: str | None = None) -> list[dict[str, Any]]:
    if isinstance(details, dict) and "message" in details and "code" in details:
        return [{"field": field, "code": str(details["code"]), "message": str(details["message"])}]
    if isinstance(details, dict):
        items: list[dict[str, Any]] = []
        for name, value in details.items():
            nested = (
                None if name in ("non_field_errors", "__all__") else (f"{field}.{name}" if field else name)
            )
            items.extend(_flatten(value, nested))
        return items
    if isinstance(details, list):
        return [item for value in details for item in _flatten(value, field)]
    return [{"field": field, "code": "error", "message": str(details)}]


def _from_django(error: DjangoValidationError) -> exceptions.ValidationError:
    """A service's `ValidationError` as DRF's, keeping each message's code."""
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(
            {
                ("non_field_errors" if name == "__all__" else name): [
                    exceptions.ErrorDetail(message, code=item.code or "invalid")
                    for item in items
                    for message in item.messages
                ]
                for name, items in error.error_dict.items()
            }
        )
    return exceptions.ValidationError(
        {
            "non_field_errors": [
                exceptions.ErrorDetail(message, code=item.code or "invalid")
                for item in error.error_list
                for message in item.messages
            ]
        }
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus Django's `ValidationError` from services, answered in one body shape; a
    rule's refusal (`Refusal`) adds its clinical source to its item."""
    sources: list[Citation | None] = []
    if isinstance(exc, DjangoValidationError):
        sources = [error_citation(item) for _, item in error_items(exc) for _ in item.messages]
        exc = _from_django(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, exceptions.NotFound) and _method_not_allowed(context):
        # A refusal from a permission check, before the method was looked at: a method the route does
        # not have is a 405 for every role (which methods a route has is in the schema for all).
        exc = exceptions.MethodNotAllowed(context["request"].method)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    errors = _flatten(exc.get_full_details())
    if len(sources) == len(errors):  # the same errors in the same order (see `_from_django`)
        errors = [
            {**item, **source.as_dict()} if source else item
            for item, source in zip(errors, sources, strict=True)
        ]
    else:  # DRF's own errors (a serializer's, a permission's): the catalogue by code
        errors = [
            {**item, **source.as_dict()} if (source := citation_for(item["code"])) else item
            for item in errors
        ]
    if isinstance(exc, exceptions.ValidationError):
        summary, code = "Check the fields named in errors.", "invalid"
    else:
        summary = errors[0]["message"] if errors else str(exc.detail)
        code = errors[0]["code"] if errors else exc.default_code
        errors = [{**item, "field": None} for item in errors]
    response.data = {"status": response.status_code, "code": code, "detail": summary, "errors": errors}
    return response


def _method_not_allowed(context: dict[str, Any]) -> bool:
    view, request = context.get("view"), context.get("request")
    if view is None or request is None:
        return False
    return str(request.method).upper() not in view.allowed_methods


def error_response(status: int, code: str, detail: str) -> JsonResponse:
    """An error in the API's body shape, for the answers no DRF view gives (no route matched, a
    server error): the same shape a client reads everywhere else."""
    body = {
        "status": status,
        "code": code,
        "detail": detail,
        "errors": [{"field": None, "code": code, "message": detail}],
    }
    return JsonResponse(body, status=status)


def is_api_path(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """`handler404`: under /api/ (a path no route matches, an id that is not one, as `.../0.5/`) the
    API's 404 body; elsewhere the page."""
    if is_api_path(request):
        return error_response(404, "not_found", str(exceptions.NotFound.default_detail))
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """`handler500`: under /api/ the API's 500 body (Django has logged the exception); elsewhere the page."""
    if is_api_path(request):
        return error_response(500, "server_error", str(exceptions.APIException.default_detail))
    return defaults.server_error(request)


def require_or_404(user: Any, capability: Capability) -> None:
    """Refuse a caller whose role lacks `capability` with the API's 404, as for a missing object."""
    if not has_capability(user, capability):
        raise exceptions.NotFound()


class HasCapability(permissions.BasePermission):
    """Grants the view's `required_capability`; a refusal is a 404 like a missing object."""

    def has_permission(self, request: Request, view: Any) -> bool:
        capability = getattr(view, "required_capability", None)
        if capability is not None:
            require_or_404(request.user, capability)
        return True


class StaffSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = User
        fields = ("id", "email", "full_name", "role", "is_active", "date_joined", "invitation_sent_at")
        read_only_fields = ("is_active", "date_joined", "invitation_sent_at")
        extra_kwargs: dict[str, dict[str, Any]] = {"email": {"validators": []}}


@extend_schema(tags=["staff"])
class StaffViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, ScopedViewSet[User]
):
    """The clinic's staff, for clinic admins: list, invite, deactivate and reactivate."""

    serializer_class = StaffSerializer
    permission_classes = (permissions.IsAuthenticated, HasCapability)
    required_capability = Capability.STAFF_MANAGE
    scoped_queryset = staticmethod(staff_qs_for_user)
    scoped_object = staticmethod(get_staff_for_user_or_404)

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.staff_invite(actor=self.request.user, **serializer.validated_data)  # type: ignore[arg-type]

    @extend_schema(request=None, responses={200: StaffSerializer, 400: ErrorBody, 404: ErrorBody})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, id: str) -> Response:
        member = services.staff_deactivate(actor=request.user, user=self.get_object())  # type: ignore[arg-type]
        return Response(StaffSerializer(member).data)

    @extend_schema(request=None, responses={200: StaffSerializer, 404: ErrorBody})
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, id: str) -> Response:
        member = services.staff_reactivate(actor=request.user, user=self.get_object())  # type: ignore[arg-type]
        return Response(StaffSerializer(member).data)


class AuditEventSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = AuditEvent
        fields = (
            "id",
            "occurred_at",
            "actor_public_id",
            "actor_label",
            "action",
            "target_type",
            "target_public_id",
            "patient_public_id",
            "request_id",
            "data",
        )
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer):
    patient = serializers.UUIDField(required=False)
    actor = serializers.UUIDField(required=False)
    occurred_from = serializers.DateField(
        required=False, validators=[MinValueValidator(AUDIT_DATE_FIRST), MaxValueValidator(AUDIT_DATE_LAST)]
    )
    occurred_to = serializers.DateField(
        required=False, validators=[MinValueValidator(AUDIT_DATE_FIRST), MaxValueValidator(AUDIT_DATE_LAST)]
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("occurred_from"), attrs.get("occurred_to")
        if start and end and end < start:
            raise serializers.ValidationError(
                {
                    "occurred_to": serializers.ErrorDetail(
                        "The end date is before the start date.", code="date_order"
                    )
                }
            )
        return attrs


@extend_schema(
    tags=["audit"],
    parameters=[
        OpenApiParameter("patient", OpenApiTypes.UUID, description="A patient's id"),
        OpenApiParameter("actor", OpenApiTypes.UUID, description="A member of staff's id"),
        OpenApiParameter(
            "occurred_from",
            OpenApiTypes.DATE,
            description="First day, in the clinic's time zone (YYYY-MM-DD, 2000 to 2999)",
        ),
        OpenApiParameter(
            "occurred_to",
            OpenApiTypes.DATE,
            description="Last day, in the clinic's time zone (YYYY-MM-DD, 2000 to 2999)",
        ),
    ],
)
class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The clinic's audit log, newest first, for clinic admins. Read only: events never change."""

    serializer_class = AuditEventSerializer
    permission_classes = (permissions.IsAuthenticated, HasCapability)
    required_capability = Capability.AUDIT_VIEW

    def get_queryset(self) -> Any:
        user: User = self.request.user  # type: ignore[assignment]
        filters = AuditFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        return audit_events_for_user(
            user,
            patient_public_id=data.get("patient"),
            actor_public_id=data.get("actor"),
            occurred_from=data.get("occurred_from"),
            occurred_to=data.get("occurred_to"),
            tz=user.zone,
        )


class TokenRequestSerializer(AuthTokenSerializer):
    """Email and password, and the second factor for anyone who signs in with one. An email longer
    than any account's is refused as the field's error before anyone is authenticated (the lock-out
    records keep at most 255 characters of a username)."""

    username = serializers.CharField(
        label="Username", write_only=True, max_length=SIGN_IN_USERNAME_MAX_LENGTH
    )

    otp = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="A code from the authenticator app, or a recovery code.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        from django_otp import devices_for_user

        from .permissions import two_factor_required
        from .two_factor import has_device

        attrs = super().validate(attrs)
        user = attrs["user"]
        if not (two_factor_required(user) or has_device(user)):
            return attrs
        if not has_device(user):
            raise exceptions.ValidationError(
                {"otp": ["Set up two-factor sign-in in the web app first."]}, code="two_factor_setup"
            )
        code = str(attrs.get("otp", "")).replace(" ", "")
        for device in devices_for_user(user, confirmed=True):
            if code and device.verify_is_allowed()[0] and device.verify_token(code):
                return attrs
        raise exceptions.ValidationError(
            {"otp": ["Give the current code from your authenticator app."]}, code="otp"
        )


class TokenIssuedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown once.")
    token_key = serializers.CharField(help_text="The token's visible prefix, to list and revoke it.")
    expiry = serializers.DateTimeField()


class TokenObtainView(GenericAPIView):
    """`POST` email (as `username`), password and, with two-factor sign-in, `otp`: a new API token
    (hashed at rest, expiring after `KAEMDR_API_TOKEN_DAYS`)."""

    serializer_class = TokenRequestSerializer
    authentication_classes = ()
    permission_classes = (permissions.AllowAny,)
    throttle_classes = (throttling.AnonRateThrottle,)

    @extend_schema(tags=["account"], responses={200: TokenIssuedSerializer, 400: ErrorBody})
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = accounts.api_token_issue(user=serializer.validated_data["user"])
        return Response({"token": secret, "token_key": token.token_key, "expiry": token.expiry})


TOKEN_KEY_PATTERN = "[A-Za-z0-9_-]{1,25}"
"""A token's visible prefix (`token_key`) in a URL, on the API and on the account page."""


class ApiTokenSerializer(serializers.Serializer):
    token_key = serializers.CharField(read_only=True)
    created = serializers.DateTimeField(read_only=True)
    expiry = serializers.DateTimeField(read_only=True, allow_null=True)


@extend_schema(tags=["account"])
class ApiTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The signed-in user's own API tokens: list them, revoke one (by its `token_key`)."""

    serializer_class = ApiTokenSerializer
    pagination_class = None
    lookup_field = "token_key"
    lookup_value_regex = TOKEN_KEY_PATTERN

    def get_queryset(self) -> Any:
        return accounts.api_tokens_for(self.request.user)  # type: ignore[arg-type]

    @extend_schema(responses={204: None, 404: ErrorBody})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        accounts.api_token_revoke(actor=request.user, token_key=kwargs["token_key"])  # type: ignore[arg-type]
        return Response(status=204)


class SignedOutEverywhereSerializer(serializers.Serializer):
    tokens_revoked = serializers.IntegerField()


class SignOutEverywhereView(GenericAPIView):
    """`POST`: end every session of the signed-in user and revoke all their API tokens (the one
    making this call included; a browser session making it stays signed in)."""

    serializer_class = SignedOutEverywhereSerializer

    @extend_schema(tags=["account"], request=None, responses={200: SignedOutEverywhereSerializer})
    def post(self, request: Request) -> Response:
        result = accounts.sign_out_everywhere(actor=request.user)  # type: ignore[arg-type]
        if request.successful_authenticator is not None and not isinstance(request.auth, AuthToken):
            accounts.keep_session(request._request, result)
        return Response({"tokens_revoked": result.tokens_revoked})


class SecondFactorSessionScheme(SessionScheme):
    """The OpenAPI description of the session cookie (which needs the second factor passed)."""

    target_class = "kaemdr.api_permissions.SecondFactorSessionAuthentication"
