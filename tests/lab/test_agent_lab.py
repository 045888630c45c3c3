"""The agent on real lab hosts: two Debian 12 hosts, behind on security updates, enroll with the zipapp the
server builds, check in over the lab network, and what patchday stores equals what each host says itself
(`dpkg-query -W`, `uname -r`, `apt list --upgradable`)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from patchday.agent.build import build_zipapp
from patchday.core.audit import Actor, ActorKind
from tests.lab.fleet import Lab, LabHost

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

Exec = Callable[..., CompletedProcess[str]]
ACTOR = Actor(ActorKind.SYSTEM, "tests")
PRESENT = {"installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending"}
UPGRADABLE = re.compile(r"^(?P<name>[^/\s]+)/(?P<suites>\S+) (?P<candidate>\S+) (?P<arch>\S+) \[upgradable from: ")


def _dpkg(lab_exec: Exec, host: LabHost) -> set[tuple[str, str, str]]:
    out = lab_exec(host, ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\t${Status}\n"]).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return {(name, version, arch) for name, version, arch, status in rows if status.split()[-1] in PRESENT}


def _upgradable(lab_exec: Exec, host: LabHost) -> dict[str, tuple[str, bool]]:
    """package -> (candidate, from a -security suite), as `apt list --upgradable` says inside the host."""
    out = lab_exec(host, ["apt", "list", "--upgradable"], env={"LC_ALL": "C"}).stdout
    found = {}
    for line in out.splitlines():
        if m := UPGRADABLE.match(line):
            found[m["name"]] = (m["candidate"], "-security" in m["suites"])
    return found


def test_two_lab_hosts_enroll_with_the_agent_and_their_inventory_is_their_ground_truth(
    lab: Lab, lab_fleet: list[LabHost], lab_exec: Exec, lab_server: str, tmp_path: Path
) -> None:
    from patchday.inventory import agents
    from patchday.inventory.models import Host

    secret = agents.create_secret(ACTOR, "lab").secret
    archive = build_zipapp(tmp_path / "patchday-agent.pyz")
    for host in lab_fleet[:2]:
        (host.root_dir / "root" / "patchday-agent.pyz").write_bytes(archive.read_bytes())
        lab_exec(host, ["apt-get", "update", "-qq"], timeout=300)
        agent = ["python3", "/root/patchday-agent.pyz"]
        enrolled = lab_exec(
            host,
            [*agent, "enroll", "--server", lab_server, "--insecure-http"],
            env={"PATCHDAY_AGENT_ENROLL_SECRET": secret},
            check=False,
        )
        assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
        once = lab_exec(host, [*agent, "once"], check=False, timeout=300)
        assert once.returncode == 0, once.stdout + once.stderr
        state = (host.root_dir / "var/lib/patchday-agent/state.json").stat()
        assert state.st_mode & 0o777 == 0o600

    for host in lab_fleet[:2]:
        machine_id = (host.root_dir / "etc/machine-id").read_text().strip()
        stored = Host.objects.get(machine_id=machine_id)
        assert stored.management_mode == "agent"
        assert stored.kernel_running == lab_exec(host, ["uname", "-r"]).stdout.strip()
        packages = set(
            stored.packages.exclude(package_version__ecosystem="PyPI").values_list(
                "package_version__name", "package_version__version", "arch"
            )
        )
        assert packages == _dpkg(lab_exec, host)
        pending = {p.name: (p.candidate, p.security) for p in stored.pending_updates.all()}
        upgradable = _upgradable(lab_exec, host)
        assert any(security for _, security in upgradable.values()), "the lab host should be behind on security"
        for name, (candidate, security) in upgradable.items():
            assert name in pending, f"{host.name}: pending update {name} {candidate} not stored"
            assert pending[name][0] == candidate
            if security:
                assert pending[name][1], f"{host.name}: {name} is from a -security suite but not flagged"
    assert Host.objects.filter(management_mode="agent").count() == 2
    assert os.path.exists(archive)
