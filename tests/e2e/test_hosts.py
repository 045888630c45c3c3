"""The fleet pages in a real browser: an operator filters the hosts list, opens a host and edits it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from patchday.core.roles import Role
from patchday.inventory import ingest, services
from tests.conftest import SYSTEM_ACTOR
from tests.e2e.conftest import Seeded, sign_in
from tests.support.documents import document, pending_update
from tests.support.fleet import real_host

pytestmark = pytest.mark.e2e


def seed_fleet() -> None:
    """web-1 (prod, a pending security update), web-2 (prod, stale), db-1 (staging)."""
    packages = real_host()[:60]
    hosts = [("web-1", timedelta()), ("web-2", timedelta(hours=2)), ("db-1", timedelta())]
    for number, (name, ago) in enumerate(hosts, start=1):
        pending = [pending_update("openssl", "3.0.19-1~deb12u2", "3.0.19-1~deb12u3")] if name == "web-1" else []
        doc = document(packages, hostname=name, machine_id=f"{number:032x}", pending=pending)
        ingest.store_document(SYSTEM_ACTOR, doc, mode="agent", now=timezone.now() - ago)
    services.set_attributes(SYSTEM_ACTOR, ["web-1", "web-2"], services.HostChanges(environment="prod"))
    services.set_attributes(SYSTEM_ACTOR, ["db-1"], services.HostChanges(environment="staging"))


def host_rows(page: Page) -> Locator:
    return page.locator("table.hosts-list tbody tr")


def focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.id : ''"))


def tab_until(page: Page, test: str, limit: int = 60) -> None:
    """Press Tab until the JavaScript `test` on the focused element `e` holds (fails after `limit` presses)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(e => Boolean({test}))(document.activeElement)"):
            return
    raise AssertionError(f"no element with {test} was reached with {limit} presses of Tab")


def tab_to(page: Page, element_id: str) -> None:
    tab_until(page, f"e && e.id === {element_id!r}")


def test_an_operator_filters_the_hosts_opens_one_and_edits_its_criticality(seeded: Seeded, page: Page) -> None:
    seed_fleet()
    password = seeded.user("olga", Role.OPERATOR)
    sign_in(page, "olga", password)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Hosts").click()
    expect(page.get_by_role("heading", name="Hosts", level=1)).to_be_visible()
    expect(host_rows(page)).to_have_count(3)
    expect(page.get_by_role("navigation", name="Hosts by freshness")).to_contain_text("Stale 1")

    page.get_by_label("Environment").first.select_option("prod")  # HTMX swaps the table in
    expect(host_rows(page)).to_have_count(2)
    expect(page).to_have_url(re.compile(r"environment=prod"))
    page.get_by_label("Security updates").select_option("yes")
    expect(host_rows(page)).to_have_count(1)
    expect(page.get_by_role("button", name="Save this filter as a dynamic group")).to_be_visible()

    page.get_by_role("link", name="web-1", exact=True).click()
    expect(page.get_by_role("heading", name="web-1", level=1)).to_be_visible()
    expect(page.locator("#pending").get_by_role("rowheader", name="openssl amd64")).to_be_visible()
    page.get_by_label("Criticality").select_option("1")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Saved criticality of web-1.")
    expect(page.get_by_label("Criticality")).to_have_value("1")
    expect(page.get_by_text("mission-critical · internal")).to_be_visible()


def test_the_filter_form_works_with_the_keyboard_alone(seeded: Seeded, page: Page) -> None:
    seed_fleet()
    password = seeded.user("kim", Role.OPERATOR)
    sign_in(page, "kim", password)
    page.goto("/hosts/")
    expect(host_rows(page)).to_have_count(3)

    tab_to(page, "filter-q")
    page.keyboard.type("web")
    page.keyboard.press("Enter")
    expect(host_rows(page)).to_have_count(2)
    expect(page).to_have_url(re.compile(r"q=web"))
    assert focused_id(page) == "filter-q"  # the form is not replaced: the focus stays where it was

    tab_to(page, "filter-freshness")
    page.keyboard.press("ArrowDown")  # Any -> Fresh
    expect(page.locator("#filter-freshness")).to_have_value("fresh")
    tab_to(page, "filter-security")
    page.keyboard.press("ArrowDown")  # Any -> security updates pending
    expect(host_rows(page)).to_have_count(1)
    expect(host_rows(page).first).to_contain_text("web-1")

    page.wait_for_load_state("networkidle")  # every HTMX swap has landed: none resets the focus while tabbing
    page.keyboard.press("Shift+Tab")
    assert focused_id(page) == "filter-reboot"
    tab_until(page, "e && e.textContent === 'web-1'", limit=120)  # on past the bulk form to the host's link
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="web-1", level=1)).to_be_visible()
