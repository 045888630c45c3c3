"""Dashboard pages of deployment: plans and their preview, the approvals inbox, rollouts with their live
progress and operator commands, one host job with its output, and maintenance windows with freezes."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, Final, cast

from django import forms
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import F, OrderBy, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from patchday.accounts.guards import actor_for, page_guard
from patchday.accounts.models import User
from patchday.core.errors import NotFound, PatchdayError
from patchday.core.roles import Permission
from patchday.core.rollout import DEFAULT_RINGS, Command, JobState, PlanState, RingState, RolloutState
from patchday.inventory.views import Column, Option, csv_cell
from patchday.rollouts import driver, plans, queries, windows
from patchday.rollouts.models import FreezePeriod, Job, MaintenanceWindow, Plan, Rollout

PAGE_SIZE = 50
HOSTS_PAGE_SIZE = 100  # hosts of one plan's preview per page
FAILURES_SHOWN = 20  # failed jobs whose output the rollout page shows inline
OUTPUT_TAIL = 2000  # characters of a failed step's output shown inline (the job page has it all)
DEFAULT_RINGS_JSON: Final = json.dumps([plans.ring_to_data(spec) for spec in DEFAULT_RINGS], indent=2)
SELECTION_LABELS: Final = {
    "security": "every security update",
    "all": "every update",
    "advisories": "updates fixing findings of these advisories",
    "cves": "updates fixing these CVEs",
    "severity": "updates fixing findings of these severities",
    "priority": "updates fixing findings with these SSVC decisions",
    "packages": "these packages (names or patterns)",
    "due_before": "updates fixing findings due before a date",
}
PLAN_STATES: Final = tuple((s.value, s.value.replace("_", " ")) for s in PlanState)
ROLLOUT_STATES: Final = tuple((s.value, s.value) for s in RolloutState)
JOB_STATES: Final = tuple((s.value, s.value.replace("_", " ")) for s in JobState)
TERMINAL: Final = frozenset({RolloutState.COMPLETED.value, RolloutState.ABORTED.value})
# Jobs that are over (for a ring's progress bar): nothing more happens to them without an operator.
JOB_DONE: Final = frozenset(
    {JobState.VERIFIED, JobState.FAILED, JobState.CANCELLED, JobState.ROLLED_BACK, JobState.ROLLBACK_FAILED}
)
JOB_FAILED: Final = (JobState.FAILED, JobState.UNKNOWN, JobState.ROLLBACK_FAILED)
# A host may be reverted from these job states (core.rollout: JobEvent.ROLLBACK).
REVERTIBLE: Final = frozenset(
    {JobState.SUCCEEDED, JobState.VERIFIED, JobState.FAILED, JobState.UNKNOWN, JobState.ROLLBACK_FAILED}
)
PROMOTABLE: Final = frozenset({RingState.RUNNING, RingState.SOAKING, RingState.FAILED})
NOT_ROLLED_BACK: Final = frozenset(
    {RingState.WAITING, RingState.SKIPPED, RingState.ROLLING_BACK, RingState.ROLLED_BACK}
)
COMMAND_DONE: Final = {
    Command.PAUSE: "is paused: no new job starts; leased jobs finish",
    Command.RESUME: "runs again",
    Command.ABORT: "is aborted: queued jobs are cancelled",
    Command.PROMOTE: "is promoted: the next ring opens",
    Command.RETRY_FAILED: "retries its failed jobs",
    Command.ROLLBACK: "rolls back",
}

# What `sort` may name on each list: a column key -> the field it orders by. Anything else is ignored.
PLAN_SORTS: Final[Mapping[str, str]] = {
    "id": "id",
    "name": "name",
    "state": "state",
    "requested_by": "requested_by",
    "created": "created_at",
}
PLAN_COLUMNS: Final = (
    ("id", "Plan"),
    ("name", "Name"),
    ("state", "State"),
    ("", "Hosts"),
    ("", "Packages"),
    ("", "Findings closed"),
    ("requested_by", "Requested by"),
    ("created", "Created (UTC)"),
)
ROLLOUT_SORTS: Final[Mapping[str, str]] = {
    "id": "id",
    "plan": "plan__name",
    "state": "state",
    "started_by": "started_by",
    "started": "started_at",
    "finished": "finished_at",
}
ROLLOUT_COLUMNS: Final = (
    ("id", "Rollout"),
    ("plan", "Plan"),
    ("state", "State"),
    ("started_by", "Started by"),
    ("started", "Started (UTC)"),
    ("finished", "Finished (UTC)"),
)


# -- small shared pieces -------------------------------------------------------------------------------


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _query(params: QueryDict, *drop: str) -> str:
    """The non-empty parameters of `params` except `drop`, URL-encoded (for links that keep the filter)."""
    return urlencode([(k, v) for k, values in params.lists() if k not in drop for v in values if v])


def _options(choices: Sequence[tuple[str, str]], current: str, blank: str = "Any") -> list[Option]:
    return [Option("", blank, not current)] + [Option(value, label, value == current) for value, label in choices]


def _state(raw: str, choices: Sequence[tuple[str, str]]) -> str:
    """A state filter value; one the list does not know filters nothing (never an error page)."""
    return raw if raw in {value for value, _ in choices} else ""


def _paginate(items: Any, request: HttpRequest, parameter: str = "page", size: int = PAGE_SIZE) -> Page[Any]:
    return Paginator(items, size).get_page(request.GET.get(parameter))


def _ordering(sort: str, sorts: Mapping[str, str], default: str) -> tuple[str, bool, list[OrderBy]]:
    """(column key, descending, order_by) for a `sort` parameter; an unknown column sorts by `default`."""
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    if key not in sorts:
        key, descending = default.removeprefix("-"), default.startswith("-")
    field = F(sorts[key])
    first = field.desc(nulls_last=True) if descending else field.asc(nulls_last=True)
    return key, descending, [first, F("id").desc()]


def _columns(params: QueryDict, columns: Sequence[tuple[str, str]], key: str, descending: bool) -> list[Column]:
    base = _query(params, "page", "sort")
    result: list[Column] = []
    for column, label in columns:
        if not column:
            result.append(Column(column, label, "", ""))
            continue
        current = column == key
        sort = (column if descending else f"-{column}") if current else column
        href = f"?{base}&sort={sort}" if base else f"?sort={sort}"
        state = ("descending" if descending else "ascending") if current else ""
        result.append(Column(column, label, href, state))
    return result


def _csv(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return response


def _unknown(request: HttpRequest, what: str, key: object, exc: NotFound) -> HttpResponse:
    context = {"what": what, "key": key, "reason": str(exc)}
    return render(request, "rollouts/unknown.html", context, status=404)


def _names(text: str) -> list[str]:
    """Comma- or line-separated names, blanks dropped."""
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


def _when(text: object) -> datetime | None:
    """An ISO timestamp stored as text (plan totals), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _add_error(form: forms.Form, exc: PatchdayError, fields: Mapping[str, str] | None = None) -> None:
    """Show a service's error next to the field it names (after `fields` maps the service's name to the
    form's), or above the form."""
    field = getattr(exc, "field", None) or ""
    name = (fields or {}).get(field, field)
    form.add_error(name if name in form.fields else None, str(exc))


