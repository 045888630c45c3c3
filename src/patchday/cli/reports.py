"""`patchday report ...`: evidence packs for auditors and scheduled reports, from the server machine."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

report_app = typer.Typer(help="Compliance reports: evidence packs and scheduled reports.", no_args_is_help=True)
schedule_app = typer.Typer(help="Reports made and sent daily, weekly or monthly.", no_args_is_help=True)
report_app.add_typer(schedule_app, name="schedule")
out = Console(soft_wrap=True)
FRAMEWORK_HELP = "pci-dss, nist, cis, hipaa, gdpr or iso27001"


def _day(value: str, option: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


@report_app.command("evidence")
def evidence_command(
    framework: Annotated[str, typer.Option(help=FRAMEWORK_HELP)],
    start: Annotated[str, typer.Option("--from", help="first day of the period, YYYY-MM-DD (UTC)")],
    end: Annotated[str, typer.Option("--to", help="last day of the period, YYYY-MM-DD (UTC), included")],
    output: Annotated[Optional[Path], typer.Option(help="the zip to write (default: its own name here)")] = None,  # noqa: UP045
) -> None:
    """Build an evidence pack: PDF summary, CSVs of the period, audit verification, SHA-256 manifest."""
    first, last = _day(start, "--from").date(), _day(end, "--to").date()
    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.reports import compliance, evidence

    compliance.framework(framework)  # an unknown framework or a backwards period fails before any file is made
    compliance.check_period(first, last)
    target = output or Path(f"patchday-evidence-{framework.strip().lower()}-{first}-{last}.zip")
    partial = target.with_name(target.name + ".partial")
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=out, transient=True) as progress:
        task = progress.add_task("starting", total=None)
        try:
            with partial.open("wb") as handle:
                pack = evidence.write_pack(
                    framework, first, last, cli_actor(), handle, lambda step: progress.update(task, description=step)
                )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    table = Table("control", "status", "measured")
    for item in pack.assessments:
        table.add_row(escape(item.control.id), item.status.value, escape("; ".join(item.measured)))
    out.print(table)
    if pack.empty:
        out.print("there is no data for this period; the pack says so")
    out.print(f"wrote {escape(str(target))} (manifest SHA-256 {pack.manifest_sha256})", highlight=False)


@schedule_app.command("add")
def schedule_add(
    name: str,
    frequency: Annotated[str, typer.Option(help="daily, weekly or monthly")],
    scope: Annotated[str, typer.Option(help=f"metrics, or a framework: {FRAMEWORK_HELP}")] = "metrics",
    format: Annotated[str, typer.Option(help="pdf or csv")] = "pdf",
    email: Annotated[Optional[list[str]], typer.Option(help="an e-mail recipient (repeatable)")] = None,  # noqa: UP045
    webhook: Annotated[Optional[int], typer.Option(help="id of a webhook channel")] = None,  # noqa: UP045
    group: Annotated[str, typer.Option(help="only this host group's metrics")] = "",
    environment: Annotated[str, typer.Option(help="only this environment's metrics")] = "",
    hour: Annotated[int, typer.Option(help="UTC hour of the day it is made")] = 6,
) -> None:
    """Add a report schedule."""
    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.reports import schedules

    actor = cli_actor()
    schedule = schedules.add_schedule(
        actor, actor.name, name, frequency, scope, format=format, addresses=email or (), webhook_id=webhook,
        group=group, environment=environment, hour=hour,
    )  # fmt: skip
    out.print(f"schedule {schedule.pk} added; first run {schedule.next_run_at:%Y-%m-%d %H:%M} UTC", highlight=False)


@schedule_app.command("list")
def schedule_list() -> None:
    """List report schedules with their next and last run."""
    from patchday.cli.bootstrap import start_django

    start_django()
    from patchday.reports import schedules

    table = Table("id", "name", "every", "scope", "format", "to", "next run (UTC)", "last run")
    for s in schedules.schedules():
        recipients = ", ".join([*s.addresses, *([f"webhook {s.webhook_id}"] if s.webhook_id else [])])
        last = f"{s.last_run_at:%Y-%m-%d %H:%M} {s.last_outcome}" if s.last_run_at else "never"
        scope = s.scope + "".join(f" {k}={v}" for k, v in (("group", s.group), ("environment", s.environment)) if v)
        table.add_row(
            str(s.pk), escape(s.name), f"{s.frequency} at {s.hour}:00", escape(scope), s.format, escape(recipients),
            f"{s.next_run_at:%Y-%m-%d %H:%M}", escape(last),
        )  # fmt: skip
    out.print(table)


@schedule_app.command("remove")
def schedule_remove(schedule_id: int) -> None:
    """Remove a report schedule (it runs no more)."""
    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.reports import schedules

    schedules.remove_schedule(cli_actor(), schedule_id)
    out.print(f"schedule {schedule_id} removed")
