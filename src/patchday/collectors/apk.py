"""Installed Alpine packages from apk's database (lib/apk/db/installed)."""

from __future__ import annotations

from dataclasses import dataclass

from patchday.collectors import CollectorError

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
