"""VEX in the ledger: imported not_affected statements and confirmed analyses suppress the findings they
cover (visibly: status not_affected, with the reason in the finding's history); the fleet's statements
export as one OpenVEX document. Parsing is patchday.connectors.imports.vex (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from patchday.audit import services as audit
from patchday.connectors.imports.vex import (
    VexJustification,
    VexProduct,
    VexStatement,
    VexStatus,
    openvex_document,
    parse_vex,
    vex_product,
)
from patchday.core.audit import Actor
from patchday.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from patchday.findings.models import Finding, FindingEvent, FindingStatus, VexRecord

SUPPRESSIBLE = (FindingStatus.OPEN, FindingStatus.ACCEPTED)


@dataclass(frozen=True, slots=True)
class VexImport:
    statements: int
    recorded: int  # not_affected statements now in force
    ignored: int  # affected, fixed, under_investigation: they suppress nothing
    suppressed: int  # findings that became not_affected


def _products(record: VexRecord) -> list[VexProduct]:
    return [vex_product(p["ecosystem"], p["name"], p.get("version")) for p in record.products]


def _covered(record: VexRecord, host_ids: Iterable[int] | None) -> list[Finding]:
    names = {record.vulnerability, *record.aliases}
    rows = Finding.objects.filter(vulnerability__in=names, status__in=SUPPRESSIBLE)
    if record.finding_id is not None:
        rows = rows.filter(pk=record.finding_id)
    if host_ids is not None:
        rows = rows.filter(host_id__in=list(host_ids))
    products = _products(record)
    return [f for f in rows if any(p.covers(f.ecosystem, f.package, f.installed_version) for p in products)]


def _suppress(record: VexRecord, host_ids: Iterable[int] | None, now: datetime, refresh_queue: bool = True) -> int:
    findings = _covered(record, host_ids)
    reason = f"VEX not_affected ({record.justification or 'impact statement'}) from {record.source}"[:255]
    events = [FindingEvent(finding=f, at=now, from_status=f.status, to_status=FindingStatus.NOT_AFFECTED,
                           reason=reason) for f in findings]  # fmt: skip
    for finding in findings:
        finding.status, finding.status_changed_at = FindingStatus.NOT_AFFECTED, now
    Finding.objects.bulk_update(findings, ["status", "status_changed_at"], batch_size=500)
    FindingEvent.objects.bulk_create(events, batch_size=1000)
    if refresh_queue and findings:
        from patchday.findings.queries import mark_for_refresh

        mark_for_refresh({f.package for f in findings})
    return len(findings)


def apply_stored(
    host_ids: Iterable[int] | None = None, now: datetime | None = None, *, refresh_queue: bool = True
) -> int:
    """Findings (of these hosts, or all) covered by a confirmed statement become not_affected."""
    now = now or timezone.now()
    ids = list(host_ids) if host_ids is not None else None
    return sum(_suppress(r, ids, now, refresh_queue) for r in VexRecord.objects.exclude(confirmed_at=None))


def _record(statement: VexStatement, source: str, actor: Actor, now: datetime) -> VexRecord:
    return VexRecord(
        vulnerability=statement.vulnerability,
        aliases=list(statement.aliases),
        products=[
            {"ecosystem": p.ecosystem, "name": p.name, "version": p.version, "purl": p.purl}
            for p in statement.products
            if not p.within
        ],
        justification=statement.justification.value if statement.justification else "",
        impact_statement=statement.impact_statement,
        source=source[:255],
        source_format=statement.source_format[:32],
        created_by=actor.name,
        created_at=now,
        confirmed_by=actor.name,
        confirmed_at=now,
    )


def import_vex(actor: Actor, data: bytes, source: str, sha256: str | None = None) -> VexImport:
    """Import a VEX document as a whole (a refused one applies nothing) and suppress what it covers."""
    statements = parse_vex(data, source=source, sha256=sha256)
    now = timezone.now()
    relevant = [s for s in statements if s.status is VexStatus.NOT_AFFECTED]
    with transaction.atomic():
        records = VexRecord.objects.bulk_create([_record(s, source, actor, now) for s in relevant])
        if any(r.pk is None for r in records):
            records = list(VexRecord.objects.filter(source=source[:255], created_at=now))
        suppressed = sum(_suppress(r, None, now) for r in records)
        result = VexImport(len(statements), len(records), len(statements) - len(relevant), suppressed)
        counts = {"statements": result.statements, "recorded": result.recorded, "ignored": result.ignored,
                  "suppressed": result.suppressed}  # fmt: skip
        audit.record(actor, "vex.import", "vex", source[:255], counts)
    return result


def propose_not_affected(
    actor: Actor, requester: str, finding_id: int, justification: str, impact_statement: str = ""
) -> VexRecord:
    """A user's analysis that a finding does not apply; it suppresses nothing until an approver confirms it."""
    finding = Finding.objects.filter(pk=finding_id).first()
    if finding is None:
        raise NotFound(f"no finding with id {finding_id}")
    accepted = [j.value for j in VexJustification]
    if justification not in accepted:
        raise InvalidInput(f"justification must be one of {', '.join(accepted)}", field="justification")
    now = timezone.now()
    with transaction.atomic():
        record = VexRecord.objects.create(
            vulnerability=finding.vulnerability,
            products=[
                {
                    "ecosystem": finding.ecosystem,
                    "name": finding.package,
                    "version": finding.installed_version,
                    "purl": "",
                }
            ],
            justification=justification,
            impact_statement=impact_statement.strip(),
            source=f"analysis of finding {finding.pk}",
            source_format="analysis",
            created_by=requester,
            created_at=now,
            finding=finding,
        )
        audit.record(actor, "vex.propose", "finding", finding.pk, {"justification": justification,
                     "impact_statement": record.impact_statement, "record": record.pk})  # fmt: skip
    return record


def confirm(actor: Actor, approver: str, record_id: int) -> VexRecord:
    """Confirm a proposed analysis (not by its author): the finding becomes not_affected."""
    now = timezone.now()
    with transaction.atomic():
        record = VexRecord.objects.select_for_update().filter(pk=record_id).first()
        if record is None:
            raise NotFound(f"no VEX analysis with id {record_id}")
        if record.confirmed_at is not None:
            raise Conflict(f"VEX analysis {record_id} is already confirmed")
        if record.created_by == approver:
            raise PermissionDenied("the author of an analysis cannot confirm it; another approver must")
        record.confirmed_by, record.confirmed_at = approver, now
        record.save(update_fields=["confirmed_by", "confirmed_at"])
        suppressed = _suppress(record, None, now)
        audit.record(actor, "vex.confirm", "vex", record.pk, {"suppressed": suppressed})
    return record


def export_openvex(author: str, now: datetime | None = None) -> dict[str, object]:
    """Every confirmed not_affected statement of the fleet as one OpenVEX v0.2.0 document."""
    now = now or timezone.now()
    statements = [
        VexStatement(
            vulnerability=r.vulnerability,
            products=tuple(_products(r)),
            status=VexStatus.NOT_AFFECTED,
            justification=VexJustification(r.justification) if r.justification else None,
            impact_statement=r.impact_statement,
            source_format=r.source_format,
            timestamp=r.confirmed_at,
            aliases=tuple(r.aliases),
        )
        for r in VexRecord.objects.exclude(confirmed_at=None).order_by("vulnerability", "id")
    ]
    return openvex_document(statements, author, now, f"https://patchday.invalid/vex/{now:%Y%m%dT%H%M%SZ}")
