"""Authentication backend that loads the user's clinic with the user, from the statement that read
the request's session when it can (`kaemdr.session_store`): no query of its own per request."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from .models import User
from .session_store import user_read_with_session
from .session_store import user_with_clinic


class ClinicModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        user = user_read_with_session(user_id)
        if user is None:
            try:
                user = user_with_clinic(int(user_id))
            except (TypeError, ValueError):
                return None
        return user if user is not None and self.user_can_authenticate(user) else None
