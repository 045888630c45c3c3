"""Metrics of the fleet for a period: the one contract the dashboard, the API, Prometheus and evidence packs read.

Fleet-wide state (open findings, risk, overdue, KEV exposure, host coverage) and SLA compliance are counted in
SQL; durations (time to patch, time to detect), which need every value for medians and p90, stream the period's
rows as plain numbers and keys (reports.instants: epoch microseconds, no datetime per row) into
core.metrics.duration_report; failure causes go through core.metrics.failure_rate. core.metrics holds the
definitions, and tests/integration/test_metrics_sql.py checks the SQL paths give exactly what its pure
functions give (docs/metrics.md has the formulas).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from django.db.models import Case, CharField, Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from patchday.advisories.models import Advisory, KevEntry, Vulnerability
from patchday.core import metrics as core
from patchday.core.errors import InvalidInput, NotFound
from patchday.core.severity import Rating, rating_for_score
from patchday.findings.models import Finding, FindingStatus
from patchday.inventory.models import Host, HostGroup
from patchday.reports.instants import EpochMicroseconds, UtcDay, UtcMonth, days_between, epoch_microseconds
from patchday.rollouts.models import Job

UNITS: Final = frozenset({"days", "ratio", "count", "score"})
MAX_DAYS: Final = 3660  # the longest period or series one request may ask for (ten years)
SNAPSHOT_WINDOW: Final = 30  # a day's snapshot measures period metrics over the 30 days ending that day


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric's value with its breakdowns, and how many inputs it could not use and why.

    `value` is None when the period has no data; `detail["no_data"]` then says why in words.
    """

    name: str
    label: str
    value: float | None
    unit: str  # "days" | "ratio" | "count" | "score"
    detail: dict[str, Any]
    excluded: int = 0
    excluded_reasons: dict[str, int] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "detail": self.detail,
            "excluded": self.excluded,
            "excluded_reasons": dict(self.excluded_reasons),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Metric:
        return cls(
            name=data["name"],
            label=data["label"],
            value=data["value"],
            unit=data["unit"],
            detail=dict(data["detail"]),
            excluded=int(data.get("excluded", 0)),
            excluded_reasons=dict(data.get("excluded_reasons", {})),
        )


METRIC_NAMES: tuple[str, ...] = (
    "time_to_patch_fix",
    "time_to_patch_detect",
    "coverage_hosts",
    "coverage_updates",
    "failure_rate",
    "sla_compliance",
    "overdue",
    "due_soon",
    "kev_exposure",
    "risk_open",
    "mttd",
    "open_findings",
)

LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "time_to_patch_fix": ("Time to patch (from fix available)", "days"),
    "time_to_patch_detect": ("Time to patch (from detection)", "days"),
    "coverage_hosts": ("Hosts without urgent findings", "ratio"),
    "coverage_updates": ("Security updates installed", "ratio"),
    "failure_rate": ("Patch failure rate", "ratio"),
    "sla_compliance": ("SLA compliance", "ratio"),
    "overdue": ("Overdue findings", "count"),
    "due_soon": ("Findings due within 7 days", "count"),
    "kev_exposure": ("Hosts exposed to known exploited vulnerabilities", "count"),
    "risk_open": ("Open risk (sum of priority scores)", "score"),
    "mttd": ("Mean time to detect", "days"),
    "open_findings": ("Open findings", "count"),
}


def check_name(name: str) -> str:
    if name not in LABELS:
        raise InvalidInput(f"unknown metric {name!r}; known metrics: {', '.join(METRIC_NAMES)}", field="name")
    return name


def check_period(start: date, end: date) -> None:
    if start > end:
        raise InvalidInput(f"the period starts ({start}) after it ends ({end}); swap them", field="start")
    if (end - start).days >= MAX_DAYS:
        raise InvalidInput(f"the period is longer than {MAX_DAYS} days", field="start")


def _metric(name: str, value: float | None, detail: dict[str, Any], no_data: str = "", **excluded: Any) -> Metric:
    label, unit = LABELS[name]
    if value is None:
        detail = {"no_data": no_data or "no data in this period", **detail}
    return Metric(name, label, value, unit, detail, **excluded)


