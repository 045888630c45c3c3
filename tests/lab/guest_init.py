#!/usr/bin/python3
"""PID 1 of a lab host: starts the runlevel-2 init scripts, reaps orphans, stops everything on SIGTERM.

Copied into the base as /usr/local/sbin/pdt-lab-init (with /sbin/init pointing at it) and run by the
host's own python3, so it uses only the standard library of Debian 12's Python 3.11.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType

RC_DIR = "/etc/rc2.d"
START_TIMEOUT = 60
STOP_TIMEOUT = 10


class Shutdown(Exception):
    """SIGTERM or SIGINT arrived: stop the host."""


def enabled_services() -> list[str]:
    """Init scripts linked as S??name in /etc/rc2.d, in boot order (sshd when there is no rc2.d)."""
    try:
        links = sorted(name for name in os.listdir(RC_DIR) if name.startswith("S"))
    except FileNotFoundError:
        return ["ssh"]
    return [link[3:] for link in links if os.access(f"/etc/init.d/{link[3:]}", os.X_OK)]


def on_signal(signum: int, frame: FrameType | None) -> None:
    raise Shutdown


def run_script(service: str, action: str, timeout: int) -> bool:
    try:
        subprocess.run([f"/etc/init.d/{service}", action], timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"pdt-lab-init: {service} {action} failed: {exc}", flush=True)
        return False
    return True


def reap_forever() -> None:
    # A reaping PID 1, not sshd: an openssh upgrade restarts sshd, which must not end the host.
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(1)


def stop_everything(started: list[str]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for service in reversed(started):
        run_script(service, "stop", STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGTERM)  # everything else in this PID namespace
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.1)
        except ChildProcessError:
            break


def main() -> int:
    os.environ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started: list[str] = []
    try:
        for service in enabled_services():
            if run_script(service, "start", START_TIMEOUT):
                started.append(service)
        print("pdt-lab-init: up", flush=True)
        reap_forever()
    except Shutdown:
        pass
    stop_everything(started)
    print("pdt-lab-init: down", flush=True)
    return 0  # the kernel kills whatever is left in the PID namespace when PID 1 exits


if __name__ == "__main__":
    sys.exit(main())
