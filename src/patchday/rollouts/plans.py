"""Plans: what to fix and where, previewed per host, then routed as a change request for approval.

A plan's selection picks updates the hosts' package managers offer (PendingUpdate, from the last
inventory): all security updates, all updates, named packages, or the updates that fix chosen
findings (by advisory, CVE, severity, SSVC decision, or due date). The preview names exact target
versions per host, what is skipped and why (held, excluded, cooling down), the reboot, the findings
those versions close and when the host's window opens. Approval is by someone other than the
requester, or by an explicit auto-approval rule (audited when it fires), or overridden by an admin.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from patchday.audit import services as audit
from patchday.core import rollout as core
from patchday.core.audit import Actor
from patchday.core.errors import Conflict, InvalidInput, InvalidTransition, InvalidVersion, NotFound, PermissionDenied
from patchday.core.osv import scheme_for
from patchday.core.severity import rating_for_score
from patchday.findings.models import Finding, FindingStatus
from patchday.inventory.models import Host, HostTag, PendingUpdate
from patchday.rollouts import windows
from patchday.rollouts.models import Approval, AutoApprovalRule, HookScript, Plan, PlanHost

SELECTION_KINDS = ("security", "all", "advisories", "cves", "severity", "priority", "packages", "due_before")
FINDING_KINDS = frozenset({"advisories", "cves", "severity", "priority", "due_before"})
SEVERITIES = ("critical", "high", "medium", "low")
DECISIONS = ("Act", "Attend", "Track*", "Track")
REBOOT_POLICIES = ("never", "if_required", "always")
MANAGERS = frozenset({"apt", "dnf", "zypper", "apk"})
MAX_VALUES = 1000
MAX_HOOKS = 10
_NAME_GLOB = re.compile(r"^[A-Za-z0-9.+*?:_-]{1,128}$")
_SCRIPT_REF = re.compile(r"^([a-z0-9][a-z0-9_.-]{0,63})(?:@([1-9][0-9]{0,5}))?$")
# Packages whose upgrade needs a reboot to take effect (the kernel, the C library, init, microcode).
_REBOOT_PACKAGES = ("linux-image-*", "linux-headers-*", "libc6", "systemd", "dbus", "*-microcode", "openssl*")


@dataclass(frozen=True, slots=True)
class Selection:
    kind: str
    values: tuple[str, ...] = ()
    before: date | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Selection:
        kind = str(data.get("kind", ""))
        if kind not in SELECTION_KINDS:
            raise InvalidInput(f"selection kind must be one of {', '.join(SELECTION_KINDS)}", field="selection.kind")
        raw = data.get("values") or []
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw) or len(raw) > MAX_VALUES:
            raise InvalidInput(f"selection values must be a list of at most {MAX_VALUES} strings", "selection.values")
        values = tuple(sorted({v.strip() for v in raw if v.strip()}))
        before = None
        if kind == "due_before":
            try:
                before = date.fromisoformat(str(data.get("before", "")))
            except ValueError:
                raise InvalidInput("due_before needs `before` as a date (YYYY-MM-DD)", "selection.before") from None
        elif kind not in ("security", "all") and not values:
            raise InvalidInput(f"a {kind} selection needs at least one value", field="selection.values")
        if kind == "severity" and (bad := [v for v in values if v.lower() not in SEVERITIES]):
            raise InvalidInput(f"unknown severity {bad[0]!r}; use {', '.join(SEVERITIES)}", "selection.values")
        if kind == "priority" and (bad := [v for v in values if v not in DECISIONS]):
            raise InvalidInput(f"unknown decision {bad[0]!r}; use {', '.join(DECISIONS)}", "selection.values")
        if kind == "cves":
            values = tuple(sorted({v.upper() for v in values}))
        if kind == "packages" and (bad := [v for v in values if not _NAME_GLOB.match(v)]):
            raise InvalidInput(f"not a package name: {bad[0]!r}", field="selection.values")
        return cls(kind, values, before)

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "values": list(self.values)}
        if self.before:
            data["before"] = self.before.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Target:
    hosts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Target:
        parts: dict[str, tuple[str, ...]] = {}
        for key in ("hosts", "groups", "tags", "environments"):
            raw = data.get(key) or []
            if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw) or len(raw) > 10000:
                raise InvalidInput(f"target {key} must be a list of names", field=f"target.{key}")
            parts[key] = tuple(sorted({v.strip() for v in raw if v.strip()}))
        unknown = set(data) - {"hosts", "groups", "tags", "environments"}
        if unknown:
            raise InvalidInput(f"unknown target key {sorted(unknown)[0]!r}", field="target")
        target = cls(**parts)
        if not any(parts.values()):
            raise InvalidInput("name the target: hosts, groups, tags or environments", field="target")
        return target

    def resolve(self) -> list[Host]:
        """Hosts named, in the groups, or with the tags (a union), limited to the environments when given
        (environments alone select every host in them). Raises NotFound for an unknown host or group."""
        from patchday.inventory.queries import group_members

        ids: set[int] = set()
        if self.hosts:
            found = dict(Host.objects.filter(name__in=self.hosts).values_list("name", "pk"))
            missing = [h for h in self.hosts if h not in found]
            if missing:
                raise NotFound(f"no host named {missing[0]!r}")
            ids.update(found.values())
        for group in self.groups:
            try:
                ids.update(group_members(group).values_list("pk", flat=True))
            except NotFound:
                raise NotFound(f"no host group named {group!r}") from None
        if self.tags:
            ids.update(HostTag.objects.filter(tag__in=self.tags).values_list("host_id", flat=True))
        rows = Host.objects.filter(kind="host")
        if self.hosts or self.groups or self.tags:
            rows = rows.filter(pk__in=sorted(ids))
        if self.environments:
            rows = rows.filter(environment__in=self.environments)
        return list(rows.order_by("name"))

    def to_data(self) -> dict[str, list[str]]:
        return {
            "hosts": list(self.hosts),
            "groups": list(self.groups),
            "tags": list(self.tags),
            "environments": list(self.environments),
        }


def _names(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    raw = data.get(key) or []
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise InvalidInput(f"{key} must be a list of package names or patterns", field=f"options.{key}")
    bad = [v for v in raw if not _NAME_GLOB.match(v)]
    if bad:
        raise InvalidInput(f"not a package name or pattern: {bad[0]!r}", field=f"options.{key}")
    return tuple(sorted(set(raw)))


def _argv(value: Any, field: str) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or len(value) > 64
        or not all(isinstance(a, str) and 0 < len(a) <= 4096 and "\x00" not in a for a in value)
    ):
        raise InvalidInput("a command is a non-empty list of at most 64 arguments (argv, no shell)", field=field)
    if not value[0].startswith("/") and not re.match(r"^[A-Za-z0-9_.+-]+$", value[0]):
        raise InvalidInput(f"the program must be a name or an absolute path, not {value[0]!r}", field=field)
    return list(value)


def _timeout(value: Any, field: str, default: int = 300) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 6 * 3600:
        raise InvalidInput("a timeout is whole seconds from 1 to 21600", field=field)
    return value


def _health_checks(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_HOOKS:
        raise InvalidInput(f"health_checks is a list of at most {MAX_HOOKS} checks", field="options.health_checks")
    checks = []
    for i, check in enumerate(raw):
        field = f"options.health_checks[{i}]"
        if not isinstance(check, dict) or not isinstance(check.get("name"), str) or not check["name"].strip():
            raise InvalidInput("a health check needs a name", field=field)
        entry: dict[str, Any] = {
            "name": check["name"].strip()[:64],
            "timeout": _timeout(check.get("timeout"), field, 30),
        }
        if "url" in check:
            url = str(check["url"])
            if not re.match(r"^https?://[^\s]{1,2000}$", url):
                raise InvalidInput(f"a health check URL must be http(s), not {url[:80]!r}", field=field)
            status = check.get("expect_status", 200)
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise InvalidInput("expect_status must be an HTTP status code", field=field)
            entry.update(url=url, expect_status=status)
        else:
            entry["argv"] = _argv(check.get("argv"), field)
        checks.append(entry)
    return checks


def _scripts(raw: Any, field: str) -> list[dict[str, Any]]:
    """Script references "name" (newest version) or "name@3", resolved now to the exact stored version."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_HOOKS or not all(isinstance(r, str) for r in raw):
        raise InvalidInput(f"{field} is a list of at most {MAX_HOOKS} script names (name or name@version)", field)
    resolved = []
    for ref in raw:
        match = _SCRIPT_REF.match(ref)
        if not match:
            raise InvalidInput(f"not a script reference: {ref!r} (name or name@version)", field=field)
        rows = HookScript.objects.filter(name=match.group(1))
        if match.group(2):
            rows = rows.filter(version=int(match.group(2)))
        script = rows.order_by("-version").first()
        if script is None:
            raise NotFound(f"no script {ref!r}")
        resolved.append({"name": f"{script.name}-v{script.version}", "argv": script.argv, "timeout": script.timeout})
    return resolved


