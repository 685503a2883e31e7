"""Champion-challenger and shadow comparisons, and the webhook stage, through plan()."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any

from modelrelease.analysis.sequential import SequentialRatioTest
from modelrelease.api.constants import (
    Action,
    ConditionType,
    MetricKind,
    Outcome,
    Phase,
    Reason,
    Verdict,
)
from modelrelease.api.models import Comparison, ComparisonStatus, ModelReleaseSpec
from modelrelease.core.comparison import (
    MAX_REPORTED_E_VALUE,
    Counter,
    MetricReading,
    comparison_due,
    comparison_queries,
    fold_comparison,
    series_key,
)
from modelrelease.core.conditions import find
from modelrelease.core.decision import EventType
from modelrelease.core.gate import gate_seed, webhook_due
from modelrelease.core.observation import Observation, Problem
from modelrelease.gates.webhook import CallOutcome, CallResult
from modelrelease.metrics.comparison import read_comparison
from modelrelease.metrics.provider import NoValuesFoundError
from modelrelease.metrics.templating import QueryContext

from tests.unit.test_plan import OWNER, T0, World, make_spec

ERRORS_METRIC = {
    "name": "errors",
    "kind": "ratio",
    "bad": 'vllm:request_success_total{finished_reason="error",revision="{{revision}}"}',
    "total": 'vllm:request_success_total{revision="{{revision}}"}',
}


def cc_spec(version: str = "1", **stage: Any) -> ModelReleaseSpec:
    body = {"weight": 50, "maxDuration": "120s", "metrics": [ERRORS_METRIC], **stage}
    return make_spec(version, stages=[{"championChallenger": body}])


class CountingWorld(World):
    """A world whose counters grow each second: ``rate`` requests split by the weights."""

    def __init__(self, spec: ModelReleaseSpec, rate: float = 100.0):
        super().__init__(spec)
        self.rate = rate
        self.ratios: dict[str, float] = {}  # error ratio per revision
        self.counters: dict[str, Counter] = {}
        self.gate: CallResult | None = None  # the webhook's answer while a call is due
        self.gate_calls = 0

    def observe(
        self, value: float | None, action: Action | None, problems: tuple[Problem, ...]
    ) -> Observation:
        self._count()
        observation = super().observe(value, action, problems)
        readings = None
        if comparison_due(self.spec, self.status, self.now):
            champion = self.status.champion.revision if self.status.champion else None
            challenger = self.status.challenger.revision if self.status.challenger else None
            assert champion is not None
            assert challenger is not None
            readings = {
                "errors": MetricReading(
                    champion=self._series(champion), challenger=self._series(challenger)
                )
            }
        gate = None
        if webhook_due(self.spec, self.status, self.now, gate_seed("llm", "chat")):
            gate = self.gate
            self.gate_calls += gate is not None
        return Observation(
            **{
                **observation.__dict__,
                "comparison": readings,
                "gate_result": gate,
            }
        )

    def _series(self, revision: str) -> dict[str, Counter]:
        """One pod per revision; no series before its first request."""
        counter = self.counters.get(revision)
        return {} if counter is None else {f"llm/{revision}-pod/": counter}

    def _count(self) -> None:
        routes = self.routes
        if routes is None or self.status.champion is None:
            return
        shares = {self.status.champion.revision: routes.stable_weight / 100}
        if self.status.challenger is not None:
            challenger = self.status.challenger.revision
            share = max(routes.canary_weight, routes.mirror_percent) / 100
            shares[challenger] = share
        for revision, share in shares.items():
            if revision is None or share <= 0:
                continue
            old = self.counters.get(revision, Counter(0, 0))
            requests = self.rate * share
            errors = requests * self.ratios.get(revision, 0.0)
            self.counters[revision] = Counter((old.bad or 0) + errors, old.total + requests)


def released(world: CountingWorld, version: str, ratio: float, spec: ModelReleaseSpec) -> str:
    champion = world.status.champion.revision if world.status.champion else None
    assert champion is not None
    world.ratios.setdefault(champion, 0.05)
    world.spec = spec
    world.tick()
    challenger = world.status.challenger.revision if world.status.challenger else None
    assert challenger is not None
    world.ratios[challenger] = ratio
    return challenger


def settled_counting(spec: ModelReleaseSpec) -> CountingWorld:
    world = CountingWorld(spec)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    return world


def ended(world: CountingWorld) -> bool:
    return world.status.challenger is None


# --- through plan() ------------------------------------------------------------------------------


def test_challenger_with_half_the_errors_is_promoted() -> None:
    world = settled_counting(cc_spec("1"))
    revision = released(world, "2", 0.025, cc_spec("2"))
    world.run_until(ended, limit=130)
    assert world.status.champion is not None
    assert world.status.champion.revision == revision
    assert world.status.history[-1].outcome is Outcome.PROMOTED
    reasons = [event.reason for decision in world.decisions for event in decision.events]
    assert Reason.COMPARISON_WON in reasons
    # Status shows the arms' counts, bounds and the e-value that the challenger is worse.
    won = [d for d in world.decisions if any(e.reason is Reason.COMPARISON_WON for e in d.events)]
    record = won[0].status.comparison[0]
    assert record.verdict is Verdict.PASS
    assert record.challenger.total > 0
    assert record.champion.total > 0
    assert record.upper is not None
    assert record.upper < 1.05
    assert record.e_value is not None
    assert record.e_value < 1  # no evidence at all of a worse challenger


def test_challenger_with_twice_the_errors_is_rolled_back() -> None:
    world = settled_counting(cc_spec("1"))
    revision = released(world, "2", 0.10, cc_spec("2"))
    world.run_until(ended, limit=130)
    assert world.status.rejected_revision == revision
    assert world.status.phase is Phase.ROLLED_BACK
    last = world.status.history[-1]
    assert last.outcome is Outcome.ROLLED_BACK
    assert last.reason == Reason.COMPARISON_LOST
    assert "significantly worse" in last.message
    warnings = [
        event
        for decision in world.decisions
        for event in decision.events
        if event.reason is Reason.ROLLED_BACK
    ]
    assert warnings
    assert world.routes is not None
    assert world.routes.canary_weight == 0


def test_identical_challenger_keeps_the_champion_at_max_duration() -> None:
    world = settled_counting(cc_spec("1"))
    champion = world.status.champion.revision if world.status.champion else None
    revision = released(world, "2", 0.05, cc_spec("2", maxDuration="20s"))
    world.run_until(ended, limit=40)
    assert world.status.champion is not None
    assert world.status.champion.revision == champion
    last = world.status.history[-1]
    assert last.revision == revision
    assert last.outcome is Outcome.CHAMPION_KEPT
    assert last.reason == Reason.COMPARISON_INCONCLUSIVE
    world.tick()
    degraded = find(world.status.conditions, ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.status == "False"
    assert world.routes is not None
    assert world.routes.canary_weight == 0


def test_inconclusive_with_promote_goes_on() -> None:
    world = settled_counting(cc_spec("1"))
    revision = released(world, "2", 0.05, cc_spec("2", maxDuration="20s", onInconclusive="promote"))
    world.run_until(ended, limit=40)
    assert world.status.champion is not None
    assert world.status.champion.revision == revision


def test_weight_holds_during_the_comparison() -> None:
    world = settled_counting(cc_spec("1"))
    released(world, "2", 0.05, cc_spec("2", weight=30, maxDuration="20s"))
    world.run_until(lambda w: w.status.current_stage is not None and w.routes.canary_weight == 30)
    for _ in range(10):
        world.tick()
        assert world.routes is not None
        assert world.routes.canary_weight == 30


def test_shadow_comparison_lost_rolls_back() -> None:
    shadow = {
        "shadow": {
            "mirrorPercent": 50,
            "duration": "60s",
            "comparison": {"metrics": [ERRORS_METRIC]},
        }
    }
    world = settled_counting(make_spec("1", stages=[shadow]))
    revision = released(world, "2", 0.15, make_spec("2", stages=[shadow]))
    world.run_until(ended, limit=70)
    assert world.status.rejected_revision == revision
    assert world.status.history[-1].reason == Reason.COMPARISON_LOST
    assert world.routes is not None
    assert world.routes.mirror_percent == 0


def test_shadow_inconclusive_moves_on_at_the_end() -> None:
    shadow = {
        "shadow": {"duration": "10s", "comparison": {"metrics": [ERRORS_METRIC]}},
    }
    world = settled_counting(make_spec("1", stages=[shadow]))
    revision = released(world, "2", 0.05, make_spec("2", stages=[shadow]))
    world.run_until(ended, limit=40)
    assert world.status.champion is not None
    assert world.status.champion.revision == revision


# --- fold_comparison -----------------------------------------------------------------------------


def _comparison(**extra: Any) -> Comparison:
    return Comparison.model_validate({"metrics": [ERRORS_METRIC], **extra})


def _reading(champion: tuple[float, float], challenger: tuple[float, float]) -> MetricReading:
    """One pod per arm."""
    return MetricReading(
        champion={"llm/champion-0/": Counter(*champion)},
        challenger={"llm/challenger-0/": Counter(*challenger)},
    )


def test_first_reading_is_a_baseline() -> None:
    records, result = fold_comparison(
        _comparison(), [], {"errors": _reading((500, 10_000), (0, 0))}, T0
    )
    assert result.verdict is Verdict.INCONCLUSIVE
    assert records[0].champion_series == {"llm/champion-0/": [500, 10_000, 0]}
    assert records[0].champion.total == 0  # nothing counted yet


def test_increments_are_differences_and_a_reset_counts_from_zero() -> None:
    comparison = _comparison()
    records, _ = fold_comparison(comparison, [], {"errors": _reading((500, 10_000), (0, 0))}, T0)
    records, _ = fold_comparison(
        comparison, records, {"errors": _reading((510, 10_200), (10, 200))}, T0
    )
    assert (records[0].champion.bad, records[0].champion.total) == (10, 200)
    assert (records[0].challenger.bad, records[0].challenger.total) == (10, 200)
    # The challenger's pod restarted: its counter went down to 3/50.
    records, _ = fold_comparison(
        comparison, records, {"errors": _reading((520, 10_400), (3, 50))}, T0
    )
    assert records[0].challenger.total == 250
    assert records[0].challenger.bad == 13


def test_a_failed_read_keeps_the_state() -> None:
    comparison = _comparison()
    records, _ = fold_comparison(comparison, [], {"errors": _reading((0, 0), (0, 0))}, T0)
    again, result = fold_comparison(
        comparison, records, {"errors": MetricReading(error="Prometheus is down")}, T0
    )
    assert result.verdict is Verdict.INCONCLUSIVE
    assert again[0].state == records[0].state
    assert "Prometheus is down" in again[0].message


def test_a_huge_effect_reports_a_finite_capped_e_value() -> None:
    comparison = _comparison()
    records, _ = fold_comparison(comparison, [], {"errors": _reading((0, 0), (0, 0))}, T0)
    records, result = fold_comparison(
        comparison, records, {"errors": _reading((0, 100_000), (50_000, 100_000))}, T0
    )
    assert result.verdict is Verdict.FAIL
    assert records[0].e_value is not None
    assert math.isfinite(records[0].e_value)
    assert records[0].e_value <= MAX_REPORTED_E_VALUE
    # Status round-trips through JSON.
    ComparisonStatus.model_validate(records[0].model_dump(mode="json", by_alias=True))


def test_superiority_needs_a_better_challenger() -> None:
    comparison = _comparison(decision="superiority")
    records: list[ComparisonStatus] = []
    champion, challenger = (0.0, 0.0), (0.0, 0.0)
    result = None
    for _ in range(60):
        champion = (champion[0] + 5, champion[1] + 100)
        challenger = (challenger[0] + 5, challenger[1] + 100)
        records, result = fold_comparison(
            comparison, records, {"errors": _reading(champion, challenger)}, T0
        )
    assert result is not None
    assert result.verdict is Verdict.INCONCLUSIVE


def test_better_higher_flips_the_direction() -> None:
    metric = {**ERRORS_METRIC, "better": "higher"}
    comparison = Comparison.model_validate({"metrics": [metric]})
    records: list[ComparisonStatus] = []
    records, _ = fold_comparison(comparison, records, {"errors": _reading((0, 0), (0, 0))}, T0)
    # The challenger has many more "good" events: with better: higher, it wins.
    records, result = fold_comparison(
        comparison, records, {"errors": _reading((100, 10_000), (400, 10_000))}, T0
    )
    assert result.verdict is Verdict.PASS


# --- queries and timing ---------------------------------------------------------------------------


def test_queries_read_each_arm_per_series() -> None:
    metric = {"name": "slow", "kind": "histogram", "query": 'ttft_bucket{r="{{revision}}"}'}
    comparison = Comparison.model_validate(
        {"metrics": [ERRORS_METRIC, {**metric, "threshold": 0.5}]}
    )
    context = QueryContext("llm", "chat", "", "aaa", "bbb", "2s")
    ratio, histogram = comparison_queries(comparison, context)
    assert ratio.champion.bad is not None
    assert ratio.champion.bad.startswith("sum by (namespace, pod, instance, job) (")
    assert 'revision="aaa"' in ratio.champion.bad
    assert ratio.challenger.total is not None
    assert 'revision="bbb"' in ratio.challenger.total
    assert histogram.kind is MetricKind.HISTOGRAM
    assert histogram.challenger.buckets == (
        'sum by (le, namespace, pod, instance, job) (ttft_bucket{r="bbb"})'
    )


def test_comparison_due_at_once_then_every_interval() -> None:
    world = settled_counting(cc_spec("1"))
    released(world, "2", 0.05, cc_spec("2"))
    world.run_until(lambda w: w.status.comparison and w.status.comparison[0].time is not None)
    assert not comparison_due(world.spec, world.status, world.now)
    later = world.now + timedelta(seconds=2)
    assert comparison_due(world.spec, world.status, later)


# --- webhook and approval -------------------------------------------------------------------------


def webhook_spec(version: str) -> ModelReleaseSpec:
    stage = {"webhook": {"url": "http://127.0.0.1:1/gate", "interval": "2s", "failureLimit": 0}}
    return make_spec(version, stages=[stage])


def test_webhook_200_passes_and_promotes() -> None:
    world = settled_counting(webhook_spec("1"))
    world.gate = CallResult(CallOutcome.PASSED, 200, "ok")
    revision = released(world, "2", 0.0, webhook_spec("2"))
    world.run_until(ended, limit=20)
    assert world.status.champion is not None
    assert world.status.champion.revision == revision
    assert world.gate_calls == 1


def test_webhook_500_rolls_back() -> None:
    world = settled_counting(webhook_spec("1"))
    world.gate = CallResult(CallOutcome.FAILED, 500, "boom")
    revision = released(world, "2", 0.0, webhook_spec("2"))
    world.run_until(ended, limit=20)
    assert world.status.rejected_revision == revision
    last = world.status.history[-1]
    assert last.reason == Reason.WEBHOOK_FAILED
    assert "HTTP 500" in last.message


def test_webhook_waits_while_202() -> None:
    world = settled_counting(webhook_spec("1"))
    world.gate = CallResult(CallOutcome.PENDING, 202, "")
    released(world, "2", 0.0, webhook_spec("2"))
    for _ in range(10):
        world.tick()
    assert world.status.current_stage is not None
    assert world.status.current_stage.gate_attempts >= 3
    assert world.status.current_stage.last_gate_answer == "HTTP 202"
    progressing = find(world.status.conditions, ConditionType.PROGRESSING)
    assert progressing is not None
    assert progressing.reason == Reason.WAITING_FOR_WEBHOOK


def test_approval_message_says_how_to_approve() -> None:
    spec = make_spec("1", stages=[{"approval": {}}])
    world = settled_counting(spec)
    released(world, "2", 0.0, make_spec("2", stages=[{"approval": {}}]))
    world.tick()
    progressing = find(world.status.conditions, ConditionType.PROGRESSING)
    assert progressing is not None
    assert progressing.reason == Reason.WAITING_FOR_APPROVAL
    assert f"kubectl modelrelease approve chat -n {OWNER.namespace}" in progressing.message


def test_baseline_waits_for_the_warmup() -> None:
    world = settled_counting(cc_spec("1", warmup="6s"))
    released(world, "2", 0.05, cc_spec("2", warmup="6s"))
    world.run_until(
        lambda w: (
            w.status.current_stage is not None
            and w.status.current_stage.step_start_time is not None
        )
    )
    current = world.status.current_stage
    assert current is not None
    assert current.step_start_time is not None
    start = current.step_start_time
    assert not comparison_due(world.spec, world.status, start + timedelta(seconds=5))
    assert comparison_due(world.spec, world.status, start + timedelta(seconds=6))


# --- reading counters (the I/O side, with a scripted provider) -----------------------------------


class Scripted:
    type = "scripted"

    def __init__(self, vectors: dict[str, list[tuple[dict[str, str], float]]]):
        self.vectors = vectors

    async def run_query(self, query: str) -> float:
        raise NoValuesFoundError(query)

    async def run_vector_query(self, query: str) -> list[tuple[dict[str, str], float]]:
        return self.vectors.get(query, [])

    async def is_online(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def _pod(name: str, **labels: str) -> dict[str, str]:
    return {"namespace": "llm", "pod": name, "instance": f"{name}:8000", "job": "vllm", **labels}


def test_reading_keeps_each_series_and_counts_events_above_the_threshold() -> None:
    metric = {"name": "slow", "kind": "histogram", "query": 'ttft_bucket{r="{{revision}}"}'}
    comparison = Comparison.model_validate(
        {"metrics": [ERRORS_METRIC, {**metric, "threshold": 0.5}]}
    )
    queries = comparison_queries(comparison, QueryContext("llm", "chat", "", "a", "b", "2s"))
    ratio, histogram = queries
    assert ratio.champion.bad is not None
    assert ratio.champion.total is not None
    assert ratio.challenger.total is not None
    assert histogram.champion.buckets is not None
    buckets = [("0.1", 50.0), ("0.5", 80.0), ("+Inf", 100.0)]
    provider = Scripted(
        {
            ratio.champion.bad: [(_pod("a-1"), 5.0)],
            ratio.champion.total: [(_pod("a-1"), 100.0), (_pod("a-2"), 60.0)],
            ratio.challenger.total: [(_pod("b-1"), 40.0)],
            histogram.champion.buckets: [(_pod("a-1", le=le), value) for le, value in buckets],
        }
    )
    readings = asyncio.run(read_comparison(provider, queries))
    assert readings["errors"].champion == {
        "llm/a-1/a-1:8000/vllm": Counter(5, 100),
        "llm/a-2/a-2:8000/vllm": Counter(None, 60),  # no error series for that pod yet
    }
    assert readings["errors"].challenger == {"llm/b-1/b-1:8000/vllm": Counter(None, 40)}
    assert readings["slow"].champion == {"llm/a-1/a-1:8000/vllm": Counter(20, 100)}
    assert readings["slow"].challenger == {}  # no series: not zero counts, no counts at all


def test_series_keys_are_unambiguous() -> None:
    assert series_key({"pod": "a", "job": "x/y"}) != series_key({"pod": "a/x", "job": "y"})
    assert series_key({}) == "///"


def test_reading_a_threshold_that_is_no_bucket_edge_is_an_error() -> None:
    metric = {"name": "slow", "kind": "histogram", "query": "ttft_bucket", "threshold": 0.3}
    comparison = Comparison.model_validate({"metrics": [metric]})
    queries = comparison_queries(comparison, QueryContext("llm", "chat", "", "a", "b", "2s"))
    buckets = [("0.1", 50.0), ("0.5", 80.0), ("+Inf", 100.0)]
    query = queries[0].champion.buckets
    assert query is not None
    provider = Scripted({query: [(_pod("a-1", le=le), value) for le, value in buckets]})
    reading = asyncio.run(read_comparison(provider, queries))["slow"]
    assert reading.error is not None
    assert "not a bucket boundary" in reading.error


def test_judge_state_from_an_older_operator_is_carried_over_with_a_warning() -> None:
    world = settled_counting(cc_spec("1", maxDuration="600s"))
    released(world, "2", 0.05, cc_spec("2", maxDuration="600s"))
    world.run_until(lambda w: bool(w.status.comparison) and w.status.comparison[0].champion.total)
    record = world.status.comparison[0]
    # What the sum-based operator left: the judge's state, but no per-pod series.
    world.status.comparison = [
        record.model_copy(update={"champion_series": None, "challenger_series": None})
    ]
    intervals = SequentialRatioTest.from_dict(record.state or {}).intervals
    world.run_until(lambda w: w.status.comparison[0].champion_series is not None)
    carried = world.status.comparison[0]
    assert carried.state == record.state  # the evidence is kept, not restarted
    assert carried.note is not None
    assert f"({intervals} intervals) is kept" in carried.note
    warnings = [e for d in world.decisions for e in d.events if e.type is EventType.WARNING]
    assert [e.reason for e in warnings] == [Reason.COMPARISON_STATE_CARRIED_OVER]
