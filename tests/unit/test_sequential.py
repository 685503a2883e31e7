"""The champion-challenger judge: exact numbers, guarantees by simulation, state.

The simulations are seeded, so they are deterministic; their sizes keep the
whole file at a few seconds.
"""

from __future__ import annotations

import itertools
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


def brute_force_e_value(
    intervals: Sequence[Interval], null_ratio: float, grid: RatioGrid, upward: bool, scale: float
) -> float:
    """A one-sided mixture e-value straight from its definition: products of binomial
    probabilities, no logs, the half-normal prior written out point by point and
    normalised over every offset the grid can hold."""

    def pmf(successes: int, trials: int, probability: float) -> float:
        return (
            math.comb(trials, successes)
            * probability**successes
            * (1 - probability) ** (trials - successes)
        )

    def challenger_probability(share: float, ratio: float) -> float:
        return ratio * share / (ratio * share + 1 - share)

    def weight(steps: int) -> float:
        return math.exp(-((steps * grid.log_step) ** 2) / (2 * scale**2))

    normaliser = sum(weight(steps) for steps in range(1, grid.size))
    null_position = round(math.log(null_ratio) / grid.log_step)
    total = 0.0
    for position in range(-grid.points_per_side, grid.points_per_side + 1):
        offset = position - null_position
        if offset == 0 or (offset > 0) != upward:
            continue
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
        total += weight(abs(offset)) / normaliser * likelihood_ratio
    return total


