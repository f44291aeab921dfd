"""Settings for meet, read from the environment (django-environ) with working defaults.

Every knob is listed in the README's configuration table. Defaults give a laptop setup that
needs nothing installed: SQLite under var/, an embedded Redis on a unix socket under var/,
console email, a secret key generated once into var/.

Two kinds of settings. Django's and the project's (SITE_URL, REDIS_URL, ...: settings here are
derived from them) have their defaults here. The apps' (ROOMS_, PRESENCE_, SIGNALING_, SFU_,
CHAT_) have theirs only in each app's app_settings.py, and are set here only when their
environment variable is (`_from_environment`). Each app checks its own at start-up (checks.py).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from meet.web import configured_served_url as _served_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("MEET_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DEBUG=(bool, True),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]"]),
    CSRF_TRUSTED_ORIGINS=(list, []),
)

DEBUG: bool = env("DEBUG")


def _from_environment(name: str, read: Callable[[str], object]) -> None:
    """The app setting `name` from its environment variable, cast by `read`, if it is set.

    Unset, the name stays undefined here and the app's app_settings object supplies the
    default: a default written here too could drift from the one the code (and its tests) use.
    """
    if name in os.environ:
        globals()[name] = read(name)


def _secret_key() -> str:
    """The configured key; in development one generated once into var/ (never committed)."""
    configured = env.str("SECRET_KEY", default="")
    if configured:
        return configured
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS: list[str] = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS: list[str] = env("CSRF_TRUSTED_ORIGINS")

# The public base URL, e.g. https://meet.example.org. Set: every generated link (pages,
# emails, calendar files) starts with it. Unset: pages use the address the request came to,
# and emails and calendar files built outside a request (Celery) use the address `make run`
# serves on: MEET_SERVED_URL, which meet.launcher exports to every process, else what
# HOST/PORT/MEET_TLS give (meet.web.configured_served_url). One helper builds them: meet.links.
SITE_URL_CONFIGURED: bool = bool(env.str("SITE_URL", default=""))
SITE_URL: str = (
    env.str("SITE_URL", default="") or env.str("MEET_SERVED_URL", default="") or _served_url()
).rstrip("/")
# A bearer token that shows /healthz's full report (node names, loads, errors) to monitoring;
# staff see it when signed in. Empty: no token is accepted, everyone else gets the status only.
MEET_HEALTHZ_TOKEN: str = env.str("MEET_HEALTHZ_TOKEN", default="")

INSTALLED_APPS = [
    "daphne",  # first: its runserver serves HTTP and WebSocket
    # Django's admin, as meet's site: "Live now", technical tables apart (meet/admin_site.py).
    "meet.admin_site.MeetAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "channels",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.microsoft",
    "meet.apps.MeetConfig",  # the project's own start-up checks (meet/checks.py)
    "accounts",
    "rooms",
    "sfu",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "meet.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "meet.urls"
ASGI_APPLICATION = "meet.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file (not memory) so that test servers in other threads and processes share it.
    # One file per test session (the plugin sets the name) so parallel sessions don't collide.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("MEET_TEST_DB_NAME", default=str(VAR_DIR / "test-db.sqlite3"))
    }
    # SQLite: wait for the writer rather than fail with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Take the write lock when a transaction begins: a deferred transaction that reads and then
    # writes (select_for_update is a no-op here) fails at once with "database is locked" when
    # another connection (a Celery worker) wrote in between, without waiting for the timeout.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis: channel layer and Celery broker -----------------------------------------------
# Unset REDIS_URL means the embedded Redis that `make run` (and the test suite) starts on a
# unix socket under var/.
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL: str = env.str("REDIS_URL", default=f"unix://{EMBEDDED_REDIS_SOCKET}")
REDIS_EMBEDDED: bool = not env.str("REDIS_URL", default="")


def celery_url(redis_url: str) -> str:
    """Celery (kombu) spells a unix-socket Redis as redis+socket://."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


CHANNEL_LAYER_PREFIX: str = env.str("CHANNEL_LAYER_PREFIX", default="meet")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 times reads out after 5 s by default, exactly channels_redis's
            # blocking-pop timeout: idle receivers then fail at random. Give reads slack.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": CHANNEL_LAYER_PREFIX,
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

