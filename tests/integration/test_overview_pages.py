"""The report pages: the executive overview (tiles equal to metrics.summary(), trends from snapshots, charts fed
by json_script with text alternatives, history by date) and the operations page (what needs doing today)."""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patchday.accounts.models import User
from patchday.advisories import feed_imports
from patchday.advisories.models import KevEntry
from patchday.core.roles import Role
from patchday.findings.models import Finding
from patchday.inventory import ingest, services
from patchday.inventory.models import Host, ManagementMode
from patchday.inventory.queries import expected_interval
from patchday.inventory.services import HostChanges
from patchday.reports import metrics
from patchday.reports.models import MetricSnapshot
from patchday.reports.views import TILES, formatted
from patchday.rollouts import driver, plans, windows
from patchday.rollouts.models import Job
from patchday.rollouts.results import check_result
from tests.conftest import SYSTEM_ACTOR
from tests.support.documents import document, pending_update
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
OPENSSL_CVE = "CVE-2026-7383"  # DSA-6335-1: the real host's openssl is inside its range
OPENSSL_FROM, OPENSSL_TO = "3.0.19-1~deb12u2", "3.0.99-1~deb12u1"
RINGS = [{"name": "pilot", "tags": ["pilot"]}, {"name": "broad"}]
QUERY_BUDGET = 20  # the overview renders from snapshots and a few aggregates (14 today), whatever the period


def today() -> date:
    return timezone.now().astimezone(UTC).date()


def seed_fleet() -> None:
    """web-1 (every package; tagged pilot) and web-2 (the first 400), offered openssl, with pinned priorities."""
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    packages = real_host()
    pending = [pending_update("openssl", OPENSSL_FROM, OPENSSL_TO)]
    ingest.store_document(SYSTEM_ACTOR, document(packages, pending=pending), mode="agent")
    ingest.store_document(
        SYSTEM_ACTOR, document(packages[:400], hostname="web-2", machine_id="2" * 32, pending=pending), mode="agent"
    )
    services.set_attributes(SYSTEM_ACTOR, ["web-1"], HostChanges(add_tags=("pilot",)).check())
    now = today()
    Finding.objects.update(priority_score=20, priority_decision="Track", due_date=now + timedelta(days=90))
    Finding.objects.filter(package="openssl").update(
        priority_score=90, priority_decision="Act", due_date=now - timedelta(days=3)
    )
    Finding.objects.filter(package="gnutls28").update(
        priority_score=60, priority_decision="Attend", due_date=now + timedelta(days=5)
    )
    KevEntry.objects.create(
        cve_id=OPENSSL_CVE, vendor="OpenSSL", product="OpenSSL", name="OpenSSL flaw", date_added=date(2026, 1, 1)
    )


def snapshot(day: date, **values: float | None) -> None:
    """Fleet-wide snapshot rows of `day` with these values (the other metrics get None)."""
    MetricSnapshot.objects.filter(day=day, scope="").delete()
    for name in metrics.METRIC_NAMES:
        label, unit = metrics.LABELS[name]
        detail = {"label": label, "unit": unit, "detail": {}, "excluded": 0, "excluded_reasons": {}}
        MetricSnapshot.objects.create(
            day=day, name=name, scope="", value=values.get(name), detail=detail, taken_at=timezone.now()
        )


@pytest.fixture
def fleet() -> None:
    seed_fleet()


@pytest.fixture
def page_as(db: None) -> Callable[..., Client]:
    def signed_in(role: Role, username: str = "") -> Client:
        client = Client()
        # No password: force_login needs none, and an Argon2 hash costs seconds.
        client.force_login(User.objects.create_user(username or f"pages-{role.value}", role=role.value))
        return client

    return signed_in


@pytest.fixture
def viewer(page_as: Callable[..., Client]) -> Client:
    return page_as(Role.VIEWER)


def html(client: Client, url: str, status: int = 200, **headers: Any) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == status, response.content[:800]
    return response.content.decode()


def tile_value(page: str, metric: str) -> str:
    found = re.search(rf'id="kpi-{metric}".*?<p class="metric">([^<]*)', page, re.S)
    assert found is not None, f"no tile {metric}"
    return html_lib.unescape(found.group(1))


