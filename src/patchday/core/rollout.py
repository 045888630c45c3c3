"""The rollout state machine: plans, jobs, rings and rollouts as pure transitions (state, event) -> (state, actions).

Plans and jobs are small tables (`plan_transition`, `job_transition`). A rollout is decided as a whole by
`advance(view, now)` for the worker's tick and by `command(view, cmd, ring)` for an operator; both return a
`Decision`: the new rollout and ring states, the actions the driver performs, and one sentence for the audit log.

Driving a rollout (the contract between this module and its driver, patchday.rollouts.driver):

1. Load a `RolloutView` from the rows: the rollout and ring states, each ring's gate and its job counts by state.
2. Call `advance(view, now)` (or `command`).
3. In one transaction, save `decision.state`, `decision.rings` (and `promoted` for the rings in
   `decision.promoted`) *and* perform `OpenRing`: the ring's jobs exist, QUEUED, by the time the ring is saved
   RUNNING (created with the rollout, or in that transaction). State and jobs are atomic, so a RUNNING ring
   with no jobs really has no hosts, and `advance` passes it as empty; it never re-opens a ring.
4. Perform the other actions, best in the same transaction. When they are lost (a crash after the commit),
   the next `advance` derives again what is still needed from the facts: `RollbackRing` while a
   ROLLING_BACK ring has jobs not yet handed to rollback, `CancelQueued` while an ABORTED rollout has QUEUED
   jobs. A lost `RetryFailed` is not re-derived: the ring fails its gate again and the rollout halts again.
   `Notify` is emitted once, with the transition it reports; a driver that must not lose one writes it to an
   outbox in the transaction of step 3.

`advance` is level-triggered: it decides from the facts (job counts, times), not from what happened last, so
calling it again on the same facts decides the same states and no actions beyond the work still needed.

Dispatch (what the driver may lease): a forward job while the rollout is RUNNING and its ring is RUNNING,
SOAKING or PASSED (a promoted ring's queued jobs still run); a rollback job whenever it is queued, in any
rollout state, so an aborted, halted or completed rollout still finishes its rollbacks. Pausing stops new
leases; leased jobs finish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, TypeAlias, assert_never

from patchday.core.errors import InvalidInput, InvalidTransition

# --- plans ---------------------------------------------------------------------------------------------------


class PlanState(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    STARTED = "started"


class PlanEvent(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    AUTO_APPROVE = "auto_approve"  # the approval policy approves a submitted plan in the approver's place
    REJECT = "reject"
    OVERRIDE = "override"  # an admin's emergency start, from draft or pending approval, without approval
    CANCEL = "cancel"
    START = "start"  # an approved plan becomes a rollout


_PLAN_NEXT: Final[Mapping[tuple[PlanState, PlanEvent], PlanState]] = {
    (PlanState.DRAFT, PlanEvent.SUBMIT): PlanState.PENDING_APPROVAL,
    (PlanState.DRAFT, PlanEvent.OVERRIDE): PlanState.STARTED,
    (PlanState.DRAFT, PlanEvent.CANCEL): PlanState.CANCELLED,
    (PlanState.PENDING_APPROVAL, PlanEvent.APPROVE): PlanState.APPROVED,
    (PlanState.PENDING_APPROVAL, PlanEvent.AUTO_APPROVE): PlanState.APPROVED,
    (PlanState.PENDING_APPROVAL, PlanEvent.REJECT): PlanState.REJECTED,
    (PlanState.PENDING_APPROVAL, PlanEvent.OVERRIDE): PlanState.STARTED,
    (PlanState.PENDING_APPROVAL, PlanEvent.CANCEL): PlanState.CANCELLED,
    (PlanState.APPROVED, PlanEvent.START): PlanState.STARTED,
    (PlanState.APPROVED, PlanEvent.CANCEL): PlanState.CANCELLED,
}


def plan_transition(state: PlanState, event: PlanEvent) -> PlanState:
    """The plan's state after `event`. Every plan is submitted before it is approved, even when the policy
    approves it (SUBMIT, then AUTO_APPROVE), so the audit log shows both. REJECTED, CANCELLED and STARTED are
    final. Raises InvalidTransition for any other pair."""
    try:
        return _PLAN_NEXT[(state, event)]
    except KeyError:
        raise InvalidTransition("plan", state, event) from None


# --- jobs ----------------------------------------------------------------------------------------------------


class JobState(StrEnum):
    QUEUED = "queued"  # created, waiting for its window and for dispatch
    LEASED = "leased"  # handed to an executor; the lease has an expiry
    SUCCEEDED = "succeeded"  # the executor reported success; awaiting verification by a fresh inventory
    VERIFIED = "verified"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the lease expired without a result; the next inventory settles it
    CANCELLED = "cancelled"
    ROLLBACK_QUEUED = "rollback_queued"
    ROLLBACK_LEASED = "rollback_leased"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


class JobEvent(StrEnum):
    LEASE = "lease"
    REPORT_SUCCESS = "report_success"
    REPORT_FAILURE = "report_failure"
    LEASE_EXPIRED = "lease_expired"
    VERIFY_OK = "verify_ok"
    VERIFY_MISMATCH = "verify_mismatch"
    CANCEL = "cancel"
    RETRY = "retry"
    ROLLBACK = "rollback"
    ROLLBACK_LEASE = "rollback_lease"
    ROLLBACK_DONE = "rollback_done"
    ROLLBACK_FAILED = "rollback_failed"
    ROLLBACK_LEASE_EXPIRED = "rollback_lease_expired"


# A leased job cannot be cancelled: the executor may be changing the host right now, so it must report (or
# lose its lease) first. A verified job never goes back to QUEUED: a job is never re-run after a success.
_JOB_NEXT: Final[Mapping[tuple[JobState, JobEvent], JobState]] = {
    (JobState.QUEUED, JobEvent.LEASE): JobState.LEASED,
    (JobState.QUEUED, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.LEASED, JobEvent.REPORT_SUCCESS): JobState.SUCCEEDED,
    (JobState.LEASED, JobEvent.REPORT_FAILURE): JobState.FAILED,
    (JobState.LEASED, JobEvent.LEASE_EXPIRED): JobState.UNKNOWN,
    (JobState.SUCCEEDED, JobEvent.VERIFY_OK): JobState.VERIFIED,
    (JobState.SUCCEEDED, JobEvent.VERIFY_MISMATCH): JobState.FAILED,
    (JobState.SUCCEEDED, JobEvent.ROLLBACK): JobState.ROLLBACK_QUEUED,
    (JobState.UNKNOWN, JobEvent.VERIFY_OK): JobState.VERIFIED,
    (JobState.UNKNOWN, JobEvent.VERIFY_MISMATCH): JobState.FAILED,
    (JobState.UNKNOWN, JobEvent.RETRY): JobState.QUEUED,
    (JobState.UNKNOWN, JobEvent.ROLLBACK): JobState.ROLLBACK_QUEUED,
    (JobState.FAILED, JobEvent.RETRY): JobState.QUEUED,
    (JobState.FAILED, JobEvent.ROLLBACK): JobState.ROLLBACK_QUEUED,
    (JobState.VERIFIED, JobEvent.ROLLBACK): JobState.ROLLBACK_QUEUED,
    (JobState.ROLLBACK_QUEUED, JobEvent.ROLLBACK_LEASE): JobState.ROLLBACK_LEASED,
    (JobState.ROLLBACK_LEASED, JobEvent.ROLLBACK_DONE): JobState.ROLLED_BACK,
    (JobState.ROLLBACK_LEASED, JobEvent.ROLLBACK_FAILED): JobState.ROLLBACK_FAILED,
    (JobState.ROLLBACK_LEASED, JobEvent.ROLLBACK_LEASE_EXPIRED): JobState.ROLLBACK_FAILED,
    (JobState.ROLLBACK_FAILED, JobEvent.ROLLBACK): JobState.ROLLBACK_QUEUED,
}

JOB_IN_FLIGHT: Final = frozenset({JobState.QUEUED, JobState.LEASED, JobState.SUCCEEDED, JobState.UNKNOWN})
JOB_OK: Final = frozenset({JobState.VERIFIED})
JOB_BAD: Final = frozenset({JobState.FAILED})
ROLLBACK_IN_FLIGHT: Final = frozenset({JobState.ROLLBACK_QUEUED, JobState.ROLLBACK_LEASED})
# The jobs of a ROLLING_BACK ring that a RollbackRing still has to hand to rollback: the hosts changed, or
# possibly changed. ROLLBACK_FAILED is left out: retrying a failed rollback is an operator's ROLLBACK command,
# not something every tick does again. QUEUED jobs changed nothing: the ring is not open, so they never run.
ROLLBACK_PENDING: Final = frozenset({JobState.SUCCEEDED, JobState.VERIFIED, JobState.FAILED, JobState.UNKNOWN})


def job_transition(state: JobState, event: JobEvent) -> JobState:
    """The job's state after `event`; raises InvalidTransition for a pair the table does not allow."""
    try:
        return _JOB_NEXT[(state, event)]
    except KeyError:
        raise InvalidTransition("job", state, event) from None


