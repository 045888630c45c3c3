"""Rollouts in motion: start an approved plan, advance it (the worker's tick), lease host jobs to agents and
the SSH connector, take their results, verify them by re-inventory, and obey operators' commands.

Every decision comes from patchday.core.rollout; this module loads the facts, saves the decision and
performs its actions in one transaction per rollout, so a process killed at any moment leaves either
the old state or the new one. All of a rollout's jobs are created when it starts (one per host with
changes, unique per rollout and host) and become dispatchable when their ring opens. A job is leased
by a conditional UPDATE (queued -> leased), so two executors can never hold it; a leased job whose
executor vanishes expires to `unknown` and is settled by the host's next inventory, never re-run on
its own. After success a job is never run again.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from patchday.audit import services as audit
from patchday.core import rollout as core
from patchday.core.audit import Actor, ActorKind
from patchday.core.errors import Conflict, InvalidInput, InvalidTransition, InvalidVersion, NotFound
from patchday.core.osv import scheme_for
from patchday.inventory.models import Host, HostPackage, ManagementMode
from patchday.notifications.models import Event
from patchday.rollouts import windows
from patchday.rollouts.models import Job, Plan, PlanHost, Ring, Rollout
from patchday.rollouts.plans import gate_from_data
from patchday.rollouts.signals import announce, change_state
from patchday.settings import load_settings

logger = logging.getLogger(__name__)

ACTIVE = (core.RolloutState.RUNNING, core.RolloutState.PAUSED, core.RolloutState.HALTED)
TERMINAL = (core.RolloutState.COMPLETED, core.RolloutState.ABORTED)
STEP_TIMEOUT = 3600  # seconds for the package manager step of one job
REBOOT_TIMEOUT = timedelta(minutes=30)  # a host that scheduled a reboot must report a newer boot time within this
SYSTEM = Actor(ActorKind.SYSTEM, "rollouts")
_NOTIFY_EVENTS = {
    "ring_failed": Event.RING_FAILED,
    "rollout_halted": Event.CHANGE_STATE,
    "rollout_completed": Event.ROLLOUT_COMPLETED,
    "rollout_aborted": Event.CHANGE_STATE,
}


# --- start ----------------------------------------------------------------------------------------------------


def start(actor: Actor, plan_id: int, *, override: bool = False, now: datetime | None = None) -> Rollout:
    """Turn an approved plan into a running rollout. `override` (the API lets only admins) starts a draft or
    pending plan without approval: flagged on the plan and audited as an emergency change."""
    now = now or timezone.now()
    with transaction.atomic():
        plan = Plan.objects.select_for_update().filter(pk=plan_id).first()
        if plan is None:
            raise NotFound(f"no plan with id {plan_id}")
        event = core.PlanEvent.OVERRIDE if override else core.PlanEvent.START
        try:
            plan.state = core.plan_transition(core.PlanState(plan.state), event)
        except InvalidTransition as exc:
            hint = "; an admin may start it with override (an emergency change)" if not override else ""
            raise Conflict(f"plan {plan.pk} is {plan.state}: it cannot start{hint}") from exc
        plan.override = override
        plan.save(update_fields=["state", "override"])
        rollout = Rollout.objects.create(
            plan=plan,
            state=core.RolloutState.RUNNING,
            salt=secrets.token_hex(8),
            started_by=actor.name,
            started_at=now,
        )
        rings = [
            Ring(rollout=rollout, index=i, name=spec["name"], state=core.RingState.WAITING, gate=spec.get("gate") or {})
            for i, spec in enumerate(plan.rings)
        ]
        Ring.objects.bulk_create(rings)
        rings = list(Ring.objects.filter(rollout=rollout).order_by("index"))
        _create_jobs(rollout, plan, rings, now)
        audit.record(
            actor,
            "rollout.override" if override else "rollout.start",
            "rollout",
            rollout.pk,
            {
                "plan": plan.pk,
                "override": override,
                "rings": [r.name for r in rings],
                "jobs": Job.objects.filter(rollout=rollout).count(),
            },
        )
        _advance_locked(rollout, now)
    change_state("rollout", rollout.pk, rollout.state, {"plan": plan.pk, "override": override})
    return rollout


def _create_jobs(rollout: Rollout, plan: Plan, rings: Sequence[Ring], now: datetime) -> None:
    entries = PlanHost.objects.filter(plan=plan).exclude(targets=[]).select_related("host")
    jobs = []
    for entry in entries:
        ring = rings[min(entry.ring, len(rings) - 1)]
        executor = "ssh" if entry.host.management_mode == ManagementMode.SSH else "agent"
        jobs.append(
            Job(
                rollout=rollout,
                ring=ring,
                host=entry.host,
                state=core.JobState.QUEUED,
                executor=executor,
                spec=deploy_spec(0, entry.manager, entry.targets, plan.options),
                queued_at=now,
            )
        )
    Job.objects.bulk_create(jobs, batch_size=500)  # each spec gets its job id when it is leased


def deploy_spec(
    job_id: int, manager: str, targets: Sequence[Mapping[str, str]], options: Mapping[str, Any]
) -> dict[str, Any]:
    """The executor's job spec (docs/deployment.md, "Job spec"): exact versions, scripts as argv."""
    snapshot = options.get("snapshot") or {}
    return {
        "job_id": job_id,
        "kind": "deploy",
        "manager": manager,
        "targets": [{"name": t["name"], "version": t["version"]} for t in targets],
        "restore": [],
        "rollback_of": None,
        "reboot": options.get("reboot", "if_required"),
        "pre_scripts": [
            {"name": s["name"], "argv": s["argv"], "timeout": s["timeout"]} for s in options.get("pre_scripts", [])
        ],
        "post_scripts": [
            {"name": s["name"], "argv": s["argv"], "timeout": s["timeout"]} for s in options.get("post_scripts", [])
        ],
        "health_checks": list(options.get("health_checks", [])),
        "snapshot": (
            {"before": snapshot.get("before"), "after": snapshot.get("after"), "timeout": snapshot.get("timeout", 600)}
            if snapshot.get("before") or snapshot.get("after")
            else None
        ),
        "step_timeout": STEP_TIMEOUT,
    }


