"""The champion-challenger judge: exact numbers, guarantees by simulation, state.

The simulations are seeded, so they are deterministic; their sizes keep the
whole file at a few seconds.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelrelease.analysis.sequential import (
    ArmCounts,
    ComparisonVerdict,
    RatioGrid,
    Result,
    SequentialRatioTest,
    count_above,
)
from modelrelease.api.constants import Better, Decision

ALPHA = 0.05
# One interval's counts: champion bad, champion total, challenger bad, challenger total.
Interval = tuple[int, int, int, int]
Counts = tuple[float, float, float, float]


def run(intervals: Sequence[Counts], grid: RatioGrid | None = None) -> SequentialRatioTest:
    test = SequentialRatioTest(grid=grid or RatioGrid())
    for interval in intervals:
        test = test.update(*interval)
    return test


def binomial(rng: random.Random, trials: int, probability: float) -> int:
    """A Binomial draw by inverting the CDF (Python 3.11 has no binomialvariate)."""
    if probability <= 0 or trials == 0:
        return 0
    uniform = rng.random()
    count, mass = 0, (1 - probability) ** trials
    cumulative = mass
    odds = probability / (1 - probability)
    while uniform > cumulative and count < trials:
        mass *= (trials - count) / (count + 1) * odds
        count += 1
        cumulative += mass
    return count


# --- independent implementations to check the numbers against ------------------


def brute_force_e_value(intervals: Sequence[Interval], null_ratio: float, grid: RatioGrid) -> float:
    """The mixture e-value straight from its definition: products of binomial
    probabilities, no logs, the prior written out point by point."""

    def pmf(successes: int, trials: int, probability: float) -> float:
        return (
            math.comb(trials, successes)
            * probability**successes
            * (1 - probability) ** (trials - successes)
        )

    def challenger_probability(share: float, ratio: float) -> float:
        return ratio * share / (ratio * share + 1 - share)

    null_position = round(math.log(null_ratio) / grid.log_step)
    weighted_sum = total_weight = 0.0
    for position in range(-grid.points_per_side, grid.points_per_side + 1):
        if position == null_position:
            continue
        weight = math.exp(
            -(((position - null_position) * grid.log_step) ** 2) / (2 * grid.prior_scale**2)
        )
        ratio = math.exp(position * grid.log_step)
        likelihood_ratio = 1.0
        for champion_bad, champion_total, challenger_bad, challenger_total in intervals:
            bad = champion_bad + challenger_bad
            if bad == 0 or champion_total == 0 or challenger_total == 0:
                continue
            share = challenger_total / (champion_total + challenger_total)
            likelihood_ratio *= pmf(
                challenger_bad, bad, challenger_probability(share, ratio)
            ) / pmf(challenger_bad, bad, challenger_probability(share, null_ratio))
        weighted_sum += weight * likelihood_ratio
        total_weight += weight
    return weighted_sum / total_weight


small_intervals = st.lists(
    st.tuples(st.integers(0, 12), st.integers(12, 60), st.integers(0, 12), st.integers(12, 60)).map(
        lambda counts: (min(counts[0], counts[1]), counts[1], min(counts[2], counts[3]), counts[3])
    ),
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(intervals=small_intervals, null_position=st.sampled_from([0, 10, -25]))
def test_e_value_matches_a_brute_force_computation(
    intervals: list[Interval], null_position: int
) -> None:
    grid = RatioGrid()
    null_ratio = math.exp(null_position * grid.log_step)
    expected = brute_force_e_value(intervals, null_ratio, grid)
    assert run(intervals).e_value(null_ratio) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("share", "challenger_bad", "champion_bad"), [(0.5, 30, 40), (0.2, 9, 60), (0.7, 80, 20)]
)
def test_likelihoods_match_the_beta_binomial_closed_form(
    share: float, challenger_bad: int, champion_bad: int
) -> None:
    """With a constant share, mixing the test's likelihoods under a uniform prior on
    the challenger's probability (a logistic density on log r) must give the
    Beta-binomial closed form B(x+1, y+1) / (p0^x (1-p0)^y)."""
    grid = RatioGrid()
    challenger_total = round(1000 * share)
    champion_total = 1000 - challenger_total
    # Split the counts over intervals: the likelihood must not care how.
    intervals: list[Interval] = [
        (champion_bad // 2, champion_total, challenger_bad // 3, challenger_total),
        (
            champion_bad - champion_bad // 2,
            champion_total,
            challenger_bad - challenger_bad // 3,
            challenger_total,
        ),
    ]
    log_likelihoods = run(intervals).log_likelihoods
    log_odds = math.log(share / (1 - share))
    null = grid.null_index
    mixture = 0.0
    for index, value in enumerate(log_likelihoods):
        logit = grid.log_ratio(index) + log_odds
        density = math.exp(logit) / (1 + math.exp(logit)) ** 2  # d p / d logit
        mixture += density * grid.log_step * math.exp(value - log_likelihoods[null])
    x, y = challenger_bad, champion_bad
    log_beta = math.lgamma(x + 1) + math.lgamma(y + 1) - math.lgamma(x + y + 2)
    closed_form = math.exp(log_beta - x * math.log(share) - y * math.log(1 - share))
    assert mixture == pytest.approx(closed_form, rel=1e-4)


# --- basic properties ------------------------------------------------------------


def test_without_data_the_e_value_is_one_and_nothing_is_decided() -> None:
    test = SequentialRatioTest()
    assert test.e_value() == 1.0
    assert test.update(0, 1000, 0, 1000).e_value() == 1.0
    result = test.summary()
    assert result.verdict == ComparisonVerdict.INCONCLUSIVE
    assert result.estimate == 1.0
    assert (result.lower, result.upper) == (test.grid.ratio(0), test.grid.ratio(test.grid.size - 1))


intervals = st.lists(
    st.tuples(
        st.integers(0, 500), st.integers(1, 5000), st.integers(0, 500), st.integers(1, 5000)
    ).map(
        lambda counts: (min(counts[0], counts[1]), counts[1], min(counts[2], counts[3]), counts[3])
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(intervals=intervals, alpha=st.sampled_from([0.01, 0.05, 0.2]))
def test_summary_is_consistent_whatever_the_counts(intervals: list[Interval], alpha: float) -> None:
    test = run(intervals)
    result = test.summary(alpha=alpha)
    half_step = math.exp(test.grid.log_step / 2)
    assert result.e_value >= 0
    assert math.isfinite(result.e_value)
    assert result.lower <= result.upper
    # The most likely ratio is never rejected, so the estimate sits inside the bounds.
    assert result.lower <= result.estimate * half_step
    assert result.estimate <= result.upper * half_step
    for ratio in (1.0, result.lower, result.upper, test.grid.ratio(0), math.exp(0.3)):
        assert test.rejects(ratio, alpha) == (test.e_value(ratio) >= 1 / alpha)
    # "Worse" and "Superior" need the e-value against "no difference" past 1/alpha.
    if result.verdict in (ComparisonVerdict.WORSE, ComparisonVerdict.SUPERIOR):
        assert result.e_value >= 1 / alpha
    elif result.e_value >= 1 / alpha * 1.000001:
        pytest.fail(f"e-value {result.e_value} rejects ratio 1 but the verdict is {result.verdict}")


@settings(max_examples=30, deadline=None)
@given(intervals=intervals)
def test_swapping_the_arms_inverts_the_ratio(intervals: list[Interval]) -> None:
    forward = run(intervals).summary()
    swapped = run([(xb, xt, cb, ct) for cb, ct, xb, xt in intervals]).summary()
    step = math.exp(RatioGrid().log_step) * 1.000001
    assert swapped.e_value == pytest.approx(forward.e_value, rel=1e-6, abs=1e-12)
    assert swapped.estimate == pytest.approx(1 / forward.estimate, rel=1e-6)
    # Bounds are grid points; rounding may move one of them by a step at a knife edge.
    assert 1 / step <= swapped.lower * forward.upper <= step
    assert 1 / step <= swapped.upper * forward.lower <= step


def test_a_share_that_changes_between_intervals_is_not_mistaken_for_a_difference() -> None:
    """Same error rate in both arms, but the challenger got most traffic while
    errors were frequent: pooled counts would make it look twice as bad."""
    busy_hour = (100, 2000, 400, 8000)  # 5% errors, challenger share 0.8
    quiet_hour = (80, 8000, 20, 2000)  # 1% errors, challenger share 0.2
    test = run([busy_hour, quiet_hour] * 12)
    pooled_ratio = (test.challenger.bad / test.challenger.total) / (
        test.champion.bad / test.champion.total
    )
    assert pooled_ratio > 2
    result = test.summary()
    assert result.estimate == pytest.approx(1.0, abs=0.01)
    assert result.lower < 1 < result.upper < 1.1
    assert result.verdict == ComparisonVerdict.NON_INFERIOR


# --- decisions -------------------------------------------------------------------


def judged(
    ratio_of_rates: float, better: Better, decision: Decision, margin: float = 1.1
) -> Result:
    """Plenty of data (50 intervals of 10,000 requests a side, champion at 10%)."""
    champion_bad = 1000
    challenger_bad = round(champion_bad * ratio_of_rates)
    test = run([(champion_bad, 10_000, challenger_bad, 10_000)] * 50)
    return test.summary(alpha=ALPHA, better=better, margin=margin, decision=decision)


@pytest.mark.parametrize(
    ("ratio", "better", "decision", "verdict"),
    [
        (1.0, Better.LOWER, Decision.NON_INFERIORITY, ComparisonVerdict.NON_INFERIOR),
        (1.0, Better.LOWER, Decision.SUPERIORITY, ComparisonVerdict.INCONCLUSIVE),
        (1.2, Better.LOWER, Decision.NON_INFERIORITY, ComparisonVerdict.WORSE),
        (0.8, Better.LOWER, Decision.NON_INFERIORITY, ComparisonVerdict.SUPERIOR),
        (0.8, Better.LOWER, Decision.SUPERIORITY, ComparisonVerdict.SUPERIOR),
        (1.0, Better.HIGHER, Decision.NON_INFERIORITY, ComparisonVerdict.NON_INFERIOR),
        (1.2, Better.HIGHER, Decision.SUPERIORITY, ComparisonVerdict.SUPERIOR),
        (0.8, Better.HIGHER, Decision.NON_INFERIORITY, ComparisonVerdict.WORSE),
        (0.8, Better.HIGHER, Decision.SUPERIORITY, ComparisonVerdict.WORSE),
    ],
)
def test_verdicts(
    ratio: float, better: Better, decision: Decision, verdict: ComparisonVerdict
) -> None:
    result = judged(ratio, better, decision)
    assert result.verdict == verdict
    assert result.passed == (
        verdict in (ComparisonVerdict.NON_INFERIOR, ComparisonVerdict.SUPERIOR)
    )
    assert result.failed == (verdict == ComparisonVerdict.WORSE)


def test_a_clear_regression_is_worse_even_within_the_margin() -> None:
    # 4% worse with a 10% margin: non-inferior by the bounds, but significantly
    # worse, and a significant regression is rolled back whatever the margin.
    result = judged(1.04, Better.LOWER, Decision.NON_INFERIORITY)
    assert 1 < result.lower < result.upper < 1.1
    assert result.verdict == ComparisonVerdict.WORSE


def test_bounds_tighten_around_the_truth_with_data() -> None:
    result = judged(1.5, Better.LOWER, Decision.NON_INFERIORITY)
    assert result.lower < 1.5 < result.upper
    assert result.upper / result.lower < 1.15
    assert result.estimate == pytest.approx(1.5, rel=0.01)


# --- guarantees, by seeded simulation ---------------------------------------------


def test_identical_arms_are_rarely_rejected_however_often_one_looks() -> None:
    """500 simulated releases, each looked at after every one of 30 intervals:
    at most alpha of them may ever be rejected (plus Monte Carlo slack)."""
    rng = random.Random(20240501)
    runs, looks, error_rate, requests = 500, 30, 0.01, 4000
    grid = RatioGrid()
    rejected = 0
    for _ in range(runs):
        test = SequentialRatioTest(grid=grid)
        for _ in range(looks):
            share = rng.uniform(0.1, 0.5)  # the split drifts between intervals
            challenger_total = round(requests * share)
            champion_total = requests - challenger_total
            test = test.update(
                binomial(rng, champion_total, error_rate),
                champion_total,
                binomial(rng, challenger_total, error_rate),
                challenger_total,
            )
            if test.rejects(1.0, ALPHA):
                rejected += 1
                break
    # Binomial(500, 0.05) exceeds 35 with probability < 1%; seeded, so deterministic.
    assert rejected / runs <= 0.07, f"{rejected} of {runs} identical releases rejected"


def test_a_twice_as_bad_challenger_is_rejected_within_a_few_intervals() -> None:
    rng = random.Random(7)
    intervals_needed = []
    for _ in range(40):
        test = SequentialRatioTest()
        for interval in range(1, 21):
            test = test.update(binomial(rng, 2000, 0.01), 2000, binomial(rng, 2000, 0.02), 2000)
            if test.summary().verdict == ComparisonVerdict.WORSE:
                intervals_needed.append(interval)
                break
        else:
            intervals_needed.append(999)
    intervals_needed.sort()
    assert intervals_needed[len(intervals_needed) // 2] <= 3, intervals_needed
    assert intervals_needed[-1] <= 8, intervals_needed


@pytest.mark.parametrize("true_position", [20, -35])
def test_bounds_cover_the_true_ratio_at_every_look_at_the_promised_rate(
    true_position: int,
) -> None:
    """Counts drawn from the model (bad events split binomially at the true ratio):
    the true ratio must stay inside the bounds at all 25 looks in >= 95% of runs."""
    rng = random.Random(1000 + true_position)
    grid = RatioGrid()
    true_ratio = math.exp(true_position * grid.log_step)
    runs, looks = 200, 25
    missed = 0
    for _ in range(runs):
        test = SequentialRatioTest(grid=grid)
        for _ in range(looks):
            share = rng.uniform(0.2, 0.6)
            bad = 20 + int(rng.random() * 40)
            probability = true_ratio * share / (true_ratio * share + 1 - share)
            challenger_bad = binomial(rng, bad, probability)
            test = test.update(
                bad - challenger_bad, 1000 - 1000 * share, challenger_bad, 1000 * share
            )
            # "Inside the bounds" is exactly "its e-value is below 1/alpha".
            if test.rejects(true_ratio, ALPHA):
                missed += 1
                break
        lower, upper = test.confidence_interval(ALPHA)
        assert lower <= true_ratio <= upper or test.e_value(true_ratio) >= 1 / ALPHA
    assert missed / runs <= 0.07, f"the true ratio left the bounds in {missed} of {runs} runs"


# --- state -------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(intervals=intervals)
def test_state_round_trips_through_a_json_dict(intervals: list[Interval]) -> None:
    test = run(intervals)
    stored = json.loads(json.dumps(test.to_dict()))
    resumed = SequentialRatioTest.from_dict(stored)
    assert resumed.to_dict() == stored
    assert (resumed.champion, resumed.challenger, resumed.intervals, resumed.grid) == (
        test.champion,
        test.challenger,
        test.intervals,
        test.grid,
    )
    assert resumed.e_value() == pytest.approx(test.e_value(), rel=1e-4)
    assert resumed.summary().verdict == test.summary().verdict or math.isclose(
        test.e_value(), 1 / ALPHA, rel_tol=1e-3
    )
    # A resumed test goes on exactly as one that never stopped (up to the rounding).
    more = (3, 1000, 9, 1000)
    assert resumed.update(*more).e_value() == pytest.approx(test.update(*more).e_value(), rel=1e-4)


def test_a_fresh_state_round_trips_exactly_and_keeps_its_grid() -> None:
    test = SequentialRatioTest(grid=RatioGrid(log_step=0.05, points_per_side=40, prior_scale=0.5))
    assert SequentialRatioTest.from_dict(test.to_dict()) == test
    # Integers where floats were written (the API server may do that) are accepted.
    stored = test.update(1, 10, 2, 10).to_dict()
    stored["champion"] = {"bad": 1, "total": 10}
    assert SequentialRatioTest.from_dict(stored).champion == ArmCounts(bad=1.0, total=10.0)


@pytest.mark.parametrize(
    "damage",
    [
        {"version": 2},
        {"logLikelihoods": [0.0, 0.0]},
        {"grid": {"logStep": 0.02}},
        {"intervals": -1},
        {"champion": {"bad": 5, "total": 1}},
    ],
)
def test_a_damaged_state_is_refused_with_a_clear_error(damage: dict[str, object]) -> None:
    stored = SequentialRatioTest().update(1, 100, 2, 100).to_dict() | damage
    with pytest.raises(ValueError, match=r"state|log-likelihoods|intervals|counts"):
        SequentialRatioTest.from_dict(stored)


@pytest.mark.parametrize(
    "counts",
    [(-1, 10, 0, 10), (11, 10, 0, 10), (0, 10, math.nan, 10), (0, math.inf, 0, 10)],
)
def test_impossible_counts_are_refused(counts: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match="0 <= bad <= total"):
        SequentialRatioTest().update(*counts)


def test_bad_parameters_are_refused() -> None:
    test = SequentialRatioTest()
    with pytest.raises(ValueError, match="alpha"):
        test.summary(alpha=1.5)
    with pytest.raises(ValueError, match="margin"):
        test.summary(margin=0.9)
    with pytest.raises(ValueError, match="not a point of the grid"):
        test.e_value(1.234)
    with pytest.raises(ValueError, match="prior_scale"):
        RatioGrid(prior_scale=0)


def test_a_lopsided_split_is_handled_without_overflow() -> None:
    test = run([(5, 1e300, 0, 1e-3), (0, 1e-3, 5, 1e300)])
    assert math.isfinite(test.e_value())


# --- histograms -----------------------------------------------------------------------


def test_count_above_a_bucket_boundary() -> None:
    buckets = [(0.25, 40.0), (0.5, 70.0), (0.75, 90.0), (1.0, 97.0), (math.inf, 100.0)]
    assert count_above(buckets, 0.75) == (10.0, 100.0)
    assert count_above(buckets, 0.25) == (60.0, 100.0)


def test_count_above_refuses_a_threshold_between_boundaries() -> None:
    with pytest.raises(ValueError, match=r"0\.6 is not a bucket boundary.*0\.25, 0\.5"):
        count_above([(0.25, 1.0), (0.5, 2.0), (math.inf, 3.0)], 0.6)
    with pytest.raises(ValueError, match=r"\+Inf"):
        count_above([(0.25, 1.0), (0.5, 2.0)], 0.5)
