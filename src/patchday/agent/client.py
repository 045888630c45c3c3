"""Enrollment and the check-in cycle of docs/agent.md's protocol, and the loop that repeats it."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from patchday.agent import AGENT_VERSION
from patchday.agent import jobs as job_runner
from patchday.agent.backoff import Backoff, clamp_interval, jittered
from patchday.agent.config import AgentState, StateStore
from patchday.agent.errors import AgentError, ConfigError, ServerRefused, ServerUnavailable
from patchday.agent.transport import Transport
from patchday.collectors import inventory

ENROLL_PATH = "/api/v1/agent/enroll"
CHECKIN_PATH = "/api/v1/agent/checkin"
INVENTORY_PATH = "/api/v1/agent/inventory"
JOB_RESULT_PATH = "/api/v1/agent/jobs/{job_id}/result"
SIMULATION_PATH = "/api/v1/agent/simulations/{plan_host}"
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
        run_job: Callable[[Mapping[str, Any]], dict[str, Any]] = job_runner.run_job,
        simulate: Callable[[Mapping[str, Any]], dict[str, Any]] = job_runner.simulate,
    ) -> None:
        self.transport = transport
        self.store = store
        self.changelogs = changelogs
        self.collect = collect
        self.digest = digest
        self.run_job = run_job
        self.simulate = simulate

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
        self.send_kept_results(state)
        jobs = reply.get("jobs")
        leases = [j for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []
        job_count = self.run_jobs(state, leases)
        simulations = reply.get("simulations")
        if isinstance(simulations, list):
            self.run_simulations(state, [r for r in simulations if isinstance(r, dict)])
        wanted = reply.get("inventory_wanted") is True
        if job_count:  # the server verifies a job by the inventory taken after it: send it now
            document = self.collect(self.changelogs)
            digest = self.digest(document)
            wanted = True
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

    def run_jobs(self, state: AgentState, leases: list[dict[str, Any]]) -> int:
        """Run each leased job in turn and report its result; returns how many ran."""
        ran = 0
        for lease in leases:
            spec = lease.get("job")
            phase = lease.get("phase")
            token = lease.get("lease_token")
            if not isinstance(spec, dict) or phase not in ("deploy", "rollback") or not isinstance(token, str):
                log.warning("ignoring a malformed job offer from the server")
                continue
            log.info("running %s job %s", phase, spec.get("job_id"))
            result = self.run_job(spec)
            ran += 1
            log.info("job %s %s: %s", spec.get("job_id"), result.get("status"), result.get("error") or "ok")
            report = {
                "lease_token": token,
                "idempotency_key": f"{spec.get('job_id')}:{phase}:{token}",
                "phase": phase,
                "result": result,
            }
            self._report(state, spec.get("job_id"), report)
        return ran

    def run_simulations(self, state: AgentState, requests: list[dict[str, Any]]) -> None:
        """Answer plan previews' simulation requests (apt-get -s: changes nothing on this host)."""
        for request in requests:
            plan_host = request.get("plan_host")
            if isinstance(plan_host, bool) or not isinstance(plan_host, int):
                continue
            answer = self.simulate(request)
            try:
                self.transport.request(
                    "POST", SIMULATION_PATH.format(plan_host=plan_host), answer, token=state.host_token
                )
            except AgentError as exc:  # the server asks again at the next check-in
                log.warning("could not send the simulation for plan entry %s: %s", plan_host, exc)

    def _kept_dir(self) -> Path:
        return self.store.path.parent / "results"

    def _report(self, state: AgentState, job_id: Any, report: dict[str, Any]) -> None:
        """Post a job result; when the server cannot take it now, keep it (0600) and send it next cycle."""
        path = JOB_RESULT_PATH.format(job_id=int(job_id))
        try:
            self.transport.request("POST", path, report, token=state.host_token)
        except ServerRefused as exc:
            log.warning("the server refused the result of job %s: %s", job_id, exc)  # stale lease: nothing to keep
        except AgentError as exc:
            log.warning("could not report job %s now (%s); kept for the next check-in", job_id, exc)
            directory = self._kept_dir()
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            target = directory / f"{int(job_id)}-{report['phase']}.json"
            descriptor = os.open(str(target), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(report, handle)

    def send_kept_results(self, state: AgentState) -> None:
        """Resend results kept by an earlier cycle (the idempotency key makes a repeat harmless)."""
        directory = self._kept_dir()
        if not directory.is_dir():
            return
        for kept in sorted(directory.glob("*.json")):
            try:
                report = json.loads(kept.read_text(encoding="utf-8"))
                job_id = int(kept.name.split("-", 1)[0])
                self.transport.request("POST", JOB_RESULT_PATH.format(job_id=job_id), report, token=state.host_token)
            except ServerRefused as exc:
                log.warning("the server refused the kept result %s: %s", kept.name, exc)
            except (AgentError, OSError, ValueError) as exc:
                log.warning("kept result %s not sent yet: %s", kept.name, exc)
                continue
            kept.unlink(missing_ok=True)

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