CELERY_BROKER_URL = celery_url(REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{CHANNEL_LAYER_PREFIX}-celery:"}
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # The DatabaseScheduler copies this into a django-celery-beat PeriodicTask at start-up.
    "rooms-send-due-reminders": {"task": "rooms.tasks.send_due_reminders", "schedule": 60.0},
    # Participants whose web process died leave their call (docs/protocol.md, "Reconnecting").
    # A run left waiting in the queue past the next one is dropped (django-celery-beat's
    # name for `expires`): the next run does the same work with fresher data.
    "rooms-sweep-abandoned-participants": {
        "task": "rooms.tasks.sweep_abandoned_participants",
        "schedule": 30.0,
        "options": {"expire_seconds": 25},
    },
    # Instant meetings whose link went unused for ROOMS_INSTANT_MEETING_EXPIRY_DAYS are marked
    # expired (the join page already refuses them once past it; docs/meetings.md, "Lifetime").
    "rooms-expire-unused-meeting-links": {
        "task": "rooms.tasks.expire_unused_meeting_links",
        "schedule": 3600.0,
        "options": {"expire_seconds": 3000},
    },
}

# A cache shared by every process (django-ratelimit counts join-code guesses in it).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{CHANNEL_LAYER_PREFIX}-cache",
    }
}

# --- Meetings and call signaling (defaults and meanings: rooms/app_settings.py) ---------------
# Wrong or forbidden join codes a user (or an address) may try before getting 429s.
_from_environment("ROOMS_JOIN_GUESS_RATE", env.str)
# Invitee completions (the people directory) one user may ask for.
_from_environment("ROOMS_PEOPLE_SEARCH_RATE", env.str)
# Days an instant meeting's link keeps working after its last call (or its creation).
_from_environment("ROOMS_INSTANT_MEETING_EXPIRY_DAYS", env.int)
# Seconds a request to join waits for a host before it times out (the lobby).
_from_environment("ROOMS_LOBBY_WAIT_SECONDS", env.float)
# Seconds after a call ends before its attendance report is e-mailed to the host and co-hosts.
_from_environment("ROOMS_ATTENDANCE_REPORT_DELAY_SECONDS", env.float)
# How often each call connection refreshes its presence row (Participant.last_seen_at): one
# UPDATE per connection. A participant silent for three periods is taken for gone (its web
# process died) by the beat sweep (every 30 s), which so makes it leave after the crash.
# PRESENCE_, not SIGNALING_: nothing goes over the socket, it is the shared presence state.
_from_environment("PRESENCE_HEARTBEAT_SECONDS", env.float)
# How often each web process checks that the SFU nodes of its calls live (one query for all).
_from_environment("FAILOVER_CHECK_SECONDS", env.float)
# How long a participant whose socket dropped stays present, waiting for a reconnect.
_from_environment("SIGNALING_RECONNECT_GRACE_SECONDS", env.float)
# The per-connection flood guard: a token bucket of BURST frames refilled at RATE_PER_SECOND;
# a connection refused CLOSE_AFTER frames in a row is closed (4429).
_from_environment("SIGNALING_RATE_PER_SECOND", env.float)
_from_environment("SIGNALING_RATE_BURST", env.int)
_from_environment("SIGNALING_RATE_CLOSE_AFTER", env.int)

# --- Chat (defaults and meanings: chat/app_settings.py) -------------------------------------
# Messages per author per sliding window; messages per history answer and in the join response.
_from_environment("CHAT_RATE_LIMIT_MESSAGES", env.int)
_from_environment("CHAT_RATE_LIMIT_SECONDS", env.int)
_from_environment("CHAT_HISTORY_LIMIT", env.int)
_from_environment("CHAT_RECENT_LIMIT", env.int)

# --- Auth (django-allauth) ------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
SITE_ID = 1
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
# Tell people at sign-up that their email is taken (a clear form error) rather than pretend to
# send a verification mail; the price is that sign-up reveals which emails have accounts.
ACCOUNT_PREVENT_ENUMERATION = False
# The password-reset request answers alike whether the address has an account or not (the
# setting above would otherwise make it say "no account"): accounts.forms.ResetPasswordForm.
ACCOUNT_FORMS = {"reset_password": "accounts.forms.ResetPasswordForm"}
# Sign-up (and a third-party sign-up that shows a form) asks for a full name first.
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.signup.FullNameSignupForm"
# allauth's messages name people as the rest of the product does (User.display_name).
ACCOUNT_USER_DISPLAY = "accounts.names.user_display"
ACCOUNT_EMAIL_VERIFICATION: str = env.str(
    "ACCOUNT_EMAIL_VERIFICATION", default="optional" if DEBUG else "mandatory"
)
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[meet] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
# Fills the full name from the provider's (accounts.social.SocialAccountAdapter).
SOCIALACCOUNT_ADAPTER = "accounts.social.SocialAccountAdapter"


