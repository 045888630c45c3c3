"""Feed runs on a real database: each lands completely or not at all, the previous data stays intact,
re-importing changes nothing, and every run is recorded and audited. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from patchday.advisories import feed_imports
from patchday.advisories.models import Advisory, EpssScore, FeedRun, KevEntry, Vulnerability
from patchday.audit.models import AuditRecord
from patchday.core.errors import FeedUnreadable
from patchday.feeds.detect import detect_source
from tests.conftest import SYSTEM_ACTOR
from tests.support.fleet import FIXTURES

pytestmark = pytest.mark.django_db
FEEDS = FIXTURES / "feeds"
GOOD = {
    "kev": FEEDS / "kev-2026.08.21-first200.json.gz",
    "epss": FEEDS / "epss_scores-2026-08-16.head-2000.csv.gz",
    "osv": FEEDS / "debian-bookworm-osv-2026-08-21.json.gz",
    "nvd": FEEDS / "nvd",
    "cve5": FEEDS / "cve5",
    "debian-dsa": FEEDS / "debian" / "security-tracker-DSA-list-2025-02-13-excerpt.txt",
}


def run(source: str, path: Path) -> FeedRun:
    return feed_imports.run_import(SYSTEM_ACTOR, source, path, feed_imports.loader_for(SYSTEM_ACTOR, source, path))


def snapshot() -> dict[str, int]:
    return {
        "kev": KevEntry.objects.count(),
        "epss": EpssScore.objects.count(),
        "advisories": Advisory.objects.count(),
        "vulnerabilities": Vulnerability.objects.count(),
    }


@pytest.mark.parametrize("source", sorted(GOOD))
def test_each_source_is_detected_imported_and_a_second_import_changes_nothing(source: str) -> None:
    path = GOOD[source]
    assert detect_source(path) == source
    first = run(source, path)
    assert first.outcome == FeedRun.SUCCEEDED
    assert first.added > 0
    assert first.checksum
    again = run(source, path)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert again.unchanged == first.added
    assert AuditRecord.objects.filter(action="feed.import").count() == 2


def write_gz(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()))
    return path


def truncated(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: len(source.read_bytes()) // 2])
    return target


def kev_with(tmp: Path, change: Callable[[dict[str, object]], None]) -> Path:
    document = json.loads(gzip.decompress(GOOD["kev"].read_bytes()))
    change(document)
    return write_gz(tmp / "kev.json.gz", json.dumps(document))


def duplicate_kev(document: dict[str, object]) -> None:
    entries = document["vulnerabilities"]
    assert isinstance(entries, list)
    entries.append(entries[0])
    document["count"] = len(entries)


def break_kev_schema(document: dict[str, object]) -> None:
    entries = document["vulnerabilities"]
    assert isinstance(entries, list)
    del entries[3]["dueDate"]


HOSTILE: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "truncated gzip": ("kev", lambda t: truncated(GOOD["kev"], t / "kev.json.gz"), "kev"),
    "HTML error page": ("kev", lambda t: write_gz(t / "kev.json.gz", "<!DOCTYPE html><html>503</html>"), "HTML"),
    "duplicate ids": ("kev", lambda t: kev_with(t, duplicate_kev), "CVE-"),
    "schema violation": ("kev", lambda t: kev_with(t, break_kev_schema), "dueDate"),
    "invalid JSON": ("osv", lambda t: write_gz(t / "osv.json.gz", "[{"), "not valid JSON"),
    "EPSS score above 1": (
        "epss",
        lambda t: write_gz(t / "epss_scores-2026-08-16.csv.gz", "cve,epss,percentile\nCVE-2024-0001,1.5,0.5\n"),
        "CVE-2024-0001",
    ),
    "EPSS date in the future": (
        "epss",
        lambda t: write_gz(t / "epss_scores-2099-01-01.csv.gz", "cve,epss,percentile\nCVE-2024-0001,0.5,0.5\n"),
        "2099",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_bad_file_fails_its_run_names_the_problem_and_keeps_the_previous_data(case: str, tmp_path: Path) -> None:
    source, make, says = HOSTILE[case]
    for good_source in ("kev", "epss", "osv"):
        run(good_source, GOOD[good_source])
    before = snapshot()
    kev_before = list(KevEntry.objects.order_by("cve_id").values_list("cve_id", "due_date"))
    bad = make(tmp_path)

    with pytest.raises(FeedUnreadable) as raised:
        run(source, bad)

    assert says in str(raised.value)
    assert snapshot() == before
    assert list(KevEntry.objects.order_by("cve_id").values_list("cve_id", "due_date")) == kev_before
    failed = FeedRun.objects.filter(outcome=FeedRun.FAILED).get()
    assert (failed.source, failed.origin) == (source, str(bad))
    assert says in failed.error
    assert AuditRecord.objects.filter(action="feed.import_failed").count() == 1


def test_the_bundled_snapshot_loads_once_and_yields_to_real_data() -> None:
    runs = feed_imports.import_bundled_snapshot(SYSTEM_ACTOR)
    assert {r.source for r in runs} == {"kev", "epss", "osv"}
    assert all(r.origin.startswith("bundled:") for r in runs)
    assert feed_imports.is_bundled_snapshot_only()
    assert KevEntry.objects.count() == 1674
    assert feed_imports.import_bundled_snapshot(SYSTEM_ACTOR) == []
    run("kev", GOOD["kev"])
    assert not feed_imports.is_bundled_snapshot_only()
