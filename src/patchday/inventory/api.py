"""API routes of inventory: the agent protocol (host tokens), hosts, groups and enrollment secrets."""

# No `from __future__ import annotations`: ninja's @paginate re-reads annotations in its own module.
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.pagination import paginate
from ninja.responses import Status
from ninja.security.base import AuthBase

from patchday.accounts.guards import Guard, actor_for, source_address
from patchday.api.pagination import Pagination
from patchday.core.audit import Actor, ActorKind
from patchday.core.errors import AuthenticationFailed, InvalidInput
from patchday.core.roles import Permission
from patchday.inventory import agents, imports, ingest, queries, services
from patchday.inventory.models import EnrollmentSecret, Host, HostGroup
from patchday.settings import load_settings

agent_router = Router(tags=["agent"])
router = Router(tags=["hosts"])


class HostGuard(AuthBase):
    """Ninja auth for agents: `Authorization: Bearer pdh_...`; the route then sees only its own host."""

    openapi_type = "http"
    openapi_scheme = "bearer"
    permission = "host"

    def __call__(self, request: HttpRequest) -> agents.HostCredential:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationFailed("send the host token: Authorization: Bearer pdh_...")
        return agents.authenticate_host(value.strip())


def _host_actor(request: HttpRequest, credential: agents.HostCredential) -> Actor:
    return Actor(ActorKind.HOST, credential.host_name, None, source_address(request))


# -- agent protocol ----------------------------------------------------------------------------------


class EnrollIn(Schema):
    secret: str = Field(max_length=200)
    machine_id: str = Field(max_length=64)
    hostname: str = Field(max_length=253)


class EnrollOut(Schema):
    host_id: int
    host_name: str
    host_token: str = Field(description="shown once; the agent keeps it in a 0600 file")
    checkin_interval: int


class CheckinIn(Schema):
    sequence: int = Field(ge=0)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    agent_version: str = Field("", max_length=64)


class CheckinOut(Schema):
    inventory_wanted: bool
    checkin_interval: int
    jobs: list[dict[str, Any]]
    simulations: list[dict[str, Any]] = Field(default_factory=list, description="plan previews to simulate")


class InventoryIn(Schema):
    sequence: int = Field(ge=0)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    inventory: dict[str, Any]


class InventoryOut(Schema):
    stored: bool
    host_name: str
    added: int
    removed: int
    changed: int


@agent_router.post("/agent/enroll", response={201: EnrollOut}, auth=None, summary="Enroll a host with a secret")
def enroll(request: HttpRequest, body: EnrollIn) -> Status[EnrollOut]:
    enrollment = agents.enroll(body.secret, body.machine_id, body.hostname, source_address(request))
    reply = EnrollOut(
        host_id=enrollment.host.pk,
        host_name=enrollment.host.name,
        host_token=enrollment.token,
        checkin_interval=load_settings().checkin_interval,
    )
    return Status(201, reply)


@agent_router.post("/agent/checkin", response=CheckinOut, auth=HostGuard(), summary="Heartbeat with a digest")
def checkin(request: HttpRequest, body: CheckinIn) -> CheckinOut:
    credential: agents.HostCredential = request.auth  # type: ignore[attr-defined]
    reply = agents.checkin(credential, body.digest)
    return CheckinOut(
        inventory_wanted=reply.inventory_wanted,
        checkin_interval=reply.checkin_interval,
        jobs=reply.jobs,
        simulations=reply.simulations,
    )


@agent_router.put("/agent/inventory", response=InventoryOut, auth=HostGuard(), summary="Send the full inventory")
def put_inventory(request: HttpRequest, body: InventoryIn) -> InventoryOut:
    credential: agents.HostCredential = request.auth  # type: ignore[attr-defined]
    host = Host.objects.get(pk=credential.host_id)
    stored = ingest.store_document(
        _host_actor(request, credential), body.inventory, mode="agent", host=host, sequence=body.sequence
    )
    return InventoryOut(
        stored=True, host_name=stored.host.name, added=stored.added, removed=stored.removed, changed=stored.changed
    )


# -- hosts ---------------------------------------------------------------------------------------------


