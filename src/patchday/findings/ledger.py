"""The findings ledger: one row per (host, vulnerability, package), kept equal to what matching says.

`reconcile_hosts` compares each host's current exposures (its inventory joined with the Match
table, plus CVEs that only a pending update's changelog names) with its findings: new exposures
open findings (or reopen fixed ones), vanished ones become fixed, the rest are refreshed. It is
incremental by host; `reconcile_all` is the full re-evaluation and gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from patchday.advisories.models import Advisory, AdvisoryCve, AffectedRange
from patchday.core.errors import InvalidVersion
from patchday.core.osv import scheme_for
from patchday.findings.models import Confidence, Finding, FindingEvent, FindingStatus, Match
from patchday.inventory.models import Host, HostPackage, PackageVersion, PendingUpdate
from patchday.server.bulk import json_value, update_rows

CHUNK = 500
Key = tuple[str, str, str]  # vulnerability, ecosystem, package
ACTIVE = (FindingStatus.OPEN, FindingStatus.ACCEPTED, FindingStatus.NOT_AFFECTED)


@dataclass(slots=True)
class Exposure:
    """What one host is exposed to through one package for one vulnerability, as of now."""

    installed_version: str
    confidence: str = Confidence.ADVISORY
    fixed_versions: set[str] = field(default_factory=set)
    unfixed: bool = False  # some matching range has no fixed version
    advisory_ids: set[str] = field(default_factory=set)
    fix_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class LedgerChange:
    opened: int = 0
    reopened: int = 0
    fixed: int = 0
    refreshed: int = 0

    def __add__(self, other: LedgerChange) -> LedgerChange:
        return LedgerChange(
            self.opened + other.opened,
            self.reopened + other.reopened,
            self.fixed + other.fixed,
            self.refreshed + other.refreshed,
        )


def _in_chunks(values: Iterable[int], size: int = 1000) -> Iterable[list[int]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _advisory_exposures(host_ids: Sequence[int]) -> dict[int, dict[Key, Exposure]]:
    """Each host's exposures from its inventory and the Match table.

    Simple indexed lookups assembled here rather than one six-way join: a join's plan depends on the
    planner's statistics, and with stale ones (tables filled since the last ANALYZE) PostgreSQL chose
    nested loops that took minutes; each lookup below is linear whatever the statistics say.
    """
    found: dict[int, dict[Key, Exposure]] = {h: {} for h in host_ids}
    installed = list(HostPackage.objects.filter(host_id__in=host_ids).values_list("host_id", "package_version_id"))
    matches: dict[int, list[tuple[int, int]]] = {}
    for chunk in _in_chunks(pv for _, pv in installed):
        for pv, range_id, advisory in Match.objects.filter(package_version_id__in=chunk).values_list(
            "package_version_id", "affected_range_id", "advisory_id"
        ):
            matches.setdefault(pv, []).append((range_id, advisory))
    if not matches:
        return found
    versions: dict[int, tuple[str, str, str]] = {}
    for chunk in _in_chunks(matches):
        for pk, *rest in PackageVersion.objects.filter(pk__in=chunk).values_list(
            "pk", "ecosystem", "match_name", "match_version"
        ):
            versions[pk] = (rest[0], rest[1], rest[2])
    fixes: dict[int, str] = {}
    for chunk in _in_chunks(r for pairs in matches.values() for r, _ in pairs):
        fixes.update(AffectedRange.objects.filter(pk__in=chunk).values_list("pk", "fixed"))
    advisories: dict[int, tuple[str, datetime | None]] = {}
    cves: dict[int, list[str]] = {}
    for chunk in _in_chunks(a for pairs in matches.values() for _, a in pairs):
        for pk, advisory_id, published in Advisory.objects.filter(pk__in=chunk).values_list(
            "pk", "advisory_id", "published"
        ):
            advisories[pk] = (advisory_id, published)
        for advisory, cve in AdvisoryCve.objects.filter(advisory_id__in=chunk).values_list("advisory_id", "cve_id"):
            cves.setdefault(advisory, []).append(cve)
    for host_id, pv in installed:
        for range_id, advisory in matches.get(pv, ()):
            ecosystem, package, version = versions[pv]
            advisory_id, published = advisories[advisory]
            fixed = fixes.get(range_id, "")
            for vulnerability in cves.get(advisory) or [advisory_id]:
                key = (vulnerability, ecosystem, package)
                exposure = found[host_id].setdefault(key, Exposure(version))
                exposure.advisory_ids.add(advisory_id)
                if fixed:
                    exposure.fixed_versions.add(fixed)
                    if published and (exposure.fix_since is None or published < exposure.fix_since):
                        exposure.fix_since = published
                else:
                    exposure.unfixed = True
    return found


def _changelog_exposures(host_ids: Sequence[int], known: dict[int, dict[Key, Exposure]]) -> None:
    """CVEs only a pending update's changelog names become lower-confidence exposures of that update's source."""
    hosts = {h.pk: h.ecosystem for h in Host.objects.filter(pk__in=host_ids).only("pk", "ecosystem")}
    updates = PendingUpdate.objects.filter(host_id__in=host_ids).exclude(changelog_cves=[])
    for update in updates:
        ecosystem = hosts.get(update.host_id, "")
        package = update.source or update.name
        exposures = known[update.host_id]
        known_cves = {k[0] for k in exposures if k[2] == package}
        for cve in update.changelog_cves:
            if cve in known_cves:
                continue
            exposures.setdefault(
                (cve, ecosystem, package),
                Exposure(
                    update.installed,
                    confidence=Confidence.CHANGELOG,
                    fixed_versions={update.source_version or update.candidate},
                ),
            )


def _lowest_complete_fix(ecosystem: str, exposure: Exposure) -> str:
    """The version that leaves every matching range: the highest fixed version ("" when none is published)."""
    if not exposure.fixed_versions:
        return ""
    scheme = scheme_for(ecosystem)
    if scheme is None:
        return sorted(exposure.fixed_versions)[-1]
    try:
        return max(exposure.fixed_versions, key=scheme.sort_key)
    except InvalidVersion:
        return sorted(exposure.fixed_versions)[-1]


def _fixing_updates(host_ids: Sequence[int]) -> dict[tuple[int, str], list[tuple[str, str]]]:
    """(host, source package) -> [("name candidate", candidate source version)] the host's manager offers."""
    found: dict[tuple[int, str], list[tuple[str, str]]] = {}
    rows = PendingUpdate.objects.filter(host_id__in=host_ids).values_list(
        "host_id", "name", "source", "candidate", "source_version"
    )
    for host_id, name, source, candidate, source_version in rows:
        found.setdefault((host_id, source or name), []).append((f"{name} {candidate}", source_version or candidate))
    return found


