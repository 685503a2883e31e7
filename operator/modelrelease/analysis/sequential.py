"""The champion-challenger judge: an anytime-valid test on the ratio of two event rates.

Each interval brings, per arm, a count of *bad* events (errors, requests slower
than a threshold, ...) and a count of requests. Given the ``n`` bad events of one
interval, the challenger's share of them is binomial: with rate ratio ``r``
(challenger's rate over the champion's) and ``p0`` the challenger's share of
that interval's requests, its count is ``Binomial(n, p(r))`` with
``p(r) = r*p0 / (r*p0 + 1 - p0)``. The share may change between intervals.

The likelihood ratio of ``r`` against a null ``r0`` multiplies across
intervals; averaged over a fixed prior on ``log r`` (a normal around ``log r0``,
discretised on a grid of ratios) it is an *e-value*: a nonnegative
supermartingale under the null, so by Ville's inequality it ever reaches
``1/alpha`` with probability at most ``alpha``, however often it is looked at.
The grid ratios not rejected that way form a confidence sequence, valid at every
interval at once; the reported bounds are its smallest and largest grid ratio
(2% apart by default). Verdicts read the bounds: ``Worse`` when they exclude 1
on the bad side, ``Superior`` on the good side, ``NonInferior`` when they stay
below the tolerated margin.

Why this holds for real traffic, where each request fails independently with
some probability (not Poisson counts): with equal error probabilities in both
arms, the challenger's count given ``n`` is hypergeometric, which is smaller than
the binomial in the convex order (Hoeffding, 1963, theorem 4); every likelihood
ratio here is convex in that count, so its expectation stays at most 1. Away
from ``r0 = 1`` the binomial is the Poisson-limit model, accurate for the small
rates releases are judged on.

The state is a log-likelihood per point of a fixed grid of ratios plus the
cumulative counts; it serialises to a plain dict for ``status`` so a restarted
operator resumes the same test. Pure stdlib math, no I/O.

References: Johari et al., "Always valid inference" (2017); Lindon et al.,
"Rapid regression detection in software deployments through sequential
testing" (KDD 2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from typing import Any, Final

from modelrelease.api.constants import Better, Decision

STATE_VERSION: Final = 1
"""Version of :meth:`SequentialRatioTest.to_dict`'s layout."""

