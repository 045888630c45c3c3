"""API routes of deployment: plans and their preview, approvals, rollouts and their commands, host jobs,
maintenance windows and freezes, scripts, auto-approval rules; and the agent's job-result route."""

# No `from __future__ import annotations`: ninja's @paginate re-reads annotations in its own module.
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status

from patchday.accounts.guards import Guard, actor_for
from patchday.api.pagination import Pagination
from patchday.core.errors import PermissionDenied
from patchday.core.roles import Permission
from patchday.inventory.api import HostGuard
from patchday.rollouts import driver, plans, queries, windows
from patchday.rollouts.models import AutoApprovalRule, FreezePeriod, HookScript, Job, MaintenanceWindow, Plan, Rollout

router = Router(tags=["deployment"])
agent_jobs_router = Router(tags=["agent"])


def _username(request: HttpRequest) -> str:
    return str(request.user.get_username())


# -- plans -----------------------------------------------------------------------------------------------------


class PlanIn(Schema):
    name: str = Field(max_length=200)
    selection: dict[str, Any] = Field(
        description='{"kind": "security"|"all"|"advisories"|"cves"|"severity"|"priority"|"packages"|"due_before", '
        '"values": [...], "before": "YYYY-MM-DD"}'
    )
    target: dict[str, Any] = Field(
        description='{"hosts": [...], "groups": [...], "tags": [...], "environments": [...]}'
    )
    options: dict[str, Any] = Field(default_factory=dict, description="reboot, scripts, holds, exclusions, cooldown")
    rings: list[dict[str, Any]] | None = Field(None, description="rings in order with gates; default pilot/early/broad")


class PlanOut(Schema):
    id: int
    name: str
    state: str
    selection: dict[str, Any]
    target: dict[str, Any]
    options: dict[str, Any]
    rings: list[dict[str, Any]]
    totals: dict[str, Any]
    requested_by: str
    created_at: datetime
    previewed_at: datetime | None
    submitted_at: datetime | None
    decided_at: datetime | None
    decided_by: str
    auto_rule: str
    override: bool
    rollout_id: int | None

    @staticmethod
    def resolve_rollout_id(plan: Plan | dict[str, Any]) -> int | None:
        if isinstance(plan, dict):
            value = plan.get("rollout_id")
            return int(value) if value is not None else None
        rollout = getattr(plan, "rollout", None) if plan.state == "started" else None
        return rollout.pk if rollout is not None else None


class PlanHostOut(Schema):
    host: str
    ring: int
    manager: str
    targets: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    reboot: bool
    closes: list[int]
    window_start: datetime | None
    simulated: bool


class ApprovalOut(Schema):
    decision: str
    by: str
    comment: str
    at: datetime


class PlanDetailOut(PlanOut):
    hosts: list[PlanHostOut]
    approvals: list[ApprovalOut]


class DecisionIn(Schema):
    comment: str = Field("", max_length=2000)


@router.get("/plans", response=list[PlanOut], auth=Guard(Permission.VIEW), summary="Plans, newest first")
@paginate(Pagination)
def list_plans(request: HttpRequest, state: str = "") -> Any:
    return queries.plans(state)


@router.post("/plans", response={201: PlanDetailOut}, auth=Guard(Permission.OPERATE), summary="Create and preview")
def create_plan(request: HttpRequest, body: PlanIn) -> Status[dict[str, Any]]:
    plan = plans.create_plan(
        actor_for(request), _username(request), body.name, body.selection, body.target, body.options, body.rings
    )
    return Status(201, queries.plan_detail(plan.pk))


