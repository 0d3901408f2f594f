"""A Redis cache that is an accelerator, never a single point of failure.

Django's Redis backend raises when Redis cannot be reached, so every page that touches the cache
(a throttle, a chart) would answer 500 during an outage. `ForgivingRedisCache` answers as if the
cache were empty instead: a read is a miss, a write or delete does nothing, `incr` finds no key
(Django's `ValueError`), `add` adds nothing (`False`). Nothing the app keeps in the cache is the
only copy of anything (sessions live in the database), so an outage costs speed, not function.

- **Fast when down.** Short socket timeouts (`socket_connect_timeout` 0.25 s, `socket_timeout`
  0.5 s unless `OPTIONS` says otherwise), and after a failure the process stops asking Redis for
  `OPTIONS["RETRY_SECONDS"]` (5 by default): calls in between are misses at no cost, even when
  Redis's host drops packets rather than refusing them.
- **Logged once per outage.** The first failure logs a warning; the first success after it logs
  the recovery with how long it lasted and how many calls were misses meanwhile. The state is per
  process and per Redis location, shared by the process's threads.
- **Recovers on its own.** The first call after the pause tries Redis again; nothing restarts.

Only connection errors and timeouts are forgiven: any other Redis error (a wrong-type reply, a
full server refusing writes) is a fault to see, and still raises.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from urllib.parse import urlsplit

import redis
from django.core.cache.backends.redis import RedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
DEFAULT_OPTIONS = {"socket_connect_timeout": 0.25, "socket_timeout": 0.5}
DEFAULT_RETRY_SECONDS = 5.0

T = TypeVar("T")


def _where(servers: list[str]) -> str:
    """The servers for a log line: host, port and database, never a password."""
    shown = []
    for server in servers:
        parts = urlsplit(server)
        shown.append(f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}")
    return ", ".join(shown)


class Outage:
    """Whether one Redis location answers, as this process last found it."""

    def __init__(self, where: str, retry_seconds: float) -> None:
        self.where = where
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self.started_at: float | None = None  # monotonic time of the first failure, while down
        self.retry_at = 0.0
        self.misses = 0

    @property
    def down(self) -> bool:
        return self.started_at is not None

    def skip(self) -> bool:
        """True while Redis is known to be down and not yet due another try (the call is a miss)."""
        if self.started_at is None or time.monotonic() >= self.retry_at:
            return False
        with self._lock:
            self.misses += 1
        return True

    def failed(self, error: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self.misses += 1
            self.retry_at = now + self.retry_seconds
            if self.started_at is not None:
                return
            self.started_at = now
        logger.warning(
            "Cache unreachable at %s (%s: %s): calls are misses until it answers, tried again every %gs",
            self.where,
            type(error).__name__,
            error,
            self.retry_seconds,
        )

    def answered(self) -> None:
        if self.started_at is None:
            return
        with self._lock:
            if self.started_at is None:
                return
            lasted, misses = time.monotonic() - self.started_at, self.misses
            self.started_at, self.misses, self.retry_at = None, 0, 0.0
        logger.warning(
            "Cache answers again at %s after %.1fs; %d calls were misses meanwhile",
            self.where,
            lasted,
            misses,
        )


_outages: dict[tuple[str, ...], Outage] = {}
_outages_lock = threading.Lock()


def outage_for(servers: list[str], retry_seconds: float) -> Outage:
    """The process's one `Outage` for these servers (Django makes a cache object per thread)."""
    with _outages_lock:
        outage = _outages.get(tuple(servers))
        if outage is None:
            outage = _outages[tuple(servers)] = Outage(_where(servers), retry_seconds)
        outage.retry_seconds = retry_seconds
        return outage


def _no_key() -> Any:
    raise ValueError("Key not found: the cache is unreachable")


class ForgivingRedisCacheClient(RedisCacheClient):
    """Django's Redis client, with each call answered as a miss while Redis cannot be reached."""

    outage: Outage

    def _call(self, fallback: Callable[[], T], call: Callable[[], T]) -> T:
        if self.outage.skip():
            return fallback()
        try:
            result = call()
        except UNREACHABLE as error:
            self.outage.failed(error)
            return fallback()
        self.outage.answered()
        return result

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        return self._call(lambda: False, lambda: RedisCacheClient.add(self, key, value, timeout))

    def get(self, key: Any, default: Any) -> Any:
        return self._call(lambda: default, lambda: RedisCacheClient.get(self, key, default))

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        self._call(lambda: None, lambda: RedisCacheClient.set(self, key, value, timeout))

    def touch(self, key: Any, timeout: Any) -> bool:
        return self._call(lambda: False, lambda: RedisCacheClient.touch(self, key, timeout))

    def delete(self, key: Any) -> bool:
        return self._call(lambda: False, lambda: RedisCacheClient.delete(self, key))

    def get_many(self, keys: Any) -> dict[Any, Any]:
        keys = list(keys)
        return self._call(dict, lambda: RedisCacheClient.get_many(self, keys))

    def has_key(self, key: Any) -> bool:
        return self._call(lambda: False, lambda: RedisCacheClient.has_key(self, key))

    def incr(self, key: Any, delta: int) -> Any:
        return self._call(_no_key, lambda: RedisCacheClient.incr(self, key, delta))

    def set_many(self, data: Any, timeout: Any) -> None:
        self._call(lambda: None, lambda: RedisCacheClient.set_many(self, data, timeout))

    def delete_many(self, keys: Any) -> None:
        keys = list(keys)
        self._call(lambda: None, lambda: RedisCacheClient.delete_many(self, keys))

    def clear(self) -> bool:
        return self._call(lambda: False, lambda: RedisCacheClient.clear(self))


class ForgivingRedisCache(RedisCache):
    """`django.core.cache.backends.redis.RedisCache` whose outages are misses (module docstring).

    `OPTIONS` are those of Django's backend (passed to redis-py's connection pool), plus
    `RETRY_SECONDS`: how long a process answers misses without asking Redis after a failure."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = {**DEFAULT_OPTIONS, **params.get("OPTIONS", {})}
        retry_seconds = float(options.pop("RETRY_SECONDS", DEFAULT_RETRY_SECONDS))
        super().__init__(server, {**params, "OPTIONS": options})
        self.servers: list[str] = re.split("[;,]", server) if isinstance(server, str) else server
        self.options = options
        self.outage = outage_for(self.servers, retry_seconds)

    @cached_property
    def _cache(self) -> ForgivingRedisCacheClient:
        client = ForgivingRedisCacheClient(self.servers, **self.options)
        client.outage = self.outage
        return client
