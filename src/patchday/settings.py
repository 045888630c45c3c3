"""The one place PATCHDAY_* environment variables are read: builds the Settings object.

Everything else (Django's settings module, the CLI, the worker) asks `load_settings()`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from patchday.core.errors import ConfigurationError

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_ALLOWED_HOSTS = ("127.0.0.1", "localhost", "[::1]")
SECRET_KEY_FILE = "secret_key"
DEFAULT_FEED_URLS: Mapping[str, str] = {
    "kev": "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
    "epss": "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz",
    "osv": "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip",
}


class Settings(BaseModel):
    """patchday's configuration; see docs/configuration.md for each variable."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    database_url: str
    secret_key: str
    allowed_hosts: tuple[str, ...]
    listen_host: str
    listen_port: int
    public_url: str | None
    debug: bool
    web_workers: int
    log_level: str
    feed_urls: dict[str, str]
    checkin_interval: int = 900  # seconds between agent check-ins (jittered by the agent)
    stale_after: int = 3  # missed check-in intervals before a host is stale
    lost_after: int = 30  # missed check-in intervals before a host is lost
    inventory_max_bytes: int = 8 * 1024 * 1024  # the largest request body (an inventory is the biggest)
    access_log: bool = True  # one line per web request on stdout
    smtp_host: str | None = None  # unset: e-mail notifications cannot be sent (deliveries fail, and say why)
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    smtp_from: str = "patchday@localhost"
    notify_due_soon_days: int = 7  # finding.due_soon: a due date within this many days
    notify_expiring_days: int = 7  # exception.expiring: an approved exception ends within this many days
    webhook_allow_private: bool = False  # webhooks to loopback/private addresses (and plain http there)
    job_lease_seconds: int = 3600  # a leased job whose executor sends no result within this is `unknown`
    job_estimate_minutes: int = 15  # how long a host job takes before there is history to estimate from

    @property
    def feed_cache_dir(self) -> Path:
        """Where `patchday feeds sync` keeps the last successfully imported file of each source."""
        return self.data_dir / "feeds"

    @property
    def behind_tls(self) -> bool:
        return self.public_url is not None and self.public_url.startswith("https://")

    @property
    def database_display(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        parts = urlsplit(self.database_url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return self.database_url


def _default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "patchday"


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigurationError(f"{name}={value!r} is not a boolean; use true or false")


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigurationError(f"PATCHDAY_LISTEN={value!r} is not HOST:PORT (for example 127.0.0.1:8080)")
    return host.strip("[]"), int(port_text)


def _parse_positive_int(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(f"{name}={value!r} is not a positive whole number")
    return int(value)


def _parse_port(name: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigurationError(f"{name}={value!r} is not a port number (1-65535)")
    return int(value)


def _parse_feed_urls(value: str) -> dict[str, str]:
    """DEFAULT_FEED_URLS overridden by "source=url,source=url"; "source=" with no URL stops syncing that source."""
    from patchday.feeds.detect import SOURCES

    urls = dict(DEFAULT_FEED_URLS)
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        source, sep, url = (piece.strip() for piece in item.partition("="))
        if not sep or source not in SOURCES:
            raise ConfigurationError(
                f"PATCHDAY_FEED_URLS item {item!r} is not SOURCE=URL with SOURCE one of {', '.join(SOURCES)}"
            )
        if not url:
            urls.pop(source, None)
        elif urlsplit(url).scheme not in {"http", "https"}:
            raise ConfigurationError(f"PATCHDAY_FEED_URLS: the URL of {source} must start with http:// or https://")
        else:
            urls[source] = url
    return urls


def _check_database_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ConfigurationError(
            f"PATCHDAY_DATABASE_URL has scheme {scheme!r}; use sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    return url


def _secret_key(env: Mapping[str, str], data_dir: Path) -> str:
    """PATCHDAY_SECRET_KEY, else the key persisted in the data dir, else a new one written there (0600)."""
    if key := env.get("PATCHDAY_SECRET_KEY"):
        if len(key) < 32:
            raise ConfigurationError("PATCHDAY_SECRET_KEY is shorter than 32 characters")
        return key
    path = data_dir / SECRET_KEY_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigurationError(f"cannot read the secret key file {path}: {exc.strerror}") from exc
    key = secrets.token_urlsafe(50)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first: use theirs
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot create the secret key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


def settings_from(env: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; raises ConfigurationError naming the bad variable."""
    data_dir = Path(env.get("PATCHDAY_DATA_DIR") or _default_data_dir(env)).expanduser().resolve()
    database_url = _check_database_url(env.get("PATCHDAY_DATABASE_URL") or f"sqlite:///{data_dir / 'patchday.sqlite3'}")
    listen_host, listen_port = _parse_listen(env.get("PATCHDAY_LISTEN", DEFAULT_LISTEN))
    public_url = env.get("PATCHDAY_PUBLIC_URL") or None
    if public_url and urlsplit(public_url).scheme not in {"http", "https"}:
        raise ConfigurationError(f"PATCHDAY_PUBLIC_URL={public_url!r} must start with http:// or https://")
    hosts = [h.strip() for h in env.get("PATCHDAY_ALLOWED_HOSTS", "").split(",") if h.strip()]
    allowed_hosts = tuple(hosts) if hosts else DEFAULT_ALLOWED_HOSTS
    if public_url and (public_host := urlsplit(public_url).hostname) and public_host not in allowed_hosts:
        allowed_hosts = (*allowed_hosts, public_host)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=_secret_key(env, data_dir),
        allowed_hosts=allowed_hosts,
        listen_host=listen_host,
        listen_port=listen_port,
        public_url=public_url.rstrip("/") if public_url else None,
        debug=_parse_bool("PATCHDAY_DEBUG", env.get("PATCHDAY_DEBUG", "false")),
        web_workers=_parse_positive_int("PATCHDAY_WEB_WORKERS", env.get("PATCHDAY_WEB_WORKERS", "2")),
        log_level=env.get("PATCHDAY_LOG_LEVEL", "INFO").upper(),
        feed_urls=_parse_feed_urls(env.get("PATCHDAY_FEED_URLS", "")),
        checkin_interval=_parse_positive_int("PATCHDAY_CHECKIN_INTERVAL", env.get("PATCHDAY_CHECKIN_INTERVAL", "900")),
        stale_after=_parse_positive_int("PATCHDAY_STALE_AFTER", env.get("PATCHDAY_STALE_AFTER", "3")),
        lost_after=_parse_positive_int("PATCHDAY_LOST_AFTER", env.get("PATCHDAY_LOST_AFTER", "30")),
        access_log=_parse_bool("PATCHDAY_ACCESS_LOG", env.get("PATCHDAY_ACCESS_LOG", "true")),
        inventory_max_bytes=_parse_positive_int(
            "PATCHDAY_INVENTORY_MAX_BYTES", env.get("PATCHDAY_INVENTORY_MAX_BYTES", str(8 * 1024 * 1024))
        ),
        smtp_host=env.get("PATCHDAY_SMTP_HOST") or None,
        smtp_port=_parse_port("PATCHDAY_SMTP_PORT", env.get("PATCHDAY_SMTP_PORT", "587")),
        smtp_user=env.get("PATCHDAY_SMTP_USER", ""),
        smtp_password=env.get("PATCHDAY_SMTP_PASSWORD", ""),
        smtp_starttls=_parse_bool("PATCHDAY_SMTP_STARTTLS", env.get("PATCHDAY_SMTP_STARTTLS", "true")),
        smtp_from=env.get("PATCHDAY_SMTP_FROM") or "patchday@localhost",
        notify_due_soon_days=_parse_positive_int(
            "PATCHDAY_NOTIFY_DUE_SOON_DAYS", env.get("PATCHDAY_NOTIFY_DUE_SOON_DAYS", "7")
        ),
        notify_expiring_days=_parse_positive_int(
            "PATCHDAY_NOTIFY_EXPIRING_DAYS", env.get("PATCHDAY_NOTIFY_EXPIRING_DAYS", "7")
        ),
        webhook_allow_private=_parse_bool(
            "PATCHDAY_WEBHOOK_ALLOW_PRIVATE", env.get("PATCHDAY_WEBHOOK_ALLOW_PRIVATE", "false")
        ),
        job_lease_seconds=_parse_positive_int(
            "PATCHDAY_JOB_LEASE_SECONDS", env.get("PATCHDAY_JOB_LEASE_SECONDS", "3600")
        ),
        job_estimate_minutes=_parse_positive_int(
            "PATCHDAY_JOB_ESTIMATE_MINUTES", env.get("PATCHDAY_JOB_ESTIMATE_MINUTES", "15")
        ),
    )


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's Settings, read once from os.environ."""
    return settings_from(os.environ)