# --- rings and rollouts --------------------------------------------------------------------------------------


class RolloutState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"
    COMPLETED = "completed"
    ABORTED = "aborted"


class RingState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    SOAKING = "soaking"
    PASSED = "passed"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"


class Verdict(StrEnum):
    WAIT = "wait"  # jobs are still in flight
    SOAK = "soak"  # every job is done and the gate holds; the soak time is not over yet
    PASS = "pass"
    FAIL = "fail"


class Command(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    PROMOTE = "promote"
    RETRY_FAILED = "retry_failed"
    ROLLBACK = "rollback"


TERMINAL: Final = frozenset({RolloutState.COMPLETED, RolloutState.ABORTED})
_DONE_RINGS: Final = frozenset({RingState.PASSED, RingState.SKIPPED})
NOTIFY_KINDS: Final = frozenset(
    {"ring_passed", "ring_failed", "rollout_halted", "rollout_completed", "rollout_aborted", "rollback_finished"}
)


@dataclass(frozen=True, slots=True)
class Gate:
    """What a ring must show before the next one opens: at most `max_failure_ratio` (0..1) of its jobs failed
    (health-check failures count as failures), at least `min_successes` verified (or all of them, when the
    ring has fewer jobs), and `soak` quiet time after its last job finished. A failed gate rolls the ring back
    when `rollback_on_failure`. Raises InvalidInput naming the field for a value out of range."""

    max_failure_ratio: float = 0.0
    min_successes: int = 1
    soak: timedelta = timedelta(0)
    rollback_on_failure: bool = True

    def __post_init__(self) -> None:
        ratio = self.max_failure_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
            raise InvalidInput(f"max_failure_ratio must be from 0 to 1, not {ratio!r}", "max_failure_ratio")
        if isinstance(self.min_successes, bool) or not isinstance(self.min_successes, int) or self.min_successes < 0:
            raise InvalidInput(
                f"min_successes must be a whole number from 0, not {self.min_successes!r}", "min_successes"
            )
        if not isinstance(self.soak, timedelta) or self.soak < timedelta(0):
            raise InvalidInput(f"soak must be a duration from 0, not {self.soak!r}", "soak")
        if not isinstance(self.rollback_on_failure, bool):
            raise InvalidInput("rollback_on_failure must be true or false", "rollback_on_failure")


@dataclass(frozen=True, slots=True)
class RingView:
    """A ring as `advance` sees it: its state and gate, how many of its jobs are in each state (missing states
    count 0), when its last job finished (aware; None while none has), how many of its hosts failed a health
    check after patching, and whether an operator promoted it."""

    name: str
    state: RingState
    gate: Gate
    jobs: Mapping[JobState, int]
    last_finished_at: datetime | None = None
    health_failures: int = 0
    promoted: bool = False

    def __post_init__(self) -> None:
        for state, count in self.jobs.items():
            if count < 0:
                raise InvalidInput(f"ring {self.name}: {count} jobs {state} is negative", "jobs")
        if self.health_failures < 0:
            raise InvalidInput(f"ring {self.name}: health_failures must not be negative", "health_failures")
        if self.last_finished_at is not None:
            _check_aware(self.last_finished_at, "last_finished_at")

    def count(self, states: frozenset[JobState]) -> int:
        return sum(self.jobs.get(state, 0) for state in states)

    @property
    def total(self) -> int:
        """Every job of the ring, cancelled ones included (they were planned but never verified)."""
        return sum(self.jobs.values())


@dataclass(frozen=True, slots=True)
class RolloutView:
    state: RolloutState
    rings: tuple[RingView, ...]


@dataclass(frozen=True, slots=True)
class OpenRing:
    """Create the ring's jobs, QUEUED, in the transaction that saves the ring RUNNING."""

    index: int


@dataclass(frozen=True, slots=True)
class RollbackRing:
    """Hand the ring's hosts to rollback: ROLLBACK every SUCCEEDED, VERIFIED, FAILED, UNKNOWN and ROLLBACK_FAILED
    job. Leased jobs are left to report first (a tick hands them over then). QUEUED jobs changed nothing; the
    driver may cancel them, and they are not dispatched either way, since the ring is not open."""

    index: int


@dataclass(frozen=True, slots=True)
class RetryFailed:
    """RETRY the ring's FAILED and UNKNOWN jobs (back to QUEUED)."""

    index: int


@dataclass(frozen=True, slots=True)
class CancelQueued:
    """CANCEL every QUEUED job of the rollout (rollback jobs are not QUEUED and go on)."""


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell people: `kind` is one of NOTIFY_KINDS, `ring` the ring's index when it is about one."""

    kind: str
    ring: int | None
    detail: str

    def __post_init__(self) -> None:
        if self.kind not in NOTIFY_KINDS:
            raise InvalidInput(f"{self.kind!r} is not a notification kind", "kind")


Action: TypeAlias = OpenRing | RollbackRing | RetryFailed | CancelQueued | Notify


@dataclass(frozen=True, slots=True)
class Decision:
    """The rollout's and its rings' new states, the actions to perform, and why, in one sentence.
    `promoted` holds the indexes of the rings this decision promoted (the driver sets their flag)."""

    state: RolloutState
    rings: tuple[RingState, ...]
    actions: tuple[Action, ...]
    reason: str
    promoted: frozenset[int] = field(default=frozenset())


def ring_verdict(ring: RingView, now: datetime) -> tuple[Verdict, str]:
    """Whether `ring` passed its gate at `now`, and why, in words.

    FAIL as soon as the failures (FAILED jobs plus health-check failures) are more than `max_failure_ratio` of
    the ring's jobs, without waiting for the rest; WAIT while jobs are in flight (QUEUED, LEASED, SUCCEEDED
    awaiting verification, UNKNOWN awaiting inventory); then FAIL when fewer than `min_successes` (or fewer
    than all jobs, for a smaller ring) are verified; SOAK until `soak` after `last_finished_at`; then PASS. A
    ring without jobs passes at once. Raises InvalidInput for a naive `now`.
    """
    _check_aware(now, "now")
    gate = ring.gate
    total = ring.total
    if total == 0:
        return Verdict.PASS, f"ring {ring.name} passed: it is empty (no hosts)"
    failed = ring.jobs.get(JobState.FAILED, 0)
    failures = failed + ring.health_failures
    # failures / total, not failures > ratio * total: the division rounds 29/100 to the same float as 0.29.
    if failures / total > gate.max_failure_ratio:
        return (
            Verdict.FAIL,
            f"ring {ring.name} failed: {_failures(failed, ring.health_failures, total)}, {_allowed(gate)}",
        )
    verified = ring.count(JOB_OK)
    in_flight = ring.count(JOB_IN_FLIGHT)
    if in_flight:
        unknown = ring.jobs.get(JobState.UNKNOWN, 0)
        waiting = f" ({unknown} unknown, awaiting inventory)" if unknown else ""
        return Verdict.WAIT, f"ring {ring.name} running: {verified}/{total} verified, {in_flight} in flight{waiting}"
    needed = min(gate.min_successes, total)
    if verified < needed:
        return Verdict.FAIL, f"ring {ring.name} failed: {verified}/{total} verified, its gate needs {needed}"
    if gate.soak > timedelta(0):
        if ring.last_finished_at is None:
            return Verdict.SOAK, f"ring {ring.name} soaking: {verified}/{total} verified, finish time not recorded yet"
        over = ring.last_finished_at + gate.soak
        if now < over:
            left = _duration(over - now)
            return Verdict.SOAK, f"ring {ring.name} soaking: {verified}/{total} verified, {left} of soak left"
        return Verdict.PASS, f"ring {ring.name} passed: {verified}/{total} verified, soak {_duration(gate.soak)} over"
    return Verdict.PASS, f"ring {ring.name} passed: {verified}/{total} verified"


def advance(view: RolloutView, now: datetime) -> Decision:
    """What the rollout does next at `now`, decided from the facts in `view` (see the module docstring).

    RUNNING: rings are walked in order; PASSED and SKIPPED rings are behind; the first other ring is current.
    A WAITING ring opens (RUNNING, OpenRing). A RUNNING or SOAKING ring gets its `ring_verdict`: it waits, soaks,
    passes (and the walk goes on, so one call can pass a ring and open the next) or fails: ring FAILED, rollout
    HALTED and, when the gate says so, ring ROLLING_BACK with RollbackRing. When every ring is behind and no job is in
    flight (a promoted ring's jobs still run), the rollout is COMPLETED. A current ring that is FAILED or rolled
    back halts the rollout.

    PAUSED: no ring opens, soaks or passes, but a failed gate still halts and rolls back (pausing holds progress,
    not safety). HALTED, COMPLETED and ABORTED: nothing moves forward; an ABORTED rollout still cancels QUEUED jobs
    left over (CancelQueued).

    In every rollout state a ROLLING_BACK ring finishes: RollbackRing again while it has jobs not yet handed to
    rollback, then, with no rollback and no leased job in flight, ROLLED_BACK (Notify rollback_finished).
    Raises InvalidInput for a naive `now`.
    """
    _check_aware(now, "now")
    step = _Step(view)
    for index, ring in enumerate(view.rings):
        if ring.state is RingState.ROLLING_BACK:
            step.finish_rollback(index, ring)
    match view.state:
        case RolloutState.RUNNING:
            step.walk(now)
        case RolloutState.PAUSED:
            step.paused(now)
        case RolloutState.HALTED:
            current = _current(view)
            step.note("rollout halted" + (f" at ring {view.rings[current].name}" if current is not None else ""))
        case RolloutState.COMPLETED:
            step.note("rollout completed")
        case RolloutState.ABORTED:
            step.note("rollout aborted")
            queued = sum(ring.jobs.get(JobState.QUEUED, 0) for ring in view.rings)
            if queued:
                step.act(CancelQueued())
                step.note(f"{queued} queued jobs still to cancel")
        case _:
            assert_never(view.state)
    return step.decision()


def command(view: RolloutView, cmd: Command, ring: int | None = None) -> Decision:
    """An operator's command on the rollout; `ring` is the ring's index.

    PAUSE: RUNNING -> PAUSED. RESUME: PAUSED -> RUNNING (a HALTED rollout is not resumed: promote, retry or abort
    it). ABORT: RUNNING, PAUSED or HALTED -> ABORTED; WAITING rings are SKIPPED, QUEUED jobs cancelled; rings
    already started keep their state as the record of where the rollout stopped. PROMOTE: the current ring
    (RUNNING, SOAKING or FAILED; `ring` may name it) passes as promoted and a RUNNING, PAUSED or HALTED rollout
    runs on; its queued jobs still run. RETRY_FAILED: a FAILED ring (the current one by default) runs again with
    its failed and unknown jobs re-queued; the rollout runs. ROLLBACK (`ring` required): a ring that started
    rolls back; a RUNNING or PAUSED rollout halts, a HALTED, COMPLETED or ABORTED one keeps its state.

    Raises InvalidTransition when the rollout or ring cannot take the command, InvalidInput for a ring index
    that is missing, out of range or given to a whole-rollout command.
    """
    rollout = view.state
    rings = [r.state for r in view.rings]
    if ring is not None and not 0 <= ring < len(view.rings):
        raise InvalidInput(f"the rollout has no ring {ring} (it has {len(view.rings)})", "ring")
    match cmd:
        case Command.PAUSE | Command.RESUME | Command.ABORT:
            if ring is not None:
                raise InvalidInput(f"{cmd} applies to the whole rollout; leave ring out", "ring")
            if cmd is Command.PAUSE and rollout is RolloutState.RUNNING:
                return Decision(RolloutState.PAUSED, tuple(rings), (), "rollout paused by an operator")
            if cmd is Command.RESUME and rollout is RolloutState.PAUSED:
                return Decision(RolloutState.RUNNING, tuple(rings), (), "rollout resumed by an operator")
            if cmd is Command.ABORT and rollout not in TERMINAL:
                skipped = [RingState.SKIPPED if state is RingState.WAITING else state for state in rings]
                reason = "rollout aborted by an operator"
                return Decision(
                    RolloutState.ABORTED,
                    tuple(skipped),
                    (CancelQueued(), Notify("rollout_aborted", None, reason)),
                    reason,
                )
            raise InvalidTransition("rollout", rollout, cmd)
        case Command.PROMOTE:
            current = _current(view)
            if rollout in TERMINAL or current is None:
                raise InvalidTransition("rollout", rollout, cmd)
            target = view.rings[current if ring is None else ring]
            if ring not in (None, current) or target.state not in (
                RingState.RUNNING,
                RingState.SOAKING,
                RingState.FAILED,
            ):
                raise InvalidTransition(f"ring {target.name}", target.state, cmd)
            rings[current] = RingState.PASSED
            reason = f"ring {target.name} promoted by an operator"
            return Decision(
                RolloutState.RUNNING,
                tuple(rings),
                (Notify("ring_passed", current, reason),),
                reason,
                promoted=frozenset({current}),
            )
        case Command.RETRY_FAILED:
            index = _current(view) if ring is None else ring
            if rollout in TERMINAL or index is None:
                raise InvalidTransition("rollout", rollout, cmd)
            target = view.rings[index]
            if target.state is not RingState.FAILED:
                raise InvalidTransition(f"ring {target.name}", target.state, cmd)
            rings[index] = RingState.RUNNING
            retried = target.count(frozenset({JobState.FAILED, JobState.UNKNOWN}))
            reason = f"ring {target.name} retried by an operator: {retried} failed or unknown jobs queued again"
            next_state: RolloutState = RolloutState.RUNNING if rollout is RolloutState.HALTED else rollout
            return Decision(next_state, tuple(rings), (RetryFailed(index),), reason)
        case Command.ROLLBACK:
            if ring is None:
                raise InvalidInput("rollback needs the ring to roll back", "ring")
            target = view.rings[ring]
            if target.state in (RingState.WAITING, RingState.SKIPPED):
                raise InvalidTransition(f"ring {target.name}", target.state, cmd)
            rings[ring] = RingState.ROLLING_BACK
            reason = f"ring {target.name} rolled back by an operator"
            actions: list[Action] = [RollbackRing(ring)]
            next_state = rollout
            if rollout in (RolloutState.RUNNING, RolloutState.PAUSED):
                next_state = RolloutState.HALTED
                reason += ", rollout halted"
                actions.append(Notify("rollout_halted", ring, reason))
            return Decision(next_state, tuple(rings), tuple(actions), reason)
        case _:
            assert_never(cmd)


class _Step:
    """One `advance` call's working state: ring states so far, actions and notes, in order."""

    def __init__(self, view: RolloutView) -> None:
        self.view = view
        self.state = view.state
        self.rings = [ring.state for ring in view.rings]
        self.actions: list[Action] = []
        self.notes: list[str] = []

    def act(self, action: Action) -> None:
        self.actions.append(action)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def decision(self) -> Decision:
        return Decision(self.state, tuple(self.rings), tuple(self.actions), "; ".join(self.notes))

    def finish_rollback(self, index: int, ring: RingView) -> None:
        pending = ring.count(ROLLBACK_PENDING)
        if pending:
            self.act(RollbackRing(index))
            self.note(f"ring {ring.name} rolling back: {pending} jobs still to hand to rollback")
            return
        in_flight = ring.count(ROLLBACK_IN_FLIGHT) + ring.jobs.get(JobState.LEASED, 0)
        if in_flight:
            self.note(f"ring {ring.name} rolling back: {in_flight} jobs in flight")
            return
        self.rings[index] = RingState.ROLLED_BACK
        failed = ring.jobs.get(JobState.ROLLBACK_FAILED, 0)
        detail = f"ring {ring.name} rolled back: {ring.jobs.get(JobState.ROLLED_BACK, 0)} hosts restored"
        detail += f", {failed} rollbacks failed" if failed else ""
        self.act(Notify("rollback_finished", index, detail))
        self.note(detail)

    def walk(self, now: datetime) -> None:
        for index, ring in enumerate(self.view.rings):
            state = self.rings[index]
            match state:
                case RingState.PASSED | RingState.SKIPPED:
                    continue
                case RingState.WAITING:
                    self.rings[index] = RingState.RUNNING
                    self.act(OpenRing(index))
                    self.note(f"ring {ring.name} opened")
                    return
                case RingState.RUNNING | RingState.SOAKING:
                    if not self.judge(index, ring, now):
                        return
                case RingState.FAILED | RingState.ROLLING_BACK | RingState.ROLLED_BACK:
                    # Only a view edited by hand gets here: a failed ring halts the rollout when it fails.
                    self.halt(index, f"ring {ring.name} is {state}")
                    return
                case _:
                    assert_never(state)
        # A promoted ring may still have jobs to run; the rollout is complete when they are done too.
        in_flight = sum(ring.count(JOB_IN_FLIGHT) for ring in self.view.rings)
        if in_flight:
            self.note(f"every ring passed, {in_flight} jobs of promoted rings still in flight")
            return
        self.state = RolloutState.COMPLETED
        self.act(Notify("rollout_completed", None, f"all {len(self.view.rings)} rings passed"))
        self.note("rollout completed")

    def paused(self, now: datetime) -> None:
        index = _current(self.view)
        if index is None or self.rings[index] not in (RingState.RUNNING, RingState.SOAKING):
            self.note("rollout paused")
            return
        verdict, why = ring_verdict(self.view.rings[index], now)
        if verdict is Verdict.FAIL:
            self.fail(index, why)
        else:
            self.note(f"rollout paused at ring {self.view.rings[index].name}")

    def judge(self, index: int, ring: RingView, now: datetime) -> bool:
        """Apply the ring's verdict; True when it passed and the walk goes on."""
        verdict, why = ring_verdict(ring, now)
        match verdict:
            case Verdict.WAIT:
                self.rings[index] = RingState.RUNNING
            case Verdict.SOAK:
                self.rings[index] = RingState.SOAKING
            case Verdict.PASS:
                self.rings[index] = RingState.PASSED
                self.act(Notify("ring_passed", index, why))
            case Verdict.FAIL:
                self.fail(index, why)
                return False
            case _:
                assert_never(verdict)
        self.note(why)
        return verdict is Verdict.PASS

    def fail(self, index: int, why: str) -> None:
        ring = self.view.rings[index]
        self.rings[index] = RingState.FAILED
        self.act(Notify("ring_failed", index, why))
        if ring.gate.rollback_on_failure:
            self.rings[index] = RingState.ROLLING_BACK
            self.act(RollbackRing(index))
            why += ", rolling back"
        self.halt(index, why)

    def halt(self, index: int, why: str) -> None:
        self.state = RolloutState.HALTED
        self.act(Notify("rollout_halted", index, why))
        self.note(why)


def _current(view: RolloutView) -> int | None:
    """The index of the first ring neither PASSED nor SKIPPED; None when every ring is."""
    return next((i for i, ring in enumerate(view.rings) if ring.state not in _DONE_RINGS), None)


def _failures(failed: int, health: int, total: int) -> str:
    text = f"{failed}/{total} jobs failed"
    return text + (f" and {health} hosts failed their health check" if health else "")


def _allowed(gate: Gate) -> str:
    return f"its gate allows {gate.max_failure_ratio:.0%}"


def _duration(span: timedelta) -> str:
    minutes = -(-span // timedelta(minutes=1))  # rounded up: "1 min left" until it is over
    if minutes < 120:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _check_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{name} must be an aware datetime, not naive {moment.isoformat()}", name)


# --- ring assignment -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostRef:
    id: int
    groups: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RingSpec:
    """A ring of a rollout's plan: the hosts in any of `groups` or with any of `tags`, then `percent` (0..100)
    of the hosts no ring claimed by name; a ring with neither takes every host still left (a catch-all)."""

    name: str
    groups: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    percent: float | None = None
    gate: Gate = Gate()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidInput("a ring needs a name", "name")
        percent = self.percent
        if percent is not None and (
            isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= 100
        ):
            raise InvalidInput(f"ring {self.name}: percent must be from 0 to 100, not {percent!r}", "percent")

    def claims(self, host: HostRef) -> bool:
        return bool(self.groups & host.groups or self.tags & host.tags)

    @property
    def is_catch_all(self) -> bool:
        return self.percent is None and not self.groups and not self.tags


def assign_rings(hosts: Sequence[HostRef], rings: Sequence[RingSpec], salt: str) -> dict[int, int]:
    """Each host's ring index, by host id.

    A host goes to the first ring whose groups or tags it has. The others are placed by a stable hash of
    `salt` and the host id, a fraction in [0, 1): walking the rings in order and adding up their percents, the
    first ring whose running total is above the fraction, or the first catch-all ring, takes it; the last ring
    takes whoever is left. The same salt and hosts give the same rings, and adding a host moves no other.
    Raises InvalidInput when there are no rings or the percents add up to more than 100.
    """
    if not rings:
        raise InvalidInput("a rollout needs at least one ring", "rings")
    if sum(ring.percent or 0 for ring in rings) > 100:
        raise InvalidInput("the rings' percents add up to more than 100", "rings")
    return {host.id: _ring_of(host, rings, salt) for host in hosts}


def _ring_of(host: HostRef, rings: Sequence[RingSpec], salt: str) -> int:
    for index, ring in enumerate(rings):
        if ring.claims(host):
            return index
    fraction = int(hashlib.sha256(f"{salt}:{host.id}".encode()).hexdigest()[:8], 16) / 2**32
    cumulative = 0.0
    for index, ring in enumerate(rings):
        if ring.is_catch_all:
            return index
        if ring.percent is not None:
            cumulative += ring.percent / 100
            if fraction < cumulative:
                return index
    return len(rings) - 1


DEFAULT_RINGS: Final[tuple[RingSpec, ...]] = (
    RingSpec(
        "pilot",
        tags=frozenset({"pilot"}),
        percent=5,
        gate=Gate(max_failure_ratio=0.0, min_successes=1, soak=timedelta(hours=1)),
    ),
    RingSpec(
        "early",
        tags=frozenset({"early"}),
        percent=25,
        gate=Gate(max_failure_ratio=0.05, min_successes=1, soak=timedelta(hours=1)),
    ),
    RingSpec("broad", gate=Gate(max_failure_ratio=0.05, min_successes=1)),
)