@router.get("/plans/{plan_id}", response=PlanDetailOut, auth=Guard(Permission.VIEW), summary="One plan, with preview")
def get_plan(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    return queries.plan_detail(plan_id)


@router.post("/plans/{plan_id}/preview", response=PlanDetailOut, auth=Guard(Permission.OPERATE), summary="Recompute")
def refresh_preview(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    plans.refresh_preview(actor_for(request), plan_id)
    return queries.plan_detail(plan_id)


@router.post("/plans/{plan_id}/submit", response=PlanDetailOut, auth=Guard(Permission.OPERATE), summary="Ask approval")
def submit_plan(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    plans.submit(actor_for(request), plan_id)
    return queries.plan_detail(plan_id)


@router.post("/plans/{plan_id}/approve", response=PlanDetailOut, auth=Guard(Permission.APPROVE), summary="Approve")
def approve_plan(request: HttpRequest, plan_id: int, body: DecisionIn) -> dict[str, Any]:
    plans.decide(actor_for(request), _username(request), plan_id, True, body.comment)
    return queries.plan_detail(plan_id)


@router.post("/plans/{plan_id}/reject", response=PlanDetailOut, auth=Guard(Permission.APPROVE), summary="Reject")
def reject_plan(request: HttpRequest, plan_id: int, body: DecisionIn) -> dict[str, Any]:
    plans.decide(actor_for(request), _username(request), plan_id, False, body.comment)
    return queries.plan_detail(plan_id)


@router.post("/plans/{plan_id}/cancel", response=PlanDetailOut, auth=Guard(Permission.OPERATE), summary="Cancel")
def cancel_plan(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    plans.cancel(actor_for(request), plan_id)
    return queries.plan_detail(plan_id)


@router.get("/approvals", response=list[PlanOut], auth=Guard(Permission.VIEW), summary="Plans waiting for approval")
@paginate(Pagination)
def approvals(request: HttpRequest) -> Any:
    return queries.plans("pending_approval")


# -- rollouts --------------------------------------------------------------------------------------------------


class RolloutOut(Schema):
    id: int
    plan_id: int
    plan_name: str
    state: str
    reason: str
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    override: bool

    @staticmethod
    def resolve_plan_name(rollout: Rollout | dict[str, Any]) -> str:
        return str(rollout["plan_name"]) if isinstance(rollout, dict) else rollout.plan.name

    @staticmethod
    def resolve_override(rollout: Rollout | dict[str, Any]) -> bool:
        return bool(rollout["override"]) if isinstance(rollout, dict) else rollout.plan.override


class RingOut(Schema):
    index: int
    name: str
    state: str
    gate: dict[str, Any]
    promoted: bool
    jobs: dict[str, int]
    total: int


class RolloutDetailOut(RolloutOut):
    rings: list[RingOut]


class JobOut(Schema):
    id: int
    host: str
    ring: str
    state: str
    executor: str
    attempts: int
    queued_at: datetime
    leased_at: datetime | None
    finished_at: datetime | None
    verified_at: datetime | None
    error: str
    targets: list[dict[str, Any]]
    unexpected: list[dict[str, Any]]

    @staticmethod
    def resolve_host(job: Job) -> str:
        return job.host.name

    @staticmethod
    def resolve_ring(job: Job) -> str:
        return job.ring.name

    @staticmethod
    def resolve_targets(job: Job) -> list[dict[str, Any]]:
        return list(job.spec.get("targets") or [])


class JobDetailOut(JobOut):
    spec: dict[str, Any]
    result: dict[str, Any] | None
    rollback_result: dict[str, Any] | None


class StartIn(Schema):
    override: bool = Field(False, description="start without approval (admins only): an audited emergency change")


class CommandIn(Schema):
    ring: int | None = Field(None, ge=0, description="the ring index (rollback; promote/retry default to the current)")


@router.post("/plans/{plan_id}/start", response={201: RolloutDetailOut}, auth=Guard(Permission.OPERATE), summary="Run")
def start_rollout(request: HttpRequest, plan_id: int, body: StartIn) -> Status[dict[str, Any]]:
    if body.override and not request.user.may(Permission.ADMINISTER):  # type: ignore[union-attr]
        raise PermissionDenied("only an admin may start a rollout without approval (override)")
    rollout = driver.start(actor_for(request), plan_id, override=body.override)
    return Status(201, queries.rollout_detail(rollout.pk))


@router.get("/rollouts", response=list[RolloutOut], auth=Guard(Permission.VIEW), summary="Rollouts, newest first")
@paginate(Pagination)
def list_rollouts(request: HttpRequest, state: str = "") -> Any:
    return queries.rollouts(state)


@router.get("/rollouts/{rollout_id}", response=RolloutDetailOut, auth=Guard(Permission.VIEW), summary="Progress")
def get_rollout(request: HttpRequest, rollout_id: int) -> dict[str, Any]:
    return queries.rollout_detail(rollout_id)


# Before the command route: Django tries URL patterns in order, and /rollouts/1/jobs fits {command} too.
@router.get("/rollouts/{rollout_id}/jobs", response=list[JobOut], auth=Guard(Permission.VIEW), summary="Host jobs")
@paginate(Pagination)
def list_jobs(request: HttpRequest, rollout_id: int, state: str = "", ring: str = "") -> Any:
    return queries.jobs(rollout_id, state, ring)


@router.post(
    "/rollouts/{rollout_id}/{command}",
    response=RolloutDetailOut,
    auth=Guard(Permission.OPERATE),
    summary="pause, resume, abort, promote, retry_failed or rollback",
)
def command_rollout(request: HttpRequest, rollout_id: int, command: str, body: CommandIn) -> dict[str, Any]:
    driver.command(actor_for(request), rollout_id, command, body.ring)
    return queries.rollout_detail(rollout_id)


@router.post(
    "/rollouts/{rollout_id}/hosts/{host}/rollback",
    response=JobOut,
    auth=Guard(Permission.OPERATE),
    summary="Revert one host to before this rollout",
)
def rollback_host(request: HttpRequest, rollout_id: int, host: str) -> Job:
    job = driver.rollback_host(actor_for(request), rollout_id, host)
    return queries.get_job(job.pk)


@router.get("/jobs/{job_id}", response=JobDetailOut, auth=Guard(Permission.VIEW), summary="One job, with output")
def get_job(request: HttpRequest, job_id: int) -> Job:
    return queries.get_job(job_id)


# -- windows, freezes ------------------------------------------------------------------------------------------


class WindowIn(Schema):
    name: str = Field(max_length=64)
    rrule: str = Field(max_length=512, description="RFC 5545 RRULE, e.g. FREQ=MONTHLY;BYDAY=2TU")
    duration_minutes: int = Field(ge=1, le=10080)
    timezone: str = Field(max_length=64, description="IANA time zone, e.g. Europe/Berlin")
    starts: str = Field(max_length=19, description="DTSTART as local wall time, e.g. 2026-01-13T02:00")
    offset_minutes: int = Field(0, ge=-44640, le=44640, description="shift each occurrence (7 days = 10080)")
    groups: list[str] = Field(default_factory=list)
    description: str = Field("", max_length=255)


class WindowOut(Schema):
    name: str
    description: str
    rrule: str
    duration_minutes: int
    timezone: str
    starts: str
    offset_minutes: int
    groups: list[str]
    next_opening: dict[str, datetime] | None

    @staticmethod
    def resolve_next_opening(window: MaintenanceWindow) -> dict[str, datetime] | None:
        return queries.next_opening(window)


class FreezeIn(Schema):
    name: str = Field(max_length=100)
    start: datetime
    end: datetime
    reason: str = Field("", max_length=255)


class FreezeOut(Schema):
    id: int
    name: str
    start: datetime
    end: datetime
    reason: str
    created_by: str


class IcsIn(Schema):
    calendar: str = Field(max_length=1024 * 1024, description="the text of an .ics file")


class IcsOut(Schema):
    windows: list[str]
    freezes: list[int]
    skipped: list[str]


@router.get("/windows", response=list[WindowOut], auth=Guard(Permission.VIEW), summary="Maintenance windows")
def list_windows(request: HttpRequest) -> Any:
    return list(windows.list_windows())


@router.post("/windows", response={201: WindowOut}, auth=Guard(Permission.OPERATE), summary="Add a window")
def create_window(request: HttpRequest, body: WindowIn) -> Status[MaintenanceWindow]:
    window = windows.create_window(
        actor_for(request),
        body.name,
        body.rrule,
        body.duration_minutes,
        body.timezone,
        body.starts,
        offset_minutes=body.offset_minutes,
        groups=body.groups,
        description=body.description,
    )
    return Status(201, window)


@router.post("/windows/import", response={201: IcsOut}, auth=Guard(Permission.OPERATE), summary="Import an .ics file")
def import_windows(request: HttpRequest, body: IcsIn) -> Status[IcsOut]:
    result = windows.import_ics(actor_for(request), body.calendar)
    return Status(201, IcsOut(windows=result.windows, freezes=result.freezes, skipped=result.skipped))


@router.delete("/windows/{name}", response={204: None}, auth=Guard(Permission.OPERATE), summary="Delete a window")
def delete_window(request: HttpRequest, name: str) -> Status[None]:
    windows.delete_window(actor_for(request), name)
    return Status(204, None)


@router.get("/freezes", response=list[FreezeOut], auth=Guard(Permission.VIEW), summary="Change freezes")
def list_freezes(request: HttpRequest) -> Any:
    return list(FreezePeriod.objects.order_by("start"))


@router.post("/freezes", response={201: FreezeOut}, auth=Guard(Permission.OPERATE), summary="Add a freeze")
def create_freeze(request: HttpRequest, body: FreezeIn) -> Status[FreezePeriod]:
    return Status(201, windows.create_freeze(actor_for(request), body.name, body.start, body.end, body.reason))


@router.delete("/freezes/{freeze_id}", response={204: None}, auth=Guard(Permission.OPERATE), summary="End a freeze")
def delete_freeze(request: HttpRequest, freeze_id: int) -> Status[None]:
    windows.delete_freeze(actor_for(request), freeze_id)
    return Status(204, None)


# -- scripts and auto-approval rules ---------------------------------------------------------------------------


class ScriptIn(Schema):
    name: str = Field(max_length=64)
    argv: list[str] = Field(description="the command as an argv list; no shell")
    timeout: int = Field(300, ge=1, le=21600)
    description: str = Field("", max_length=255)


class ScriptOut(Schema):
    name: str
    version: int
    argv: list[str]
    timeout: int
    description: str
    created_by: str
    created_at: datetime


class RuleIn(Schema):
    name: str = Field(max_length=100)
    selections: list[str] = Field(default_factory=list)
    environments: list[str] = Field(default_factory=list)
    below_decision: str = "Act"


class RuleOut(Schema):
    name: str
    enabled: bool
    selections: list[str]
    environments: list[str]
    below_decision: str
    created_by: str


@router.get("/scripts", response=list[ScriptOut], auth=Guard(Permission.VIEW), summary="Hook scripts, all versions")
def list_scripts(request: HttpRequest) -> Any:
    return list(HookScript.objects.all())


@router.post("/scripts", response={201: ScriptOut}, auth=Guard(Permission.OPERATE), summary="Save a new version")
def save_script(request: HttpRequest, body: ScriptIn) -> Status[HookScript]:
    return Status(201, plans.save_script(actor_for(request), body.name, body.argv, body.timeout, body.description))


@router.get("/approval-rules", response=list[RuleOut], auth=Guard(Permission.VIEW), summary="Auto-approval rules")
def list_rules(request: HttpRequest) -> Any:
    return list(AutoApprovalRule.objects.order_by("name"))


@router.post("/approval-rules", response={201: RuleOut}, auth=Guard(Permission.APPROVE), summary="Save a rule")
def save_rule(request: HttpRequest, body: RuleIn) -> Status[AutoApprovalRule]:
    rule = plans.save_rule(actor_for(request), body.name, body.selections, body.environments, body.below_decision)
    return Status(201, rule)


@router.delete("/approval-rules/{name}", response={204: None}, auth=Guard(Permission.APPROVE), summary="Delete")
def delete_rule(request: HttpRequest, name: str) -> Status[None]:
    plans.delete_rule(actor_for(request), name)
    return Status(204, None)


# -- the agent's side ------------------------------------------------------------------------------------------


class JobResultIn(Schema):
    lease_token: str = Field(max_length=64)
    idempotency_key: str = Field(max_length=100)
    phase: str = Field(pattern=r"^(deploy|rollback)$")
    result: dict[str, Any]


class JobResultOut(Schema):
    job_id: int
    state: str


@agent_jobs_router.post(
    "/agent/jobs/{job_id}/result", response=JobResultOut, auth=HostGuard(), summary="Report a job's result"
)
def post_job_result(request: HttpRequest, job_id: int, body: JobResultIn) -> JobResultOut:
    from patchday.inventory import agents
    from patchday.rollouts.results import check_result

    credential: agents.HostCredential = request.auth  # type: ignore[attr-defined]
    result = check_result(body.result, job_id, body.phase)
    job = driver.record_result(credential.host_id, job_id, body.lease_token, body.idempotency_key, body.phase, result)
    return JobResultOut(job_id=job.pk, state=job.state)


class SimulationIn(Schema):
    plan_host: int
    changes: list[dict[str, Any]] = Field(default_factory=list, max_length=20000)
    error: str = Field("", max_length=2000)


@agent_jobs_router.post(
    "/agent/simulations/{plan_host_id}", response={204: None}, auth=HostGuard(), summary="Report a simulated run"
)
def post_simulation(request: HttpRequest, plan_host_id: int, body: SimulationIn) -> Status[None]:
    from patchday.inventory import agents

    credential: agents.HostCredential = request.auth  # type: ignore[attr-defined]
    plans.record_simulation(credential.host_id, plan_host_id, body.changes, body.error)
    return Status(204, None)
