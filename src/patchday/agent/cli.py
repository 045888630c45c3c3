"""`patchday-agent`: enroll, run, once, collect, install, status; exit status 0 ok, 1 failure, 2 misuse."""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import stat
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from patchday.agent import AGENT_VERSION
from patchday.agent.client import Agent, collect_inventory, enroll
from patchday.agent.config import (
    AgentConfig,
    StateStore,
    config_path,
    enroll_secret_from_env,
    load_config,
    save_config,
    state_dir,
)
from patchday.agent.errors import AgentError, ConfigError
from patchday.agent.transport import Transport

log = logging.getLogger("patchday.agent")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchday-agent", description="The patchday agent: inventory this host and check in with patchday."
    )
    parser.add_argument("--version", action="version", version=f"patchday-agent {AGENT_VERSION}")
    parser.add_argument(
        "--config", help="config file (default: $PATCHDAY_AGENT_CONFIG or /etc/patchday-agent/agent.json)"
    )
    parser.add_argument(
        "--state-dir", help="state directory (default: $PATCHDAY_AGENT_STATE_DIR or /var/lib/patchday-agent)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def server_options(command: argparse.ArgumentParser, secret_flags: tuple[str, ...]) -> None:
        command.add_argument("--server", required=True, help="the patchday server's URL, https://...")
        command.add_argument(
            *secret_flags, dest="secret", help="enrollment secret (default: $PATCHDAY_AGENT_ENROLL_SECRET)"
        )
        command.add_argument("--ca-file", help="PEM file of the CA(s) to trust for the server instead of the system's")
        command.add_argument(
            "--insecure-http", action="store_true", help="allow a plain http:// server that is not on loopback"
        )
        command.add_argument("--force", action="store_true", help="enroll again even if this host is enrolled")

    server_options(
        commands.add_parser("enroll", help="enroll this host with a patchday server"), ("--secret", "--enroll-secret")
    )
    commands.add_parser("run", help="check in forever (what the service runs)")
    commands.add_parser("once", help="check in once; exit status 0 on success, 1 on failure")
    collect = commands.add_parser("collect", help="print this host's inventory document as JSON")
    collect.add_argument("--changelogs", action="store_true", help="also map pending updates to CVEs via changelogs")
    install = commands.add_parser("install", help="as root: install the agent, enroll and start the service")
    server_options(install, ("--enroll-secret", "--secret"))
    install.add_argument("--no-start", action="store_true", help="write the unit but do not start it")
    commands.add_parser("status", help="show enrollment and the last check-in (never the host token)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the one place the agent's command line turns errors into an exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="patchday-agent: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(_COMMANDS[args.command](args))
    except AgentError as exc:
        print(f"patchday-agent: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _agent(args: argparse.Namespace) -> Agent:
    config = load_config(config_path(args.config))
    transport = Transport(
        config.server, ca_file=config.ca_file, insecure_http=config.insecure_http, timeout=config.timeout
    )
    return Agent(transport, StateStore(state_dir(args.state_dir)), changelogs=config.changelogs)


def _enroll(args: argparse.Namespace) -> int:
    transport = Transport(args.server, ca_file=args.ca_file, insecure_http=args.insecure_http)
    store = StateStore(state_dir(args.state_dir))
    state = enroll(transport, store, args.secret or enroll_secret_from_env(), force=args.force)
    path = config_path(args.config)
    ca_file = str(Path(args.ca_file).resolve()) if args.ca_file else None
    try:
        config = replace(load_config(path), server=transport.base, ca_file=ca_file, insecure_http=args.insecure_http)
    except ConfigError:
        config = AgentConfig(transport.base, ca_file, args.insecure_http)
    save_config(path, config)
    print(f"enrolled as host {state.host_name!r} (id {state.host_id}); host token saved in {store.path} (mode 0600)")
    return 0


def _run(args: argparse.Namespace) -> int:
    agent = _agent(args)
    state = agent.store.require()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping on signal %d", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("patchday-agent %s checks in with %s as host %r", AGENT_VERSION, agent.transport.base, state.host_name)
    agent.run(stop.wait, random.SystemRandom())
    return 0


def _once(args: argparse.Namespace) -> int:
    agent = _agent(args)
    try:
        report = agent.check_in()
    except AgentError as exc:
        agent.record_failure(str(exc))
        raise
    sent = "inventory sent" if report.inventory_sent else "inventory unchanged"
    print(f"checked in: sequence {report.sequence}, {sent}, next check-in in about {report.checkin_interval} s")
    return 0


def _collect(args: argparse.Namespace) -> int:
    text = json.dumps(collect_inventory(args.changelogs), indent=2, sort_keys=True, ensure_ascii=False)
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `collect | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _install(args: argparse.Namespace) -> int:
    from patchday.agent.install import InstallPaths, install

    paths = InstallPaths()
    if args.config:
        paths = replace(paths, config=Path(args.config), ca_file=Path(args.config).parent / "ca.pem")
    if args.state_dir:
        paths = replace(paths, state_dir=Path(args.state_dir))
    install(
        args.server,
        args.secret or enroll_secret_from_env(),
        ca_file=args.ca_file,
        insecure_http=args.insecure_http,
        force=args.force,
        start=not args.no_start,
        paths=paths,
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    store = StateStore(state_dir(args.state_dir))
    path = config_path(args.config)
    try:
        server = load_config(path).server
    except ConfigError as exc:
        server = f"(unknown: {exc})"
    state = store.load()
    print(f"agent version: {AGENT_VERSION}")
    print(f"server: {server}")
    if state is None:
        print(f"enrolled: no (no {store.path})")
        return 1
    mode = stat.S_IMODE(store.path.stat().st_mode)
    print(f"host: {state.host_name} (id {state.host_id})")
    print(f"host token: stored in {store.path} (mode {mode:04o})")
    print(f"sequence: {state.sequence}")
    print(f"check-in interval: {state.checkin_interval} s")
    print(f"last check-in: {state.last_checkin_at or 'never'}")
    print(f"last inventory sent: {state.last_inventory_at or 'never'}")
    print(f"last error: {state.last_error or 'none'}")
    return 0


_COMMANDS = {
    "enroll": _enroll,
    "run": _run,
    "once": _once,
    "collect": _collect,
    "install": _install,
    "status": _status,
}
