"""`patchday notify ...`: notification webhooks from the command line: add (secret shown once), list, test."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

notify_app = typer.Typer(help="Notifications: signed webhooks and e-mail.", no_args_is_help=True)
webhook_app = typer.Typer(help="Webhook endpoints.", no_args_is_help=True)
notify_app.add_typer(webhook_app, name="webhook")
out = Console(soft_wrap=True)


@webhook_app.command("add")
def add_command(
    url: str,
    events: Annotated[
        list[str], typer.Option("--events", help="an event it receives (repeat, or comma-separate); none: every event")
    ] = [],  # noqa: B006 (typer reads the default, never mutates it)
    name: Annotated[str, typer.Option(help="a label for the list")] = "",
) -> None:
    """Add a webhook; prints its signing secret once."""
    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.notifications import channels

    chosen = [e for item in events for e in item.split(",")]
    added = channels.add_webhook(cli_actor(), cli_actor().name, url, chosen, name)
    out.print(f"added webhook {added.channel.pk} -> {escape(added.channel.url)}", highlight=False)
    out.print(f"[bold]signing secret:[/bold] {added.secret}")
    out.print("This secret is shown only once; the receiver verifies X-Patchday-Signature with it.")


@webhook_app.command("list")
def list_command() -> None:
    """The webhooks (secrets are never shown again)."""
    from patchday.cli.bootstrap import start_django

    start_django()
    from patchday.notifications import channels
    from patchday.notifications.models import ChannelKind

    table = Table("id", "name", "url", "events", "enabled", "created_by", "created_at")
    for channel in channels.channels(ChannelKind.WEBHOOK):
        table.add_row(
            str(channel.pk),
            escape(channel.name),
            escape(channel.url),
            escape(", ".join(channel.events) or "every event"),
            "yes" if channel.enabled else "no",
            escape(channel.created_by),
            f"{channel.created_at:%Y-%m-%d %H:%M}",
        )
    out.print(table)


@webhook_app.command("test")
def test_command(webhook_id: int) -> None:
    """Send a `ping` event to one webhook now; exits 1 when it was not delivered."""
    from patchday.cli.bootstrap import cli_actor, start_django

    start_django()
    from patchday.notifications import sending
    from patchday.notifications.models import ChannelKind, DeliveryState

    delivery = sending.send_test(cli_actor(), ChannelKind.WEBHOOK, webhook_id)
    if delivery.state == DeliveryState.DELIVERED:
        out.print(f"delivered (HTTP {delivery.last_status}); delivery {delivery.uuid}", highlight=False)
        return
    out.print(f"not delivered: {escape(delivery.last_error)}; delivery {delivery.uuid}", highlight=False)
    raise typer.Exit(1)
