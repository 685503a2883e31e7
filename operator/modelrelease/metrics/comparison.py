"""Reading comparison counters: every arm's queries at once, every error turned into data."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from modelrelease.analysis.drift import bucket_counts
from modelrelease.analysis.sequential import count_above
from modelrelease.api.constants import MetricKind
from modelrelease.core.comparison import (
    ArmQueries,
    ArmReading,
    Counter,
    MetricQueries,
    MetricReading,
    series_key,
)
from modelrelease.metrics.provider import MetricsError, MetricsProvider


class _ReadError(Exception):
    pass


async def read_comparison(
    provider: MetricsProvider, metrics: Sequence[MetricQueries]
) -> dict[str, MetricReading]:
    """Each metric's raw counters per series for champion and challenger; never raises."""
    readings = await asyncio.gather(*(_read_metric(provider, metric) for metric in metrics))
    return {metric.name: reading for metric, reading in zip(metrics, readings, strict=True)}


async def _read_metric(provider: MetricsProvider, metric: MetricQueries) -> MetricReading:
    try:
        champion, challenger = await asyncio.gather(
            _read_arm(provider, metric, metric.champion),
            _read_arm(provider, metric, metric.challenger),
        )
    except _ReadError as error:
        return MetricReading(error=str(error))
    return MetricReading(champion=champion, challenger=challenger)


async def _read_arm(
    provider: MetricsProvider, metric: MetricQueries, arm: ArmQueries
) -> ArmReading:
    """One arm's counters by series; a series without a total is not read this time."""
    if metric.kind is MetricKind.RATIO:
        assert arm.bad is not None
        assert arm.total is not None
        bad, total = await asyncio.gather(_vector(provider, arm.bad), _vector(provider, arm.total))
        bad_by_key = {series_key(labels): value for labels, value in bad}
        return {
            key: Counter(bad=bad_by_key.get(key), total=value)
            for key, value in ((series_key(labels), value) for labels, value in total)
        }
    assert arm.buckets is not None
    grouped: dict[str, list[tuple[float, float]]] = {}
    for labels, value in await _vector(provider, arm.buckets):
        grouped.setdefault(series_key(labels), []).append((_le(labels.get("le")), value))
    if metric.kind is MetricKind.DISTRIBUTION:
        return _distribution(arm.buckets, grouped)
    assert metric.threshold is not None
    counters = {}
    for key, buckets in grouped.items():
        try:
            above, events = count_above(buckets, metric.threshold)
        except ValueError as error:
            raise _ReadError(f"{arm.buckets}: {error}") from error
        counters[key] = Counter(bad=above, total=events)
    return counters


def _distribution(query: str, grouped: dict[str, list[tuple[float, float]]]) -> ArmReading:
    counters = {}
    for key, buckets in grouped.items():
        try:
            edges, counts = bucket_counts(buckets)
        except ValueError as error:
            raise _ReadError(f"{query}: {error}") from error
        counters[key] = Counter(bad=None, total=sum(counts), edges=edges, counts=tuple(counts))
    return counters


async def _vector(provider: MetricsProvider, query: str) -> list[tuple[dict[str, str], float]]:
    try:
        return await provider.run_vector_query(query)
    except MetricsError as error:
        raise _ReadError(str(error)) from error


def _le(text: str | None) -> float:
    if text is None:
        raise _ReadError("a bucket series has no le label; select the histogram's _bucket series")
    try:
        value = float(text)
    except ValueError as error:
        raise _ReadError(f"unreadable le label {text!r}") from error
    return math.inf if value == math.inf else value
