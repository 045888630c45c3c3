"""`patchday`: the command line. Each command sets Django up, calls services, and prints the result."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from patchday.cli.agent import agent_app
from patchday.cli.bootstrap import cli_actor, start_django
from patchday.cli.feeds import feeds_app
from patchday.cli.findings import findings_app, vex_app
from patchday.cli.hosts import enrollment_app, hosts_app
from patchday.cli.notify import notify_app
from patchday.cli.reports import report_app
from patchday.cli.rollouts import plan_app, rollout_app
from patchday.cli.scan import scan_command
from patchday.core.errors import PatchdayError

app = typer.Typer(help="patchday: self-hosted patch management.", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Manage users and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect and verify the audit trail.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.command("scan")(scan_command)
app.add_typer(feeds_app, name="feeds")
app.add_typer(agent_app, name="agent")
app.add_typer(hosts_app, name="hosts")
app.add_typer(enrollment_app, name="enrollment")
app.add_typer(findings_app, name="findings")
app.add_typer(vex_app, name="vex")
app.add_typer(notify_app, name="notify")
app.add_typer(plan_app, name="plan")
app.add_typer(rollout_app, name="rollout")
app.add_typer(report_app, name="report")

out = Console(soft_wrap=True)  # lines stay whole in logs and pipes
err = Console(stderr=True)


@app.command()
def migrate() -> None:
    """Apply database migrations (create or upgrade the schema)."""
    settings = start_django(require_migrated=False)
    from patchday.cli import server

    server.migrate()
    out.print(f"database {settings.database_display} is up to date")


@app.command()
def up(
    admin: Annotated[str, typer.Option(help="name of the first admin account")] = "admin",
) -> None:
    """Migrate, make sure an admin exists, then serve the dashboard, the API and a worker together."""
    settings = start_django(require_migrated=False)
    from patchday.cli import server

    server.migrate()
    password = server.ensure_admin(admin, cli_actor())
    try:
        for line in server.load_bundled_feeds(cli_actor()):
            out.print(f"loaded bundled feed snapshot: {line}", highlight=False)
    except PatchdayError as exc:  # serving matters more than the snapshot; the feed run records the failure
        err.print(f"patchday: the bundled feed snapshot was not loaded: {exc}", highlight=False)
    agent_env = server.prepare_local_agent(cli_actor(), settings)
    out.print(
        "this machine is in the fleet through the local agent "
        f"({'enrolling now' if agent_env else 'enrolled'}; state in {server.local_agent_dir(settings)})",
        highlight=False,
    )
    url = f"http://{settings.listen_host}:{settings.listen_port}"
    if password:
        out.print(f"[bold]Created account {admin!r} with password:[/bold] {password}")
        out.print("This password is shown only once. Change it under Account > Change password.")
    out.print(
        f"patchday serves the dashboard on {url} and the API on {url}/api/v1 (docs: {url}/api/v1/docs)",
        soft_wrap=True,
    )
    out.print("Ctrl+C stops it.")
    raise typer.Exit(server.run_together(settings, agent_env))


@app.command("local-agent", hidden=True)
def local_agent() -> None:
    """The agent of this machine, as `patchday up` runs it (enrolls over loopback, then checks in)."""
    settings = start_django()
    from patchday.cli import server

    raise typer.Exit(server.run_local_agent(settings))


@app.command()
def web() -> None:
    """Serve the dashboard and the API (gunicorn, PATCHDAY_WEB_WORKERS processes) on PATCHDAY_LISTEN."""
    settings = start_django()
    from patchday.cli import server

    server.serve_web(settings)


@app.command()
def worker(
    interval: Annotated[float, typer.Option(help="seconds between polls of an empty queue")] = 1.0,
    tick: Annotated[float, typer.Option(help="seconds between scheduler steps")] = 5.0,
    lease: Annotated[float, typer.Option(help="seconds the scheduler lease lasts without renewal")] = 30.0,
    batch: Annotated[bool, typer.Option(help="exit when the queue is empty")] = False,
    schedule: Annotated[bool, typer.Option(help="take part in electing the periodic-task scheduler")] = True,
) -> None:
    """Run queued background tasks; one of the running workers also schedules periodic tasks."""
    start_django()
    from patchday.worker.runner import run_worker

    if not (0 < interval <= 3600 and 0 < tick <= 3600 and tick < lease):
        raise typer.BadParameter("need 0 < interval, 0 < tick < lease")
    run_worker(interval=interval, tick=tick, lease_ttl=lease, batch=batch, schedule=schedule)


# -- users --------------------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    name: str,
    role: Annotated[str, typer.Option(help="admin, operator, approver, auditor or viewer")],
    password: Annotated[Optional[str], typer.Option(help="prompted for when omitted on a terminal")] = None,  # noqa: UP045
) -> None:
    """Create a user. Without --password: prompts on a terminal, else generates one and prints it once."""
    from patchday.core.roles import parse_role

    parsed = parse_role(role)
    if password is None and sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    start_django()
    from patchday.accounts import services

    user, generated = services.create_user(cli_actor(), name, parsed, password)
    out.print(f"created user {user.username!r} with role {user.role}")
    if generated:
        out.print(f"generated password (shown once): {generated}")


@user_app.command("list")
def user_list() -> None:
    """List users with their role and status."""
    start_django()
    from patchday.accounts import services

    table = Table("username", "role", "status", "last sign-in")
    for user in services.list_users():
        table.add_row(
            user.username,
            user.role,
            "active" if user.is_active else "disabled",
            str(user.last_login or "never"),
        )
    out.print(table)


@user_app.command("set-role")
def user_set_role(name: str, role: str) -> None:
    """Give a user another role."""
    from patchday.core.roles import parse_role

    parsed = parse_role(role)
    start_django()
    from patchday.accounts import services

    services.set_role(cli_actor(), name, parsed)
    out.print(f"{name} is now {parsed.value}")


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Disable a user: no sign-in, their API tokens stop working."""
    start_django()
    from patchday.accounts import services

    services.set_active(cli_actor(), name, False)
    out.print(f"{name} is disabled")