def _fixing_update(ecosystem: str, fixed: str, offers: list[tuple[str, str]]) -> str:
    """The first pending update that reaches `fixed` (an update to a version still affected fixes nothing)."""
    if not fixed or not offers:
        return ""
    scheme = scheme_for(ecosystem)
    for label, version in offers:
        try:
            if scheme is not None and scheme.sort_key(version) >= scheme.sort_key(fixed):
                return label
        except InvalidVersion:
            continue
    return ""


def _event(finding: Finding, old: str, new: str, reason: str, now: datetime) -> FindingEvent:
    return FindingEvent(finding=finding, at=now, from_status=old, to_status=new, reason=reason[:255])


def reconcile_hosts(
    host_ids: Iterable[int],
    *,
    verified: bool,
    reason: str,
    now: datetime | None = None,
    fixed_by: int | None = None,
) -> LedgerChange:
    """Bring these hosts' findings in line with their current exposures.

    `verified` says the call follows a fresh inventory of the host: vanished findings are then
    fixed and verified by re-inventory. After an advisory change they are fixed, unverified.
    `fixed_by` names the rollout whose job the inventory verifies: findings fixed now record it.
    """
    from patchday.findings import exceptions, priority, vex
    from patchday.findings.queries import mark_for_refresh

    ids = sorted(set(host_ids))
    total = LedgerChange()
    packages: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        total = total + _reconcile_chunk(chunk, verified, reason, now or timezone.now(), fixed_by)
        exceptions.apply_active(chunk, now, refresh_queue=False)
        vex.apply_stored(chunk, now, refresh_queue=False)
        priority.reprioritize_hosts(chunk, refresh_queue=False)
        packages.update(Finding.objects.filter(host_id__in=chunk).values_list("package", flat=True).distinct())
    mark_for_refresh(packages)
    return total


