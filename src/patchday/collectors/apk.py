"""Installed Alpine packages from apk's database (lib/apk/db/installed), and pending upgrades from `apk version`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from patchday.collectors import CollectorError
from patchday.collectors.host import Host
from patchday.collectors.updates import PendingUpdate

INSTALLED_PATH = "lib/apk/db/installed"


@dataclass(frozen=True)
class ApkPackage:
    """One installed package; `origin` is the source package (aport) that Alpine advisories name."""

    name: str
    version: str
    architecture: str
    origin: str


def parse_installed(text: str, origin: str = "apk installed database") -> list[ApkPackage]:
    """Packages of an apk installed database; raises CollectorError naming `origin` when it is not one."""
    packages: list[ApkPackage] = []
    fields: dict[str, str] = {}
    for line_no, line in enumerate([*text.splitlines(), ""], start=1):
        if not line.strip():
            if fields:
                if "P" not in fields or "V" not in fields:
                    raise CollectorError(f"{origin} line {line_no}: package entry without P: or V:")
                packages.append(ApkPackage(fields["P"], fields["V"], fields.get("A", ""), fields.get("o", fields["P"])))
            fields = {}
            continue
        if len(line) < 2 or line[1] != ":":
            raise CollectorError(f"{origin} line {line_no}: expected 'X:value', got {line[:60]!r}")
        fields.setdefault(line[0], line[2:])
    if not packages:
        raise CollectorError(f"{origin} is not an apk installed database: no package entries")
    return packages


_PACKAGE_VERSION = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-\s]*-r\d+)$")


@dataclass(frozen=True)
class ApkUpgrade:
    """A line of `apk version -l '<'`: installed package, its version and the repositories' newer one."""

    name: str
    installed: str
    available: str
    tag: str


def parse_version_list(text: str, origin: str = "apk version -l '<'") -> list[ApkUpgrade]:
    """Upgrades from `apk version -l '<'` ("name-1.2.3-r0   < 1.2.4-r0", optionally followed by a repository tag)."""
    upgrades = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] in ("Installed:", "WARNING:", "fetch") or line.startswith("WARNING"):
            continue
        if len(fields) < 3 or fields[1] not in ("<", ">", "=", "?", "<=", ">="):
            raise CollectorError(f"{origin} line {line_no}: expected 'name-version < version', got {line[:60]!r}")
        found = _PACKAGE_VERSION.match(fields[0])
        if found is None:
            raise CollectorError(f"{origin} line {line_no}: {fields[0][:60]!r} is not name-version-rN")
        if fields[1] != "<":
            continue
        tag = fields[3] if len(fields) > 3 else ""
        upgrades.append(ApkUpgrade(found.group("name"), found.group("version"), fields[2], tag.lstrip("@")))
    return upgrades


def collect_pending(host: Host, installed: list[ApkPackage]) -> list[PendingUpdate]:
    """Pending upgrades from `apk version -l '<'` (apk's cached indexes; no network); source is the aport (origin).

    apk does not mark security fixes, so `security` is False: advisories decide that on the server.
    """
    argv = ["apk", *([] if host.is_live else ["--root", host.root]), "version", "-l", "<"]
    by_name = {p.name: p for p in installed}
    pending = []
    for upgrade in parse_version_list(host.run_ok(argv, 300)):
        package = by_name.get(upgrade.name)
        pending.append(
            PendingUpdate(
                manager="apk",
                name=upgrade.name,
                arch=package.architecture if package else "",
                installed=upgrade.installed,
                candidate=upgrade.available,
                origin=upgrade.tag,
                source=package.origin if package else "",
                source_version=upgrade.available if package else "",
            )
        )
    return pending