def tile_html(page: str, metric: str) -> str:
    found = re.search(rf'<article class="card kpi" id="kpi-{metric}".*?</article>', page, re.S)
    assert found is not None, f"no tile {metric}"
    return found.group(0)


def chart_data(page: str, element_id: str) -> dict[str, Any]:
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None, f"no JSON block {element_id}"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


# -- the executive overview ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_overview_and_operations(fleet: None, page_as: Callable[..., Client], role: Role) -> None:
    client = page_as(role)

    overview = html(client, "/overview/")
    operations = html(client, "/operations/")

    assert "<h1>Executive overview</h1>" in overview
    assert "<h1>Operations</h1>" in operations
    assert 'href="/overview/" aria-current="page">Reports</a>' in overview
    assert 'href="/operations/" aria-current="page">Operations</a>' in operations


def test_signed_out_visitors_are_sent_to_the_login_page(db: None) -> None:
    for url in ("/overview/", "/operations/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(f"/login/?next={url}")


def test_without_a_snapshot_of_today_the_tiles_are_summary_computed_live(fleet: None, viewer: Client) -> None:
    page = html(viewer, "/overview/")

    expected = metrics.summary(today() - timedelta(days=metrics.SNAPSHOT_WINDOW - 1), today())
    for spec in TILES:
        metric = expected[spec.metric]
        assert tile_value(page, spec.metric) == formatted(metric.value, metric.unit), spec.metric
    assert expected["open_findings"].value == Finding.objects.filter(status="open").count()
    assert expected["kev_exposure"].value == 1  # openssl (in KEV) is open on web-1; web-2 lacks the package
    assert "computed live (no snapshot of today yet)" in page


def test_with_a_snapshot_of_today_the_tiles_show_it_and_it_equals_summary(fleet: None, viewer: Client) -> None:
    metrics.take_snapshot(today())

    page = html(viewer, "/overview/")

    expected = metrics.summary(today() - timedelta(days=metrics.SNAPSHOT_WINDOW - 1), today())
    for spec in TILES:
        metric = expected[spec.metric]
        assert tile_value(page, spec.metric) == formatted(metric.value, metric.unit), spec.metric
    assert f"the snapshot of {today().isoformat()}, taken" in page
    overdue = expected["overdue"].value
    assert f'<a href="/findings/?overdue=yes" class="status-bad">{formatted(overdue, "count")} overdue</a>' in page


def test_open_findings_by_priority_link_to_the_filtered_list(fleet: None, viewer: Client) -> None:
    page = html(viewer, "/overview/")

    counts = metrics.open_by_priority()
    tile = tile_html(page, "open_findings")
    for decision in ("Act", "Attend", "Track"):
        href = f"/findings/?decision={decision}"
        assert f'<a href="{href}"><span class="decision' in tile
        assert f'>{decision}</span><span class="count">{counts[decision]}</span>' in tile
    bars = chart_data(page, "chart-priority-data")
    assert dict(zip(bars["labels"], bars["datasets"][0]["data"], strict=True)) == {d: n for d, n in counts.items() if d}
    assert f"{sum(counts.values())} open findings: {counts['Act']} Act" in page


@pytest.mark.parametrize(
    ("metric", "href"),
    [
        ("risk_open", "/findings/?sort=-priority"),
        ("open_findings", "/findings/"),
        ("kev_exposure", "/findings/?kev=yes"),
        ("sla_compliance", "/findings/?overdue=yes"),
        ("coverage_hosts", "/hosts/?security=yes"),
        ("time_to_patch_fix", "/findings/?status=fixed"),
        ("failure_rate", "/rollouts/?state=halted"),
        ("mttd", "/feeds/"),
    ],
)
def test_each_tile_links_to_the_list_behind_it(fleet: None, viewer: Client, metric: str, href: str) -> None:
    page = html(viewer, "/overview/")

    assert f'<p class="card-note tile-link"><a href="{href}">' in tile_html(page, metric)
    assert viewer.get(href).status_code == 200


def test_trend_arrows_compare_with_the_snapshot_30_days_before_and_know_which_way_is_good(
    fleet: None, viewer: Client
) -> None:
    live = metrics.summary(today() - timedelta(days=metrics.SNAPSHOT_WINDOW - 1), today())
    risk, coverage = live["risk_open"].value, live["coverage_hosts"].value
    assert risk is not None
    assert coverage is not None
    snapshot(today() - timedelta(days=30), risk_open=risk - 100, coverage_hosts=coverage - 0.25, open_findings=None)

    page = html(viewer, "/overview/")

    risk_tile, coverage_tile = tile_html(page, "risk_open"), tile_html(page, "coverage_hosts")
    assert '<p class="trend trend-bad"><span class="trend-arrow" aria-hidden="true">↑</span>' in risk_tile
    assert "up 100 since 30 days before, worse" in risk_tile
    assert '<p class="trend trend-good"><span class="trend-arrow" aria-hidden="true">↑</span>' in coverage_tile
    assert "up 25.0 pts since 30 days before, better" in coverage_tile
    assert "no value 30 days before to compare with" in tile_html(page, "open_findings")


def test_a_past_day_shows_its_snapshot_and_charts_the_period(fleet: None, viewer: Client) -> None:
    day = today() - timedelta(days=10)
    for offset in range(0, 90, 3):  # every third day: the others are gaps
        snapshot(day - timedelta(days=offset), risk_open=1000 - offset, sla_compliance=0.5, kev_exposure=offset % 4)

    page = html(viewer, f"/overview/?days=90&as_of={day.isoformat()}")

    assert tile_value(page, "risk_open") == "1,000"
    assert tile_value(page, "sla_compliance") == "50.0%"
    assert tile_value(page, "failure_rate") == "—"
    assert "The two tables below show the fleet now" in page
    sla = chart_data(page, "chart-sla-data")
    assert len(sla["labels"]) == 90
    assert sla["labels"][-1] == day.isoformat()
    assert sla["datasets"][0]["data"][-1] == 50.0
    assert sla["datasets"][0]["data"][-2] is None  # no snapshot that day: a gap, not a zero
    risk = chart_data(page, "chart-risk-data")
    assert risk["datasets"][0]["data"][-1] == 1000
    assert "went from 913 on" in page
    assert f"to 1,000 on {day.isoformat()} (30 days with a value)" in page


def test_a_day_without_a_snapshot_says_so_and_points_to_the_nearest_earlier_one(fleet: None, viewer: Client) -> None:
    earlier, asked = today() - timedelta(days=12), today() - timedelta(days=5)
    snapshot(earlier, risk_open=5)

    page = html(viewer, f"/overview/?as_of={asked.isoformat()}")

    assert f"No snapshot for {asked.isoformat()}: nothing was recorded that day" in page
    assert f'<a href="/overview/?days=30&amp;as_of={earlier.isoformat()}">{earlier.isoformat()}</a>' in page
    assert tile_value(page, "risk_open") == "—"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("as_of=2999-01-01", "As of: 2999-01-01 is in the future, so the page shows today."),
        ("as_of=yesterday", "As of: Enter a valid date."),
        ("days=7", "Period: Select a valid choice. 7 is not one of the available choices."),
    ],
)
def test_bad_period_values_fall_back_and_say_so(fleet: None, viewer: Client, query: str, message: str) -> None:
    page = html(viewer, f"/overview/?{query}")

    assert 'class="notice notice-error" role="alert">' in page
    assert html_lib.escape(message) in page
    assert f'value="{today().isoformat()}"' in page or "as_of=2999" not in query