# -- plans ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanRow:
    plan: Plan
    own: bool  # requested by the signed-in user, who may not decide it
    first_start: datetime | None = None  # when the first host's window opens, per the preview


def _sorted_plans(request: HttpRequest) -> tuple[str, str, bool, QuerySet[Plan]]:
    state = _state(request.GET.get("state", ""), PLAN_STATES)
    key, descending, ordering = _ordering(request.GET.get("sort", ""), PLAN_SORTS, "-created")
    return state, key, descending, queries.plans(state).order_by(*ordering)


@page_guard(Permission.VIEW)
@require_GET
def plans_page(request: HttpRequest) -> HttpResponse:
    """Plans, newest first, by state; operators start a new one here."""
    state, key, descending, rows = _sorted_plans(request)
    user = _user(request)
    page = _paginate(rows, request)
    page.object_list = [PlanRow(plan, plan.requested_by == user.username) for plan in page]
    context = {
        "page": page,
        "state": state,
        "state_options": _options(PLAN_STATES, state),
        "query": _query(request.GET, "page"),
        "columns": _columns(request.GET, PLAN_COLUMNS, key, descending),
        "can_operate": user.may(Permission.OPERATE),
    }
    return render(request, "rollouts/plans.html", context)


@page_guard(Permission.VIEW)
@require_GET
def plans_export(request: HttpRequest) -> HttpResponse:
    """The filtered, sorted plans as CSV: every row, not one page."""
    _, _, _, rows = _sorted_plans(request)
    return _csv("plans.csv", PLAN_CSV_HEADER, (_plan_cells(p) for p in rows.iterator(chunk_size=500)))


PLAN_CSV_HEADER: Final = (
    "id",
    "name",
    "state",
    "selection",
    "hosts",
    "hosts_with_changes",
    "packages",
    "reboots",
    "findings_closed",
    "skipped",
    "requested_by",
    "created_at",
    "submitted_at",
    "decided_by",
    "decided_at",
    "override",
)


