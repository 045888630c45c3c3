"""`patchday hosts add-ssh` and `patchday hosts collect-ssh`: agentless hosts collected over SSH."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from patchday.connectors.services import Outcome

app = typer.Typer(help="Hosts collected agentlessly over SSH.", no_args_is_help=True)
out = Console(soft_wrap=True)  # lines stay whole in logs and pipes

STATUS_STYLE = {"stored": "green", "failed": "red", "hostkey_mismatch": "bold red"}


@app.command("add-ssh")
def add_ssh(
    target: Annotated[str, typer.Argument(help="user@host[:port]; IPv6 as user@[2001:db8::1]:22")],
    key: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--key", help="private key file (no passphrase); without it the SSH agent authenticates"),
    ] = None,
    sudo: Annotated[bool, typer.Option("--sudo", help="run the collectors with `sudo -n` on the host")] = False,
    collect: Annotated[bool, typer.Option("--collect", help="collect it now (and so pin its host key)")] = False,
    interval: Annotated[int, typer.Option(help="minutes between scheduled collections (at least 5)")] = 360,
) -> None:
    """Register a host to collect over SSH. Its host key is pinned on first contact; a later change
    of key refuses the connection until an admin re-pins it."""
    from datetime import timedelta

    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.connectors import services

    row = services.add_target(cli_actor(), target, key, sudo, timedelta(minutes=interval))
    auth = f"key {row.key_file}" if row.key_file else "the SSH agent"
    out.print(f"added SSH target {row.label} (auth: {auth}{', sudo' if row.use_sudo else ''})", highlight=False)
    if collect:
        _report(services.collect_targets(cli_actor(), [row]))


@app.command("collect-ssh")
def collect_ssh(
    targets: Annotated[Optional[list[str]], typer.Argument(help="user@host[:port] or target ids")] = None,  # noqa: UP045
    all_targets: Annotated[bool, typer.Option("--all", help="every enabled target, due or not")] = False,
    concurrency: Annotated[int, typer.Option(help="hosts collected at once")] = 8,
) -> None:
    """Collect SSH targets now: the named ones, every enabled one (--all), or else the due ones.
    Exits 1 when any host failed, 3 when any presented another host key than the pinned one."""
    from patchday.cli.bootstrap import cli_actor, start_django

    if targets and all_targets:
        raise typer.BadParameter("name targets or give --all, not both")
    if not 1 <= concurrency <= 256:
        raise typer.BadParameter("--concurrency must be from 1 to 256")
    start_django()
    from django.utils import timezone

    from patchday.connectors import services
    from patchday.connectors.models import SshTarget

    if targets:
        chosen = [services.get_target(t) for t in targets]
    elif all_targets:
        chosen = list(SshTarget.objects.filter(enabled=True).order_by("id"))
    else:
        chosen = services.due_targets(timezone.now())
    if not chosen:
        out.print("no SSH targets to collect")
        return
    _report(services.collect_targets(cli_actor(), chosen, concurrency=concurrency))


@app.command("repin-ssh")
def repin_ssh(
    target: Annotated[str, typer.Argument(help="user@host[:port] or target id")],
    host_key: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="the host's OpenSSH public key line, checked out of band; else pinned on next contact"),
    ] = None,
) -> None:
    """Replace a target's pinned host key (after a legitimate key change); audited."""
    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.connectors import services

    row = services.repin(cli_actor(), services.get_target(target), host_key)
    pinned = row.host_key_fingerprint or "the key it presents at the next collection"
    out.print(f"{row.label} now trusts {pinned}", highlight=False)


def _report(outcomes: list[Outcome]) -> None:
    table = Table("target", "outcome", "packages", "detail")
    for o in outcomes:
        detail = o.message or ("reduced inventory (no python3)" if o.reduced else "")
        if o.pinned_now:
            detail = ("host key pinned; " + detail).rstrip("; ")
        # Text, not markup: messages carry what hosts sent, and must not be read as Rich markup.
        status = Text(o.status.value, style=STATUS_STYLE.get(o.status.value, ""))
        table.add_row(Text(o.label), status, str(o.packages), Text(detail))
    out.print(table)
    if any(o.status.value == "hostkey_mismatch" for o in outcomes):
        raise typer.Exit(3)
    if any(o.status.value != "stored" for o in outcomes):
        raise typer.Exit(1)
