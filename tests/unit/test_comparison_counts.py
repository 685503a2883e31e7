"""I5 Counts are exact: per-series increments, alpha per release, judge state carried over."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from modelrelease.analysis.sequential import SequentialRatioTest
from modelrelease.api.constants import Verdict
from modelrelease.api.models import Comparison, ComparisonStatus
from modelrelease.core.comparison import (
    MAX_KEPT_SERIES,
    Counter,
    MetricReading,
    fold_comparison,
    fold_series,
    metric_alpha,
)

from tests.unit.test_plan import T0

ERRORS = {"name": "errors", "kind": "ratio", "bad": "bad_total", "total": "requests_total"}


def _comparison(metrics: int = 1) -> Comparison:
    return Comparison.model_validate(
        {"metrics": [{**ERRORS, "name": f"errors{i}"} for i in range(metrics)]}
    )


# --- fold_series: the true increments for any per-pod history -------------------------------------


@dataclass
class Pod:
    """One pod's true cumulative counters; ``life`` counts its process restarts."""

    bad: int
    total: int
    life: int = 0


step = st.tuples(
    st.integers(0, 5),  # which pod
    st.sampled_from(["count", "count", "count", "restart", "hide", "start", "stop"]),
    st.integers(0, 20),  # requests
    st.integers(0, 20),  # of which bad (capped at requests)
)


@settings(max_examples=300, deadline=None)
@given(
    initial=st.lists(st.tuples(st.integers(0, 50), st.integers(50, 500)), min_size=1, max_size=4),
    reads=st.lists(st.lists(step, max_size=8), min_size=1, max_size=25),
    hide_bad_when_zero=st.booleans(),
)
def test_folded_increments_are_the_true_increments(
    initial: list[tuple[int, int]],
    reads: list[list[tuple[int, str, int, int]]],
    hide_bad_when_zero: bool,
) -> None:
    """Restarts, pods coming and going, transient missing reads: exact when every restart
    is visible (the total read after it is below the one read before), never more."""
    pods = {i: Pod(bad=min(b, t), total=t) for i, (b, t) in enumerate(initial)}
    gone: set[int] = set()

    def read(hidden: set[int]) -> dict[str, Counter]:
        seen = {}
        for i, pod in pods.items():
            if i in hidden or i in gone:
                continue
            bad = None if hide_bad_when_zero and pod.bad == 0 else float(pod.bad)
            seen[f"llm/pod-{i}//"] = Counter(bad, float(pod.total))
        return seen

    # The truth: per life of a pod, its values at its last read minus where that life
    # started counting (the baseline, or zero); counts never read cannot be known.
    starts = {(i, 0): (pod.bad, pod.total) for i, pod in pods.items()}
    last_read = dict(starts)
    previous_total = {i: pod.total for i, pod in pods.items()}
    detectable = True

    series = fold_series({}, read(set()), 0).series
    counted_bad = counted_total = 0.0
    for number, steps in enumerate(reads, start=1):
        hidden: set[int] = set()
        for index, action, requests, bad in steps:
            if action == "start" and index not in pods:
                pods[index] = Pod(bad=0, total=0)
                starts[(index, 0)] = (0, 0)
            pod = pods.get(index)
            if pod is None:
                continue
            if action == "restart":
                pod.life += 1
                pod.bad = pod.total = 0
                starts[(index, pod.life)] = (0, 0)
            elif action == "hide":
                hidden.add(index)  # a transient missing read
            elif action == "stop":
                gone.add(index)  # never read again: a new pod gets a new name
            pod.bad += min(bad, requests)
            pod.total += requests
        for index, pod in pods.items():
            if index in hidden or index in gone:
                continue
            if (index, pod.life) not in last_read and 0 < previous_total.get(index, 0) <= (
                pod.total
            ):
                detectable = False  # a restart no counter value can show
            last_read[(index, pod.life)] = (pod.bad, pod.total)
            previous_total[index] = pod.total
        increment = fold_series(series, read(hidden), number)
        series = increment.series
        counted_bad += increment.bad
        counted_total += increment.total
        assert 0 <= increment.bad <= increment.total

    true_bad = sum(last_read[life][0] - starts[life][0] for life in last_read)
    true_total = sum(last_read[life][1] - starts[life][1] for life in last_read)
    assert counted_total <= true_total
    assert counted_bad <= true_bad
    if detectable:
        assert (counted_bad, counted_total) == (true_bad, true_total)