def _plan_cells(p: Plan) -> tuple[object, ...]:
    totals = p.totals
    counts = ("hosts", "hosts_with_changes", "packages", "reboots", "findings_closed", "skipped")
    return (
        p.pk,
        p.name,
        p.state,
        p.selection.get("kind", ""),
        *(totals.get(key) for key in counts),
        p.requested_by,
        p.created_at,
        p.submitted_at,
        p.decided_by,
        p.decided_at,
        p.override,
    )


class PlanForm(forms.Form):
    name = forms.CharField(max_length=200)
    selection_kind = forms.ChoiceField(choices=tuple(SELECTION_LABELS.items()), label="Updates to deploy")
    selection_values = forms.CharField(
        required=False, max_length=100_000, widget=forms.Textarea, label="Values (one per line or comma separated)"
    )
    selection_before = forms.DateField(required=False, input_formats=["%Y-%m-%d"], label="Due before")
    target_hosts = forms.CharField(required=False, max_length=100_000, label="Hosts")
    target_groups = forms.CharField(required=False, max_length=10_000, label="Groups")
    target_tags = forms.CharField(required=False, max_length=10_000, label="Tags")
    target_environments = forms.CharField(required=False, max_length=10_000, label="Environments")
    reboot = forms.ChoiceField(choices=tuple((p, p.replace("_", " ")) for p in plans.REBOOT_POLICIES))
    holds = forms.CharField(required=False, max_length=10_000, label="Holds (never upgrade)")
    exclusions = forms.CharField(required=False, max_length=10_000, label="Exclusions (leave out of this plan)")
    cooldown_days = forms.IntegerField(min_value=0, max_value=365, initial=0, label="Cooldown (days)")
    rings = forms.CharField(max_length=50_000, widget=forms.Textarea, initial=DEFAULT_RINGS_JSON, label="Rings (JSON)")

    # The service's field names (core InvalidInput.field) -> this form's fields.
    SERVICE_FIELDS: Final = {
        "name": "name",
        "selection": "selection_kind",
        "selection.kind": "selection_kind",
        "selection.values": "selection_values",
        "selection.before": "selection_before",
        "target": "target_hosts",
        "target.hosts": "target_hosts",
        "target.groups": "target_groups",
        "target.tags": "target_tags",
        "target.environments": "target_environments",
        "options.reboot": "reboot",
        "options.holds": "holds",
        "options.exclusions": "exclusions",
        "options.cooldown_days": "cooldown_days",
    }

    def service_field(self, field: str) -> str:
        return "rings" if field.startswith("rings") else self.SERVICE_FIELDS.get(field, field)

    def clean_rings(self) -> Any:
        text = self.cleaned_data["rings"]
        try:
            return json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from None

    def selection(self) -> dict[str, Any]:
        data = self.cleaned_data
        selection: dict[str, Any] = {"kind": data["selection_kind"], "values": _names(data["selection_values"])}
        if data.get("selection_before"):
            selection["before"] = data["selection_before"].isoformat()
        return selection

    def target(self) -> dict[str, list[str]]:
        data = self.cleaned_data
        return {key: _names(data[f"target_{key}"]) for key in ("hosts", "groups", "tags", "environments")}

    def options(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "reboot": data["reboot"],
            "holds": _names(data["holds"]),
            "exclusions": _names(data["exclusions"]),
            "cooldown_days": data["cooldown_days"],
        }


@page_guard(Permission.OPERATE)
@require_http_methods(["GET", "POST"])
def plan_create(request: HttpRequest) -> HttpResponse:
    """The new-plan form; a valid plan is stored as a draft with its preview and opens on its own page."""
    if request.method == "GET":
        form = PlanForm(initial={"reboot": "if_required", "selection_kind": "security"})
        return render(request, "rollouts/plan_new.html", {"form": form, "kinds": SELECTION_LABELS})
    form = PlanForm(request.POST)
    if form.is_valid():
        try:
            plan = plans.create_plan(
                actor_for(request),
                _user(request).username,
                form.cleaned_data["name"],
                form.selection(),
                form.target(),
                form.options(),
                form.cleaned_data["rings"],
            )
        except PatchdayError as exc:
            field = getattr(exc, "field", None) or ""
            form.add_error(form.service_field(field) if field else None, str(exc))
        else:
            messages.success(request, f"Plan {plan.pk} is a draft: check its preview, then submit it for approval.")
            return redirect("plan", plan_id=plan.pk)
    return render(request, "rollouts/plan_new.html", {"form": form, "kinds": SELECTION_LABELS}, status=400)


@dataclass(frozen=True, slots=True)
class RingGroup:
    index: int
    name: str
    hosts: list[dict[str, Any]]


