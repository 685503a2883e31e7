"""Distribution drift: an anytime-valid test that two arms' histograms have the same shape.

Each arm's events (requests, predictions) fall into the ``K`` buckets of a
histogram: a prediction score, an output length. The question is whether the
challenger's bucket shares differ from the champion's, whichever buckets move.

**The construction (after Lindon & Malek, "Anytime-valid inference for
multinomial count data", NeurIPS 2022).** Think of both arms' events of one
bucket as one stream. Traffic is split at random, each request to the
challenger with a fixed probability, so events of bucket ``j`` arrive as
Poisson-like processes with rates ``s_arm * lambda(t) * p_arm[j]``: the
request rate ``lambda(t)`` may change in any way (a busy hour, a new mix of
clients), it is common to both arms and cancels. Conditional on an event in
bucket ``j``, it came from the challenger with probability
``theta_j = s_c p_c[j] / (s_c p_c[j] + s_h p_h[j])`` (the multinomial
conditioning of Lindon & Malek, with two arms). If the two arms have the same
bucket shares (``p_c = p_h``, the null), ``theta_j = theta`` is the same in
every bucket: the challenger's share of traffic. Drift makes it differ.

The null fixes nothing but "one theta": the share need not be known (mesh-less
splits are not exact, a shadow mirrors a percentage). The e-value is

    E = prod_j  B(a + x_j, b + y_j) / B(a, b)   /   max_theta theta^X (1 - theta)^Y

with ``x_j``, ``y_j`` the challenger's and champion's counts in bucket ``j``,
``X``, ``Y`` their sums, ``B`` the beta function and ``a = b = 1/2`` (a
Beta(1/2, 1/2) prior on each bucket's ``theta_j``, the Dirichlet-multinomial
mixture of the paper for two categories, per bucket).

**Why it is valid.** For any fixed ``theta``, the numerator over
``theta^X (1 - theta)^Y`` is a product over buckets of Beta-Bernoulli mixture
likelihood ratios of that bucket's arm labels against Bernoulli(``theta``):
under the null with that ``theta`` it is a nonnegative martingale in the
sequence of events with initial value 1, however the events are spread over
buckets and time. Maximising the denominator over ``theta`` only makes ``E``
smaller, so for the true ``theta`` ``E`` is below a test martingale: an
e-process for the composite null. Observed at the end of each interval it is
still bounded by a nonnegative supermartingale, and Ville's inequality gives
``P(E ever >= 1/alpha) <= alpha`` however often it is read. ``E`` depends on
the counts only (the mixture is exchangeable), so the state is the counts.

**What it assumes.** The split is fixed during the stage and each request goes
to an arm independently of what the model answers (true for weighted routes
and for mirroring; without a mesh the split is the share of ready pods, which
an autoscaler may change: if the split and the request mix change together,
the buckets' pooled shares differ without drift). In shadow stages both arms
see the same requests: a pair of answers to one request falls into buckets of
both arms, which makes the arms' counts closer to each other than independent
routing would, so the test errs on the side of not alarming;
``hack/bench/drift.py`` measures A/A alarms both ways.

**Which buckets moved.** Each arm's share per bucket (``x_j / X``, ``y_j / Y``)
and the buckets with the largest differences; the total variation distance
(half the sum of absolute differences) sums the drift up in one number.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

PRIOR: Final = 0.5
"""Both Beta parameters of each bucket's challenger share (Jeffreys)."""

STATE_KIND: Final = "distribution"


@dataclass(frozen=True)
class BucketShift:
    """One bucket: its label and each arm's share of events in it."""

    bucket: str
    champion: float
    challenger: float

    @property
    def difference(self) -> float:
        return self.challenger - self.champion


@dataclass(frozen=True)
class DriftSummary:
    """The test's reading: e-value, whether it drifted at ``alpha``, the buckets."""

    e_value: float
    drifted: bool
    distance: float
    buckets: tuple[BucketShift, ...]

    def moved(self, top: int = 3) -> tuple[BucketShift, ...]:
        """The ``top`` buckets whose shares differ most, largest first (ties: lower bucket)."""
        ranked = sorted(
            enumerate(self.buckets), key=lambda item: (-abs(item[1].difference), item[0])
        )
        return tuple(shift for _, shift in ranked[:top] if shift.difference != 0)


