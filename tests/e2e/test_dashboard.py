"""The dashboard shell in a real browser: signing in and out, users and roles, API tokens, the audit trail."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from patchday.core.roles import Role
from tests.e2e.conftest import ADMIN_PASSWORD, BOOTSTRAP, MOBILE, Seeded, call_api, sign_in

pytestmark = pytest.mark.e2e

WRONG_CREDENTIALS = "Wrong username or password, or the account is disabled"


def main_nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def open_user_menu(page: Page) -> None:
    # A <summary> has no ARIA role of its own, so the disclosure is opened through its element.
    page.locator("details.user-menu > summary").click()


def test_login_page_is_served_and_the_admin_signs_in_to_the_overview(seeded: Seeded, page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    sign_in(page, "admin", ADMIN_PASSWORD)

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Users", level=2)).to_be_visible()
    for label in ("Overview", "Audit trail", "Users", "API tokens"):
        expect(main_nav(page).get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(main_nav(page).get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")


def test_admin_creates_a_user_whose_generated_password_is_shown_once_and_works(
    seeded: Seeded, page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    sign_in(page, "admin", ADMIN_PASSWORD)
    main_nav(page).get_by_role("link", name="Users").click()
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Role", exact=True).select_option("operator")
    page.get_by_role("button", name="Create user").click()

    generated = page.get_by_label("Generated password")
    expect(generated).to_be_visible()
    password = generated.input_value()
    assert len(password) >= 20
    expect(page.get_by_label("Role of dana", exact=True)).to_have_value("operator")

    page.goto("/users/")
    expect(page.get_by_label("Generated password")).to_have_count(0)
    expect(page.get_by_text(password)).to_have_count(0)

    dana = new_context().new_page()
    sign_in(dana, "dana", password)
    expect(dana.get_by_role("heading", name="Overview")).to_be_visible()
    expect(dana.get_by_text("Signed in as dana with role operator")).to_be_visible()


def test_admin_changes_a_role_and_disables_a_user_who_then_cannot_sign_in(
    seeded: Seeded, page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    password = seeded.user("erin", Role.VIEWER)
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/users/")

    page.get_by_label("Role of erin", exact=True).select_option("auditor")
    page.get_by_role("button", name="Save role of erin").click()
    expect(page.get_by_role("status")).to_have_text("erin is now auditor.")
    expect(page.get_by_label("Role of erin", exact=True)).to_have_value("auditor")

    page.get_by_role("button", name="Disable erin").click()
    expect(page.get_by_role("status")).to_have_text("erin is disabled.")
    erin_row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="erin", exact=True))
    expect(erin_row.get_by_text("disabled", exact=True)).to_be_visible()
    expect(erin_row.get_by_role("button", name="Enable erin")).to_be_visible()

    erin = new_context().new_page()
    sign_in(erin, "erin", password)
    expect(erin.get_by_role("alert")).to_have_text(WRONG_CREDENTIALS)
    expect(erin).to_have_url(re.compile(r"/login/"))


def test_token_secret_is_shown_once_works_against_the_api_and_stops_working_when_revoked(
    seeded: Seeded, page: Page
) -> None:
    password = seeded.user("ops", Role.OPERATOR)
    sign_in(page, "ops", password)
    main_nav(page).get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("cell", name="No tokens yet")).to_be_visible()

    page.get_by_label("Name").fill("ci-pipeline")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("New token").input_value()
    assert secret.startswith("pd_")

    me = call_api(seeded.base_url, "GET", "me", secret)
    assert me.status == 200
    assert isinstance(me.body, dict)
    assert (me.body["username"], me.body["role"]) == ("ops", "operator")

    page.goto("/tokens/")
    expect(page.get_by_label("New token")).to_have_count(0)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="ci-pipeline"))
    expect(row.get_by_text("active", exact=True)).to_be_visible()

    row.get_by_role("button", name="Revoke ci-pipeline").click()
    expect(page.get_by_role("status")).to_contain_text("is revoked")
    expect(row.get_by_text("revoked", exact=True)).to_be_visible()
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)

    refused = call_api(seeded.base_url, "GET", "me", secret)
    assert refused.status == 401
    assert isinstance(refused.body, dict)
    assert refused.body["error"]["code"] == "not_authenticated"


def test_audit_trail_lists_the_changes_verifies_the_chain_and_filters(seeded: Seeded, page: Page) -> None:
    seeded.user("frank", Role.VIEWER)
    assert seeded.api("PATCH", "users/frank", {"role": "auditor"}).status == 200
    assert seeded.api("PATCH", "users/frank", {"active": False}).status == 200
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/tokens/")
    page.get_by_label("Name").fill("evidence-export")
    page.get_by_role("button", name="Create token").click()
    page.get_by_role("button", name="Revoke evidence-export").click()

    main_nav(page).get_by_role("link", name="Audit trail").click()
    records = page.locator("#records")
    for action, object_id in [
        ("user.create", "frank"),
        ("user.set_role", "frank"),
        ("user.disable", "frank"),
        ("session.login", "admin"),
        ("token.create", None),
        ("token.revoke", None),
    ]:
        row = records.get_by_role("row").filter(has=page.get_by_text(action, exact=True))
        if object_id:
            row = row.filter(has_text=object_id)
        expect(row.first).to_be_visible()
    expect(records.get_by_role("row").filter(has_text="user.set_role")).to_contain_text("admin/")  # via the API token

    page.get_by_role("button", name="Verify the chain").click()
    expect(page.get_by_text("Intact")).to_be_visible()

    page.get_by_label("Action").fill("user.")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=user\."))
    expect(records.get_by_text("session.login", exact=True)).to_have_count(0)
    expect(records.get_by_text("user.disable", exact=True)).to_be_visible()

    export = page.get_by_role("link", name="CSV").get_attribute("href")
    assert export is not None
    csv = page.request.get(export)  # the browser's session, as a click would send it
    assert csv.status == 200
    assert "user.set_role" in csv.text()
    assert "session.login" not in csv.text()


def test_viewer_sees_no_admin_areas_and_gets_the_forbidden_page(seeded: Seeded, page: Page) -> None:
    password = seeded.user("vera", Role.VIEWER)
    sign_in(page, "vera", password)

    expect(main_nav(page).get_by_role("link", name="Overview")).to_be_visible()
    expect(main_nav(page).get_by_role("link", name="API tokens")).to_be_visible()
    expect(main_nav(page).get_by_role("link", name="Users")).to_have_count(0)
    expect(main_nav(page).get_by_role("link", name="Audit trail")).to_have_count(0)

    for path in ("/users/", "/audit/"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(page.get_by_text("Your role (viewer) does not allow this page")).to_be_visible()


def test_five_wrong_passwords_throttle_the_login(seeded: Seeded, page: Page) -> None:
    for _ in range(5):
        sign_in(page, "admin", "not-the-password")
        expect(page.get_by_role("alert")).to_have_text(WRONG_CREDENTIALS)

    sign_in(page, "admin", ADMIN_PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("Too many failed sign-ins; try again in 15 minutes")
    expect(page).to_have_url(re.compile(r"/login/"))


def test_sign_out_returns_to_the_login_page(seeded: Seeded, page: Page) -> None:
    sign_in(page, "admin", ADMIN_PASSWORD)
    open_user_menu(page)
    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto("/users/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/users/$"))


def test_on_a_phone_the_navigation_folds_into_a_menu_and_tables_scroll_inside_the_page(
    seeded: Seeded, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(viewport=MOBILE).new_page()
    sign_in(page, "admin", ADMIN_PASSWORD)
    expect(main_nav(page).get_by_role("link", name="Users")).to_be_hidden()

    page.get_by_text("Menu", exact=True).click()
    main_nav(page).get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"]

    page.get_by_text("Menu", exact=True).click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")


def test_every_page_says_the_feeds_are_a_bundled_snapshot_until_real_data_arrives(seeded: Seeded, page: Page) -> None:
    from patchday.advisories import feed_imports
    from tests.support.fleet import FIXTURES

    # what `patchday up` does offline, for the smallest bundled file: load it with a bundled: origin
    name = "kev-2026.08.21.json.gz"
    bundled = feed_imports.SNAPSHOT_DIR / name
    load = feed_imports.loader_for(BOOTSTRAP, "kev", bundled)
    feed_imports.run_import(BOOTSTRAP, "kev", bundled, load, origin=f"{feed_imports.BUNDLED_PREFIX}{name}")

    page.goto("/")
    notice = page.get_by_role("status").filter(has_text="Feeds are from a bundled snapshot")
    expect(notice).to_contain_text("data of 2026-08-21")
    sign_in(page, "admin", ADMIN_PASSWORD)
    for path in ("/", "/vulnerabilities/", "/feeds/"):
        page.goto(path)
        expect(notice).to_be_visible()
    notice.get_by_role("link", name="See the feeds").click()
    expect(page.get_by_role("heading", name="Feeds", level=1)).to_be_visible()

    real = FIXTURES / "feeds" / "kev-2026.08.21-first200.json.gz"  # as `patchday feeds import` does
    feed_imports.run_import(BOOTSTRAP, "kev", real, feed_imports.loader_for(BOOTSTRAP, "kev", real))
    page.reload()
    expect(page.get_by_role("heading", name="Feeds", level=1)).to_be_visible()
    expect(notice).to_have_count(0)