@page_guard(Permission.VIEW)
@require_GET
def plan_page(request: HttpRequest, plan_id: int) -> HttpResponse:
    """The plan's preview (totals, per host by ring), its approvals, and the actions its state allows."""
    try:
        plan = queries.plan_detail(plan_id)
    except NotFound as exc:
        return _unknown(request, "plan", plan_id, exc)
    user = _user(request)
    ring_names = [str(r.get("name", "")) for r in plan["rings"]]
    page = _paginate(plan["hosts"], request, size=HOSTS_PAGE_SIZE)
    groups = [
        RingGroup(index, ring_names[index] if index < len(ring_names) else f"ring {index}", list(hosts))
        for index, hosts in groupby(page, key=lambda h: int(h["ring"]))
    ]
    totals = plan["totals"]
    state = plan["state"]
    context = {
        "plan": plan,
        "totals": totals,
        "by_ring": list((totals.get("by_ring") or {}).items()),
        "first_start": _when(totals.get("first_start")),
        "last_start": _when(totals.get("last_start")),
        "page": page,
        "groups": groups,
        "query": _query(request.GET, "page"),
        "own": plan["requested_by"] == user.username,
        "can_operate": user.may(Permission.OPERATE),
        "can_approve": user.may(Permission.APPROVE),
        "is_admin": user.may(Permission.ADMINISTER),
        "editable": state in (PlanState.DRAFT, PlanState.PENDING_APPROVAL),
        "cancellable": state in (PlanState.DRAFT, PlanState.PENDING_APPROVAL, PlanState.APPROVED),
        "selection_label": SELECTION_LABELS.get(str(plan["selection"].get("kind")), ""),
    }
    return render(request, "rollouts/plan.html", context)


def _plan_action(request: HttpRequest, plan_id: int, action: str, done: str) -> HttpResponse:
    """Run one plan service (`action`) and go back to the plan page with its outcome."""
    actor = actor_for(request)
    try:
        match action:
            case "preview":
                plans.refresh_preview(actor, plan_id)
            case "submit":
                plan = plans.submit(actor, plan_id)
                if plan.state == PlanState.APPROVED:
                    done = f"is approved at once by the auto-approval rule {plan.auto_rule!r}"
            case "cancel":
                plans.cancel(actor, plan_id)
            case _:
                raise AssertionError(f"not a plan action: {action}")
    except NotFound as exc:
        return _unknown(request, "plan", plan_id, exc)
    except PatchdayError as exc:
        messages.error(request, f"Plan {plan_id}: {exc}.")
    else:
        messages.success(request, f"Plan {plan_id} {done}.")
    return redirect("plan", plan_id=plan_id)


@page_guard(Permission.OPERATE)
@require_POST
def plan_preview(request: HttpRequest, plan_id: int) -> HttpResponse:
    return _plan_action(request, plan_id, "preview", "has a fresh preview from the current inventory")


@page_guard(Permission.OPERATE)
@require_POST
def plan_submit(request: HttpRequest, plan_id: int) -> HttpResponse:
    return _plan_action(request, plan_id, "submit", "awaits approval by another approver")


@page_guard(Permission.OPERATE)
@require_POST
def plan_cancel(request: HttpRequest, plan_id: int) -> HttpResponse:
    return _plan_action(request, plan_id, "cancel", "is cancelled")


@page_guard(Permission.APPROVE)
@require_POST
def plan_decide(request: HttpRequest, plan_id: int) -> HttpResponse:
    """Approve or reject a pending plan; the service refuses the requester and a plan decided already."""
    back = redirect("approvals") if request.POST.get("back") == "approvals" else redirect("plan", plan_id=plan_id)
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        messages.error(request, f"Plan {plan_id} is not decided: choose approve or reject.")
        return back
    approve = decision == "approve"
    try:
        plan = plans.decide(
            actor_for(request), _user(request).username, plan_id, approve, request.POST.get("comment", "")[:2000]
        )
    except PatchdayError as exc:  # PermissionDenied (their own plan), Conflict, InvalidInput, NotFound
        messages.error(request, f"Plan {plan_id} is not decided: {exc}.")
    else:
        verb = "approved: an operator may start it" if approve else "rejected"
        messages.success(request, f"Plan {plan.pk} ({plan.name}) is {verb}.")
    return back


