"""The audit trail on a real database: every entry point appends, raw SQL tampering is caught, search, export."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode

import pytest
from django.db import connection, transaction

from patchday.accounts.models import User
from patchday.audit import services
from patchday.audit.models import AppendOnlyError, AuditChainHead, AuditRecord
from patchday.core.audit import Actor, ActorKind, AuditEntry, chain_hash
from patchday.core.roles import Role
from tests.conftest import TEST_PASSWORD, ApiClient
from tests.support.concurrency import in_threads

ALICE = Actor(ActorKind.USER, "alice", None, "192.0.2.10")
BOB = Actor(ActorKind.TOKEN, "bob/pd_1234", None, "192.0.2.11")
CLI = [sys.executable, "-m", "patchday.cli.main"]

pytestmark = pytest.mark.django_db


def last_record() -> AuditRecord:
    return AuditRecord.objects.order_by("-id")[0]


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def seed(count: int) -> list[AuditRecord]:
    return [services.record(ALICE, "test.seed", "thing", n, {"n": n}) for n in range(count)]


def raw_sql(sql: str, params: list[str | int | datetime]) -> None:
    """Run `sql` with the table name filled in, bypassing the ORM (as an attacker with database access would)."""
    table = connection.ops.quote_name(AuditRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


# -- every entry point appends a record ----------------------------------------------------------------


def test_an_api_mutation_appends_a_record_of_the_token(admin_api: ApiClient, make_user: Callable[..., User]) -> None:
    carol = make_user(Role.VIEWER, "carol")
    before = AuditRecord.objects.count()
    response = admin_api.patch("users/carol", {"role": "operator"})
    assert response.status_code == 200
    assert AuditRecord.objects.count() == before + 1
    row = last_record()
    assert (row.action, row.object_type, row.object_id) == ("user.set_role", "user", carol.username)
    assert row.actor_kind == ActorKind.TOKEN
    assert row.actor_name.startswith("admin-")
    assert row.source_address == "127.0.0.1"
    assert json.loads(row.changes) == {"role": ["viewer", "operator"]}
    assert services.verify().is_intact


def test_a_page_mutation_appends_a_record_of_the_signed_in_user(make_user: Callable[..., User]) -> None:
    from django.test import Client

    admin = make_user(Role.ADMIN)
    client = Client()
    client.force_login(admin)
    response = client.post("/users/", {"username": "dora", "role": "viewer"})
    assert response.status_code == 200
    row = last_record()
    assert (row.action, row.object_id, row.actor_kind, row.actor_name) == (
        "user.create",
        "dora",
        "user",
        admin.username,
    )


def test_a_failing_request_writes_no_record(admin_api: ApiClient) -> None:
    before = list(AuditRecord.objects.values_list("id", flat=True))
    weak = admin_api.post("users", {"username": "erin", "role": "viewer", "password": "short"})
    assert weak.status_code == 422
    assert list(AuditRecord.objects.values_list("id", flat=True)) == before
    assert not User.objects.filter(username="erin").exists()


def test_a_request_failing_halfway_writes_neither_the_change_nor_its_record(
    make_user: Callable[..., User], token_for: Callable[[User], str]
) -> None:
    make_user(Role.ADMIN)  # another admin, so that demoting this one is allowed on its own
    me = make_user(Role.ADMIN)
    api = ApiClient(token_for(me))
    before = list(AuditRecord.objects.values_list("id", flat=True))
    # The role change would succeed; disabling one's own account must not, and takes the role change with it.
    response = api.patch(f"users/{me.username}", {"role": "operator", "active": False})
    assert response.status_code == 409
    assert list(AuditRecord.objects.values_list("id", flat=True)) == before
    me.refresh_from_db()
    assert (me.role, me.is_active) == (Role.ADMIN, True)


@pytest.mark.slow
def test_cli_and_worker_mutations_append_records_of_the_system(child_env: dict[str, str], admin_api: ApiClient) -> None:
    created = run_cli(child_env, "user", "create", "frank", "--role", "auditor", "--password", TEST_PASSWORD)
    assert created.returncode == 0, created.stderr
    cli_row = last_record()
    assert (cli_row.action, cli_row.object_id, cli_row.actor_kind) == ("user.create", "frank", "system")
    assert cli_row.actor_name.startswith("cli:")
    assert cli_row.source_address == "local"

    enqueued = admin_api.post("worker/probes")
    assert enqueued.status_code == 202
    token = enqueued.json()["token"]
    assert (last_record().action, last_record().actor_kind) == ("worker.probe", "token")

    ran = run_cli(child_env, "worker", "--batch", "--no-schedule", "--interval", "0.05")
    assert ran.returncode == 0, ran.stderr
    worker_row = last_record()
    assert (worker_row.action, worker_row.object_type, worker_row.actor_kind) == ("worker.probe_ran", "probe", "system")
    assert worker_row.actor_name.startswith("worker:")
    assert json.loads(worker_row.changes) == {"token": token}
    assert services.verify().is_intact


def test_changes_are_hashed_as_they_are_stored() -> None:
    # Integer keys come back from JSON as strings (and sort differently); times come back as text.
    odd: dict[object, object] = {1: "a", 10: "b", 2: [datetime(2026, 3, 1, 12, 0)]}
    services.record(ALICE, "test.odd_changes", "thing", 1, odd)  # type: ignore[arg-type]
    assert json.loads(last_record().changes) == {"1": "a", "10": "b", "2": ["2026-03-01 12:00:00"]}
    assert services.verify().is_intact


# -- append-only -----------------------------------------------------------------------------------------


def test_the_orm_refuses_to_change_or_remove_records() -> None:
    row, other = seed(2)
    row.actor_name = "mallory"
    attempts: list[Callable[[], object]] = [
        row.save,
        row.delete,
        lambda: AuditRecord.objects.filter(pk=row.pk).update(actor_name="mallory"),
        lambda: AuditRecord.objects.filter(pk=row.pk).delete(),
        lambda: AuditRecord.objects.all().delete(),
        lambda: AuditRecord.objects.bulk_update([row], ["actor_name"]),
        lambda: AuditRecord.objects.update_or_create(pk=other.pk, defaults={"action": "x"}),
    ]
    for attempt in attempts:
        with pytest.raises(AppendOnlyError), transaction.atomic():
            attempt()
    assert list(AuditRecord.objects.values_list("actor_name", "action")) == [("alice", "test.seed")] * 2
    assert services.verify().is_intact


# -- tampering with raw SQL ------------------------------------------------------------------------------


@pytest.mark.slow
def test_verify_names_a_record_altered_with_raw_sql(
    child_env: dict[str, str], api_as: Callable[[Role], ApiClient]
) -> None:
    rows = seed(6)
    intact = run_cli(child_env, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "audit chain intact" in intact.stdout

    target = rows[3]
    raw_sql("UPDATE {table} SET object_id = %s WHERE id = %s", ["tampered", target.pk])

    broken = run_cli(child_env, "audit", "verify")
    assert broken.returncode == 1
    assert re.search(rf"BROKEN at record {target.pk}\b", broken.stderr), broken.stderr
    report = api_as(Role.AUDITOR).get("audit/verify").json()
    assert (report["intact"], report["first_broken_id"]) == (False, target.pk)
    assert report["reason"] == "its contents do not match its hash"


@pytest.mark.parametrize(
    ("column", "value"),
    [("at", "2001-01-01 00:00:00"), ("actor_kind", "system"), ("changes", '{"n":99}'), ("hash", "a" * 64)],
)
def test_verify_names_a_record_whose_column_was_altered(column: str, value: str) -> None:
    rows = seed(4)
    if column == "at":
        raw_sql("UPDATE {table} SET at = %s WHERE id = %s", [datetime.fromisoformat(value + "+00:00"), rows[1].pk])
    else:
        raw_sql(f"UPDATE {{table}} SET {column} = %s WHERE id = %s", [value, rows[1].pk])
    report = services.verify()
    # Altering a stored hash breaks that record; every other column breaks its own hash.
    assert report.first_broken == rows[1].pk


def test_verify_names_the_successor_of_a_record_deleted_with_raw_sql(api_as: Callable[[Role], ApiClient]) -> None:
    rows = seed(5)
    raw_sql("DELETE FROM {table} WHERE id = %s", [rows[2].pk])
    report = api_as(Role.AUDITOR).get("audit/verify").json()
    assert (report["intact"], report["first_broken_id"]) == (False, rows[3].pk)
    assert report["reason"] == "its predecessor link does not match the record before it"


def test_verify_notices_the_last_record_deleted_with_raw_sql() -> None:
    rows = seed(5)
    raw_sql("DELETE FROM {table} WHERE id = %s", [rows[-1].pk])
    report = services.verify()
    assert not report.is_intact
    assert report.first_broken == rows[-2].pk
    assert report.reason is not None
    assert "counts" in report.reason


def test_verify_notices_every_record_deleted_with_raw_sql(api_as: Callable[[Role], ApiClient]) -> None:
    auditor = api_as(Role.AUDITOR)
    seed(3)
    raw_sql("DELETE FROM {table}", [])
    report = auditor.get("audit/verify").json()
    assert (report["intact"], report["checked"], report["first_broken_id"]) == (False, 0, None)
    assert report["reason"].startswith("the chain head counts")


# -- concurrency -----------------------------------------------------------------------------------------


def test_concurrent_appends_keep_the_chain_intact(transactional_db: None) -> None:
    writers, per_writer = 6, 20
    seen: list[bool] = []

    def work(n: int) -> None:
        if n == writers:  # one reader verifies while the others append: it must never see a broken chain
            for _ in range(10):
                seen.append(services.verify().is_intact)
            return
        for i in range(per_writer):
            services.record(Actor(ActorKind.SYSTEM, f"writer-{n}"), "test.concurrent", "thing", f"{n}-{i}")

    assert in_threads(writers + 1, work) == []
    report = services.verify()
    assert report.is_intact, report
    assert report.checked == writers * per_writer
    head = AuditChainHead.objects.get(pk=1)
    assert (head.count, head.last_hash) == (writers * per_writer, last_record().hash)
    assert seen == [True] * 10


# -- search and export -----------------------------------------------------------------------------------


@pytest.fixture
def trail() -> list[AuditRecord]:
    return [
        services.record(ALICE, "user.create", "user", "u1", {"role": "viewer"}),
        services.record(BOB, "user.set_role", "user", "u1", {"role": ["viewer", "admin"]}),
        services.record(ALICE, "token.revoke", "api_token", "pd_1", {"owner": "u1"}),
        services.record(BOB, "user.disable", "user", "u2", {"active": False}),
    ]


def ids_of(response: object) -> list[int]:
    return [item["id"] for item in response.json()["items"]]  # type: ignore[attr-defined]


def test_search_filters_by_actor_action_object_and_time(
    trail: list[AuditRecord], api_as: Callable[[Role], ApiClient]
) -> None:
    auditor = api_as(Role.AUDITOR)
    mine = [r.pk for r in trail]

    def search(**query: str) -> list[int]:
        response = auditor.get("audit?" + urlencode(query))
        assert response.status_code == 200, response.content
        return [i for i in ids_of(response) if i in mine]

    assert search() == mine[::-1]  # newest first
    assert search(actor="bob/pd_1234") == [mine[3], mine[1]]
    assert search(action="user.") == [mine[3], mine[1], mine[0]]
    assert search(action="token.revoke") == [mine[2]]
    assert search(object_type="user", object_id="u1") == [mine[1], mine[0]]
    assert search(since=trail[1].at.isoformat(), until=trail[3].at.isoformat()) == [mine[2], mine[1]]
    first = auditor.get("audit?" + urlencode({"object_id": "u1"})).json()["items"][-1]
    assert first["changes"] == {"role": "viewer"}
    assert first["source_address"] == "192.0.2.10"


def test_csv_export_holds_the_filtered_records_with_rehashable_fields(
    trail: list[AuditRecord], api_as: Callable[[Role], ApiClient]
) -> None:
    response = api_as(Role.AUDITOR).get("audit/export?" + urlencode({"format": "csv", "actor": "alice"}))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="patchday-audit.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))
    assert [int(r["id"]) for r in rows] == [trail[2].pk, trail[0].pk]
    for exported in rows:
        entry = AuditEntry(
            at=datetime.fromisoformat(exported["at"]),
            actor_kind=ActorKind(exported["actor_kind"]),
            actor_name=exported["actor_name"],
            action=exported["action"],
            object_type=exported["object_type"],
            object_id=exported["object_id"],
            changes=json.loads(exported["changes"]),
            source_address=exported["source_address"],
        )
        assert chain_hash(exported["prev_hash"], entry) == exported["hash"]


def test_json_export_holds_the_filtered_records(trail: list[AuditRecord], api_as: Callable[[Role], ApiClient]) -> None:
    response = api_as(Role.AUDITOR).get("audit/export?" + urlencode({"format": "json", "action": "user."}))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    mine = {r.pk for r in trail}
    exported = [r for r in json.loads(b"".join(response.streaming_content)) if r["id"] in mine]
    assert [r["id"] for r in exported] == [trail[3].pk, trail[1].pk, trail[0].pk]
    assert exported[1]["changes"] == {"role": ["viewer", "admin"]}
    assert exported[1]["actor_kind"] == "token"
    assert exported[0]["prev_hash"] == trail[2].hash  # a filtered export still shows each record's link


def test_an_empty_export_is_valid(api_as: Callable[[Role], ApiClient]) -> None:
    auditor = api_as(Role.AUDITOR)
    empty = auditor.get("audit/export?" + urlencode({"format": "json", "actor": "nobody"}))
    assert json.loads(b"".join(empty.streaming_content)) == []
    header = auditor.get("audit/export?" + urlencode({"format": "csv", "actor": "nobody"}))
    assert b"".join(header.streaming_content).decode().splitlines() == [",".join(services.EXPORT_FIELDS)]


@pytest.mark.parametrize("path", ["audit", "audit/export", "audit/export?format=json", "audit/verify"])
def test_a_viewer_may_not_read_the_audit_trail(path: str, api_as: Callable[[Role], ApiClient]) -> None:
    response = api_as(Role.VIEWER).get(path)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