def parse_options(data: Mapping[str, Any]) -> dict[str, Any]:
    """Check plan options and resolve script versions; raises InvalidInput naming the field."""
    known = {
        "reboot",
        "pre_scripts",
        "post_scripts",
        "health_checks",
        "holds",
        "exclusions",
        "cooldown_days",
        "snapshot",
        "rollback_on_failure",
    }
    unknown = set(data) - known
    if unknown:
        raise InvalidInput(f"unknown option {sorted(unknown)[0]!r}", field="options")
    reboot = data.get("reboot", "if_required")
    if reboot not in REBOOT_POLICIES:
        raise InvalidInput(f"reboot must be one of {', '.join(REBOOT_POLICIES)}", field="options.reboot")
    cooldown = data.get("cooldown_days", 0)
    if not isinstance(cooldown, int) or isinstance(cooldown, bool) or not 0 <= cooldown <= 365:
        raise InvalidInput("cooldown_days must be 0 to 365", field="options.cooldown_days")
    snapshot = data.get("snapshot") or {}
    if not isinstance(snapshot, dict) or set(snapshot) - {"before", "after", "timeout"}:
        raise InvalidInput("snapshot has `before` and `after` commands and a `timeout`", field="options.snapshot")
    return {
        "reboot": reboot,
        "pre_scripts": _scripts(data.get("pre_scripts"), "options.pre_scripts"),
        "post_scripts": _scripts(data.get("post_scripts"), "options.post_scripts"),
        "health_checks": _health_checks(data.get("health_checks")),
        "holds": list(_names(data, "holds")),
        "exclusions": list(_names(data, "exclusions")),
        "cooldown_days": cooldown,
        "snapshot": {
            "before": _argv(snapshot["before"], "options.snapshot.before") if snapshot.get("before") else None,
            "after": _argv(snapshot["after"], "options.snapshot.after") if snapshot.get("after") else None,
            "timeout": _timeout(snapshot.get("timeout"), "options.snapshot.timeout", 600),
        },
        "rollback_on_failure": bool(data.get("rollback_on_failure", True)),
    }


