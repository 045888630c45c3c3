"""The lab fleet is real: SSH with pinned host keys, one identity per host, apt through the lab proxy only,
pending security updates read from the hosts themselves, and no way off the lab subnet."""

from __future__ import annotations

import errno
import re
import socket
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.lab.fleet import BRIDGE, SUBNET, Lab, LabHost, SshTarget

pytestmark = pytest.mark.lab

Exec = Callable[..., CompletedProcess[str]]

# Run inside a host by its own python3: try each address given on the command line, print how it went.
CONNECT_OUT = """
import socket, sys
for address in sys.argv[1:]:
    try:
        socket.create_connection((address, 80), timeout=3).close()
        print(address, "connected")
    except OSError as exc:
        print(address, "errno", exc.errno)
"""
FETCH_THROUGH_PROXY = """
import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": sys.argv[1]}))
try:
    print(opener.open(sys.argv[2], timeout=10).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
"""


def ssh(target: SshTarget, *command: str, known_hosts_file: Path | None = None) -> CompletedProcess[str]:
    argv = target.argv(*command, known_hosts_file=known_hosts_file)
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def apt_update(lab: Lab, lab_fleet: list[LabHost]) -> dict[str, CompletedProcess[str]]:
    """`apt-get update` over SSH on every host at once, as patchday would run it."""
    targets = [lab.ssh_target(host) for host in lab_fleet]
    with ThreadPoolExecutor(len(targets)) as pool:
        results = pool.map(lambda target: ssh(target, "apt-get", "update"), targets)
        return {target.name: result for target, result in zip(targets, results, strict=True)}


def test_every_host_takes_the_lab_key_and_presents_its_pinned_host_key(
    lab_ssh: list[SshTarget], tmp_path: Path
) -> None:
    for target in lab_ssh:
        pinned = tmp_path / f"known_hosts_{target.name}"
        pinned.write_text(target.known_hosts)  # this host's keys only
        result = ssh(target, "cat", "/etc/hostname", known_hosts_file=pinned)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == target.name

    # The pin is checked: the first host's address pinned to the second host's keys is refused.
    first, second = lab_ssh[0], lab_ssh[1]
    wrong = tmp_path / "known_hosts_wrong"
    wrong.write_text(second.known_hosts.replace(f"{second.name},{second.address} ", f"{first.name},{first.address} "))
    refused = ssh(first, "true", known_hosts_file=wrong)
    assert refused.returncode == 255
    assert "host key" in refused.stderr.lower()


