"""A stand-in patchday server on loopback that speaks docs/agent.md's protocol from memory, for agent tests."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

HOST_TOKEN = "pdh_test-token-never-printed"
SECRET = "pde_test-secret"


def seeded(seed: int) -> random.Random:
    """A reproducible generator for jitter and backoff draws."""
    return random.Random(seed)  # noqa: S311 - timing draws, not secrets


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StubServer:
    """Answers enroll/checkin/inventory; `failures` are answered first (status, body) before the protocol resumes."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    last_sequence: int = 0
    last_digest: str = ""
    interval: int = 300
    jobs: list[Any] = field(default_factory=list)
    name_409_sequence: bool = True
    results: list[tuple[str, Any]] = field(default_factory=list)

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        self.requests.append(Recorded(method, path, headers, body))
        if self.failures:
            return self.failures.pop(0)
        if (method, path) == ("POST", "/api/v1/agent/enroll"):
            if body.get("secret") != SECRET:
                return 403, {"error": {"code": "forbidden", "message": "unknown enrollment secret"}}
            return 201, {"host_id": 7, "host_name": body["hostname"], "host_token": HOST_TOKEN, "checkin_interval": 60}
        if headers.get("Authorization") != f"Bearer {HOST_TOKEN}":
            return 401, {"error": {"code": "unauthorized", "message": "bad host token"}}
        if (method, path) == ("POST", "/api/v1/agent/checkin"):
            wanted = body["digest"] != self.last_digest
            return 200, {"inventory_wanted": wanted, "checkin_interval": self.interval, "jobs": self.jobs}
        if (method, path) == ("PUT", "/api/v1/agent/inventory"):
            if body["sequence"] <= self.last_sequence:
                error: dict[str, Any] = {"code": "conflict", "message": "stale sequence", "field": "sequence"}
                if self.name_409_sequence:
                    error["last_sequence"] = self.last_sequence
                return 409, {"error": error}
            self.last_sequence = body["sequence"]
            self.last_digest = body["digest"]
            return 200, {
                "stored": True,
                "added": len(body["inventory"].get("packages", [])),
                "removed": 0,
                "changed": 0,
            }
        if method == "POST" and path.startswith("/api/v1/agent/jobs/") and path.endswith("/result"):
            self.results.append((path, body))
            self.jobs = []  # a leased job is offered once
            return 200, {"job_id": body["result"]["job_id"], "state": body["result"]["status"]}
        return 404, {"error": {"code": "not_found", "message": path}}


def _handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, answer = stub.answer(self.command, self.path, dict(self.headers.items()), body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", answer.get("location", "/"))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    stub = StubServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()
