"""Inventory benchmarks: ingest of a full 2,000-package inventory, an unchanged check-in, and a load
generator of 10,000 simulated agents (real HTTP on loopback) against one and two web processes.

Run `bench/run` (both databases) or `.venv/bin/python bench/inventory.py [--agents N --seconds S]`.
Prints Markdown tables; numbers go to docs/performance.md, never into tests.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PATCHDAY_DATA_DIR", tempfile.mkdtemp(prefix="patchday-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patchday.server.settings")
os.environ.setdefault("PATCHDAY_LOG_LEVEL", "ERROR")

import django

django.setup()

from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from patchday.advisories import services as advisories
from patchday.core.audit import Actor, ActorKind
from patchday.inventory import agents, ingest
from patchday.inventory.models import Host, HostToken, ManagementMode
from tests.support.documents import document
from tests.support.fleet import debian_advisories, host_at, real_host

ACTOR = Actor(ActorKind.SYSTEM, "bench", None, "127.0.0.1")
ROWS: list[tuple[str, str, str, str]] = []


def row(what: str, value: str, per: str = "", note: str = "") -> None:
    ROWS.append((what, value, per, note))
    print(f"  {what}: {value} {per} {note}", file=sys.stderr, flush=True)


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return statistics.median(ordered), pick(0.95), pick(0.99)


def two_thousand_packages(shift: str = "") -> list:
    """The real host's 736 packages plus 1,264 more of the same shape (renamed copies): 2,000 in all."""
    from dataclasses import replace

    base = list(host_at(shift)) if shift else list(real_host())
    extra = [replace(p, name=f"{p.name}-x{i}") for i in range(2) for p in base]
    return (base + extra)[:2000]


