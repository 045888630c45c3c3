"""Agentless SSH collection of a real lab host: what patchday stores equals what the host itself says,
and a host that comes back with other host keys is refused, audited and not stored."""

from __future__ import annotations

from collections.abc import Callable
from subprocess import CompletedProcess

import pytest

from patchday.audit.models import AuditRecord
from patchday.connectors import services
from patchday.connectors.services import CollectionStatus
from patchday.core.audit import Actor, ActorKind
from tests.lab.fleet import Lab, LabHost, SshTarget

pytestmark = pytest.mark.lab

Exec = Callable[..., CompletedProcess[str]]
ACTOR = Actor(ActorKind.SYSTEM, "tests")
PRESENT = {"installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending"}


def dpkg_on(lab_exec: Exec, host: LabHost) -> set[tuple[str, str, str]]:
    out = lab_exec(host, ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\t${Status}\n"]).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return {(name, version, arch) for name, version, arch, status in rows if status.split()[-1] in PRESENT}


def stored_os_packages(host_id: int | None) -> set[tuple[str, str, str]]:
    from patchday.inventory.models import HostPackage

    rows = HostPackage.objects.filter(host_id=host_id).exclude(package_version__ecosystem="PyPI")
    return set(rows.values_list("package_version__name", "package_version__version", "arch"))


@pytest.mark.django_db
def test_a_lab_host_collected_over_ssh_matches_its_own_ground_truth(
    lab: Lab, lab_fleet: list[LabHost], lab_ssh: list[SshTarget], lab_exec: Exec
) -> None:
    from patchday.inventory.models import Collection, Host

    host, login = lab_fleet[-1], lab_ssh[-1]
    target = services.add_target(ACTOR, f"{login.user}@{login.address}:{login.port}", key_file=login.key_path)
    try:
        [outcome] = services.collect_targets(ACTOR, [target])
        assert outcome.status is CollectionStatus.STORED, outcome.message
        assert not outcome.reduced
        target.refresh_from_db()
        assert target.host_key in {" ".join(line.split()[1:3]) for line in login.known_hosts.splitlines()}
        assert stored_os_packages(target.host_id) == dpkg_on(lab_exec, host)
        stored = Host.objects.get(pk=target.host_id)
        assert stored.kernel_running == lab_exec(host, ["uname", "-r"]).stdout.strip()
        collections = Collection.objects.count()

        before = lab.known_hosts_text(host)
        host = lab.reset(host)  # a fresh host at the same address: new identity, new host keys
        if lab.known_hosts_text(host) == before:
            pytest.skip("the lab reset kept the host keys; no key change to refuse")
        [refused] = services.collect_targets(ACTOR, [target])
        assert refused.status is CollectionStatus.HOSTKEY_MISMATCH
        target.refresh_from_db()
        assert target.hostkey_mismatch
        assert Collection.objects.count() == collections
        assert AuditRecord.objects.filter(action="ssh.hostkey_mismatch", object_id=str(target.pk)).exists()
    finally:
        lab.reset(host)
