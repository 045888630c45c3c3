"""The findings pages: the patch-first queue, the list (filters, sort, CSV), one finding, the exceptions inbox."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from patchday.accounts.models import User
from patchday.advisories import feed_imports
from patchday.advisories.models import KevEntry
from patchday.core.roles import Role
from patchday.findings.models import Confidence, Finding, FindingStatus, RiskException
from patchday.inventory import ingest
from tests.conftest import SYSTEM_ACTOR
from tests.support.documents import document, pending_update
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
OPENSSL_CVE = "CVE-2026-7383"  # DSA-6335-1: the real host's openssl is inside its range
JUSTIFICATION = "compensating control: the service is not exposed"


def seed() -> None:
    """web-1 (every package, a pending openssl update) and web-2 (the first 400 packages), with priorities set."""
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    packages = real_host()
    pending = [pending_update("openssl", "3.0.19-1~deb12u2", "3.0.99-1~deb12u1")]  # past every fix
    ingest.store_document(SYSTEM_ACTOR, document(packages, pending=pending), mode="agent")
    ingest.store_document(SYSTEM_ACTOR, document(packages[:400], hostname="web-2", machine_id="2" * 32), mode="agent")
    today = timezone.localdate()
    # Pin known priorities (the ledger computes real ones) so the pages' order and badges are predictable.
    Finding.objects.update(priority_score=20, priority_decision="Track", due_date=today + timedelta(days=90))
    Finding.objects.filter(package="openssl").update(
        priority_score=90, priority_decision="Act", due_date=today - timedelta(days=3)
    )
    Finding.objects.filter(package="gnutls28").update(
        priority_score=60, priority_decision="Attend", due_date=today + timedelta(days=5)
    )
    requeue()


def requeue() -> None:
    """The "patch first" lines follow the ledger's own changes; rows changed behind its back need a refresh."""
    from patchday.findings.models import PatchAction
    from patchday.findings.queries import refresh_actions

    refresh_actions(
        {*Finding.objects.values_list("package", flat=True), *PatchAction.objects.values_list("package", flat=True)}
    )


@pytest.fixture
def fleet() -> None:
    seed()


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


@pytest.fixture
def operator(page_as: Callable[..., Client]) -> Client:
    return page_as(Role.OPERATOR)


@pytest.fixture
def approver(page_as: Callable[..., Client]) -> Client:
    return page_as(Role.APPROVER)


def open_finding(**lookup: Any) -> Finding:
    found = Finding.objects.filter(status=FindingStatus.OPEN, **lookup).order_by("id").first()
    assert found is not None
    return found


def listed(client: Client, query: str = "") -> list[int]:
    response = client.get(f"/findings/?{query}")
    assert response.status_code == 200, response.content[:500]
    return [row.finding.pk for row in response.context["page"]]


def all_listed(client: Client, query: str = "") -> list[int]:
    """Every page of the list, in order."""
    ids: list[int] = []
    page = 1
    while True:
        response = client.get(f"/findings/?{query}&page={page}")
        ids += [row.finding.pk for row in response.context["page"]]
        if not response.context["page"].has_next():
            return ids
        page += 1


def ids(**lookup: Any) -> set[int]:
    return set(Finding.objects.filter(**lookup).values_list("pk", flat=True))


# -- the patch-first queue -----------------------------------------------------------------------------


def queue_rows(client: Client, query: str = "") -> list[Any]:
    rows: list[Any] = []
    page = 1
    while True:
        response = client.get(f"/findings/queue/?{query}&page={page}")
        assert response.status_code == 200
        rows += list(response.context["page"])
        if not response.context["page"].has_next():
            return rows
        page += 1


