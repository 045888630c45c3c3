"""API routes of findings: the ledger filtered, one finding explained, the "patch first" queue."""

# No `from __future__ import annotations`: ninja's @paginate re-reads annotations in its own module.
from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.pagination import paginate
from ninja.responses import Status

from patchday.accounts.guards import Guard, actor_for
from patchday.api.pagination import Pagination
from patchday.audit import services as audit
from patchday.core.roles import Permission
from patchday.findings import exceptions, priority, queries, vex
from patchday.findings.models import Finding, RiskException, SlaPolicy, VexRecord

router = Router(tags=["findings"])


class FindingOut(Schema):
    id: int
    host: str
    vulnerability: str
    ecosystem: str
    package: str
    installed_version: str
    fixed_version: str = Field(description='the version that fixes every matching advisory range; "" when none')
    fixing_update: str = Field(description="the pending update of the host's package manager that fixes it")
    advisory_ids: list[str]
    confidence: str = Field(description="advisory, or changelog (only a pending update's changelog names it)")
    status: str
    first_detected_at: datetime
    last_detected_at: datetime
    fix_available_since: datetime | None
    fixed_at: datetime | None
    fix_verified: bool
    reopened_at: datetime | None
    priority_score: int | None
    priority_decision: str
    due_date: date | None

    @staticmethod
    def resolve_host(finding: Finding) -> str:
        return finding.host.name


class FindingEventOut(Schema):
    at: datetime
    from_status: str
    to_status: str
    reason: str


class FindingDetailOut(FindingOut):
    priority_explanation: list[Any]
    sla_policy_version: int | None
    events: list[FindingEventOut]

    @staticmethod
    def resolve_events(finding: Finding) -> list[Any]:
        return list(finding.events.all())


class FindingQuery(Schema):
    host: str = Field("", max_length=255)
    vulnerability: str = Field("", max_length=128, description="a CVE id (or advisory id)")
    package: str = Field("", max_length=255)
    status: str = Field("open", max_length=16, description="open, fixed, accepted or not_affected")
    decision: str = Field("", max_length=8, description="Act, Attend, Track* or Track")
    confidence: str = Field("", max_length=16)
    kev: bool | None = None
    overdue: bool | None = None

    def to_filter(self) -> queries.FindingFilter:
        return queries.FindingFilter(**self.dict())


class QueueItemOut(Schema):
    ecosystem: str
    package: str
    fixed_version: str
    findings: int
    hosts: int
    vulnerabilities: int
    top_score: int | None
    earliest_due: date | None


class ReevaluationOut(Schema):
    task_id: str = Field(description="the queued task (GET /worker/status shows the queue)")


@router.get("/findings", response=list[FindingOut], auth=Guard(Permission.VIEW), summary="Findings, most urgent first")
@paginate(Pagination)
def list_findings(request: HttpRequest, filters: Query[FindingQuery]) -> Any:
    return queries.findings(filters.to_filter())


@router.get(
    "/findings/queue", response=list[QueueItemOut], auth=Guard(Permission.VIEW), summary="Patch first: by fixing update"
)
@paginate(Pagination)
def patch_queue(request: HttpRequest, host: str = "") -> Any:
    return queries.patch_queue(host)


@router.post(
    "/findings/reevaluate",
    response={202: ReevaluationOut},
    auth=Guard(Permission.ADMINISTER),
    summary="Queue the full re-evaluation of every host",
)
def reevaluate(request: HttpRequest) -> Status[ReevaluationOut]:
    from django.db import transaction

    from patchday.findings.tasks import reevaluate_findings

    with transaction.atomic():
        result = reevaluate_findings.enqueue()
        audit.record(actor_for(request), "findings.reevaluate_queued", "task", str(result.id), {})
    return Status(202, ReevaluationOut(task_id=str(result.id)))


@router.get("/findings/{finding_id}", response=FindingDetailOut, auth=Guard(Permission.VIEW), summary="One finding")
def get_finding(request: HttpRequest, finding_id: int) -> Finding:
    return queries.get_finding(finding_id)


# -- exceptions --------------------------------------------------------------------------------------------


class ExceptionIn(Schema):
    finding_id: int | None = Field(None, description="one finding; or name a vulnerability, or a package")
    vulnerability: str = Field("", max_length=128)
    group: str = Field("", max_length=100, description="limit a vulnerability or package scope to a host group")
    ecosystem: str = Field("", max_length=128)
    package: str = Field("", max_length=255)
    justification: str = Field(max_length=5000)
    expires_at: datetime


class DecisionIn(Schema):
    comment: str = Field("", max_length=5000)


class ExceptionOut(Schema):
    id: int
    scope: str
    finding_id: int | None
    vulnerability: str
    group: str
    ecosystem: str
    package: str
    justification: str
    expires_at: datetime
    state: str
    requested_by: str
    requested_at: datetime
    decided_by: str
    decided_at: datetime | None
    decision_comment: str

    @staticmethod
    def resolve_scope(record: RiskException) -> str:
        return exceptions.describe(record)


def _username(request: HttpRequest) -> str:
    return str(request.user.get_username())


@router.get("/exceptions", response=list[ExceptionOut], auth=Guard(Permission.VIEW), summary="Risk exceptions")
@paginate(Pagination)
def list_exceptions(request: HttpRequest, state: str = "") -> Any:
    return exceptions.exceptions(state)


@router.post("/exceptions", response={201: ExceptionOut}, auth=Guard(Permission.OPERATE), summary="Request one")
def request_exception(request: HttpRequest, body: ExceptionIn) -> Status[RiskException]:
    scope = exceptions.Scope(body.finding_id, body.vulnerability, body.group, body.ecosystem, body.package)
    record = exceptions.request_exception(
        actor_for(request), _username(request), scope, body.justification, body.expires_at
    )
    return Status(201, record)


