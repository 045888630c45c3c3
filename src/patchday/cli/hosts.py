"""`patchday hosts ...` and `patchday enrollment ...`: the fleet from the command line."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patchday.cli import ssh

hosts_app = typer.Typer(help="The fleet: list, show, set attributes, import, enroll over SSH.", no_args_is_help=True)
enrollment_app = typer.Typer(help="Enrollment secrets agents present once.", no_args_is_help=True)
out = Console(soft_wrap=True)
hosts_app.command("add-ssh")(ssh.add_ssh)
hosts_app.command("collect-ssh")(ssh.collect_ssh)
hosts_app.command("repin-ssh")(ssh.repin_ssh)
FORMATS = ("table", "json", "csv")
LIST_COLUMNS = (
    "name",
    "os_name",
    "kernel_running",
    "management_mode",
    "freshness",
    "criticality",
    "exposure",
    "environment",
    "owner",
    "tags",
    "packages",
    "pending_security",
    "pending_regular",
    "reboot_required",
    "last_seen_at",
)


def _rows(filters: Any) -> list[dict[str, Any]]:
    from django.db.models import Count, Q

    from patchday.inventory import queries

    rows = []
    hosts = queries.hosts(filters).annotate(
        n_packages=Count("packages", distinct=True),
        n_security=Count("pending_updates", filter=Q(pending_updates__security=True), distinct=True),
        n_regular=Count("pending_updates", filter=Q(pending_updates__security=False), distinct=True),
    )
    for host in hosts:
        rows.append(
            {
                "name": host.name,
                "os_name": host.os_name,
                "kernel_running": host.kernel_running,
                "management_mode": host.management_mode,
                "freshness": queries.freshness(host),
                "criticality": host.criticality,
                "exposure": host.exposure,
                "environment": host.environment,
                "owner": host.owner,
                "tags": ";".join(sorted(t.tag for t in host.tags.all())),
                "packages": host.n_packages,
                "pending_security": host.n_security,
                "pending_regular": host.n_regular,
                "reboot_required": host.reboot_required,
                "last_seen_at": host.last_seen_at.isoformat() if host.last_seen_at else "",
            }
        )
    return rows


def _neutral(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _print(rows: list[dict[str, Any]], columns: tuple[str, ...], output: str) -> None:
    if output == "json":
        out.print_json(json.dumps(rows, default=str))
    elif output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: _neutral(v) for k, v in row.items()} for row in rows)
    else:
        table = Table(*columns)
        for row in rows:
            table.add_row(*(escape(str(row.get(c, "") if row.get(c) is not None else "")) for c in columns))
        out.print(table)


def _check_output(output: str) -> None:
    if output not in FORMATS:
        raise typer.BadParameter(f"--output must be one of {', '.join(FORMATS)}")


@hosts_app.command("list")
def list_command(
    q: Annotated[str, typer.Option(help="part of a name, FQDN, owner or address")] = "",
    environment: Annotated[str, typer.Option()] = "",
    exposure: Annotated[str, typer.Option(help="internet-facing, internal or isolated")] = "",
    criticality: Annotated[Optional[int], typer.Option(help="1 (mission-critical) to 4 (low)")] = None,  # noqa: UP045
    tag: Annotated[Optional[list[str]], typer.Option(help="has this tag (repeat for several)")] = None,  # noqa: UP045
    group: Annotated[str, typer.Option()] = "",
    freshness: Annotated[str, typer.Option(help="fresh, stale, lost or static")] = "",
    pending_security: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option("--pending-security/--no-pending-security", help="has pending security updates"),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or csv")] = "table",
) -> None:
    """Hosts, filtered by any attribute."""
    _check_output(output)
    from patchday.cli.bootstrap import start_django

    start_django()
    from patchday.inventory.queries import HostFilter

    filters = HostFilter(
        q=q,
        environment=environment,
        exposure=exposure,
        criticality=criticality,
        tags=tuple(tag or ()),
        group=group,
        freshness=freshness,
        pending_security=pending_security,
    )
    _print(_rows(filters), LIST_COLUMNS, output)


@hosts_app.command("show")
def show_command(
    name: str,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """One host: facts, business context, pending updates and recent package changes."""
    from patchday.cli.bootstrap import start_django

    start_django()
    from patchday.inventory import queries

    host = queries.get_host(name)
    facts = {
        "name": host.name,
        "machine_id": host.machine_id,
        "hostname": host.hostname,
        "fqdn": host.fqdn,
        "addresses": ", ".join(host.addresses),
        "os": host.os_name,
        "architecture": host.architecture,
        "kernel": host.kernel_running,
        "kernels installed": ", ".join(host.kernels_installed),
        "reboot required": host.reboot_required,
        "reboot reasons": "; ".join(host.reboot_reasons),
        "management": host.management_mode,
        "freshness": queries.freshness(host),
        "last seen": host.last_seen_at.isoformat() if host.last_seen_at else "",
        "criticality": host.get_criticality_display(),
        "exposure": host.exposure,
        "environment": host.environment,
        "owner": host.owner,
        "tags": ", ".join(sorted(t.tag for t in host.tags.all())),
        "packages": host.packages.count(),
        **{f"hardware {k}": v for k, v in host.hardware.items() if v},
    }
    pending = list(host.pending_updates.values("name", "installed", "candidate", "suite", "security", "changelog_cves"))
    if output == "json":
        out.print_json(json.dumps({"host": facts, "pending_updates": pending}, default=str))
        return
    table = Table("fact", "value", show_header=False)
    for key, value in facts.items():
        table.add_row(key, escape("" if value is None else str(value)))
    out.print(table)
    if pending:
        updates = Table("package", "installed", "candidate", "suite", "security", "CVEs (changelog)")
        for p in pending:
            updates.add_row(
                *(escape(str(p[k])) for k in ("name", "installed", "candidate", "suite")),
                "yes" if p["security"] else "",
                escape(", ".join(p["changelog_cves"])),
            )
        out.print(updates)


@hosts_app.command("set")
def set_command(
    names: Annotated[list[str], typer.Argument(help="host names")],
    criticality: Annotated[Optional[int], typer.Option(help="1 (mission-critical) to 4 (low)")] = None,  # noqa: UP045
    exposure: Annotated[Optional[str], typer.Option(help="internet-facing, internal or isolated")] = None,  # noqa: UP045
    environment: Annotated[Optional[str], typer.Option()] = None,  # noqa: UP045
    owner: Annotated[Optional[str], typer.Option()] = None,  # noqa: UP045
    tag: Annotated[Optional[list[str]], typer.Option(help="add this tag")] = None,  # noqa: UP045
    untag: Annotated[Optional[list[str]], typer.Option(help="remove this tag")] = None,  # noqa: UP045
) -> None:
    """Set business attributes on one or more hosts (all or nothing; audited)."""
    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.inventory import services

    changes = services.HostChanges(
        criticality=criticality,
        exposure=exposure,
        environment=environment,
        owner=owner,
        add_tags=tuple(tag or ()),
        remove_tags=tuple(untag or ()),
    )
    result = services.set_attributes(cli_actor(), names, changes)
    for name, diff in result.items():
        out.print(f"{name}: " + (", ".join(f"{k} {v[0]!r} -> {v[1]!r}" for k, v in diff.items()) or "unchanged"))  # type: ignore[index]


def _guess_format(path: Path, data: bytes) -> str:
    if path.suffix.lower() == ".csv":
        return "csv"
    head = data[:4096].lstrip()
    if head.startswith(b"{") and b'"format"' in data[:200_000] and b'"packages"' in data:
        return "inventory"
    if b"bomFormat" in head or b"spdxVersion" in head or b'"SPDXID"' in head:
        return "sbom"
    return "osquery"


@hosts_app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="a hosts CSV, an SBOM, osquery results, or an inventory document")],
    format: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="csv, sbom, osquery or inventory; guessed from the file when omitted"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="CSV: show what would change, change nothing")] = False,
    name: Annotated[Optional[str], typer.Option(help="the asset or host name (SBOM, osqueryi output)")] = None,  # noqa: UP045
    kind: Annotated[Optional[str], typer.Option(help="SBOM: host or application (else decided by content)")] = None,  # noqa: UP045
) -> None:
    """Import hosts and their attributes (CSV), an SBOM (CycloneDX or SPDX JSON; a host or an application
    asset), osquery results, or an inventory document saved from `python3 -m patchday.collectors`."""
    from patchday.cli.bootstrap import cli_actor, start_django
    from patchday.core.errors import InvalidInput

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    chosen = format or _guess_format(path, data)
    start_django()
    from patchday.inventory import imports

    if chosen not in imports.FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(imports.FORMATS)}")
    actor = cli_actor()
    if chosen == "csv":
        result = imports.import_hosts_csv(actor, data, dry_run=dry_run, source=str(path))
        for row in result.rows:
            detail = ", ".join(f"{k}={v}" for k, v in row.changes.items())
            out.print(f"line {row.line}: {escape(row.name)}: {row.action} {escape(detail)}", highlight=False)
        verb = "would change" if dry_run else "changed"
        out.print(
            f"{verb}: {result.count('create')} created, {result.count('update')} updated, "
            f"{result.count('unchanged')} unchanged"
        )
        return
    if dry_run:
        raise typer.BadParameter("--dry-run applies to CSV imports only")
    if chosen == "sbom":
        stored = [imports.import_sbom(actor, data, name=name, kind=kind, source=str(path))]
    elif chosen == "osquery":
        stored = imports.import_osquery(actor, [(str(path), data)], name=name)
    else:
        stored = [imports.import_inventory_document(actor, data, source=str(path))]
    for item in stored:
        out.print(
            f"{escape(item.host.name)} ({item.host.kind}): {item.collection.packages} packages "
            f"({item.added} added, {item.removed} removed, {item.changed} changed)",
            highlight=False,
        )


@enrollment_app.command("create")
def secret_create(
    name: str,
    days: Annotated[Optional[int], typer.Option(help="expire after this many days")] = None,  # noqa: UP045
) -> None:
    """Create an enrollment secret; it is printed once."""
    from datetime import timedelta

    from django.utils import timezone

    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.inventory import agents

    expires = timezone.now() + timedelta(days=days) if days else None
    issued = agents.create_secret(cli_actor(), name, expires)
    out.print(f"enrollment secret {issued.record.prefix} ({name}); shown only once:")
    out.print(issued.secret, highlight=False)


@enrollment_app.command("list")
def secret_list() -> None:
    """Enrollment secrets with their state and use count (never the secret)."""
    from patchday.cli.bootstrap import start_django

    start_django()
    from patchday.inventory import agents

    table = Table("id", "name", "state", "uses", "created by", "created", "expires")
    for record in agents.list_secrets():
        table.add_row(
            record.prefix,
            escape(record.name),
            agents.secret_state(record),
            str(record.uses),
            escape(record.created_by),
            record.created_at.isoformat(timespec="seconds"),
            record.expires_at.isoformat(timespec="seconds") if record.expires_at else "",
        )
    out.print(table)


@enrollment_app.command("revoke")
def secret_revoke(secret_id: str) -> None:
    """Revoke an enrollment secret: it enrolls nothing from now on (enrolled hosts keep their tokens)."""
    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.inventory import agents

    agents.revoke_secret(cli_actor(), secret_id)
    out.print(f"enrollment secret {secret_id} revoked")
