"""The champion-challenger judge: anytime-valid one-sided tests on the ratio of two event rates.

Each interval brings, per arm, a count of *bad* events (errors, requests slower
than a threshold, ...) and a count of requests. Given the ``n`` bad events of one
interval, the challenger's share of them is binomial: with rate ratio ``r``
(challenger's rate over the champion's) and ``p0`` the challenger's share of
that interval's requests, its count is ``Binomial(n, p(r))`` with
``p(r) = r*p0 / (r*p0 + 1 - p0)``. The share may change between intervals.

**One-sided e-values.** Write ``t = log r``; in ``t`` the binomial is an
exponential family with natural parameter ``t + a`` (``a`` the log odds of the
share) and log-partition ``A(theta) = n*log(1 + e^theta)``. For a null ``t0``
and an alternative ``t0 + d`` with ``d > 0``, one interval's likelihood ratio
``exp(d*x - A(t0 + a + d) + A(t0 + a))`` has, under any ``t <= t0``, the
expectation ``exp(A(t + a + d) - A(t + a) - A(t0 + a + d) + A(t0 + a)) <= 1``,
because ``A(. + d) - A(.)`` is non-decreasing (``A`` is convex). So the product
over intervals is a nonnegative supermartingale under the whole composite null
"``r <= r0``", and so is any average of such products over alternatives above
``r0`` with weights summing to at most 1 (a *mixture*), by symmetry likewise
for "``r >= r0``" with alternatives below. By Ville's inequality such an
*e-value* ever reaches ``1/alpha`` with probability at most ``alpha``, however
often it is looked at.

**Priors where the effects live.** Regressions worth a rollback are tens of
percent to several-fold, so the alternatives on the regression side are
weighted by a half-normal density on ``d = |log(r / r0)|`` with scale 0.5 (half
its weight within a factor 1.40, 95% within 2.66). The improvement side mostly
has to show non-inferiority, that a challenger near ``r = 1`` is below the
margin ``m``, an offset of ``log m`` (0.049 for 5%): its half-normal has scale
0.1, concentrated near the null. The weights are normalised over every offset
the grid can hold; at a null near an end of the grid some offsets fall outside
and the weights sum to less than 1, which keeps the e-value valid. Changing a
prior is harmless if it does not look at the data (as an operator upgrade
does); choosing it from the data would void the guarantee.

**Bounds and verdicts.** Since the log-likelihood is concave in ``t``,
``l(t0 + d) - l(t0)`` is non-increasing in ``t0`` for every ``d > 0``: the
e-value against "``r <= r0``" does not increase with ``r0``, the one against
"``r >= r0``" does not decrease. So the grid ratios rejected by each form a
prefix (or suffix) of the grid and its end is found by bisection. The
*lower bound* is the smallest grid ratio that "``r <= r0``" does not reject,
the *upper bound* the largest that "``r >= r0``" does not reject; each is a
one-sided confidence sequence, valid at every interval at once. With ``better:
lower``: ``Worse`` is "``r <= 1``" rejected (lower bound above 1), ``Superior``
"``r >= 1``" rejected, ``NonInferior`` "``r >= m``" rejected (upper bound below
``m``); mirrored with ``better: higher``. The regression side is tested at
``alpha`` (the false-rollback rate), the improvement side at
``promotion_alpha`` (the false-promotion rate, ``alpha`` unless told
otherwise). No split between them is needed: a rollback is wrong only if
``r <= 1`` and a promotion only if ``r >= m`` (``r >= 1`` under superiority),
so for any true ratio at most one of the two can be an error, except at exactly
``r = 1`` under superiority, where either is (at most ``2 * alpha`` in all).
The grid point nearest the maximum likelihood is never rejected by either side,
so ``lower <= upper``.

**The exact margin.** :meth:`RatioGrid.for_margin` spaces the grid so that
``1 + margin`` is one of its points, so non-inferiority is tested at the margin
itself. Should the margin not be a grid point (a state from an older grid, a
margin edited mid-test), the nearest grid ratio towards 1 is tested instead: a
stricter claim, since rejecting "``r >= m'``" with ``m' < m`` rejects
"``r >= m``".

Why this holds for real traffic, where each request fails independently with
some probability (not Poisson counts): with equal error probabilities in both
arms, the challenger's count given ``n`` is hypergeometric, which is smaller than
the binomial in the convex order (Hoeffding, 1963, theorem 4); every likelihood
ratio here is convex in that count, so its expectation stays at most 1 at
``r = 1``. Away from ``r = 1`` the binomial is the Poisson-limit model, accurate
for the small rates releases are judged on.

The state is a log-likelihood per point of a fixed grid of ratios plus the
cumulative counts; it serialises to a plain dict for ``status`` so a restarted
operator resumes the same test. Pure stdlib math, no I/O.

References: Johari et al., "Always valid inference" (2017); Howard et al.,
"Time-uniform, nonparametric, nonasymptotic confidence sequences" (2021);
Lindon et al., "Rapid regression detection in software deployments through
sequential testing" (KDD 2022).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from typing import Any, Final

from modelrelease.api.constants import DEFAULT_MARGIN, Better, Decision

STATE_VERSION: Final = 2
"""Version of :meth:`SequentialRatioTest.to_dict`'s layout; version 1 is still read."""

