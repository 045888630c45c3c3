"""Deployment through the API: plan selections and targets, preview details, hook scripts, approvals (by a
person, by rule, by an admin's override), rollout commands, and the notifications and audit records they leave.

Hosts are enrolled agents with a small, hand-made package set (`Agent`); the other test_rollout_*.py modules
reuse these helpers. The full protocol walk with a real host's packages is test_rollout_flow.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from patchday.advisories.models import Vulnerability
from patchday.audit.models import AuditRecord
from patchday.core.matching import InstalledPackage
from patchday.core.roles import Role
from patchday.findings.models import Finding, FindingStatus
from patchday.inventory import agents, ingest
from patchday.inventory import services as inventory_services
from patchday.inventory.models import Host
from patchday.inventory.services import HostChanges
from patchday.notifications.models import Notification
from patchday.rollouts import driver
from patchday.settings import load_settings
from tests.conftest import SYSTEM_ACTOR, ApiClient
from tests.support.documents import document

pytestmark = pytest.mark.django_db

ECOSYSTEM = "Debian:12"
# name -> (installed, candidate, source, security)
OFFERED: Mapping[str, tuple[str, str, str, bool]] = {
    "openssl": ("3.0.14-1~deb12u2", "3.0.15-1~deb12u1", "openssl", True),
    "libssl3": ("3.0.14-1~deb12u2", "3.0.15-1~deb12u1", "openssl", True),
    "curl": ("7.88.1-10+deb12u7", "7.88.1-10+deb12u8", "curl", False),
    "linux-image-amd64": ("6.1.119-1", "6.1.123-1", "linux-signed-amd64", True),
}
OPENSSL_FIX = "3.0.15-1~deb12u1"
ONE_RING = [{"name": "all", "gate": {"max_failure_ratio": 0, "min_successes": 1}}]


def installed(versions: Mapping[str, str]) -> list[InstalledPackage]:
    return [
        InstalledPackage(name, version, ECOSYSTEM, OFFERED[name][2] if name in OFFERED else name, version, "amd64")
        for name, version in sorted(versions.items())
    ]


def pending(names: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "manager": "apt",
            "name": name,
            "arch": "amd64",
            "installed": OFFERED[name][0],
            "candidate": OFFERED[name][1],
            "origin": "Debian",
            "suite": "bookworm-security" if OFFERED[name][3] else "bookworm",
            "security": OFFERED[name][3],
            "source": OFFERED[name][2],
            "source_version": OFFERED[name][1],
            "changelog_cves": [],
        }
        for name in names
    ]


class Agent:
    """An enrolled host speaking the agent protocol, with the packages of OFFERED (or `offered`) pending."""

    def __init__(self, secret: str, name: str, offered: Sequence[str] = tuple(OFFERED)) -> None:
        self.name = name
        self.machine_id = f"{abs(hash(name)) % 16**32:032x}"
        enrolled = ApiClient(None).post(
            "agent/enroll", json={"secret": secret, "machine_id": self.machine_id, "hostname": name}
        )
        assert enrolled.status_code == 201, enrolled.content
        self.api = ApiClient(enrolled.json()["host_token"])
        self.sequence = 0
        self.versions = {name: OFFERED[name][0] for name in OFFERED} | {"bash": "5.2.15-2+b7"}
        self.offered = list(offered)
        self.send_inventory()

    @property
    def host(self) -> Host:
        return Host.objects.get(name=self.name)

    def send_inventory(self) -> None:
        self.sequence += 1
        doc = document(
            installed(self.versions), hostname=self.name, machine_id=self.machine_id, pending=pending(self.offered)
        )
        body = {"sequence": self.sequence, "digest": ingest.canonical_digest(doc), "inventory": doc}
        answer = self.api.request("PUT", "agent/inventory", json=body)
        assert answer.status_code == 200, answer.content

    def check_in(self) -> list[dict[str, Any]]:
        self.sequence += 1
        answer = self.api.post("agent/checkin", json={"sequence": self.sequence, "digest": "0" * 64})
        assert answer.status_code == 200, answer.content
        jobs: list[dict[str, Any]] = answer.json()["jobs"]
        return jobs

    def result_body(self, lease: Mapping[str, Any], ok: bool = True, **changes: Any) -> dict[str, Any]:
        spec = lease["job"]
        deploy = lease["phase"] == "deploy"
        names = [t["name"] for t in spec["targets"]] if deploy else [r["name"] for r in spec["restore"]]
        before = {n: {"version": self.versions[n], "arch": "amd64"} for n in names}
        if deploy:
            after = {t["name"]: {"version": t["version"], "arch": "amd64"} for t in spec["targets"]} if ok else before
        else:
            after = {r["name"]: {"version": r["version"], "arch": "amd64"} for r in spec["restore"]}
        result = {
            "job_id": spec["job_id"],
            "kind": lease["phase"],
            "status": "succeeded" if ok else "failed",
            "error": "" if ok else "dpkg: error processing package",
            "steps": [{"name": "install", "argv": ["apt-get", "install", "-y"], "exit_code": 0 if ok else 100}],
            "before": before if deploy else {},
            "after": after,
        }
        result.update(changes)
        key = f"{spec['job_id']}:{lease['phase']}:{lease['lease_token']}"
        return {"lease_token": lease["lease_token"], "idempotency_key": key, "phase": lease["phase"], "result": result}

    def report(self, lease: Mapping[str, Any], ok: bool = True, **changes: Any) -> Any:
        return self.post_result(lease["job"]["job_id"], self.result_body(lease, ok, **changes))

    def post_result(self, job_id: int, body: Mapping[str, Any]) -> Any:
        return self.api.post(f"agent/jobs/{job_id}/result", json=body)

    def apply(self, lease: Mapping[str, Any]) -> None:
        """The host now runs what the job asked for; its next inventory says so."""
        for target in lease["job"].get("targets") or []:
            self.versions[target["name"]] = target["version"]
        for entry in lease["job"].get("restore") or []:
            self.versions[entry["name"]] = entry["version"]
        self.offered = [n for n in self.offered if self.versions[n] != OFFERED[n][1]]
        self.send_inventory()


@pytest.fixture
def secret() -> str:
    return agents.create_secret(SYSTEM_ACTOR, "rollout-tests").secret


@pytest.fixture
def operator(api_as: Callable[[Role], ApiClient]) -> ApiClient:
    return api_as(Role.OPERATOR)


@pytest.fixture
def approver(api_as: Callable[[Role], ApiClient]) -> ApiClient:
    return api_as(Role.APPROVER)


def set_hosts(names: Sequence[str], **changes: Any) -> None:
    inventory_services.set_attributes(SYSTEM_ACTOR, list(names), HostChanges(**changes).check())


def add_finding(host: Host, cve: str, package: str = "openssl", fixed: str = OPENSSL_FIX, **fields: Any) -> Finding:
    now = timezone.now()
    return Finding.objects.create(
        host=host,
        vulnerability=cve,
        ecosystem=ECOSYSTEM,
        package=package,
        installed_version=OFFERED["openssl"][0],
        fixed_version=fixed,
        first_detected_at=now,
        last_detected_at=now,
        status_changed_at=now,
        **fields,
    )


def create_plan(client: ApiClient, expect: int = 201, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "patch")
    body.setdefault("selection", {"kind": "security"})
    body.setdefault("rings", ONE_RING)
    answer = client.post("plans", json=body)
    assert answer.status_code == expect, answer.content
    plan: dict[str, Any] = answer.json()
    return plan


def approved(operator: ApiClient, approver: ApiClient, **body: Any) -> int:
    plan = create_plan(operator, **body)
    assert operator.post(f"plans/{plan['id']}/submit").json()["state"] == "pending_approval"
    answer = approver.post(f"plans/{plan['id']}/approve", json={"comment": "ok"})
    assert answer.json()["state"] == "approved", answer.content
    return int(plan["id"])


def start(operator: ApiClient, plan_id: int, **body: Any) -> dict[str, Any]:
    answer = operator.post(f"plans/{plan_id}/start", json=body)
    assert answer.status_code == 201, answer.content
    rollout: dict[str, Any] = answer.json()
    return rollout


def targets_by_host(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    return {h["host"]: sorted(t["name"] for t in h["targets"]) for h in plan["hosts"] if h["targets"]}


def actions_since(mark: int) -> list[str]:
    """Audit actions after `mark`, leaving out the users and tokens api_as makes on the way."""
    rows = (
        AuditRecord.objects.filter(pk__gt=mark).exclude(action__startswith="user.").exclude(action__startswith="token.")
    )
    return list(rows.order_by("pk").values_list("action", flat=True))


def audit_mark() -> int:
    last = AuditRecord.objects.order_by("-pk").values_list("pk", flat=True).first()
    return last or 0


def ring_states(client: ApiClient, rollout_id: int) -> list[str]:
    return [r["state"] for r in client.get(f"rollouts/{rollout_id}").json()["rings"]]


def error_field(answer: Any) -> str:
    details = answer.json()["error"]["details"]
    return str(details[0]["field"]) if details else ""


# -- selections and targets ------------------------------------------------------------------------------------


@pytest.fixture
def two_hosts(secret: str) -> tuple[Agent, Agent]:
    """web-1 with an openssl finding (CVE-2026-0001: Act, critical, due soon, DSA-5001-1) and web-2 with
    a curl finding (CVE-2026-0002: Track, low, due late)."""
    web_1, web_2 = Agent(secret, "web-1"), Agent(secret, "web-2", offered=["openssl", "libssl3", "curl"])
    add_finding(
        web_1.host,
        "CVE-2026-0001",
        advisory_ids=["DSA-5001-1"],
        priority_decision="Act",
        due_date=date(2026, 1, 10),
    )
    add_finding(
        web_2.host,
        "CVE-2026-0002",
        package="curl",
        fixed=OFFERED["curl"][1],
        advisory_ids=["DSA-5002-1"],
        priority_decision="Track",
        due_date=date(2026, 6, 1),
    )
    now = timezone.now()
    Vulnerability.objects.create(cve_id="CVE-2026-0001", source="nvd", cvss_score=9.8, imported_at=now)
    Vulnerability.objects.create(cve_id="CVE-2026-0002", source="nvd", cvss_score=3.1, imported_at=now)
    return web_1, web_2


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (
            {"kind": "security"},
            {"web-1": ["libssl3", "linux-image-amd64", "openssl"], "web-2": ["libssl3", "openssl"]},
        ),
        (
            {"kind": "all"},
            {"web-1": ["curl", "libssl3", "linux-image-amd64", "openssl"], "web-2": ["curl", "libssl3", "openssl"]},
        ),
        ({"kind": "packages", "values": ["libssl*"]}, {"web-1": ["libssl3"], "web-2": ["libssl3"]}),
        (
            {"kind": "packages", "values": ["linux-*", "cur?"]},
            {"web-1": ["curl", "linux-image-amd64"], "web-2": ["curl"]},
        ),
        (
            {"kind": "packages", "values": ["openssl"]},
            {"web-1": ["libssl3", "openssl"], "web-2": ["libssl3", "openssl"]},
        ),
        ({"kind": "cves", "values": ["cve-2026-0001"]}, {"web-1": ["libssl3", "openssl"]}),
        ({"kind": "advisories", "values": ["DSA-5002-1"]}, {"web-2": ["curl"]}),
        ({"kind": "severity", "values": ["critical"]}, {"web-1": ["libssl3", "openssl"]}),
        ({"kind": "severity", "values": ["low", "high"]}, {"web-2": ["curl"]}),
        ({"kind": "priority", "values": ["Act"]}, {"web-1": ["libssl3", "openssl"]}),
        ({"kind": "due_before", "before": "2026-02-01"}, {"web-1": ["libssl3", "openssl"]}),
        ({"kind": "due_before", "before": "2026-12-31"}, {"web-1": ["libssl3", "openssl"], "web-2": ["curl"]}),
    ],
    ids=lambda v: (
        str(v.get("kind", "")) + ":" + ",".join(v.get("values", [v.get("before", "")])) if "kind" in v else ""
    ),
)
def test_each_selection_kind_picks_its_updates(
    two_hosts: tuple[Agent, Agent], operator: ApiClient, selection: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    plan = create_plan(operator, selection=selection, target={"hosts": ["web-1", "web-2"]})

    assert targets_by_host(plan) == expected
    assert plan["state"] == "draft"
    assert plan["totals"]["hosts"] == 2
    assert plan["totals"]["hosts_with_changes"] == len(expected)
    assert plan["totals"]["packages"] == sum(len(v) for v in expected.values())
    for host in plan["hosts"]:
        for target in host["targets"]:
            assert target["version"] == OFFERED[target["name"]][1]  # the exact version the manager offers


def test_the_preview_names_changes_findings_closed_and_window_start(
    two_hosts: tuple[Agent, Agent], operator: ApiClient
) -> None:
    web_1 = two_hosts[0]
    finding = Finding.objects.get(host__name="web-1")
    plan = create_plan(operator, selection={"kind": "cves", "values": ["CVE-2026-0001"]}, target={"hosts": ["web-1"]})

    (host,) = plan["hosts"]
    assert host["host"] == web_1.name
    assert host["manager"] == "apt"
    assert {
        "name": "openssl",
        "arch": "amd64",
        "from": OFFERED["openssl"][0],
        "to": OPENSSL_FIX,
        "action": "upgrade",
    } in (host["changes"])
    assert host["closes"] == [finding.pk]
    assert host["window_start"] is not None  # no window: at once
    assert plan["totals"]["findings_closed"] == 1
    assert plan["totals"]["first_start"] is not None
    assert plan["totals"]["no_window_found"] == 0


def test_the_target_is_hosts_groups_and_tags_limited_to_environments(secret: str, operator: ApiClient) -> None:
    agents_ = [Agent(secret, name) for name in ("a-1", "a-2", "a-3", "a-4", "a-5")]
    inventory_services.create_static_group(SYSTEM_ACTOR, "databases", "", ["a-2"])
    set_hosts(["a-3"], add_tags=("edge",))
    set_hosts(["a-1", "a-2", "a-3"], environment="prod")
    set_hosts(["a-4", "a-5"], environment="staging")

    union = create_plan(operator, target={"hosts": ["a-1"], "groups": ["databases"], "tags": ["edge"]})
    assert sorted(h["host"] for h in union["hosts"]) == ["a-1", "a-2", "a-3"]
    limited = create_plan(operator, target={"hosts": ["a-1", "a-4"], "tags": ["edge"], "environments": ["staging"]})
    assert [h["host"] for h in limited["hosts"]] == ["a-4"]
    whole = create_plan(operator, target={"environments": ["staging"]})
    assert sorted(h["host"] for h in whole["hosts"]) == ["a-4", "a-5"]
    assert len(agents_) == 5

    assert operator.post("plans", json={"name": "x", "selection": {"kind": "security"},
                                        "target": {"hosts": ["nope"]}}).status_code == 404  # fmt: skip
    assert operator.post("plans", json={"name": "x", "selection": {"kind": "security"},
                                        "target": {"groups": ["nope"]}}).status_code == 404  # fmt: skip
    empty = operator.post("plans", json={"name": "x", "selection": {"kind": "security"},
                                         "target": {"environments": ["nowhere"]}})  # fmt: skip
    assert empty.status_code == 422
    assert error_field(empty) == "target"
    nothing = operator.post("plans", json={"name": "x", "selection": {"kind": "cves", "values": ["CVE-1999-0001"]},
                                           "target": {"hosts": ["a-1"]}})  # fmt: skip
    assert nothing.status_code == 422
    assert error_field(nothing) == "selection"
    assert "matches no update on the 1 target host(s)" in nothing.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"selection": {"kind": "everything"}}, "selection.kind"),
        ({"selection": {"kind": "cves"}}, "selection.values"),
        ({"selection": {"kind": "severity", "values": ["scary"]}}, "selection.values"),
        ({"selection": {"kind": "priority", "values": ["Now"]}}, "selection.values"),
        ({"selection": {"kind": "due_before", "before": "soon"}}, "selection.before"),
        ({"target": {}}, "target"),
        ({"target": {"hosts": ["web-1"], "planets": ["mars"]}}, "target"),
        ({"options": {"reboot": "sometimes"}}, "options.reboot"),
        ({"options": {"cooldown_days": 400}}, "options.cooldown_days"),
        ({"options": {"holds": ["bad name;"]}}, "options.holds"),
        ({"options": {"pre_scripts": ["Not A Ref"]}}, "options.pre_scripts"),
        ({"options": {"colour": "blue"}}, "options"),
        ({"rings": [{"name": "a", "gate": {"max_failure_ratio": 2}}]}, "rings[0].gate.max_failure_ratio"),
        ({"rings": [{"name": "a"}, {"name": "a"}]}, "rings"),
    ],
)
def test_bad_plans_are_refused_naming_the_field(
    two_hosts: tuple[Agent, Agent], operator: ApiClient, body: dict[str, Any], field: str
) -> None:
    full = {"name": "x", "selection": {"kind": "security"}, "target": {"hosts": ["web-1"]}} | body
    mark = audit_mark()

    answer = operator.post("plans", json=full)

    assert answer.status_code == 422, answer.content
    assert error_field(answer) == field
    assert operator.get("plans").json()["count"] == 0
    assert actions_since(mark) == []


def test_holds_exclusions_and_cooldown_are_skipped_with_reasons(secret: str, operator: ApiClient) -> None:
    host = Agent(secret, "web-1").host
    finding = add_finding(host, "CVE-2026-0001")
    Finding.objects.filter(pk=finding.pk).update(fix_available_since=timezone.now() - timedelta(days=2))

    plan = create_plan(
        operator,
        selection={"kind": "all"},
        target={"hosts": ["web-1"]},
        options={"holds": ["libssl*"], "exclusions": ["curl"], "cooldown_days": 7},
    )

    (entry,) = plan["hosts"]
    reasons = {s["name"]: s["reason"] for s in entry["skipped"]}
    assert reasons["libssl3"] == "held"
    assert reasons["curl"] == "excluded"
    assert reasons["openssl"].startswith("cooling down: published")
    assert "less than 7 days ago" in reasons["openssl"]
    assert plan["totals"]["skipped"] == 3
    assert [t["name"] for t in entry["targets"]] == ["linux-image-amd64"]
    everything = operator.post("plans", json={"name": "x", "selection": {"kind": "all"}, "target": {"hosts": ["web-1"]},
                                              "options": {"holds": ["*"]}})  # fmt: skip
    assert everything.status_code == 422  # all held: nothing to do is refused, not stored


def test_a_cooled_down_update_is_planned_once_old_enough(secret: str, operator: ApiClient) -> None:
    host = Agent(secret, "web-1").host
    finding = add_finding(host, "CVE-2026-0001")
    Finding.objects.filter(pk=finding.pk).update(fix_available_since=timezone.now() - timedelta(days=8))

    plan = create_plan(operator, target={"hosts": ["web-1"]}, options={"cooldown_days": 7})

    assert targets_by_host(plan) == {"web-1": ["libssl3", "linux-image-amd64", "openssl"]}


@pytest.mark.parametrize(
    ("policy", "packages", "reboot"),
    [
        ("never", ["linux-image-*"], False),
        ("if_required", ["linux-image-*"], True),
        ("if_required", ["curl"], False),
        ("always", ["curl"], True),
    ],
)
def test_reboot_policy(secret: str, operator: ApiClient, policy: str, packages: list[str], reboot: bool) -> None:
    Agent(secret, "web-1")

    plan = create_plan(
        operator,
        selection={"kind": "packages", "values": packages},
        target={"hosts": ["web-1"]},
        options={"reboot": policy},
    )

    assert plan["hosts"][0]["reboot"] is reboot
    assert plan["totals"]["reboots"] == int(reboot)
    assert plan["options"]["reboot"] == policy


def test_if_required_reboots_a_host_that_already_needs_one(secret: str, operator: ApiClient) -> None:
    Agent(secret, "web-1")
    Host.objects.filter(name="web-1").update(reboot_required=True)

    plan = create_plan(operator, selection={"kind": "packages", "values": ["curl"]}, target={"hosts": ["web-1"]})

    assert plan["hosts"][0]["reboot"] is True


# -- hook scripts ----------------------------------------------------------------------------------------------


def pinned(name: str, version: int) -> str:
    """How a plan names the exact script version it took (a step name the agent accepts: no "@")."""
    return f"{name}-v{version}"


def test_scripts_are_versioned_and_a_plan_pins_the_version(secret: str, operator: ApiClient) -> None:
    Agent(secret, "web-1")
    first = operator.post("scripts", json={"name": "drain", "argv": ["/usr/local/bin/drain", "--wait", "30"]})
    took_1 = create_plan(operator, target={"hosts": ["web-1"]}, options={"pre_scripts": ["drain"]})
    second = operator.post(
        "scripts", json={"name": "drain", "argv": ["/usr/local/bin/drain", "--wait", "60"], "timeout": 90}
    )

    assert first.status_code == second.status_code == 201
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    listed = {(s["name"], s["version"]): s["argv"] for s in operator.get("scripts").json()}
    assert listed == {
        ("drain", 1): ["/usr/local/bin/drain", "--wait", "30"],
        ("drain", 2): ["/usr/local/bin/drain", "--wait", "60"],
    }
    assert took_1["options"]["pre_scripts"] == [
        {"name": pinned("drain", 1), "argv": ["/usr/local/bin/drain", "--wait", "30"], "timeout": 300}
    ]  # saving version 2 later does not change a plan that took version 1
    assert operator.get(f"plans/{took_1['id']}").json()["options"]["pre_scripts"][0]["name"] == pinned("drain", 1)
    newest = create_plan(operator, target={"hosts": ["web-1"]}, options={"post_scripts": ["drain"]})
    assert newest["options"]["post_scripts"][0]["name"] == pinned("drain", 2)
    older = create_plan(operator, target={"hosts": ["web-1"]}, options={"post_scripts": ["drain@1"]})
    assert older["options"]["post_scripts"][0]["argv"][-1] == "30"
    body = {"name": "x", "selection": {"kind": "security"}, "target": {"hosts": ["web-1"]}}
    missing = operator.post("plans", json=body | {"options": {"pre_scripts": ["drain@7"]}})
    assert missing.status_code == 404
    shell = operator.post("scripts", json={"name": "evil", "argv": ["rm -rf / ;", "x"]})
    assert shell.status_code == 422
    assert error_field(shell) == "argv"
    actions = AuditRecord.objects.filter(action="script.save").values_list("object_id", flat=True)
    assert sorted(actions) == ["drain@1", "drain@2"]


def test_a_started_job_carries_the_pinned_script(secret: str, operator: ApiClient, approver: ApiClient) -> None:
    host = Agent(secret, "web-1")
    operator.post("scripts", json={"name": "drain", "argv": ["/usr/local/bin/drain"]})
    plan_id = approved(operator, approver, target={"hosts": ["web-1"]}, options={"pre_scripts": ["drain@1"]})
    operator.post("scripts", json={"name": "drain", "argv": ["/usr/local/bin/drain", "--v2"]})
    start(operator, plan_id)

    (lease,) = host.check_in()

    assert lease["job"]["pre_scripts"] == [
        {"name": pinned("drain", 1), "argv": ["/usr/local/bin/drain"], "timeout": 300}
    ]


# -- approvals -------------------------------------------------------------------------------------------------


def test_plan_life_is_audited_and_the_requester_cannot_approve(
    secret: str, api_as: Callable[[Role], ApiClient], operator: ApiClient, approver: ApiClient
) -> None:
    Agent(secret, "web-1")
    admin = api_as(Role.ADMIN)
    mark = audit_mark()
    plan = create_plan(operator, target={"hosts": ["web-1"]})
    plan_id = plan["id"]

    assert operator.post(f"plans/{plan_id}/preview").json()["previewed_at"] is not None
    assert operator.post(f"plans/{plan_id}/submit").json()["state"] == "pending_approval"
    assert approver.get("approvals").json()["items"][0]["id"] == plan_id
    assert operator.post(f"plans/{plan_id}/approve", json={"comment": "mine"}).status_code == 403  # not an approver
    assert approver.post(f"plans/{plan_id}/reject", json={}).status_code == 422  # a rejection says why
    rejected = approver.post(f"plans/{plan_id}/reject", json={"comment": "not this week"})
    assert rejected.json()["state"] == "rejected"
    assert rejected.json()["approvals"][0]["decision"] == "reject"
    assert approver.post(f"plans/{plan_id}/approve", json={"comment": "oh well"}).status_code == 409
    assert operator.post(f"plans/{plan_id}/start", json={}).status_code == 409

    other = create_plan(operator, target={"hosts": ["web-1"]})
    assert operator.post(f"plans/{other['id']}/cancel").json()["state"] == "cancelled"
    assert operator.post(f"plans/{other['id']}/submit").status_code == 409

    own = create_plan(admin, target={"hosts": ["web-1"]})
    admin.post(f"plans/{own['id']}/submit")
    refused = admin.post(f"plans/{own['id']}/approve", json={"comment": "me"})
    assert refused.status_code == 403
    assert "may not decide it" in refused.json()["error"]["message"]

    assert actions_since(mark) == [
        "plan.create", "plan.preview", "plan.submit", "plan.reject",
        "plan.create", "plan.cancel",
        "plan.create", "plan.submit",
    ]  # fmt: skip
    assert operator.get("plans?state=rejected").json()["count"] == 1
    assert operator.get("plans?state=nonsense").status_code == 422


def test_an_auto_approval_rule_fires_on_submit_and_is_audited(
    two_hosts: tuple[Agent, Agent], operator: ApiClient, approver: ApiClient
) -> None:
    set_hosts(["web-1", "web-2"], environment="staging")
    Finding.objects.filter(host__name="web-1").update(priority_decision="Track")
    assert operator.post("approval-rules", json={"name": "x", "selections": ["security"]}).status_code == 403
    rule = approver.post("approval-rules", json={"name": "staging security", "selections": ["security"],
                                                 "environments": ["staging"], "below_decision": "Attend"})  # fmt: skip
    assert rule.status_code == 201, rule.content
    plan = create_plan(operator, target={"environments": ["staging"]})
    mark = audit_mark()

    submitted = operator.post(f"plans/{plan['id']}/submit").json()

    assert submitted["state"] == "approved"
    assert submitted["auto_rule"] == "staging security"
    assert submitted["decided_by"] == "rule:staging security"
    assert submitted["approvals"][0]["decision"] == "auto_approve"
    fired = AuditRecord.objects.get(pk__gt=mark, action="plan.auto_approve")
    assert "staging security" in fired.changes
    assert fired.object_id == str(plan["id"])
    assert actions_since(mark) == ["plan.submit", "plan.auto_approve"]
    start(operator, plan["id"])


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ({"selections": ["security"], "below_decision": "Act"}, "closes an Act finding"),
        ({"selections": ["cves"]}, "another selection kind"),
        ({"environments": ["staging"]}, "a host outside the environments"),
    ],
)
def test_an_auto_approval_rule_does_not_fire_when_it_does_not_fit(
    two_hosts: tuple[Agent, Agent], operator: ApiClient, approver: ApiClient, rule: dict[str, Any], why: str
) -> None:
    set_hosts(["web-2"], environment="staging")
    assert approver.post("approval-rules", json={"name": "r", **rule}).status_code == 201
    plan = create_plan(operator, target={"hosts": ["web-1", "web-2"]})
    assert plan["hosts"][0]["closes"], "web-1's plan closes its Act finding"

    submitted = operator.post(f"plans/{plan['id']}/submit").json()

    assert submitted["state"] == "pending_approval", why
    assert submitted["auto_rule"] == ""
    assert not AuditRecord.objects.filter(action="plan.auto_approve").exists()


def test_a_closed_act_finding_does_not_stop_an_auto_approval(
    two_hosts: tuple[Agent, Agent], operator: ApiClient, approver: ApiClient
) -> None:
    """Only the findings the plan closes count: an Act finding that is already fixed is not among them."""
    approver.post("approval-rules", json={"name": "security", "selections": ["security"]})
    Finding.objects.filter(host__name="web-1").update(status=FindingStatus.FIXED)
    plan = create_plan(operator, target={"hosts": ["web-1"]})

    assert operator.post(f"plans/{plan['id']}/submit").json()["state"] == "approved"


def test_approval_rules_are_listed_replaced_deleted_and_checked(approver: ApiClient, operator: ApiClient) -> None:
    mark = audit_mark()
    assert approver.post("approval-rules", json={"name": "r", "selections": ["security"]}).status_code == 201
    assert approver.post("approval-rules", json={"name": "r", "selections": ["all"]}).status_code == 201
    assert [r["selections"] for r in operator.get("approval-rules").json()] == [["all"]]
    everything = approver.post("approval-rules", json={"name": "all"})
    assert everything.status_code == 422
    assert error_field(everything) == "selections"
    bad = approver.post("approval-rules", json={"name": "b", "selections": ["security"], "below_decision": "Panic"})
    assert bad.status_code == 422
    assert error_field(bad) == "below_decision"
    assert approver.delete("approval-rules/r").status_code == 204
    assert approver.delete("approval-rules/r").status_code == 404
    assert operator.delete("approval-rules/r").status_code == 403
    assert actions_since(mark) == ["rule.save", "rule.save", "rule.delete"]


def test_an_admin_may_start_without_approval_as_an_audited_emergency(
    secret: str, api_as: Callable[[Role], ApiClient], operator: ApiClient
) -> None:
    Agent(secret, "web-1")
    plan = create_plan(operator, target={"hosts": ["web-1"]})

    refused = operator.post(f"plans/{plan['id']}/start", json={"override": True})
    assert refused.status_code == 403
    assert "only an admin" in refused.json()["error"]["message"]
    assert operator.post(f"plans/{plan['id']}/start", json={}).status_code == 409  # a draft needs approval
    assert "override" in operator.post(f"plans/{plan['id']}/start", json={}).json()["error"]["message"]
    assert operator.get(f"plans/{plan['id']}").json()["state"] == "draft"
    mark = audit_mark()

    rollout = start(api_as(Role.ADMIN), plan["id"], override=True)

    assert rollout["override"] is True
    assert rollout["state"] == "running"
    detail = operator.get(f"plans/{plan['id']}").json()
    assert detail["override"] is True
    assert detail["state"] == "started"
    assert detail["rollout_id"] == rollout["id"]
    record = AuditRecord.objects.get(pk__gt=mark, action="rollout.override")
    assert record.object_id == str(rollout["id"])
    assert '"override":true' in record.changes
    assert operator.get("rollouts").json()["items"][0]["override"] is True


# -- rollout commands ------------------------------------------------------------------------------------------

TWO_RINGS = [
    {"name": "pilot", "tags": ["pilot"], "gate": {"max_failure_ratio": 0, "min_successes": 1}},
    {"name": "broad", "gate": {"max_failure_ratio": 0, "min_successes": 1}},
]


@pytest.fixture
def fleet(secret: str) -> list[Agent]:
    hosts = [Agent(secret, "pilot-1"), Agent(secret, "broad-1"), Agent(secret, "broad-2")]
    set_hosts(["pilot-1"], add_tags=("pilot",))
    return hosts


def started(operator: ApiClient, approver: ApiClient, rings: list[dict[str, Any]] = TWO_RINGS) -> int:
    plan_id = approved(operator, approver, target={"hosts": ["pilot-1", "broad-1", "broad-2"]}, rings=rings)
    return int(start(operator, plan_id)["id"])


def command(client: ApiClient, rollout_id: int, name: str, ring: int | None = None) -> Any:
    return client.post(f"rollouts/{rollout_id}/{name}", json={"ring": ring} if ring is not None else {})


def test_pause_resume_and_abort(fleet: list[Agent], operator: ApiClient, approver: ApiClient) -> None:
    pilot, broad_1, _ = fleet
    rollout_id = started(operator, approver)
    mark = audit_mark()

    assert command(operator, rollout_id, "pause").json()["state"] == "paused"
    assert pilot.check_in() == []  # pausing stops new leases
    assert command(operator, rollout_id, "pause").status_code == 409
    assert command(operator, rollout_id, "resume").json()["state"] == "running"
    assert command(operator, rollout_id, "resume").status_code == 409
    assert command(operator, rollout_id, "pause", ring=0).status_code == 422  # a whole-rollout command
    assert command(operator, rollout_id, "explode").status_code == 422
    (lease,) = pilot.check_in()
    aborted = command(operator, rollout_id, "abort").json()
    assert aborted["state"] == "aborted"
    assert [r["state"] for r in aborted["rings"]] == ["running", "skipped"]
    assert {j["host"]: j["state"] for j in operator.get(f"rollouts/{rollout_id}/jobs").json()["items"]} == {
        "pilot-1": "leased",  # a leased job is left to report
        "broad-1": "cancelled",
        "broad-2": "cancelled",
    }
    assert pilot.report(lease).status_code == 200  # it may still report
    assert broad_1.check_in() == []
    for name in ("pause", "resume", "abort", "promote", "retry_failed"):
        assert command(operator, rollout_id, name).status_code == 409, name
    actions = actions_since(mark)
    for action in ("rollout.pause", "rollout.resume", "rollout.abort", "rollout.state", "ring.state", "job.state"):
        assert action in actions


def test_a_viewer_cannot_command_a_rollout(fleet: list[Agent], operator: ApiClient, approver: ApiClient,
                                           api_as: Callable[[Role], ApiClient]) -> None:  # fmt: skip
    rollout_id = started(operator, approver)
    viewer = api_as(Role.VIEWER)

    assert command(viewer, rollout_id, "pause").status_code == 403
    assert viewer.get(f"rollouts/{rollout_id}").json()["state"] == "running"


def test_promote_passes_the_current_ring_early(fleet: list[Agent], operator: ApiClient, approver: ApiClient) -> None:
    pilot, broad_1, broad_2 = fleet
    rollout_id = started(operator, approver)
    assert broad_1.check_in() == []

    promoted = command(operator, rollout_id, "promote").json()

    assert [r["state"] for r in promoted["rings"]] == ["passed", "running"]
    assert promoted["rings"][0]["promoted"] is True
    assert command(operator, rollout_id, "promote", ring=0).status_code == 409  # the pilot is not current any more
    (lease,) = pilot.check_in()  # a promoted ring's queued job still runs
    assert len(broad_1.check_in()) == 1
    assert len(broad_2.check_in()) == 1
    assert lease["phase"] == "deploy"
    assert AuditRecord.objects.filter(action="rollout.promote", object_id=str(rollout_id)).count() == 1


def test_a_failed_ring_halts_then_retry_failed_runs_it_again(
    fleet: list[Agent], operator: ApiClient, approver: ApiClient
) -> None:
    rings = [{**TWO_RINGS[0], "gate": {"max_failure_ratio": 0, "rollback_on_failure": False}}, TWO_RINGS[1]]
    pilot, broad_1, _ = fleet
    rollout_id = started(operator, approver, rings)
    (lease,) = pilot.check_in()
    assert pilot.report(lease, ok=False).json()["state"] == "failed"
    assert command(operator, rollout_id, "retry_failed").status_code == 409  # the ring has not failed its gate yet
    driver.tick(push=False)
    detail = operator.get(f"rollouts/{rollout_id}").json()
    assert detail["state"] == "halted"
    assert ring_states(operator, rollout_id) == ["failed", "waiting"]
    assert "1/1 jobs failed" in detail["reason"]
    assert command(operator, rollout_id, "resume").status_code == 409  # a halted rollout is not resumed
    assert broad_1.check_in() == []

    retried = command(operator, rollout_id, "retry_failed").json()

    assert retried["state"] == "running"
    assert [r["state"] for r in retried["rings"]] == ["running", "waiting"]
    (again,) = pilot.check_in()
    assert again["job"]["job_id"] == lease["job"]["job_id"]
    assert again["lease_token"] != lease["lease_token"]
    assert pilot.report(again).json()["state"] == "succeeded"
    pilot.apply(again)
    driver.tick(push=False)
    assert ring_states(operator, rollout_id) == ["passed", "running"]
    job = operator.get(f"jobs/{again['job']['job_id']}").json()
    assert job["attempts"] == 2
    assert job["state"] == "verified"


def test_rollback_of_a_running_ring_halts_and_restores(
    fleet: list[Agent], operator: ApiClient, approver: ApiClient
) -> None:
    pilot, broad_1, _ = fleet
    rollout_id = started(operator, approver)
    (lease,) = pilot.check_in()
    pilot.report(lease)
    pilot.apply(lease)
    assert command(operator, rollout_id, "rollback").status_code == 422  # which ring?
    assert command(operator, rollout_id, "rollback", ring=1).status_code == 409  # the broad ring never started
    assert command(operator, rollout_id, "rollback", ring=5).status_code == 422

    rolled = command(operator, rollout_id, "rollback", ring=0).json()

    assert rolled["state"] == "halted"
    assert [r["state"] for r in rolled["rings"]] == ["rolling_back", "waiting"]
    (rollback,) = pilot.check_in()
    assert rollback["phase"] == "rollback"
    assert rollback["job"]["rollback_of"] == lease["job"]["job_id"]
    restore = {r["name"]: r["version"] for r in rollback["job"]["restore"]}
    assert restore == {t["name"]: OFFERED[t["name"]][0] for t in lease["job"]["targets"]}
    assert not rollback["job"].get("targets")
    assert rollback["job"]["reboot"] == "never"
    assert pilot.report(rollback).json()["state"] == "rolled_back"
    driver.tick(push=False)
    assert ring_states(operator, rollout_id) == ["rolled_back", "waiting"]
    assert broad_1.check_in() == []


def complete(fleet: list[Agent], operator: ApiClient, approver: ApiClient) -> int:
    rollout_id = started(operator, approver, ONE_RING)
    for host in fleet:
        (lease,) = host.check_in()
        assert host.report(lease).status_code == 200
        host.apply(lease)
    driver.tick(push=False)
    assert operator.get(f"rollouts/{rollout_id}").json()["state"] == "completed"
    return rollout_id


def test_a_ring_of_a_completed_rollout_can_be_rolled_back(
    fleet: list[Agent], operator: ApiClient, approver: ApiClient
) -> None:
    rollout_id = complete(fleet, operator, approver)
    for name in ("pause", "resume", "abort", "promote", "retry_failed"):
        assert command(operator, rollout_id, name).status_code == 409, name

    rolled = command(operator, rollout_id, "rollback", ring=0).json()

    assert rolled["state"] == "completed"  # the record of the rollout stays; the ring rolls back
    assert [r["state"] for r in rolled["rings"]] == ["rolling_back"]
    for host in fleet:
        (rollback,) = host.check_in()
        assert rollback["phase"] == "rollback"
        assert host.report(rollback).json()["state"] == "rolled_back"
    driver.tick(push=False)
    assert ring_states(operator, rollout_id) == ["rolled_back"]
    assert AuditRecord.objects.filter(action="rollout.rollback", object_id=str(rollout_id)).exists()


def test_one_host_can_be_rolled_back(fleet: list[Agent], operator: ApiClient, approver: ApiClient) -> None:
    rollout_id = complete(fleet, operator, approver)
    broad_1 = fleet[1]
    mark = audit_mark()

    answer = operator.post(f"rollouts/{rollout_id}/hosts/broad-1/rollback")

    assert answer.status_code == 200, answer.content
    assert answer.json()["state"] == "rollback_queued"
    assert answer.json()["host"] == "broad-1"
    assert operator.post(f"rollouts/{rollout_id}/hosts/broad-1/rollback").status_code == 409  # already queued
    assert operator.post(f"rollouts/{rollout_id}/hosts/nowhere/rollback").status_code == 404
    assert fleet[0].check_in() == []
    assert fleet[2].check_in() == []
    (rollback,) = broad_1.check_in()
    assert rollback["phase"] == "rollback"
    assert broad_1.report(rollback).json()["state"] == "rolled_back"
    assert "job.state" in actions_since(mark)
    states = {j["host"]: j["state"] for j in operator.get(f"rollouts/{rollout_id}/jobs").json()["items"]}
    assert states == {"pilot-1": "verified", "broad-1": "rolled_back", "broad-2": "verified"}


def test_lists_and_filters(fleet: list[Agent], operator: ApiClient, approver: ApiClient) -> None:
    rollout_id = started(operator, approver)

    assert operator.get("rollouts?state=running").json()["count"] == 1
    assert operator.get("rollouts?state=completed").json()["count"] == 0
    assert operator.get("rollouts?state=bogus").status_code == 422
    jobs = operator.get(f"rollouts/{rollout_id}/jobs?ring=broad").json()["items"]
    assert sorted(j["host"] for j in jobs) == ["broad-1", "broad-2"]
    assert all(j["state"] == "queued" and j["executor"] == "agent" for j in jobs)
    assert operator.get(f"rollouts/{rollout_id}/jobs?state=bogus").status_code == 422
    assert operator.get("rollouts/999999").status_code == 404
    assert operator.get("rollouts/999999/jobs").status_code == 404
    assert operator.get("jobs/999999").status_code == 404
    detail = operator.get(f"rollouts/{rollout_id}").json()
    assert [(r["name"], r["total"]) for r in detail["rings"]] == [("pilot", 1), ("broad", 2)]


# -- notifications ---------------------------------------------------------------------------------------------


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch, admin_api: ApiClient) -> Iterator[None]:
    monkeypatch.setenv("PATCHDAY_WEBHOOK_ALLOW_PRIVATE", "true")
    load_settings.cache_clear()
    events = ["change.state", "ring.failed", "rollout.completed"]
    answer = admin_api.post("notifications/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": events})
    assert answer.status_code == 201, answer.content
    yield
    load_settings.cache_clear()


def notices() -> list[tuple[str, str]]:
    return list(Notification.objects.order_by("pk").values_list("event", "subject"))


def test_state_changes_queue_deliveries(
    webhook: None, fleet: list[Agent], operator: ApiClient, approver: ApiClient, admin_api: ApiClient
) -> None:
    plan_id = approved(operator, approver, target={"hosts": ["pilot-1"]}, rings=ONE_RING)
    rollout_id = int(start(operator, plan_id)["id"])
    (lease,) = fleet[0].check_in()
    fleet[0].report(lease)
    fleet[0].apply(lease)
    driver.tick(push=False)

    assert notices() == [
        ("change.state", f"plan:{plan_id}:pending_approval"),
        ("change.state", f"plan:{plan_id}:approved"),
        ("change.state", f"rollout:{rollout_id}:running"),
        ("rollout.completed", f"rollout:{rollout_id}:rollout_completed"),
    ]
    deliveries = admin_api.get("notifications/deliveries").json()["items"]
    assert len(deliveries) == 4
    payload = Notification.objects.get(event="rollout.completed").payload
    assert payload["subject"]["type"] == "rollout"
    assert payload["subject"]["id"] == rollout_id
    assert payload["subject"]["links"]["api"].endswith(f"/api/v1/rollouts/{rollout_id}")


def test_a_failed_ring_is_announced(
    webhook: None, fleet: list[Agent], operator: ApiClient, approver: ApiClient
) -> None:
    rollout_id = started(operator, approver)
    (lease,) = fleet[0].check_in()
    fleet[0].report(lease, ok=False)
    driver.tick(push=False)

    events = [event for event, _ in notices()]
    assert "ring.failed" in events
    assert ("change.state", f"rollout:{rollout_id}:rollout_halted:0") in notices()
    failed = Notification.objects.get(event="ring.failed").payload["subject"]
    assert failed["ring"] == 0
    assert "1/1 jobs failed" in failed["detail"]
