"""Test settings: real PostgreSQL and Redis when reachable (always in CI), fast hashing, eager tasks.

`DATABASE_URL` and `REDIS_URL` win when set; otherwise the defaults on 127.0.0.1 are used when
something answers there, and the embedded SQLite / file broker when not. In CI (`CI=true`) the test
session refuses to run on the fallbacks (see `tests/conftest.py`).
"""

from __future__ import annotations

import os
import socket

from .base import *


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if "DATABASE_URL" not in os.environ and _reachable("127.0.0.1", 5432):
    DATABASES = {"default": env.db_url_config("postgres://postgres@127.0.0.1:5432/kaemdr")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {}
# The suite connects as the owner of its test database (tests/faults/ makes the app's role itself).
DATABASE_OWNER_URL = ""

TEST_REDIS_URL = os.environ.get("REDIS_URL") or (
    "redis://127.0.0.1:6379/0" if _reachable("127.0.0.1", 6379) else ""
)

# Unit tests run tasks eagerly in-process; the worker tests switch to the Redis broker explicitly.
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

KAEMDR_PRIVATE_DIR = VAR_DIR / "test-private"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Factories write without services (no audit event, so no page-cache version change): the page cache
# is off, and `tests/test_page_cache.py` switches it on.
PAGE_CACHE_ENABLED = False

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SECRET_KEY = "kaemdr-test-key"
DEBUG = False
AXES_ENABLED = True
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]
# The API takes JSON only (`DEFAULT_PARSER_CLASSES`): the test client sends it unless told otherwise.
REST_FRAMEWORK = {**REST_FRAMEWORK, "TEST_REQUEST_DEFAULT_FORMAT": "json"}
