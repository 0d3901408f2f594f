"""Settings shared by every environment, read from the environment with django-environ.

`DATABASE_URL` unset means the embedded default: SQLite under `var/`. `REDIS_URL` unset means the
file-based Celery broker under `var/celery/`, so `make run` needs nothing beyond Python.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="kaemdr-local-development-key-not-for-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_celery_beat",
    "kaemdr",
    "pathways",
    "screening",
    "sessions.apps.DosingSessionsConfig",
    "integration",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "kaemdr.middleware.AuthenticationMiddleware",
    "kaemdr.middleware.SessionLimitsMiddleware",
    "kaemdr.middleware.PagesLoginRequiredMiddleware",
    "kaemdr.middleware.TwoFactorMiddleware",
    "kaemdr.middleware.RequestContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "kaemdr.urls"
WSGI_APPLICATION = "kaemdr.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "kaemdr.context_processors.navigation",
            ],
        },
    },
]

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'kaemdr.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    # No `SELECT 1` before each request's first query: a connection the server closed (a restart,
    # a terminated backend) is found by its socket at the start of the request and reconnected
    # (`kaemdr.signals.drop_closed_connections`), at no round trip.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    # WAL lets the web process read while the Celery worker writes on the embedded default.
    DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20
# Production's app connects (DATABASE_URL) as a role that owns nothing; the owner of the tables runs
# the migrations and sets that role up: `manage.py db_roles --migrate` connects as DATABASE_OWNER_URL.
# Unset (the embedded default, development, the tests), DATABASE_URL is the owner's.
DATABASE_OWNER_URL = env("DATABASE_OWNER_URL", default="")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "kaemdr.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "kaemdr.backends.ClinicModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Sessions end after this many idle minutes: activity pushes the expiry forward (at most once a
# minute, see `kaemdr.middleware.RequestContextMiddleware`, so that most requests write nothing).
SESSION_IDLE_MINUTES = env.int("KAEMDR_SESSION_IDLE_MINUTES", default=30)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_REFRESH_SECONDS = 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# However active, a session ends this long after its sign-in (`kaemdr.accounts`).
SESSION_MAX_HOURS = env.float("KAEMDR_SESSION_MAX_HOURS", default=12)
# Password reset requests (`kaemdr.accounts.password_reset_limited`, django-ratelimit's rate format).
KAEMDR_PASSWORD_RESET_RATE_PER_EMAIL = env("KAEMDR_PASSWORD_RESET_RATE_PER_EMAIL", default="3/h")
KAEMDR_PASSWORD_RESET_RATE_PER_IP = env("KAEMDR_PASSWORD_RESET_RATE_PER_IP", default="20/h")
# The reset limits count in the cache; while it is unreachable they refuse (see
# `kaemdr.accounts.password_reset_limited`).
RATELIMIT_FAIL_OPEN = False

# django-axes: lock a username + address pair out after repeated failures.
AXES_FAILURE_LIMIT = env.int("KAEMDR_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("KAEMDR_LOGIN_COOLOFF_HOURS", default=0.5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"  # the sign-in form posts the email as "username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Failures and lock-outs are rows in the database (not the cache), so the lock-out holds while
# Redis is down.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
KAEMDR_DEFAULT_CLINIC_TIME_ZONE = "Europe/London"

# Files that must never be public (PDF summaries): outside STATIC_ROOT and any media path, served
# only by views that check access.
KAEMDR_PRIVATE_DIR = Path(env("KAEMDR_PRIVATE_DIR", default=str(VAR_DIR / "private")))

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "kaemdr" / "assets"]
MEDIA_ROOT = VAR_DIR / "private"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env("DJANGO_EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_HOST = env("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
EMAIL_TIMEOUT = env.int("DJANGO_EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="kaemdr <no-reply@kaemdr.local>")
KAEMDR_BASE_URL = env("KAEMDR_BASE_URL", default="http://127.0.0.1:8000")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so that an unauthenticated call answers 401 with a WWW-Authenticate header.
        "knox.auth.TokenAuthentication",
        "kaemdr.api_permissions.SecondFactorSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "kaemdr.api_schema.ApiSchema",  # adds the errors every endpoint shares
    # JSON bodies only: a form body answers 415 rather than reading a missing boolean as false (no
    # endpoint takes a file; one that does would name its parser on the view).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "kaemdr.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Per signed-in user, and per API token on top (a leaked token is slowed on its own).
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "kaemdr.throttling.TokenRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("KAEMDR_API_RATE_USER", default="1200/minute"),
        "token": env("KAEMDR_API_RATE_TOKEN", default="600/minute"),
        "anon": env("KAEMDR_API_RATE_ANON", default="30/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "kaemdr API",
    "DESCRIPTION": "The JSON API of kaemdr: every action the pages offer, through the same services.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "Stage": "pathways.models.Stage",
        "Role": "kaemdr.models.Role",
        "Decision": "screening.models.DecisionChoice",
        "Instrument": "screening.models.INSTRUMENT_CHOICES",
        "Agent": "screening.models.AGENT_CHOICES",
        "Route": "screening.models.ROUTE_CHOICES",
        "ExperimentState": "integration.models.EXPERIMENT_STATE_CHOICES",
        "ExperimentArea": "integration.models.AREA_CHOICES",
        "FollowUpKind": "integration.models.FOLLOW_UP_KIND_CHOICES",
        "EmdrKind": "sessions.models.EMDR_KIND_CHOICES",
        "EmdrProtocol": "sessions.models.EMDR_PROTOCOL_CHOICES",
        "EsketamineLabel": "sessions.models.ESKETAMINE_LABEL_CHOICES",
        "SummaryKind": "integration.models.SummaryKind",
        "SessionStatus": "sessions.models.SessionStatus",
    },
}

REDIS_URL = env("REDIS_URL", default="")
# Shared by every process when Redis is there (API throttling counts across gunicorn workers). Redis
# is an accelerator: while it is unreachable every cache call is a miss, logged once per outage
# (`kaemdr.cache`), and the first call after it returns uses it again.
CACHES = (
    {
        "default": {
            "BACKEND": "kaemdr.cache.ForgivingRedisCache",
            "LOCATION": REDIS_URL,
            # A down Redis costs a quarter of a second at most, then nothing for RETRY_SECONDS.
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.5, "RETRY_SECONDS": 5.0},
        }
    }
    if REDIS_URL
    else {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
)
# Repeat views of the dashboards, the pathway page and the room calendar from the versioned page cache
# (`kaemdr.page_cache`): only where the cache is shared, so that a write in one process (a worker
# sending a follow-up) reaches the parts every other process keeps.
PAGE_CACHE_ENABLED = env.bool("DJANGO_PAGE_CACHE_ENABLED", default=bool(REDIS_URL))
# Sessions live in the database only, so a Redis outage cannot sign anyone out or in. Not
# `cached_db`: a delete or change the cache missed during an outage (a sign-out) would be served
# from it again once Redis came back. The user and their clinic are read in the session's own
# statement (`kaemdr.session_store`, with `kaemdr.middleware.AuthenticationMiddleware`): one query by
# primary key per signed-in request, for the session and the user together, never from the cache.
SESSION_ENGINE = "kaemdr.session_store"
CELERY_BROKER_DIR = VAR_DIR / "celery" / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # A broker host that does not answer costs a publish a second, not the system's connect timeout:
    # the outbox (`kaemdr.outbox`) then keeps the task for the sweeper and the page answers.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": 3600,
        "socket_connect_timeout": 1.0,
    }
else:
    CELERY_BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "processed_folder": str(CELERY_BROKER_DIR),
        "store_processed": False,
        "polling_interval": 0.1,
        "control_folder": str(CELERY_BROKER_DIR.parent / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("KAEMDR_CELERY_EAGER", default=False)
# Follow-ups live in the database; this beat entry sends the due ones. Missing a tick loses nothing.
FOLLOW_UP_DISPATCH_SECONDS = env.float("KAEMDR_FOLLOW_UP_DISPATCH_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE = {
    "follow-ups-dispatch": {
        "task": "integration.tasks.follow_ups_dispatch",
        "schedule": FOLLOW_UP_DISPATCH_SECONDS,
        "options": {"expires": FOLLOW_UP_DISPATCH_SECONDS * 5},
    },
    "outbox-sweep": {
        "task": "kaemdr.tasks.outbox_sweep_task",
        "schedule": env.float("KAEMDR_OUTBOX_SWEEP_SECONDS", default=60.0),
        "options": {"expires": 300},
    },
}
# The outbox (`kaemdr.outbox`): every task a page promises is a row written with the request and
# published after it commits; the beat entry `outbox-sweep` publishes again any row not done this
# long after its last publish (or at once when publishing failed), waiting twice as long after each
# try, up to an hour between tries, and stops after so many tries (logged as an error).
KAEMDR_OUTBOX_GRACE_SECONDS = env.float("KAEMDR_OUTBOX_GRACE_SECONDS", default=120.0)
KAEMDR_OUTBOX_MAX_ATTEMPTS = env.int("KAEMDR_OUTBOX_MAX_ATTEMPTS", default=10)
# A PDF summary still being made this long after it was asked for offers "Try again".
KAEMDR_SUMMARY_RETRY_AFTER_SECONDS = env.float("KAEMDR_SUMMARY_RETRY_AFTER_SECONDS", default=60.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Axes announces its version at INFO each time Django starts, before any command's own output
        # (`manage.py demo_code` would print it above the code); its lock-out records still log.
        "axes.apps": {"level": "WARNING"},
    },
}


# --- Response headers ---------------------------------------------------------------------------
# A Content Security Policy with no inline script or style anywhere in the app (charts are images;
# the one script is a static file). The API documentation pages relax styles for themselves only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}

# --- Two-factor sign-in (django-otp: TOTP, and single-use recovery codes) ---------------------------
OTP_TOTP_ISSUER = "kaemdr"
OTP_TOTP_THROTTLE_FACTOR = 1  # after a wrong code, wait 1, 2, 4 ... seconds before the next try
KAEMDR_RECOVERY_CODES = 10

# --- API tokens (django-rest-knox: hashed at rest, with an expiry) -----------------------------------
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=env.int("KAEMDR_API_TOKEN_DAYS", default=30)),
    "AUTO_REFRESH": False,
}
KAEMDR_API_TOKENS_PER_USER = 10