def parse_rings(raw: Any) -> list[dict[str, Any]]:
    """Ring specs with gates; the default pilot -> early -> broad when none are given."""
    if not raw:
        return [ring_to_data(spec) for spec in core.DEFAULT_RINGS]
    if not isinstance(raw, list) or len(raw) > 10:
        raise InvalidInput("rings is a list of 1 to 10 rings", field="rings")
    rings = []
    for i, ring in enumerate(raw):
        field = f"rings[{i}]"
        if not isinstance(ring, dict) or not isinstance(ring.get("name"), str) or not ring["name"].strip():
            raise InvalidInput("a ring needs a name", field=field)
        percent = ring.get("percent")
        if percent is not None and (not isinstance(percent, int | float) or not 0 < percent <= 100):
            raise InvalidInput("percent must be above 0 and at most 100", field=f"{field}.percent")
        gate = ring.get("gate") or {}
        try:
            parsed = core.Gate(
                max_failure_ratio=float(gate.get("max_failure_ratio", 0.0)),
                min_successes=int(gate.get("min_successes", 1)),
                soak=timedelta(minutes=float(gate.get("soak_minutes", 0))),
                rollback_on_failure=bool(gate.get("rollback_on_failure", True)),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"bad gate: {exc}", field=f"{field}.gate") from None
        except InvalidInput as exc:  # core.Gate names its own field; say which ring's gate it is
            raise InvalidInput(f"{field}: {exc}", field=f"{field}.gate.{exc.field or ''}".rstrip(".")) from None
        spec = core.RingSpec(
            name=ring["name"].strip()[:64],
            groups=frozenset(str(g) for g in ring.get("groups") or []),
            tags=frozenset(str(t) for t in ring.get("tags") or []),
            percent=float(percent) if percent is not None else None,
            gate=parsed,
        )
        rings.append(ring_to_data(spec))
    if len({r["name"] for r in rings}) != len(rings):
        raise InvalidInput("ring names must be distinct", field="rings")
    return rings


def ring_to_data(spec: core.RingSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "groups": sorted(spec.groups),
        "tags": sorted(spec.tags),
        "percent": spec.percent,
        "gate": gate_to_data(spec.gate),
    }


def gate_to_data(gate: core.Gate) -> dict[str, Any]:
    return {
        "max_failure_ratio": gate.max_failure_ratio,
        "min_successes": gate.min_successes,
        "soak_minutes": gate.soak.total_seconds() / 60,
        "rollback_on_failure": gate.rollback_on_failure,
    }


