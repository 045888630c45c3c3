"""The rollout state machine: plan and job tables, ring verdicts, advance and commands, ring assignment, and a
simulated driver (hypothesis) that runs rollouts with random outcomes, operators and crashes."""

from __future__ import annotations

import copy
import hashlib
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from patchday.core.errors import InvalidInput, InvalidTransition
from patchday.core.rollout import (
    DEFAULT_RINGS,
    JOB_BAD,
    JOB_IN_FLIGHT,
    JOB_OK,
    ROLLBACK_IN_FLIGHT,
    Action,
    CancelQueued,
    Command,
    Decision,
    Gate,
    HostRef,
    JobEvent,
    JobState,
    Notify,
    OpenRing,
    PlanEvent,
    PlanState,
    RetryFailed,
    RingSpec,
    RingState,
    RingView,
    RollbackRing,
    RolloutState,
    RolloutView,
    Verdict,
    advance,
    assign_rings,
    command,
    job_transition,
    plan_transition,
    ring_verdict,
)

NOW = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
J = JobState
E = JobEvent

# Written out from the spec, not copied from the module, so a change to either table shows.
JOB_TABLE: dict[tuple[JobState, JobEvent], JobState] = {
    (J.QUEUED, E.LEASE): J.LEASED,
    (J.QUEUED, E.CANCEL): J.CANCELLED,
    (J.LEASED, E.REPORT_SUCCESS): J.SUCCEEDED,
    (J.LEASED, E.REPORT_FAILURE): J.FAILED,
    (J.LEASED, E.LEASE_EXPIRED): J.UNKNOWN,
    (J.SUCCEEDED, E.VERIFY_OK): J.VERIFIED,
    (J.SUCCEEDED, E.VERIFY_MISMATCH): J.FAILED,
    (J.UNKNOWN, E.VERIFY_OK): J.VERIFIED,
    (J.UNKNOWN, E.VERIFY_MISMATCH): J.FAILED,
    (J.FAILED, E.RETRY): J.QUEUED,
    (J.UNKNOWN, E.RETRY): J.QUEUED,
    (J.VERIFIED, E.ROLLBACK): J.ROLLBACK_QUEUED,
    (J.FAILED, E.ROLLBACK): J.ROLLBACK_QUEUED,
    (J.UNKNOWN, E.ROLLBACK): J.ROLLBACK_QUEUED,
    (J.SUCCEEDED, E.ROLLBACK): J.ROLLBACK_QUEUED,
    (J.ROLLBACK_QUEUED, E.ROLLBACK_LEASE): J.ROLLBACK_LEASED,
    (J.ROLLBACK_LEASED, E.ROLLBACK_DONE): J.ROLLED_BACK,
    (J.ROLLBACK_LEASED, E.ROLLBACK_FAILED): J.ROLLBACK_FAILED,
    (J.ROLLBACK_LEASED, E.ROLLBACK_LEASE_EXPIRED): J.ROLLBACK_FAILED,
    (J.ROLLBACK_FAILED, E.ROLLBACK): J.ROLLBACK_QUEUED,
}

P = PlanState
PE = PlanEvent
PLAN_TABLE: dict[tuple[PlanState, PlanEvent], PlanState] = {
    (P.DRAFT, PE.SUBMIT): P.PENDING_APPROVAL,
    (P.DRAFT, PE.OVERRIDE): P.STARTED,
    (P.DRAFT, PE.CANCEL): P.CANCELLED,
    (P.PENDING_APPROVAL, PE.APPROVE): P.APPROVED,
    (P.PENDING_APPROVAL, PE.AUTO_APPROVE): P.APPROVED,
    (P.PENDING_APPROVAL, PE.REJECT): P.REJECTED,
    (P.PENDING_APPROVAL, PE.OVERRIDE): P.STARTED,
    (P.PENDING_APPROVAL, PE.CANCEL): P.CANCELLED,
    (P.APPROVED, PE.START): P.STARTED,
    (P.APPROVED, PE.CANCEL): P.CANCELLED,
}


DEFAULT_GATE = Gate()


def ring(
    name: str = "pilot",
    *,
    state: RingState = RingState.RUNNING,
    gate: Gate = DEFAULT_GATE,
    last_finished_at: datetime | None = None,
    health_failures: int = 0,
    **counts: int,
) -> RingView:
    return RingView(
        name,
        state,
        gate,
        {JobState(key): count for key, count in counts.items()},
        last_finished_at=last_finished_at,
        health_failures=health_failures,
    )


def waiting(name: str) -> RingView:
    return ring(name, state=RingState.WAITING)


def rollout(*rings: RingView, state: RolloutState = RolloutState.RUNNING) -> RolloutView:
    return RolloutView(state, rings)


def notes(decision: Decision) -> list[tuple[str, int | None]]:
    return [(action.kind, action.ring) for action in decision.actions if isinstance(action, Notify)]


def work(decision: Decision) -> list[Action]:
    return [action for action in decision.actions if not isinstance(action, Notify)]


# --- tables --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "event"), list(itertools.product(JobState, JobEvent)))
def test_job_table_allows_exactly_the_specified_pairs(state: JobState, event: JobEvent) -> None:
    if (state, event) in JOB_TABLE:
        assert job_transition(state, event) is JOB_TABLE[(state, event)]
    else:
        with pytest.raises(InvalidTransition, match=f"job in state {state} cannot take {event}"):
            job_transition(state, event)


