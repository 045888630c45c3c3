"""API routes of compliance reporting: evidence packs and report schedules (auditors and admins)."""

# No `from __future__ import annotations`: ninja reads the annotations of the views at import time.
import tempfile
from datetime import date, datetime
from typing import Any

from django.http import FileResponse, HttpRequest
from ninja import Field, Router, Schema
from ninja.responses import Status

from patchday.accounts.guards import Guard, actor_for
from patchday.compliance.models import ReportSchedule
from patchday.core.roles import Permission
from patchday.reports import evidence, schedules

router = Router(tags=["reports"])


class EvidenceIn(Schema):
    framework: str = Field(description="pci-dss, nist, cis, hipaa, gdpr or iso27001")
    start: date = Field(alias="from", description="first day of the period (UTC)")
    end: date = Field(alias="to", description="last day of the period (UTC), included")


@router.post(
    "/reports/evidence",
    auth=Guard(Permission.READ_AUDIT),
    summary="Build an evidence pack (zip: PDF summary, CSVs, audit verification, SHA-256 manifest)",
    response={200: None},
    openapi_extra={"responses": {200: {"content": {"application/zip": {}}}}},
)
def build_evidence(request: HttpRequest, body: EvidenceIn) -> FileResponse:
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it once sent)
    try:
        pack = evidence.write_pack(body.framework, body.start, body.end, actor_for(request), spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    response = FileResponse(spool, as_attachment=True, filename=pack.filename, content_type="application/zip")
    response["X-Patchday-Manifest-SHA256"] = pack.manifest_sha256
    return response


class ScheduleIn(Schema):
    name: str = Field(max_length=100)
    frequency: str = Field(description="daily, weekly or monthly")
    scope: str = Field(description="metrics, or a framework: pci-dss, nist, cis, hipaa, gdpr, iso27001")
    format: str = Field("pdf", description="pdf or csv")
    addresses: list[str] = Field([], max_length=50, description="e-mail recipients; the report is attached")
    webhook_id: int | None = Field(None, description="a webhook channel; it receives a signed JSON summary")
    group: str = Field("", max_length=100, description="only this host group's metrics")
    environment: str = Field("", max_length=64, description="only this environment's metrics")
    hour: int = Field(6, description="UTC hour of the day the report is made")


class ScheduleOut(Schema):
    id: int
    name: str
    frequency: str
    scope: str
    format: str
    addresses: list[str]
    webhook_id: int | None
    group: str
    environment: str
    hour: int
    created_by: str
    created_at: datetime
    next_run_at: datetime
    last_run_at: datetime | None
    last_outcome: str
    last_error: str


@router.get(
    "/reports/schedules", response=list[ScheduleOut], auth=Guard(Permission.READ_AUDIT), summary="Report schedules"
)
def list_schedules(request: HttpRequest) -> Any:
    return list(schedules.schedules())


@router.post(
    "/reports/schedules",
    response={201: ScheduleOut},
    auth=Guard(Permission.READ_AUDIT),
    summary="Add a report schedule",
)
def add_schedule(request: HttpRequest, body: ScheduleIn) -> Status[ReportSchedule]:
    schedule = schedules.add_schedule(
        actor_for(request), str(request.user.get_username()), body.name, body.frequency, body.scope,
        format=body.format, addresses=body.addresses, webhook_id=body.webhook_id, group=body.group,
        environment=body.environment, hour=body.hour,
    )  # fmt: skip
    return Status(201, schedule)


@router.delete(
    "/reports/schedules/{schedule_id}",
    response=ScheduleOut,
    auth=Guard(Permission.READ_AUDIT),
    summary="Remove a report schedule",
)
def remove_schedule(request: HttpRequest, schedule_id: int) -> ReportSchedule:
    return schedules.remove_schedule(actor_for(request), schedule_id)
