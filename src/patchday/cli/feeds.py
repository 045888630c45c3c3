"""`patchday feeds ...`: sync feeds from their URLs, import files and bundles (air-gapped), export, see state."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from patchday.advisories.models import FeedRun

feeds_app = typer.Typer(help="Vulnerability feeds: sync, import, export, see their state.", no_args_is_help=True)
out = Console(soft_wrap=True)  # lines stay whole in logs and pipes
STRICT_HELP = "fail a dump (OSV, NVD, CVE 5) on one malformed record instead of skipping it and listing it in the run"


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
    strict: Annotated[bool, typer.Option("--strict", help=STRICT_HELP)] = False,
) -> None:
    """Import feed files (plain, gzipped, .zip or tar archives), or bundles made by `feeds export`. Each file
    lands completely or not at all; importing it again changes nothing. A bundle's checksums are all verified
    before anything is imported. A malformed record in an OSV, NVD or CVE 5 dump is skipped and listed, unless
    --strict."""
    from patchday.cli.bootstrap import cli_actor, start_django
    from patchday.feeds.detect import SOURCES, detect_source

    if source is not None and source not in SOURCES:
        raise typer.BadParameter(f"--source {source!r}: use one of {', '.join(SOURCES)}")
    try:
        day = date.fromisoformat(score_date) if score_date else None
    except ValueError:
        raise typer.BadParameter(f"--score-date {score_date!r} is not YYYY-MM-DD") from None
    start_django()
    from patchday.advisories.feed_imports import import_bundle, is_bundle, loader_for, run_import

    failed = 0
    for path in paths:
        if source is None and is_bundle(path):
            try:
                for run in import_bundle(cli_actor(), path, strict=strict):
                    _print_run(run.source, Path(run.origin), run)
            except Exception as exc:  # one failing bundle never blocks the others
                failed += 1
                out.print(f"[red]failed[/red] bundle {path}: {exc}", highlight=False)
            continue
        try:
            kind = source or detect_source(path)
        except Exception as exc:  # an unknown file never blocks the others
            failed += 1
            out.print(f"[red]failed[/red] {path}: {exc}", highlight=False)
            continue
        try:
            run = run_import(cli_actor(), kind, path, loader_for(cli_actor(), kind, path, day, strict=strict))
        except Exception as exc:  # one failing file never blocks the others; its run says why
            failed += 1
            out.print(f"[red]failed[/red] {kind} {path}: {exc}", highlight=False)
            continue
        _print_run(kind, path, run)
    if failed:
        raise typer.Exit(2)


def _print_run(kind: str, path: Path | str, run: FeedRun) -> None:
    out.print(
        f"{kind} {path}: {run.added} added, {run.updated} updated, {run.unchanged} unchanged, "
        f"{run.removed} removed (data of {run.data_date or 'unknown date'})",
        highlight=False,
    )
    if run.skipped:
        out.print(f"[yellow]{len(run.skipped)} malformed record(s) skipped[/yellow] (--strict fails instead):")
        for message in run.skipped:
            out.print(f"  {message}", highlight=False)


@feeds_app.command("sync")
def sync_command(
    sources: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(help="sources to sync (default: every source in PATCHDAY_FEED_URLS)"),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help=STRICT_HELP)] = False,
) -> None:
    """Download each source from its URL (only when it changed) and import it. Exit code 2 if any failed."""
    from patchday.cli.bootstrap import cli_actor, start_django
    from patchday.settings import load_settings

    settings = load_settings()
    chosen = sources or list(settings.feed_urls)
    unknown = [s for s in chosen if s not in settings.feed_urls]
    if unknown:
        configured = ", ".join(settings.feed_urls) or "none"
        raise typer.BadParameter(f"no URL for {', '.join(unknown)} (configured: {configured}; see PATCHDAY_FEED_URLS)")
    start_django()
    from patchday.advisories.feed_imports import sync_source

    failed = 0
    for source in chosen:
        url = settings.feed_urls[source]
        try:
            progress = sys.stdout.isatty()
            run = sync_source(cli_actor(), source, url, settings.feed_cache_dir, progress=progress, strict=strict)
        except Exception as exc:  # one failing source never blocks the others; its run says why
            failed += 1
            out.print(f"[red]failed[/red] {source} {url}: {exc}", highlight=False)
            continue
        if run.checksum and run.added == run.updated == run.unchanged == run.removed == 0:
            out.print(f"{source} {url}: not modified since the last sync", highlight=False)
        else:
            _print_run(source, url, run)
    if failed:
        raise typer.Exit(2)


@feeds_app.command("export")
def export_command(
    directory: Annotated[Path, typer.Argument(help="directory to write the bundle into")],
) -> None:
    """Copy the last successfully synced file of each source into DIRECTORY with a manifest.json
    (file, source, sha256, data_date), for `patchday feeds import DIRECTORY` on an air-gapped installation."""
    from patchday.cli.bootstrap import start_django
    from patchday.core.errors import PatchdayError
    from patchday.settings import load_settings

    start_django()  # feed_imports imports models
    from patchday.advisories.feed_imports import export_bundle

    try:
        entries = export_bundle(load_settings().feed_cache_dir, directory)
    except (PatchdayError, OSError) as exc:
        out.print(f"[red]failed[/red] export to {directory}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    for entry in entries:
        out.print(f"{entry.source} {directory / entry.file} (data of {entry.data_date or 'unknown date'})")


@feeds_app.command("status")
def status_command() -> None:
    """Per source: last success, last attempt, record counts, data date, staleness."""
    from patchday.cli.bootstrap import start_django

    start_django()
    from django.utils import timezone

    from patchday.advisories.queries import FeedState, feed_status

    styles = {FeedState.OK: "green", FeedState.STALE: "yellow", FeedState.FAILING: "red", FeedState.NEVER: "dim"}
    table = Table("source", "state", "data date", "last success", "added/updated/unchanged", "skipped", "last attempt")
    for status in feed_status(timezone.now().date()):
        good, last = status.last_success, status.last_attempt
        table.add_row(
            status.source,
            f"[{styles[status.state]}]{status.state.value}[/]",
            str(status.data_date or "-"),
            f"{good.finished_at:%Y-%m-%d %H:%M}" if good and good.finished_at else "never",
            f"{good.added}/{good.updated}/{good.unchanged}" if good else "-",
            f"[yellow]{len(good.skipped)}[/]" if good and good.skipped else "0" if good else "-",
            f"{last.started_at:%Y-%m-%d %H:%M} {last.outcome}" if last else "-",
        )
    out.print(table)
    for status in feed_status(timezone.now().date()):
        if status.last_success and status.last_success.skipped:
            out.print(f"{status.source}: malformed records skipped by its last successful run:", highlight=False)
            for message in status.last_success.skipped:
                out.print(f"  {message}", highlight=False)