_LOG_LIKELIHOOD_DECIMALS: Final = 6  # in status: short numbers, error < 1e-6 per write
_MAX_LOG_E_VALUE: Final = 700.0  # e-values above e^700 are reported as e^700
_TARGET_LOG_STEP: Final = 0.02  # grid spacing aimed at: bounds about 2% apart
_LOG_RANGE: Final = math.log(20)  # the grid covers ratios 1/20 .. 20


class ComparisonVerdict(StrEnum):
    """What a comparison says about the challenger, from the champion's point of view."""

    WORSE = "Worse"
    """Significantly worse than the champion: roll back."""
    NON_INFERIOR = "NonInferior"
    """At most ``margin`` worse, with the promised confidence: may be promoted."""
    SUPERIOR = "Superior"
    """Significantly better than the champion: may be promoted."""
    INCONCLUSIVE = "Inconclusive"
    """Not enough evidence either way yet."""


@dataclass(frozen=True)
class RatioGrid:
    """The rate ratios the test speaks about, and its priors over them.

    The grid is ``exp(k * log_step)`` for ``k`` in ``-points_per_side ..
    points_per_side``; the default (:meth:`for_margin` of the default margin)
    covers ratios 1/20 .. 20 with 1.05 on the grid, about 2.5% apart. The
    alternatives to a null ``r0`` on each side are weighted by a half-normal
    density on ``|log(r / r0)|``: ``regression_scale`` on the side where the
    challenger is worse, ``improvement_scale`` where it is better.
    """

    log_step: float = math.log(1 + DEFAULT_MARGIN) / 2
    points_per_side: int = math.ceil(_LOG_RANGE / (math.log(1 + DEFAULT_MARGIN) / 2))
    regression_scale: float = 0.5
    improvement_scale: float = 0.1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.log_step) and 0 < self.log_step <= 1):
            raise ValueError(f"log_step must be in (0, 1], got {self.log_step!r}")
        if not 1 <= self.points_per_side <= 2000:
            raise ValueError(f"points_per_side must be in 1..2000, got {self.points_per_side!r}")
        for name in ("regression_scale", "improvement_scale"):
            scale = getattr(self, name)
            if not (math.isfinite(scale) and scale > 0):
                raise ValueError(f"{name} must be positive, got {scale!r}")

    @classmethod
    def for_margin(cls, margin: float) -> RatioGrid:
        """The default grid with ``1 + margin`` on it: steps near 2% that divide
        ``log(1 + margin)`` exactly (a margin of 0 keeps 2% steps)."""
        _check_margin(margin)
        log_margin = math.log1p(margin)
        steps = max(1, round(log_margin / _TARGET_LOG_STEP))
        log_step = log_margin / steps if margin > 0 else _TARGET_LOG_STEP
        return cls(log_step=log_step, points_per_side=math.ceil(_LOG_RANGE / log_step - 1e-9))

    @property
    def size(self) -> int:
        return 2 * self.points_per_side + 1

    @property
    def null_index(self) -> int:
        """Index of the ratio 1 ("no difference")."""
        return self.points_per_side

    def log_ratio(self, index: int) -> float:
        return (index - self.points_per_side) * self.log_step

    def ratio(self, index: int) -> float:
        return math.exp(self.log_ratio(index))

    def index_of(self, ratio: float) -> int:
        """The grid index of ``ratio``; a ratio between grid points is an error."""
        position = self._position(ratio)
        index = round(position)
        if abs(position - index) > 1e-6 or not 0 <= index < self.size:
            raise ValueError(
                f"ratio {ratio!r} is not a point of the grid "
                f"(exp(k * {self.log_step}) for |k| <= {self.points_per_side})"
            )
        return index

    def index_towards_one(self, ratio: float) -> int:
        """The grid index of ``ratio``, or of the nearest grid ratio between it and 1."""
        position = self._position(ratio)
        index = math.floor(position + 1e-6) if ratio >= 1 else math.ceil(position - 1e-6)
        return min(max(index, 0), self.size - 1)

    def _position(self, ratio: float) -> float:
        if not (math.isfinite(ratio) and ratio > 0):
            raise ValueError(f"a rate ratio must be positive and finite, got {ratio!r}")
        return math.log(ratio) / self.log_step + self.points_per_side

    def to_dict(self) -> dict[str, Any]:
        return {
            "logStep": self.log_step,
            "pointsPerSide": self.points_per_side,
            "regressionPriorScale": self.regression_scale,
            "improvementPriorScale": self.improvement_scale,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatioGrid:
        """Read a grid back; a version 1 grid (one two-sided prior) gets today's priors,
        a choice made without looking at its data."""
        default = cls()
        return cls(
            log_step=float(data["logStep"]),
            points_per_side=int(data["pointsPerSide"]),
            regression_scale=float(data.get("regressionPriorScale", default.regression_scale)),
            improvement_scale=float(data.get("improvementPriorScale", default.improvement_scale)),
        )


@dataclass(frozen=True)
class ArmCounts:
    """Cumulative counts of one arm: bad events and requests."""

    bad: float = 0.0
    total: float = 0.0

    def __post_init__(self) -> None:
        _check_counts("cumulative", self.bad, self.total)

    def plus(self, bad: float, total: float) -> ArmCounts:
        return ArmCounts(bad=self.bad + bad, total=self.total + total)

    @property
    def rate(self) -> float | None:
        return self.bad / self.total if self.total > 0 else None


@dataclass(frozen=True)
class Result:
    """A comparison at one moment: estimate and bounds of the rate ratio
    (challenger over champion), the e-value that the challenger is worse than
    the champion, the verdict."""

    estimate: float
    lower: float
    upper: float
    e_value: float
    verdict: ComparisonVerdict

    @property
    def passed(self) -> bool:
        """The challenger has shown what the decision asks for."""
        return self.verdict in (ComparisonVerdict.NON_INFERIOR, ComparisonVerdict.SUPERIOR)

    @property
    def failed(self) -> bool:
        return self.verdict == ComparisonVerdict.WORSE


@dataclass(frozen=True)
class SequentialRatioTest:
    """State of one comparison metric; every method returns a new value.

    ``log_likelihoods`` holds, per grid point, the log-likelihood of all data so
    far relative to its maximum (empty: no bad event seen yet, all equal).
    """

    grid: RatioGrid = field(default_factory=RatioGrid)
    log_likelihoods: tuple[float, ...] = ()
    champion: ArmCounts = field(default_factory=ArmCounts)
    challenger: ArmCounts = field(default_factory=ArmCounts)
    intervals: int = 0

    def __post_init__(self) -> None:
        if self.log_likelihoods and len(self.log_likelihoods) != self.grid.size:
            raise ValueError(
                f"expected {self.grid.size} log-likelihoods for this grid, "
                f"got {len(self.log_likelihoods)}"
            )
        if self.intervals < 0:
            raise ValueError(f"intervals must be >= 0, got {self.intervals}")

    # --- evolving --------------------------------------------------------------

    def update(
        self,
        champion_bad: float,
        champion_total: float,
        challenger_bad: float,
        challenger_total: float,
    ) -> SequentialRatioTest:
        """Fold in one interval's increments (counts observed in that interval only).

        Fractional counts are accepted, but the guarantee is for event counts:
        prefer differences of raw counter values to PromQL ``increase()``, whose
        extrapolation inflates them.
        """
        _check_counts("champion", champion_bad, champion_total)
        _check_counts("challenger", challenger_bad, challenger_total)
        log_likelihoods = self.log_likelihoods
        bad = champion_bad + challenger_bad
        # With no bad event, or one arm without requests, the split says nothing.
        if bad > 0 and champion_total > 0 and challenger_total > 0:
            log_likelihoods = _normalised(
                _add_interval(
                    self.grid,
                    log_likelihoods or (0.0,) * self.grid.size,
                    challenger_bad,
                    bad,
                    challenger_total / champion_total,
                )
            )
        return replace(
            self,
            log_likelihoods=log_likelihoods,
            champion=self.champion.plus(champion_bad, champion_total),
            challenger=self.challenger.plus(challenger_bad, challenger_total),
            intervals=self.intervals + 1,
        )

    # --- reading ---------------------------------------------------------------

    def worse_e_value(self, ratio: float = 1.0, better: Better = Better.LOWER) -> float:
        """Evidence that the challenger is worse than ``ratio`` times the champion
        (against "rate ratio at most ``ratio``" when lower is better, "at least"
        when higher is); 1 without data. ``ratio`` must be a grid point."""
        upward = Better(better) == Better.LOWER
        return _bounded_exp(self._log_e_value(self.grid.index_of(ratio), upward, regression=True))

    def better_e_value(self, ratio: float = 1.0, better: Better = Better.LOWER) -> float:
        """Evidence that the challenger is better than ``ratio`` times the champion
        (``ratio`` 1: superiority; ``1 + margin``: non-inferiority, or
        ``1 / (1 + margin)`` when higher is better); 1 without data."""
        upward = Better(better) == Better.HIGHER
        return _bounded_exp(self._log_e_value(self.grid.index_of(ratio), upward, regression=False))

    def estimate(self) -> float:
        """Maximum-likelihood rate ratio (refined between grid points); 1 without data."""
        if not self.log_likelihoods:
            return 1.0
        values = self.log_likelihoods
        best = max(range(len(values)), key=values.__getitem__)
        offset = 0.0
        if 0 < best < len(values) - 1:
            curvature = values[best - 1] - 2 * values[best] + values[best + 1]
            if curvature < 0:
                offset = 0.5 * (values[best - 1] - values[best + 1]) / curvature
                offset = max(-0.5, min(0.5, offset))
        return math.exp(self.grid.log_ratio(best) + offset * self.grid.log_step)

    def confidence_interval(
        self,
        alpha: float,
        better: Better = Better.LOWER,
        promotion_alpha: float | None = None,
    ) -> tuple[float, float]:
        """Lower and upper bound of the rate ratio: each a one-sided confidence
        sequence, the one on the challenger's bad side at level ``alpha``, the
        other at ``promotion_alpha`` (default ``alpha``).

        The ends of the grid stand for "at most" and "at least" that ratio.
        Never empty: the most likely grid point is rejected by neither side.
        """
        _check_alpha(alpha)
        promotion_alpha = alpha if promotion_alpha is None else promotion_alpha
        _check_alpha(promotion_alpha)
        if not self.log_likelihoods:
            return self.grid.ratio(0), self.grid.ratio(self.grid.size - 1)
        lower_alpha, upper_alpha = (
            (alpha, promotion_alpha) if Better(better) == Better.LOWER else (promotion_alpha, alpha)
        )
        lowest, highest = self._bounds(better, lower_alpha, upper_alpha)
        return self.grid.ratio(lowest), self.grid.ratio(highest)

    def summary(
        self,
        alpha: float = 0.05,
        better: Better = Better.LOWER,
        margin: float = DEFAULT_MARGIN,
        decision: Decision = Decision.NON_INFERIORITY,
        promotion_alpha: float | None = None,
    ) -> Result:
        """Judge the challenger: ``Worse`` at level ``alpha``, ``NonInferior`` and
        ``Superior`` at ``promotion_alpha`` (default ``alpha``).

        ``margin`` (>= 0) is the tolerated relative worsening, as in the CRD: with
        ``better: lower`` the challenger is non-inferior once "ratio at least
        ``1 + margin``" is rejected (the upper bound is below it); with ``better:
        higher`` once "ratio at most ``1 / (1 + margin)``" is. ``Worse`` wins over
        everything; ``Superior`` means the bounds exclude 1 on the good side; under
        ``superiority`` a merely non-inferior challenger stays ``Inconclusive``.
        """
        _check_alpha(alpha)
        _check_margin(margin)
        better = Better(better)
        decision = Decision(decision)
        grid = self.grid
        null = grid.null_index
        if not self.log_likelihoods:
            lowest, highest = 0, grid.size - 1
        else:
            promotion = alpha if promotion_alpha is None else promotion_alpha
            _check_alpha(promotion)
            lower_alpha, upper_alpha = (
                (alpha, promotion) if better == Better.LOWER else (promotion, alpha)
            )
            lowest, highest = self._bounds(better, lower_alpha, upper_alpha)
        if better == Better.LOWER:
            at_margin = grid.index_towards_one(1 + margin)
            worse, superior, non_inferior = lowest > null, highest < null, highest < at_margin
        else:
            at_margin = grid.index_towards_one(1 / (1 + margin))
            worse, superior, non_inferior = highest < null, lowest > null, lowest > at_margin
        if worse:
            verdict = ComparisonVerdict.WORSE
        elif superior:
            verdict = ComparisonVerdict.SUPERIOR
        elif non_inferior and decision == Decision.NON_INFERIORITY:
            verdict = ComparisonVerdict.NON_INFERIOR
        else:
            verdict = ComparisonVerdict.INCONCLUSIVE
        return Result(
            estimate=self.estimate(),
            lower=grid.ratio(lowest),
            upper=grid.ratio(highest),
            e_value=self.worse_e_value(better=better),
            verdict=verdict,
        )

    # --- serialisation ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for ``status``; :meth:`from_dict` reads it back.

        Log-likelihoods are written to 6 decimals (a factor of at most 1 + 1e-6
        on any e-value per write), which keeps a metric's state near 3 kB;
        writing what was read back gives the same dict.
        """
        return {
            "version": STATE_VERSION,
            "grid": self.grid.to_dict(),
            "logLikelihoods": [
                round(value, _LOG_LIKELIHOOD_DECIMALS) for value in self.log_likelihoods
            ],
            "champion": {"bad": self.champion.bad, "total": self.champion.total},
            "challenger": {"bad": self.challenger.bad, "total": self.challenger.total},
            "intervals": self.intervals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SequentialRatioTest:
        """Read a state back; version 1 (one two-sided prior) keeps its
        log-likelihoods, which do not depend on the prior, and gets today's priors."""
        version = data.get("version")
        if version not in (1, STATE_VERSION):
            raise ValueError(
                f"unknown comparison state version {version!r}, expected {STATE_VERSION}"
            )
        try:
            log_likelihoods = tuple(float(value) for value in data["logLikelihoods"])
            if not all(math.isfinite(value) for value in log_likelihoods):
                raise ValueError("log-likelihoods in a comparison state must be finite numbers")
            return cls(
                grid=RatioGrid.from_dict(data["grid"]),
                log_likelihoods=log_likelihoods,
                champion=_arm_from_dict(data["champion"]),
                challenger=_arm_from_dict(data["challenger"]),
                intervals=int(data["intervals"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed comparison state: {error!r}") from error

    # --- internals -------------------------------------------------------------

    def _log_e_value(self, centre: int, upward: bool, regression: bool) -> float:
        """log of the e-value against "ratio at most grid point ``centre``" (``upward``:
        alternatives above it) or "at least" (alternatives below), with the
        regression-side or the improvement-side prior."""
        if not self.log_likelihoods:
            return 0.0
        scale = self.grid.regression_scale if regression else self.grid.improvement_scale
        weights = _log_half_normal(self.grid.log_step, scale, self.grid.size - 1)
        values = self.log_likelihoods
        reference = values[centre]
        if upward:
            others = values[centre + 1 : centre + 1 + len(weights)]
        else:
            others = values[max(centre - len(weights), 0) : centre][::-1]
        if not others:
            return -math.inf
        terms = [weight + value - reference for weight, value in zip(weights, others, strict=False)]
        top = max(terms)
        return top + math.log(math.fsum(math.exp(term - top) for term in terms))

    def _bounds(self, better: Better, lower_alpha: float, upper_alpha: float) -> tuple[int, int]:
        """Grid indices of the lower and upper bound, by bisection (see the module
        docstring: the rejected ratios form a prefix, or a suffix, of the grid)."""
        values = self.log_likelihoods
        best = max(range(len(values)), key=values.__getitem__)
        lower_is_regression = better == Better.LOWER  # then "r <= r0" is tested against worse

        def lower_rejects(index: int) -> bool:
            log_e = self._log_e_value(index, upward=True, regression=lower_is_regression)
            return log_e >= -math.log(lower_alpha)

        def upper_rejects(index: int) -> bool:
            log_e = self._log_e_value(index, upward=False, regression=not lower_is_regression)
            return log_e >= -math.log(upper_alpha)

        # The smallest index in 0..best that the lower side does not reject.
        low, high = 0, best
        while low < high:
            middle = (low + high) // 2
            if lower_rejects(middle):
                low = middle + 1
            else:
                high = middle
        lowest = low
        # The largest index in best..size-1 that the upper side does not reject.
        low, high = best, len(values) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if upper_rejects(middle):
                high = middle - 1
            else:
                low = middle
        return lowest, low


def count_above(buckets: Iterable[tuple[float, float]], threshold: float) -> tuple[float, float]:
    """``(events above threshold, all events)`` from cumulative histogram buckets.

    ``buckets`` are ``(le, count)`` pairs as Prometheus exposes them (counts of
    events ``<= le``, including ``le = +Inf``); ``threshold`` must be one of the
    bucket boundaries, since counts between boundaries are unknown.
    """
    counts = {float(upper): float(count) for upper, count in buckets}
    if math.inf not in counts:
        raise ValueError("histogram buckets lack the le=+Inf bucket that counts all events")
    at_or_below = next(
        (count for upper, count in counts.items() if math.isclose(upper, threshold, rel_tol=1e-9)),
        None,
    )
    if at_or_below is None:
        boundaries = ", ".join(f"{upper:g}" for upper in sorted(counts))
        raise ValueError(
            f"threshold {threshold:g} is not a bucket boundary; the histogram has {boundaries}"
        )
    total = counts[math.inf]
    return max(total - at_or_below, 0.0), total


# --- helpers -----------------------------------------------------------------


def _check_counts(arm: str, bad: float, total: float) -> None:
    if not (math.isfinite(bad) and math.isfinite(total) and 0 <= bad <= total):
        raise ValueError(
            f"{arm} counts must be finite with 0 <= bad <= total, got bad={bad!r} total={total!r}"
        )


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _arm_from_dict(data: Mapping[str, Any]) -> ArmCounts:
    return ArmCounts(bad=float(data["bad"]), total=float(data["total"]))


def _softplus(value: float) -> float:
    """log(1 + e^value) without overflow."""
    if value > 0:
        return value + math.log1p(math.exp(-value))
    return math.log1p(math.exp(value))


def _add_interval(
    grid: RatioGrid,
    log_likelihoods: tuple[float, ...],
    challenger_bad: float,
    bad: float,
    odds_of_share: float,
) -> list[float]:
    """Add one interval's binomial log-likelihood at every grid ratio.

    With ``t = log r`` and ``a`` the log odds of the challenger's share, the
    challenger's ``x`` of ``n`` bad events contribute ``x*(t + a) - n*log(1 + e^(t + a))``;
    ``x*a`` is the same at every grid point and dropped.
    """
    if odds_of_share > 1e200:  # e^(t + a) would overflow: use the log-space form
        log_odds = math.log(odds_of_share)
        return [
            value + challenger_bad * log_ratio - bad * _softplus(log_ratio + log_odds)
            for value, log_ratio in zip(log_likelihoods, _log_ratios(grid), strict=True)
        ]
    log1p = math.log1p
    return [
        value + challenger_bad * log_ratio - bad * log1p(ratio * odds_of_share)
        for value, log_ratio, ratio in zip(
            log_likelihoods, _log_ratios(grid), _ratios(grid), strict=True
        )
    ]


def _normalised(values: list[float]) -> tuple[float, ...]:
    """Shift so the largest is 0: only differences matter, and numbers stay small."""
    top = max(values)
    return tuple([value - top for value in values])


def _check_margin(margin: float) -> None:
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a relative worsening >= 0 (0.05 is 5%), got {margin!r}")


def _bounded_exp(log_value: float) -> float:
    return math.exp(min(log_value, _MAX_LOG_E_VALUE))


@cache
def _log_half_normal(log_step: float, scale: float, offsets: int) -> tuple[float, ...]:
    """Log weights of offsets of 1 .. ``offsets`` grid steps under a half-normal
    prior with ``scale`` on the log ratio, normalised over those offsets."""
    densities = [-((step * log_step) ** 2) / (2 * scale**2) for step in range(1, offsets + 1)]
    top = max(densities)
    log_total = top + math.log(math.fsum(math.exp(value - top) for value in densities))
    return tuple(value - log_total for value in densities)


@cache
def _log_ratios(grid: RatioGrid) -> tuple[float, ...]:
    return tuple(grid.log_ratio(index) for index in range(grid.size))


@cache
def _ratios(grid: RatioGrid) -> tuple[float, ...]:
    return tuple(math.exp(log_ratio) for log_ratio in _log_ratios(grid))
