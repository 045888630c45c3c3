"""`patchday agent ...`: build the agent's zipapp, or install the agent on this machine."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

agent_app = typer.Typer(help="The patchday agent: build its zipapp, install it on this host.", no_args_is_help=True)
out = Console(soft_wrap=True)  # lines stay whole in logs and pipes
err = Console(stderr=True)


@agent_app.command("build")
def build_command(
    output: Annotated[Path, typer.Option(help="where to write the zipapp")] = Path("patchday-agent.pyz"),
) -> None:
    """Write the agent zipapp (standard library only, Python 3.9+); the same source always gives the same bytes."""
    from patchday.agent.build import build_zipapp
    from patchday.agent.errors import AgentError

    try:
        path = build_zipapp(output)
    except (AgentError, OSError) as exc:
        err.print(f"patchday: cannot build the agent at {output}: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    content = path.read_bytes()
    out.print(f"{path}: {len(content)} bytes, sha256 {hashlib.sha256(content).hexdigest()}", highlight=False)


@agent_app.command("install")
def install_command(
    server: Annotated[str, typer.Option(help="the patchday server's URL, https://...")],
    enroll_secret: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(envvar="PATCHDAY_AGENT_ENROLL_SECRET", help="enrollment secret (not needed when enrolled)"),
    ] = None,
    ca_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="PEM file of the CA(s) to trust for the server instead of the system's"),
    ] = None,
    insecure_http: Annotated[
        bool, typer.Option(help="allow plain http:// to a server that is not on loopback")
    ] = False,
    force: Annotated[bool, typer.Option(help="enroll again even if this host is enrolled")] = False,
    start: Annotated[bool, typer.Option(help="enable and start the systemd service")] = True,
) -> None:
    """As root: install the agent zipapp built from this patchday, enroll this host, write and start its service."""
    from patchday.agent.errors import AgentError
    from patchday.agent.install import install

    try:
        install(
            server,
            enroll_secret or "",
            ca_file=str(ca_file) if ca_file else None,
            insecure_http=insecure_http,
            force=force,
            start=start,
            say=lambda line: out.print(line, highlight=False, markup=False),
        )
    except AgentError as exc:
        err.print(f"patchday: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
