"""Sending deliveries: signed webhook POSTs and SMTP e-mail, each attempt logged, failures retried with
exponential backoff and jitter, then given up (`failed`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import smtplib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.db import transaction
from django.utils import timezone

from patchday import __version__
from patchday.audit import services as audit
from patchday.core.audit import Actor
from patchday.core.errors import PatchdayError
from patchday.notifications import channels as channel_services
from patchday.notifications import sealing, targets
from patchday.notifications.detection import payload
from patchday.notifications.models import (
    Channel,
    ChannelKind,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    Event,
    Notification,
)
from patchday.settings import load_settings

logger = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds, for connecting and for each read: a slow receiver must not hold the worker
MAX_ATTEMPTS = 10
FIRST_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(hours=6)
CLAIM = timedelta(minutes=5)  # a claimed delivery is not picked again by another worker for this long
BATCH = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    status: int | None = None  # HTTP status, or the SMTP server's reply code
    error: str = ""


def backoff(attempts: int, jitter: float) -> timedelta:
    """Wait before the next try after `attempts` failures: 1 min, 2, 4, ... capped at 6 h, times 0.8-1.2.

    `jitter` is a number in [0, 1) (random.random() in production), so receivers that came back are
    not hit by every sender at the same second.
    """
    delay: timedelta = min(FIRST_DELAY * (2 ** max(attempts - 1, 0)), MAX_DELAY)
    jittered: timedelta = delay * (0.8 + 0.4 * jitter)
    return min(jittered, MAX_DELAY)


def body_of(notification: Notification) -> bytes:
    return json.dumps(notification.payload, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 with the webhook's secret over "<timestamp>." followed by the raw body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _post_webhook(delivery: Delivery, now: datetime) -> Outcome:
    channel, notification = delivery.channel, delivery.notification
    try:
        url = targets.check_url(channel.url, allow_private=load_settings().webhook_allow_private)
        secret = sealing.unseal(channel.secret_sealed)
    except PatchdayError as exc:
        return Outcome(False, None, str(exc))
    body = body_of(notification)
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"patchday/{__version__}",
        "X-Patchday-Event": notification.event,
        "X-Patchday-Delivery": str(delivery.uuid),
        "X-Patchday-Timestamp": timestamp,
        "X-Patchday-Signature": signature(secret, timestamp, body),
    }
    try:
        # No redirects (a 3xx could point anywhere) and no proxy from the environment (the address
        # checked above must be the one connected to).
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code)
    return Outcome(False, response.status_code, f"HTTP {response.status_code} {response.reason_phrase}"[:500])


def _subject_line(notification: Notification) -> str:
    subject: dict[str, Any] = notification.payload.get("subject", {})
    if subject.get("type") == "finding":
        what = f"{subject['vulnerability']} on {subject['host']} ({subject['package']})"
    elif subject.get("type") == "exception":
        what = f"exception {subject['id']}: {subject['scope']}"
    else:
        what = "test delivery"
    return f"[patchday] {notification.event}: {what}"


def smtp_connection() -> Any:
    """Django's SMTP backend on the PATCHDAY_SMTP_* settings (the caller checks smtp_host is set)."""
    from django.core.mail import get_connection

    settings = load_settings()
    return get_connection(
        "django.core.mail.backends.smtp.EmailBackend",
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user,
        password=settings.smtp_password,
        use_tls=settings.smtp_starttls,
        use_ssl=False,
        timeout=TIMEOUT,
        fail_silently=False,
    )


