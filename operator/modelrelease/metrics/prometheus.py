"""Prometheus instant queries over one reused async HTTP client."""

from __future__ import annotations

import math
import ssl
from typing import Any

import httpx

from modelrelease.core.redaction import redact_url
from modelrelease.metrics.provider import (
    MultipleValuesReturnedError,
    NoValuesFoundError,
    ProviderConfig,
    ProviderError,
)

PROMETHEUS = "prometheus"
QUERY_PATH = "/api/v1/query"
ONLINE_PROBE_QUERY = "vector(1)"
_MAX_ERROR_BODY = 300
DEFAULT_CONNECTIONS = 20
"""Connections a provider keeps (the operator passes its --worker-limit)."""


class PrometheusProvider:
    """Runs instant queries against the Prometheus HTTP API.

    One ``httpx.AsyncClient`` per provider keeps connections alive between
    checks; callers cache providers per configuration (see ``factory``).
    """

    def __init__(
        self,
        config: ProviderConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        connections: int = DEFAULT_CONNECTIONS,
    ):
        self._config = config
        headers = {"Accept": "application/json"}
        if config.authorization:
            headers["Authorization"] = config.authorization
        self._client = httpx.AsyncClient(
            base_url=config.address.rstrip("/"),
            headers=headers,
            # Waiting for a free connection is not the query's time: passes are bounded.
            timeout=httpx.Timeout(config.timeout_seconds, pool=None),
            # As many connections as passes can query at once (--worker-limit).
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            verify=_verification(config),
            transport=transport,
        )

    @property
    def type(self) -> str:
        return PROMETHEUS

    @property
    def address(self) -> str:
        """The address as shown in messages: without userinfo, query or fragment."""
        return redact_url(self._config.address)

    async def run_query(self, query: str) -> float:
        body = await self._post_query(query)
        try:
            return _single_value(body, query)
        except (AttributeError, KeyError, TypeError) as error:
            raise _unparsable(query, error) from error

    async def run_vector_query(self, query: str) -> list[tuple[dict[str, str], float]]:
        body = await self._post_query(query)
        try:
            return _vector(body, query)
        except (AttributeError, KeyError, TypeError) as error:
            raise _unparsable(query, error) from error

    async def run_matrix_query(
        self, query: str
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        body = await self._post_query(query)
        try:
            return _matrix(body, query)
        except (AttributeError, KeyError, TypeError) as error:
            raise _unparsable(query, error) from error

    async def is_online(self) -> bool:
        try:
            return await self.run_query(ONLINE_PROBE_QUERY) == 1.0
        except (ProviderError, NoValuesFoundError, MultipleValuesReturnedError):
            return False

    async def close(self) -> None:
        await self._client.aclose()

    async def _post_query(self, query: str) -> dict[str, Any]:
        # POST keeps long PromQL out of URLs (and their length limits).
        try:
            response = await self._client.post(QUERY_PATH, data={"query": query})
        except httpx.HTTPError as error:
            raise ProviderError(
                f"could not reach Prometheus at {self.address}: {type(error).__name__}: {error}"
            ) from error
        if response.status_code != httpx.codes.OK:
            raise ProviderError(
                f"Prometheus at {self.address} answered HTTP {response.status_code} "
                f"to {query!r}: {response.text[:_MAX_ERROR_BODY]}"
            )
        try:
            body = response.json()
        except ValueError as error:
            raise ProviderError(
                f"Prometheus at {self.address} answered with invalid JSON"
            ) from error
        if not isinstance(body, dict) or body.get("status") != "success":
            raise ProviderError(f"Prometheus query {query!r} failed: {body!r:.{_MAX_ERROR_BODY}}")
        return body


def ca_bundle_error(pem: str) -> str | None:
    """Why ``pem`` cannot be used as a CA bundle, or None when it can."""
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def _verification(config: ProviderConfig) -> ssl.SSLContext | bool:
    if config.insecure_skip_verify:
        return False
    if config.ca_bundle:
        return ssl.create_default_context(cadata=config.ca_bundle)
    return True


def _unparsable(query: str, error: Exception) -> ProviderError:
    return ProviderError(f"unparsable answer from Prometheus to {query!r}: {error!r}")


def _vector(body: dict[str, Any], query: str) -> list[tuple[dict[str, str], float]]:
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        raise ProviderError(
            f"expected an instant vector from {query!r}, got {data.get('resultType')!r}"
        )
    series = []
    for sample in data.get("result") or []:
        labels = {str(k): str(v) for k, v in (sample.get("metric") or {}).items()}
        try:
            series.append((labels, _sample_value(sample.get("value"), query)))
        except NoValuesFoundError:
            continue  # a NaN series says nothing
    return series


def _matrix(
    body: dict[str, Any], query: str
) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        raise ProviderError(
            f"expected a range vector from {query!r} (a subquery), got {data.get('resultType')!r}"
        )
    series = []
    for sample in data.get("result") or []:
        labels = {str(k): str(v) for k, v in (sample.get("metric") or {}).items()}
        points = []
        for point in sample.get("values") or []:
            try:
                points.append((float(point[0]), _sample_value(point, query)))
            except NoValuesFoundError:
                continue  # a NaN point says nothing
        series.append((labels, points))
    return series


def _single_value(body: dict[str, Any], query: str) -> float:
    data = body.get("data") or {}
    result_type = data.get("resultType")
    result = data.get("result")
    if result_type == "scalar":
        return _sample_value(result, query)
    if result_type == "vector":
        if not result:
            raise NoValuesFoundError(f"no values found for {query!r}")
        if len(result) > 1:
            raise MultipleValuesReturnedError(
                f"expected one series from {query!r}, got {len(result)}; "
                "aggregate it (for example with sum(...))"
            )
        return _sample_value(result[0].get("value"), query)
    raise ProviderError(
        f"expected a scalar or instant vector from {query!r}, got {result_type!r}; "
        "range vectors need an aggregation such as rate(...)"
    )


def _sample_value(sample: Any, query: str) -> float:
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError) as error:
        raise ProviderError(f"unreadable sample {sample!r} for {query!r}") from error
    if math.isnan(value):
        # 0/0 in a ratio: nothing happened yet, which is "no data", not a number.
        raise NoValuesFoundError(f"query {query!r} returned NaN")
    return value
