"""Enrollment and the check-in cycle of docs/agent.md's protocol, and the loop that repeats it."""

from __future__ import annotations

import logging
import random
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from patchday.agent import AGENT_VERSION
from patchday.agent.backoff import Backoff, clamp_interval, jittered
from patchday.agent.config import AgentState, StateStore
from patchday.agent.errors import AgentError, ConfigError, ServerRefused, ServerUnavailable
from patchday.agent.transport import Transport
from patchday.collectors import inventory

ENROLL_PATH = "/api/v1/agent/enroll"
CHECKIN_PATH = "/api/v1/agent/checkin"
INVENTORY_PATH = "/api/v1/agent/inventory"
INVENTORY_TIMEOUT = 120.0  # a few thousand packages over a slow link
MAX_STALE_RETRIES = 16  # 409s answered in one cycle; each at least doubles the sequence
MACHINE_ID_PATHS = ("etc/machine-id", "var/lib/dbus/machine-id")
_MACHINE_ID = re.compile(r"^[0-9a-f]{32}$")

log = logging.getLogger("patchday.agent")


def utc_now_text() -> str:
    """Now, as the ISO 8601 UTC text the state file keeps."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def collect_inventory(changelogs: bool = False) -> dict[str, Any]:
    """This host's inventory document (docs/inventory.md)."""
    return inventory.collect(root="/", changelogs=changelogs)


def inventory_digest(document: Mapping[str, Any]) -> str:
    """The document's digest, computed exactly as the server computes it."""
    return inventory.digest(document)


def host_identity(root: Path = Path("/")) -> tuple[str, str]:
    """(machine id, hostname) for enrollment; the machine id is "" when machine-id(5) is missing or malformed."""
    machine_id = ""
    for relative in MACHINE_ID_PATHS:
        try:
            candidate = (root / relative).read_text(encoding="ascii").strip().lower()
        except (OSError, UnicodeDecodeError):
            continue
        if _MACHINE_ID.match(candidate):
            machine_id = candidate
            break
    return machine_id, socket.gethostname()


@dataclass(frozen=True)
class CycleReport:
    """What one check-in did."""

    sequence: int
    digest: str
    inventory_wanted: bool
    inventory_sent: bool
    checkin_interval: int
    jobs: int
    stored: Mapping[str, Any]  # the inventory answer ({"stored", "added", "removed", "changed"}), or {}


def enroll(
    transport: Transport,
    store: StateStore,
    secret: str,
    *,
    force: bool = False,
    identity: tuple[str, str] | None = None,
) -> AgentState:
    """Trade the enrollment secret for a host token and save it; raises ServerRefused (403: bad secret), ConfigError."""
    if not secret:
        raise ConfigError("no enrollment secret: pass --secret or set PATCHDAY_AGENT_ENROLL_SECRET")
    previous = store.load()
    if previous is not None and not force:
        raise ConfigError(
            f"this host is already enrolled as {previous.host_name!r} (state in {store.path}); --force enrolls it again"
        )
    machine_id, hostname = identity or host_identity()
    if not machine_id:
        log.warning("no machine id in /etc/machine-id; the server may refuse the enrollment")
    try:
        _, answer = transport.request(
            "POST", ENROLL_PATH, {"secret": secret, "machine_id": machine_id, "hostname": hostname}
        )
    except ServerRefused as exc:
        if exc.status in (401, 403):
            raise ServerRefused(
                f"the server refused the enrollment secret (unknown, revoked or expired): {exc}", exc.status, exc.code
            ) from None
        raise
    token = answer.get("host_token")
    host_id = answer.get("host_id")
    if not isinstance(token, str) or not token or isinstance(host_id, bool) or not isinstance(host_id, int):
        raise ServerUnavailable(f"POST {transport.base}{ENROLL_PATH}: the answer lacks host_token or host_id")
    host_name = answer.get("host_name")
    state = AgentState(
        host_id=host_id,
        host_name=host_name if isinstance(host_name, str) else hostname,
        host_token=token,
        # Re-enrolling the same machine may land on the same host record: never count backwards.
        sequence=previous.sequence if previous is not None else 0,
        checkin_interval=clamp_interval(answer.get("checkin_interval"), 300),
    )
    store.save(state)
    return state


def next_sequence(current: int, error: Mapping[str, Any]) -> int:
    """A sequence past the one the server already stored: one past its `last_sequence` when the 409
    names it, else at least double `current` (so any stored number is passed in a few steps)."""
    details = error.get("details")
    last = error.get("last_sequence", details.get("last_sequence") if isinstance(details, dict) else None)
    if isinstance(last, int) and not isinstance(last, bool) and last >= 0:
        return max(current, last) + 1
    return current * 2 + 1


