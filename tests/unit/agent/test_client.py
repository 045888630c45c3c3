"""Enrollment and the check-in cycle against a stand-in server: sequence, digest, 409s, backoff, no token in logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from patchday.agent.backoff import Backoff
from patchday.agent.client import Agent, enroll, host_identity, next_sequence
from patchday.agent.config import AgentState, StateStore
from patchday.agent.errors import ConfigError, ServerRefused, ServerUnavailable
from patchday.agent.transport import Transport

from .conftest import HOST_TOKEN, SECRET, StubServer, seeded

IDENTITY = ("4c4c4544004e3510804fc2c04f4b4d32", "h1")


class FakeCollector:
    """Inventory documents whose digest is their `n`; bump `n` to 'change' the host."""

    def __init__(self) -> None:
        self.n = 1

    def collect(self, changelogs: bool) -> dict[str, Any]:
        return {"format": 1, "machine_id": IDENTITY[0], "packages": [{"name": "libssl3", "version": str(self.n)}]}

    def digest(self, document: Any) -> str:
        return f"digest-{document['packages'][0]['version']}"


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state")


@pytest.fixture
def enrolled(store: StateStore) -> StateStore:
    store.save(AgentState(7, "h1", HOST_TOKEN, sequence=0))
    return store


def make_agent(stub: StubServer, store: StateStore, collector: FakeCollector | None = None) -> Agent:
    collector = collector or FakeCollector()
    return Agent(Transport(stub.url, timeout=5), store, collect=collector.collect, digest=collector.digest)


def test_enroll_trades_the_secret_for_a_host_token(stub_server: StubServer, store: StateStore) -> None:
    state = enroll(Transport(stub_server.url), store, SECRET, identity=IDENTITY)
    assert (state.host_id, state.host_name, state.host_token, state.checkin_interval) == (7, "h1", HOST_TOKEN, 60)
    assert store.require() == state
    assert stub_server.requests[0].body == {"secret": SECRET, "machine_id": IDENTITY[0], "hostname": "h1"}


def test_a_refused_secret_says_so_and_saves_nothing(stub_server: StubServer, store: StateStore) -> None:
    with pytest.raises(ServerRefused, match="unknown, revoked or expired"):
        enroll(Transport(stub_server.url), store, "pde_wrong", identity=IDENTITY)
    assert store.load() is None


def test_an_enrolled_host_is_not_enrolled_again_without_force(stub_server: StubServer, enrolled: StateStore) -> None:
    enrolled.update(enrolled.require(), sequence=41)
    with pytest.raises(ConfigError, match="already enrolled"):
        enroll(Transport(stub_server.url), enrolled, SECRET, identity=IDENTITY)
    state = enroll(Transport(stub_server.url), enrolled, SECRET, identity=IDENTITY, force=True)
    assert state.sequence == 41  # the same machine may land on the same host record: never count backwards


def test_enroll_needs_a_secret(stub_server: StubServer, store: StateStore) -> None:
    with pytest.raises(ConfigError, match="no enrollment secret"):
        enroll(Transport(stub_server.url), store, "", identity=IDENTITY)


def test_host_identity_reads_machine_id(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "machine-id").write_text(IDENTITY[0].upper() + "\n")
    assert host_identity(tmp_path)[0] == IDENTITY[0]
    (tmp_path / "etc" / "machine-id").write_text("uninitialized\n")
    assert host_identity(tmp_path)[0] == ""


def test_first_checkin_sends_the_inventory_then_only_the_digest(stub_server: StubServer, enrolled: StateStore) -> None:
    collector = FakeCollector()
    agent = make_agent(stub_server, enrolled, collector)
    first = agent.check_in()
    assert (first.sequence, first.inventory_wanted, first.inventory_sent) == (1, True, True)
    assert first.stored["added"] == 1
    second = agent.check_in()
    assert (second.sequence, second.inventory_sent) == (2, False)
    collector.n = 2
    third = agent.check_in()
    assert (third.sequence, third.inventory_sent) == (3, True)
    calls = [(r.method, r.path.rsplit("/", 1)[-1], r.body["sequence"]) for r in stub_server.requests]
    assert calls == [
        ("POST", "checkin", 1),
        ("PUT", "inventory", 1),
        ("POST", "checkin", 2),
        ("POST", "checkin", 3),
        ("PUT", "inventory", 3),
    ]
    put = stub_server.requests[-1].body
    assert put["digest"] == "digest-2"
    assert put["inventory"]["packages"][0]["version"] == "2"
    assert stub_server.requests[0].body["agent_version"]
    state = enrolled.require()
    assert (state.sequence, state.last_digest, state.checkin_interval) == (3, "digest-2", 300)
    assert state.last_checkin_at
    assert state.last_inventory_at
    assert not state.last_error


def test_the_sequence_is_persisted_before_it_is_sent(stub_server: StubServer, enrolled: StateStore) -> None:
    seen_on_disk: list[int] = []
    original = stub_server.answer

    def answer(method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        seen_on_disk.append(json.loads(enrolled.path.read_text())["sequence"])
        return original(method, path, headers, body)

    stub_server.answer = answer  # type: ignore[method-assign]
    stub_server.failures.append((503, {}))
    agent = make_agent(stub_server, enrolled)
    with pytest.raises(ServerUnavailable):
        agent.check_in()  # the sequence is used up even though the server never saw it
    agent.check_in()
    assert seen_on_disk == [1, 2, 2]
    assert enrolled.require().sequence == 2


@pytest.mark.parametrize("server_names_its_sequence", [True, False])
def test_a_409_moves_the_sequence_past_the_servers(
    stub_server: StubServer, enrolled: StateStore, server_names_its_sequence: bool
) -> None:
    stub_server.last_sequence = 1000  # e.g. the state file came back from an old backup
    stub_server.name_409_sequence = server_names_its_sequence
    report = make_agent(stub_server, enrolled).check_in()
    assert report.inventory_sent
    assert report.sequence > 1000
    assert stub_server.last_sequence == report.sequence
    assert enrolled.require().sequence == report.sequence
    if server_names_its_sequence:
        assert report.sequence == 1001


def test_next_sequence() -> None:
    assert next_sequence(5, {"last_sequence": 41}) == 42
    assert next_sequence(50, {"last_sequence": 41}) == 51
    assert next_sequence(5, {}) == 11
    assert next_sequence(0, {"last_sequence": "41"}) == 1
    assert next_sequence(5, {"details": {"last_sequence": 41}}) == 42


def _lease(job_id: int) -> dict[str, Any]:
    spec = {
        "job_id": job_id,
        "kind": "deploy",
        "manager": "apt",
        "targets": [{"name": "libexpat1", "version": "2.5.0-1+deb12u5"}],
    }
    return {
        "job": spec,
        "phase": "deploy",
        "lease_token": f"t{job_id}",
        "lease_expires_at": "2026-11-28T12:00:00+00:00",
    }


def test_leased_jobs_are_run_reported_and_followed_by_an_inventory(
    stub_server: StubServer, enrolled: StateStore
) -> None:
    ran: list[int] = []

    def run_job(spec: Any) -> dict[str, Any]:
        ran.append(spec["job_id"])
        return {"job_id": spec["job_id"], "kind": "deploy", "status": "succeeded", "error": ""}

    collector = FakeCollector()
    agent = Agent(
        Transport(stub_server.url, timeout=5),
        enrolled,
        collect=collector.collect,
        digest=collector.digest,
        run_job=run_job,
    )
    stub_server.last_digest = collector.digest(collector.collect(False))  # the server has this inventory already
    stub_server.jobs = [_lease(1), _lease(2), {"nonsense": True}]
    report = agent.check_in()
    assert (report.jobs, ran) == (2, [1, 2])
    assert [(path, body["idempotency_key"]) for path, body in stub_server.results] == [
        ("/api/v1/agent/jobs/1/result", "1:deploy:t1"),
        ("/api/v1/agent/jobs/2/result", "2:deploy:t2"),
    ]
    assert report.inventory_sent  # sent at once so the server can verify the jobs


def test_a_result_the_server_cannot_take_now_is_kept_and_sent_next_cycle(
    stub_server: StubServer, enrolled: StateStore
) -> None:
    def run_job(spec: Any) -> dict[str, Any]:
        return {"job_id": spec["job_id"], "kind": "deploy", "status": "failed", "error": "step install failed"}

    collector = FakeCollector()
    agent = Agent(
        Transport(stub_server.url, timeout=5),
        enrolled,
        collect=collector.collect,
        digest=collector.digest,
        run_job=run_job,
    )
    stub_server.jobs = [_lease(3)]
    original = stub_server.answer

    def unavailable_for_results(
        method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any]]:
        if path.endswith("/result"):
            return 503, {"error": {"code": "unavailable", "message": "busy"}}
        return original(method, path, headers, body)

    stub_server.answer = unavailable_for_results  # type: ignore[method-assign]
    agent.check_in()
    kept = list((enrolled.path.parent / "results").glob("*.json"))
    assert [k.name for k in kept] == ["3-deploy.json"]
    assert oct(kept[0].stat().st_mode & 0o777) == "0o600"
    stub_server.answer = original  # type: ignore[method-assign]
    stub_server.jobs = []  # the server leased it once; it is not offered again
    agent.check_in()
    assert [body["idempotency_key"] for _, body in stub_server.results] == ["3:deploy:t3"]
    assert not list((enrolled.path.parent / "results").glob("*.json"))


def test_a_refused_token_is_an_error(stub_server: StubServer, store: StateStore) -> None:
    store.save(AgentState(7, "h1", "pdh_revoked"))
    with pytest.raises(ServerRefused, match="HTTP 401"):
        make_agent(stub_server, store).check_in()


class Stopper:
    """stop() for Agent.run: records each wait and stops after `cycles` of them."""

    def __init__(self, cycles: int) -> None:
        self.cycles = cycles
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return len(self.waits) >= self.cycles


def test_run_backs_off_while_the_server_is_down_then_resumes_the_interval(
    stub_server: StubServer, enrolled: StateStore
) -> None:
    stub_server.failures.extend([(503, {})] * 4)
    stop = Stopper(6)
    make_agent(stub_server, enrolled).run(stop, seeded(3), Backoff(base=10, cap=25))
    backoffs, intervals = stop.waits[:4], stop.waits[4:]
    assert [5 <= backoffs[0] <= 10, 10 <= backoffs[1] <= 20, 12.5 <= backoffs[2] <= 25, 12.5 <= backoffs[3] <= 25]
    assert all(240 <= wait <= 360 for wait in intervals)
    assert enrolled.require().last_error == ""


def test_run_records_the_last_failure_and_honours_retry_after(enrolled: StateStore) -> None:
    class Down:
        base, timeout = "http://127.0.0.1:9", 5.0

        def request(self, *args: object, **kwargs: object) -> tuple[int, dict[str, Any]]:
            raise ServerUnavailable("POST http://127.0.0.1:9/api/v1/agent/checkin: HTTP 503", retry_after=120)

    collector = FakeCollector()
    agent = Agent(Down(), enrolled, collect=collector.collect, digest=collector.digest)  # type: ignore[arg-type]
    stop = Stopper(1)
    agent.run(stop, seeded(1), Backoff(base=10, cap=900))
    assert stop.waits == [120]
    assert "HTTP 503" in enrolled.require().last_error


def test_run_survives_a_collector_bug(stub_server: StubServer, enrolled: StateStore) -> None:
    def broken(changelogs: bool) -> dict[str, Any]:
        raise RuntimeError("collector bug")

    agent = Agent(Transport(stub_server.url), enrolled, collect=broken, digest=str)
    stop = Stopper(2)
    agent.run(stop, seeded(1), Backoff(base=10, cap=900))
    assert len(stop.waits) == 2
    assert "RuntimeError: collector bug" in enrolled.require().last_error


def test_the_host_token_is_never_logged(
    stub_server: StubServer, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        enroll(Transport(stub_server.url), store, SECRET, identity=IDENTITY)
        stub_server.failures.extend([(500, {}), (409, {"error": {"code": "conflict", "message": "stale"}})])
        make_agent(stub_server, store).run(Stopper(3), seeded(1), Backoff(base=1, cap=2))
    assert caplog.records
    assert HOST_TOKEN not in caplog.text
    assert SECRET not in caplog.text
