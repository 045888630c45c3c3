"""A fixture fleet from real data: one real Debian 12 host, and the same host at other patch levels."""

from __future__ import annotations

import gzip
from dataclasses import replace
from functools import cache
from pathlib import Path

from patchday.collectors.dpkg import parse_status
from patchday.core.matching import InstalledPackage
from patchday.core.osv import Advisory
from patchday.feeds.osv import load_osv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ECOSYSTEM = "Debian:12"


@cache
def debian_advisories() -> tuple[Advisory, ...]:
    return tuple(load_osv(FIXTURES / "feeds" / "debian-bookworm-osv-2026-08-21.json.gz"))


@cache
def real_host() -> tuple[InstalledPackage, ...]:
    text = gzip.decompress((FIXTURES / "host" / "dpkg-status-debian12-2026-11-28.gz").read_bytes()).decode()
    return tuple(
        InstalledPackage(p.name, p.version, ECOSYSTEM, p.source, p.source_version, p.architecture)
        for p in parse_status(text)
    )


@cache
def archive_versions(suite: str) -> dict[str, tuple[str, str, str]]:
    """package -> (version, source, source version) in one suite of the fixture's archive cut."""
    lines = gzip.decompress((FIXTURES / "host" / "bookworm-packages-for-host.tsv.gz").read_bytes()).decode()
    found: dict[str, tuple[str, str, str]] = {}
    for line in lines.splitlines():
        if line.startswith("#"):
            continue
        row_suite, package, version, _arch, source, source_version = line.split("\t")
        if row_suite == suite:
            found[package] = (version, source, source_version)
    return found


def host_at(suite: str, only: int | None = None) -> tuple[InstalledPackage, ...]:
    """The real host with its packages moved to `suite`'s versions (the first `only` of them, or all)."""
    versions = archive_versions(suite)
    moved = 0
    packages: list[InstalledPackage] = []
    for package in real_host():
        if package.name in versions and (only is None or moved < only):
            version, source, source_version = versions[package.name]
            packages.append(replace(package, version=version, source_name=source, source_version=source_version))
            moved += 1
        else:
            packages.append(package)
    return tuple(packages)
