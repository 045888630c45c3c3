"""Risk acceptance in a real browser: an operator requests an exception from a finding's page, an approver
approves it in the inbox, and the finding shows accepted."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from patchday.advisories import feed_imports
from patchday.core.roles import Role
from patchday.findings.queries import refresh_marked
from patchday.inventory import ingest
from tests.conftest import SYSTEM_ACTOR
from tests.e2e.conftest import Seeded, sign_in
from tests.support.documents import document
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.e2e

OPENSSL_CVE = "CVE-2026-7383"  # DSA-6335-1: the real host's openssl is inside its range


def seed_findings() -> None:
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    ingest.store_document(SYSTEM_ACTOR, document(real_host()), mode="agent")
    refresh_marked()  # what the every-minute findings.queue task does for the patch-first page


def test_an_operator_requests_an_exception_and_an_approver_approves_it(
    seeded: Seeded, page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    seed_findings()
    olga, alma = seeded.user("olga", Role.OPERATOR), seeded.user("alma", Role.APPROVER)
    sign_in(page, "olga", olga)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Findings").click()
    expect(page.get_by_role("heading", name="Patch first", level=1)).to_be_visible()
    page.get_by_role("rowheader").get_by_role("link", name="openssl", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/findings/\?package=openssl"))
    page.get_by_role("link", name=re.compile(rf"^Finding \d+: {OPENSSL_CVE} on web-1$")).click()
    expect(page.get_by_role("heading", name=f"{OPENSSL_CVE} on web-1", level=1)).to_be_visible()
    page.get_by_label("Justification", exact=True).fill("the TLS endpoint sits behind a terminating proxy until Friday")
    page.get_by_role("button", name="Request exception").click()
    expect(page.get_by_role("status")).to_contain_text("is requested; another approver decides it")
    expect(page.locator(".head-badges")).to_contain_text("open")

    approver = new_context().new_page()
    sign_in(approver, "alma", alma)
    nav = approver.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name=re.compile(r"^Exceptions 1 awaiting a decision$"))).to_be_visible()
    nav.get_by_role("link", name=re.compile(r"^Exceptions")).click()
    row = approver.get_by_role("row").filter(has_text="behind a terminating proxy")
    expect(row).to_contain_text("olga")
    row.get_by_label(re.compile(r"^Comment on exception")).fill("ok until the proxy is retired")
    row.get_by_role("button", name="Approve").click()
    expect(approver.get_by_role("status")).to_contain_text("is approved: its findings are accepted")
    expect(approver.get_by_role("navigation", name="Exceptions by state")).to_contain_text("Approved 1")

    page.reload()
    expect(page.locator(".head-badges")).to_contain_text("accepted")
    expect(page.get_by_role("table").filter(has_text="behind a terminating proxy")).to_contain_text("approved")
    expect(page.get_by_role("list").filter(has_text="approved by alma")).to_be_visible()