# --- through fold_comparison ----------------------------------------------------------------------


def _arm(**pods: tuple[float, float]) -> dict[str, Counter]:
    return {f"llm/{name}//": Counter(*values) for name, values in pods.items()}


def _fold(
    records: list[ComparisonStatus],
    champion: dict[str, Counter],
    challenger: dict[str, Counter],
    comparison: Comparison | None = None,
) -> list[ComparisonStatus]:
    comparison = comparison or _comparison()
    reading = MetricReading(champion=champion, challenger=challenger)
    folded, _ = fold_comparison(comparison, records, {"errors0": reading}, T0)
    return folded


def test_one_pod_restarting_adds_only_its_own_new_counts() -> None:
    champion = _arm(c1=(10, 1000))
    records = _fold([], champion, _arm(x1=(10, 1000), x2=(10, 1000)))
    # x2 restarted and has counted 2/50 since; x1 went on by 5/100. A sum (2000 -> 1150)
    # would look like one reset of the whole arm and add 1150.
    records = _fold(records, _arm(c1=(15, 1100)), _arm(x1=(15, 1100), x2=(2, 50)))
    assert (records[0].challenger.bad, records[0].challenger.total) == (7, 150)
    assert (records[0].champion.bad, records[0].champion.total) == (5, 100)


def test_an_empty_read_counts_nothing_and_nothing_twice() -> None:
    records = _fold([], _arm(c1=(10, 1000)), _arm(x1=(10, 1000)))
    records = _fold(records, _arm(c1=(15, 1100)), {})
    assert records[0].challenger.total == 0
    assert records[0].champion.total == 0  # the interval waits for both arms
    assert "empty read is not zero counts" in records[0].message
    records = _fold(records, _arm(c1=(20, 1200)), _arm(x1=(20, 1200)))
    assert (records[0].challenger.bad, records[0].challenger.total) == (10, 200)
    assert (records[0].champion.bad, records[0].champion.total) == (10, 200)


def test_a_pod_missing_from_a_read_is_not_added_again_and_a_new_pod_counts_whole() -> None:
    records = _fold([], _arm(c1=(0, 1000)), _arm(x1=(10, 1000), x2=(10, 1000)))
    records = _fold(records, _arm(c1=(0, 1100)), _arm(x1=(11, 1100)))
    records = _fold(records, _arm(c1=(0, 1200)), _arm(x1=(12, 1200), x2=(13, 1150), x3=(1, 40)))
    assert (records[0].challenger.bad, records[0].challenger.total) == (6, 390)


def test_the_baseline_waits_for_both_arms() -> None:
    records = _fold([], _arm(c1=(0, 1000)), {})
    assert records[0].champion_series is None
    assert "waiting for the challenger's first counter series" in records[0].message
    records = _fold(records, _arm(c1=(0, 1100)), _arm(x1=(3, 30)))
    assert records[0].challenger_series == {"llm/x1//": [3, 30, 0]}


def test_series_kept_are_bounded_but_present_ones_never_dropped() -> None:
    many = {f"llm/old-{i}//": [0.0, 10.0, float(i)] for i in range(MAX_KEPT_SERIES + 20)}
    present = {f"llm/new-{i}//": Counter(0, 5) for i in range(MAX_KEPT_SERIES + 5)}
    kept = fold_series(many, present, 500).series
    assert len(kept) == MAX_KEPT_SERIES + 5
    assert set(present) <= set(kept)
    fewer = fold_series(many, {"llm/new-0//": Counter(0, 5)}, 500).series
    assert len(fewer) == MAX_KEPT_SERIES
    assert "llm/old-0//" not in fewer  # the longest unseen go first
    assert f"llm/old-{MAX_KEPT_SERIES + 19}//" in fewer


# --- alpha per release ----------------------------------------------------------------------------