# -- scope and SQL definitions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """The hosts a summary covers (every host unless a group or environment narrows it) and its period."""

    period: core.Period
    hosts: QuerySet[Host]
    filtered: bool
    live: bool  # as_of is now: "open" is the status column, no history rebuild needed

    @property
    def findings(self) -> QuerySet[Finding]:
        rows = Finding.objects.all()
        return rows.filter(host__in=self.hosts.values("pk")) if self.filtered else rows

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.period.start, time.min, UTC)

    def open_q(self) -> Q:
        """Findings open at as_of: the SQL twin of core.metrics.FindingFacts.is_open_at."""
        if self.live:
            return Q(status=FindingStatus.OPEN)
        at = self.period.as_of
        closed_later = (
            Q(status=FindingStatus.FIXED, fixed_at__isnull=True)
            | Q(status=FindingStatus.FIXED, fixed_at__gt=at)
            | Q(status__in=[FindingStatus.ACCEPTED, FindingStatus.NOT_AFFECTED], status_changed_at__gt=at)
        )
        return Q(first_detected_at__lte=at) & (Q(status=FindingStatus.OPEN) | closed_later)

    def fixed_in_period_q(self) -> Q:
        return Q(status=FindingStatus.FIXED, fixed_at__gte=self.start_at, fixed_at__lte=self.period.as_of)


def _scope(start: date, end: date, group: str, environment: str, now: datetime) -> Scope:
    from patchday.inventory.queries import group_members

    check_period(start, end)
    hosts = Host.objects.all()
    if environment:
        hosts = hosts.filter(environment=environment)
    if group:
        try:
            hosts = hosts.filter(pk__in=group_members(group, now).values("pk"))
        except NotFound as exc:
            raise InvalidInput(str(exc), field="group") from exc
    period = core.Period.of(start, end, now)
    hosts = hosts.filter(created_at__lte=period.as_of)  # a host enrolled later was not part of the fleet then
    return Scope(period, hosts, bool(group or environment), period.as_of >= now)


def _kev_cves() -> QuerySet[KevEntry, Any]:
    return KevEntry.objects.values("cve_id")


def _groups_by_host() -> dict[int, tuple[str, ...]]:
    from patchday.inventory.queries import group_members

    groups: dict[int, list[str]] = defaultdict(list)
    for group in HostGroup.objects.order_by("name"):
        try:
            members = group_members(group.name).values_list("pk", flat=True)
        except InvalidInput:
            continue  # a dynamic group whose saved rule no longer parses has no members
        for host_id in members:
            groups[host_id].append(group.name)
    return {host_id: tuple(names) for host_id, names in groups.items()}


_FACT_COLUMNS: Final = (
    "pk", "host_id", "host__name", "host__created_at", "status", "vulnerability", "package", "first_detected_at",
    "fix_available_since", "fixed_at", "fix_verified", "fixed_by_rollout", "priority_score", "priority_decision",
    "due_date", "sla_policy_version", "status_changed_at",
)  # fmt: skip


def _chunks(items: list[str], size: int = 900) -> Iterable[list[str]]:
    """Slices small enough for SQLite's bound-parameter limit."""
    for index in range(0, len(items), size):
        yield items[index : index + size]


@dataclass(frozen=True, slots=True)
class _VulnerabilityFacts:
    cvss: dict[str, float]
    kev_added: dict[str, date]
    published: dict[str, datetime]


