"""Scheduled reports over real transports on loopback: the PDF mailed to a local SMTP server as an attachment,
a signed JSON summary (never the file) posted to a local webhook receiver; when schedules fall due, what period
they cover, who may manage them, and what a failed delivery leaves behind."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from patchday.audit.models import AuditRecord
from patchday.compliance.models import ReportSchedule
from patchday.core.roles import Role
from patchday.inventory.models import Host
from patchday.reports import schedules
from tests.conftest import SYSTEM_ACTOR, ApiClient

# The loopback SMTP server, webhook receiver and settings fixtures of the notification tests.
from tests.integration.test_notifications import Mailbox, Receiver, environment, mailbox, receiver  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(mailbox: Mailbox, environment: Callable[..., None]) -> Mailbox:  # noqa: F811
    environment(
        PATCHDAY_SMTP_HOST="127.0.0.1",
        PATCHDAY_SMTP_PORT=str(mailbox.port),
        PATCHDAY_SMTP_STARTTLS="false",
        PATCHDAY_SMTP_FROM="patchday@example.net",
        PATCHDAY_WEBHOOK_ALLOW_PRIVATE="true",
        PATCHDAY_PUBLIC_URL="https://patchday.example.net",
    )
    Host.objects.create(name="web-1", created_at=timezone.now() - timedelta(days=30))
    return mailbox


def _due(schedule: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(schedule["next_run_at"]))


def test_a_weekly_pdf_is_mailed_as_an_attachment(api_as: Callable[[Role], ApiClient], smtp: Mailbox) -> None:
    auditor = api_as(Role.AUDITOR)
    added = auditor.post(
        "reports/schedules",
        json={"name": "PCI weekly", "frequency": "weekly", "scope": "pci-dss", "addresses": ["qsa@example.net"]},
    )
    assert added.status_code == 201, added.content
    due = _due(added.json())

    early = schedules.run_due(SYSTEM_ACTOR, due - timedelta(minutes=1))
    ran = schedules.run_due(SYSTEM_ACTOR, due + timedelta(minutes=5))
    again = schedules.run_due(SYSTEM_ACTOR, due + timedelta(minutes=10))

    assert (due.weekday(), due.hour, due.tzinfo is not None) == (0, 6, True)
    assert early == {"delivered": 0, "failed": 0}
    assert ran == {"delivered": 1, "failed": 0}
    assert again == {"delivered": 0, "failed": 0}  # next_run_at moved on a week
    [(sender, recipients, data)] = smtp.messages
    assert (sender, recipients) == ("patchday@example.net", ["qsa@example.net"])
    message = email.message_from_string(data, policy=email.policy.default)
    start, end = due.date() - timedelta(days=7), due.date() - timedelta(days=1)
    assert message["Subject"] == f"[patchday] PCI weekly: pci-dss report {start} to {end}"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"patchday-pci-dss-{start}-{end}.pdf"
    assert attachment.get_content().startswith(b"%PDF")
    assert "6.3.3:" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    schedule = ReportSchedule.objects.get()
    assert (schedule.last_outcome, schedule.last_error) == ("delivered", "")
    assert schedule.next_run_at == due + timedelta(days=7)
    run = AuditRecord.objects.get(action="report.schedule_run")
    assert json.loads(run.changes)["sent"] == ["email"]


def test_a_webhook_gets_a_signed_summary_not_the_file(
    api_as: Callable[[Role], ApiClient],
    smtp: Mailbox,
    receiver: Receiver,  # noqa: F811
) -> None:
    hook = api_as(Role.ADMIN).post("notifications/webhooks", json={"url": receiver.url, "name": "chat"})
    assert hook.status_code == 201, hook.content
    added = api_as(Role.AUDITOR).post(
        "reports/schedules",
        json={"name": "daily metrics", "frequency": "daily", "scope": "metrics", "format": "csv",
              "webhook_id": hook.json()["id"], "hour": 7},
    )  # fmt: skip
    assert added.status_code == 201, added.content
    due = _due(added.json())

    assert schedules.run_due(SYSTEM_ACTOR, due) == {"delivered": 1, "failed": 0}

    [request] = receiver.requests
    timestamp = request.headers["x-patchday-timestamp"]
    secret = hook.json()["secret"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-patchday-signature"] == f"sha256={expected}"
    assert request.headers["x-patchday-event"] == "report.scheduled"
    assert len(request.body) < 64 * 1024
    report = json.loads(request.body)["report"]
    yesterday = str(due.date() - timedelta(days=1))
    assert report["period"] == {"from": yesterday, "to": yesterday}
    assert report["controls"] == []
    assert {"sla_compliance", "open_findings", "urgent_fixed_within_30d"} <= set(report["metrics"])
    assert report["evidence_page"] == "https://patchday.example.net/reports/evidence/"
    assert smtp.messages == []


def test_a_failed_delivery_is_recorded_and_the_schedule_moves_on(
    api_as: Callable[[Role], ApiClient],
    environment: Callable[..., None],  # noqa: F811
) -> None:
    environment(PATCHDAY_SMTP_HOST="127.0.0.1", PATCHDAY_SMTP_PORT="1", PATCHDAY_SMTP_STARTTLS="false")
    added = api_as(Role.AUDITOR).post(
        "reports/schedules",
        json={"name": "m", "frequency": "monthly", "scope": "metrics", "addresses": ["ciso@example.net"]},
    )
    due = _due(added.json())

    assert schedules.run_due(SYSTEM_ACTOR, due) == {"delivered": 0, "failed": 1}

    schedule = ReportSchedule.objects.get()
    assert schedule.last_outcome == "failed"
    assert schedule.last_error.startswith("email: ")
    assert (due.day, schedule.next_run_at.day, schedule.next_run_at > due) == (1, 1, True)


def test_periods_and_due_times() -> None:
    tuesday = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)

    assert schedules.period_for("daily", tuesday) == (date(2026, 3, 2), date(2026, 3, 2))
    assert schedules.period_for("weekly", tuesday) == (date(2026, 2, 24), date(2026, 3, 2))
    assert schedules.period_for("monthly", tuesday) == (date(2026, 2, 1), date(2026, 2, 28))
    assert schedules.next_run("daily", 6, tuesday) == datetime(2026, 3, 4, 6, tzinfo=UTC)
    assert schedules.next_run("daily", 7, tuesday) == datetime(2026, 3, 3, 7, tzinfo=UTC)
    assert schedules.next_run("weekly", 6, tuesday) == datetime(2026, 3, 9, 6, tzinfo=UTC)
    assert schedules.next_run("monthly", 6, tuesday) == datetime(2026, 4, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"frequency": "hourly"}, "frequency"),
        ({"scope": "sox"}, "scope"),
        ({"format": "docx"}, "format"),
        ({"addresses": []}, "addresses"),
        ({"addresses": ["not an address"]}, "addresses"),
        ({"hour": 24}, "hour"),
    ],
)
def test_bad_schedules_are_422(api_as: Callable[[Role], ApiClient], body: dict[str, object], field: str) -> None:
    valid = {"name": "n", "frequency": "daily", "scope": "metrics", "addresses": ["a@example.net"]}

    answer = api_as(Role.AUDITOR).post("reports/schedules", json={**valid, **body})

    assert answer.status_code == 422, answer.content
    assert [d["field"] for d in answer.json()["error"]["details"]] == [field]


def test_auditors_and_admins_manage_schedules_others_may_not(api_as: Callable[[Role], ApiClient]) -> None:
    body = {"name": "n", "frequency": "daily", "scope": "cis", "addresses": ["a@example.net"]}
    created = api_as(Role.ADMIN).post("reports/schedules", json=body)
    auditor = api_as(Role.AUDITOR)

    listed = auditor.get("reports/schedules")
    removed = auditor.delete(f"reports/schedules/{created.json()['id']}")
    gone = auditor.delete(f"reports/schedules/{created.json()['id']}")

    assert created.status_code == 201
    assert [s["name"] for s in listed.json()] == ["n"]
    assert removed.status_code == 200
    assert gone.status_code == 404
    assert auditor.get("reports/schedules").json() == []
    for role in (Role.OPERATOR, Role.APPROVER, Role.VIEWER):
        assert api_as(role).post("reports/schedules", json=body).status_code == 403
        assert api_as(role).get("reports/schedules").status_code == 403
    actions = list(AuditRecord.objects.filter(action__startswith="report.schedule").values_list("action", flat=True))
    assert actions == ["report.schedule_add", "report.schedule_remove"]


def test_the_cli_adds_lists_and_removes_schedules() -> None:
    from typer.testing import CliRunner

    from patchday.cli.reports import report_app

    runner = CliRunner()
    added = runner.invoke(
        report_app,
        ["schedule", "add", "ops weekly", "--frequency", "weekly", "--scope", "nist", "--format", "csv",
         "--email", "a@example.net", "--email", "b@example.net"],
    )  # fmt: skip
    listed = runner.invoke(report_app, ["schedule", "list"])
    schedule = ReportSchedule.objects.get()
    removed = runner.invoke(report_app, ["schedule", "remove", str(schedule.pk)])
    refused = runner.invoke(report_app, ["schedule", "add", "x", "--frequency", "yearly", "--email", "a@example.net"])

    assert added.exit_code == 0, added.output
    assert f"schedule {schedule.pk} added" in added.output
    assert listed.exit_code == 0
    assert "nist" in listed.output  # the table wraps the longer cells at the runner's 80 columns
    assert schedule.addresses == ["a@example.net", "b@example.net"]
    assert removed.exit_code == 0
    assert schedules.schedules().count() == 0
    assert "unknown frequency 'yearly'" in str(refused.exception)