class HostOut(Schema):
    name: str
    machine_id: str
    hostname: str
    fqdn: str
    addresses: list[str]
    os_id: str
    os_version: str
    os_name: str
    ecosystem: str
    architecture: str
    kernel_running: str
    management_mode: str
    criticality: int
    exposure: str
    environment: str
    owner: str
    tags: list[str]
    ring: str
    maintenance_window: str
    reboot_required: bool | None
    last_seen_at: datetime | None
    inventory_at: datetime | None
    freshness: str = Field(description="fresh, stale, lost, or static (imported hosts are not expected to report)")

    @staticmethod
    def resolve_tags(host: Host) -> list[str]:
        return sorted(t.tag for t in host.tags.all())

    @staticmethod
    def resolve_freshness(host: Host) -> str:
        return queries.freshness(host)


class HostDetailOut(HostOut):
    kernels_installed: list[str]
    boot_time: datetime | None
    hardware: dict[str, str]
    reboot_reasons: list[str]
    collection_errors: list[dict[str, str]]
    package_count: int
    pending_security: int
    pending_regular: int
    group_names: list[str]
    window: str = Field(description="the maintenance window its jobs wait for (named, or through a group)")
    next_opening: datetime | None = Field(description="when that window next opens outside freezes")


class HostQuery(Schema):
    q: str = Field("", max_length=200, description="part of the name, host name, FQDN, owner or an address")
    os_id: str = Field("", max_length=64)
    environment: str = Field("", max_length=64)
    exposure: str = Field("", max_length=16)
    criticality: int | None = None
    owner: str = Field("", max_length=255)
    tag: list[str] = Field(default_factory=list, description="has every one of these tags")
    group: str = Field("", max_length=100)
    mode: str = Field("", max_length=16)
    freshness: str = Field("", max_length=8, description="fresh, stale, lost or static")
    reboot_required: bool | None = None
    pending_security: bool | None = Field(None, description="has pending security updates")

    def to_filter(self) -> queries.HostFilter:
        values = self.dict()
        values["tags"] = tuple(values.pop("tag"))
        return queries.HostFilter(**values)


class HostChangesIn(Schema):
    criticality: int | None = None
    exposure: str | None = None
    environment: str | None = None
    owner: str | None = None
    ring: str | None = None
    maintenance_window: str | None = None
    tags: list[str] | None = None
    add_tags: list[str] = Field(default_factory=list)
    remove_tags: list[str] = Field(default_factory=list)

    def to_changes(self) -> services.HostChanges:
        values = self.dict()
        for name in ("tags", "add_tags", "remove_tags"):
            values[name] = tuple(values[name]) if values[name] is not None else None
        values["add_tags"] = values["add_tags"] or ()
        values["remove_tags"] = values["remove_tags"] or ()
        return services.HostChanges(**values)


class BulkChangesIn(HostChangesIn):
    hosts: list[str] = Field(min_length=1, max_length=10_000)


class PackageOut(Schema):
    ecosystem: str
    name: str
    version: str
    arch: str
    source_name: str
    source_version: str


class PendingUpdateOut(Schema):
    manager: str
    name: str
    arch: str
    installed: str
    candidate: str
    origin: str
    suite: str
    security: bool
    source: str
    source_version: str
    changelog_cves: list[str]


class PackageEventOut(Schema):
    at: datetime
    ecosystem: str
    name: str
    arch: str
    from_version: str
    to_version: str
    mode: str


class GroupIn(Schema):
    name: str = Field(max_length=100)
    description: str = Field("", max_length=255)
    rule: dict[str, Any] | None = Field(None, description="a saved host filter: the group is dynamic")


class GroupOut(Schema):
    name: str
    description: str
    dynamic: bool
    rule: dict[str, Any] | None
    members: int


class MembersIn(Schema):
    add: list[str] = Field(default_factory=list, max_length=10_000)
    remove: list[str] = Field(default_factory=list, max_length=10_000)


def _detail(host: Host) -> Host:
    """`host` with the counts HostDetailOut reads set on it."""
    security, regular = queries.pending_counts(host)
    host.package_count = host.packages.count()  # type: ignore[attr-defined]
    host.pending_security, host.pending_regular = security, regular  # type: ignore[attr-defined]
    host.group_names = sorted(  # type: ignore[attr-defined]
        g.name for g in HostGroup.objects.all() if queries.group_members(g.name).filter(pk=host.pk).exists()
    )
    from patchday.rollouts.windows import host_window

    window = host_window(host)
    host.window, host.next_opening = window.name, window.next_start  # type: ignore[attr-defined]
    return host


