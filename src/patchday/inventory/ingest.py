"""Store an inventory document: the host's facts, its packages (with history), its pending updates.

One entry point for every route (agent, SSH, imports, scan): `store_document`. It is one
transaction; a replayed older inventory (sequence not newer than the last stored) changes nothing.
Matching runs afterwards, only for package versions the fleet did not have before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from patchday.audit import services as audit
from patchday.core.audit import Actor
from patchday.core.errors import Conflict
from patchday.core.matching import InstalledPackage
from patchday.core.osv import ecosystems_of_os
from patchday.inventory import services
from patchday.inventory.document import InventoryDocument, parse_document
from patchday.inventory.models import AssetKind, Collection, Host, ManagementMode, PackageVersion, PendingUpdate
from patchday.server.bulk import db_datetime, insert_rows

PYPI = "PyPI"
StateKey = tuple[str, str, str]  # ecosystem, package name, arch


@dataclass(frozen=True, slots=True)
class StoredInventory:
    host: Host
    collection: Collection
    created: bool
    added: int
    removed: int
    changed: int
    matched_versions: int


def canonical_digest(document: Mapping[str, Any]) -> str:
    """The digest agents send (docs/inventory.md): SHA-256 of the canonical JSON without volatile keys."""
    from patchday.collectors.inventory import digest

    return digest(dict(document))


def os_ecosystem(doc: InventoryDocument) -> str:
    """The OSV ecosystem of the host's OS packages ("Debian:12"), or "ID:VERSION" for systems OSV lacks."""
    id_like = tuple(doc.os.id_like.split())
    known = ecosystems_of_os(doc.os.id, doc.os.version_id, id_like)
    if known:
        return known[0]
    return f"{doc.os.id or 'unknown'}:{doc.os.version_id}"


def installed_packages(doc: InventoryDocument) -> list[InstalledPackage]:
    """OS packages (matched through their source package) and Python packages, without exact duplicates."""
    ecosystem = os_ecosystem(doc)
    seen: dict[tuple[str, ...], InstalledPackage] = {}
    for p in doc.packages:
        # rpm advisories name binary packages; dpkg and apk advisories name the source package.
        by_source = p.manager != "rpm" and bool(p.source)
        package = InstalledPackage(
            p.name,
            p.version,
            ecosystem,
            p.source if by_source else None,
            (p.source_version or p.version) if by_source else None,
            p.arch or None,
        )
        seen.setdefault((ecosystem, p.name, p.version, p.arch), package)
    for py in doc.python_packages:
        name = _pep503(py.name)
        seen.setdefault((PYPI, name, py.version, ""), InstalledPackage(name, py.version, PYPI))
    return list(seen.values())


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _host_for(doc: InventoryDocument, now: datetime) -> tuple[Host, bool]:
    """The host this document describes: by machine-id when it has one, else by host name."""
    rows = Host.objects.select_for_update()
    if doc.machine_id:
        host = rows.filter(machine_id=doc.machine_id).first()
        if host is not None:
            return host, False
    host = rows.filter(name=doc.hostname).first()
    if host is not None and (not doc.machine_id or not host.machine_id):
        return host, False
    name = doc.hostname if host is None else f"{doc.hostname}-{doc.machine_id[:8]}"
    return Host.objects.create(name=name, machine_id=doc.machine_id, created_at=now), True


def _package_state(host: Host) -> dict[StateKey, set[str]]:
    """(ecosystem, name, arch) -> versions installed: two indexed lookups, not a join whose plan would
    depend on fresh planner statistics."""
    installed = list(host.packages.values_list("package_version_id", "arch"))
    ids = sorted({pv for pv, _ in installed})
    versions: dict[int, tuple[str, str, str]] = {}
    for start in range(0, len(ids), 1000):
        for pk, ecosystem, name, version in PackageVersion.objects.filter(pk__in=ids[start : start + 1000]).values_list(
            "pk", "ecosystem", "name", "version"
        ):
            versions[pk] = (ecosystem, name, version)
    state: dict[StateKey, set[str]] = {}
    for pv, arch in installed:
        ecosystem, name, version = versions[pv]
        state.setdefault((ecosystem, name, arch), set()).add(version)
    return state


def _events(before: dict[StateKey, set[str]], after: dict[StateKey, set[str]]) -> list[tuple[StateKey, str, str]]:
    """(package, from, to) for every difference; several versions side by side (kernels) pair up in order."""
    events: list[tuple[StateKey, str, str]] = []
    for key in sorted(before.keys() | after.keys()):
        old, new = (
            sorted(before.get(key, set()) - after.get(key, set())),
            sorted(after.get(key, set()) - before.get(key, set())),
        )
        while old and new:
            events.append((key, old.pop(0), new.pop(0)))
        events += [(key, version, "") for version in old]
        events += [(key, "", version) for version in new]
    return events


