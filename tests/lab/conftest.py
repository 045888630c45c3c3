"""Lab fleet fixtures: three real Debian 12 hosts (tests/lab/fleet.py), brought up once per pytest session.

    lab          Lab              the lab itself (session): exec, reset, restart, key and known_hosts paths
    lab_fleet    list[LabHost]    h1..h3 running (session): name, address, port, netns, root_dir;
                                  torn down at the end of the session, also when tests fail
    lab_ssh      list[SshTarget]  per host, in lab_fleet's order, read afresh for each test: address, port,
                                  user, key_path, known_hosts (that host's pinned keys, as known_hosts
                                  text), known_hosts_file, and argv(*command) for the ssh client
    lab_exec     Lab.exec         lab_exec(host, argv, check=True, timeout=600) -> CompletedProcess[str],
                                  run inside the host's namespaces (like `docker exec`)

Tests are skipped only when this machine cannot run the lab at all (not root, no namespaces, no
overlayfs). As root with the tools missing or broken, the fixtures fail: a broken lab must not pass as
skipped. Fixtures are visible to tests under tests/lab/; tests that change a host call `lab.reset(host)`
when they are done, so the next test sees a fresh, unpatched host.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.lab.fleet import GATEWAY, Lab, LabHost, SshTarget, namespaces_unavailable

FLEET_SIZE = 3
timings: dict[str, float] = {}  # this session's lab steps, printed in the terminal summary


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs the lab fleet of real Debian 12 hosts (root, namespaces)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if timings:
        steps = ", ".join(f"{step} {seconds:.1f}" for step, seconds in timings.items())
        terminalreporter.write_line(f"lab fleet (s): {steps}")


@pytest.fixture(scope="session")
def lab() -> Lab:
    reason = namespaces_unavailable()
    if reason:
        pytest.skip(reason)
    return Lab()


@pytest.fixture(scope="session")
def lab_fleet(lab: Lab) -> Iterator[list[LabHost]]:
    with lab.session():  # another pytest session on this machine using the lab: wait for it to finish
        # Start clean: a host left by a killed run (or by the CLI) must not carry state into this session.
        lab.down()
        try:
            hosts = lab.up(FLEET_SIZE)
            yield hosts
        finally:
            lab.down()
            timings.update(lab.timings)


@pytest.fixture
def lab_ssh(lab: Lab, lab_fleet: list[LabHost]) -> list[SshTarget]:
    # Per test, not per session: a test that resets a host gives it new host keys, and the next test must
    # pin those (pytest-django also reorders tests, so "the next test" is not the next one in the file).
    return [lab.ssh_target(host) for host in lab_fleet]


@pytest.fixture(scope="session")
def lab_exec(lab: Lab, lab_fleet: list[LabHost]) -> Callable[..., CompletedProcess[str]]:
    return lab.exec


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((GATEWAY, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def lab_server(child_env: dict[str, str], tmp_path: Path, lab_fleet: list[LabHost]) -> Iterator[str]:
    """`patchday web` on the lab gateway, sharing this test's database: what the lab hosts talk to."""
    port = _free_port()
    env = {
        **child_env,
        "PATCHDAY_LISTEN": f"{GATEWAY}:{port}",
        "PATCHDAY_ALLOWED_HOSTS": GATEWAY,
        "PATCHDAY_WEB_WORKERS": "1",
        "PATCHDAY_ACCESS_LOG": "false",
    }
    log = (tmp_path / "web.log").open("wb")
    web = subprocess.Popen([sys.executable, "-m", "patchday.cli.main", "web"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while True:
        assert web.poll() is None, (tmp_path / "web.log").read_text()
        try:
            with socket.create_connection((GATEWAY, port), timeout=1):
                break
        except OSError:
            assert time.monotonic() < deadline, "web did not start"
            time.sleep(0.3)
    try:
        yield f"http://{GATEWAY}:{port}"
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)
        log.close()
