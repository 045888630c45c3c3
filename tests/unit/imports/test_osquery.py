"""osquery results (osqueryi --json output and osqueryd results logs) to inventory documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from patchday.connectors.imports.osquery import (
    OsqueryHost,
    parse_osquery,
    read_osquery_results,
    table_of_columns,
)
from patchday.core.errors import InvalidImport
from patchday.inventory.document import parse_document
from tests.unit.imports.conftest import fixture_bytes

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def hosts(*names: str) -> dict[str, OsqueryHost]:
    found = parse_osquery([(name, fixture_bytes(name)) for name in names], collected_at=NOW)
    return {h.host_identifier: h for h in found}


def messages(host: OsqueryHost) -> list[str]:
    return [e["message"] for e in host.document["errors"]]


def test_osqueryi_output_of_a_debian_host() -> None:
    found = hosts("osqueryi-os_version.json", "osqueryi-deb_packages.json")
    host = found[""]
    document = host.document
    checked = parse_document(document)  # the server's own checks accept it
    assert checked.collected_at == NOW
    assert (checked.os.id, checked.os.version_id, checked.os.version_codename) == ("debian", "12", "bookworm")
    assert checked.os.pretty_name == "Debian GNU/Linux 12 (bookworm)"
    assert checked.architecture == "x86_64"
    packages = {p.name: p for p in checked.packages}
    assert len(packages) == 14  # rsyslog is "deinstall ok config-files": gone from disk
    assert (packages["libc6"].source, packages["libc6"].source_version) == ("glibc", "2.36-9+deb12u14")
    assert (packages["bash"].source, packages["bash"].source_version) == ("bash", "5.2.15-2")
    assert (packages["openssl"].source, packages["openssl"].source_version) == ("openssl", "3.0.19-1~deb12u2")
    assert checked.hostname == ""  # no system_info: the caller names the host
    assert any("no system_info results" in m for m in messages(host))
    assert any("no python_packages results" in m for m in messages(host))
    assert any("machine-id" in m for m in messages(host))


def test_a_results_log_of_two_hosts() -> None:
    found = hosts("osqueryd-results-two-hosts.log")
    assert sorted(found) == ["rocky1", "web1.lab.example"]
    web = found["web1.lab.example"]
    checked = parse_document(web.document)
    assert (checked.hostname, checked.fqdn) == ("web1", "web1.lab.example")
    assert web.system_uuid == "4c4c4544-004e-3510-804f-c2c04f4b4d32"
    assert (checked.hardware.system_vendor, checked.hardware.product_name) == ("Dell Inc.", "PowerEdge R640")
    # counter 0 added three packages; counter 1 replaced libssl3 3.0.19 with 3.0.20.
    assert {(p.name, p.version) for p in checked.packages} == {
        ("bash", "5.2.15-2+b8"),
        ("libc6", "2.36-9+deb12u14"),
        ("libssl3", "3.0.20-1~deb12u2"),
    }
    assert checked.collected_at == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # the latest unixTime

    rocky = parse_document(found["rocky1"].document)
    assert (rocky.os.id, rocky.os.version_id) == ("rocky", "9.3")  # osquery said platform "rhel"
    rpms = {p.name: p for p in rocky.packages}
    assert set(rpms) == {"openssl-libs", "bash"}  # gpg-pubkey is a key, not a package
    assert (rpms["openssl-libs"].version, rpms["openssl-libs"].source, rpms["openssl-libs"].source_version) == (
        "1:3.0.7-24.el9",
        "openssl",
        "1:3.0.7-24.el9",
    )
    assert rocky.python_packages[0].name == "requests"
    assert rocky.python_packages[0].location == "/usr/lib/python3.9/site-packages"


def test_a_differential_log_that_misses_the_first_run_says_so() -> None:
    line = {
        "name": "deb_packages",
        "hostIdentifier": "h1",
        "unixTime": "1795856400",
        "action": "added",
        "counter": "7",
        "columns": {
            "name": "bash",
            "version": "5.2.15-2+b8",
            "source": "",
            "arch": "amd64",
            "status": "install ok installed",
        },
    }
    (host,) = parse_osquery([("log", json.dumps(line).encode())], collected_at=NOW)
    assert any("starts after the query's first run" in m for m in messages(host))


def test_later_snapshots_replace_earlier_ones() -> None:
    def snapshot(when: int, version: str) -> str:
        rows = [{"name": "requests", "version": version, "path": "/p", "directory": "/d"}]
        return json.dumps({"name": "python_packages", "hostIdentifier": "h", "unixTime": str(when), "snapshot": rows})

    data = "\n".join([snapshot(200, "2.31.0"), snapshot(100, "2.25.1")]).encode()
    (host,) = parse_osquery([("log", data)], collected_at=NOW)
    assert [p["version"] for p in host.document["python_packages"]] == ["2.31.0"]


@pytest.mark.parametrize(
    ("columns", "table"),
    [
        ({"name", "version", "major", "minor", "platform", "platform_like", "codename", "arch"}, "os_version"),
        ({"hostname", "uuid", "cpu_brand"}, "system_info"),
        ({"name", "version", "source", "size", "arch", "revision", "status", "maintainer"}, "deb_packages"),
        ({"name", "version", "release", "source", "arch", "epoch"}, "rpm_packages"),
        ({"name", "version", "summary", "author", "license", "path", "directory"}, "python_packages"),
        ({"name", "version"}, None),
    ],
)
def test_tables_are_told_by_their_columns(columns: set[str], table: str | None) -> None:
    assert table_of_columns(columns) == table


def test_rows_whose_table_cannot_be_told_need_a_name() -> None:
    data = b'[{"name": "bash", "version": "5.2"}]'
    with pytest.raises(InvalidImport, match="cannot tell which osquery table"):
        read_osquery_results(data)
    (result,) = read_osquery_results(data, table="deb_packages")
    assert result.table == "deb_packages"
    (host,) = parse_osquery([("exports/deb_packages.json", data)], collected_at=NOW)  # named by the file
    assert host.document["packages"][0]["name"] == "bash"


def test_other_queries_in_a_log_are_ignored() -> None:
    line = {
        "name": "processes",
        "hostIdentifier": "h",
        "action": "added",
        "columns": {"pid": "1", "path": "/sbin/init"},
    }
    assert read_osquery_results(json.dumps(line).encode()) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[{"name": "bash", "version": "5.2", "arch": "amd64"', "not valid JSON"),
        (b'{"name": "x", "hostIdentifier": "h"}\n', "not an osquery results log record"),
        (b"this is not json\n", "not a JSON object"),
        (b'[{"name": ["nested"], "version": "1", "arch": "x"}]', "must be a string or number"),
        (b'["row"]', "must be an object"),
        (b'{"name": "deb_packages", "snapshot": {"a": 1}}\n', "snapshot must be a list"),
        (b"[\xff]", "not valid UTF-8"),
    ],
)
def test_broken_results_are_refused_by_line(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImport, match=message):
        read_osquery_results(data, source="results.log")


def test_hostile_rows_are_dropped_or_kept_as_data() -> None:
    rows = [
        {"name": "<b>x</b>;$(id)", "version": "1.0", "arch": "amd64", "source": "", "status": "install ok installed"},
        {"name": "evil\u0000name", "version": "1.0", "arch": "amd64", "source": "", "status": "install ok installed"},
        {"name": "", "version": "1.0", "arch": "amd64", "source": "", "status": "install ok installed"},
    ]
    (host,) = parse_osquery([("deb_packages.json", json.dumps(rows).encode())], collected_at=NOW)
    assert [p["name"] for p in host.document["packages"]] == ["<b>x</b>;$(id)"]
    assert any("2 package rows without a usable name or version" in m for m in messages(host))
    parse_document(host.document)


def test_a_bad_table_name_is_refused() -> None:
    with pytest.raises(InvalidImport, match="not one of"):
        read_osquery_results(b"[]", table="processes")
