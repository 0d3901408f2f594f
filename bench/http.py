"""The HTTP side of `make bench`: the app served by gunicorn as in production, driven by wrk.

`run_http(pages, duration_s=..., connections=...)` starts `gunicorn kaemdr.wsgi:application` on a
free port of 127.0.0.1 against the caller's database, with the production settings and one sync
worker, so that requests/s compare like for like between pages and the worker's memory is one
worker's. It signs each page's user in by writing a session straight into the session store (the
keys `django.contrib.auth.login` and our sign-in write, second factor passed), so no form, password or
authenticator code is involved. Each page is checked once (200, not a redirect to sign-in) and then
loaded with `wrk -t1 -c<connections> -d<seconds>s --latency`; a Lua script counts every response that
is not 2xx, and a page with any such response (or a socket error or timeout) is reported as failed
rather than measured. The trivial view (`health`) is measured first in the same run: it is the floor
each page's requests/s is divided by (target: at least 0.15x for a repeat view). Each page is measured
twice: *repeat* (the same view again and again, served from the page cache, `kaemdr.page_cache`) and
*cold* (every request the first view after a change: it carries `bench.cold.COLD_HEADER`, and the
benchmark's server replaces the page-cache version before the view; target at least 0.06x).
Once the pages have run, requests spread over all of them top the pages' total up to
`min_requests_for_rss` (the floor's requests do not count: they touch almost nothing), and the
worker's RSS is read from `/proc` (target: at most 150 MB).

Nothing is asserted about timings: the caller turns `HttpResults` into the benchmark's figures
(`HttpResults.figures()`). The server is always stopped (terminate, then kill), its temporary folder
removed and its sessions deleted, whether the run succeeds or fails, and at interpreter exit too.

Production settings need `collectstatic` (whitenoise's manifest storage refuses a `{% static %}` name
missing from the manifest), so the server runs `kaemdr.settings.production` through a small settings
module in a temporary folder that only moves `STATIC_ROOT` there. By default it also stores static
files with Django's `ManifestStaticFilesStorage`, the same manifest lookup the pages do, without
whitenoise's gzip and brotli copies: compressing the API documentation's assets takes about 35 s on
our machines, for files the benchmark never requests. `compress_static=True` keeps production's
storage exactly.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess  # nosec B404  # gunicorn, collectstatic and wrk, with argument lists and no shell
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth import SESSION_KEY as USER_SESSION_KEY
from django.contrib.auth import load_backend
from django.db import connection
from django.test.utils import override_settings
from django.urls import reverse

from bench.cold import COLD_HEADER
from bench.cold import MIDDLEWARE as COLD_MIDDLEWARE
from bench.figures import Figure
from kaemdr import accounts
from kaemdr import two_factor
from kaemdr.models import User
from kaemdr.permissions import two_factor_required

FLOOR_NAME = "trivial view (floor)"
SIGNED_IN_FLOOR_NAME = "trivial view, signed in"
RATIO_TARGET = 0.15
COLD_RATIO_TARGET = 0.06
RSS_TARGET_MB = 150.0
WRK_MARK = "KAEMDR_WRK "
SETTINGS_MODULE = "kaemdr_bench_http_settings"


class BenchHttpError(RuntimeError):
    """The server could not be started or measured at all (a page that fails is a result, not this)."""


@dataclass(frozen=True)
class PageSpec:
    """A page to load: `path` as the browser asks for it, signed in as `user` (None: no session)."""

    name: str
    path: str
    user: User | None


@dataclass(frozen=True)
class PageResult:
    """One page's figures. `ok` is False when the page did not answer 2xx to every request (or to
    the check before), and then `problem` says what it answered and the timings are zero."""

    name: str
    path: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    ratio_to_floor: float
    ok: bool
    problem: str = ""


@dataclass(frozen=True)
class HttpResults:
    """Everything one `run_http` measured. `rss_mb` is the worker's resident memory after
    `requests_before_rss` requests to the pages (the floor's not counted); `rss_ok` is False when
    fewer than asked were reached or the worker was replaced on the way (its memory would then be a
    new worker's). The pids are the server's, gone once `run_http` returns."""

    floor: PageResult
    pages: list[PageResult]
    rss_mb: float
    requests_before_rss: int
    rss_ok: bool
    rss_problem: str
    master_pid: int
    worker_pid: int
    connections: int
    duration_s: int
    signed_in_floor: PageResult | None = None
    """The same trivial view with a signed-in session: what reading the session and the user costs
    every page before it does anything (None when no page is signed in)."""
    cold_pages: list[PageResult] = field(default_factory=list)
    """Each of `pages` (same order) as the first view after a change (empty when not measured)."""

    def figures(self) -> list[Figure]:
        """The results as the benchmark's figures: the floor, then per page its requests/s (target
        0.15x the floor's), p50 and p99, then the worker's memory."""
        floor = self.floor
        rows = [Figure(f"{FLOOR_NAME}: requests/s", floor.rps, "/s", "floor", floor.ok or None)]
        for page in self.pages:
            met = page.ok and page.ratio_to_floor >= RATIO_TARGET
            failed = "" if page.ok else f" (failed: {page.problem})"
            rows += [
                Figure(f"{page.name}: requests/s{failed}", page.rps, "/s", "", None),
                Figure(f"{page.name}: ratio to the trivial view", page.ratio_to_floor, "x", ">= 0.15", met),
                Figure(f"{page.name}: p50", page.p50_ms, "ms", "", None),
                Figure(f"{page.name}: p99", page.p99_ms, "ms", "", None),
            ]
            cold = self.cold_of(page)
            if cold is not None:
                met_cold = cold.ok and cold.ratio_to_floor >= COLD_RATIO_TARGET
                failed = "" if cold.ok else f" (failed: {cold.problem})"
                rows += [
                    Figure(f"{page.name}, cold: requests/s{failed}", cold.rps, "/s", "", None),
                    Figure(
                        f"{page.name}, cold: ratio to the trivial view",
                        cold.ratio_to_floor,
                        "x",
                        f">= {COLD_RATIO_TARGET}",
                        met_cold,
                    ),
                    Figure(f"{page.name}, cold: p50", cold.p50_ms, "ms", "", None),
                ]
        label = f"web worker RSS after {self.requests_before_rss:,} requests"
        if not self.rss_ok:
            label += f" ({self.rss_problem})"
        met_rss = self.rss_ok and self.rss_mb <= RSS_TARGET_MB
        rows.append(Figure(label, self.rss_mb, "MB", f"<= {RSS_TARGET_MB:.0f}", met_rss))
        return rows

    def cold_of(self, page: PageResult) -> PageResult | None:
        """`page` measured cold, when it was."""
        index = next((i for i, p in enumerate(self.pages) if p is page), None)
        return self.cold_pages[index] if index is not None and index < len(self.cold_pages) else None


# --- Sessions ---------------------------------------------------------------------------------------


def _auth_backend_path() -> str:
    """The backend `login()` records: the first configured one that can load a user (django-axes'
    standalone backend only refuses locked-out sign-ins)."""
    for path in settings.AUTHENTICATION_BACKENDS:
        if hasattr(load_backend(path), "get_user"):
            return str(path)
    raise BenchHttpError("no authentication backend can load a user")


def signed_in_session(user: User, *, secret_key: str) -> str:
    """A session key for `user`, signed in with the second factor passed, as the server with
    `secret_key` will read it.

    It holds what `django.contrib.auth.login` writes (user id, backend, the password-derived hash)
    and what our sign-in adds (`kaemdr.accounts.session_started`'s start time and sessions counter,
    and the enrolment counter `kaemdr.two_factor` compares). Session data and the password hash are
    both signed with the secret key, so they are made under the server's. A user whose role needs
    two-factor sign-in and who has no authenticator gets one (a random key), as the middleware would
    otherwise send them to the set-up page.
    """
    user = User.objects.select_related("clinic").get(pk=user.pk)
    if two_factor_required(user) and not user.two_factor_enabled:
        two_factor.enrol_with_key(user=user, key_hex=secrets.token_hex(20), name="Benchmark authenticator")
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    with override_settings(SECRET_KEY=secret_key):
        session = store_class()
        session[USER_SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = _auth_backend_path()
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session[accounts.SIGNED_IN_AT_KEY] = int(time.time())
        session[accounts.SESSIONS_EPOCH_KEY] = user.sessions_epoch
        if user.two_factor_enabled:
            session[two_factor.SESSION_KEY] = user.two_factor_epoch
        session.create()
    assert session.session_key is not None
    return session.session_key


def _sessions_delete(keys: Sequence[str]) -> None:
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    for key in keys:
        store_class(session_key=key).delete()


# --- The server -------------------------------------------------------------------------------------


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A `DATABASE_URL` for django-environ naming the database `settings_dict` describes (the test
    database while a test runs), so that the server reads the rows the caller wrote."""
    engine = settings_dict["ENGINE"]
    name = str(settings_dict["NAME"])
    if engine == "django.db.backends.postgresql":
        quote = urllib.parse.quote
        user = quote(str(settings_dict.get("USER") or ""), safe="")
        password = str(settings_dict.get("PASSWORD") or "")
        credentials = f"{user}:{quote(password, safe='')}" if password else user
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        at = f"{credentials}@" if credentials else ""
        return f"postgres://{at}{host}:{port}/{quote(name, safe='')}"
    if engine == "django.db.backends.sqlite3" and name != ":memory:" and "mode=memory" not in name:
        return f"sqlite:///{Path(name).resolve()}"
    raise BenchHttpError(f"another process cannot open this database ({engine} {name!r})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (gunicorn's workers are its master's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the parent pid follows the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchHttpError(f"no VmRSS for process {pid}")


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, exited but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Server:
    """A running gunicorn: `base_url` answers; `stop()` ends it (idempotent)."""

    process: subprocess.Popen[bytes]
    base_url: str
    folder: Path
    secret_key: str
    log_path: Path
    worker_pid: int = 0
    _stopped: bool = field(default=False, repr=False)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL to the whole process group after 10 s;
        then the temporary folder goes."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
            if self.worker_pid and process_alive(self.worker_pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.worker_pid, signal.SIGKILL)
        finally:
            atexit.unregister(self.stop)
            shutil.rmtree(self.folder, ignore_errors=True)


def _settings_module(folder: Path, *, compress_static: bool) -> None:
    storage = (
        ""
        if compress_static
        else (
            'STORAGES = {**STORAGES, "staticfiles": '
            '{"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}\n'
        )
    )
    (folder / f"{SETTINGS_MODULE}.py").write_text(
        '"""Production settings with the benchmark\'s own STATIC_ROOT (see bench/http.py)."""\n'
        "from kaemdr.settings.production import *  # noqa: F403\n"
        f"STATIC_ROOT = {str(folder / 'static')!r}\n"
        f"MIDDLEWARE = [*MIDDLEWARE, {COLD_MIDDLEWARE!r}]  # noqa: F405\n" + storage
    )


def _server_env(folder: Path, *, secret_key: str, db_url: str, redis_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    python_path = [str(folder), str(settings.BASE_DIR), env.get("PYTHONPATH", "")]
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "PYTHONPATH": os.pathsep.join(p for p in python_path if p),
            "DJANGO_SECRET_KEY": secret_key,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": db_url,
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def _get(url: str, *, cookie: str = "", timeout: float = 30.0) -> tuple[int, str, str]:
    """(status, Location, body) of one GET, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as response:
            return (
                response.status,
                response.headers.get("Location", ""),
                response.read().decode(errors="replace"),
            )
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", ""), error.read().decode(errors="replace")


def server_start(
    *, db_url: str, redis_url: str, compress_static: bool = False, startup_timeout_s: float = 60.0
) -> Server:
    """gunicorn with the production settings and one sync worker on a free port of 127.0.0.1,
    answering the health check before this returns; static files collected first."""
    folder = Path(tempfile.mkdtemp(prefix="kaemdr-bench-http-"))
    secret_key = secrets.token_urlsafe(50)
    try:
        _settings_module(folder, compress_static=compress_static)
        env = _server_env(folder, secret_key=secret_key, db_url=db_url, redis_url=redis_url)
        collected = subprocess.run(  # nosec B603
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if collected.returncode != 0:
            raise BenchHttpError(f"collectstatic failed:\n{collected.stdout}{collected.stderr}")
        port = _free_port()
        log_path = folder / "gunicorn.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603  # nosec B603
                [
                    *(sys.executable, "-m", "gunicorn", "kaemdr.wsgi:application"),
                    *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--worker-class", "sync"),
                    *("--access-logfile", "-"),
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a kill reaches the worker too
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    server = Server(process, f"http://127.0.0.1:{port}", folder, secret_key, log_path)
    atexit.register(server.stop)
    try:
        _wait_until_answering(server, timeout_s=startup_timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_answering(server: Server, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    url = server.base_url + reverse("health")
    while True:
        if server.process.poll() is not None:
            raise BenchHttpError(f"gunicorn exited ({server.process.returncode}):\n{server.log_tail()}")
        with contextlib.suppress(OSError):
            if _get(url, timeout=2)[0] == 200:
                break
        if time.monotonic() > deadline:
            raise BenchHttpError(f"gunicorn did not answer within {timeout_s:.0f} s:\n{server.log_tail()}")
        time.sleep(0.1)
    workers = _children(server.process.pid)
    if len(workers) != 1:
        raise BenchHttpError(f"expected one gunicorn worker, found {workers}")
    server.worker_pid = workers[0]


@contextlib.contextmanager
def running_server(*, db_url: str, redis_url: str, compress_static: bool = False) -> Iterator[Server]:
    server = server_start(db_url=db_url, redis_url=redis_url, compress_static=compress_static)
    try:
        yield server
    finally:
        server.stop()


# --- wrk --------------------------------------------------------------------------------------------

_LUA = """
-- Written by bench/http.py. Counts every response that is not 2xx; with more than one
-- request, cycles through them (each with its own cookie; one request takes its cookie from -H).
local threads = {}
local REQUESTS = {%(requests)s}
local HEADERS = {%(headers)s}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  first_bad = 0
  prepared = {}
  for i, r in ipairs(REQUESTS) do
    local headers = {["Cookie"] = r[2]}
    for name, value in pairs(HEADERS) do headers[name] = value end
    prepared[i] = wrk.format("GET", r[1], headers)
  end
  next_index = 0
end

if #REQUESTS > 1 then
  request = function()
    next_index = next_index %% #prepared + 1
    return prepared[next_index]
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
    if first_bad == 0 then first_bad = status end
  end
end

function done(summary, latency, requests)
  local total_bad, first = 0, 0
  for _, t in ipairs(threads) do
    total_bad = total_bad + t:get("bad")
    if first == 0 then first = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests": %%d, "duration_us": %%d, "p50_us": %%.1f, "p99_us": %%.1f, "non_2xx": %%d, '
    .. '"first_non_2xx": %%d, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(99.0),
    total_bad, first, e.connect, e.read, e.write, e.timeout))
end
"""


def _lua_string(text: str) -> str:
    if not text.isascii() or any(c in text for c in '"\\\r\n'):
        raise BenchHttpError(f"unexpected characters in {text!r}")
    return f'"{text}"'


@dataclass(frozen=True)
class WrkRun:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    problem: str


def wrk_run(
    server: Server,
    requests: Sequence[tuple[str, str]],
    *,
    duration_s: int,
    connections: int,
    headers: Mapping[str, str] | None = None,
) -> WrkRun:
    """Load the server with `wrk -t1 -c<connections> -d<duration_s>s --latency`, cycling through
    `requests` ((path, cookie) pairs; one alone goes as `-H "Cookie: ..."`). `problem` is empty only
    when every response was 2xx, with no socket error or timeout.

    wrk runs for its whole duration (a script cannot end it early), so a caller that wants a number
    of requests estimates the duration from rates it measured. `headers` go with every request."""
    lua = _LUA % {
        "requests": ", ".join(f"{{{_lua_string(path)}, {_lua_string(cookie)}}}" for path, cookie in requests),
        "mark": WRK_MARK,
        "headers": ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in (headers or {}).items()),
    }
    script = server.folder / f"wrk-{secrets.token_hex(4)}.lua"
    script.write_text(lua)
    command = [
        *("wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", "--timeout", "60s"),
        *("-s", str(script), server.base_url + requests[0][0]),
    ]
    if len(requests) == 1:
        single = {"Cookie": requests[0][1], **(headers or {})} if requests[0][1] else dict(headers or {})
        command[1:1] = [part for name, value in single.items() for part in ("-H", f"{name}: {value}")]
    try:
        result = subprocess.run(  # noqa: S603  # nosec B603
            command, capture_output=True, text=True, check=False, timeout=duration_s + 120
        )
    except FileNotFoundError as error:
        raise BenchHttpError("wrk is not installed (apt-get install wrk)") from error
    finally:
        script.unlink(missing_ok=True)
    line = next((x for x in result.stdout.splitlines() if x.startswith(WRK_MARK)), None)
    if result.returncode != 0 or line is None:
        raise BenchHttpError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    data = json.loads(line[len(WRK_MARK) :])
    seconds = data["duration_us"] / 1e6
    problems = []
    if data["non_2xx"]:
        problems.append(f"{data['non_2xx']} responses not 2xx (first {data['first_non_2xx']})")
    errors = {k: data[k] for k in ("connect", "read", "write", "timeout") if data[k]}
    if errors:
        problems.append("socket errors " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    if not data["requests"]:
        problems.append("no request completed")
    return WrkRun(
        requests=int(data["requests"]),
        rps=data["requests"] / seconds if seconds else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        problem="; ".join(problems),
    )


# --- The run ----------------------------------------------------------------------------------------


def _check_page(server: Server, path: str, cookie: str) -> str:
    """Empty when the page answers 200 itself; otherwise what it answered (a redirect to sign-in or
    two-factor means the session was not accepted)."""
    try:
        status, location, _ = _get(server.base_url + path, cookie=cookie)
    except OSError as error:
        return f"no answer: {error}"
    if status == 200:
        return ""
    return f"answered {status}" + (f" to {location}" if location else "")


def _measure_page(
    server: Server,
    spec: PageSpec,
    cookie: str,
    *,
    duration_s: int,
    connections: int,
    headers: Mapping[str, str] | None = None,
) -> tuple[PageResult, int]:
    """The page's result before its ratio is known, and how many requests it took."""
    problem = _check_page(server, spec.path, cookie)
    if problem:
        return PageResult(spec.name, spec.path, 0.0, 0.0, 0.0, 0, 0.0, False, problem), 1
    run = wrk_run(
        server, [(spec.path, cookie)], duration_s=duration_s, connections=connections, headers=headers
    )
    if run.problem:
        return PageResult(spec.name, spec.path, 0.0, 0.0, 0.0, run.requests, 0.0, False, run.problem), (
            run.requests + 1
        )
    result = PageResult(spec.name, spec.path, run.rps, run.p50_ms, run.p99_ms, run.requests, 0.0, True)
    return result, run.requests + 1


def run_http(
    pages: Sequence[PageSpec],
    *,
    duration_s: float,
    connections: int,
    min_requests_for_rss: int = 10_000,
    db_url: str | None = None,
    redis_url: str | None = None,
    compress_static: bool = False,
    rss_timeout_s: int = 900,
    progress: Callable[[str], None] | None = None,
    cold: bool = True,
) -> HttpResults:
    """Serve the app, measure the floor and then each page for `duration_s` (whole seconds, at least
    one: wrk takes no fractions) with `connections` connections, top the requests up to
    `min_requests_for_rss` over all pages, read the worker's RSS, and stop the server.

    `db_url` defaults to the database the caller is connected to (the test database in a test):
    gunicorn is another process, so it sees only committed rows. `redis_url` defaults to the
    caller's Redis (the server's cache, as in production), none meaning production's fallback.
    A page that fails its check or answers anything but 2xx is reported with `ok=False`, never raised;
    `BenchHttpError` means the server or wrk could not run at all. The top-up gives up after
    `rss_timeout_s` (then `rss_ok` is False). `compress_static=True` stores static files exactly as
    production does (see the module's docstring; about 35 s more). `progress` is told each step.
    With `cold` (the default), each page is measured cold too, before its repeat run.
    """
    say = progress or (lambda message: None)
    seconds = max(1, math.ceil(duration_s))
    db_url = db_url or database_url(connection.settings_dict)
    if redis_url is None:
        redis_url = str(getattr(settings, "TEST_REDIS_URL", "") or getattr(settings, "REDIS_URL", "") or "")
    server = server_start(db_url=db_url, redis_url=redis_url, compress_static=compress_static)
    session_keys: list[str] = []
    try:
        cookies: dict[int, str] = {}
        for spec in pages:
            if spec.user is not None and spec.user.pk not in cookies:
                key = signed_in_session(spec.user, secret_key=server.secret_key)
                session_keys.append(key)
                cookies[spec.user.pk] = f"{settings.SESSION_COOKIE_NAME}={key}"
        total = 0
        floor_spec = PageSpec(FLOOR_NAME, reverse("health"), None)
        say(f"{FLOOR_NAME} {floor_spec.path}")
        floor, _ = _measure_page(server, floor_spec, "", duration_s=seconds, connections=connections)
        floor = replace(floor, ratio_to_floor=1.0 if floor.ok else 0.0)
        signed_in_floor = None
        first_user = next((spec.user for spec in pages if spec.user is not None), None)
        if first_user is not None:
            spec = PageSpec(SIGNED_IN_FLOOR_NAME, reverse("health"), first_user)
            say(f"{SIGNED_IN_FLOOR_NAME} {spec.path}")
            measured, _ = _measure_page(
                server, spec, cookies[first_user.pk], duration_s=seconds, connections=connections
            )
            ratio = measured.rps / floor.rps if measured.ok and floor.ok and floor.rps else 0.0
            signed_in_floor = replace(measured, ratio_to_floor=ratio)
        results, cold_results = [], []
        for spec in pages:
            cookie = cookies.get(spec.user.pk, "") if spec.user is not None else ""
            if cold:
                say(f"{spec.name}, cold {spec.path}")
                result, used = _measure_page(
                    server,
                    spec,
                    cookie,
                    duration_s=seconds,
                    connections=connections,
                    headers={COLD_HEADER: "1"},
                )
                total += used
                ratio = result.rps / floor.rps if result.ok and floor.ok and floor.rps else 0.0
                cold_results.append(replace(result, ratio_to_floor=ratio))
            say(f"{spec.name} {spec.path}")
            result, used = _measure_page(server, spec, cookie, duration_s=seconds, connections=connections)
            total += used
            ratio = result.rps / floor.rps if result.ok and floor.ok and floor.rps else 0.0
            results.append(replace(result, ratio_to_floor=ratio))
        rss_problem = ""
        working = [
            (spec.path, cookies.get(spec.user.pk, "") if spec.user is not None else "", result.rps)
            for spec, result in zip(pages, results, strict=True)
            if result.ok
        ]
        if not working:
            rss_problem = "no page answered 2xx"
        deadline = time.monotonic() + rss_timeout_s
        while total < min_requests_for_rss and working and not rss_problem and time.monotonic() < deadline:
            # Cycling through the pages, each request takes the mean of their times.
            rate = len(working) / sum(1 / rps for _, _, rps in working)
            needed = min_requests_for_rss - total
            top_up_s = max(1, min(math.ceil(1.1 * needed / rate), rss_timeout_s))
            say(f"{needed:,} more requests over {len(working)} pages (about {top_up_s} s) before the RSS")
            top_up = wrk_run(
                server,
                [(path, cookie) for path, cookie, _ in working],
                duration_s=top_up_s,
                connections=connections,
            )
            total += top_up.requests
            rss_problem = top_up.problem
        if total < min_requests_for_rss:
            rss_problem = rss_problem or f"only {total:,} of {min_requests_for_rss:,} requests"
        workers = _children(server.process.pid)
        if workers != [server.worker_pid]:
            rss_problem = f"the worker was replaced ({server.worker_pid} -> {workers})"
        rss_mb = _rss_mb(workers[0]) if workers else 0.0
        return HttpResults(
            floor=floor,
            pages=results,
            rss_mb=rss_mb,
            requests_before_rss=total,
            rss_ok=not rss_problem,
            rss_problem=rss_problem,
            master_pid=server.process.pid,
            worker_pid=server.worker_pid,
            connections=connections,
            duration_s=seconds,
            signed_in_floor=signed_in_floor,
            cold_pages=cold_results,
        )
    finally:
        server.stop()
        _sessions_delete(session_keys)
