"""Use cases of inventory: record what a host has installed, storing each distinct package version once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from patchday.audit import services as audit
from patchday.core.audit import Actor
from patchday.core.errors import Conflict, InvalidInput, InvalidVersion, NotFound
from patchday.core.matching import InstalledPackage
from patchday.core.osv import scheme_for
from patchday.inventory.models import Criticality, Exposure, Host, HostGroup, HostPackage, HostTag, PackageVersion
from patchday.server.bulk import insert_rows

CHUNK = 400
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
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


def _existing_version_ids(identities: set[Identity]) -> dict[Identity, int]:
    found: dict[Identity, int] = {}
    by_ecosystem: dict[str, set[str]] = {}
    for identity in identities:
        by_ecosystem.setdefault(identity[0], set()).add(identity[1])
    for ecosystem, names in by_ecosystem.items():
        unique = sorted(names)
        for start in range(0, len(unique), CHUNK):
            rows = PackageVersion.objects.filter(ecosystem=ecosystem, name__in=unique[start : start + CHUNK])
            for pk, *rest in rows.values_list("id", "ecosystem", "name", "version", "source_name", "source_version"):
                key = tuple(rest)
                if key in identities:
                    found[key] = pk
    return found


def _version_ids(identities: set[Identity]) -> tuple[dict[Identity, int], set[int]]:
    """Ids of the PackageVersion rows for `identities`, creating the missing ones; also which ids are new.

    Two inventories may create the same version at once (PostgreSQL): conflicts are ignored and the
    rows looked up again; the transaction that created a row matches it.
    """
    found = _existing_version_ids(identities)
    missing = {i for i in identities if i not in found}
    if not missing:
        return found, set()
    PackageVersion.objects.bulk_create([_new_version(i) for i in missing], batch_size=1000, ignore_conflicts=True)
    before = set(found.values())
    found = _existing_version_ids(identities)
    created = {pk for identity, pk in found.items() if identity in missing} - before
    return found, created


def _identity_of(row: PackageVersion) -> Identity:
    return (row.ecosystem, row.name, row.version, row.source_name, row.source_version)


@dataclass(frozen=True, slots=True)
class PackageChange:
    added: int  # (package version, arch) pairs new on the host
    removed: int  # pairs gone from the host
    new_versions: tuple[int, ...]  # PackageVersion ids created now (new to the fleet): the only ones needing a match
    orphaned_versions: int  # PackageVersion rows no host has any more, removed with their matches


def replace_packages(host: Host, packages: Sequence[InstalledPackage]) -> PackageChange:
    """Make the host's stored packages equal `packages` (a full inventory). Call inside a transaction."""
    wanted = {(_identity(p), p.arch or "") for p in packages}
    before = {(pv, arch) for pv, arch in host.packages.values_list("package_version_id", "arch")}
    ids, created = _version_ids({i for i, _ in wanted})
    desired = {(ids[i], arch) for i, arch in wanted}
    removed = before - desired
    added = desired - before
    for chunk in _chunks(sorted(removed)):
        condition = Q()
        for pv, arch in chunk:
            condition |= Q(package_version_id=pv, arch=arch)
        host.packages.filter(condition).delete()
    insert_rows(
        "inventory_hostpackage", ("host_id", "package_version_id", "arch"), [(host.pk, pv, arch) for pv, arch in added]
    )
    gone = {pv for pv, _ in removed} - {pv for pv, _ in desired}
    orphaned = _delete_orphans(gone)
    return PackageChange(len(added), len(removed), tuple(sorted(created)), orphaned)


def record_inventory(
    actor: Actor, identity: HostIdentity, packages: Sequence[InstalledPackage], now: datetime
) -> InventoryChange:
    """Make the host's stored packages equal `packages` (a full inventory), in one transaction.

    Returns which PackageVersion rows are new, so the caller matches only those.
    """
    with transaction.atomic():
        host, created = Host.objects.get_or_create(name=identity.name, defaults={"created_at": now})
        host.os_id, host.os_version, host.os_name = identity.os_id, identity.os_version, identity.os_name
        host.ecosystem = identity.ecosystem
        host.inventory_at = now
        host.save()
        change = replace_packages(host, packages)
        audit.record(
            actor,
            "host.inventory",
            "host",
            host.name,
            {"created": created, "packages": len(packages), "added": change.added, "removed": change.removed},
        )
    return InventoryChange(host, change.added, change.removed, change.new_versions, change.orphaned_versions)


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


# -- business context: attributes, tags, groups ------------------------------------------------------

