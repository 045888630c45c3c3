"""Each role in a real browser: what its navigation shows, and what it may do. An approver approves a plan from
the inbox; a viewer who opens an operator's page gets the 403 page; everyone reads the report pages."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from patchday.advisories import feed_imports
from patchday.core.roles import Role
from patchday.inventory import ingest
from patchday.rollouts import plans
from patchday.rollouts.models import Plan
from tests.conftest import SYSTEM_ACTOR
from tests.e2e.conftest import ADMIN_PASSWORD, Seeded, sign_in
from tests.support.documents import document, pending_update
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.e2e

EVERYONE = ("Overview", "Hosts", "Findings", "Exceptions", "Vulnerabilities", "Plans", "Approvals", "Rollouts",
            "Operations", "Reports", "Feeds", "API tokens")  # fmt: skip
# Entries only some roles see: the audit trail (READ_AUDIT) and user management (ADMINISTER).
ONLY: dict[str, frozenset[Role]] = {
    "Audit trail": frozenset({Role.ADMIN, Role.AUDITOR}),
    "Users": frozenset({Role.ADMIN}),
}
USERNAMES = {
    Role.ADMIN: "admin",
    Role.OPERATOR: "olga",
    Role.APPROVER: "alma",
    Role.AUDITOR: "aude",
    Role.VIEWER: "vic",
}


def main_nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def seed_plan() -> int:
    """web-1 offered an openssl security update, and a plan of it by olga awaiting approval."""
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    pending = [pending_update("openssl", "3.0.19-1~deb12u2", "3.0.99-1~deb12u1")]
    ingest.store_document(SYSTEM_ACTOR, document(real_host(), pending=pending), mode="agent")
    plan = plans.create_plan(
        SYSTEM_ACTOR, "olga", "openssl tonight", {"kind": "security"}, {"hosts": ["web-1"]}, {}, []
    )
    plans.submit(SYSTEM_ACTOR, plan.pk)
    return plan.pk


def signed_in(seeded: Seeded, new_context: Callable[..., BrowserContext], role: Role) -> Page:
    username = USERNAMES[role]
    password = ADMIN_PASSWORD if role is Role.ADMIN else seeded.user(username, role)
    page = new_context().new_page()
    sign_in(page, username, password)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    return page


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_the_navigation_its_permissions_allow(
    seeded: Seeded, new_context: Callable[..., BrowserContext], role: Role
) -> None:
    page = signed_in(seeded, new_context, role)

    nav = main_nav(page)
    for label in EVERYONE:
        expect(nav.get_by_role("link", name=re.compile(rf"^{re.escape(label)}\b"))).to_be_visible()
    for label, roles in ONLY.items():
        expect(nav.get_by_role("link", name=label, exact=True)).to_have_count(1 if role in roles else 0)
    expect(page.locator("details.user-menu summary .badge")).to_have_text(role.value)

    nav.get_by_role("link", name="Reports").click()  # the report pages are everyone's
    expect(page.get_by_role("heading", name="Executive overview", level=1)).to_be_visible()
    nav.get_by_role("link", name="Operations").click()
    expect(page.get_by_role("heading", name="Operations", level=1)).to_be_visible()

    page.goto("/plans/")  # planning is operators' (and admins') work
    may_plan = role in (Role.ADMIN, Role.OPERATOR)
    expect(page.get_by_role("button", name="New plan")).to_have_count(1 if may_plan else 0)
    page.goto("/audit/")
    if role in ONLY["Audit trail"]:
        expect(page.get_by_role("heading", name="Audit trail", level=1)).to_be_visible()
    else:
        expect(page.get_by_role("heading", name="Not allowed", level=1)).to_be_visible()


def test_an_approver_approves_a_plan_that_others_may_only_read(
    seeded: Seeded, new_context: Callable[..., BrowserContext]
) -> None:
    plan_id = seed_plan()
    viewer = signed_in(seeded, new_context, Role.VIEWER)
    approver = signed_in(seeded, new_context, Role.APPROVER)

    main_nav(viewer).get_by_role("link", name=re.compile(r"^Approvals")).click()
    row = viewer.get_by_role("row").filter(has_text="openssl tonight")
    expect(row).to_contain_text("awaiting an approver")
    expect(row.get_by_role("button", name="Approve")).to_have_count(0)

    nav = main_nav(approver)
    expect(nav.get_by_role("link", name=re.compile(r"^Approvals 1 awaiting a decision$"))).to_be_visible()
    nav.get_by_role("link", name=re.compile(r"^Approvals")).click()
    row = approver.get_by_role("row").filter(has_text="openssl tonight")
    row.get_by_label(re.compile(r"^Comment on plan")).fill("fine for tonight")
    row.get_by_role("button", name="Approve").click()
    expect(approver.get_by_role("status")).to_contain_text("is approved: an operator may start it")
    expect(approver.get_by_text("No plan awaits a decision.")).to_be_visible()

    viewer.goto(f"/plans/{plan_id}/")
    expect(viewer.locator(".head-badges")).to_contain_text("approved")
    expect(viewer.get_by_role("button", name="Start rollout")).to_have_count(0)


def test_a_viewer_gets_403_on_an_operator_action(seeded: Seeded, new_context: Callable[..., BrowserContext]) -> None:
    plan_id = seed_plan()
    viewer = signed_in(seeded, new_context, Role.VIEWER)

    response = viewer.goto("/plans/new/")

    assert response is not None
    assert response.status == 403
    expect(viewer.get_by_role("heading", name="Not allowed", level=1)).to_be_visible()
    expect(viewer.get_by_text("it needs the operate permission")).to_be_visible()
    # what an operator's form would post, sent with the viewer's own session and CSRF token (the page's)
    status = viewer.evaluate(
        """async planId => {
             const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
             const body = new URLSearchParams({csrfmiddlewaretoken: token});
             const answer = await fetch(`/plans/${planId}/cancel/`, {method: "POST", body});
             return answer.status;
           }""",
        plan_id,
    )
    assert status == 403
    assert Plan.objects.get(pk=plan_id).state == "pending_approval"