def _send_email(delivery: Delivery) -> Outcome:
    from django.core.mail import EmailMessage

    settings = load_settings()
    if not settings.smtp_host:
        return Outcome(False, None, "PATCHDAY_SMTP_HOST is not set; e-mail cannot be sent")
    notification = delivery.notification
    connection = smtp_connection()
    text = json.dumps(notification.payload, indent=2, sort_keys=True)
    message = EmailMessage(
        _subject_line(notification),
        f"{_subject_line(notification)}\n\n{text}\n",
        settings.smtp_from,
        list(delivery.channel.addresses),
        connection=connection,
        headers={"X-Patchday-Event": notification.event, "X-Patchday-Delivery": str(delivery.uuid)},
    )
    try:
        message.send()
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, exc.smtp_code, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:500])
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    return Outcome(True, 250)


def attempt(delivery: Delivery, now: datetime, *, retry: bool = True) -> Delivery:
    """Try `delivery` once now, log the attempt and set its next state (delivered, retry later, failed)."""
    started = time.monotonic()
    is_webhook = delivery.channel.kind == ChannelKind.WEBHOOK
    outcome = _post_webhook(delivery, now) if is_webhook else _send_email(delivery)
    duration_ms = int((time.monotonic() - started) * 1000)
    number = delivery.attempts + 1
    delivery.attempts, delivery.last_status, delivery.last_error = number, outcome.status, outcome.error
    if outcome.delivered:
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = DeliveryState.DELIVERED, now, None
    elif retry and number < MAX_ATTEMPTS:
        delivery.state, delivery.next_attempt_at = DeliveryState.PENDING, now + backoff(number, random.random())  # noqa: S311 (jitter, not a secret)
    else:
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            at=now,
            status=outcome.status,
            error=outcome.error,
            duration_ms=duration_ms,
            delivered=outcome.delivered,
        )
        delivery.save(
            update_fields=["attempts", "last_status", "last_error", "state", "delivered_at", "next_attempt_at"]
        )
    if not outcome.delivered:
        logger.warning(
            "delivery %s (%s to %s) attempt %s failed: %s; %s",
            delivery.uuid,
            delivery.notification.event,
            delivery.channel,
            number,
            outcome.error,
            f"next at {delivery.next_attempt_at:%Y-%m-%d %H:%M:%S}" if delivery.next_attempt_at else "giving up",
        )
    return delivery


def send_due(now: datetime | None = None, limit: int = BATCH) -> dict[str, int]:
    """Attempt every pending delivery whose time has come (at most `limit`); returns counts by outcome.

    Each is claimed with a conditional UPDATE first, so two workers never send the same one together.
    """
    now = now or timezone.now()
    due = list(
        Delivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "next_attempt_at")[:limit]
    )
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    for pk, when in due:
        claimed = Delivery.objects.filter(pk=pk, state=DeliveryState.PENDING, next_attempt_at=when).update(
            next_attempt_at=now + CLAIM
        )
        if not claimed:
            continue
        delivery = Delivery.objects.select_related("notification", "channel").get(pk=pk)
        result = attempt(delivery, now)
        key = {"delivered": "delivered", "pending": "retrying"}.get(str(result.state), "failed")
        counts[key] += 1
    return counts


def send_test(actor: Actor, kind: ChannelKind, channel_id: int, now: datetime | None = None) -> Delivery:
    """Send a `ping` to one channel now, once (no retries), and return the logged delivery."""
    now = now or timezone.now()
    channel: Channel = channel_services.get_channel(kind, channel_id)
    subject = {"type": "ping", "channel": channel.pk, "message": "a test delivery from patchday"}
    with transaction.atomic():
        notification = Notification.objects.create(
            event=Event.PING, subject=f"ping:{uuid.uuid4()}", payload=payload(Event.PING, subject, now), created_at=now
        )
        delivery = Delivery.objects.create(notification=notification, channel=channel, created_at=now)
    delivery = attempt(delivery, now, retry=False)
    object_type = "webhook" if kind == ChannelKind.WEBHOOK else "email_recipient"
    changes = {"delivery": str(delivery.uuid), "state": delivery.state, "status": delivery.last_status}
    audit.record(actor, f"notifications.{kind}_test", object_type, channel.pk, changes)
    return delivery