def bench_ingest(n: int = 40) -> None:
    advisories.import_advisories(ACTOR, debian_advisories(), "debian-bookworm-osv")
    secret = agents.create_secret(ACTOR, "bench").secret
    client = Client(HTTP_HOST="localhost")
    packages = two_thousand_packages()
    body_size = 0
    first: list[float] = []
    for i in range(n):
        enrolled = client.post(
            "/api/v1/agent/enroll",
            data=json.dumps({"secret": secret, "machine_id": f"{i:032x}", "hostname": f"bench-{i}"}),
            content_type="application/json",
        ).json()
        doc = document(packages, hostname=f"bench-{i}", machine_id=f"{i:032x}")
        payload = json.dumps({"sequence": 1, "digest": ingest.canonical_digest(doc), "inventory": doc})
        body_size = len(payload)
        headers = {"Authorization": f"Bearer {enrolled['host_token']}"}
        start = time.perf_counter()
        answer = client.put("/api/v1/agent/inventory", data=payload, content_type="application/json", headers=headers)
        first.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.content
    p50, p95, _ = percentiles(first[1:])  # the first host also creates every package version and matches it
    row(
        "ingest: full 2,000-package inventory, new host (HTTP PUT, in-process)",
        f"p50 {p50 * 1000:.0f} ms",
        f"p95 {p95 * 1000:.0f} ms",
        f"{n - 1} hosts, {body_size / 1e6:.1f} MB body; first host (new versions, matched): {first[0] * 1000:.0f} ms",
    )
    upgraded = two_thousand_packages("bookworm-security")
    again: list[float] = []
    for i in range(n):
        host = Host.objects.get(machine_id=f"{i:032x}")
        token = agents.enroll(secret, f"{i:032x}", f"bench-{i}", "127.0.0.1").token
        doc = document(upgraded, hostname=f"bench-{i}", machine_id=f"{i:032x}")
        payload = json.dumps({"sequence": 2, "digest": ingest.canonical_digest(doc), "inventory": doc})
        start = time.perf_counter()
        answer = client.put(
            "/api/v1/agent/inventory",
            data=payload,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        again.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.content
        assert host.pk
    changed = answer.json()["changed"]
    p50, p95, _ = percentiles(again[1:])
    row(
        f"ingest: full 2,000-package inventory after a patch run ({changed} upgraded)",
        f"p50 {p50 * 1000:.0f} ms",
        f"p95 {p95 * 1000:.0f} ms",
        f"{n - 1} hosts; history events written, pending updates replaced",
    )


def bench_checkin(n: int = 2000) -> None:
    host = Host.objects.get(machine_id=f"{0:032x}")
    secret = agents.create_secret(ACTOR, "bench-checkin").secret
    token = agents.enroll(secret, host.machine_id, host.hostname, "127.0.0.1").token
    client = Client(HTTP_HOST="localhost")
    body = json.dumps({"sequence": 3, "digest": host.inventory_digest, "agent_version": "bench"})
    headers = {"Authorization": f"Bearer {token}"}
    queries: list[str] = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        answer = client.post("/api/v1/agent/checkin", data=body, content_type="application/json", headers=headers)
    assert answer.json()["inventory_wanted"] is False, answer.content
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        client.post("/api/v1/agent/checkin", data=body, content_type="application/json", headers=headers)
        samples.append(time.perf_counter() - start)
    p50, p95, _ = percentiles(samples)
    row(
        "check-in: unchanged digest (HTTP POST, in-process)",
        f"p50 {p50 * 1000:.2f} ms",
        f"p95 {p95 * 1000:.2f} ms",
        f"{len(queries)} queries per check-in",
    )


# -- load generator ------------------------------------------------------------------------------------


def make_agents(count: int) -> list[tuple[bytes, bytes]]:
    """`count` enrolled hosts with an inventory digest; (token, body) per simulated agent."""
    Host.objects.filter(name__startswith="load-").delete()
    now = timezone.now()
    digest = "ab" * 32
    hosts = Host.objects.bulk_create(
        [
            Host(
                name=f"load-{i}",
                machine_id=f"{i + 10**9:032x}",
                hostname=f"load-{i}",
                created_at=now,
                management_mode=ManagementMode.AGENT,
                inventory_digest=digest,
                last_seen_at=now,
            )
            for i in range(count)
        ],
        batch_size=1000,
    )
    if any(h.pk is None for h in hosts):
        hosts = list(Host.objects.filter(name__startswith="load-").order_by("id"))
    agents_out: list[tuple[bytes, bytes]] = []
    tokens = []
    for host in hosts:
        prefix = secrets.token_hex(6)
        raw = f"pdh_{prefix}_{secrets.token_urlsafe(32)}"
        tokens.append(
            HostToken(
                host=host,
                prefix=prefix,
                token_hash=hashlib.sha256(raw.encode()).hexdigest(),
                created_at=now,
                last_used_at=now,
            )
        )
        body = json.dumps({"sequence": 1, "digest": digest, "agent_version": "load"}).encode()
        agents_out.append((raw.encode(), body))
    HostToken.objects.bulk_create(tokens, batch_size=1000)
    return agents_out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_web(workers: int, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        PATCHDAY_LISTEN=f"127.0.0.1:{port}",
        PATCHDAY_WEB_WORKERS=str(workers),
        PATCHDAY_ACCESS_LOG="false",
        PATCHDAY_LOG_LEVEL="WARNING",
    )
    web = subprocess.Popen([sys.executable, "-m", "patchday.cli.main", "web"], env=env)  # noqa: S603
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                time.sleep(1.0)  # every worker has booted
                return web
        except OSError:
            time.sleep(0.1)
    web.kill()
    raise SystemExit("web did not start")


async def one_checkin(port: int, token: bytes, body: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/v1/agent/checkin HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token + b"\r\nConnection: close\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    status = int(response[9:12]) if response[:5] == b"HTTP/" else 0
    return time.perf_counter() - start, status


async def load(port: int, fleet: list[tuple[bytes, bytes]], seconds: float, concurrency: int) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    next_agent = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal next_agent, errors
        while time.perf_counter() < stop_at:
            token, body = fleet[next_agent % len(fleet)]
            next_agent += 1
            try:
                elapsed, status = await one_checkin(port, token, body)
            except OSError:
                errors += 1
                continue
            if status != 200:
                errors += 1
            latencies.append(elapsed)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return next_agent, latencies, errors


def bench_load(count: int, seconds: float, concurrency: int) -> None:
    fleet = make_agents(count)
    connection.close()
    for workers in (1, 2):
        port = free_port()
        web = start_web(workers, port)
        try:
            asyncio.run(load(port, fleet, 2.0, concurrency))  # warm-up: connections, caches
            start = time.perf_counter()
            sent, latencies, errors = asyncio.run(load(port, fleet, seconds, concurrency))
            elapsed = time.perf_counter() - start
        finally:
            web.terminate()
            web.wait(timeout=20)
        _, _, p99 = percentiles(latencies)
        p50 = statistics.median(latencies)
        row(
            f"load: {count:,} agents checking in, {workers} web process{'es' if workers > 1 else ''} (loopback HTTP)",
            f"{len(latencies) / elapsed:,.0f} check-ins/s",
            f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms",
            f"{seconds:.0f} s, {concurrency} concurrent, {errors} errors, {len({i % count for i in range(sent)}):,} distinct agents",
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    call_command("migrate", interactive=False, verbosity=0)
    bench_ingest()
    bench_checkin()
    if not args.skip_load:
        bench_load(args.agents, args.seconds, args.concurrency)
    print(
        f"\n### inventory, {connection.vendor} — {time.strftime('%Y-%m-%d')} — {os.uname().nodename}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n"
    )
    print("| measurement | value | spread | note |")
    print("|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
