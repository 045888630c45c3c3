"""Reports benchmark (issue 8): the executive overview and a quarter's evidence pack on a 10,000-host,
1,000,000-finding fixture.

The fleet is bench/matching.py's generator (hosts and inventories); the findings ledger is then topped up
to `--findings` with a realistic life history over the last 180 days (about 40 % open, the rest fixed,
accepted or not affected; fix dates, due dates, SLA policy versions, priorities, KEV entries, CVSS and
publication dates for 20,000 vulnerabilities), plus three rollouts with a job per host. Snapshots: today's is
taken for real (`take_snapshot(today)`: the live summary() at 1M findings, timed), the 89 days before are
written directly as MetricSnapshot rows (copies of today's with varied values).

Measured: the overview page (`GET /overview/`, 30 requests as a signed-in viewer, p50/p95) and the calls it
makes, and `evidence.build_pack("pci-dss", <the last 90 days>)` in a fresh process (time, peak RSS).

Run `bench/run` (both databases) or `.venv/bin/python bench/reports.py [--hosts N --findings N]`; with
PATCHDAY_DATA_DIR of an earlier SQLite run the fixture is reused. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("PATCHDAY_DATA_DIR", tempfile.mkdtemp(prefix="patchday-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patchday.server.settings")
os.environ.setdefault("PATCHDAY_LOG_LEVEL", "ERROR")

import django

django.setup()

from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from patchday.accounts import services as accounts
from patchday.advisories.models import KevEntry, Vulnerability
from patchday.core.audit import Actor, ActorKind
from patchday.core.roles import Role
from patchday.findings.models import Finding
from patchday.inventory.models import Host
from patchday.reports.models import MetricSnapshot
from patchday.rollouts.models import Job, Plan, Ring, Rollout
from patchday.server.bulk import db_datetime, insert_rows, json_value

ACTOR = Actor(ActorKind.SYSTEM, "bench", None, "127.0.0.1")
VULNERABILITIES = 20_000
KEV = 300
HISTORY_DAYS = 180
ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what}: {value} {note}", file=sys.stderr, flush=True)


def p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def timed(call: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


# -- the fixture -------------------------------------------------------------------------------------------------


def generate(hosts: int, findings: int) -> None:
    from matching import generate_fleet  # bench/matching.py: the same fixture fleet

    now = timezone.now()
    start = time.perf_counter()
    generate_fleet(hosts, 20, 2000)
    enrolled = now - timedelta(days=HISTORY_DAYS + 30)
    Host.objects.update(created_at=enrolled)
    rng = random.Random(8)
    Vulnerability.objects.bulk_create(
        [
            Vulnerability(
                cve_id=_cve(n),
                source="nvd",
                cvss_score=round(rng.uniform(2, 10), 1),
                published=now - timedelta(days=HISTORY_DAYS + 20 - rng.uniform(0, HISTORY_DAYS)),
                imported_at=now,
            )
            for n in range(VULNERABILITIES)
        ],
        batch_size=5000,
    )
    KevEntry.objects.bulk_create(
        [
            KevEntry(
                cve_id=_cve(n * 61 % VULNERABILITIES),
                vendor="v",
                product="p",
                name="n",
                date_added=(now - timedelta(days=rng.randrange(400))).date(),
                ransomware="Unknown",
            )
            for n in range(KEV)
        ]
    )
    rollouts = _rollouts(now, rng)
    _findings(findings, now, rng, rollouts)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    row("fixture generated", f"{time.perf_counter() - start:.0f} s",
        f"{Host.objects.count():,} hosts, {Finding.objects.count():,} findings, {Job.objects.count():,} jobs")  # fmt: skip


def _cve(n: int) -> str:
    return f"CVE-2098-{n:05d}"


def _rollouts(now: datetime, rng: random.Random) -> list[int]:
    """Three finished rollouts over the fleet, one job per host each (2 % failed with apt's error output)."""
    host_ids = list(Host.objects.values_list("pk", flat=True))
    made = []
    for n, days_ago in enumerate((75, 40, 10)):
        started = now - timedelta(days=days_ago)
        with transaction.atomic():
            plan = Plan.objects.create(name=f"bench reports {n}", state="approved", selection={}, target={},
                                       requested_by="bench", created_at=started, decided_at=started,
                                       decided_by="bench-approver")  # fmt: skip
            rollout = Rollout.objects.create(plan=plan, state="done", salt="s", started_by="bench",
                                             started_at=started, finished_at=started + timedelta(hours=6))  # fmt: skip
            ring = Ring.objects.create(rollout=rollout, index=0, name="broad", state="done")
            spec = {"targets": [{"name": f"pkg{n}", "version": "1.0-2"}]}
            jobs = []
            for host_id in host_ids:
                failed = rng.random() < 0.02
                jobs.append(
                    Job(
                        rollout=rollout,
                        ring=ring,
                        host_id=host_id,
                        state="failed" if failed else "verified",
                        executor="agent",
                        spec=spec,
                        queued_at=started,
                        finished_at=started + timedelta(hours=2),
                        error=f"E: Unable to fetch http://deb.debian.org/pool/pkg{n}_1.0-2.deb  404  Not Found"
                        if failed
                        else "",
                    )
                )
            Job.objects.bulk_create(jobs, batch_size=5000)
        made.append(rollout.pk)
    return made


DECISIONS = (("Act", 90, 7, 0.05), ("Attend", 70, 30, 0.15), ("Track*", 40, 60, 0.20), ("Track", 15, 90, 0.60))


def _findings(total: int, now: datetime, rng: random.Random, rollouts: list[int]) -> None:
    """`total` findings, `total / hosts` per host, detected over the last HISTORY_DAYS days."""
    host_ids = list(Host.objects.values_list("pk", flat=True))
    per_host = max(1, total // len(host_ids))
    columns = (
        "host_id", "vulnerability", "ecosystem", "package", "installed_version", "fixed_version", "fixing_update",
        "advisory_ids", "confidence", "status", "first_detected_at", "last_detected_at", "fix_available_since",
        "fixed_at", "fix_verified", "fixed_by_rollout", "status_changed_at", "priority_score", "priority_decision",
        "priority_explanation", "due_date", "sla_policy_version",
    )  # fmt: skip
    empty = json_value([])
    weights = [d[3] for d in DECISIONS]
    batch: list[tuple[Any, ...]] = []
    made = 0
    for h, host_id in enumerate(host_ids):
        for k in range(per_host):
            if made == total:
                break
            made += 1
            vuln = (h * 37 + k * 197) % VULNERABILITIES  # distinct per host: 197 * k < 20,000
            decision, score, sla_days, _ = rng.choices(DECISIONS, weights)[0]
            detected = now - timedelta(days=rng.uniform(0, HISTORY_DAYS))
            fix_since = None if rng.random() < 0.15 else detected - timedelta(days=rng.uniform(-3, 10))
            fix_since = min(fix_since, now) if fix_since else None
            due = (detected + timedelta(days=sla_days)).date()
            fate = rng.random()
            fixed_at = fixed_by = None
            verified = False
            changed = detected
            fix_at = detected + timedelta(days=rng.expovariate(1 / (sla_days * 0.8)))
            if fate < 0.7 and fix_at < now:  # a fix still to come is an open finding today
                status = "fixed"
                fixed_at = fix_at
                verified = rng.random() < 0.9
                fixed_by = rollouts[rng.randrange(len(rollouts))] if verified and rng.random() < 0.5 else None
                changed = fixed_at
            elif 0.7 <= fate < 0.74:
                status = "accepted" if fate < 0.725 else "not_affected"
                changed = min(now, detected + timedelta(days=rng.uniform(0, 20)))
            else:
                status = "open"
            batch.append(
                (host_id, _cve(vuln), "Debian:12", f"pkg{vuln % 3000}", "1.0-1", "1.0-1+deb12u1", "", empty,
                 "advisory", status, db_datetime(detected), db_datetime(max(detected, changed)),
                 db_datetime(fix_since) if fix_since else None, db_datetime(fixed_at) if fixed_at else None,
                 verified, fixed_by, db_datetime(changed), score + rng.randrange(10), decision, empty, due,
                 1 if detected < now - timedelta(days=90) else 2)
            )  # fmt: skip
            if len(batch) == 50_000:
                with transaction.atomic():
                    insert_rows("findings_finding", columns, batch)
                batch = []
    with transaction.atomic():
        insert_rows("findings_finding", columns, batch)


def snapshots(days: int) -> None:
    """Today's snapshot taken for real (timed), the `days - 1` days before written as varied copies of it."""
    from patchday.reports import metrics

    today = timezone.now().astimezone(UTC).date()
    MetricSnapshot.objects.all().delete()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _, elapsed = timed(lambda: metrics.take_snapshot(today))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row("live summary(): take_snapshot(today), 30-day window", f"{elapsed:.1f} s",
        f"process peak RSS {peak / 1024:,.0f} MiB (was {peak_before / 1024:,.0f} MiB before)")  # fmt: skip
    taken = list(MetricSnapshot.objects.filter(day=today))
    rng = random.Random(9)
    rows = []
    for offset in range(1, days):
        for snap in taken:
            value = snap.value
            if value is not None:
                value = value * (1 + rng.uniform(-0.1, 0.1) + offset / 500)
            rows.append(MetricSnapshot(day=today - timedelta(days=offset), name=snap.name, scope="", value=value,
                                       detail=snap.detail, taken_at=timezone.now()))  # fmt: skip
    MetricSnapshot.objects.bulk_create(rows, batch_size=2000)


# -- measurements ------------------------------------------------------------------------------------------------


def bench_overview(requests: int) -> None:
    from patchday.reports import metrics
    from patchday.reports import snapshots as snaps

    viewer, _ = accounts.create_user(ACTOR, f"bench-viewer-{os.getpid()}", Role.VIEWER, "bench-password-long-enough")
    client = Client(HTTP_HOST="localhost")
    client.force_login(viewer)
    first = client.get("/overview/")
    assert first.status_code == 200, first.status_code
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        answer = client.get("/overview/")
        samples.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.status_code
    p50, p95 = p50_p95(samples)
    row("overview: GET /overview/ as a viewer", f"p50 {p50 * 1000:.0f} ms / p95 {p95 * 1000:.0f} ms",
        f"{requests} requests, 90 days of snapshots, target p95 <= 300 ms")  # fmt: skip
    today = timezone.now().astimezone(UTC).date()
    for label, call in (
        ("snapshot(today) + series x2", lambda: (snaps.snapshot(today), metrics.series("sla_compliance",
                                                 today - timedelta(days=89), today),
                                                 metrics.series("kev_exposure", today - timedelta(days=89), today))),
        ("burndown(90 days)", lambda: metrics.burndown(today - timedelta(days=89), today)),
        ("top_risky_hosts(10)", lambda: metrics.top_risky_hosts(10)),
        ("top_vulnerabilities(10)", lambda: metrics.top_vulnerabilities(10)),
        ("open_by_priority()", metrics.open_by_priority),
    ):  # fmt: skip
        call()
        runs = sorted(timed(call)[1] for _ in range(5))
        row(f"overview call: {label}", f"{runs[2] * 1000:.0f} ms", "median of 5")


def bench_evidence() -> None:
    """build_pack in a fresh process, so its peak RSS is the pack's and not the fixture's."""
    connection.close()
    answer = subprocess.run([sys.executable, __file__, "--evidence-only"], capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        print(answer.stderr, file=sys.stderr)
        raise SystemExit("the evidence pack run failed")
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result["steps"])
    row("evidence pack: PCI DSS, last 90 days", f"{result['seconds']:.1f} s",
        f"peak RSS {result['peak_mib']:,.0f} MiB (process, Django included); zip {result['bytes'] / 2**20:,.1f} MiB, "
        f"findings.csv {result['findings_rows']:,} rows; {steps}; target <= 30 s")  # fmt: skip


def evidence_only() -> None:
    from patchday.reports import evidence

    today = timezone.now().astimezone(UTC).date()
    steps: list[tuple[str, float]] = []
    marks = [("start", time.perf_counter())]

    def progress(step: str) -> None:
        now = time.perf_counter()
        steps.append((marks[-1][0], now - marks[-1][1]))
        marks.append((step, now))

    start = time.perf_counter()
    _, data = evidence.build_pack("pci-dss", today - timedelta(days=89), today, ACTOR, progress)
    elapsed = time.perf_counter() - start
    steps.append((marks[-1][0], time.perf_counter() - marks[-1][1]))
    import io
    import zipfile

    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    rows = next(f["rows"] for f in manifest["files"] if f["name"] == "findings.csv")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_mib": peak, "bytes": len(data), "findings_rows": rows,
                      "steps": [(n, s) for n, s in steps if n != "start" and s >= 0.05]}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90, help="days of snapshots")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--evidence-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evidence_only:
        evidence_only()
        return
    call_command("migrate", interactive=False, verbosity=0)
    if Finding.objects.count() < args.findings:
        generate(args.hosts, args.findings)
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # indexes a migration may have added since
        row("fixture reused", f"{Finding.objects.count():,} findings", os.environ["PATCHDAY_DATA_DIR"])
    snapshots(args.days)
    bench_overview(args.requests)
    bench_evidence()
    load = os.getloadavg()
    print(
        f"\n### reports, {connection.vendor} — {date.today().isoformat()} — {os.uname().nodename}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}\n"
    )
    print("| measurement | value | note |")
    print("|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
