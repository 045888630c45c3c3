"""Background tasks. Each is a module-level function so any worker process can import and run it."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from patchday.audit import services as audit
from patchday.core.audit import Actor, ActorKind

logger = logging.getLogger(__name__)


def worker_actor() -> Actor:
    """The audit actor for changes a task makes: this worker process."""
    from patchday.worker.runner import current_worker_id  # runner imports the scheduler, which imports tasks

    return Actor(ActorKind.SYSTEM, f"worker:{current_worker_id()}")


@task()
def probe(token: str) -> str:
    """Record that a worker ran this probe; a second run of the same token fails on the unique constraint."""
    from patchday.worker.models import Probe
    from patchday.worker.runner import current_worker_id

    worker_id = current_worker_id()
    with transaction.atomic():
        row = Probe.objects.create(token=token, worker_id=worker_id, ran_at=timezone.now())
        audit.record(worker_actor(), "worker.probe_ran", "probe", row.pk, {"token": token})
    return worker_id


@task()
def verify_audit_chain() -> dict[str, object]:
    """Periodic: check the audit hash chain and log loudly if it is broken."""
    report = audit.verify()
    if not report.is_intact:
        logger.error("audit chain broken at record %s: %s", report.first_broken, report.reason)
    return {"intact": report.is_intact, "checked": report.checked, "first_broken": report.first_broken}


@task()
def prune_task_results(keep_days: int = 14) -> int:
    """Periodic: delete finished task results older than `keep_days` (the queue's bookkeeping, not audit data)."""
    from django_tasks_db.models import DBTaskResult

    cutoff = timezone.now() - timedelta(days=keep_days)
    with transaction.atomic():
        deleted, _ = DBTaskResult.objects.finished().filter(finished_at__lt=cutoff).delete()
        if deleted:
            changes = {"deleted": deleted, "finished_before": cutoff.isoformat()}
            audit.record(worker_actor(), "worker.prune_task_results", "task_result", "*", changes)
    return deleted


@task()
def sync_feeds(strict: bool = False) -> dict[str, str]:
    """Periodic: sync every source in PATCHDAY_FEED_URLS; a failing source is logged and the others go on.

    `strict` fails a dump on one malformed record instead of skipping it (see feed_imports.loader_for).
    Returns {source: "succeeded" | "failed: REASON"}.
    """
    from patchday.advisories.feed_imports import sync_source
    from patchday.settings import load_settings

    settings = load_settings()
    report: dict[str, str] = {}
    for source, url in settings.feed_urls.items():
        try:
            run = sync_source(worker_actor(), source, url, settings.feed_cache_dir, strict=strict)
        except Exception as exc:  # one feed never blocks the others; its failed run is recorded
            logger.error("feed sync of %s from %s failed: %s", source, url, exc)
            report[source] = f"failed: {exc}"
        else:
            report[source] = run.outcome
            if run.skipped:
                logger.warning("feed sync of %s skipped malformed records: %s", source, run.skipped)
    return report
