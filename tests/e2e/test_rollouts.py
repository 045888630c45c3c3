"""Deployment in a real browser: an operator plans and submits a deployment, an approver approves it from the
inbox, and the operator starts it and watches the rollout page update its rings without a reload."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from patchday.advisories import feed_imports
from patchday.core.roles import Role
from patchday.inventory import ingest, services
from patchday.inventory.services import HostChanges
from patchday.rollouts import driver
from patchday.rollouts.models import Job
from patchday.rollouts.results import check_result
from tests.conftest import SYSTEM_ACTOR
from tests.e2e.conftest import Seeded, sign_in
from tests.support.documents import document, pending_update
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.e2e

OPENSSL_FROM, OPENSSL_TO = "3.0.19-1~deb12u2", "3.0.99-1~deb12u1"
RINGS = [{"name": "pilot", "tags": ["pilot"]}, {"name": "broad"}]


def seed_fleet() -> None:
    """web-1 (tagged pilot) and web-2, both offered a security update of openssl."""
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    pending = [pending_update("openssl", OPENSSL_FROM, OPENSSL_TO)]
    ingest.store_document(SYSTEM_ACTOR, document(real_host(), pending=pending), mode="agent")
    ingest.store_document(
        SYSTEM_ACTOR, document(real_host(), hostname="web-2", machine_id="2" * 32, pending=pending), mode="agent"
    )
    services.set_attributes(SYSTEM_ACTOR, ["web-1"], HostChanges(add_tags=("pilot",)).check())


def agent_reports_success(host_name: str) -> None:
    """What the host's agent does on check-in: lease its job and post a successful result."""
    job = Job.objects.get(host__name=host_name)
    (lease,) = driver.lease_jobs(job.host_id)
    result = {
        "job_id": job.pk,
        "kind": "deploy",
        "status": "succeeded",
        "steps": [{"name": "install", "argv": ["apt-get", "install", "-y"], "exit_code": 0}],
        "before": {"openssl": {"version": OPENSSL_FROM}},
        "after": {"openssl": {"version": OPENSSL_TO}},
    }
    checked = check_result(result, job.pk, "deploy")
    driver.record_result(job.host_id, job.pk, lease.token, f"{job.pk}:deploy", "deploy", checked)


def test_an_operator_plans_an_approver_approves_and_the_rollout_runs_live(
    seeded: Seeded, page: Page, new_context: Callable[..., BrowserContext], tmp_path: Path
) -> None:
    seed_fleet()
    olga, alma = seeded.user("olga", Role.OPERATOR), seeded.user("alma", Role.APPROVER)
    sign_in(page, "olga", olga)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Plans").click()
    expect(page.get_by_role("heading", name="Plans", level=1)).to_be_visible()
    page.get_by_role("button", name="New plan").click()
    expect(page.get_by_role("heading", name="New plan", level=1)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("openssl <now>")
    page.get_by_label("Updates to deploy").select_option("security")
    page.get_by_label("Hosts", exact=True).fill("web-1, web-2")
    page.get_by_label(re.compile(r"^Rings")).fill(json.dumps(RINGS))
    page.screenshot(path=tmp_path / "1-new-plan.png", full_page=True)
    page.get_by_role("button", name="Create plan and preview").click()

    expect(page.get_by_role("heading", name="openssl <now>", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("is a draft: check its preview")
    pilot = page.get_by_role("table", name="Hosts of ring pilot")
    web_1 = pilot.get_by_role("row").filter(has_text="web-1")
    expect(web_1).to_contain_text(f"openssl {OPENSSL_FROM}")
    expect(web_1).to_contain_text(OPENSSL_TO)
    expect(page.get_by_role("table", name="Hosts of ring broad")).to_contain_text("web-2")
    page.screenshot(path=tmp_path / "2-plan-preview.png", full_page=True)
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_role("status")).to_contain_text("awaits approval by another approver")
    expect(page.locator(".head-badges")).to_contain_text("pending approval")

    approver = new_context().new_page()
    sign_in(approver, "alma", alma)
    nav = approver.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name=re.compile(r"^Approvals 1 awaiting a decision$"))).to_be_visible()
    nav.get_by_role("link", name=re.compile(r"^Approvals")).click()
    row = approver.get_by_role("row").filter(has_text="openssl <now>")
    expect(row).to_contain_text("olga")
    row.get_by_label(re.compile(r"^Comment on plan")).fill("pilot first, fine")
    approver.screenshot(path=tmp_path / "3-approvals-inbox.png", full_page=True)
    row.get_by_role("button", name="Approve").click()
    expect(approver.get_by_role("status")).to_contain_text("is approved: an operator may start it")
    expect(approver.get_by_text("No plan awaits a decision.")).to_be_visible()

    page.reload()
    expect(page.get_by_role("listitem").filter(has_text="by alma")).to_contain_text("pilot first, fine")
    page.get_by_role("button", name="Start rollout").click()
    expect(page).to_have_url(re.compile(r"/rollouts/\d+/$"))
    expect(page.get_by_role("status")).to_contain_text("is running: its first ring is open")
    pilot_ring = page.get_by_role("article", name="Ring pilot")
    expect(pilot_ring).to_contain_text("running")
    expect(page.get_by_role("article", name="Ring broad")).to_contain_text("waiting")
    expect(pilot_ring.get_by_role("progressbar")).to_have_attribute("value", "0")
    page.screenshot(path=tmp_path / "4-rollout-started.png", full_page=True)

    agent_reports_success("web-1")  # no reload below: the page polls its progress every 3 seconds
    jobs = page.get_by_role("table").filter(has_text="Executor")
    expect(jobs.get_by_role("row").filter(has_text="web-1")).to_contain_text("succeeded", timeout=10_000)
    page.screenshot(path=tmp_path / "5-rollout-live.png", full_page=True)
