"""Patch metrics over plain facts: time to patch and detect, coverage, failure rate, SLA, KEV exposure, risk.

Every function takes frozen facts and an explicit period or instant (no clock reads) and returns its values
with `excluded` and `excluded_reasons`: the inputs it could not use and why, so a report can say so.
Definitions and formulas are in docs/metrics.md; the Django side (patchday.reports.metrics) feeds these
functions, or counts the same definitions in SQL where a whole fleet's rows would otherwise pass through Python.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from patchday.core.errors import InvalidInput
from patchday.core.severity import Rating, rating_for_score

DAY: Final = timedelta(days=1)
DUE_SOON_DAYS: Final = 7
DEFAULT_THRESHOLD: Final = "Attend"
# SSVC decisions by urgency (as core.risk.Decision.rank); "" is a finding not prioritised yet.
DECISION_RANK: Final[Mapping[str, int]] = {"": 0, "Track": 1, "Track*": 2, "Attend": 3, "Act": 4}
DECISIONS: Final = ("Act", "Attend", "Track*", "Track", "")
UNKNOWN: Final = "unknown"

OPEN, FIXED, ACCEPTED, NOT_AFFECTED = "open", "fixed", "accepted", "not_affected"

JOB_SUCCEEDED: Final = frozenset({"verified"})
JOB_FAILED: Final = frozenset({"failed", "unknown"})
JOB_ROLLED_BACK: Final = frozenset({"rolled_back", "rollback_failed", "rollback_queued", "rollback_leased"})


# -- inputs --------------------------------------------------------------------------------------------------


def end_of_day(day: date) -> datetime:
    """The last instant of `day` in UTC (periods are whole UTC days, both ends included)."""
    return datetime.combine(day + DAY, time.min, UTC) - timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days [start, end], seen at `as_of` (the end of `end`, or earlier when `end` is today)."""

    start: date
    end: date
    as_of: datetime

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise InvalidInput(f"the period starts ({self.start}) after it ends ({self.end})", field="start")
        if self.as_of.tzinfo is None:
            raise InvalidInput("as_of must be an aware UTC datetime", field="as_of")

    @classmethod
    def of(cls, start: date, end: date, now: datetime) -> Period:
        """The period [start, end] as known at `now`: as of the end of `end`, or `now` if that is earlier."""
        return cls(start, end, min(end_of_day(end), now))

    def contains(self, at: datetime | date | None) -> bool:
        if at is None:
            return False
        day = at.astimezone(UTC).date() if isinstance(at, datetime) else at
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class FindingFacts:
    """What the metrics need of one finding (see findings.models.Finding), with its vulnerability's facts.

    `published_at` is the earliest publication of an advisory or CVE record naming the vulnerability;
    `groups` the host groups of its host; `status_changed_at` dates the move to accepted or not_affected.
    """

    id: int
    host: str
    status: str
    first_detected_at: datetime
    vulnerability: str = ""
    package: str = ""
    fix_available_since: datetime | None = None
    fixed_at: datetime | None = None
    fix_verified: bool = False
    fixed_by_rollout: int | None = None
    priority_score: int | None = None
    priority_decision: str = ""
    due_date: date | None = None
    sla_policy_version: int | None = None
    cvss_score: float | None = None
    kev_date_added: date | None = None
    published_at: datetime | None = None
    host_enrolled_at: datetime | None = None
    status_changed_at: datetime | None = None
    groups: tuple[str, ...] = ()

    def is_open_at(self, at: datetime) -> bool:
        """Open at instant `at`, rebuilt from the ledger row: detected by then and not yet closed.

        A finding closed and reopened counts as open since its first detection (its earlier closure
        lives only in FindingEvent).
        """
        if self.first_detected_at > at:
            return False
        if self.status == OPEN:
            return True
        if self.status == FIXED:
            return self.fixed_at is None or self.fixed_at > at
        return self.status_changed_at is not None and self.status_changed_at > at

    @property
    def severity(self) -> str:
        return rating_for_score(self.cvss_score).value if self.cvss_score is not None else Rating.UNKNOWN.value