def _social_providers() -> dict[str, dict[str, object]]:
    """Google, GitHub and Microsoft are switched on by setting their client id and secret."""
    providers: dict[str, dict[str, object]] = {}
    for provider in ("google", "github", "microsoft"):
        client_id = env.str(f"{provider.upper()}_CLIENT_ID", default="")
        secret = env.str(f"{provider.upper()}_CLIENT_SECRET", default="")
        if client_id and secret:
            providers[provider] = {"APPS": [{"client_id": client_id, "secret": secret}]}
    return providers


SOCIALACCOUNT_PROVIDERS = _social_providers()

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Email ----------------------------------------------------------------------------------
# EMAIL_URL examples: consolemail://, smtp+tls://user:password@smtp.example.org:587
globals().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="meet <meet@localhost>")

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True  # serve straight from static/: no collectstatic step needed
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the call page reads it for fetch() requests
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
BEHIND_TLS_PROXY: bool = env.bool("BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# Served over https (meet/web.py's TLS, a TLS proxy, or an https public address): cookies are
# never sent over plain http, where anyone on the path could read the session.
SERVES_HTTPS: bool = (
    env.bool("MEET_TLS", default=False)
    or bool(env.str("TLS_CERT_FILE", default="") and env.str("TLS_KEY_FILE", default=""))
    or BEHIND_TLS_PROXY
    or SITE_URL.startswith("https")
)
SESSION_COOKIE_SECURE = SERVES_HTTPS
CSRF_COOKIE_SECURE = SERVES_HTTPS
# Off by default: HSTS pins browsers to https for this host for the whole period, and the
# redirect needs a plain-http listener in front (a proxy) to be of use.
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers' health checks often speak plain http to the backend.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Proxies (addresses or networks) whose X-Forwarded-For / X-Real-IP / X-Forwarded-Proto give
# the client's address and scheme (meet.security.TrustedProxyMiddleware). Empty: the peer's
# address is the client's, whatever the headers say, so they can't dodge the rate limits.
MEET_TRUSTED_PROXIES: list[str] = env.list("MEET_TRUSTED_PROXIES", default=[])
# allauth's login rate limits read REMOTE_ADDR, which the middleware above already set to the
# client behind a trusted proxy: allauth must not read X-Forwarded-For again on its own.
ALLAUTH_TRUSTED_PROXY_COUNT = 0
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = None
# The debug error page (DEBUG on) lists settings: passwords inside URLs are masked too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "meet.security.SecretMaskingExceptionReporterFilter"

# --- SFU (defaults and meanings: sfu/app_settings.py) ---------------------------------------
# Addresses the SFU gathers ICE host candidates on. Empty: every non-loopback address of the
# machine. Tests and benchmarks set 127.0.0.1.
_from_environment("SFU_LISTEN_IPS", env.list)
# The address announced to browsers instead of the listen address (a server behind NAT).
_from_environment("SFU_ANNOUNCED_IP", env.str)
# A node that has not heartbeaten for this long is out of placement and unhealthy.
_from_environment("SFU_NODE_TIMEOUT_SECONDS", env.float)
# This node's name (runsfu) and how many nodes `make run` starts (the launcher).
_from_environment("SFU_NODE_NAME", env.str)
_from_environment("SFU_WORKERS", env.int)
# STUN/TURN servers for the SFU and the browsers, e.g.
# "stun:stun.example.org:3478,turn:user:pass@turn.example.org:3478". None by default: meet
# contacts nothing outside the machine unless told to.
_from_environment("SFU_ICE_SERVERS", env.list)
_from_environment("SFU_HEARTBEAT_SECONDS", env.float)
# The SFU node's event loop: uvloop or asyncio (sfu/app_settings.py).
_from_environment("SFU_EVENT_LOOP", env.str)
_from_environment("SFU_NODE_CAPACITY", env.int)
# Whether call clients publish their camera in three layers (simulcast); 0 turns it off.
_from_environment("SFU_SIMULCAST", env.bool)
# Whether the SFU estimates each viewer's downlink (transport-cc) and shares it out; 0: off.
_from_environment("SFU_DOWNLINK_ESTIMATE", env.bool)
# How many microphones each viewer is sent at most (the loudest); 0: every open one.
_from_environment("SFU_AUDIBLE_SPEAKERS", env.int)
_from_environment("SFU_REQUEST_TIMEOUT_SECONDS", env.float)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
