"""dpkg status parsing over a real Debian 12 host's status file, and over hostile input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from patchday.collectors import CollectorError
from patchday.collectors.dpkg import parse_status

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "host"


@pytest.fixture(scope="module")
def real_status() -> str:
    return gzip.decompress((FIXTURES / "dpkg-status-debian12-2026-11-28.gz").read_bytes()).decode()


def test_every_installed_package_of_a_real_host_is_read(real_status: str) -> None:
    packages = parse_status(real_status)
    stanzas = real_status.count("\nPackage: ") + real_status.startswith("Package: ")
    installed = real_status.count("Status: install ok installed") + real_status.count("Status: hold ok installed")
    assert len(packages) == installed
    assert installed <= stanzas
    by_name = {p.name: p for p in packages}
    assert by_name["bash"].source == "bash"
    assert by_name["libc6"].source == "glibc"  # Source: without its own version
    assert by_name["libc6"].source_version == by_name["libc6"].version


def test_a_source_field_with_its_own_version_gives_the_source_version() -> None:
    text = (
        "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\n"
        "Source: foo (1.2-3)\nVersion: 1.2-3+b1\nDescription: x\n continued\n"
    )
    (package,) = parse_status(text)
    assert (package.name, package.version, package.source, package.source_version) == (
        "libfoo1",
        "1.2-3+b1",
        "foo",
        "1.2-3",
    )


def test_packages_whose_files_are_gone_are_left_out() -> None:
    text = (
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
        "Package: half\nStatus: install ok unpacked\nVersion: 2.0\n"
    )
    assert [p.name for p in parse_status(text)] == ["half"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no 'Package:' stanza"),
        ("hello world\n", "expected 'Field: value'"),
        ("Version: 1.0\nStatus: install ok installed\n", "without a 'Package:' field"),
        ("Package: x\nVersion: 1.0\n", "no valid 'Status:' field"),
        ("Package: x\nStatus: install ok installed\n", "no 'Version:' field"),
        (" continuation first\n", "continuation line outside a field"),
        ("Package: x\nStatus: install ok installed\nVersion: 1\nSource: a b c\n", "malformed 'Source:'"),
    ],
)
def test_a_file_that_is_not_a_dpkg_status_file_is_refused_by_name(text: str, says: str) -> None:
    with pytest.raises(CollectorError, match=says) as raised:
        parse_status(text, origin="saved/notstatus")
    assert "saved/notstatus" in str(raised.value)