_LOG_LIKELIHOOD_DECIMALS: Final = 6  # in status: short numbers, error < 1e-6 per write
_MAX_LOG_E_VALUE: Final = 700.0  # e-values above e^700 are reported as e^700


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
    """The rate ratios the test speaks about, and its prior over them.

    The grid is ``exp(k * log_step)`` for ``k`` in ``-points_per_side ..
    points_per_side``; the defaults cover ratios 1/20 .. 20 in 2% steps. For the
    null ``r0`` the alternatives are the other grid points, weighted by a normal
    density on ``log(r / r0)`` with standard deviation ``prior_scale``. A test
    keeps its grid for life: changing the prior after seeing data would void the
    guarantee, which is why the grid is part of the serialised state.
    """

    log_step: float = 0.02
    points_per_side: int = 150
    prior_scale: float = 0.3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.log_step) and 0 < self.log_step <= 1):
            raise ValueError(f"log_step must be in (0, 1], got {self.log_step!r}")
        if not 1 <= self.points_per_side <= 2000:
            raise ValueError(f"points_per_side must be in 1..2000, got {self.points_per_side!r}")
        if not (math.isfinite(self.prior_scale) and self.prior_scale > 0):
            raise ValueError(f"prior_scale must be positive, got {self.prior_scale!r}")

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
        if not (math.isfinite(ratio) and ratio > 0):
            raise ValueError(f"a rate ratio must be positive and finite, got {ratio!r}")
        position = math.log(ratio) / self.log_step + self.points_per_side
        index = round(position)
        if abs(position - index) > 1e-6 or not 0 <= index < self.size:
            raise ValueError(
                f"ratio {ratio!r} is not a point of the grid "
                f"(exp(k * {self.log_step}) for |k| <= {self.points_per_side})"
            )
        return index

    def to_dict(self) -> dict[str, Any]:
        return {
            "logStep": self.log_step,
            "pointsPerSide": self.points_per_side,
            "priorScale": self.prior_scale,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatioGrid:
        return cls(
            log_step=float(data["logStep"]),
            points_per_side=int(data["pointsPerSide"]),
            prior_scale=float(data["priorScale"]),
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
    (challenger over champion), the e-value against "no difference", the verdict."""

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

    def e_value(self, ratio: float = 1.0) -> float:
        """Evidence against "the rate ratio is ``ratio``" (a grid point); 1 without data."""
        return math.exp(min(self._log_e_value(self.grid.index_of(ratio)), _MAX_LOG_E_VALUE))

    def rejects(self, ratio: float = 1.0, alpha: float = 0.05) -> bool:
        """Whether ``e_value(ratio) >= 1/alpha``, usually without computing the mixture."""
        _check_alpha(alpha)
        index = self.grid.index_of(ratio)
        return bool(self.log_likelihoods) and self._rejection_rule(-math.log(alpha))(index)

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

    def confidence_interval(self, alpha: float) -> tuple[float, float]:
        """Smallest and largest grid ratio not rejected at level ``alpha``.

        The pair covers the true ratio at every interval simultaneously with
        probability at least ``1 - alpha``. The ends of the grid stand for "at
        most" and "at least" that ratio. Never empty: the most likely grid point
        has an e-value of at most 1.
        """
        _check_alpha(alpha)
        if not self.log_likelihoods:
            return self.grid.ratio(0), self.grid.ratio(self.grid.size - 1)
        rejects = self._rejection_rule(-math.log(alpha))
        candidates = range(self.grid.size)
        lowest = next(i for i in candidates if not rejects(i))
        highest = next(i for i in reversed(candidates) if i == lowest or not rejects(i))
        return self.grid.ratio(lowest), self.grid.ratio(highest)

    def summary(
        self,
        alpha: float = 0.05,
        better: Better = Better.LOWER,
        margin: float = 1.1,
        decision: Decision = Decision.NON_INFERIORITY,
    ) -> Result:
        """Judge the challenger at level ``alpha``.

        ``margin`` (>= 1) is the tolerated factor in the bad direction: with
        ``better: lower`` the challenger is non-inferior once the upper bound is
        below ``margin``; with ``better: higher`` once the lower bound is above
        ``1 / margin``. ``Worse`` wins over everything; ``Superior`` means the
        bounds exclude 1 on the good side; under ``superiority`` a merely
        non-inferior challenger stays ``Inconclusive``.
        """
        _check_alpha(alpha)
        if not (math.isfinite(margin) and margin >= 1):
            raise ValueError(f"margin must be a factor >= 1, got {margin!r}")
        better = Better(better)
        decision = Decision(decision)
        lower, upper = self.confidence_interval(alpha)
        if better == Better.LOWER:
            worse, superior, non_inferior = lower > 1, upper < 1, upper < margin
        else:
            worse, superior, non_inferior = upper < 1, lower > 1, lower > 1 / margin
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
            lower=lower,
            upper=upper,
            e_value=self.e_value(),
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
        version = data.get("version")
        if version != STATE_VERSION:
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

    def _log_e_value(self, centre: int) -> float:
        if not self.log_likelihoods:
            return 0.0
        return _log_mixture(self.grid, centre, self.log_likelihoods) - (
            _log_prior_normalisers(self.grid)[centre] + self.log_likelihoods[centre]
        )

    def _rejection_rule(self, log_threshold: float) -> Callable[[int], bool]:
        """Whether the e-value of a grid point reaches the threshold, computing the
        full mixture only where cheap bounds on it do not already decide."""
        values = self.log_likelihoods
        top = max(values)
        best = values.index(top)
        kernel = _log_prior_kernel(self.grid)
        normalisers = _log_prior_normalisers(self.grid)
        span = self.grid.size - 1
        scale_in_steps = self.grid.prior_scale / self.grid.log_step

        def rejects(centre: int) -> bool:
            gap = top - values[centre]
            if gap < log_threshold:  # the mixture is an average: log e <= gap
                return False
            # The log-likelihood is concave in log r, so on the way to its maximum it
            # lies above the chord: one term of the mixture, `steps` grid points
            # towards the maximum, is a lower bound on the whole (slack for rounding).
            needed = log_threshold + normalisers[centre] + 1e-6 * (1 + gap)
            distance = abs(best - centre)
            slope = gap / distance
            steps = min(distance, max(1, round(slope * scale_in_steps**2)))
            if kernel[span + steps] + steps * slope >= needed:
                return True
            if _log_chord_mixture(slope, distance, scale_in_steps) >= needed:
                return True
            return self._log_e_value(centre) >= log_threshold

        return rejects


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


def _log_chord_mixture(slope: float, distance: int, scale: float) -> float:
    """A lower bound on the log of the sum, over ``d = 1 .. distance``, of the chord
    terms ``f(d) = exp(-d^2 / (2 scale^2) + d * slope)``.

    ``f`` is unimodal, so the sum is at least its integral minus its largest
    value; the integral is Gaussian. Returns ``-inf`` where that says nothing.
    """
    mode = slope * scale**2
    peak = min(max(mode, 1.0), float(distance))
    log_largest = -(peak**2) / (2 * scale**2) + peak * slope
    root_two = math.sqrt(2)
    low, high = (1 - mode) / scale, (distance - mode) / scale
    if low > 0:  # in the tails 1 - erf loses precision; erfc does not
        mass = 0.5 * (math.erfc(low / root_two) - math.erfc(high / root_two))
    elif high < 0:
        mass = 0.5 * (math.erfc(-high / root_two) - math.erfc(-low / root_two))
    else:
        mass = 0.5 * (math.erf(high / root_two) - math.erf(low / root_two))
    if mass <= 0:
        return -math.inf
    log_integral = mode * slope / 2 + math.log(scale * math.sqrt(2 * math.pi) * mass)
    if log_integral <= log_largest:
        return -math.inf
    return log_integral + math.log1p(-math.exp(log_largest - log_integral))


def _log_mixture(grid: RatioGrid, centre: int, log_likelihoods: tuple[float, ...]) -> float:
    """log of sum over grid points j != centre of prior(j - centre) * exp(loglik_j)."""
    kernel = _log_prior_kernel(grid)
    start = grid.size - 1 - centre
    terms = [
        weight + value
        for weight, value in zip(kernel[start : start + grid.size], log_likelihoods, strict=True)
    ]
    top = max(terms)
    exp = math.exp
    return top + math.log(sum([exp(term - top) for term in terms]))


@cache
def _log_ratios(grid: RatioGrid) -> tuple[float, ...]:
    return tuple(grid.log_ratio(index) for index in range(grid.size))


@cache
def _ratios(grid: RatioGrid) -> tuple[float, ...]:
    return tuple(math.exp(log_ratio) for log_ratio in _log_ratios(grid))


@cache
def _log_prior_kernel(grid: RatioGrid) -> tuple[float, ...]:
    """Unnormalised log prior weight of an offset of d grid steps, at index d + size - 1.

    The null itself gets no weight (it would only dilute the evidence).
    """
    span = grid.size - 1
    variance = grid.prior_scale**2
    return tuple(
        -((offset * grid.log_step) ** 2) / (2 * variance) if offset else -math.inf
        for offset in range(-span, span + 1)
    )


@cache
def _log_prior_normalisers(grid: RatioGrid) -> tuple[float, ...]:
    """Per null point, the log of its prior's total weight over the grid.

    Computed by the same code path as the mixture, so that without data the
    e-value is exactly 1.
    """
    flat = (0.0,) * grid.size
    return tuple(_log_mixture(grid, centre, flat) for centre in range(grid.size))
