"""The one-shot scan: read a host's packages (this machine, a root file system or saved files), match
them against OSV advisories in memory, and report findings. No server or database is involved."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from patchday.collectors import CollectorError
from patchday.collectors import apk as apk_collector
from patchday.collectors import dpkg as dpkg_collector
from patchday.collectors import rpm as rpm_collector
from patchday.collectors.os_release import PATHS as OS_RELEASE_PATHS
from patchday.collectors.os_release import parse_os_release
from patchday.core.errors import InvalidInput
from patchday.core.matching import InstalledPackage, Match, MatchReport, index_advisories, match_inventory
from patchday.core.osv import Advisory, ecosystems_of_os
from patchday.core.severity import RANK, Rating, rating_for_score, rating_for_word, worst


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What a scan knows of the host: identity, OS, the ecosystems that apply, and its packages."""

    hostname: str
    os_id: str
    os_version: str
    os_name: str
    ecosystems: tuple[str, ...]
    packages: tuple[InstalledPackage, ...]
    source: str  # where the facts came from: "local", "root /mnt/img", "files status + os-release"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    """One package to update: installed -> fixed version (None: no fix yet), and every advisory it resolves."""

    package: str
    source_package: str
    installed_version: str
    fixed_version: str | None
    advisory_ids: tuple[str, ...]
    cve_ids: tuple[str, ...]
    severity: Rating
    ecosystem: str


@dataclass(frozen=True, slots=True)
class ScanReport:
    host: HostFacts
    findings: tuple[Finding, ...]
    skipped: tuple[tuple[str, str, str], ...]  # (package, version, reason)
    unknown: tuple[str, ...]  # ecosystems or operating systems no advisory data could cover
    advisories_loaded: int
    evaluated_versions: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, object]:
        by_severity = {r.value: 0 for r in Rating}
        for finding in self.findings:
            by_severity[finding.severity.value] += 1
        return {
            "packages": len(self.host.packages),
            "vulnerable_packages": len({f.package for f in self.findings}),
            "findings": len(self.findings),
            "no_fix_available": sum(1 for f in self.findings if f.fixed_version is None),
            "advisories": len({a for f in self.findings for a in f.advisory_ids}),
            "cves": len({c for f in self.findings for c in f.cve_ids}),
            "by_severity": by_severity,
            "skipped": len(self.skipped),
            "advisories_loaded": self.advisories_loaded,
        }


# -- gathering facts ----------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


def _os_release_under(root: Path) -> tuple[dict[str, str], str]:
    for relative in OS_RELEASE_PATHS:
        candidate = root / relative
        if candidate.is_file():
            return _parse_os_release(_read(candidate), str(candidate)), str(candidate)
    raise InvalidInput(f"no os-release file under {root} (looked for {', '.join(OS_RELEASE_PATHS)})")


def _parse_os_release(text: str, origin: str) -> dict[str, str]:
    try:
        return parse_os_release(text, origin)
    except CollectorError as exc:
        raise InvalidInput(str(exc)) from None


def _dpkg_packages(text: str, origin: str, ecosystem: str) -> list[InstalledPackage]:
    try:
        found = dpkg_collector.parse_status(text, origin)
    except CollectorError as exc:
        raise InvalidInput(str(exc)) from None
    return [InstalledPackage(p.name, p.version, ecosystem, p.source, p.source_version, p.architecture) for p in found]


def _facts(
    os_release: dict[str, str], packages: Sequence[InstalledPackage], hostname: str, source: str, notes: Iterable[str]
) -> HostFacts:
    return HostFacts(
        hostname=hostname,
        os_id=os_release.get("ID", ""),
        os_version=os_release.get("VERSION_ID", ""),
        os_name=os_release.get("PRETTY_NAME", os_release.get("NAME", "")),
        ecosystems=_ecosystems(os_release),
        packages=tuple(packages),
        source=source,
        notes=tuple(notes),
    )


def _ecosystems(os_release: dict[str, str]) -> tuple[str, ...]:
    return ecosystems_of_os(os_release.get("ID", ""), os_release.get("VERSION_ID", ""))


def facts_from_root(root: Path, hostname: str | None = None, source: str | None = None) -> HostFacts:
    """Facts of the system installed under `root` ("/" for this machine): dpkg, apk and rpm databases."""
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a directory")
    os_release, _ = _os_release_under(root)
    ecosystems = _ecosystems(os_release)
    primary = ecosystems[0] if ecosystems else f"{os_release.get('ID', 'unknown')}:{os_release.get('VERSION_ID', '')}"
    packages: list[InstalledPackage] = []
    notes: list[str] = []
    status = root / dpkg_collector.STATUS_PATH
    if status.is_file():
        packages += _dpkg_packages(_read(status), str(status), primary)
    installed = root / apk_collector.INSTALLED_PATH
    if installed.is_file():
        try:
            apks = apk_collector.parse_installed(_read(installed), str(installed))
        except CollectorError as exc:
            raise InvalidInput(str(exc)) from None
        packages += [InstalledPackage(p.name, p.version, primary, p.origin, p.version, p.architecture) for p in apks]
    if (root / "var/lib/rpm").is_dir() or (root / "usr/lib/sysimage/rpm").is_dir():
        try:
            rpms = rpm_collector.query_installed(None if root == Path("/") else str(root))
            packages += [InstalledPackage(p.name, p.evr, primary, None, None, p.architecture) for p in rpms]
        except CollectorError as exc:
            notes.append(f"RPM packages not read: {exc}")
    if not packages and not notes:
        notes.append(f"no package database found under {root}")
    name = hostname or os_release.get("HOSTNAME") or root.name or "unknown"
    return _facts(os_release, packages, name, source or f"root {root}", notes)


