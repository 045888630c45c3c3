"""Reading the findings ledger: filters, the "patch first" queue grouped by fixing update, one finding."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Case, Count, IntegerField, Max, Min, Q, QuerySet, Value, When
from django.utils import timezone

from patchday.core.errors import InvalidInput, NotFound
from patchday.findings.models import Confidence, Finding, FindingStatus

DECISIONS = ("Act", "Attend", "Track*", "Track")


@dataclass(frozen=True, slots=True)
class FindingFilter:
    host: str = ""
    vulnerability: str = ""
    package: str = ""
    status: str = FindingStatus.OPEN
    decision: str = ""
    confidence: str = ""
    kev: bool | None = None
    overdue: bool | None = None

    def check(self) -> FindingFilter:
        if self.status and self.status not in FindingStatus.values:
            raise InvalidInput(f"status must be one of {', '.join(FindingStatus.values)}", field="status")
        if self.decision and self.decision not in DECISIONS:
            raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}", field="decision")
        if self.confidence and self.confidence not in Confidence.values:
            raise InvalidInput(f"confidence must be one of {', '.join(Confidence.values)}", field="confidence")
        return self


def findings(f: FindingFilter | None = None, today: date | None = None) -> QuerySet[Finding]:
    """Findings by priority (highest first), then due date, then host and vulnerability."""
    f = (f or FindingFilter()).check()
    rows = Finding.objects.select_related("host")
    if f.host:
        rows = rows.filter(host__name=f.host)
    if f.vulnerability:
        rows = rows.filter(vulnerability=f.vulnerability.strip().upper())
    if f.package:
        rows = rows.filter(package=f.package)
    if f.status:
        rows = rows.filter(status=f.status)
    if f.decision:
        rows = rows.filter(priority_decision=f.decision)
    if f.confidence:
        rows = rows.filter(confidence=f.confidence)
    if f.kev is not None:
        from patchday.advisories.models import KevEntry

        in_kev = Q(vulnerability__in=KevEntry.objects.values("cve_id"))
        rows = rows.filter(in_kev if f.kev else ~in_kev)
    if f.overdue is not None:
        day = today or timezone.now().date()
        late = Q(due_date__lt=day)
        rows = rows.filter(late if f.overdue else ~late | Q(due_date=None))
    return rows.order_by("-priority_score", "due_date", "host__name", "vulnerability", "package")


def get_finding(finding_id: int) -> Finding:
    finding = Finding.objects.select_related("host").filter(pk=finding_id).first()
    if finding is None:
        raise NotFound(f"no finding with id {finding_id}")
    return finding


def patch_queue(host: str = "") -> QuerySet[Any, Any]:
    """Open findings with a fix, grouped by the update that fixes them, most urgent first (values rows with
    ecosystem, package, fixed_version, findings, hosts, vulnerabilities, top_score, top_rank, earliest_due).

    The whole fleet's queue is read from PatchAction, kept in step with the ledger; one host's is grouped live.
    """
    from patchday.findings.models import PatchAction

    order = ("-top_score", "earliest_due", "package", "fixed_version")
    if not host:
        actions: QuerySet[Any, Any] = PatchAction.objects.values(*_ACTION_COLUMNS).order_by(*order)
        return actions
    rows = Finding.objects.filter(status=FindingStatus.OPEN, host__name=host).exclude(fixed_version="")
    return (
        rows.values("ecosystem", "package", "fixed_version")
        .annotate(
            findings=Count("id"),
            hosts=Count("host", distinct=True),
            vulnerabilities=Count("vulnerability", distinct=True),
            top_score=Max("priority_score"),
            top_rank=Max(decision_rank()),
            earliest_due=Min("due_date"),
        )
        .order_by(*order)
    )


DECISION_RANKS = {"Track": 1, "Track*": 2, "Attend": 3, "Act": 4}


def decision_rank() -> Case:
    whens = [When(priority_decision=decision, then=Value(rank)) for decision, rank in DECISION_RANKS.items()]
    return Case(*whens, default=Value(0), output_field=IntegerField())


_ACTION_COLUMNS = ("ecosystem", "package", "fixed_version", "findings", "hosts", "vulnerabilities", "top_score",
                   "top_rank", "earliest_due")  # fmt: skip


def refresh_actions(packages: Iterable[str]) -> None:
    """Recompute the queue lines (PatchAction) of these package names from the ledger."""
    from patchday.findings.models import PatchAction
    from patchday.server.bulk import insert_rows

    names = sorted(set(packages))
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        rows = (
            Finding.objects.filter(status=FindingStatus.OPEN, package__in=chunk)
            .exclude(fixed_version="")
            .values("ecosystem", "package", "fixed_version")
            .annotate(
                n=Count("id"),
                n_hosts=Count("host", distinct=True),
                n_vulnerabilities=Count("vulnerability", distinct=True),
                top=Max("priority_score"),
                rank=Max(decision_rank()),
                due=Min("due_date"),
            )
        )
        values = [
            (r["ecosystem"], r["package"], r["fixed_version"], r["n"], r["n_hosts"], r["n_vulnerabilities"], r["top"],
             r["rank"] or 0, r["due"])
            for r in rows
        ]  # fmt: skip
        PatchAction.objects.filter(package__in=chunk).delete()
        insert_rows("findings_patchaction", _ACTION_COLUMNS, values)


def open_totals(host: str = "") -> dict[str, int]:
    """Open findings with a published fix and without one (the fleet's from PatchAction and an index)."""
    from django.db.models import Sum

    from patchday.findings.models import PatchAction

    open_rows = Finding.objects.filter(status=FindingStatus.OPEN)
    if host:
        open_rows = open_rows.filter(host__name=host)
        with_fix = open_rows.exclude(fixed_version="").count()
    else:
        with_fix = PatchAction.objects.aggregate(n=Sum("findings"))["n"] or 0
    return {"with_fix": with_fix, "without_fix": open_rows.filter(fixed_version="").count()}


def mark_for_refresh(packages: Iterable[str]) -> None:
    """Queue these packages' "patch first" lines for the `findings.queue` task (within a minute)."""
    from patchday.findings.models import QueueRefresh

    now = timezone.now()
    QueueRefresh.objects.bulk_create(
        [QueueRefresh(package=p, marked_at=now) for p in sorted(set(packages))], batch_size=1000, ignore_conflicts=True
    )


def refresh_marked(limit: int = 5000) -> int:
    """Recompute the lines of marked packages (the `findings.queue` task); returns how many packages."""
    from django.db import transaction

    from patchday.findings.models import QueueRefresh

    with transaction.atomic():
        marked = list(QueueRefresh.objects.order_by("marked_at").values_list("pk", "package")[:limit])
        refresh_actions(p for _, p in marked)
        QueueRefresh.objects.filter(pk__in=[pk for pk, _ in marked]).delete()
    return len(marked)
