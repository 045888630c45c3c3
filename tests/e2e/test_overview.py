"""The report pages in a real browser: the executive overview draws its charts (Chart.js, vendored) from seeded
snapshots in light and dark themes, keeps working through the period form, and the operations page lists
what needs doing today. Screenshots of both pages are saved in the test's tmp directory."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from patchday.advisories import feed_imports
from patchday.advisories.models import KevEntry
from patchday.core.roles import Role
from patchday.findings.models import Finding
from patchday.inventory import ingest
from patchday.reports import metrics
from patchday.reports.models import MetricSnapshot
from patchday.rollouts import plans
from tests.conftest import SYSTEM_ACTOR
from tests.e2e.conftest import Seeded, sign_in
from tests.support.documents import document, pending_update
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.e2e

OPENSSL_FROM, OPENSSL_TO = "3.0.19-1~deb12u2", "3.0.99-1~deb12u1"
CHARTS = ("chart-risk-data", "chart-sla-data", "chart-priority-data", "chart-kev-data")

# True when the canvas has at least one pixel that is not fully transparent: something was drawn.
DRAWN = """canvas => {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) return true; }
  return false;
}"""
CHART_POINTS = "canvas => { const c = window.Chart.getChart(canvas); return c ? c.data.datasets[0].data : null; }"


def seed_fleet() -> None:
    """web-1 and web-2 with real findings (pinned priorities), a KEV entry, and 60 days of daily snapshots."""
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    pending = [pending_update("openssl", OPENSSL_FROM, OPENSSL_TO)]
    ingest.store_document(SYSTEM_ACTOR, document(real_host(), pending=pending), mode="agent")
    ingest.store_document(
        SYSTEM_ACTOR, document(real_host()[:400], hostname="web-2", machine_id="2" * 32, pending=pending), mode="agent"
    )
    Finding.objects.update(priority_score=20, priority_decision="Track")
    Finding.objects.filter(package="openssl").update(priority_score=90, priority_decision="Act")
    Finding.objects.filter(package="gnutls28").update(priority_score=60, priority_decision="Attend")
    KevEntry.objects.create(
        cve_id="CVE-2026-7383", vendor="OpenSSL", product="OpenSSL", name="OpenSSL flaw", date_added=date(2026, 1, 1)
    )
    today = timezone.now().astimezone(UTC).date()
    for offset in range(1, 61):  # yesterday and the 59 days before; today's comes from summary() live
        values = {"risk_open": 4000 + 25 * offset, "sla_compliance": 0.6 + offset / 200, "kev_exposure": 1 + offset % 3}
        for name in metrics.METRIC_NAMES:
            label, unit = metrics.LABELS[name]
            MetricSnapshot.objects.create(
                day=today - timedelta(days=offset),
                name=name,
                scope="",
                value=values.get(name),
                detail={"label": label, "unit": unit, "detail": {}, "excluded": 0, "excluded_reasons": {}},
                taken_at=datetime.now(UTC),
            )


def canvas(page: Page, data_id: str) -> Locator:
    return page.locator(f'canvas[data-chart="{data_id}"]')


def expect_drawn(page: Page, data_id: str) -> None:
    chart = canvas(page, data_id)
    expect(chart).to_be_visible()
    page.wait_for_function(
        "id => { const c = document.querySelector(`canvas[data-chart='${id}']`);"
        " return !!(window.Chart && c && window.Chart.getChart(c)); }",
        arg=data_id,
    )
    page.wait_for_timeout(400)  # the draw animation (300 ms) ends
    assert chart.evaluate(DRAWN), f"{data_id}: nothing drawn"


def test_the_executive_overview_draws_real_charts_from_seeded_data(seeded: Seeded, page: Page, tmp_path: Path) -> None:
    seed_fleet()
    password = seeded.user("erin", Role.VIEWER)
    sign_in(page, "erin", password)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()

    expect(page.get_by_role("heading", name="Executive overview", level=1)).to_be_visible()
    risk = page.get_by_role("article", name="Risk now")
    expect(risk.locator(".metric")).to_have_text(re.compile(r"^[\d,]+$"))
    expect(risk.locator(".trend")).to_contain_text("since 30 days before")
    for data_id in CHARTS:
        expect_drawn(page, data_id)
    sla = canvas(page, "chart-sla-data").evaluate(CHART_POINTS)
    assert len(sla) == 30
    assert sla[-2] == 60.5
    expect(page.get_by_role("table", name="Riskiest hosts")).to_contain_text("web-1")
    page.screenshot(path=tmp_path / "overview-light.png", full_page=True)

    page.get_by_label("Period", exact=True).select_option("90")  # HTMX swaps the body; charts are drawn again
    expect(page).to_have_url(re.compile(r"/overview/\?days=90"))
    page.wait_for_function(
        "() => { const c = document.querySelector(`canvas[data-chart='chart-sla-data']`);"
        " const chart = c && window.Chart.getChart(c); return !!chart && chart.data.labels.length === 90; }"
    )
    expect_drawn(page, "chart-risk-data")

    page.get_by_role("article", name="KEV-exposed hosts").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/findings/\?kev=yes$"))
    expect(page.get_by_role("heading", name="Findings", level=1)).to_be_visible()


def test_the_overview_is_readable_in_the_dark_theme_and_without_pictures(
    seeded: Seeded, page: Page, tmp_path: Path
) -> None:
    seed_fleet()
    password = seeded.user("erin", Role.VIEWER)
    sign_in(page, "erin", password)
    page.emulate_media(color_scheme="dark")

    page.goto("/overview/")

    for data_id in CHARTS:
        expect_drawn(page, data_id)
    tick_colour = canvas(page, "chart-sla-data").evaluate("c => window.Chart.getChart(c).options.scales.y.ticks.color")
    assert tick_colour == "#9aa3b2"  # --pd-chart-text of the dark theme
    page.screenshot(path=tmp_path / "overview-dark.png", full_page=True)
    page.emulate_media(color_scheme="light")  # the charts follow a theme change without a reload
    page.wait_for_function(
        "() => window.Chart.getChart(document.querySelector(`canvas[data-chart='chart-sla-data']`))"
        ".options.scales.y.ticks.color === '#646b79'"
    )

    figure = page.get_by_role("figure", name="SLA compliance")
    expect(figure.get_by_role("img")).to_have_attribute("aria-describedby", "chart-sla-summary")
    expect(figure.locator("figcaption")).to_contain_text("SLA compliance went from")
    figure.get_by_text("SLA compliance by day, as a table").click()
    expect(figure.get_by_role("table")).to_contain_text("60.5%")


def test_the_operations_page_lists_what_needs_doing_today(seeded: Seeded, page: Page, tmp_path: Path) -> None:
    seed_fleet()
    plan = plans.create_plan(
        SYSTEM_ACTOR, "olga", "openssl <tonight>", {"kind": "security"}, {"hosts": ["web-1"]}, {}, []
    )
    plans.submit(SYSTEM_ACTOR, plan.pk)
    soon = (datetime.now(UTC) + timedelta(hours=3)).replace(tzinfo=None, second=0, microsecond=0)
    answer = seeded.api(
        "POST",
        "windows",
        {"name": "nightly", "rrule": "FREQ=DAILY", "duration_minutes": 90, "timezone": "UTC",
         "starts": soon.isoformat()},
    )  # fmt: skip
    assert answer.status == 201, answer
    password = seeded.user("olga", Role.OPERATOR)
    sign_in(page, "olga", password)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Operations").click()

    expect(page.get_by_role("heading", name="Operations", level=1)).to_be_visible()
    expect(page.get_by_role("table", name=re.compile(r"^Maintenance windows opening"))).to_contain_text("nightly")
    approvals = page.get_by_role("table", name=re.compile(r"^Approvals waiting"))
    expect(approvals).to_contain_text("openssl <tonight>")
    expect(page.get_by_role("table", name=re.compile(r"^Rollouts under way"))).to_contain_text(
        "No rollout is running, paused or halted."
    )
    page.screenshot(path=tmp_path / "operations.png", full_page=True)

    page.get_by_role("link", name="Approvals inbox").click()
    expect(page.get_by_role("heading", name="Approvals", level=1)).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="openssl <tonight>")).to_be_visible()


def test_the_overview_is_keyboard_navigable_from_the_skip_link(seeded: Seeded, page: Page) -> None:
    seed_fleet()
    password = seeded.user("erin", Role.VIEWER)
    sign_in(page, "erin", password)
    page.goto("/overview/")

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    # the focus is inside the content now, past the navigation: the page's own links and then its form
    assert page.evaluate("() => document.getElementById('content').contains(document.activeElement)")
    period = page.get_by_label("Period", exact=True)
    for _ in range(5):  # notices above the form (e.g. the bundled feed snapshot's) may hold a link or two
        if period.evaluate("e => e === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(period).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("As of")).to_be_focused()  # (Chromium then tabs through the date's own fields)
    page.keyboard.press("Shift+Tab")
    expect(period).to_be_focused()
