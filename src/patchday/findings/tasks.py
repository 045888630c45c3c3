"""Background tasks of findings: the full re-evaluation (re-match everything, reconcile every host)."""

from __future__ import annotations

from django_tasks import task


@task()
def reevaluate_findings() -> dict[str, int]:
    """Re-match every package version and reconcile every host's findings; the same result as the
    incremental updates that follow each inventory and advisory change (a safety net, and after upgrades)."""
    from patchday.audit import services as audit
    from patchday.findings import ledger
    from patchday.findings import services as matcher
    from patchday.worker.tasks import worker_actor

    matches = matcher.rematch_all()
    change = ledger.reconcile_all()
    counts = {
        "matches_added": matches.added,
        "matches_removed": matches.removed,
        "opened": change.opened,
        "reopened": change.reopened,
        "fixed": change.fixed,
        "refreshed": change.refreshed,
    }
    audit.record(worker_actor(), "findings.reevaluate", "findings", "all", counts)
    return counts


@task()
def expire_exceptions() -> list[int]:
    """Periodic (`exceptions.expire`): end approved exceptions past their expiry; their findings open again."""
    import logging

    from patchday.findings import exceptions
    from patchday.worker.tasks import worker_actor

    ended = exceptions.expire_due(worker_actor())
    for record in ended:
        logging.getLogger(__name__).warning(
            "exception %s (%s) expired; its findings are open again (notifications.scan announces it)",
            record.pk,
            exceptions.describe(record),
        )
    return [record.pk for record in ended]


@task()
def refresh_queue() -> int:
    """Periodic (`findings.queue`, every minute): recompute the "patch first" lines of packages the ledger marked."""
    from patchday.findings.queries import refresh_marked

    return refresh_marked()
