"""The distribution-drift judge: the e-value, bucket bookkeeping, and drift through plan()."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelrelease.analysis.drift import DriftTest, bucket_counts, bucket_labels
from modelrelease.api.constants import MetricKind, Outcome, Phase, Reason, Verdict
from modelrelease.api.models import (
    BucketShare,
    Comparison,
    ComparisonMetric,
    ComparisonStatus,
    ModelReleaseSpec,
)
from modelrelease.cli.render import _comparisons
from modelrelease.core.comparison import (
    Counter,
    MetricReading,
    comparison_due,
    fold_buckets,
    fold_comparison,
)
from modelrelease.core.observation import Observation

from tests.unit.test_comparison import ERRORS_METRIC, CountingWorld, ended, released
from tests.unit.test_plan import T0, make_spec

INF = math.inf
EDGES = (0.25, 0.5, 0.75, 1.0, INF)
SCORE_METRIC = {"name": "score", "kind": "distribution", "query": "score_bucket{{{revisionPods}}}"}


def counts(*values: float) -> tuple[float, ...]:
    return tuple(float(value) for value in values)


# --- the e-value --------------------------------------------------------------------


def test_no_events_is_evidence_one() -> None:
    test = DriftTest(edges=EDGES)
    assert test.e_value() == 1.0
    assert not test.summary(0.05).drifted


def test_the_same_shares_give_no_evidence_and_a_shift_does() -> None:
    same = DriftTest(edges=EDGES).update(
        counts(100, 200, 300, 400, 0), counts(100, 200, 300, 400, 0)
    )
    assert same.e_value() < 1
    shifted = DriftTest(edges=EDGES).update(
        counts(100, 200, 300, 400, 0), counts(100, 200, 150, 550, 0)
    )
    summary = shifted.summary(0.05)
    assert summary.drifted
    assert summary.e_value > 1e6
    assert summary.distance == pytest.approx(0.15)
    moved = summary.moved()
    assert {shift.bucket for shift in moved} == {"0.5-0.75", "0.75-1"}
    by_bucket = {shift.bucket: shift for shift in moved}
    assert by_bucket["0.5-0.75"].champion == pytest.approx(0.3)
    assert by_bucket["0.5-0.75"].challenger == pytest.approx(0.15)


def test_an_unequal_split_alone_is_no_drift() -> None:
    # A 10% challenger share with the same shape: the share is estimated, not assumed 50%.
    test = DriftTest(edges=EDGES).update(
        counts(900, 1800, 2700, 3600, 0), counts(100, 200, 300, 400, 0)
    )
    assert test.e_value() < 1


def test_empty_buckets_count_for_nothing() -> None:
    with_empty = DriftTest(edges=EDGES).update(counts(10, 0, 30, 0, 0), counts(20, 0, 10, 0, 0))
    without = DriftTest(edges=(0.25, INF)).update(counts(10, 30), counts(20, 10))
    assert with_empty.log_e_value() == pytest.approx(without.log_e_value())


def test_state_round_trips_and_rejects_other_states() -> None:
    test = DriftTest(edges=EDGES).update(counts(1, 2, 3, 4, 5), counts(5, 4, 3, 2, 1))
    assert DriftTest.from_dict(test.to_dict()) == test
    with pytest.raises(ValueError, match="not a distribution"):
        DriftTest.from_dict({"champion": {"bad": 1, "total": 2}})
    with pytest.raises(ValueError, match="incomplete"):
        DriftTest.from_dict({"kind": "distribution", "edges": ["1", "+Inf"]})


def test_bucket_counts_from_cumulative_buckets() -> None:
    edges, own = bucket_counts([(INF, 10.0), (0.5, 4.0), (1.0, 9.0)])
    assert edges == (0.5, 1.0, INF)
    assert own == [4.0, 5.0, 1.0]
    # A bucket read a moment before its neighbour never gives a negative count.
    assert bucket_counts([(0.5, 6.0), (1.0, 5.0), (INF, 7.0)])[1] == [6.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="Inf"):
        bucket_counts([(0.5, 1.0)])
    assert bucket_labels(EDGES) == ["<=0.25", "0.25-0.5", "0.5-0.75", "0.75-1", ">1"]


shares = st.lists(st.integers(0, 500), min_size=2, max_size=8)


@settings(max_examples=100, deadline=None)
@given(shares, shares)
def test_the_e_value_is_symmetric_in_arms_and_buckets(first: list[int], second: list[int]) -> None:
    size = min(len(first), len(second))
    x, y = counts(*first[:size]), counts(*second[:size])
    edges = (*range(1, size), INF)
    edges_f = tuple(float(edge) for edge in edges)
    forward = DriftTest(edges=edges_f).update(y, x).log_e_value()
    assert math.isfinite(forward)
    assert DriftTest(edges=edges_f).update(x, y).log_e_value() == pytest.approx(forward, abs=1e-6)
    reversed_buckets = DriftTest(edges=edges_f).update(y[::-1], x[::-1]).log_e_value()
    assert reversed_buckets == pytest.approx(forward, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50), st.booleans()), max_size=20))
def test_folded_increments_are_never_negative_and_add_up(
    steps: list[tuple[int, int, bool]],
) -> None:
    """A pod's two buckets grow, and sometimes restart at zero: every increment is
    >= 0, and without restarts the increments add up to the counts."""
    last: dict[str, list[float]] = {}
    low = high = 0.0
    total = [0.0, 0.0]
    restarted = False
    for interval, (more_low, more_high, restart) in enumerate(steps):
        if restart:
            low = high = 0.0
            restarted = True
        low, high = low + more_low, high + more_high
        read = {"pod": Counter(None, low + high, (1.0, INF), (low, high))}
        increments, last = fold_buckets(last, read, interval)
        assert all(value >= 0 for value in increments)
        total = [a + b for a, b in zip(total, increments, strict=True)]
    if not restarted:
        assert total == [low, high]


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.05, 0.95),
    st.floats(0.05, 0.95),
    st.integers(1, 14),
)
def test_the_expected_e_value_under_no_drift_is_at_most_one(
    share: float, low: float, events: int
) -> None:
    """Exactly, by enumerating every outcome of ``events`` events in two buckets
    (probabilities ``low`` and ``1 - low`` for both arms, each event the
    challenger's with probability ``share``): E[e-value] <= 1, what an e-value is."""
    cells = (share * low, (1 - share) * low, share * (1 - low), (1 - share) * (1 - low))
    expected = 0.0
    for a in range(events + 1):
        for b in range(events + 1 - a):
            for c in range(events + 1 - a - b):
                d = events - a - b - c
                ways = math.factorial(events) // (
                    math.factorial(a) * math.factorial(b) * math.factorial(c) * math.factorial(d)
                )
                probability = ways * math.prod(
                    cell**count for cell, count in zip(cells, (a, b, c, d), strict=True)
                )
                test = DriftTest(edges=(1.0, INF)).update(counts(b, d), counts(a, c))
                expected += probability * test.e_value()
    assert expected <= 1 + 1e-9


