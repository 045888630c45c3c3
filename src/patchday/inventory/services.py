"""Use cases of inventory: record what a host has installed, storing each distinct package version once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from patchday.audit import services as audit
from patchday.core.audit import Actor
from patchday.core.errors import InvalidVersion
from patchday.core.matching import InstalledPackage
from patchday.core.osv import scheme_for
from patchday.inventory.models import Host, HostPackage, PackageVersion

CHUNK = 400
Identity = tuple[str, str, str, str, str]  # ecosystem, name, version, source name, source version


@dataclass(frozen=True, slots=True)
class HostIdentity:
    name: str
    os_id: str = ""
    os_version: str = ""
    os_name: str = ""
    ecosystem: str = ""


@dataclass(frozen=True, slots=True)
class InventoryChange:
    host: Host
    added: int
    removed: int
    new_versions: tuple[int, ...]  # PackageVersion ids created now: the only ones needing a match
    orphaned_versions: int  # PackageVersion rows no host has any more, removed with their matches


def _identity(p: InstalledPackage) -> Identity:
    return (p.ecosystem, p.name, p.version, p.source_name or "", p.source_version or "")


def _new_version(identity: Identity) -> PackageVersion:
    ecosystem, name, version, source_name, source_version = identity
    row = PackageVersion(
        ecosystem=ecosystem,
        name=name,
        version=version,
        source_name=source_name,
        source_version=source_version,
        match_name=source_name or name,
        match_version=source_version or version,
    )
    scheme = scheme_for(ecosystem)
    if scheme is None:
        row.key_error = f"unknown ecosystem {ecosystem}"
    else:
        try:
            row.match_key = scheme.sort_key(row.match_version)
        except InvalidVersion as exc:
            row.key_error = str(exc)[:255]
    return row


def _version_ids(identities: set[Identity]) -> dict[Identity, int]:
    """Ids of the PackageVersion rows for `identities`, creating the missing ones."""
    found: dict[Identity, int] = {}
    by_ecosystem: dict[str, list[str]] = {}
    for identity in identities:
        by_ecosystem.setdefault(identity[0], []).append(identity[1])
    for ecosystem, names in by_ecosystem.items():
        unique = sorted(set(names))
        for start in range(0, len(unique), CHUNK):
            rows = PackageVersion.objects.filter(ecosystem=ecosystem, name__in=unique[start : start + CHUNK])
            for pk, *rest in rows.values_list("id", "ecosystem", "name", "version", "source_name", "source_version"):
                key = tuple(rest)
                if key in identities:
                    found[key] = pk
    missing = [_new_version(i) for i in identities if i not in found]
    if missing:
        PackageVersion.objects.bulk_create(missing, batch_size=1000)
        if any(m.pk is None for m in missing):  # backends without RETURNING: look the new rows up again
            return _version_ids(identities)
        found.update({_identity_of(m): m.pk for m in missing})
    return found


def _identity_of(row: PackageVersion) -> Identity:
    return (row.ecosystem, row.name, row.version, row.source_name, row.source_version)


def record_inventory(
    actor: Actor, identity: HostIdentity, packages: Sequence[InstalledPackage], now: datetime
) -> InventoryChange:
    """Make the host's stored packages equal `packages` (a full inventory), in one transaction.

    Returns which PackageVersion rows are new, so the caller matches only those.
    """
    wanted = {(_identity(p), p.arch or "") for p in packages}
    with transaction.atomic():
        host, created = Host.objects.get_or_create(name=identity.name, defaults={"created_at": now})
        host.os_id, host.os_version, host.os_name = identity.os_id, identity.os_version, identity.os_name
        host.ecosystem = identity.ecosystem
        host.inventory_at = now
        host.save()
        before = {(pv, arch) for pv, arch in host.packages.values_list("package_version_id", "arch")}
        existing_ids = {pv for pv, _ in before}
        ids = _version_ids({i for i, _ in wanted})
        desired = {(ids[i], arch) for i, arch in wanted}
        removed = before - desired
        added = desired - before
        for chunk in _chunks(sorted(removed)):
            condition = Q()
            for pv, arch in chunk:
                condition |= Q(package_version_id=pv, arch=arch)
            host.packages.filter(condition).delete()
        HostPackage.objects.bulk_create(
            [HostPackage(host=host, package_version_id=pv, arch=arch) for pv, arch in added], batch_size=2000
        )
        gone = {pv for pv, _ in removed} - {pv for pv, _ in desired}
        orphaned = _delete_orphans(gone)
        new_versions = tuple(sorted({pv for pv, _ in added} - existing_ids))
        audit.record(
            actor,
            "host.inventory",
            "host",
            host.name,
            {"created": created, "packages": len(desired), "added": len(added), "removed": len(removed)},
        )
    return InventoryChange(host, len(added), len(removed), new_versions, orphaned)


def _chunks(items: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    return [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]


def _delete_orphans(candidates: set[int]) -> int:
    """Delete PackageVersion rows among `candidates` that no host has any more (their matches go too)."""
    if not candidates:
        return 0
    in_use = set(
        HostPackage.objects.filter(package_version_id__in=candidates).values_list("package_version_id", flat=True)
    )
    orphans = candidates - in_use
    PackageVersion.objects.filter(id__in=orphans).delete()  # their matches cascade
    return len(orphans)
