"""`patchday feeds import` of advisories: all or nothing, idempotent, recorded, audited; scan reads them."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from patchday.advisories.models import Advisory, FeedRun
from patchday.audit.models import AuditRecord
from tests.support.feed_archives import add_member
from tests.support.fleet import FIXTURES

OSV = FIXTURES / "feeds" / "debian-bookworm-osv-2026-08-21.json.gz"


def run(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patchday.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


def test_import_is_atomic_idempotent_and_audited(child_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "X-1", "modified": "never"}]))
    refused = run(child_env, "feeds", "import", bad, "--source", "osv")
    assert refused.returncode == 2
    assert "not an RFC 3339 time" in refused.stdout
    assert Advisory.objects.count() == 0
    failed = FeedRun.objects.get()
    assert (failed.outcome, failed.source) == (FeedRun.FAILED, "osv")
    assert "not an RFC 3339 time" in failed.error

    first = run(child_env, "feeds", "import", OSV)  # the source is told from the content
    assert first.returncode == 0, first.stdout + first.stderr
    assert "osv" in first.stdout
    assert "871 added, 0 updated, 0 unchanged" in first.stdout
    again = run(child_env, "feeds", "import", OSV)
    assert "0 added, 0 updated, 871 unchanged" in again.stdout
    assert Advisory.objects.count() == 871
    assert AuditRecord.objects.filter(action="feed.import").count() == 2
    assert AuditRecord.objects.filter(action="feed.import_failed").count() == 1
    status = run(child_env, "feeds", "status")
    assert "osv" in status.stdout


def test_scan_uses_the_database_when_no_osv_is_given(child_env: dict[str, str], tmp_path: Path) -> None:
    status = tmp_path / "status"
    import gzip

    status.write_bytes(gzip.decompress((FIXTURES / "host" / "dpkg-status-debian12-2026-11-28.gz").read_bytes()))
    os_release = FIXTURES / "host" / "os-release-debian12"
    empty = run(child_env, "scan", "--dpkg-status", status, "--os-release", os_release)
    assert empty.returncode == 2
    assert "holds no advisories" in empty.stderr

    assert run(child_env, "feeds", "import", OSV).returncode == 0
    from_db = run(child_env, "scan", "--dpkg-status", status, "--os-release", os_release, "--format", "json")
    from_file = run(
        child_env, "scan", "--dpkg-status", status, "--os-release", os_release, "--osv", OSV, "--format", "json"
    )
    assert from_db.returncode == 1, from_db.stderr
    assert json.loads(from_db.stdout)["findings"] == json.loads(from_file.stdout)["findings"]


def test_an_archived_dump_with_a_malformed_record_imports_the_rest_and_lists_it_unless_strict(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    dump = tmp_path / "pypa-advisory-database.tar.xz"
    with tarfile.open(dump, "w:xz") as archive:
        for file in sorted((FIXTURES / "feeds" / "osv" / "pypa").rglob("*.yaml")):
            add_member(archive, f"vulns/{file.parent.name}/{file.name}", file.read_bytes())
        add_member(archive, "vulns/broken/PYSEC-0000-1.yaml", b"id: PYSEC-0000-1\nmodified: never\n")
    unknown = tmp_path / "notes.txt"
    unknown.write_text("not a feed\n")

    strict = run(child_env, "feeds", "import", dump, "--strict")
    assert strict.returncode == 2
    assert "PYSEC-0000-1.yaml" in strict.stdout
    assert Advisory.objects.count() == 0

    lenient = run(child_env, "feeds", "import", unknown, dump)  # told from the content; the unknown file fails alone
    assert lenient.returncode == 2, lenient.stdout + lenient.stderr
    assert f"failed {unknown}" in lenient.stdout
    assert "osv" in lenient.stdout
    assert "5 added" in lenient.stdout
    assert "1 malformed record(s) skipped" in lenient.stdout
    assert "PYSEC-0000-1.yaml" in lenient.stdout
    assert Advisory.objects.count() == 5
    assert FeedRun.objects.get(outcome=FeedRun.SUCCEEDED).skipped[0].startswith("OSV file")

    status = run(child_env, "feeds", "status")
    assert status.returncode == 0, status.stderr
    assert "skipped" in status.stdout
    assert "PYSEC-0000-1.yaml" in status.stdout
