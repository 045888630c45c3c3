"""Maintenance windows and freeze periods as stored objects: create, import (.ics), delete, and the
questions the rollout driver asks ("which window does this host have", "may its job start now").

The semantics (RRULE in local wall time, DST, offsets, freezes) live in patchday.core.windows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from patchday.audit import services as audit
from patchday.core import windows as core
from patchday.core.audit import Actor
from patchday.core.errors import Conflict, InvalidInput, NotFound
from patchday.inventory.models import Host, HostGroup
from patchday.rollouts.models import FreezePeriod, Job, MaintenanceWindow
from patchday.settings import load_settings

MAX_DURATION_MINUTES = 7 * 24 * 60
T = TypeVar("T")
ESTIMATE_SAMPLE = 50  # the last N finished deploy jobs estimate how long the next one takes


def to_core(window: MaintenanceWindow) -> core.MaintenanceWindow:
    """The stored window as the core value (validated when it was stored)."""
    return core.parse_window(
        window.name,
        window.rrule,
        timedelta(minutes=window.duration_minutes),
        window.timezone,
        datetime.fromisoformat(window.starts),
        timedelta(minutes=window.offset_minutes),
    )


def _check_groups(groups: Sequence[str]) -> list[str]:
    names = sorted({g.strip() for g in groups if g.strip()})
    known = set(HostGroup.objects.filter(name__in=names).values_list("name", flat=True))
    missing = [g for g in names if g not in known]
    if missing:
        raise NotFound(f"no host group named {', '.join(repr(g) for g in missing)}")
    return names


def create_window(
    actor: Actor,
    name: str,
    rrule: str,
    duration_minutes: int,
    tz: str,
    starts: str,
    *,
    offset_minutes: int = 0,
    groups: Sequence[str] = (),
    description: str = "",
) -> MaintenanceWindow:
    """Store a window after core validation; raises InvalidInput naming the field, Conflict on a taken name."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput("a window needs a name of 1 to 64 characters", field="name")
    if not 0 < duration_minutes <= MAX_DURATION_MINUTES:
        raise InvalidInput("duration_minutes must be between 1 and 10080 (7 days)", field="duration_minutes")
    try:
        wall = datetime.fromisoformat(starts)
    except ValueError:
        raise InvalidInput(
            f"starts must be a local date and time like 2026-01-06T02:00, not {starts!r}", "starts"
        ) from None
    if wall.tzinfo is not None:
        raise InvalidInput("starts is local wall time in the window's time zone: give it without an offset", "starts")
    core.parse_window(name, rrule, timedelta(minutes=duration_minutes), tz, wall, timedelta(minutes=offset_minutes))
    with transaction.atomic():
        if MaintenanceWindow.objects.filter(name=name).exists():
            raise Conflict(f"a maintenance window named {name!r} exists")
        window = MaintenanceWindow.objects.create(
            name=name,
            description=description[:255],
            rrule=rrule.strip(),
            duration_minutes=duration_minutes,
            timezone=tz,
            starts=wall.replace(microsecond=0).isoformat(),
            offset_minutes=offset_minutes,
            groups=_check_groups(groups),
            created_at=timezone.now(),
        )
        audit.record(
            actor,
            "window.create",
            "maintenance_window",
            name,
            {
                "rrule": window.rrule,
                "duration_minutes": duration_minutes,
                "timezone": tz,
                "starts": window.starts,
                "offset_minutes": offset_minutes,
                "groups": window.groups,
            },
        )
    forget_cached()
    return window


def delete_window(actor: Actor, name: str) -> None:
    with transaction.atomic():
        window = get_window(name)
        in_use = Host.objects.filter(maintenance_window=name).count()
        window.delete()
        audit.record(actor, "window.delete", "maintenance_window", name, {"hosts_left_without": in_use})
    forget_cached()


def get_window(name: str) -> MaintenanceWindow:
    window = MaintenanceWindow.objects.filter(name=name).first()
    if window is None:
        raise NotFound(f"no maintenance window named {name!r}")
    return window


def list_windows() -> QuerySet[MaintenanceWindow]:
    return MaintenanceWindow.objects.order_by("name")


def create_freeze(actor: Actor, name: str, start: datetime, end: datetime, reason: str = "") -> FreezePeriod:
    """A change freeze; raises InvalidInput unless start < end (both aware)."""
    if not name.strip() or len(name) > 100:
        raise InvalidInput("a freeze needs a name of 1 to 100 characters", field="name")
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("freeze start and end need a time zone offset", field="start")
    if not start < end:
        raise InvalidInput("a freeze must end after it starts", field="end")
    with transaction.atomic():
        freeze = FreezePeriod.objects.create(
            name=name.strip(),
            start=start,
            end=end,
            reason=reason[:255],
            created_by=actor.name,
            created_at=timezone.now(),
        )
        audit.record(
            actor,
            "freeze.create",
            "freeze",
            freeze.pk,
            {"name": freeze.name, "start": start.isoformat(), "end": end.isoformat(), "reason": freeze.reason},
        )
    forget_cached()
    return freeze


def delete_freeze(actor: Actor, freeze_id: int) -> None:
    with transaction.atomic():
        freeze = FreezePeriod.objects.filter(pk=freeze_id).first()
        if freeze is None:
            raise NotFound(f"no freeze with id {freeze_id}")
        freeze.delete()
        audit.record(actor, "freeze.delete", "freeze", freeze_id, {"name": freeze.name})
    forget_cached()


