"""Compliance frameworks as data: each control, the patchday evidence behind it, and how its status is computed.

docs/compliance.md is the same mapping in words; a test checks that every framework, control id and rule below
appears there, so the two cannot drift. A control's status comes from the metrics summary of the period
(patchday.reports.metrics) plus the measures only frameworks ask for (`control_measures`): the share of urgent
findings fixed within 30 days of their fix, and the share of hosts assessed recently enough.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Final

from patchday.core.errors import InvalidInput
from patchday.reports.metrics import Metric


class Status(StrEnum):
    """A control's computed status, best first."""

    MET = "met"
    PARTIALLY_MET = "partially met"
    NOT_MET = "not met"
    NO_DATA = "no data"  # nothing in the period to judge by; not a pass


_ORDER: Final = {Status.MET: 0, Status.PARTIALLY_MET: 1, Status.NOT_MET: 2, Status.NO_DATA: 3}


@dataclass(frozen=True, slots=True)
class Threshold:
    """Met when `metric` is at least `met` (at most, for `lower_is_better`), partially met at `partial`.

    Ratios are compared as fractions (0.95) and written as percentages; counts and days as they are.
    """

    metric: str
    met: float
    partial: float
    lower_is_better: bool = False

    def judge(self, measures: Mapping[str, Metric]) -> tuple[Status, str]:
        metric = measures.get(self.metric)
        if metric is None or metric.value is None:
            return Status.NO_DATA, f"{self.metric}: no data for the period"
        value = metric.value
        if self.lower_is_better:
            status = (
                Status.MET if value <= self.met else Status.PARTIALLY_MET if value <= self.partial else Status.NOT_MET
            )
        else:
            status = (
                Status.MET if value >= self.met else Status.PARTIALLY_MET if value >= self.partial else Status.NOT_MET
            )
        return status, f"{self.metric} = {_shown(value, metric.unit)}"

    def describe(self) -> str:
        """The rule in words, exactly as docs/compliance.md states it."""
        unit = "ratio" if self.metric in _RATIO_MEASURES else ""
        word = "≤" if self.lower_is_better else "≥"
        if self.met == self.partial:
            return f"`{self.metric}` {word} {_shown(self.met, unit)}: met; otherwise not met"
        return (
            f"`{self.metric}` {word} {_shown(self.met, unit)}: met; "
            f"{word} {_shown(self.partial, unit)}: partially met; otherwise not met"
        )


