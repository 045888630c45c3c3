"""Agentless SSH collection against a real, throwaway OpenSSH sshd on 127.0.0.x (this machine is the host).

Each sshd runs as root from a temporary directory with its own host key and one authorized key;
"changing the host key" restarts it on the same port with a new key. Ground truth is what dpkg-query
says on this machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from patchday.audit.models import AuditRecord
from patchday.connectors import services, ssh
from patchday.connectors.models import SshTarget
from patchday.connectors.services import CollectionStatus
from patchday.connectors.ssh import ConnectSpec, HostKey, Timeouts, collect_many
from patchday.core.audit import Actor, ActorKind
from patchday.core.errors import Conflict, InvalidInput

SSHD = Path("/usr/sbin/sshd")
ACTOR = Actor(ActorKind.SYSTEM, "tests")
# Present on this machine, so a PATH of only these makes "a host without python3" for real.
NO_PYTHON_TOOLS = ("env", "dpkg-query", "cat", "uname")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SSHD.exists(), reason="no /usr/sbin/sshd (./run test installs openssh-server)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the throwaway sshd runs as root"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sshd:
    """A running throwaway sshd; `restart(new_key=True)` keeps the port and replaces the host key."""

    root: Path
    port: int
    addresses: tuple[str, ...]
    no_python: bool
    process: subprocess.Popen[bytes] | None = None

    @property
    def host_key(self) -> HostKey:
        return HostKey.parse((self.root / "host_key.pub").read_text())

    def start(self) -> None:
        bin_dir = self.root / "bin"
        if self.no_python and not bin_dir.exists():
            bin_dir.mkdir()
            for tool in NO_PYTHON_TOOLS:
                found = shutil.which(tool)
                assert found, tool
                (bin_dir / tool).symlink_to(found)
        lines = [
            f"Port {self.port}",
            *(f"ListenAddress {a}" for a in self.addresses),
            f"HostKey {self.root / 'host_key'}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "MaxStartups 50",
            "LogLevel ERROR",
            *([f"SetEnv PATH={bin_dir}"] if self.no_python else []),
        ]
        (self.root / "sshd_config").write_text("\n".join(lines) + "\n")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(self.root / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "sshd.log").open("ab"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.addresses[0], self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"sshd did not start: {(self.root / 'sshd.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, new_key: bool = False) -> None:
        self.stop()
        if new_key:
            for name in ("host_key", "host_key.pub"):
                (self.root / name).unlink()
            asyncssh_keygen(self.root / "host_key")
        self.start()


def asyncssh_keygen(path: Path, kind: str = "ssh-ed25519") -> None:
    key = asyncssh.generate_private_key(kind)
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    path.chmod(0o600)


@pytest.fixture
def client_key(tmp_path: Path) -> Path:
    path = tmp_path / "client_key"
    asyncssh_keygen(path)
    return path


@pytest.fixture
def start_sshd(tmp_path: Path, client_key: Path) -> Iterator[Callable[..., Sshd]]:
    started: list[Sshd] = []

    def start(addresses: tuple[str, ...] = ("127.0.0.1",), no_python: bool = False) -> Sshd:
        root = tmp_path / f"sshd{len(started)}"
        root.mkdir()
        asyncssh_keygen(root / "host_key")
        shutil.copy(str(client_key) + ".pub", root / "authorized_keys")
        server = Sshd(root, free_port(), addresses, no_python)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def dpkg_ground_truth() -> set[tuple[str, str, str]]:
    """(name, version, arch) of every package dpkg has on disk here, as dpkg-query says."""
    present = {"installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending"}
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\t${Status}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return {(name, version, arch) for name, version, arch, status in rows if status.split()[-1] in present}


def stored_packages(host_id: int | None) -> set[tuple[str, str, str]]:
    """(name, version, arch) of the OS packages patchday stored for the host."""
    from patchday.inventory.models import HostPackage

    rows = (
        HostPackage.objects.filter(host_id=host_id)
        .exclude(package_version__ecosystem="PyPI")
        .values_list("package_version__name", "package_version__version", "arch")
    )
    return set(rows)


def ssh_temp_dirs() -> set[str]:
    # where the host's python3 makes them: sshd gives the session no TMPDIR
    return {p.name for p in Path("/tmp").glob("patchday-ssh-*")}  # noqa: S108


# -- through the services and the database ----------------------------------------------------------------


@pytest.mark.django_db
def test_first_contact_pins_the_key_and_stores_what_dpkg_query_says(
    start_sshd: Callable[..., Sshd], client_key: Path
) -> None:
    server = start_sshd()
    target = services.add_target(ACTOR, f"root@127.0.0.1:{server.port}", key_file=client_key)
    assert target.host_key == ""
    before = ssh_temp_dirs()

    [outcome] = services.collect_targets(ACTOR, [target])

    assert outcome.status is CollectionStatus.STORED, outcome.message
    assert outcome.pinned_now
    assert not outcome.reduced
    target.refresh_from_db()
    assert target.host_key == server.host_key.line
    assert target.host_key_fingerprint == server.host_key.fingerprint
    assert target.host_key_pinned_at is not None
    assert target.last_success_at is not None
    assert target.last_error == ""
    assert target.host_id == outcome.host_id
    assert stored_packages(target.host_id) == dpkg_ground_truth()
    assert ssh_temp_dirs() == before  # the remote temporary directory is gone
    actions = list(AuditRecord.objects.order_by("id").values_list("action", flat=True))
    assert actions.index("ssh.target_add") < actions.index("ssh.hostkey_pinned")


@pytest.mark.django_db
def test_a_changed_host_key_is_refused_audited_and_nothing_is_stored(
    start_sshd: Callable[..., Sshd], client_key: Path
) -> None:
    from patchday.inventory.models import Collection

    server = start_sshd(no_python=True)
    target = services.add_target(ACTOR, f"root@127.0.0.1:{server.port}", key_file=client_key)
    [first] = services.collect_targets(ACTOR, [target])
    assert first.status is CollectionStatus.STORED, first.message
    assert first.reduced  # no python3 on this "host": the plain-command fallback ran
    assert stored_packages(first.host_id or 0) == dpkg_ground_truth()
    original = server.host_key
    collections = Collection.objects.count()

    server.restart(new_key=True)
    target.refresh_from_db()
    [refused] = services.collect_targets(ACTOR, [target])

    assert refused.status is CollectionStatus.HOSTKEY_MISMATCH
    assert original.fingerprint in refused.message
    assert server.host_key.fingerprint in refused.message
    target.refresh_from_db()
    assert target.hostkey_mismatch
    assert target.host_key == original.line  # never updated automatically
    assert "host key mismatch" in target.last_error
    assert Collection.objects.count() == collections  # nothing stored
    record = AuditRecord.objects.get(action="ssh.hostkey_mismatch")
    changes = json.loads(record.changes)
    assert changes["pinned"] == original.fingerprint
    assert changes["presented"] == server.host_key.fingerprint
    assert services.due_targets(target.last_attempt_at + target.interval) == []  # waits for an admin

    # Collecting again is refused again: the pin stays until an admin decides.
    [again] = services.collect_targets(ACTOR, [target])
    assert again.status is CollectionStatus.HOSTKEY_MISMATCH

    services.repin(ACTOR, target)
    assert AuditRecord.objects.filter(action="ssh.repin").count() == 1
    target.refresh_from_db()
    assert not target.hostkey_mismatch
    [after] = services.collect_targets(ACTOR, [target])
    assert after.status is CollectionStatus.STORED, after.message
    assert after.pinned_now
    target.refresh_from_db()
    assert target.host_key == server.host_key.line
    assert Collection.objects.count() == collections + 1


@pytest.mark.django_db
def test_an_admin_can_pin_a_key_checked_out_of_band(start_sshd: Callable[..., Sshd], client_key: Path) -> None:
    server = start_sshd(no_python=True)
    target = services.add_target(ACTOR, f"root@127.0.0.1:{server.port}", key_file=client_key)
    wrong = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    services.repin(ACTOR, target, wrong)
    [refused] = services.collect_targets(ACTOR, [target])
    assert refused.status is CollectionStatus.HOSTKEY_MISMATCH
    services.repin(ACTOR, target, (server.root / "host_key.pub").read_text())
    [stored] = services.collect_targets(ACTOR, [target])
    assert stored.status is CollectionStatus.STORED, stored.message
    assert not stored.pinned_now  # it was pinned by the admin, not by first contact


@pytest.mark.django_db
def test_targets_are_validated_and_unique(client_key: Path) -> None:
    with pytest.raises(InvalidInput):
        services.add_target(ACTOR, "root@db1;reboot", key_file=client_key)
    with pytest.raises(InvalidInput) as raised:
        services.add_target(ACTOR, "root@db1", key_file="/nonexistent/key")
    assert raised.value.field == "key_file"
    services.add_target(ACTOR, "root@db1:2222", key_file=client_key)
    with pytest.raises(Conflict):
        services.add_target(ACTOR, "admin@DB1:2222", key_file=client_key)
    assert SshTarget.objects.count() == 1
    assert AuditRecord.objects.filter(action="ssh.target_add").count() == 1


@pytest.mark.django_db
def test_a_failing_host_is_recorded_on_its_target(client_key: Path) -> None:
    target = services.add_target(ACTOR, f"root@127.0.0.1:{free_port()}", key_file=client_key)
    [outcome] = services.collect_targets(ACTOR, [target], timeouts=Timeouts(connect=3, command=5, total=10))
    assert outcome.status is CollectionStatus.FAILED
    target.refresh_from_db()
    assert "cannot connect" in target.last_error
    assert target.last_attempt_at is not None
    assert target.last_success_at is None
    assert target.host_key == ""


# -- the network layer alone ------------------------------------------------------------------------------


def spec_for(server: Sshd, key: Path, address: str = "127.0.0.1", target_id: int = 1) -> ConnectSpec:
    return ConnectSpec(target_id, f"root@{address}:{server.port}", address, server.port, "root", str(key), False, None)


# Sent instead of the collectors: records when this session ran, then prints a minimal document.
SLOW_PROGRAM = """\
import json, os, sys, time
start = time.time()
time.sleep(0.8)
with open(os.path.join({marks!r}, str(os.getpid())), "w") as f:
    f.write("%f %f" % (start, time.time()))
