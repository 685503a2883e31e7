"""When the next pass is useful (``Decision.requeue_after``), and a status that time
alone does not change: what lets the operator run passes on changes and due times
instead of a fixed timer, and write status only when something it reports changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from modelrelease.api.constants import Action, Phase, Reason
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus, WebhookStage
from modelrelease.core.comparison import MetricReading
from modelrelease.core.decision import Decision
from modelrelease.core.due import MINIMUM_DELAY, earliest
from modelrelease.core.gate import gate_seed
from modelrelease.core.needs import Needs, needs
from modelrelease.core.observation import Observation, Problem
from modelrelease.core.plan import plan
from modelrelease.core.pods import PodState
from modelrelease.gates.webhook import (
    CallOutcome,
    CallResult,
    GateLimits,
    GateProgress,
    delay_before_next_call,
)

from tests.unit.test_comparison import ERRORS_METRIC, CountingWorld, released
from tests.unit.test_metric_errors import spec as checked_spec
from tests.unit.test_plan import DOWN, T0, make_spec

CANARY = {"canary": {"steps": [{"weight": 10, "duration": "6s"}, {"weight": 50, "duration": "6s"}]}}
SHORT_CANARY = {"canary": {"steps": [{"weight": 20, "duration": "4s"}]}}
APPROVAL = {"approval": {}}
CHAMPION_CHALLENGER = {
    "championChallenger": {"weight": 50, "maxDuration": "40s", "metrics": [ERRORS_METRIC]}
}
SHADOW = {
    "shadow": {"mirrorPercent": 50, "duration": "10s", "comparison": {"metrics": [ERRORS_METRIC]}}
}
WEBHOOK = {
    "webhook": {
        "url": "http://127.0.0.1:1/gate",
        "interval": "3s",
        "maxDuration": "40s",
        "failureLimit": 2,
    }
}
NO_SLOS = {"prometheus": {"address": "http://prometheus:9090"}, "interval": "7s", "slos": []}
ROLLBACK_AFTER = {"action": "rollback", "after": "9s"}
HOLD_AFTER = {"action": "hold", "after": "5s"}

SPECS: dict[str, Any] = {
    "canary": lambda v: make_spec(v, stages=[CANARY]),
    "canary+approval": lambda v: make_spec(v, stages=[SHORT_CANARY, APPROVAL]),
    "championChallenger": lambda v: make_spec(v, stages=[CHAMPION_CHALLENGER]),
    "shadow+canary": lambda v: make_spec(v, stages=[SHADOW, SHORT_CANARY]),
    "webhook+canary": lambda v: make_spec(v, stages=[WEBHOOK, SHORT_CANARY]),
    "onError rollback": lambda v: checked_spec(v, on_error=ROLLBACK_AFTER),
    "onError hold": lambda v: checked_spec(v, on_error=HOLD_AFTER),
    "deadline": lambda v: make_spec(v, stages=[CANARY], progressDeadline="25s"),
    "no automatic rollback": lambda v: make_spec(
        v, stages=[CANARY], progressDeadline="25s", rollback={"automatic": False}
    ),
    # Without SLOs the step's end and maxDuration are not on the checks' beat.
    "canary, no SLOs": lambda v: make_spec(v, stages=[CANARY], analysis=None),
    "championChallenger, reads every 7s": lambda v: make_spec(
        v, stages=[CHAMPION_CHALLENGER], analysis=NO_SLOS
    ),
}
READINGS = st.sampled_from([0.0, 0.0, 0.0, 0.2, None, DOWN])
ANSWERS = st.sampled_from(
    [
        CallResult(CallOutcome.PENDING, 202),
        CallResult(CallOutcome.PENDING, 202),
        CallResult(CallOutcome.FAILED, 500),
        CallResult(CallOutcome.RETRY, None, error="timed out"),
        CallResult(CallOutcome.PASSED, 200),
    ]
)
SEED = gate_seed("llm", "chat")


def dump(status: ModelReleaseStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", exclude_none=True, by_alias=True)


def without_reads(observation: Observation) -> Observation:
    """The observation of a pass that measures, reads and calls nothing."""
    return replace(observation, slo_results=None, comparison=None, gate_result=None)


def nothing_to_read(wanted: Needs) -> bool:
    """Nothing but the sequential guard, which reads on every pass while it runs and
    changes nothing unless it trips (an early pass with its read decides the same)."""
    return not (wanted.slos or wanted.comparison) and wanted.gate is None


def same(a: Decision, b: Decision) -> bool:
    return (
        dump(a.status) == dump(b.status)
        and a.workloads == b.workloads
        and a.routes == b.routes
        and a.events == b.events
    )


def before(t: datetime, seconds: float, share: float) -> datetime:
    """``t`` plus ``share`` of ``seconds``, in whole microseconds and strictly before the end."""
    whole = round(seconds * 1e6)
    return t + timedelta(microseconds=min(int(whole * share), whole - 1))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[CountingWorld, Any]:
    """A release some random way into its life: any stage, step, outage, pause or end."""
    kind = draw(st.sampled_from(sorted(SPECS)))
    build = SPECS[kind]
    world = CountingWorld(build("1"))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.ready_after = draw(st.sampled_from([0.0, 0.0, 3.0, 1000.0]))
    world.gate = draw(ANSWERS)
    released(world, "2", draw(st.sampled_from([0.0, 0.05, 0.3])), build("2"))
    for _ in range(draw(st.integers(0, 40))):
        world.gate = draw(ANSWERS)
        if draw(st.sampled_from([False] * 40 + [True])):
            world.spec = world.spec.model_copy(update={"paused": not world.spec.paused})
        world.tick(seconds=draw(st.sampled_from([0.3, 1.0, 1.0, 2.0, 4.5])), value=draw(READINGS))
    return world, draw(READINGS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.floats(0.0, 1.0, exclude_max=True), st.floats(0.0, 1.0, exclude_max=True))
def test_between_due_times_passes_change_nothing_and_read_nothing(
    drawn: tuple[CountingWorld, Any], early: float, later: float
) -> None:
    world, value = drawn
    t = world.now
    observation = world.observe(value, None, ())
    first = plan(world.spec, world.status, observation, t)
    after = first.requeue_after
    assert after is None or after >= MINIMUM_DELAY
    status = first.status
    event(f"{status.phase}, {'nothing due' if after is None else 'due'}")
    quiet = without_reads(observation)
    window = after if after is not None else 3600.0
    if after is None or after > MINIMUM_DELAY:
        # Early passes (a change elsewhere woke the release): nothing to read, and the
        # same decision whenever they run; a second one writes nothing more.
        moments = sorted(before(t, window, share) for share in (early, later))
        for moment in moments:
            assert nothing_to_read(needs(world.spec, status, moment, SEED)), moment - t
        one = plan(world.spec, status, quiet, moments[0])
        two = plan(world.spec, status, quiet, moments[1])
        assert same(one, two), (one.status.message, two.status.message)
        again = plan(world.spec, one.status, quiet, moments[1])
        assert dump(again.status) == dump(one.status)
        assert again.events == ()
        assert one.workloads == first.workloads
        assert one.routes == first.routes
    if after is None:
        return
    # At the due time something is due: a read, or a different decision.
    due = t + timedelta(seconds=after)
    settled = plan(world.spec, status, quiet, t + timedelta(seconds=min(after, MINIMUM_DELAY) / 2))
    at_due = plan(world.spec, status, quiet, due)
    wanted = needs(world.spec, status, due, SEED)
    assert not nothing_to_read(wanted) or not same(settled, at_due), status.message


# --- each due source ------------------------------------------------------------------------


def test_earliest_ignores_none_and_never_gives_zero_or_less() -> None:
    assert earliest(T0, [None, None]) is None
    assert earliest(T0, [T0 + timedelta(seconds=5), None, T0 + timedelta(seconds=3)]) == 3.0
    assert earliest(T0, [T0]) == MINIMUM_DELAY
    assert earliest(T0, [T0 - timedelta(hours=1)]) == MINIMUM_DELAY


def step_started(spec: ModelReleaseSpec) -> tuple[CountingWorld, Decision]:
    """A world whose last pass started the first canary step; that pass's decision."""
    world = CountingWorld(spec)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.spec = spec.model_copy(update={"model": spec.model.model_copy(update={"version": "2"})})
    world.run_until(lambda w: w.status.current_stage and w.status.current_stage.step_start_time)
    return world, world.decisions[-1]