@dataclass(frozen=True, slots=True)
class IcsResult:
    windows: list[str]
    freezes: list[int]
    skipped: list[str]


def import_ics(actor: Actor, content: str | bytes) -> IcsResult:
    """Store every window and freeze of an iCalendar file in one transaction; a name already taken refuses
    the whole file (nothing is stored), events the parser cannot use are listed as skipped."""
    from patchday.connectors.imports.ics import parse_ics

    parsed = parse_ics(content)
    with transaction.atomic():
        names: list[str] = []
        for window in parsed.windows:
            wall = window.starts.replace(tzinfo=None)
            stored = create_window(
                actor,
                window.name,
                window.rrule,
                int(window.duration.total_seconds() // 60),
                window.timezone,
                wall.isoformat(),
                offset_minutes=int(window.offset.total_seconds() // 60),
            )
            names.append(stored.name)
        freezes = [create_freeze(actor, f.name, f.start, f.end, "imported from iCalendar").pk for f in parsed.freezes]
        audit.record(
            actor,
            "window.import",
            "maintenance_window",
            "ics",
            {"windows": names, "freezes": freezes, "skipped": list(parsed.skipped)},
        )
    return IcsResult(names, freezes, list(parsed.skipped))


def freezes_after(now: datetime) -> list[core.FreezePeriod]:
    """Freezes not yet over, as core values."""
    stored = _cached("freezes", lambda: [(f.name, f.start, f.end) for f in FreezePeriod.objects.all()])
    return [core.FreezePeriod(name, start, end) for name, start, end in stored if end > now]


def windows_of(hosts: Iterable[Host]) -> dict[int, core.MaintenanceWindow | None]:
    """Each host's window: the one it names, else the first (by name) covering one of its groups, else None
    (a host without a window may be patched at any time outside freezes)."""
    from patchday.inventory.queries import groups_of_hosts

    hosts = list(hosts)
    converted, by_group = _stored_windows()
    result: dict[int, core.MaintenanceWindow | None] = {}
    unnamed = [h.pk for h in hosts if h.maintenance_window not in converted]
    memberships = groups_of_hosts(unnamed) if by_group and unnamed else {}
    for host in hosts:
        name = host.maintenance_window if host.maintenance_window in converted else ""
        if not name and by_group:
            member_of = memberships.get(host.pk, set())
            name = next((w for w, g in by_group if g in member_of), "")
        result[host.pk] = converted.get(name) if name else None
    return result


_CACHE_SECONDS = 5.0  # windows change rarely; a check-in storm must not re-read and re-parse them per host
_cache: dict[str, tuple[float, Any]] = {}


def _cached(key: str, load: Callable[[], T]) -> T:
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < _CACHE_SECONDS:
        return cast(T, hit[1])
    value = load()
    _cache[key] = (now, value)
    return value


def forget_cached() -> None:
    """Drop the cached windows, freezes and estimate (after a change in this process)."""
    _cache.clear()


def any_windows() -> bool:
    """Whether any maintenance window exists (cached like the windows themselves)."""
    return bool(_stored_windows()[0])


def _stored_windows() -> tuple[dict[str, core.MaintenanceWindow], list[tuple[str, str]]]:
    def load() -> tuple[dict[str, core.MaintenanceWindow], list[tuple[str, str]]]:
        stored = list(MaintenanceWindow.objects.all())
        return {w.name: to_core(w) for w in stored}, sorted((w.name, g) for w in stored for g in w.groups)

    return _cached("windows", load)


def job_estimate() -> timedelta:
    """How long a host job takes: the median of the last finished deploy jobs, else the configured default."""
    return _cached("estimate", _job_estimate)


def _job_estimate() -> timedelta:
    rows = (
        Job.objects.filter(finished_at__isnull=False, leased_at__isnull=False)
        .order_by("-finished_at")
        .values_list("leased_at", "finished_at")[:ESTIMATE_SAMPLE]
    )
    durations = [(end - start).total_seconds() for start, end in rows if start and end and end >= start]
    if len(durations) < 3:
        return timedelta(minutes=load_settings().job_estimate_minutes)
    return timedelta(seconds=max(60.0, statistics.median(durations)))


def start_at(
    window: core.MaintenanceWindow | None, now: datetime, estimate: timedelta, freezes: Sequence[core.FreezePeriod]
) -> datetime | None:
    """When a job of `estimate` may start on a host with `window`: now, a later opening, or None (none found)."""
    if window is None:
        at = now
        for _ in range(len(freezes) + 1):
            freeze = core.frozen(freezes, at)
            if freeze is None:
                return at
            at = freeze.end
        return at
    return core.start_slot(window, now, estimate, freezes)


@dataclass(frozen=True, slots=True)
class HostWindow:
    """The window a host's jobs wait for ("" when it has none) and its current or next opening outside freezes."""

    name: str
    next_start: datetime | None
    next_end: datetime | None


def host_window(host: Host, now: datetime | None = None) -> HostWindow:
    now = now or timezone.now()
    window = windows_of([host])[host.pk]
    if window is None:
        return HostWindow("", None, None)
    opening = core.next_opening(window, now, freezes_after(now))
    return HostWindow(window.name, opening.start if opening else None, opening.end if opening else None)