def test_the_queue_totals_equal_the_open_findings_with_a_fix(fleet: None, viewer: Client) -> None:
    with_fix = Finding.objects.filter(status=FindingStatus.OPEN).exclude(fixed_version="")
    Finding.objects.filter(pk=with_fix.first().pk).update(status=FindingStatus.FIXED)  # type: ignore[union-attr]
    requeue()

    rows = queue_rows(viewer)
    response = viewer.get("/findings/queue/")

    assert sum(row.findings for row in rows) == with_fix.count() == response.context["open_with_fix"]
    assert f'<strong class="queue-total">{with_fix.count()}</strong>' in response.content.decode()
    groups = with_fix.values("package", "fixed_version").distinct().count()
    assert len(rows) == groups == response.context["page"].paginator.count


def test_the_queue_puts_the_most_urgent_update_first_with_its_decision_and_due_date(
    fleet: None, viewer: Client
) -> None:
    response = viewer.get("/findings/queue/")
    html = response.content.decode()
    rows = list(response.context["page"])

    openssl = Finding.objects.filter(package="openssl", status="open").exclude(fixed_version="")
    updates = openssl.values("fixed_version").distinct().count()  # two openssl updates: each closes its own CVEs
    assert [(r.package, r.top_score, r.decision) for r in rows[: updates + 1]] == [
        *[("openssl", 90, "Act")] * updates,
        ("gnutls28", 60, "Attend"),
    ]
    assert all(r.overdue for r in rows[:updates])
    assert not rows[updates].overdue
    assert sum(r.findings for r in rows[:updates]) == openssl.count()
    assert sum(r.vulnerabilities for r in rows[:updates]) == openssl.values("vulnerability").distinct().count()
    gnutls = rows[updates]
    assert (gnutls.hosts, gnutls.findings) == (2, Finding.objects.filter(package="gnutls28", status="open").count())
    assert 'href="/findings/?package=openssl"' in html
    assert '<span class="decision decision-act"' in html
    assert 'class="status-bad">' in html
    assert '<span class="badge badge-bad">overdue</span>' in html
    scores = [(-(r.top_score or 0), r.earliest_due or date.max) for r in rows]
    assert scores == sorted(scores)


def test_the_queue_filters_by_host(fleet: None, viewer: Client) -> None:
    rows = queue_rows(viewer, "host=web-2")
    expected = Finding.objects.filter(host__name="web-2", status="open").exclude(fixed_version="")

    assert sum(row.findings for row in rows) == expected.count()
    assert all(row.hosts == 1 for row in rows)
    html = viewer.get("/findings/queue/?host=web-2").content.decode()
    assert 'href="/findings/?package=gnutls28&amp;host=web-2"' in html
    assert (
        "No open finding on nowhere has a published fix."
        in viewer.get("/findings/queue/?host=nowhere").content.decode()
    )


def test_the_queue_says_when_nothing_is_prioritized(fleet: None, viewer: Client) -> None:
    Finding.objects.update(priority_score=None, priority_decision="", due_date=None)
    requeue()

    html = viewer.get("/findings/queue/").content.decode()

    assert "not yet prioritized" in html


# -- the list --------------------------------------------------------------------------------------------


def test_the_list_shows_open_findings_most_urgent_first_with_links(fleet: None, viewer: Client) -> None:
    response = viewer.get("/findings/")
    html = response.content.decode()
    rows = list(response.context["page"])

    assert response.context["page"].paginator.count == Finding.objects.filter(status="open").count()
    assert rows[0].finding.package == "openssl"
    assert rows[0].sla == "overdue"
    first = rows[0].finding
    assert f'href="/findings/{first.pk}/"' in html
    assert f'href="/vulnerabilities/{first.vulnerability}/"' in html
    assert 'href="/hosts/web-1/"' in html
    assert "openssl 3.0.99-1~deb12u1" in html  # the pending update that fixes it
    assert '<span class="badge badge-bad">overdue</span>' in html
    assert '<span class="badge badge-warn">due soon</span>' in html  # gnutls28, due in 5 days
    assert '<span class="badge badge-ok">on track</span>' in html


