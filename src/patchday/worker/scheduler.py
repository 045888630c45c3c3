"""Periodic tasks: one worker at a time holds the 'scheduler' lease and enqueues each due slot once.

Election is a conditional UPDATE on one row (atomic on SQLite and PostgreSQL); the unique
(name, slot) row written in the same transaction as the enqueue makes a double enqueue
impossible even if two workers ever believed they led.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from patchday.audit import services as audit
from patchday.compliance.tasks import run_report_schedules
from patchday.connectors.tasks import collect_due_ssh
from patchday.core.audit import Actor, ActorKind
from patchday.findings.tasks import expire_exceptions, refresh_queue
from patchday.notifications.tasks import scan_notifications, send_deliveries
from patchday.reports.tasks import snapshot_metrics
from patchday.rollouts.tasks import tick_rollouts
from patchday.worker.models import Lease, PeriodicRun, WorkerHeartbeat
from patchday.worker.tasks import prune_task_results, sync_feeds, verify_audit_chain

logger = logging.getLogger(__name__)

SCHEDULER_LEASE = "scheduler"
ALIVE_AFTER = timedelta(minutes=2)  # a worker whose heartbeat is older than this is gone
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Periodic:
    """A task enqueued once per `every`, in slots aligned to EPOCH (so every worker agrees on them)."""

    name: str
    every: timedelta
    task: Any

    def slot(self, now: datetime) -> datetime:
        elapsed = now - EPOCH
        return EPOCH + self.every * (elapsed // self.every)


SCHEDULE: Sequence[Periodic] = (
    Periodic("audit.verify", timedelta(hours=1), verify_audit_chain),
    Periodic("worker.prune_task_results", timedelta(days=1), prune_task_results),
    Periodic("feeds.sync", timedelta(days=1), sync_feeds),
    Periodic("ssh.collect_due", timedelta(minutes=5), collect_due_ssh),  # each target has its own interval
    Periodic("exceptions.expire", timedelta(hours=1), expire_exceptions),
    Periodic("findings.queue", timedelta(minutes=1), refresh_queue),
    Periodic("notifications.scan", timedelta(hours=1), scan_notifications),
    Periodic("notifications.send", timedelta(minutes=1), send_deliveries),  # each delivery has its own due time
    Periodic("rollouts.tick", timedelta(minutes=1), tick_rollouts),  # leases, gates, soak times, SSH pushes
    Periodic("reports.snapshot", timedelta(hours=1), snapshot_metrics),  # daily rows; today's refreshed hourly
    Periodic("reports.schedules", timedelta(hours=1), run_report_schedules),  # each schedule has its own due time
)


def try_lead(worker_id: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the scheduler lease; True when `worker_id` holds it until now + ttl."""
    with transaction.atomic():
        renewed = (
            Lease.objects.filter(name=SCHEDULER_LEASE)
            .filter(Q(holder=worker_id) | Q(expires_at__lt=now))
            .update(holder=worker_id, expires_at=now + ttl)
        )
        if renewed:
            return True
        if Lease.objects.filter(name=SCHEDULER_LEASE).exists():
            return False
        try:
            with transaction.atomic():
                Lease.objects.create(name=SCHEDULER_LEASE, holder=worker_id, expires_at=now + ttl, acquired_at=now)
        except IntegrityError:
            return False
        return True


def release(worker_id: str) -> None:
    """Give up the lease at shutdown so another worker can lead at once."""
    Lease.objects.filter(name=SCHEDULER_LEASE, holder=worker_id).delete()


def enqueue_due(worker_id: str, now: datetime, schedule: Sequence[Periodic] = SCHEDULE) -> list[str]:
    """Enqueue every periodic task whose current slot has not been enqueued yet; returns their names."""
    enqueued: list[str] = []
    for periodic in schedule:
        slot = periodic.slot(now)
        if PeriodicRun.objects.filter(name=periodic.name, slot=slot).exists():
            continue
        try:
            with transaction.atomic():
                run = PeriodicRun.objects.create(
                    name=periodic.name, slot=slot, enqueued_at=now, enqueued_by=worker_id, task_id=""
                )
                result = periodic.task.enqueue()
                PeriodicRun.objects.filter(pk=run.pk).update(task_id=str(result.id))
        except IntegrityError:
            continue  # another worker enqueued this slot first
        logger.info("enqueued periodic task %s for slot %s", periodic.name, slot.isoformat())
        enqueued.append(periodic.name)
    return enqueued


class WorkerVanished(Exception):
    """The worker running a task stopped (killed, crashed, lost its machine) before finishing it."""


def fail_orphaned_tasks(worker_id: str, now: datetime) -> int:
    """Mark RUNNING tasks whose worker has no recent heartbeat as FAILED; returns how many.

    They are failed, not re-queued: a task may have half-changed something, and running it again
    is the task owner's decision (deployment jobs carry their own idempotency and retry rules).
    """
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    cutoff = now - ALIVE_AFTER
    alive = set(WorkerHeartbeat.objects.filter(seen_at__gte=cutoff).values_list("worker_id", flat=True))
    failed = 0
    for result in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, started_at__lt=cutoff):
        last_worker = result.worker_ids[-1] if result.worker_ids else "unknown"
        if last_worker in alive:
            continue
        with transaction.atomic():
            result.set_failed(WorkerVanished(f"worker {last_worker} stopped while running this task"))
            audit.record(
                Actor(ActorKind.SYSTEM, f"worker:{worker_id}"),
                "task.orphaned",
                "task",
                result.id,
                {"task": result.task_path, "worker": last_worker},
            )
        logger.warning("task %s (%s) failed: worker %s vanished", result.id, result.task_path, last_worker)
        failed += 1
    return failed
