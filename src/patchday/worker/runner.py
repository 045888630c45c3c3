"""`patchday worker`: runs queued tasks from the database, and the scheduler loop beside them."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import timedelta

from django.db import close_old_connections, connection
from django.utils import timezone

from patchday.worker import scheduler
from patchday.worker.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

_worker_id = f"{socket.gethostname()}:{os.getpid()}"


def current_worker_id() -> str:
    """The id of this worker process (hostname:pid:random), as recorded in heartbeats and leases."""
    return _worker_id


class SchedulerLoop(threading.Thread):
    """Every `tick` seconds: heartbeat and, when `schedule`, try to lead; the leader enqueues due
    periodic tasks and fails tasks whose worker vanished."""

    def __init__(self, worker_id: str, tick: float, lease_ttl: float, schedule: bool = True) -> None:
        super().__init__(name="patchday-scheduler", daemon=True)
        self.worker_id = worker_id
        self.tick = tick
        self.schedule = schedule
        self.lease_ttl = timedelta(seconds=lease_ttl)
        self.stopping = threading.Event()
        self.leading = False
        self.started_at = timezone.now()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self.step()
                except Exception:
                    logger.exception("scheduler step failed; retrying in %.1fs", self.tick)
                finally:
                    close_old_connections()
                self.stopping.wait(self.tick)
        finally:
            connection.close()

    def step(self) -> None:
        now = timezone.now()
        leading = self.schedule and scheduler.try_lead(self.worker_id, now, self.lease_ttl)
        if leading != self.leading:
            logger.info("worker %s %s the scheduler", self.worker_id, "now leads" if leading else "no longer leads")
            self.leading = leading
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": self.started_at,
                "seen_at": now,
                "is_scheduler": leading,
            },
        )
        if leading:
            # A leader that died without releasing (SIGKILL, power loss) left its heartbeat claiming to lead.
            WorkerHeartbeat.objects.filter(is_scheduler=True).exclude(worker_id=self.worker_id).update(
                is_scheduler=False
            )
            scheduler.enqueue_due(self.worker_id, now)
            scheduler.fail_orphaned_tasks(self.worker_id, now)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=self.tick + 5)
        if self.leading:
            scheduler.release(self.worker_id)
        WorkerHeartbeat.objects.filter(worker_id=self.worker_id).delete()


def run_worker(*, interval: float, tick: float, lease_ttl: float, batch: bool, schedule: bool) -> None:
    """Run tasks until stopped (SIGTERM/SIGINT), or until the queue is empty when `batch`."""
    global _worker_id
    from django_tasks_db.management.commands.db_worker import Worker

    _worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    loop = SchedulerLoop(_worker_id, tick, lease_ttl, schedule)  # always: the heartbeat shows the worker lives
    loop.start()
    worker = Worker(
        queue_names=["*"],
        interval=interval,
        batch=batch,
        backend_name="default",
        startup_delay=not batch,
        max_tasks=None,
        worker_id=_worker_id,
        excluded_queue_names=[],
    )
    worker.configure_signals()
    try:
        worker.run()
    finally:
        loop.stop()
