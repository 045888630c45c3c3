"""Tables of the worker: the scheduler lease, periodic slots already enqueued, worker heartbeats, probes."""

from __future__ import annotations

from django.db import models


class Lease(models.Model):
    """A named lease held by one worker until `expires_at`; the 'scheduler' lease elects the scheduler."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=128)
    expires_at = models.DateTimeField()
    acquired_at = models.DateTimeField()


class PeriodicRun(models.Model):
    """One enqueued run of a periodic task for one time slot; unique, so no slot is ever enqueued twice."""

    name = models.CharField(max_length=64)
    slot = models.DateTimeField()
    enqueued_at = models.DateTimeField()
    enqueued_by = models.CharField(max_length=128)
    task_id = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "slot"], name="worker_periodicrun_once_per_slot")]


class WorkerHeartbeat(models.Model):
    """A running worker process, as last seen."""

    worker_id = models.CharField(max_length=128, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    is_scheduler = models.BooleanField(default=False)


class Probe(models.Model):
    """A probe task ran: proves end to end that workers take tasks from the queue (and only once)."""

    token = models.CharField(max_length=64, unique=True)
    worker_id = models.CharField(max_length=128)
    ran_at = models.DateTimeField()