def _vulnerability_facts(names: set[str], *, publication: bool) -> _VulnerabilityFacts:
    """CVSS, KEV date and (with `publication`) earliest publication of each vulnerability: a few queries per
    900 distinct names rather than correlated subqueries per finding row."""
    from patchday.advisories.models import AdvisoryCve

    cvss: dict[str, float] = {}
    kev: dict[str, date] = {}
    published: dict[str, datetime] = {}

    def earliest(name: str, at: datetime | None) -> None:
        if at is not None and (name not in published or at < published[name]):
            published[name] = at

    for chunk in _chunks(sorted(names)):
        for cve, score, at in Vulnerability.objects.filter(cve_id__in=chunk).values_list(
            "cve_id", "cvss_score", "published"
        ):
            if score is not None:
                cvss[cve] = score
            if publication:
                earliest(cve, at)
        kev.update(KevEntry.objects.filter(cve_id__in=chunk).values_list("cve_id", "date_added"))
        if publication:
            advisory_cves = AdvisoryCve.objects.filter(cve_id__in=chunk, advisory__published__isnull=False)
            for cve, at in advisory_cves.values_list("cve_id").annotate(first=Min("advisory__published")).order_by():
                earliest(cve, at)
            for advisory_id, at in Advisory.objects.filter(advisory_id__in=chunk).values_list(
                "advisory_id", "published"
            ):
                earliest(advisory_id, at)
    return _VulnerabilityFacts(cvss, kev, published)


def finding_facts(rows: QuerySet[Finding], *, publication: bool = False) -> list[core.FindingFacts]:
    """The core facts of `rows` with CVSS and KEV (and, with `publication`, the earliest publication date)."""
    found = list(rows.values(*_FACT_COLUMNS).iterator(chunk_size=5000))
    vulnerabilities = _vulnerability_facts({row["vulnerability"] for row in found}, publication=publication)
    groups = _groups_by_host()
    return [
        core.FindingFacts(
            id=row["pk"],
            host=row["host__name"],
            status=row["status"],
            first_detected_at=row["first_detected_at"],
            vulnerability=row["vulnerability"],
            package=row["package"],
            fix_available_since=row["fix_available_since"],
            fixed_at=row["fixed_at"],
            fix_verified=row["fix_verified"],
            fixed_by_rollout=row["fixed_by_rollout"],
            priority_score=row["priority_score"],
            priority_decision=row["priority_decision"],
            due_date=row["due_date"],
            sla_policy_version=row["sla_policy_version"],
            cvss_score=vulnerabilities.cvss.get(row["vulnerability"]),
            kev_date_added=vulnerabilities.kev_added.get(row["vulnerability"]),
            published_at=vulnerabilities.published.get(row["vulnerability"]),
            host_enrolled_at=row["host__created_at"],
            status_changed_at=row["status_changed_at"],
            groups=groups.get(row["host_id"], ()),
        )
        for row in found
    ]


def job_facts(rows: QuerySet[Job]) -> list[core.JobFacts]:
    facts: list[core.JobFacts] = []
    for row in rows.values("pk", "rollout_id", "ring__name", "host__name", "state", "finished_at", "spec", "error"):
        targets = row["spec"].get("targets", []) if isinstance(row["spec"], dict) else []
        packages = tuple(str(target.get("name", "")) for target in targets if isinstance(target, dict))
        facts.append(
            core.JobFacts(
                id=row["pk"],
                rollout=row["rollout_id"],
                ring=row["ring__name"],
                host=row["host__name"],
                state=row["state"],
                finished_at=row["finished_at"],
                packages=packages,
                error=row["error"] or "",
            )
        )
    return facts


# -- the metrics -----------------------------------------------------------------------------------------------


def _stats_detail(report: core.DurationReport) -> dict[str, Any]:
    def table(stats: Mapping[str, core.Stats]) -> dict[str, Any]:
        return {key: value.to_data() for key, value in stats.items()}

    return {
        **report.overall.to_data(),
        "by_priority": table(report.by_priority),
        "by_severity": table(report.by_severity),
        "by_group": table(report.by_group),
        "by_month": table(report.by_month),
    }


def _duration_metric(name: str, report: core.DurationReport, value: float | None, no_data: str) -> Metric:
    return _metric(
        name,
        value,
        _stats_detail(report),
        no_data,
        excluded=report.excluded,
        excluded_reasons=report.excluded_reasons,
    )


def _shares(shares: Mapping[str, core.Share]) -> dict[str, Any]:
    return {key: share.to_data() for key, share in shares.items()}


CHUNK: Final = 5000  # rows per fetch when a measure streams a period's findings
UNRATED: Final = Rating.UNKNOWN.value


