"""API routes of notifications: webhooks and e-mail recipients (admins), the delivery log (auditors)."""

# No `from __future__ import annotations`: ninja's @paginate re-reads annotations in its own module.
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status

from patchday.accounts.guards import Guard, actor_for
from patchday.api.pagination import Pagination
from patchday.core.errors import InvalidInput
from patchday.core.roles import Permission
from patchday.notifications import channels as services
from patchday.notifications import sending
from patchday.notifications.models import Channel, ChannelKind, Delivery, DeliveryState

router = Router(tags=["notifications"])


class WebhookIn(Schema):
    url: str = Field(
        max_length=2048, description="https://...; loopback/private only with PATCHDAY_WEBHOOK_ALLOW_PRIVATE"
    )
    events: list[str] = Field([], description="the events it receives; empty: every event")
    name: str = Field("", max_length=100)
    enabled: bool = True


class WebhookOut(Schema):
    id: int
    name: str
    url: str
    events: list[str]
    enabled: bool
    created_by: str
    created_at: datetime


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="shown once: verify X-Patchday-Signature with it (see docs/notifications.md)")


class EmailIn(Schema):
    addresses: list[str] = Field(max_length=50)
    events: list[str] = Field([], description="the events they receive; empty: every event")
    name: str = Field("", max_length=100)


class EmailOut(Schema):
    id: int
    name: str
    addresses: list[str]
    events: list[str]
    enabled: bool
    created_by: str
    created_at: datetime


class AttemptOut(Schema):
    number: int
    at: datetime
    status: int | None
    error: str
    duration_ms: int
    delivered: bool


class DeliveryOut(Schema):
    id: str
    event: str
    subject: str
    channel_id: int
    channel_kind: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptOut]

    @staticmethod
    def resolve_id(delivery: Delivery) -> str:
        return str(delivery.uuid)

    @staticmethod
    def resolve_event(delivery: Delivery) -> str:
        return delivery.notification.event

    @staticmethod
    def resolve_subject(delivery: Delivery) -> str:
        return delivery.notification.subject

    @staticmethod
    def resolve_channel_kind(delivery: Delivery) -> str:
        return delivery.channel.kind

    @staticmethod
    def resolve_attempt_log(delivery: Delivery) -> list[Any]:
        return list(delivery.attempt_log.all())


def _username(request: HttpRequest) -> str:
    return str(request.user.get_username())


@router.get("/notifications/webhooks", response=list[WebhookOut], auth=Guard(Permission.ADMINISTER), summary="Webhooks")
def list_webhooks(request: HttpRequest) -> Any:
    return list(services.channels(ChannelKind.WEBHOOK))


@router.post(
    "/notifications/webhooks",
    response={201: NewWebhookOut},
    auth=Guard(Permission.ADMINISTER),
    summary="Add a webhook (its secret is shown once)",
)
def add_webhook(request: HttpRequest, body: WebhookIn) -> Status[Channel]:
    added = services.add_webhook(actor_for(request), _username(request), body.url, body.events, body.name, body.enabled)
    added.channel.secret = added.secret  # type: ignore[attr-defined]
    return Status(201, added.channel)


@router.delete(
    "/notifications/webhooks/{webhook_id}",
    response=WebhookOut,
    auth=Guard(Permission.ADMINISTER),
    summary="Delete a webhook",
)
def delete_webhook(request: HttpRequest, webhook_id: int) -> Channel:
    return services.delete_channel(actor_for(request), ChannelKind.WEBHOOK, webhook_id)


@router.post(
    "/notifications/webhooks/{webhook_id}/test",
    response=DeliveryOut,
    auth=Guard(Permission.ADMINISTER),
    summary="Send a ping event to a webhook now",
)
def test_webhook(request: HttpRequest, webhook_id: int) -> Delivery:
    return sending.send_test(actor_for(request), ChannelKind.WEBHOOK, webhook_id)


@router.get(
    "/notifications/email", response=list[EmailOut], auth=Guard(Permission.ADMINISTER), summary="E-mail recipients"
)
def list_email(request: HttpRequest) -> Any:
    return list(services.channels(ChannelKind.EMAIL))


@router.post(
    "/notifications/email", response={201: EmailOut}, auth=Guard(Permission.ADMINISTER), summary="Add e-mail recipients"
)
def add_email(request: HttpRequest, body: EmailIn) -> Status[Channel]:
    return Status(
        201, services.add_email(actor_for(request), _username(request), body.addresses, body.events, body.name)
    )


@router.delete(
    "/notifications/email/{recipient_id}",
    response=EmailOut,
    auth=Guard(Permission.ADMINISTER),
    summary="Delete e-mail recipients",
)
def delete_email(request: HttpRequest, recipient_id: int) -> Channel:
    return services.delete_channel(actor_for(request), ChannelKind.EMAIL, recipient_id)


@router.get(
    "/notifications/deliveries",
    response=list[DeliveryOut],
    auth=Guard(Permission.READ_AUDIT),
    summary="The delivery log, newest first, with every attempt",
)
@paginate(Pagination)
def list_deliveries(request: HttpRequest, state: str = "", event: str = "") -> Any:
    rows = Delivery.objects.select_related("notification", "channel").prefetch_related("attempt_log")
    if state:
        if state not in DeliveryState.values:
            raise InvalidInput(f"state must be one of {', '.join(DeliveryState.values)}", field="state")
        rows = rows.filter(state=state)
    if event:
        rows = rows.filter(notification__event=event)
    return rows
