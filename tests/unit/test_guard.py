"""The sequential SLO guard: the test's guarantee by exact sums and simulation, the
counts from raw counters, and the guard in plan() (rollback in seconds, no writes
between interval checks, the same e-value after a restart).

Simulations are seeded, so they are deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelrelease.analysis.guard import (
    ESTIMATE_BATCHES,
    MAX_RATIO,
    Counts,
    batches_of,
    extend,
    guard_alpha,
    log_batch_ratio,
    plug_in_rate,
)
from modelrelease.api.constants import Outcome, Phase, Reason
from modelrelease.api.models import ModelReleaseSpec
from modelrelease.core.guard import (
    GuardQueries,
    GuardReading,
    guard_queries,
    judge,
)
from modelrelease.core.observation import Observation
from modelrelease.core.plan import plan

from tests.unit.test_plan import ERRORS, World, make_spec
from tests.unit.test_sequential import binomial

ALPHA = 0.05
P0 = 0.05  # the SLO's max


# --- the test's guarantee ------------------------------------------------------------


@given(
    threshold=st.floats(0.001, 0.9),
    alternative_share=st.floats(0.0, 1.0),
    truth_share=st.floats(0.0, 1.0),
    requests=st.integers(0, 60),
)
def test_one_batch_has_expected_ratio_at_most_one_under_the_null(
    threshold: float, alternative_share: float, truth_share: float, requests: int
) -> None:
    """Exactly, by summing the binomial: for any true rate q <= p0 and any alternative
    p >= p0, E[ratio of a batch] <= 1 (so the product is a supermartingale)."""
    alternative = threshold + alternative_share * (min(0.999, MAX_RATIO * threshold) - threshold)
    truth = truth_share * threshold
    expectation = math.fsum(
        math.comb(requests, bad)
        * truth**bad
        * (1 - truth) ** (requests - bad)
        * math.exp(log_batch_ratio(Counts(bad, requests), alternative, threshold))
        for bad in range(requests + 1)
    )
    assert expectation <= 1 + 1e-9


@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=8),
    st.floats(0.0001, 0.99),
)
def test_the_plug_in_is_at_or_above_max_and_below_one(
    pairs: list[tuple[int, int]], threshold: float
) -> None:
    batches = [Counts(min(bad, total), total) for bad, total in pairs]
    rate = plug_in_rate(batches, threshold)
    assert threshold <= rate < 1
    assert rate <= max(MAX_RATIO * threshold, threshold)


@settings(max_examples=60)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=40),
    st.data(),
)
def test_resuming_from_saved_evidence_gives_the_same_e_value(
    pairs: list[tuple[int, int]], data: st.DataObject
) -> None:
    """What a restarted operator does: fold up to a checkpoint, then from it."""
    batches = [Counts(min(bad, total), total) for bad, total in pairs]
    split = data.draw(st.integers(0, len(batches)))
    whole = extend(0.0, batches, 0, P0)
    resumed = extend(extend(0.0, batches[:split], 0, P0), batches, split, P0)
    assert resumed == pytest.approx(whole, abs=1e-9)


def poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def run_release(
    rng: random.Random,
    rate_at: Callable[[int], float],
    batches: int,
    requests_per_batch: float = 8.0,
    alpha: float = ALPHA,
) -> int | None:
    """The batch at which the guard trips (it looks after every batch), or None."""
    history: list[Counts] = []
    log_e, level = 0.0, math.log(1 / alpha)
    for index in range(batches):
        total = poisson(rng, requests_per_batch)
        history.append(Counts(binomial(rng, total, rate_at(index)), total))
        log_e = extend(log_e, history, index, P0)
        if log_e >= level:
            return index
    return None


def test_a_challenger_exactly_at_max_is_rarely_rolled_back() -> None:
    """A/A at the threshold, the worst case of the null: 30 minutes at 8 requests/s,
    looking every second, in 200 releases."""
    rng = random.Random(12)
    tripped = sum(run_release(rng, lambda _: P0, 1800) is not None for _ in range(200))
    assert tripped / 200 <= ALPHA


def test_a_challenger_below_max_is_practically_never_rolled_back() -> None:
    rng = random.Random(13)
    tripped = sum(run_release(rng, lambda _: P0 / 2, 1800) is not None for _ in range(100))
    assert tripped == 0


def test_a_version_that_turns_bad_is_caught_within_seconds_whatever_came_before() -> None:
    """20% errors against a max of 5% at 8 requests/s, after 20 s or 10 minutes healthy:
    the healthy past does not dilute the evidence (the plug-in follows the recent rate)."""
    rng = random.Random(14)
    for healthy in (20, 600):
        delays = sorted(
            (run_release(rng, lambda i, h=healthy: 0.0 if i < h else 0.2, healthy + 120) or 10**6)
            - healthy
            for _ in range(200)
        )
        assert min(delays) >= 0
        assert delays[100] <= 8, healthy  # median seconds after the fault
        assert delays[180] <= 15, healthy  # 90th percentile


def test_alpha_is_split_over_the_guarded_slos() -> None:
    assert guard_alpha(0.05, 2) == pytest.approx(0.025)
    assert guard_alpha(0.05, 0) == pytest.approx(0.05)


# --- counts from raw counters ----------------------------------------------------------


def test_batches_are_exact_increments_through_restarts_new_pods_and_gaps() -> None:
    samples: list[dict[str, tuple[float | None, float]]] = [
        {"a": (None, 100)},  # no errors yet: no bad series
        {"a": (2, 110)},
        {"a": (2, 120), "b": (1, 5)},  # a new pod counts whole
        {"b": (1, 9)},  # a missing for a sample: counts nothing now
        {"a": (0, 3), "b": (None, 10)},  # a restarted; b's bad series missing once
        {"a": (1, 8), "b": (3, 12)},
    ]
    assert batches_of(samples) == [
        Counts(2, 10),
        Counts(1, 15),
        Counts(0, 4),
        Counts(0, 4),
        Counts(3, 7),
    ]


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 20)).map(lambda p: (min(p), max(p))),
        min_size=1,
        max_size=20,
    )
)
def test_batches_of_a_counter_without_resets_add_up_to_its_growth(
    increments: list[tuple[int, int]],
) -> None:
    bad = total = 0.0
    samples: list[dict[str, tuple[float | None, float]]] = [{"pod": (0.0, 0.0)}]
    for bad_step, total_step in increments:
        bad, total = bad + bad_step, total + total_step
        samples.append({"pod": (bad, total)})
    batches = batches_of(samples)
    assert sum(b.bad for b in batches) == bad
    assert sum(b.total for b in batches) == total
    assert all(0 <= b.bad <= b.total for b in batches)


# --- the guard in plan() ---------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def guarded_spec(version: str = "1", interval: str = "30s", **guard: Any) -> ModelReleaseSpec:
    spec = make_spec(version)
    analysis = spec.model_dump(mode="json", by_alias=True, exclude_none=True)["analysis"]
    analysis["interval"] = interval
    analysis["guard"] = guard
    analysis["slos"][0].update(
        {
            "max": P0,
            "failureLimit": 0,
            "bad": "http_requests_total{status=~'5..',revision='{{revision}}'}",
            "total": "http_requests_total{revision='{{revision}}'}",
        }
    )
    stages = [{"canary": {"steps": [{"weight": 20, "duration": "30m"}]}}]
    return make_spec(version, analysis=analysis, stages=stages)


class GuardWorld(World):
    """A World whose challenger pod serves ``per_second`` requests a second, failing with
    ``error_rate(seconds since T0)``, counted on a 1 s grid that the guard reads."""

    def __init__(self, spec: ModelReleaseSpec, seed: int = 1):
        super().__init__(spec)
        self.rng = random.Random(seed)
        self.per_second = 8.0
        self.error_rate: Callable[[float], float] = lambda _: 0.0
        self.counters: dict[datetime, tuple[float, float]] = {}  # grid time -> (bad, total)
        self.guard_reads = 0
        self.fail_reads = False

    def observe(self, value: Any, action: Any, problems: Any) -> Observation:
        observation = super().observe(value, action, problems)
        self._count_until(self.now)
        queries = guard_queries(self.spec, self.status, observation.slos, self.now)
        if not queries:
            return observation
        self.guard_reads += 1
        readings = {query.name: self._reading(query) for query in queries}
        return replace(observation, guard_queries=tuple(queries), guard=readings)

    def _count_until(self, now: datetime) -> None:
        last = max(self.counters, default=T0 - timedelta(seconds=1))
        bad, total = self.counters.get(last, (0.0, 0.0))
        moment = last + timedelta(seconds=1)
        while moment <= now:
            served = poisson(self.rng, self.per_second)
            rate = self.error_rate((moment - T0).total_seconds())
            bad, total = bad + binomial(self.rng, served, rate), total + served
            self.counters[moment] = (bad, total)
            moment += timedelta(seconds=1)

    def _reading(self, query: GuardQueries) -> GuardReading:
        if self.fail_reads:
            return GuardReading(error="Prometheus answered HTTP 503")
        start = query.base - timedelta(seconds=ESTIMATE_BATCHES + 2)
        samples = tuple(
            (moment, {"pod-a": values})
            for moment, values in sorted(self.counters.items())
            if start <= moment <= self.now
        )
        return GuardReading(samples=samples)


def canary_world(error_rate: Callable[[float], float], seed: int = 1, **guard: Any) -> GuardWorld:
    world = GuardWorld(guarded_spec(**guard), seed=seed)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.error_rate = error_rate
    world.spec = guarded_spec("2", **guard)
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 20)
    return world


def test_the_guard_rolls_back_a_failing_canary_long_before_the_interval_check() -> None:
    world = canary_world(lambda _: 0.2)
    started = world.now
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, limit=60, value=0.0)
    assert (world.now - started).total_seconds() < 20  # the first interval check is at 30 s
    entry = world.status.history[-1]
    assert (entry.outcome, entry.reason) == (Outcome.ROLLED_BACK, Reason.SLO_GUARD_TRIPPED)
    assert "sequential guard" in entry.message
    assert world.routes is not None
    assert world.routes.canary_weight == 0


def test_a_healthy_canary_is_read_every_period_and_written_only_at_interval_checks() -> None:
    world = canary_world(lambda _: 0.01)
    reads = world.guard_reads
    writes = 0
    for _ in range(70):
        before = world.status.model_dump(mode="json", exclude_none=True)
        world.tick(seconds=1.0, value=0.01)
        writes += world.status.model_dump(mode="json", exclude_none=True) != before
    assert world.status.phase is Phase.PROGRESSING
    assert world.guard_reads - reads >= 30  # every 2 s
    assert writes <= 3  # the interval checks at 30 s and 60 s (and nothing else)
    (check,) = world.status.checks
    assert check.guard is not None
    assert check.guard.revision == world.status.challenger.revision  # type: ignore[union-attr]
    assert check.guard.e_value < 1 / ALPHA
    assert check.guard.through > T0


def test_a_restarted_operator_recomputes_the_same_e_value_from_the_saved_evidence() -> None:
    world = canary_world(lambda _: 0.06, seed=3)
    world.run_until(lambda w: bool(w.status.checks) and w.status.checks[0].guard, limit=40)
    for _ in range(5):
        world.tick(seconds=1.0, value=0.0)
    observation = world.observe(0.0, None, ())
    (query,) = observation.guard_queries
    assert observation.guard is not None
    outcome = judge(query, observation.guard[ERRORS], P0, 20.0, world.now)
    # The whole step's batches folded from the step's start, as if nothing had been saved.
    stage = world.status.current_stage
    assert stage is not None
    assert stage.step_start_time is not None
    fresh = replace(query, base=stage.step_start_time, log_e=0.0)
    samples = tuple(
        (moment, {"pod-a": values})
        for moment, values in sorted(world.counters.items())
        if moment <= world.now
    )
    whole = judge(fresh, GuardReading(samples=samples), P0, 20.0, world.now)
    assert outcome is not None
    assert whole is not None
    assert outcome.log_e == pytest.approx(whole.log_e, abs=1e-6)


def test_failed_guard_reads_neither_pass_nor_fail() -> None:
    world = canary_world(lambda _: 0.5)
    world.fail_reads = True
    for _ in range(25):
        world.tick(seconds=1.0, value=0.0)
    assert world.status.phase is Phase.PROGRESSING
    world.fail_reads = False
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, limit=20, value=0.0)


def test_the_guard_can_be_switched_off() -> None:
    world = canary_world(lambda _: 0.5, enabled=False)
    for _ in range(25):
        world.tick(seconds=1.0, value=0.0)
    assert world.guard_reads == 0
    assert world.status.phase is Phase.PROGRESSING


def test_a_pass_between_reads_decides_the_same() -> None:
    """An early pass (a change elsewhere) with a guard read that does not trip writes
    nothing: the same status as the pass before."""
    world = canary_world(lambda _: 0.0)
    world.tick(seconds=5.0, value=0.0)
    observation = world.observe(0.0, None, ())
    assert observation.guard is not None
    assert observation.slo_results is None
    decision = plan(world.spec, world.status, observation, world.now)
    dumped = decision.status.model_dump(mode="json", exclude_none=True)
    assert dumped == world.status.model_dump(mode="json", exclude_none=True)
    assert decision.requeue_after is not None
    assert decision.requeue_after <= 2.0


def test_the_guard_also_watches_a_shadow_stage() -> None:
    def shadow_spec(version: str) -> ModelReleaseSpec:
        spec = guarded_spec(version)
        dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        dumped["stages"] = [{"shadow": {"mirrorPercent": 50, "duration": "30m"}}]
        return ModelReleaseSpec.model_validate(dumped)

    world = GuardWorld(shadow_spec("1"))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.error_rate = lambda _: 0.3
    world.spec = shadow_spec("2")
    world.run_until(lambda w: w.routes is not None and w.routes.mirror_percent == 50)
    started = world.now
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, limit=60, value=0.0)
    assert (world.now - started).total_seconds() < 20
    assert world.status.history[-1].reason == Reason.SLO_GUARD_TRIPPED
    assert world.routes is not None
    assert world.routes.mirror_percent == 0


def test_an_slo_without_counters_is_not_guarded_and_adds_no_passes() -> None:
    spec = guarded_spec()
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    for slo in dumped["analysis"]["slos"]:
        slo.pop("bad")
        slo.pop("total")
    unguarded = ModelReleaseSpec.model_validate(dumped)
    world = GuardWorld(unguarded)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    dumped["model"]["version"] = "2"
    world.spec = ModelReleaseSpec.model_validate(dumped)
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 20)
    decision = world.tick(seconds=1.0, value=0.0)
    assert world.guard_reads == 0
    assert decision.requeue_after is not None
    assert decision.requeue_after > 2.0  # the next interval check, not the guard's period


def test_evidence_older_than_the_lookback_stops_the_guard_rather_than_skipping() -> None:
    """Skipping batches that earlier reads judged could raise the e-value, so saved
    evidence older than an hour stops the guard instead."""
    world = canary_world(lambda _: 0.01)
    world.run_until(lambda w: bool(w.status.checks) and w.status.checks[0].guard, limit=60)
    slos = world.resolved()
    assert guard_queries(world.spec, world.status, slos, world.now)
    later = world.now + timedelta(hours=2)
    assert guard_queries(world.spec, world.status, slos, later) == []
