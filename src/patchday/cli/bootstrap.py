"""Start Django for a CLI command, turning configuration and database problems into one clear error."""

from __future__ import annotations

import getpass
import os

from patchday.core.audit import Actor, ActorKind
from patchday.core.errors import ConfigurationError, DatabaseUnavailable
from patchday.settings import Settings, load_settings


def start_django(*, check_database: bool = True, require_migrated: bool = True) -> Settings:
    """Configure and set up Django; raises ConfigurationError or DatabaseUnavailable naming the problem."""
    settings = load_settings()
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the data dir {settings.data_dir}: {exc.strerror}") from exc
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patchday.server.settings")
    import django

    django.setup()
    if check_database:
        ensure_database(settings, require_migrated=require_migrated)
    return settings


def ensure_database(settings: Settings, *, require_migrated: bool) -> None:
    from django.db import DatabaseError, connection

    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"cannot reach the database {settings.database_display}: {reason}") from None
    if require_migrated:
        from patchday.dashboard.views import pending_migrations

        pending = pending_migrations()
        if pending:
            raise DatabaseUnavailable(
                f"the database {settings.database_display} lacks {len(pending)} migrations; run `patchday migrate`"
            )


def cli_actor() -> Actor:
    """The audit actor for changes made from this command line."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return Actor(ActorKind.SYSTEM, f"cli:{who}", None, "local")
