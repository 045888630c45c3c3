"""`patchday scan`: the offline one-shot scan of this machine, a root file system or saved files."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from patchday.core.errors import InvalidInput
from patchday.core.osv import Advisory
from patchday.core.severity import Rating

if TYPE_CHECKING:
    from patchday.scanning import ScanReport

SEVERITY_STYLE = {
    Rating.CRITICAL: "bold red",
    Rating.HIGH: "red",
    Rating.MEDIUM: "yellow",
    Rating.LOW: "green",
    Rating.UNKNOWN: "dim",
}
CSV_FIELDS = (
    "package",
    "source_package",
    "installed_version",
    "fixed_version",
    "advisory_ids",
    "cve_ids",
    "severity",
    "ecosystem",
)


def _load_advisories(paths: list[Path], ecosystems: tuple[str, ...]) -> tuple[list[Advisory], str]:
    """Advisories from --osv files, else from the server's database when one is set up."""
    from patchday.feeds.osv import load_osv

    if paths:
        return [advisory for path in paths for advisory in load_osv(path)], ", ".join(map(str, paths))
    from patchday.cli.bootstrap import start_django
    from patchday.core.errors import DatabaseUnavailable

    try:
        settings = start_django()
    except DatabaseUnavailable as exc:
        raise InvalidInput(f"no --osv given and no usable patchday database ({exc})") from None
    from patchday.advisories.services import stored_advisories

    found = stored_advisories(ecosystems)
    if not found:
        raise InvalidInput(
            f"no --osv given and the database {settings.database_display} holds no advisories for "
            f"{', '.join(ecosystems) or 'this system'}; pass --osv PATH or run `patchday feeds import`"
        )
    return found, f"database {settings.database_display}"


def _print_table(report: ScanReport, origin: str, console: Console) -> None:
    host = report.host
    console.print(
        f"[bold]{host.hostname}[/bold] · {host.os_name or host.os_id} · {len(host.packages)} packages · "
        f"{report.advisories_loaded} advisories from {origin} ({', '.join(host.ecosystems) or 'no known ecosystem'})",
        highlight=False,
    )
    for note in (*host.notes, *(f"not covered: {u}" for u in report.unknown)):
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    if report.findings:
        table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("severity", no_wrap=True)
        table.add_column("package", overflow="fold", min_width=16)
        table.add_column("installed", no_wrap=True)
        table.add_column("fixed in", no_wrap=True)
        table.add_column("advisories", overflow="fold", min_width=10)
        table.add_column("CVEs", justify="right")
        for f in report.findings:
            name = f.package if f.package == f.source_package else f"{f.package} [dim]({f.source_package})[/dim]"
            table.add_row(
                f"[{SEVERITY_STYLE[f.severity]}]{f.severity.value}[/]",
                name,
                f.installed_version,
                f.fixed_version or "[bold]no fix yet[/bold]",
                " ".join(f.advisory_ids),
                str(len(f.cve_ids)),
            )
        console.print(table)
    for package, version, reason in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {package} {version}: {reason}", highlight=False)
    summary = report.summary
    console.print(
        f"{summary['findings']} findings in {summary['vulnerable_packages']} packages "
        f"({summary['no_fix_available']} without a fix yet), {summary['cves']} CVEs, "
        f"{summary['skipped']} packages skipped"
    )


def scan_command(
    local: Annotated[bool, typer.Option("--local", help="scan this machine")] = False,
    root: Annotated[Optional[Path], typer.Option(help="scan the system installed under DIR (image, chroot)")] = None,  # noqa: UP045
    dpkg_status: Annotated[Optional[Path], typer.Option(help="a saved /var/lib/dpkg/status")] = None,  # noqa: UP045
    os_release: Annotated[Optional[Path], typer.Option(help="the os-release file for --dpkg-status")] = None,  # noqa: UP045
    osv: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Option(
            help="OSV advisories: a directory, .json, .json.gz or all.zip (repeatable); default: the database"
        ),
    ] = None,
    format: Annotated[str, typer.Option(help="table, json or csv")] = "table",
) -> None:
    """Scan packages against OSV advisories, offline. Exit 0: no findings; 1: findings; 2: bad input."""
    from patchday import scanning

    chosen = [name for name, given in (("--local", local), ("--root", root), ("--dpkg-status", dpkg_status)) if given]
    if len(chosen) != 1:
        raise typer.BadParameter("choose exactly one of --local, --root DIR or --dpkg-status FILE")
    if format not in {"table", "json", "csv"}:
        raise typer.BadParameter(f"--format {format!r}: use table, json or csv")
    if dpkg_status is not None and os_release is None:
        raise typer.BadParameter("--dpkg-status needs --os-release FILE (the same host's /etc/os-release)")
    started = time.perf_counter()
    if local:
        facts = scanning.facts_local()
    elif root is not None:
        facts = scanning.facts_from_root(root)
    else:
        assert dpkg_status is not None
        assert os_release is not None
        facts = scanning.facts_from_files(dpkg_status, os_release)
    advisories, origin = _load_advisories(list(osv or []), facts.ecosystems)
    report = scanning.scan(facts, advisories)
    elapsed = time.perf_counter() - started
    if format == "json":
        document = scanning.report_json(report)
        document["summary"]["seconds"] = round(elapsed, 3)  # type: ignore[index]
        document["summary"]["advisory_source"] = origin  # type: ignore[index]
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(CSV_FIELDS)
        for f in report.findings:
            writer.writerow(
                [f.package, f.source_package, f.installed_version, f.fixed_version or "", " ".join(f.advisory_ids),
                 " ".join(f.cve_ids), f.severity.value, f.ecosystem]
            )  # fmt: skip
    else:
        console = Console(width=None if sys.stdout.isatty() else 160)  # a log or a pipe is not 80 columns wide
        _print_table(report, origin, console)
        console.print(f"[dim]scanned in {elapsed:.2f} s[/dim]")
    if report.findings:
        raise typer.Exit(1)