def _apply_facts(host: Host, doc: InventoryDocument, mode: str, now: datetime) -> None:
    # A host keeps the identity it was created or enrolled with; it adopts one only if no other host has it.
    if not host.machine_id and doc.machine_id and not Host.objects.filter(machine_id=doc.machine_id).exists():
        host.machine_id = doc.machine_id
    host.hostname, host.fqdn = doc.hostname, doc.fqdn
    host.addresses = list(doc.addresses)
    host.os_id, host.os_version = doc.os.id, doc.os.version_id
    host.os_name = doc.os.pretty_name or f"{doc.os.id} {doc.os.version_id}".strip()
    host.ecosystem = os_ecosystem(doc)
    host.architecture = doc.architecture
    host.kernel_running, host.kernels_installed = doc.kernel.running, list(doc.kernel.installed)
    host.boot_time = doc.boot_time
    host.hardware = doc.hardware.model_dump()
    host.reboot_required, host.reboot_reasons = doc.reboot.required, list(doc.reboot.reasons)
    host.collection_errors = [e.model_dump() for e in doc.errors]
    host.management_mode = mode
    host.inventory_at = host.last_seen_at = now


def _replace_pending(host: Host, doc: InventoryDocument) -> None:
    host.pending_updates.all().delete()
    PendingUpdate.objects.bulk_create(
        [PendingUpdate(host=host, **u.model_dump()) for u in doc.pending_updates], batch_size=1000
    )


def store_document(
    actor: Actor,
    document: Mapping[str, Any],
    *,
    mode: str,
    host: Host | None = None,
    sequence: int | None = None,
    now: datetime | None = None,
    kind: str = AssetKind.HOST,
    components: Sequence[InstalledPackage] = (),
) -> StoredInventory:
    """Check and store a full inventory document; raises InvalidInput (naming the field) or Conflict (replay).

    `host` is given when the sender is already bound to one (an agent's token): the document then
    updates that host whatever it says its name is. `components` are packages of other ecosystems
    (an application's npm, Go, Maven... components from its SBOM), stored and matched alongside.
    """
    from patchday.findings import ledger
    from patchday.findings import services as matcher

    if mode not in ManagementMode.values:
        raise ValueError(f"unknown management mode {mode!r}")
    doc = parse_document(document)
    digest = canonical_digest(document)
    now = now or timezone.now()
    packages = installed_packages(doc) + list(components)
    with transaction.atomic():
        created = False
        if host is not None:
            host = Host.objects.select_for_update().get(pk=host.pk)
        else:
            host, created = _host_for(doc, now)
        if sequence is not None and host.inventory_sequence is not None and sequence <= host.inventory_sequence:
            raise Conflict(
                f"inventory sequence {sequence} is not newer than the stored {host.inventory_sequence}; nothing changed",  # noqa: E501
                {"last_sequence": host.inventory_sequence},
            )
        before = _package_state(host)
        change = services.replace_packages(host, packages)
        events = _events(before, _package_state(host))
        _apply_facts(host, doc, mode, now)
        host.kind = kind
        host.inventory_sequence = sequence if sequence is not None else host.inventory_sequence
        host.inventory_digest = digest
        host.save()
        _replace_pending(host, doc)
        changed = sum(1 for _, old, new in events if old and new)
        added = sum(1 for _, old, _new in events if not old)
        removed = len(events) - changed - added
        collection = Collection.objects.create(
            host=host,
            received_at=now,
            mode=mode,
            sequence=sequence,
            digest=digest,
            packages=len(packages),
            added=added,
            removed=removed,
            changed=changed,
        )
        at = db_datetime(now)
        insert_rows(
            "inventory_packageevent",
            ("host_id", "collection_id", "ecosystem", "name", "arch", "from_version", "to_version", "at"),
            [(host.pk, collection.pk, key[0], key[1], key[2], old, new, at) for key, old, new in events],
        )
        audit.record(
            actor,
            "host.inventory",
            "host",
            host.name,
            {
                "created": created,
                "mode": mode,
                "sequence": sequence,
                "packages": len(packages),
                "added": added,
                "removed": removed,
                "changed": changed,
                "pending_updates": len(doc.pending_updates),
            },
        )
    if change.new_versions:
        matcher.rematch_versions(change.new_versions)
    from patchday.rollouts import driver as rollouts

    fixed_by = rollouts.fix_attribution(host.pk)
    reason = f"{mode} inventory" + (f" after rollout {fixed_by}" if fixed_by is not None else "")
    ledger.reconcile_hosts([host.pk], verified=True, reason=reason, fixed_by=fixed_by)
    if fixed_by is not None:
        with transaction.atomic():
            rollouts.verify_host(host.pk, now)
    return StoredInventory(host, collection, created, added, removed, changed, len(change.new_versions))
