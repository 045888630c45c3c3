"""The inventory document: every key of docs/inventory.md, failures as errors entries, and the digest."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from patchday.collectors.host import CommandResult
from patchday.collectors.inventory import collect, digest
from tests.unit.collectors.host_fakes import FIXTURES, FakeRunner, fixture_text, ok

DOCS = Path(__file__).resolve().parents[3] / "docs" / "inventory.md"
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def documented_example() -> dict[str, Any]:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"## The inventory document.*?```json\n(.*?)```", text, re.S)
    assert found is not None
    example: dict[str, Any] = json.loads(found.group(1))
    return example


def shape(value: Any) -> Any:
    """Keys (recursively, first list item standing for all) of a JSON value, with leaf types."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def same_shape(documented: Any, actual: Any, path: str = "") -> None:
    if isinstance(documented, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(documented), path
        for key in documented:
            same_shape(documented[key], actual[key], f"{path}.{key}")
    elif isinstance(documented, list):
        assert isinstance(actual, list), path
        if documented and actual:
            same_shape(documented[0], actual[0], path + "[]")


def debian_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    files = {
        "etc/machine-id": "4c4c4544004e3510804fc2c04f4b4d32\n",
        "etc/hostname": "h1\n",
        "etc/os-release": (FIXTURES / "os-release-debian12").read_text(),
        "proc/uptime": "700000.51 1.0\n",
        "proc/stat": "cpu 1 2\nbtime 1795158000\n",
        "proc/sys/kernel/osrelease": "6.1.0-26-amd64\n",
        "proc/net/fib_trie": fixture_text("proc-net-fib_trie-2026-11-28.txt"),
        "var/lib/dpkg/status": fixture_text("dpkg-status-debian12-2026-11-28.gz"),
        "boot/vmlinuz-6.1.0-26-amd64": "",
        "boot/vmlinuz-6.1.0-27-amd64": "",
        "run/reboot-required": "",
        "run/reboot-required.pkgs": "linux-image-6.1.0-27-amd64\n",
        "sys/class/dmi/id/sys_vendor": "QEMU\n",
        "usr/bin/python3.11": "",
        "usr/lib/python3/dist-packages/requests-2.28.1.egg-info": "Name: requests\nVersion: 2.28.1\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def debian_runner() -> FakeRunner:
    return FakeRunner(
        {
            ("apt-get", "-s"): ok(fixture_text("apt-get-s-dist-upgrade-debian12-2026-11-28.txt.gz")),
            ("apt-cache", "-o"): ok(fixture_text("apt-cache-policy-debian12-2026-11-28.txt")),
        }
    )


def test_a_debian_root_gives_every_documented_key(tmp_path: Path) -> None:
    root = debian_root(tmp_path)
    document = collect(str(root), runner=debian_runner(), now=NOW)
    same_shape(documented_example(), document)
    assert document["collected_at"] == "2026-11-28T09:30:00Z"
    assert (document["machine_id"], document["hostname"], document["fqdn"]) == (
        "4c4c4544004e3510804fc2c04f4b4d32",
        "h1",
        "h1",
    )
    assert document["addresses"] == ["192.0.2.2"]
    assert document["os"]["version_codename"] == "bookworm"
    assert document["kernel"] == {"running": "6.1.0-26-amd64", "installed": ["6.1.0-26-amd64", "6.1.0-27-amd64"]}
    assert (document["uptime_seconds"], document["boot_time"]) == (700000, "2026-11-20T07:00:00Z")
    assert document["hardware"]["system_vendor"] == "QEMU"
    assert len(document["packages"]) == 736
    assert document["python_packages"] == [
        {
            "name": "requests",
            "version": "2.28.1",
            "interpreter": "/usr/bin/python3.11",
            "location": "/usr/lib/python3/dist-packages",
        }
    ]
    assert len(document["pending_updates"]) == 120
    assert document["reboot"] == {
        "required": True,
        "reasons": ["/run/reboot-required", "running kernel older than installed"],
        "packages": ["linux-image-6.1.0-27-amd64"],
    }
    collectors = {e["collector"] for e in document["errors"]}
    assert "dmi" in collectors  # the other five DMI files are missing
    assert all(set(e) == {"collector", "message"} for e in document["errors"])
    json.dumps(document)


def test_apt_is_pointed_at_the_root(tmp_path: Path) -> None:
    root = debian_root(tmp_path)
    runner = debian_runner()
    collect(str(root), runner=runner, now=NOW)
    simulate = next(call for call in runner.calls if call[0] == "apt-get")
    assert simulate == ["apt-get", "-s", "-o", "Debug::NoLocking=1", "-o", f"Dir={root}", "dist-upgrade"]


def test_an_empty_root_gives_the_empty_document_and_errors(tmp_path: Path) -> None:
    document = collect(str(tmp_path), runner=FakeRunner(), now=NOW)
    same_shape(documented_example(), document)
    assert document["machine_id"] == ""
    assert document["packages"] == []
    assert document["boot_time"] is None
    assert document["uptime_seconds"] is None
    assert document["reboot"]["required"] is None
    collectors = {e["collector"] for e in document["errors"]}
    assert {"machine-id", "hostname", "os-release", "uptime", "dmi", "packages", "reboot"} <= collectors


def test_one_broken_collector_loses_nothing_else(tmp_path: Path) -> None:
    root = debian_root(tmp_path)
    (root / "var/lib/dpkg/status").write_text("<html>not a status file</html>\n")

    def explode(argv: Any, cwd: Any) -> CommandResult:
        raise RuntimeError("runner bug")

    runner = FakeRunner({("apt-get",): explode})
    document = collect(str(root), runner=runner, now=NOW)
    assert document["packages"] == []
    assert document["pending_updates"] == []
    assert document["machine_id"] == "4c4c4544004e3510804fc2c04f4b4d32"
    assert document["python_packages"] != []
    messages = {e["collector"]: e["message"] for e in document["errors"]}
    assert "var/lib/dpkg/status" in messages["dpkg"]
    assert "apt" not in messages  # apt runs only when the dpkg database could be read


def test_an_unexpected_exception_becomes_an_error(tmp_path: Path) -> None:
    root = debian_root(tmp_path)

    def explode(argv: Any, cwd: Any) -> CommandResult:
        raise RuntimeError("runner bug")

    document = collect(str(root), runner=FakeRunner({("apt-get",): explode}), now=NOW)
    assert {"collector": "apt", "message": "unexpected RuntimeError: runner bug"} in document["errors"]
    assert len(document["packages"]) == 736


def test_digest_ignores_volatile_keys_and_follows_the_documented_serialisation() -> None:
    example = documented_example()
    stable = {k: v for k, v in example.items() if k not in ("collected_at", "uptime_seconds", "boot_time", "errors")}
    expected = hashlib.sha256(
        json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()
    assert digest(example) == expected
    later = dict(example, collected_at="2027-01-01T00:00:00Z", uptime_seconds=1, boot_time=None, errors=[])
    assert digest(later) == digest(example)
    assert digest(dict(example, hostname="h2")) != digest(example)
    assert (
        digest(dict(example, hostname="ü"))
        == hashlib.sha256(
            json.dumps(dict(stable, hostname="ü"), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
    )


@pytest.mark.parametrize("name", ["dpkg-status-debian12-2026-11-28.gz"])
def test_fixture_is_gzip(name: str) -> None:
    assert gzip.decompress((FIXTURES / name).read_bytes()).startswith(b"Package: ")


def test_garbage_apt_output_becomes_an_error_naming_it(tmp_path: Path) -> None:
    root = debian_root(tmp_path)
    runner = FakeRunner({("apt-get", "-s"): ok("<html><body>502 Bad Gateway</body></html>\n")})
    document = collect(str(root), runner=runner, now=NOW)
    assert document["pending_updates"] == []
    (apt_error,) = [e["message"] for e in document["errors"] if e["collector"] == "apt"]
    assert "apt-get -s dist-upgrade is not apt-get output" in apt_error
    assert len(document["packages"]) == 736
