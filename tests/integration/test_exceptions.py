"""Risk exceptions end to end through the API: request, approval by someone else, accepted findings,
expiry reopening them; and the requests that are refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from patchday.advisories import feed_imports
from patchday.audit.models import AuditRecord
from patchday.core.roles import Role
from patchday.findings import exceptions
from patchday.findings.models import Finding, FindingStatus, RiskException
from patchday.inventory import ingest
from tests.conftest import SYSTEM_ACTOR
from tests.support.documents import document
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.django_db


@pytest.fixture
def finding() -> Finding:
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    ingest.store_document(SYSTEM_ACTOR, document(real_host()), mode="agent")
    found = Finding.objects.filter(status=FindingStatus.OPEN).first()
    assert found is not None
    return found


def _request(client, finding: Finding, **overrides):  # type: ignore[no-untyped-def]
    body = {
        "vulnerability": finding.vulnerability,
        "justification": "compensating control: the service is not exposed",
        "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
        **overrides,
    }
    return client.post("exceptions", json=body)


def test_an_approved_exception_accepts_its_findings_and_expiry_reopens_them(api_as, finding: Finding) -> None:  # type: ignore[no-untyped-def]
    operator, approver = api_as(Role.OPERATOR), api_as(Role.APPROVER)
    requested = _request(operator, finding)
    assert requested.status_code == 201, requested.content
    exception_id = requested.json()["id"]
    in_scope = Finding.objects.filter(vulnerability=finding.vulnerability)

    approved = approver.post(f"exceptions/{exception_id}/approve", json={"comment": "ok until the fix ships"})

    assert approved.json()["state"] == "approved"
    assert set(in_scope.values_list("status", flat=True)) == {"accepted"}
    assert Finding.objects.exclude(vulnerability=finding.vulnerability).filter(status="accepted").count() == 0

    RiskException.objects.filter(pk=exception_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    ended = exceptions.expire_due(SYSTEM_ACTOR)

    assert [e.pk for e in ended] == [exception_id]
    assert set(in_scope.values_list("status", flat=True)) == {"open"}
    actions = list(AuditRecord.objects.filter(object_type="exception").values_list("action", flat=True))
    assert actions == ["exception.request", "exception.approve", "exception.expire"]
    statuses = [e.to_status for e in finding.events.all()]
    assert statuses == ["open", "accepted", "open"]


def test_the_requester_cannot_approve_their_own_exception(make_user, token_for, finding: Finding) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import ApiClient

    admin = ApiClient(token_for(make_user(Role.ADMIN)))  # may request and approve, but not both for one exception
    exception_id = _request(admin, finding).json()["id"]

    answer = admin.post(f"exceptions/{exception_id}/approve", json={})

    assert answer.status_code == 403
    assert "requester" in answer.json()["error"]["message"]
    assert RiskException.objects.get().state == "requested"
    assert not Finding.objects.filter(status="accepted").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"justification": ""}, "justification"),
        ({"justification": "because"}, "justification"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
        ({"package": "openssl"}, "scope"),
        ({"vulnerability": ""}, "scope"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(api_as, finding: Finding, overrides, field) -> None:  # type: ignore[no-untyped-def]
    answer = _request(api_as(Role.OPERATOR), finding, **overrides)

    assert answer.status_code == 422, answer.content
    assert answer.json()["error"]["details"][0]["field"] == field
    assert not RiskException.objects.exists()


def test_a_new_finding_in_an_approved_scope_is_accepted_at_once(api_as, finding: Finding) -> None:  # type: ignore[no-untyped-def]
    exception_id = _request(api_as(Role.OPERATOR), finding).json()["id"]
    api_as(Role.APPROVER).post(f"exceptions/{exception_id}/approve", json={})

    ingest.store_document(SYSTEM_ACTOR, document(real_host(), hostname="web-2", machine_id="2" * 32), mode="agent")

    new = Finding.objects.get(host__name="web-2", vulnerability=finding.vulnerability, package=finding.package)
    assert new.status == "accepted"
