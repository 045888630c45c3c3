"""Background tasks of deployment: the rollout tick (advance every rollout, expire leases, push SSH jobs)."""

from __future__ import annotations

from django_tasks import task


@task()
def tick_rollouts() -> dict[str, int]:
    """Periodic (`rollouts.tick`, every minute): advance rollouts by their facts and run due SSH jobs."""
    from patchday.rollouts.driver import tick

    return tick()


@task()
def advance_rollout(rollout_id: int) -> str:
    """Queued after a job result: advance that rollout at once instead of at the next tick."""
    from patchday.rollouts.driver import advance

    return advance(rollout_id).state
