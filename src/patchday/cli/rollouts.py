"""`patchday plan ...` and `patchday rollout ...`: deployment from the command line on the server machine.

Plans are created, previewed and submitted as the CLI user; approving names an approver account
(`--as`), which must be someone other than the plan's requester. Rollouts are started and steered
here; `rollout status --watch` shows each ring's progress with bars until the rollout settles.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

plan_app = typer.Typer(help="Plans: what to fix, where, previewed, then approved.", no_args_is_help=True)
rollout_app = typer.Typer(help="Rollouts: approved plans applied ring by ring.", no_args_is_help=True)
out = Console(soft_wrap=True)
DONE_JOB_STATES = ("verified", "failed", "cancelled", "rolled_back", "rollback_failed")


def _start() -> None:
    from patchday.cli.bootstrap import start_django

    start_django()


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _show_plan(detail: dict[str, Any]) -> None:
    totals = detail["totals"]
    out.print(
        f"[bold]plan {detail['id']}[/bold] {escape(detail['name'])}: {detail['state']} "
        f"(requested by {escape(detail['requested_by'])})"
    )
    out.print(
        f"{totals.get('hosts_with_changes', 0)} of {totals.get('hosts', 0)} hosts change, "
        f"{totals.get('packages', 0)} package updates ({totals.get('distinct_packages', 0)} distinct), "
        f"{totals.get('reboots', 0)} reboots, {totals.get('findings_closed', 0)} findings closed, "
        f"{totals.get('skipped', 0)} skipped; by ring: {totals.get('by_ring', {})}",
        highlight=False,
    )
    table = Table("ring", "host", "package", "from", "to", "reboot", "closes", "window start")
    rings = [r["name"] for r in detail["rings"]]
    for host in detail["hosts"]:
        first = True
        for change in host["changes"] or [{"name": "(nothing)", "from": "", "to": ""}]:
            table.add_row(
                escape(rings[host["ring"]] if host["ring"] < len(rings) else str(host["ring"])) if first else "",
                escape(host["host"]) if first else "",
                escape(change["name"]),
                escape(change.get("from") or ""),
                escape(change.get("to") or ""),
                ("yes" if host["reboot"] else "no") if first else "",
                str(len(host["closes"])) if first else "",
                (host["window_start"].isoformat() if host["window_start"] else "no opening found") if first else "",
            )
            first = False
        for skipped in host["skipped"]:
            table.add_row(
                "",
                "",
                escape(skipped["name"]),
                "",
                escape(skipped["version"]),
                "",
                "",
                f"skipped: {escape(skipped['reason'])}",
            )
    out.print(table)


@plan_app.command("create")
def create_command(
    name: Annotated[str, typer.Option(help="what the change is called")],
    select: Annotated[
        str, typer.Option(help="security, all, packages, cves, advisories, severity, priority, due_before")
    ],
    values: Annotated[str, typer.Option(help="comma-separated values of the selection")] = "",
    before: Annotated[str, typer.Option(help="due_before: YYYY-MM-DD")] = "",
    hosts: Annotated[str, typer.Option(help="comma-separated host names")] = "",
    groups: Annotated[str, typer.Option(help="comma-separated group names")] = "",
    tags: Annotated[str, typer.Option(help="comma-separated tags")] = "",
    environments: Annotated[str, typer.Option(help="comma-separated environments")] = "",
    reboot: Annotated[str, typer.Option(help="never, if_required or always")] = "if_required",
    holds: Annotated[str, typer.Option(help="packages never upgraded (globs)")] = "",
    exclude: Annotated[str, typer.Option(help="packages left out (globs)")] = "",
    cooldown_days: Annotated[int, typer.Option(help="skip fixes published fewer days ago")] = 0,
    pre_script: Annotated[list[str] | None, typer.Option(help="a stored script (name or name@version)")] = None,
    post_script: Annotated[list[str] | None, typer.Option(help="a stored script (name or name@version)")] = None,
    rings: Annotated[Path | None, typer.Option(help="a JSON file of rings with gates")] = None,
) -> None:
    """Create a plan and show its preview: exact versions per host, reboots, findings closed, window starts."""
    _start()
    from patchday.cli.bootstrap import cli_actor
    from patchday.rollouts import plans, queries

    actor = cli_actor()
    selection: dict[str, Any] = {"kind": select, "values": _split(values)}
    if before:
        selection["before"] = before
    target = {
        "hosts": _split(hosts),
        "groups": _split(groups),
        "tags": _split(tags),
        "environments": _split(environments),
    }
    options = {
        "reboot": reboot,
        "holds": _split(holds),
        "exclusions": _split(exclude),
        "cooldown_days": cooldown_days,
        "pre_scripts": pre_script or [],
        "post_scripts": post_script or [],
    }
    ring_specs = json.loads(rings.read_text(encoding="utf-8")) if rings else None
    plan = plans.create_plan(actor, actor.name, name, selection, target, options, ring_specs)
    _show_plan(queries.plan_detail(plan.pk))


@plan_app.command("preview")
def preview_command(
    plan_id: int, refresh: Annotated[bool, typer.Option(help="recompute from inventory")] = False
) -> None:
    """Show a plan's preview (--refresh recomputes it from the current inventory)."""
    _start()
    from patchday.cli.bootstrap import cli_actor
    from patchday.rollouts import plans, queries

    if refresh:
        plans.refresh_preview(cli_actor(), plan_id)
    _show_plan(queries.plan_detail(plan_id))


