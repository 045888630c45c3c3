"""`patchday findings ...`: the ledger from the command line: list, explain one, export, re-evaluate."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

findings_app = typer.Typer(help="Findings: what to patch first, and why.", no_args_is_help=True)
out = Console(soft_wrap=True)
COLUMNS = (
    "id",
    "host",
    "vulnerability",
    "package",
    "installed_version",
    "fixed_version",
    "status",
    "priority_score",
    "priority_decision",
    "due_date",
    "confidence",
    "fixing_update",
)


def _row(finding: Any) -> dict[str, Any]:
    return {c: (finding.host.name if c == "host" else getattr(finding, c)) for c in COLUMNS}


def _neutral(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@findings_app.command("list")
def list_command(
    host: Annotated[str, typer.Option()] = "",
    cve: Annotated[str, typer.Option(help="a CVE id (or advisory id)")] = "",
    package: Annotated[str, typer.Option()] = "",
    status: Annotated[str, typer.Option(help="open, fixed, accepted or not_affected")] = "open",
    decision: Annotated[str, typer.Option(help="Act, Attend, Track* or Track")] = "",
    kev: Annotated[Optional[bool], typer.Option("--kev/--no-kev")] = None,  # noqa: UP045
    limit: Annotated[int, typer.Option(help="at most this many (0: all)")] = 50,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or csv")] = "table",
) -> None:
    """Findings, most urgent first (priority, then due date)."""
    if output not in ("table", "json", "csv"):
        raise typer.BadParameter("--output must be table, json or csv")
    from patchday.cli.bootstrap import start_django

    start_django()
    from patchday.findings import queries

    rows = queries.findings(
        queries.FindingFilter(host=host, vulnerability=cve, package=package, status=status, decision=decision, kev=kev)
    )
    selected = [_row(f) for f in (rows[:limit] if limit else rows)]
    if output == "json":
        out.print_json(json.dumps(selected, default=str))
    elif output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: _neutral(v) for k, v in row.items()} for row in selected)
    else:
        table = Table(*COLUMNS)
        for row in selected:
            table.add_row(*(escape("" if row[c] is None else str(row[c])) for c in COLUMNS))
        out.print(table)


@findings_app.command("explain")
def explain_command(finding_id: int) -> None:
    """One finding: what, where, the priority with every input and its effect, the due date, its history."""
    from patchday.cli.bootstrap import start_django

    start_django()
    from patchday.findings import queries

    f = queries.get_finding(finding_id)
    out.print(f"[bold]{escape(f.vulnerability)}[/bold] on {escape(f.host.name)} through {escape(f.package)}")
    out.print(
        f"installed {escape(f.installed_version)}, fixed in {escape(f.fixed_version or 'no published fix')}"
        + (f", pending update {escape(f.fixing_update)}" if f.fixing_update else "")
    )
    out.print(f"status {f.status}; advisories: {escape(', '.join(f.advisory_ids))}; confidence {f.confidence}")
    score = "not yet prioritized" if f.priority_score is None else f"{f.priority_score}/100, {f.priority_decision}"
    out.print(f"priority: {score}; due {f.due_date or '-'}")
    for factor in f.priority_explanation:
        out.print(f"  - {escape(str(factor.get('text', factor)) if isinstance(factor, dict) else str(factor))}")
    for event in f.events.all():
        out.print(f"{event.at.isoformat(timespec='seconds')} {event.from_status or '-'} -> {event.to_status}: "
                  f"{escape(event.reason)}")  # fmt: skip


@findings_app.command("reevaluate")
def reevaluate_command() -> None:
    """Re-match every package version and reconcile every host's findings (the full re-evaluation)."""
    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.audit import services as audit
    from patchday.findings import ledger
    from patchday.findings import services as matcher

    matches = matcher.rematch_all()
    change = ledger.reconcile_all()
    counts = {
        "opened": change.opened,
        "reopened": change.reopened,
        "fixed": change.fixed,
        "refreshed": change.refreshed,
    }
    audit.record(cli_actor(), "findings.reevaluate", "findings", "all", counts)
    out.print(
        f"matches: {matches.added} added, {matches.removed} removed; findings: {change.opened} opened, "
        f"{change.reopened} reopened, {change.fixed} fixed, {change.refreshed} unchanged"
    )


vex_app = typer.Typer(help="VEX: import not_affected statements, export the fleet's as OpenVEX.", no_args_is_help=True)


@vex_app.command("import")
def vex_import_command(
    path: Annotated[str, typer.Argument(help="an OpenVEX or CycloneDX VEX JSON file")],
    sha256: Annotated[Optional[str], typer.Option(help="a detached SHA-256 the file must match")] = None,  # noqa: UP045
) -> None:
    """Import a VEX document as a whole; its not_affected statements suppress the findings they cover."""
    from pathlib import Path

    from patchday.cli.bootstrap import cli_actor, start_django
    from patchday.core.errors import InvalidInput

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    start_django()
    from patchday.findings import vex

    result = vex.import_vex(cli_actor(), data, Path(path).name, sha256)
    out.print(
        f"{result.statements} statements: {result.recorded} not_affected in force, {result.ignored} ignored; "
        f"{result.suppressed} findings now not_affected"
    )


@vex_app.command("export")
def vex_export_command(
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="file (default: stdout)")] = None,  # noqa: UP045
    author: Annotated[str, typer.Option(help="the document's author")] = "patchday",
) -> None:
    """Every confirmed not_affected statement of the fleet as one OpenVEX v0.2.0 document."""
    from pathlib import Path

    from patchday.cli.bootstrap import start_django

    start_django()
    from patchday.findings import vex

    text = json.dumps(vex.export_openvex(author), indent=2, sort_keys=True) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