def test_the_period_form_gets_the_overview_body_alone_for_htmx(fleet: None, viewer: Client) -> None:
    fragment = html(viewer, "/overview/?days=90", HX_Request="true")

    assert fragment.startswith('<div id="overview-body"')
    assert "<html" not in fragment
    assert len(chart_data(fragment, "chart-sla-data")["labels"]) == 90


def test_charts_have_text_alternatives_and_the_script_is_vendored(fleet: None, viewer: Client) -> None:
    snapshot(today() - timedelta(days=1), risk_open=1, sla_compliance=0.75, kev_exposure=2)

    page = html(viewer, "/overview/")

    for chart in ("risk", "sla", "priority", "kev"):
        assert f'<canvas data-chart="chart-{chart}-data" role="img"' in page
        assert f'aria-describedby="chart-{chart}-summary"' in page
        assert f'<figcaption id="chart-{chart}-summary">' in page
    assert '<td class="num">75.0%</td>' in page  # the SLA chart's table
    assert "/static/patchday/vendor/chartjs/chart-4.6.1.umd.min.js" in page
    assert viewer.get("/static/patchday/vendor/chartjs/chart-4.6.1.umd.min.js").status_code == 200


def test_hostile_host_and_vulnerability_names_are_escaped(fleet: None, viewer: Client) -> None:
    Host.objects.filter(name="web-2").update(name=HOSTILE, last_seen_at=timezone.now() - timedelta(days=3))
    first = Finding.objects.filter(package="openssl", host__name="web-1").order_by("pk").first()
    assert first is not None
    Finding.objects.filter(pk=first.pk).update(vulnerability=HOSTILE)  # a top vulnerability: priority 90

    overview = html(viewer, "/overview/")
    operations = html(viewer, "/operations/")

    for page in (overview, operations):
        assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in overview
    assert 'href="/hosts/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/"' in overview  # a 404, never a 500
    assert 'href="/vulnerabilities/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/"' in overview
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in operations  # a stale host


