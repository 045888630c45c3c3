"""The fleet's dashboard pages: hosts list (filters, sort, CSV, bulk edit), host page, groups, enrollment."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from patchday.accounts.models import User
from patchday.advisories import services as advisories
from patchday.core.matching import InstalledPackage
from patchday.core.roles import Role
from patchday.findings import services as matcher
from patchday.inventory import ingest, services
from patchday.inventory.models import EnrollmentSecret, Host, HostGroup
from patchday.inventory.views import csv_cell
from tests.conftest import SYSTEM_ACTOR
from tests.support.documents import document, pending_update
from tests.support.fleet import ECOSYSTEM, debian_advisories, real_host

pytestmark = pytest.mark.django_db

HOSTILE_PACKAGE = "<script>alert(1)</script>"
HOSTILE_OWNER = '"><img src=x onerror=alert(1)>'
OPENSSL_CVE = "CVE-2026-7383"  # DSA-6335-1: the real host's openssl is inside its range


def store(name: str, number: int, packages: Any, *, ago: timedelta = timedelta(), mode: str = "agent", **extra: Any):  # type: ignore[no-untyped-def]
    doc = document(packages, hostname=name, machine_id=f"{number:032x}", **extra)
    return ingest.store_document(SYSTEM_ACTOR, doc, mode=mode, now=timezone.now() - ago).host


def seed() -> None:
    """web-1 fresh with updates, web-2 stale, db-1 lost, sbom-1 imported; attributes, tags and a static group."""
    packages = real_host()
    store(
        "web-1",
        1,
        packages,
        pending=[
            pending_update("openssl", "3.0.19-1~deb12u2", "3.0.19-1~deb12u3"),
            pending_update("vim", "2:9.0.1378-2", "2:9.0.1378-2+deb12u1", security=False),
        ],
        reboot={
            "required": True,
            "reasons": ["kernel 6.1.0-28-amd64 is installed, 6.1.0-27-amd64 runs"],
            "packages": [],
        },
        fqdn="web-1.example.org",
    )
    store("web-2", 2, packages[:100], ago=timedelta(hours=2))
    store("db-1", 3, packages[:50], ago=timedelta(days=2), reboot={"required": False, "reasons": [], "packages": []})
    store("sbom-1", 4, packages[:10], mode="import")
    changes = services.HostChanges
    services.set_attributes(
        SYSTEM_ACTOR,
        ["web-1"],
        changes(criticality=1, exposure="internet-facing", environment="prod", owner="alice", tags=("web", "pci")),
    )
    services.set_attributes(SYSTEM_ACTOR, ["web-2"], changes(environment="prod", tags=("web",)))
    services.set_attributes(SYSTEM_ACTOR, ["db-1"], changes(environment="staging", owner="bob", tags=("db",)))
    services.create_static_group(SYSTEM_ACTOR, "second-web", "", ["web-2"])


@pytest.fixture
def fleet() -> None:
    seed()


@pytest.fixture
def page_as(db: None) -> Callable[[Role], Client]:
    def signed_in(role: Role) -> Client:
        client = Client()
        # No password: force_login needs none, and an Argon2 hash costs seconds.
        client.force_login(User.objects.create_user(f"pages-{role.value}", role=role.value))
        return client

    return signed_in


@pytest.fixture
def viewer(page_as: Callable[[Role], Client]) -> Client:
    return page_as(Role.VIEWER)


@pytest.fixture
def operator(page_as: Callable[[Role], Client]) -> Client:
    return page_as(Role.OPERATOR)


@pytest.fixture
def admin(page_as: Callable[[Role], Client]) -> Client:
    return page_as(Role.ADMIN)


def listed(client: Client, query: str = "") -> list[str]:
    response = client.get(f"/hosts/?{query}")
    assert response.status_code == 200, response.content[:500]
    return [row.host.name for row in response.context["page"]]


def attributes(name: str) -> tuple[int, str, str, str, list[str]]:
    host = Host.objects.get(name=name)
    return host.criticality, host.exposure, host.environment, host.owner, sorted(t.tag for t in host.tags.all())


# -- the list ------------------------------------------------------------------------------------------


def test_the_list_shows_hosts_with_flags_counts_and_no_bulk_form_for_viewers(fleet: None, viewer: Client) -> None:
    response = viewer.get("/hosts/")
    html = response.content.decode()

    assert listed(viewer) == ["db-1", "sbom-1", "web-1", "web-2"]
    counts = response.context["counts"]
    assert (counts["fresh"], counts["stale"], counts["lost"], counts["static"]) == (1, 1, 1, 1)
    for state in ("fresh", "stale", "lost", "static"):
        assert f'href="/hosts/?freshness={state}"' in html
    assert '<span class="badge badge-warn" title="missed several check-ins">stale</span>' in html
    assert '<span class="badge badge-bad" title="has not reported for a long time">lost</span>' in html
    assert 'href="/hosts/web-1/"' in html
    assert "web-1.example.org" in html
    web_1 = next(row.host for row in response.context["page"] if row.host.name == "web-1")
    assert (web_1.package_count, web_1.pending_security, web_1.pending_regular) == (len(real_host()), 1, 1)
    assert "bulk-form" not in html
    assert 'name="host"' not in html
    assert "Save this filter" not in viewer.get("/hosts/?environment=prod").content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=web", ["web-1", "web-2"]),
        ("q=example.org", ["web-1"]),
        ("os=debian", ["db-1", "sbom-1", "web-1", "web-2"]),
        ("environment=prod", ["web-1", "web-2"]),
        ("exposure=internet-facing", ["web-1"]),
        ("criticality=1", ["web-1"]),
        ("owner=bob", ["db-1"]),
        ("tag=web", ["web-1", "web-2"]),
        ("group=second-web", ["web-2"]),
        ("mode=import", ["sbom-1"]),
        ("freshness=fresh", ["web-1"]),
        ("freshness=stale", ["web-2"]),
        ("freshness=lost", ["db-1"]),
        ("freshness=static", ["sbom-1"]),
        ("reboot=yes", ["web-1"]),
        ("reboot=no", ["db-1"]),
        ("security=yes", ["web-1"]),
        ("security=no", ["db-1", "sbom-1", "web-2"]),
        ("environment=prod&tag=web&freshness=stale", ["web-2"]),
    ],
)
def test_filters(fleet: None, viewer: Client, query: str, expected: list[str]) -> None:
    assert listed(viewer, query) == expected


def test_a_bad_filter_value_is_ignored_and_named_while_the_others_apply(fleet: None, viewer: Client) -> None:
    response = viewer.get("/hosts/?environment=prod&exposure=everywhere&group=no-such-group&criticality=7")

    assert response.status_code == 200
    assert [row.host.name for row in response.context["page"]] == ["web-1", "web-2"]
    html = response.content.decode()
    assert "no host group named &#x27;no-such-group&#x27;" in html
    assert "Exposure: Select a valid choice." in html


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["db-1", "sbom-1", "web-1", "web-2"]),
        ("-name", ["web-2", "web-1", "sbom-1", "db-1"]),
        ("packages", ["sbom-1", "db-1", "web-2", "web-1"]),
        ("-packages", ["web-1", "web-2", "db-1", "sbom-1"]),
        ("-seen", ["sbom-1", "web-1", "web-2", "db-1"]),
        ("criticality", ["web-1", "db-1", "sbom-1", "web-2"]),
        ("-security", ["web-1", "db-1", "sbom-1", "web-2"]),
        ("owner", ["sbom-1", "web-2", "web-1", "db-1"]),
    ],
)
def test_sorting_by_a_column(fleet: None, viewer: Client, sort: str, expected: list[str]) -> None:
    assert listed(viewer, f"sort={sort}") == expected


@pytest.mark.parametrize(
    "sort", ["name; DROP TABLE inventory_host", "machine_id", "-password", "tags__tag", "1", "-", "?", "' OR 1=1 --"]
)
def test_a_sort_outside_the_whitelist_is_ignored(fleet: None, viewer: Client, sort: str) -> None:
    from urllib.parse import quote

    assert listed(viewer, f"sort={quote(sort)}") == ["db-1", "sbom-1", "web-1", "web-2"]
    assert Host.objects.count() == 4


def test_sort_links_keep_the_filter_and_toggle_the_direction(fleet: None, viewer: Client) -> None:
    html = viewer.get("/hosts/?environment=prod&sort=packages&page=1").content.decode()

    assert 'aria-sort="ascending"><a href="?environment=prod&amp;sort=-packages"' in html
    assert '<a href="?environment=prod&amp;sort=owner"' in html
    assert '<input type="hidden" name="sort" id="filter-sort" value="packages">' in html


def test_htmx_gets_the_table_only_with_the_sort_kept_out_of_band(fleet: None, viewer: Client) -> None:
    response = viewer.get("/hosts/?tag=web&sort=-name", headers={"HX-Request": "true"})
    html = response.content.decode()

    assert response.status_code == 200
    assert "<html" not in html
    assert '<form method="get"' not in html
    assert '<table class="data hosts-list">' in html
    assert 'id="filter-sort" value="-name" hx-swap-oob="true"' in html
    assert [row.host.name for row in response.context["page"]] == ["web-2", "web-1"]


def test_the_list_is_paginated(viewer: Client) -> None:
    for number in range(55):
        Host.objects.create(name=f"imported-{number:02d}", created_at=timezone.now(), management_mode="import")

    first = viewer.get("/hosts/?mode=import")
    second = viewer.get("/hosts/?mode=import&page=2")

    assert len(first.context["page"].object_list) == 50
    assert [row.host.name for row in second.context["page"]] == [f"imported-{n}" for n in range(50, 55)]
    assert 'href="?mode=import&amp;page=2" rel="next"' in first.content.decode()


def test_the_list_costs_the_same_queries_for_few_hosts_or_many(
    fleet: None, viewer: Client, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(20):
        viewer.get("/hosts/")
    for number in range(40):
        Host.objects.create(name=f"many-{number:02d}", created_at=timezone.now(), management_mode="ssh")
    with django_assert_max_num_queries(20):
        viewer.get("/hosts/")


# -- CSV export ----------------------------------------------------------------------------------------


def export(client: Client, query: str = "") -> list[list[str]]:
    response = client.get(f"/hosts/export.csv?{query}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = response.content.decode()
    return list(csv.reader(io.StringIO(body)))


def test_the_csv_export_holds_the_filtered_sorted_hosts(fleet: None, viewer: Client) -> None:
    rows = export(viewer, "environment=prod&sort=-name")

    assert rows[0][:3] == ["name", "os", "kernel"]
    assert [row[0] for row in rows[1:]] == ["web-2", "web-1"]
    web_1 = dict(zip(rows[0], rows[2], strict=True))
    assert web_1["freshness"] == "fresh"
    assert web_1["tags"] == "pci web"
    assert (web_1["packages"], web_1["pending_security"], web_1["pending_regular"]) == (str(len(real_host())), "1", "1")
    assert web_1["reboot_required"] == "yes"


def test_the_csv_export_neutralises_formulas(fleet: None, viewer: Client) -> None:
    services.set_attributes(
        SYSTEM_ACTOR, ["web-1"], services.HostChanges(owner='=HYPERLINK("http://evil.example","x")', environment="+1")
    )
    services.set_attributes(SYSTEM_ACTOR, ["web-2"], services.HostChanges(owner="@SUM(A1)", environment="-2+3"))

    rows = {row[0]: dict(zip(export(viewer)[0], row, strict=True)) for row in export(viewer)[1:]}

    assert rows["web-1"]["owner"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows["web-1"]["environment"] == "'+1"
    assert rows["web-2"]["owner"] == "'@SUM(A1)"
    assert rows["web-2"]["environment"] == "'-2+3"
    assert rows["db-1"]["owner"] == "bob"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        (3, "3"),
        (None, ""),
    ],
)
def test_a_csv_cell_that_starts_like_a_formula_gets_an_apostrophe(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


# -- bulk edit -----------------------------------------------------------------------------------------


def test_an_operator_sees_the_bulk_form_and_the_save_filter_button(fleet: None, operator: Client) -> None:
    html = operator.get("/hosts/?environment=prod").content.decode()

    assert '<form id="bulk-form" method="post" action="/hosts/bulk/"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'name="host" value="web-1" form="bulk-form"' in html
    assert "Save this filter as a dynamic group" in html


def test_bulk_edit_sets_attributes_on_the_selected_hosts_and_returns_to_the_filter(
    fleet: None, operator: Client
) -> None:
    response = operator.post(
        "/hosts/bulk/",
        {
            "host": ["web-2", "db-1"],
            "criticality": "2",
            "exposure": "isolated",
            "owner": "carol",
            "add_tag": "patch-tuesday",
            "remove_tag": "db",
            "back": "environment=prod&sort=-name&evil=1",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/hosts/?environment=prod&sort=-name"
    assert attributes("web-2") == (2, "isolated", "prod", "carol", ["patch-tuesday", "web"])
    assert attributes("db-1") == (2, "isolated", "staging", "carol", ["patch-tuesday"])
    assert attributes("web-1") == (1, "internet-facing", "prod", "alice", ["pci", "web"])


@pytest.mark.parametrize(
    ("post", "error"),
    [
        ({"host": ["web-2", "no-such-host"], "owner": "carol"}, "no host named &#x27;no-such-host&#x27;"),
        ({"host": ["web-2", "db-1"], "owner": "carol", "add_tag": "bad tag!"}, "tag &#x27;bad tag!&#x27; must be"),
        ({"host": ["web-2", "db-1"], "owner": "carol", "criticality": "9"}, "Criticality: Select a valid choice."),
        ({"host": ["web-2"]}, "choose at least one attribute to set"),
        ({"owner": "carol"}, "name at least one host"),
    ],
)
def test_bulk_edit_is_all_or_nothing(fleet: None, operator: Client, post: dict[str, Any], error: str) -> None:
    before = {name: attributes(name) for name in ("web-1", "web-2", "db-1")}

    response = operator.post("/hosts/bulk/", {**post, "back": "tag=web"})

    assert response.status_code == 400
    html = response.content.decode()
    assert error in html
    assert 'class="field-error" role="alert"' in html
    assert {name: attributes(name) for name in before} == before
    assert [row.host.name for row in response.context["page"]] == ["web-1", "web-2"]  # the filter it came from
    for name in post.get("host", []):
        if name == "web-2":
            assert 'value="web-2" form="bulk-form" aria-label="Select web-2" checked' in html


def test_a_viewer_cannot_post_edits(fleet: None, viewer: Client) -> None:
    before = attributes("web-1")

    bulk = viewer.post("/hosts/bulk/", {"host": ["web-1"], "owner": "mallory"})
    edit = viewer.post("/hosts/web-1/edit/", {"criticality": "4", "exposure": "isolated", "owner": "mallory"})
    group = viewer.post("/hosts/groups/new/", {"name": "mine", "kind": "dynamic", "environment": "prod"})

    assert (bulk.status_code, edit.status_code, group.status_code) == (403, 403, 403)
    assert attributes("web-1") == before
    assert not HostGroup.objects.filter(name="mine").exists()
    assert 'action="/hosts/web-1/edit/"' not in viewer.get("/hosts/web-1/").content.decode()


# -- one host ------------------------------------------------------------------------------------------


def test_the_host_page_shows_facts_context_reboot_and_pending_updates(fleet: None, viewer: Client) -> None:
    response = viewer.get("/hosts/web-1/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "<h1>web-1</h1>" in html
    assert "Debian GNU/Linux 12 (bookworm)" in html
    assert "<code>6.1.0-27-amd64</code>" in html
    assert "<code>00000000000000000000000000000001</code>" in html  # the machine ID
    assert "kernel 6.1.0-28-amd64 is installed, 6.1.0-27-amd64 runs" in html
    assert '<span class="badge badge-bad">security</span>' in html
    assert '<span class="badge">regular</span>' in html
    assert '<a href="/vulnerabilities/CVE-2026-1234/">CVE-2026-1234</a>' in html  # from the changelog
    assert "1 · mission-critical" in html
    assert "alice" in html
    assert "second-web" not in html
    assert response.context["package_total"] == len(real_host())
    assert response.context["history"].paginator.count == len(real_host())  # all installed by the first inventory


def test_the_host_page_lists_groups_both_static_and_dynamic(fleet: None, viewer: Client) -> None:
    services.create_group(SYSTEM_ACTOR, "production", rule={"environment": "prod"})

    assert viewer.get("/hosts/web-2/").context["groups"] == ["production", "second-web"]
    assert viewer.get("/hosts/db-1/").context["groups"] == []


def test_installed_packages_are_searchable_and_paginated(fleet: None, viewer: Client) -> None:
    everything = viewer.get("/hosts/web-1/?ppage=2")
    searched = viewer.get("/hosts/web-1/?pq=ssl")

    assert len(everything.context["packages"].object_list) == 50
    assert everything.context["packages"].number == 2
    names = [p.name for p in searched.context["packages"]]
    assert "libssl3" in names
    assert "openssl" in names
    assert all("ssl" in n for n in names)
    assert "<code>openssl 3.0.19-1~deb12u2</code>" in searched.content.decode()  # libssl3's source package


def test_the_host_vulnerabilities_come_from_the_matches(fleet: None, viewer: Client) -> None:
    openssl = [a for a in debian_advisories() if any(p.name == "openssl" for p in a.affected)]
    report = advisories.import_advisories(SYSTEM_ACTOR, openssl, "debian-bookworm-osv")
    matcher.rematch_packages(report.touched)
    (dsa,) = [a for a in openssl if OPENSSL_CVE in a.cve_ids]
    fixed = {r.fixed for p in dsa.affected for r in p.ranges if r.fixed}

    response = viewer.get("/hosts/web-1/")
    rows = [v for v in response.context["vulnerabilities"] if v.cve_id == OPENSSL_CVE]

    assert {("libssl3", "3.0.19-1~deb12u2"), ("openssl", "3.0.19-1~deb12u2")} <= {(v.package, v.version) for v in rows}
    assert all(set(v.fixed_versions) == fixed for v in rows)
    assert f'<a href="/vulnerabilities/{OPENSSL_CVE}/">{OPENSSL_CVE}</a>' in response.content.decode()
    assert viewer.get("/hosts/sbom-1/").context["vulnerabilities"].paginator.count == 0  # no openssl there


def test_the_host_page_costs_a_fixed_number_of_queries(
    fleet: None, viewer: Client, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(25):
        viewer.get("/hosts/web-1/")


def test_an_operator_edits_the_business_context(fleet: None, operator: Client) -> None:
    response = operator.post(
        "/hosts/db-1/edit/",
        {
            "criticality": "2",
            "exposure": "internal",
            "environment": "",
            "owner": "dba team",
            "tags": "db, postgres  primary",
            "ring": "canary",
            "maintenance_window": "sun-02",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/hosts/db-1/"
    assert attributes("db-1") == (2, "internal", "", "dba team", ["db", "postgres", "primary"])
    host = Host.objects.get(name="db-1")
    assert (host.ring, host.maintenance_window) == ("canary", "sun-02")
    html = operator.get("/hosts/db-1/").content.decode()
    assert "Saved criticality, environment, maintenance window, owner, ring, tags of db-1." in html
    assert '<option value="2" selected>2 · high</option>' in html


def test_a_bad_edit_changes_nothing_and_says_why(fleet: None, operator: Client) -> None:
    before = attributes("db-1")

    bad_tag = operator.post("/hosts/db-1/edit/", {"criticality": "2", "exposure": "internal", "tags": "ok no/slash"})
    bad_value = operator.post("/hosts/db-1/edit/", {"criticality": "0", "exposure": "internal"})
    unknown = operator.post("/hosts/nobody/edit/", {"criticality": "2", "exposure": "internal"})

    assert bad_tag.status_code == 400
    assert "tag &#x27;no/slash&#x27; must be" in bad_tag.content.decode()
    assert bad_value.status_code == 400
    assert "Criticality: Select a valid choice." in bad_value.content.decode()
    assert unknown.status_code == 404
    assert attributes("db-1") == before


def test_an_unknown_host_answers_404(viewer: Client) -> None:
    response = viewer.get("/hosts/nobody/")

    assert response.status_code == 404
    assert "patchday knows no host <code>nobody</code>" in response.content.decode()


def test_what_was_installed_at_a_date(viewer: Client) -> None:
    old = InstalledPackage("alpha", "1.0", ECOSYSTEM, None, None, "amd64")
    kept = InstalledPackage("beta", "2.0", ECOSYSTEM, None, None, "amd64")
    new = InstalledPackage("gamma", "3.0", ECOSYSTEM, None, None, "amd64")
    upgraded = InstalledPackage("alpha", "1.1", ECOSYSTEM, None, None, "amd64")
    store("app-1", 9, [old, kept], ago=timedelta(days=20))
    store("app-1", 9, [upgraded, new], ago=timedelta(days=10))
    day = (timezone.now() - timedelta(days=15)).date().isoformat()
    before = (timezone.now() - timedelta(days=25)).date().isoformat()

    then = viewer.get(f"/hosts/app-1/?at={day}")
    earlier = viewer.get(f"/hosts/app-1/?at={before}")
    bad = viewer.get("/hosts/app-1/?at=yesterday")

    assert [(p.name, p.version) for p in then.context["packages"]] == [("alpha", "1.0"), ("beta", "2.0")]
    assert f"Installed on {day}" in then.content.decode()
    assert list(earlier.context["packages"]) == []
    assert [(p.name, p.version) for p in bad.context["packages"]] == [("alpha", "1.1"), ("gamma", "3.0")]
    assert "Installed on: Enter a valid date." in bad.content.decode()
    history = [(e.name, e.from_version, e.to_version) for e in then.context["history"]]
    assert history[:3] == [("alpha", "1.0", "1.1"), ("beta", "2.0", ""), ("gamma", "", "3.0")]


# -- escaping ------------------------------------------------------------------------------------------


def test_hostile_names_and_owners_are_shown_escaped(fleet: None, operator: Client) -> None:
    hostile = InstalledPackage(HOSTILE_PACKAGE, "1.0", ECOSYSTEM, None, None, "amd64")
    store(
        "evil-1",
        66,
        [hostile],
        pending=[pending_update(HOSTILE_PACKAGE, "1.0", "1.1")],
        errors=[{"collector": "dpkg", "message": "<b>boom</b>"}],
    )
    services.set_attributes(
        SYSTEM_ACTOR, ["evil-1"], services.HostChanges(owner=HOSTILE_OWNER, environment="<i>env</i>")
    )

    pages = [
        operator.get("/hosts/evil-1/").content.decode(),
        operator.get("/hosts/").content.decode(),
        operator.get("/hosts/?q=evil", headers={"HX-Request": "true"}).content.decode(),
    ]
    for html in pages:
        assert HOSTILE_OWNER not in html
        assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
        assert "<i>env</i>" not in html
    host_page = pages[0]
    assert HOSTILE_PACKAGE not in host_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in host_page
    assert "<b>boom</b>" not in host_page
    assert "&lt;b&gt;boom&lt;/b&gt;" in host_page


# -- groups --------------------------------------------------------------------------------------------


def test_an_operator_saves_a_filter_as_a_dynamic_group(fleet: None, operator: Client) -> None:
    response = operator.post(
        "/hosts/groups/new/", {"name": "prod web", "kind": "dynamic", "environment": "prod", "tag": "web"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/hosts/groups/"
    html = operator.get("/hosts/groups/").content.decode()
    assert "Group prod web is created." in html
    assert '<span class="muted">Environment:</span> prod' in html
    group = HostGroup.objects.get(name="prod web")
    assert group.rule == {"environment": "prod", "tags": ["web"]}
    assert listed(operator, "group=prod+web") == ["web-1", "web-2"]
    services.set_attributes(SYSTEM_ACTOR, ["web-2"], services.HostChanges(environment="staging"))
    assert listed(operator, "group=prod+web") == ["web-1"]  # the members follow the rule


def test_a_static_group_keeps_the_hosts_that_matched(fleet: None, operator: Client) -> None:
    response = operator.post("/hosts/groups/new/", {"name": "snapshot", "kind": "static", "tag": "web"})

    assert response.status_code == 302
    services.set_attributes(SYSTEM_ACTOR, ["web-2"], services.HostChanges(remove_tags=("web",)))
    assert listed(operator, "group=snapshot") == ["web-1", "web-2"]


def test_a_group_that_cannot_be_saved_says_why(fleet: None, operator: Client) -> None:
    stale = operator.post("/hosts/groups/new/", {"name": "old", "kind": "dynamic", "freshness": "stale"})
    duplicate = operator.post("/hosts/groups/new/", {"name": "second-web", "kind": "static"})

    assert stale.status_code == 400
    assert "cannot keep the freshness or group filter" in stale.content.decode()
    assert duplicate.status_code == 400
    assert "a host group named &#x27;second-web&#x27; exists" in duplicate.content.decode()
    assert not HostGroup.objects.filter(name="old").exists()


def test_the_groups_page_offers_the_filter_and_deletes(fleet: None, operator: Client, viewer: Client) -> None:
    offered = operator.get("/hosts/groups/?environment=prod&sort=name").content.decode()
    assert '<input type="hidden" name="environment" value="prod">' in offered
    assert "2 hosts match now" in offered
    assert "Create a group" not in viewer.get("/hosts/groups/").content.decode()

    response = operator.post("/hosts/groups/second-web/delete/")

    assert response.status_code == 302
    assert not HostGroup.objects.filter(name="second-web").exists()


# -- enrollment ----------------------------------------------------------------------------------------


def test_an_enrollment_secret_is_shown_once_with_the_install_command(admin: Client) -> None:
    response = admin.post("/hosts/enroll/", {"name": "web servers"})

    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("pde_")
    html = response.content.decode()
    assert secret in html
    assert f"curl -fsSL http://testserver/agent/install.sh | sudo sh -s -- {secret}" in html
    record = EnrollmentSecret.objects.get(name="web servers")
    assert secret not in record.secret_hash

    again = admin.get("/hosts/enroll/").content.decode()
    assert secret not in again
    assert f"<code>{record.prefix}</code>" in again
    assert "sudo sh -s -- &lt;SECRET&gt;" in again


def test_an_admin_revokes_an_enrollment_secret(admin: Client, operator: Client) -> None:
    admin.post("/hosts/enroll/", {"name": "temporary"})
    record = EnrollmentSecret.objects.get(name="temporary")

    assert operator.get("/hosts/enroll/").status_code == 403
    assert operator.post(f"/hosts/enroll/{record.prefix}/revoke/").status_code == 403
    response = admin.post(f"/hosts/enroll/{record.prefix}/revoke/")

    assert response.status_code == 302
    record.refresh_from_db()
    assert record.revoked_at is not None
    assert '<span class="badge badge-bad">revoked</span>' in admin.get("/hosts/enroll/").content.decode()


# -- navigation and the overview -----------------------------------------------------------------------


def test_hosts_come_first_after_the_overview_and_the_home_page_counts_the_fleet(fleet: None, viewer: Client) -> None:
    html = viewer.get("/").content.decode()

    labels = [item["label"] for item in viewer.get("/").context["nav_items"]]
    assert labels[:5] == ["Overview", "Hosts", "Findings", "Exceptions", "Vulnerabilities"]
    assert '<h2 class="card-title">Hosts</h2>\n    <p class="metric">4</p>' in html
    assert 'href="/hosts/?freshness=stale" class="status-warn">1 stale</a>' in html
    assert 'href="/hosts/?freshness=lost" class="status-bad">1 lost</a>' in html
