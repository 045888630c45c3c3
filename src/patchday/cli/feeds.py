"""`patchday feeds ...`: import feed files (offline, air-gapped) and see each source's state."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

feeds_app = typer.Typer(help="Vulnerability feeds: import files, see their state.", no_args_is_help=True)
out = Console(soft_wrap=True)  # lines stay whole in logs and pipes
STALE_AFTER_DAYS = 7


@feeds_app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="feed files or directories")],
    source: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="osv, debian-dsa, debian-dla, kev, epss, nvd or cve5; detected from the content when omitted"
        ),
    ] = None,
    score_date: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="EPSS score date (YYYY-MM-DD) when the file does not say"),
    ] = None,
) -> None:
    """Import feed files. Each file lands completely or not at all; importing it again changes nothing."""
    from patchday.cli.bootstrap import cli_actor, start_django
    from patchday.feeds.detect import SOURCES, detect_source

    if source is not None and source not in SOURCES:
        raise typer.BadParameter(f"--source {source!r}: use one of {', '.join(SOURCES)}")
    try:
        day = date.fromisoformat(score_date) if score_date else None
    except ValueError:
        raise typer.BadParameter(f"--score-date {score_date!r} is not YYYY-MM-DD") from None
    start_django()
    from patchday.advisories.feed_imports import loader_for, run_import

    failed = 0
    for path in paths:
        kind = source or detect_source(path)
        try:
            run = run_import(cli_actor(), kind, path, loader_for(cli_actor(), kind, path, day))
        except Exception as exc:  # one failing file never blocks the others; its run says why
            failed += 1
            out.print(f"[red]failed[/red] {kind} {path}: {exc}", highlight=False)
            continue
        out.print(
            f"{kind} {path}: {run.added} added, {run.updated} updated, {run.unchanged} unchanged, "
            f"{run.removed} removed (data of {run.data_date or 'unknown date'})",
            highlight=False,
        )
    if failed:
        raise typer.Exit(2)


@feeds_app.command("status")
def status_command() -> None:
    """Per source: last success, last attempt, record counts, data date, staleness."""
    from patchday.cli.bootstrap import start_django

    start_django()
    from django.utils import timezone

    from patchday.advisories.models import FeedRun

    table = Table("source", "last success", "data date", "added/updated/unchanged", "last attempt", "state")
    today = timezone.now().date()
    for source in FeedRun.objects.values_list("source", flat=True).distinct().order_by("source"):
        runs = FeedRun.objects.filter(source=source)
        last = runs.first()
        good = runs.filter(outcome=FeedRun.SUCCEEDED).first()
        assert last is not None
        stale = good is None or good.data_date is None or (today - good.data_date).days > STALE_AFTER_DAYS
        state = (
            "[red]failing[/red]" if last.outcome == FeedRun.FAILED else ("[yellow]stale[/yellow]" if stale else "ok")
        )
        table.add_row(
            source,
            f"{good.finished_at:%Y-%m-%d %H:%M}" if good and good.finished_at else "never",
            str(good.data_date or "-") if good else "-",
            f"{good.added}/{good.updated}/{good.unchanged}" if good else "-",
            f"{last.started_at:%Y-%m-%d %H:%M} {last.outcome}",
            state,
        )
    out.print(table)
