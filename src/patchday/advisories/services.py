"""Use cases of advisories: import OSV records atomically, with every affected range keyed for matching."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from patchday.advisories.models import Advisory, AdvisoryCve, AffectedRange
from patchday.audit import services as audit
from patchday.core import osv
from patchday.core.audit import Actor
from patchday.core.errors import InvalidVersion
from patchday.core.versions import VersionScheme

CHUNK = 500
# Bump when the way ranges are derived from records changes: every record is then re-derived on import.
DERIVATION_VERSION = 2


@dataclass(frozen=True, slots=True)
class ImportReport:
    added: int
    updated: int
    unchanged: int
    ranges: int
    unkeyed_ranges: int  # ranges whose versions do not parse under their scheme (kept, never matched)
    unknown_ecosystems: tuple[str, ...]
    touched: frozenset[tuple[str, str]]  # (ecosystem, package) whose ranges changed


def content_hash(record: osv.Advisory) -> str:
    """SHA-256 of everything patchday keeps of a record; equal hashes mean a re-import changes nothing.

    Compared instead of `modified`, which some sources do not have (the Debian tracker lists) or
    do not bump for every edit.
    """
    document = {"derivation": DERIVATION_VERSION, "record": asdict(record)}
    payload = json.dumps(document, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _jsonable(value: object) -> object:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _key(scheme: VersionScheme, version: str | None) -> bytes | None:
    return None if version is None else scheme.sort_key(version)


def _range_rows(advisory: Advisory, record: osv.Advisory, unknown: set[str]) -> list[AffectedRange]:
    rows: list[AffectedRange] = []
    for package in record.affected:
        scheme = osv.scheme_for(package.ecosystem)
        intervals = list(package.ranges) + [
            osv.AffectedRange(v, last_affected=v) for v in sorted(package.versions_to_match)
        ]
        for interval in intervals:
            row = AffectedRange(
                advisory=advisory,
                ecosystem=package.ecosystem,
                package=package.name,
                introduced=interval.introduced or "",
                fixed=interval.fixed or "",
                last_affected=interval.last_affected or "",
                limit_version=interval.limit or "",
            )
            if scheme is None:
                unknown.add(package.ecosystem)
                row.key_error = f"unknown ecosystem {package.ecosystem}"
            else:
                try:
                    row.introduced_key = b"" if interval.introduced is None else scheme.sort_key(interval.introduced)
                    row.fixed_key = _key(scheme, interval.fixed)
                    row.last_affected_key = _key(scheme, interval.last_affected)
                    row.limit_key = _key(scheme, interval.limit)
                except InvalidVersion as exc:
                    row.introduced_key = row.fixed_key = row.last_affected_key = row.limit_key = None
                    row.key_error = str(exc)[:255]
            rows.append(row)
    return rows


def _existing(ids: Sequence[str]) -> dict[str, Advisory]:
    found: dict[str, Advisory] = {}
    for start in range(0, len(ids), CHUNK):
        for row in Advisory.objects.filter(advisory_id__in=ids[start : start + CHUNK]):
            found[row.advisory_id] = row
    return found


def import_advisories(actor: Actor, records: Iterable[osv.Advisory], source: str) -> ImportReport:
    """Store `records` (all or nothing), skipping those whose `modified` is unchanged; re-key their ranges.

    The caller rematches the (ecosystem, package) pairs in `touched`.
    """
    records = list({r.id: r for r in records}.values())  # a later duplicate wins
    now = timezone.now()
    added = updated = unchanged = 0
    unknown: set[str] = set()
    touched: set[tuple[str, str]] = set()
    new_ranges: list[AffectedRange] = []
    new_cves: list[AdvisoryCve] = []
    with transaction.atomic():
        existing = _existing([r.id for r in records])
        for record in records:
            row = existing.get(record.id)
            digest = content_hash(record)
            if row is not None and row.content_hash == digest:
                unchanged += 1
                continue
            if row is None:
                row = Advisory(advisory_id=record.id)
                added += 1
            else:
                touched.update(row.ranges.values_list("ecosystem", "package"))
                row.ranges.all().delete()
                row.cves.all().delete()
                updated += 1
            row.source = source[:64]
            row.modified, row.published, row.withdrawn = record.modified, record.published, record.withdrawn
            row.summary = record.summary
            row.cve_ids = list(record.cve_ids)
            row.aliases = list(record.aliases)
            row.severity = [{"type": s.type, "score": s.score} for s in record.severity]
            row.content_hash = digest
            row.imported_at = now
            row.save()
            new_cves.extend(AdvisoryCve(advisory=row, cve_id=cve) for cve in record.cve_ids)
            ranges = _range_rows(row, record, unknown)
            touched.update((r.ecosystem, r.package) for r in ranges)
            new_ranges.extend(ranges)
        AffectedRange.objects.bulk_create(new_ranges, batch_size=2000)
        AdvisoryCve.objects.bulk_create(new_cves, batch_size=2000)
        report = ImportReport(
            added=added,
            updated=updated,
            unchanged=unchanged,
            ranges=len(new_ranges),
            unkeyed_ranges=sum(1 for r in new_ranges if r.key_error),
            unknown_ecosystems=tuple(sorted(unknown)),
            touched=frozenset(touched),
        )
        audit.record(
            actor,
            "advisories.import",
            "feed",
            source,
            {
                "added": added,
                "updated": updated,
                "unchanged": unchanged,
                "ranges": report.ranges,
                "unkeyed_ranges": report.unkeyed_ranges,
            },
        )
    return report


def stored_advisories(ecosystems: Iterable[str]) -> list[osv.Advisory]:
    """The stored, non-withdrawn advisories with ranges in `ecosystems`, as core values (for in-memory scans)."""
    wanted = list(ecosystems)
    ranges = (
        AffectedRange.objects.filter(ecosystem__in=wanted, advisory__withdrawn__isnull=True)
        .select_related("advisory")
        .order_by("advisory_id", "id")
    )
    grouped: dict[int, tuple[Advisory, dict[tuple[str, str], list[osv.AffectedRange]]]] = {}
    for row in ranges:
        _, packages = grouped.setdefault(row.advisory_id, (row.advisory, {}))
        packages.setdefault((row.ecosystem, row.package), []).append(
            osv.AffectedRange(
                row.introduced or None, row.fixed or None, row.last_affected or None, row.limit_version or None
            )
        )
    return [
        osv.Advisory(
            id=advisory.advisory_id,
            modified=advisory.modified,
            published=advisory.published,
            withdrawn=None,
            aliases=tuple(advisory.aliases),
            upstream=tuple(advisory.cve_ids),
            related=(),
            summary=advisory.summary,
            details="",
            severity=tuple(osv.Severity(s["type"], s["score"]) for s in advisory.severity),
            affected=tuple(
                osv.AffectedPackage(ecosystem, name, tuple(intervals))
                for (ecosystem, name), intervals in packages.items()
            ),
        )
        for advisory, packages in grouped.values()
    ]