def gate_from_data(data: Mapping[str, Any]) -> core.Gate:
    return core.Gate(
        max_failure_ratio=float(data.get("max_failure_ratio", 0.0)),
        min_successes=int(data.get("min_successes", 1)),
        soak=timedelta(minutes=float(data.get("soak_minutes", 0))),
        rollback_on_failure=bool(data.get("rollback_on_failure", True)),
    )


def ring_specs(rings: Sequence[Mapping[str, Any]]) -> list[core.RingSpec]:
    return [
        core.RingSpec(
            name=r["name"],
            groups=frozenset(r.get("groups") or []),
            tags=frozenset(r.get("tags") or []),
            percent=r.get("percent"),
            gate=gate_from_data(r.get("gate") or {}),
        )
        for r in rings
    ]


# --- preview -------------------------------------------------------------------------------------------------


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _at_least(ecosystem: str, version: str, fixed: str) -> bool:
    scheme = scheme_for(ecosystem)
    if scheme is None or not fixed:
        return bool(fixed) and version == fixed
    try:
        return scheme.sort_key(version) >= scheme.sort_key(fixed)
    except InvalidVersion:
        return False


def _selected_findings(selection: Selection, host_ids: list[int]) -> QuerySet[Finding]:
    rows = Finding.objects.filter(host_id__in=host_ids, status=FindingStatus.OPEN)
    if selection.kind == "cves":
        return rows.filter(vulnerability__in=selection.values)
    if selection.kind == "priority":
        return rows.filter(priority_decision__in=selection.values)
    if selection.kind == "due_before":
        return rows.filter(due_date__lt=selection.before)
    if selection.kind == "advisories":
        ids = [f.pk for f in rows.only("pk", "advisory_ids") if set(f.advisory_ids) & set(selection.values)]
        return Finding.objects.filter(pk__in=ids)
    if selection.kind == "severity":
        from patchday.advisories.models import Vulnerability

        wanted = {v.lower() for v in selection.values}
        scores = dict(
            Vulnerability.objects.filter(cve_id__in=rows.values("vulnerability"), cvss_score__isnull=False).values_list(
                "cve_id", "cvss_score"
            )
        )
        cves = [
            cve
            for cve, score in scores.items()
            if score is not None and rating_for_score(score).value.lower() in wanted
        ]
        return rows.filter(vulnerability__in=cves)
    raise AssertionError(f"not a finding selection: {selection.kind}")


@dataclass(slots=True)
class HostPreview:
    host: Host
    manager: str = ""
    targets: list[dict[str, str]] | None = None
    changes: list[dict[str, Any]] | None = None
    skipped: list[dict[str, str]] | None = None
    closes: list[int] | None = None
    reboot: bool = False


def _preview_host(
    host: Host,
    updates: list[PendingUpdate],
    wanted_sources: set[str] | None,
    selection: Selection,
    options: Mapping[str, Any],
    open_findings: list[Finding],
    cooled: Mapping[tuple[int, str], datetime],
    now: datetime,
) -> HostPreview:
    preview = HostPreview(host, targets=[], changes=[], skipped=[], closes=[])
    assert preview.targets is not None
    assert preview.changes is not None
    assert preview.skipped is not None
    cooldown = timedelta(days=int(options.get("cooldown_days", 0)))
    chosen: list[PendingUpdate] = []
    for update in updates:
        source = update.source or update.name
        if selection.kind == "security" and not update.security:
            continue
        if selection.kind == "packages" and not (
            _matches(update.name, selection.values) or _matches(source, selection.values)
        ):
            continue
        if wanted_sources is not None and source not in wanted_sources:
            continue
        if _matches(update.name, options.get("holds", [])):
            preview.skipped.append({"name": update.name, "version": update.candidate, "reason": "held"})
            continue
        if _matches(update.name, options.get("exclusions", [])):
            preview.skipped.append({"name": update.name, "version": update.candidate, "reason": "excluded"})
            continue
        published = cooled.get((host.pk, source))
        if cooldown and published is not None and now - published < cooldown:
            preview.skipped.append(
                {
                    "name": update.name,
                    "version": update.candidate,
                    "reason": f"cooling down: published {published.date().isoformat()}, "
                    f"less than {cooldown.days} days ago",
                }
            )
            continue
        if update.manager not in MANAGERS:
            preview.skipped.append(
                {
                    "name": update.name,
                    "version": update.candidate,
                    "reason": f"patchday cannot deploy with {update.manager}",
                }
            )
            continue
        chosen.append(update)
    if not chosen:
        return preview
    preview.manager = chosen[0].manager
    for update in chosen:
        preview.targets.append({"name": update.name, "version": update.candidate})
        preview.changes.append(
            {
                "name": update.name,
                "arch": update.arch,
                "from": update.installed,
                "to": update.candidate,
                "action": "upgrade",
            }
        )
    new_source_versions: dict[str, list[str]] = {}
    for update in chosen:
        new_source_versions.setdefault(update.source or update.name, []).append(
            update.source_version or update.candidate
        )
    preview.closes = sorted(
        f.pk
        for f in open_findings
        if f.fixed_version
        and any(_at_least(f.ecosystem, v, f.fixed_version) for v in new_source_versions.get(f.package, []))
    )
    policy = options.get("reboot", "if_required")
    preview.reboot = policy == "always" or (
        policy == "if_required"
        and (bool(host.reboot_required) or any(_matches(u.name, _REBOOT_PACKAGES) for u in chosen))
    )
    return preview