@plan_app.command("submit")
def submit_command(plan_id: int) -> None:
    """Route a draft for approval (an auto-approval rule that fits approves it at once)."""
    _start()
    from patchday.cli.bootstrap import cli_actor
    from patchday.rollouts import plans

    plan = plans.submit(cli_actor(), plan_id)
    rule = f" by rule {plan.auto_rule!r}" if plan.auto_rule else ""
    out.print(f"plan {plan.pk} is {plan.state}{escape(rule)}")


def _approver(username: str) -> str:
    """`username` when it names an active account that may approve changes."""
    from patchday.accounts import services
    from patchday.core.errors import NotFound
    from patchday.core.roles import Permission

    user = services.get_user(username)
    if not user.is_active:
        raise NotFound(f"no active account named {username!r}")
    services.require(user, Permission.APPROVE)
    return username


@plan_app.command("approve")
def approve_command(
    plan_id: int,
    as_user: Annotated[str, typer.Option("--as", help="the approver's account (not the requester)")],
    comment: Annotated[str, typer.Option()] = "",
) -> None:
    """Approve a pending plan on behalf of an approver account."""
    _start()
    from patchday.cli.bootstrap import cli_actor
    from patchday.rollouts import plans

    plan = plans.decide(cli_actor(), _approver(as_user), plan_id, True, comment)
    out.print(f"plan {plan.pk} is {plan.state}")


@plan_app.command("reject")
def reject_command(
    plan_id: int,
    as_user: Annotated[str, typer.Option("--as", help="the approver's account")],
    comment: Annotated[str, typer.Option(help="why (required)")],
) -> None:
    """Reject a pending plan, saying why."""
    _start()
    from patchday.cli.bootstrap import cli_actor
    from patchday.rollouts import plans

    plan = plans.decide(cli_actor(), _approver(as_user), plan_id, False, comment)
    out.print(f"plan {plan.pk} is {plan.state}")


@plan_app.command("list")
def list_command(state: Annotated[str, typer.Option()] = "") -> None:
    """Plans, newest first."""
    _start()
    from patchday.rollouts import queries

    table = Table("id", "name", "state", "hosts", "packages", "requested by", "created")
    for plan in queries.plans(state)[:200]:
        table.add_row(
            str(plan.pk),
            escape(plan.name),
            plan.state,
            str(plan.totals.get("hosts_with_changes", 0)),
            str(plan.totals.get("packages", 0)),
            escape(plan.requested_by),
            f"{plan.created_at:%Y-%m-%d %H:%M}",
        )
    out.print(table)


@rollout_app.command("start")
def start_command(
    plan_id: int,
    override: Annotated[bool, typer.Option(help="start without approval: an audited emergency change")] = False,
) -> None:
    """Start an approved plan's rollout."""
    _start()
    from patchday.cli.bootstrap import cli_actor
    from patchday.rollouts import driver

    rollout = driver.start(cli_actor(), plan_id, override=override)
    out.print(f"rollout {rollout.pk} is {rollout.state}: {escape(rollout.reason)}")


