"""Foundation benchmarks: audit appends and verification, API request cost, sign-in cost.

Run `bench/run` (both databases) or `.venv/bin/python bench/bench.py` (PATCHDAY_DATABASE_URL or SQLite).
Prints one Markdown table row per measurement. Numbers go to docs/performance.md; never into tests.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("PATCHDAY_DATA_DIR", tempfile.mkdtemp(prefix="patchday-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patchday.server.settings")
os.environ.setdefault("PATCHDAY_LOG_LEVEL", "ERROR")

import django

django.setup()

from django.core.management import call_command
from django.db import connection
from django.test import Client

from patchday.accounts import services as accounts
from patchday.audit import services as audit
from patchday.core.audit import Actor, ActorKind
from patchday.core.roles import Role

ACTOR = Actor(ActorKind.SYSTEM, "bench", None, "127.0.0.1")
ROWS: list[tuple[str, str, str, str]] = []


def timed(label: str, count: int, unit: str, work: Callable[[], object], note: str = "") -> float:
    start = time.perf_counter()
    work()
    elapsed = time.perf_counter() - start
    ROWS.append((label, f"{count / elapsed:,.0f} {unit}/s", f"{elapsed * 1000 / count:.3f} ms", note))
    return elapsed


def per_request(client: Client, path: str, headers: dict[str, str], n: int) -> tuple[float, int]:
    queries: list[str] = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(path, headers=headers)
    assert response.status_code == 200, response.content
    start = time.perf_counter()
    for _ in range(n):
        client.get(path, headers=headers)
    return (time.perf_counter() - start) / n, len(queries)


def main() -> None:
    call_command("migrate", interactive=False, verbosity=0)
    vendor = connection.vendor
    appends = 2000
    timed(
        "audit: append one record (own transaction)",
        appends,
        "records",
        lambda: [audit.record(ACTOR, "bench.append", "bench", i, {"i": i, "note": "x" * 40}) for i in range(appends)],
    )
    bulk = 20000
    for i in range(bulk):
        audit.record(ACTOR, "bench.fill", "bench", i, {"i": i})
    total = appends + bulk
    start = time.perf_counter()
    report = audit.verify()
    elapsed = time.perf_counter() - start
    verdict = "intact" if report.is_intact else f"BROKEN at {report.first_broken}"
    ROWS.append(
        (
            f"audit: verify the chain ({total:,} records)",
            f"{total / elapsed:,.0f} records/s",
            f"{elapsed:.2f} s total",
            verdict,
        )
    )
    admin, _ = accounts.create_user(ACTOR, "bench-admin", Role.ADMIN, "bench-password-that-is-long")
    token = accounts.create_token(ACTOR, admin, "bench").secret
    headers = {"Authorization": f"Bearer {token}"}
    client = Client(HTTP_HOST="localhost")
    n = 300
    for path in ("/api/v1/me", "/api/v1/audit?page_size=50", "/api/v1/users?page_size=50"):
        seconds, queries = per_request(client, path, headers, n)
        ROWS.append(
            (
                f"API: GET {path} (token auth, in-process)",
                f"{1 / seconds:,.0f} req/s",
                f"{seconds * 1000:.2f} ms",
                f"{queries} queries",
            )
        )
    logins = 20
    timed(
        "sign-in: check password (Argon2) and audit it",
        logins,
        "sign-ins",
        lambda: [
            accounts.check_sign_in("bench-admin", "bench-password-that-is-long", "127.0.0.1") for _ in range(logins)
        ],
    )
    print(
        f"\n### {vendor} — {time.strftime('%Y-%m-%d')} — {os.uname().nodename}, {os.cpu_count()} cores, Python {sys.version.split()[0]}\n"
    )
    print("| measurement | rate | per item | note |")
    print("|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