def rollback_spec(job: Job) -> dict[str, Any]:
    """The spec that puts the host back to what the job recorded before it changed anything (the versions
    the preview saw when the job never reported); `restore` is empty when there is nothing to put back."""
    before = (job.result or {}).get("before") or {}
    restore = [
        {"name": name, "version": entry.get("version"), "arch": entry.get("arch", "")}
        for name, entry in sorted(before.items())
        if isinstance(entry, dict)
    ]
    if not restore and job.result is None:
        entry = PlanHost.objects.filter(plan_id=job.rollout.plan_id, host_id=job.host_id).first()
        changes = entry.changes if entry is not None else []
        restore = [{"name": c["name"], "version": c.get("from") or None, "arch": c.get("arch", "")} for c in changes]
    spec = {key: value for key, value in job.spec.items() if key not in ("targets", "restore", "rollback_of")}
    return {
        **spec,
        "job_id": job.pk,
        "kind": "rollback",
        "restore": restore,
        "rollback_of": job.pk,
        "reboot": "never",
        "pre_scripts": [],
        "post_scripts": [],
        "health_checks": [],
    }


# --- advancing ------------------------------------------------------------------------------------------------


def _view(rollout: Rollout) -> tuple[core.RolloutView, list[Ring]]:
    rings = list(Ring.objects.filter(rollout=rollout).order_by("index"))
    counts: dict[int, Counter[core.JobState]] = {r.pk: Counter() for r in rings}
    for ring_id, state, n in (
        Job.objects.filter(rollout=rollout).values_list("ring_id", "state").annotate(n=Count("id")).order_by()
    ):
        counts[ring_id][core.JobState(state)] += n
    view = core.RolloutView(
        state=core.RolloutState(rollout.state),
        rings=tuple(
            core.RingView(
                name=r.name,
                state=core.RingState(r.state),
                gate=gate_from_data(r.gate),
                jobs=dict(counts[r.pk]),
                last_finished_at=r.last_finished_at,
                health_failures=r.health_failures,
                promoted=r.promoted,
            )
            for r in rings
        ),
    )
    return view, rings