def _command(name: str, rollout_id: int, ring: int | None = None) -> None:
    _start()
    from patchday.cli.bootstrap import cli_actor
    from patchday.rollouts import driver

    rollout = driver.command(cli_actor(), rollout_id, name, ring)
    out.print(f"rollout {rollout.pk} is {rollout.state}: {escape(rollout.reason)}")


@rollout_app.command("pause")
def pause_command(rollout_id: int) -> None:
    """Stop handing out new jobs (running ones finish)."""
    _command("pause", rollout_id)


@rollout_app.command("resume")
def resume_command(rollout_id: int) -> None:
    """Resume a paused rollout."""
    _command("resume", rollout_id)


@rollout_app.command("abort")
def abort_command(rollout_id: int) -> None:
    """End the rollout: queued jobs are cancelled, waiting rings skipped."""
    _command("abort", rollout_id)


@rollout_app.command("promote")
def promote_command(rollout_id: int) -> None:
    """Pass the current ring by hand (audited) so the next one opens."""
    _command("promote", rollout_id)


@rollout_app.command("retry")
def retry_command(rollout_id: int) -> None:
    """Queue the failed and unknown jobs of the failed ring again."""
    _command("retry_failed", rollout_id)


@rollout_app.command("rollback")
def rollback_command(
    rollout_id: int,
    ring: Annotated[int | None, typer.Option(help="the ring index to put back")] = None,
    host: Annotated[str, typer.Option(help="put back only this host")] = "",
) -> None:
    """Put a ring's hosts (or one host) back to exactly the versions they had before this rollout."""
    if host:
        _start()
        from patchday.cli.bootstrap import cli_actor
        from patchday.rollouts import driver

        job = driver.rollback_host(cli_actor(), rollout_id, host)
        out.print(f"job {job.pk} on {escape(host)} is {job.state}")
        return
    if ring is None:
        raise typer.BadParameter("name --ring or --host")
    _command("rollback", rollout_id, ring)


def _print_status(detail: dict[str, Any]) -> None:
    out.print(f"[bold]rollout {detail['id']}[/bold] ({escape(detail['plan_name'])}): {detail['state']}")
    if detail["reason"]:
        out.print(f"  {escape(detail['reason'])}", highlight=False)
    table = Table("ring", "state", "jobs", "verified", "failed", "in flight")
    for ring in detail["rings"]:
        jobs = ring["jobs"]
        flight = sum(jobs.get(s, 0) for s in ("queued", "leased", "succeeded", "unknown"))
        table.add_row(
            escape(ring["name"]),
            ring["state"],
            str(ring["total"]),
            str(jobs.get("verified", 0)),
            str(jobs.get("failed", 0)),
            str(flight),
        )
    out.print(table)


@rollout_app.command("status")
def status_command(
    rollout_id: int,
    watch: Annotated[bool, typer.Option(help="follow with progress bars until it settles")] = False,
) -> None:
    """Each ring's state and job counts (--watch: live progress bars)."""
    _start()
    from patchday.rollouts import queries

    detail = queries.rollout_detail(rollout_id)
    if not watch:
        _print_status(detail)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=out) as progress:
        tasks = {r["index"]: progress.add_task(r["name"], total=max(1, r["total"])) for r in detail["rings"]}
        while True:
            detail = queries.rollout_detail(rollout_id)
            for ring in detail["rings"]:
                done = sum(ring["jobs"].get(s, 0) for s in DONE_JOB_STATES)
                progress.update(tasks[ring["index"]], completed=done, description=f"{ring['name']} ({ring['state']})")
            if detail["state"] in ("completed", "aborted", "halted"):
                break
            time.sleep(2)
    _print_status(detail)


@rollout_app.command("tick", hidden=True)
def tick_command() -> None:
    """Advance every rollout once and push due SSH jobs (what the worker does every minute)."""
    _start()
    from patchday.rollouts import driver

    out.print(driver.tick(), highlight=False)
