"""The deployment pages: plans (list, new-plan form, preview), the approvals inbox, rollouts with their live
progress fragment and commands, one job with its output, and maintenance windows with freezes."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from patchday.accounts.models import User
from patchday.advisories import feed_imports
from patchday.core.roles import Role
from patchday.inventory import ingest, services
from patchday.inventory.services import HostChanges
from patchday.rollouts import driver, plans
from patchday.rollouts.models import FreezePeriod, Job, MaintenanceWindow, Plan, Rollout
from patchday.rollouts.results import check_result
from tests.conftest import SYSTEM_ACTOR
from tests.support.documents import document, pending_update
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
OPENSSL_FROM, OPENSSL_TO = "3.0.19-1~deb12u2", "3.0.99-1~deb12u1"  # past every fix of the fixture advisories
RINGS = [
    {"name": "pilot", "tags": ["pilot"], "gate": {"max_failure_ratio": 0, "min_successes": 1}},
    {"name": "broad", "gate": {"max_failure_ratio": 0, "min_successes": 1}},
]
ICS = Path(__file__).parents[1] / "fixtures" / "ics" / "maintenance-windows.ics"


def seed_fleet() -> None:
    """web-1 (tagged pilot) and web-2, both offered a security update of openssl past every fix."""
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    pending = [pending_update("openssl", OPENSSL_FROM, OPENSSL_TO)]
    packages = real_host()
    ingest.store_document(SYSTEM_ACTOR, document(packages, pending=pending), mode="agent")
    ingest.store_document(
        SYSTEM_ACTOR, document(packages, hostname="web-2", machine_id="2" * 32, pending=pending), mode="agent"
    )
    services.set_attributes(SYSTEM_ACTOR, ["web-1"], HostChanges(add_tags=("pilot",)).check())


def make_plan(name: str = "openssl now", requested_by: str = "olga") -> Plan:
    return plans.create_plan(
        SYSTEM_ACTOR, requested_by, name, {"kind": "security"}, {"hosts": ["web-1", "web-2"]}, {}, RINGS
    )


def approved_plan(name: str = "openssl now") -> Plan:
    plan = make_plan(name)
    plans.submit(SYSTEM_ACTOR, plan.pk)
    return plans.decide(SYSTEM_ACTOR, "alma", plan.pk, True, "go")


def started_rollout(name: str = "openssl now") -> Rollout:
    return driver.start(SYSTEM_ACTOR, approved_plan(name).pk)


def report(job: Job, ok: bool, stdout: str = "", stderr: str = "", extra_after: dict[str, Any] | None = None) -> Job:
    """Lease the job as its agent would and post a deploy result."""
    (lease,) = driver.lease_jobs(job.host_id)
    before = {"openssl": {"version": OPENSSL_FROM, "arch": "amd64"}}
    after = {"openssl": {"version": OPENSSL_TO if ok else OPENSSL_FROM, "arch": "amd64"}, **(extra_after or {})}
    result = {
        "job_id": job.pk,
        "kind": "deploy",
        "status": "succeeded" if ok else "failed",
        "error": "" if ok else "apt-get exited with 100",
        "steps": [
            {"name": "install", "argv": ["apt-get", "install", "-y", f"openssl={OPENSSL_TO}"],
             "exit_code": 0 if ok else 100, "stdout": stdout, "stderr": stderr,
             "started_at": "2026-11-28T02:00:00+00:00", "finished_at": "2026-11-28T02:01:10+00:00"},
        ],
        "before": before,
        "after": after,
    }  # fmt: skip
    checked = check_result(result, job.pk, "deploy")
    return driver.record_result(job.host_id, job.pk, lease.token, f"{job.pk}:deploy:1", "deploy", checked)


def upgraded(hostname: str, machine_id: str) -> None:
    """The host's next inventory, with openssl at the plan's version: it verifies the host's job."""
    packages = [replace(p, version=OPENSSL_TO) if p.name == "openssl" else p for p in real_host()]
    ingest.store_document(SYSTEM_ACTOR, document(packages, hostname=hostname, machine_id=machine_id), mode="agent")


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


@pytest.fixture
def operator(page_as: Callable[..., Client]) -> Client:
    return page_as(Role.OPERATOR, "olga")