def _aa_run(rng: random.Random, share: float, looks: int, per_look: int, alpha: float) -> bool:
    probabilities = [0.05, 0.15, 0.3, 0.3, 0.2]
    test = DriftTest(edges=EDGES)
    for _ in range(looks):
        champion, challenger = [0.0] * 5, [0.0] * 5
        for bucket in rng.choices(range(5), probabilities, k=per_look):
            arm = challenger if rng.random() < share else champion
            arm[bucket] += 1
        test = test.update(champion, challenger)
        if test.summary(alpha).drifted:
            return True
    return False


@pytest.mark.parametrize("share", [0.5, 0.1])
def test_aa_false_alarms_stay_below_alpha_over_many_looks(share: float) -> None:
    # alpha 0.2 so that a few hundred runs can see a violation; hack/bench/drift.py runs
    # the thousands at 0.05.
    rng = random.Random(7)
    runs, alpha = 200, 0.2
    alarms = sum(_aa_run(rng, share, looks=30, per_look=60, alpha=alpha) for _ in range(runs))
    assert alarms / runs <= alpha


# --- fold_comparison ----------------------------------------------------------------


def _reading(
    edges: tuple[float, ...], champion: tuple[float, ...], challenger: tuple[float, ...]
) -> MetricReading:
    return MetricReading(
        champion={"llm/a/": Counter(None, sum(champion), edges, champion)},
        challenger={"llm/b/": Counter(None, sum(challenger), edges, challenger)},
    )


def _comparison(*metrics: dict[str, Any]) -> Comparison:
    return Comparison.model_validate({"metrics": list(metrics)})