@router.get("/hosts", response=list[HostOut], auth=Guard(Permission.VIEW), summary="Hosts, filtered")
@paginate(Pagination)
def list_hosts(request: HttpRequest, filters: Query[HostQuery]) -> Any:
    return queries.hosts(filters.to_filter())


@router.get("/hosts/freshness", response=dict[str, int], auth=Guard(Permission.VIEW), summary="Hosts per freshness")
def host_freshness(request: HttpRequest) -> dict[str, int]:
    return queries.freshness_counts()


@router.patch("/hosts", response=dict[str, dict[str, Any]], auth=Guard(Permission.OPERATE), summary="Bulk edit")
def bulk_edit(request: HttpRequest, body: BulkChangesIn) -> dict[str, dict[str, Any]]:
    return services.set_attributes(actor_for(request), body.hosts, body.to_changes())


class ImportOut(Schema):
    format: str
    applied: bool
    rows: list[dict[str, Any]] = Field(default_factory=list, description="CSV: each row's planned or applied action")
    hosts: list[InventoryOut] = Field(default_factory=list, description="SBOM, osquery, inventory: what was stored")


@router.post("/hosts/import", response=ImportOut, auth=Guard(Permission.OPERATE), summary="Import hosts or inventory")
def import_hosts(
    request: HttpRequest,
    file: File[UploadedFile],
    format: Form[str],
    dry_run: Form[bool] = False,
    name: Form[str | None] = None,
    kind: Form[str | None] = None,
) -> ImportOut:
    if format not in imports.FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(imports.FORMATS)}", field="format")
    if dry_run and format != "csv":
        raise InvalidInput("dry_run applies to CSV imports only", field="dry_run")
    data = file.read()
    actor = actor_for(request)
    source = (file.name or "upload")[:200]
    if format == "csv":
        result = imports.import_hosts_csv(actor, data, dry_run=dry_run, source=source)
        rows = [{"line": r.line, "name": r.name, "action": r.action, "changes": r.changes} for r in result.rows]
        return ImportOut(format=format, applied=result.applied, rows=rows)
    if format == "sbom":
        stored = [imports.import_sbom(actor, data, name=name, kind=kind, source=source)]
    elif format == "osquery":
        stored = imports.import_osquery(actor, [(source, data)], name=name)
    else:
        stored = [imports.import_inventory_document(actor, data, source=source)]
    hosts = [
        InventoryOut(stored=True, host_name=i.host.name, added=i.added, removed=i.removed, changed=i.changed)
        for i in stored
    ]
    return ImportOut(format=format, applied=True, hosts=hosts)


@router.get("/hosts/{name}", response=HostDetailOut, auth=Guard(Permission.VIEW), summary="One host")
def get_host(request: HttpRequest, name: str) -> Host:
    return _detail(queries.get_host(name))


@router.patch("/hosts/{name}", response=HostDetailOut, auth=Guard(Permission.OPERATE), summary="Set attributes")
def edit_host(request: HttpRequest, name: str, body: HostChangesIn) -> Host:
    services.set_attributes(actor_for(request), [name], body.to_changes())
    return _detail(queries.get_host(name))


@router.delete("/hosts/{name}", response={204: None}, auth=Guard(Permission.ADMINISTER), summary="Forget a host")
def delete_host(request: HttpRequest, name: str) -> Status[None]:
    services.delete_host(actor_for(request), name)
    return Status(204, None)


@router.get(
    "/hosts/{name}/packages", response=list[PackageOut], auth=Guard(Permission.VIEW), summary="Installed packages"
)
@paginate(Pagination)
def host_packages(request: HttpRequest, name: str, at: datetime | None = None) -> Any:
    host = queries.get_host(name)
    if at is not None:
        return [
            PackageOut(ecosystem=e, name=n, version=v, arch=a, source_name="", source_version="")
            for e, n, a, v in queries.packages_at(host, at)
        ]
    rows = host.packages.select_related("package_version").order_by("package_version__name", "arch")
    return [
        PackageOut(
            ecosystem=r.package_version.ecosystem,
            name=r.package_version.name,
            version=r.package_version.version,
            arch=r.arch,
            source_name=r.package_version.source_name,
            source_version=r.package_version.source_version,
        )
        for r in rows
    ]


