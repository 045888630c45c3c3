"""Rollout benchmark (issue 7): the orchestration overhead of one rollout over a simulated fleet in 3 rings.

`.venv/bin/python bench/rollouts.py [--hosts 10000] [--agents 4] [--workers 2] [--updates 3]`
uses PATCHDAY_DATABASE_URL (SQLite in a temporary directory by default); `bench/run` runs it on both.

The fleet is bulk-inserted: every host runs 10 packages, `--updates` of which have a pending security update.
A plan selects "security" on every host, rings pilot 1 % / early 10 % / broad (gate: at most 2 % failed, at
least 1 verified, no soak); it is submitted, approved by another user and started. Then, in separate
processes with their own database connections:

- `--workers` workers emulate `patchday worker`: claim and run the queued tasks (the `advance_rollout`
  each job result queues) the way django_tasks_db's db_worker does, and run `driver.tick(push=False)`
  every `--tick` seconds (the real schedule is once a minute);
- `--agents` agents play the hosts of their slice: check in (`driver.lease_jobs`), post a successful result
  naming the targets (`driver.record_result`), store the upgraded packages (one UPDATE of the host's
  inventory rows, standing in for the ingest, which issue 5 measured), then `fix_attribution` and
  `verify_host` in a transaction as the ingest does after an inventory. The load generator checks a host in
  only once its ring is open (it peeks at the ring states, unmeasured); the cost of a check-in whose job is
  still waiting for its ring is measured on its own.

Server CPU is measured around each orchestration call only: the calling Python process
(time.process_time) plus, on PostgreSQL, its backend process (/proc/<pid>/schedstat, nanoseconds). Prints
one Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PATCHDAY_DATA_DIR", tempfile.mkdtemp(prefix="patchday-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patchday.server.settings")
os.environ.setdefault("PATCHDAY_LOG_LEVEL", "ERROR")

import django

django.setup()

from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from patchday.audit.models import AuditRecord
from patchday.core import rollout as core
from patchday.core.audit import Actor, ActorKind
from patchday.inventory.models import Host, HostPackage, PackageVersion, PendingUpdate
from patchday.rollouts import driver, plans
from patchday.rollouts.models import Job, Ring, Rollout

ECOSYSTEM = "Debian:12"
ENVIRONMENT = "bench-rollouts"  # the plan targets this environment: bench/run's other benchmarks share the database
OPERATOR = Actor(ActorKind.USER, "bench-operator", None, "127.0.0.1")
APPROVER = Actor(ActorKind.USER, "bench-approver", None, "127.0.0.1")
RINGS = [
    {"name": "pilot", "percent": 1, "gate": {"max_failure_ratio": 0.02, "min_successes": 1, "soak_minutes": 0}},
    {"name": "early", "percent": 10, "gate": {"max_failure_ratio": 0.02, "min_successes": 1, "soak_minutes": 0}},
    {"name": "broad", "gate": {"max_failure_ratio": 0.02, "min_successes": 1, "soak_minutes": 0}},
]
ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what}: {value} {note}", file=sys.stderr, flush=True)


# --- measuring ------------------------------------------------------------------------------------------------


class Meter:
    """CPU, wall time and queries spent inside measured calls, by label, for this process and its backend."""

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0])  # n, py, db, wall, queries
        self.queries = 0
        self.backend_stat = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.backend_stat = f"/proc/{cursor.fetchone()[0]}/schedstat"
        connection.execute_wrappers.append(self._count)  # for the life of the process

    def _count(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.queries += 1
        return execute(sql, params, many, context)

    def backend_cpu(self) -> float:
        if self.backend_stat is None:
            return 0.0
        with open(self.backend_stat) as handle:
            return int(handle.read().split()[0]) / 1e9

    @contextmanager
    def measure(self, label: str | dict[str, str]):  # type: ignore[no-untyped-def]
        """Measure the block; `label` may be a dict whose "label" the block sets (known only at its end)."""
        db0, q0 = self.backend_cpu(), self.queries
        w0, p0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            p1, w1 = time.process_time(), time.perf_counter()
            db1 = self.backend_cpu()
            s = self.stats[label if isinstance(label, str) else label["label"]]
            s[0] += 1
            s[1] += p1 - p0
            s[2] += db1 - db0
            s[3] += w1 - w0
            s[4] += self.queries - q0


def merge(into: dict[str, list[float]], other: dict[str, list[float]]) -> None:
    for label, values in other.items():
        target = into.setdefault(label, [0, 0.0, 0.0, 0.0, 0])
        for i, v in enumerate(values):
            target[i] += v


# --- the fleet ------------------------------------------------------------------------------------------------


def generate_fleet(hosts: int, updates: int, seed: int = 7) -> None:
    """`hosts` hosts with 10 packages each (from a pool of 60), `updates` of them with a security update."""
    rng = random.Random(seed)
    now = timezone.now()
    pool = [f"benchlib{i:02d}" for i in range(60)]
    from patchday.core.versions import dpkg

    versions = []
    for name in pool:
        for version in ("1.2.3-1", "1.2.3-1+deb12u1"):
            versions.append(
                PackageVersion(
                    ecosystem=ECOSYSTEM, name=name, version=version, source_name=name, source_version=version,
                    match_name=name, match_version=version, match_key=dpkg.SCHEME.sort_key(version),
                )
            )  # fmt: skip
    with transaction.atomic():
        PackageVersion.objects.bulk_create(versions)
        Host.objects.bulk_create(
            [
                Host(name=f"rollout-host{i:05d}", created_at=now, inventory_at=now, last_seen_at=now,
                     environment=ENVIRONMENT,
                     ecosystem=ECOSYSTEM, os_id="debian", os_version="12", management_mode="agent",
                     reboot_required=False)
                for i in range(hosts)
            ],
            batch_size=2000,
        )  # fmt: skip
    old = dict(PackageVersion.objects.filter(name__in=pool, version="1.2.3-1").values_list("name", "pk"))
    installed, pending = [], []
    for host_id in Host.objects.filter(environment=ENVIRONMENT).order_by("pk").values_list("pk", flat=True):
        names = rng.sample(pool, 10)
        for name in names:
            installed.append(HostPackage(host_id=host_id, package_version_id=old[name], arch="amd64"))
        for name in names[:updates]:
            pending.append(
                PendingUpdate(host_id=host_id, manager="apt", name=name, arch="amd64", installed="1.2.3-1",
                              candidate="1.2.3-1+deb12u1", origin="Debian", suite="bookworm-security", security=True,
                              source=name, source_version="1.2.3-1+deb12u1")
            )  # fmt: skip
    with transaction.atomic():
        HostPackage.objects.bulk_create(installed, batch_size=5000)
        PendingUpdate.objects.bulk_create(pending, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def upgrade_map() -> dict[int, int]:
    """old package version id -> new one (what the simulated apt run installs)."""
    rows = PackageVersion.objects.filter(ecosystem=ECOSYSTEM, name__startswith="benchlib")
    ids = {(n, v): pk for pk, n, v in rows.values_list("pk", "name", "version")}
    return {ids[(n, "1.2.3-1")]: ids[(n, "1.2.3-1+deb12u1")] for n, v in ids if v == "1.2.3-1"}


# --- processes ------------------------------------------------------------------------------------------------


def worker_main(index: int, stop: Any, tick_every: float, poll: float, out: Any) -> None:
    """One `patchday worker`: run queued tasks as db_worker does, tick the rollouts every `tick_every` s."""
    from django.db.utils import OperationalError
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult
    from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

    connection.execute_wrappers.clear()
    meter = Meter()
    worker = Worker(queue_names=["*"], interval=poll, batch=False, backend_name="default", startup_delay=False,
                    max_tasks=None, worker_id=f"bench-worker-{index}", excluded_queue_names=[])  # fmt: skip
    next_tick = time.monotonic() + index * tick_every / 2  # the two workers' ticks interleave
    errors = 0
    while True:
        stopping = stop.is_set()
        if time.monotonic() >= next_tick:
            next_tick += tick_every
            with meter.measure("tick"):
                driver.tick(push=False)
        claimed = None
        box = {"label": "idle poll"}  # an empty poll is not a claim: it gets its own line
        with meter.measure(box):
            try:
                with exclusive_transaction(DBTaskResult.objects.db):
                    claimed = DBTaskResult.objects.ready().filter(backend_name="default").get_locked()
                    if claimed is not None:
                        claimed.claim(worker.worker_id)
                        box["label"] = "task claim"
            except OperationalError as exc:
                if not is_locked_database_exception(exc):
                    raise
                errors += 1
        if claimed is None:
            if stopping:
                break
            time.sleep(poll)
            continue
        with meter.measure("advance task"):
            worker.run_task(claimed)
    out.put(("worker", index, dict(meter.stats), {"locked": errors}))


def agent_main(
    index: int,
    rollout_id: int,
    host_ids: list[int],
    ring_of: dict[int, int],
    upgrades: dict[int, int],
    deadline: float,
    out: Any,
) -> None:
    """Play the hosts of this slice: check in once their ring is open, run the job, report, re-inventory."""
    connection.execute_wrappers.clear()  # the parent's query counter came along with fork
    meter = Meter()
    left = set(host_ids)
    leased: list[int] = []
    stats = {"passes": 0, "empty": 0, "locked": 0}
    old_ids, new_of = list(upgrades), upgrades
    while left and time.time() < deadline:
        open_rings = set(
            Ring.objects.filter(
                rollout_id=rollout_id, state__in=[core.RingState.RUNNING, core.RingState.SOAKING]
            ).values_list("pk", flat=True)
        )
        due = sorted(h for h in left if ring_of[h] in open_rings)
        stats["passes"] += 1
        if not due:
            if not Rollout.objects.filter(pk=rollout_id, state=core.RolloutState.RUNNING).exists():
                break  # halted or finished: nothing more will open
            time.sleep(0.02)
            continue
        for host_id in due:
            if time.time() >= deadline:
                break
            with meter.measure("lease (check-in)"):
                leases = driver.lease_jobs(host_id)
            if not leases:
                stats["empty"] += 1
                continue
            for lease in leases:
                leased.append(lease.job_id)
                targets = lease.spec["targets"]
                before = {t["name"]: {"version": "1.2.3-1", "arch": "amd64"} for t in targets}
                after = {t["name"]: {"version": t["version"], "arch": "amd64"} for t in targets}
                result = {"job_id": lease.job_id, "kind": lease.phase, "status": "succeeded", "error": "",
                          "steps": [{"name": "install", "argv": ["apt-get", "install", "-y"], "exit_code": 0}],
                          "before": before, "after": after, "reboot_scheduled": False}  # fmt: skip
                key = f"{lease.job_id}:{lease.phase}:{lease.token}"
                with meter.measure("result"):
                    driver.record_result(host_id, lease.job_id, lease.token, key, lease.phase, result)
            # the host's next inventory: its packages upgraded (the ingest's part, not measured here)
            with transaction.atomic():
                for old in old_ids:
                    HostPackage.objects.filter(host_id=host_id, package_version_id=old).update(
                        package_version_id=new_of[old]
                    )
                PendingUpdate.objects.filter(host_id=host_id).delete()
            now = timezone.now()
            with meter.measure("verification"), transaction.atomic():
                if driver.fix_attribution(host_id) is not None:
                    driver.verify_host(host_id, now)
            left.discard(host_id)
    out.put(("agent", index, dict(meter.stats), {**stats, "leased": leased}))


# --- the run --------------------------------------------------------------------------------------------------


def timed_call(meter: Meter, label: str, work: Any) -> Any:
    with meter.measure(label):
        return work()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--updates", type=int, default=3, help="pending security updates per host")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between each worker's rollout ticks")
    parser.add_argument("--poll", type=float, default=0.05, help="a worker's sleep when the task queue is empty")
    parser.add_argument("--minutes", type=float, default=8.0, help="stop the agents after this long (rollout part)")
    args = parser.parse_args()
    call_command("migrate", interactive=False, verbosity=0)
    vendor = connection.vendor
    start = time.perf_counter()
    generate_fleet(args.hosts, args.updates)
    row("fleet generated", f"{args.hosts:,} hosts", f"{args.updates} pending security updates each, "
        f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    meter = Meter()

    plan = timed_call(
        meter,
        "plan: create (preview)",
        lambda: plans.create_plan(OPERATOR, OPERATOR.name, "bench security", {"kind": "security"},
                                  {"environments": [ENVIRONMENT]}, {"reboot": "never"}, RINGS),
    )  # fmt: skip
    timed_call(meter, "plan: submit", lambda: plans.submit(OPERATOR, plan.pk))
    timed_call(meter, "plan: approve", lambda: plans.decide(APPROVER, APPROVER.name, plan.pk, True, "bench"))
    rollout = timed_call(meter, "rollout: start", lambda: driver.start(APPROVER, plan.pk))
    jobs = dict(Job.objects.filter(rollout=rollout).values_list("host_id", "ring_id"))
    rings = list(Ring.objects.filter(rollout=rollout).order_by("index"))
    per_ring = Counter(jobs.values())
    row("plan", f"{plan.totals['hosts_with_changes']:,} hosts with changes",
        ", ".join(f"{r.name} {per_ring[r.pk]:,}" for r in rings) + f"; {plan.totals['packages']:,} packages")  # fmt: skip

    # a check-in whose job waits for its ring (early and broad are waiting now)
    waiting = [h for h, r in jobs.items() if r != rings[0].pk][:500]
    for host_id in waiting:
        with meter.measure("check-in, job waiting for its ring"):
            assert driver.lease_jobs(host_id) == []
    no_job = list(Host.objects.exclude(pk__in=list(jobs)).values_list("pk", flat=True)[:1])
    if not no_job:  # every host has a job: a host added after the plan has none
        extra = Host.objects.create(name="bench-extra", created_at=timezone.now(), environment="other")
        no_job = [extra.pk]
    for _ in range(500):
        with meter.measure("check-in, no job"):
            driver.lease_jobs(no_job[0])

    upgrades = upgrade_map()
    connections.close_all()  # each process opens its own connection
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    stop = ctx.Event()
    host_ids = sorted(jobs)
    random.Random(3).shuffle(host_ids)
    wall0 = time.perf_counter()
    workers = [ctx.Process(target=worker_main, args=(i, stop, args.tick, args.poll, out)) for i in range(args.workers)]
    agents = [
        ctx.Process(
            target=agent_main,
            args=(i, rollout.pk, host_ids[i :: args.agents], jobs, upgrades, time.time() + args.minutes * 60, out),
        )
        for i in range(args.agents)
    ]
    for p in workers + agents:
        p.start()
    reports = []
    for _ in agents:
        reports.append(out.get())
    agents_done = time.perf_counter()
    from django_tasks_db.models import DBTaskResult

    backlog_at_agents_done = DBTaskResult.objects.ready().count()
    # let the workers drain the queue (and finish the rollout, when the agents got through every ring)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and DBTaskResult.objects.ready().exists():
        time.sleep(0.2)
    deadline = time.monotonic() + 3 * args.tick
    while time.monotonic() < deadline and Rollout.objects.get(pk=rollout.pk).state not in driver.TERMINAL:
        time.sleep(0.2)
    completed_after = time.perf_counter() - wall0
    stop.set()
    for _ in workers:
        reports.append(out.get())
    for p in workers + agents:
        p.join()
    connections.close_all()

    stats: dict[str, list[float]] = {}
    agent_info: dict[str, Any] = Counter()
    leased_ids: list[int] = []
    for kind, _index, s, info in reports:
        merge(stats, s)
        if kind == "agent":
            leased_ids += info.pop("leased")
        agent_info.update({k: v for k, v in info.items()})
    rollout.refresh_from_db()
    n_jobs = Job.objects.filter(rollout=rollout).count()
    states = dict(Job.objects.filter(rollout=rollout).values_list("state").annotate(n=Count("id")).order_by())
    attempts = dict(Job.objects.filter(rollout=rollout).values_list("attempts").annotate(n=Count("id")).order_by())
    job_ids = {str(pk) for pk in Job.objects.filter(rollout=rollout).values_list("pk", flat=True)}
    lease_audit = Counter(
        object_id
        for object_id in AuditRecord.objects.filter(action="job.lease", object_type="job").values_list(
            "object_id", flat=True
        )
        if object_id in job_ids
    )
    twice = sum(1 for n in lease_audit.values() if n > 1) + sum(n for a, n in attempts.items() if a > 1)
    twice += len(leased_ids) - len(set(leased_ids))
    ran_tasks = int(stats.get("advance task", [0])[0])

    # --- the table
    for label in ("plan: create (preview)", "plan: submit", "plan: approve", "rollout: start"):
        n, py, db, wall, q = meter.stats[label]
        row(label, f"{wall:.2f} s wall", f"CPU {py:.2f} s Python + {db:.2f} s database, {q:,} queries")
    for label in ("check-in, no job", "check-in, job waiting for its ring"):
        n, py, db, wall, q = meter.stats[label]
        row(label, f"{(py + db) / n * 1000:.2f} ms CPU", f"{py / n * 1000:.2f} Python + {db / n * 1000:.2f} database, "
            f"{q / n:.1f} queries, {wall / n * 1000:.2f} ms wall (main process, before the simulation starts)")  # fmt: skip
    done = Job.objects.filter(rollout=rollout, state=core.JobState.VERIFIED).count()
    total_py = total_db = 0.0
    total_q = 0
    job_driven = ("lease (check-in)", "result", "verification", "advance task", "task claim")
    for label in (*job_driven, "tick", "idle poll"):
        if label not in stats or not stats[label][0]:
            continue
        n, py, db, wall, q = stats[label]
        if label in job_driven:
            total_py, total_db, total_q = total_py + py, total_db + db, total_q + q
        per = (
            f"{(py + db) / done * 1000:.3f} ms CPU per host-job"
            if label in job_driven
            else f"{(py + db):.1f} s CPU in all ({(py + db) / done * 1000:.2f} ms per host-job)"
        )
        row(f"{label} ({int(n):,} calls)", per,
            f"per call {py / n * 1000:.2f} ms Python + {db / n * 1000:.2f} ms database, {q / n:.1f} queries, "
            f"{wall / n * 1000:.1f} ms wall")  # fmt: skip
    row("**server CPU per host-job** (lease, result, verification, advance task and its claim)",
        f"**{(total_py + total_db) / done * 1000:.2f} ms**",
        f"{total_py / done * 1000:.2f} ms Python + {total_db / done * 1000:.2f} ms database; "
        f"{total_q / done:.0f} queries per host-job; over {done:,} verified jobs; target ≤ 1 ms. Ticks and idle "
        "polls depend on time, not jobs: listed, not added")  # fmt: skip
    # ring hand-overs: last verification of ring i -> ring i+1 opened (tick) -> its first lease (check-in)
    marks = {
        r["ring_id"]: r
        for r in Job.objects.filter(rollout=rollout)
        .values("ring_id")
        .annotate(first_lease=Min("leased_at"), last_finished=Max("finished_at"), last_verified=Max("verified_at"))
    }
    rings = list(Ring.objects.filter(rollout=rollout).order_by("index"))
    opened_at = {}  # when the tick wrote "ring running" (Ring.opened_at is the tick's `now`, taken before its lock)
    ring_records = AuditRecord.objects.filter(
        action="ring.state", object_type="ring", object_id__startswith=f"{rollout.pk}/"
    ).order_by("pk")
    for record in ring_records:
        if '"to":"running"' in record.changes.replace(" ", "") and record.object_id not in opened_at:
            opened_at[record.object_id] = record.at
    for before, after in itertools.pairwise(rings):
        a, b = marks.get(before.pk), marks.get(after.pk)
        if not a or not b or not b["first_lease"] or not a["last_verified"]:
            continue
        opened = opened_at.get(f"{rollout.pk}/{after.name}", after.opened_at)
        row(f"hand-over {before.name} -> {after.name}",
            f"{(b['first_lease'] - a['last_finished']).total_seconds():.2f} s from last result to first dispatch",
            f"last verification {(a['last_verified'] - a['last_finished']).total_seconds():+.2f} s, ring opened by a "
            f"worker {(opened - a['last_finished']).total_seconds():+.2f} s, first dispatch "
            f"{(b['first_lease'] - a['last_finished']).total_seconds():+.2f} s")  # fmt: skip
    for r in rings:
        m = marks.get(r.pk)
        if not m or not m["first_lease"] or not m["last_verified"]:
            row(f"ring {r.name}: {per_ring[r.pk]:,} jobs", "not dispatched", r.state)
            continue
        verified = Job.objects.filter(ring=r, state=core.JobState.VERIFIED).count()
        seconds = max(1e-9, (m["last_verified"] - m["first_lease"]).total_seconds())
        row(f"ring {r.name}: {per_ring[r.pk]:,} jobs", f"{seconds:.1f} s wall",
            f"{r.state}; {verified:,} verified from first dispatch to last verification, {verified / seconds:,.1f} jobs/s")  # fmt: skip
    row("rollout wall time", f"{(rollout.finished_at - rollout.started_at).total_seconds():.1f} s" if rollout.finished_at else "not finished",
        f"state {rollout.state}; agents done after {agents_done - wall0:.1f} s, everything after {completed_after:.1f} s; "
        f"{args.agents} agents, {args.workers} workers (tick every {args.tick:g} s)")  # fmt: skip
    row("advance_rollout tasks", f"{ran_tasks:,} run", f"queued and not yet run when the agents finished: "
        f"{backlog_at_agents_done:,}; left at the end: {DBTaskResult.objects.ready().count():,}; failed: "
        f"{DBTaskResult.objects.exclude(exception_class_path='').count():,}")  # fmt: skip
    row("**dispatched twice**", f"**{twice}**",
        f"jobs {n_jobs:,}: {', '.join(f'{k} {v:,}' for k, v in sorted(states.items()))}; attempts "
        f"{', '.join(f'{k}: {v:,}' for k, v in sorted(attempts.items()))}; 'job.lease' audit records "
        f"{sum(lease_audit.values()):,} over {len(lease_audit):,} jobs; leases seen by agents {len(leased_ids):,}")  # fmt: skip
    row("load generator", f"{agent_info['passes']:,} passes", f"{agent_info['empty']:,} empty check-ins of hosts "
        f"in an open ring; {agent_info['locked']:,} 'database is locked' answers to a worker's task poll")  # fmt: skip
    print(
        f"\n### rollouts on {vendor} — {time.strftime('%Y-%m-%d')} — {os.uname().nodename}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n"
    )
    print("| measurement | result | note |\n|---|---|---|")
    for what, value, note in ROWS:
        print(f"| {what} | {value} | {note} |")


if __name__ == "__main__":
    main()
