"""Use cases of notification channels: add, list and delete webhooks and e-mail recipients. Every change
is audited; a webhook's signing secret is returned once, at creation, and kept only encrypted."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from patchday.audit import services as audit
from patchday.core.audit import Actor
from patchday.core.errors import InvalidInput, NotFound
from patchday.notifications import sealing, targets
from patchday.notifications.models import Channel, ChannelKind, Delivery, DeliveryState, Event
from patchday.settings import load_settings

SUBSCRIBABLE = tuple(e.value for e in Event if e is not Event.PING)
MAX_ADDRESSES = 50


@dataclass(frozen=True, slots=True)
class NewWebhook:
    channel: Channel
    secret: str  # shown once; only its sealed form is stored


def _events(events: Iterable[str]) -> list[str]:
    chosen = sorted({e.strip() for e in events if e.strip()})
    unknown = [e for e in chosen if e not in SUBSCRIBABLE]
    if unknown:
        raise InvalidInput(
            f"unknown event {unknown[0]!r}; choose from {', '.join(SUBSCRIBABLE)} (none: every event)", field="events"
        )
    return chosen


def add_webhook(
    actor: Actor, created_by: str, url: str, events: Iterable[str] = (), name: str = "", enabled: bool = True
) -> NewWebhook:
    """Add a webhook; raises InvalidInput(field="url") for a URL patchday may not call (see targets.check_url)."""
    checked = targets.check_url(url, allow_private=load_settings().webhook_allow_private)
    chosen = _events(events)
    secret = "whsec_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        channel = Channel.objects.create(
            kind=ChannelKind.WEBHOOK,
            name=name.strip(),
            url=checked,
            secret_sealed=sealing.seal(secret),
            events=chosen,
            enabled=enabled,
            created_by=created_by,
            created_at=timezone.now(),
        )
        changes = {"url": checked, "events": chosen, "enabled": enabled, "name": channel.name}
        audit.record(actor, "notifications.webhook_add", "webhook", channel.pk, changes)
    return NewWebhook(channel, secret)


def add_email(
    actor: Actor, created_by: str, addresses: Iterable[str], events: Iterable[str] = (), name: str = ""
) -> Channel:
    """Add e-mail recipients; raises InvalidInput(field="addresses") for none, too many or a malformed one."""
    cleaned = list(dict.fromkeys(a.strip() for a in addresses if a.strip()))
    if not cleaned:
        raise InvalidInput("name at least one e-mail address", field="addresses")
    if len(cleaned) > MAX_ADDRESSES:
        raise InvalidInput(f"at most {MAX_ADDRESSES} addresses per recipient list", field="addresses")
    for address in cleaned:
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidInput(f"{address!r} is not an e-mail address", field="addresses") from None
    chosen = _events(events)
    with transaction.atomic():
        channel = Channel.objects.create(
            kind=ChannelKind.EMAIL,
            name=name.strip(),
            addresses=cleaned,
            events=chosen,
            created_by=created_by,
            created_at=timezone.now(),
        )
        changes = {"addresses": cleaned, "events": chosen, "name": channel.name}
        audit.record(actor, "notifications.email_add", "email_recipient", channel.pk, changes)
    return channel


def channels(kind: ChannelKind) -> QuerySet[Channel]:
    return Channel.objects.filter(kind=kind, deleted_at=None)


def get_channel(kind: ChannelKind, channel_id: int) -> Channel:
    channel = channels(kind).filter(pk=channel_id).first()
    if channel is None:
        what = "webhook" if kind == ChannelKind.WEBHOOK else "e-mail recipient list"
        raise NotFound(f"no {what} with id {channel_id}")
    return channel


def delete_channel(actor: Actor, kind: ChannelKind, channel_id: int) -> Channel:
    """Delete a channel: it receives nothing more and its pending deliveries are cancelled; the log stays."""
    now = timezone.now()
    with transaction.atomic():
        channel = get_channel(kind, channel_id)
        channel.deleted_at, channel.enabled = now, False
        channel.save(update_fields=["deleted_at", "enabled"])
        cancelled = Delivery.objects.filter(channel=channel, state=DeliveryState.PENDING).update(
            state=DeliveryState.CANCELLED, next_attempt_at=None
        )
        object_type = "webhook" if kind == ChannelKind.WEBHOOK else "email_recipient"
        audit.record(
            actor, f"notifications.{kind}_delete", object_type, channel.pk, {"deliveries_cancelled": cancelled}
        )
    return channel
