"""Installed Debian/Ubuntu packages from dpkg's status file, with each binary's source package."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from patchday.collectors import CollectorError

STATUS_PATH = "var/lib/dpkg/status"
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?\s*$")
# dpkg states in which the package's files are on disk (see dpkg-query(1), "Package states").
_PRESENT_STATES = {"installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending"}


@dataclass(frozen=True)
class DpkgPackage:
    """One installed binary package; `source`/`source_version` from its Source: field (else the binary's own)."""

    name: str
    version: str
    architecture: str
    source: str
    source_version: str
    state: str


def iter_stanzas(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line number, fields) of each RFC 822-style stanza; continuation lines are skipped."""
    fields: dict[str, str] = {}
    line_no = start = 0
    last_key: str | None = None
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields:
                yield start, fields
            fields, last_key = {}, None
            continue
        if line[0] in " \t":
            if last_key is None:
                raise CollectorError(f"line {line_no}: continuation line outside a field")
            continue  # multi-line values (Description, Conffiles) are not needed
        key, sep, value = line.partition(":")
        if not sep:
            raise CollectorError(f"line {line_no}: expected 'Field: value', got {line[:60]!r}")
        if not fields:
            start = line_no
        last_key = key.strip()
        fields[last_key] = value.strip()
    if fields:
        yield start, fields


def parse_status(text: str, origin: str = "dpkg status") -> list[DpkgPackage]:
    """Packages whose files are on disk, from the text of /var/lib/dpkg/status.

    Raises CollectorError naming `origin` when the text is not a dpkg status file.
    """
    packages: list[DpkgPackage] = []
    saw_package = False
    try:
        for line_no, fields in iter_stanzas(text):
            name = fields.get("Package")
            if name is None:
                raise CollectorError(f"line {line_no}: stanza without a 'Package:' field")
            saw_package = True
            status = fields.get("Status", "").split()
            if len(status) != 3:
                raise CollectorError(f"line {line_no}: package {name} has no valid 'Status:' field")
            if status[2] not in _PRESENT_STATES:
                continue
            version = fields.get("Version")
            if not version:
                raise CollectorError(f"line {line_no}: package {name} has no 'Version:' field")
            source_name, source_version = name, version
            if "Source" in fields:
                found = _SOURCE.match(fields["Source"])
                if not found:
                    raise CollectorError(f"line {line_no}: package {name} has a malformed 'Source:' field")
                source_name = found.group("name")
                source_version = found.group("version") or version
            packages.append(
                DpkgPackage(name, version, fields.get("Architecture", ""), source_name, source_version, status[2])
            )
    except CollectorError as exc:
        raise CollectorError(f"{origin} is not a valid dpkg status file: {exc}") from None
    if not saw_package:
        raise CollectorError(f"{origin} is not a dpkg status file: it has no 'Package:' stanza")
    return packages
