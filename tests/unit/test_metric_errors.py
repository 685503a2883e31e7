"""I3, errors are never passes: failed metric reads hold the release, onError decides.

Driven through plan() with the in-memory worlds of test_plan and test_comparison.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrelease.analysis.checks import OutagePolicy
from modelrelease.api.constants import (
    Action,
    ConditionStatus,
    ConditionType,
    OnErrorAction,
    Outcome,
    Phase,
    Reason,
    Verdict,
)
from modelrelease.api.models import (
    AnalysisSpec,
    CheckStatus,
    ModelReleaseSpec,
    ModelReleaseStatus,
)
from modelrelease.core.comparison import MetricReading
from modelrelease.core.conditions import find
from modelrelease.core.observation import Observation, Problem
from modelrelease.core.slos import outage_policy

from tests.unit.test_comparison import ERRORS_METRIC, CountingWorld, released
from tests.unit.test_plan import DOWN, ERRORS, T0, Reading, World, make_spec

GOOD, BAD = 0.0, 0.2
HTTP_503 = "Prometheus at http://prometheus:9090 answered HTTP 503 to 'sum(...)': overloaded"


def spec(
    version: str = "1",
    no_data: str = "fail",
    on_error: dict[str, str] | None = None,
    steps: tuple[tuple[int, str], ...] = ((10, "20s"), (50, "20s")),
    stages: list[dict[str, Any]] | None = None,
) -> ModelReleaseSpec:
    analysis: dict[str, Any] = {
        "prometheus": {"address": "http://prometheus:9090"},
        "interval": "2s",
        "maxInconclusive": 3,
        "slos": [
            {
                "name": ERRORS,
                "query": "errors{revision='{{revision}}'}",
                "max": 0.01,
                "failureLimit": 1,
                "noData": no_data,
            }
        ],
    }
    if on_error is not None:
        analysis["onError"] = on_error
    canary = {"canary": {"steps": [{"weight": w, "duration": d} for w, d in steps]}}
    return make_spec(version, analysis=analysis, stages=stages or [canary])


def releasing(world: World) -> World:
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    return world


def check(world: World) -> CheckStatus:
    (only,) = world.status.checks
    return only


def condition(world: World, type_: ConditionType) -> Any:
    found = find(world.status.conditions, type_)
    assert found is not None
    return found


def advanced(world: World) -> bool:
    """Whether the last pass moved the release on (a step, a stage or a promotion)."""
    moves = {Reason.STEP_ADVANCED, Reason.STAGE_COMPLETED, Reason.PROMOTING, Reason.PROMOTED}
    return any(event.reason in moves for event in world.decisions[-1].events)


def fail_until_rolled_back(world: World, limit: int) -> float:
    """Failed reads until the rollback; how long after the first failed read it came."""
    world.run_until(lambda w: w.status.checks and check(w).verdict is Verdict.ERROR, value=DOWN)
    since = check(world).error_since
    assert since is not None
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=DOWN, limit=limit)
    rolled_back_at = world.now - timedelta(seconds=1)  # tick() moved the clock on
    return (rolled_back_at - since).total_seconds()


# --- SLO checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("after", "seconds"), [(None, 300.0), ("30s", 30.0), ("1m30s", 90.0)])
def test_no_data_pass_and_prometheus_down_holds_then_rolls_back_at_after(
    after: str | None, seconds: float
) -> None:
    on_error = {"after": after} if after else None
    world = releasing(World(spec(no_data="pass", on_error=on_error)))
    failed_for = fail_until_rolled_back(world, limit=int(seconds) + 10)
    assert failed_for == seconds  # not a second early, not a pass late
    assert all(routes.canary_weight in (0, 10) for routes in world.route_history)
    entry = world.status.history[-1]
    assert (entry.outcome, entry.reason) == (Outcome.ROLLED_BACK, Reason.METRICS_UNAVAILABLE)
    assert f"SLO {ERRORS} could not be read for" in entry.message
    assert "could not reach Prometheus" in entry.message
    assert world.routes is not None
    assert (world.routes.stable_weight, world.routes.canary_weight) == (100, 0)
    assert condition(world, ConditionType.DEGRADED).reason == Reason.METRICS_UNAVAILABLE


@pytest.mark.parametrize("no_data", ["pass", "fail"])
def test_while_reads_fail_the_release_holds_and_says_why(no_data: str) -> None:
    world = releasing(World(spec(no_data=no_data)))
    for _ in range(120):  # two minutes: past maxInconclusive, short of onError.after
        world.tick(value=DOWN)
        assert not advanced(world)
        assert world.routes is not None
        assert world.routes.canary_weight == 10
        assert world.status.phase is Phase.PROGRESSING
    assert check(world).verdict is Verdict.ERROR
    assert check(world).consecutive_inconclusive == 0  # errors are not "no data"
    degraded = condition(world, ConditionType.DEGRADED)
    assert (degraded.status, degraded.reason) == (ConditionStatus.TRUE, Reason.METRICS_UNAVAILABLE)
    since = check(world).error_since
    assert since is not None
    for text in (
        f"SLO {ERRORS} could not be read since {since:%Y-%m-%dT%H:%M:%SZ}",
        "could not reach Prometheus",
        "onError is rollback after 5m",
        f"rolled back at {since + timedelta(minutes=5):%Y-%m-%dT%H:%M:%SZ}",
    ):
        assert text in degraded.message
    progressing = condition(world, ConditionType.PROGRESSING)
    assert (progressing.status, progressing.reason) == (
        ConditionStatus.TRUE,
        Reason.METRICS_UNAVAILABLE,
    )
    assert "holding" in progressing.message


def test_a_60s_outage_then_recovery_continues_the_step() -> None:
    world = releasing(World(spec()))
    started = world.now
    for _ in range(5):
        world.tick(value=GOOD)
    for _ in range(60):
        world.tick(value=DOWN)
        assert world.routes is not None
        assert world.routes.canary_weight == 10
    assert condition(world, ConditionType.DEGRADED).reason == Reason.METRICS_UNAVAILABLE
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 50, value=GOOD)
    # The step lasts its 20 s of checked traffic: the minute without reads does not count.
    at_ten = (world.now - started).total_seconds()
    assert 20 + 60 <= at_ten <= 20 + 60 + 4
    assert condition(world, ConditionType.DEGRADED).status is ConditionStatus.FALSE
    assert check(world).error_since is None
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED, value=GOOD)
    assert world.status.history[-1].outcome is Outcome.PROMOTED


def test_the_degraded_condition_clears_when_the_step_ends_on_the_recovering_read() -> None:
    stages = [{"canary": {"steps": [{"weight": 10, "duration": "4s"}]}}, {"approval": {}}]
    world = releasing(World(spec(stages=stages)))
    for _ in range(10):
        world.tick(value=DOWN)
    world.run_until(
        lambda w: w.status.current_stage is not None and w.status.current_stage.index == 1,
        value=GOOD,
    )
    world.tick()
    assert condition(world, ConditionType.DEGRADED).status is ConditionStatus.FALSE
    assert condition(world, ConditionType.PROGRESSING).reason == Reason.WAITING_FOR_APPROVAL


def test_action_hold_keeps_holding_past_after_until_a_read_succeeds() -> None:
    world = releasing(World(spec(on_error={"action": "hold", "after": "20s"})))
    for _ in range(200):
        world.tick(value=DOWN)
        assert not advanced(world)
        assert world.status.phase is Phase.PROGRESSING
        assert world.routes is not None
        assert world.routes.canary_weight == 10
    degraded = condition(world, ConditionType.DEGRADED)
    assert degraded.reason == Reason.METRICS_UNAVAILABLE
    assert "has lasted longer than onError.after 20s" in degraded.message
    assert "onError is hold" in degraded.message
    assert "kubectl modelrelease abort|promote chat -n llm" in degraded.message
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED, value=GOOD)
    assert world.status.history[-1].outcome is Outcome.PROMOTED


def test_one_successful_read_starts_the_outage_clock_again() -> None:
    world = releasing(World(spec(on_error={"after": "30s"})))
    for _ in range(20):
        world.tick(value=DOWN)
    world.run_until(lambda w: check(w).verdict is not Verdict.ERROR, value=GOOD)
    assert check(world).error_since is None
    failed_for = fail_until_rolled_back(world, limit=40)
    assert failed_for == 30  # counted from the first failure after the good read


def test_an_empty_result_is_an_answer_and_no_data_still_decides_it() -> None:
    world = releasing(World(spec(no_data="fail", on_error={"action": "hold", "after": "10s"})))
    for _ in range(20):
        world.tick(value=DOWN)
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=None)
    assert world.status.history[-1].reason == Reason.SLO_INCONCLUSIVE


def test_a_real_failure_rolls_back_even_while_another_read_fails() -> None:
    world = releasing(World(spec()))
    world.tick(value=DOWN)
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=BAD)
    assert world.status.history[-1].reason == Reason.SLO_FAILED


def test_the_outage_clock_survives_an_operator_restart() -> None:
    world = releasing(World(spec(on_error={"after": "30s"})))
    for _ in range(11):
        world.tick(value=DOWN)
    written = world.status.model_dump(mode="json", exclude_none=True)
    assert written["checks"][0]["errorSince"].endswith("Z")
    assert "metricsUnavailableSince" in written["currentStage"]
    restarted = World(world.spec)
    restarted.status = ModelReleaseStatus.model_validate(written)
    restarted.now, restarted.deployments, restarted.routes = (
        world.now,
        world.deployments,
        world.routes,
    )
    since = check(restarted).error_since
    assert since is not None
    restarted.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=DOWN, limit=40)
    assert (restarted.now - timedelta(seconds=1) - since).total_seconds() == 30


def test_outage_timestamps_keep_sub_second_precision_through_status() -> None:
    since = T0 + timedelta(seconds=12, microseconds=250_000)
    status = CheckStatus(name="e", verdict=Verdict.ERROR, error_since=since)
    written = status.model_dump(mode="json", exclude_none=True)
    assert written["errorSince"] == "2026-01-01T00:00:12.250000Z"
    assert CheckStatus.model_validate(written).error_since == since


# --- comparisons ---------------------------------------------------------------------------------


class FlakyCountingWorld(CountingWorld):
    """Counting world whose comparison reads fail while ``comparison_down``."""

    comparison_down = False

    def observe(
        self, value: Reading, action: Action | None, problems: tuple[Problem, ...]
    ) -> Observation:
        observation = super().observe(value, action, problems)
        if not self.comparison_down or observation.comparison is None:
            return observation
        failed = {name: MetricReading(error=HTTP_503) for name in observation.comparison}
        return replace(observation, comparison=failed)


def started(world: World) -> None:
    world.run_until(
        lambda w: (
            w.status.current_stage is not None
            and w.status.current_stage.step_start_time is not None
        )
    )


def cc(version: str, on_error: dict[str, str] | None = None, **stage: Any) -> ModelReleaseSpec:
    body = {"weight": 50, "maxDuration": "20s", "metrics": [ERRORS_METRIC], **stage}
    return spec(version, on_error=on_error, stages=[{"championChallenger": body}])


def test_a_comparison_outage_never_promotes_not_even_through_on_inconclusive_promote() -> None:
    world = FlakyCountingWorld(cc("1"))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    hold = {"action": "hold", "after": "10s"}
    released(world, "2", 0.05, cc("2", on_error=hold, onInconclusive="promote"))
    started(world)
    world.comparison_down = True
    for _ in range(90):  # far past maxDuration 20s and onError.after 10s
        world.tick()
        assert not advanced(world)
        assert world.status.challenger is not None
    (record,) = world.status.comparison
    assert record.verdict is Verdict.ERROR
    assert record.error_since is not None
    degraded = condition(world, ConditionType.DEGRADED)
    assert degraded.reason == Reason.METRICS_UNAVAILABLE
    assert "comparison metric errors could not be read" in degraded.message
    assert "HTTP 503" in degraded.message
    world.comparison_down = False
    recovered = world.now
    world.run_until(lambda w: w.status.challenger is None, limit=60)
    # The outage did not count toward maxDuration 20s: the reads began after the 10 s
    # warm-up and failed from the first, so 10 s of the stage's clock remained.
    assert (world.now - recovered).total_seconds() >= 10
    assert world.status.history[-1].outcome is Outcome.PROMOTED


def test_a_comparison_outage_longer_than_after_rolls_back() -> None:
    world = FlakyCountingWorld(cc("1"))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    released(world, "2", 0.01, cc("2", on_error={"after": "30s"}))
    started(world)
    world.comparison_down = True
    world.run_until(lambda w: w.status.challenger is None, limit=80)
    entry = world.status.history[-1]
    assert (entry.outcome, entry.reason) == (Outcome.ROLLED_BACK, Reason.METRICS_UNAVAILABLE)
    assert "comparison metric errors could not be read for 30s" in entry.message


def test_a_shadow_comparison_outage_holds_the_shadow_stage() -> None:
    shadow = [{"shadow": {"duration": "10s", "comparison": {"metrics": [ERRORS_METRIC]}}}]
    world = FlakyCountingWorld(spec("1", stages=shadow))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    spec_2 = spec("2", stages=shadow, on_error={"action": "hold", "after": "5s"})
    released(world, "2", 0.05, spec_2)
    started(world)
    world.comparison_down = True
    for _ in range(60):  # the shadow stage would have ended after 10 s
        world.tick()
        assert world.status.challenger is not None
        assert not advanced(world)
    world.comparison_down = False
    world.run_until(lambda w: w.status.challenger is None, limit=40)
    assert world.status.history[-1].outcome is Outcome.PROMOTED


# --- the property --------------------------------------------------------------------------------

READINGS = st.sampled_from([GOOD, GOOD, BAD, None, DOWN, DOWN])
POLICIES = st.sampled_from(
    [
        {"action": "rollback", "after": "5s"},
        {"action": "rollback", "after": "40s"},
        {"action": "hold", "after": "5s"},
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(READINGS, st.integers(1, 6)), min_size=1, max_size=25),
    st.sampled_from(["pass", "fail"]),
    POLICIES,
)
def test_no_pass_on_an_error_whatever_the_sequence(
    runs: list[tuple[Reading, int]], no_data: str, on_error: dict[str, str]
) -> None:
    """For any sequence of values, empty results and failed reads: no pass that ends
    with an SLO in error moves the release on, and no error ever promotes."""
    steps = ((10, "4s"), (30, "4s"), (60, "4s"))
    world = releasing(World(spec(no_data=no_data, on_error=on_error, steps=steps)))
    challenger = world.status.challenger.revision if world.status.challenger else None
    for reading, seconds in runs:
        for _ in range(seconds):
            before = world.routes.canary_weight if world.routes else 0
            world.tick(value=reading)
            erroring = any(c.verdict is Verdict.ERROR for c in world.status.checks)
            if world.status.challenger is not None and erroring:
                assert not advanced(world)
                assert world.routes is not None
                assert world.routes.canary_weight <= before
            if world.status.challenger is None:
                return
    ended = [entry for entry in world.status.history if entry.revision == challenger]
    if ended and ended[-1].outcome is Outcome.PROMOTED:
        assert all(c.verdict is not Verdict.ERROR for c in world.status.checks)


# --- the API -------------------------------------------------------------------------------------


def test_on_error_defaults_to_rolling_back_after_five_minutes_and_is_camel_case() -> None:
    analysis = AnalysisSpec.model_validate({"prometheus": {"address": "http://p:9090"}})
    assert (analysis.on_error.action, analysis.on_error.after) == (OnErrorAction.ROLLBACK, "5m")
    assert outage_policy(analysis) == OutagePolicy(OnErrorAction.ROLLBACK, 300.0)
    held = AnalysisSpec.model_validate(
        {"prometheus": {"address": "http://p:9090"}, "onError": {"action": "hold", "after": "90s"}}
    )
    assert outage_policy(held) == OutagePolicy(OnErrorAction.HOLD, 90.0)
    assert held.model_dump(mode="json")["onError"] == {"action": "hold", "after": "90s"}