@page_guard(Permission.OPERATE)
@require_POST
def plan_start(request: HttpRequest, plan_id: int) -> HttpResponse:
    """Start an approved plan; an admin may start a draft or pending one without approval (emergency)."""
    override = request.POST.get("override") == "on"
    if override:
        if not _user(request).may(Permission.ADMINISTER):
            context = {"permission": Permission.ADMINISTER.value}
            return render(request, "dashboard/forbidden.html", context, status=403)
        if request.POST.get("confirm") != "on":
            messages.error(request, f"Plan {plan_id} is not started: confirm that the emergency start skips approval.")
            return redirect("plan", plan_id=plan_id)
    try:
        rollout = driver.start(actor_for(request), plan_id, override=override)
    except NotFound as exc:
        return _unknown(request, "plan", plan_id, exc)
    except PatchdayError as exc:
        messages.error(request, f"Plan {plan_id} is not started: {exc}.")
        return redirect("plan", plan_id=plan_id)
    kind = "Emergency rollout" if override else "Rollout"
    messages.success(request, f"{kind} {rollout.pk} is running: its first ring is open.")
    return redirect("rollout", rollout_id=rollout.pk)


# -- approvals ---------------------------------------------------------------------------------------------


@page_guard(Permission.VIEW)
@require_GET
def approvals_page(request: HttpRequest) -> HttpResponse:
    """Plans waiting for approval, oldest request first, with what each would change."""
    user = _user(request)
    rows = queries.plans(PlanState.PENDING_APPROVAL).order_by("submitted_at", "id")
    page = _paginate(rows, request)
    page.object_list = [
        PlanRow(plan, plan.requested_by == user.username, _when(plan.totals.get("first_start"))) for plan in page
    ]
    context = {"page": page, "query": _query(request.GET, "page"), "can_approve": user.may(Permission.APPROVE)}
    return render(request, "rollouts/approvals.html", context)


# -- rollouts ----------------------------------------------------------------------------------------------


def _sorted_rollouts(request: HttpRequest) -> tuple[str, str, bool, QuerySet[Rollout]]:
    state = _state(request.GET.get("state", ""), ROLLOUT_STATES)
    key, descending, ordering = _ordering(request.GET.get("sort", ""), ROLLOUT_SORTS, "-started")
    return state, key, descending, queries.rollouts(state).order_by(*ordering)


@page_guard(Permission.VIEW)
@require_GET
def rollouts_page(request: HttpRequest) -> HttpResponse:
    """Every rollout, running or finished: the deployment history."""
    state, key, descending, rows = _sorted_rollouts(request)
    context = {
        "page": _paginate(rows, request),
        "state": state,
        "state_options": _options(ROLLOUT_STATES, state),
        "query": _query(request.GET, "page"),
        "columns": _columns(request.GET, ROLLOUT_COLUMNS, key, descending),
    }
    return render(request, "rollouts/rollouts.html", context)


@page_guard(Permission.VIEW)
@require_GET
def rollouts_export(request: HttpRequest) -> HttpResponse:
    _, _, _, rows = _sorted_rollouts(request)
    header = ("id", "plan_id", "plan", "state", "reason", "override", "started_by", "started_at", "finished_at")
    cells = (
        (r.pk, r.plan_id, r.plan.name, r.state, r.reason, r.plan.override, r.started_by, r.started_at, r.finished_at)
        for r in rows.iterator(chunk_size=500)
    )
    return _csv("rollouts.csv", header, cells)


@dataclass(frozen=True, slots=True)
class RingProgress:
    index: int
    name: str
    state: str
    gate: Mapping[str, Any]
    promoted: bool
    counts: list[tuple[str, int]]  # by job state, in the order of JobState
    total: int
    done: int
    failed: int
    percent: int
    can_promote: bool
    can_retry: bool
    can_roll_back: bool


@dataclass(frozen=True, slots=True)
class Failure:
    job: Job
    step: str
    output: str  # the tail of the failing step's stderr (or stdout)


def _ring_progress(rings: Sequence[Mapping[str, Any]], rollout_state: str) -> list[RingProgress]:
    active = rollout_state not in TERMINAL
    result = []
    for ring in rings:
        jobs: Mapping[str, int] = ring["jobs"]
        total = int(ring["total"])
        done = sum(n for state, n in jobs.items() if state in JOB_DONE)
        state = RingState(ring["state"])
        result.append(
            RingProgress(
                index=int(ring["index"]),
                name=str(ring["name"]),
                state=state.value,
                gate=ring["gate"] or {},
                promoted=bool(ring["promoted"]),
                counts=[(s.value, jobs[s.value]) for s in JobState if jobs.get(s.value)],
                total=total,
                done=done,
                failed=sum(jobs.get(s.value, 0) for s in JOB_FAILED),
                percent=round(100 * done / total) if total else 100,
                can_promote=active and state in PROMOTABLE,
                can_retry=active and state is RingState.FAILED,
                can_roll_back=state not in NOT_ROLLED_BACK,
            )
        )
    return result