@pytest.mark.parametrize(("state", "event"), list(itertools.product(PlanState, PlanEvent)))
def test_plan_table_allows_exactly_the_specified_pairs(state: PlanState, event: PlanEvent) -> None:
    if (state, event) in PLAN_TABLE:
        assert plan_transition(state, event) is PLAN_TABLE[(state, event)]
    else:
        with pytest.raises(InvalidTransition, match=f"plan in state {state} cannot take {event}"):
            plan_transition(state, event)


def test_a_verified_job_can_never_run_again() -> None:
    reachable = {J.VERIFIED}
    while True:
        more = {after for (before, _), after in JOB_TABLE.items() if before in reachable} - reachable
        if not more:
            break
        reachable |= more
    assert reachable.isdisjoint({J.QUEUED, J.LEASED})


def test_a_leased_job_cannot_be_cancelled_under_its_executor() -> None:
    with pytest.raises(InvalidTransition) as caught:
        job_transition(J.LEASED, E.CANCEL)
    assert (caught.value.kind, caught.value.state, caught.value.event) == ("job", "leased", "cancel")
    assert caught.value.details == {"kind": "job", "state": "leased", "event": "cancel"}


def test_job_state_sets() -> None:
    assert frozenset({J.QUEUED, J.LEASED, J.SUCCEEDED, J.UNKNOWN}) == JOB_IN_FLIGHT
    assert frozenset({J.VERIFIED}) == JOB_OK
    assert frozenset({J.FAILED}) == JOB_BAD
    assert frozenset({J.ROLLBACK_QUEUED, J.ROLLBACK_LEASED}) == ROLLBACK_IN_FLIGHT
    assert [e.value for e in JobEvent][:3] == ["lease", "report_success", "report_failure"]