def _apply(rollout: Rollout, rings: list[Ring], decision: core.Decision, now: datetime, actor: Actor) -> list[Any]:
    """Save the decision's states and perform its actions (inside the caller's transaction); returns the
    notifications to send after commit."""
    before = rollout.state
    rollout.state = decision.state
    if decision.reason:
        rollout.reason = decision.reason[:500]
    if decision.state in TERMINAL and rollout.finished_at is None:
        rollout.finished_at = now
    rollout.ticked_at = now
    rollout.save(update_fields=["state", "reason", "finished_at", "ticked_at"])
    for ring, state in zip(rings, decision.rings, strict=True):
        if ring.state != state:
            audit.record(
                actor,
                "ring.state",
                "ring",
                f"{rollout.pk}/{ring.name}",
                {"from": ring.state, "to": state.value, "reason": decision.reason[:500]},
            )
            ring.state = state
            ring.save(update_fields=["state"])
    notices = []
    for action in decision.actions:
        match action:
            case core.OpenRing(index=index):
                ring = rings[index]
                if ring.opened_at is None:
                    ring.opened_at = now
                    ring.save(update_fields=["opened_at"])
            case core.RollbackRing(index=index):
                _queue_rollbacks(Job.objects.filter(ring=rings[index]), actor)
            case core.RetryFailed(index=index):
                for job in Job.objects.filter(
                    ring=rings[index], state__in=[core.JobState.FAILED, core.JobState.UNKNOWN]
                ):
                    _move(job, core.JobEvent.RETRY, actor, now, error="")
            case core.CancelQueued():
                for job in Job.objects.filter(rollout=rollout, state=core.JobState.QUEUED):
                    _move(job, core.JobEvent.CANCEL, actor, now)
            case core.Notify(kind=kind, ring=ring_index, detail=detail):
                notices.append((kind, ring_index, detail))
                audit.record(
                    actor,
                    f"rollout.{kind}",
                    "rollout",
                    rollout.pk,
                    {"ring": rings[ring_index].name if ring_index is not None else None, "detail": detail},
                )
    if before != rollout.state:
        audit.record(
            actor,
            "rollout.state",
            "rollout",
            rollout.pk,
            {"from": before, "to": rollout.state, "reason": rollout.reason},
        )
    return notices


def _queue_rollbacks(jobs: QuerySet[Job], actor: Actor) -> None:
    changed = (
        core.JobState.VERIFIED,
        core.JobState.FAILED,
        core.JobState.SUCCEEDED,
        core.JobState.UNKNOWN,
        core.JobState.ROLLBACK_FAILED,
    )
    for job in jobs.filter(state__in=changed).select_related("rollout"):
        _queue_rollback(job, actor, timezone.now())


def _queue_rollback(job: Job, actor: Actor, now: datetime) -> None:
    """Queue the job's rollback; one with nothing to restore (the job changed nothing) is done at once."""
    spec = rollback_spec(job)
    _move(job, core.JobEvent.ROLLBACK, actor, now)
    job.spec = spec
    job.save(update_fields=["spec"])
    if not spec["restore"]:
        _move(job, core.JobEvent.ROLLBACK_LEASE, actor, now)
        done = {
            "job_id": job.pk,
            "kind": "rollback",
            "status": "succeeded",
            "steps": [],
            "error": "",
            "note": "nothing to restore: the job changed no package",
        }
        _move(job, core.JobEvent.ROLLBACK_DONE, actor, now, rollback_result=done)


def _move(job: Job, event: core.JobEvent, actor: Actor, now: datetime, **fields: Any) -> None:
    try:
        new = core.job_transition(core.JobState(job.state), event)
    except InvalidTransition as exc:
        raise Conflict(f"job {job.pk} on host {job.host_id} is {job.state}: cannot {event.value}") from exc
    old, job.state = job.state, new
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=["state", *fields])
    audit.record(
        actor,
        "job.state",
        "job",
        job.pk,
        {"from": old, "to": new.value, "event": event.value, "host": job.host_id, "rollout": job.rollout_id},
    )


def _advance_locked(rollout: Rollout, now: datetime, actor: Actor = SYSTEM) -> list[Any]:
    view, rings = _view(rollout)
    decision = core.advance(view, now)
    if (
        decision.state == view.state
        and not decision.actions
        and all(r.state == s for r, s in zip(view.rings, decision.rings, strict=True))
    ):
        return []
    return _apply(rollout, rings, decision, now, actor)


def advance(rollout_id: int, now: datetime | None = None) -> Rollout:
    """Expire leases, then advance one rollout by its facts (idempotent)."""
    now = now or timezone.now()
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().get(pk=rollout_id)
        expire_leases(now, rollout_id=rollout.pk)
        _settle_reboots(rollout, now)
        notices = _advance_locked(rollout, now)
    _send(rollout, notices)
    return rollout


