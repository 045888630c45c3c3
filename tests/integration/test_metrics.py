"""Metrics from a seeded ledger, hand-checked, through reports.metrics and the API; snapshots, series, Prometheus.

The fleet (March 2026, as of the end of March 31):
  web1 (prod, group web), web2 (prod), db1 (dev), all enrolled Jan 1.
  CVE-A: CVSS 9.8, published Feb 25, in KEV since Mar 1.  CVE-B: CVSS 5.0, published Mar 1.  CVE-C: unknown.
  f1 web1 CVE-A openssl: detected Mar 2, fix Mar 2, fixed (verified, rollout R) Mar 4; 90 Act, due Mar 9, policy 1
  f2 web2 CVE-A openssl: detected Mar 2, fix Mar 2, open;                               90 Act, due Mar 9, policy 1
  f3 web2 CVE-B curl:    detected Mar 1, fix Mar 5, fixed (verified) Mar 11;            20 Track, due Apr 30, policy 2
  f4 db1  CVE-B curl:    detected Mar 20, no fix, open;                                 20 Track, due Apr 3, policy 2
  f5 db1  CVE-C zlib:    detected Mar 10, fixed without verification Mar 15, no fix date, no due date
  Rollout R, ring pilot: web1 verified, web2 failed ("E: Unable to fetch ... 404"), db1 cancelled; all ended Mar 4.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from patchday.advisories.models import KevEntry, Vulnerability
from patchday.core.roles import Role
from patchday.findings.models import Finding
from patchday.inventory import services as inventory_services
from patchday.inventory.models import Host
from patchday.reports import metrics
from patchday.reports.models import MetricSnapshot
from patchday.reports.snapshots import latest_snapshot_day, snapshot
from patchday.rollouts.models import Job, Plan, Ring, Rollout
from tests.conftest import SYSTEM_ACTOR, ApiClient

MARCH_1, MARCH_31 = date(2026, 3, 1), date(2026, 3, 31)


def at(day: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


@pytest.fixture
def ledger(db: None) -> dict[str, Any]:
    enrolled = at(1, month=1)
    web1 = Host.objects.create(name="web1", environment="prod", created_at=enrolled)
    web2 = Host.objects.create(name="web2", environment="prod", created_at=enrolled)
    db1 = Host.objects.create(name="db1", environment="dev", created_at=enrolled)
    inventory_services.create_group(SYSTEM_ACTOR, "web").members.add(web1)
    Vulnerability.objects.create(cve_id="CVE-A", source="nvd", cvss_score=9.8, published=at(25, 2), imported_at=at(1))
    Vulnerability.objects.create(cve_id="CVE-B", source="nvd", cvss_score=5.0, published=at(1), imported_at=at(1))
    KevEntry.objects.create(
        cve_id="CVE-A", vendor="v", product="p", name="n", date_added=date(2026, 3, 1), ransomware="Unknown"
    )
    plan = Plan.objects.create(name="p", state="approved", selection={}, target={}, requested_by="op", created_at=at(3))
    rollout = Rollout.objects.create(plan=plan, state="done", salt="s", started_by="op", started_at=at(3))
    ring = Ring.objects.create(rollout=rollout, index=0, name="pilot", state="done")
    spec = {"targets": [{"name": "openssl", "version": "3.0.15-1"}]}
    for host, state, error in (
        (web1, "verified", ""),
        (web2, "failed", "E: Unable to fetch http://deb.debian.org/pool/openssl_3.0.15-1.deb  404  Not Found"),
        (db1, "cancelled", ""),
    ):
        Job.objects.create(
            rollout=rollout, ring=ring, host=host, state=state, executor="agent", spec=spec, queued_at=at(3),
            finished_at=at(4), error=error,
        )  # fmt: skip

    def add(host: Host, cve: str, package: str, detected: datetime, **fields: Any) -> Finding:
        return Finding.objects.create(
            host=host, vulnerability=cve, ecosystem="Debian:12", package=package, installed_version="1",
            first_detected_at=detected, last_detected_at=detected, status_changed_at=fields.get("fixed_at", detected),
            **fields,
        )  # fmt: skip

    common_a = {"priority_score": 90, "priority_decision": "Act", "due_date": date(2026, 3, 9), "sla_policy_version": 1}
    add(web1, "CVE-A", "openssl", at(2), fix_available_since=at(2), status="fixed", fixed_at=at(4), fix_verified=True,
        fixed_by_rollout=rollout.pk, **common_a)  # fmt: skip
    add(web2, "CVE-A", "openssl", at(2), fix_available_since=at(2), **common_a)
    add(web2, "CVE-B", "curl", at(1), fix_available_since=at(5), status="fixed", fixed_at=at(11), fix_verified=True,
        priority_score=20, priority_decision="Track", due_date=date(2026, 4, 30), sla_policy_version=2)  # fmt: skip
    add(db1, "CVE-B", "curl", at(20), priority_score=20, priority_decision="Track", due_date=date(2026, 4, 3),
        sla_policy_version=2)  # fmt: skip
    add(db1, "CVE-C", "zlib", at(10), status="fixed", fixed_at=at(15))
    return {"rollout": rollout.pk}


EXPECTED_MARCH: dict[str, float] = {
    "time_to_patch_fix": 4,  # f1 2 days, f3 6 days -> median 4
    "time_to_patch_detect": 6,  # f1 2 days, f3 10 days -> median 6
    "coverage_hosts": 2 / 3,  # web2 has an open Act finding; web1 and db1 do not
    "coverage_updates": 2 / 3,  # installed web1/openssl, web2/curl; pending web2/openssl
    "failure_rate": 0.5,  # web1 verified, web2 failed (db1 cancelled: excluded)
    "sla_compliance": 2 / 3,  # f1 and f3 in time, f2 breached (f5 has no due date)
    "overdue": 1,  # f2, due Mar 9
    "due_soon": 1,  # f4, due Apr 3 (within Mar 31 + 7)
    "kev_exposure": 1,  # web2 (CVE-A open)
    "risk_open": 110,  # f2 90 + f4 20
    "mttd": 7.25,  # f1 5, f2 5 (published Feb 25), f3 0, f4 19 (published Mar 1) -> 29 / 4
    "open_findings": 2,
}


def test_summary_by_hand(ledger: dict[str, Any]) -> None:
    result = metrics.summary(MARCH_1, MARCH_31)

    assert list(result) == list(metrics.METRIC_NAMES)
    assert {name: metric.value for name, metric in result.items()} == pytest.approx(EXPECTED_MARCH)
    ttp = result["time_to_patch_fix"]
    assert (ttp.detail["p90"], ttp.detail["mean"], ttp.detail["count"]) == (6, 4, 2)
    assert ttp.excluded_reasons == {"fix_not_verified": 1}
    assert ttp.detail["by_severity"]["critical"]["median"] == 2
    assert ttp.detail["by_group"] == {"web": {"count": 1, "median": 2, "p90": 2, "mean": 2, "min": 2, "max": 2}}
    assert result["coverage_hosts"].detail["by_environment"]["prod"]["ratio"] == 0.5
    assert result["coverage_hosts"].detail["by_group"]["web"]["ratio"] == 1
    assert result["coverage_updates"].excluded_reasons == {"no_fix_available_since": 1}
    failure = result["failure_rate"]
    assert failure.detail["by_rollout"] == {str(ledger["rollout"]): {"part": 1, "whole": 2, "ratio": 0.5}}
    assert failure.detail["top_causes"][0]["signature"] == "e: unable to fetch <url> <n> not found"
    assert failure.excluded_reasons == {"cancelled": 1}
    sla = result["sla_compliance"]
    assert sla.detail["by_policy_version"] == {
        "1": {"part": 1, "whole": 2, "ratio": 0.5},
        "2": {"part": 1, "whole": 1, "ratio": 1.0},
    }
    assert sla.excluded_reasons == {"no_due_date": 1}
    assert result["kev_exposure"].detail["entries"] == [
        {"vulnerability": "CVE-A", "date_added": "2026-03-01", "days_since": 30, "hosts": 1}
    ]
    assert result["mttd"].excluded_reasons == {"no_publication_date": 1}
    assert result["open_findings"].detail["by_priority"] == {"Act": 1, "Attend": 0, "Track*": 0, "Track": 1, "": 0}


def test_summary_narrowed_to_a_group_and_an_environment(ledger: dict[str, Any]) -> None:
    web = metrics.summary(MARCH_1, MARCH_31, group="web")
    dev = metrics.summary(MARCH_1, MARCH_31, environment="dev")

    assert (web["open_findings"].value, web["coverage_hosts"].value, web["time_to_patch_fix"].value) == (0, 1, 2)
    assert (dev["risk_open"].value, dev["due_soon"].value, dev["kev_exposure"].value) == (20, 1, 0)


def test_a_period_without_data_is_valid_and_says_so(ledger: dict[str, Any]) -> None:
    result = metrics.summary(date(2025, 1, 1), date(2025, 1, 31))

    assert all(metric.value is None for metric in result.values()), result
    assert "no_data" in result["time_to_patch_fix"].detail
    assert result["open_findings"].detail["no_data"] == "no finding was known at the end of this period"


def test_the_live_view_and_the_dashboard_lists(ledger: dict[str, Any]) -> None:
    assert metrics.open_by_priority() == {"Act": 1, "Attend": 0, "Track*": 0, "Track": 1, "": 0}
    assert metrics.top_risky_hosts() == [
        {"host": "web2", "risk": 90, "open": 1, "kev": 1},
        {"host": "db1", "risk": 20, "open": 1, "kev": 0},
    ]
    assert metrics.top_risky_hosts(limit=1)[0]["host"] == "web2"
    assert metrics.top_vulnerabilities() == [
        {"vulnerability": "CVE-A", "hosts": 1, "max_score": 90, "kev": True},
        {"vulnerability": "CVE-B", "hosts": 1, "max_score": 20, "kev": False},
    ]
    today = datetime.now(UTC).date()
    live = metrics.summary(today, today)
    assert (live["risk_open"].value, live["open_findings"].value, live["kev_exposure"].value) == (110, 2, 1)


def test_burndown_reads_snapshots_and_credits_rollouts(ledger: dict[str, Any]) -> None:
    metrics.take_snapshot(date(2026, 3, 4))

    days = metrics.burndown(date(2026, 3, 3), date(2026, 3, 5))

    # Mar 4's snapshot: open at its end f2 90 + f3 20 (fixed Mar 11) = 110; Mar 3 and 5 have no snapshot
    assert [day["risk"] for day in days] == [None, 110, None]
    assert [day["fixed_by_rollout"] for day in days] == [{}, {ledger["rollout"]: 90}, {}]
    assert days[0]["date"] == date(2026, 3, 3)


def test_snapshots_are_idempotent_and_feed_series(ledger: dict[str, Any]) -> None:
    assert metrics.take_snapshot(MARCH_31) == len(metrics.METRIC_NAMES)
    assert metrics.take_snapshot(MARCH_31) == len(metrics.METRIC_NAMES)

    assert MetricSnapshot.objects.count() == len(metrics.METRIC_NAMES)
    assert metrics.series("risk_open", date(2026, 3, 30), MARCH_31) == [(date(2026, 3, 30), None), (MARCH_31, 110)]
    assert latest_snapshot_day() == MARCH_31
    recorded = snapshot(MARCH_31)
    assert recorded is not None
    assert recorded["kev_exposure"].detail["entries"][0]["days_since"] == 30
    assert recorded["open_findings"].unit == "count"


def test_bad_input_is_refused(ledger: dict[str, Any]) -> None:
    from patchday.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="after it ends"):
        metrics.summary(MARCH_31, MARCH_1)
    with pytest.raises(InvalidInput, match="unknown metric"):
        metrics.series("happiness", MARCH_1, MARCH_31)
    with pytest.raises(InvalidInput, match="no host group"):
        metrics.summary(MARCH_1, MARCH_31, group="nope")
    with pytest.raises(InvalidInput, match="future"):
        metrics.take_snapshot(date(2099, 1, 1))


# -- the API ---------------------------------------------------------------------------------------------------


def test_the_api_gives_the_same_numbers(ledger: dict[str, Any], api_as: Callable[[Role], ApiClient]) -> None:
    api = api_as(Role.VIEWER)

    response = api.get("metrics?start=2026-03-01&end=2026-03-31")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["start"], body["end"]) == ("2026-03-01", "2026-03-31")
    values = {name: metric["value"] for name, metric in body["metrics"].items()}
    assert values == pytest.approx(EXPECTED_MARCH)
    assert body["metrics"]["failure_rate"]["excluded_reasons"] == {"cancelled": 1}
    narrowed = api.get("metrics?start=2026-03-01&end=2026-03-31&environment=dev").json()
    assert narrowed["metrics"]["risk_open"]["value"] == 20


def test_the_api_series_and_grafana(ledger: dict[str, Any], api_as: Callable[[Role], ApiClient]) -> None:
    api = api_as(Role.AUDITOR)
    metrics.take_snapshot(MARCH_31)

    series = api.get("metrics/risk_open/series?start=2026-03-30&end=2026-03-31")
    grafana = api.get("metrics/grafana?target=risk_open&target=overdue&from=1774828800000&to=2026-03-31")

    assert series.status_code == 200, series.content
    assert series.json()["points"] == [{"date": "2026-03-30", "value": None}, {"date": "2026-03-31", "value": 110.0}]
    assert series.json()["unit"] == "score"
    assert grafana.status_code == 200, grafana.content
    # 1774828800000 ms = 2026-03-30T00:00Z; the points carry each day's 00:00 UTC in epoch ms
    assert grafana.json() == [
        {"target": "risk_open", "datapoints": [[None, 1774828800000], [110.0, 1774915200000]]},
        {"target": "overdue", "datapoints": [[None, 1774828800000], [1.0, 1774915200000]]},
    ]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("metrics?start=2026-03-31&end=2026-03-01", "start"),
        ("metrics?start=yesterday", "start"),
        ("metrics?group=nope", "group"),
        ("metrics/happiness/series", "name"),
        ("metrics/risk_open/series?start=2026-03-31&end=2026-03-01", "start"),
        ("metrics/grafana?target=happiness", "name"),
        ("metrics/grafana?target=risk_open&from=soon", "from"),
    ],
)
def test_bad_input_gets_422_with_a_clear_message(
    ledger: dict[str, Any], api_as: Callable[[Role], ApiClient], path: str, field: str
) -> None:
    response = api_as(Role.VIEWER).get(path)

    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["field"] == field


# -- Prometheus ------------------------------------------------------------------------------------------------


def test_prometheus_needs_a_token(db: None, anonymous_api: ApiClient) -> None:
    response = anonymous_api.get("/metrics")
    wrong = ApiClient("pd_nope_nope").get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="patchday"'
    assert response.json()["error"]["code"] == "not_authenticated"
    assert wrong.status_code == 401


def test_prometheus_exposition_parses(ledger: dict[str, Any], api_as: Callable[[Role], ApiClient]) -> None:
    api = api_as(Role.VIEWER)
    api.get("metrics?start=2026-03-01&end=2026-03-31")  # a request for the request counters

    response = api.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert samples[("patchday_findings_open", (("decision", "Act"),))] == 1
    assert samples[("patchday_kev_exposed_hosts", ())] == 1
    assert samples[("patchday_jobs", (("state", "failed"),))] == 1
    assert samples[("patchday_rollouts", (("state", "done"),))] == 1
    assert sum(value for (name, labels), value in samples.items() if name == "patchday_hosts") == 3
    requests = [
        value
        for (name, labels), value in samples.items()
        if name == "patchday_http_requests_total" and ("route", "/api/v1/metrics") in labels
    ]
    assert requests
    assert min(requests) >= 1
    assert "patchday_http_request_duration_seconds" in families
    assert "patchday_tasks" in families
    assert "patchday_feed_last_success_timestamp_seconds" in families
