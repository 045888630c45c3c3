"""Deployment end to end on the lab fleet: three real Debian 12 hosts behind on security updates.

Plan "all security updates" -> approval -> pilot ring (h1, agent) -> gate -> broad ring (h2 by agent,
h3 over SSH) -> verification by re-inventory -> findings fixed by the rollout, and `apt list
--upgradable` inside each host shows no security update left. Fault cases: an upgrade broken by a
maintainer script in the pilot halts the rollout and the pilot is rolled back to exactly its previous
versions while the broad ring is untouched; an agent killed mid-job leaves the job `unknown` after its
lease expires, it is never run again, and the host's next inventory settles it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from django.utils import timezone

from patchday.agent.build import build_zipapp
from patchday.core.audit import Actor, ActorKind
from tests.lab.fleet import Lab, LabHost, SshTarget, guest_env

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

Exec = Callable[..., CompletedProcess[str]]
ACTOR = Actor(ActorKind.SYSTEM, "tests")
PYZ = "/root/patchday-agent.pyz"
PASSWORD = "a long enough test password 1"
UPGRADABLE = re.compile(r"^(?P<name>[^/\s]+)/(?P<suites>\S+) (?P<candidate>\S+) (?P<arch>\S+) \[upgradable from: ")
PRESENT = {"installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending"}
RINGS = [
    {"name": "pilot", "tags": ["pilot"], "gate": {"max_failure_ratio": 0, "min_successes": 1}},
    {"name": "broad", "gate": {"max_failure_ratio": 0, "min_successes": 1}},
]


def _dpkg(lab_exec: Exec, host: LabHost) -> dict[str, str]:
    out = lab_exec(host, ["dpkg-query", "-W", "-f", "${Package}:${Architecture}\t${Version}\t${Status}\n"]).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return {name: version for name, version, status in rows if status.split()[-1] in PRESENT}


def _security_left(lab_exec: Exec, host: LabHost) -> list[str]:
    listing = lab_exec(host, ["apt", "list", "--upgradable"], env={"LC_ALL": "C"}).stdout
    return [m["name"] for line in listing.splitlines() if (m := UPGRADABLE.match(line)) and "-security" in m["suites"]]


def _enroll_agent(lab_exec: Exec, host: LabHost, pyz: bytes, server: str, secret: str) -> int:
    from patchday.inventory.models import Host

    (host.root_dir / PYZ.lstrip("/")).write_bytes(pyz)
    lab_exec(host, ["apt-get", "update", "-qq"], timeout=300)
    enrolled = lab_exec(  # --force: an earlier lab test in this session may have enrolled the host already
        host,
        ["python3", PYZ, "enroll", "--force", "--server", server, "--insecure-http"],
        env={"PATCHDAY_AGENT_ENROLL_SECRET": secret},
        check=False,
    )
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    # Map pending updates to CVEs through their changelogs: the bundled advisories end before the lab's
    # security updates were published, and the findings to fix must come from the real host.
    config = host.root_dir / "etc/patchday-agent/agent.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "changelogs": True}))
    _once(lab_exec, host)
    machine_id = (host.root_dir / "etc/machine-id").read_text().strip()
    return int(Host.objects.get(machine_id=machine_id).pk)


def _once(lab_exec: Exec, host: LabHost) -> str:
    ran = lab_exec(host, ["python3", PYZ, "once"], check=False, timeout=900)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout + ran.stderr


def _add_ssh(lab_exec: Exec, host: LabHost, login: SshTarget) -> int:
    from patchday.connectors import services
    from patchday.connectors.services import CollectionStatus

    lab_exec(host, ["apt-get", "update", "-qq"], timeout=300)
    target = services.add_target(ACTOR, f"{login.user}@{login.address}:{login.port}", key_file=login.key_path)
    [outcome] = services.collect_targets(ACTOR, [target], changelogs=True)
    assert outcome.status is CollectionStatus.STORED, outcome.message
    target.refresh_from_db()
    assert target.host_id is not None
    return int(target.host_id)


@pytest.fixture
def fleet(
    lab: Lab,
    lab_fleet: list[LabHost],
    lab_ssh: list[SshTarget],
    lab_exec: Exec,
    lab_server: str,
    tmp_path: Path,
) -> Any:
    from patchday.accounts import services as accounts
    from patchday.core.roles import Role
    from patchday.inventory import agents
    from patchday.inventory import services as inventory
    from patchday.inventory.models import Host
    from patchday.inventory.services import HostChanges

    pyz = build_zipapp(tmp_path / "patchday-agent.pyz").read_bytes()
    secret = agents.create_secret(ACTOR, "lab").secret
    try:
        ids = [
            _enroll_agent(lab_exec, lab_fleet[0], pyz, lab_server, secret),
            _enroll_agent(lab_exec, lab_fleet[1], pyz, lab_server, secret),
            _add_ssh(lab_exec, lab_fleet[2], lab_ssh[2]),
        ]
        names = [Host.objects.get(pk=i).name for i in ids]
        inventory.set_attributes(ACTOR, [names[0]], HostChanges(add_tags=("pilot",)).check())
        for role in (Role.OPERATOR, Role.APPROVER):
            accounts.create_user(ACTOR, role.value, role, PASSWORD)
        yield names
    finally:
        for host in lab_fleet:
            lab.reset(host)


def _approved(names: list[str], kind: str = "security") -> int:
    from patchday.rollouts import plans

    plan = plans.create_plan(
        ACTOR, "operator", "lab: all security updates", {"kind": kind}, {"hosts": names}, {"reboot": "never"}, RINGS
    )
    plans.submit(ACTOR, plan.pk)
    plans.decide(ACTOR, "approver", plan.pk, True, "lab run")
    return int(plan.pk)


def _job(host_name: str) -> Any:
    from patchday.rollouts.models import Job

    return Job.objects.get(host__name=host_name)


def test_all_security_updates_go_pilot_then_broad_by_agent_and_ssh_and_are_verified(
    lab_fleet: list[LabHost], lab_exec: Exec, fleet: list[str]
) -> None:
    from patchday.findings.models import Finding, FindingStatus
    from patchday.rollouts import driver

    names = fleet
    rollout = driver.start(ACTOR, _approved(names))
    assert [r.state for r in rollout.ring_set.order_by("index")] == ["running", "waiting"]

    _once(lab_exec, lab_fleet[1])  # the broad ring is closed: h2 gets nothing yet
    assert _job(names[1]).state == "queued"
    _once(lab_exec, lab_fleet[0])
    pilot = _job(names[0])
    assert pilot.state == "verified", (pilot.state, pilot.error)
    assert pilot.attempts == 1

    driver.tick()  # the pilot's gate passes, the broad ring opens, the SSH host's job is pushed and verified
    assert _job(names[2]).state == "verified", _job(names[2]).error
    _once(lab_exec, lab_fleet[1])
    assert _job(names[1]).state == "verified", _job(names[1]).error
    driver.tick()
    rollout.refresh_from_db()
    assert rollout.state == "completed", rollout.reason

    for host, name in zip(lab_fleet, names, strict=True):
        assert _security_left(lab_exec, host) == [], f"{name} still has security updates"
        job = _job(name)
        assert job.attempts == 1
        fixed = Finding.objects.filter(host__name=name, status=FindingStatus.FIXED, fixed_by_rollout=rollout.pk)
        upgraded = {t["name"] for t in job.spec["targets"]}
        assert upgraded
        still_open = Finding.objects.filter(host__name=name, status=FindingStatus.OPEN).exclude(fixed_version="")
        assert not still_open.filter(fixing_update__regex=r"^(" + "|".join(map(re.escape, upgraded)) + r") ").exists()
        assert fixed.exists(), f"{name}: no finding fixed by the rollout"

    # The reports read what this run left in the ledgers: no failed job, fixes verified with a time to patch.
    from patchday.reports import metrics

    today = timezone.now().date()
    assert metrics.take_snapshot(today) > 0
    report = metrics.summary(today - timedelta(days=29), today)
    assert report["failure_rate"].value == 0.0
    assert report["failure_rate"].detail  # attempted jobs are counted
    fixed_total = Finding.objects.filter(status=FindingStatus.FIXED, fixed_by_rollout=rollout.pk).count()
    assert fixed_total > 0
    assert report["time_to_patch_detect"].value is not None
    assert metrics.series("failure_rate", today, today) == [(today, 0.0)]
    from django.test import Client

    browser = Client()
    assert browser.login(username="approver", password=PASSWORD)
    overview = browser.get("/overview/")
    assert overview.status_code == 200
    assert "Patch failure rate" in overview.content.decode()


def test_a_broken_pilot_halts_the_rollout_and_is_rolled_back_exactly_the_broad_ring_untouched(
    lab_fleet: list[LabHost], lab_exec: Exec, fleet: list[str]
) -> None:
    from patchday.rollouts import driver

    names = fleet
    plan_id = _approved(names)
    rollout = driver.start(ACTOR, plan_id)
    pilot_host = lab_fleet[0]
    targets = {t["name"] for t in _job(names[0]).spec["targets"]}
    info = pilot_host.root_dir / "var/lib/dpkg/info"
    broken = next(
        name
        for name in sorted(targets)
        if name.startswith("lib") and not list(info.glob(f"{name}.prerm")) and not list(info.glob(f"{name}:*.prerm"))
    )
    arch = "amd64" if (info / f"{broken}:amd64.list").exists() else ""
    prerm = info / (f"{broken}:{arch}.prerm" if arch else f"{broken}.prerm")
    prerm.write_text("#!/bin/sh\nexit 1\n")  # "old-prerm upgrade" fails and the new version has no prerm
    prerm.chmod(0o755)
    before = {host.name: _dpkg(lab_exec, host) for host in lab_fleet}

    _once(lab_exec, pilot_host)
    assert _job(names[0]).state == "failed"
    assert "step install failed" in _job(names[0]).error
    driver.tick()
    rollout.refresh_from_db()
    assert rollout.state == "halted"
    assert [r.state for r in rollout.ring_set.order_by("index")] == ["rolling_back", "waiting"]
    _once(lab_exec, pilot_host)  # takes the rollback job
    assert _job(names[0]).state == "rolled_back", _job(names[0]).rollback_result
    assert _dpkg(lab_exec, pilot_host) == before[pilot_host.name], "the pilot must be back at exactly its versions"
    driver.tick()
    assert [r.state for r in rollout.ring_set.order_by("index")] == ["rolled_back", "waiting"]

    _once(lab_exec, lab_fleet[1])
    for host, name in zip(lab_fleet[1:], names[1:], strict=True):
        assert _job(name).state == "queued"
        assert _job(name).attempts == 0
        assert _dpkg(lab_exec, host) == before[host.name]


def test_an_agent_killed_mid_job_leaves_it_unknown_never_rerun_and_settled_by_inventory(
    lab: Lab, lab_fleet: list[LabHost], lab_exec: Exec, fleet: list[str]
) -> None:
    from patchday.rollouts import driver

    names = fleet
    plan_id = _approved(names)
    driver.start(ACTOR, plan_id)
    pilot_host = lab_fleet[0]
    agent = subprocess.Popen(
        lab.enter_argv(pilot_host, ["python3", PYZ, "once"]),
        env=guest_env(None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while lab_exec(pilot_host, ["pgrep", "-f", "apt-get install"], check=False).returncode != 0:
        assert agent.poll() is None, "the agent finished before its install step could be caught"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    lab_exec(pilot_host, ["pkill", "-KILL", "-f", f"python3 {PYZ} once"], check=False)  # the agent dies, apt goes on
    agent.wait(timeout=60)
    while lab_exec(pilot_host, ["pgrep", "-f", "apt-get install"], check=False).returncode == 0:
        assert time.monotonic() < deadline
        time.sleep(0.5)

    driver.tick(now=timezone.now() + timedelta(hours=2), push=False)  # the lease has expired
    assert _job(names[0]).state == "unknown"
    _once(lab_exec, pilot_host)  # not offered again; its fresh inventory settles the job
    job = _job(names[0])
    assert job.state == "verified", job.error
    assert job.attempts == 1
    history = (pilot_host.root_dir / "var/log/apt/history.log").read_text()
    assert history.count("Commandline: apt-get install") == 1, history
