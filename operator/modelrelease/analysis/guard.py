"""The sequential SLO guard: an anytime-valid test that a rate is above its SLO's ``max``.

A ratio SLO (errors over requests, slow requests over requests) is checked
every analysis interval against ``max``, and that check decides whether a step
may end. Between those checks the guard asks, after every scrape, whether the
counts already show beyond reasonable doubt that the challenger's rate is above
``max``, so a clearly broken version rolls back in seconds whatever the
interval is.

**The test.** Each request is bad with some probability ``q`` (which may change
over time, as a version that turns bad does). Against the composite null
"``q <= p0`` at every request" (``p0`` the SLO's ``max``), one request's
likelihood ratio for an alternative ``p > p0`` is ``p/p0`` if it is bad and
``(1-p)/(1-p0)`` if not; under any ``q <= p0`` its expectation
``q*p/p0 + (1-q)*(1-p)/(1-p0)`` is at most 1 (linear in ``q``, 1 at ``q = p0``,
increasing). The counts come in *batches* (the increments between points of a
time grid fixed in advance, one per second). The alternative of a batch is a
*predictable plug-in* (Robbins and Siegmund, 1974; Waudby-Smith and Ramdas,
2024): the rate seen in the few batches just before it, shrunk towards ``p0``
and clipped to ``p0 .. 20*p0``. Chosen from the past only, it leaves every
batch's expected ratio at most 1, so the running product ``E`` is a
nonnegative supermartingale under the null with ``E(0) = 1``. By Ville's
inequality it ever reaches ``1/alpha`` with probability at most ``alpha``, however
often it is looked at. Because the alternative follows the recent rate, a
healthy stretch costs (almost) nothing (the plug-in is ``p0`` and the batch's
ratio 1), and a version that turns bad is judged on its bad requests, not
diluted by its healthy past.

**Saved now and then, recomputed in between.** The product up to some moment
can be saved and the batches since recomputed from Prometheus' history at every
read, so nothing needs a status write between interval checks: every read sees
the same batches as the last one plus newer ones. A batch never judged may be
left out (a ratio of 1, a choice made without looking at it), but a batch
judged once must stay in: dropping it later could raise the e-value.

**Alpha over a whole release.** One product runs for the challenger's whole
release (its saved value goes from step to step); every guarded SLO has its
own, at ``alpha / SLOs`` (a union bound), so the chance that the guard ever rolls
back a challenger whose rates all stay at most their ``max`` is at most
``alpha``.

**Counts.** Increments are exact counter differences per series (one per
pod), summed over series; a series whose total went down restarted and counts
what it holds from zero, as the comparison counts.

Pure stdlib math, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

ESTIMATE_BATCHES: Final = 5
"""The plug-in rate is estimated from this many batches just before the one judged."""

PRIOR_REQUESTS: Final = 1.0
"""The estimate is shrunk towards ``max`` as if this many requests had been at ``max``."""

MAX_RATIO: Final = 20.0
"""The plug-in rate is at most this many times ``max`` (and below 1)."""

_MAX_LOG: Final = 700.0


@dataclass(frozen=True)
class Counts:
    """Bad and total events (bad <= total): cumulative along a path, or one batch."""

    bad: float
    total: float

    def minus(self, other: Counts) -> Counts:
        total = max(self.total - other.total, 0.0)
        return Counts(min(max(self.bad - other.bad, 0.0), total), total)


def plug_in_rate(previous: Sequence[Counts], threshold: float) -> float:
    """The alternative for the next batch: the rate of ``previous`` batches shrunk
    towards ``threshold``, clipped to ``threshold .. MAX_RATIO * threshold`` (below 1)."""
    _check_threshold(threshold)
    bad = math.fsum(batch.bad for batch in previous)
    total = math.fsum(batch.total for batch in previous)
    estimate = (bad + PRIOR_REQUESTS * threshold) / (total + PRIOR_REQUESTS)
    ceiling = min(MAX_RATIO * threshold, (1 + threshold) / 2, 0.999)
    return min(max(estimate, threshold), max(ceiling, threshold))


def log_batch_ratio(batch: Counts, alternative: float, threshold: float) -> float:
    """log of one batch's likelihood ratio of ``alternative`` against ``threshold``."""
    _check_counts(batch)
    if alternative == threshold:
        return 0.0
    good = batch.total - batch.bad
    return batch.bad * math.log(alternative / threshold) + good * (
        math.log1p(-alternative) - math.log1p(-threshold)
    )


