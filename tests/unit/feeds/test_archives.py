"""Feed dumps in tar archives (read as a stream, never extracted) and the malformed-record policy of dumps."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from patchday.core.errors import FeedUnreadable
from patchday.feeds.cve5 import read_cve5
from patchday.feeds.detect import detect_source
from patchday.feeds.files import MalformedRecords, tar_members
from patchday.feeds.nvd import read_nvd
from patchday.feeds.osv import load_osv
from tests.support.feed_archives import add_member, pack
from tests.support.fleet import FIXTURES

FEEDS = FIXTURES / "feeds"
PYPA = FEEDS / "osv" / "pypa"
ALMALINUX = FEEDS / "osv" / "almalinux"
UBUNTU = FEEDS / "osv" / "ubuntu"


def test_a_yaml_dump_in_a_tar_archive_reads_like_its_directory(tmp_path: Path) -> None:
    archive = pack(PYPA, tmp_path / "pypa-advisory-database.tar.xz")
    from_archive = load_osv(archive)
    assert sorted(a.id for a in from_archive) == [
        "PYSEC-2019-217", "PYSEC-2019-26", "PYSEC-2020-342", "PYSEC-2022-42969", "PYSEC-2023-73"
    ]  # fmt: skip
    assert sorted(from_archive, key=lambda a: a.id) == sorted(load_osv(PYPA), key=lambda a: a.id)
    skywalking = next(a for a in from_archive if a.id == "PYSEC-2020-342")
    assert skywalking.modified is not None  # an unquoted YAML timestamp is read as the RFC 3339 text it is
    assert skywalking.modified.isoformat() == "2023-11-07T20:24:23.946863+00:00"
    assert next(a for a in from_archive if a.id == "PYSEC-2023-73").withdrawn is not None


@pytest.mark.parametrize(
    ("fixture", "name", "source"),
    [
        (PYPA, "pypa.tar.xz", "osv"),
        (ALMALINUX, "almalinux-osv.tar.xz", "osv"),
        (UBUNTU, "ubuntu-osv.tar.xz", "osv"),
        (FEEDS / "nvd", "nvd.tar.xz", "nvd"),
        (FEEDS / "cve5", "cve5.tar.gz", "cve5"),
        (PYPA, "pypa.tar", "osv"),
    ],
)
def test_the_feed_of_an_archive_is_told_from_its_first_record(
    fixture: Path, name: str, source: str, tmp_path: Path
) -> None:
    assert detect_source(pack(fixture, tmp_path / name)) == source


def test_licenses_and_provenance_lists_in_a_dump_are_not_records(tmp_path: Path) -> None:
    ubuntu = load_osv(pack(UBUNTU, tmp_path / "ubuntu.tar.xz"))  # its SOURCES.json is no OSV record
    assert [a.id for a in ubuntu] == ["USN-9999-1"]
    assert [a.id for a in load_osv(UBUNTU)] == ["USN-9999-1"]
    almalinux = load_osv(pack(ALMALINUX, tmp_path / "almalinux.tar.xz"))  # nor is its LICENSE
    assert {p.ecosystem for a in almalinux for p in a.affected} == {"AlmaLinux:8", "AlmaLinux:9", "AlmaLinux:10"}
    pack(FEEDS / "nvd", tmp_path / "plain.tar")
    with tarfile.open(tmp_path / "nvd.tar.xz", "w:xz") as archive:
        for member_name, data in tar_members(tmp_path / "plain.tar", "test", lambda _: True, 1 << 20):
            add_member(archive, member_name, data)
        add_member(archive, "SOURCES.json", b'[{"path": "x"}]')
    assert len(list(read_nvd(tmp_path / "nvd.tar.xz"))) == 7


def hostile(tmp_path: Path, *members: tuple[str, bytes, bytes]) -> Path:
    target = tmp_path / "hostile.tar.xz"
    with tarfile.open(target, "w:xz") as archive:
        for name, data, kind in members:
            add_member(archive, name, data, kind)
    return target


RECORD = json.dumps({"id": "X-1", "modified": "2024-01-01T00:00:00Z"}).encode()


def test_links_are_skipped_never_followed(tmp_path: Path) -> None:
    archive = hostile(
        tmp_path,
        ("X-2.json", b"/etc/passwd", tarfile.SYMTYPE),
        ("X-3.json", b"X-1.json", tarfile.LNKTYPE),
        ("X-1.json", RECORD, tarfile.REGTYPE),
    )
    assert [a.id for a in load_osv(archive)] == ["X-1"]


@pytest.mark.parametrize("name", ["../X-1.json", "/etc/X-1.json", "a/../../X-1.json"])
def test_a_member_outside_the_archive_refuses_the_archive(name: str, tmp_path: Path) -> None:
    archive = hostile(tmp_path, (name, RECORD, tarfile.REGTYPE))
    with pytest.raises(FeedUnreadable, match="points outside the archive"):
        load_osv(archive)


def test_an_oversized_member_and_a_truncated_archive_are_refused(tmp_path: Path) -> None:
    archive = hostile(tmp_path, ("X-1.json", RECORD, tarfile.REGTYPE))
    with pytest.raises(FeedUnreadable, match=r"member X-1\.json is larger than 10 bytes"):
        list(tar_members(archive, "OSV", lambda _: True, 10))
    truncated = tmp_path / "truncated.tar.xz"
    whole = pack(PYPA, tmp_path / "pypa.tar.xz").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FeedUnreadable, match="not a readable tar archive"):
        load_osv(truncated)


def osv_dump_with_one_bad_record(tmp_path: Path) -> Path:
    bad = b"id: PYSEC-0000-1\nmodified: not a time\n"
    with tarfile.open(tmp_path / "dump.tar.xz", "w:xz") as archive:
        for member_name, data in tar_members(pack(PYPA, tmp_path / "good.tar"), "test", lambda _: True, 1 << 20):
            add_member(archive, member_name, data)
        add_member(archive, "vulns/broken/PYSEC-0000-1.yaml", bad)
        add_member(archive, "vulns/broken/PYSEC-0000-2.yaml", b"id: [unclosed\n")
    return tmp_path / "dump.tar.xz"


def test_a_malformed_record_in_a_dump_is_skipped_and_listed_or_fails_it_when_strict(tmp_path: Path) -> None:
    dump = osv_dump_with_one_bad_record(tmp_path)
    malformed = MalformedRecords()
    assert len(load_osv(dump, malformed=malformed)) == 5
    assert len(malformed.messages) == 2
    assert "PYSEC-0000-1.yaml" in malformed.messages[0]
    assert "not an RFC 3339 time" in malformed.messages[0]
    assert "not valid YAML" in malformed.messages[1]
    with pytest.raises(FeedUnreadable, match=r"PYSEC-0000-1\.yaml"):
        load_osv(dump, malformed=MalformedRecords(strict=True))
    with pytest.raises(FeedUnreadable, match=r"PYSEC-0000-1\.yaml"):
        load_osv(dump)  # without a policy: all or nothing
    with pytest.raises(FeedUnreadable, match="more than 1 malformed records"):
        load_osv(dump, malformed=MalformedRecords(limit=1))


def test_a_single_file_that_is_not_json_is_never_skipped(tmp_path: Path) -> None:
    (tmp_path / "all.json").write_text("[{")
    with pytest.raises(FeedUnreadable, match="not valid JSON"):
        load_osv(tmp_path / "all.json", malformed=MalformedRecords())


def test_malformed_nvd_and_cve5_records_are_skipped_in_archives_and_pages(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "nvd.tar.xz", "w:xz") as archive:
        for member_name, data in tar_members(pack(FEEDS / "nvd", tmp_path / "n.tar"), "test", lambda _: True, 1 << 20):
            add_member(archive, member_name, data)
        add_member(archive, "CVE-2026/CVE-2026-0001.json", b"{not json")
        add_member(archive, "CVE-2026/CVE-2026-0002.json", json.dumps({"id": "CVE-2026-0002", "published": 5}).encode())
    malformed = MalformedRecords()
    assert len(list(read_nvd(tmp_path / "nvd.tar.xz", malformed=malformed))) == 7
    assert len(malformed.messages) == 2
    assert "member CVE-2026/CVE-2026-0001.json is not valid JSON" in malformed.messages[0]
    assert "member CVE-2026/CVE-2026-0002.json" in malformed.messages[1]
    page = {"resultsPerPage": 2, "startIndex": 0, "totalResults": 2, "vulnerabilities": [{"nope": 1}, {"cve": {}}]}
    (tmp_path / "page.json").write_text(json.dumps(page))
    malformed = MalformedRecords()
    assert list(read_nvd(tmp_path / "page.json", malformed=malformed)) == []
    assert len(malformed.messages) == 2
    cve5 = tmp_path / "cve5"
    cve5.mkdir()
    (cve5 / "CVE-2024-0001.json").write_text('{"dataType": "CVE_RECORD"}')
    malformed = MalformedRecords()
    assert list(read_cve5(cve5, malformed=malformed)) == []
    assert "CVE-2024-0001.json" in malformed.messages[0]
    with pytest.raises(FeedUnreadable, match=r"CVE-2024-0001\.json"):
        list(read_cve5(cve5, malformed=MalformedRecords(strict=True)))
