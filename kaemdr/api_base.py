"""The scoped ViewSet of the JSON API: records named by their public id, read only through their
app's access selectors, everything else a 404.

Every API module used to repeat the same lines for each ViewSet of protected records: the public id as
the lookup, `get_queryset` from `<entity>_qs_for_user(user)`, `get_object` from
`get_<entity>_for_user_or_404(user, id)`. A ViewSet now declares its selector pair and keeps only what
is its own (filters, prefetches, its own read event):

    class NoteViewSet(ScopedRecordViewSet[IntegrationNote]):
        serializer_class = NoteSerializer
        audited_model = IntegrationNote
        queryset = IntegrationNote.objects.none()  # for the schema; requests use get_queryset
        scoped_queryset = staticmethod(selectors.note_qs_for_user)
        scoped_object = staticmethod(selectors.get_note_for_user_or_404)

The read audit stays in `kaemdr.api_audit` (its mixins are composed here, not copied).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

from django.db.models import Model
from django.db.models import QuerySet
from rest_framework import mixins
from rest_framework import permissions
from rest_framework import viewsets

from .api_audit import AuditedReadMixin
from .models import User

_M = TypeVar("_M", bound=Model)


class ScopedViewSet(viewsets.GenericViewSet[_M]):
    """A ViewSet of records the requester reaches only through the access selectors.

    - The URL names a record by its public UUID (`{id}`, documented as a uuid from the model's
      `public_id`). `lookup_value_regex` stays DRF's default on purpose: a UUID pattern would turn the
      schema's `format: uuid` into a string pattern, and a malformed id already answers the selector's
      404.
    - `get_queryset` is `scoped_queryset(user)`; a ViewSet that filters or prefetches calls
      `super().get_queryset()` and narrows it. Without `scoped_queryset` it is DRF's (`queryset`).
    - `get_object` is `scoped_object(user, id)`: missing, another clinic's and not allowed are the
      same 404. The object permissions of `permission_classes` are then checked, as DRF's own
      `get_object` would.
    """

    lookup_field = "public_id"  # the id in the URL (and the schema) is the record's public UUID
    lookup_url_kwarg = "id"
    permission_classes: Any = (permissions.IsAuthenticated,)
    scoped_queryset: Callable[[User], QuerySet[_M]] | None = None
    scoped_object: Callable[[User, Any], _M]

    def _user(self) -> User:
        """The signed-in member of staff (every scoped route requires authentication)."""
        return self.request.user  # type: ignore[return-value]

    def get_queryset(self) -> Any:
        if self.scoped_queryset is None:
            return super().get_queryset()
        return self.scoped_queryset(self._user())

    def get_object(self) -> _M:
        record = self.scoped_object(self._user(), self.kwargs[self.lookup_url_kwarg])
        self.check_object_permissions(self.request, record)
        return record


class ScopedRecordViewSet(
    AuditedReadMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet[_M]
):
    """The usual shape: clinical records listed and read one at a time, each answer audited
    (`AuditedReadMixin`; a record with a read event of its own overrides `audit_retrieve`)."""
