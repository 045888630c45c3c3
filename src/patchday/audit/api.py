"""API routes of the audit trail: search, export (CSV or JSON), chain verification."""

# No `from __future__ import annotations` here: ninja's @paginate re-reads the view's annotations in
# its own module, where the string "Query[AuditQuery]" cannot be resolved, so GET /audit failed (500).
from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema
from ninja.pagination import paginate

from patchday.accounts.guards import Guard
from patchday.api.pagination import Pagination
from patchday.audit import services
from patchday.audit.models import AuditRecord
from patchday.core.roles import Permission

router = Router(tags=["audit"])


class AuditRecordOut(Schema):
    id: int
    at: datetime
    actor_kind: str
    actor_name: str
    action: str
    object_type: str
    object_id: str
    changes: dict[str, Any]
    source_address: str | None
    prev_hash: str
    hash: str

    @staticmethod
    def resolve_changes(obj: AuditRecord) -> Any:
        import json

        return json.loads(obj.changes)


class AuditQuery(Schema):
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_filter(self) -> services.AuditFilter:
        return services.AuditFilter(**self.dict())


class VerifyOut(Schema):
    intact: bool
    checked: int
    head_hash: str
    first_broken_id: int | None
    reason: str | None


@router.get(
    "/audit",
    response=list[AuditRecordOut],
    auth=Guard(Permission.READ_AUDIT),
    summary="Search the audit trail",
)
@paginate(Pagination)
def list_records(request: HttpRequest, filters: Query[AuditQuery]) -> object:
    return services.search(filters.to_filter())


@router.get("/audit/export", auth=Guard(Permission.READ_AUDIT), summary="Export matching records as CSV or JSON")
def export(
    request: HttpRequest, filters: Query[AuditQuery], format: Literal["csv", "json"] = "csv"
) -> StreamingHttpResponse:
    rows = services.search(filters.to_filter())
    if format == "json":
        response = StreamingHttpResponse(services.export_json(rows), content_type="application/json")
    else:
        response = StreamingHttpResponse(services.export_csv(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="patchday-audit.{format}"'
    return response


@router.get("/audit/verify", response=VerifyOut, auth=Guard(Permission.READ_AUDIT), summary="Verify the hash chain")
def verify(request: HttpRequest) -> dict[str, object]:
    report = services.verify()
    return {
        "intact": report.is_intact,
        "checked": report.checked,
        "head_hash": report.head_hash,
        "first_broken_id": report.first_broken,
        "reason": report.reason,
    }
