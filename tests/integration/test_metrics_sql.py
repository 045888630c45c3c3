"""The SQL paths of reports.metrics (SLA outcomes counted in SQL, durations streamed as epoch microseconds)
give exactly what the pure functions of core.metrics give on the same ledger: core stays the reference.

The ledger is seeded at random (fixed seed) with the awkward cases: reopened findings, fixes after the
period, fixes before detection, unverified fixes, no fix date, no due date, accepted and not-affected
findings, detection before publication, hosts enrolled after publication, microsecond timestamps.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from patchday.advisories.models import Advisory, AdvisoryCve, KevEntry, Vulnerability
from patchday.core import metrics as core
from patchday.findings.models import Finding
from patchday.inventory import services as inventory_services
from patchday.inventory.models import Host
from patchday.reports import metrics
from patchday.reports.instants import EpochMicroseconds, IsoInstant, UtcDay, UtcMonth, epoch_microseconds
from tests.conftest import SYSTEM_ACTOR

BASE = datetime(2026, 3, 1, tzinfo=UTC)


def _instant(rng: random.Random, around: datetime, days: float) -> datetime:
    moment = around + timedelta(days=rng.uniform(-days, days), microseconds=rng.choice([0, rng.randrange(10**6)]))
    return moment.replace(microsecond=0) if rng.random() < 0.3 else moment


@pytest.fixture
def seeded(db: None) -> None:
    rng = random.Random(20261128)  # noqa: S311 (a reproducible ledger, not a secret)
    hosts = [
        Host.objects.create(
            name=f"h{n}", environment=("prod", "dev", "")[n % 3], created_at=BASE - timedelta(days=n * 9)
        )
        for n in range(6)
    ]
    inventory_services.create_group(SYSTEM_ACTOR, "web").members.add(*hosts[:3])
    inventory_services.create_group(SYSTEM_ACTOR, "odd").members.add(*hosts[1::2])
    for n in range(12):
        published = _instant(rng, BASE - timedelta(days=40), 30) if n % 5 else None
        Vulnerability.objects.create(
            cve_id=f"CVE-{n}", source="nvd", cvss_score=None if n % 4 == 0 else round(rng.uniform(1, 10), 1),
            published=published, imported_at=BASE,
        )  # fmt: skip
        if n % 3 == 0:
            advisory = Advisory.objects.create(
                advisory_id=f"DSA-{n}", source="osv", published=_instant(rng, BASE - timedelta(days=50), 20),
                imported_at=BASE,
            )  # fmt: skip
            AdvisoryCve.objects.create(advisory=advisory, cve_id=f"CVE-{n}")
    KevEntry.objects.create(
        cve_id="CVE-1", vendor="v", product="p", name="n", date_added=date(2026, 2, 1), ransomware=""
    )
    now = timezone.now()
    for index in range(400):
        host = hosts[index % len(hosts)]
        detected = _instant(rng, BASE, 45) if index % 10 else _instant(rng, now - timedelta(days=20), 15)
        detected = min(detected, now - timedelta(hours=1))
        fields: dict[str, Any] = {
            "priority_score": rng.choice([None, 10, 40, 90]),
            "priority_decision": rng.choice(["", "Track", "Track*", "Attend", "Act"]),
            "due_date": None if rng.random() < 0.1 else (detected + timedelta(days=rng.choice([3, 7, 30]))).date(),
            "sla_policy_version": rng.choice([None, 1, 2]),
            "fix_available_since": None if rng.random() < 0.2 else detected + timedelta(days=rng.uniform(-5, 5)),
        }
        fate = rng.random()
        changed = detected
        if fate < 0.55 or fate > 0.95:  # fixed; above 0.95 reopened (open again, fixed_at kept)
            fixed_at = min(now - timedelta(minutes=1), detected + timedelta(days=rng.uniform(-1, 40)))
            fields.update(fixed_at=fixed_at, fix_verified=rng.random() < 0.8, status="fixed" if fate < 0.55 else "open")
            changed = fixed_at
        elif fate < 0.65:
            changed = min(now, detected + timedelta(days=rng.uniform(0, 30)))
            fields["status"] = rng.choice(["accepted", "not_affected"])
        Finding.objects.create(
            host=host, vulnerability=f"CVE-{rng.randrange(14)}", ecosystem="Debian:12", package=f"p{index}",
            installed_version="1", first_detected_at=detected, last_detected_at=detected, status_changed_at=changed,
            **fields,
        )  # fmt: skip


def _periods() -> list[tuple[date, date]]:
    today = timezone.now().astimezone(UTC).date()
    return [
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 3, 10), date(2026, 3, 10)),
        (date(2026, 1, 1), date(2026, 3, 31)),
        (today - timedelta(days=29), today),  # live: as_of is now
    ]


@pytest.mark.parametrize("narrowed", [{}, {"group": "web"}, {"environment": "prod"}])
def test_the_sql_paths_equal_the_pure_functions(seeded: None, narrowed: dict[str, str]) -> None:
    for start, end in _periods():
        scope = metrics._scope(start, end, narrowed.get("group", ""), narrowed.get("environment", ""), timezone.now())
        facts = metrics.finding_facts(scope.findings, publication=True)
        result = metrics.summary(start, end, **narrowed)

        ttp = core.time_to_patch(facts, scope.period)
        for name, report, value in (
            ("time_to_patch_fix", ttp.from_fix, ttp.from_fix.overall.median),
            ("time_to_patch_detect", ttp.from_detection, ttp.from_detection.overall.median),
            ("mttd", core.time_to_detect(facts, scope.period), None),
        ):
            got = result[name]
            expected_value = value if name != "mttd" else report.overall.mean
            detail = {key: value for key, value in got.detail.items() if key != "no_data"}
            assert (got.value, detail) == (expected_value, metrics._stats_detail(report)), (name, start, end)
            assert (got.excluded, got.excluded_reasons) == (report.excluded, report.excluded_reasons), name
        sla = core.sla_compliance(facts, scope.period)
        got = result["sla_compliance"]
        assert got.value == sla.overall.ratio
        assert (got.detail["part"], got.detail["whole"]) == (sla.overall.part, sla.overall.whole)
        assert got.detail["by_policy_version"] == {k: v.to_data() for k, v in sla.by_policy_version.items()}
        assert got.detail["by_priority"] == {k: v.to_data() for k, v in sla.by_priority.items()}
        assert (got.excluded, got.excluded_reasons) == (sla.excluded, sla.excluded_reasons)


def test_the_seeded_ledger_reaches_every_case(seeded: None) -> None:
    """Guards the test above against a seed that no longer exercises what it claims to."""
    scope = metrics._scope(date(2026, 1, 1), date(2026, 3, 31), "", "", timezone.now())
    facts = metrics.finding_facts(scope.findings, publication=True)
    sla = core.sla_compliance(facts, scope.period)
    ttp = core.time_to_patch(facts, scope.period)
    mttd = core.time_to_detect(facts, scope.period)

    assert set(sla.excluded_reasons) >= {"accepted", "no_due_date", "not_affected"}
    assert 0 < sla.overall.part < sla.overall.whole
    assert set(ttp.from_fix.excluded_reasons) == {"fix_not_verified", "no_fix_available_since"}
    assert set(mttd.excluded_reasons) == {"detected_before_publication", "no_publication_date"}
    assert any(f.status == "open" and f.fixed_at is not None for f in facts)


def test_instants_read_in_sql_equal_python(seeded: None) -> None:
    rows = Finding.objects.values_list(
        "first_detected_at", "fixed_at", EpochMicroseconds("first_detected_at"), EpochMicroseconds("fixed_at"),
        UtcMonth("first_detected_at"), UtcDay("first_detected_at"), IsoInstant("first_detected_at"),
        IsoInstant("fixed_at"),
    )  # fmt: skip
    for detected, fixed, detected_us, fixed_us, month, day, iso, fixed_iso in rows:
        assert detected_us == epoch_microseconds(detected)
        assert fixed_us == (epoch_microseconds(fixed) if fixed else None)
        assert (month, day) == (core.month_of(detected), detected.astimezone(UTC).date())
        assert (iso, fixed_iso) == (detected.isoformat(), fixed.isoformat() if fixed else None)


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 10, 50])
def test_top_vulnerabilities_ranks_like_grouping_every_open_finding(seeded: None, limit: int) -> None:
    from django.db.models import Count, F, Max

    every = (
        Finding.objects.filter(status="open")
        .values("vulnerability")
        .annotate(hosts=Count("host_id", distinct=True), max_score=Max("priority_score"))
        .order_by(F("max_score").desc(nulls_last=True), "-hosts", "vulnerability")
    )
    expected = [(row["vulnerability"], row["hosts"], row["max_score"]) for row in every[:limit]]

    top = metrics.top_vulnerabilities(limit)

    assert [(row["vulnerability"], row["hosts"], row["max_score"]) for row in top] == expected
    assert metrics.top_vulnerabilities(0) == []
