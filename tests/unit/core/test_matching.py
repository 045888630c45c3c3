"""The in-memory matcher: source-package matching, fixes, no-fix, withdrawn records, explicit versions."""

from __future__ import annotations

from typing import Any

from patchday.core.matching import InstalledPackage, index_advisories, match_inventory
from patchday.core.osv import Advisory, parse_advisory

ECO = "Debian:12"
INDEX_FOR = {ECO: ECO}


def advisory(ident: str, package: str, events: list[dict[str, str]], **extra: Any) -> Advisory:
    record: dict[str, Any] = {
        "id": ident,
        "affected": [
            {"package": {"ecosystem": ECO, "name": package}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}
        ],
    }
    record.update(extra)
    return parse_advisory(record)


def matches(packages: list[InstalledPackage], advisories: list[Advisory]) -> set[tuple[str, str, str | None]]:
    report = match_inventory(packages, index_advisories(advisories, INDEX_FOR))
    return {(m.package.name, m.advisory.id, m.fixed_version) for m in report.matches}


def test_a_binary_package_is_matched_through_its_source_and_source_version() -> None:
    libssl = InstalledPackage("libssl3", "3.0.15-1~deb12u1+b1", ECO, "openssl", "3.0.15-1~deb12u1")
    dsa = advisory("DSA-1", "openssl", [{"introduced": "0"}, {"fixed": "3.0.15-1~deb12u2"}])
    assert matches([libssl], [dsa]) == {("libssl3", "DSA-1", "3.0.15-1~deb12u2")}


def test_the_fixed_version_and_anything_newer_is_not_affected() -> None:
    dsa = advisory("DSA-1", "openssl", [{"introduced": "0"}, {"fixed": "3.0.15-1~deb12u2"}])
    for version in ("3.0.15-1~deb12u2", "3.0.15-1", "1:0.1"):
        assert matches([InstalledPackage("openssl", version, ECO)], [dsa]) == set()
    # "~" sorts before the end: deb12u1 < deb12u2 < (no tilde) ...
    assert matches([InstalledPackage("openssl", "3.0.15-1~deb12u1", ECO)], [dsa])


def test_an_advisory_without_a_fixed_version_is_a_finding_with_no_fix() -> None:
    unfixed = advisory("DLA-9", "curl", [{"introduced": "0"}])
    assert matches([InstalledPackage("curl", "7.88.1-10+deb12u12", ECO)], [unfixed]) == {("curl", "DLA-9", None)}


def test_withdrawn_records_and_other_ecosystems_never_match() -> None:
    package = InstalledPackage("curl", "7.88.1-10", ECO)
    withdrawn = advisory("DLA-1", "curl", [{"introduced": "0"}], withdrawn="2024-01-01T00:00:00Z")
    other = parse_advisory(
        {
            "id": "DLA-2",
            "affected": [
                {
                    "package": {"ecosystem": "Debian:11", "name": "curl"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
            ],
        }
    )
    assert matches([package], [withdrawn, other]) == set()


def test_last_affected_limit_and_explicit_versions() -> None:
    last = advisory("A-1", "pkg", [{"introduced": "1.0"}, {"last_affected": "1.5"}])
    limited = advisory("A-2", "pkg", [{"introduced": "0"}, {"limit": "2.0"}])
    listed = parse_advisory(
        {"id": "A-3", "affected": [{"package": {"ecosystem": ECO, "name": "pkg"}, "versions": ["1.7-1"]}]}
    )
    found = {
        version: {m[1] for m in matches([InstalledPackage("pkg", version, ECO)], [last, limited, listed])}
        for version in ("0.9", "1.0", "1.5", "1.5.1", "1.7-1", "2.0")
    }
    assert found == {
        "0.9": {"A-2"},
        "1.0": {"A-1", "A-2"},
        "1.5": {"A-1", "A-2"},
        "1.5.1": {"A-2"},
        "1.7-1": {"A-2", "A-3"},
        "2.0": set(),
    }


def test_a_bad_version_is_skipped_with_the_reason_and_each_distinct_version_is_evaluated_once() -> None:
    dsa = advisory("DSA-1", "openssl", [{"introduced": "0"}, {"fixed": "3.0.15-1~deb12u2"}])
    packages = [
        InstalledPackage("libssl3", "3.0.15-1~deb12u1", ECO, "openssl", "3.0.15-1~deb12u1"),
        InstalledPackage("openssl", "3.0.15-1~deb12u1", ECO),
        InstalledPackage("libssl-dev", "bad version!", ECO, "openssl", "bad version!"),
        InstalledPackage("thing", "1.0", "Plan9:4"),
    ]
    report = match_inventory(packages, index_advisories([dsa], INDEX_FOR))
    assert len(report.matches) == 2
    assert report.evaluated_versions == 2  # ("openssl", "3.0.15-1~deb12u1") once, the bad version once
    assert [(s.package.name, "not a valid dpkg version" in s.reason) for s in report.skipped] == [("libssl-dev", True)]
    assert report.unknown_ecosystems == ("Plan9:4",)
