"""The database matcher: reconcile the affected-versions table (Match) with inventory and advisories.

Matching is an indexed range join between the fleet's distinct package versions and the
advisories' affected ranges, over stored sort keys, in the same SQL on SQLite and PostgreSQL.
It is a reconciliation: the table ends equal to what the join says, so re-running on unchanged
data changes nothing. Each distinct version is evaluated once however many hosts have it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from django.db import connection, transaction
from django.utils import timezone

from patchday.findings.models import Match

CHUNK = 500

_JOIN = """
SELECT pv.id, r.id, r.advisory_id
FROM inventory_packageversion pv
JOIN advisories_affectedrange r ON r.ecosystem = pv.ecosystem AND r.package = pv.match_name
JOIN advisories_advisory a ON a.id = r.advisory_id
WHERE pv.match_key IS NOT NULL
  AND r.introduced_key IS NOT NULL
  AND a.withdrawn IS NULL
  AND pv.match_key >= r.introduced_key
  AND (r.fixed_key IS NULL OR pv.match_key < r.fixed_key)
  AND (r.last_affected_key IS NULL OR pv.match_key <= r.last_affected_key)
  AND (r.limit_key IS NULL OR pv.match_key < r.limit_key)
"""


_EXISTING = """
SELECT m.package_version_id, m.affected_range_id, m.advisory_id FROM findings_match m
JOIN inventory_packageversion pv ON pv.id = m.package_version_id
JOIN advisories_affectedrange r ON r.id = m.affected_range_id WHERE 1=1
"""


@dataclass(frozen=True, slots=True)
class MatchChange:
    added: int
    removed: int
    total_in_scope: int


Row = tuple[int, int, int]
Param: TypeAlias = str | int


def _query(extra: str = "", params: Sequence[Param] = ()) -> set[Row]:
    with connection.cursor() as cursor:
        cursor.execute(_JOIN + extra, list(params))
        return {(int(pv), int(rng), int(adv)) for pv, rng, adv in cursor.fetchall()}


def _apply(desired: set[Row], existing: set[Row]) -> MatchChange:
    stale = existing - desired
    fresh = desired - existing
    stale_pairs = [(pv, rng) for pv, rng, _ in stale]
    for start in range(0, len(stale_pairs), CHUNK):
        chunk = stale_pairs[start : start + CHUNK]
        by_version: dict[int, list[int]] = {}
        for pv, rng in chunk:
            by_version.setdefault(pv, []).append(rng)
        for pv, ranges in by_version.items():
            Match.objects.filter(package_version_id=pv, affected_range_id__in=ranges).delete()
    now = timezone.now()
    Match.objects.bulk_create(
        [
            Match(package_version_id=pv, affected_range_id=rng, advisory_id=adv, matched_at=now)
            for pv, rng, adv in fresh
        ],
        batch_size=2000,
    )
    return MatchChange(added=len(fresh), removed=len(stale), total_in_scope=len(desired))


def _existing(filter_sql: str = "", params: Sequence[Param] = ()) -> set[Row]:
    sql = _EXISTING + filter_sql  # constant fragments only; every value travels as a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return {(int(pv), int(rng), int(adv)) for pv, rng, adv in cursor.fetchall()}


def rematch_all() -> MatchChange:
    """Re-evaluate every distinct package version against every range (the full re-evaluation)."""
    with transaction.atomic():
        return _apply(_query(), _existing())


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def rematch_versions(version_ids: Iterable[int]) -> MatchChange:
    """Re-evaluate only these PackageVersion rows (new versions from a host's check-in)."""
    ids = sorted(set(version_ids))
    added = removed = total = 0
    with transaction.atomic():
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            where = f" AND pv.id IN ({_placeholders(len(chunk))})"
            change = _apply(_query(where, chunk), _existing(where, chunk))
            added, removed, total = added + change.added, removed + change.removed, total + change.total_in_scope
    return MatchChange(added, removed, total)


def rematch_packages(packages: Iterable[tuple[str, str]]) -> MatchChange:
    """Re-evaluate the versions of these (ecosystem, package name) pairs (after their advisories changed)."""
    by_ecosystem: dict[str, list[str]] = {}
    for ecosystem, name in set(packages):
        by_ecosystem.setdefault(ecosystem, []).append(name)
    added = removed = total = 0
    with transaction.atomic():
        for ecosystem, names in by_ecosystem.items():
            names.sort()
            for start in range(0, len(names), CHUNK):
                chunk = names[start : start + CHUNK]
                where = f" AND pv.ecosystem = %s AND pv.match_name IN ({_placeholders(len(chunk))})"
                params = [ecosystem, *chunk]
                change = _apply(_query(where, params), _existing(where, params))
                added, removed = added + change.added, removed + change.removed
                total += change.total_in_scope
    return MatchChange(added, removed, total)


@dataclass(frozen=True, slots=True)
class HostMatch:
    """What the database says one host is exposed to: a package inside one advisory's range."""

    host: str
    package: str
    installed_version: str
    advisory_id: str
    fixed_version: str | None


def host_matches(host_names: Sequence[str] | None = None) -> list[HostMatch]:
    """Matches of hosts (all when None), reached through their inventory."""
    sql = (
        "SELECT h.name, pv.name, pv.version, a.advisory_id, r.fixed FROM inventory_host h "
        "JOIN inventory_hostpackage hp ON hp.host_id = h.id "
        "JOIN inventory_packageversion pv ON pv.id = hp.package_version_id "
        "JOIN findings_match m ON m.package_version_id = hp.package_version_id "
        "JOIN advisories_affectedrange r ON r.id = m.affected_range_id "
        "JOIN advisories_advisory a ON a.id = m.advisory_id"
    )
    params: list[Param] = []
    if host_names is not None:
        sql += f" WHERE h.name IN ({_placeholders(len(host_names))})"
        params = list(host_names)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [HostMatch(h, p, v, a, f or None) for h, p, v, a, f in cursor.fetchall()]