def _reconcile_chunk(
    ids: Sequence[int], verified: bool, reason: str, now: datetime, fixed_by: int | None = None
) -> LedgerChange:
    with transaction.atomic():
        exposures = _advisory_exposures(ids)
        _changelog_exposures(ids, exposures)
        updates = _fixing_updates(ids)
        existing: dict[int, dict[Key, Finding]] = {h: {} for h in ids}
        for finding in Finding.objects.filter(host_id__in=ids):
            existing[finding.host_id][(finding.vulnerability, finding.ecosystem, finding.package)] = finding
        creates: list[Finding] = []
        saves: list[Finding] = []
        seen: list[int] = []  # unchanged findings: only last_detected_at moves, in one statement
        events: list[FindingEvent] = []
        opened = reopened = fixed = refreshed = 0
        for host_id in ids:
            current, known = exposures[host_id], existing[host_id]
            for key, exposure in current.items():
                vulnerability, ecosystem, package = key
                values = {
                    "installed_version": exposure.installed_version,
                    "fixed_version": _lowest_complete_fix(ecosystem, exposure),
                    "fixing_update": _fixing_update(
                        ecosystem, _lowest_complete_fix(ecosystem, exposure), updates.get((host_id, package), [])
                    ),
                    "advisory_ids": sorted(exposure.advisory_ids),
                    "confidence": exposure.confidence,
                }
                if key not in known:
                    creates.append(
                        Finding(
                            host_id=host_id,
                            vulnerability=vulnerability,
                            ecosystem=ecosystem,
                            package=package,
                            first_detected_at=now,
                            last_detected_at=now,
                            status_changed_at=now,
                            fix_available_since=exposure.fix_since,
                            **values,
                        )
                    )
                    opened += 1
                    continue
                finding = known[key]
                changed = any(getattr(finding, name) != value for name, value in values.items())
                for name, value in values.items():
                    setattr(finding, name, value)
                finding.last_detected_at = now
                if finding.fix_available_since is None and exposure.fix_since is not None:
                    finding.fix_available_since, changed = exposure.fix_since, True
                if finding.status == FindingStatus.FIXED:
                    events.append(_event(finding, finding.status, FindingStatus.OPEN, f"detected again: {reason}", now))
                    finding.status, finding.status_changed_at, finding.reopened_at = FindingStatus.OPEN, now, now
                    finding.fixed_at, finding.fix_verified, finding.fixed_by_rollout = None, False, None
                    reopened += 1
                else:
                    refreshed += 1
                    if not changed:
                        seen.append(finding.pk)
                        continue
                saves.append(finding)
            for key, finding in known.items():
                if key in current or finding.status not in ACTIVE:
                    continue
                why = "no longer installed in an affected version" if verified else "no advisory applies any more"
                events.append(_event(finding, finding.status, FindingStatus.FIXED, f"{why}: {reason}", now))
                finding.status, finding.status_changed_at = FindingStatus.FIXED, now
                finding.fixed_at, finding.fix_verified = now, verified
                finding.fixed_by_rollout = fixed_by if verified else None
                saves.append(finding)
                fixed += 1
        created = Finding.objects.bulk_create(creates, batch_size=1000)
        if any(f.pk is None for f in created):  # no RETURNING: read the new rows' ids back
            created = list(Finding.objects.filter(host_id__in=ids, first_detected_at=now, status=FindingStatus.OPEN))
        events += [_event(f, "", FindingStatus.OPEN, f"detected: {reason}", now) for f in created]
        _save(saves)
        for start in range(0, len(seen), CHUNK):
            Finding.objects.filter(pk__in=seen[start : start + CHUNK]).update(last_detected_at=now)
        FindingEvent.objects.bulk_create(events, batch_size=1000)
    return LedgerChange(opened, reopened, fixed, refreshed)


_SAVED = (
    "installed_version", "fixed_version", "fixing_update", "advisory_ids", "confidence", "status", "last_detected_at",
    "fix_available_since", "fixed_at", "fix_verified", "reopened_at", "status_changed_at", "fixed_by_rollout",
)  # fmt: skip


def _save(findings: list[Finding]) -> None:
    """Write the ledger's columns of changed findings (raw: Django's bulk_update cost more than the writes)."""
    ops = connection.ops
    rows = []
    for f in findings:
        values = []
        for column in _SAVED:
            value = getattr(f, column)
            if column == "advisory_ids":
                value = json_value(value)
            elif column in ("last_detected_at", "fix_available_since", "fixed_at", "reopened_at", "status_changed_at"):
                value = ops.adapt_datetimefield_value(value)
            values.append(value)
        rows.append((*values, f.pk))
    update_rows("findings_finding", _SAVED, rows)


def hosts_with_packages(packages: Iterable[tuple[str, str]]) -> list[int]:
    """Hosts that have any version of these (ecosystem, advisory package name) pairs (two indexed lookups)."""
    by_ecosystem: dict[str, set[str]] = {}
    for ecosystem, name in packages:
        by_ecosystem.setdefault(ecosystem, set()).add(name)
    version_ids: set[int] = set()
    for ecosystem, names in by_ecosystem.items():
        ordered = sorted(names)
        for start in range(0, len(ordered), CHUNK):
            version_ids.update(
                PackageVersion.objects.filter(
                    ecosystem=ecosystem, match_name__in=ordered[start : start + CHUNK]
                ).values_list("pk", flat=True)
            )
    found: set[int] = set()
    for chunk in _in_chunks(version_ids):
        found.update(HostPackage.objects.filter(package_version_id__in=chunk).values_list("host_id", flat=True))
    return sorted(found)


def reconcile_all(reason: str = "full re-evaluation") -> LedgerChange:
    """Every host (the full re-evaluation): the same result as the incremental updates."""
    return reconcile_hosts(Host.objects.values_list("pk", flat=True), verified=False, reason=reason)