@router.post(
    "/exceptions/{exception_id}/approve", response=ExceptionOut, auth=Guard(Permission.APPROVE), summary="Approve"
)
def approve_exception(request: HttpRequest, exception_id: int, body: DecisionIn) -> RiskException:
    return exceptions.decide(actor_for(request), _username(request), exception_id, True, body.comment)


@router.post(
    "/exceptions/{exception_id}/reject", response=ExceptionOut, auth=Guard(Permission.APPROVE), summary="Reject"
)
def reject_exception(request: HttpRequest, exception_id: int, body: DecisionIn) -> RiskException:
    return exceptions.decide(actor_for(request), _username(request), exception_id, False, body.comment)


@router.post(
    "/exceptions/{exception_id}/revoke", response=ExceptionOut, auth=Guard(Permission.APPROVE), summary="Revoke"
)
def revoke_exception(request: HttpRequest, exception_id: int) -> RiskException:
    return exceptions.revoke(actor_for(request), exception_id)


# -- VEX ---------------------------------------------------------------------------------------------------


class VexImportOut(Schema):
    statements: int
    recorded: int = Field(description="not_affected statements now in force")
    ignored: int = Field(description="affected, fixed or under_investigation statements: they suppress nothing")
    suppressed: int = Field(description="findings that became not_affected")


class AnalysisIn(Schema):
    justification: str = Field(description="an OpenVEX justification, e.g. vulnerable_code_not_in_execute_path")
    impact_statement: str = Field("", max_length=5000)


class VexRecordOut(Schema):
    id: int
    vulnerability: str
    products: list[dict[str, Any]]
    justification: str
    impact_statement: str
    source: str
    source_format: str
    created_by: str
    created_at: datetime
    confirmed_by: str
    confirmed_at: datetime | None
    finding_id: int | None


@router.get("/vex", response=list[VexRecordOut], auth=Guard(Permission.VIEW), summary="VEX statements and analyses")
@paginate(Pagination)
def list_vex(request: HttpRequest, pending: bool = False) -> Any:
    rows = VexRecord.objects.all()
    return rows.filter(confirmed_at=None) if pending else rows


@router.post("/vex", response=VexImportOut, auth=Guard(Permission.APPROVE), summary="Import an OpenVEX/CycloneDX VEX")
def import_vex(request: HttpRequest, file: File[UploadedFile], sha256: Form[str | None] = None) -> VexImportOut:
    result = vex.import_vex(actor_for(request), file.read(), (file.name or "upload")[:200], sha256)
    return VexImportOut(
        statements=result.statements, recorded=result.recorded, ignored=result.ignored, suppressed=result.suppressed
    )


@router.get("/vex/export", response=dict[str, Any], auth=Guard(Permission.VIEW), summary="The fleet's OpenVEX")
def export_vex(request: HttpRequest) -> dict[str, Any]:
    return vex.export_openvex(_username(request))


@router.post(
    "/vex/{record_id}/confirm", response=VexRecordOut, auth=Guard(Permission.APPROVE), summary="Confirm an analysis"
)
def confirm_vex(request: HttpRequest, record_id: int) -> VexRecord:
    return vex.confirm(actor_for(request), _username(request), record_id)


@router.post(
    "/findings/{finding_id}/not-affected",
    response={201: VexRecordOut},
    auth=Guard(Permission.OPERATE),
    summary="Propose that a finding does not apply",
)
def propose_not_affected(request: HttpRequest, finding_id: int, body: AnalysisIn) -> Status[VexRecord]:
    record = vex.propose_not_affected(
        actor_for(request), _username(request), finding_id, body.justification, body.impact_statement
    )
    return Status(201, record)


# -- SLA policy --------------------------------------------------------------------------------------------


class SlaPolicyOut(Schema):
    version: int
    rules: list[dict[str, Any]]
    created_by: str = Field(description='"patchday" for the built-in defaults (version 1)')
    created_at: datetime | None
    comment: str


class SlaPolicyIn(Schema):
    rules: list[dict[str, Any]] = Field(description="rules in the order they are tried; see docs/prioritization.md")
    comment: str = Field("", max_length=255)


def _policy_out(row: SlaPolicy | None) -> SlaPolicyOut:
    if row is None:
        from patchday.core.sla import DEFAULT_POLICY

        data = DEFAULT_POLICY.to_data()
        return SlaPolicyOut(version=DEFAULT_POLICY.version, rules=data["rules"], created_by="patchday",  # type: ignore[arg-type]
                            created_at=None, comment="the documented defaults")  # fmt: skip
    return SlaPolicyOut(
        version=row.version, rules=row.rules, created_by=row.created_by, created_at=row.created_at, comment=row.comment
    )


@router.get("/sla-policy", response=SlaPolicyOut, auth=Guard(Permission.VIEW), summary="The SLA policy in force")
def get_sla_policy(request: HttpRequest) -> SlaPolicyOut:
    return _policy_out(SlaPolicy.objects.order_by("-version").first())


@router.get("/sla-policy/versions", response=list[SlaPolicyOut], auth=Guard(Permission.VIEW), summary="Every version")
def sla_policy_versions(request: HttpRequest) -> list[SlaPolicyOut]:
    return [_policy_out(row) for row in SlaPolicy.objects.order_by("-version")] + [_policy_out(None)]


@router.put("/sla-policy", response=SlaPolicyOut, auth=Guard(Permission.ADMINISTER), summary="Save a new version")
def put_sla_policy(request: HttpRequest, body: SlaPolicyIn) -> SlaPolicyOut:
    row = priority.save_policy(actor_for(request), body.rules, body.comment)
    return _policy_out(row)
