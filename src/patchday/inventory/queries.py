"""Reading the fleet: host filters (every attribute, freshness, groups), a host's packages at a date."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from patchday.advisories.queries import Listing
from patchday.core.errors import InvalidInput, NotFound
from patchday.inventory.models import (
    Exposure,
    Host,
    HostGroup,
    HostPackage,
    HostTag,
    ManagementMode,
    PackageEvent,
    PackageVersion,
    PendingUpdate,
)
from patchday.settings import load_settings

SSH_INTERVAL = timedelta(hours=6)  # the default re-collection interval of agentless hosts
FRESHNESS = ("fresh", "stale", "lost", "static")


def expected_interval(mode: str) -> timedelta | None:
    """How often a host of this management mode should report; None: imported hosts are not expected to."""
    if mode == ManagementMode.AGENT:
        return timedelta(seconds=load_settings().checkin_interval)
    if mode == ManagementMode.SSH:
        return SSH_INTERVAL
    return None


def freshness(host: Host, now: datetime | None = None) -> str:
    """fresh, stale (missed PATCHDAY_STALE_AFTER intervals), lost (PATCHDAY_LOST_AFTER), or static (imports)."""
    interval = expected_interval(host.management_mode)
    if interval is None:
        return "static"
    settings = load_settings()
    seen = host.last_seen_at or host.created_at
    age = (now or timezone.now()) - seen
    if age > interval * settings.lost_after:
        return "lost"
    if age > interval * settings.stale_after:
        return "stale"
    return "fresh"


def _freshness_filter(state: str, now: datetime) -> Q:
    """The freshness states as a filter; a host never seen counts from its creation, as freshness() does."""
    if state == "static":
        return Q(management_mode__in=[ManagementMode.IMPORT, ManagementMode.SCAN])
    settings = load_settings()
    parts = Q(pk__in=[])
    for mode in (ManagementMode.AGENT, ManagementMode.SSH):
        interval = expected_interval(mode)
        assert interval is not None
        stale_at, lost_at = now - interval * settings.stale_after, now - interval * settings.lost_after
        seen = Q(last_seen_at__isnull=False)
        unseen = Q(last_seen_at__isnull=True)
        if state == "fresh":
            ages = (seen & Q(last_seen_at__gte=stale_at)) | (unseen & Q(created_at__gte=stale_at))
        elif state == "stale":
            ages = (seen & Q(last_seen_at__lt=stale_at, last_seen_at__gte=lost_at)) | (
                unseen & Q(created_at__lt=stale_at, created_at__gte=lost_at)
            )
        else:
            ages = (seen & Q(last_seen_at__lt=lost_at)) | (unseen & Q(created_at__lt=lost_at))
        parts |= Q(management_mode=mode) & ages
    return parts


@dataclass(frozen=True, slots=True)
class HostFilter:
    q: str = ""
    os_id: str = ""
    environment: str = ""
    exposure: str = ""
    criticality: int | None = None
    owner: str = ""
    tags: tuple[str, ...] = ()
    group: str = ""
    mode: str = ""
    freshness: str = ""
    reboot_required: bool | None = None
    pending_security: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> HostFilter:
        if self.exposure and self.exposure not in Exposure.values:
            raise InvalidInput(f"exposure must be one of {', '.join(Exposure.values)}", field="exposure")
        if self.criticality is not None and self.criticality not in (1, 2, 3, 4):
            raise InvalidInput("criticality must be 1 (mission-critical) to 4 (low)", field="criticality")
        if self.mode and self.mode not in ManagementMode.values:
            raise InvalidInput(f"mode must be one of {', '.join(ManagementMode.values)}", field="mode")
        if self.freshness and self.freshness not in FRESHNESS:
            raise InvalidInput(f"freshness must be one of {', '.join(FRESHNESS)}", field="freshness")
        return self


RULE_KEYS = frozenset(
    {
        "q",
        "os_id",
        "environment",
        "exposure",
        "criticality",
        "owner",
        "tags",
        "mode",
        "reboot_required",
        "pending_security",
    }
)


def filter_from_rule(rule: dict[str, Any]) -> HostFilter:
    """The HostFilter a dynamic group saved; raises InvalidInput naming an unknown or bad key."""
    unknown = set(rule) - RULE_KEYS
    if unknown:
        raise InvalidInput(f"unknown group rule keys: {', '.join(sorted(unknown))}", field="rule")
    values = dict(rule)
    if "tags" in values:
        tags = values["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidInput("rule tags must be a list of strings", field="rule.tags")
        values["tags"] = tuple(tags)
    try:
        return HostFilter(**values).check()
    except TypeError as exc:
        raise InvalidInput(f"bad group rule: {exc}", field="rule") from None


def hosts(filters: HostFilter | None = None, now: datetime | None = None) -> QuerySet[Host]:
    """Hosts matching every given filter, by name, with their tag list prefetched."""
    f = (filters or HostFilter()).check()
    now = now or timezone.now()
    rows = Host.objects.all().prefetch_related("tags").order_by("name")
    if f.q:
        rows = rows.filter(
            Q(name__icontains=f.q)
            | Q(hostname__icontains=f.q)
            | Q(fqdn__icontains=f.q)
            | Q(owner__icontains=f.q)
            | Q(machine_id=f.q)
            | Q(addresses__icontains=f.q)
        )
    for attribute in ("os_id", "environment", "exposure", "owner"):
        if value := getattr(f, attribute):
            rows = rows.filter(**{attribute: value})
    if f.criticality is not None:
        rows = rows.filter(criticality=f.criticality)
    if f.mode:
        rows = rows.filter(management_mode=f.mode)
    for tag in f.tags:
        rows = rows.filter(tags__tag=tag)
    if f.group:
        rows = rows.filter(pk__in=group_members(f.group, now).values("pk"))
    if f.freshness:
        rows = rows.filter(_freshness_filter(f.freshness, now))
    if f.reboot_required is not None:
        rows = rows.filter(reboot_required=f.reboot_required)
    if f.pending_security is not None:
        security = Exists(PendingUpdate.objects.filter(host=OuterRef("pk"), security=True))
        rows = rows.filter(security if f.pending_security else ~security)
    return rows.distinct()


def group_members(name: str, now: datetime | None = None) -> QuerySet[Host]:
    group = HostGroup.objects.filter(name=name).first()
    if group is None:
        raise NotFound(f"no host group named {name!r}")
    if group.rule is None:
        return group.members.all()
    return hosts(filter_from_rule(group.rule), now)


def get_host(name: str) -> Host:
    host = Host.objects.filter(name=name).prefetch_related("tags").first()
    if host is None:
        raise NotFound(f"no host named {name!r}")
    return host


def freshness_counts(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    return {state: Host.objects.filter(_freshness_filter(state, now)).count() for state in FRESHNESS}


def pending_counts(host: Host) -> tuple[int, int]:
    """(security, regular) pending updates of `host`."""
    counts = host.pending_updates.aggregate(
        n_security=Count("id", filter=Q(security=True)), n_regular=Count("id", filter=Q(security=False))
    )
    return counts["n_security"], counts["n_regular"]


def packages_at(host: Host, at: datetime) -> list[tuple[str, str, str, str]]:
    """(ecosystem, name, arch, version) installed on `host` at time `at`, rebuilt from its package events.

    Before the host's first collection nothing was known: the answer is empty.
    """
    installed: dict[tuple[str, str, str], set[str]] = {}
    events = PackageEvent.objects.filter(host=host, at__lte=at).order_by("at", "id")
    for ecosystem, name, arch, old, new in events.values_list(
        "ecosystem", "name", "arch", "from_version", "to_version"
    ):
        versions = installed.setdefault((ecosystem, name, arch), set())
        if old:
            versions.discard(old)
        if new:
            versions.add(new)
    return sorted((e, n, a, v) for (e, n, a), versions in installed.items() for v in versions)


# -- for the dashboard: filter choices, list counts, a host's groups and vulnerabilities ----------------


@dataclass(frozen=True, slots=True)
class HostFacets:
    """The values the fleet has, offered as filter choices."""

    os_ids: tuple[str, ...]
    environments: tuple[str, ...]
    owners: tuple[str, ...]
    tags: tuple[str, ...]
    groups: tuple[str, ...]


def facets() -> HostFacets:
    def distinct(column: str) -> tuple[str, ...]:
        rows = Host.objects.exclude(**{column: ""}).order_by(column).values_list(column, flat=True).distinct()
        return tuple(rows)

    return HostFacets(
        os_ids=distinct("os_id"),
        environments=distinct("environment"),
        owners=distinct("owner"),
        tags=tuple(HostTag.objects.order_by("tag").values_list("tag", flat=True).distinct()),
        groups=tuple(HostGroup.objects.order_by("name").values_list("name", flat=True)),
    )


def _count_of(rows: QuerySet[Any]) -> Coalesce:
    """The number of `rows` (filtered on host=OuterRef("pk")) as a subquery, 0 when none."""
    counted = rows.order_by().values("host").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def with_counts(rows: QuerySet[Host]) -> QuerySet[Host]:
    """`rows` annotated with package_count, pending_security and pending_regular (one subquery each)."""
    pending = PendingUpdate.objects.filter(host=OuterRef("pk"))
    return rows.annotate(
        package_count=_count_of(HostPackage.objects.filter(host=OuterRef("pk"))),
        pending_security=_count_of(pending.filter(security=True)),
        pending_regular=_count_of(pending.filter(security=False)),
    )


def groups_of(host: Host) -> list[str]:
    """Names of the groups `host` belongs to: static membership, or matching a dynamic group's rule.

    One query for the static groups and one per dynamic group.
    """
    names = set(host.static_groups.values_list("name", flat=True))
    for group in HostGroup.objects.order_by("name"):
        if group.rule is None:
            continue
        try:
            if hosts(filter_from_rule(group.rule)).filter(pk=host.pk).exists():
                names.add(group.name)
        except InvalidInput:
            continue  # a rule saved by an older version that no longer parses matches nothing
    return sorted(names)


def groups_of_hosts(host_ids: Sequence[int]) -> dict[int, set[str]]:
    """Group names of many hosts at once: one query for static memberships and one per dynamic group
    (not per host), so a plan over 10,000 hosts costs a handful of queries."""
    found: dict[int, set[str]] = {h: set() for h in host_ids}
    wanted = set(host_ids)
    through = HostGroup.members.through
    for host_id, name in through.objects.filter(host_id__in=host_ids).values_list("host_id", "hostgroup__name"):
        found[host_id].add(name)
    for group in HostGroup.objects.exclude(rule=None).order_by("name"):
        try:
            members = hosts(filter_from_rule(group.rule or {})).values_list("pk", flat=True)
        except InvalidInput:
            continue  # a rule saved by an older version that no longer parses matches nothing
        for host_id in members:
            if host_id in wanted:
                found[host_id].add(group.name)
    return found


@dataclass(frozen=True, slots=True)
class HostVulnerability:
    """An installed package of a host inside a range of an advisory naming `cve_id`."""

    cve_id: str
    package: str
    version: str
    arch: str
    fixed_versions: tuple[str, ...]


_CVE_PATH = "package_version__matches__advisory__cves__cve_id"


def host_vulnerabilities(host: Host) -> Listing[HostVulnerability]:
    """(package, CVE) pairs of `host` from the stored matches, by package then CVE; a page costs 3 queries."""
    keys = (
        HostPackage.objects.filter(host=host, **{f"{_CVE_PATH}__isnull": False})
        .values_list("package_version__name", "package_version__version", "arch", _CVE_PATH, "package_version_id")
        .distinct()
        .order_by("package_version__name", "package_version__version", "arch", _CVE_PATH)
    )

    def hydrate(rows: list[tuple[str, str, str, str, int]]) -> list[HostVulnerability]:
        fixes: dict[tuple[int, str], set[str]] = {}
        found = PackageVersion.objects.filter(
            pk__in={r[4] for r in rows}, matches__advisory__cves__cve_id__in={r[3] for r in rows}
        ).values_list("pk", "matches__advisory__cves__cve_id", "matches__affected_range__fixed")
        for pk, cve_id, fixed in found:
            if fixed:
                fixes.setdefault((pk, cve_id), set()).add(fixed)
        return [
            HostVulnerability(cve_id, name, version, arch, tuple(sorted(fixes.get((pk, cve_id), ()))))
            for name, version, arch, cve_id, pk in rows
        ]

    return Listing(keys, hydrate)