def _cvss() -> Subquery:
    """The CVSS score of a finding's vulnerability (core.FindingFacts.cvss_score), looked up row by row."""
    return Subquery(Vulnerability.objects.filter(cve_id=OuterRef("vulnerability")).values("cvss_score")[:1])


def _severity(score: float | None) -> str:
    """core.FindingFacts.severity of a CVSS score."""
    return rating_for_score(score).value if score is not None else UNRATED


def _time_to_patch(scope: Scope) -> list[Metric]:
    """core.metrics.time_to_patch over the period's fixed findings, streamed as numbers and keys (the SQL
    prefilter keeps exactly the findings the core function would look at)."""
    rows = scope.findings.filter(scope.fixed_in_period_q()).values_list(
        "fix_verified", EpochMicroseconds("fixed_at"), EpochMicroseconds("first_detected_at"),
        EpochMicroseconds("fix_available_since"), UtcMonth("fixed_at"), "priority_decision", _cvss(), "host_id",
    )  # fmt: skip
    groups = _groups_by_host()
    from_fix: list[core.DurationSample] = []
    from_detect: list[core.DurationSample] = []
    unverified = no_fix_date = 0
    for verified, fixed, detected, fix_since, month, decision, cvss, host_id in rows.iterator(chunk_size=CHUNK):
        if not verified:
            unverified += 1
            continue
        keys = (month, decision or core.UNKNOWN, _severity(cvss), groups.get(host_id, ()))
        from_detect.append((max(0.0, days_between(fixed, detected)), *keys))
        if fix_since is None:
            no_fix_date += 1
        else:
            from_fix.append((max(0.0, days_between(fixed, fix_since)), *keys))
    fix = core.duration_report(from_fix, {"fix_not_verified": unverified, "no_fix_available_since": no_fix_date})
    detect = core.duration_report(from_detect, {"fix_not_verified": unverified})
    return [
        _duration_metric("time_to_patch_fix", fix, fix.overall.median, "no verified fix with a known fix date"),
        _duration_metric("time_to_patch_detect", detect, detect.overall.median, "no verified fix"),
    ]


def _mttd(scope: Scope) -> Metric:
    """core.metrics.time_to_detect over the findings first detected in the period, streamed as numbers and keys."""
    rows = scope.findings.filter(first_detected_at__gte=scope.start_at, first_detected_at__lte=scope.period.as_of)
    names = set(rows.values_list("vulnerability", flat=True).distinct().order_by())
    facts = _vulnerability_facts(names, publication=True)
    severity = {cve: _severity(score) for cve, score in facts.cvss.items()}
    published = {cve: epoch_microseconds(at) for cve, at in facts.published.items()}
    enrolled = {pk: epoch_microseconds(at) for pk, at in Host.objects.values_list("pk", "created_at")}
    groups = _groups_by_host()
    samples: list[core.DurationSample] = []
    reasons = {"no_publication_date": 0, "detected_before_publication": 0}
    detected_rows = rows.values_list(
        EpochMicroseconds("first_detected_at"), UtcMonth("first_detected_at"), "vulnerability", "host_id",
        "priority_decision",
    )  # fmt: skip
    for detected, month, vulnerability, host_id, decision in detected_rows.iterator(chunk_size=CHUNK):
        first = published.get(vulnerability)
        if first is None:
            reasons["no_publication_date"] += 1
            continue
        if detected < first:
            reasons["detected_before_publication"] += 1
            continue
        start = max(first, enrolled.get(host_id, first))
        samples.append((days_between(detected, start), month, decision or core.UNKNOWN,
                        severity.get(vulnerability, UNRATED), groups.get(host_id, ())))  # fmt: skip
    report = core.duration_report(samples, reasons)
    return _duration_metric("mttd", report, report.overall.mean, "no finding with a publication date was detected")


