"""The Debian security tracker's DSA and DLA lists to advisories: real excerpts, a cross-check with the bookworm
OSV records derived from the same lists, the pseudo-versions, and malformed lines."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchday.core.errors import FeedUnreadable
from patchday.core.osv import Advisory, AffectedPackage, AffectedRange, parse_advisory
from patchday.core.versions.dpkg import SCHEME as DPKG
from patchday.feeds.debian_tracker import DEBIAN_RELEASES, parse_debian_list, read_debian_list

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
DSA_LIST = FIXTURES / "debian" / "security-tracker-DSA-list-2025-02-13-excerpt.txt"
DLA_LIST = FIXTURES / "debian" / "security-tracker-DLA-list-2025-02-13-excerpt.txt"
BOOKWORM_OSV = FIXTURES / "debian-bookworm-osv-2026-08-21.json.gz"


def dsa_advisories(problems: list[str] | None = None) -> dict[str, Advisory]:
    found = read_debian_list(DSA_LIST, problems=[] if problems is None else problems)
    return {advisory.id: advisory for advisory in found}


def parse(text: str, problems: list[str] | None = None) -> list[Advisory]:
    return parse_debian_list(text.splitlines(), "test list", problems=problems)


def refusal(text: str) -> str:
    with pytest.raises(FeedUnreadable) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith("Debian security tracker test list, line ")
    return message


# -- the real lists --------------------------------------------------------------------------------------


def test_the_dsa_excerpt_becomes_advisories_in_list_order() -> None:
    advisories = read_debian_list(DSA_LIST, problems=[])
    assert len(advisories) == 139
    assert [a.id for a in advisories[:3]] == ["DSA-5865-1", "DSA-5864-1", "DSA-5863-1"]
    assert advisories[-1].id == "DSA-135"


def test_a_current_dsa_is_one_bookworm_range_from_the_start_to_the_fix() -> None:
    advisory = dsa_advisories()["DSA-5865-1"]
    assert advisory.published == datetime(2025, 2, 12, tzinfo=UTC)
    assert advisory.modified is None  # the list has no edit times, so an import must not skip it as unchanged
    assert advisory.summary == "webkit2gtk - security update"
    assert advisory.upstream == ("CVE-2025-24143", "CVE-2025-24150", "CVE-2025-24158", "CVE-2025-24162")
    assert advisory.cve_ids == advisory.upstream
    assert advisory.affected == (
        AffectedPackage(
            ecosystem="Debian:12",
            name="webkit2gtk",
            ranges=(AffectedRange(None, fixed="2.46.6-1~deb12u1"),),
            purl="pkg:deb/debian/webkit2gtk?arch=source&distro=bookworm",
        ),
    )


def test_bookworm_entries_match_the_osv_records_derived_from_the_same_lists() -> None:
    derived = {
        record["id"]: parse_advisory(record) for record in json.loads(gzip.decompress(BOOKWORM_OSV.read_bytes()))
    }
    compared = 0
    for advisory in dsa_advisories().values():
        bookworm = [p for p in advisory.affected if p.ecosystem == "Debian:12"]
        if not bookworm:
            continue
        other = derived[advisory.id]
        assert (advisory.published, advisory.summary, advisory.upstream) == (
            other.published,
            other.summary,
            other.upstream,
        ), advisory.id
        assert [(p.name, p.ranges, p.purl) for p in bookworm] == [(p.name, p.ranges, p.purl) for p in other.affected]
        compared += 1
    assert compared == 102


def test_every_fixed_version_is_a_dpkg_version() -> None:
    for advisory in [*dsa_advisories().values(), *read_debian_list(DLA_LIST)]:
        for package in advisory.affected:
            for affected in package.ranges:
                if affected.fixed is not None:
                    DPKG.validate(affected.fixed)


def test_a_version_that_is_not_a_version_is_left_out_and_reported_with_its_line() -> None:
    problems: list[str] = []
    advisory = dsa_advisories(problems)["DSA-423"]
    assert advisory.affected == ()
    assert len(advisory.upstream) == 12
    (problem,) = problems
    assert problem.startswith(f"Debian security tracker file {DSA_LIST}, line 415: DSA-423: left out kernel-image")


def test_old_headers_without_a_dash_or_with_several_packages() -> None:
    advisories = dsa_advisories()
    assert advisories["DSA-2114-1"].summary == "git-core"
    assert [p.name for p in advisories["DSA-2114-1"].affected] == ["git-core"]
    assert advisories["DSA-2015-1"].summary == "drbd8 linux-modules-extra-2.6 - privilege escalation"
    assert [(p.ecosystem, p.name) for p in advisories["DSA-2015-1"].affected] == [
        ("Debian:5", "drbd8"),
        ("Debian:5", "linux-modules-extra-2.6"),
    ]
    assert [p.ecosystem for p in advisories["DSA-1964-1"].affected] == ["Debian:4", "Debian:4", "Debian:5"]
    assert advisories["DSA-135"].summary == "libapache-mod-ssl -- buffer overflow / DoS"


def test_not_affected_releases_have_no_entry() -> None:
    advisory = dsa_advisories()["DSA-2275-1"]  # [lenny] - openoffice.org <not-affected> (Vulnerable code not present)
    assert [(p.ecosystem, p.ranges) for p in advisory.affected] == [
        ("Debian:6", (AffectedRange(None, fixed="1:3.2.1-11+squeeze3"),))
    ]


def test_unfixed_and_end_of_life_releases_are_affected_without_a_fix() -> None:
    advisories = dsa_advisories()
    phpmyadmin = advisories["DSA-880-1"]
    assert [(p.ecosystem, p.ranges) for p in phpmyadmin.affected] == [
        ("Debian:3.0", (AffectedRange(None),)),
        ("Debian:3.1", (AffectedRange(None, fixed="4:2.6.2-3sarge1"),)),
    ]
    assert phpmyadmin.database_specific["markers"] == {"Debian:3.0/phpmyadmin": "unfixed"}
    virtualbox = advisories["DSA-3699-1"]
    assert [(p.ecosystem, p.name, p.ranges) for p in virtualbox.affected] == [
        ("Debian:8", "virtualbox", (AffectedRange(None),))
    ]
    assert virtualbox.database_specific["markers"] == {"Debian:8/virtualbox": "end-of-life"}


def test_notes_are_kept_and_an_announcement_has_no_packages() -> None:
    advisory = dsa_advisories()["DSA-4205-1"]  # its NOTE line is indented with spaces, not a tab
    assert advisory.summary == "jessie end-of-life"
    assert advisory.affected == ()
    assert advisory.database_specific["notes"] == ["NOTE: end of security support for jessie"]


def test_urgency_and_bug_annotations_after_a_version_are_read_past() -> None:
    advisory = dsa_advisories()["DSA-855-1"]  # [sarge] - weex 2.6.1-6sarge1 (bug #332424; medium)
    assert [(p.ecosystem, p.ranges[0].fixed) for p in advisory.affected] == [
        ("Debian:3.1", "2.6.1-6sarge1"),
        ("Debian:3.0", "2.6.1-4woody2"),
    ]


def test_the_dla_excerpt_and_a_gzipped_list(tmp_path: Path) -> None:
    plain = read_debian_list(DLA_LIST, problems=[])
    packed = tmp_path / "list.gz"
    packed.write_bytes(gzip.compress(DLA_LIST.read_bytes()))
    assert read_debian_list(packed) == plain
    assert len(plain) == 80
    first = plain[0]
    assert (first.id, first.summary) == ("DLA-4051-1", "webkit2gtk - security update")
    assert [(p.ecosystem, p.ranges[0].fixed) for p in first.affected] == [("Debian:11", "2.46.6-1~deb11u1")]
    by_id = {advisory.id: advisory for advisory in plain}
    assert by_id["DLA-3067-1"].affected == ()
    assert by_id["DLA-372-1"].database_specific["markers"] == {"Debian:6/virtualbox-ose": "end-of-life"}


# -- the pseudo-versions ---------------------------------------------------------------------------------

HEADER = "[12 Feb 2025] DSA-9999-1 foo - security update\n\t{CVE-2025-0001 Bug#123456}\n"


@pytest.mark.parametrize(
    ("line", "expected", "marker"),
    [
        ("[bookworm] - foo 1.2-3+deb12u1", (AffectedRange(None, fixed="1.2-3+deb12u1"),), None),
        ("[bookworm] - foo <unfixed>", (AffectedRange(None),), "unfixed"),
        ("[bookworm] - foo", (AffectedRange(None),), "unfixed"),
        ("[bookworm] - foo <no-dsa> (Minor issue)", (AffectedRange(None),), "no-dsa"),
        ("[bookworm] - foo <postponed> (Fix along with next update)", (AffectedRange(None),), "postponed"),
        ("[bookworm] - foo <ignored> (Too intrusive to backport)", (AffectedRange(None),), "ignored"),
        ("[bookworm] - foo <end-of-life> (No longer supported)", (AffectedRange(None),), "end-of-life"),
        ("[bookworm] - foo <undetermined>", (AffectedRange(None),), "undetermined"),
        ("[bookworm] - foo <not-affected> (Vulnerable code not present)", None, None),
        ("[bookworm] - foo <removed>", None, None),
        ("[bookworm] - foo <itp> (bug #1000000)", None, None),
    ],
)
def test_each_pseudo_version(line: str, expected: tuple[AffectedRange, ...] | None, marker: str | None) -> None:
    (advisory,) = parse(HEADER + "\t" + line + "\n")
    assert advisory.related == ("Bug#123456",)
    if expected is None:
        assert advisory.affected == ()
    else:
        (package,) = advisory.affected
        assert (package.ecosystem, package.name, package.ranges) == ("Debian:12", "foo", expected)
    assert advisory.database_specific.get("markers") == ({"Debian:12/foo": marker} if marker else None)


def test_release_codenames_map_to_debian_release_numbers() -> None:
    assert {name: DEBIAN_RELEASES[name] for name in ("buster", "bullseye", "bookworm", "trixie", "jessie")} == {
        "buster": "10",
        "bullseye": "11",
        "bookworm": "12",
        "trixie": "13",
        "jessie": "8",
    }
    (advisory,) = parse(HEADER + "\t[trixie] - foo 1.2-4\n\t[bookworm] - foo 1.2-3+deb12u1\n")
    assert [p.ecosystem for p in advisory.affected] == ["Debian:13", "Debian:12"]


def test_a_newer_codename_can_be_passed_in() -> None:
    text = HEADER + "\t[rhubarb] - foo 1.2-5\n"
    (advisory,) = parse_debian_list(text.splitlines(), "x", releases={**DEBIAN_RELEASES, "rhubarb": "16"})
    assert [p.ecosystem for p in advisory.affected] == ["Debian:16"]


def test_blank_lines_and_crlf_line_ends_are_tolerated() -> None:
    (advisory,) = parse(HEADER.replace("\n", "\r\n") + "\r\n\t[bookworm] - foo 1.2-3+deb12u1\r\n\n")
    assert advisory.affected[0].ranges == (AffectedRange(None, fixed="1.2-3+deb12u1"),)


# -- malformed lines: refused with the line number -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("DSA-9999-1 foo - security update\n", 1, "not an advisory header"),
        ("[12 February 2025] DSA-9999-1 foo\n", 1, "not an advisory header"),
        ("[12 Feb 2025] USN-9999-1 foo\n", 1, "not an advisory header"),
        ("[31 Feb 2025] DSA-9999-1 foo\n", 1, "DSA-9999-1: 31 Feb 2025 is not a date"),
        ("[12 Fev 2025] DSA-9999-1 foo\n", 1, "DSA-9999-1: 12 Fev 2025 is not a date"),
        ("\t[bookworm] - foo 1.0-1\n", 1, "an annotation before the first advisory header"),
        (HEADER + "\t- foo 1.2-3\n", 3, "package line for foo names no [release]"),
        (HEADER + "\t[bookworm] - foo <fixed-later>\n", 3, "unknown pseudo-version <fixed-later>"),
        (HEADER + "\t[sid] - foo 1.2-3\n", 3, "unknown release 'sid'"),
        (HEADER + "\t{}\n", 3, "empty cross-reference"),
        (HEADER + "\t[bookworm] - foo 1.2-3\n\t[bookworm] - foo 1.2-4\n", 4, "foo in bookworm is listed twice"),
        (HEADER + "\t[bookworm] foo 1.2-3\n", 3, "not a package, cross-reference or note line"),
        (HEADER + "\t[bookworm] - foo 1.2-3 trailing words\n", 3, "not a package, cross-reference or note line"),
        (HEADER + "\t{CVE-2025-0001\n", 3, "not a package, cross-reference or note line"),
    ],
)
def test_a_malformed_line_is_refused_with_its_number(text: str, line: int, reason: str) -> None:
    message = refusal(text)
    assert message.startswith(f"Debian security tracker test list, line {line}: ")
    assert reason in message


def test_a_file_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    html = tmp_path / "list"
    html.write_text("<!DOCTYPE html>\n<html><title>502 Bad Gateway</title></html>\n", encoding="utf-8")
    with pytest.raises(FeedUnreadable, match="is an HTML page, not a DSA/DLA list"):
        read_debian_list(html)
    latin1 = tmp_path / "latin1"
    latin1.write_bytes(b"[12 Feb 2025] DSA-9999-1 foo\n[11 Feb 2025] DSA-9998-1 caf\xe9\n")
    with pytest.raises(FeedUnreadable, match=r"latin1, line 2: not UTF-8 text"):
        read_debian_list(latin1)
    with pytest.raises(FeedUnreadable, match="cannot read"):
        read_debian_list(tmp_path / "missing")
    broken = tmp_path / "list.gz"
    broken.write_bytes(gzip.compress(DLA_LIST.read_bytes())[:100])
    with pytest.raises(FeedUnreadable, match="cannot read"):
        read_debian_list(broken)