@pytest.fixture
def approver(page_as: Callable[..., Client]) -> Client:
    return page_as(Role.APPROVER, "alma")


@pytest.fixture
def admin(page_as: Callable[..., Client]) -> Client:
    return page_as(Role.ADMIN, "ada")


def html(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.content[:800]
    return response.content.decode()


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def plan_form(**changes: str) -> dict[str, str]:
    data = {
        "name": "openssl everywhere",
        "selection_kind": "security",
        "selection_values": "",
        "selection_before": "",
        "target_hosts": "web-1, web-2",
        "target_groups": "",
        "target_tags": "",
        "target_environments": "",
        "reboot": "if_required",
        "holds": "",
        "exclusions": "",
        "cooldown_days": "0",
        "rings": '[{"name": "pilot", "tags": ["pilot"]}, {"name": "broad"}]',
    }
    return {**data, **changes}


# -- plans ---------------------------------------------------------------------------------------------


def test_the_new_plan_form_is_prefilled_with_the_default_rings(fleet: None, operator: Client) -> None:
    page = html(operator, "/plans/new/")

    assert 'name="csrfmiddlewaretoken"' in page
    rings = re.search(r'<textarea id="id_rings" name="rings"[^>]*>(.*?)</textarea>', page, re.S)
    assert rings is not None
    assert all(f"&quot;name&quot;: &quot;{ring}&quot;" in rings.group(1) for ring in ("pilot", "early", "broad"))


def test_an_operator_creates_a_draft_from_the_form_and_sees_its_preview(fleet: None, operator: Client) -> None:
    response = operator.post("/plans/new/", plan_form())

    plan = Plan.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/plans/{plan.pk}/"
    assert (plan.state, plan.requested_by, plan.selection["kind"]) == ("draft", "olga", "security")
    assert plan.target["hosts"] == ["web-1", "web-2"]
    assert [r["name"] for r in plan.rings] == ["pilot", "broad"]
    page = html(operator, f"/plans/{plan.pk}/")
    assert "is a draft: check its preview" in page
    assert f"<code>openssl</code> <code>{OPENSSL_FROM}</code>" in page
    assert f"<code>{OPENSSL_TO}</code>" in page
    assert "Ring 0: pilot" in page
    assert "Ring 1: broad" in page
    pilot = page.split("Ring 0: pilot")[1].split("Ring 1: broad")[0]
    assert 'href="/hosts/web-1/"' in pilot
    assert "web-2" not in pilot
    assert ">Submit for approval</button>" in page
    assert ">Refresh preview</button>" in page
    assert ">Approve</button>" not in page
    assert "Emergency start" not in page
    assert plan.totals["findings_closed"] > 0
    closes = plan.hosts.get(host__name="web-1").closes
    assert f'href="/findings/?host=web-1" title="open findings on web-1">{len(closes)}</a>' in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"selection_kind": "severity", "selection_values": "bogus"}, "id_selection_values", "unknown severity"),
        ({"holds": "bad name!"}, "id_holds", "not a package name or pattern"),
        ({"rings": "[{"}, "id_rings", "not JSON"),
        ({"rings": '[{"name": "a", "percent": 200}]'}, "id_rings", "percent must be above 0"),
        ({"target_hosts": ""}, "id_target_hosts", "name the target"),
        ({"selection_kind": "packages", "selection_values": "nginx"}, "id_selection_kind", "matches no update"),
        ({"name": " "}, "id_name", "This field is required"),
        ({"cooldown_days": "999"}, "id_cooldown_days", "less than or equal to 365"),
    ],
)
def test_an_invalid_plan_shows_the_message_next_to_its_field_and_stores_nothing(
    fleet: None, operator: Client, changes: dict[str, str], field: str, message: str
) -> None:
    response = operator.post("/plans/new/", plan_form(**changes))

    assert response.status_code == 400
    page = response.content.decode()
    error = re.search(rf'<small class="field-error" id="{field}-error" role="alert">([^<]*)</small>', page)
    assert error is not None
    assert message in error.group(1)
    assert f'aria-describedby="{field}-error"' in page
    assert Plan.objects.count() == 0


