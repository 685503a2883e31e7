"""The pure lifecycle: plan() driven through a small in-memory world and a fake clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from modelrelease.analysis.checks import Measurement
from modelrelease.api.constants import (
    Action,
    CapacityMode,
    ConditionStatus,
    ConditionType,
    NoDataPolicy,
    Outcome,
    Phase,
    Reason,
    Verdict,
)
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus
from modelrelease.core.conditions import find
from modelrelease.core.decision import Decision
from modelrelease.core.manifests import Owner
from modelrelease.core.observation import DeploymentState, Observation, Problem, SLOResult
from modelrelease.core.plan import plan
from modelrelease.core.revision import revision_of
from modelrelease.core.slos import checks_due, resolve_slos
from modelrelease.metrics.templating import QueryContext
from modelrelease.routers.router import Routes

OWNER = Owner(name="chat", namespace="llm", uid="uid-1")
DOWN = Measurement.error("could not reach Prometheus at http://prometheus:9090: ConnectError")
Reading = float | Measurement | None
"""What the SLO query answers in a tick: a value, no data (None), or a failed read."""
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ERRORS = "error-ratio"


def make_spec(version: str = "1", **overrides: Any) -> ModelReleaseSpec:
    raw: dict[str, Any] = {
        "model": {"name": "chat-8b", "version": version},
        "replicas": 4,
        "template": {"spec": {"containers": [{"name": "server", "image": "vllm:1"}]}},
        "traffic": {"gatewayAPI": {"httpRoute": "chat"}},
        "analysis": {
            "prometheus": {"address": "http://prometheus:9090"},
            "interval": "2s",
            "maxInconclusive": 3,
            "slos": [
                {
                    "name": ERRORS,
                    "query": "errors{revision='{{revision}}'}",
                    "max": 0.01,
                    "failureLimit": 1,
                }
            ],
        },
        "stages": [
            {
                "canary": {
                    "steps": [{"weight": 10, "duration": "6s"}, {"weight": 50, "duration": "6s"}]
                }
            }
        ],
        "capacity": {"mode": "surge"},
    }
    raw.update(overrides)
    return ModelReleaseSpec.model_validate(raw)


class World:
    """A cluster where Deployments become ready after ``ready_after`` seconds."""

    def __init__(self, spec: ModelReleaseSpec, ready_after: float = 0.0):
        self.spec = spec
        self.status = ModelReleaseStatus()
        self.now = T0
        self.ready_after = ready_after
        self.deployments: dict[str, DeploymentState] = {}
        self.scaled_at: dict[str, datetime] = {}
        self.routes: Routes | None = Routes(100, 0, 0)
        self.route_history: list[Routes] = []
        self.decisions: list[Decision] = []
        self.requests: float | None = None  # what the SLO's requests query answers

    def resolved(self) -> tuple[Any, ...]:
        challenger = self.status.challenger.revision if self.status.challenger else None
        champion = self.status.champion.revision if self.status.champion else None
        target = revision_of(self.spec.model, self.spec.template)
        context = QueryContext(
            "llm", "chat", challenger or target, champion or target, challenger or target, "2s"
        )
        slos, problems = resolve_slos(self.spec.analysis, {}, context)
        assert not problems
        return tuple(slos)

    def observe(
        self, value: Reading, action: Action | None, problems: tuple[Problem, ...]
    ) -> Observation:
        self._settle()
        due = checks_due(self.spec.analysis, self.status, self.now)
        results = None
        if due:
            measurement = (
                value
                if isinstance(value, Measurement)
                else Measurement(value)
                if value is not None
                else Measurement.no_data("no data: the query returned no series")
            )
            results = {ERRORS: SLOResult(measurement, requests=self.requests)}
        return Observation(
            owner=OWNER,
            generation=1,
            deployments=dict(self.deployments),
            routes=self.routes,
            problems=problems,
            slo_results=results,
            action=action,
            slos=self.resolved(),
        )

    def tick(
        self,
        seconds: float = 1.0,
        value: Reading = 0.0,
        action: Action | None = None,
        problems: tuple[Problem, ...] = (),
    ) -> Decision:
        observation = self.observe(value, action, problems)
        decision = plan(self.spec, self.status, observation, self.now)
        self.apply(decision)
        self.now += timedelta(seconds=seconds)
        return decision

    def apply(self, decision: Decision) -> None:
        self.decisions.append(decision)
        # Round-trip through JSON, as the API server would.
        self.status = ModelReleaseStatus.model_validate(
            decision.status.model_dump(mode="json", exclude_none=True)
        )
        if decision.workloads is not None:
            for revision, replicas in decision.workloads.replicas.items():
                old = self.deployments.get(revision)
                if old is None:
                    assert revision == decision.workloads.apply_revision
                    old = DeploymentState(
                        f"chat-{revision}", revision, 0, 0, 0, self.now, None, self.spec.model
                    )
                if old.replicas != replicas:
                    self.scaled_at[revision] = self.now
                    keep_ready = min(old.ready_replicas, replicas)
                    old = replace(
                        old,
                        replicas=replicas,
                        ready_replicas=keep_ready,
                        updated_replicas=keep_ready,
                    )
                self.deployments[revision] = old
            for revision in decision.workloads.delete:
                self.deployments.pop(revision, None)
        if decision.routes is not None:
            self.routes = decision.routes
            self.route_history.append(decision.routes)

    def _settle(self) -> None:
        for revision, state in self.deployments.items():
            since = self.scaled_at.get(revision, T0)
            if (self.now - since).total_seconds() >= self.ready_after:
                self.deployments[revision] = replace(
                    state, ready_replicas=state.replicas, updated_replicas=state.replicas
                )

    def run_until(self, predicate: Any, limit: int = 200, **tick: Any) -> None:
        for _ in range(limit):
            if predicate(self):
                return
            self.tick(**tick)
        raise AssertionError(f"not reached in {limit} ticks; status: {self.status}")

    def release(self, version: str) -> str:
        self.spec = make_spec(version, **_extra(self.spec))
        self.tick()
        return revision_of(self.spec.model, self.spec.template)


def _extra(spec: ModelReleaseSpec) -> dict[str, Any]:
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    dumped.pop("model")
    return dumped


def settled(spec: ModelReleaseSpec | None = None, **kwargs: Any) -> World:
    world = World(spec or make_spec(), **kwargs)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    return world


def canary_weights(world: World) -> list[int]:
    weights: list[int] = []
    for routes in world.route_history:
        if not weights or weights[-1] != routes.canary_weight:
            weights.append(routes.canary_weight)
    return weights


# --- first revision ------------------------------------------------------------------------------


def test_first_revision_becomes_champion_directly() -> None:
    world = World(make_spec(), ready_after=3)
    decision = world.tick()
    revision = revision_of(world.spec.model, world.spec.template)
    assert decision.workloads is not None
    assert decision.workloads.replicas == {revision: 4}
    assert decision.workloads.apply_revision == revision
    assert decision.workloads.stable_revision == revision
    assert decision.routes == Routes(100, 0, 0)
    assert world.status.phase is Phase.PENDING
    assert world.status.champion is not None
    assert world.status.champion.revision == revision
    assert [e.reason for e in decision.events] == [Reason.INITIAL_REVISION]
    assert world.status.history[-1].outcome is Outcome.PROMOTED
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    available = find(world.status.conditions, ConditionType.AVAILABLE)
    assert available is not None
    assert available.status is ConditionStatus.TRUE
    assert world.status.observed_generation == 1


# --- promotion -----------------------------------------------------------------------------------


def test_healthy_challenger_walks_the_steps_and_is_promoted() -> None:
    world = settled()
    old = world.status.champion.revision if world.status.champion else None
    new = world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED, value=0.0)
    assert world.status.champion is not None
    assert world.status.champion.revision == new
    assert world.status.challenger is None
    assert canary_weights(world) == [0, 10, 50, 100, 0]
    assert world.routes == Routes(100, 0, 0)
    last = world.decisions[-1]
    assert last.workloads is not None
    assert last.workloads.stable_revision == new
    assert last.workloads.replicas == {new: 4, str(old): 0}  # old champion kept at zero
    assert world.status.history[-1].outcome is Outcome.PROMOTED
    assert world.status.history[-1].model_version == "2"
    reasons = [e.reason for d in world.decisions for e in d.events]
    assert reasons.count(Reason.STEP_ADVANCED) == 2
    assert Reason.PROMOTED in reasons


def test_step_lasts_its_duration_and_needs_a_check_at_its_weight() -> None:
    world = settled()
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    started = world.now
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 50)
    took = (world.now - started).total_seconds()
    assert 6 <= took <= 8  # duration 6s, checks every 2s


def test_clock_starts_only_when_the_challenger_is_ready() -> None:
    world = settled(ready_after=20)
    world.release("2")
    world.tick()
    for _ in range(15):
        world.tick()
        assert world.routes == Routes(100, 0, 0)
        stage = world.status.current_stage
        assert stage is not None
        assert stage.step_start_time is None
        waiting = find(world.status.conditions, ConditionType.PROGRESSING)
        assert waiting is not None
        assert waiting.reason == Reason.WAITING_FOR_CHALLENGER
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)


# --- rollback ------------------------------------------------------------------------------------


def test_failing_slo_rolls_back_after_failure_limit_plus_one_checks() -> None:
    world = settled()
    champion = world.status.champion.revision if world.status.champion else None
    bad = world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    first_bad = world.now
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=0.2)
    # failureLimit 1: two failed checks, one interval (2 s) apart, the first after 2 s.
    assert (world.now - first_bad).total_seconds() <= 2 * (1 + 1) + 1
    assert world.routes == Routes(100, 0, 0)
    decision = world.decisions[-1]
    assert decision.workloads is not None
    assert decision.workloads.replicas[str(champion)] == 4
    assert bad in decision.workloads.delete
    assert world.status.rejected_revision == bad
    entry = world.status.history[-1]
    assert (entry.outcome, entry.reason, entry.model_version) == (
        Outcome.ROLLED_BACK,
        Reason.SLO_FAILED,
        "2",
    )
    warnings = [e for e in decision.events if e.type == "Warning"]
    assert warnings
    assert warnings[0].reason is Reason.ROLLED_BACK
    check = world.status.checks[0]
    assert check.verdict is Verdict.FAIL
    assert check.consecutive_failures == 2
    degraded = find(world.status.conditions, ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == Reason.SLO_FAILED


def test_rolled_back_revision_is_not_retried_until_asked() -> None:
    world = settled()
    bad = world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=0.2)
    for _ in range(10):
        world.tick(value=0.0)
        assert world.status.challenger is None
        assert world.routes == Routes(100, 0, 0)
        assert world.status.phase is Phase.ROLLED_BACK
    decision = world.tick(action=Action.RETRY)
    assert decision.consume_action
    assert world.status.challenger is not None
    assert world.status.challenger.revision == bad
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED, value=0.0)


def test_a_new_spec_after_a_rollback_starts_a_new_challenger() -> None:
    world = settled()
    world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=0.2)
    fixed = world.release("3")
    world.tick()
    assert world.status.challenger is not None
    assert world.status.challenger.revision == fixed


def test_unreachable_prometheus_never_promotes_and_then_rolls_back() -> None:
    world = settled()
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=DOWN, limit=400)
    assert all(r.canary_weight in (0, 10) for r in world.route_history)
    assert world.status.history[-1].reason == Reason.METRICS_UNAVAILABLE


def test_no_data_policy_pass_lets_the_release_continue() -> None:
    spec = make_spec()
    assert spec.analysis is not None
    spec.analysis.slos[0].no_data = NoDataPolicy.PASS
    world = settled(spec)
    world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED, value=None)


def test_inconclusive_checks_hold_the_step_clock() -> None:
    world = settled()
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    for _ in range(5):
        world.tick(value=None)
    stage = world.status.current_stage
    assert stage is not None
    assert stage.held_seconds >= 4
    assert world.routes == Routes(90, 10, 0)


def test_too_few_requests_extend_the_step_then_the_no_data_policy_decides() -> None:
    slo = {
        "name": ERRORS,
        "query": "errors",
        "requestsQuery": "requests",
        "minRequests": 50,
        "max": 0.01,
    }
    spec = make_spec()
    assert spec.analysis is not None
    analysis = {**_extra(spec)["analysis"], "slos": [slo], "maxInconclusive": 6}
    world = settled(make_spec(analysis=analysis))
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    world.requests = 12
    for _ in range(8):  # well past the step's 6 s: the step waits for traffic
        world.tick(value=0.0)
    assert world.routes == Routes(90, 10, 0)
    check = world.status.checks[0]
    assert check.verdict is Verdict.INCONCLUSIVE
    assert check.requests == 12
    assert "minRequests is 50" in check.message
    world.requests = 80  # traffic arrives: the step goes on
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 50)
    world.requests = 3  # and dries up: after maxInconclusive checks, noData fail rolls back
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK)
    assert world.status.history[-1].reason == Reason.SLO_INCONCLUSIVE


def test_rollback_off_stops_in_failed_and_holds_traffic() -> None:
    world = settled(make_spec(rollback={"automatic": False}))
    world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.FAILED, value=0.2)
    for _ in range(5):
        world.tick(value=0.2)
        assert world.routes == Routes(90, 10, 0)
    world.tick(action=Action.ABORT)
    assert world.routes == Routes(100, 0, 0)
    assert world.status.challenger is None


def test_progress_deadline_rolls_back_a_challenger_that_never_gets_ready() -> None:
    world = settled(make_spec(progressDeadline="30s"))
    world.ready_after = 1000
    world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK)
    assert world.status.history[-1].reason == Reason.PROGRESS_DEADLINE_EXCEEDED
    assert "progressDeadline 30s" in world.status.history[-1].message


# --- supersede, actions, pause -------------------------------------------------------------------


def test_new_revision_mid_canary_aborts_and_restarts_from_the_first_step() -> None:
    world = settled()
    second = world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 50)
    third = world.release("3")
    decision = world.decisions[-1]
    assert decision.routes == Routes(100, 0, 0)
    assert decision.workloads is not None
    assert second in decision.workloads.delete
    assert world.status.challenger is not None
    assert world.status.challenger.revision == third
    stage = world.status.current_stage
    assert stage is not None
    assert stage.step == 0
    assert world.status.history[-1].outcome is Outcome.SUPERSEDED
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    assert world.status.champion is not None
    assert world.status.champion.revision == third


def test_reverting_the_spec_mid_canary_returns_to_the_champion() -> None:
    world = settled()
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    world.release("1")
    world.tick()
    assert world.status.challenger is None
    assert world.routes == Routes(100, 0, 0)
    assert world.status.phase is Phase.SUCCEEDED


def test_promote_action_skips_the_stages() -> None:
    world = settled()
    new = world.release("2")
    world.tick()
    world.tick(action=Action.PROMOTE)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED, limit=10)
    assert world.status.champion is not None
    assert world.status.champion.revision == new


def test_pause_freezes_traffic_and_clock() -> None:
    world = settled()
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    world.tick(action=Action.PAUSE)
    assert world.status.phase is Phase.PAUSED
    for _ in range(30):
        decision = world.tick()
        assert decision.routes in (None, Routes(90, 10, 0))
    world.tick(action=Action.APPROVE)  # refused while paused
    assert world.status.last_action == Action.PAUSE.value
    world.tick(action=Action.RESUME)
    stage = world.status.current_stage
    assert stage is not None
    assert stage.held_seconds >= 30
    assert world.routes == Routes(90, 10, 0)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)


def test_unknown_action_is_consumed_with_a_warning() -> None:
    world = settled()
    observation = replace(world.observe(0.0, None, ()), invalid_action="explode")
    decision = plan(world.spec, world.status, observation, world.now)
    assert decision.consume_action
    assert decision.events[0].type == "Warning"
    assert "explode" in decision.events[0].message


# --- problems ------------------------------------------------------------------------------------


def test_a_problem_moves_no_traffic_and_fixing_it_proceeds() -> None:
    world = settled()
    world.release("2")
    problem = Problem(Reason.ROUTE_NOT_FOUND, "HTTPRoute llm/chat does not exist")
    for _ in range(5):
        decision = world.tick(problems=(problem,))
        assert decision.workloads is None
        assert decision.routes is None
    degraded = find(world.status.conditions, ConditionType.DEGRADED)
    assert degraded is not None
    assert (degraded.status, degraded.reason) == (ConditionStatus.TRUE, Reason.ROUTE_NOT_FOUND)
    assert "does not exist" in degraded.message
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    degraded = find(world.status.conditions, ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.status is ConditionStatus.FALSE


def test_a_problem_on_the_first_revision_creates_nothing() -> None:
    world = World(make_spec())
    decision = world.tick(problems=(Problem(Reason.ROUTE_NOT_FOUND, "missing"),))
    assert decision.workloads is None
    assert decision.routes is None
    assert world.status.phase is Phase.PENDING
    assert world.status.champion is None


# --- restart -------------------------------------------------------------------------------------


def test_a_restarted_operator_continues_from_status() -> None:
    world = settled()
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 50)
    world.tick()
    before = world.status.current_stage
    # A new process: nothing in memory but status and the cluster.
    restarted = World(world.spec)
    restarted.status, restarted.deployments = world.status, dict(world.deployments)
    restarted.routes, restarted.now = world.routes, world.now + timedelta(seconds=1)
    decision = restarted.tick()
    after = restarted.status.current_stage
    assert before is not None
    assert after is not None
    assert (after.index, after.step, after.step_start_time) == (
        before.index,
        before.step,
        before.step_start_time,
    )
    assert decision.routes == Routes(50, 50, 0)
    assert decision.workloads is not None
    assert set(decision.workloads.replicas) == set(world.deployments)


# --- capacity and history ------------------------------------------------------------------------


def test_conserve_mode_keeps_total_within_surge() -> None:
    spec = make_spec(capacity={"mode": "conserve", "maxSurge": 1})
    world = settled(spec)
    world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    for decision in world.decisions:
        if decision.workloads is not None:
            assert sum(decision.workloads.replicas.values()) <= 4 + 1
    assert spec.capacity.mode is CapacityMode.CONSERVE


def test_old_champions_beyond_the_history_limit_are_deleted() -> None:
    world = settled(make_spec(revisionHistoryLimit=1))
    first = world.status.champion.revision if world.status.champion else ""
    second = world.release("2")
    world.run_until(
        lambda w: (
            w.status.phase is Phase.SUCCEEDED
            and w.status.champion is not None
            and w.status.champion.revision == second
        )
    )
    world.release("3")
    world.run_until(
        lambda w: (
            w.status.phase is Phase.SUCCEEDED
            and w.status.champion is not None
            and w.status.champion.revision != second
        )
    )
    world.tick()
    assert first not in world.deployments
    assert world.deployments[second].replicas == 0


# --- properties ----------------------------------------------------------------------------------

EVENTS = st.sampled_from(["good", "bad", "none", "new", "wait"])


@settings(max_examples=60, deadline=None)
@given(st.lists(EVENTS, min_size=1, max_size=60))
def test_invariants_hold_whatever_happens(events: list[str]) -> None:
    world = settled(make_spec(capacity={"mode": "conserve", "maxSurge": 1}))
    version = 1
    allowed = {0, 10, 50, 100}
    for event in events:
        if event == "new":
            version += 1
            world.release(str(version))
            continue
        value = {"good": 0.0, "bad": 0.2, "none": None, "wait": 0.0}[event]
        decision = world.tick(value=value)
        if decision.routes is not None:
            routes = decision.routes
            assert routes.stable_weight + routes.canary_weight == 100
            assert routes.canary_weight in allowed
        if decision.workloads is not None:
            assert sum(decision.workloads.replicas.values()) <= 5
        if world.status.phase is Phase.ROLLED_BACK:
            assert world.routes == Routes(100, 0, 0)
        # Promotion needs a passing latest check.
        if any(e.reason is Reason.PROMOTED for e in decision.events):
            assert world.status.checks
            assert world.status.checks[0].verdict is Verdict.PASS
