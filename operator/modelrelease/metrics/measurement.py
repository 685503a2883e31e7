"""One round of SLO queries: every query at once, every error turned into data.

Three outcomes stay apart: a value, no data (the query answered with an empty
result or NaN) and an error (anything else). Only no data may ever be forgiven
by an SLO's ``noData`` policy; an error holds the release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from modelrelease.analysis.checks import Measurement, ReadOutcome
from modelrelease.core.observation import SLOResult
from modelrelease.core.slos import ResolvedSLO
from modelrelease.metrics.provider import MetricsError, MetricsProvider, NoValuesFoundError


async def measure_slos(
    provider: MetricsProvider, slos: Sequence[ResolvedSLO]
) -> dict[str, SLOResult]:
    """Run every SLO's query (and request count) concurrently; never raises."""
    results = await asyncio.gather(*(_measure(provider, slo) for slo in slos))
    return {slo.name: result for slo, result in zip(slos, results, strict=True)}


async def _measure(provider: MetricsProvider, slo: ResolvedSLO) -> SLOResult:
    measurement = await _read(provider, slo.query)
    if slo.requests_query is None or slo.min_requests <= 0:
        return SLOResult(measurement=measurement)
    counted = await _read(provider, slo.requests_query)
    if counted.outcome is ReadOutcome.ERROR:
        # Without the count the value cannot be judged either: the check failed.
        if measurement.outcome is ReadOutcome.ERROR:
            return SLOResult(measurement=measurement)
        return SLOResult(Measurement.error(f"the request count failed: {counted.reason}"))
    # An empty count is no request yet.
    return SLOResult(measurement=measurement, requests=counted.value or 0.0)


async def _read(provider: MetricsProvider, query: str) -> Measurement:
    try:
        return Measurement(value=await provider.run_query(query))
    except NoValuesFoundError as error:
        return Measurement.no_data(f"no data: {error}")
    except MetricsError as error:  # unreachable, HTTP error, unparsable, several series
        return Measurement.error(str(error))
