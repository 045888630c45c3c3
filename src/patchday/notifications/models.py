"""Tables of notifications: channels (webhooks, e-mail), notifications (one per event and subject) and their
deliveries (one per notification and channel), with every attempt logged."""

from __future__ import annotations

import uuid

from django.db import models


class Event(models.TextChoices):
    FINDING_KEV = "finding.kev"  # an open finding on a CVE in CISA's KEV catalog
    FINDING_OVERDUE = "finding.overdue"  # an open finding passed its due date
    FINDING_DUE_SOON = "finding.due_soon"  # an open finding's due date is within PATCHDAY_NOTIFY_DUE_SOON_DAYS
    EXCEPTION_EXPIRING = "exception.expiring"  # an approved exception ends within PATCHDAY_NOTIFY_EXPIRING_DAYS
    EXCEPTION_EXPIRED = "exception.expired"  # an exception expired; its findings are open again
    CHANGE_STATE = "change.state"  # a plan (change request) or rollout changed state: for ITSM mirrors
    RING_FAILED = "ring.failed"  # a ring's gate failed; the rollout halted
    ROLLOUT_COMPLETED = "rollout.completed"  # every ring of a rollout passed
    PING = "ping"  # a test delivery asked for by an admin


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook"
    EMAIL = "email"


class Channel(models.Model):
    """Where notifications go: a webhook endpoint (URL + signing secret) or a list of e-mail addresses.

    `events` filters what it receives ([] = every event). The webhook secret is kept encrypted
    (Fernet, key derived from the SECRET_KEY; see notifications.sealing) because it must sign.
    A deleted channel keeps its row (`deleted_at`) so the delivery log still names it.
    """

    kind = models.CharField(max_length=8, choices=ChannelKind.choices)
    name = models.CharField(max_length=100, blank=True)
    url = models.CharField(max_length=2048, blank=True)
    secret_sealed = models.TextField(blank=True)
    addresses = models.JSONField(default=list, blank=True)
    events = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk}: {self.url or ', '.join(self.addresses)}"

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


class Notification(models.Model):
    """One event about one subject, recorded once: the unique (event, subject) stops a second send.

    `subject` is e.g. "finding:12:due:2025-01-31" or "exception:4"; `payload` is the JSON every channel
    receives, frozen when the event was detected so retries send the same thing.
    """

    event = models.CharField(max_length=32, choices=Event.choices)
    subject = models.CharField(max_length=128)
    finding_id = models.BigIntegerField(null=True, blank=True)  # no FK: the log outlives a deleted finding
    exception_id = models.BigIntegerField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)  # the due date an overdue/due_soon notice was about
    payload = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "subject"], name="notifications_once")]
        indexes = [
            models.Index(fields=["event", "finding_id"], name="notifications_event_finding"),
            models.Index(fields=["event", "exception_id"], name="notifications_event_exception"),
        ]


class DeliveryState(models.TextChoices):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # a 2xx answer (webhook) or the SMTP server accepted it
    FAILED = "failed"  # every attempt failed; no more are made
    CANCELLED = "cancelled"  # its channel was deleted before it was delivered


class Delivery(models.Model):
    """One notification to one channel: attempts, the last outcome and when to try next."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)  # X-Patchday-Delivery
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)  # HTTP status, or SMTP reply code
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["notification", "channel"], name="notifications_delivery_once")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notifications_delivery_due")]


class DeliveryAttempt(models.Model):
    """One try of a delivery: when, the answer (status code) or the error, how long it took. Append-only."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    delivered = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery_id", "number"]
