"""Django settings, built from patchday's one Settings object (patchday.settings)."""

from __future__ import annotations

from typing import Any

import dj_database_url

from patchday.settings import load_settings

_s = load_settings()


def _database(url: str) -> dict[str, Any]:
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            # IMMEDIATE: a write transaction takes the lock up front instead of failing on upgrade.
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        }
        # A file, not memory, so that worker processes started by tests see the same test database.
        config["TEST"] = {"NAME": str(_s.data_dir / "test-patchday.sqlite3")}
    else:
        config.setdefault("OPTIONS", {})["connect_timeout"] = 5
    return config


SECRET_KEY = _s.secret_key
DEBUG = _s.debug
ALLOWED_HOSTS = list(_s.allowed_hosts)
CSRF_TRUSTED_ORIGINS = [_s.public_url] if _s.public_url else []

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "patchday.accounts",
    "patchday.audit",
    "patchday.inventory",
    "patchday.advisories",
    "patchday.findings",
    "patchday.connectors",
    "patchday.worker",
    "patchday.dashboard",
    "patchday.notifications",
    "patchday.rollouts",
    "patchday.reports",
    "patchday.compliance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "patchday.reports.prometheus.RequestMetricsMiddleware",  # after WhiteNoise: static files are not counted
    "patchday.api.middleware.ApiErrorShapeMiddleware",
    "patchday.api.middleware.ApiTransactionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "patchday.server.urls"
WSGI_APPLICATION = "patchday.server.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "patchday.dashboard.context.navigation",
            ],
        },
    },
]

DATABASES = {"default": _database(_s.database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 8 * 3600
SESSION_COOKIE_SECURE = _s.behind_tls
CSRF_COOKIE_SECURE = _s.behind_tls
CSRF_COOKIE_HTTPONLY = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _s.behind_tls else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = None  # nothing is collected: assets are served from the package
WHITENOISE_USE_FINDERS = True  # serve the vendored assets from the package; no collectstatic step
WHITENOISE_AUTOREFRESH = DEBUG

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

NINJA_PAGINATION_PER_PAGE = 50
NINJA_MAX_PER_PAGE_SIZE = 500  # ninja reads this name (not ..._PAGINATION_MAX_...)
DATA_UPLOAD_MAX_MEMORY_SIZE = _s.inventory_max_bytes  # PATCHDAY_INVENTORY_MAX_BYTES; larger bodies get 413

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _s.log_level},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
