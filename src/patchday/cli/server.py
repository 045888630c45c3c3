"""Running patchday's processes: migrations, the first admin, the web server, and `up` (web + worker)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from patchday.core.audit import Actor
from patchday.settings import Settings


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def ensure_admin(username: str, actor: Actor) -> str | None:
    """Create admin `username` with a generated password when no admin exists yet; returns that password."""
    from patchday.accounts import services
    from patchday.accounts.models import User
    from patchday.core.roles import Role

    if User.objects.filter(role=Role.ADMIN).exists():
        return None
    _, password = services.create_user(actor, username, Role.ADMIN)
    return password


def load_bundled_feeds(actor: Actor) -> list[str]:
    """Import the bundled feed snapshot for sources never imported; one line per file loaded."""
    from patchday.advisories.feed_imports import import_bundled_snapshot

    return [
        f"{run.source}: {run.added} records from {run.origin} (data of {run.data_date})"
        for run in import_bundled_snapshot(actor)
    ]


def enroll_local_machine(actor: Actor) -> str:
    """Record this machine's inventory (as host `hostname`) and match it; a one-line summary."""
    from django.utils import timezone

    from patchday import scanning
    from patchday.findings import services as matcher
    from patchday.inventory import services as inventory

    facts = scanning.facts_local()
    identity = inventory.HostIdentity(
        name=facts.hostname,
        os_id=facts.os_id,
        os_version=facts.os_version,
        os_name=facts.os_name,
        ecosystem=facts.ecosystems[0] if facts.ecosystems else "",
    )
    change = inventory.record_inventory(actor, identity, facts.packages, timezone.now())
    matcher.rematch_versions(change.new_versions)
    exposures = len(matcher.host_matches([facts.hostname]))
    return f"{facts.hostname}: {len(facts.packages)} packages inventoried, {exposures} matches"


def serve_web(settings: Settings) -> None:
    """Run gunicorn in this process: PATCHDAY_WEB_WORKERS processes, threads for slow clients."""
    from gunicorn.app.base import BaseApplication

    from patchday.server.wsgi import application

    class PatchdayWeb(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"[{settings.listen_host}]:{settings.listen_port}"
                if ":" in settings.listen_host
                else f"{settings.listen_host}:{settings.listen_port}",
                "workers": settings.web_workers,
                "worker_class": "gthread",
                "threads": 4,
                "timeout": 60,
                "graceful_timeout": 10,
                "accesslog": "-",
                "loglevel": settings.log_level.lower(),
                "forwarded_allow_ips": "127.0.0.1,::1",
                "control_socket_disable": True,  # gunicorn's control socket is not used; don't write to $HOME
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    PatchdayWeb().run()


def run_together(settings: Settings) -> int:
    """Start `patchday web` and `patchday worker` as children; stop both when either ends or on a signal."""
    command = [sys.executable, "-m", "patchday.cli.main"]
    children = [subprocess.Popen([*command, "web"]), subprocess.Popen([*command, "worker"])]  # noqa: S603
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for child in children:
            code = child.poll()
            if code is not None:
                print(f"patchday: {child.args!r} exited with {code}; stopping", file=sys.stderr)
                exit_code = code or 1
                stopping = True
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code
