"""Daily snapshots of every metric: written by the `reports.snapshot` periodic task, read by series() and pages."""

from __future__ import annotations

from datetime import UTC, date, timedelta

from django.db import transaction
from django.utils import timezone

from patchday.core.errors import InvalidInput
from patchday.core.metrics import end_of_day
from patchday.reports.metrics import METRIC_NAMES, SNAPSHOT_WINDOW, Metric, summary
from patchday.reports.models import MetricSnapshot

FLEET = ""  # the scope of fleet-wide rows


def take_snapshot(day: date) -> int:
    """(Re)write the fleet-wide rows of `day`: one per metric, as summary() gives them for the 30 days ending
    `day` (state metrics as of the end of `day`, or now while `day` is today). Idempotent; returns rows written.

    Raises InvalidInput for a day in the future.
    """
    now = timezone.now()
    if day > now.astimezone(UTC).date():
        raise InvalidInput(f"cannot take a snapshot of {day}: it is in the future", field="day")
    metrics = summary(day - timedelta(days=SNAPSHOT_WINDOW - 1), day)
    rows = [
        MetricSnapshot(
            day=day,
            name=name,
            scope=FLEET,
            value=metrics[name].value,
            detail={key: value for key, value in metrics[name].to_data().items() if key not in ("name", "value")},
            taken_at=now,
        )
        for name in METRIC_NAMES
    ]
    with transaction.atomic():
        MetricSnapshot.objects.filter(day=day, scope=FLEET).delete()
        MetricSnapshot.objects.bulk_create(rows)
    return len(rows)


def snapshot(day: date) -> dict[str, Metric] | None:
    """The metrics as the snapshot of `day` recorded them (every name of METRIC_NAMES), or None without one."""
    rows = MetricSnapshot.objects.filter(day=day, scope=FLEET, name__in=METRIC_NAMES)
    metrics = {row.name: Metric.from_data({**row.detail, "name": row.name, "value": row.value}) for row in rows}
    return metrics if metrics else None


def latest_snapshot_day(on_or_before: date | None = None) -> date | None:
    """The newest day with a fleet-wide snapshot (on or before `on_or_before` when given)."""
    rows = MetricSnapshot.objects.filter(scope=FLEET)
    if on_or_before is not None:
        rows = rows.filter(day__lte=on_or_before)
    return rows.order_by("-day").values_list("day", flat=True).first()


def days_due(now_day: date) -> list[date]:
    """The days the periodic task (re)writes: yesterday when its rows were taken before it ended, and today."""
    yesterday = now_day - timedelta(days=1)
    taken = MetricSnapshot.objects.filter(day=yesterday, scope=FLEET).values_list("taken_at", flat=True).first()
    final = taken is not None and taken >= end_of_day(yesterday)
    return [now_day] if final else [yesterday, now_day]