def test_an_unknown_host_is_reported_above_the_form(fleet: None, operator: Client) -> None:
    response = operator.post("/plans/new/", plan_form(target_hosts="web-1, nowhere"))

    assert response.status_code == 400
    assert "no host named &#x27;nowhere&#x27;" in response.content.decode()
    assert Plan.objects.count() == 0


def test_the_plans_list_filters_sorts_paginates_and_exports(fleet: None, viewer: Client) -> None:
    first = make_plan("alpha")
    second = approved_plan("beta")

    page = html(viewer, "/plans/")
    assert page.index(">beta</a>") < page.index(">alpha</a>")  # newest first
    by_name = html(viewer, "/plans/?sort=name")
    assert by_name.index(">alpha</a>") < by_name.index(">beta</a>")
    assert ">alpha</a>" not in html(viewer, "/plans/?state=approved")
    assert ">alpha</a>" in html(viewer, "/plans/?state=no-such-state")  # an unknown state filters nothing
    assert 'href="/plans/new/"' not in page  # a viewer creates nothing
    rows = list(csv.DictReader(io.StringIO(viewer.get("/plans/export.csv?state=draft").content.decode())))
    assert [(r["id"], r["name"], r["state"]) for r in rows] == [(str(first.pk), "alpha", "draft")]
    assert rows[0]["hosts_with_changes"] == "2"
    for i in range(55):
        Plan.objects.create(name=f"old {i}", state="cancelled", selection={}, target={}, created_at=first.created_at)
    listing = viewer.get("/plans/?page=2")
    assert listing.context["page"].number == 2
    assert len(listing.context["page"]) == 7
    assert second.state == "approved"


def test_a_hostile_plan_name_is_escaped_everywhere(fleet: None, viewer: Client, approver: Client) -> None:
    plan = make_plan(HOSTILE)
    plans.submit(SYSTEM_ACTOR, plan.pk)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"

    pages = [html(viewer, "/plans/"), html(viewer, f"/plans/{plan.pk}/"), html(approver, "/approvals/")]
    plans.decide(SYSTEM_ACTOR, "alma", plan.pk, True, HOSTILE)
    pages.append(html(viewer, f"/plans/{plan.pk}/"))  # the comment in the approvals history
    rollout = driver.start(SYSTEM_ACTOR, plan.pk)
    pages += [html(viewer, "/rollouts/"), html(viewer, f"/rollouts/{rollout.pk}/")]

    for page in pages:
        assert HOSTILE not in page
        assert escaped in page


# -- submit, approve, start ------------------------------------------------------------------------------


def test_submit_approve_and_start_through_the_pages(
    fleet: None, operator: Client, approver: Client, viewer: Client
) -> None:
    plan = make_plan()

    submitted = operator.post(f"/plans/{plan.pk}/submit/", follow=True)
    assert "awaits approval by another approver" in " ".join(messages_of(submitted))
    inbox = html(approver, "/approvals/")
    assert f'action="/plans/{plan.pk}/decide/"' in inbox
    assert 'name="back" value="approvals"' in inbox
    assert "openssl now" in inbox
    nav = {item["label"]: item for item in approver.get("/").context["nav_items"]}
    assert nav["Approvals"]["count"] == 1
    assert "nav-count" not in html(viewer, "/approvals/")

    rejected = approver.post(f"/plans/{plan.pk}/decide/", {"decision": "reject", "back": "approvals"})
    assert rejected.status_code == 302
    assert rejected["Location"] == "/approvals/"
    assert Plan.objects.get(pk=plan.pk).state == "pending_approval"  # a rejection needs a comment
    approved = approver.post(f"/plans/{plan.pk}/decide/", {"decision": "approve", "comment": "ok", "back": "approvals"})
    assert approved["Location"] == "/approvals/"
    assert Plan.objects.get(pk=plan.pk).state == "approved"
    assert "No plan awaits a decision." in html(approver, "/approvals/")
    page = html(viewer, f"/plans/{plan.pk}/")
    assert "by alma" in page
    assert ": ok</li>" in page
    assert ">Start rollout</button>" not in page  # a viewer sees no actions
    assert ">Start rollout</button>" in html(operator, f"/plans/{plan.pk}/")

    started = operator.post(f"/plans/{plan.pk}/start/")
    rollout = Rollout.objects.get(plan=plan)
    assert started["Location"] == f"/rollouts/{rollout.pk}/"
    assert f'href="/rollouts/{rollout.pk}/"' in html(viewer, f"/plans/{plan.pk}/")