def compute_preview(
    selection: Selection, target: Target, options: Mapping[str, Any], rings: Sequence[Mapping[str, Any]], now: datetime
) -> tuple[list[tuple[HostPreview, int, datetime | None]], dict[str, Any]]:
    """Per host: its preview, ring index and window start; and the plan totals. Raises InvalidInput when the
    target has no host or the selection matches no update on any of them (the message says which)."""
    hosts = target.resolve()
    if not hosts:
        raise InvalidInput("the target matches no host", field="target")
    host_ids = [h.pk for h in hosts]
    updates: dict[int, list[PendingUpdate]] = {h: [] for h in host_ids}
    for update in PendingUpdate.objects.filter(host_id__in=host_ids).order_by("name", "arch"):
        updates[update.host_id].append(update)
    findings: dict[int, list[Finding]] = {h: [] for h in host_ids}
    for finding in Finding.objects.filter(host_id__in=host_ids, status=FindingStatus.OPEN):
        findings[finding.host_id].append(finding)
    wanted: dict[int, set[str]] | None = None
    if selection.kind in FINDING_KINDS:
        wanted = {h: set() for h in host_ids}
        for host_id, package in _selected_findings(selection, host_ids).values_list("host_id", "package"):
            wanted[host_id].add(package)
    cooled: dict[tuple[int, str], datetime] = {}
    for f in findings.values():
        for finding in f:
            if finding.fix_available_since is not None:
                key = (finding.host_id, finding.package)
                cooled[key] = max(cooled.get(key, finding.fix_available_since), finding.fix_available_since)
    previews = [
        _preview_host(
            h,
            updates[h.pk],
            wanted[h.pk] if wanted is not None else None,
            selection,
            options,
            findings[h.pk],
            cooled,
            now,
        )
        for h in hosts
    ]
    if not any(p.targets for p in previews):
        pending = sum(len(u) for u in updates.values())
        raise InvalidInput(
            f"the selection ({selection.kind}) matches no update on the {len(hosts)} target host(s), "
            f"which offer {pending} pending update(s) in all",
            field="selection",
        )
    from patchday.inventory.queries import groups_of_hosts

    memberships = groups_of_hosts(host_ids)
    tags: dict[int, set[str]] = {h: set() for h in host_ids}
    for host_id, tag in HostTag.objects.filter(host_id__in=host_ids).values_list("host_id", "tag"):
        tags[host_id].add(tag)
    refs = [core.HostRef(id=h.pk, groups=frozenset(memberships[h.pk]), tags=frozenset(tags[h.pk])) for h in hosts]
    assignment = core.assign_rings(refs, ring_specs(rings), salt=f"plan-{selection.kind}")
    host_windows = windows.windows_of(hosts)
    freezes = windows.freezes_after(now)
    estimate = windows.job_estimate()
    rows = [
        (
            p,
            assignment.get(p.host.pk, len(rings) - 1),
            windows.start_at(host_windows[p.host.pk], now, estimate, freezes),
        )
        for p in previews
    ]
    totals = _totals(rows, rings)
    return rows, totals