def tick(now: datetime | None = None, push: bool = True) -> dict[str, int]:
    """The worker's periodic step: advance every rollout that can still change, then push due SSH jobs."""
    now = now or timezone.now()
    ids = list(
        Rollout.objects.filter(Q(state__in=ACTIVE) | Q(ring_set__state=core.RingState.ROLLING_BACK))
        .values_list("pk", flat=True)
        .distinct()
    )
    for rollout_id in ids:
        try:
            advance(rollout_id, now)
        except Exception:  # one rollout's trouble must not stop the others
            logger.exception("advancing rollout %s failed", rollout_id)
    pushed = push_ssh_jobs(now) if push else 0
    return {"rollouts": len(ids), "pushed": pushed}


def _send(rollout: Rollout, notices: Iterable[tuple[str, int | None, str]]) -> None:
    for kind, ring, detail in notices:
        event = _NOTIFY_EVENTS.get(kind)
        if event is None:
            continue
        key = f"{kind}:{ring}" if ring is not None else kind
        announce(event, "rollout", rollout.pk, rollout.state, {"notice": kind, "ring": ring, "detail": detail}, key)


# --- commands -------------------------------------------------------------------------------------------------

COMMANDS = {c.value: c for c in core.Command}


def command(actor: Actor, rollout_id: int, name: str, ring: int | None = None, now: datetime | None = None) -> Rollout:
    """pause, resume, abort, promote, retry_failed or rollback (of a ring, also of a finished rollout)."""
    cmd = COMMANDS.get(name)
    if cmd is None:
        raise InvalidInput(f"unknown command {name!r}; use {', '.join(COMMANDS)}", field="command")
    now = now or timezone.now()
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().filter(pk=rollout_id).first()
        if rollout is None:
            raise NotFound(f"no rollout with id {rollout_id}")
        view, rings = _view(rollout)
        if ring is not None and not 0 <= ring < len(rings):
            raise InvalidInput(f"rollout {rollout.pk} has rings 0 to {len(rings) - 1}", field="ring")
        try:
            decision = core.command(view, cmd, ring)
        except InvalidTransition as exc:
            raise Conflict(f"rollout {rollout.pk} is {rollout.state}: cannot {name.replace('_', ' ')} ({exc})") from exc
        for index in decision.promoted:
            rings[index].promoted = True
            rings[index].save(update_fields=["promoted"])
        audit.record(
            actor,
            f"rollout.{cmd.value}",
            "rollout",
            rollout.pk,
            {"ring": rings[ring].name if ring is not None else None},
        )
        notices = _apply(rollout, rings, decision, now, actor)
        notices += _advance_locked(rollout, now, actor)
    _send(rollout, notices)
    change_state("rollout", rollout.pk, rollout.state, {"command": cmd.value})
    return rollout


def rollback_host(actor: Actor, rollout_id: int, host_name: str) -> Job:
    """Revert one host to what it had before this rollout's job (also long after the rollout finished)."""
    with transaction.atomic():
        job = (
            Job.objects.select_for_update()
            .select_related("rollout")
            .filter(rollout_id=rollout_id, host__name=host_name)
            .first()
        )
        if job is None:
            raise NotFound(f"rollout {rollout_id} has no job on host {host_name!r}")
        _queue_rollback(job, actor, timezone.now())
    return job


# --- leasing and results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lease:
    job_id: int
    phase: str  # deploy or rollback
    token: str
    expires_at: datetime
    spec: dict[str, Any]

    def to_data(self) -> dict[str, Any]:
        return {
            "job": self.spec,
            "phase": self.phase,
            "lease_token": self.token,
            "lease_expires_at": self.expires_at.isoformat(),
        }


def dispatchable(host_ids: Sequence[int] | None = None, executor: str | None = None) -> QuerySet[Job]:
    """Jobs an executor may take now (windows aside): deploy jobs of open rings of running rollouts, and
    every queued rollback."""
    deploy = Q(
        state=core.JobState.QUEUED,
        rollout__state=core.RolloutState.RUNNING,
        ring__state__in=[core.RingState.RUNNING, core.RingState.SOAKING, core.RingState.PASSED],  # passed: promoted
    )
    rows = Job.objects.filter(deploy | Q(state=core.JobState.ROLLBACK_QUEUED))
    if host_ids is not None:
        rows = rows.filter(host_id__in=host_ids)
    if executor is not None:
        rows = rows.filter(executor=executor)
    return rows