def test_a_finding_not_yet_prioritized_says_so(fleet: None, viewer: Client) -> None:
    Finding.objects.update(priority_score=None, priority_decision="", due_date=None)

    assert "not yet prioritized" in viewer.get("/findings/").content.decode()


def test_a_changelog_only_finding_is_labelled_as_lower_confidence(fleet: None, viewer: Client) -> None:
    finding = open_finding(package="jq")
    Finding.objects.filter(pk=finding.pk).update(confidence=Confidence.CHANGELOG)

    html = viewer.get("/findings/?confidence=changelog").content.decode()

    assert set(listed(viewer, "confidence=changelog")) == ids(confidence="changelog", status="open") >= {finding.pk}
    assert 'title="Lower confidence: only the changelog of a pending update names this vulnerability' in html
    assert ">changelog only</span>" in html


@pytest.mark.parametrize(
    ("query", "lookup"),
    [
        ("host=web-2", {"host__name": "web-2", "status": "open"}),
        (f"vulnerability={OPENSSL_CVE.lower()}", {"vulnerability": OPENSSL_CVE, "status": "open"}),
        ("package=gnutls28", {"package": "gnutls28", "status": "open"}),
        ("decision=Act", {"priority_decision": "Act", "status": "open"}),
        ("decision=Attend&host=web-1", {"priority_decision": "Attend", "host__name": "web-1", "status": "open"}),
        ("overdue=yes", {"package": "openssl", "status": "open"}),
        ("confidence=advisory", {"confidence": "advisory", "status": "open"}),
        ("confidence=changelog", {"confidence": "changelog", "status": "open"}),
        ("status=fixed", {"status": "fixed"}),
        ("status=any", {}),
        ("status=bogus", {"status": "open"}),  # not a status: ignored, with the error shown
    ],
)
def test_filters(fleet: None, viewer: Client, query: str, lookup: dict[str, Any]) -> None:
    Finding.objects.filter(package="krb5").update(status=FindingStatus.FIXED)

    assert set(all_listed(viewer, query)) == ids(**lookup)


def test_the_kev_filter_keeps_the_known_exploited_findings(fleet: None, viewer: Client) -> None:
    KevEntry.objects.create(
        cve_id=OPENSSL_CVE, vendor="OpenSSL", product="OpenSSL", name="OpenSSL flaw", date_added=date(2026, 1, 1)
    )

    assert set(all_listed(viewer, "kev=yes")) == ids(vulnerability=OPENSSL_CVE, status="open")
    assert set(all_listed(viewer, "kev=no")) == ids(status="open") - ids(vulnerability=OPENSSL_CVE)


def test_an_unknown_filter_value_is_shown_as_an_error_and_kept_in_its_select(fleet: None, viewer: Client) -> None:
    html = viewer.get("/findings/?decision=Panic").content.decode()

    assert 'role="alert">Decision: Select a valid choice.' in html
    assert '<option value="Panic" selected>Panic</option>' in html


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("package", lambda f: (f.package, -(f.priority_score or 0))),
        ("-package", lambda f: (tuple(-ord(c) for c in f.package),)),
        ("host", lambda f: (f.host.name, -(f.priority_score or 0))),
        ("due", lambda f: (f.due_date,)),
        ("priority", lambda f: (f.priority_score,)),
    ],
)
def test_sorting_by_a_column(fleet: None, viewer: Client, sort: str, key: Callable[[Finding], Any]) -> None:
    response = viewer.get(f"/findings/?sort={sort}&status=any")
    shown = [row.finding for row in response.context["page"]]

    assert [key(f) for f in shown] == sorted(key(f) for f in shown)
    assert response.context["sort"] == sort


@pytest.mark.parametrize(
    "sort", ["package; DROP TABLE findings_finding", "host__password", "-advisory_ids", "1", "-", "?", "' OR 1=1 --"]
)
def test_a_sort_outside_the_whitelist_is_ignored(fleet: None, viewer: Client, sort: str) -> None:
    assert listed(viewer, f"sort={quote(sort)}") == listed(viewer)