def _failure(job: Job) -> Failure:
    steps = (job.rollback_result or job.result or {}).get("steps") or []
    failing = next((s for s in reversed(steps) if s.get("exit_code") not in (0, None) or s.get("timed_out")), None)
    step = failing or (steps[-1] if steps else {})
    output = str(step.get("stderr") or step.get("stdout") or "")
    return Failure(job, str(step.get("name") or ""), output[-OUTPUT_TAIL:])


def _progress_context(request: HttpRequest, rollout_id: int) -> dict[str, Any]:
    """The live part of a rollout's page: its state, rings with counts, host jobs and failures."""
    rollout = queries.rollout_detail(rollout_id)
    state_filter = _state(request.GET.get("job_state", ""), JOB_STATES)
    ring_names = [str(r["name"]) for r in rollout["rings"]]
    ring_filter = request.GET.get("ring", "")
    ring_filter = ring_filter if ring_filter in ring_names else ""
    jobs = _paginate(queries.jobs(rollout_id, state_filter, ring_filter), request, "jobs_page")
    failures = queries.jobs(rollout_id).filter(state__in=JOB_FAILED)[:FAILURES_SHOWN]
    terminal = rollout["state"] in TERMINAL
    return {
        "rollout": rollout,
        "rings": _ring_progress(rollout["rings"], rollout["state"]),
        "jobs": jobs,
        "failures": [_failure(job) for job in failures],
        "job_state": state_filter,
        "job_state_options": _options(JOB_STATES, state_filter),
        "ring": ring_filter,
        "ring_options": _options([(n, n) for n in ring_names], ring_filter),
        "jobs_query": _query(request.GET, "jobs_page"),
        "poll_query": _query(request.GET),
        "live": not terminal,
        "can_operate": _user(request).may(Permission.OPERATE),
        "can_pause": rollout["state"] == RolloutState.RUNNING,
        "can_resume": rollout["state"] == RolloutState.PAUSED,
        "can_abort": not terminal,
        "revertible": {s.value for s in REVERTIBLE},
    }


@page_guard(Permission.VIEW)
@require_GET
def rollout_page(request: HttpRequest, rollout_id: int) -> HttpResponse:
    """One rollout: its rings and host jobs, updated every few seconds while it runs, and its commands."""
    try:
        context = _progress_context(request, rollout_id)
    except NotFound as exc:
        return _unknown(request, "rollout", rollout_id, exc)
    return render(request, "rollouts/rollout.html", context)


@page_guard(Permission.VIEW)
@require_GET
def rollout_progress(request: HttpRequest, rollout_id: int) -> HttpResponse:
    """The rollout page's live part alone, for HTMX to poll; it stops polling once the rollout is over."""
    try:
        context = _progress_context(request, rollout_id)
    except NotFound as exc:
        return _unknown(request, "rollout", rollout_id, exc)
    return render(request, "rollouts/_progress.html", context)


@page_guard(Permission.VIEW)
@require_GET
def rollout_jobs_export(request: HttpRequest, rollout_id: int) -> HttpResponse:
    try:
        rows = queries.jobs(rollout_id, _state(request.GET.get("job_state", ""), JOB_STATES), "")
    except NotFound as exc:
        return _unknown(request, "rollout", rollout_id, exc)
    cells = (_job_cells(job) for job in rows.iterator(chunk_size=500))
    return _csv(f"rollout-{rollout_id}-jobs.csv", JOB_CSV_HEADER, cells)


JOB_CSV_HEADER: Final = (
    "job_id",
    "host",
    "ring",
    "state",
    "executor",
    "attempts",
    "targets",
    "queued_at",
    "leased_at",
    "finished_at",
    "verified_at",
    "error",
)


def _job_cells(j: Job) -> tuple[object, ...]:
    targets = " ".join(f"{t.get('name')}={t.get('version')}" for t in j.spec.get("targets") or [])
    return (j.pk, j.host.name, j.ring.name, j.state, j.executor, j.attempts, targets, j.queued_at, j.leased_at,
            j.finished_at, j.verified_at, j.error)  # fmt: skip


