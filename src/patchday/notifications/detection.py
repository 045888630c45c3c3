"""What newly deserves a notification: the periodic `notifications.scan` records one Notification per
(event, subject), so nothing is announced twice, and queues a Delivery for each channel that wants it."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from patchday.advisories.models import KevEntry
from patchday.audit import services as audit
from patchday.core.audit import Actor
from patchday.findings.models import ExceptionState, Finding, FindingStatus, RiskException
from patchday.notifications.models import Channel, Delivery, Event, Notification
from patchday.settings import load_settings

logger = logging.getLogger(__name__)

EXPIRED_LOOKBACK = timedelta(days=7)  # older expiries (e.g. before notifications existed) are not announced


def _links(path: str, api_path: str) -> dict[str, str]:
    base = load_settings().public_url or ""
    return {"web": f"{base}{path}", "api": f"{base}{api_path}"}


def finding_subject(finding: Finding) -> dict[str, Any]:
    return {
        "type": "finding",
        "id": finding.pk,
        "host": finding.host.name,
        "vulnerability": finding.vulnerability,
        "ecosystem": finding.ecosystem,
        "package": finding.package,
        "installed_version": finding.installed_version,
        "fixed_version": finding.fixed_version,
        "status": finding.status,
        "priority": {"score": finding.priority_score, "decision": finding.priority_decision},
        "due_date": finding.due_date.isoformat() if finding.due_date else None,
        "links": _links(f"/findings/{finding.pk}/", f"/api/v1/findings/{finding.pk}"),
    }


def exception_subject(record: RiskException) -> dict[str, Any]:
    from patchday.findings.exceptions import describe

    return {
        "type": "exception",
        "id": record.pk,
        "scope": describe(record),
        "state": record.state,
        "expires_at": record.expires_at.isoformat(),
        "requested_by": record.requested_by,
        "decided_by": record.decided_by,
        "links": _links("/exceptions/", f"/api/v1/exceptions?state={record.state}"),
    }


def payload(event: str, subject: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"event": event, "occurred_at": now.isoformat(), "subject": subject}


def record_notification(
    event: str,
    subject_key: str,
    subject: dict[str, Any],
    now: datetime,
    channels: list[Channel],
    *,
    finding_id: int | None = None,
    exception_id: int | None = None,
    due_date: date | None = None,
) -> Notification | None:
    """Record the notification and queue its deliveries; None when (event, subject) was recorded before."""
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                event=event,
                subject=subject_key,
                finding_id=finding_id,
                exception_id=exception_id,
                due_date=due_date,
                payload=payload(event, subject, now),
                created_at=now,
            )
            Delivery.objects.bulk_create(
                Delivery(notification=notification, channel=c, next_attempt_at=now, created_at=now)
                for c in channels
                if c.wants(event)
            )
    except IntegrityError:
        return None  # another scan recorded it first
    return notification


def _not_notified(rows: QuerySet[Finding], event: Event, *, per_due_date: bool) -> QuerySet[Finding]:
    earlier = Notification.objects.filter(event=event, finding_id=OuterRef("pk"))
    if per_due_date:
        earlier = earlier.filter(due_date=OuterRef("due_date"))
    return rows.filter(~Exists(earlier))


def scan(actor: Actor, now: datetime | None = None) -> dict[str, int]:
    """Record what newly qualifies (see docs/notifications.md); returns how many of each event."""
    now = now or timezone.now()
    settings = load_settings()
    today = now.date()
    channels = list(Channel.objects.filter(enabled=True, deleted_at=None))
    created: Counter[str] = Counter()
    open_findings = Finding.objects.filter(status=FindingStatus.OPEN).select_related("host").order_by("pk")

    def announce_findings(event: Event, rows: QuerySet[Finding], per_due_date: bool) -> None:
        for finding in _not_notified(rows, event, per_due_date=per_due_date).iterator(chunk_size=500):
            key = f"finding:{finding.pk}:due:{finding.due_date}" if per_due_date else f"finding:{finding.pk}"
            due = finding.due_date if per_due_date else None
            if record_notification(
                event, key, finding_subject(finding), now, channels, finding_id=finding.pk, due_date=due
            ):
                created[event] += 1

    announce_findings(
        Event.FINDING_KEV, open_findings.filter(vulnerability__in=KevEntry.objects.values("cve_id")), False
    )
    announce_findings(Event.FINDING_OVERDUE, open_findings.filter(due_date__lt=today), True)
    soon = today + timedelta(days=settings.notify_due_soon_days)
    announce_findings(Event.FINDING_DUE_SOON, open_findings.filter(due_date__gte=today, due_date__lte=soon), True)

    def announce_exceptions(event: Event, rows: QuerySet[RiskException]) -> None:
        earlier = Notification.objects.filter(event=event, exception_id=OuterRef("pk"))
        for record in rows.filter(~Exists(earlier)).select_related("finding").order_by("pk"):
            if record_notification(
                event, f"exception:{record.pk}", exception_subject(record), now, channels, exception_id=record.pk
            ):
                created[event] += 1

    expiring = now + timedelta(days=settings.notify_expiring_days)
    announce_exceptions(
        Event.EXCEPTION_EXPIRING,
        RiskException.objects.filter(state=ExceptionState.APPROVED, expires_at__gt=now, expires_at__lte=expiring),
    )
    announce_exceptions(
        Event.EXCEPTION_EXPIRED,
        RiskException.objects.filter(state=ExceptionState.EXPIRED, expires_at__gte=now - EXPIRED_LOOKBACK),
    )
    counts = {event.value: created[event.value] for event in Event if event is not Event.PING}
    if any(counts.values()):
        audit.record(actor, "notifications.scan", "notifications", "scan", counts)
        logger.info("notifications recorded: %s", counts)
    return counts
