"""The database matcher: reconcile the affected-versions table (Match) with inventory and advisories.

Matching is an indexed range join between the fleet's distinct package versions and the
advisories' affected ranges, over stored sort keys, in the same SQL on SQLite and PostgreSQL.
It is a reconciliation: the table ends equal to what the join says, so re-running on unchanged
data changes nothing. Each distinct version is evaluated once however many hosts have it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from django.db import connection, transaction
from django.utils import timezone

CHUNK = 500
Param: TypeAlias = str | int | datetime

# A version is inside a range: the same predicate decides what is inserted and what is deleted.
_INSIDE = """
    pv.match_key IS NOT NULL AND r.introduced_key IS NOT NULL AND a.withdrawn IS NULL
    AND pv.match_key >= r.introduced_key
    AND (r.fixed_key IS NULL OR pv.match_key < r.fixed_key)
    AND (r.last_affected_key IS NULL OR pv.match_key <= r.last_affected_key)
    AND (r.limit_key IS NULL OR pv.match_key < r.limit_key)
"""

_INSERT_MISSING = f"""
INSERT INTO findings_match (package_version_id, affected_range_id, advisory_id, matched_at)
SELECT pv.id, r.id, r.advisory_id, %s
FROM inventory_packageversion pv
JOIN advisories_affectedrange r ON r.ecosystem = pv.ecosystem AND r.package = pv.match_name
JOIN advisories_advisory a ON a.id = r.advisory_id
WHERE {_INSIDE} {{scope}}
  AND NOT EXISTS (
    SELECT 1 FROM findings_match m WHERE m.package_version_id = pv.id AND m.affected_range_id = r.id
  )
"""  # noqa: S608 (constant SQL; every value is a parameter)

_DELETE_STALE = f"""
DELETE FROM findings_match WHERE id IN (
  SELECT m.id FROM findings_match m
  JOIN inventory_packageversion pv ON pv.id = m.package_version_id
  JOIN advisories_affectedrange r ON r.id = m.affected_range_id
  JOIN advisories_advisory a ON a.id = r.advisory_id
  WHERE NOT ({_INSIDE}) {{scope}}
)
"""  # noqa: S608 (constant SQL; every value is a parameter)


@dataclass(frozen=True, slots=True)
class MatchChange:
    added: int
    removed: int


def _reconcile(scope: str = "", params: Sequence[Param] = (), delete_scope: str | None = None) -> MatchChange:
    """Make findings_match equal the range join within `scope` (SQL on pv/r, values as parameters).

    Both statements run inside the database: no row travels to Python, so a full re-evaluation
    costs one anti-join and one predicate check over the table. `delete_scope` restates the scope
    on findings_match's own columns where that lets the planner use its index (PostgreSQL does
    not carry an IN list across a join).
    """
    with connection.cursor() as cursor:
        cursor.execute(_DELETE_STALE.format(scope=scope if delete_scope is None else delete_scope), list(params))
        removed = max(cursor.rowcount, 0)
        cursor.execute(_INSERT_MISSING.format(scope=scope), [timezone.now(), *params])
        added = max(cursor.rowcount, 0)
    return MatchChange(added=added, removed=removed)


def _sum(changes: Iterable[MatchChange]) -> MatchChange:
    added = removed = 0
    for change in changes:
        added, removed = added + change.added, removed + change.removed
    return MatchChange(added, removed)


def rematch_all() -> MatchChange:
    """Re-evaluate every distinct package version against every range (the full re-evaluation)."""
    with transaction.atomic():
        return _reconcile()


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def rematch_versions(version_ids: Iterable[int]) -> MatchChange:
    """Re-evaluate only these PackageVersion rows (new versions from a host's check-in)."""
    ids = sorted(set(version_ids))
    with transaction.atomic():
        return _sum(
            _reconcile(
                f" AND pv.id IN ({_marks(len(chunk))})",
                chunk,
                delete_scope=f" AND m.package_version_id IN ({_marks(len(chunk))})",
            )
            for chunk in (ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK))
        )


def rematch_packages(packages: Iterable[tuple[str, str]]) -> MatchChange:
    """Re-evaluate the versions of these (ecosystem, package name) pairs (after their advisories changed)."""
    by_ecosystem: dict[str, list[str]] = {}
    for ecosystem, name in set(packages):
        by_ecosystem.setdefault(ecosystem, []).append(name)
    changes: list[MatchChange] = []
    with transaction.atomic():
        for ecosystem, names in by_ecosystem.items():
            names.sort()
            for i in range(0, len(names), CHUNK):
                chunk = names[i : i + CHUNK]
                scope = f" AND pv.ecosystem = %s AND pv.match_name IN ({_marks(len(chunk))})"
                changes.append(_reconcile(scope, [ecosystem, *chunk]))
    return _sum(changes)


@dataclass(frozen=True, slots=True)
class HostMatch:
    """What the database says one host is exposed to: a package inside one advisory's range."""

    host: str
    package: str
    installed_version: str
    advisory_id: str
    fixed_version: str | None


def host_matches(host_names: Sequence[str] | None = None) -> list[HostMatch]:
    """Matches of hosts (all when None), reached through their inventory.

    Indexed lookups assembled here, not one five-way join: with planner statistics taken while the
    tables were empty, PostgreSQL ran that join as nested loops for minutes.
    """
    from patchday.advisories.models import Advisory, AffectedRange
    from patchday.findings.models import Match
    from patchday.inventory.models import Host, HostPackage, PackageVersion

    hosts = Host.objects.all() if host_names is None else Host.objects.filter(name__in=list(host_names))
    names = dict(hosts.values_list("pk", "name"))
    installed = list(HostPackage.objects.filter(host_id__in=list(names)).values_list("host_id", "package_version_id"))
    matches: dict[int, list[tuple[int, int]]] = {}
    for chunk in _chunked({pv for _, pv in installed}):
        for pv, range_id, advisory in Match.objects.filter(package_version_id__in=chunk).values_list(
            "package_version_id", "affected_range_id", "advisory_id"
        ):
            matches.setdefault(pv, []).append((range_id, advisory))
    versions: dict[int, tuple[str, str]] = {}
    for chunk in _chunked(set(matches)):
        versions.update(
            (pk, (name, version))
            for pk, name, version in PackageVersion.objects.filter(pk__in=chunk).values_list("pk", "name", "version")
        )
    fixes: dict[int, str] = {}
    advisories: dict[int, str] = {}
    for chunk in _chunked({r for pairs in matches.values() for r, _ in pairs}):
        fixes.update(AffectedRange.objects.filter(pk__in=chunk).values_list("pk", "fixed"))
    for chunk in _chunked({a for pairs in matches.values() for _, a in pairs}):
        advisories.update(Advisory.objects.filter(pk__in=chunk).values_list("pk", "advisory_id"))
    return [
        HostMatch(names[host_id], *versions[pv], advisories[advisory], fixes.get(range_id) or None)
        for host_id, pv in installed
        for range_id, advisory in matches.get(pv, ())
    ]


def _chunked(values: set[int], size: int = 1000) -> list[list[int]]:
    ordered = sorted(values)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]
