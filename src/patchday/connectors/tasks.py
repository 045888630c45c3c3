"""Background tasks of the connectors: periodic re-collection of SSH targets."""

from __future__ import annotations

import logging

from django_tasks import task

logger = logging.getLogger(__name__)


@task()
def collect_due_ssh() -> dict[str, str]:
    """Periodic (`ssh.collect_due`): collect every enabled SSH target whose interval has passed.

    Returns {target: outcome}; a failing host is reported and recorded on its target, the others go on.
    """
    from patchday.connectors import services
    from patchday.worker.tasks import worker_actor

    report: dict[str, str] = {}
    for outcome in services.collect_due(worker_actor()):
        report[outcome.label] = outcome.status.value + (f": {outcome.message}" if outcome.message else "")
        if outcome.message:
            logger.warning("ssh collection of %s: %s", outcome.label, outcome.message)
    return report
