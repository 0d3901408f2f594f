"""The read audit in the JSON API, by declaration: a ViewSet of clinical records mixes in
`AuditedReadMixin` (or only `AuditedListMixin` or `AuditedRetrieveMixin`, for a ViewSet without
the other action: a mixin adds its action to the routes), and each `list` and `retrieve` answer
writes one audit event naming the records shown and their patients (`kaemdr.read_services`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from django.db.models import Model
from rest_framework.request import Request
from rest_framework.response import Response

from . import read_services
from .models import User

if TYPE_CHECKING:
    from rest_framework.viewsets import GenericViewSet as _ViewSet
else:
    _ViewSet = object


class _AuditedReads(_ViewSet):
    """What the read-audit mixins share: the model and the path from a record to its patient."""

    audited_model: ClassVar[type[Model]]
    audited_patient: ClassVar[str] = "pathway.patient"

    def _reader(self) -> User:
        return self.request.user  # type: ignore[return-value]


class AuditedListMixin(_AuditedReads):
    """`list` for a ViewSet of clinical records: one audit event per answer, naming each record of
    the page and its patient. The rows are read with their patients joined, so naming them costs no
    query. Declare `audited_model` and `audited_patient` (the dotted path from a record to its
    patient, "" when the records are patients)."""

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        if self.audited_patient:
            queryset = queryset.select_related(self.audited_patient.replace(".", "__"))
        page = self.paginate_queryset(queryset)
        rows = list(queryset if page is None else page)
        data = self.get_serializer(rows, many=True).data
        read_services.records_viewed(
            actor=self._reader(),
            model=self.audited_model,
            records=rows,
            patient=self.audited_patient,
            via="api",
        )
        return Response(data) if page is None else self.get_paginated_response(data)


class AuditedRetrieveMixin(_AuditedReads):
    """`retrieve` for a ViewSet of clinical records: one audit event naming the record and its
    patient. A ViewSet whose records have a read event of their own (`booking.viewed`...) overrides
    `audit_retrieve` and calls that service instead."""

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        record = self.get_object()
        self.audit_retrieve(record)
        return Response(self.get_serializer(record).data)

    def audit_retrieve(self, record: Any) -> None:
        """Write the read event of one record answered by `retrieve`: by default the generic
        `<model>.viewed` (`read_services.record_viewed`)."""
        read_services.record_viewed(
            actor=self._reader(), record=record, patient=self.audited_patient, via="api"
        )


class AuditedReadMixin(AuditedListMixin, AuditedRetrieveMixin):
    """Both: list and retrieve, each audited (mix in before DRF's List/RetrieveModelMixin)."""