@user_app.command("enable")
def user_enable(name: str) -> None:
    """Enable a disabled user again."""
    start_django()
    from patchday.accounts import services

    services.set_active(cli_actor(), name, True)
    out.print(f"{name} is enabled")


@user_app.command("set-password")
def user_set_password(
    name: str,
    password: Annotated[str | None, typer.Option(help="generated and printed once when omitted off a terminal")] = None,
) -> None:
    """Set a user's password (prompts on a terminal; otherwise generates one)."""
    if password is None and sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    start_django()
    from patchday.accounts import services

    generated = None
    if password is None:
        password = generated = services.generate_password()
    services.set_password(cli_actor(), name, password)
    out.print(f"password of {name} is changed" + (f"; new password (shown once): {generated}" if generated else ""))


# -- tokens -------------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="the token acts as this user, with their role")],
    name: Annotated[str, typer.Option(help="what the token is for")],
    expires: Annotated[Optional[datetime], typer.Option(help="expiry (UTC), e.g. 2027-01-31T00:00")] = None,  # noqa: UP045
) -> None:
    """Create an API token and print it once (only its hash is kept)."""
    start_django()
    from datetime import UTC

    from patchday.accounts import services

    owner = services.get_user(user)
    expires_at = expires.replace(tzinfo=UTC) if expires and expires.tzinfo is None else expires
    issued = services.create_token(cli_actor(), owner, name, expires_at)
    out.print(f"token {issued.token.prefix} for {owner.username} (shown once):")
    print(issued.secret)


@token_app.command("list")
def token_list(user: Annotated[Optional[str], typer.Option(help="only this user's tokens")] = None) -> None:  # noqa: UP045
    """List API tokens (never their secret)."""
    start_django()
    from patchday.accounts import services

    owner = services.get_user(user) if user else None
    table = Table("id", "owner", "name", "created", "expires", "status")
    for token in services.list_tokens(owner):
        status = "revoked" if token.revoked_at else "active"
        table.add_row(
            token.prefix,
            token.user.username,
            token.name,
            str(token.created_at),
            str(token.expires_at or "never"),
            status,
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke an API token by its id (the prefix shown by `token list`)."""
    start_django()
    from patchday.accounts import services

    services.revoke_token(cli_actor(), None, token_id)
    out.print(f"token {token_id} is revoked")


# -- audit --------------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; name the first broken record and exit 1 if there is one."""
    start_django()
    from patchday.audit import services

    report = services.verify()
    if report.is_intact:
        out.print(f"audit chain intact: {report.checked} records, head {report.head_hash}")
        return
    where = f"at record {report.first_broken}" if report.first_broken is not None else "with no record left"
    err.print(f"audit chain BROKEN {where}: {report.reason} ({report.checked} records read)", soft_wrap=True)
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    format: Annotated[str, typer.Option(help="csv or json")] = "csv",
    actor: Annotated[Optional[str], typer.Option()] = None,  # noqa: UP045
    action: Annotated[Optional[str], typer.Option(help="prefix, e.g. user.")] = None,  # noqa: UP045
    since: Annotated[Optional[datetime], typer.Option(help="UTC")] = None,  # noqa: UP045
    until: Annotated[Optional[datetime], typer.Option(help="UTC")] = None,  # noqa: UP045
) -> None:
    """Write matching audit records to standard output as CSV or JSON."""
    if format not in {"csv", "json"}:
        raise typer.BadParameter("format must be csv or json")
    start_django()
    from datetime import UTC

    from patchday.audit import services

    def aware(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    rows = services.search(services.AuditFilter(actor=actor, action=action, since=aware(since), until=aware(until)))
    chunks = services.export_json(rows) if format == "json" else services.export_csv(rows)
    for chunk in chunks:
        sys.stdout.write(chunk)


def main() -> None:
    """Entry point: the one place a command's patchday errors become a clear line and exit code 2."""
    try:
        app()
    except PatchdayError as exc:
        err.print(f"patchday: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
