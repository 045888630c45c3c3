"""A rollout end to end over the real agent protocol (HTTP): plan, approval, rings, leases, results,
verification by re-inventory, a failed gate with rollback, an expired lease settled by inventory.

The hosts' package managers are not run here (the lab tests do that on real Debian hosts): the test
plays the agent, posting the results an executor would and then the host's new inventory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from patchday.advisories import feed_imports
from patchday.core.matching import InstalledPackage
from patchday.core.roles import Role
from patchday.findings.models import Finding, FindingStatus
from patchday.inventory import agents, ingest
from patchday.rollouts import driver
from patchday.rollouts.models import Job
from tests.conftest import SYSTEM_ACTOR, ApiClient
from tests.support.documents import document
from tests.support.fleet import archive_versions, debian_advisories, real_host

pytestmark = pytest.mark.django_db


def _behind(packages: Sequence[InstalledPackage]) -> tuple[tuple[InstalledPackage, ...], list[dict[str, Any]]]:
    """The real host, and the security updates it is offered (the fixture archive's security versions)."""
    security = archive_versions("bookworm-security")
    pending = []
    for p in packages:
        if p.name in security and security[p.name][0] != p.version:
            version, source, source_version = security[p.name]
            pending.append(
                {
                    "manager": "apt",
                    "name": p.name,
                    "arch": p.arch or "amd64",
                    "installed": p.version,
                    "candidate": version,
                    "origin": "Debian",
                    "suite": "bookworm-security",
                    "security": True,
                    "source": source,
                    "source_version": source_version,
                    "changelog_cves": [],
                }
            )
    return tuple(packages), pending


def _upgraded(packages: Sequence[InstalledPackage], pending: list[dict[str, Any]]) -> tuple[InstalledPackage, ...]:
    targets = {u["name"]: u for u in pending}
    return tuple(
        replace(p, version=targets[p.name]["candidate"], source_version=targets[p.name]["source_version"])
        if p.name in targets
        else p
        for p in packages
    )


class FakeHost:
    """One enrolled host talking the agent protocol; `report` is what its executor would post."""

    def __init__(self, secret: str, name: str, machine_id: str, tags: Sequence[str] = ()) -> None:
        self.name = name
        self.machine_id = machine_id
        enrolled = ApiClient(None).post(
            "agent/enroll", json={"secret": secret, "machine_id": machine_id, "hostname": name}
        )
        assert enrolled.status_code == 201, enrolled.content
        self.api = ApiClient(enrolled.json()["host_token"])
        self.sequence = 0
        self.packages, self.pending = _behind(real_host())
        self.send_inventory()
        if tags:
            from patchday.inventory import services
            from patchday.inventory.services import HostChanges

            services.set_attributes(SYSTEM_ACTOR, [name], HostChanges(add_tags=tuple(tags)).check())

    def send_inventory(self) -> None:
        self.sequence += 1
        doc = document(self.packages, hostname=self.name, machine_id=self.machine_id, pending=self.pending)
        body = {"sequence": self.sequence, "digest": ingest.canonical_digest(doc), "inventory": doc}
        answer = self.api.request("PUT", "agent/inventory", json=body)
        assert answer.status_code == 200, answer.content

    def check_in(self) -> list[dict[str, Any]]:
        return self.check_in_reply()["jobs"]  # type: ignore[no-any-return]

    def check_in_reply(self) -> dict[str, Any]:
        self.sequence += 1
        answer = self.api.post("agent/checkin", json={"sequence": self.sequence, "digest": "0" * 64})
        assert answer.status_code == 200, answer.content
        return answer.json()  # type: ignore[no-any-return]

    def result(self, lease: dict[str, Any], ok: bool = True, error: str = "") -> Any:
        spec = lease["job"]
        wanted = spec.get("targets") or spec["restore"]
        before = {t["name"]: {"version": self._version(t["name"]), "arch": "amd64"} for t in wanted}
        after = {t["name"]: {"version": t["version"], "arch": "amd64"} for t in wanted} if ok else before
        result = {
            "job_id": spec["job_id"],
            "kind": lease["phase"],
            "status": "succeeded" if ok else "failed",
            "error": error,
            "steps": [{"name": "install", "argv": ["apt-get", "install"], "exit_code": 0 if ok else 100}],
            "before": before if lease["phase"] == "deploy" else {},
            "after": after,
        }
        key = f"{spec['job_id']}:{lease['phase']}:{lease['lease_token']}"
        body = {"lease_token": lease["lease_token"], "idempotency_key": key, "phase": lease["phase"], "result": result}
        return self.api.post(f"agent/jobs/{spec['job_id']}/result", json=body)

    def _version(self, name: str) -> str:
        return next(p.version for p in self.packages if p.name == name)

    def apply(self) -> None:
        self.packages = _upgraded(self.packages, self.pending)
        self.pending = []
        self.send_inventory()


@pytest.fixture
def fleet() -> list[FakeHost]:
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    secret = agents.create_secret(SYSTEM_ACTOR, "fleet").secret
    return [
        FakeHost(secret, "pilot-1", "1" * 32, tags=["pilot"]),
        FakeHost(secret, "broad-1", "2" * 32),
        FakeHost(secret, "broad-2", "3" * 32),
    ]


def fleet_pending() -> list[dict[str, Any]]:
    return _behind(real_host())[1]


RINGS = [
    {"name": "pilot", "tags": ["pilot"], "gate": {"max_failure_ratio": 0, "min_successes": 1}},
    {"name": "broad", "gate": {"max_failure_ratio": 0, "min_successes": 1}},
]


def _approved_plan(api_as: Callable[[Role], ApiClient]) -> int:
    operator, approver = api_as(Role.OPERATOR), api_as(Role.APPROVER)
    body = {
        "name": "security now",
        "selection": {"kind": "security"},
        "target": {"hosts": ["pilot-1", "broad-1", "broad-2"]},
        "rings": RINGS,
    }
    created = operator.post("plans", json=body)
    assert created.status_code == 201, created.content
    plan = created.json()
    assert plan["totals"]["hosts_with_changes"] == 3
    assert plan["totals"]["packages"] == 3 * len(fleet_pending())
    assert plan["totals"]["by_ring"] == {"pilot": 1, "broad": 2}
    assert all(h["targets"] for h in plan["hosts"])
    assert operator.post(f"plans/{plan['id']}/submit").json()["state"] == "pending_approval"
    approved = approver.post(f"plans/{plan['id']}/approve", json={"comment": "go"})
    assert approved.json()["state"] == "approved", approved.content
    return int(plan["id"])


def test_a_rollout_goes_ring_by_ring_and_is_verified_by_re_inventory(
    fleet: list[FakeHost], api_as: Callable[[Role], ApiClient]
) -> None:
    pilot, broad_1, broad_2 = fleet
    plan_id = _approved_plan(api_as)
    operator = api_as(Role.OPERATOR)
    open_before = Finding.objects.filter(host__name="pilot-1", status=FindingStatus.OPEN).count()

    started = operator.post(f"plans/{plan_id}/start", json={})
    assert started.status_code == 201, started.content
    rollout_id = started.json()["id"]
    assert [r["state"] for r in started.json()["rings"]] == ["running", "waiting"]
    assert broad_1.check_in() == []  # the broad ring is not open

    leases = pilot.check_in()
    assert len(leases) == 1
    assert leases[0]["phase"] == "deploy"
    assert pilot.check_in() == []  # leased once, never twice
    assert pilot.result(leases[0]).json()["state"] == "succeeded"
    assert pilot.result(leases[0]).json()["state"] == "succeeded"  # the same key again: same answer
    pilot.apply()  # the fresh inventory verifies
    job = Job.objects.get(host__name="pilot-1")
    assert job.state == "verified"
    fixed = Finding.objects.filter(host__name="pilot-1", status=FindingStatus.FIXED, fixed_by_rollout=rollout_id)
    assert (
        fixed.count() == open_before - Finding.objects.filter(host__name="pilot-1", status=FindingStatus.OPEN).count()
    )
    assert fixed.count() > 0

    driver.tick(push=False)
    assert [r["state"] for r in operator.get(f"rollouts/{rollout_id}").json()["rings"]] == ["passed", "running"]
    for host in (broad_1, broad_2):
        (lease,) = host.check_in()
        assert host.result(lease).status_code == 200
        host.apply()
    driver.tick(push=False)
    assert operator.get(f"rollouts/{rollout_id}").json()["state"] == "completed"


def test_a_failed_pilot_halts_the_rollout_and_rolls_the_pilot_back(
    fleet: list[FakeHost], api_as: Callable[[Role], ApiClient]
) -> None:
    pilot, broad_1, _ = fleet
    plan_id = _approved_plan(api_as)
    rollout_id = api_as(Role.OPERATOR).post(f"plans/{plan_id}/start", json={}).json()["id"]
    (lease,) = pilot.check_in()
    assert pilot.result(lease, ok=False, error="dpkg: error processing package").json()["state"] == "failed"

    driver.tick(push=False)
    detail = api_as(Role.VIEWER).get(f"rollouts/{rollout_id}").json()
    assert detail["state"] == "halted"
    assert [r["state"] for r in detail["rings"]] == ["rolling_back", "waiting"]
    assert broad_1.check_in() == []  # nothing reaches the next ring
    (rollback,) = pilot.check_in()
    assert rollback["phase"] == "rollback"
    assert rollback["job"]["restore"]  # the versions recorded before the change
    assert pilot.result(rollback).json()["state"] == "rolled_back"
    driver.tick(push=False)
    assert [r["state"] for r in api_as(Role.VIEWER).get(f"rollouts/{rollout_id}").json()["rings"]] == [
        "rolled_back",
        "waiting",
    ]


def test_an_expired_lease_is_unknown_until_the_inventory_settles_it(
    fleet: list[FakeHost], api_as: Callable[[Role], ApiClient]
) -> None:
    pilot = fleet[0]
    plan_id = _approved_plan(api_as)
    api_as(Role.OPERATOR).post(f"plans/{plan_id}/start", json={})
    (lease,) = pilot.check_in()
    driver.tick(now=timezone.now() + timedelta(hours=2), push=False)
    job = Job.objects.get(host__name="pilot-1")
    assert job.state == "unknown"
    assert pilot.result(lease).status_code == 200  # a late result is kept as evidence only
    assert Job.objects.get(pk=job.pk).state == "unknown"
    pilot.apply()
    assert Job.objects.get(pk=job.pk).state == "verified"


def test_bad_input_is_refused_and_changes_nothing(fleet: list[FakeHost], api_as: Callable[[Role], ApiClient]) -> None:
    operator, approver = api_as(Role.OPERATOR), api_as(Role.APPROVER)
    nothing = operator.post(
        "plans",
        json={
            "name": "x",
            "selection": {"kind": "packages", "values": ["no-such-pkg"]},
            "target": {"hosts": ["pilot-1"]},
        },
    )
    assert nothing.status_code == 422
    assert "matches no update" in nothing.json()["error"]["message"]
    bad_name = operator.post(
        "plans",
        json={
            "name": "x",
            "selection": {"kind": "packages", "values": ["a;rm -rf /"]},
            "target": {"hosts": ["pilot-1"]},
        },
    )
    assert bad_name.status_code == 422
    plan_id = _approved_plan(api_as)
    assert approver.post(f"plans/{plan_id}/approve", json={}).status_code == 409  # already approved
    own = approver.post(
        "plans", json={"name": "mine", "selection": {"kind": "security"}, "target": {"hosts": ["broad-1"]}}
    )
    assert own.status_code == 403  # approvers do not create plans
    admin = api_as(Role.ADMIN)
    mine = admin.post(
        "plans", json={"name": "mine", "selection": {"kind": "security"}, "target": {"hosts": ["broad-1"]}}
    )
    admin.post(f"plans/{mine.json()['id']}/submit")
    own_approval = admin.post(f"plans/{mine.json()['id']}/approve", json={"comment": "me"})
    assert own_approval.status_code == 403
    assert "may not decide it" in own_approval.json()["error"]["message"]
    assert admin.get(f"plans/{mine.json()['id']}").json()["state"] == "pending_approval"


def test_the_preview_is_refined_by_each_hosts_simulated_run(
    fleet: list[FakeHost], api_as: Callable[[Role], ApiClient]
) -> None:
    pilot, broad_1, _ = fleet
    operator = api_as(Role.OPERATOR)
    body = {"name": "sim", "selection": {"kind": "security"}, "target": {"hosts": ["pilot-1", "broad-1"]}}
    plan = operator.post("plans", json=body).json()
    (request,) = pilot.check_in_reply()["simulations"]
    assert request["manager"] == "apt"
    assert request["targets"] == next(h["targets"] for h in plan["hosts"] if h["host"] == "pilot-1")
    changes = [
        {"name": t["name"], "arch": "amd64", "from": "1", "to": t["version"], "action": "upgrade"}
        for t in request["targets"]
    ] + [{"name": "libnew1", "arch": "amd64", "from": None, "to": "2.0-1", "action": "install"}]
    hostile = broad_1.api.post(
        f"agent/simulations/{request['plan_host']}", json={"plan_host": request["plan_host"], "changes": changes}
    )
    assert hostile.status_code == 404  # another host's plan entry
    bad = pilot.api.post(
        f"agent/simulations/{request['plan_host']}",
        json={"plan_host": request["plan_host"], "changes": [{"name": "x", "action": "explode"}]},
    )
    assert bad.status_code == 422
    sent = pilot.api.post(
        f"agent/simulations/{request['plan_host']}", json={"plan_host": request["plan_host"], "changes": changes}
    )
    assert sent.status_code == 204, sent.content
    detail = operator.get(f"plans/{plan['id']}").json()
    entry = next(h for h in detail["hosts"] if h["host"] == "pilot-1")
    assert entry["simulated"] is True
    assert entry["changes"][-1]["name"] == "libnew1"
    assert detail["totals"]["dependencies"] == 1
    assert pilot.check_in_reply()["simulations"] == []  # answered once


def test_the_cli_plans_approves_starts_and_follows_a_rollout(fleet: list[FakeHost], make_user: Any) -> None:
    from typer.testing import CliRunner

    from patchday.cli.rollouts import plan_app, rollout_app
    from patchday.rollouts.models import Plan

    make_user(Role.APPROVER, "alice")
    make_user(Role.VIEWER, "victor")
    runner = CliRunner()
    created = runner.invoke(
        plan_app, ["create", "--name", "cli plan", "--select", "security", "--hosts", "pilot-1,broad-1"]
    )
    assert created.exit_code == 0, created.output
    plan = Plan.objects.get(name="cli plan")
    assert "pilot-1" in created.output
    assert "2 of 2 hosts change" in created.output
    assert runner.invoke(plan_app, ["submit", str(plan.pk)]).exit_code == 0

    refused = runner.invoke(plan_app, ["approve", str(plan.pk), "--as", "victor"])
    assert refused.exit_code != 0  # a viewer may not approve
    assert Plan.objects.get(pk=plan.pk).state == "pending_approval"
    approved = runner.invoke(plan_app, ["approve", str(plan.pk), "--as", "alice", "--comment", "ok"])
    assert approved.exit_code == 0, approved.output
    started = runner.invoke(rollout_app, ["start", str(plan.pk)])
    assert started.exit_code == 0, started.output
    rollout_id = Plan.objects.get(pk=plan.pk).rollout.pk
    status = runner.invoke(rollout_app, ["status", str(rollout_id)])
    assert status.exit_code == 0, status.output
    assert "running" in status.output
    assert runner.invoke(rollout_app, ["pause", str(rollout_id)]).exit_code == 0
    assert "paused" in runner.invoke(rollout_app, ["status", str(rollout_id)]).output
