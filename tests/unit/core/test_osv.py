"""OSV records to advisories: events to intervals, identifiers, ecosystems, and hostile records."""

from __future__ import annotations

from typing import Any

import pytest

from patchday.core.osv import (
    AffectedRange,
    InvalidAdvisory,
    ecosystems_of_os,
    parse_advisory,
    ranges_from_events,
    scheme_name_for,
)


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "DSA-5418-1",
        "modified": "2023-06-03T00:00:00Z",
        "upstream": ["CVE-2023-2929", "CVE-2023-2930"],
        "aliases": ["GHSA-xxxx"],
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "chromium"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "114.0-2~deb12u1"}]}],
            }
        ],
    }
    base.update(overrides)
    return base


def test_a_debian_record_becomes_one_interval_from_the_start_to_the_fix() -> None:
    advisory = parse_advisory(record())
    (package,) = advisory.affected
    assert (package.ecosystem, package.name) == ("Debian:12", "chromium")
    assert package.ranges == (AffectedRange(None, fixed="114.0-2~deb12u1"),)
    assert advisory.cve_ids == ("CVE-2023-2929", "CVE-2023-2930")
    assert not advisory.is_withdrawn


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([{"introduced": "1.0"}], [AffectedRange("1.0")]),
        ([{"introduced": "0"}, {"last_affected": "2.0"}], [AffectedRange(None, last_affected="2.0")]),
        (
            [{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}],
            [AffectedRange("1.0", fixed="1.5"), AffectedRange("2.0", fixed="2.3")],
        ),
        ([{"introduced": "0"}, {"limit": "3.0"}], [AffectedRange(None, limit="3.0")]),
    ],
)
def test_events_become_intervals(events: list[dict[str, str]], expected: list[AffectedRange]) -> None:
    assert ranges_from_events(events, "X", "r") == expected


def test_a_withdrawn_record_says_so_and_git_ranges_are_ignored() -> None:
    advisory = parse_advisory(
        record(
            withdrawn="2024-01-01T00:00:00Z",
            affected=[
                {
                    "package": {"ecosystem": "PyPI", "name": "x"},
                    "ranges": [{"type": "GIT", "repo": "https://x", "events": [{"introduced": "abc"}]}],
                    "versions": ["1.0", "1.1"],
                }
            ],
        )
    )
    assert advisory.is_withdrawn
    assert advisory.affected[0].ranges == ()
    assert advisory.affected[0].versions == frozenset({"1.0", "1.1"})


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"id": None}, "missing 'id'"),
        ({"modified": "yesterday"}, "not an RFC 3339 time"),
        ({"aliases": "CVE-1"}, "'aliases' must be a list of strings"),
        ({"affected": {"x": 1}}, "'affected' must be a list"),
        ({"affected": [{"package": {"name": "x"}}]}, "needs ecosystem and name"),
        (
            {"affected": [{"package": {"ecosystem": "Debian:12", "name": "x"}, "ranges": [{"type": "NOPE"}]}]},
            "type 'NOPE' is unknown",
        ),
        (
            {
                "affected": [
                    {
                        "package": {"ecosystem": "Debian:12", "name": "x"},
                        "ranges": [{"type": "ECOSYSTEM", "events": []}],
                    }
                ]
            },
            "non-empty list",
        ),
        (
            {
                "affected": [
                    {
                        "package": {"ecosystem": "Debian:12", "name": "x"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}],
                    }
                ]
            },
            "has no introduced event",
        ),
    ],
)
def test_hostile_records_are_refused_naming_the_record_and_field(overrides: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidAdvisory, match=says):
        parse_advisory(record(**overrides))


@pytest.mark.parametrize(
    ("os_id", "version", "expected"),
    [
        ("debian", "12", ("Debian:12",)),
        ("ubuntu", "22.04", ("Ubuntu:22.04:LTS", "Ubuntu:Pro:22.04:LTS")),
        ("ubuntu", "23.10", ("Ubuntu:23.10", "Ubuntu:Pro:23.10")),
        ("alpine", "3.20.3", ("Alpine:v3.20",)),
        ("rocky", "9.4", ("Rocky Linux:9",)),
        ("almalinux", "9.2", ("AlmaLinux:9",)),
        ("plan9", "4", ()),
    ],
)
def test_operating_systems_map_to_osv_ecosystems(os_id: str, version: str, expected: tuple[str, ...]) -> None:
    assert ecosystems_of_os(os_id, version) == expected


@pytest.mark.parametrize(
    ("ecosystem", "scheme"),
    [
        ("Debian:12", "dpkg"),
        ("Ubuntu:Pro:22.04:LTS", "dpkg"),
        ("AlmaLinux:9", "rpm"),
        ("Red Hat:enterprise_linux:9::appstream", "rpm"),
        ("Alpine:v3.20", "apk"),
        ("PyPI", "pep440"),
        ("npm", "semver"),
        ("Go", "semver"),
        ("Hackage", None),
    ],
)
def test_ecosystems_name_their_version_scheme(ecosystem: str, scheme: str | None) -> None:
    assert scheme_name_for(ecosystem) == scheme


def test_events_listed_out_of_order_are_evaluated_in_version_order() -> None:
    from patchday.core.versions.semver import SCHEME

    events = [{"fixed": "1.5.0"}, {"introduced": "2.0.0"}, {"introduced": "1.0.0"}, {"fixed": "2.3.0"}]
    assert ranges_from_events(events, "X", "r", SCHEME) == [
        AffectedRange("1.0.0", fixed="1.5.0"),
        AffectedRange("2.0.0", fixed="2.3.0"),
    ]


def test_a_fix_and_a_reintroduction_at_one_version_make_one_run_as_osv_evaluates_it() -> None:
    from patchday.core.versions.pep440 import SCHEME

    # PYSEC-2022-42972 as published: events listed out of order, 0.13.0 both fixed and introduced
    events = [{"introduced": "0.13.0"}, {"fixed": "0.14.0rc1"}, {"introduced": "0.12.2"}, {"fixed": "0.13.0"}]
    assert ranges_from_events(events, "PYSEC-2022-42972", "r", SCHEME) == [
        AffectedRange("0.12.2", fixed="0.13.0"),
        AffectedRange("0.13.0", fixed="0.14.0rc1"),
    ]
    # introduced while affected, and fixed while not affected, change nothing
    assert ranges_from_events(
        [{"introduced": "1.0"}, {"introduced": "1.2"}, {"fixed": "2.0"}, {"fixed": "2.1"}], "X", "r", SCHEME
    ) == [AffectedRange("1.0", fixed="2.0")]