def test_the_requester_sees_no_decision_form_and_the_service_refuses_them(fleet: None, admin: Client) -> None:
    plan = make_plan(requested_by="ada")
    plans.submit(SYSTEM_ACTOR, plan.pk)

    page = html(admin, f"/plans/{plan.pk}/")
    assert "You requested this plan: another approver decides it." in page
    assert f'action="/plans/{plan.pk}/decide/"' not in page
    assert "awaiting another approver" in html(admin, "/approvals/")
    response = admin.post(f"/plans/{plan.pk}/decide/", {"decision": "approve"}, follow=True)
    assert "may not decide it" in " ".join(messages_of(response))
    assert Plan.objects.get(pk=plan.pk).state == "pending_approval"


def test_only_an_admin_starts_without_approval_and_only_after_confirming(
    fleet: None, operator: Client, admin: Client
) -> None:
    plan = make_plan()

    assert operator.post(f"/plans/{plan.pk}/start/", {"override": "on", "confirm": "on"}).status_code == 403
    unconfirmed = admin.post(f"/plans/{plan.pk}/start/", {"override": "on"}, follow=True)
    assert "confirm that the emergency start skips approval" in " ".join(messages_of(unconfirmed))
    assert not Rollout.objects.exists()
    assert "I understand this skips approval" in html(admin, f"/plans/{plan.pk}/")
    refused = operator.post(f"/plans/{plan.pk}/start/", follow=True)  # a draft is not approved
    assert "is not started" in " ".join(messages_of(refused))

    started = admin.post(f"/plans/{plan.pk}/start/", {"override": "on", "confirm": "on"})
    rollout = Rollout.objects.get(plan=plan)
    assert started["Location"] == f"/rollouts/{rollout.pk}/"
    assert Plan.objects.get(pk=plan.pk).override is True
    assert "emergency start, without approval" in html(admin, f"/rollouts/{rollout.pk}/")


def test_refresh_and_cancel_from_the_plan_page(fleet: None, operator: Client) -> None:
    plan = make_plan()

    refreshed = operator.post(f"/plans/{plan.pk}/preview/", follow=True)
    assert "has a fresh preview" in " ".join(messages_of(refreshed))
    operator.post(f"/plans/{plan.pk}/cancel/")
    assert Plan.objects.get(pk=plan.pk).state == "cancelled"
    page = html(operator, f"/plans/{plan.pk}/")
    assert ">Submit for approval</button>" not in page
    assert ">Cancel plan</button>" not in page


@pytest.mark.parametrize(
    ("role", "method", "url", "data"),
    [
        (Role.VIEWER, "get", "/plans/new/", {}),
        (Role.VIEWER, "post", "/plans/new/", plan_form()),
        (Role.APPROVER, "post", "/plans/new/", plan_form()),
        (Role.VIEWER, "post", "/plans/{plan}/submit/", {}),
        (Role.APPROVER, "post", "/plans/{plan}/cancel/", {}),
        (Role.OPERATOR, "post", "/plans/{plan}/decide/", {"decision": "approve"}),
        (Role.APPROVER, "post", "/plans/{plan}/start/", {}),
        (Role.VIEWER, "post", "/windows/new/", {"name": "w"}),
        (Role.APPROVER, "post", "/windows/freezes/new/", {"name": "f"}),
    ],
)
def test_forms_are_refused_for_the_wrong_role(
    fleet: None, page_as: Callable[..., Client], role: Role, method: str, url: str, data: dict[str, str]
) -> None:
    plan = make_plan()
    plans.submit(SYSTEM_ACTOR, plan.pk)
    client = page_as(role)

    response = getattr(client, method)(url.format(plan=plan.pk), data)

    assert response.status_code == 403
    assert Plan.objects.get().state == "pending_approval"
    assert not Rollout.objects.exists()
    assert not MaintenanceWindow.objects.exists()
    assert not FreezePeriod.objects.exists()