def test_sort_links_keep_the_filter_and_toggle_the_direction(fleet: None, viewer: Client) -> None:
    html = viewer.get("/findings/?host=web-1&sort=package&page=1").content.decode()

    assert 'aria-sort="ascending"><a href="?host=web-1&amp;sort=-package"' in html
    assert '<a href="?host=web-1&amp;sort=-priority"' in html  # priority: most urgent first on the first click
    assert '<a href="?host=web-1&amp;sort=due"' in html
    assert '<input type="hidden" name="sort" id="filter-sort" value="package">' in html


def test_htmx_gets_the_table_only_with_the_sort_kept_out_of_band(fleet: None, viewer: Client) -> None:
    response = viewer.get("/findings/?host=web-2&sort=-package", headers={"HX-Request": "true"})
    html = response.content.decode()

    assert response.status_code == 200
    assert "<html" not in html
    assert '<form method="get"' not in html
    assert '<table class="data findings-list">' in html
    assert 'id="filter-sort" value="-package" hx-swap-oob="true"' in html
    packages = [row.finding.package for row in response.context["page"]]
    assert packages == sorted(packages, reverse=True)


def test_the_list_is_paginated(fleet: None, viewer: Client) -> None:
    total = Finding.objects.filter(status="open").count()
    assert total > 50

    first = viewer.get("/findings/?host=web-1")
    everything = all_listed(viewer, "status=any")

    assert len(first.context["page"].object_list) == 50
    assert 'href="?host=web-1&amp;page=2" rel="next"' in first.content.decode()
    assert len(everything) == len(set(everything)) == Finding.objects.count()


# -- CSV export ----------------------------------------------------------------------------------------


