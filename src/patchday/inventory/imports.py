"""Imports into the fleet: a CSV of hosts and attributes (with a dry-run preview), SBOMs (a host or an
application asset), osquery results, and saved inventory documents. Parsing lives in
patchday.connectors.imports (pure); this module applies the result, all or nothing, audited."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from django.db import transaction
from django.utils import timezone

from patchday.audit import services as audit
from patchday.connectors.imports.hosts_csv import HostAttributes, parse_hosts_csv
from patchday.connectors.imports.osquery import parse_osquery
from patchday.connectors.imports.sbom import host_inventory, parse_sbom
from patchday.core.audit import Actor
from patchday.core.errors import InvalidInput
from patchday.inventory import ingest, services
from patchday.inventory.models import AssetKind, Host, HostGroup, ManagementMode

FORMATS = ("csv", "sbom", "osquery", "inventory")
Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True, slots=True)
class PlannedRow:
    line: int
    name: str
    action: Action
    changes: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CsvImport:
    rows: tuple[PlannedRow, ...]
    applied: bool

    def count(self, action: Action) -> int:
        return sum(1 for r in self.rows if r.action == action)


def _changes_of(row: HostAttributes) -> services.HostChanges:
    return services.HostChanges(
        criticality=row.criticality,
        exposure=row.exposure,
        environment=row.environment,
        owner=row.owner,
        tags=row.tags,
    ).check()


def _wanted(row: HostAttributes) -> dict[str, object]:
    """The attributes this row sets (columns the file has), tags and groups sorted."""
    _changes_of(row)
    values: dict[str, object] = {
        "criticality": row.criticality,
        "exposure": row.exposure,
        "environment": row.environment,
        "owner": row.owner,
        "tags": sorted(row.tags) if row.tags is not None else None,
        "groups": sorted(row.groups) if row.groups is not None else None,
    }
    return {k: v for k, v in values.items() if v is not None}


def _plan_row(row: HostAttributes, host: Host | None) -> PlannedRow:
    wanted = _wanted(row)
    if host is None:
        return PlannedRow(row.line, row.name, "create", wanted)
    current: dict[str, object] = {name: getattr(host, name) for name in services.ATTRIBUTES}
    current["tags"] = sorted(t.tag for t in host.tags.all())
    current["groups"] = sorted(g.name for g in host.static_groups.all())
    diff: dict[str, object] = {k: [current[k], v] for k, v in wanted.items() if current[k] != v}
    return PlannedRow(row.line, row.name, "update" if diff else "unchanged", diff)


def import_hosts_csv(actor: Actor, data: bytes, *, dry_run: bool, source: str = "hosts CSV") -> CsvImport:
    """Create or update hosts from a CSV; with dry_run, only say what would happen. A file with any bad
    row changes nothing (InvalidImport lists every problem)."""
    parsed = parse_hosts_csv(data, source=source)
    parsed.raise_if_invalid(source)
    now = timezone.now()
    with transaction.atomic():
        existing = {h.name: h for h in Host.objects.filter(name__in=[r.name for r in parsed.rows])}
        plan = tuple(_plan_row(row, existing.get(row.name)) for row in parsed.rows)
        if dry_run:
            return CsvImport(plan, applied=False)
        for row in parsed.rows:
            if row.name not in existing:
                existing[row.name] = Host.objects.create(
                    name=row.name, hostname=row.name, created_at=now, management_mode=ManagementMode.IMPORT
                )
            services.set_attributes(actor, [row.name], _changes_of(row))
            if row.groups is not None:
                _set_static_groups(existing[row.name], row.groups, now)
        audit.record(
            actor,
            "host.import_csv",
            "host",
            source[:255],
            {
                "rows": len(plan),
                "created": sum(1 for r in plan if r.action == "create"),
                "updated": sum(1 for r in plan if r.action == "update"),
            },
        )
    return CsvImport(plan, applied=True)


def _set_static_groups(host: Host, names: Sequence[str], now: datetime) -> None:
    for group in host.static_groups.exclude(name__in=names):
        group.members.remove(host)
    for name in names:
        group, _ = HostGroup.objects.get_or_create(name=name, defaults={"created_at": now})
        if group.rule is not None:
            raise InvalidInput(f"group {name!r} is dynamic; hosts cannot be added to it", field="groups")
        group.members.add(host)


_NOT_HOSTNAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _asset_name(name: str) -> str:
    """A name usable as a host name: "laravel/laravel" -> "laravel-laravel"."""
    cleaned = _NOT_HOSTNAME.sub("-", name).strip("-.")[:200]
    if not cleaned:
        raise InvalidInput("the SBOM names no asset; give one with --name", field="name")
    return cleaned


def import_sbom(
    actor: Actor, data: bytes, *, name: str | None = None, kind: str | None = None, source: str = "SBOM"
) -> ingest.StoredInventory:
    """Store an SBOM as a host (it names an OS) or an application asset with its own findings."""
    if kind is not None and kind not in AssetKind.values:
        raise InvalidInput(f"kind must be one of {', '.join(AssetKind.values)}", field="kind")
    asset = parse_sbom(data, source=source, kind=kind)  # type: ignore[arg-type]
    asset_name = _asset_name(name or asset.name)
    document = host_inventory(asset, hostname=asset_name, collected_at=timezone.now())
    extra = [c.installed_package() for c in asset.components if not c.manager and c.ecosystem not in ("", "PyPI")]
    return ingest.store_document(actor, document, mode=ManagementMode.IMPORT, kind=asset.kind, components=extra)


def import_osquery(
    actor: Actor, files: Sequence[tuple[str, bytes]], *, name: str | None = None
) -> list[ingest.StoredInventory]:
    """Store each host in osquery results (osqueryi --json output needs `name`: it carries no host name)."""
    hosts = parse_osquery(files, collected_at=timezone.now())
    stored = []
    for found in hosts:
        document = dict(found.document)
        if name and len(hosts) == 1:
            document["hostname"] = name
        if not document.get("hostname"):
            raise InvalidInput("osquery results name no host; give one with --name", field="name")
        stored.append(ingest.store_document(actor, document, mode=ManagementMode.IMPORT))
    return stored


def import_inventory_document(actor: Actor, data: bytes, source: str = "inventory") -> ingest.StoredInventory:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise InvalidInput(f"{source}: not JSON ({exc})", field="file") from None
    return ingest.store_document(actor, document, mode=ManagementMode.IMPORT)