def extend(log_e: float, batches: Sequence[Counts], first: int, threshold: float) -> float:
    """``log_e`` with the batches ``batches[first:]`` folded in; the batches before
    ``first`` (already in ``log_e``) only feed the plug-in estimates."""
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    for index in range(first, len(batches)):
        previous = batches[max(index - ESTIMATE_BATCHES, 0) : index]
        alternative = plug_in_rate(previous, threshold)
        log_e += log_batch_ratio(batches[index], alternative, threshold)
    return min(log_e, _MAX_LOG)


def e_value(log_e: float) -> float:
    return math.exp(min(log_e, _MAX_LOG))


def guard_alpha(alpha: float, slos: int) -> float:
    """The level of one SLO's guard: ``alpha`` split evenly over the guarded SLOs."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return alpha / max(slos, 1)


# --- batches from raw counters -------------------------------------------------------

SeriesValues = Mapping[str, tuple[float | None, float]]
"""Per series (one pod): raw cumulative ``(bad, total)`` counter values; ``bad`` is None
when no bad-event series exists for it (none counted yet)."""


def batches_of(samples: Sequence[SeriesValues]) -> list[Counts]:
    """The exact increments between consecutive ``samples`` (raw values per series, in
    time order): one batch per sample after the first.

    Per series the increment is the difference from its previous sample; a series
    whose total went down restarted, so all it holds is new (bad and total reset
    together); a series first seen after the first sample is a new pod and counts
    whole; a series missing from a sample counts nothing then and goes on from its
    last values. Bad increments are capped at the total's.
    """
    batches: list[Counts] = []
    last: dict[str, tuple[float, float]] = {}
    if samples:
        last = {key: _clean(values) for key, values in samples[0].items()}
    for sample in samples[1:]:
        bad_sum = total_sum = 0.0
        for key, raw in sample.items():
            previous = last.get(key)
            if raw[0] is None and previous is not None:
                raw = (previous[0], raw[1])  # no bad series this time: none counted since
            bad, total = _clean(raw)
            if previous is None or total < previous[1]:
                total_increment = total
                bad_increment = min(bad, total)
                kept = (bad_increment, total)
            else:
                total_increment = total - previous[1]
                if bad < previous[0]:  # a restart the total hid: go on from here
                    bad_increment, kept = 0.0, (bad, total)
                else:
                    bad_increment = min(bad - previous[0], total_increment)
                    kept = (previous[0] + bad_increment, total)
            last[key] = kept
            bad_sum += bad_increment
            total_sum += total_increment
        batches.append(Counts(bad_sum, total_sum))
    return batches


def _clean(values: tuple[float | None, float]) -> tuple[float, float]:
    bad, total = values
    total = max(total, 0.0) if math.isfinite(total) else 0.0
    bad = 0.0 if bad is None or not math.isfinite(bad) else max(bad, 0.0)
    return min(bad, total), total


# --- helpers -------------------------------------------------------------------------


def _check_threshold(threshold: float) -> None:
    if not (math.isfinite(threshold) and 0 < threshold < 1):
        raise ValueError(f"a guarded SLO's max must be a rate in (0, 1), got {threshold!r}")


def _check_counts(batch: Counts) -> None:
    if not (
        math.isfinite(batch.bad) and math.isfinite(batch.total) and 0 <= batch.bad <= batch.total
    ):
        raise ValueError(f"counts must be finite with 0 <= bad <= total, got {batch!r}")
