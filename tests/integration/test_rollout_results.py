"""Job results from executors: hostile or broken posts are refused and change nothing, the same idempotency key
answers the same without a second transition, unexpected package changes are flagged, and the verdict is the
host's next inventory, not the executor's word.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from patchday.audit.models import AuditRecord
from patchday.core.roles import Role
from patchday.findings.models import Finding, FindingStatus
from patchday.inventory import agents
from patchday.rollouts import driver
from patchday.rollouts.models import Job
from tests.conftest import SYSTEM_ACTOR, ApiClient
from tests.integration.test_rollout_api import OFFERED, ONE_RING, OPENSSL_FIX, Agent, add_finding, approved, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def leased(api_as: Callable[[Role], ApiClient]) -> tuple[Agent, Agent, dict[str, Any], dict[str, Any], int]:
    """Two hosts in one rollout, each holding the lease of its job: (web-1, web-2, lease 1, lease 2, rollout id)."""
    secret = agents.create_secret(SYSTEM_ACTOR, "result-tests").secret
    web_1, web_2 = Agent(secret, "web-1"), Agent(secret, "web-2")
    operator = api_as(Role.OPERATOR)
    plan_id = approved(operator, api_as(Role.APPROVER), target={"hosts": ["web-1", "web-2"]}, rings=ONE_RING)
    rollout_id = int(start(operator, plan_id)["id"])
    (lease_1,) = web_1.check_in()
    (lease_2,) = web_2.check_in()
    return web_1, web_2, lease_1, lease_2, rollout_id


def snapshot(job_id: int) -> tuple[Any, ...]:
    job = Job.objects.get(pk=job_id)
    transitions = AuditRecord.objects.filter(action="job.state", object_id=str(job_id)).count()
    return job.state, job.result, job.result_key, job.error, job.unexpected, job.lease_token, transitions


def hostile_posts(web_1: Agent, lease: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
    good = web_1.result_body(lease)
    job_id = lease["job"]["job_id"]
    too_many_steps = [{"name": f"s{i}", "argv": ["true"], "exit_code": 0} for i in range(65)]
    return [
        ("result for another job", good | {"result": good["result"] | {"job_id": job_id + 1000}}, 422),
        ("wrong lease token", good | {"lease_token": "not-the-token"}, 409),
        ("status neither succeeded nor failed", good | {"result": good["result"] | {"status": "done"}}, 422),
        ("status missing", good | {"result": {k: v for k, v in good["result"].items() if k != "status"}}, 422),
        ("too many steps", good | {"result": good["result"] | {"steps": too_many_steps}}, 422),
        ("steps not a list", good | {"result": good["result"] | {"steps": "rm -rf /"}}, 422),
        ("a rollback result for a deploy", good | {"phase": "rollback"}, 422),
        ("an unknown phase", good | {"phase": "destroy"}, 422),
        ("malformed before", good | {"result": good["result"] | {"before": {"openssl": "3.0"}}}, 422),
        (
            "an oversized version",
            good | {"result": good["result"] | {"after": {"openssl": {"version": "9" * 300}}}},
            422,
        ),
        ("an oversized idempotency key", good | {"idempotency_key": "k" * 101}, 422),
        ("no lease token", {k: v for k, v in good.items() if k != "lease_token"}, 422),
    ]


def test_hostile_results_are_refused_and_change_nothing(
    leased: tuple[Agent, Agent, dict[str, Any], dict[str, Any], int],
) -> None:
    web_1, web_2, lease_1, lease_2, _ = leased
    job_id = lease_1["job"]["job_id"]
    before = snapshot(job_id)

    for why, body, status in hostile_posts(web_1, lease_1):
        answer = web_1.post_result(job_id, body)
        assert answer.status_code == status, f"{why}: {answer.status_code} {answer.content[:300]!r}"
        assert snapshot(job_id) == before, why
    other = web_2.post_result(job_id, web_1.result_body(lease_1))  # web-2 posting web-1's job
    assert other.status_code == 404
    mine_elsewhere = web_2.post_result(job_id, web_2.result_body(lease_2))  # its own result, at another job's URL
    assert mine_elsewhere.status_code in (404, 422)
    assert ApiClient(None).post(f"agent/jobs/{job_id}/result", json=web_1.result_body(lease_1)).status_code == 401
    assert snapshot(job_id) == before
    assert snapshot(lease_2["job"]["job_id"])[0] == "leased"

    assert web_1.report(lease_1).json() == {"job_id": job_id, "state": "succeeded"}  # the real one still goes in


def test_the_same_idempotency_key_answers_the_same_without_a_second_transition(
    leased: tuple[Agent, Agent, dict[str, Any], dict[str, Any], int],
) -> None:
    web_1, _, lease, _, _ = leased
    job_id = lease["job"]["job_id"]
    body = web_1.result_body(lease)

    first = web_1.post_result(job_id, body)
    after_first = snapshot(job_id)
    second = web_1.post_result(job_id, body)
    third = web_1.post_result(job_id, body | {"result": body["result"] | {"status": "failed"}})  # same key wins

    assert first.status_code == second.status_code == third.status_code == 200
    assert first.json() == second.json() == third.json() == {"job_id": job_id, "state": "succeeded"}
    assert snapshot(job_id) == after_first
    other_key = web_1.post_result(job_id, body | {"idempotency_key": "another"})
    assert other_key.status_code == 409  # a second, different result is not expected
    assert snapshot(job_id) == after_first


def test_unexpected_package_changes_are_flagged_on_the_job(
    leased: tuple[Agent, Agent, dict[str, Any], dict[str, Any], int], api_as: Callable[[Role], ApiClient]
) -> None:
    web_1, _, lease, _, _ = leased
    body = web_1.result_body(lease)
    body["result"]["after"] |= {"netcat-openbsd": {"version": "1.219-1", "arch": "amd64"}}

    assert web_1.post_result(lease["job"]["job_id"], body).status_code == 200

    job = api_as(Role.VIEWER).get(f"jobs/{lease['job']['job_id']}").json()
    assert job["unexpected"] == [{"name": "netcat-openbsd", "version": "1.219-1"}]
    assert job["result"]["steps"][0]["argv"] == ["apt-get", "install", "-y"]
    assert {t["name"] for t in job["targets"]} == set(OFFERED) - {"curl"}


def test_long_output_is_kept_truncated(
    leased: tuple[Agent, Agent, dict[str, Any], dict[str, Any], int], api_as: Callable[[Role], ApiClient]
) -> None:
    web_1, _, lease, _, _ = leased
    step = {"name": "install", "argv": ["apt-get"], "exit_code": 0, "stdout": "x" * 100_000, "extra": {"a": 1}}

    assert web_1.report(lease, steps=[step], surprise=["field"]).status_code == 200

    result = api_as(Role.VIEWER).get(f"jobs/{lease['job']['job_id']}").json()["result"]
    assert len(result["steps"][0]["stdout"]) == 16 * 1024
    assert "extra" not in result["steps"][0]
    assert "surprise" not in result


def test_a_success_the_inventory_contradicts_fails_verification(
    leased: tuple[Agent, Agent, dict[str, Any], dict[str, Any], int], api_as: Callable[[Role], ApiClient]
) -> None:
    web_1, _, lease_1, _, _ = leased
    assert web_1.report(lease_1).json()["state"] == "succeeded"
    web_1.send_inventory()  # the host still runs the old versions

    job = api_as(Role.VIEWER).get(f"jobs/{lease_1['job']['job_id']}").json()

    assert job["state"] == "failed"
    assert f"host reports openssl {OFFERED['openssl'][0]}" in job["error"]
    assert f"asked for {OPENSSL_FIX}" in job["error"]
    assert web_1.check_in() == []  # not re-run on its own


def test_a_verified_job_names_its_rollout_on_the_findings_it_fixed(
    leased: tuple[Agent, Agent, dict[str, Any], dict[str, Any], int], api_as: Callable[[Role], ApiClient]
) -> None:
    web_1, web_2, lease_1, lease_2, rollout_id = leased
    finding = add_finding(web_1.host, "CVE-2026-0001")
    assert web_1.report(lease_1).json()["state"] == "succeeded"

    web_1.apply(lease_1)

    assert api_as(Role.VIEWER).get(f"jobs/{lease_1['job']['job_id']}").json()["state"] == "verified"
    fixed = Finding.objects.get(pk=finding.pk)
    assert fixed.status == FindingStatus.FIXED
    assert fixed.fix_verified
    assert fixed.fixed_by_rollout == rollout_id
    assert web_2.report(lease_2, ok=False).json()["state"] == "failed"
    driver.tick(push=False)
    assert api_as(Role.VIEWER).get(f"rollouts/{rollout_id}").json()["state"] == "halted"
    assert web_1.check_in()[0]["phase"] == "rollback"  # the failed ring rolls back, verified hosts too
