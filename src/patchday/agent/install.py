"""`patchday-agent install`: put the zipapp in place, enroll, write a hardened systemd unit and start it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from patchday.agent.build import build_zipapp
from patchday.agent.client import enroll
from patchday.agent.config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_STATE_DIR,
    AgentConfig,
    StateStore,
    load_config,
    save_config,
)
from patchday.agent.errors import ConfigError
from patchday.agent.transport import Transport, check_server_url, tls_context

UNIT_NAME = "patchday-agent.service"
_UNIT_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")  # nothing systemd would expand (%, $) or split (spaces, quotes)


@dataclass(frozen=True)
class InstallPaths:
    """Where `install` puts things; tests point them into a temporary directory."""

    pyz: Path = Path("/usr/local/lib/patchday/patchday-agent.pyz")
    unit: Path = Path("/etc/systemd/system") / UNIT_NAME
    config: Path = DEFAULT_CONFIG_PATH
    state_dir: Path = DEFAULT_STATE_DIR
    ca_file: Path = DEFAULT_CONFIG_PATH.parent / "ca.pem"


def running_archive() -> Path | None:
    """The zipapp this code runs from, or None when it runs from a source tree or an installed package."""
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if candidate.is_file():
            return candidate if zipfile.is_zipfile(candidate) else None
    return None


def system_python() -> str:
    """The interpreter the unit runs: this one, unless it lives in a virtual environment (which may vanish)."""
    if sys.prefix == sys.base_prefix and os.path.isabs(sys.executable):
        return sys.executable
    base = Path(sys.base_prefix) / "bin" / "python3"
    return str(base) if base.exists() else "/usr/bin/python3"


def systemd_unit(python: str, paths: InstallPaths) -> str:
    """The unit file text; raises ConfigError for a path systemd would expand or split."""
    for path in (python, str(paths.pyz), str(paths.config), str(paths.state_dir)):
        if not _UNIT_SAFE_PATH.match(path):
            raise ConfigError(f"{path!r} cannot go into a systemd unit unquoted; choose a plainer path")
    return f"""\
# Written by `patchday-agent install`, which overwrites it on the next install.
# Put local changes in a drop-in (`systemctl edit patchday-agent`); those survive.
[Unit]
Description=patchday agent (inventory and check-in)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart={python} -I {paths.pyz} --config {paths.config} --state-dir {paths.state_dir} run
Restart=always
RestartSec=30
UMask=0077
# Hardening that still lets the agent patch this host. Deliberately absent:
#  - NoNewPrivileges=, RestrictSUIDSGID=: a patch agent runs apt/dpkg, dnf and their maintainer
#    scripts, which install set-uid binaries and call set-uid helpers; with either set, upgrades
#    fail half-way through.
#  - ProtectSystem=, ProtectKernelTunables=, ProtectKernelModules=, PrivateDevices=, SystemCallFilter=:
#    upgrades write /usr, /etc and /boot, run `sysctl --system`, `modprobe`, `update-initramfs` and
#    touch /dev.
#  - User=: package managers need root.
ProtectHome=read-only
PrivateTmp=yes
ProtectControlGroups=yes
RestrictRealtime=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
"""


def is_systemd_booted() -> bool:
    """True when systemd is PID 1 (the test sd_booted(3) uses)."""
    return os.path.isdir("/run/systemd/system")


def _copy_atomically(source: Path, target: Path, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, temporary)
    os.chmod(temporary, mode)
    os.replace(temporary, target)


def install(
    server: str,
    secret: str,
    *,
    ca_file: str | None = None,
    insecure_http: bool = False,
    force: bool = False,
    start: bool = True,
    paths: InstallPaths | None = None,
    source: Path | None = None,
    require_root: bool = True,
    systemd: bool | None = None,
    run: Callable[[Sequence[str]], object] | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Install the agent on this host; raises ConfigError, ServerRefused or ServerUnavailable.

    `source` is the zipapp to install (default: the one running, else one built from this tree).
    Already enrolled with the same server: the host token is kept and no secret is needed.
    """
    paths = paths or InstallPaths()
    if require_root and os.geteuid() != 0:
        raise ConfigError("install must run as root: it writes /usr/local/lib, /etc and a systemd unit")
    server = check_server_url(server, insecure_http)
    if ca_file is not None:
        tls_context(ca_file)  # a bad CA file fails now, before anything is written
    python = system_python()
    unit = systemd_unit(python, paths)
    store = StateStore(paths.state_dir)
    enrolled = store.load()
    if enrolled is not None and not force:
        try:
            previous = load_config(paths.config).server
        except ConfigError:
            previous = ""
        if previous != server:
            raise ConfigError(
                f"this host is enrolled with {previous or 'another server'}; --force enrolls it with {server}"
            )
        say(f"already enrolled as host {enrolled.host_name!r}; keeping its host token")
    else:
        transport = Transport(server, ca_file=ca_file, insecure_http=insecure_http)
        state = enroll(transport, store, secret, force=force)
        say(f"enrolled as host {state.host_name!r} (id {state.host_id}); host token saved in {store.path} (mode 0600)")

    installed_ca: str | None = None
    if ca_file is not None:
        if Path(ca_file).resolve() != paths.ca_file.resolve():
            _copy_atomically(Path(ca_file), paths.ca_file, 0o644)
        installed_ca = str(paths.ca_file)
    try:
        config = replace(load_config(paths.config), server=server, ca_file=installed_ca, insecure_http=insecure_http)
    except ConfigError:
        config = AgentConfig(server, installed_ca, insecure_http)
    save_config(paths.config, config)

    source = source or running_archive()
    if source is None:
        build_zipapp(paths.pyz)
    elif source.resolve() != paths.pyz.resolve():
        _copy_atomically(source, paths.pyz, 0o755)
    say(f"agent installed at {paths.pyz}")

    paths.unit.parent.mkdir(parents=True, exist_ok=True)
    paths.unit.write_text(unit, encoding="utf-8")
    os.chmod(paths.unit, 0o644)
    runner = run or (lambda argv: subprocess.run(argv, check=True))  # noqa: S603 - fixed argv
    if systemd if systemd is not None else is_systemd_booted():
        if start:
            for argv in (
                ["systemctl", "daemon-reload"],
                ["systemctl", "enable", UNIT_NAME],
                ["systemctl", "restart", UNIT_NAME],  # starts it, or restarts an older agent with the new file
            ):
                try:
                    runner(argv)
                except (OSError, subprocess.CalledProcessError) as exc:
                    raise ConfigError(f"`{' '.join(argv)}` failed: {exc}") from exc
            say(f"{UNIT_NAME} is enabled and running; `systemctl status patchday-agent` shows it")
        else:
            say(f"unit written to {paths.unit}; start it with `systemctl enable --now {UNIT_NAME}`")
    else:
        command = f"{python} -I {paths.pyz} --config {paths.config} --state-dir {paths.state_dir}"
        say(
            f"systemd is not running here, so nothing was started. Run `{command} run` under your init "
            f"system (or `{command} once` from cron); {paths.unit} is ready for when systemd is."
        )
