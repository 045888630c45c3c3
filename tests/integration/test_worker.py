"""The worker on a real database: real `patchday worker` processes run each task once, and one of them schedules."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from patchday.audit import services as audit
from patchday.audit.models import AuditRecord
from patchday.worker import scheduler
from patchday.worker.models import Lease, PeriodicRun, Probe, WorkerHeartbeat
from patchday.worker.tasks import probe
from tests.support.concurrency import in_threads

LEASE = 2.0
TICK = 0.2
WORKER = [
    sys.executable, "-m", "patchday.cli.main", "worker",
    "--interval", "0.05", "--tick", str(TICK), "--lease", str(LEASE),
]  # fmt: skip
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PERIODIC_PATHS = {p.task.module_path for p in scheduler.SCHEDULE}


def wait_for(condition: Callable[[], bool], timeout: float, what: str, details: Callable[[], str] = str) -> float:
    """Poll `condition` until it holds; returns the seconds waited. After `timeout` fails, showing `details()`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{details()}")
        time.sleep(0.05)
    return time.monotonic() - start


class Workers:
    """`patchday worker` child processes on the test database; all are stopped when the test ends."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(WORKER, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("worker-*.log")))

    def output(self) -> str:
        """The end of each worker's log, for failure messages."""
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.logs.glob("worker-*.log")))