def export(client: Client, query: str = "") -> list[dict[str, str]]:
    response = client.get(f"/findings/export.csv?{query}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_the_csv_export_holds_every_filtered_sorted_finding(fleet: None, viewer: Client) -> None:
    rows = export(viewer, "host=web-1&sort=package")

    assert len(rows) == Finding.objects.filter(host__name="web-1", status="open").count()  # every page
    assert [r["package"] for r in rows] == sorted(r["package"] for r in rows)
    openssl = next(r for r in rows if r["vulnerability"] == OPENSSL_CVE)
    assert (openssl["host"], openssl["priority_score"], openssl["priority_decision"]) == ("web-1", "90", "Act")
    assert (openssl["sla_state"], openssl["fixing_update"]) == ("overdue", "openssl 3.0.99-1~deb12u1")


def test_the_csv_export_neutralises_formulas(fleet: None, viewer: Client) -> None:
    finding = open_finding(package="jq")
    Finding.objects.filter(pk=finding.pk).update(
        package='=HYPERLINK("http://evil.example","x")', fixing_update="+1", installed_version="-2+3"
    )
    Finding.objects.filter(pk=open_finding(package="krb5").pk).update(fixed_version="@SUM(A1)")

    rows = {int(r["id"]): r for r in export(viewer)}

    assert rows[finding.pk]["package"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[finding.pk]["fixing_update"] == "'+1"
    assert rows[finding.pk]["installed_version"] == "'-2+3"
    assert "'@SUM(A1)" in {r["fixed_version"] for r in rows.values()}


# -- one finding -----------------------------------------------------------------------------------------


def test_the_finding_page_explains_the_priority_and_shows_the_due_date_advisories_and_history(
    fleet: None, viewer: Client
) -> None:
    finding = open_finding(vulnerability=OPENSSL_CVE, host__name="web-1")
    Finding.objects.filter(pk=finding.pk).update(
        priority_explanation=[
            {"input": "KEV", "value": "yes", "effect": "exploited in the wild", "points": 30},
            {"input": "EPSS", "value": "missing", "effect": "no EPSS score", "text": "EPSS: missing — not scored"},
            "fix: available",
        ]
    )

    response = viewer.get(f"/findings/{finding.pk}/")
    html = response.content.decode()

    assert response.status_code == 200
    assert f"<h1>{OPENSSL_CVE} on web-1</h1>" in html
    assert "<strong>KEV</strong>: yes — exploited in the wild" in html
    assert '<span class="points">+30</span>' in html
    assert "EPSS: missing — not scored" in html
    assert "<li>fix: available</li>" in html
    assert "overdue</span> by 3 days" in html
    assert "<code>DSA-6335-1</code>" in html
    assert "detected: agent inventory" in html
    assert 'href="/hosts/web-1/"' in html
    assert f'href="/vulnerabilities/{OPENSSL_CVE}/"' in html
    assert "Request an exception" not in html  # a viewer may not


def test_an_unknown_finding_is_a_404_page(viewer: Client) -> None:
    response = viewer.get("/findings/999999/")

    assert response.status_code == 404
    assert "Unknown finding" in response.content.decode()


# -- exceptions ------------------------------------------------------------------------------------------


def request_exception(client: Client, finding: Finding, **overrides: str) -> Any:
    body = {
        "justification": JUSTIFICATION,
        "expires_at": (timezone.localdate() + timedelta(days=30)).isoformat(),
        **overrides,
    }
    return client.post(f"/findings/{finding.pk}/exception/", body)


def test_an_operator_requests_an_exception_and_another_user_approves_it(
    fleet: None, operator: Client, approver: Client
) -> None:
    finding = open_finding(vulnerability=OPENSSL_CVE, host__name="web-1")
    assert "Request an exception" in operator.get(f"/findings/{finding.pk}/").content.decode()

    requested = request_exception(operator, finding)

    assert requested.status_code == 302
    assert requested["Location"] == f"/findings/{finding.pk}/"
    record = RiskException.objects.get()
    assert (record.finding_id, record.requested_by, record.state) == (finding.pk, "pages-operator", "requested")
    inbox = operator.get("/exceptions/").content.decode()
    assert "awaiting another approver" in inbox
    assert "exception-decide" not in inbox
    assert 'name="decision"' not in inbox
    assert 'name="decision" value="approve"' in approver.get("/exceptions/").content.decode()

    decided = approver.post(f"/exceptions/{record.pk}/decide/", {"decision": "approve", "comment": "until Friday"})

    assert decided.status_code == 302
    assert decided["Location"] == "/exceptions/?state=requested"
    finding.refresh_from_db()
    assert finding.status == FindingStatus.ACCEPTED
    assert RiskException.objects.get().decided_by == "pages-approver"
    followed = approver.get(decided["Location"]).content.decode()
    assert f"Exception {record.pk} (finding {finding.pk}) is approved" in followed
    page = operator.get(f"/findings/{finding.pk}/").content.decode()
    assert '<span class="badge" title="an approved exception accepts the risk until it expires">accepted</span>' in page
    assert f"exception {record.pk} approved by pages-approver" in page
    assert "until Friday" in approver.get("/exceptions/?state=approved").content.decode()


def test_an_approver_rejects_and_later_revokes(fleet: None, operator: Client, approver: Client) -> None:
    first, second = open_finding(package="openssl"), open_finding(package="gnutls28")
    request_exception(operator, first)
    request_exception(operator, second)
    rejected_id, approved_id = sorted(RiskException.objects.values_list("pk", flat=True))

    approver.post(f"/exceptions/{rejected_id}/decide/", {"decision": "reject"})
    approver.post(f"/exceptions/{approved_id}/decide/", {"decision": "approve"})
    assert 'aria-label="Revoke exception' in approver.get("/exceptions/?state=approved").content.decode()
    revoked = approver.post(f"/exceptions/{approved_id}/revoke/", {"state": "approved"})

    assert revoked["Location"] == "/exceptions/?state=approved"
    states = dict(RiskException.objects.values_list("pk", "state"))
    assert states == {rejected_id: "rejected", approved_id: "revoked"}
    second.refresh_from_db()
    first.refresh_from_db()
    assert (first.status, second.status) == ("open", "open")
    tabs = {t.state: t.count for t in approver.get("/exceptions/").context["tabs"]}
    assert tabs == {"requested": 0, "approved": 0, "rejected": 1, "expired": 0, "revoked": 1}


def test_the_requester_cannot_approve_their_own_exception_and_is_told_why(
    fleet: None, page_as: Callable[..., Client]
) -> None:
    admin = page_as(Role.ADMIN)  # may request and approve, but not both for one exception
    finding = open_finding(package="openssl")
    request_exception(admin, finding)
    record = RiskException.objects.get()
    assert "awaiting another approver" in admin.get("/exceptions/").content.decode()

    answer = admin.post(f"/exceptions/{record.pk}/decide/", {"decision": "approve"}, follow=True)

    assert answer.status_code == 200
    html = answer.content.decode()
    assert f"Exception {record.pk} is not decided: the requester of an exception cannot approve" in html
    assert 'class="flash-error" role="alert"' in html
    assert RiskException.objects.get().state == "requested"
    finding.refresh_from_db()
    assert finding.status == "open"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"justification": "because"}, "Justification: an exception needs a justification of at least 10 characters"),
        ({"justification": ""}, "Justification: This field is required."),
        ({"expires_at": "2020-01-01"}, "Expires on: an exception needs an expiry in the future"),
        ({"expires_at": "2099-01-01"}, "Expires on: an exception may last at most a year"),
        ({"expires_at": "next week"}, "Expires on: Enter a valid date."),
    ],
)
def test_a_bad_request_shows_the_error_beside_the_form(
    fleet: None, operator: Client, overrides: dict[str, str], message: str
) -> None:
    answer = request_exception(operator, open_finding(package="openssl"), **overrides)

    assert answer.status_code == 400
    html = answer.content.decode()
    assert f'<p class="field-error" role="alert">{message}' in html
    assert 'aria-invalid="true"' in html
    assert not RiskException.objects.exists()