def test_a_drifted_distribution_fails_and_names_the_buckets() -> None:
    comparison = _comparison(SCORE_METRIC)
    records, result = fold_comparison(
        comparison, [], {"score": _reading(EDGES, counts(0, 0, 0, 0, 0), counts(0, 0, 0, 0, 0))}, T0
    )
    assert "baseline taken" in records[0].message
    reading = _reading(EDGES, counts(100, 300, 400, 200, 0), counts(100, 100, 300, 500, 0))
    records, result = fold_comparison(
        comparison, records, {"score": reading}, T0 + timedelta(seconds=30)
    )
    assert result.verdict is Verdict.FAIL
    assert result.drifted
    assert "0.75-1 20.0% -> 50.0%" in result.message
    assert "0.25-0.5 30.0% -> 10.0%" in result.message
    record = records[0]
    assert record.buckets is not None
    assert [bucket.bucket for bucket in record.buckets][-1] == ">1"
    assert record.estimate == pytest.approx(0.3)


def test_mismatched_buckets_are_an_error_that_names_both() -> None:
    comparison = _comparison(SCORE_METRIC)
    reading = MetricReading(
        champion={"a": Counter(None, 1, EDGES, counts(1, 0, 0, 0, 0))},
        challenger={"b": Counter(None, 1, (0.5, INF), counts(1, 0))},
    )
    records, result = fold_comparison(comparison, [], {"score": reading}, T0)
    assert records[0].verdict is Verdict.ERROR
    assert "0.25, 0.5, 0.75, 1, +Inf versus 0.5, +Inf" in records[0].message
    assert result.verdict is Verdict.INCONCLUSIVE


def test_a_restarted_pod_counts_whole_and_never_negative() -> None:
    comparison = _comparison(SCORE_METRIC)
    records, _ = fold_comparison(
        comparison,
        [],
        {"score": _reading(EDGES, counts(50, 50, 50, 50, 0), counts(50, 50, 50, 50, 0))},
        T0,
    )
    # The challenger's pod restarted: its counters start again from small values.
    reading = _reading(EDGES, counts(60, 60, 60, 60, 0), counts(5, 5, 5, 5, 0))
    records, result = fold_comparison(comparison, records, {"score": reading}, T0)
    assert records[0].challenger.total == 20
    assert records[0].champion.total == 40
    assert result.verdict is Verdict.INCONCLUSIVE


def test_distribution_metrics_only_veto_a_promotion() -> None:
    ratio = {**ERRORS_METRIC}
    comparison = _comparison(ratio, SCORE_METRIC)
    assert ComparisonMetric.model_validate(SCORE_METRIC).kind is MetricKind.DISTRIBUTION
    same = _reading(EDGES, counts(100, 300, 400, 200, 0), counts(100, 300, 400, 200, 0))
    errors = MetricReading(
        champion={"a": Counter(50, 100_000)}, challenger={"b": Counter(10, 100_000)}
    )
    readings = {"errors": errors, "score": same}
    records, _ = fold_comparison(comparison, [], readings, T0)
    grown = {
        "errors": MetricReading(
            champion={"a": Counter(5050, 200_000)}, challenger={"b": Counter(1010, 200_000)}
        ),
        "score": _reading(EDGES, counts(200, 600, 800, 400, 0), counts(200, 600, 800, 400, 0)),
    }
    records, result = fold_comparison(comparison, records, grown, T0)
    assert result.verdict is Verdict.PASS, result.message
    # Alone, a distribution metric never passes: the stage's end decides.
    records, result = fold_comparison(_comparison(SCORE_METRIC), [], {"score": same}, T0)
    later = _reading(EDGES, counts(200, 600, 800, 400, 0), counts(200, 600, 800, 400, 0))
    records, result = fold_comparison(_comparison(SCORE_METRIC), records, {"score": later}, T0)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "no drift so far" in result.message


# --- through plan() -------------------------------------------------------------------