def _totals(
    rows: Sequence[tuple[HostPreview, int, datetime | None]], rings: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    with_changes = [(p, r, w) for p, r, w in rows if p.targets]
    starts = sorted(w for _, _, w in with_changes if w is not None)
    return {
        "hosts": len(rows),
        "hosts_with_changes": len(with_changes),
        "packages": sum(len(p.targets or []) for p, _, _ in rows),
        "distinct_packages": len({(t["name"], t["version"]) for p, _, _ in rows for t in p.targets or []}),
        "reboots": sum(1 for p, _, _ in with_changes if p.reboot),
        "findings_closed": sum(len(p.closes or []) for p, _, _ in rows),
        "skipped": sum(len(p.skipped or []) for p, _, _ in rows),
        "by_ring": {ring["name"]: sum(1 for _, r, _ in with_changes if r == i) for i, ring in enumerate(rings)},
        "first_start": starts[0].isoformat() if starts else None,
        "last_start": starts[-1].isoformat() if starts else None,
        "no_window_found": sum(1 for _, _, w in with_changes if w is None),
    }


# --- simulated runs on the hosts -----------------------------------------------------------------------------

SIMULATING = (core.PlanState.DRAFT, core.PlanState.PENDING_APPROVAL, core.PlanState.APPROVED)
SIMULATION_ACTIONS = frozenset({"upgrade", "install", "remove", "downgrade"})
SIMULATIONS_PER_CHECKIN = 5


def simulation_requests(host_id: int) -> list[dict[str, Any]]:
    """Preview entries of this host still waiting for its simulated run (answered by its agent)."""
    rows = (
        PlanHost.objects.filter(host_id=host_id, simulated=False, plan__state__in=SIMULATING)
        .exclude(targets=[])
        .order_by("pk")
        .values_list("pk", "manager", "targets")[:SIMULATIONS_PER_CHECKIN]
    )
    return [{"plan_host": pk, "manager": manager, "targets": targets} for pk, manager, targets in rows]


def _checked_changes(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or len(raw) > 20000:
        raise InvalidInput("changes must be a list of at most 20000 packages", field="changes")
    changes = []
    for change in raw:
        if not isinstance(change, dict) or change.get("action") not in SIMULATION_ACTIONS:
            raise InvalidInput("each change needs an action: upgrade, install, remove or downgrade", field="changes")
        entry: dict[str, Any] = {"action": change["action"]}
        for key, limit in (("name", 255), ("arch", 32), ("from", 255), ("to", 255)):
            value = change.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                raise InvalidInput(f"a change's {key} must be text of at most {limit} characters", field="changes")
            entry[key] = value
        if not entry["name"]:
            raise InvalidInput("each change needs a package name", field="changes")
        changes.append(entry)
    return changes


def record_simulation(host_id: int, plan_host_id: int, changes: Any, error: str, now: datetime | None = None) -> None:
    """Store what the host's package manager says the plan would change there (dependencies included).

    The entry must be this host's; a plan already started or closed keeps its preview (NotFound/Conflict).
    """
    now = now or timezone.now()
    checked = _checked_changes(changes) if not error else []
    with transaction.atomic():
        entry = PlanHost.objects.select_for_update().select_related("plan", "host").filter(pk=plan_host_id).first()
        if entry is None or entry.host_id != host_id:
            raise NotFound(f"no plan entry {plan_host_id} for this host")
        if entry.plan.state not in SIMULATING:
            raise Conflict(f"plan {entry.plan_id} is {entry.plan.state}: its preview is final")
        if error:
            entry.simulation_error = error[:2000]
        else:
            entry.changes, entry.simulation_error = checked, ""
        entry.simulated, entry.simulated_at = True, now
        entry.save(update_fields=["changes", "simulated", "simulated_at", "simulation_error"])
        plan = entry.plan
        targets = {t["name"] for t in entry.targets}
        plan.totals = {
            **plan.totals,
            "simulated_hosts": PlanHost.objects.filter(plan=plan, simulated=True).exclude(targets=[]).count(),
            "dependencies": sum(
                1
                for ph in PlanHost.objects.filter(plan=plan, simulated=True)
                for c in ph.changes
                if c["name"].split(":")[0] not in {t["name"] for t in ph.targets}
            ),
        }
        plan.save(update_fields=["totals"])
        from patchday.core.audit import ActorKind

        audit.record(
            Actor(ActorKind.HOST, entry.host.name),
            "plan.simulation",
            "plan",
            plan.pk,
            {
                "host": entry.host.name,
                "changes": len(checked),
                "beyond_targets": sum(1 for c in checked if c["name"].split(":")[0] not in targets),
                "error": error[:500],
            },
        )


# --- plan life ------------------------------------------------------------------------------------------------


def create_plan(
    actor: Actor,
    username: str,
    name: str,
    selection: Mapping[str, Any],
    target: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    rings: Any = None,
    now: datetime | None = None,
) -> Plan:
    """Check a plan, compute its preview and store it as a draft; raises InvalidInput when anything does not
    fit, including a selection that matches no update (nothing is stored then)."""
    now = now or timezone.now()
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("a plan needs a name of 1 to 200 characters", field="name")
    parsed_selection = Selection.parse(selection)
    parsed_target = Target.parse(target)
    parsed_options = parse_options(options or {})
    parsed_rings = parse_rings(rings)
    rows, totals = compute_preview(parsed_selection, parsed_target, parsed_options, parsed_rings, now)
    with transaction.atomic():
        plan = Plan.objects.create(
            name=name,
            state=core.PlanState.DRAFT,
            selection=parsed_selection.to_data(),
            target=parsed_target.to_data(),
            options=parsed_options,
            rings=parsed_rings,
            totals=totals,
            requested_by=username,
            created_at=now,
            previewed_at=now,
        )
        _store_preview(plan, rows)
        audit.record(
            actor,
            "plan.create",
            "plan",
            plan.pk,
            {
                "name": name,
                "selection": plan.selection,
                "target": plan.target,
                "options": parsed_options,
                "rings": [r["name"] for r in parsed_rings],
                "totals": totals,
            },
        )
    return plan


def _store_preview(plan: Plan, rows: Sequence[tuple[HostPreview, int, datetime | None]]) -> None:
    PlanHost.objects.filter(plan=plan).delete()
    PlanHost.objects.bulk_create(
        [
            PlanHost(
                plan=plan,
                host=p.host,
                ring=ring,
                manager=p.manager,
                targets=p.targets or [],
                changes=p.changes or [],
                skipped=p.skipped or [],
                reboot=p.reboot,
                closes=p.closes or [],
                window_start=start,
            )
            for p, ring, start in rows
        ],
        batch_size=500,
    )


def refresh_preview(actor: Actor, plan_id: int, now: datetime | None = None) -> Plan:
    """Recompute a draft or pending plan's preview from the current inventory."""
    now = now or timezone.now()
    with transaction.atomic():
        plan = _locked(plan_id)
        if plan.state not in (core.PlanState.DRAFT, core.PlanState.PENDING_APPROVAL):
            raise Conflict(f"plan {plan.pk} is {plan.state}: its preview is final")
        rows, totals = compute_preview(
            Selection.parse(plan.selection), Target.parse(plan.target), plan.options, plan.rings, now
        )
        plan.totals, plan.previewed_at = totals, now
        plan.save(update_fields=["totals", "previewed_at"])
        _store_preview(plan, rows)
        audit.record(actor, "plan.preview", "plan", plan.pk, {"totals": totals})
    return plan


def get_plan(plan_id: int) -> Plan:
    plan = Plan.objects.filter(pk=plan_id).first()
    if plan is None:
        raise NotFound(f"no plan with id {plan_id}")
    return plan


def _locked(plan_id: int) -> Plan:
    plan = Plan.objects.select_for_update().filter(pk=plan_id).first()
    if plan is None:
        raise NotFound(f"no plan with id {plan_id}")
    return plan


def _move(plan: Plan, event: core.PlanEvent) -> None:
    try:
        plan.state = core.plan_transition(core.PlanState(plan.state), event)
    except InvalidTransition as exc:
        raise Conflict(f"plan {plan.pk} is {plan.state}: cannot {event.value.replace('_', ' ')}") from exc


def submit(actor: Actor, plan_id: int, now: datetime | None = None) -> Plan:
    """Route a draft for approval; an enabled auto-approval rule that fits approves it at once (audited)."""
    now = now or timezone.now()
    with transaction.atomic():
        plan = _locked(plan_id)
        _move(plan, core.PlanEvent.SUBMIT)
        plan.submitted_at = now
        plan.save(update_fields=["state", "submitted_at"])
        audit.record(actor, "plan.submit", "plan", plan.pk, {"totals": plan.totals})
        rule = _fitting_rule(plan)
        if rule is not None:
            _move(plan, core.PlanEvent.AUTO_APPROVE)
            plan.decided_at, plan.decided_by, plan.auto_rule = now, f"rule:{rule.name}", rule.name
            plan.save(update_fields=["state", "decided_at", "decided_by", "auto_rule"])
            Approval.objects.create(
                plan=plan,
                decision="auto_approve",
                by=f"rule:{rule.name}",
                comment=f"auto-approval rule {rule.name!r}",
                at=now,
            )
            audit.record(actor, "plan.auto_approve", "plan", plan.pk, {"rule": rule.name})
    _notify_state(plan)
    return plan


def _fitting_rule(plan: Plan) -> AutoApprovalRule | None:
    hosts = PlanHost.objects.filter(plan=plan).exclude(targets=[]).select_related("host")
    environments = {ph.host.environment for ph in hosts}
    closes = [fid for ph in hosts for fid in ph.closes]
    decisions = set(Finding.objects.filter(pk__in=closes).values_list("priority_decision", flat=True))
    for rule in AutoApprovalRule.objects.filter(enabled=True).order_by("name"):
        if rule.selections and plan.selection.get("kind") not in rule.selections:
            continue
        if rule.environments and not environments <= set(rule.environments):
            continue
        limit = DECISIONS.index(rule.below_decision) if rule.below_decision in DECISIONS else 0
        if any(d in DECISIONS and DECISIONS.index(d) <= limit for d in decisions):
            continue
        return rule
    return None


def decide(actor: Actor, username: str, plan_id: int, approve: bool, comment: str, now: datetime | None = None) -> Plan:
    """Approve or reject a pending plan as `username`; the requester may not decide their own plan."""
    now = now or timezone.now()
    comment = comment.strip()
    if not approve and not comment:
        raise InvalidInput("a rejection needs a comment saying why", field="comment")
    with transaction.atomic():
        plan = _locked(plan_id)
        if plan.requested_by == username:
            raise PermissionDenied(f"{username} requested plan {plan.pk} and may not decide it: ask another approver")
        _move(plan, core.PlanEvent.APPROVE if approve else core.PlanEvent.REJECT)
        plan.decided_at, plan.decided_by = now, username
        plan.save(update_fields=["state", "decided_at", "decided_by"])
        decision = "approve" if approve else "reject"
        Approval.objects.create(plan=plan, decision=decision, by=username, comment=comment[:2000], at=now)
        audit.record(actor, f"plan.{decision}", "plan", plan.pk, {"comment": comment[:2000]})
    _notify_state(plan)
    return plan


def cancel(actor: Actor, plan_id: int) -> Plan:
    with transaction.atomic():
        plan = _locked(plan_id)
        _move(plan, core.PlanEvent.CANCEL)
        plan.save(update_fields=["state"])
        audit.record(actor, "plan.cancel", "plan", plan.pk, {})
    _notify_state(plan)
    return plan


def _notify_state(plan: Plan) -> None:
    from patchday.rollouts.signals import change_state

    change_state("plan", plan.pk, plan.state, {"name": plan.name, "requested_by": plan.requested_by})


# --- scripts and rules ----------------------------------------------------------------------------------------


def save_script(actor: Actor, name: str, argv: Any, timeout: int = 300, description: str = "") -> HookScript:
    """Store a new version of a script (the first is version 1); versions are never edited."""
    if not _SCRIPT_REF.match(name) or "@" in name:
        raise InvalidInput("a script name is lowercase letters, digits, '.', '_' or '-' (1-64)", field="name")
    argv = _argv(argv, "argv")
    timeout = _timeout(timeout, "timeout")
    with transaction.atomic():
        last = HookScript.objects.filter(name=name).order_by("-version").first()
        script = HookScript.objects.create(
            name=name,
            version=(last.version + 1) if last else 1,
            argv=argv,
            timeout=timeout,
            description=description[:255],
            created_by=actor.name,
            created_at=timezone.now(),
        )
        audit.record(actor, "script.save", "script", f"{name}@{script.version}", {"argv": argv, "timeout": timeout})
    return script


def save_rule(
    actor: Actor, name: str, selections: Sequence[str], environments: Sequence[str], below_decision: str = "Act"
) -> AutoApprovalRule:
    """Create or replace an auto-approval rule (admins and approvers)."""
    if not name.strip() or len(name) > 100:
        raise InvalidInput("a rule needs a name of 1 to 100 characters", field="name")
    bad = [s for s in selections if s not in SELECTION_KINDS]
    if bad:
        raise InvalidInput(f"unknown selection kind {bad[0]!r}", field="selections")
    if below_decision not in DECISIONS:
        raise InvalidInput(f"below_decision must be one of {', '.join(DECISIONS)}", field="below_decision")
    if not selections and not environments:
        raise InvalidInput(
            "a rule that names no selection kind and no environment would approve everything", field="selections"
        )
    with transaction.atomic():
        rule, created = AutoApprovalRule.objects.update_or_create(
            name=name.strip(),
            defaults={
                "selections": sorted(set(selections)),
                "environments": sorted(set(environments)),
                "below_decision": below_decision,
                "enabled": True,
                "created_by": actor.name,
                "created_at": timezone.now(),
            },
        )
        audit.record(
            actor,
            "rule.save",
            "auto_approval_rule",
            rule.name,
            {
                "selections": rule.selections,
                "environments": rule.environments,
                "below_decision": below_decision,
                "created": created,
            },
        )
    return rule


def delete_rule(actor: Actor, name: str) -> None:
    with transaction.atomic():
        deleted, _ = AutoApprovalRule.objects.filter(name=name).delete()
        if not deleted:
            raise NotFound(f"no auto-approval rule named {name!r}")
        audit.record(actor, "rule.delete", "auto_approval_rule", name, {})
