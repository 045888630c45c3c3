"""Changelog CVE mapping: real changelogs against the ground truth of this host, .deb reading, apt-get download."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from patchday.collectors import CollectorError
from patchday.collectors.apt import Candidate
from patchday.collectors.changelog import (
    cves_between,
    deb_file_name,
    parse_changelog,
    read_doc_files,
    with_changelog_cves,
)
from patchday.collectors.debversion import compare_versions
from patchday.collectors.host import CommandResult, Host
from patchday.collectors.updates import PendingUpdate
from tests.unit.collectors.host_fakes import FIXTURES, FakeRunner, fixture_text

GROUND_TRUTH = {
    p["source"]: p
    for p in json.loads((FIXTURES / "pending-updates-changelog-cves-subset-2026-11-28.json").read_text())["packages"]
}
CHANGELOGS = {
    "aom": "libaom3.changelog.Debian.gz",
    "base-files": "base-files.changelog.gz",
    "bash": "bash.changelog.Debian.gz",
    "ca-certificates": "ca-certificates.changelog.gz",
    "expat": "libexpat1.changelog.Debian.gz",
    "jq": "jq.changelog.Debian.gz",
    "libgcrypt20": "libgcrypt20.changelog.Debian.gz",
    "libxmlb": "libxmlb2.changelog.Debian.gz",
    "nss": "libnss3.changelog.Debian.gz",
    "xz-utils": "liblzma5.changelog.Debian.gz",
}


def _entry(source: str, version: str, text: str) -> str:
    trailer = " -- A <a@b>  Mon, 1 Jan 2024 00:00:00 +0000"
    return f"{source} ({version}) bookworm-security; urgency=high\n\n  * {text}\n\n{trailer}\n\n"


@pytest.mark.parametrize("source", sorted(CHANGELOGS))
def test_changelog_cves_match_the_ground_truth(source: str) -> None:
    truth = GROUND_TRUTH[source]
    entries = parse_changelog(fixture_text("changelogs/" + CHANGELOGS[source]), CHANGELOGS[source])
    in_range = [
        [e.version, e.suites, len(e.cves)]
        for e in entries
        if compare_versions(e.version, truth["installed_src"]) > 0
        and compare_versions(e.version, truth["candidate_src"]) <= 0
    ]
    assert in_range == truth["blocks"]
    assert cves_between(entries, truth["installed_src"], truth["candidate_src"]) == truth["changelog_cves"]


def test_binnmu_changelog_entries_fix_nothing() -> None:
    (entry,) = parse_changelog(fixture_text("changelogs/bash.changelog.Debian.amd64.gz"))
    assert (entry.version, entry.binary_only) == ("5.2.15-2+b13", True)
    assert cves_between([entry], "5.2.15-2", "5.2.15-2+b13") == []


def test_cves_are_distinct_across_entries() -> None:
    text = (
        _entry("foo", "1.0-3", "Fix CVE-2024-0001 and CVE-2024-10001.")
        + _entry("foo", "1.0-2", "Fix CVE-2024-0001 (again).")
        + _entry("foo", "1.0-1", "CVE-2023-9999 was fixed here.")
    )
    assert cves_between(parse_changelog(text), "1.0-1", "1.0-3") == ["CVE-2024-0001", "CVE-2024-10001"]


@pytest.mark.parametrize("text", ["", "just some upstream NEWS\n", "<html><body>404</body></html>"])
def test_text_without_entries_is_refused_by_name(text: str) -> None:
    with pytest.raises(CollectorError, match="saved/changelog is not a Debian changelog"):
        parse_changelog(text, "saved/changelog")


def _ar(members: Sequence[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, data in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n"
        out.write(header.encode("ascii"))
        out.write(data + (b"\n" if len(data) % 2 else b""))
    return out.getvalue()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {"xz": lzma.compress, "gz": gzip.compress, "bz2": bz2.compress}


def make_deb(
    path: Path, files: dict[str, bytes], symlinks: dict[str, str] | None = None, compression: str = "xz"
) -> Path:
    """A minimal .deb: debian-binary, an empty control.tar.gz, data.tar.<compression> with `files` and `symlinks`."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, link in (symlinks or {}).items():
            info = tarfile.TarInfo("./" + name)
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    control = io.BytesIO()
    with tarfile.open(fileobj=control, mode="w:gz"):
        pass
    path.write_bytes(
        _ar(
            [
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", control.getvalue()),
                (f"data.tar.{compression}", COMPRESSORS[compression](data.getvalue())),
            ]
        )
    )
    return path


@pytest.mark.parametrize("compression", ["xz", "gz", "bz2"])
def test_changelog_is_read_from_a_deb(tmp_path: Path, compression: str) -> None:
    changelog = gzip.compress(_entry("foo", "1.0-2", "Fix CVE-2024-1234.").encode())
    upstream = gzip.compress(b"Upstream NEWS, not a Debian changelog\n")
    deb = make_deb(
        tmp_path / "foo.deb",
        {"usr/share/doc/foo/changelog.gz": upstream, "usr/share/doc/foo/changelog.Debian.gz": changelog},
        compression=compression,
    )
    doc = read_doc_files(str(deb), "foo")
    assert (doc.native, doc.symlink_to) == (False, None)
    assert doc.changelog is not None
    assert "CVE-2024-1234" in doc.changelog


def test_native_changelog_when_there_is_no_changelog_debian(tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "n.deb", {"usr/share/doc/n/changelog.gz": gzip.compress(_entry("n", "2", "x").encode())})
    doc = read_doc_files(str(deb), "n")
    assert doc.native is True
    assert parse_changelog(doc.changelog or "")[0].version == "2"