def lease_jobs(host_id: int, now: datetime | None = None, executor: str = "agent") -> list[Lease]:
    """Lease the host's dispatchable jobs whose window allows them to start now (rollbacks at once)."""
    if not Job.objects.filter(
        host_id=host_id, state__in=[core.JobState.QUEUED, core.JobState.ROLLBACK_QUEUED]
    ).exists():
        return []  # the check-in's common case: one indexed probe
    now = now or timezone.now()
    candidates = list(dispatchable([host_id], executor).order_by("pk"))
    if not candidates:
        return []
    may_start: bool | None = None  # asked only when a deploy job is there
    leases = []
    for job in candidates:
        rollback = job.state == core.JobState.ROLLBACK_QUEUED
        if not rollback:
            if may_start is None:
                may_start = _window_allows(host_id, now)
            if not may_start:
                continue
        lease = _lease(job, rollback, now)
        if lease is not None:
            leases.append(lease)
    return leases


def _window_allows(host_id: int, now: datetime) -> bool:
    freezes = windows.freezes_after(now)
    if not windows.any_windows() and not freezes:
        return True  # no windows anywhere and no freeze ahead: nothing to read
    host = Host.objects.only("pk", "maintenance_window").get(pk=host_id)
    window = windows.windows_of([host])[host.pk]
    if window is None and not freezes:
        return True
    start = windows.start_at(window, now, windows.job_estimate(), freezes)
    return start is not None and start <= now


def _lease(job: Job, rollback: bool, now: datetime) -> Lease | None:
    token = secrets.token_urlsafe(24)
    expires = now + timedelta(seconds=load_settings().job_lease_seconds)
    state_from = core.JobState.ROLLBACK_QUEUED if rollback else core.JobState.QUEUED
    event = core.JobEvent.ROLLBACK_LEASE if rollback else core.JobEvent.LEASE
    state_to = core.job_transition(state_from, event)
    with transaction.atomic():
        taken = Job.objects.filter(pk=job.pk, state=state_from).update(
            state=state_to, lease_token=token, lease_expires_at=expires, leased_at=now, attempts=F("attempts") + 1
        )
        if not taken:
            return None  # another executor was quicker
        audit.record(
            SYSTEM,
            "job.lease",
            "job",
            job.pk,
            {
                "host": job.host_id,
                "phase": "rollback" if rollback else "deploy",
                "executor": job.executor,
                "expires_at": expires.isoformat(),
            },
        )
    spec = {**job.spec, "job_id": job.pk}
    return Lease(job.pk, "rollback" if rollback else "deploy", token, expires, spec)


def expire_leases(now: datetime, rollout_id: int | None = None) -> int:
    """Leased jobs past their expiry become `unknown` (rollbacks: rollback_failed): their executor vanished."""
    rows = Job.objects.filter(state__in=[core.JobState.LEASED, core.JobState.ROLLBACK_LEASED], lease_expires_at__lt=now)
    if rollout_id is not None:
        rows = rows.filter(rollout_id=rollout_id)
    count = 0
    for job in rows.select_for_update():
        rollback = job.state == core.JobState.ROLLBACK_LEASED
        event = core.JobEvent.ROLLBACK_LEASE_EXPIRED if rollback else core.JobEvent.LEASE_EXPIRED
        _move(
            job,
            event,
            SYSTEM,
            now,
            error=f"no result before the lease expired at {job.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC; "
            "the next inventory settles it",
        )
        count += 1
    return count


