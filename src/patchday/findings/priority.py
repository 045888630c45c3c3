"""Priority and SLA due date of findings: gathers each finding's inputs (CVE records, KEV, latest EPSS,
the host's criticality and exposure) in a few queries and asks patchday.core.risk and patchday.core.sla."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from django.db import connection, transaction
from django.utils import timezone

from patchday.advisories.models import EpssScore as EpssRow
from patchday.advisories.models import KevEntry as KevRow
from patchday.advisories.models import Vulnerability
from patchday.audit import services as audit
from patchday.core.audit import Actor
from patchday.core.errors import InvalidInput
from patchday.core.risk import Exposure, RiskInputs, prioritize
from patchday.core.sla import DEFAULT_POLICY, FindingFacts, SlaPolicy, due_date
from patchday.core.vulnerability import CvssScore, CvssVersion, EpssScore, KevEntry, SsvcPoints, best_cvss
from patchday.findings.models import Finding, FindingStatus
from patchday.findings.models import SlaPolicy as SlaPolicyRow
from patchday.inventory.models import Host
from patchday.server.bulk import json_value, update_rows

CHUNK = 500
PRIORITIZED = (FindingStatus.OPEN, FindingStatus.ACCEPTED)


# -- the SLA policy in force --------------------------------------------------------------------------


def current_policy() -> SlaPolicy:
    """The newest stored version, else the documented defaults (version 1 until an admin saves one)."""
    row = SlaPolicyRow.objects.order_by("-version").first()
    if row is None:
        return DEFAULT_POLICY
    return SlaPolicy.from_data({"version": row.version, "rules": row.rules})


def save_policy(actor: Actor, rules: object, comment: str = "") -> SlaPolicyRow:
    """Store a new version of the policy (checked first: InvalidInput names the bad rule) and re-date
    every open finding under it."""
    with transaction.atomic():
        newest = SlaPolicyRow.objects.select_for_update().order_by("-version").first()
        version = max(newest.version if newest else 0, DEFAULT_POLICY.version) + 1
        if not isinstance(rules, list):
            raise InvalidInput("rules must be a list of rules", field="rules")
        policy = SlaPolicy.from_data({"version": version, "rules": rules})
        row = SlaPolicyRow.objects.create(
            version=version,
            rules=policy.to_data()["rules"],
            created_by=actor.name,
            created_at=timezone.now(),
            comment=comment.strip()[:255],
        )
        audit.record(actor, "sla_policy.change", "sla_policy", version, {"rules": row.rules, "comment": row.comment})
        reprioritize(Finding.objects.filter(status__in=PRIORITIZED).values_list("pk", flat=True))
    return row


# -- inputs ---------------------------------------------------------------------------------------------


def _cvss(row: Vulnerability | None) -> CvssScore | None:
    if row is None:
        return None
    scores = []
    for item in row.cvss or []:
        try:
            version = CvssVersion(item["version"])
        except (KeyError, ValueError):
            continue
        scores.append(
            CvssScore(version, item.get("vector", ""), float(item.get("base_score", 0)), item.get("source", ""),
                      item.get("scorer", ""))
        )  # fmt: skip
    return best_cvss(scores)


def _ssvc(row: Vulnerability | None) -> SsvcPoints | None:
    if row is None or not row.ssvc:
        return None
    data = row.ssvc
    assessed = data.get("assessed")
    return SsvcPoints(
        data.get("exploitation", ""),
        data.get("automatable"),
        data.get("technical_impact"),
        data.get("source", ""),
        date.fromisoformat(assessed[:10]) if assessed else None,
    )


def _kev(row: KevRow) -> KevEntry:
    return KevEntry(
        row.cve_id, row.vendor, row.product, row.name, row.description, row.date_added, row.due_date,
        row.required_action, row.ransomware, row.notes, tuple(row.cwes),
    )  # fmt: skip


def _latest_epss(cves: Sequence[str]) -> dict[str, EpssScore]:
    found: dict[str, EpssScore] = {}
    for row in EpssRow.objects.filter(cve_id__in=cves).order_by("cve_id", "-score_date"):
        if row.cve_id not in found:
            found[row.cve_id] = EpssScore(row.cve_id, row.probability, row.percentile, row.score_date, "")
    return found


def _exposure(value: str) -> Exposure:
    try:
        return Exposure(value)
    except ValueError:
        return Exposure.INTERNAL


# -- computing -------------------------------------------------------------------------------------------


def reprioritize(finding_ids: Iterable[int], today: date | None = None, *, refresh_queue: bool = True) -> int:
    """Compute score, decision, explanation and due date of these findings (open or accepted); returns how many.

    The "patch first" lines of their packages follow unless `refresh_queue` is False (the caller does it).
    """
    from patchday.findings.queries import mark_for_refresh

    today = today or timezone.now().date()
    policy = current_policy()
    ids = sorted(set(finding_ids))
    done = 0
    packages: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        findings = list(Finding.objects.filter(pk__in=ids[start : start + CHUNK], status__in=PRIORITIZED))
        done += _prioritize_chunk(findings, policy, today)
        packages.update(f.package for f in findings)
    if refresh_queue:
        mark_for_refresh(packages)
    return done


def _prioritize_chunk(findings: list[Finding], policy: SlaPolicy, today: date) -> int:
    if not findings:
        return 0
    cves = sorted({f.vulnerability for f in findings})
    records = {v.cve_id: v for v in Vulnerability.objects.filter(cve_id__in=cves)}
    kevs = {k.cve_id: _kev(k) for k in KevRow.objects.filter(cve_id__in=cves)}
    epss = _latest_epss(cves)
    hosts = {h.pk: h for h in Host.objects.filter(pk__in={f.host_id for f in findings})}
    for finding in findings:
        host, record, kev = hosts[finding.host_id], records.get(finding.vulnerability), kevs.get(finding.vulnerability)
        exposure = _exposure(host.exposure)
        inputs = RiskInputs(
            cve_id=finding.vulnerability,
            criticality=host.criticality,
            exposure=exposure,
            fix_available=bool(finding.fixed_version),
            cvss=_cvss(record),
            epss=epss.get(finding.vulnerability),
            kev=kev,
            kev_date_added=record.kev_date_added if record else None,
            ssvc=_ssvc(record),
        )
        priority = prioritize(inputs, today)
        finding.priority_score = priority.score
        finding.priority_decision = priority.decision.value
        finding.priority_explanation = [
            {"input": f.input, "value": f.value, "effect": f.effect, "points": f.points, "text": str(f)}
            for f in priority.explanation
        ]
        facts = FindingFacts(
            priority.decision,
            in_kev=kev is not None or (record is not None and record.kev_date_added is not None),
            kev_due_date=kev.due_date if kev else None,
            exposure=exposure,
            environment=host.environment,
        )
        finding.due_date = due_date(policy, facts, finding.first_detected_at)
        finding.sla_policy_version = policy.version
    update_rows(
        "findings_finding",
        ("priority_score", "priority_decision", "priority_explanation", "due_date", "sla_policy_version"),
        [
            (f.priority_score, f.priority_decision, json_value(f.priority_explanation),
             connection.ops.adapt_datefield_value(f.due_date), f.sla_policy_version, f.pk)
            for f in findings
        ],
    )  # fmt: skip
    return len(findings)


def reprioritize_hosts(host_ids: Iterable[int], *, refresh_queue: bool = True) -> int:
    return reprioritize(
        Finding.objects.filter(host_id__in=list(host_ids), status__in=PRIORITIZED).values_list("pk", flat=True),
        refresh_queue=refresh_queue,
    )


def reprioritize_vulnerabilities(cve_ids: Iterable[str]) -> int:
    """After KEV, EPSS or CVE records changed: only the findings of those CVEs."""
    wanted = sorted(set(cve_ids))
    total = 0
    for start in range(0, len(wanted), CHUNK):
        rows = Finding.objects.filter(vulnerability__in=wanted[start : start + CHUNK], status__in=PRIORITIZED)
        total += reprioritize(rows.values_list("pk", flat=True))
    return total