def test_the_overview_stays_within_a_query_budget_whatever_the_period(fleet: None, viewer: Client) -> None:
    rollout = started_rollout()
    report(Job.objects.get(host__name="web-1"), ok=True)
    for offset in range(365):
        snapshot(today() - timedelta(days=offset), risk_open=offset, sla_compliance=0.9, kev_exposure=1)

    counts = []
    for days in (30, 365):
        with CaptureQueriesContext(connection) as queries:
            html(viewer, f"/overview/?days={days}")
        counts.append(len(queries))

    assert counts[0] == counts[1]  # no query per day or per row
    assert counts[1] <= QUERY_BUDGET, "\n".join(q["sql"][:200] for q in queries.captured_queries)
    assert rollout.pk


def test_the_burndown_shows_what_each_rollout_removed(fleet: None, viewer: Client) -> None:
    rollout = started_rollout()
    report(Job.objects.get(host__name="web-1"), ok=True)
    upgraded("web-1", "0123456789abcdef0123456789abcdef")
    fixed = Finding.objects.filter(fixed_by_rollout=rollout.pk)
    assert fixed.exists()

    page = html(viewer, "/overview/")

    risk = chart_data(page, "chart-risk-data")
    bars = [d for d in risk["datasets"] if d.get("kind") == "bar"]
    assert [d["label"] for d in bars] == [f"Removed by rollout #{rollout.pk}"]
    assert bars[0]["data"][-1] == sum(f.priority_score or 0 for f in fixed)
    assert f'<a href="/rollouts/{rollout.pk}/">#{rollout.pk}</a>' in page


# -- operations -------------------------------------------------------------------------------------------


def started_rollout(name: str = "openssl now") -> Any:
    plan = plans.create_plan(SYSTEM_ACTOR, "olga", name, {"kind": "security"}, {"hosts": ["web-1", "web-2"]}, {}, RINGS)
    plans.submit(SYSTEM_ACTOR, plan.pk)
    plans.decide(SYSTEM_ACTOR, "alma", plan.pk, True, "go")
    return driver.start(SYSTEM_ACTOR, plan.pk)


def report(job: Job, ok: bool) -> Job:
    """Lease the job as its agent would and post a deploy result."""
    (lease,) = driver.lease_jobs(job.host_id)
    result = {
        "job_id": job.pk,
        "kind": "deploy",
        "status": "succeeded" if ok else "failed",
        "error": "" if ok else "apt-get exited with 100",
        "steps": [{"name": "install", "argv": ["apt-get", "install", "-y"], "exit_code": 0 if ok else 100}],
        "before": {"openssl": {"version": OPENSSL_FROM, "arch": "amd64"}},
        "after": {"openssl": {"version": OPENSSL_TO if ok else OPENSSL_FROM, "arch": "amd64"}},
    }
    checked = check_result(result, job.pk, "deploy")
    return driver.record_result(job.host_id, job.pk, lease.token, f"{job.pk}:deploy:1", "deploy", checked)