def _sla_outcomes(scope: Scope) -> QuerySet[Finding, tuple[int | None, str, str, int]]:
    """(policy version, decision, outcome, findings) of the findings due or fixed in the period, counted in SQL.

    Outcome follows core.metrics.sla_compliance case by case: "no_due_date", "accepted", "not_affected",
    "compliant" (fixed and closed at as-of, on or before the due day), "breached" (fixed after it, or still
    open past it) and "not_due_yet". Reopened findings (open with a fixed_at) and fixes after as-of count
    as open, as FindingFacts.is_open_at has them.
    """
    at = scope.period.as_of
    today = at.astimezone(UTC).date()
    due_in_period = Q(due_date__gte=scope.period.start, due_date__lte=scope.period.end)
    rows = scope.findings.filter(first_detected_at__lte=at).filter(scope.fixed_in_period_q() | due_in_period)
    closed = Q(status=FindingStatus.FIXED, fixed_at__isnull=False, fixed_at__lte=at)
    outcome = Case(
        When(due_date__isnull=True, then=Value("no_due_date")),
        When(status__in=[FindingStatus.ACCEPTED, FindingStatus.NOT_AFFECTED], then=F("status")),
        When(closed & Q(fixed_day__lte=F("due_date")), then=Value("compliant")),
        When(closed, then=Value("breached")),
        When(due_date__lt=today, then=Value("breached")),
        default=Value("not_due_yet"),
        output_field=CharField(),
    )
    return (
        rows.annotate(fixed_day=UtcDay("fixed_at"), outcome=outcome)
        .values_list("sla_policy_version", "priority_decision", "outcome")
        .annotate(n=Count("id"))
        .order_by()
    )


def _sla(scope: Scope) -> Metric:
    end_day = scope.period.as_of.astimezone(UTC).date()
    totals = [0, 0]
    by_version: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_priority: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    reasons: dict[str, int] = defaultdict(int)
    for version, decision, outcome, n in _sla_outcomes(scope):
        if outcome not in ("compliant", "breached"):
            reasons[outcome] += n
            continue
        key = str(version) if version is not None else core.UNKNOWN
        for bucket in (totals, by_version[key], by_priority[decision or core.UNKNOWN]):
            bucket[0] += n if outcome == "compliant" else 0
            bucket[1] += n
    overall = core.Share(*totals)
    detail = {
        **overall.to_data(),
        "compliant": overall.part,
        "breached": overall.whole - overall.part,
        "by_policy_version": {key: core.Share(*value).to_data() for key, value in sorted(by_version.items())},
        "by_priority": {key: core.Share(*value).to_data() for key, value in sorted(by_priority.items())},
        "as_of": end_day.isoformat(),
    }
    return _metric(
        "sla_compliance",
        overall.ratio,
        detail,
        "no finding was due or fixed in this period",
        excluded=sum(reasons.values()),
        excluded_reasons=dict(sorted(reasons.items())),
    )


def _failure_rate(scope: Scope) -> Metric:
    jobs = Job.objects.filter(finished_at__gte=scope.start_at, finished_at__lte=scope.period.as_of)
    if scope.filtered:
        jobs = jobs.filter(host__in=scope.hosts.values("pk"))
    report = core.failure_rate(job_facts(jobs.select_related(None)), scope.period)
    detail = {
        **report.overall.to_data(),
        "attempted": report.overall.whole,
        "failed": report.overall.part,
        "by_package": _shares(report.by_package),
        "by_ring": _shares(report.by_ring),
        "by_rollout": _shares(report.by_rollout),
        "top_causes": [
            {"signature": cause.signature, "count": cause.count, "example": cause.example}
            for cause in report.top_causes
        ],
    }
    return _metric(
        "failure_rate",
        report.overall.ratio,
        detail,
        "no host job finished in this period",
        excluded=report.excluded,
        excluded_reasons=report.excluded_reasons,
    )


def _by_priority(rows: QuerySet[Finding]) -> dict[str, int]:
    counts = dict.fromkeys(core.DECISIONS, 0)
    for decision, n in rows.values_list("priority_decision").annotate(n=Count("id")).order_by():
        counts[decision if decision in counts else ""] += n
    return counts