def facts_local() -> HostFacts:
    """Facts of this machine."""
    return facts_from_root(Path("/"), hostname=socket.gethostname(), source="local")


def facts_from_files(dpkg_status: Path, os_release_file: Path) -> HostFacts:
    """Facts from a saved dpkg status file and the os-release file of the same host."""
    os_release = _parse_os_release(_read(os_release_file), str(os_release_file))
    ecosystems = _ecosystems(os_release)
    primary = ecosystems[0] if ecosystems else f"{os_release.get('ID', 'unknown')}:{os_release.get('VERSION_ID', '')}"
    packages = _dpkg_packages(_read(dpkg_status), str(dpkg_status), primary)
    return _facts(os_release, packages, dpkg_status.stem, f"files {dpkg_status} + {os_release_file}", ())


# -- scanning -----------------------------------------------------------------------------------------


def rate_advisory(advisory: Advisory) -> Rating:
    """The worst rating among the record's CVSS vectors and its own severity word; UNKNOWN when it has none."""
    from cvss import CVSS3, CVSS4
    from cvss.exceptions import CVSSError

    ratings: list[Rating] = []
    for statement in advisory.severity:
        try:
            if statement.type == "CVSS_V3":
                ratings.append(rating_for_score(float(CVSS3(statement.score).base_score)))
            elif statement.type == "CVSS_V4":
                ratings.append(rating_for_score(float(CVSS4(statement.score).base_score)))
            else:
                ratings.append(rating_for_word(statement.score))
        except (CVSSError, ValueError):
            continue  # a malformed vector says nothing; other statements may
    word = advisory.database_specific.get("severity")
    if isinstance(word, str):
        ratings.append(rating_for_word(word))
    return worst(ratings)


def _group(matches: Sequence[Match]) -> list[Finding]:
    groups: dict[tuple[str, str, str | None, str], list[Match]] = {}
    for match in matches:
        package = match.package
        groups.setdefault((package.name, package.version, match.fixed_version, package.ecosystem), []).append(match)
    findings: list[Finding] = []
    for (name, version, fixed, ecosystem), members in groups.items():
        advisories = {m.advisory.id: m.advisory for m in members}
        cves = sorted({c for a in advisories.values() for c in a.cve_ids})
        severity = worst([rate_advisory(a) for a in advisories.values()])
        findings.append(
            Finding(
                package=name,
                source_package=members[0].package.matched_name,
                installed_version=version,
                fixed_version=fixed,
                advisory_ids=tuple(sorted(advisories)),
                cve_ids=tuple(cves),
                severity=severity,
                ecosystem=ecosystem,
            )
        )
    findings.sort(key=lambda f: (-RANK[f.severity], f.package, f.fixed_version or ""))
    return findings


def scan(facts: HostFacts, advisories: Sequence[Advisory]) -> ScanReport:
    """Match the host's packages against `advisories`; never raises for a single bad version."""
    primary = facts.ecosystems[0] if facts.ecosystems else None
    mapping = {e: primary for e in facts.ecosystems} if primary else {}
    report: MatchReport = match_inventory(facts.packages, index_advisories(advisories, mapping))
    if primary is None:  # the packages' ecosystem is only a stand-in name: report the system, once
        unknown = [f"operating system {facts.os_id or 'unknown'} {facts.os_version}".strip()]
    else:
        unknown = list(report.unknown_ecosystems)
    return ScanReport(
        host=facts,
        findings=tuple(_group(report.matches)),
        skipped=tuple((s.package.name, s.package.version, s.reason) for s in report.skipped),
        unknown=tuple(unknown),
        advisories_loaded=len(advisories),
        evaluated_versions=report.evaluated_versions,
    )


def report_json(report: ScanReport) -> dict[str, object]:
    """The JSON document `patchday scan --format json` prints (schema: docs/scan.schema.json)."""
    host = report.host
    return {
        "host": {
            "hostname": host.hostname,
            "os": {"id": host.os_id, "version": host.os_version, "name": host.os_name},
            "ecosystems": list(host.ecosystems),
            "source": host.source,
            "notes": list(host.notes),
        },
        "findings": [
            {
                "package": f.package,
                "source_package": f.source_package,
                "installed_version": f.installed_version,
                "fixed_version": f.fixed_version,
                "advisory_ids": list(f.advisory_ids),
                "cve_ids": list(f.cve_ids),
                "severity": f.severity.value,
                "ecosystem": f.ecosystem,
            }
            for f in report.findings
        ],
        "skipped": [{"package": p, "version": v, "reason": r} for p, v, r in report.skipped],
        "unknown": list(report.unknown),
        "summary": report.summary,
    }
