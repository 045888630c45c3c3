"""Findings benchmarks: the ledger on a 10,000-host fixture fleet (bench/matching.py's generator),
incremental re-evaluation after one host's inventory change and after a KEV update (p50/p95), and
the "patch first" queue with 1,000,000 findings (p95).

Run `bench/run` (both databases) or `.venv/bin/python bench/findings.py [--hosts N --packages N]`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("PATCHDAY_DATA_DIR", tempfile.mkdtemp(prefix="patchday-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patchday.server.settings")
os.environ.setdefault("PATCHDAY_LOG_LEVEL", "ERROR")

import django

django.setup()

from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from matching import generate_fleet  # bench/matching.py: the same fixture fleet
from patchday.accounts import services as accounts
from patchday.advisories import feed_imports
from patchday.core.audit import Actor, ActorKind
from patchday.core.roles import Role
from patchday.core.vulnerability import KevEntry
from patchday.findings import ledger
from patchday.findings import services as matcher
from patchday.findings.models import Finding
from patchday.inventory.models import Host, HostPackage, PackageVersion
from patchday.server.bulk import db_datetime, insert_rows

ACTOR = Actor(ActorKind.SYSTEM, "bench", None, "127.0.0.1")
ROWS: list[tuple[str, str, str, str]] = []


def row(what: str, value: str, spread: str = "", note: str = "") -> None:
    ROWS.append((what, value, spread, note))
    print(f"  {what}: {value} {spread} {note}", file=sys.stderr, flush=True)


def p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def bench_ledger(hosts: int, per_host: int, ranges: int) -> None:
    generate_fleet(hosts, per_host, ranges)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    matcher.rematch_all()
    start = time.perf_counter()
    change = ledger.reconcile_all()
    elapsed = time.perf_counter() - start
    row("ledger: first full evaluation of every host", f"{elapsed:.1f} s", f"{hosts / elapsed:,.0f} hosts/s",
        f"{change.opened:,} findings opened and prioritized")  # fmt: skip
    rng = random.Random(7)
    ids = list(Host.objects.values_list("pk", flat=True))
    samples = []
    for host_id in rng.sample(ids, 30):
        # one inventory change: a package moves to another version of the same source
        installed = HostPackage.objects.filter(host_id=host_id).select_related("package_version").first()
        assert installed is not None
        other = (
            PackageVersion.objects.filter(match_name=installed.package_version.match_name)
            .exclude(pk=installed.package_version_id)
            .first()
        )
        if other is not None:
            HostPackage.objects.filter(pk=installed.pk).update(package_version=other)
        start = time.perf_counter()
        ledger.reconcile_hosts([host_id], verified=True, reason="bench inventory")
        samples.append(time.perf_counter() - start)
    p50, p95 = p50_p95(samples)
    per_host_findings = Finding.objects.count() / max(hosts, 1)
    row("ledger: one host's inventory changed (reconcile + prioritize)", f"p50 {p50 * 1000:.0f} ms",
        f"p95 {p95 * 1000:.0f} ms", f"30 hosts, about {per_host_findings:.0f} findings per host")  # fmt: skip
    top = (
        Finding.objects.values("vulnerability")
        .annotate(n=django.db.models.Count("host", distinct=True))
        .order_by("-n")
        .first()
    )
    assert top is not None
    today = timezone.now().date()
    entry = KevEntry(top["vulnerability"], "v", "p", "n", "", today, None, "patch", "Known", "", ())
    start = time.perf_counter()
    feed_imports.store_kev([entry])
    elapsed = time.perf_counter() - start
    row("priority: a KEV entry for the CVE on most hosts", f"{elapsed * 1000:.0f} ms",
        f"{elapsed / top['n'] * 1000:.2f} ms per host", f"{top['n']:,} hosts re-prioritized")  # fmt: skip


def top_up_findings(total: int) -> None:
    """Synthetic open findings until there are `total`: the queue's worst case is a fleet full of them."""
    have = Finding.objects.count()
    if have >= total:
        return
    hosts = list(Host.objects.values_list("pk", flat=True))
    now = db_datetime(timezone.now())
    rng = random.Random(11)
    columns = (
        "host_id", "vulnerability", "ecosystem", "package", "installed_version", "fixed_version", "fixing_update",
        "advisory_ids", "confidence", "status", "first_detected_at", "last_detected_at", "fix_verified",
        "status_changed_at", "priority_score", "priority_decision", "priority_explanation", "due_date",
    )  # fmt: skip
    json_list = "[]" if connection.vendor != "postgresql" else None
    batch = []
    for i in range(total - have):
        host = hosts[i % len(hosts)]
        package = f"pkg{rng.randrange(3000)}"
        batch.append(
            (host, f"CVE-2098-{i}", "Debian:12", package, "1.0-1", f"1.0-1+deb12u{rng.randrange(1, 9)}", "",
             json_list if json_list else _jsonb([]), "advisory", "open", now, now, False, now, rng.randrange(100),
             "Track", json_list if json_list else _jsonb([]), None)
        )  # fmt: skip
        if len(batch) == 50_000:
            insert_rows("findings_finding", columns, batch)
            batch = []
    insert_rows("findings_finding", columns, batch)


def _jsonb(value: object) -> object:
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def bench_queue(total: int) -> None:
    from patchday.findings.queries import refresh_actions

    top_up_findings(total)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    start = time.perf_counter()
    refresh_actions(Finding.objects.values_list("package", flat=True).distinct())
    row("queue: rebuild every patch-first line from the ledger", f"{time.perf_counter() - start:.1f} s",
        note=f"{Finding.objects.count():,} findings (the ledger keeps them in step per change)")  # fmt: skip
    admin, _ = accounts.create_user(ACTOR, "bench-admin", Role.ADMIN, "bench-password-that-is-long")
    token = accounts.create_token(ACTOR, admin, "bench").secret
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    headers = {"Authorization": f"Bearer {token}"}
    for label, fetch in (
        ("API GET /api/v1/findings/queue", lambda: Client(HTTP_HOST="localhost").get("/api/v1/findings/queue",
                                                                                      headers=headers)),
        ("API GET /api/v1/findings (first page)", lambda: Client(HTTP_HOST="localhost").get("/api/v1/findings",
                                                                                            headers=headers)),
        ("page GET /findings/queue/", lambda: client.get("/findings/queue/")),
    ):  # fmt: skip
        fetch()
        samples = []
        for _ in range(10):
            start = time.perf_counter()
            answer = fetch()
            samples.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.status_code
        p50, p95 = p50_p95(samples)
        row(f"queue: {label}", f"p50 {p50 * 1000:.0f} ms", f"p95 {p95 * 1000:.0f} ms",
            f"{Finding.objects.count():,} findings")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--ranges", type=int, default=20_000)
    parser.add_argument("--findings", type=int, default=1_000_000)
    args = parser.parse_args()
    call_command("migrate", interactive=False, verbosity=0)
    bench_ledger(args.hosts, args.packages, args.ranges)
    bench_queue(args.findings)
    print(
        f"\n### findings, {connection.vendor} — {time.strftime('%Y-%m-%d')} — {os.uname().nodename}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n"
    )
    print("| measurement | value | spread | note |")
    print("|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
