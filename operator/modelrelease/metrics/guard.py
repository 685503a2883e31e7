"""Reading the sequential guard's counters: both subqueries of every guarded SLO at once,
every error turned into data."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from modelrelease.analysis.guard import SeriesValues
from modelrelease.core.comparison import series_key
from modelrelease.core.guard import GuardQueries, GuardReading
from modelrelease.metrics.provider import MetricsError, MetricsProvider

Points = list[tuple[dict[str, str], list[tuple[float, float]]]]


async def read_guard(
    provider: MetricsProvider, queries: Sequence[GuardQueries]
) -> dict[str, GuardReading]:
    """Each guarded SLO's raw counters per series and grid time; never raises."""
    readings = await asyncio.gather(*(_read(provider, query) for query in queries))
    return {query.name: reading for query, reading in zip(queries, readings, strict=True)}


async def _read(provider: MetricsProvider, query: GuardQueries) -> GuardReading:
    try:
        bad, total = await asyncio.gather(
            provider.run_matrix_query(query.bad), provider.run_matrix_query(query.total)
        )
    except MetricsError as error:
        return GuardReading(error=str(error))
    return GuardReading(samples=samples(bad, total))


def samples(bad: Points, total: Points) -> tuple[tuple[datetime, SeriesValues], ...]:
    """Per grid time, every series' ``(bad, total)``; a series without a total at a time
    is not read then, one without a bad counter has none counted yet."""
    totals: dict[float, dict[str, float]] = {}
    for labels, points in total:
        key = series_key(labels)
        for time, value in points:
            totals.setdefault(time, {})[key] = value
    bads: dict[float, dict[str, float]] = {}
    for labels, points in bad:
        key = series_key(labels)
        for time, value in points:
            bads.setdefault(time, {})[key] = value
    result = []
    for time in sorted(totals):
        at = bads.get(time, {})
        values: SeriesValues = {key: (at.get(key), value) for key, value in totals[time].items()}
        result.append((datetime.fromtimestamp(time, UTC), values))
    return tuple(result)