def test_hosts_have_their_own_machine_id_and_host_keys(lab_fleet: list[LabHost], lab_exec: Exec) -> None:
    machine_ids = [lab_exec(host, ["cat", "/etc/machine-id"]).stdout.strip() for host in lab_fleet]
    assert all(re.fullmatch(r"[0-9a-f]{32}", machine_id) for machine_id in machine_ids), machine_ids
    assert len(set(machine_ids)) == len(lab_fleet)
    assert Path("/etc/machine-id").read_text().strip() not in machine_ids

    keys = [lab_exec(host, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.split()[1] for host in lab_fleet]
    assert len(set(keys)) == len(lab_fleet)


def test_apt_get_update_inside_every_host_goes_through_the_lab_proxy(
    apt_update: dict[str, CompletedProcess[str]], lab: Lab, lab_fleet: list[LabHost], lab_exec: Exec
) -> None:
    for host in lab_fleet:
        result = apt_update[host.name]
        assert result.returncode == 0, result.stdout + result.stderr
        assert not re.search(r"^(Err|W|E):", result.stdout + result.stderr, re.MULTILINE), result.stdout
        configured = lab_exec(host, ["apt-config", "dump", "Acquire::http::Proxy"]).stdout
        assert f'"{lab.proxy_url}"' in configured

    proxied = lab.proxy_log.read_text()
    for host in lab_fleet:
        assert re.search(rf" {re.escape(host.address)} \"GET http://\S+/InRelease HTTP/1.1\" 200", proxied)


def test_every_host_is_behind_on_security_updates(
    apt_update: dict[str, CompletedProcess[str]], lab_ssh: list[SshTarget]
) -> None:
    for target in lab_ssh:
        listing = ssh(target, "apt", "list", "--upgradable")
        assert listing.returncode == 0, listing.stderr
        # "openssl/oldstable-security 3.0.22-1~deb12u2 amd64 [upgradable from: 3.0.20-1~deb12u2]"
        upgradable = [line for line in listing.stdout.splitlines() if "[upgradable from:" in line]
        from_security = [
            line
            for line in upgradable
            if any(archive.endswith("-security") for archive in line.split()[0].split("/", 1)[1].split(","))
        ]
        assert from_security, f"{target.name} has no pending security update; upgradable: {upgradable}"


def test_nothing_in_a_host_routes_off_the_lab_subnet(lab: Lab, lab_fleet: list[LabHost], lab_exec: Exec) -> None:
    mirror = socket.gethostbyname(lab.mirrors().hosts()[0])
    outside = [mirror, "9.9.9.9", "192.0.2.1"]
    for host in lab_fleet:
        routes = lab_exec(host, ["cat", "/proc/net/route"]).stdout.splitlines()[1:]
        destinations = {(int(r.split()[1], 16), int(r.split()[7], 16)) for r in routes}
        # /proc/net/route is little-endian hex: the only route is the lab /24, there is no default route
        lab_net = int.from_bytes(SUBNET.network_address.packed, "little")
        lab_mask = int.from_bytes(SUBNET.netmask.packed, "little")
        assert destinations == {(lab_net, lab_mask)}

        tried = lab_exec(host, ["python3", "-c", CONNECT_OUT, *outside]).stdout.splitlines()
        assert tried == [f"{address} errno {errno.ENETUNREACH}" for address in outside]

        # and from this machine, every host is reached through the lab bridge only
        route = subprocess.run(["ip", "-o", "route", "get", host.address], capture_output=True, text=True, check=True)
        assert f" dev {BRIDGE} " in route.stdout
    assert Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/forwarding").read_text().strip() == "0"
    blackhole = subprocess.run(["ip", "route", "show", "type", "blackhole"], capture_output=True, text=True, check=True)
    assert str(SUBNET) in blackhole.stdout


def test_the_proxy_relays_only_the_allow_listed_mirrors(lab: Lab, lab_fleet: list[LabHost], lab_exec: Exec) -> None:
    host = lab_fleet[0]
    mirror = lab.mirrors().main
    for url, status in ((f"{mirror}/dists/bookworm/Release", "200"), ("http://example.org/", "403")):
        answer = lab_exec(host, ["python3", "-c", FETCH_THROUGH_PROXY, lab.proxy_url, url]).stdout.strip()
        assert answer == status, url


def test_a_host_cannot_change_the_machines_kernel_settings(lab_fleet: list[LabHost], lab_exec: Exec) -> None:
    tried = lab_exec(lab_fleet[0], ["sh", "-c", "echo 0 > /proc/sys/kernel/sysrq"], check=False)
    assert tried.returncode != 0
    mounts = lab_exec(lab_fleet[0], ["cat", "/proc/mounts"]).stdout
    assert re.search(r"^proc /proc/sys proc ro,", mounts, re.MULTILINE)
    assert re.search(r"^sysfs /sys sysfs ro,", mounts, re.MULTILINE)


def test_maintainer_scripts_restart_services_inside_the_host(lab_ssh: list[SshTarget], lab_exec: Exec) -> None:
    # invoke-rc.d needs /sbin/init and `runlevel`; PID 1 must survive sshd's restart (pitfalls 2 and 3).
    target = lab_ssh[-1]
    before = lab_exec(target.name, ["cat", "/run/sshd.pid"]).stdout.strip()
    restarted = lab_exec(target.name, ["invoke-rc.d", "ssh", "restart"])
    assert "Restarting OpenBSD Secure Shell server" in restarted.stdout
    after = lab_exec(target.name, ["cat", "/run/sshd.pid"]).stdout.strip()
    assert before != after
    assert lab_exec(target.name, ["cat", "/proc/1/comm"]).stdout.strip() == "pdt-lab-init"
    assert ssh(target, "true").returncode == 0