def test_every_form_needs_its_csrf_token(fleet: None) -> None:
    plan = make_plan()
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("csrf-admin", role=Role.ADMIN.value))

    assert client.post("/plans/new/", plan_form()).status_code == 403
    assert client.post(f"/plans/{plan.pk}/submit/").status_code == 403
    assert Plan.objects.get().state == "draft"
    page = html(client, f"/plans/{plan.pk}/")
    assert page.count('name="csrfmiddlewaretoken"') >= 4  # refresh, submit, cancel, emergency start (and sign out)


def test_unknown_objects_are_404_pages(fleet: None, viewer: Client, operator: Client) -> None:
    for url in ("/plans/999/", "/rollouts/999/", "/rollouts/999/progress/", "/jobs/999/", "/rollouts/999/jobs.csv"):
        assert "patchday knows no" in html(viewer, url, status=404)
    assert operator.post("/plans/999/submit/").status_code == 404
    assert operator.post("/rollouts/999/command/", {"command": "pause"}).status_code == 404


# -- rollouts --------------------------------------------------------------------------------------------


def test_the_rollout_page_polls_its_progress_until_the_rollout_is_over(
    fleet: None, viewer: Client, operator: Client
) -> None:
    rollout = started_rollout()

    page = html(viewer, f"/rollouts/{rollout.pk}/")
    assert f'hx-get="/rollouts/{rollout.pk}/progress/" hx-trigger="every 3s" hx-swap="outerHTML"' in page
    assert "Ring 0: pilot" in page
    assert "Ring 1: broad" in page
    assert 'aria-label="Ring pilot: 0 of 1 jobs done"' in page
    fragment = html(viewer, f"/rollouts/{rollout.pk}/progress/")
    assert fragment.startswith('<div id="rollout-progress"')
    assert "<html" not in fragment
    assert 'hx-trigger="every 3s"' in fragment
    assert "Pause</button>" not in fragment  # a viewer commands nothing
    assert "Pause</button>" in html(operator, f"/rollouts/{rollout.pk}/progress/")
    filtered = html(viewer, f"/rollouts/{rollout.pk}/?ring=broad")
    assert f'hx-get="/rollouts/{rollout.pk}/progress/?ring=broad"' in filtered  # polling keeps the filter

    (job,) = Job.objects.filter(host__name="web-1")
    report(job, ok=True)
    upgraded("web-1", "0123456789abcdef0123456789abcdef")
    assert Job.objects.get(pk=job.pk).state == "verified"
    assert "1 of 1 job done (100%)" in html(viewer, f"/rollouts/{rollout.pk}/progress/")

    operator.post(f"/rollouts/{rollout.pk}/command/", {"command": "abort"})
    fragment = html(viewer, f"/rollouts/{rollout.pk}/progress/")
    assert "hx-trigger" not in fragment
    assert "hx-get" not in fragment
    assert ">aborted</span>" in fragment


def test_operator_commands_pause_resume_abort_and_ring_rollback(fleet: None, operator: Client) -> None:
    rollout = started_rollout()

    def command(**data: str) -> list[str]:
        response = operator.post(f"/rollouts/{rollout.pk}/command/", data, follow=True)
        assert response.redirect_chain[-1][0] == f"/rollouts/{rollout.pk}/"
        return messages_of(response)

    assert "is paused" in command(command="pause")[0]
    assert Rollout.objects.get(pk=rollout.pk).state == "paused"
    assert "Resume</button>" in html(operator, f"/rollouts/{rollout.pk}/")
    assert "runs again" in command(command="resume")[0]
    assert "cannot resume" in command(command="resume")[0]  # refused by the service, shown
    assert "unknown command" in command(command="explode")[0]
    assert "rings 0 to 1" in command(command="rollback", ring="7")[0]
    assert "rolls back" in command(command="rollback", ring="0")[0]
    assert Rollout.objects.get(pk=rollout.pk).state == "halted"
    assert "is aborted" in command(command="abort")[0]
    assert Rollout.objects.get(pk=rollout.pk).state == "aborted"


