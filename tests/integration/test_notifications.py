"""Notifications over real transports on loopback: signed webhooks to a local HTTP server, e-mail to a
local SMTP server; retries with backoff (time advanced by passing `now`), nothing sent twice, SSRF
refusals, and the webhook secret never shown again nor stored in clear."""

from __future__ import annotations

import hashlib
import hmac
import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.utils import timezone

from patchday.advisories import feed_imports
from patchday.audit.models import AuditRecord
from patchday.core.roles import Role
from patchday.core.vulnerability import KevEntry
from patchday.findings import exceptions
from patchday.findings.models import Finding, FindingStatus, RiskException
from patchday.inventory import ingest
from patchday.notifications import detection, sealing, sending
from patchday.notifications.models import Channel, Delivery, DeliveryState, Notification
from patchday.settings import load_settings
from tests.conftest import SYSTEM_ACTOR, ApiClient
from tests.support.documents import document
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.django_db


# -- a webhook receiver and an SMTP server on loopback ---------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)  # status codes to answer, in order; then 200
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.answers.pop(0) if state.answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/patchday"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Mailbox:
    port: int
    messages: list[tuple[str, list[str], str]] = field(default_factory=list)  # (from, to, data)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A minimal SMTP server (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT): enough for Django's backend."""
    box = Mailbox(port=0)

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            sender, recipients = "", []
            self.reply("220 localhost test SMTP")
            while raw := self.rfile.readline():
                command = raw.decode().strip()
                verb = command.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250 localhost")
                elif verb == "MAIL":
                    sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                    self.reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(command.split(":", 1)[1].strip(" <>"))
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 end with <CRLF>.<CRLF>")
                    lines = []
                    while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                        lines.append(line.decode())
                    box.messages.append((sender, recipients, "".join(lines)))
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 OK")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """environment(PATCHDAY_X="...") for this test: the settings are read again."""

    def apply(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        load_settings.cache_clear()

    yield apply
    load_settings.cache_clear()  # the next reader sees the environment monkeypatch restores


@pytest.fixture
def allow_private(environment: Callable[..., None]) -> None:
    environment(PATCHDAY_WEBHOOK_ALLOW_PRIVATE="true")


# -- findings --------------------------------------------------------------------------------------------


@pytest.fixture
def fleet() -> None:
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    ingest.store_document(SYSTEM_ACTOR, document(real_host()), mode="agent")


def lone_finding() -> Finding:
    """An open finding that is the only open finding of its vulnerability."""
    for finding in Finding.objects.filter(status=FindingStatus.OPEN).select_related("host").order_by("pk"):
        if Finding.objects.filter(vulnerability=finding.vulnerability, status=FindingStatus.OPEN).count() == 1:
            return finding
    raise AssertionError("the fixture fleet has no vulnerability with a single open finding")


def enter_kev(cve_id: str) -> None:
    today = timezone.now().date()
    entry = KevEntry(
        cve_id, "Vendor", "Product", "name", "", today, today + timedelta(days=10), "patch", "Known", "", ()
    )
    feed_imports.store_kev([entry])


def add_webhook(client: ApiClient, url: str, events: list[str]) -> dict[str, object]:
    answer = client.post("notifications/webhooks", json={"url": url, "events": events, "name": "chat"})
    assert answer.status_code == 201, answer.content
    body: dict[str, object] = answer.json()
    return body


def verify(request: Received, secret: str, now: datetime) -> None:
    """What a receiver does (docs/notifications.md): recompute the signature over timestamp + raw body."""
    timestamp = request.headers["x-patchday-timestamp"]
    assert timestamp == str(int(now.timestamp()))
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-patchday-signature"], f"sha256={expected}")


# -- the tests -------------------------------------------------------------------------------------------


def test_a_finding_entering_kev_is_signed_retried_with_backoff_and_sent_once(  # type: ignore[no-untyped-def]
    fleet: None, allow_private: None, receiver: Receiver, admin_api, api_as
) -> None:
    target = lone_finding()
    hook = add_webhook(admin_api, receiver.url, ["finding.kev"])
    secret = str(hook["secret"])
    enter_kev(target.vulnerability)
    receiver.answers = [500]
    now = timezone.now()

    counts = detection.scan(SYSTEM_ACTOR, now)
    first = sending.send_due(now)

    assert counts["finding.kev"] == 1
    assert first == {"delivered": 0, "retrying": 1, "failed": 0}
    delivery = Delivery.objects.get(channel_id=hook["id"])
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.PENDING, 1, 500)
    assert delivery.next_attempt_at is not None
    assert now + timedelta(seconds=48) <= delivery.next_attempt_at <= now + timedelta(seconds=72)
    [request] = receiver.requests
    verify(request, secret, now)
    assert request.headers["x-patchday-event"] == "finding.kev"
    assert request.headers["x-patchday-delivery"] == str(delivery.uuid)
    payload = json.loads(request.body)
    assert payload["event"] == "finding.kev"
    assert payload["subject"]["id"] == target.pk
    assert payload["subject"]["vulnerability"] == target.vulnerability
    assert payload["subject"]["host"] == target.host.name
    assert payload["subject"]["links"]["api"] == f"/api/v1/findings/{target.pk}"

    assert sending.send_due(now + timedelta(seconds=30)) == {"delivered": 0, "retrying": 0, "failed": 0}
    later = now + timedelta(minutes=2)
    assert sending.send_due(later) == {"delivered": 1, "retrying": 0, "failed": 0}

    retry = receiver.requests[1]
    verify(retry, secret, later)
    assert retry.headers["x-patchday-delivery"] == str(delivery.uuid)  # the receiver can de-duplicate
    assert retry.body == request.body
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.delivered_at) == (DeliveryState.DELIVERED, 2, later)

    assert detection.scan(SYSTEM_ACTOR, later + timedelta(hours=1))["finding.kev"] == 0
    sending.send_due(later + timedelta(hours=2))
    assert len(receiver.requests) == 2
    log = api_as(Role.AUDITOR).get("notifications/deliveries?event=finding.kev").json()["items"]
    assert [(a["number"], a["status"], a["delivered"]) for a in log[0]["attempt_log"]] == [
        (1, 500, False),
        (2, 200, True),
    ]


def test_a_new_finding_on_a_kev_cve_is_announced(allow_private: None, receiver: Receiver, admin_api) -> None:  # type: ignore[no-untyped-def]
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    add_webhook(admin_api, receiver.url, ["finding.kev"])
    assert detection.scan(SYSTEM_ACTOR)["finding.kev"] == 0
    ingest.store_document(SYSTEM_ACTOR, document(real_host()), mode="agent")
    target = lone_finding()
    enter_kev(target.vulnerability)

    assert detection.scan(SYSTEM_ACTOR)["finding.kev"] == 1
    sending.send_due()

    assert [r.headers["x-patchday-event"] for r in receiver.requests] == ["finding.kev"]


def test_backoff_doubles_from_a_minute_with_jitter_and_is_capped_at_six_hours() -> None:
    assert sending.backoff(1, 0.0) == timedelta(seconds=48)
    assert sending.backoff(3, 0.5) == timedelta(minutes=4)
    assert sending.backoff(30, 0.99) == timedelta(hours=6)


def test_give_up_after_the_last_attempt(  # type: ignore[no-untyped-def]
    fleet: None, allow_private: None, receiver: Receiver, admin_api
) -> None:
    target = lone_finding()
    add_webhook(admin_api, receiver.url, ["finding.kev"])
    enter_kev(target.vulnerability)
    receiver.answers = [503] * sending.MAX_ATTEMPTS
    now = timezone.now()
    detection.scan(SYSTEM_ACTOR, now)

    for _ in range(sending.MAX_ATTEMPTS):
        sending.send_due(now)
        now += sending.MAX_DELAY

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryState.FAILED,
        sending.MAX_ATTEMPTS,
        None,
    )
    assert len(receiver.requests) == sending.MAX_ATTEMPTS
    assert sending.send_due(now + timedelta(days=1))["failed"] == 0


def test_overdue_and_due_soon_are_mailed_once_per_due_date(  # type: ignore[no-untyped-def]
    fleet: None, mailbox: Mailbox, environment, admin_api
) -> None:
    environment(
        PATCHDAY_SMTP_HOST="127.0.0.1",
        PATCHDAY_SMTP_PORT=str(mailbox.port),
        PATCHDAY_SMTP_STARTTLS="false",
        PATCHDAY_SMTP_FROM="patchday@example.net",
        PATCHDAY_PUBLIC_URL="https://patchday.example.net",
    )
    answer = admin_api.post(
        "notifications/email", json={"addresses": ["sec@example.net", "ops@example.net"], "events": ["finding.overdue"]}
    )
    assert answer.status_code == 201, answer.content
    Finding.objects.update(due_date=None)
    late, soon = list(Finding.objects.filter(status=FindingStatus.OPEN).order_by("pk")[:2])
    today = timezone.now().date()
    Finding.objects.filter(pk=late.pk).update(due_date=today - timedelta(days=1))
    Finding.objects.filter(pk=soon.pk).update(due_date=today + timedelta(days=3))

    counts = detection.scan(SYSTEM_ACTOR)
    assert sending.send_due() == {"delivered": 1, "retrying": 0, "failed": 0}
    again = detection.scan(SYSTEM_ACTOR)

    assert (counts["finding.overdue"], counts["finding.due_soon"]) == (1, 1)
    assert not any(again.values())
    [(sender, recipients, data)] = mailbox.messages
    assert sender == "patchday@example.net"
    assert sorted(recipients) == ["ops@example.net", "sec@example.net"]
    assert f"finding.overdue: {late.vulnerability} on {late.host.name}" in data
    assert f"https://patchday.example.net/findings/{late.pk}/" in data

    Finding.objects.filter(pk=late.pk).update(due_date=today - timedelta(days=2))  # a new due date: a new notice
    assert detection.scan(SYSTEM_ACTOR)["finding.overdue"] == 1
    assert Notification.objects.filter(event="finding.overdue", finding_id=late.pk).count() == 2


def test_an_expiring_and_then_expired_exception_is_announced(fleet: None) -> None:
    finding = lone_finding()
    scope = exceptions.Scope(vulnerability=finding.vulnerability)
    record = exceptions.request_exception(SYSTEM_ACTOR, "olga", scope, "not exposed to the internet",
                                          timezone.now() + timedelta(days=3))  # fmt: skip
    exceptions.decide(SYSTEM_ACTOR, "anna", record.pk, True)

    assert detection.scan(SYSTEM_ACTOR)["exception.expiring"] == 1
    RiskException.objects.filter(pk=record.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    exceptions.expire_due(SYSTEM_ACTOR)
    counts = detection.scan(SYSTEM_ACTOR)

    assert (counts["exception.expiring"], counts["exception.expired"]) == (0, 1)
    assert not any(detection.scan(SYSTEM_ACTOR).values())
    expired = Notification.objects.get(event="exception.expired")
    assert expired.payload["subject"]["scope"].startswith(finding.vulnerability)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]/hook",
        "file:///etc/passwd",
        "ftp://127.0.0.1/hook",
        "https://admin:hunter2@127.0.0.1/hook",
        "http://0.0.0.0:8080/hook",
    ],
)
def test_webhook_urls_patchday_must_not_call_are_refused(allow_private: None, admin_api, url: str) -> None:  # type: ignore[no-untyped-def]
    answer = admin_api.post("notifications/webhooks", json={"url": url})

    assert answer.status_code == 422, answer.content
    assert answer.json()["error"]["details"][0]["field"] == "url"
    assert not Channel.objects.exists()


def test_private_addresses_need_the_explicit_setting(admin_api) -> None:  # type: ignore[no-untyped-def]
    answer = admin_api.post("notifications/webhooks", json={"url": "http://127.0.0.1:9/hook"})

    assert answer.status_code == 422
    assert "PATCHDAY_WEBHOOK_ALLOW_PRIVATE" in answer.json()["error"]["message"]


def test_the_secret_is_shown_once_and_stored_encrypted(  # type: ignore[no-untyped-def]
    allow_private: None, receiver: Receiver, admin_api
) -> None:
    hook = add_webhook(admin_api, receiver.url, [])
    secret = str(hook["secret"])

    listed = admin_api.get("notifications/webhooks")
    tested = admin_api.post(f"notifications/webhooks/{hook['id']}/test")
    deleted = admin_api.delete(f"notifications/webhooks/{hook['id']}")

    assert secret.startswith("whsec_")
    assert len(secret) > 40
    for answer in (listed, tested, deleted):
        assert answer.status_code == 200, answer.content
        assert secret not in answer.content.decode()
        assert "secret" not in answer.content.decode()
    assert tested.json()["state"] == "delivered"
    [ping] = receiver.requests
    assert ping.headers["x-patchday-event"] == "ping"
    timestamp = ping.headers["x-patchday-timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + ping.body, hashlib.sha256).hexdigest()
    assert ping.headers["x-patchday-signature"] == f"sha256={expected}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_sealed FROM notifications_channel")
        [(raw,)] = cursor.fetchall()
    assert secret not in raw
    assert sealing.unseal(raw) == secret
    assert not any(secret in str(r.changes) for r in AuditRecord.objects.all())
    actions = list(AuditRecord.objects.filter(object_type="webhook").values_list("action", flat=True))
    assert actions == ["notifications.webhook_add", "notifications.webhook_test", "notifications.webhook_delete"]
    assert admin_api.get("notifications/webhooks").json() == []


def test_bad_channel_input_is_refused_naming_the_field(admin_api) -> None:  # type: ignore[no-untyped-def]
    bad_event = admin_api.post("notifications/email", json={"addresses": ["a@example.net"], "events": ["finding.new"]})
    bad_address = admin_api.post("notifications/email", json={"addresses": ["not an address"]})
    none = admin_api.post("notifications/email", json={"addresses": []})

    assert [a.json()["error"]["details"][0]["field"] for a in (bad_event, bad_address, none)] == [
        "events",
        "addresses",
        "addresses",
    ]
    assert admin_api.delete("notifications/email/424242").status_code == 404


def test_deleting_a_channel_cancels_its_pending_deliveries(  # type: ignore[no-untyped-def]
    fleet: None, allow_private: None, receiver: Receiver, admin_api
) -> None:
    target = lone_finding()
    hook = add_webhook(admin_api, receiver.url, ["finding.kev"])
    enter_kev(target.vulnerability)
    detection.scan(SYSTEM_ACTOR)

    admin_api.delete(f"notifications/webhooks/{hook['id']}")

    assert list(Delivery.objects.values_list("state", flat=True)) == ["cancelled"]
    assert sending.send_due(timezone.now() + timedelta(minutes=1))["delivered"] == 0
    assert receiver.requests == []


def test_the_delivery_log_costs_the_same_queries_for_more_deliveries(  # type: ignore[no-untyped-def]
    fleet: None, allow_private: None, receiver: Receiver, admin_api, api_as, django_assert_max_num_queries
) -> None:
    add_webhook(admin_api, receiver.url, ["finding.due_soon"])
    Finding.objects.update(due_date=None)
    soon = Finding.objects.filter(status=FindingStatus.OPEN).order_by("pk")[:10].values("pk")
    Finding.objects.filter(pk__in=soon).update(due_date=timezone.now().date() + timedelta(days=1))
    detection.scan(SYSTEM_ACTOR)
    sending.send_due()
    auditor = api_as(Role.AUDITOR)
    assert Delivery.objects.count() == 10

    with django_assert_max_num_queries(8):
        answer = auditor.get("notifications/deliveries")

    assert answer.status_code == 200
    assert [len(item["attempt_log"]) for item in answer.json()["items"]] == [1] * 10
