"""Running patchday's processes: migrations, the first admin, the web server, and `up` (web + worker)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
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


def local_agent_dir(settings: Settings) -> Path:
    """Config and state of the agent `patchday up` runs for this machine."""
    return settings.data_dir / "agent"


def prepare_local_agent(actor: Actor, settings: Settings) -> dict[str, str]:
    """Environment for the local agent child: a fresh one-day enrollment secret until it has enrolled."""
    from datetime import timedelta

    from django.utils import timezone

    from patchday.agent.config import StateStore
    from patchday.inventory import agents

    if StateStore(local_agent_dir(settings)).load() is not None:
        return {}
    issued = agents.create_secret(actor, "local agent (patchday up)", timezone.now() + timedelta(days=1))
    return {"PATCHDAY_AGENT_ENROLL_SECRET": issued.secret}


def _wait_for_web(host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)


def run_local_agent(settings: Settings) -> int:
    """The agent for this machine (a child of `patchday up`): enroll over loopback once, then check in."""
    import os
    import random
    import threading

    from patchday.agent.client import Agent, enroll
    from patchday.agent.config import AgentConfig, StateStore, save_config
    from patchday.agent.transport import Transport

    host = "127.0.0.1" if settings.listen_host in ("0.0.0.0", "::", "") else settings.listen_host  # noqa: S104
    server = f"http://{host}:{settings.listen_port}" if ":" not in host else f"http://[{host}]:{settings.listen_port}"
    directory = local_agent_dir(settings)
    store = StateStore(directory)
    transport = Transport(server)
    _wait_for_web(host, settings.listen_port, 60)
    if store.load() is None:
        enroll(transport, store, os.environ.get("PATCHDAY_AGENT_ENROLL_SECRET", ""))
        save_config(directory / "agent.json", AgentConfig(transport.base))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    Agent(transport, store).run(stop.wait, random.SystemRandom())
    return 0


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
                "accesslog": "-" if settings.access_log else None,
                "loglevel": settings.log_level.lower(),
                "forwarded_allow_ips": "127.0.0.1,::1",
                "control_socket_disable": True,  # gunicorn's control socket is not used; don't write to $HOME
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    PatchdayWeb().run()


def run_together(settings: Settings, agent_env: dict[str, str] | None = None) -> int:
    """Start `patchday web`, `patchday worker` and (with `agent_env`) the local agent as children; stop them
    all when one ends or on a signal."""
    import os

    command = [sys.executable, "-m", "patchday.cli.main"]
    children = [subprocess.Popen([*command, "web"]), subprocess.Popen([*command, "worker"])]  # noqa: S603
    if agent_env is not None:
        children.append(subprocess.Popen([*command, "local-agent"], env={**os.environ, **agent_env}))  # noqa: S603
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
