"""`patchday scan` as a user runs it: a real subprocess, real files, exit codes 0/1/2, every format."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from tests.support.fleet import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
OSV = FIXTURES / "feeds" / "debian-bookworm-osv-2026-08-21.json.gz"
STATUS = FIXTURES / "host" / "dpkg-status-debian12-2026-11-28.gz"
OS_RELEASE = FIXTURES / "host" / "os-release-debian12"
SCHEMA = json.loads((ROOT / "docs" / "scan.schema.json").read_text())


def scan(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patchday.cli.main", "scan", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env or dict(os.environ),
    )


@pytest.fixture(scope="module")
def status_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("host") / "status"
    path.write_bytes(gzip.decompress(STATUS.read_bytes()))
    return path


def test_a_behind_host_has_findings_exit_1_and_json_that_fits_the_schema(status_file: Path) -> None:
    done = scan("--dpkg-status", status_file, "--os-release", OS_RELEASE, "--osv", OSV, "--format", "json")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["host"]["ecosystems"] == ["Debian:12"]
    assert document["summary"]["findings"] == len(document["findings"]) > 20
    openssl = [f for f in document["findings"] if f["source_package"] == "openssl"]
    assert openssl
    assert all(f["fixed_version"] and f["cve_ids"] for f in openssl)


def test_table_and_csv_formats(status_file: Path) -> None:
    table = scan("--dpkg-status", status_file, "--os-release", OS_RELEASE, "--osv", OSV)
    assert table.returncode == 1
    assert "findings in" in table.stdout
    assert "DSA-" in table.stdout
    rows = list(
        csv.DictReader(
            io.StringIO(
                scan("--dpkg-status", status_file, "--os-release", OS_RELEASE, "--osv", OSV, "--format", "csv").stdout
            )
        )
    )
    assert rows
    assert set(rows[0]) == {
        "package",
        "source_package",
        "installed_version",
        "fixed_version",
        "advisory_ids",
        "cve_ids",
        "severity",
        "ecosystem",
    }


def test_no_findings_exits_0(status_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    done = scan("--dpkg-status", status_file, "--os-release", OS_RELEASE, "--osv", empty, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["findings"] == []


def test_a_root_file_system_is_scanned_like_the_machine_it_holds(status_file: Path, tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "var/lib/dpkg/status").write_bytes(status_file.read_bytes())
    (tmp_path / "etc/os-release").write_bytes(OS_RELEASE.read_bytes())
    from_root = json.loads(scan("--root", tmp_path, "--osv", OSV, "--format", "json").stdout)
    from_files = json.loads(
        scan("--dpkg-status", status_file, "--os-release", OS_RELEASE, "--osv", OSV, "--format", "json").stdout
    )
    assert from_root["findings"] == from_files["findings"]


def test_a_version_that_does_not_parse_is_skipped_and_the_rest_scanned(status_file: Path, tmp_path: Path) -> None:
    text = (
        status_file.read_text()
        + "\nPackage: weird\nStatus: install ok installed\nSource: openssl\nVersion: not a version!\n"
    )
    bad = tmp_path / "status"
    bad.write_text(text)
    document = json.loads(
        scan("--dpkg-status", bad, "--os-release", OS_RELEASE, "--osv", OSV, "--format", "json").stdout
    )
    assert [s["package"] for s in document["skipped"]] == ["weird"]
    assert "not a valid dpkg version" in document["skipped"][0]["reason"]
    assert document["findings"]


def test_an_unknown_operating_system_is_listed_once_not_a_crash(status_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "os-release"
    other.write_text("ID=plan9\nVERSION_ID=4\n")
    done = scan("--dpkg-status", status_file, "--os-release", other, "--osv", OSV, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["unknown"] == ["operating system plan9 4"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "is not valid JSON"),
        (b'[{"id": "X-1", "affected": [{"package": {"name": "x"}}]}]', "needs ecosystem and name"),
        (b'["just a string"]', "is not an OSV record"),
    ],
)
def test_a_corrupt_osv_file_names_the_file_and_exits_2(
    status_file: Path, tmp_path: Path, content: bytes, says: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    done = scan("--dpkg-status", status_file, "--os-release", OS_RELEASE, "--osv", OSV, "--osv", bad)
    assert done.returncode == 2
    assert str(bad) in done.stderr
    assert says in done.stderr
    assert done.stdout == ""  # nothing scanned with half the data


def test_a_corrupt_zip_entry_is_named(status_file: Path, tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("DSA-1-1.json", json.dumps({"id": "DSA-1-1"}))
        handle.writestr("DSA-2-1.json", "{broken")
    done = scan("--dpkg-status", status_file, "--os-release", OS_RELEASE, "--osv", archive)
    assert done.returncode == 2
    assert "entry DSA-2-1.json is not valid JSON" in done.stderr
    not_zip = tmp_path / "fake.zip"
    not_zip.write_text("hello")
    assert "not a readable zip archive" in scan("--local", "--osv", not_zip).stderr


def test_a_file_that_is_not_a_status_file_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "status"
    bogus.write_text("this is a shopping list\n")
    done = scan("--dpkg-status", bogus, "--os-release", OS_RELEASE, "--osv", OSV)
    assert done.returncode == 2
    assert f"{bogus} is not a valid dpkg status file" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--local", "--root", "/"),
        ("--dpkg-status", "x"),
        ("--local", "--format", "xml"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    assert scan(*args, "--osv", OSV).returncode == 2
