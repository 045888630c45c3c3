"""Background tasks of notifications: the hourly scan for what newly qualifies, and sending due deliveries."""

from __future__ import annotations

from django_tasks import task


@task()
def scan_notifications() -> dict[str, int]:
    """Periodic (`notifications.scan`): record new notifications and queue their deliveries."""
    from patchday.notifications import detection
    from patchday.worker.tasks import worker_actor

    return detection.scan(worker_actor())


@task()
def send_deliveries() -> dict[str, int]:
    """Periodic (`notifications.send`): attempt the deliveries whose next attempt is due."""
    from patchday.notifications import sending

    return sending.send_due()