print(json.dumps({{"format": 1, "hostname": "h", "os": {{}}}}))
"""


def test_no_more_hosts_than_the_concurrency_bound_are_collected_at_once(
    start_sshd: Callable[..., Sshd], client_key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses = tuple(f"127.0.0.{n}" for n in range(2, 8))  # six hosts, one sshd listening on each
    server = start_sshd(addresses)
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(ssh, "collector_program", lambda changelogs=False: SLOW_PROGRAM.format(marks=str(marks)))
    specs = [spec_for(server, client_key, a, n) for n, a in enumerate(addresses)]

    results = asyncio.run(collect_many(specs, concurrency=2))

    assert [r.error for r in results] == [None] * len(specs)
    assert [r.target_id for r in results] == list(range(len(specs)))
    sessions = [tuple(map(float, p.read_text().split())) for p in marks.iterdir()]
    assert len(sessions) == len(specs)
    events = sorted([(start, 1) for start, _ in sessions] + [(end, -1) for _, end in sessions])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most == 2  # the bound holds, and it is used


def test_a_host_that_never_speaks_ssh_times_out_alone(start_sshd: Callable[..., Sshd], client_key: Path) -> None:
    server = start_sshd(no_python=True)
    with socket.socket() as silent:  # accepts TCP connections (the kernel completes them) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        dead = ConnectSpec(2, "root@silent", "127.0.0.1", silent.getsockname()[1], "root", str(client_key), False, None)
        started = time.monotonic()
        good, stuck = asyncio.run(
            collect_many(
                [spec_for(server, client_key), dead], concurrency=2, timeouts=Timeouts(connect=2, command=30, total=60)
            )
        )
        elapsed = time.monotonic() - started
    assert good.error is None
    assert good.document is not None
    assert good.reduced
    assert stuck.document is None
    assert stuck.error == "timed out connecting to root@silent"
    assert not stuck.authenticated
    assert elapsed < 15


def test_an_unauthorized_key_is_refused_without_pinning_anything(
    start_sshd: Callable[..., Sshd], tmp_path: Path
) -> None:
    server = start_sshd(no_python=True)
    stranger = tmp_path / "stranger"
    asyncssh_keygen(stranger)
    [result] = asyncio.run(collect_many([spec_for(server, stranger)]))
    assert result.document is None
    assert result.error is not None
    assert "authentication as root refused" in result.error
    assert not result.authenticated


def test_oversized_or_non_json_output_fails_that_host(
    start_sshd: Callable[..., Sshd], client_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_sshd()
    monkeypatch.setattr(ssh, "collector_program", lambda changelogs=False: "print('<html>not json')")
    [not_json] = asyncio.run(collect_many([spec_for(server, client_key)]))
    assert not_json.error is not None
    assert "not JSON" in not_json.error
    monkeypatch.setattr(ssh, "MAX_OUTPUT", 1000)
    monkeypatch.setattr(ssh, "collector_program", lambda changelogs=False: "print('x' * 5000)")
    [too_big] = asyncio.run(collect_many([spec_for(server, client_key)]))
    assert too_big.error is not None
    assert "larger than" in too_big.error


@pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed on this machine")
def test_sudo_runs_the_collectors_as_root_without_prompting(
    start_sshd: Callable[..., Sshd], client_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_sshd()
    monkeypatch.setattr(
        ssh,
        "collector_program",
        lambda changelogs=False: "import json, os; print(json.dumps({'format': 1, 'hostname': str(os.geteuid())}))",
    )
    spec = spec_for(server, client_key)
    [result] = asyncio.run(collect_many([ConnectSpec(**{**spec.__dict__, "use_sudo": True})]))
    assert result.error is None
    assert result.document == {"format": 1, "hostname": "0"}


# -- the command line -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_add_ssh_with_collect_pins_and_stores(start_sshd: Callable[..., Sshd], client_key: Path) -> None:
    from typer.testing import CliRunner

    from patchday.cli.ssh import app

    server = start_sshd(no_python=True)
    runner = CliRunner()
    added = runner.invoke(app, ["add-ssh", f"root@127.0.0.1:{server.port}", "--key", str(client_key), "--collect"])
    assert added.exit_code == 0, added.output
    assert "stored" in added.output
    assert "host key pinned" in added.output
    assert SshTarget.objects.get().host_key == server.host_key.line

    server.restart(new_key=True)
    refused = runner.invoke(app, ["collect-ssh", "--all"])
    assert refused.exit_code == 3, refused.output
    assert "hostkey_mismatch" in refused.output

    hostile = runner.invoke(app, ["add-ssh", "root@db1;reboot", "--key", str(client_key)])
    assert isinstance(hostile.exception, InvalidInput)
    assert SshTarget.objects.count() == 1