def upgraded(hostname: str, machine_id: str) -> None:
    """The host's next inventory, with openssl at the plan's version: it verifies the host's job."""
    packages = [replace(p, version=OPENSSL_TO) if p.name == "openssl" else p for p in real_host()]
    ingest.store_document(SYSTEM_ACTOR, document(packages, hostname=hostname, machine_id=machine_id), mode="agent")


def test_operations_lists_what_needs_doing_today_each_with_its_full_page(fleet: None, viewer: Client) -> None:
    now = datetime.now(UTC)
    soon = (now + timedelta(hours=2)).replace(tzinfo=None, second=0, microsecond=0)
    windows.create_window(SYSTEM_ACTOR, "nightly", "FREQ=DAILY", 60, "UTC", soon.isoformat(), groups=())
    windows.create_window(SYSTEM_ACTOR, "monthly", "FREQ=MONTHLY", 60, "UTC", (soon + timedelta(days=3)).isoformat())
    rollout = started_rollout()
    failed = report(Job.objects.get(host__name="web-1"), ok=False)
    waiting = plans.create_plan(SYSTEM_ACTOR, "olga", "krb5 soon", {"kind": "security"}, {"hosts": ["web-2"]}, {}, [])
    plans.submit(SYSTEM_ACTOR, waiting.pk)
    interval = expected_interval(ManagementMode.AGENT)
    assert interval is not None
    Host.objects.filter(name="web-2").update(last_seen_at=now - interval * 5)  # stale: 3 to 30 missed check-ins

    page = html(viewer, "/operations/")

    windows_part = page.split('id="ops-windows"')[1].split("</section>")[0]
    assert "nightly" in windows_part
    assert "monthly" not in windows_part
    assert soon.strftime("%Y-%m-%d %H:%M") in windows_part
    assert 'href="/windows/">All windows</a>' in windows_part
    rollouts_part = page.split('id="ops-rollouts"')[1].split("</section>")[0]
    assert f'<a href="/rollouts/{rollout.pk}/">#{rollout.pk} openssl now</a>' in rollouts_part
    assert f'href="/rollouts/{rollout.pk}/?job_state=failed" class="status-bad">1</a>' in rollouts_part
    assert 'href="/rollouts/?state=running">Running rollouts</a>' in rollouts_part
    failures_part = page.split('id="ops-failures"')[1].split("</section>")[0]
    assert f'<a href="/jobs/{failed.pk}/">Job #{failed.pk}</a>' in failures_part
    assert "apt-get exited with 100" in failures_part
    approvals_part = page.split('id="ops-approvals"')[1].split("</section>")[0]
    assert f'<a href="/plans/{waiting.pk}/">#{waiting.pk} krb5 soon</a>' in approvals_part
    assert 'href="/approvals/">Approvals inbox</a>' in approvals_part
    stale_part = page.split('id="ops-stale"')[1].split("</section>")[0]
    assert 'href="/hosts/web-2/">web-2</a>' in stale_part
    assert 'href="/hosts/?freshness=stale">All stale hosts</a>' in stale_part
    assert "No lost host." in page


def test_operations_on_a_quiet_day_says_there_is_nothing_to_do(db: None, viewer: Client) -> None:
    page = html(viewer, "/operations/")

    for empty in (
        "No maintenance window opens in the next 24 hours.",
        "No rollout is running, paused or halted.",
        "No failed job needs attention.",
        "No plan awaits a decision.",
        "No stale host.",
        "No lost host.",
    ):
        assert empty in page


def test_the_overview_of_an_empty_fleet_renders_without_values(db: None, viewer: Client) -> None:
    page = html(viewer, "/overview/")

    assert tile_value(page, "risk_open") == "—"
    assert "No host has an open finding." in page
    assert "No snapshot of SLA compliance in this period." in page