def test_deciding_an_exception_twice_or_an_unknown_one_is_a_message(
    fleet: None, operator: Client, approver: Client
) -> None:
    request_exception(operator, open_finding(package="openssl"))
    record = RiskException.objects.get()
    approver.post(f"/exceptions/{record.pk}/decide/", {"decision": "approve"})

    again = approver.post(f"/exceptions/{record.pk}/decide/", {"decision": "reject"}, follow=True).content.decode()
    unknown = approver.post("/exceptions/999999/decide/", {"decision": "approve"}, follow=True).content.decode()
    neither = approver.post(f"/exceptions/{record.pk}/revoke/", follow=True)

    assert f"Exception {record.pk} is not decided: exception {record.pk} is approved, not awaiting a decision" in again
    assert "Exception 999999 is not decided: no exception with id 999999" in unknown
    assert neither.status_code == 200
    assert RiskException.objects.get().state == "revoked"


def test_viewers_and_operators_may_not_decide(fleet: None, viewer: Client, operator: Client) -> None:
    finding = open_finding(package="openssl")
    request_exception(operator, finding)
    record = RiskException.objects.get()

    assert request_exception(viewer, finding).status_code == 403
    assert viewer.post(f"/exceptions/{record.pk}/decide/", {"decision": "approve"}).status_code == 403
    assert viewer.post(f"/exceptions/{record.pk}/revoke/").status_code == 403
    assert operator.post(f"/exceptions/{record.pk}/decide/", {"decision": "approve"}).status_code == 403
    assert RiskException.objects.count() == 1
    assert RiskException.objects.get().state == "requested"


