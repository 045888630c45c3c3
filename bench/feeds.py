"""Feed import benchmarks: full EPSS, full KEV, the Debian advisories, OSV dumps, and 100,000 NVD and CVE JSON 5
records made by varying the recorded real ones. Each case runs in its own process on an empty database (so its
peak RSS is its own) through `run_import`, as `patchday feeds import` runs it: read, validate, write, one transaction.

Run `bench/run` (both databases) or `.venv/bin/python bench/feeds.py` (PATCHDAY_DATABASE_URL or SQLite).
Prints one Markdown table row per case. Numbers go to docs/performance.md; never into tests.
"""

from __future__ import annotations

import copy
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "feeds"
SNAPSHOT = ROOT / "src" / "patchday" / "advisories" / "snapshot"
SHARED = Path("/work/shared/data")  # the team's data collection; the bundled snapshot stands in where it is absent
RECORDS = 100_000
PAGE = 2_000  # NVD's API 2.0 page size


def _shared(name: str, fallback: Path) -> Path:
    return SHARED / name if (SHARED / name).exists() else fallback


# -- 100,000 records, varied from the recorded real ones, written as a stream --------------------------------


def _templates(directory: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(directory.rglob("CVE-*.json"))]


def _stamp(start: datetime, index: int) -> str:
    return (start + timedelta(minutes=7 * index)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _nvd_records(count: int) -> Iterator[dict[str, object]]:
    """NVD `cve` objects: the 7 recorded ones in turn, each with a new id, its own dates and description."""
    templates = _templates(FIXTURES / "nvd")
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for index in range(count):
        record = copy.deepcopy(templates[index % len(templates)])
        record["id"] = f"CVE-2030-{100000 + index}"
        record["published"] = _stamp(start, index)
        record["lastModified"] = _stamp(start + timedelta(days=30), index)
        descriptions = record["descriptions"]
        assert isinstance(descriptions, list)
        descriptions[0]["value"] += f" (variant {index} of the recorded {record['sourceIdentifier']} record)"
        yield record


def write_nvd_pages(directory: Path, count: int) -> Path:
    """`count` records as API 2.0 response pages of PAGE records (one page in memory at a time)."""
    directory.mkdir(parents=True)
    records = _nvd_records(count)
    for number in range(0, count, PAGE):
        page = [{"cve": next(records)} for _ in range(min(PAGE, count - number))]
        document = {"resultsPerPage": len(page), "startIndex": number, "totalResults": count,
                    "format": "NVD_CVE", "version": "2.0", "timestamp": "2026-09-30T00:00:00.000",
                    "vulnerabilities": page}  # fmt: skip
        (directory / f"nvdcve-2.0-page-{number // PAGE:03d}.json").write_text(json.dumps(document))
    return directory


def write_cve5_archive(target: Path, count: int) -> Path:
    """`count` CVE JSON 5 records, one CVE-*.json member each in a .tar.gz, laid out like cvelistV5."""
    templates = _templates(FIXTURES / "cve5")
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with tarfile.open(target, "w:gz", compresslevel=1) as archive:
        for index in range(count):
            record = copy.deepcopy(templates[index % len(templates)])
            cve_id = f"CVE-2030-{100000 + index}"
            metadata = record["cveMetadata"]
            assert isinstance(metadata, dict)
            metadata["cveId"] = cve_id
            metadata["datePublished"] = _stamp(start, index) + "Z"
            metadata["dateUpdated"] = _stamp(start + timedelta(days=30), index) + "Z"
            cna = record["containers"]["cna"]  # type: ignore[index]
            for description in cna.get("descriptions", []):
                description["value"] += f" (variant {index})"
            data = json.dumps(record).encode()
            info = tarfile.TarInfo(f"2030/{100000 + index // 1000}xxx/{cve_id}.json")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return target


# -- one case, in its own process --------------------------------------------------------------------------


def run_case(source: str, path: Path, twice: bool) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patchday.server.settings")
    os.environ.setdefault("PATCHDAY_LOG_LEVEL", "ERROR")
    import django

    django.setup()
    from django.core.management import call_command

    from patchday.advisories import feed_imports
    from patchday.core.audit import Actor, ActorKind

    call_command("migrate", interactive=False, verbosity=0)
    call_command("flush", interactive=False, verbosity=0)  # PostgreSQL is shared by the cases: start empty
    actor = Actor(ActorKind.SYSTEM, "bench", None, "127.0.0.1")
    timings = []
    for _ in range(2 if twice else 1):
        start = time.perf_counter()
        run = feed_imports.run_import(actor, source, path, feed_imports.loader_for(actor, source, path))
        timings.append(time.perf_counter() - start)
        assert run.outcome == "succeeded", run.error
        rows = run.added + run.updated + run.unchanged
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": timings, "peak_mb": peak_mb, "skipped": len(run.skipped)}))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="patchday-bench-feeds-"))
    start = time.perf_counter()
    nvd = write_nvd_pages(work / "nvd", RECORDS)
    cve5 = write_cve5_archive(work / "cve5-records.tar.gz", RECORDS)
    made = time.perf_counter() - start
    cases = [
        ("EPSS (full, 2026-08-16)", "epss", _shared("epss/epss_scores-2026-08-16.csv.gz", SNAPSHOT / "epss_scores-2026-08-16.csv.gz"), False),
        ("CISA KEV (2026.08.21)", "kev", _shared("kev/known_exploited_vulnerabilities-2026.08.21.json.gz", SNAPSHOT / "kev-2026.08.21.json.gz"), False),
        ("Debian DSA list (2025-02-13, whole)", "debian-dsa", _shared("debian/security-tracker-DSA-list-2025-02-13.txt.gz", FIXTURES / "debian" / "security-tracker-DSA-list-2025-02-13-excerpt.txt"), False),
        ("Debian DLA list (2025-02-13, whole)", "debian-dla", _shared("debian/security-tracker-DLA-list-2025-02-13.txt.gz", FIXTURES / "debian" / "security-tracker-DLA-list-2025-02-13-excerpt.txt"), False),
        ("Debian 12 advisories (OSV)", "osv", _shared("debian/debian-bookworm-osv-2026-08-21.json.gz", SNAPSHOT / "debian-bookworm-osv-2026-08-21.json.gz"), False),
        ("PyPI advisories (OSV YAML, .tar.xz)", "osv", _shared("osv/pypa-advisory-database-2024-10-10.tar.xz", SNAPSHOT / "pypa-osv-2024-10-10.json.gz"), False),
        ("AlmaLinux 8/9/10 advisories (OSV, .tar.xz)", "osv", _shared("rhel/almalinux-osv-8-9-10-2026-08-21.tar.xz", SNAPSHOT / "debian-bookworm-osv-2026-08-21.json.gz"), False),
        (f"NVD API 2.0, {RECORDS:,} records (50 pages); again unchanged", "nvd", nvd, True),
        (f"CVE JSON 5, {RECORDS:,} records (.tar.gz); again unchanged", "cve5", cve5, True),
    ]  # fmt: skip
    vendor = "postgresql" if os.environ.get("PATCHDAY_DATABASE_URL", "").startswith("postgres") else "sqlite"
    print(f"\n### feeds on {vendor} — {time.strftime('%Y-%m-%d')} — {os.uname().nodename}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]} (generating the 2 x {RECORDS:,} records took {made:.0f} s)\n")  # fmt: skip
    print("| feed | rows | import | again | peak RSS | skipped |")
    print("|---|---|---|---|---|---|")
    for label, source, path, twice in cases:
        env = {**os.environ, "PATCHDAY_DATA_DIR": tempfile.mkdtemp(prefix="patchday-bench-case-")}
        args = [sys.executable, __file__, "--case", source, str(path), "twice" if twice else "once"]
        done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            print(f"| {label} | failed: {done.stderr.strip().splitlines()[-1:]} | | | | |")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        seconds = result["seconds"]
        again = f"{seconds[1]:.1f} s" if len(seconds) > 1 else ""
        print(
            f"| {label} | {result['rows']:,} | {seconds[0]:.1f} s | {again} | {result['peak_mb']:.0f} MB | {result['skipped']} |"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--case":
        sys.path.insert(0, str(ROOT / "src"))
        run_case(sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "twice")
    else:
        main()