ATTRIBUTES = ("criticality", "exposure", "environment", "owner", "ring", "maintenance_window")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True, slots=True)
class HostChanges:
    """Attributes to set on hosts; None leaves one as it is. `tags` replaces the tag set; add/remove edit it."""

    criticality: int | None = None
    exposure: str | None = None
    environment: str | None = None
    owner: str | None = None
    ring: str | None = None
    maintenance_window: str | None = None
    tags: tuple[str, ...] | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()

    def check(self) -> HostChanges:
        if self.criticality is not None and self.criticality not in Criticality.values:
            raise InvalidInput("criticality must be 1 (mission-critical) to 4 (low)", field="criticality")
        if self.exposure is not None and self.exposure not in Exposure.values:
            raise InvalidInput(f"exposure must be one of {', '.join(Exposure.values)}", field="exposure")
        for name in ("environment", "ring", "maintenance_window"):
            value = getattr(self, name)
            if value is not None and (len(value) > 64 or _CONTROL.search(value)):
                raise InvalidInput(f"{name} must be at most 64 printable characters", field=name)
        if self.owner is not None and (len(self.owner) > 255 or _CONTROL.search(self.owner)):
            raise InvalidInput("owner must be at most 255 printable characters", field="owner")
        for tag in (*(self.tags or ()), *self.add_tags, *self.remove_tags):
            if not _TAG.match(tag):
                raise InvalidInput(
                    f"tag {tag!r} must be 1-64 letters, digits, '_', '.', ':' or '-' (starting with a letter or digit)",
                    field="tags",
                )
        return self

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v not in (None, ())}


def _apply(host: Host, changes: HostChanges) -> dict[str, object]:
    """Set the changes on `host` (saving it); what actually changed, as {field: [old, new]}."""
    diff: dict[str, object] = {}
    for name in ATTRIBUTES:
        value = getattr(changes, name)
        if value is not None and getattr(host, name) != value:
            diff[name] = [getattr(host, name), value]
            setattr(host, name, value)
    if diff:
        host.save(update_fields=list(diff))
    before = set(host.tags.values_list("tag", flat=True))
    after = set(changes.tags) if changes.tags is not None else set(before)
    after = (after | set(changes.add_tags)) - set(changes.remove_tags)
    if after != before:
        host.tags.filter(tag__in=before - after).delete()
        HostTag.objects.bulk_create([HostTag(host=host, tag=t) for t in sorted(after - before)])
        diff["tags"] = [sorted(before), sorted(after)]
    return diff


def set_attributes(actor: Actor, names: Sequence[str], changes: HostChanges) -> dict[str, dict[str, object]]:
    """Apply `changes` to every named host, all or nothing; {host: what changed}. Unknown names: NotFound."""
    changes.check()
    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise InvalidInput("name at least one host", field="hosts")
    with transaction.atomic():
        found = {h.name: h for h in Host.objects.select_for_update().filter(name__in=wanted)}
        missing = [n for n in wanted if n not in found]
        if missing:
            raise NotFound(f"no host named {', '.join(repr(n) for n in missing[:10])}")
        result = {name: _apply(found[name], changes) for name in wanted}
        changed = {name: diff for name, diff in result.items() if diff}
        if changed:
            audit.record(actor, "host.update", "host", ",".join(sorted(changed))[:255], {"changes": changed})
    return result


def delete_host(actor: Actor, name: str) -> None:
    with transaction.atomic():
        host = Host.objects.select_for_update().filter(name=name).first()
        if host is None:
            raise NotFound(f"no host named {name!r}")
        versions = set(host.packages.values_list("package_version_id", flat=True))
        packages = host.packages.count()
        host.delete()
        orphaned = _delete_orphans(versions)
        audit.record(actor, "host.delete", "host", name, {"packages": packages, "orphaned_versions": orphaned})


def create_group(actor: Actor, name: str, description: str = "", rule: dict[str, Any] | None = None) -> HostGroup:
    """A static group (rule None) or a dynamic one whose members are the hosts matching `rule` (a saved filter)."""
    from patchday.inventory.queries import filter_from_rule

    name = name.strip()
    if not 0 < len(name) <= 100 or _CONTROL.search(name):
        raise InvalidInput("group name must be 1-100 printable characters", field="name")
    if rule is not None:
        filter_from_rule(rule)
    with transaction.atomic():
        if HostGroup.objects.filter(name=name).exists():
            raise Conflict(f"a host group named {name!r} exists")
        group = HostGroup.objects.create(name=name, description=description[:255], rule=rule, created_at=timezone.now())
        audit.record(actor, "group.create", "group", name, {"rule": rule, "description": description[:255]})
    return group


def create_static_group(actor: Actor, name: str, description: str, members: Sequence[str]) -> HostGroup:
    """A static group holding `members` from the start, in one transaction (nothing is created on error)."""
    with transaction.atomic():
        group = create_group(actor, name, description)
        return set_group_members(actor, group.name, add=members)


def set_group_members(actor: Actor, name: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> HostGroup:
    with transaction.atomic():
        group = HostGroup.objects.select_for_update().filter(name=name).first()
        if group is None:
            raise NotFound(f"no host group named {name!r}")
        if group.rule is not None:
            raise Conflict(f"group {name!r} is dynamic: its members follow its rule")
        wanted = set(add) | set(remove)
        found = {h.name: h for h in Host.objects.filter(name__in=wanted)}
        missing = sorted(wanted - set(found))
        if missing:
            raise NotFound(f"no host named {', '.join(repr(n) for n in missing[:10])}")
        group.members.add(*(found[n] for n in add))
        group.members.remove(*(found[n] for n in remove))
        audit.record(actor, "group.members", "group", name, {"added": sorted(add), "removed": sorted(remove)})
    return group


def delete_group(actor: Actor, name: str) -> None:
    with transaction.atomic():
        deleted, _ = HostGroup.objects.filter(name=name).delete()
        if not deleted:
            raise NotFound(f"no host group named {name!r}")
        audit.record(actor, "group.delete", "group", name, {})