def test_a_failure_shows_its_output_and_the_job_page_every_step(fleet: None, viewer: Client, operator: Client) -> None:
    rollout = started_rollout()
    (job,) = Job.objects.filter(host__name="web-1")
    stderr = f"E: Sub-process /usr/bin/dpkg returned an error code (1) {HOSTILE}"
    report(job, ok=False, stdout="Reading package lists...", stderr=stderr, extra_after={"zz-new": {"version": "1"}})

    page = html(viewer, f"/rollouts/{rollout.pk}/")
    assert HOSTILE not in page
    failures = page.split('id="failures-heading"')[1]
    assert f'<a href="/jobs/{job.pk}/">Job {job.pk}</a>' in failures
    assert "apt-get exited with 100" in failures
    assert "returned an error code (1) &lt;script&gt;alert(1)&lt;/script&gt;</pre>" in failures

    detail = html(viewer, f"/jobs/{job.pk}/")
    assert HOSTILE not in detail
    assert f'<code class="command">apt-get install -y openssl={OPENSSL_TO}</code>' in detail
    assert '<span class="status-bad">100</span>' in detail
    assert "2026-11-28T02:00:00+00:00 → 2026-11-28T02:01:10+00:00" in detail
    assert '<pre class="output">Reading package lists...</pre>' in detail
    assert f'<th scope="row"><code>openssl</code></th><td><code>{OPENSSL_TO}</code></td>' in detail  # the target
    unexpected = re.search(r'<tr class="unexpected">\s*<th scope="row"><code>zz-new</code></th>', detail)
    assert unexpected is not None
    assert "1 unexpected change" in detail
    assert "Revert host</button>" not in detail  # a viewer

    reverted = operator.post(f"/rollouts/{rollout.pk}/revert-host/", {"host": "web-1"}, follow=True)
    assert "is queued for rollback" in " ".join(messages_of(reverted))
    assert Job.objects.get(pk=job.pk).state == "rollback_queued"
    missing = operator.post(f"/rollouts/{rollout.pk}/revert-host/", {"host": "nowhere"}, follow=True)
    assert "has no job on host" in " ".join(messages_of(missing))


def test_the_rollouts_list_is_the_history_and_exports(fleet: None, viewer: Client) -> None:
    rollout = started_rollout()
    driver.command(SYSTEM_ACTOR, rollout.pk, "abort")

    assert f'href="/rollouts/{rollout.pk}/"' in html(viewer, "/rollouts/?state=aborted")
    assert f'href="/rollouts/{rollout.pk}/"' not in html(viewer, "/rollouts/?state=running")
    assert 'aria-sort="descending"' in html(viewer, "/rollouts/")
    rows = list(csv.DictReader(io.StringIO(viewer.get("/rollouts/export.csv").content.decode())))
    assert [(r["id"], r["plan"], r["state"]) for r in rows] == [(str(rollout.pk), "openssl now", "aborted")]
    jobs = list(csv.DictReader(io.StringIO(viewer.get(f"/rollouts/{rollout.pk}/jobs.csv").content.decode())))
    assert sorted((r["host"], r["ring"], r["targets"]) for r in jobs) == [
        ("web-1", "pilot", f"openssl={OPENSSL_TO}"),
        ("web-2", "broad", f"openssl={OPENSSL_TO}"),
    ]


def test_the_rollouts_list_reads_a_bounded_number_of_rows(
    fleet: None, viewer: Client, django_assert_max_num_queries: Any
) -> None:
    for i in range(3):
        started_rollout(f"plan {i}")
    with django_assert_max_num_queries(8):
        assert viewer.get("/rollouts/").status_code == 200
    with django_assert_max_num_queries(8):
        assert viewer.get("/plans/").status_code == 200


# -- windows and freezes ---------------------------------------------------------------------------------


def window_form(**changes: str) -> dict[str, str]:
    data = {"name": "patch-tuesday", "rrule": "FREQ=MONTHLY;BYDAY=2TU", "duration_minutes": "240",
            "timezone": "Europe/Berlin", "starts": "2026-01-13T02:00", "offset_minutes": "0", "groups": "",
            "description": "after Microsoft's"}  # fmt: skip
    return {**data, **changes}