def test_the_exceptions_nav_item_counts_requests_for_approvers_only(
    fleet: None, viewer: Client, operator: Client, approver: Client
) -> None:
    request_exception(operator, open_finding(package="openssl"))
    request_exception(operator, open_finding(package="gnutls28"))

    items = {item["label"]: item for item in approver.get("/").context["nav_items"]}
    labels = [item["label"] for item in viewer.get("/").context["nav_items"]]

    assert labels[:5] == ["Overview", "Hosts", "Findings", "Exceptions", "Vulnerabilities"]
    assert (items["Findings"]["url"], items["Exceptions"]["count"]) == ("/findings/queue/", 2)
    assert '<span class="badge nav-count" title="2 awaiting a decision">2' in approver.get("/").content.decode()
    assert "nav-count" not in viewer.get("/").content.decode()
    current = [i["label"] for i in viewer.get("/findings/").context["nav_items"] if i["current"]]
    assert current == ["Findings"]


# -- escaping ---------------------------------------------------------------------------------------------


def test_data_is_escaped_on_every_page(fleet: None, operator: Client, approver: Client) -> None:
    finding = open_finding(package="openssl", host__name="web-1")
    Finding.objects.filter(pk=finding.pk).update(
        package=HOSTILE, fixing_update=HOSTILE, installed_version=HOSTILE, advisory_ids=[HOSTILE]
    )
    Finding.objects.filter(pk=finding.pk).update(
        priority_explanation=[{"text": HOSTILE}, {"input": HOSTILE, "value": HOSTILE, "effect": HOSTILE}, HOSTILE]
    )
    requeue()
    request_exception(operator, finding, justification=f"{HOSTILE} is harmless here")
    record = RiskException.objects.get()
    approver.post(f"/exceptions/{record.pk}/decide/", {"decision": "reject", "comment": HOSTILE})

    pages = [
        operator.get(f"/findings/queue/?host={quote(HOSTILE)}"),
        operator.get("/findings/queue/"),
        operator.get("/findings/?status=any&sort=package"),
        operator.get(f"/findings/?package={quote(HOSTILE)}&status=any"),
        operator.get(f"/findings/{finding.pk}/"),
        operator.get("/exceptions/?state=rejected"),
        request_exception(operator, finding, justification=HOSTILE),  # the form shows the text back
    ]
    for response in pages:
        html = response.content.decode()
        assert "<script>alert(1)" not in html, response.request["PATH_INFO"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1].content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; is harmless here" in pages[5].content.decode()


# -- query budgets -----------------------------------------------------------------------------------------


def more_findings() -> None:
    """A third and a fourth host with every package: twice the findings, the same pages."""
    for number, name in ((3, "web-3"), (4, "web-4")):
        doc = document(real_host(), hostname=name, machine_id=f"{number:032x}")
        ingest.store_document(SYSTEM_ACTOR, doc, mode="agent")


@pytest.mark.parametrize(
    "path",
    ["/findings/queue/", "/findings/", "/findings/?status=any&sort=host", "/findings/export.csv", "/exceptions/"],
)
def test_the_pages_cost_the_same_queries_for_few_findings_or_many(
    fleet: None, approver: Client, operator: Client, django_assert_max_num_queries: Any, path: str
) -> None:
    for finding in Finding.objects.filter(status="open")[:3]:
        request_exception(operator, finding)
    with django_assert_max_num_queries(12):
        assert approver.get(path).status_code == 200
    more_findings()
    for finding in Finding.objects.filter(status="open", host__name="web-3")[:20]:
        request_exception(operator, finding)
    assert Finding.objects.aggregate(n=Count("id"))["n"] > 200
    with django_assert_max_num_queries(12):
        assert approver.get(path).status_code == 200


def test_the_finding_page_costs_a_fixed_number_of_queries(
    fleet: None, operator: Client, django_assert_max_num_queries: Any
) -> None:
    finding = open_finding(package="openssl")
    for _ in range(3):
        request_exception(operator, finding)
    with django_assert_max_num_queries(12):
        assert operator.get(f"/findings/{finding.pk}/").status_code == 200