def test_a_checked_step_is_due_at_its_next_slo_check() -> None:
    _, decision = step_started(make_spec(stages=[CANARY]))
    assert decision.requeue_after == 2.0  # analysis.interval


def test_without_slos_the_step_is_due_when_it_ends_and_says_when() -> None:
    world, decision = step_started(make_spec(stages=[CANARY], analysis=None))
    assert decision.requeue_after == 6.0
    assert world.status.message is not None
    assert "the step lasts 6s, until 2026-01-01T00:" in world.status.message
    held = world.status.message
    assert world.tick(seconds=4.5).requeue_after == 5.0  # a second after the step started
    assert world.status.message == held  # no running clock
    decision = world.tick()
    assert world.status.message == held
    assert decision.requeue_after == 0.5  # what is left of the step
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 50, limit=3)


def test_a_step_that_ran_out_before_its_check_writes_nothing_until_the_check() -> None:
    """The step (6s) ends before the SLO check (every 30s) can pass it: the message said
    from the start that it waits for the check, so the step's end changes no status."""
    analysis = make_spec().analysis
    assert analysis is not None
    slow_checks = analysis.model_copy(update={"interval": "30s"})
    world, _ = step_started(make_spec(stages=[CANARY], analysis=slow_checks))
    held = dump(world.status)
    assert "the step lasts 6s, until " in str(world.status.message)
    assert "and then until every SLO passes" in str(world.status.message)
    for _ in range(12):  # 0.5 s apart: past the step's end, before the check
        world.tick(seconds=0.5)
        assert dump(world.status) == held


