"""API routes of the worker: which workers run, what the queue holds, and a probe to prove it works."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.db.models import Count
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from ninja.responses import Status

from patchday.accounts.guards import Guard, actor_for
from patchday.audit import services as audit
from patchday.core.roles import Permission
from patchday.worker.models import WorkerHeartbeat
from patchday.worker.tasks import probe

router = Router(tags=["worker"])
ALIVE_AFTER = timedelta(minutes=2)


class WorkerOut(Schema):
    worker_id: str
    hostname: str
    pid: int
    started_at: datetime
    seen_at: datetime
    is_scheduler: bool


class StatusOut(Schema):
    workers: list[WorkerOut]
    queue: dict[str, int]


class ProbeOut(Schema):
    token: str
    task_id: str


def queue_counts() -> dict[str, int]:
    from django_tasks_db.models import DBTaskResult

    rows = DBTaskResult.objects.values("status").annotate(n=Count("id"))
    return {str(row["status"]).lower(): int(row["n"]) for row in rows}


def alive_workers() -> list[WorkerHeartbeat]:
    return list(WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - ALIVE_AFTER).order_by("worker_id"))


@router.get("/worker/status", response=StatusOut, auth=Guard(Permission.VIEW), summary="Workers and queue")
def status(request: HttpRequest) -> dict[str, object]:
    return {"workers": alive_workers(), "queue": queue_counts()}


@router.post("/worker/probes", response={202: ProbeOut}, auth=Guard(Permission.ADMINISTER), summary="Enqueue a probe")
def enqueue_probe(request: HttpRequest) -> Status[dict[str, str]]:
    from django.db import transaction

    token = secrets.token_hex(8)
    with transaction.atomic():
        result = probe.enqueue(token)
        audit.record(actor_for(request), "worker.probe", "task", str(result.id), {"token": token})
    return Status(202, {"token": token, "task_id": str(result.id)})