def _state(scope: Scope) -> list[Metric]:
    """open_findings, risk_open, overdue, due_soon: findings open at as_of, counted in one grouped query."""
    known = scope.findings.filter(first_detected_at__lte=scope.period.as_of).exists()
    today = scope.period.as_of.astimezone(UTC).date()
    soon = Q(due_date__gte=today, due_date__lte=today + timedelta(days=core.DUE_SOON_DAYS))
    grouped = (
        scope.findings.filter(scope.open_q())
        .values_list("priority_decision")
        .annotate(
            n=Count("id"),
            risk=Coalesce(Sum("priority_score"), 0),
            unscored=Count("id", filter=Q(priority_score=None)),
            overdue=Count("id", filter=Q(due_date__lt=today)),
            soon=Count("id", filter=soon),
        )
        .order_by()
    )
    counts = {key: dict.fromkeys(core.DECISIONS, 0) for key in ("n", "overdue", "soon")}
    risk = unscored = 0
    for decision, n, score, no_score, overdue, due_soon in grouped:
        key = decision if decision in core.DECISION_RANK else ""
        counts["n"][key] += n
        counts["overdue"][key] += overdue
        counts["soon"][key] += due_soon
        risk, unscored = risk + score, unscored + no_score
    total = sum(counts["n"].values())
    no_data = "no finding was known at the end of this period"
    return [
        _metric("open_findings", total if known else None, {"by_priority": counts["n"]}, no_data),
        _metric(
            "risk_open",
            risk if known else None,
            {"findings": total, "by_priority": counts["n"]},
            no_data,
            excluded=unscored,
            excluded_reasons={"no_priority_score": unscored} if unscored else {},
        ),
        _metric(
            "overdue",
            sum(counts["overdue"].values()) if known else None,
            {"by_priority": counts["overdue"], "as_of": today.isoformat()},
            no_data,
        ),
        _metric(
            "due_soon",
            sum(counts["soon"].values()) if known else None,
            {"by_priority": counts["soon"], "within_days": core.DUE_SOON_DAYS, "as_of": today.isoformat()},
            no_data,
        ),
    ]


def _kev(scope: Scope) -> Metric:
    today = scope.period.as_of.astimezone(UTC).date()
    hosts_total = scope.hosts.count()
    rows = scope.findings.filter(scope.open_q(), vulnerability__in=_kev_cves())
    exposed = rows.values("host_id").distinct().count()
    added = dict(KevEntry.objects.filter(cve_id__in=rows.values("vulnerability")).values_list("cve_id", "date_added"))
    entries = [
        {
            "vulnerability": cve,
            "date_added": added[cve].isoformat(),
            "days_since": (today - added[cve]).days,
            "hosts": hosts,
        }
        for cve, hosts in rows.values_list("vulnerability").annotate(hosts=Count("host_id", distinct=True)).order_by()
    ]
    entries.sort(key=lambda entry: (entry["date_added"], entry["vulnerability"]))
    detail = {
        "hosts_total": hosts_total,
        "share": exposed / hosts_total if hosts_total else None,
        "oldest_days": max((entry["days_since"] for entry in entries), default=None),
        "entries": entries,
    }
    return _metric("kev_exposure", exposed if hosts_total else None, detail, "no hosts in scope")


def _coverage_hosts(scope: Scope, threshold: str = core.DEFAULT_THRESHOLD) -> Metric:
    urgent = [decision for decision, rank in core.DECISION_RANK.items() if rank >= core.DECISION_RANK[threshold]]
    open_rows = scope.findings.filter(scope.open_q())
    environments = dict(scope.hosts.values_list("pk", "environment"))
    uncovered = set(open_rows.filter(priority_decision__in=urgent).values_list("host_id", flat=True).distinct())
    uncovered &= environments.keys()
    by_environment: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for host_id, environment in environments.items():
        bucket = by_environment[environment or core.UNKNOWN]
        bucket[0] += host_id not in uncovered
        bucket[1] += 1
    members: dict[str, set[int]] = defaultdict(set)
    for host_id, names in _groups_by_host().items():
        for name in names:
            members[name].add(host_id)
    by_group = {
        name: core.Share(len((ids & environments.keys()) - uncovered), len(ids & environments.keys())).to_data()
        for name, ids in sorted(members.items())
    }
    undecided = open_rows.filter(priority_decision="").count()
    total = len(environments)
    detail = {
        "hosts": total,
        "covered": total - len(uncovered),
        "threshold": threshold,
        "by_environment": {name: core.Share(*counts).to_data() for name, counts in sorted(by_environment.items())},
        "by_group": by_group,
    }
    return _metric(
        "coverage_hosts",
        (total - len(uncovered)) / total if total else None,
        detail,
        "no hosts in scope",
        excluded=undecided,
        excluded_reasons={"no_priority_decision": undecided} if undecided else {},
    )


