"""Background task of compliance reporting: the hourly run of due report schedules."""

from __future__ import annotations

from django_tasks import task


@task()
def run_report_schedules() -> dict[str, int]:
    """Periodic (`reports.schedules`): make and send every scheduled report whose time has come."""
    from patchday.reports import schedules
    from patchday.worker.tasks import worker_actor

    return schedules.run_due(worker_actor())
