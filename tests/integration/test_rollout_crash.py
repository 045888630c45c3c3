"""Killing the process that drives a rollout at any moment, and starting it again, neither loses nor
duplicates work: the rollout tick runs as a real `patchday rollout tick` child process that is
SIGKILLed at random points while agents keep checking in and reporting; at the end every job ran
exactly once and the rollout completed."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from patchday.audit.models import AuditRecord
from patchday.core.roles import Role
from patchday.inventory import agents
from patchday.rollouts import driver
from patchday.rollouts.models import Job, Rollout
from tests.conftest import SYSTEM_ACTOR, ApiClient
from tests.integration.test_rollout_flow import RINGS, FakeHost

pytestmark = pytest.mark.django_db(transaction=True)


def _tick(env: dict[str, str], kill_after: float | None) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "patchday.cli.main", "rollout", "tick"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if kill_after is None:
        assert child.wait(timeout=120) == 0
        return
    time.sleep(kill_after)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


def test_a_tick_killed_at_random_moments_resumes_without_losing_or_repeating_a_job(
    child_env: dict[str, str], api_as: Callable[[Role], ApiClient]
) -> None:
    from patchday.advisories import feed_imports
    from tests.support.fleet import debian_advisories

    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    secret = agents.create_secret(SYSTEM_ACTOR, "crash").secret
    hosts = [FakeHost(secret, f"crash-{i}", f"{i + 1:x}" * 32, tags=["pilot"] if i == 0 else []) for i in range(4)]
    operator, approver = api_as(Role.OPERATOR), api_as(Role.APPROVER)
    plan = operator.post(
        "plans",
        json={
            "name": "crash",
            "selection": {"kind": "security"},
            "target": {"hosts": [h.name for h in hosts]},
            "rings": RINGS,
        },
    ).json()
    operator.post(f"plans/{plan['id']}/submit")
    approver.post(f"plans/{plan['id']}/approve", json={"comment": "ok"})
    rollout_id = operator.post(f"plans/{plan['id']}/start", json={}).json()["id"]

    rng = random.Random(7)  # noqa: S311 (a reproducible schedule of kills, not a secret)
    kills = 0
    for _ in range(30):
        kill = rng.random() < 0.5
        kills += kill
        _tick(child_env, rng.uniform(0.3, 3.0) if kill else None)  # killed in start-up, the advance or the push
        for host in hosts:
            for lease in host.check_in():
                assert host.result(lease).status_code == 200
                host.apply()
        if Rollout.objects.get(pk=rollout_id).state == "completed":
            break
    driver.tick(push=False)
    assert kills >= 2

    assert Rollout.objects.get(pk=rollout_id).state == "completed"
    jobs = list(Job.objects.filter(rollout_id=rollout_id))
    assert len(jobs) == len(hosts)
    assert {job.state for job in jobs} == {"verified"}
    assert all(job.attempts == 1 for job in jobs)
    leases = AuditRecord.objects.filter(action="job.lease").values_list("object_id", flat=True)
    assert sorted(leases) == sorted(str(job.pk) for job in jobs)  # each job leased exactly once