def test_operators_add_windows_and_freezes_viewers_read_them(fleet: None, operator: Client, viewer: Client) -> None:
    assert operator.post("/windows/new/", window_form())["Location"] == "/windows/"
    window = MaintenanceWindow.objects.get()
    assert (window.starts, window.timezone, window.duration_minutes) == ("2026-01-13T02:00:00", "Europe/Berlin", 240)
    created = operator.post("/windows/freezes/new/", {"name": "year end", "start": "2026-12-20T00:00",
                                                      "end": "2027-01-04T00:00", "reason": "holidays"})  # fmt: skip
    assert created["Location"] == "/windows/"
    freeze = FreezePeriod.objects.get()
    assert freeze.start.isoformat() == "2026-12-20T00:00:00+00:00"

    page = html(viewer, "/windows/")
    assert "<code>FREQ=MONTHLY;BYDAY=2TU</code>" in page
    assert "240 min" in page
    assert "Europe/Berlin" in page
    opening = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d) → (\d{4}-\d\d-\d\d \d\d:\d\d)", page)
    assert opening is not None  # the next opening, from queries.next_opening
    assert "year end" in page
    assert "holidays" in page
    assert 'action="/windows/new/"' not in page
    assert "Delete</button>" not in page
    rows = list(csv.DictReader(io.StringIO(viewer.get("/windows/export.csv").content.decode())))
    assert rows[0]["name"] == "patch-tuesday"
    assert rows[0]["next_opening_start"]

    operator.post(f"/windows/freezes/{freeze.pk}/delete/")
    operator.post("/windows/patch-tuesday/delete/")
    assert not FreezePeriod.objects.exists()
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"rrule": "FREQ=SOMETIMES"}, "window-rrule", "FREQ"),
        ({"timezone": "Mars/Olympus"}, "window-timezone", "Mars/Olympus"),
        ({"duration_minutes": "0"}, "window-duration_minutes", "greater than or equal to 1"),
        ({"starts": "soon"}, "window-starts", "Enter a valid date/time"),
    ],
)
def test_an_invalid_window_shows_the_message_next_to_its_field(
    fleet: None, operator: Client, changes: dict[str, str], field: str, message: str
) -> None:
    response = operator.post("/windows/new/", window_form(**changes))

    assert response.status_code == 400
    error = re.search(rf'id="{field}-error" role="alert">([^<]*)<', response.content.decode())
    assert error is not None
    assert message in error.group(1)
    assert not MaintenanceWindow.objects.exists()


def test_a_freeze_that_ends_before_it_starts_is_refused(fleet: None, operator: Client) -> None:
    response = operator.post(
        "/windows/freezes/new/", {"name": "x", "start": "2026-12-20T00:00", "end": "2026-12-01T00:00"}
    )

    assert response.status_code == 400
    assert 'id="freeze-end-error" role="alert">a freeze must end after it starts<' in response.content.decode()
    assert not FreezePeriod.objects.exists()


def test_an_ics_upload_imports_windows_and_freezes(fleet: None, operator: Client) -> None:
    upload = SimpleUploadedFile("calendar.ics", ICS.read_bytes(), content_type="text/calendar")

    response = operator.post("/windows/import/", {"calendar": upload}, follow=True)

    text = " ".join(messages_of(response))
    assert re.search(r"Imported \d+ window\(s\) and \d+ freeze\(s\); skipped: ", text), text
    assert MaintenanceWindow.objects.count() >= 2
    assert FreezePeriod.objects.count() >= 1
    again = operator.post("/windows/import/", {"calendar": SimpleUploadedFile("c.ics", ICS.read_bytes())}, follow=True)
    assert "Nothing was imported" in " ".join(messages_of(again))
    assert "Choose an iCalendar" in " ".join(messages_of(operator.post("/windows/import/", follow=True)))


def test_the_navigation_has_the_deployment_pages(fleet: None, viewer: Client) -> None:
    labels = [item["label"] for item in viewer.get("/").context["nav_items"]]
    assert [label for label in labels if label in ("Plans", "Approvals", "Rollouts")] == [
        "Plans",
        "Approvals",
        "Rollouts",
    ]
    current = [i["label"] for i in viewer.get("/windows/").context["nav_items"] if i["current"]]
    assert current == ["Plans"]