# --- gates and verdicts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"max_failure_ratio": -0.1}, "max_failure_ratio"),
        ({"max_failure_ratio": 1.5}, "max_failure_ratio"),
        ({"min_successes": -1}, "min_successes"),
        ({"soak": timedelta(minutes=-1)}, "soak"),
    ],
)
def test_gate_refuses_values_out_of_range(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Gate(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_failure_ratio_fails_at_once_without_waiting_for_the_rest() -> None:
    gate = Gate(max_failure_ratio=0.1)
    assert ring_verdict(ring(gate=gate, failed=1, queued=9), NOW)[0] is Verdict.WAIT  # 10% is allowed
    verdict, why = ring_verdict(ring(gate=gate, failed=2, queued=8), NOW)
    assert verdict is Verdict.FAIL
    assert why == "ring pilot failed: 2/10 jobs failed, its gate allows 10%"


def test_failure_ratio_at_exactly_the_limit_passes_despite_float_rounding() -> None:
    # 0.29 * 100 is 28.999999999999996 in floats; 29 failures of 100 are still within 29%.
    gate = Gate(max_failure_ratio=0.29, min_successes=0)
    assert ring_verdict(ring(gate=gate, failed=29, verified=71), NOW)[0] is Verdict.PASS
    assert ring_verdict(ring(gate=gate, failed=30, verified=70), NOW)[0] is Verdict.FAIL


def test_health_check_failures_count_as_failures() -> None:
    verdict, why = ring_verdict(ring(verified=3, health_failures=1), NOW)
    assert verdict is Verdict.FAIL
    assert why == "ring pilot failed: 0/3 jobs failed and 1 hosts failed their health check, its gate allows 0%"


def test_min_successes_fails_a_ring_once_nothing_is_in_flight() -> None:
    gate = Gate(max_failure_ratio=0.5, min_successes=3)
    assert ring_verdict(ring(gate=gate, verified=2, queued=1), NOW)[0] is Verdict.WAIT
    assert ring_verdict(ring(gate=gate, verified=2, cancelled=1), NOW) == (
        Verdict.FAIL,
        "ring pilot failed: 2/3 verified, its gate needs 3",
    )
    # A ring smaller than min_successes needs every job verified.
    assert ring_verdict(ring(gate=Gate(min_successes=5), verified=2), NOW)[0] is Verdict.PASS


def test_unknown_jobs_are_in_flight_until_inventory_settles_them() -> None:
    verdict, why = ring_verdict(ring(verified=4, unknown=1), NOW)
    assert verdict is Verdict.WAIT
    assert why == "ring pilot running: 4/5 verified, 1 in flight (1 unknown, awaiting inventory)"
    assert ring_verdict(ring(verified=5), NOW)[0] is Verdict.PASS


def test_soak_counts_from_the_last_finished_job() -> None:
    gate = Gate(soak=timedelta(minutes=10))
    finished = NOW - timedelta(minutes=4)
    assert ring_verdict(ring(gate=gate, verified=1, last_finished_at=finished), NOW) == (
        Verdict.SOAK,
        "ring pilot soaking: 1/1 verified, 6 min of soak left",
    )
    assert ring_verdict(ring(gate=gate, verified=1, last_finished_at=finished), finished + gate.soak) == (
        Verdict.PASS,
        "ring pilot passed: 1/1 verified, soak 10 min over",
    )
    assert ring_verdict(ring(gate=gate, verified=1), NOW)[0] is Verdict.SOAK  # finish time not recorded yet


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidInput):
        ring_verdict(ring(verified=1), NOW.replace(tzinfo=None))
    with pytest.raises(InvalidInput):
        advance(rollout(waiting("pilot")), NOW.replace(tzinfo=None))
    with pytest.raises(InvalidInput):
        ring(verified=1, last_finished_at=NOW.replace(tzinfo=None))


# --- advance -------------------------------------------------------------------------------------------------


def test_a_new_rollout_opens_its_first_ring_only() -> None:
    decision = advance(rollout(waiting("pilot"), waiting("early")), NOW)
    assert decision == Decision(
        RolloutState.RUNNING, (RingState.RUNNING, RingState.WAITING), (OpenRing(0),), "ring pilot opened"
    )


def test_pilot_passes_and_early_opens_in_the_same_call() -> None:
    decision = advance(rollout(ring(verified=1), waiting("early"), waiting("broad")), NOW)
    assert decision.state is RolloutState.RUNNING
    assert decision.rings == (RingState.PASSED, RingState.RUNNING, RingState.WAITING)
    assert work(decision) == [OpenRing(1)]
    assert notes(decision) == [("ring_passed", 0)]
    assert decision.reason == "ring pilot passed: 1/1 verified; ring early opened"


def test_a_soaking_ring_holds_the_next_one_back() -> None:
    gate = Gate(soak=timedelta(minutes=10))
    pilot = ring(gate=gate, verified=1, last_finished_at=NOW)
    decision = advance(rollout(pilot, waiting("early")), NOW + timedelta(minutes=9))
    assert decision == Decision(
        RolloutState.RUNNING,
        (RingState.SOAKING, RingState.WAITING),
        (),
        "ring pilot soaking: 1/1 verified, 1 min of soak left",
    )
    soaking = RingView("pilot", RingState.SOAKING, gate, pilot.jobs, last_finished_at=NOW)
    later = advance(rollout(soaking, waiting("early")), NOW + timedelta(minutes=10))
    assert later.rings == (RingState.PASSED, RingState.RUNNING)
    assert later.reason == "ring pilot passed: 1/1 verified, soak 10 min over; ring early opened"


def test_a_soaking_ring_with_new_work_runs_again() -> None:
    decision = advance(rollout(ring(state=RingState.SOAKING, verified=1, queued=1), waiting("early")), NOW)
    assert decision.rings == (RingState.RUNNING, RingState.WAITING)
    assert decision.actions == ()


def test_a_failed_ring_halts_the_rollout_and_rolls_back() -> None:
    decision = advance(rollout(ring(failed=1, queued=5, leased=1), waiting("early")), NOW)
    assert decision.state is RolloutState.HALTED
    assert decision.rings == (RingState.ROLLING_BACK, RingState.WAITING)
    assert work(decision) == [RollbackRing(0)]
    assert notes(decision) == [("ring_failed", 0), ("rollout_halted", 0)]
    assert decision.reason == "ring pilot failed: 1/7 jobs failed, its gate allows 0%, rolling back"


def test_a_failed_ring_without_rollback_stays_failed() -> None:
    gate = Gate(rollback_on_failure=False)
    decision = advance(rollout(ring(gate=gate, failed=1, verified=1), waiting("early")), NOW)
    assert decision.state is RolloutState.HALTED
    assert decision.rings == (RingState.FAILED, RingState.WAITING)
    assert work(decision) == []
    again = advance(
        rollout(ring(state=RingState.FAILED, gate=gate, failed=1), waiting("early"), state=decision.state), NOW
    )
    assert again == Decision(RolloutState.HALTED, decision.rings, (), "rollout halted at ring pilot")


def test_min_successes_failure_halts_the_rollout() -> None:
    decision = advance(rollout(ring(gate=Gate(min_successes=2), verified=1, cancelled=1), waiting("early")), NOW)
    assert decision.state is RolloutState.HALTED
    assert decision.rings == (RingState.ROLLING_BACK, RingState.WAITING)


def test_an_empty_ring_passes_at_once_and_the_next_opens() -> None:
    decision = advance(rollout(ring(gate=Gate(soak=timedelta(hours=1))), waiting("early")), NOW)
    assert decision.rings == (RingState.PASSED, RingState.RUNNING)
    assert work(decision) == [OpenRing(1)]
    assert decision.reason == "ring pilot passed: it is empty (no hosts); ring early opened"


def test_a_rollout_of_empty_rings_completes() -> None:
    view = rollout(waiting("pilot"), waiting("early"))
    decisions = []
    for _ in range(3):
        decision = advance(view, NOW)
        decisions.append(decision)
        view = RolloutView(
            decision.state, tuple(ring(r.name, state=s) for r, s in zip(view.rings, decision.rings, strict=True))
        )
    assert [d.state for d in decisions] == [RolloutState.RUNNING, RolloutState.RUNNING, RolloutState.COMPLETED]
    assert notes(decisions[-1]) == [("ring_passed", 1), ("rollout_completed", None)]
    assert advance(view, NOW) == Decision(RolloutState.COMPLETED, view_states(view), (), "rollout completed")


def view_states(view: RolloutView) -> tuple[RingState, ...]:
    return tuple(r.state for r in view.rings)


def test_every_ring_passed_completes_the_rollout() -> None:
    decision = advance(rollout(ring(state=RingState.PASSED, verified=1), ring("early", verified=3)), NOW)
    assert decision.state is RolloutState.COMPLETED
    assert notes(decision) == [("ring_passed", 1), ("rollout_completed", None)]


def test_a_promoted_ring_with_jobs_in_flight_keeps_the_rollout_running() -> None:
    view = rollout(ring(state=RingState.PASSED, queued=1, verified=1), ring("early", verified=3))
    decision = advance(view, NOW)
    assert decision.state is RolloutState.RUNNING
    assert decision.rings == (RingState.PASSED, RingState.PASSED)
    assert decision.reason.endswith("every ring passed, 1 jobs of promoted rings still in flight")


@pytest.mark.parametrize("state", [RolloutState.PAUSED, RolloutState.HALTED, RolloutState.COMPLETED])
def test_only_a_running_rollout_opens_rings(state: RolloutState) -> None:
    decision = advance(rollout(ring(state=RingState.PASSED, verified=1), waiting("early"), state=state), NOW)
    assert decision.state is state
    assert decision.actions == ()


def test_a_paused_rollout_neither_soaks_nor_passes_but_still_halts_on_failure() -> None:
    paused = advance(rollout(ring(verified=1), waiting("early"), state=RolloutState.PAUSED), NOW)
    assert paused == Decision(
        RolloutState.PAUSED,
        (RingState.RUNNING, RingState.WAITING),
        (),
        "rollout paused at ring pilot",
    )
    failing = advance(rollout(ring(failed=1, leased=1), waiting("early"), state=RolloutState.PAUSED), NOW)
    assert failing.state is RolloutState.HALTED
    assert failing.rings == (RingState.ROLLING_BACK, RingState.WAITING)
    assert work(failing) == [RollbackRing(0)]


def test_a_rollback_finishes_when_no_rollback_job_is_in_flight() -> None:
    def rolling_back(**counts: int) -> RolloutView:
        jobs = {JobState(key): count for key, count in counts.items()}
        pilot = RingView("pilot", RingState.ROLLING_BACK, Gate(), jobs)
        return rollout(pilot, waiting("early"), state=RolloutState.HALTED)

    assert advance(rolling_back(rollback_queued=1, rolled_back=1), NOW).actions == ()
    assert advance(rolling_back(rollback_leased=1), NOW).rings[0] is RingState.ROLLING_BACK
    assert advance(rolling_back(leased=1, rolled_back=1), NOW).rings[0] is RingState.ROLLING_BACK  # must report
    done = advance(rolling_back(rolled_back=2, rollback_failed=1, cancelled=3), NOW)
    assert done == Decision(
        RolloutState.HALTED,
        (RingState.ROLLED_BACK, RingState.WAITING),
        (Notify("rollback_finished", 0, "ring pilot rolled back: 2 hosts restored, 1 rollbacks failed"),),
        "ring pilot rolled back: 2 hosts restored, 1 rollbacks failed; rollout halted at ring pilot",
    )


def test_queued_jobs_of_a_ring_rolling_back_changed_nothing_and_hold_nothing_up() -> None:
    view = rollout(ring(state=RingState.ROLLING_BACK, queued=2, rolled_back=1), state=RolloutState.HALTED)
    assert advance(view, NOW).rings == (RingState.ROLLED_BACK,)


def test_a_lost_rollback_is_derived_again_from_the_jobs() -> None:
    view = rollout(
        ring(state=RingState.ROLLING_BACK, verified=1, failed=1, queued=1, rollback_queued=1),
        state=RolloutState.HALTED,
    )
    decision = advance(view, NOW)
    assert decision.actions == (RollbackRing(0),)
    assert decision.rings == (RingState.ROLLING_BACK,)


@pytest.mark.parametrize("state", [RolloutState.ABORTED, RolloutState.COMPLETED])
def test_rollbacks_finish_in_terminal_rollouts_too(state: RolloutState) -> None:
    view = rollout(ring(state=RingState.ROLLING_BACK, rolled_back=1), state=state)
    decision = advance(view, NOW)
    assert decision.state is state
    assert decision.rings == (RingState.ROLLED_BACK,)
    assert notes(decision) == [("rollback_finished", 0)]


def test_a_running_rollout_whose_current_ring_failed_halts() -> None:
    view = rollout(ring(state=RingState.FAILED, failed=1), waiting("early"))
    decision = advance(view, NOW)
    assert decision.state is RolloutState.HALTED
    assert work(decision) == []


def test_advance_on_its_own_result_opens_nothing_again() -> None:
    first = advance(rollout(ring(verified=1), waiting("early")), NOW)
    # The driver saved early RUNNING and created its jobs in the same transaction.
    view = rollout(ring(state=RingState.PASSED, verified=1), ring("early", queued=4))
    second = advance(view, NOW)
    assert OpenRing(1) in first.actions
    assert second == Decision(RolloutState.RUNNING, first.rings, (), "ring early running: 0/4 verified, 4 in flight")
    assert advance(view, NOW) == second


# --- commands ------------------------------------------------------------------------------------------------


def test_pause_and_resume() -> None:
    view = rollout(ring(queued=1), waiting("early"))
    paused = command(view, Command.PAUSE)
    assert paused == Decision(RolloutState.PAUSED, view_states(view), (), "rollout paused by an operator")
    resumed = command(RolloutView(paused.state, view.rings), Command.RESUME)
    assert resumed.state is RolloutState.RUNNING
    with pytest.raises(InvalidTransition, match="rollout in state running cannot take resume"):
        command(view, Command.RESUME)
    with pytest.raises(InvalidTransition):
        command(RolloutView(RolloutState.HALTED, view.rings), Command.RESUME)
    with pytest.raises(InvalidInput):
        command(view, Command.PAUSE, ring=0)


@pytest.mark.parametrize("state", [RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.HALTED])
def test_abort_skips_waiting_rings_and_cancels_queued_jobs(state: RolloutState) -> None:
    view = rollout(ring(state=RingState.PASSED, verified=1), ring("early", queued=3), waiting("broad"), state=state)
    decision = command(view, Command.ABORT)
    assert decision.state is RolloutState.ABORTED
    assert decision.rings == (RingState.PASSED, RingState.RUNNING, RingState.SKIPPED)
    assert work(decision) == [CancelQueued()]
    assert notes(decision) == [("rollout_aborted", None)]


def test_an_aborted_rollout_cancels_leftover_queued_jobs_and_stays_aborted() -> None:
    view = rollout(ring(queued=2, leased=1), waiting("early"), state=RolloutState.ABORTED)
    assert advance(view, NOW).actions == (CancelQueued(),)
    settled = rollout(ring(cancelled=2, verified=1), ring("early", state=RingState.SKIPPED), state=RolloutState.ABORTED)
    assert advance(settled, NOW) == Decision(
        RolloutState.ABORTED, (RingState.RUNNING, RingState.SKIPPED), (), "rollout aborted"
    )
    for cmd in (Command.ABORT, Command.PAUSE, Command.RESUME, Command.PROMOTE, Command.RETRY_FAILED):
        with pytest.raises(InvalidTransition):
            command(settled, cmd)


def test_promote_passes_the_current_ring_and_the_next_advance_opens_the_next() -> None:
    gate = Gate(rollback_on_failure=False)
    view = rollout(
        ring(state=RingState.FAILED, gate=gate, failed=1, verified=3), waiting("early"), state=RolloutState.HALTED
    )
    decision = command(view, Command.PROMOTE)
    assert decision.state is RolloutState.RUNNING
    assert decision.rings == (RingState.PASSED, RingState.WAITING)
    assert decision.promoted == frozenset({0})
    assert notes(decision) == [("ring_passed", 0)]
    after = rollout(ring(state=RingState.PASSED, gate=gate, failed=1, verified=3), waiting("early"))
    assert work(advance(after, NOW)) == [OpenRing(1)]


def test_promote_only_the_current_started_ring() -> None:
    view = rollout(ring(queued=1), waiting("early"))
    with pytest.raises(InvalidTransition, match="ring early in state waiting cannot take promote"):
        command(view, Command.PROMOTE, ring=1)
    with pytest.raises(InvalidTransition, match="ring early in state waiting cannot take promote"):
        command(rollout(ring(state=RingState.PASSED, verified=1), waiting("early")), Command.PROMOTE)
    with pytest.raises(InvalidTransition):
        command(rollout(ring(state=RingState.ROLLED_BACK), state=RolloutState.HALTED), Command.PROMOTE)
    assert command(view, Command.PROMOTE, ring=0).rings == (RingState.PASSED, RingState.WAITING)


def test_retry_failed_requeues_and_runs_the_ring_again() -> None:
    gate = Gate(rollback_on_failure=False)
    view = rollout(
        ring(state=RingState.FAILED, gate=gate, failed=2, unknown=1), waiting("early"), state=RolloutState.HALTED
    )
    decision = command(view, Command.RETRY_FAILED)
    assert decision == Decision(
        RolloutState.RUNNING,
        (RingState.RUNNING, RingState.WAITING),
        (RetryFailed(0),),
        "ring pilot retried by an operator: 3 failed or unknown jobs queued again",
    )
    with pytest.raises(InvalidTransition, match="ring pilot in state running cannot take retry_failed"):
        command(rollout(ring(failed=1, queued=1), waiting("early")), Command.RETRY_FAILED)


def test_rollback_command_halts_a_running_rollout_and_keeps_a_completed_one() -> None:
    running = rollout(ring(state=RingState.PASSED, verified=1), ring("early", queued=2))
    decision = command(running, Command.ROLLBACK, ring=0)
    assert decision.state is RolloutState.HALTED
    assert decision.rings == (RingState.ROLLING_BACK, RingState.RUNNING)
    assert work(decision) == [RollbackRing(0)]
    completed = rollout(ring(state=RingState.PASSED, verified=1), ring("early", state=RingState.PASSED, verified=2))
    completed = RolloutView(RolloutState.COMPLETED, completed.rings)
    reverted = command(completed, Command.ROLLBACK, ring=1)
    assert reverted.state is RolloutState.COMPLETED
    assert reverted.actions == (RollbackRing(1),)
    with pytest.raises(InvalidTransition, match="ring early in state waiting cannot take rollback"):
        command(rollout(ring(queued=1), waiting("early")), Command.ROLLBACK, ring=1)
    with pytest.raises(InvalidInput):
        command(running, Command.ROLLBACK)
    with pytest.raises(InvalidInput):
        command(running, Command.ROLLBACK, ring=2)


# --- ring assignment -----------------------------------------------------------------------------------------


def test_hosts_go_to_the_first_ring_that_names_them() -> None:
    hosts = [
        HostRef(1, tags=frozenset({"pilot"})),
        HostRef(2, groups=frozenset({"canary"}), tags=frozenset({"early"})),
        HostRef(3, tags=frozenset({"early"})),
    ]
    rings = [
        RingSpec("pilot", tags=frozenset({"pilot"})),
        RingSpec("canary", groups=frozenset({"canary"})),
        *DEFAULT_RINGS[1:],
    ]
    assert assign_rings(hosts, rings, "salt") == {1: 0, 2: 1, 3: 2}


def test_assignment_is_stable_and_adding_hosts_moves_no_one() -> None:
    hosts = [HostRef(i) for i in range(1, 2001)]
    first = assign_rings(hosts[:1000], DEFAULT_RINGS, "plan-7")
    second = assign_rings(hosts, DEFAULT_RINGS, "plan-7")
    assert {host: second[host] for host in first} == first
    sizes = Counter(second.values())
    assert 60 <= sizes[0] <= 140  # 5% of 2000
    assert 400 <= sizes[1] <= 600  # 25%
    assert sizes[0] + sizes[1] + sizes[2] == 2000
    assert assign_rings(hosts, DEFAULT_RINGS, "plan-8") != second  # another salt, another pilot


def test_the_hash_is_the_documented_one() -> None:
    fraction = int(hashlib.sha256(b"s:1").hexdigest()[:8], 16) / 2**32
    expected = 0 if fraction < 0.05 else 1 if fraction < 0.30 else 2
    assert assign_rings([HostRef(1)], DEFAULT_RINGS, "s") == {1: expected}


def test_a_catch_all_ring_takes_everyone_left_and_named_rings_only_their_own() -> None:
    rings = [RingSpec("db", groups=frozenset({"db"})), RingSpec("rest"), RingSpec("never", percent=50)]
    hosts = [HostRef(i) for i in range(50)] + [HostRef(99, groups=frozenset({"db"}))]
    assignment = assign_rings(hosts, rings, "x")
    assert assignment[99] == 0
    assert set(assignment.values()) == {0, 1}


def test_ring_specs_are_checked() -> None:
    with pytest.raises(InvalidInput):
        RingSpec("pilot", percent=120)
    with pytest.raises(InvalidInput):
        assign_rings([HostRef(1)], [RingSpec("a", percent=60), RingSpec("b", percent=50)], "x")
    with pytest.raises(InvalidInput):
        assign_rings([HostRef(1)], [], "x")


def test_default_rings() -> None:
    assert [(r.name, r.tags, r.percent) for r in DEFAULT_RINGS] == [
        ("pilot", frozenset({"pilot"}), 5),
        ("early", frozenset({"early"}), 25),
        ("broad", frozenset(), None),
    ]


# --- a simulated driver --------------------------------------------------------------------------------------

EXECUTOR_EVENTS = (
    E.LEASE,
    E.REPORT_SUCCESS,
    E.REPORT_SUCCESS,
    E.REPORT_FAILURE,
    E.LEASE_EXPIRED,
    E.VERIFY_OK,
    E.VERIFY_OK,
    E.VERIFY_MISMATCH,
    E.ROLLBACK_LEASE,
    E.ROLLBACK_DONE,
    E.ROLLBACK_FAILED,
    E.ROLLBACK_LEASE_EXPIRED,
)
HAPPY: dict[JobState, JobEvent] = {
    J.QUEUED: E.LEASE,
    J.LEASED: E.REPORT_SUCCESS,
    J.SUCCEEDED: E.VERIFY_OK,
    J.UNKNOWN: E.VERIFY_OK,
    J.ROLLBACK_QUEUED: E.ROLLBACK_LEASE,
    J.ROLLBACK_LEASED: E.ROLLBACK_DONE,
}
# Operators abort now and then; aborting as often as promoting would end most runs early.
COMMANDS = st.sampled_from([*Command, Command.RESUME, Command.PROMOTE, Command.RETRY_FAILED, Command.ROLLBACK])
TERMINAL = {RolloutState.COMPLETED, RolloutState.ABORTED}
DONE = {RingState.PASSED, RingState.SKIPPED}
GATES = st.builds(
    Gate,
    max_failure_ratio=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    min_successes=st.integers(0, 3),
    soak=st.sampled_from([timedelta(0), timedelta(minutes=10), timedelta(hours=1)]),
    rollback_on_failure=st.booleans(),
)


class World:
    """The database and the driver: rollout and ring states, jobs one per host, and the clock."""

    def __init__(self, rings: list[tuple[int, Gate]], cancels_queued_on_rollback: bool = True) -> None:
        self.cancels_queued_on_rollback = cancels_queued_on_rollback
        self.hosts = [hosts for hosts, _ in rings]
        self.gates = [gate for _, gate in rings]
        self.state = RolloutState.RUNNING
        self.rings = [RingState.WAITING] * len(rings)
        self.promoted = [False] * len(rings)
        self.jobs: list[list[JobState]] = [[] for _ in rings]
        self.last_finished: list[datetime | None] = [None] * len(rings)
        self.opened: set[int] = set()
        self.verified: set[tuple[int, int]] = set()
        self.now = NOW
        self.sent: list[Notify] = []

    def view(self) -> RolloutView:
        return RolloutView(
            self.state,
            tuple(
                RingView(
                    f"ring{i}",
                    self.rings[i],
                    self.gates[i],
                    Counter(self.jobs[i]),
                    last_finished_at=self.last_finished[i],
                    promoted=self.promoted[i],
                )
                for i in range(len(self.rings))
            ),
        )

    def set_job(self, i: int, host: int, event: JobEvent) -> None:
        before = self.jobs[i][host]
        after = job_transition(before, event)
        if (i, host) in self.verified:
            assert after not in (J.QUEUED, J.LEASED), f"verified job ring{i}/{host} went {before} -> {after}"
        if after is J.VERIFIED:
            self.verified.add((i, host))
        if before in JOB_IN_FLIGHT and after not in JOB_IN_FLIGHT:
            self.last_finished[i] = self.now
        self.jobs[i][host] = after

    def may_lease(self, i: int) -> bool:
        return self.state is RolloutState.RUNNING and self.rings[i] in (
            RingState.RUNNING,
            RingState.SOAKING,
            RingState.PASSED,
        )

    def apply(self, decision: Decision, *, lose_actions: bool = False, by_operator: bool = False) -> None:
        """Save the decision; OpenRing is part of the save. The other actions are lost in a crash."""
        check_decision(self, decision)
        if not by_operator:
            check_gates(self, decision)
        self.state = decision.state
        self.rings = list(decision.rings)
        for i in decision.promoted:
            self.promoted[i] = True
        for action in decision.actions:
            if isinstance(action, OpenRing):
                self.opened.add(action.index)
                self.jobs[action.index] = [J.QUEUED] * self.hosts[action.index]
            elif not lose_actions:
                self.perform(action)

    def perform(self, action: Action) -> None:
        match action:
            case RetryFailed(index=i):
                for host, job in enumerate(self.jobs[i]):
                    if job in (J.FAILED, J.UNKNOWN):
                        self.set_job(i, host, E.RETRY)
            case RollbackRing(index=i):
                for host, job in enumerate(self.jobs[i]):
                    if job in (J.SUCCEEDED, J.VERIFIED, J.FAILED, J.UNKNOWN, J.ROLLBACK_FAILED):
                        self.set_job(i, host, E.ROLLBACK)
                    elif job is J.QUEUED and self.cancels_queued_on_rollback:
                        self.set_job(i, host, E.CANCEL)
            case CancelQueued():
                for i, jobs in enumerate(self.jobs):
                    for host, job in enumerate(jobs):
                        if job is J.QUEUED:
                            self.set_job(i, host, E.CANCEL)
            case Notify():
                self.sent.append(action)
            case OpenRing():
                raise AssertionError("OpenRing is saved with the states")

    def tick(self) -> Decision:
        decision = advance(self.view(), self.now)
        assert decision == advance(self.view(), self.now)  # pure: the same facts, the same decision
        self.apply(decision)
        return decision


def check_decision(world: World, decision: Decision) -> None:
    """What must hold between the saved states and any decision on them."""
    assert len(decision.rings) == len(world.rings)
    if world.state in TERMINAL:
        assert decision.state is world.state, f"terminal {world.state} became {decision.state}"
    opened = {a.index for a in decision.actions if isinstance(a, OpenRing)}
    if opened:
        assert world.state is RolloutState.RUNNING, f"OpenRing{sorted(opened)} for a {world.state} rollout"
        assert decision.state is RolloutState.RUNNING
    for i in opened:
        assert i not in world.opened, f"ring {i} opened twice"
        assert world.rings[i] is RingState.WAITING
    for i, (before, after) in enumerate(zip(world.rings, decision.rings, strict=True)):
        if before is RingState.WAITING and after not in (RingState.WAITING, RingState.SKIPPED):
            assert all(s in DONE for s in decision.rings[:i]), f"ring {i} opened past {decision.rings[:i]}"
            assert i in opened
        if after is RingState.SKIPPED:
            assert before in (RingState.WAITING, RingState.SKIPPED)


def gate_holds(world: World, i: int) -> bool | None:
    """The gate worked out afresh from the jobs: True (passed, soak aside), False (failed) or None (undecided)."""
    jobs, gate, total = Counter(world.jobs[i]), world.gates[i], len(world.jobs[i])
    if total == 0:
        return True
    if jobs[J.FAILED] / total > gate.max_failure_ratio:
        return False
    if any(jobs[state] for state in (J.QUEUED, J.LEASED, J.SUCCEEDED, J.UNKNOWN)):
        return None
    return jobs[J.VERIFIED] >= min(gate.min_successes, total)


def check_gates(world: World, decision: Decision) -> None:
    """A tick passes a ring only through its gate and soak, fails it only when the gate fails, and never
    misses a failed gate of a ring it judges (the current ring of a running or paused rollout)."""
    for i, (before, after) in enumerate(zip(world.rings, decision.rings, strict=True)):
        if before not in (RingState.RUNNING, RingState.SOAKING):
            continue
        holds = gate_holds(world, i)
        if after is RingState.PASSED:
            assert holds is True, f"ring {i} passed with jobs {world.jobs[i]}"
            finished = world.last_finished[i]
            soaked = finished is not None and finished + world.gates[i].soak <= world.now
            assert not world.jobs[i] or world.gates[i].soak == timedelta(0) or soaked
        elif after in (RingState.FAILED, RingState.ROLLING_BACK):
            assert holds is False, f"ring {i} failed with jobs {world.jobs[i]}"
        elif world.state in (RolloutState.RUNNING, RolloutState.PAUSED):
            assert holds is not False, f"ring {i} missed its failed gate, jobs {world.jobs[i]}"


class RolloutSimulation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World([(1, Gate())])

    @initialize(rings=st.lists(st.tuples(st.integers(0, 4), GATES), min_size=2, max_size=4), cancels=st.booleans())
    def start(self, rings: list[tuple[int, Gate]], cancels: bool) -> None:
        self.world = World(rings, cancels_queued_on_rollback=cancels)
        self.world.tick()

    @rule()
    def tick(self) -> None:
        world = self.world
        decision = world.tick()
        # Idempotence: with nothing new but the opened rings' jobs, advance settles without reopening anything.
        shadow = copy.deepcopy(world)
        for _ in range(len(world.rings) + 2):
            again = advance(shadow.view(), shadow.now)
            assert not {a for a in again.actions if isinstance(a, OpenRing)} & set(decision.actions)
            if again.state is shadow.state and list(again.rings) == shadow.rings and not again.actions:
                break
            shadow.apply(again)
        else:
            raise AssertionError(f"advance does not settle: {again}")

    @rule()
    def crash_after_saving(self) -> None:
        world = self.world
        decision = advance(world.view(), world.now)
        lost = sorted({type(a).__name__ for a in work(decision) if not isinstance(a, OpenRing)})
        if lost:
            event(f"a crash lost {', '.join(lost)}")
        world.apply(decision, lose_actions=True)

    @rule(minutes=st.integers(1, 90))
    def time_passes(self, minutes: int) -> None:
        self.world.now += timedelta(minutes=minutes)

    @rule(ring=st.integers(0, 3), host=st.integers(0, 3), pick=st.integers(0, 99))
    def executor_or_inventory(self, ring: int, host: int, pick: int) -> None:
        world = self.world
        i = ring % len(world.rings)
        if not world.jobs[i]:
            return
        host %= len(world.jobs[i])
        job = world.jobs[i][host]
        events = [
            event
            for event in EXECUTOR_EVENTS
            if (job, event) in JOB_TABLE and (event is not E.LEASE or world.may_lease(i))
        ]
        if events:
            world.set_job(i, host, events[pick % len(events)])

    @rule(cmd=COMMANDS, ring=st.none() | st.integers(0, 3), crash=st.booleans())
    def operator(self, cmd: Command, ring: int | None, crash: bool) -> None:
        world = self.world
        if ring is not None:
            ring %= len(world.rings)
        try:
            decision = command(world.view(), cmd, ring)
        except (InvalidTransition, InvalidInput):
            return
        assert not any(isinstance(a, OpenRing) for a in decision.actions)
        world.apply(decision, lose_actions=crash, by_operator=True)

    @invariant()
    def only_opened_rings_have_jobs(self) -> None:
        world = self.world
        for i, state in enumerate(world.rings):
            if state is RingState.WAITING:
                assert i not in world.opened
                assert world.jobs[i] == []
            if i in world.opened:
                assert state not in (RingState.WAITING, RingState.SKIPPED)

    def teardown(self) -> None:
        """Liveness: with every job going well from here on, the rollout ends and every rollback finishes, even
        after crashes lost actions."""
        world = self.world
        if world.state is RolloutState.PAUSED:
            world.apply(command(world.view(), Command.RESUME), by_operator=True)
        event(f"before draining: {world.state}, rings {'/'.join(world.rings)}")
        for _ in range(40):
            moved = False
            for i, jobs in enumerate(world.jobs):
                for host, job in enumerate(jobs):
                    if job in HAPPY and (job is not J.QUEUED or world.may_lease(i)):
                        world.set_job(i, host, HAPPY[job])
                        moved = True
            world.now += timedelta(days=1)
            before = (world.state, list(world.rings))
            if not world.tick().actions and not moved and before == (world.state, world.rings):
                break
        final = advance(world.view(), world.now)
        assert final.actions == (), final
        assert world.state in (RolloutState.COMPLETED, RolloutState.HALTED, RolloutState.ABORTED), world.state
        assert RingState.ROLLING_BACK not in world.rings
        event(f"drained: {world.state}")
        for i, state in enumerate(world.rings):
            if state is RingState.ROLLED_BACK:
                assert set(world.jobs[i]) <= {J.ROLLED_BACK, J.ROLLBACK_FAILED, J.CANCELLED, J.QUEUED}, world.jobs[i]
        if world.state is RolloutState.COMPLETED:
            assert all(s in DONE or s is RingState.ROLLED_BACK for s in world.rings)
            assert not any(job in JOB_IN_FLIGHT for jobs in world.jobs for job in jobs)
        if world.state is RolloutState.ABORTED:
            assert J.QUEUED not in {job for jobs in world.jobs for job in jobs}


RolloutSimulation.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_rollout_simulation = RolloutSimulation.TestCase