def test_champion_challenger_is_due_at_warmup_then_each_read_and_at_max_duration() -> None:
    spec = make_spec(stages=[CHAMPION_CHALLENGER], analysis=NO_SLOS)
    world, decision = step_started(spec)
    assert decision.requeue_after == 10.0  # warmup: the baseline
    world.now += timedelta(seconds=10)
    decision = world.tick()
    assert world.status.comparison[0].champion_series is not None
    assert decision.requeue_after == 7.0  # analysis.interval
    stage = world.status.current_stage
    assert stage is not None
    assert stage.step_start_time is not None
    # Just before maxDuration, the end comes before the next read.
    world.now = stage.step_start_time + timedelta(seconds=38)
    world.tick()
    world.now = stage.step_start_time + timedelta(seconds=39)
    assert world.tick().requeue_after == 1.0


def webhook_started(answer: CallResult) -> tuple[CountingWorld, Decision]:
    spec = make_spec(stages=[WEBHOOK, SHORT_CANARY])
    world = CountingWorld(spec)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.gate = answer
    released(world, "2", 0.0, make_spec("2", stages=[WEBHOOK, SHORT_CANARY]))
    world.run_until(lambda w: w.gate_calls == 1, limit=5)
    return world, world.decisions[-1]


def test_a_webhook_still_evaluating_is_due_at_its_interval() -> None:
    world, decision = webhook_started(CallResult(CallOutcome.PENDING, 202))
    assert decision.requeue_after == 3.0
    called = world.status.message
    assert called is not None
    assert "next call at 2026-01-01T00:" in called
    world.gate = None
    world.tick()  # a pass between calls says the same
    assert world.status.message == called


def test_a_failing_webhook_is_due_after_its_backoff() -> None:
    world, decision = webhook_started(CallResult(CallOutcome.FAILED, 500))
    stage = world.status.current_stage
    assert stage is not None
    progress = GateProgress(stage.gate_attempts, stage.gate_consecutive_failures)
    delay = delay_before_next_call(
        progress, GateLimits.of(WebhookStage(**WEBHOOK["webhook"])), SEED
    )
    assert 1.5 <= delay <= 3.0  # the first failure: interval, jittered
    assert decision.requeue_after == pytest.approx(delay, abs=1e-6)  # whole microseconds


def test_approval_waits_on_nothing_but_a_person() -> None:
    world, _ = step_started(make_spec(stages=[SHORT_CANARY, APPROVAL], analysis=None))
    world.now += timedelta(seconds=4)
    passed = world.tick()
    assert world.status.current_stage is not None
    assert world.status.current_stage.name == "approval-1"
    assert passed.requeue_after == MINIMUM_DELAY  # the next stage starts in the next pass
    waiting = world.tick()
    assert world.status.message is not None
    assert "waiting for a person" in world.status.message
    assert waiting.requeue_after is None
    approved = world.tick(action=Action.APPROVE)
    # The promotion waits for the challenger's pods, within progressDeadline (20m).
    assert approved.requeue_after == 1200.0