def _shown(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value * 100:.1f}%".replace(".0%", "%")
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence for a control: a metric, a file of the pack, or a record patchday keeps."""

    source: str  # a metric name, a file of the evidence pack, or "audit trail" / "SLA policy"
    shows: str  # what it shows for this control


@dataclass(frozen=True, slots=True)
class Control:
    """One control of a framework: its id, what it requires (paraphrased), evidence, and the rules of its status.

    With several rules, the status is the worst of them (a control is met only when every rule is met).
    """

    id: str
    title: str
    requires: str
    evidence: tuple[Evidence, ...]
    rules: tuple[Threshold, ...]

    def assess(self, measures: Mapping[str, Metric]) -> Assessment:
        judged = [rule.judge(measures) for rule in self.rules]
        known = [status for status, _ in judged if status is not Status.NO_DATA]
        status = max(known, key=_ORDER.__getitem__) if known else Status.NO_DATA
        return Assessment(self, status, tuple(text for _, text in judged))


@dataclass(frozen=True, slots=True)
class Assessment:
    control: Control
    status: Status
    measured: tuple[str, ...]  # each rule's measured value, e.g. "sla_compliance = 91.3%"

    def to_data(self) -> dict[str, object]:
        return {
            "control": self.control.id,
            "title": self.control.title,
            "status": self.status.value,
            "measured": list(self.measured),
            "rules": [rule.describe() for rule in self.control.rules],
            "evidence": [{"source": e.source, "shows": e.shows} for e in self.control.evidence],
        }


@dataclass(frozen=True, slots=True)
class Framework:
    key: str  # as the CLI and API name it: pci-dss, nist, ...
    name: str
    controls: tuple[Control, ...]


# -- the measures only frameworks ask for ------------------------------------------------------------------

URGENT_DECISIONS: Final = ("Act", "Attend")  # patchday's risk ranking of "critical and high" (PCI DSS 6.3.1)
URGENT_FIXED_30D: Final = "urgent_fixed_within_30d"
HOSTS_ASSESSED_90D: Final = "hosts_assessed_90d"
EXPOSED_ASSESSED_30D: Final = "exposed_hosts_assessed_30d"
_RATIO_MEASURES: Final = frozenset(
    {URGENT_FIXED_30D, HOSTS_ASSESSED_90D, EXPOSED_ASSESSED_30D, "sla_compliance", "coverage_hosts",
     "coverage_updates", "failure_rate"}
)  # fmt: skip

# Evidence items every control shares: the pack's integrity and its trail.
_AUDIT = Evidence("audit-verification.json", "the audit trail's hash chain verified when the pack was made")
_FINDINGS = Evidence("findings.csv", "every finding open during the period: detection, fix, due date, SLA policy")
_EXCEPTIONS = Evidence("exceptions.csv", "risk exceptions in force: justification, requester, approver, expiry")
_ROLLOUTS = Evidence("rollouts.csv", "rollouts run in the period, who started them, their outcome")
_JOBS = Evidence("jobs.csv", "each host's job: state, attempts, error, verification by re-inventory")
_APPROVALS = Evidence("approvals.csv", "plan decisions: who requested, who approved, when, with what comment")
_SLA_POLICY = Evidence("SLA policy", "each finding's due date names the SLA policy version that set it")


def control_measures(start: date, end: date) -> dict[str, Metric]:
    """The measures frameworks need beyond the metrics summary, over the period [start, end] (whole UTC days).

    - urgent_fixed_within_30d: findings ranked Act or Attend whose fix has been available for 30 days by a day
      of the period; the share of them fixed within those 30 days. Findings without a fix date are excluded.
    - hosts_assessed_90d: hosts known at the period's end; the share with an inventory in the 90 days before it.
    - exposed_hosts_assessed_30d: the same for internet-facing hosts over 30 days.
    """
    from django.db.models import F, Q

    from patchday.findings.models import Finding, FindingStatus
    from patchday.inventory.models import Collection, Host

    first, after = _moment(start), _moment(end + timedelta(days=1))
    urgent = Finding.objects.filter(priority_decision__in=URGENT_DECISIONS, first_detected_at__lt=after)
    windows_end = urgent.filter(
        fix_available_since__gte=first - timedelta(days=30), fix_available_since__lt=after - timedelta(days=30)
    )
    excluded_by_state = windows_end.filter(status__in=(FindingStatus.ACCEPTED, FindingStatus.NOT_AFFECTED))
    judged = windows_end.exclude(status__in=(FindingStatus.ACCEPTED, FindingStatus.NOT_AFFECTED))
    total = judged.count()
    in_time = judged.filter(fixed_at__isnull=False, fixed_at__lte=F("fix_available_since") + timedelta(days=30)).count()
    no_fix_date = (
        urgent.filter(fix_available_since__isnull=True)
        .exclude(
            Q(status__in=(FindingStatus.FIXED, FindingStatus.ACCEPTED, FindingStatus.NOT_AFFECTED))
            & Q(status_changed_at__lt=first)
        )
        .count()
    )
    accepted = excluded_by_state.filter(status=FindingStatus.ACCEPTED).count()
    not_affected = excluded_by_state.filter(status=FindingStatus.NOT_AFFECTED).count()
    reasons = {
        k: v
        for k, v in {
            "no fix availability date": no_fix_date,
            "accepted by an approved exception": accepted,
            "not affected (VEX or analysis)": not_affected,
        }.items()
        if v
    }
    measures = {
        URGENT_FIXED_30D: Metric(
            name=URGENT_FIXED_30D,
            label="Critical/high (Act, Attend) fixed within 30 days of the fix",
            value=in_time / total if total else None,
            unit="ratio",
            detail={"findings": total, "fixed_in_time": in_time, "decisions": list(URGENT_DECISIONS)},
            excluded=sum(reasons.values()),
            excluded_reasons=reasons,
        )
    }
    for name, label, days, hosts in (
        (HOSTS_ASSESSED_90D, "Hosts inventoried in the last 90 days", 90, Host.objects.all()),
        (
            EXPOSED_ASSESSED_30D,
            "Internet-facing hosts inventoried in the last 30 days",
            30,
            Host.objects.filter(exposure="internet-facing"),
        ),
    ):
        known = hosts.filter(created_at__lt=after)
        count = known.count()
        assessed = (
            Collection.objects.filter(host__in=known.values("pk"), received_at__gte=after - timedelta(days=days))
            .filter(received_at__lt=after)
            .values("host")
            .distinct()
            .count()
        )
        measures[name] = Metric(
            name=name,
            label=label,
            value=assessed / count if count else None,
            unit="ratio",
            detail={"hosts": count, "assessed": assessed, "days": days},
            excluded=0,
            excluded_reasons={},
        )
    return measures


def _moment(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# -- the frameworks ----------------------------------------------------------------------------------------

_SLA_95 = Threshold("sla_compliance", 0.95, 0.80)
_KEV_NONE = Threshold("kev_exposure", 0, 0, lower_is_better=True)
_ASSESSED_90 = Threshold(HOSTS_ASSESSED_90D, 1.0, 0.90)

FRAMEWORKS: Final[Mapping[str, Framework]] = {
    f.key: f
    for f in (
        Framework(
            "pci-dss",
            "PCI DSS v4.0",
            (
                Control(
                    "6.3.3",
                    "Security patches installed in time",
                    "Critical and high-security patches are installed within one month of release; other applicable "
                    "patches within a period the entity sets by its risk ranking (6.3.1).",
                    (
                        Evidence(URGENT_FIXED_30D, "share of Act/Attend findings fixed within 30 days of the fix"),
                        Evidence("time_to_patch_fix", "days from fix availability to verified fix, by priority"),
                        Evidence("sla_compliance", "the other findings against their SLA due dates"),
                        _FINDINGS,
                        _EXCEPTIONS,
                        _SLA_POLICY,
                        _AUDIT,
                    ),
                    (Threshold(URGENT_FIXED_30D, 0.95, 0.80),),
                ),
                Control(
                    "11.3",
                    "Vulnerabilities identified, prioritised and addressed",
                    "Internal vulnerability scans at least every three months; high-risk and critical vulnerabilities "
                    "resolved; rescans confirm the resolution (external scans by an ASV are out of patchday's scope).",
                    (
                        Evidence(HOSTS_ASSESSED_90D, "share of hosts inventoried and matched in the last 90 days"),
                        Evidence("kev_exposure", "hosts with an open finding on a known-exploited vulnerability"),
                        Evidence("mttd", "days from advisory publication to first detection"),
                        Evidence("jobs.csv", "fixes verified by a re-inventory of the host (verified_at)"),
                        _FINDINGS,
                        _AUDIT,
                    ),
                    (_ASSESSED_90, Threshold("overdue", 0, 10, lower_is_better=True)),
                ),
            ),
        ),
        Framework(
            "nist",
            "NIST SP 800-53 rev 5 and SP 800-40 rev 4",
            (
                Control(
                    "SI-2",
                    "Flaw remediation",
                    "Identify, report and correct system flaws; test updates before installing them; install "
                    "security-relevant updates within organisation-defined periods; track time to remediate.",
                    (
                        Evidence("sla_compliance", "share of findings fixed within their SLA deadline"),
                        Evidence("time_to_patch_fix", "median, p90 and mean days from fix to verified fix"),
                        Evidence("failure_rate", "failed host jobs out of attempted (ringed rollouts test first)"),
                        _ROLLOUTS,
                        _JOBS,
                        _APPROVALS,
                        _SLA_POLICY,
                        _AUDIT,
                    ),
                    (_SLA_95,),
                ),
                Control(
                    "RA-5",
                    "Vulnerability monitoring and scanning",
                    "Monitor and scan for vulnerabilities regularly and when new ones are reported; analyse the "
                    "results; remediate legitimate vulnerabilities within organisation-defined response times.",
                    (
                        Evidence(HOSTS_ASSESSED_90D, "share of hosts inventoried and matched in the last 90 days"),
                        Evidence("mttd", "days from advisory publication to first detection"),
                        Evidence("overdue", "open findings past their due date"),
                        _FINDINGS,
                        _AUDIT,
                    ),
                    (_ASSESSED_90, _SLA_95),
                ),
                Control(
                    "SP800-40r4",
                    "Enterprise patch management planning",
                    "Keep an inventory, define risk responses and maintenance plans per group of assets, and use "
                    "actionable metrics (coverage, time to patch) to judge the patching programme.",
                    (
                        Evidence("coverage_hosts", "share of hosts without an open finding above the threshold"),
                        Evidence("coverage_updates", "share of applicable security updates installed"),
                        Evidence("time_to_patch_fix", "time to patch, by priority and by month"),
                        _EXCEPTIONS,
                        _ROLLOUTS,
                        _APPROVALS,
                    ),
                    (Threshold("coverage_updates", 0.90, 0.70),),
                ),
            ),
        ),
        Framework(
            "cis",
            "CIS Controls v8",
            (
                Control(
                    "7.1",
                    "Vulnerability management process",
                    "Establish, document and review yearly a vulnerability management process.",
                    (
                        _SLA_POLICY,
                        Evidence("docs", "the documented process: docs/findings.md, docs/prioritization.md"),
                        _AUDIT,
                    ),
                    (_ASSESSED_90,),
                ),
                Control(
                    "7.2",
                    "Remediation process",
                    "Establish a risk-based remediation strategy, documented and reviewed monthly or more often.",
                    (_SLA_POLICY, _EXCEPTIONS, _APPROVALS, Evidence("risk_open", "risk of open findings over time")),
                    (Threshold("overdue", 0, 10, lower_is_better=True),),
                ),
                Control(
                    "7.3",
                    "Automated operating system patch management",
                    "Patch operating systems automatically, monthly or more often.",
                    (Evidence("coverage_updates", "share of applicable security updates installed"), _ROLLOUTS, _JOBS),
                    (Threshold("coverage_updates", 0.90, 0.70),),
                ),
                Control(
                    "7.4",
                    "Automated application patch management",
                    "Patch applications automatically, monthly or more often.",
                    (Evidence("time_to_patch_fix", "days from fix to verified fix"), _ROLLOUTS, _JOBS),
                    (_SLA_95,),
                ),
                Control(
                    "7.5",
                    "Automated scans of internal assets",
                    "Scan internal enterprise assets for vulnerabilities quarterly or more often.",
                    (Evidence(HOSTS_ASSESSED_90D, "share of hosts inventoried in the last 90 days"), _FINDINGS),
                    (_ASSESSED_90,),
                ),
                Control(
                    "7.6",
                    "Automated scans of externally exposed assets",
                    "Scan externally exposed enterprise assets monthly or more often.",
                    (Evidence(EXPOSED_ASSESSED_30D, "share of internet-facing hosts inventoried in 30 days"),),
                    (Threshold(EXPOSED_ASSESSED_30D, 1.0, 0.90),),
                ),
                Control(
                    "7.7",
                    "Remediate detected vulnerabilities",
                    "Remediate detected vulnerabilities monthly or more often, following the remediation process.",
                    (Evidence("sla_compliance", "share fixed within the SLA deadline"), _FINDINGS, _EXCEPTIONS),
                    (_SLA_95, _KEV_NONE),
                ),
            ),
        ),
        Framework(
            "hipaa",
            "HIPAA Security Rule",
            (
                Control(
                    "164.308(a)(1)(ii)(A)",
                    "Risk analysis",
                    "Accurately and thoroughly assess the potential risks and vulnerabilities to electronic protected "
                    "health information.",
                    (
                        Evidence(HOSTS_ASSESSED_90D, "share of hosts assessed in the last 90 days"),
                        Evidence("risk_open", "summed priority of open findings"),
                        Evidence("kev_exposure", "hosts exposed to known-exploited vulnerabilities"),
                        _FINDINGS,
                    ),
                    (_ASSESSED_90,),
                ),
                Control(
                    "164.308(a)(1)(ii)(B)",
                    "Risk management",
                    "Implement security measures that reduce risks and vulnerabilities to a reasonable, appropriate "
                    "level.",
                    (Evidence("sla_compliance", "share fixed within the SLA deadline"), _EXCEPTIONS, _ROLLOUTS),
                    (_SLA_95, _KEV_NONE),
                ),
                Control(
                    "164.308(a)(5)(ii)(B)",
                    "Protection from malicious software",
                    "Procedures for guarding against, detecting and reporting malicious software (patching the "
                    "vulnerabilities malware exploits is one of them).",
                    (Evidence("kev_exposure", "hosts with an open known-exploited vulnerability"), _FINDINGS, _JOBS),
                    (_KEV_NONE,),
                ),
            ),
        ),
        Framework(
            "gdpr",
            "GDPR",
            (
                Control(
                    "Art. 32",
                    "Security of processing",
                    "Appropriate technical measures for a level of security fitting the risk, including a process for "
                    "regularly testing, assessing and evaluating their effectiveness.",
                    (
                        Evidence("sla_compliance", "share fixed within the SLA deadline"),
                        Evidence("kev_exposure", "hosts exposed to known-exploited vulnerabilities"),
                        _FINDINGS,
                        _EXCEPTIONS,
                        _AUDIT,
                    ),
                    (_SLA_95, _KEV_NONE),
                ),
            ),
        ),
        Framework(
            "iso27001",
            "ISO/IEC 27001:2022",
            (
                Control(
                    "A.8.8",
                    "Management of technical vulnerabilities",
                    "Obtain information about technical vulnerabilities, evaluate the exposure to them and take "
                    "appropriate measures in time.",
                    (
                        Evidence("mttd", "days from advisory publication to first detection"),
                        Evidence("sla_compliance", "share fixed within the SLA deadline"),
                        Evidence(HOSTS_ASSESSED_90D, "share of hosts assessed in the last 90 days"),
                        _FINDINGS,
                        _EXCEPTIONS,
                        _APPROVALS,
                        _AUDIT,
                    ),
                    (_SLA_95, _ASSESSED_90),
                ),
            ),
        ),
    )
}


def framework(key: str) -> Framework:
    """The framework named `key`; InvalidInput naming the accepted keys otherwise."""
    found = FRAMEWORKS.get(key.strip().lower())
    if found is None:
        raise InvalidInput(f"unknown framework {key!r}; choose one of {', '.join(FRAMEWORKS)}", field="framework")
    return found


def check_period(start: date, end: date) -> None:
    """InvalidInput when the period runs backwards."""
    if end < start:
        raise InvalidInput(f"the period ends ({end}) before it starts ({start})", field="to")


def assess(chosen: Framework, measures: Mapping[str, Metric]) -> list[Assessment]:
    """Every control of `chosen`, judged on `measures` (the metrics summary and `control_measures`)."""
    return [control.assess(measures) for control in chosen.controls]