@pytest.fixture
def workers(child_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers({**child_env, "PATCHDAY_LOG_LEVEL": "INFO"}, tmp_path)  # INFO: each task start is logged
    try:
        yield pool
    finally:
        pool.stop()


def heartbeats_of(processes: list[subprocess.Popen[bytes]]) -> dict[int, WorkerHeartbeat]:
    pids = {p.pid for p in processes}
    return {hb.pid: hb for hb in WorkerHeartbeat.objects.all() if hb.pid in pids}


# -- real worker processes -----------------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_run_every_task_exactly_once(workers: Workers) -> None:
    first, second = workers.start(), workers.start()
    wait_for(lambda: len(heartbeats_of([first, second])) == 2, 30, "two worker heartbeats", workers.output)
    time.sleep(1.1)  # past each worker's random start-up delay (under 1 s), so both are polling
    tokens = [f"probe-{n:03d}" for n in range(200)]
    with transaction.atomic():  # all visible at once, so both workers compete from the start
        ids = {str(probe.enqueue(token).id) for token in tokens}
    results = DBTaskResult.objects.filter(id__in=ids)

    wait_for(
        lambda: results.filter(status__in=["SUCCESSFUL", "FAILED"]).count() == 200, 60, "200 probes", workers.output
    )
    assert first.poll() is None
    assert second.poll() is None

    assert sorted(Probe.objects.values_list("token", flat=True)) == tokens
    assert set(results.values_list("status", flat=True)) == {"SUCCESSFUL"}
    # Every start of a task is logged, so a second run would show even where the database cannot.
    started = re.findall(r"Task id=(\S+) path=patchday\.worker\.tasks\.probe state=RUNNING", workers.log())
    assert sorted(started) == sorted(ids)
    assert all(len(r.worker_ids) == 1 for r in results), "a task was claimed more than once"
    by_token = {p.token: p.worker_id for p in Probe.objects.all()}
    assert all(by_token[r.args_kwargs["args"][0]] == r.worker_ids[0] for r in results)  # ran by its claimer
    worker_ids = {hb.worker_id for hb in heartbeats_of([first, second]).values()}
    assert set(by_token.values()) == worker_ids, "both workers should have taken some of the 200 probes"
    # Each probe audited its run, from two processes at once, and the chain still holds.
    assert AuditRecord.objects.filter(action="worker.probe_ran").count() == 200
    assert audit.verify().is_intact


@pytest.mark.slow
def test_exactly_one_of_two_workers_schedules_and_another_takes_over_when_it_dies(workers: Workers) -> None:
    first, second = workers.start(), workers.start()

    def one_scheduler() -> bool:
        beats = heartbeats_of([first, second])
        lease = Lease.objects.filter(name=scheduler.SCHEDULER_LEASE).first()
        leaders = [hb for hb in beats.values() if hb.is_scheduler]
        return len(beats) == 2 and len(leaders) == 1 and lease is not None and lease.holder == leaders[0].worker_id

    wait_for(one_scheduler, 30, "one scheduler among two workers", workers.output)
    wait_for(lambda: PeriodicRun.objects.count() >= len(scheduler.SCHEDULE), 10, "the periodic tasks to be enqueued")
    leader_id = Lease.objects.get(name=scheduler.SCHEDULER_LEASE).holder
    for _ in range(10):  # while both live, the lease stays where it is (it is renewed, not contested)
        time.sleep(TICK)
        assert Lease.objects.get(name=scheduler.SCHEDULER_LEASE).holder == leader_id
        assert one_scheduler()

    beats = heartbeats_of([first, second])
    leader, survivor = (first, second) if beats[first.pid].worker_id == leader_id else (second, first)
    survivor_id = beats[survivor.pid].worker_id
    os.kill(leader.pid, signal.SIGKILL)
    leader.wait(timeout=10)
    took = wait_for(
        lambda: Lease.objects.get(name=scheduler.SCHEDULER_LEASE).holder == survivor_id,
        LEASE + TICK + 10,
        "the surviving worker to take the lease",
        workers.output,
    )
    assert took <= LEASE + TICK + 1.5, f"take-over took {took:.1f}s"
    wait_for(lambda: WorkerHeartbeat.objects.get(worker_id=survivor_id).is_scheduler, 5, "the survivor's heartbeat")
    live_leaders = WorkerHeartbeat.objects.filter(is_scheduler=True).values_list("worker_id", flat=True)
    assert list(live_leaders) == [survivor_id], "the dead leader must not still look like the scheduler"

    runs = list(PeriodicRun.objects.values_list("name", "slot", "task_id"))
    assert len(runs) == len({(name, slot) for name, slot, _ in runs}), "a periodic slot was enqueued twice"
    periodic_results = DBTaskResult.objects.filter(task_path__in=PERIODIC_PATHS)
    assert periodic_results.count() == len(runs)
    assert {str(pk) for pk in periodic_results.values_list("id", flat=True)} == {task_id for _, _, task_id in runs}
    # The hour or day may turn during the test; otherwise the leader enqueued one slot per periodic task.
    assert {name for name, _, _ in runs} == {p.name for p in scheduler.SCHEDULE}
    assert PeriodicRun.objects.exclude(enqueued_by__in=[leader_id, survivor_id]).count() == 0


# -- the scheduler in-process, with explicit times -----------------------------------------------------


@pytest.mark.django_db
def test_the_lease_is_held_renewed_and_taken_over_only_after_it_expires() -> None:
    ttl = timedelta(seconds=10)
    assert scheduler.try_lead("a", T0, ttl)
    assert not scheduler.try_lead("b", T0 + timedelta(seconds=1), ttl)
    assert scheduler.try_lead("a", T0 + timedelta(seconds=9), ttl)  # renewed: now until T0 + 19 s
    assert not scheduler.try_lead("b", T0 + timedelta(seconds=15), ttl)
    assert not scheduler.try_lead("b", T0 + timedelta(seconds=19), ttl)  # not yet expired
    assert scheduler.try_lead("b", T0 + timedelta(seconds=19, microseconds=1), ttl)
    assert not scheduler.try_lead("a", T0 + timedelta(seconds=20), ttl)
    lease = Lease.objects.get(name=scheduler.SCHEDULER_LEASE)
    assert (lease.holder, lease.expires_at) == ("b", T0 + timedelta(seconds=29, microseconds=1))


@pytest.mark.django_db
def test_releasing_the_lease_lets_another_lead_at_once_and_only_the_holder_can_release() -> None:
    ttl = timedelta(seconds=30)
    assert scheduler.try_lead("a", T0, ttl)
    scheduler.release("b")
    assert not scheduler.try_lead("b", T0 + timedelta(seconds=1), ttl)
    scheduler.release("a")
    assert scheduler.try_lead("b", T0 + timedelta(seconds=1), ttl)


def test_slots_align_to_the_epoch_so_every_worker_agrees() -> None:
    hourly = scheduler.Periodic("x", timedelta(hours=1), probe)
    assert hourly.slot(datetime(2026, 3, 1, 12, 59, 59, tzinfo=UTC)) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert hourly.slot(datetime(2026, 3, 1, 13, 0, tzinfo=UTC)) == datetime(2026, 3, 1, 13, tzinfo=UTC)
    daily = scheduler.Periodic("y", timedelta(days=1), probe)
    assert daily.slot(datetime(2026, 3, 1, 23, 0, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_each_due_slot_is_enqueued_once() -> None:
    names = {p.name for p in scheduler.SCHEDULE}
    checked = {"audit.verify", "feeds.sync", "worker.prune_task_results"}  # the others: each slot once, below
    hourly_and_daily = checked

    def due(worker: str, at: datetime) -> list[str]:
        return [n for n in scheduler.enqueue_due(worker, at) if n in checked]

    assert set(scheduler.enqueue_due("a", T0)) == names
    assert due("a", T0 + timedelta(minutes=59)) == []
    assert due("b", T0 + timedelta(minutes=30)) == []  # another worker, same slots
    assert due("a", T0 + timedelta(hours=1)) == ["audit.verify"]
    assert set(due("a", T0 + timedelta(days=1))) == hourly_and_daily

    runs = PeriodicRun.objects.filter(name__in=checked).order_by("slot", "name")
    midnight = T0.replace(hour=0)
    assert [(r.name, r.slot) for r in runs] == [
        ("feeds.sync", midnight),
        ("worker.prune_task_results", midnight),
        ("audit.verify", T0),
        ("audit.verify", T0 + timedelta(hours=1)),
        ("feeds.sync", midnight + timedelta(days=1)),
        ("worker.prune_task_results", midnight + timedelta(days=1)),
        ("audit.verify", T0 + timedelta(days=1)),
    ]
    for periodic in scheduler.SCHEDULE:
        slots = list(PeriodicRun.objects.filter(name=periodic.name).values_list("slot", flat=True))
        assert slots, periodic.name
        assert len(slots) == len(set(slots)), f"{periodic.name}: a slot enqueued twice"
        assert all(periodic.slot(slot) == slot for slot in slots)
    every_run = PeriodicRun.objects.all()
    enqueued = DBTaskResult.objects.filter(task_path__in=PERIODIC_PATHS)
    assert {str(pk) for pk in enqueued.values_list("id", flat=True)} == {r.task_id for r in every_run}


def test_racing_workers_elect_one_leader_and_enqueue_each_slot_once(transactional_db: None) -> None:
    led: list[str] = []
    enqueued: list[str] = []

    def contend(n: int) -> None:
        if scheduler.try_lead(f"w{n}", T0, timedelta(seconds=30)):
            led.append(f"w{n}")
        # Even workers that wrongly believed they led could not enqueue a slot twice.
        enqueued.extend(scheduler.enqueue_due(f"w{n}", T0))

    assert in_threads(6, contend) == []
    assert len(led) == 1
    assert Lease.objects.get(name=scheduler.SCHEDULER_LEASE).holder == led[0]
    assert sorted(enqueued) == sorted(p.name for p in scheduler.SCHEDULE)
    assert PeriodicRun.objects.count() == len(scheduler.SCHEDULE)
    assert DBTaskResult.objects.filter(task_path__in=PERIODIC_PATHS).count() == len(scheduler.SCHEDULE)


@pytest.mark.django_db
def test_a_task_whose_worker_vanished_is_failed_and_audited_but_a_live_workers_task_is_left_alone() -> None:
    from django_tasks import TaskResultStatus

    now = datetime.now(UTC)
    long_ago = now - scheduler.ALIVE_AFTER - timedelta(minutes=1)
    WorkerHeartbeat.objects.create(
        worker_id="alive", hostname="h", pid=1, started_at=long_ago, seen_at=now - timedelta(seconds=5)
    )
    WorkerHeartbeat.objects.create(worker_id="dead", hostname="h", pid=2, started_at=long_ago, seen_at=long_ago)
    orphan = DBTaskResult.objects.get(id=probe.enqueue("orphan").id)
    orphan.claim("dead")
    busy = DBTaskResult.objects.get(id=probe.enqueue("busy").id)
    busy.claim("alive")
    recent = DBTaskResult.objects.get(id=probe.enqueue("recent").id)
    recent.claim("dead")
    DBTaskResult.objects.filter(pk__in=[orphan.pk, busy.pk]).update(started_at=long_ago)

    assert scheduler.fail_orphaned_tasks("leader", now) == 1

    orphan.refresh_from_db()
    busy.refresh_from_db()
    recent.refresh_from_db()
    assert orphan.status == TaskResultStatus.FAILED
    assert "worker dead stopped while running this task" in orphan.traceback
    assert busy.status == TaskResultStatus.RUNNING  # its worker still beats
    assert recent.status == TaskResultStatus.RUNNING  # started too recently to judge
    record = AuditRecord.objects.get(action="task.orphaned")
    assert (record.object_id, record.actor_name) == (str(orphan.pk), "worker:leader")
    assert scheduler.fail_orphaned_tasks("leader", now) == 0  # nothing left to fail
