"""Reading deployment state for pages, the API and the CLI (no writes here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from patchday.core import windows as core_windows
from patchday.core.errors import InvalidInput, NotFound
from patchday.core.rollout import JobState, PlanState, RolloutState
from patchday.rollouts import driver, windows
from patchday.rollouts.models import Job, MaintenanceWindow, Plan, PlanHost, Rollout


def plans(state: str = "") -> QuerySet[Plan]:
    rows = Plan.objects.select_related("rollout").order_by("-created_at", "-id")
    if state:
        if state not in PlanState.__members__.values():
            raise InvalidInput(f"state must be one of {', '.join(s.value for s in PlanState)}", field="state")
        rows = rows.filter(state=state)
    return rows


def plan_detail(plan_id: int) -> dict[str, Any]:
    plan = Plan.objects.select_related("rollout").filter(pk=plan_id).first()
    if plan is None:
        raise NotFound(f"no plan with id {plan_id}")
    rollout = Rollout.objects.filter(plan=plan).values_list("pk", flat=True).first()
    hosts = [
        {
            "host": ph.host.name,
            "ring": ph.ring,
            "manager": ph.manager,
            "targets": ph.targets,
            "changes": ph.changes,
            "skipped": ph.skipped,
            "reboot": ph.reboot,
            "closes": ph.closes,
            "window_start": ph.window_start,
            "simulated": ph.simulated,
        }
        for ph in PlanHost.objects.filter(plan=plan).select_related("host").order_by("ring", "host__name")
    ]
    fields = {f: getattr(plan, f) for f in (
        "id", "name", "state", "selection", "target", "options", "rings", "totals", "requested_by", "created_at",
        "previewed_at", "submitted_at", "decided_at", "decided_by", "auto_rule", "override")}  # fmt: skip
    approvals = list(plan.approvals.values("decision", "by", "comment", "at"))
    return {**fields, "rollout_id": rollout, "hosts": hosts, "approvals": approvals}


def rollouts(state: str = "") -> QuerySet[Rollout]:
    rows = Rollout.objects.select_related("plan").order_by("-started_at", "-id")
    if state:
        if state not in RolloutState.__members__.values():
            raise InvalidInput(f"state must be one of {', '.join(s.value for s in RolloutState)}", field="state")
        rows = rows.filter(state=state)
    return rows


def rollout_detail(rollout_id: int) -> dict[str, Any]:
    rollout = driver.get_rollout(rollout_id)
    return {
        "id": rollout.pk,
        "plan_id": rollout.plan_id,
        "plan_name": rollout.plan.name,
        "state": rollout.state,
        "reason": rollout.reason,
        "started_by": rollout.started_by,
        "started_at": rollout.started_at,
        "finished_at": rollout.finished_at,
        "override": rollout.plan.override,
        "rings": driver.progress(rollout),
    }


def jobs(rollout_id: int, state: str = "", ring: str = "") -> QuerySet[Job]:
    driver.get_rollout(rollout_id)
    rows = (
        Job.objects.filter(rollout_id=rollout_id).select_related("host", "ring").order_by("ring__index", "host__name")
    )
    if state:
        if state not in JobState.__members__.values():
            raise InvalidInput(f"state must be one of {', '.join(s.value for s in JobState)}", field="state")
        rows = rows.filter(state=state)
    if ring:
        rows = rows.filter(ring__name=ring)
    return rows


def get_job(job_id: int) -> Job:
    job = Job.objects.select_related("host", "ring").filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"no job with id {job_id}")
    return job


def next_opening(window: MaintenanceWindow, now: datetime | None = None) -> dict[str, datetime] | None:
    """The window's current or next opening outside freezes, as {"start", "end"} in UTC."""
    now = now or timezone.now()
    opening = core_windows.next_opening(windows.to_core(window), now, windows.freezes_after(now))
    return {"start": opening.start, "end": opening.end} if opening is not None else None