class ScoringWorld(CountingWorld):
    """Each revision's events fall into the score buckets with its own shares."""

    def __init__(self, spec: ModelReleaseSpec):
        super().__init__(spec)
        self.shapes: dict[str, tuple[float, ...]] = {}
        self.buckets: dict[str, list[float]] = {}

    def observe(self, value: Any, action: Any, problems: Any) -> Observation:
        observation = super().observe(value, action, problems)
        if observation.comparison is None or not comparison_due(self.spec, self.status, self.now):
            return observation
        champion = self.status.champion.revision if self.status.champion else ""
        challenger = self.status.challenger.revision if self.status.challenger else ""
        readings = {
            **observation.comparison,
            "score": MetricReading(
                champion=self._buckets(champion or ""), challenger=self._buckets(challenger or "")
            ),
        }
        return Observation(**{**observation.__dict__, "comparison": readings})

    def _buckets(self, revision: str) -> dict[str, Counter]:
        counter = self.counters.get(revision)
        if counter is None:
            return {}
        shape = self.shapes.get(revision, (0.1, 0.2, 0.4, 0.3, 0.0))
        own = tuple(counter.total * share for share in shape)
        return {f"llm/{revision}-pod/": Counter(None, counter.total, EDGES, own)}


def test_shadow_with_a_drifted_score_rolls_back_naming_the_buckets() -> None:
    stage = {"shadow": {"duration": "60s", "comparison": {"metrics": [SCORE_METRIC]}}}
    world = ScoringWorld(make_spec("1", stages=[stage]))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    champion = world.status.champion.revision if world.status.champion else ""
    world.ratios[champion or ""] = 0.05
    world.spec = make_spec("2", stages=[stage])
    world.tick()
    challenger = world.status.challenger.revision if world.status.challenger else ""
    world.shapes[challenger or ""] = (0.1, 0.2, 0.2, 0.5, 0.0)
    world.run_until(ended, limit=70)
    last = world.status.history[-1]
    assert last.outcome is Outcome.ROLLED_BACK
    assert last.reason == Reason.DISTRIBUTION_DRIFTED
    assert "0.75-1 30.0% -> 50.0%" in last.message


def test_champion_challenger_with_the_same_score_and_fewer_errors_is_promoted() -> None:
    def spec(version: str) -> ModelReleaseSpec:
        body = {"weight": 50, "maxDuration": "120s", "metrics": [ERRORS_METRIC, SCORE_METRIC]}
        return make_spec(version, stages=[{"championChallenger": body}])

    world = ScoringWorld(spec("1"))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    revision = released(world, "2", 0.01, spec("2"))
    world.run_until(ended, limit=130)
    assert world.status.champion is not None
    assert world.status.champion.revision == revision
    assert world.status.history[-1].outcome is Outcome.PROMOTED


def test_the_status_view_names_the_buckets_that_moved() -> None:
    record = ComparisonStatus(
        metric="score",
        estimate=0.19,
        e_value=3.2e5,
        verdict=Verdict.FAIL,
        buckets=[
            BucketShare(bucket="0.8-0.9", champion=0.30, challenger=0.29),
            BucketShare(bucket="0.9-1", champion=0.12, challenger=0.31),
        ],
    )
    lines = _comparisons([record])
    assert (
        lines[-1]
        == "  score moved (champion -> challenger): 0.9-1 12.0% -> 31.0%, 0.8-0.9 30.0% -> 29.0%"
    )


class MismatchedWorld(ScoringWorld):
    """The challenger exports other score buckets than the champion."""

    def _buckets(self, revision: str) -> dict[str, Counter]:
        read = super()._buckets(revision)
        champion = self.status.champion.revision if self.status.champion else None
        if revision == champion:
            return read
        return {
            key: Counter(None, counter.total, (0.5, INF), (counter.total, 0.0))
            for key, counter in read.items()
        }


def test_mismatched_buckets_hold_the_release_and_on_error_rolls_back_naming_both() -> None:
    stage = {"shadow": {"duration": "60s", "comparison": {"metrics": [SCORE_METRIC]}}}
    analysis = {
        "prometheus": {"address": "http://prometheus:9090"},
        "interval": "2s",
        "onError": {"action": "rollback", "after": "10s"},
    }
    world = MismatchedWorld(make_spec("1", stages=[stage], analysis=analysis))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.spec = make_spec("2", stages=[stage], analysis=analysis)
    world.tick()
    assert world.status.challenger is not None
    world.run_until(ended, limit=60)
    last = world.status.history[-1]
    assert last.outcome is Outcome.ROLLED_BACK
    assert last.reason == Reason.METRICS_UNAVAILABLE
    assert "0.25, 0.5, 0.75, 1, +Inf versus 0.5, +Inf" in last.message
