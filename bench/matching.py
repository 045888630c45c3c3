"""Matching benchmarks (issue 3): sort keys, the one-shot scan, and the database matcher on a large fleet.

`.venv/bin/python bench/matching.py [--hosts 10000] [--packages 1500] [--ranges 60000]`
uses PATCHDAY_DATABASE_URL (SQLite in a temporary directory by default); `bench/run` runs it on both.
Fleet data are generated from real package names and versions (the bookworm archive cut in
../shared/data); prints Markdown tables.
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PATCHDAY_DATA_DIR", tempfile.mkdtemp(prefix="patchday-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patchday.server.settings")
os.environ.setdefault("PATCHDAY_LOG_LEVEL", "ERROR")

import django

django.setup()

from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from patchday.advisories.models import Advisory, AffectedRange
from patchday.core.matching import InstalledPackage, index_advisories, match_inventory
from patchday.core.versions import dpkg, pep440, rpm, semver
from patchday.findings import services as matcher
from patchday.inventory.models import Host, HostPackage, PackageVersion

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ECOSYSTEM = "Debian:12"
ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what}: {value} {note}", file=sys.stderr)


def archive() -> dict[str, list[tuple[str, str, str]]]:
    """source package -> [(binary, version, source_version)] from the real bookworm archive cut."""
    path = SHARED / "host-fixture" / "bookworm-amd64-packages-2026-11-28.tsv.xz"
    by_source: dict[str, list[tuple[str, str, str]]] = {}
    with lzma.open(path, "rt") as handle:
        next(handle)
        for line in handle:
            _suite, package, version, _arch, source, source_version, _size = line.rstrip("\n").split("\t")
            by_source.setdefault(source, []).append((package, version, source_version))
    return by_source


def bench_sort_keys(real: dict[str, list[tuple[str, str, str]]]) -> None:
    versions = sorted({v for rows in real.values() for _, v, _ in rows})
    for name, scheme, sample in (
        ("dpkg", dpkg.SCHEME, versions),
        ("rpm", rpm.SCHEME, [v.replace("+", ".").replace("~", "~") for v in versions if ":" not in v]),
        ("pep440", pep440.SCHEME, [f"{i // 100}.{i % 100}.{i % 7}" for i in range(50000)]),
        ("semver", semver.SCHEME, [f"{i // 100}.{i % 100}.{i % 7}-rc.{i % 3}" for i in range(50000)]),
    ):
        good = []
        for v in sample:
            try:
                scheme.sort_key(v)
                good.append(v)
            except Exception:
                continue
        start = time.perf_counter()
        for v in good:
            scheme.sort_key(v)
        elapsed = time.perf_counter() - start
        row(f"sort keys: {name}", f"{len(good) / elapsed:,.0f} keys/s", f"{len(good):,} real or generated versions")


def bench_scan() -> None:
    from patchday.feeds.osv import load_osv

    osv_file = SHARED / "debian" / "debian-bookworm-osv-2026-08-21.json.gz"
    start = time.perf_counter()
    advisories = load_osv(osv_file)
    loaded = time.perf_counter() - start
    status = gzip.decompress((SHARED / "host-fixture" / "dpkg-status-2026-11-28.gz").read_bytes()).decode()
    from patchday.collectors.dpkg import parse_status

    packages = [
        InstalledPackage(p.name, p.version, ECOSYSTEM, p.source, p.source_version) for p in parse_status(status)
    ]
    # A 2,000-package host: the real host's packages plus more real ones from the archive.
    extra = [
        InstalledPackage(b, v, ECOSYSTEM, s, sv)
        for s, rows in sorted(archive().items())
        for b, v, sv in rows[:1]
        if b not in {p.name for p in packages}
    ]
    host = packages + extra[: 2000 - len(packages)]
    start = time.perf_counter()
    index = index_advisories(advisories, {ECOSYSTEM: ECOSYSTEM})
    report = match_inventory(host, index)
    matched = time.perf_counter() - start
    row("scan: load Debian 12 OSV (871 advisories)", f"{loaded * 1000:.0f} ms")
    row(f"scan: match a {len(host):,}-package host", f"{matched * 1000:.1f} ms", f"{len(report.matches)} matches")
    facts_runs = []
    for _ in range(5):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "patchday.cli.main", "scan", "--local", "--osv", str(osv_file), "--format", "json"],
            capture_output=True,
            check=False,
        )
        facts_runs.append(time.perf_counter() - start)
    summary = json.loads(done.stdout)["summary"]
    row(
        "scan: `patchday scan --local` wall time (median of 5)",
        f"{sorted(facts_runs)[2]:.2f} s",
        f"{summary['packages']} packages, in-process {summary['seconds']} s",
    )


def generate_fleet(hosts: int, per_host: int, ranges: int, seed: int = 20261128) -> None:
    rng = random.Random(seed)
    real = archive()
    sources = sorted(s for s, rows in real.items() if rows)
    rng.shuffle(sources)
    universe = sources[: max(per_host * 2, 3000)]
    now = timezone.now()
    # distinct package versions: each source's real versions plus point releases, ~15 per source
    versions: list[PackageVersion] = []
    for source in universe:
        binary, _version, source_version = real[source][0]
        variants = {source_version} | {f"{source_version}+deb12u{n}" for n in range(1, 15)}
        for v in sorted(variants):
            pv = PackageVersion(
                ecosystem=ECOSYSTEM, name=binary, version=v, source_name=source, source_version=v,
                match_name=source, match_version=v, match_key=dpkg.SCHEME.sort_key(v),
            )  # fmt: skip
            versions.append(pv)
    advisory_rows = [
        Advisory(advisory_id=f"BENCH-{i}", source="bench", imported_at=now, cve_ids=[f"CVE-2099-{i}"])
        for i in range(ranges // 10)
    ]
    with transaction.atomic():
        PackageVersion.objects.bulk_create(versions, batch_size=5000)
        Advisory.objects.bulk_create(advisory_rows, batch_size=5000)
    versions = list(PackageVersion.objects.all())
    advisory_ids = list(Advisory.objects.values_list("id", flat=True))
    range_rows: list[AffectedRange] = []
    for i in range(ranges):
        source = universe[rng.randrange(len(universe))]
        base = real[source][0][2]
        fixed = None if rng.random() < 0.05 else f"{base}+deb12u{rng.randrange(1, 16)}"
        range_rows.append(
            AffectedRange(
                advisory_id=advisory_ids[i % len(advisory_ids)],
                ecosystem=ECOSYSTEM,
                package=source,
                introduced="",
                fixed=fixed or "",
                introduced_key=b"",
                fixed_key=dpkg.SCHEME.sort_key(fixed) if fixed else None,
            )
        )
    by_source: dict[str, list[int]] = {}
    for pv in sorted(versions, key=lambda v: bytes(v.match_key or b"")):  # oldest first per source
        by_source.setdefault(pv.match_name, []).append(pv.id)
    with transaction.atomic():
        AffectedRange.objects.bulk_create(range_rows, batch_size=5000)
        Host.objects.bulk_create([Host(name=f"host{i:05d}", created_at=now) for i in range(hosts)], batch_size=5000)
    host_ids = list(Host.objects.values_list("id", flat=True))
    start = time.perf_counter()
    pool = universe[: per_host + per_host // 2]

    def host_rows(h: int) -> list[tuple[int, int, str]]:
        # fleets are mostly patched: the newest point releases are the most common
        return [(h, by_source[s][-1 - min(len(by_source[s]) - 1, int(rng.expovariate(0.6)))], "amd64")
                for s in rng.sample(pool, per_host)]  # fmt: skip

    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor  # psycopg's COPY: the only sane way to load 15 million rows
            with raw.copy("COPY inventory_hostpackage (host_id, package_version_id, arch) FROM STDIN") as copy:
                for h in host_ids:
                    for values in host_rows(h):
                        copy.write_row(values)
        else:
            for h in host_ids:
                cursor.executemany(
                    "INSERT INTO inventory_hostpackage (host_id, package_version_id, arch) VALUES (%s, %s, %s)",
                    host_rows(h),
                )
    row(
        "fleet generated",
        f"{hosts:,} hosts x {per_host:,} packages",
        f"{len(versions):,} distinct versions, {ranges:,} ranges, inventory insert {time.perf_counter() - start:.0f} s",
    )


def bench_database(hosts: int, per_host: int, ranges: int) -> None:
    call_command("migrate", interactive=False, verbosity=0)
    generate_fleet(hosts, per_host, ranges)
    with connection.cursor() as cursor:  # what autovacuum (PostgreSQL) or `patchday` maintenance would have done
        cursor.execute("ANALYZE")
    start = time.perf_counter()
    first = matcher.rematch_all()
    elapsed = time.perf_counter() - start
    row("database: first full evaluation", f"{elapsed:.2f} s", f"{first.added:,} matches written")
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        again = matcher.rematch_all()
        timings.append(time.perf_counter() - start)
        assert (again.added, again.removed) == (0, 0)
    best = min(timings)
    row("database: full fleet re-evaluation (unchanged data)", f"{best:.2f} s", f"{hosts / best:,.0f} hosts/s")
    some = list(PackageVersion.objects.order_by("?").values_list("id", flat=True)[:5])
    start = time.perf_counter()
    for _ in range(20):
        matcher.rematch_versions(some)
    row("database: re-match one host's 5 new versions", f"{(time.perf_counter() - start) / 20 * 1000:.2f} ms")
    start = time.perf_counter()
    for i in range(20):
        matcher.host_matches([f"host{i:05d}"])
    row("database: read one host's matches", f"{(time.perf_counter() - start) / 20 * 1000:.2f} ms")
    row("database: host packages stored", f"{HostPackage.objects.count():,}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--packages", type=int, default=1500)
    parser.add_argument("--ranges", type=int, default=60000)
    parser.add_argument("--skip-database", action="store_true")
    args = parser.parse_args()
    real = archive()
    bench_sort_keys(real)
    bench_scan()
    if not args.skip_database:
        bench_database(args.hosts, args.packages, args.ranges)
    print(f"\n### matching on {connection.vendor} — {time.strftime('%Y-%m-%d')} — {os.uname().nodename}, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n")  # fmt: skip
    print("| measurement | result | note |\n|---|---|---|")
    for what, value, note in ROWS:
        print(f"| {what} | {value} | {note} |")


if __name__ == "__main__":
    main()
