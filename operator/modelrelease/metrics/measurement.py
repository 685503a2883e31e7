"""One round of SLO queries: every query at once, every error turned into data."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from modelrelease.analysis.checks import Measurement
from modelrelease.core.observation import SLOResult
from modelrelease.core.slos import ResolvedSLO
from modelrelease.metrics.provider import (
    MetricsError,
    MetricsProvider,
    MultipleValuesReturnedError,
    NoValuesFoundError,
    ProviderError,
)


async def measure_slos(
    provider: MetricsProvider, slos: Sequence[ResolvedSLO]
) -> dict[str, SLOResult]:
    """Run every SLO's query (and request count) concurrently; never raises."""
    results = await asyncio.gather(*(_measure(provider, slo) for slo in slos))
    return {slo.name: result for slo, result in zip(slos, results, strict=True)}


async def _measure(provider: MetricsProvider, slo: ResolvedSLO) -> SLOResult:
    measurement = await _value(provider, slo.query)
    requests = None
    if slo.requests_query is not None and slo.min_requests > 0:
        counted = await _value(provider, slo.requests_query)
        requests = (
            counted.value
            if counted.value is not None
            else (
                0.0
                if isinstance(counted.error, str) and counted.error.startswith(_NO_DATA)
                else None
            )
        )
    return SLOResult(measurement=measurement, requests=requests)


_NO_DATA = "no data"


async def _value(provider: MetricsProvider, query: str) -> Measurement:
    try:
        return Measurement(value=await provider.run_query(query))
    except NoValuesFoundError as error:
        return Measurement.failed(f"no data: {error}")
    except MultipleValuesReturnedError as error:
        return Measurement.failed(str(error))
    except ProviderError as error:
        return Measurement.failed(str(error), unreachable=True)
    except MetricsError as error:  # any other provider failure is still only data
        return Measurement.failed(str(error), unreachable=True)