def record_result(
    host_id: int,
    job_id: int,
    lease_token: str,
    key: str,
    phase: str,
    result: Mapping[str, Any],
    now: datetime | None = None,
) -> Job:
    """Take an executor's result. The same idempotency key again changes nothing and answers the same; a job
    of another host is unknown to this one (NotFound); a stale lease token is a Conflict."""
    now = now or timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id, host_id=host_id).first()
        if job is None:
            raise NotFound(f"no job {job_id} for this host")
        stored_key = job.rollback_key if phase == "rollback" else job.result_key
        if stored_key and stored_key == key:
            return job  # a retried post of a result already taken
        if not secrets.compare_digest(job.lease_token or "", lease_token):
            raise Conflict(
                f"job {job_id}: the lease token is not the current one (the job was leased again or expired)"
            )
        ok = result.get("status") == "succeeded"
        error = str(result.get("error") or "")[:4000]
        if phase == "rollback":
            if job.state != core.JobState.ROLLBACK_LEASED:
                raise Conflict(f"job {job_id} is {job.state}: no rollback result is expected")
            _move(
                job,
                core.JobEvent.ROLLBACK_DONE if ok else core.JobEvent.ROLLBACK_FAILED,
                SYSTEM,
                now,
                rollback_result=dict(result),
                rollback_key=key,
                error=error,
            )
        elif job.state == core.JobState.UNKNOWN:
            # The result came after the lease expired: keep it as evidence; the inventory still decides.
            job.result, job.result_key, job.finished_at = dict(result), key, now
            job.save(update_fields=["result", "result_key", "finished_at"])
            audit.record(SYSTEM, "job.late_result", "job", job.pk, {"status": result.get("status")})
        else:
            if job.state != core.JobState.LEASED:
                raise Conflict(f"job {job_id} is {job.state}: no result is expected")
            unexpected = _unexpected(job, result)
            _move(
                job,
                core.JobEvent.REPORT_SUCCESS if ok else core.JobEvent.REPORT_FAILURE,
                SYSTEM,
                now,
                result=dict(result),
                result_key=key,
                error=error,
                finished_at=now,
                unexpected=unexpected,
            )
            _finished(job.ring_id, now)
        if phase == "rollback" or not ok:  # a failure may fail the gate at once; a success waits for its inventory
            transaction.on_commit(lambda: _advance_soon(job.rollout_id))
    return job


def _finished(ring_id: int, at: datetime) -> None:
    """Move the ring's last finish forward (never back: a slower transaction must not shorten a soak)."""
    Ring.objects.filter(pk=ring_id).filter(Q(last_finished_at__lt=at) | Q(last_finished_at=None)).update(
        last_finished_at=at
    )


def _ring_settled(ring_id: int) -> bool:
    return not Job.objects.filter(ring_id=ring_id, state__in=list(core.JOB_IN_FLIGHT)).exists()


def _advance_soon(rollout_id: int) -> None:
    from patchday.rollouts.tasks import advance_rollout

    try:
        advance_rollout.enqueue(rollout_id)
    except Exception:  # the minute tick advances it anyway
        logger.exception("could not queue the advance of rollout %s", rollout_id)


