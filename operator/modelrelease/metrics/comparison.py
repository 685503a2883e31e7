"""Reading comparison counters: every arm's queries at once, every error turned into data."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from modelrelease.analysis.sequential import count_above
from modelrelease.api.constants import MetricKind
from modelrelease.core.comparison import ArmQueries, Counter, MetricQueries, MetricReading
from modelrelease.metrics.provider import MetricsError, MetricsProvider, NoValuesFoundError


class _ReadError(Exception):
    pass


async def read_comparison(
    provider: MetricsProvider, metrics: Sequence[MetricQueries]
) -> dict[str, MetricReading]:
    """Each metric's raw counters for champion and challenger; never raises."""
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


async def _read_arm(provider: MetricsProvider, metric: MetricQueries, arm: ArmQueries) -> Counter:
    if metric.kind is MetricKind.RATIO:
        assert arm.bad is not None
        assert arm.total is not None
        bad, total = await asyncio.gather(
            _counter(provider, arm.bad), _counter(provider, arm.total)
        )
        return Counter(bad=bad, total=total)
    assert arm.buckets is not None
    assert metric.threshold is not None
    try:
        series = await provider.run_vector_query(arm.buckets)
    except MetricsError as error:
        raise _ReadError(str(error)) from error
    buckets = [(_le(labels.get("le")), value) for labels, value in series]
    if not buckets:
        return Counter(bad=0.0, total=0.0)  # no event observed yet
    try:
        above, total = count_above(buckets, metric.threshold)
    except ValueError as error:
        raise _ReadError(f"{arm.buckets}: {error}") from error
    return Counter(bad=above, total=total)


async def _counter(provider: MetricsProvider, query: str) -> float:
    """A counter's value; a counter with no series yet is zero (nothing counted)."""
    try:
        return await provider.run_query(query)
    except NoValuesFoundError:
        return 0.0
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
