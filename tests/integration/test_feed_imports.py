"""Feed runs on a real database: each lands completely or not at all, the previous data stays intact,
re-importing changes nothing, and every run is recorded and audited. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import tarfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from patchday.accounts.models import User
from patchday.advisories import feed_imports, queries
from patchday.advisories.models import Advisory, EpssScore, FeedRun, KevEntry, Vulnerability
from patchday.audit.models import AuditRecord
from patchday.core.errors import FeedUnreadable
from patchday.core.roles import Role
from patchday.feeds.detect import detect_source
from tests.conftest import SYSTEM_ACTOR
from tests.support.feed_archives import add_member, pack
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


ARCHIVES = {  # fixture directory -> (the archive it is packed into, as its publisher ships it; its source)
    "osv/pypa": ("pypa-advisory-database.tar.xz", "osv"),
    "osv/almalinux": ("almalinux-osv.tar.xz", "osv"),
    "osv/ubuntu": ("ubuntu-osv.tar.xz", "osv"),
    "nvd": ("nvd-api2-cve.tar.xz", "nvd"),
    "cve5": ("vulnrichment-cve5.tar.xz", "cve5"),
}


def run(source: str, path: Path, *, strict: bool = False) -> FeedRun:
    load = feed_imports.loader_for(SYSTEM_ACTOR, source, path, strict=strict)
    return feed_imports.run_import(SYSTEM_ACTOR, source, path, load)


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


@pytest.mark.parametrize("fixture", sorted(ARCHIVES))
def test_each_archived_dump_is_detected_imported_and_a_second_import_changes_nothing(
    fixture: str, tmp_path: Path
) -> None:
    name, source = ARCHIVES[fixture]
    archive = pack(FEEDS / fixture, tmp_path / name)
    assert detect_source(archive) == source
    first = run(source, archive)
    assert (first.outcome, first.skipped) == (FeedRun.SUCCEEDED, [])
    assert first.added > 0
    again = run(source, archive)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, first.added)


def dump(target: Path, good: Path | None, *bad: tuple[str, bytes]) -> Path:
    """`target`: a .tar.xz of the files under `good` (a fixture directory) and the members `bad`."""
    with tarfile.open(target, "w:xz") as archive:
        for file in sorted(p for p in good.rglob("*") if p.is_file()) if good else []:
            add_member(archive, str(file.relative_to(good)), file.read_bytes())
        for name, data in bad:
            add_member(archive, name, data)
    return target


def test_a_malformed_osv_record_is_skipped_and_listed_in_the_run_unless_strict(tmp_path: Path) -> None:
    bad = ("vulns/x/PYSEC-0000-1.yaml", b"id: PYSEC-0000-1\nmodified: never\n")
    pypa = dump(tmp_path / "pypa.tar.xz", FEEDS / "osv" / "pypa", bad)

    refused = None
    with pytest.raises(FeedUnreadable, match="PYSEC-0000-1"):
        refused = run("osv", pypa, strict=True)
    assert refused is None
    failed = FeedRun.objects.get()
    assert (failed.outcome, failed.skipped) == (FeedRun.FAILED, [])
    assert "not an RFC 3339 time" in failed.error
    assert Advisory.objects.count() == 0

    kept = run("osv", pypa)
    assert (kept.outcome, kept.added) == (FeedRun.SUCCEEDED, 5)
    assert len(kept.skipped) == 1
    assert "PYSEC-0000-1.yaml" in kept.skipped[0]
    assert "not an RFC 3339 time" in kept.skipped[0]
    assert FeedRun.objects.get(pk=kept.pk).skipped == kept.skipped  # stored, for `feeds status` and the UI
    assert Advisory.objects.filter(advisory_id__startswith="PYSEC-").count() == 5
    audited = AuditRecord.objects.filter(action="feed.import").get()
    assert json.loads(audited.changes)["skipped"] == 1


def test_a_malformed_cve_record_is_skipped_unless_strict_and_a_dump_of_nothing_good_fails(tmp_path: Path) -> None:
    bad = ("CVE-2026/CVE-2026-0001.json", b'{"id": "CVE-2026-0001", "published": 1}')
    nvd = dump(tmp_path / "nvd.tar.xz", FEEDS / "nvd", bad)
    with pytest.raises(FeedUnreadable, match="CVE-2026-0001"):
        run("nvd", nvd, strict=True)
    assert Vulnerability.objects.count() == 0
    kept = run("nvd", nvd)
    assert (kept.added, len(kept.skipped)) == (7, 1)
    assert Vulnerability.objects.count() == 7

    nothing_good = dump(tmp_path / "bad.tar.xz", None, ("CVE-2026/CVE-2026-0002.json", b"{"))
    with pytest.raises(FeedUnreadable, match="no record could be read"):
        run("nvd", nothing_good)
    assert Vulnerability.objects.count() == 7


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


# -- the shared data collection -----------------------------------------------------------------------------
# Every file of the team's shared data collection (../shared/data, see its README) that holds a supported feed
# format is detected and imported; every other file is listed with the reason, so a new file cannot be ignored
# silently. Skipped where the collection is absent (CI): the fixtures above are small real samples of its files.

SHARED = Path("/work/shared/data")
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} (the shared data collection) is absent")

SUPPORTED = {
    "kev/known_exploited_vulnerabilities-2026.08.21.json.gz": "kev",
    "epss/epss_scores-2026-08-16.csv.gz": "epss",
    "debian/security-tracker-DSA-list-2025-02-13.txt.gz": "debian-dsa",
    "debian/security-tracker-DLA-list-2025-02-13.txt.gz": "debian-dla",
    "debian/debian-bookworm-osv-2026-08-21.json.gz": "osv",
    "debian/debian-bookworm-osv-2026-08-21-all.zip": "osv",
    "osv/pypa-advisory-database-2024-10-10.tar.xz": "osv",
    "rhel/almalinux-osv-8-9-10-2026-08-21.tar.xz": "osv",
    "ubuntu/ubuntu-osv-samples-2026-04-27.tar.xz": "osv",
    "nvd/nvd-api2-cve-samples-2026-09-30.tar.xz": "nvd",
    "cve5/vulnrichment-cve5-records-2025-01-24.tar.xz": "cve5",
}
NOT_A_FEED = "not vulnerability data"
UNSUPPORTED = {
    "README.md": "the collection's description",
    "kev/known_exploited_vulnerabilities_schema.json": "CISA's JSON schema for the KEV catalog (the KEV reader "
    "validates against its own copy in patchday/feeds/schemas)",
    "debian/debian-advisories-2026-08-21.json.gz": "a normalized JSON made for the collection, published by no "
    "source; its data is what the DSA/DLA lists and the bookworm OSV file hold",
    "cvss/nvd-cvss-legacy-feeds-2024-01-02.csv.xz": "a CSV extract of NVD's retired 1.1 feeds made for the "
    "collection (NVD now publishes API 2.0 records, which are supported)",
    "cvss/vulnrichment-cvss-ssvc-2025-01-24.csv.xz": "a CSV extract of Vulnrichment made for the collection "
    "(the CVE JSON 5 records it comes from are supported)",
    "ssvc/cisa-ssvc-coordinator-decision-table.csv": "CISA's SSVC decision table: reference data, not a feed",
    "versions/deb-version-pairs.json.gz": f"{NOT_A_FEED}: golden dpkg comparisons for the version tests",
    "versions/rpm-version-pairs.json.gz": f"{NOT_A_FEED}: golden rpm comparisons for the version tests",
    "host-fixture/apt-list-upgradable-2026-11-28.txt.gz": f"{NOT_A_FEED}: host inventory (collectors)",
    "host-fixture/bookworm-amd64-packages-2026-11-28.tsv.xz": f"{NOT_A_FEED}: Debian package indices",
    "host-fixture/dpkg-status-2026-11-28.gz": f"{NOT_A_FEED}: host inventory (collectors)",
    "host-fixture/pending-updates-changelog-cves-2026-11-28.json.gz": f"{NOT_A_FEED}: host inventory cross-check",
    "host-outputs/windows-macos-command-outputs-2026-11-28.json.gz": f"{NOT_A_FEED}: host command outputs",
    "rhel/almalinux-9.2-rpm-qa-2023-09-08.txt.gz": f"{NOT_A_FEED}: host inventory (rpm -qa)",
    "rhel/redhat-csaf-vex-samples-2025-04-04.tar.xz": "Red Hat CSAF/VEX: no CSAF reader yet (RHEL-family "
    "advisories come in as OSV, e.g. AlmaLinux)",
    "windows/msrc-cvrf-2025-Nov.xml.xz": "Microsoft CVRF 1.1 XML: no Windows advisory reader yet",
    "windows/msrc-cvrf-2025-Dec.xml.xz": "Microsoft CVRF 1.1 XML: no Windows advisory reader yet",
    "windows/msrc-cvrf-2026-Jan.xml.xz": "Microsoft CVRF 1.1 XML: no Windows advisory reader yet",
    "windows/msrc-cvrf-2026-Feb.xml.xz": "Microsoft CVRF 1.1 XML: no Windows advisory reader yet",
    "windows/msrc-cvrf-2026-Mar.xml.xz": "Microsoft CVRF 1.1 XML: no Windows advisory reader yet",
    "windows/windows-cve-kb-build-mapping-2026-08-22.tar.xz": "a third-party CVE -> KB -> build mapping: no "
    "Windows advisory reader yet",
    "macos/sofa-apple-security-feeds-2026-08-22.tar.xz": "SOFA (Apple security releases): no macOS reader yet",
}


@needs_shared
def test_every_file_of_the_shared_collection_is_either_supported_or_listed_as_unsupported() -> None:
    present = {str(p.relative_to(SHARED)) for p in SHARED.rglob("*") if p.is_file()}
    assert not set(SUPPORTED) & set(UNSUPPORTED)
    assert present - set(SUPPORTED) == set(UNSUPPORTED), "a new file in ../shared/data: support it or say why not"


@needs_shared
@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_each_supported_file_of_the_shared_collection_is_detected_and_imported_whole(name: str) -> None:
    path = SHARED / name
    source = detect_source(path)
    assert source == SUPPORTED[name]
    run = feed_imports.run_import(SYSTEM_ACTOR, source, path, feed_imports.loader_for(SYSTEM_ACTOR, source, path))
    assert run.outcome == FeedRun.SUCCEEDED
    assert run.added > 0
    assert run.skipped == []  # real published data: no malformed records


# -- the dashboard's bundled-snapshot notice ------------------------------------------------------------------

NOTICE = "Feeds are from a bundled snapshot"


def finished_run(source: str, origin: str, data_date: date, outcome: str = FeedRun.SUCCEEDED) -> FeedRun:
    now = timezone.now()
    return FeedRun.objects.create(
        source=source, origin=origin, started_at=now, finished_at=now, outcome=outcome, data_date=data_date
    )


def test_every_dashboard_page_says_the_feeds_are_a_bundled_snapshot_until_real_data_arrives(
    make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client()
    client.force_login(make_user(Role.ADMIN))
    pages = ["/", "/vulnerabilities/", "/feeds/", "/audit/", "/users/", "/vulnerabilities/CVE-2024-3094/"]
    assert NOTICE not in client.get("/").content.decode()  # nothing loaded at all: nothing to say

    finished_run("kev", "bundled:kev-2026.08.21.json.gz", date(2026, 8, 21))
    finished_run("epss", "bundled:epss_scores-2026-08-16.csv.gz", date(2026, 8, 16))
    finished_run("osv", "bundled:pypa-osv-2024-10-10.json.gz", date(2024, 10, 10))
    finished_run("osv", "bundled:debian-bookworm-osv-2026-08-21.json.gz", date(2026, 8, 21))
    finished_run("kev", "https://www.cisa.gov/kev.json", date(2026, 11, 1), outcome=FeedRun.FAILED)
    calls: list[object] = []
    counted = queries.bundled_snapshot
    monkeypatch.setattr(queries, "bundled_snapshot", lambda: calls.append(1) or counted())
    for page in pages:
        html = client.get(page).content.decode()
        assert NOTICE in html, page
        assert "data of 2026-08-21 (epss 2026-08-16, kev 2026-08-21, osv 2026-08-21)" in html, page
    assert len(calls) == len(pages)  # one query per request
    anonymous = Client().get("/login/").content.decode()
    assert NOTICE in anonymous
    assert 'href="/feeds/"' not in anonymous

    finished_run("kev", "https://www.cisa.gov/kev.json", date(2026, 11, 27))  # a sync succeeded
    assert NOTICE not in client.get("/").content.decode()
    assert not feed_imports.is_bundled_snapshot_only()


def test_the_snapshot_notice_costs_one_query(django_assert_num_queries: Any) -> None:
    finished_run("kev", "bundled:kev-2026.08.21.json.gz", date(2026, 8, 21))
    with django_assert_num_queries(1):
        snapshot = queries.bundled_snapshot()
    assert snapshot is not None
    assert snapshot.data_dates == (("kev", date(2026, 8, 21)),)
