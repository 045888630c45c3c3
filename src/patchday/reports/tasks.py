"""Background tasks of reports: the metric snapshots."""

from __future__ import annotations

from django_tasks import task


@task()
def snapshot_metrics() -> dict[str, int]:
    """Periodic (`reports.snapshot`, hourly): rewrite today's snapshot rows, and yesterday's once more if they
    were taken before it ended, so each day keeps the values of its end. Returns {day: rows written}."""
    from django.utils import timezone

    from patchday.reports.snapshots import days_due, take_snapshot

    today = timezone.now().date()
    return {day.isoformat(): take_snapshot(day) for day in days_due(today)}