def test_a_real_deb_whose_doc_dir_links_to_another_package() -> None:
    doc = read_doc_files(str(FIXTURES / "libgnutlsxx30_3.7.9-2+deb12u7_amd64.deb"), "libgnutlsxx30")
    assert (doc.changelog, doc.symlink_to) == (None, "libgnutls30")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "not an ar archive"),
        (b"PK\x03\x04 a zip file", "not an ar archive"),
        (b"!<arch>\ndebian-binary/  0           0     0     100644  4         `\n2.0\n", "no data.tar member"),
        (b"!<arch>\ndebian-binary/  0     ", "truncated or corrupt"),
    ],
)
def test_a_file_that_is_not_a_deb_is_refused_by_name(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "bad.deb"
    path.write_bytes(content)
    with pytest.raises(CollectorError, match=says) as raised:
        read_doc_files(str(path), "bad")
    assert str(path) in str(raised.value)


def test_a_truncated_data_archive_is_refused(tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "t.deb", {"usr/share/doc/t/changelog.Debian.gz": os.urandom(4096)})
    whole = deb.read_bytes()
    deb.write_bytes(whole[: len(whole) - 2000])
    with pytest.raises(CollectorError, match=str(deb)):
        read_doc_files(str(deb), "t")


def test_deb_file_name_writes_the_epoch_colon_as_apt_does() -> None:
    assert deb_file_name("libnss3", "2:3.87.1-1+deb12u4", "amd64") == "libnss3_2%3a3.87.1-1+deb12u4_amd64.deb"
    assert deb_file_name("libxmlb2", "0.3.22-1~deb12u1", "amd64") == "libxmlb2_0.3.22-1~deb12u1_amd64.deb"


def test_pending_updates_get_the_cves_of_their_source_changelog(tmp_path: Path) -> None:
    """apt-get download (faked: it writes .debs into its cwd) for the smallest binary of each source,
    following a doc-dir symlink to another pending binary of the same source."""
    changelog = (
        _entry("gnutls28", "3.7.9-2+deb12u7", "Fix CVE-2026-3832, CVE-2026-3833.")
        + _entry("gnutls28", "3.7.9-2+deb12u6", "Fix CVE-2025-0001.")
    ).encode()
    sources = tmp_path / "archive"
    sources.mkdir()
    make_deb(sources / "libgnutlsxx30.deb", {}, {"usr/share/doc/libgnutlsxx30": "libgnutls30"})
    make_deb(sources / "libgnutls30.deb", {"usr/share/doc/libgnutls30/changelog.Debian.gz": gzip.compress(changelog)})

    def download(argv: Sequence[str], cwd: str | None) -> CommandResult:
        assert cwd is not None
        assert list(argv[:3]) == ["apt-get", "download", "--"]
        for item in argv[3:]:
            name, _, version = item.partition("=")
            target = Path(cwd) / deb_file_name(name, version or "3.7.9-2+deb12u7", "amd64")
            target.write_bytes((sources / f"{name}.deb").read_bytes())
        return CommandResult(0, "", "")

    runner = FakeRunner({("apt-get", "download"): download})
    updates = [
        PendingUpdate(
            "apt",
            name,
            "amd64",
            "3.7.9-2+deb12u6",
            "3.7.9-2+deb12u7",
            source="gnutls28",
            source_version="3.7.9-2+deb12u7",
        )
        for name in ("libgnutls30", "libgnutlsxx30")
    ]
    candidates = {
        ("libgnutls30", "3.7.9-2+deb12u7"): Candidate("gnutls28", "3.7.9-2+deb12u7", 1409084),
        ("libgnutlsxx30", "3.7.9-2+deb12u7"): Candidate("gnutls28", "3.7.9-2+deb12u7", 14420),
    }
    cache = tmp_path / "cache"
    cache.mkdir()
    problems: list[str] = []
    installed = {"libgnutls30": "3.7.9-2+deb12u6", "libgnutlsxx30": "3.7.9-2+deb12u6"}
    result = with_changelog_cves(Host("/", runner), updates, installed, candidates, str(cache), problems)
    assert problems == []
    assert [u.changelog_cves for u in result] == [["CVE-2026-3832", "CVE-2026-3833"]] * 2
    assert runner.calls[0] == ["apt-get", "download", "--", "libgnutlsxx30=3.7.9-2+deb12u7"]  # the smaller .deb
    assert runner.calls[1] == ["apt-get", "download", "--", "libgnutls30"]
    again = with_changelog_cves(Host("/", runner), updates, installed, candidates, str(cache), problems)
    assert again == result
    assert len(runner.calls) == 3  # the cached .deb is not fetched again; the symlink target is asked for again


def test_a_failed_download_is_reported_and_leaves_the_list_empty(tmp_path: Path) -> None:
    runner = FakeRunner({("apt-get", "download"): CommandResult(100, "", "E: Can't find a source to download version")})
    update = PendingUpdate("apt", "foo", "amd64", "1.0-1", "1.0-2", source="foo", source_version="1.0-2")
    problems: list[str] = []
    (result,) = with_changelog_cves(Host("/", runner), [update], {"foo": "1.0-1"}, {}, str(tmp_path), problems)
    assert result.changelog_cves == []
    assert any("Can't find a source" in p for p in problems)
    assert any("no .deb of foo 1.0-2" in p for p in problems)