@dataclass(frozen=True, slots=True)
class HostFacts:
    name: str
    environment: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobFacts:
    """One host job of a rollout: its state, when it ended, what it targeted, and its error output."""

    id: int
    rollout: int
    ring: str
    host: str
    state: str
    finished_at: datetime | None
    packages: tuple[str, ...] = ()
    error: str = ""


# -- results -------------------------------------------------------------------------------------------------


class _Tally:
    """Counts excluded inputs by reason."""

    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()

    def skip(self, reason: str) -> None:
        self.reasons[reason] += 1

    @property
    def excluded(self) -> int:
        return sum(self.reasons.values())

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.reasons.items()))


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of durations in days: count, median, p90 (nearest rank), mean, min and max; None when empty."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None
    minimum: float | None
    maximum: float | None

    def to_data(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "median": self.median,
            "p90": self.p90,
            "mean": self.mean,
            "min": self.minimum,
            "max": self.maximum,
        }


def describe(values: Iterable[float]) -> Stats:
    """Stats of `values`. p90 is the nearest-rank percentile: the ceil(0.9 n)-th smallest value."""
    ordered = sorted(values)
    if not ordered:
        return Stats(0, None, None, None, None, None)
    rank = math.ceil(0.9 * len(ordered))
    return Stats(
        count=len(ordered),
        median=statistics.median(ordered),
        p90=ordered[rank - 1],
        mean=statistics.fmean(ordered),
        minimum=ordered[0],
        maximum=ordered[-1],
    )


@dataclass(frozen=True, slots=True)
class DurationReport:
    """Durations in days, overall and by priority decision, severity, host group and month (YYYY-MM)."""

    overall: Stats
    by_priority: dict[str, Stats]
    by_severity: dict[str, Stats]
    by_group: dict[str, Stats]
    by_month: dict[str, Stats]
    excluded: int = 0
    excluded_reasons: dict[str, int] = field(default_factory=dict)