def _ring_index(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return -1  # the service answers "the rollout has rings 0 to n"


@page_guard(Permission.OPERATE)
@require_POST
def rollout_command(request: HttpRequest, rollout_id: int) -> HttpResponse:
    """pause, resume, abort (the rollout) or promote, retry_failed, rollback (a ring)."""
    name = request.POST.get("command", "")
    ring = _ring_index(request.POST.get("ring"))
    try:
        driver.command(actor_for(request), rollout_id, name, ring)
    except NotFound as exc:
        return _unknown(request, "rollout", rollout_id, exc)
    except PatchdayError as exc:
        messages.error(request, f"Rollout {rollout_id}: {exc}.")
    else:
        subject = f"Rollout {rollout_id}" if ring is None else f"Ring {ring} of rollout {rollout_id}"
        messages.success(request, f"{subject} {COMMAND_DONE[Command(name)]}.")
    return redirect("rollout", rollout_id=rollout_id)


@page_guard(Permission.OPERATE)
@require_POST
def rollout_revert_host(request: HttpRequest, rollout_id: int) -> HttpResponse:
    """Revert one host to the versions it had before this rollout's job."""
    host = request.POST.get("host", "")[:255]
    try:
        job = driver.rollback_host(actor_for(request), rollout_id, host)
    except PatchdayError as exc:
        messages.error(request, f"Host {host or '(none)'} is not reverted: {exc}.")
    else:
        messages.success(request, f"Host {host} is queued for rollback (job {job.pk}).")
    return redirect("rollout", rollout_id=rollout_id)


# -- one job -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackageChange:
    name: str
    before: str
    after: str
    unexpected: bool


@dataclass(frozen=True, slots=True)
class Phase:
    """The deploy or the rollback result of a job, as the job page shows it."""

    label: str
    status: str
    error: str
    steps: list[dict[str, Any]]
    health: list[dict[str, Any]]
    packages: list[PackageChange]
    reboot_required: bool
    reboot_scheduled: bool


def _phase(label: str, result: Mapping[str, Any] | None, unexpected: set[str]) -> Phase | None:
    if not result:
        return None
    before: Mapping[str, Any] = result.get("before") or {}
    after: Mapping[str, Any] = result.get("after") or {}

    def version(entries: Mapping[str, Any], name: str) -> str:
        entry = entries.get(name)
        return str(entry.get("version") or "") if isinstance(entry, dict) else ""

    packages = [
        PackageChange(name, version(before, name), version(after, name), name in unexpected)
        for name in sorted(set(before) | set(after))
    ]
    return Phase(
        label=label,
        status=str(result.get("status") or ""),
        error=str(result.get("error") or ""),
        steps=[s for s in result.get("steps") or [] if isinstance(s, dict)],
        health=[h for h in result.get("health") or [] if isinstance(h, dict)],
        packages=packages,
        reboot_required=result.get("reboot_required") is True,
        reboot_scheduled=result.get("reboot_scheduled") is True,
    )


@page_guard(Permission.VIEW)
@require_GET
def job_page(request: HttpRequest, job_id: int) -> HttpResponse:
    """One host job: what it was asked (the spec) and what it reported, step by step."""
    try:
        job = queries.get_job(job_id)
    except NotFound as exc:
        return _unknown(request, "job", job_id, exc)
    unexpected = {str(u.get("name")) for u in job.unexpected if isinstance(u, dict)}
    deploy, rollback = _phase("Deploy", job.result, unexpected), _phase("Rollback", job.rollback_result, set())
    context = {
        "job": job,
        "spec": job.spec,
        "targets": job.spec.get("targets") or [],
        "restore": job.spec.get("restore") or [],
        "phases": [phase for phase in (deploy, rollback) if phase is not None],
        "unexpected": [u for u in job.unexpected if isinstance(u, dict)],
        "can_revert": _user(request).may(Permission.OPERATE) and job.state in REVERTIBLE,
    }
    return render(request, "rollouts/job.html", context)


# -- maintenance windows and freezes ---------------------------------------------------------------------


class WindowForm(forms.Form):
    name = forms.CharField(max_length=64)
    rrule = forms.CharField(max_length=512, label="Recurrence (RRULE)")
    duration_minutes = forms.IntegerField(min_value=1, max_value=windows.MAX_DURATION_MINUTES, label="Duration (min)")
    timezone = forms.CharField(max_length=64, label="Time zone", initial="UTC")
    starts = forms.DateTimeField(
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"], label="First start (local time)"
    )
    offset_minutes = forms.IntegerField(min_value=-44640, max_value=44640, initial=0, label="Offset (min)")
    groups = forms.CharField(required=False, max_length=10_000, label="Groups")
    description = forms.CharField(required=False, max_length=255)


class FreezeForm(forms.Form):
    name = forms.CharField(max_length=100)
    start = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"], label="Start (UTC)")
    end = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"], label="End (UTC)")
    reason = forms.CharField(required=False, max_length=255)


@dataclass(frozen=True, slots=True)
class WindowRow:
    window: MaintenanceWindow
    next_opening: Mapping[str, datetime] | None


def _windows_context(
    request: HttpRequest, window_form: WindowForm | None = None, freeze_form: FreezeForm | None = None
) -> dict[str, Any]:
    page = _paginate(windows.list_windows(), request)
    page.object_list = [WindowRow(w, queries.next_opening(w)) for w in page]
    return {
        "page": page,
        "query": _query(request.GET, "page", "freezes_page"),
        "freezes": _paginate(FreezePeriod.objects.order_by("start", "id"), request, "freezes_page"),
        "freezes_query": _query(request.GET, "freezes_page"),
        "window_form": window_form or WindowForm(),
        "freeze_form": freeze_form or FreezeForm(),
        "can_operate": _user(request).may(Permission.OPERATE),
    }


@page_guard(Permission.VIEW)
@require_GET
def windows_page(request: HttpRequest) -> HttpResponse:
    """Maintenance windows with their next opening, and change freezes; operators add and delete them."""
    return render(request, "rollouts/windows.html", _windows_context(request))


@page_guard(Permission.VIEW)
@require_GET
def windows_export(request: HttpRequest) -> HttpResponse:
    header = ("name", "rrule", "duration_minutes", "timezone", "starts", "offset_minutes", "groups", "description",
              "next_opening_start", "next_opening_end")  # fmt: skip
    return _csv("maintenance-windows.csv", header, (_window_cells(w) for w in windows.list_windows()))


def _window_cells(w: MaintenanceWindow) -> tuple[object, ...]:
    opening = queries.next_opening(w) or {}
    return (w.name, w.rrule, w.duration_minutes, w.timezone, w.starts, w.offset_minutes, " ".join(w.groups),
            w.description, opening.get("start"), opening.get("end"))  # fmt: skip


@page_guard(Permission.OPERATE)
@require_POST
def window_create(request: HttpRequest) -> HttpResponse:
    form = WindowForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            window = windows.create_window(
                actor_for(request),
                data["name"],
                data["rrule"],
                data["duration_minutes"],
                data["timezone"].strip(),
                data["starts"].replace(tzinfo=None).isoformat(),  # wall time in the window's own zone
                offset_minutes=data["offset_minutes"],
                groups=_names(data["groups"]),
                description=data["description"],
            )
        except PatchdayError as exc:
            _add_error(form, exc, {"tz": "timezone"})
        else:
            messages.success(request, f"Maintenance window {window.name} is saved.")
            return redirect("windows")
    return render(request, "rollouts/windows.html", _windows_context(request, window_form=form), status=400)


@page_guard(Permission.OPERATE)
@require_POST
def window_import(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("calendar")
    if upload is None:
        messages.error(request, "Choose an iCalendar (.ics) file to import.")
        return redirect("windows")
    if upload.size is not None and upload.size > 1024 * 1024:
        messages.error(request, "Nothing was imported: the calendar is larger than 1 MiB.")
        return redirect("windows")
    try:
        result = windows.import_ics(actor_for(request), upload.read())
    except PatchdayError as exc:
        messages.error(request, f"Nothing was imported: {exc}.")
    else:
        skipped = f"; skipped: {', '.join(result.skipped)}" if result.skipped else ""
        messages.success(
            request, f"Imported {len(result.windows)} window(s) and {len(result.freezes)} freeze(s){skipped}."
        )
    return redirect("windows")


@page_guard(Permission.OPERATE)
@require_POST
def window_delete(request: HttpRequest, name: str) -> HttpResponse:
    try:
        windows.delete_window(actor_for(request), name)
    except PatchdayError as exc:
        messages.error(request, f"Window {name} is not deleted: {exc}.")
    else:
        messages.success(request, f"Maintenance window {name} is deleted.")
    return redirect("windows")


@page_guard(Permission.OPERATE)
@require_POST
def freeze_create(request: HttpRequest) -> HttpResponse:
    form = FreezeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            freeze = windows.create_freeze(
                actor_for(request),
                data["name"],
                data["start"].astimezone(UTC),
                data["end"].astimezone(UTC),
                data["reason"],
            )
        except PatchdayError as exc:
            _add_error(form, exc)
        else:
            messages.success(request, f"Freeze {freeze.name} is saved: no job starts during it.")
            return redirect("windows")
    return render(request, "rollouts/windows.html", _windows_context(request, freeze_form=form), status=400)


@page_guard(Permission.OPERATE)
@require_POST
def freeze_delete(request: HttpRequest, freeze_id: int) -> HttpResponse:
    try:
        windows.delete_freeze(actor_for(request), freeze_id)
    except PatchdayError as exc:
        messages.error(request, f"Freeze {freeze_id} is not deleted: {exc}.")
    else:
        messages.success(request, f"Freeze {freeze_id} is deleted.")
    return redirect("windows")