def _coverage_updates(scope: Scope) -> Metric:
    offered = scope.findings.filter(fix_available_since__isnull=False, fix_available_since__lte=scope.period.as_of)
    pending_q, installed_q = scope.open_q(), scope.fixed_in_period_q()
    # |pending or installed| - |pending|: pairs installed in the period with nothing of theirs still pending
    n_pending = offered.filter(pending_q).values("host_id", "package").distinct().count()
    n_applicable = offered.filter(pending_q | installed_q).values("host_id", "package").distinct().count()
    n_installed = n_applicable - n_pending
    unknown = scope.findings.filter(installed_q, fix_available_since__isnull=True).count()
    share = core.Share(n_installed, n_applicable)
    return _metric(
        "coverage_updates",
        share.ratio,
        {**share.to_data(), "installed": n_installed, "pending": n_pending, "applicable": share.whole},
        "no security update was offered to a host in this period",
        excluded=unknown,
        excluded_reasons={"no_fix_available_since": unknown} if unknown else {},
    )


def summary(start: date, end: date, *, group: str = "", environment: str = "") -> dict[str, Metric]:
    """Every metric of METRIC_NAMES for the period [start, end] (whole UTC days), narrowed to a host group or
    environment when given. State metrics are as of the end of `end` (or now, when that is later).

    Raises InvalidInput for a period that ends before it starts, is longer than MAX_DAYS, or names an
    unknown group.
    """
    scope = _scope(start, end, group, environment, timezone.now())
    metrics: list[Metric] = [
        *_time_to_patch(scope),
        _coverage_hosts(scope),
        _coverage_updates(scope),
        _failure_rate(scope),
        _sla(scope),
        *_state(scope),
        _kev(scope),
        _mttd(scope),
    ]
    by_name = {metric.name: metric for metric in metrics}
    return {name: by_name[name] for name in METRIC_NAMES}


# -- history and the dashboard's lists -------------------------------------------------------------------------


def series(name: str, start: date, end: date) -> list[tuple[date, float | None]]:
    """One point per day of [start, end]: the metric's fleet-wide snapshot value, None on days without one."""
    from patchday.reports.models import MetricSnapshot

    check_name(name)
    check_period(start, end)
    values = dict(
        MetricSnapshot.objects.filter(name=name, scope="", day__gte=start, day__lte=end).values_list("day", "value")
    )
    return [(day, values.get(day)) for day in _days(start, end)]


def _days(start: date, end: date) -> Iterable[date]:
    return (start + timedelta(days=offset) for offset in range((end - start).days + 1))


def take_snapshot(day: date) -> int:
    """(Re)write the fleet-wide snapshot rows of `day`; returns how many rows were written (see reports.snapshots)."""
    from patchday.reports.snapshots import take_snapshot as take

    return take(day)