class Agent:
    """One enrolled host talking to its server: `check_in()` runs one cycle, `run()` repeats it forever."""

    def __init__(
        self,
        transport: Transport,
        store: StateStore,
        *,
        changelogs: bool = False,
        collect: Callable[[bool], dict[str, Any]] = collect_inventory,
        digest: Callable[[Mapping[str, Any]], str] = inventory_digest,
    ) -> None:
        self.transport = transport
        self.store = store
        self.changelogs = changelogs
        self.collect = collect
        self.digest = digest

    def check_in(self) -> CycleReport:
        """Collect, check in with the digest, send the inventory if the server wants it; raises AgentError."""
        state = self.store.require()
        document = self.collect(self.changelogs)
        digest = self.digest(document)
        state = self.store.update(state, sequence=state.sequence + 1)  # persisted before it is sent
        state, reply = self._send_numbered(
            state,
            "POST",
            CHECKIN_PATH,
            lambda sequence: {"sequence": sequence, "digest": digest, "agent_version": AGENT_VERSION},
        )
        interval = clamp_interval(reply.get("checkin_interval"), state.checkin_interval)
        jobs = reply.get("jobs")
        job_count = len(jobs) if isinstance(jobs, list) else 0
        if job_count:
            log.info("the server offered %d jobs; this agent does not run jobs yet", job_count)
        wanted = reply.get("inventory_wanted") is True
        stored: Mapping[str, Any] = {}
        changes: dict[str, Any] = {"checkin_interval": interval, "last_checkin_at": utc_now_text(), "last_error": ""}
        if wanted:
            state, stored = self._send_numbered(
                state,
                "PUT",
                INVENTORY_PATH,
                lambda sequence: {"sequence": sequence, "digest": digest, "inventory": document},
                timeout=max(self.transport.timeout, INVENTORY_TIMEOUT),
            )
            changes.update(last_digest=digest, last_inventory_at=changes["last_checkin_at"])
        state = self.store.update(state, **changes)
        return CycleReport(state.sequence, digest, wanted, wanted, interval, job_count, stored)

    def record_failure(self, message: str) -> None:
        """Keep the last failure in the state file for `status` (best effort)."""
        try:
            state = self.store.load()
            if state is not None:
                self.store.save(replace(state, last_error=message[:500]))
        except (AgentError, OSError) as exc:
            log.warning("could not record the failure in the state file: %s", exc)

    def run(
        self, stop: Callable[[float], bool], rng: random.Random | None = None, backoff: Backoff | None = None
    ) -> None:
        """Check in until `stop(seconds)` (which waits) returns True; failures back off, then the cycle resumes."""
        rng = rng or random.SystemRandom()
        backoff = backoff or Backoff()
        failures = 0
        while True:
            try:
                report = self.check_in()
            except AgentError as exc:  # the one place `run` catches what a cycle raises
                failures += 1
                wait = backoff.delay(failures, rng)
                if isinstance(exc, ServerUnavailable) and exc.retry_after:
                    wait = max(wait, exc.retry_after)
                log.warning("check-in failed (%d in a row), next try in %.0f s: %s", failures, wait, exc)
                self.record_failure(str(exc))
            except Exception as exc:  # a collector bug must not end the service; it is logged with its traceback
                failures += 1
                wait = backoff.delay(failures, rng)
                log.exception("check-in failed unexpectedly, next try in %.0f s", wait)
                self.record_failure(f"{type(exc).__name__}: {exc}")
            else:
                failures = 0
                wait = jittered(report.checkin_interval, rng)
                log.info(_summary(report) + f"; next check-in in {wait:.0f} s")
            if stop(wait):
                return

    def _send_numbered(
        self,
        state: AgentState,
        method: str,
        path: str,
        body_for: Callable[[int], Mapping[str, Any]],
        timeout: float | None = None,
    ) -> tuple[AgentState, dict[str, Any]]:
        """Send a request that carries `sequence`; on 409 (stale) persist a higher sequence and send again."""
        for attempt in range(MAX_STALE_RETRIES + 1):
            try:
                _, reply = self.transport.request(
                    method, path, body_for(state.sequence), token=state.host_token, timeout=timeout
                )
            except ServerRefused as exc:
                if exc.status != 409 or attempt == MAX_STALE_RETRIES:
                    raise
                bumped = next_sequence(state.sequence, exc.detail)
                log.warning("the server has a newer sequence than %d; continuing at %d", state.sequence, bumped)
                state = self.store.update(state, sequence=bumped)
                continue
            return state, reply
        raise AssertionError("unreachable: the last attempt returns or raises")


def _summary(report: CycleReport) -> str:
    text = f"checked in (sequence {report.sequence})"
    if report.inventory_sent:
        counts = ", ".join(
            f"{key} {report.stored[key]}" for key in ("added", "removed", "changed") if key in report.stored
        )
        text += f"; inventory sent ({counts})" if counts else "; inventory sent"
    return text