small_intervals = st.lists(
    st.tuples(st.integers(0, 12), st.integers(12, 60), st.integers(0, 12), st.integers(12, 60)).map(
        lambda counts: (min(counts[0], counts[1]), counts[1], min(counts[2], counts[3]), counts[3])
    ),
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(
    intervals=small_intervals,
    null_position=st.sampled_from([0, 2, 10, -25, 120]),
    better=st.sampled_from(list(Better)),
)
def test_e_values_match_a_brute_force_computation(
    intervals: list[Interval], null_position: int, better: Better
) -> None:
    grid = RatioGrid()
    null_ratio = math.exp(null_position * grid.log_step)
    test = run(intervals)
    lower_is_better = better == Better.LOWER
    worse = brute_force_e_value(
        intervals, null_ratio, grid, upward=lower_is_better, scale=grid.regression_scale
    )
    improved = brute_force_e_value(
        intervals, null_ratio, grid, upward=not lower_is_better, scale=grid.improvement_scale
    )
    if not test.log_likelihoods:  # no bad event yet: no evidence, by definition
        worse = improved = 1.0
    assert test.worse_e_value(null_ratio, better) == pytest.approx(worse, rel=1e-9, abs=1e-300)
    assert test.better_e_value(null_ratio, better) == pytest.approx(improved, rel=1e-9, abs=1e-300)


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


# --- validity: expectation under the null ------------------------------------------


@pytest.mark.parametrize("bad", [1, 7, 40])
@pytest.mark.parametrize("share", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("true_ratio", [1.0, 0.7, 0.3])
def test_the_worse_e_value_averages_at_most_one_under_its_null(
    bad: int, share: float, true_ratio: float
) -> None:
    """Exact expectation over one interval's split of ``bad`` events: for a true ratio
    at or below 1 (the composite null "not worse"), E[e-value against ratio 1] <= 1,
    with equality at ratio 1 up to the prior mass beyond the grid."""
    probability = true_ratio * share / (true_ratio * share + 1 - share)
    total = 1000
    challenger_total = round(total * share)
    expectation = 0.0
    for challenger_bad in range(bad + 1):
        mass = (
            math.comb(bad, challenger_bad)
            * probability**challenger_bad
            * (1 - probability) ** (bad - challenger_bad)
        )
        test = SequentialRatioTest().update(
            bad - challenger_bad, total - challenger_total, challenger_bad, challenger_total
        )
        expectation += mass * test.worse_e_value(1.0)
    assert expectation <= 1 + 1e-9
    if true_ratio == 1.0:
        assert expectation == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("true_ratio", [1.05, 1.3])
def test_the_non_inferiority_e_value_averages_at_most_one_over_many_intervals(
    true_ratio: float,
) -> None:
    """Monte Carlo over 12 intervals with a drifting share, fixed seed: at a true ratio
    at or above the margin, the mean e-value against "at least 1.05" stays at or
    below 1 (the sample mean of 1,500 runs, with slack for its own noise)."""
    rng = random.Random(12)
    runs, values = 1500, []
    for _ in range(runs):
        test = SequentialRatioTest()
        for _ in range(12):
            share = rng.uniform(0.2, 0.6)
            bad = 10 + int(rng.random() * 30)
            probability = true_ratio * share / (true_ratio * share + 1 - share)
            challenger_bad = binomial(rng, bad, probability)
            test = test.update(
                bad - challenger_bad, 1000 - 1000 * share, challenger_bad, 1000 * share
            )
        values.append(test.better_e_value(1.05))
    mean = sum(values) / runs
    assert mean <= 1.1, mean


# --- basic properties ------------------------------------------------------------


def test_without_data_the_e_value_is_one_and_nothing_is_decided() -> None:
    test = SequentialRatioTest()
    assert test.worse_e_value() == test.better_e_value() == 1.0
    assert test.update(0, 1000, 0, 1000).worse_e_value() == 1.0
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


def full_scan_bounds(
    test: SequentialRatioTest, alpha: float, better: Better, promotion_alpha: float
) -> tuple[float, float]:
    """The bounds by computing the e-value at every grid point, no bisection."""
    grid = test.grid
    ratios = [grid.ratio(index) for index in range(grid.size)]
    if better == Better.LOWER:
        not_low = [r for r in ratios if test.worse_e_value(r, better) < 1 / alpha]
        not_high = [r for r in ratios if test.better_e_value(r, better) < 1 / promotion_alpha]
    else:
        not_low = [r for r in ratios if test.better_e_value(r, better) < 1 / promotion_alpha]
        not_high = [r for r in ratios if test.worse_e_value(r, better) < 1 / alpha]
    return min(not_low), max(not_high)


@settings(max_examples=40, deadline=None)
@given(
    intervals=intervals,
    alpha=st.sampled_from([0.01, 0.05, 0.2]),
    promotion_alpha=st.sampled_from([0.025, 0.05]),
    better=st.sampled_from(list(Better)),
)
def test_the_bisected_bounds_match_the_full_computation(
    intervals: list[Interval], alpha: float, promotion_alpha: float, better: Better
) -> None:
    test = run(intervals)
    bounds = test.confidence_interval(alpha, better, promotion_alpha)
    if test.log_likelihoods:
        assert bounds == full_scan_bounds(test, alpha, better, promotion_alpha)


@settings(max_examples=40, deadline=None)
@given(intervals=intervals, better=st.sampled_from(list(Better)))
def test_e_values_are_monotone_in_the_null_ratio(intervals: list[Interval], better: Better) -> None:
    """Against "at most r0" evidence falls as r0 rises; against "at least r0" it grows
    (the concavity argument of the module docstring), up to rounding."""
    test = run(intervals)
    grid = test.grid
    upward = [test.worse_e_value(grid.ratio(i), Better.LOWER) for i in range(0, grid.size, 3)]
    downward = [test.better_e_value(grid.ratio(i), Better.LOWER) for i in range(0, grid.size, 3)]
    assert all(b <= a * (1 + 1e-9) for a, b in itertools.pairwise(upward))
    assert all(a <= b * (1 + 1e-9) for a, b in itertools.pairwise(downward))


@settings(max_examples=60, deadline=None)
@given(
    intervals=intervals,
    alpha=st.sampled_from([0.01, 0.05, 0.2]),
    better=st.sampled_from(list(Better)),
    margin=st.sampled_from([0.0, 0.05, 0.1]),
)
def test_verdicts_are_the_one_sided_rejections_whatever_the_counts(
    intervals: list[Interval], alpha: float, better: Better, margin: float
) -> None:
    test = run(intervals, RatioGrid.for_margin(margin))
    result = test.summary(alpha=alpha, better=better, margin=margin)
    half_step = math.exp(test.grid.log_step / 2)
    assert math.isfinite(result.e_value)
    assert result.e_value >= 0
    assert result.lower <= result.upper
    # The most likely ratio is never rejected, so the estimate sits inside the bounds.
    assert result.lower <= result.estimate * half_step
    assert result.estimate <= result.upper * half_step
    threshold = 1 / alpha
    worse = test.worse_e_value(1.0, better) >= threshold
    superior = test.better_e_value(1.0, better) >= threshold
    at_margin = 1 + margin if better == Better.LOWER else 1 / (1 + margin)
    non_inferior = test.better_e_value(at_margin, better) >= threshold
    assert result.e_value == test.worse_e_value(1.0, better)
    expected = (
        ComparisonVerdict.WORSE
        if worse
        else ComparisonVerdict.SUPERIOR
        if superior
        else ComparisonVerdict.NON_INFERIOR
        if non_inferior
        else ComparisonVerdict.INCONCLUSIVE
    )
    assert result.verdict == expected


@settings(max_examples=30, deadline=None)
@given(intervals=intervals)
def test_swapping_the_arms_and_the_direction_changes_nothing(intervals: list[Interval]) -> None:
    """Champion and challenger swapped, with ``better`` flipped: the same evidence."""
    forward = run(intervals).summary(better=Better.LOWER)
    swapped = run([(xb, xt, cb, ct) for cb, ct, xb, xt in intervals]).summary(better=Better.HIGHER)
    assert swapped.e_value == pytest.approx(forward.e_value, rel=1e-6, abs=1e-12)
    assert swapped.estimate == pytest.approx(1 / forward.estimate, rel=1e-6)
    assert swapped.verdict == forward.verdict or (
        math.isclose(forward.e_value, 1 / ALPHA, rel_tol=1e-6)
    )


def test_a_share_that_changes_between_intervals_is_not_mistaken_for_a_difference() -> None:
    """Same error rate in both arms, but the challenger got most traffic while
    errors were frequent: pooled counts would make it look twice as bad."""
    busy_hour = (100, 2000, 400, 8000)  # 5% errors, challenger share 0.8
    quiet_hour = (80, 8000, 20, 2000)  # 1% errors, challenger share 0.2
    test = run([busy_hour, quiet_hour] * 12, RatioGrid.for_margin(0.1))
    pooled_ratio = (test.challenger.bad / test.challenger.total) / (
        test.champion.bad / test.champion.total
    )
    assert pooled_ratio > 2
    result = test.summary(margin=0.1)
    assert result.estimate == pytest.approx(1.0, abs=0.01)
    assert result.lower < 1 < result.upper < 1.1
    assert result.verdict == ComparisonVerdict.NON_INFERIOR


# --- decisions -------------------------------------------------------------------


def judged(
    ratio_of_rates: float, better: Better, decision: Decision, margin: float = 0.1
) -> Result:
    """Plenty of data (50 intervals of 10,000 requests a side, champion at 10%)."""
    champion_bad = 1000
    challenger_bad = round(champion_bad * ratio_of_rates)
    test = run([(champion_bad, 10_000, challenger_bad, 10_000)] * 50, RatioGrid.for_margin(margin))
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
    assert result.upper / result.lower < 1.2
    assert result.estimate == pytest.approx(1.5, rel=0.01)


@pytest.mark.parametrize("margin", [0.05, 0.1, 0.2, 0.01, 1.0])
def test_the_grid_for_a_margin_holds_the_margin_itself(margin: float) -> None:
    grid = RatioGrid.for_margin(margin)
    assert grid.ratio(grid.index_of(1 + margin)) == pytest.approx(1 + margin, rel=1e-12)
    assert grid.ratio(grid.index_of(1 / (1 + margin))) == pytest.approx(1 / (1 + margin))
    assert grid.log_step <= 0.03
    assert grid.ratio(grid.size - 1) >= 20


def test_non_inferiority_is_decided_at_the_exact_margin() -> None:
    """The verdict flips exactly where the e-value against "at least 1 + margin"
    crosses 1/alpha; a margin off the grid is tested at the grid ratio below it."""
    grid = RatioGrid.for_margin(0.05)
    intervals = 0
    test = SequentialRatioTest(grid=grid)
    while test.summary().verdict != ComparisonVerdict.NON_INFERIOR:
        test = test.update(100, 10_000, 100, 10_000)
        intervals += 1
        assert intervals < 500
    before = SequentialRatioTest(grid=grid)
    for _ in range(intervals - 1):
        before = before.update(100, 10_000, 100, 10_000)
    assert before.better_e_value(1.05) < 1 / ALPHA <= test.better_e_value(1.05)
    # Off the grid: 1.06 is tested at the grid ratio 1.05^(5/2)... below it, never above.
    index = grid.index_towards_one(1.06)
    assert grid.ratio(index) <= 1.06 < grid.ratio(index + 1)
    assert grid.ratio(grid.index_towards_one(1 / 1.06)) >= 1 / 1.06
    assert test.summary(margin=0.06).verdict == ComparisonVerdict.NON_INFERIOR


# --- guarantees, by seeded simulation ---------------------------------------------


def test_identical_arms_are_rarely_rolled_back_however_often_one_looks() -> None:
    """500 simulated releases, each looked at after every one of 30 intervals:
    at most alpha of them may ever be called worse (plus Monte Carlo slack)."""
    rng = random.Random(20240501)
    runs, looks, error_rate, requests = 500, 30, 0.01, 4000
    rejected = 0
    for _ in range(runs):
        test = SequentialRatioTest()
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
            if test.worse_e_value() >= 1 / ALPHA:
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
    assert intervals_needed[len(intervals_needed) // 2] <= 2, intervals_needed
    assert intervals_needed[-1] <= 6, intervals_needed


@pytest.mark.parametrize("true_position", [20, -35])
def test_bounds_cover_the_true_ratio_at_every_look_at_the_promised_rate(
    true_position: int,
) -> None:
    """Counts drawn from the model (bad events split binomially at the true ratio):
    each one-sided bound must hold at all 20 looks in >= 95% of runs."""
    rng = random.Random(1000 + true_position)
    grid = RatioGrid()
    true_ratio = math.exp(true_position * grid.log_step)
    runs, looks = 150, 20
    missed_low = missed_high = 0
    for _ in range(runs):
        test = SequentialRatioTest(grid=grid)
        low = high = False
        for _ in range(looks):
            share = rng.uniform(0.2, 0.6)
            bad = 20 + int(rng.random() * 40)
            probability = true_ratio * share / (true_ratio * share + 1 - share)
            challenger_bad = binomial(rng, bad, probability)
            test = test.update(
                bad - challenger_bad, 1000 - 1000 * share, challenger_bad, 1000 * share
            )
            lower, upper = test.confidence_interval(ALPHA)
            # Outside a bound is exactly "its one-sided e-value reached 1/alpha".
            assert (lower > true_ratio) == (test.worse_e_value(true_ratio) >= 1 / ALPHA)
            assert (upper < true_ratio) == (test.better_e_value(true_ratio) >= 1 / ALPHA)
            low |= lower > true_ratio
            high |= upper < true_ratio
        missed_low += low
        missed_high += high
    assert missed_low / runs <= 0.07, f"the lower bound missed in {missed_low} of {runs} runs"
    assert missed_high / runs <= 0.07, f"the upper bound missed in {missed_high} of {runs} runs"


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
    assert resumed.worse_e_value() == pytest.approx(test.worse_e_value(), rel=1e-4)
    assert resumed.better_e_value(1.05) == pytest.approx(test.better_e_value(1.05), rel=1e-4)
    # A resumed test goes on exactly as one that never stopped (up to the rounding).
    more = (3, 1000, 9, 1000)
    assert resumed.update(*more).worse_e_value() == pytest.approx(
        test.update(*more).worse_e_value(), rel=1e-4
    )


def test_a_version_1_state_keeps_its_evidence_under_todays_priors() -> None:
    """Status written before the one-sided tests: the log-likelihoods (which do not
    depend on the prior) carry over; a 5% margin off its 2% grid is tested at e^0.04 (1.041)."""
    old_grid = RatioGrid(log_step=0.02, points_per_side=150)
    test = run([(100, 10_000, 100, 10_000)] * 200, old_grid)
    stored = test.to_dict() | {"version": 1}
    stored["grid"] = {"logStep": 0.02, "pointsPerSide": 150, "priorScale": 0.3}
    resumed = SequentialRatioTest.from_dict(stored)
    assert resumed.grid == old_grid
    assert resumed.log_likelihoods == pytest.approx(test.log_likelihoods, abs=1e-6)
    assert resumed.summary().verdict == ComparisonVerdict.NON_INFERIOR
    assert resumed.better_e_value(math.exp(0.04)) >= 1 / ALPHA


def test_a_fresh_state_round_trips_exactly_and_keeps_its_grid() -> None:
    grid = RatioGrid(log_step=0.05, points_per_side=40, regression_scale=0.7, improvement_scale=0.2)
    test = SequentialRatioTest(grid=grid)
    assert SequentialRatioTest.from_dict(test.to_dict()) == test
    # Integers where floats were written (the API server may do that) are accepted.
    stored = test.update(1, 10, 2, 10).to_dict()
    stored["champion"] = {"bad": 1, "total": 10}
    assert SequentialRatioTest.from_dict(stored).champion == ArmCounts(bad=1.0, total=10.0)


@pytest.mark.parametrize(
    "damage",
    [
        {"version": 3},
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
        test.summary(margin=-0.1)
    with pytest.raises(ValueError, match="not a point of the grid"):
        test.worse_e_value(1.234)
    with pytest.raises(ValueError, match="improvement_scale"):
        RatioGrid(improvement_scale=0)


def test_a_lopsided_split_is_handled_without_overflow() -> None:
    test = run([(5, 1e300, 0, 1e-3), (0, 1e-3, 5, 1e300)])
    assert math.isfinite(test.worse_e_value())


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
