"""`patchday advisories ...`: load advisories into the database and rematch what they touch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

advisories_app = typer.Typer(help="Load and inspect vulnerability advisories.", no_args_is_help=True)
out = Console()


@advisories_app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="OSV: directories, .json, .json.gz or all.zip files")],
) -> None:
    """Import OSV records (all files or none), then rematch the fleet's affected packages."""
    from patchday.cli.bootstrap import cli_actor, start_django
    from patchday.feeds.osv import load_osv

    records = [advisory for path in paths for advisory in load_osv(path)]  # everything parsed before any write
    start_django()
    from patchday.advisories import services
    from patchday.findings import services as matcher

    report = services.import_advisories(cli_actor(), records, ", ".join(p.name for p in paths)[:64])
    change = matcher.rematch_packages(report.touched)
    out.print(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged; {report.ranges} ranges "
        f"({report.unkeyed_ranges} with versions that do not parse); matches: +{change.added} -{change.removed}"
    )
    if report.unknown_ecosystems:
        out.print(
            f"ecosystems patchday cannot order versions of (kept, not matched): {', '.join(report.unknown_ecosystems)}"
        )