def test_waiting_for_ready_pods_is_due_only_at_the_progress_deadline() -> None:
    world = CountingWorld(make_spec(stages=[CANARY], progressDeadline="30s"))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.ready_after = 1000.0
    world.spec = make_spec("2", stages=[CANARY], progressDeadline="30s")
    assert world.tick(seconds=10).requeue_after == 30.0
    assert world.tick().requeue_after == 20.0
    world.now += timedelta(seconds=19)
    assert world.tick().status.phase is Phase.ROLLED_BACK


def test_paused_and_finished_releases_are_due_never() -> None:
    world, _ = step_started(make_spec(stages=[CANARY]))
    assert world.tick(action=Action.PAUSE).requeue_after is None
    world.tick(action=Action.RESUME)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED, value=0.0)
    assert world.tick().requeue_after is None


def test_a_problem_holds_everything_but_the_progress_deadline() -> None:
    world, _ = step_started(make_spec(stages=[CANARY]))
    held = (Problem(Reason.TEMPLATE_NOT_FOUND, "ClusterSLOTemplate x is missing"),)
    assert world.tick(problems=held).requeue_after is None
    world.ready_after = 1000.0
    world.spec = make_spec("3", stages=[CANARY], progressDeadline="30s")
    world.tick()
    assert world.tick(problems=held).requeue_after == 29.0


def test_an_outage_is_due_at_each_read_and_on_error_after_and_says_since_when() -> None:
    world, _ = step_started(checked_spec(on_error={"action": "rollback", "after": "5s"}))
    decision = world.tick(seconds=2.0, value=DOWN)
    while not world.status.checks:
        decision = world.tick(seconds=2.0, value=DOWN)
    assert decision.requeue_after == 2.0  # the next read
    message = world.status.message
    assert message is not None
    assert "could not be read since 2026-01-01T00:" in message
    assert " ago" not in message
    world.tick(seconds=1.0, value=DOWN)
    world.now += timedelta(seconds=1)
    decision = world.tick(seconds=0.0, value=DOWN)  # 4 s into the outage, 1 s before after
    assert decision.requeue_after == 1.0
    world.now += timedelta(seconds=1)
    assert world.tick(value=DOWN).status.phase is Phase.ROLLED_BACK


def test_an_unschedulable_pod_is_due_when_its_grace_ends() -> None:
    world = CountingWorld(make_spec(stages=[APPROVAL], analysis=None))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.spec = make_spec("2", stages=[APPROVAL], analysis=None)
    world.run_until(lambda w: w.status.current_stage and w.status.current_stage.stage_start_time)
    challenger = world.status.challenger.revision if world.status.challenger else None
    assert challenger is not None
    refused = PodState(
        name="chat-x",
        revision=challenger,
        unschedulable_since=world.now - timedelta(seconds=10),
        scheduler_message="0/3 nodes are available",
    )
    observation = replace(world.observe(0.0, None, ()), pods=(refused,))
    assert plan(world.spec, world.status, observation, world.now).requeue_after == 20.0
    later = plan(world.spec, world.status, observation, world.now + timedelta(seconds=20))
    assert later.status.phase is Phase.ROLLED_BACK


def test_a_comparison_read_that_failed_is_retried_an_interval_later_not_on_every_pass() -> None:
    spec = make_spec(stages=[CHAMPION_CHALLENGER], analysis=NO_SLOS)
    world, _ = step_started(spec)
    world.now += timedelta(seconds=10)  # warmup: the baseline is due
    assert needs(world.spec, world.status, world.now, SEED).comparison
    failed = {"errors": MetricReading(error="Prometheus answered HTTP 503")}
    observation = replace(world.observe(0.0, None, ()), comparison=failed)
    decision = plan(world.spec, world.status, observation, world.now)
    assert decision.status.comparison[0].error_since == world.now
    assert decision.requeue_after == 7.0
    for seconds in (0.1, 3.0, 6.9):
        early = world.now + timedelta(seconds=seconds)
        assert not needs(world.spec, decision.status, early, SEED).comparison
    assert needs(world.spec, decision.status, world.now + timedelta(seconds=7), SEED).comparison