def _unexpected(job: Job, result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Packages whose version changed that were neither targets nor dependencies the simulation named."""
    before = result.get("before") or {}
    after = result.get("after") or {}
    expected = {t["name"] for t in job.spec.get("targets", [])} | set(before)
    flagged = []
    for name, entry in after.items():
        if name in expected or not isinstance(entry, dict):
            continue
        flagged.append({"name": name, "version": entry.get("version")})
    return flagged[:200]


# --- verification by re-inventory -----------------------------------------------------------------------------

_AWAITING = (core.JobState.SUCCEEDED, core.JobState.UNKNOWN)


def fix_attribution(host_id: int) -> int | None:
    """The rollout whose job on this host the next inventory verifies, if any (for findings fixed by it)."""
    job = Job.objects.filter(host_id=host_id, state__in=_AWAITING).order_by("-pk").values_list("rollout_id", flat=True)
    return job.first()


def verify_host(host_id: int, inventory_at: datetime) -> list[Job]:
    """After a fresh inventory: jobs awaiting verification pass when every target is installed at (or above)
    its version, and fail with the differences otherwise, whatever the package manager said."""
    settled = []
    for job in Job.objects.select_for_update().filter(host_id=host_id, state__in=_AWAITING).select_related("host"):
        started = job.leased_at or job.queued_at
        if started and inventory_at < started:
            continue
        if job.state == core.JobState.SUCCEEDED and (job.result or {}).get("reboot_scheduled"):
            boot = job.host.boot_time
            if boot is None or job.finished_at is None or boot <= job.finished_at:
                continue  # waits for the host to come back (the tick fails it after REBOOT_TIMEOUT)
        missing = _version_gaps(job)
        if missing:
            _move(
                job,
                core.JobEvent.VERIFY_MISMATCH,
                SYSTEM,
                inventory_at,
                verified_at=inventory_at,
                error="re-inventory does not show the target versions: " + "; ".join(missing)[:3500],
            )
        else:
            _move(job, core.JobEvent.VERIFY_OK, SYSTEM, inventory_at, verified_at=inventory_at)
        _finished(job.ring_id, inventory_at)
        settled.append(job)
    for ring_id, rollout_id in {(j.ring_id, j.rollout_id) for j in settled}:
        if _ring_settled(ring_id) or any(j.state == core.JobState.FAILED for j in settled):
            # The ring's last verification (or a failure): advance now, not at the next minute tick.
            transaction.on_commit(lambda r=rollout_id: _advance_soon(r))  # type: ignore[misc]
    return settled


def _version_gaps(job: Job) -> list[str]:
    targets = {t["name"]: t["version"] for t in job.spec.get("targets", [])}
    installed: dict[str, str] = {}
    ecosystem = job.host.ecosystem
    for name, version in HostPackage.objects.filter(
        host_id=job.host_id, package_version__name__in=list(targets)
    ).values_list("package_version__name", "package_version__version"):
        installed[name] = version
    scheme = scheme_for(ecosystem) if ecosystem else None
    gaps = []
    for name, wanted in sorted(targets.items()):
        have = installed.get(name)
        if have is None:
            gaps.append(f"{name} is not installed (asked for {wanted})")
            continue
        if have == wanted:
            continue
        try:
            if scheme is not None and scheme.compare(have, wanted) > 0:
                continue  # newer than asked: the fix is in
        except InvalidVersion:
            pass
        gaps.append(f"host reports {name} {have}, asked for {wanted}")
    return gaps


def _settle_reboots(rollout: Rollout, now: datetime) -> None:
    for job in Job.objects.filter(rollout=rollout, state=core.JobState.SUCCEEDED, finished_at__lt=now - REBOOT_TIMEOUT):
        if (job.result or {}).get("reboot_scheduled"):
            _move(
                job,
                core.JobEvent.VERIFY_MISMATCH,
                SYSTEM,
                now,
                error=f"the host did not come back from its reboot within {REBOOT_TIMEOUT}",
            )


# --- push over SSH --------------------------------------------------------------------------------------------


def push_ssh_jobs(now: datetime, concurrency: int = 8) -> int:
    """Lease and run the due jobs of SSH-managed hosts (the worker's side of push execution)."""
    host_ids = list(dispatchable(executor="ssh").values_list("host_id", flat=True).distinct())
    if not host_ids:
        return 0
    leases: list[tuple[Host, Lease]] = []
    for host in Host.objects.filter(pk__in=host_ids):
        leases += [(host, lease) for lease in lease_jobs(host.pk, now, executor="ssh")]
    if not leases:
        return 0
    from patchday.connectors import services as ssh_services

    outcomes = ssh_services.run_jobs([(host, lease.to_data()) for host, lease in leases], concurrency=concurrency)
    for (host, lease), outcome in zip(leases, outcomes, strict=True):
        if outcome.result is None:
            logger.warning("SSH job %s on %s: %s", lease.job_id, host.name, outcome.error)
            continue  # the lease expires and the next inventory settles it
        record_result(
            host.pk,
            lease.job_id,
            lease.token,
            f"ssh:{lease.job_id}:{lease.phase}:{lease.token}",
            lease.phase,
            outcome.result,
        )
        if outcome.document is not None:
            ssh_services.store_document(SYSTEM, outcome.document, host.pk)
    return len(leases)


# --- reading --------------------------------------------------------------------------------------------------


def get_rollout(rollout_id: int) -> Rollout:
    rollout = Rollout.objects.select_related("plan").filter(pk=rollout_id).first()
    if rollout is None:
        raise NotFound(f"no rollout with id {rollout_id}")
    return rollout


def progress(rollout: Rollout) -> list[dict[str, Any]]:
    """Per ring: name, state, gate and job counts by state."""
    view, rings = _view(rollout)
    return [
        {
            "index": r.index,
            "name": r.name,
            "state": r.state,
            "gate": r.gate,
            "promoted": r.promoted,
            "jobs": {state.value: n for state, n in v.jobs.items()},
            "total": sum(v.jobs.values()),
        }
        for r, v in zip(rings, view.rings, strict=True)
    ]