@dataclass(frozen=True)
class DriftTest:
    """Counts per bucket of both arms since the test began, and the bucket edges.

    ``edges`` are the histogram's upper bounds (``le``) in increasing order, the
    last ``+Inf``; ``champion[j]`` and ``challenger[j]`` count events in
    ``(edges[j-1], edges[j]]``.
    """

    edges: tuple[float, ...]
    champion: tuple[float, ...] = field(default=())
    challenger: tuple[float, ...] = field(default=())
    intervals: int = 0

    def __post_init__(self) -> None:
        _check_edges(self.edges)
        size = len(self.edges)
        champion = self.champion or (0.0,) * size
        challenger = self.challenger or (0.0,) * size
        for arm, counts in (("champion", champion), ("challenger", challenger)):
            if len(counts) != size:
                raise ValueError(f"{arm} has {len(counts)} bucket counts for {size} buckets")
            if not all(math.isfinite(count) and count >= 0 for count in counts):
                raise ValueError(f"{arm} bucket counts must be finite and >= 0, got {counts!r}")
        object.__setattr__(self, "champion", tuple(float(c) for c in champion))
        object.__setattr__(self, "challenger", tuple(float(c) for c in challenger))

    def update(self, champion: Sequence[float], challenger: Sequence[float]) -> DriftTest:
        """The test after one interval's increments per bucket (each >= 0)."""
        size = len(self.edges)
        if len(champion) != size or len(challenger) != size:
            raise ValueError(f"increments must have one count per bucket ({size})")
        return DriftTest(
            edges=self.edges,
            champion=tuple(a + b for a, b in zip(self.champion, champion, strict=True)),
            challenger=tuple(a + b for a, b in zip(self.challenger, challenger, strict=True)),
            intervals=self.intervals + 1,
        )

    def log_e_value(self) -> float:
        """Log of the e-value against "the same bucket shares" (0 before any event)."""
        log_mixture = sum(
            _log_beta(PRIOR + x, PRIOR + y) - _log_beta(PRIOR, PRIOR)
            for x, y in zip(self.challenger, self.champion, strict=True)
            if x + y > 0
        )
        total_x, total_y = sum(self.challenger), sum(self.champion)
        total = total_x + total_y
        if total <= 0:
            return 0.0
        log_null = _xlogy(total_x, total_x / total) + _xlogy(total_y, total_y / total)
        return log_mixture - log_null

    def e_value(self) -> float:
        return math.exp(min(self.log_e_value(), 700.0))

    def summary(self, alpha: float) -> DriftSummary:
        """The e-value, Drifted when it reaches ``1/alpha``, and the shares per bucket."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        log_e = self.log_e_value()
        shifts = self.shifts()
        distance = 0.5 * sum(abs(shift.difference) for shift in shifts)
        return DriftSummary(
            e_value=math.exp(min(log_e, 700.0)),
            drifted=log_e >= -math.log(alpha),
            distance=distance,
            buckets=shifts,
        )

    def shifts(self) -> tuple[BucketShift, ...]:
        total_x, total_y = sum(self.challenger), sum(self.champion)
        labels = bucket_labels(self.edges)
        return tuple(
            BucketShift(
                bucket=label,
                champion=y / total_y if total_y > 0 else 0.0,
                challenger=x / total_x if total_x > 0 else 0.0,
            )
            for label, x, y in zip(labels, self.challenger, self.champion, strict=True)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": STATE_KIND,
            "edges": [_edge_text(edge) for edge in self.edges],
            "champion": list(self.champion),
            "challenger": list(self.challenger),
            "intervals": self.intervals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftTest:
        try:
            if data.get("kind") != STATE_KIND:
                raise ValueError(f"not a distribution test's state (kind {data.get('kind')!r})")
            return cls(
                edges=tuple(float(edge) for edge in data["edges"]),
                champion=tuple(float(count) for count in data["champion"]),
                challenger=tuple(float(count) for count in data["challenger"]),
                intervals=int(data["intervals"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"incomplete distribution test state: {error!r}") from error


# --- histogram buckets ------------------------------------------------------------


def bucket_counts(buckets: Sequence[tuple[float, float]]) -> tuple[tuple[float, ...], list[float]]:
    """``(edges, counts per bucket)`` from cumulative ``(le, count)`` pairs of one series.

    Prometheus buckets count events ``<= le``; each bucket's own count is the
    difference to the previous edge, never below 0 (a bucket read a moment
    before its neighbour). Raises ValueError without the ``+Inf`` bucket or with
    an edge twice.
    """
    ordered = sorted((float(le), float(count)) for le, count in buckets)
    edges = tuple(le for le, _ in ordered)
    _check_edges(edges)
    counts: list[float] = []
    below = 0.0
    for _, cumulative in ordered:
        value = max(cumulative, 0.0)
        counts.append(max(value - below, 0.0))
        below = max(below, value)
    return edges, counts


def bucket_labels(edges: Sequence[float]) -> list[str]:
    """Readable bucket names: ``<=0.1``, ``0.1-0.2``, ..., ``>1``."""
    labels = []
    for index, edge in enumerate(edges):
        if index == 0:
            labels.append(f"<={_edge_text(edge)}" if math.isfinite(edge) else "all")
        elif math.isinf(edge):
            labels.append(f">{_edge_text(edges[index - 1])}")
        else:
            labels.append(f"{_edge_text(edges[index - 1])}-{_edge_text(edge)}")
    return labels


def describe_edges(edges: Sequence[float]) -> str:
    return ", ".join(_edge_text(edge) for edge in edges)


def _check_edges(edges: Sequence[float]) -> None:
    if not edges or not math.isinf(edges[-1]) or edges[-1] < 0:
        raise ValueError("histogram buckets lack the le=+Inf bucket that counts all events")
    if any(not later > earlier for earlier, later in itertools.pairwise(edges)):
        raise ValueError(f"bucket edges must increase, got {describe_edges(edges)}")


def _edge_text(edge: float) -> str:
    return "+Inf" if edge == math.inf else f"{edge:g}"


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)