def top_risky_hosts(limit: int = 10) -> list[dict[str, Any]]:
    """Hosts by the sum of their open findings' priority scores: {"host", "risk", "open", "kev"}."""
    open_rows = Finding.objects.filter(status=FindingStatus.OPEN)
    top = list(
        open_rows.values("host_id")
        .annotate(risk=Coalesce(Sum("priority_score"), 0), open=Count("id"))
        .order_by("-risk", "-open", "host_id")[: max(0, limit)]
    )
    ids = [row["host_id"] for row in top]
    # KEV counts for the shown hosts only: checking every open finding against KEV doubled the query's cost
    kev = dict(
        open_rows.filter(host_id__in=ids, vulnerability__in=_kev_cves())
        .values_list("host_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    names = dict(Host.objects.filter(pk__in=ids).values_list("pk", "name"))
    return [
        {"host": names[row["host_id"]], "risk": row["risk"], "open": row["open"], "kev": kev.get(row["host_id"], 0)}
        for row in top
    ]


def top_vulnerabilities(limit: int = 10) -> list[dict[str, Any]]:
    """Vulnerabilities by their highest open priority score, then hosts: {"vulnerability", "hosts", "max_score",
    "kev"}."""
    if limit <= 0:
        return []
    open_rows = Finding.objects.filter(status=FindingStatus.OPEN)
    ranked = (
        open_rows.values("vulnerability")
        .annotate(hosts=Count("host_id", distinct=True), max_score=Max("priority_score"))
        .order_by(F("max_score").desc(nulls_last=True), "-hosts", "vulnerability")
    )
    threshold = _score_threshold(open_rows, limit)
    if threshold is not None:  # rank only those that can make the list: grouping every open finding took 2.5 s
        ranked = ranked.filter(
            vulnerability__in=open_rows.filter(priority_score__gte=threshold).values("vulnerability")
        )
    rows = list(ranked[:limit])
    kev = set(
        KevEntry.objects.filter(cve_id__in=[row["vulnerability"] for row in rows]).values_list("cve_id", flat=True)
    )
    return [
        {
            "vulnerability": row["vulnerability"],
            "hosts": row["hosts"],
            "max_score": row["max_score"],
            "kev": row["vulnerability"] in kev,
        }
        for row in rows
    ]


def _score_threshold(open_rows: QuerySet[Finding], limit: int) -> int | None:
    """The `limit`-th highest of the vulnerabilities' highest open scores, read from the top of the score
    index (a vulnerability's first row in descending score order carries its highest score); None when
    fewer than `limit` vulnerabilities have a scored open finding."""
    scored = open_rows.filter(priority_score__isnull=False).order_by("-priority_score", "pk")
    size = limit * 10
    while True:
        rows = list(scored.values_list("priority_score", "vulnerability")[:size])
        seen: set[str] = set()
        for score, vulnerability in rows:
            seen.add(vulnerability)
            if len(seen) == limit:
                return score
        if len(rows) < size:
            return None
        size *= 4


def burndown(start: date, end: date) -> list[dict[str, Any]]:
    """Per day of [start, end]: {"date", "risk", "fixed_by_rollout": {rollout_id: score}}.

    `risk` is the day's risk_open snapshot (today's is computed live when not taken yet; None on other days
    without a snapshot); `fixed_by_rollout` sums the priority scores of the findings each rollout fixed that day.
    """
    check_period(start, end)
    risk = dict(series("risk_open", start, end))
    today = timezone.now().astimezone(UTC).date()
    if start <= today <= end and risk.get(today) is None:
        risk[today] = float(
            Finding.objects.filter(status=FindingStatus.OPEN).aggregate(risk=Coalesce(Sum("priority_score"), 0))["risk"]
        )
    fixed: dict[date, dict[int, int]] = defaultdict(dict)
    rows = (
        Finding.objects.filter(
            status=FindingStatus.FIXED,
            fixed_by_rollout__isnull=False,
            fixed_at__gte=datetime.combine(start, time.min, UTC),
            fixed_at__lte=core.end_of_day(end),
        )
        .annotate(day=UtcDay("fixed_at"))
        .values_list("day", "fixed_by_rollout")
        .annotate(score=Coalesce(Sum("priority_score"), 0))
        .order_by("day", "fixed_by_rollout")
    )
    for day, rollout, score in rows:
        fixed[day][rollout] = score
    return [{"date": day, "risk": risk.get(day), "fixed_by_rollout": fixed.get(day, {})} for day in _days(start, end)]


def open_by_priority() -> dict[str, int]:
    """Open findings by SSVC decision now: {"Act", "Attend", "Track*", "Track", ""} ("" = not prioritised yet)."""
    return _by_priority(Finding.objects.filter(status=FindingStatus.OPEN))