@router.get(
    "/hosts/{name}/pending-updates",
    response=list[PendingUpdateOut],
    auth=Guard(Permission.VIEW),
    summary="Updates the package manager offers",
)
def host_pending(request: HttpRequest, name: str) -> Any:
    return list(queries.get_host(name).pending_updates.all())


@router.get(
    "/hosts/{name}/history", response=list[PackageEventOut], auth=Guard(Permission.VIEW), summary="Package history"
)
@paginate(Pagination)
def host_history(request: HttpRequest, name: str) -> Any:
    host = queries.get_host(name)
    return [
        PackageEventOut(
            at=e.at,
            ecosystem=e.ecosystem,
            name=e.name,
            arch=e.arch,
            from_version=e.from_version,
            to_version=e.to_version,
            mode=e.collection.mode,
        )
        for e in host.package_events.select_related("collection")
    ]


# -- groups -------------------------------------------------------------------------------------------


def _group_out(group: HostGroup) -> GroupOut:
    return GroupOut(
        name=group.name,
        description=group.description,
        dynamic=group.dynamic,
        rule=group.rule,
        members=queries.group_members(group.name).count(),
    )


@router.get("/groups", response=list[GroupOut], auth=Guard(Permission.VIEW), summary="Host groups")
def list_groups(request: HttpRequest) -> list[GroupOut]:
    return [_group_out(g) for g in HostGroup.objects.order_by("name")]


@router.post("/groups", response={201: GroupOut}, auth=Guard(Permission.OPERATE), summary="Create a group")
def create_group(request: HttpRequest, body: GroupIn) -> Status[GroupOut]:
    group = services.create_group(actor_for(request), body.name, body.description, body.rule)
    return Status(201, _group_out(group))


@router.post("/groups/{name}/members", response=GroupOut, auth=Guard(Permission.OPERATE), summary="Edit members")
def edit_members(request: HttpRequest, name: str, body: MembersIn) -> GroupOut:
    group = services.set_group_members(actor_for(request), name, body.add, body.remove)
    return _group_out(group)


@router.delete("/groups/{name}", response={204: None}, auth=Guard(Permission.OPERATE), summary="Delete a group")
def delete_group(request: HttpRequest, name: str) -> Status[None]:
    services.delete_group(actor_for(request), name)
    return Status(204, None)


# -- enrollment secrets -------------------------------------------------------------------------------


class SecretIn(Schema):
    name: str = Field(max_length=100)
    expires_at: datetime | None = None


class SecretOut(Schema):
    id: str
    name: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    state: str
    uses: int
    last_used_at: datetime | None

    @staticmethod
    def resolve_id(record: EnrollmentSecret) -> str:
        return record.prefix

    @staticmethod
    def resolve_state(record: EnrollmentSecret) -> str:
        return agents.secret_state(record)


class NewSecretOut(SecretOut):
    secret: str = Field(description="shown once: give it to the agent's install command")


@router.get(
    "/enrollment-secrets", response=list[SecretOut], auth=Guard(Permission.ADMINISTER), summary="Enrollment secrets"
)
def list_secrets(request: HttpRequest) -> Any:
    return list(agents.list_secrets())


@router.post(
    "/enrollment-secrets",
    response={201: NewSecretOut},
    auth=Guard(Permission.ADMINISTER),
    summary="Create an enrollment secret",
)
def create_secret(request: HttpRequest, body: SecretIn) -> Status[EnrollmentSecret]:
    issued = agents.create_secret(actor_for(request), body.name, body.expires_at)
    issued.record.secret = issued.secret  # type: ignore[attr-defined]
    return Status(201, issued.record)


@router.delete(
    "/enrollment-secrets/{secret_id}",
    response=SecretOut,
    auth=Guard(Permission.ADMINISTER),
    summary="Revoke an enrollment secret",
)
def revoke_secret(request: HttpRequest, secret_id: str) -> Any:
    return agents.revoke_secret(actor_for(request), secret_id)