def _days(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 86400


# One duration of a DurationReport: (days, month "YYYY-MM", priority decision or "unknown", severity, host groups).
# A plain tuple rather than a dataclass: the Django side builds one per fixed or detected finding of a period.
DurationSample = tuple[float, str, str, str, tuple[str, ...]]


def month_of(at: datetime) -> str:
    """The UTC month of `at` as "YYYY-MM": the by_month key of duration breakdowns."""
    return at.astimezone(UTC).strftime("%Y-%m")


def duration_report(samples: Iterable[DurationSample], excluded_reasons: Mapping[str, int]) -> DurationReport:
    """Durations overall and broken down by priority, severity, group and month, with the inputs left out."""
    overall: list[float] = []
    by: dict[str, dict[str, list[float]]] = {
        kind: defaultdict(list) for kind in ("priority", "severity", "group", "month")
    }
    for days, month, priority, severity, groups in samples:
        overall.append(days)
        by["priority"][priority].append(days)
        by["severity"][severity].append(days)
        by["month"][month].append(days)
        for group in groups:
            by["group"][group].append(days)
    reasons = {reason: count for reason, count in sorted(excluded_reasons.items()) if count}
    return DurationReport(
        overall=describe(overall),
        by_priority={key: describe(values) for key, values in sorted(by["priority"].items())},
        by_severity={key: describe(values) for key, values in sorted(by["severity"].items())},
        by_group={key: describe(values) for key, values in sorted(by["group"].items())},
        by_month={key: describe(values) for key, values in sorted(by["month"].items())},
        excluded=sum(reasons.values()),
        excluded_reasons=reasons,
    )


def _duration_report(samples: Sequence[tuple[FindingFacts, float, datetime]], tally: _Tally) -> DurationReport:
    """Breakdowns of (finding, days, month-defining instant) samples."""
    return duration_report(
        (
            (days, month_of(at), finding.priority_decision or UNKNOWN, finding.severity, finding.groups)
            for finding, days, at in samples
        ),
        tally.as_dict(),
    )


# -- time to patch and time to detect --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeToPatch:
    from_fix: DurationReport  # fix available to this host -> verified fix
    from_detection: DurationReport  # first detection -> verified fix


def time_to_patch(findings: Iterable[FindingFacts], period: Period) -> TimeToPatch:
    """Days to a verified fix, for findings whose fix was verified within the period.

    A fixed finding without verification (it vanished from the inventory, e.g. the package was removed)
    is excluded as "fix_not_verified"; one without `fix_available_since` is excluded from the from-fix
    measure as "no_fix_available_since". A fix installed before patchday knew the fix was available
    counts as 0 days.
    """
    fix_tally, detect_tally = _Tally(), _Tally()
    from_fix: list[tuple[FindingFacts, float, datetime]] = []
    from_detect: list[tuple[FindingFacts, float, datetime]] = []
    for finding in findings:
        if finding.status != FIXED or not period.contains(finding.fixed_at):
            continue
        assert finding.fixed_at is not None
        if not finding.fix_verified:
            fix_tally.skip("fix_not_verified")
            detect_tally.skip("fix_not_verified")
            continue
        from_detect.append((finding, max(0.0, _days(finding.fixed_at, finding.first_detected_at)), finding.fixed_at))
        if finding.fix_available_since is None:
            fix_tally.skip("no_fix_available_since")
        else:
            days = max(0.0, _days(finding.fixed_at, finding.fix_available_since))
            from_fix.append((finding, days, finding.fixed_at))
    return TimeToPatch(_duration_report(from_fix, fix_tally), _duration_report(from_detect, detect_tally))


def time_to_detect(findings: Iterable[FindingFacts], period: Period) -> DurationReport:
    """Days from publication to first detection, for findings first detected within the period.

    The clock starts at the later of the vulnerability's earliest publication and the host's enrollment
    (a host patchday did not know yet could not be scanned). Excluded: "no_publication_date", and
    "detected_before_publication" (a changelog or feed named it before any advisory was published).
    """
    tally = _Tally()
    samples: list[tuple[FindingFacts, float, datetime]] = []
    for finding in findings:
        if not period.contains(finding.first_detected_at):
            continue
        if finding.published_at is None:
            tally.skip("no_publication_date")
            continue
        if finding.first_detected_at < finding.published_at:
            tally.skip("detected_before_publication")
            continue
        start = max(finding.published_at, finding.host_enrolled_at or finding.published_at)
        samples.append((finding, _days(finding.first_detected_at, start), finding.first_detected_at))
    return _duration_report(samples, tally)


# -- coverage --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Share:
    """`part` of `whole`; ratio None when whole is 0 (no data)."""

    part: int
    whole: int

    @property
    def ratio(self) -> float | None:
        return self.part / self.whole if self.whole else None

    def to_data(self) -> dict[str, int | float | None]:
        return {"part": self.part, "whole": self.whole, "ratio": self.ratio}


@dataclass(frozen=True, slots=True)
class HostCoverage:
    """Hosts with no open finding at or above `threshold` among all hosts, overall and per group and environment."""

    threshold: str
    overall: Share
    by_group: dict[str, Share]
    by_environment: dict[str, Share]
    excluded: int = 0
    excluded_reasons: dict[str, int] = field(default_factory=dict)


def host_coverage(
    hosts: Iterable[HostFacts], findings: Iterable[FindingFacts], as_of: datetime, threshold: str = DEFAULT_THRESHOLD
) -> HostCoverage:
    """A host is covered when no finding open at `as_of` has a decision at or above `threshold`.

    Open findings not prioritised yet cannot say either way: they do not uncover a host and are
    counted as "no_priority_decision". Findings of hosts outside `hosts` are ignored.
    """
    if threshold not in DECISION_RANK or not threshold:
        raise InvalidInput(f"unknown decision threshold {threshold!r}; use Act, Attend, Track* or Track", "threshold")
    tally = _Tally()
    uncovered: set[str] = set()
    for finding in findings:
        if not finding.is_open_at(as_of):
            continue
        if not finding.priority_decision:
            tally.skip("no_priority_decision")
        elif DECISION_RANK.get(finding.priority_decision, 0) >= DECISION_RANK[threshold]:
            uncovered.add(finding.host)
    total = covered = 0
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    environments: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for host in hosts:
        is_covered = int(host.name not in uncovered)
        total, covered = total + 1, covered + is_covered
        for bucket in [groups[group] for group in host.groups] + [environments[host.environment or UNKNOWN]]:
            bucket[0] += is_covered
            bucket[1] += 1
    return HostCoverage(
        threshold=threshold,
        overall=Share(covered, total),
        by_group={name: Share(*counts) for name, counts in sorted(groups.items())},
        by_environment={name: Share(*counts) for name, counts in sorted(environments.items())},
        excluded=tally.excluded,
        excluded_reasons=tally.as_dict(),
    )


@dataclass(frozen=True, slots=True)
class UpdateCoverage:
    """Applicable security updates (host, package) of the period: installed in it, or still pending at its end."""

    installed: int
    pending: int
    excluded: int = 0
    excluded_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> Share:
        return Share(self.installed, self.installed + self.pending)


def update_coverage(findings: Iterable[FindingFacts], period: Period) -> UpdateCoverage:
    """Share of applicable security updates installed.

    An update is a (host, package) pair with a fix available to the host (`fix_available_since` at or
    before the period's as-of instant). It is applicable in the period when a finding of the pair was
    fixed within the period (installed) or is still open at its as-of instant (pending); a pair with both
    is pending, since the host still lacks a fix it was offered. Fixed findings without
    `fix_available_since` are excluded ("no_fix_available_since").
    """
    tally = _Tally()
    installed: set[tuple[str, str]] = set()
    pending: set[tuple[str, str]] = set()
    for finding in findings:
        pair = (finding.host, finding.package)
        fixed_in_period = finding.status == FIXED and period.contains(finding.fixed_at)
        if finding.fix_available_since is None:
            if fixed_in_period:
                tally.skip("no_fix_available_since")
            continue
        if finding.fix_available_since > period.as_of:
            continue
        if finding.is_open_at(period.as_of):
            pending.add(pair)
        elif fixed_in_period and finding.fixed_at is not None and finding.fixed_at <= period.as_of:
            installed.add(pair)
    return UpdateCoverage(len(installed - pending), len(pending), tally.excluded, tally.as_dict())


# -- failure rate ------------------------------------------------------------------------------------------------

_NOISE: Final = (
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+"), "<url>"),  # http://deb.debian.org/pool/x.deb
    (re.compile(r"(?:/[\w.@+-]+)+/?"), "<path>"),  # /var/cache/apt/archives/x.deb
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<hex>"),
    (re.compile(r"\b(?:[a-z0-9-]+\.)+[a-z]{2,}\b"), "<host>"),  # db1.example.org, deb.debian.org
    (re.compile(r"\b\d+:[\w.+~-]*\d[\w.+~-]*"), "<version>"),  # 1:2.3-4 (an epoch)
    (re.compile(r"\b\d+(?:[.~+-]\w+)+\b"), "<version>"),  # 5.4.1-0.2, 3.0.13-1~deb12u1
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
)
_ERROR_LINE: Final = re.compile(r"^(?:e:|err|error|fatal|failed|dpkg: error)", re.IGNORECASE)


def error_signature(error: str, host: str = "") -> str:
    """The error output's cause with URLs, versions, numbers, paths, addresses and host names blanked.

    The first line that reads as an error ("E: ...", "error ...") is used, else the first non-empty line;
    jobs failing for the same reason on different hosts and versions share a signature.
    """
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        return ""
    line = next((candidate for candidate in lines if _ERROR_LINE.match(candidate)), lines[0])
    if host:
        line = line.replace(host, "<host>")
    line = line.lower()
    for pattern, replacement in _NOISE:
        line = pattern.sub(replacement, line)
    return line.strip()[:200]


@dataclass(frozen=True, slots=True)
class FailureCause:
    signature: str
    count: int
    example: str  # one job's original error line, for people to read


@dataclass(frozen=True, slots=True)
class FailureRate:
    """Failed host jobs / attempted host jobs finished in the period, overall and by package, ring and rollout."""

    overall: Share
    by_package: dict[str, Share]
    by_ring: dict[str, Share]
    by_rollout: dict[str, Share]
    top_causes: list[FailureCause]
    excluded: int = 0
    excluded_reasons: dict[str, int] = field(default_factory=dict)


def failure_rate(jobs: Iterable[JobFacts], period: Period, top: int = 5) -> FailureRate:
    """Attempted: jobs that ended (finished_at) in the period as verified, failed, unknown or rolled back.

    Failed: failed or unknown (no result before the lease ran out), or rolled back with an error recorded.
    Excluded: jobs that ended "succeeded" but are not verified yet ("awaiting_verification"), cancelled jobs
    ("cancelled"), and failures without any error text are counted but have no cause ("no_error_text").
    """
    tally = _Tally()
    totals = [0, 0]
    by_package: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_ring: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_rollout: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    causes: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for job in jobs:
        if not period.contains(job.finished_at):
            continue
        if job.state == "succeeded":
            tally.skip("awaiting_verification")
            continue
        if job.state == "cancelled":
            tally.skip("cancelled")
            continue
        if job.state not in JOB_SUCCEEDED | JOB_FAILED | JOB_ROLLED_BACK:
            tally.skip(f"state_{job.state}")
            continue
        failed = job.state in JOB_FAILED or (job.state in JOB_ROLLED_BACK and bool(job.error.strip()))
        buckets = [totals, by_ring[job.ring], by_rollout[str(job.rollout)]]
        buckets += [by_package[package] for package in sorted(set(job.packages))]
        for bucket in buckets:
            bucket[0] += int(failed)
            bucket[1] += 1
        if failed:
            signature = error_signature(job.error, job.host)
            if not signature:
                tally.skip("no_error_text")
                continue
            causes[signature] += 1
            examples.setdefault(signature, job.error.strip().splitlines()[0][:300])
    ranked = sorted(causes.items(), key=lambda item: (-item[1], item[0]))[:top]
    return FailureRate(
        overall=Share(*totals),
        by_package={key: Share(*value) for key, value in sorted(by_package.items())},
        by_ring={key: Share(*value) for key, value in sorted(by_ring.items())},
        by_rollout={key: Share(*value) for key, value in sorted(by_rollout.items(), key=lambda kv: int(kv[0]))},
        top_causes=[FailureCause(signature, count, examples[signature]) for signature, count in ranked],
        excluded=tally.excluded,
        excluded_reasons=tally.as_dict(),
    )


# -- SLA compliance ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlaCompliance:
    """Findings fixed by their due date among those due or fixed in the period; open overdue and due soon at as-of."""

    overall: Share
    by_policy_version: dict[str, Share]
    by_priority: dict[str, Share]
    overdue: int
    overdue_by_priority: dict[str, int]
    due_soon: int
    due_soon_by_priority: dict[str, int]
    excluded: int = 0
    excluded_reasons: dict[str, int] = field(default_factory=dict)


def sla_compliance(findings: Iterable[FindingFacts], period: Period) -> SlaCompliance:
    """Compliance = fixed on or before the due date / (that + breached), over findings with a due date that fell,
    or whose fix fell, within the period. Breached: fixed after its due date, or still open past it at as-of.

    Excluded: "no_due_date"; "accepted" and "not_affected" (outside SLA counts by policy); "not_due_yet"
    (open, due at or after as-of: undecided). Overdue: open at as-of with due date before the as-of day;
    due soon: open, due within the next 7 days (as-of day included).
    """
    tally = _Tally()
    today = period.as_of.astimezone(UTC).date()
    totals = [0, 0]
    by_version: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_priority: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    overdue: Counter[str] = Counter()
    due_soon: Counter[str] = Counter()
    for finding in findings:
        priority = finding.priority_decision or UNKNOWN
        is_open = finding.is_open_at(period.as_of)
        if is_open and finding.due_date is not None:
            if finding.due_date < today:
                overdue[priority] += 1
            elif finding.due_date <= today + timedelta(days=DUE_SOON_DAYS):
                due_soon[priority] += 1
        fixed_in_period = finding.status == FIXED and period.contains(finding.fixed_at)
        if not (fixed_in_period or period.contains(finding.due_date)):
            continue
        if finding.first_detected_at > period.as_of:
            continue
        if finding.due_date is None:
            tally.skip("no_due_date")
            continue
        if finding.status in (ACCEPTED, NOT_AFFECTED):
            tally.skip(finding.status)
            continue
        if finding.fixed_at is not None and finding.fixed_at <= period.as_of and not is_open:
            compliant = finding.fixed_at.astimezone(UTC).date() <= finding.due_date
        elif finding.due_date < today:
            compliant = False
        else:
            tally.skip("not_due_yet")
            continue
        version = str(finding.sla_policy_version) if finding.sla_policy_version is not None else UNKNOWN
        for bucket in (totals, by_version[version], by_priority[priority]):
            bucket[0] += int(compliant)
            bucket[1] += 1
    return SlaCompliance(
        overall=Share(*totals),
        by_policy_version={key: Share(*value) for key, value in sorted(by_version.items())},
        by_priority={key: Share(*value) for key, value in sorted(by_priority.items())},
        overdue=sum(overdue.values()),
        overdue_by_priority=dict(sorted(overdue.items())),
        due_soon=sum(due_soon.values()),
        due_soon_by_priority=dict(sorted(due_soon.items())),
        excluded=tally.excluded,
        excluded_reasons=tally.as_dict(),
    )


# -- KEV exposure, open risk, burndown ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KevEntryExposure:
    vulnerability: str
    date_added: date
    days_since: int  # from the KEV entry's date to the as-of day
    hosts: int


@dataclass(frozen=True, slots=True)
class KevExposure:
    """Hosts with a finding open at as-of whose vulnerability is in CISA's KEV catalog, and each entry's age."""

    hosts: int
    entries: list[KevEntryExposure]  # oldest KEV entry first


def kev_exposure(findings: Iterable[FindingFacts], as_of: datetime) -> KevExposure:
    today = as_of.astimezone(UTC).date()
    hosts_by_cve: dict[str, set[str]] = defaultdict(set)
    added: dict[str, date] = {}
    for finding in findings:
        if finding.kev_date_added is None or not finding.is_open_at(as_of):
            continue
        hosts_by_cve[finding.vulnerability].add(finding.host)
        added[finding.vulnerability] = finding.kev_date_added
    entries = [
        KevEntryExposure(cve, added[cve], (today - added[cve]).days, len(hosts)) for cve, hosts in hosts_by_cve.items()
    ]
    entries.sort(key=lambda entry: (entry.date_added, entry.vulnerability))
    exposed = set().union(*hosts_by_cve.values()) if hosts_by_cve else set()
    return KevExposure(len(exposed), entries)


@dataclass(frozen=True, slots=True)
class OpenRisk:
    """Findings open at as-of: their count by decision and the sum of their priority scores."""

    score: int
    open: int
    by_priority: dict[str, int]
    excluded: int = 0
    excluded_reasons: dict[str, int] = field(default_factory=dict)


def open_risk(findings: Iterable[FindingFacts], as_of: datetime) -> OpenRisk:
    """Risk = sum of priority scores of open findings; unscored open findings add nothing ("no_priority_score")."""
    tally = _Tally()
    score = count = 0
    by_priority: Counter[str] = Counter(dict.fromkeys(DECISIONS, 0))
    for finding in findings:
        if not finding.is_open_at(as_of):
            continue
        count += 1
        by_priority[finding.priority_decision if finding.priority_decision in DECISION_RANK else ""] += 1
        if finding.priority_score is None:
            tally.skip("no_priority_score")
        else:
            score += finding.priority_score
    return OpenRisk(score, count, {key: by_priority[key] for key in DECISIONS}, tally.excluded, tally.as_dict())


@dataclass(frozen=True, slots=True)
class BurndownDay:
    day: date
    risk: int  # sum of priority scores of findings open at the end of the day
    fixed_by_rollout: dict[int, int]  # rollout id -> the scores of the findings its jobs fixed that day


def risk_burndown(findings: Sequence[FindingFacts], days: Sequence[date]) -> list[BurndownDay]:
    """Risk at the end of each day and each rollout's contribution that day (scores as the ledger has them now)."""
    result: list[BurndownDay] = []
    for day in days:
        at = end_of_day(day)
        risk = 0
        by_rollout: Counter[int] = Counter()
        for finding in findings:
            score = finding.priority_score or 0
            if finding.is_open_at(at):
                risk += score
            elif (
                finding.fixed_by_rollout is not None
                and finding.fixed_at is not None
                and finding.fixed_at.astimezone(UTC).date() == day
            ):
                by_rollout[finding.fixed_by_rollout] += score
        result.append(BurndownDay(day, risk, dict(sorted(by_rollout.items()))))
    return result
