"""Every open finding has a priority with its explanation and an SLA due date; KEV and EPSS updates and
policy changes re-prioritize only what they touch; the policy is versioned."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from patchday.advisories import feed_imports
from patchday.audit.models import AuditRecord
from patchday.core.roles import Role
from patchday.core.vulnerability import KevEntry
from patchday.findings.models import Finding, FindingStatus, SlaPolicy
from patchday.inventory import ingest
from tests.conftest import SYSTEM_ACTOR
from tests.support.documents import document
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet() -> None:
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    ingest.store_document(SYSTEM_ACTOR, document(real_host()), mode="agent")


def test_every_open_finding_has_a_priority_an_explanation_and_a_due_date(fleet: None) -> None:
    open_findings = Finding.objects.filter(status=FindingStatus.OPEN)

    assert open_findings.exists()
    for finding in open_findings:
        assert finding.priority_score is not None
        assert finding.priority_decision in ("Track", "Track*", "Attend", "Act")
        assert finding.due_date is not None
        assert finding.sla_policy_version == 1  # the built-in defaults
        texts = " ".join(factor["text"] for factor in finding.priority_explanation)
        assert "EPSS" in texts
        assert "KEV" in texts


def test_a_kev_entry_raises_the_priority_of_that_cve_only(fleet: None) -> None:
    target = Finding.objects.filter(status=FindingStatus.OPEN).order_by("priority_score").first()
    assert target is not None
    others = dict(Finding.objects.exclude(vulnerability=target.vulnerability).values_list("pk", "priority_score"))
    today = timezone.now().date()
    entry = KevEntry(target.vulnerability, "Vendor", "Product", "name", "", today, today + timedelta(days=10),
                     "patch", "Known", "", ())  # fmt: skip

    rank = {"Track": 0, "Track*": 1, "Attend": 2, "Act": 3}
    before_score, before_decision = target.priority_score, target.priority_decision

    feed_imports.store_kev([entry])

    target.refresh_from_db()
    assert target.priority_score is not None
    assert before_score is not None
    assert target.priority_score > before_score
    assert rank[target.priority_decision] >= rank[before_decision]
    assert target.due_date is not None
    assert target.due_date <= today + timedelta(days=10)
    assert "active" in " ".join(f["text"] for f in target.priority_explanation)
    assert dict(Finding.objects.exclude(vulnerability=target.vulnerability).values_list("pk", "priority_score")) == (
        others
    )


def test_an_admin_saves_a_new_policy_version_and_due_dates_follow(fleet: None, api_as) -> None:  # type: ignore[no-untyped-def]
    admin = api_as(Role.ADMIN)
    current = admin.get("sla-policy").json()
    assert current["version"] == 1
    rules = [{"days": 3}]

    saved = admin.request("PUT", "sla-policy", json={"rules": rules, "comment": "everything in 3 days"})

    assert saved.status_code == 200, saved.content
    assert saved.json()["version"] == 2
    finding = Finding.objects.filter(status=FindingStatus.OPEN).first()
    assert finding is not None
    assert finding.sla_policy_version == 2
    assert finding.due_date == (finding.first_detected_at + timedelta(days=3)).date()
    assert [v["version"] for v in admin.get("sla-policy/versions").json()] == [2, 1]
    assert AuditRecord.objects.filter(action="sla_policy.change").count() == 1


@pytest.mark.parametrize("rules", [[{"days": -1}], [{"days": 7, "decision": "Urgent"}], "nope", [{"weeks": 2}]])
def test_a_bad_policy_is_refused_naming_the_field_and_nothing_changes(fleet: None, api_as, rules) -> None:  # type: ignore[no-untyped-def]
    answer = api_as(Role.ADMIN).request("PUT", "sla-policy", json={"rules": rules})

    assert answer.status_code == 422
    assert not SlaPolicy.objects.exists()
    assert set(Finding.objects.values_list("sla_policy_version", flat=True)) <= {1, None}


def test_only_admins_change_the_policy(api_as) -> None:  # type: ignore[no-untyped-def]
    assert api_as(Role.OPERATOR).request("PUT", "sla-policy", json={"rules": [{"days": 3}]}).status_code == 403
    assert api_as(Role.VIEWER).get("sla-policy").status_code == 200
    assert date.today()


def test_the_sla_page_shows_the_rules_and_admins_save_a_version(fleet: None, make_user) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    admin, viewer = Client(), Client()
    admin.force_login(make_user(Role.ADMIN))
    viewer.force_login(make_user(Role.VIEWER))

    shown = viewer.get("/findings/sla/").content.decode()
    bad = admin.post("/findings/sla/save/", {"rules": '[{"days": -5}]', "comment": "x"})
    saved = admin.post("/findings/sla/save/", {"rules": '[{"days": 10}]', "comment": "<b>faster</b>"})
    after = viewer.get("/findings/sla/").content.decode()

    assert "decision Act: 7 days" in shown
    assert "Save a new version" not in shown
    assert bad.status_code == 400
    assert "rules[0].days" in bad.content.decode()
    assert saved.status_code == 302
    assert "Version 2" in after
    assert "&lt;b&gt;faster&lt;/b&gt;" in after
    assert viewer.post("/findings/sla/save/", {"rules": "[]"}).status_code == 403
