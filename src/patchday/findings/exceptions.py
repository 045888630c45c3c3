"""Risk exceptions: requested with a justification, a scope and an expiry; decided by an approver who is
not the requester; while approved, findings in scope are `accepted` (visible, outside SLA breach
counts); on expiry or revocation they open again. Every step is audited."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from patchday.audit import services as audit
from patchday.core.audit import Actor
from patchday.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from patchday.findings.models import ExceptionState, Finding, FindingEvent, FindingStatus, RiskException

MAX_DURATION = timedelta(days=366)
MIN_JUSTIFICATION = 10


@dataclass(frozen=True, slots=True)
class Scope:
    """Exactly one of: a finding; a vulnerability (on a group's hosts, or every host); a package."""

    finding_id: int | None = None
    vulnerability: str = ""
    group: str = ""
    ecosystem: str = ""
    package: str = ""

    def check(self) -> Scope:
        kinds = [self.finding_id is not None, bool(self.vulnerability), bool(self.package)]
        if sum(kinds) != 1:
            raise InvalidInput("name exactly one scope: a finding, a vulnerability, or a package", field="scope")
        if self.package and not self.ecosystem:
            raise InvalidInput("a package scope needs its ecosystem (e.g. Debian:12)", field="ecosystem")
        if self.finding_id is not None and self.group:
            raise InvalidInput("a single finding's scope takes no group", field="group")
        if self.finding_id is not None and not Finding.objects.filter(pk=self.finding_id).exists():
            raise NotFound(f"no finding with id {self.finding_id}")
        if self.group:
            from patchday.inventory.models import HostGroup

            if not HostGroup.objects.filter(name=self.group).exists():
                raise NotFound(f"no host group named {self.group!r}")
        return self


def _in_scope(exception: RiskException) -> QuerySet[Finding]:
    rows = Finding.objects.all()
    if exception.finding_id is not None:
        return rows.filter(pk=exception.finding_id)
    if exception.vulnerability:
        rows = rows.filter(vulnerability=exception.vulnerability)
    if exception.package:
        rows = rows.filter(ecosystem=exception.ecosystem, package=exception.package)
    if exception.group:
        from patchday.inventory.queries import group_members

        rows = rows.filter(host__in=group_members(exception.group).values("pk"))
    return rows


def _move(findings: Iterable[Finding], to: str, reason: str, now: datetime, refresh_queue: bool = True) -> int:
    moved = []
    events = []
    for finding in findings:
        events.append(FindingEvent(finding=finding, at=now, from_status=finding.status, to_status=to, reason=reason))
        finding.status, finding.status_changed_at = to, now
        moved.append(finding)
    Finding.objects.bulk_update(moved, ["status", "status_changed_at"], batch_size=500)
    FindingEvent.objects.bulk_create(events, batch_size=1000)
    if refresh_queue:
        from patchday.findings.queries import mark_for_refresh

        mark_for_refresh({f.package for f in moved})
    return len(moved)


def request_exception(
    actor: Actor, requester: str, scope: Scope, justification: str, expires_at: datetime
) -> RiskException:
    """Record a request; raises InvalidInput naming the field for a missing justification, a past or too
    distant expiry, or a scope that is not exactly one thing."""
    scope.check()
    justification = justification.strip()
    if len(justification) < MIN_JUSTIFICATION:
        raise InvalidInput(
            f"an exception needs a justification of at least {MIN_JUSTIFICATION} characters", field="justification"
        )
    now = timezone.now()
    if expires_at <= now:
        raise InvalidInput("an exception needs an expiry in the future", field="expires_at")
    if expires_at - now > MAX_DURATION:
        raise InvalidInput("an exception may last at most a year; request it again then", field="expires_at")
    with transaction.atomic():
        record = RiskException.objects.create(
            finding_id=scope.finding_id,
            vulnerability=scope.vulnerability.strip().upper() if scope.vulnerability else "",
            group=scope.group,
            ecosystem=scope.ecosystem,
            package=scope.package,
            justification=justification,
            expires_at=expires_at,
            requested_by=requester,
            requested_at=now,
        )
        audit.record(
            actor,
            "exception.request",
            "exception",
            record.pk,
            {"scope": describe(record), "justification": justification, "expires_at": expires_at.isoformat()},
        )
    return record


def describe(record: RiskException) -> str:
    if record.finding_id is not None:
        return f"finding {record.finding_id}"
    what = record.vulnerability or f"{record.ecosystem} package {record.package}"
    return f"{what} on {'group ' + record.group if record.group else 'every host'}"


def decide(actor: Actor, approver: str, exception_id: int, approve: bool, comment: str = "") -> RiskException:
    """Approve or reject a requested exception. The requester may not decide their own request."""
    now = timezone.now()
    with transaction.atomic():
        record = RiskException.objects.select_for_update().filter(pk=exception_id).first()
        if record is None:
            raise NotFound(f"no exception with id {exception_id}")
        if record.state != ExceptionState.REQUESTED:
            raise Conflict(f"exception {exception_id} is {record.state}, not awaiting a decision")
        if record.requested_by == approver:
            raise PermissionDenied("the requester of an exception cannot approve or reject it; another approver must")
        record.state = ExceptionState.APPROVED if approve else ExceptionState.REJECTED
        record.decided_by, record.decided_at, record.decision_comment = approver, now, comment.strip()
        record.save(update_fields=["state", "decided_by", "decided_at", "decision_comment"])
        accepted = 0
        if approve:
            rows = _in_scope(record).filter(status=FindingStatus.OPEN)
            accepted = _move(rows, FindingStatus.ACCEPTED, f"exception {record.pk} approved by {approver}", now)
        audit.record(
            actor,
            "exception.approve" if approve else "exception.reject",
            "exception",
            record.pk,
            {"comment": record.decision_comment, "findings_accepted": accepted},
        )
    return record


def _end(actor: Actor, record: RiskException, state: str, now: datetime) -> int:
    record.state = state
    record.save(update_fields=["state"])
    others = RiskException.objects.filter(state=ExceptionState.APPROVED, expires_at__gt=now).exclude(pk=record.pk)
    still_covered: set[int] = set()
    for other in others:
        still_covered.update(_in_scope(other).values_list("pk", flat=True))
    rows = _in_scope(record).filter(status=FindingStatus.ACCEPTED).exclude(pk__in=still_covered)
    reopened = _move(rows, FindingStatus.OPEN, f"exception {record.pk} {state}", now)
    audit.record(actor, f"exception.{'expire' if state == ExceptionState.EXPIRED else 'revoke'}", "exception",
                 record.pk, {"findings_reopened": reopened})  # fmt: skip
    return reopened


def revoke(actor: Actor, exception_id: int) -> RiskException:
    now = timezone.now()
    with transaction.atomic():
        record = RiskException.objects.select_for_update().filter(pk=exception_id).first()
        if record is None:
            raise NotFound(f"no exception with id {exception_id}")
        if record.state != ExceptionState.APPROVED:
            raise Conflict(f"exception {exception_id} is {record.state}; only an approved one can be revoked")
        _end(actor, record, ExceptionState.REVOKED, now)
    return record


def expire_due(actor: Actor, now: datetime | None = None) -> list[RiskException]:
    """End approved exceptions whose expiry has passed; their findings open again. Returns them (to notify)."""
    now = now or timezone.now()
    ended = []
    with transaction.atomic():
        for record in RiskException.objects.select_for_update().filter(
            state=ExceptionState.APPROVED, expires_at__lte=now
        ):
            _end(actor, record, ExceptionState.EXPIRED, now)
            ended.append(record)
    return ended


def apply_active(host_ids: Iterable[int], now: datetime | None = None, *, refresh_queue: bool = True) -> int:
    """Open findings of these hosts that an approved, unexpired exception covers become accepted."""
    now = now or timezone.now()
    ids = list(host_ids)
    accepted = 0
    for record in RiskException.objects.filter(state=ExceptionState.APPROVED, expires_at__gt=now):
        rows = _in_scope(record).filter(status=FindingStatus.OPEN, host_id__in=ids)
        accepted += _move(rows, FindingStatus.ACCEPTED, f"exception {record.pk} covers it", now, refresh_queue)
    return accepted


def exceptions(state: str = "") -> QuerySet[RiskException]:
    rows = RiskException.objects.select_related("finding", "finding__host")
    if state:
        if state not in ExceptionState.values:
            raise InvalidInput(f"state must be one of {', '.join(ExceptionState.values)}", field="state")
        rows = rows.filter(state=state)
    return rows