def test_alpha_is_split_across_the_metrics() -> None:
    assert metric_alpha(_comparison(1)) == 0.05
    assert metric_alpha(_comparison(4)) == 0.0125
    # Evidence between 1/alpha and k/alpha rolls back one metric, not one of two.
    worse = None
    for bad in range(30, 200):
        test = SequentialRatioTest().update(20, 10_000, bad, 10_000)
        if 20 <= test.worse_e_value() < 40:
            worse = bad
            break
    assert worse is not None
    results = []
    for metrics in (1, 2):
        comparison = _comparison(metrics)
        readings = {
            metric.name: MetricReading(champion=_arm(c1=(0, 0)), challenger=_arm(x1=(0, 0)))
            for metric in comparison.metrics
        }
        records, _ = fold_comparison(comparison, [], readings, T0)
        readings = {
            metric.name: MetricReading(
                champion=_arm(c1=(20, 10_000)), challenger=_arm(x1=(worse, 10_000))
            )
            for metric in comparison.metrics
        }
        records, result = fold_comparison(comparison, records, readings, T0)
        results.append(result.verdict)
        assert f"Worse at {metrics / 0.05:.3g}" in records[0].message
    assert results == [Verdict.FAIL, Verdict.INCONCLUSIVE]


def test_promotion_needs_every_metric_but_each_at_the_whole_alpha() -> None:
    """Intersection-union: evidence of non-inferiority between 1/alpha and k/alpha
    promotes with two metrics as with one, since both must pass."""
    passing = None
    for bad in range(100, 20_000, 100):
        test = SequentialRatioTest().update(bad, 1_000_000, bad, 1_000_000)
        if 20 <= test.better_e_value(1.05) < 40:
            passing = bad
            break
    assert passing is not None
    for metrics in (1, 2):
        comparison = _comparison(metrics)
        baseline = MetricReading(champion=_arm(c1=(0, 0)), challenger=_arm(x1=(0, 0)))
        records, _ = fold_comparison(
            comparison, [], {metric.name: baseline for metric in comparison.metrics}, T0
        )
        reading = MetricReading(
            champion=_arm(c1=(passing, 1_000_000)), challenger=_arm(x1=(passing, 1_000_000))
        )
        records, result = fold_comparison(
            comparison, records, {metric.name: reading for metric in comparison.metrics}, T0
        )
        assert result.verdict is Verdict.PASS, result.message
        assert "one-sided" in records[0].message


# --- judge state from an older operator, or unreadable --------------------------------------------


def _evidence() -> SequentialRatioTest:
    test = SequentialRatioTest()
    for _ in range(5):
        test = test.update(10, 1000, 12, 1000)
    return test


def test_status_from_the_sum_based_operator_keeps_the_evidence_and_says_so() -> None:
    evidence = _evidence()
    old = ComparisonStatus.model_validate(
        {
            "metric": "errors0",
            "champion": {"bad": 50, "total": 5000},
            "challenger": {"bad": 60, "total": 5000},
            "championCounter": {"bad": 550, "total": 55_000},
            "challengerCounter": {"bad": 60, "total": 5000},
            "state": evidence.to_dict(),
        }
    )
    comparison = _comparison()
    reading = MetricReading(champion=_arm(c1=(560, 56_000)), challenger=_arm(x1=(70, 6000)))
    records, result = fold_comparison(comparison, [old], {"errors0": reading}, T0)
    record = records[0]
    assert record.state == evidence.to_dict()  # not restarted
    assert record.champion_series == {"llm/c1//": [560, 56_000, 5]}
    assert record.note is not None
    assert "older operator" in record.note
    assert "5 intervals" in record.note
    assert len(result.notices) == 1
    assert "older operator" in result.message
    # Next interval: counted per pod on top of the old evidence, no new notice.
    reading = MetricReading(champion=_arm(c1=(570, 57_000)), challenger=_arm(x1=(80, 7000)))
    records, result = fold_comparison(comparison, records, {"errors0": reading}, T0)
    assert SequentialRatioTest.from_dict(records[0].state or {}).intervals == 6
    assert (records[0].champion.bad, records[0].champion.total) == (60, 6000)
    assert result.notices == ()
    assert records[0].note == record.note


def test_an_unreadable_judge_state_restarts_the_test_and_says_so() -> None:
    records = _fold([], _arm(c1=(0, 1000)), _arm(x1=(0, 1000)))
    broken = records[0].model_copy(update={"state": {"version": 99}})
    reading = MetricReading(champion=_arm(c1=(5, 1100)), challenger=_arm(x1=(5, 1100)))
    records, result = fold_comparison(_comparison(), [broken], {"errors0": reading}, T0)
    assert records[0].note is not None
    assert "could not be read" in records[0].note
    assert "started again" in result.notices[0]
    assert (records[0].champion.bad, records[0].champion.total) == (5, 100)
