"""The Prometheus provider against canned HTTP answers (the wire format).

The same provider runs against a real Prometheus in the cluster tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from modelrelease.metrics.auth import CredentialsError, authorization_from_secret
from modelrelease.metrics.factory import UnknownProviderError, new_provider
from modelrelease.metrics.prometheus import PrometheusProvider
from modelrelease.metrics.provider import (
    MultipleValuesReturnedError,
    NoValuesFoundError,
    ProviderConfig,
    ProviderError,
)

ADDRESS = "http://prometheus.test:9090"


def _vector(*values: str) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)],
        },
    }


def _provider(
    handler: Callable[[httpx.Request], httpx.Response], **config: Any
) -> PrometheusProvider:
    return PrometheusProvider(
        ProviderConfig(address=ADDRESS, **config), transport=httpx.MockTransport(handler)
    )


def _answer(body: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=json.dumps(body).encode())


def _run(provider: PrometheusProvider, query: str = "up") -> float:
    async def go() -> float:
        try:
            return await provider.run_query(query)
        finally:
            await provider.close()

    return asyncio.run(go())


def test_single_sample_is_returned_as_float() -> None:
    assert _run(_provider(_answer(_vector("0.25")))) == 0.25


def test_scalar_result_is_returned() -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}
    assert _run(_provider(_answer(body))) == 3.0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (_vector(), NoValuesFoundError),
        (_vector("NaN"), NoValuesFoundError),
        (_vector("1", "2"), MultipleValuesReturnedError),
        ({"status": "error", "error": "parse error"}, ProviderError),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, ProviderError),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1.0]}}, ProviderError),
    ],
)
def test_unusable_answers_raise_sentinel_errors(body: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        _run(_provider(_answer(body)))


def test_http_error_status_is_a_provider_error() -> None:
    with pytest.raises(ProviderError, match="HTTP 503"):
        _run(_provider(_answer("overloaded", status=503)))


def test_connection_failure_is_a_provider_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderError, match="could not reach"):
        _run(_provider(refuse))


def test_query_is_posted_with_auth_header() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _answer(_vector("1"))(request)

    _run(_provider(record, authorization="Bearer t0k"), 'sum(x{a="b"})')
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/api/v1/query"
    assert request.headers["authorization"] == "Bearer t0k"
    assert httpx.QueryParams(request.content.decode()).get("query") == 'sum(x{a="b"})'


def test_is_online() -> None:
    async def go(provider: PrometheusProvider) -> bool:
        try:
            return await provider.is_online()
        finally:
            await provider.close()

    assert asyncio.run(go(_provider(_answer(_vector("1")))))
    assert not asyncio.run(go(_provider(_answer("down", status=500))))


def test_connections_are_reused_between_queries() -> None:
    # One client per provider: the same transport serves every query.
    calls = 0

    def count(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return _answer(_vector("1"))(request)

    provider = _provider(count)

    async def go() -> None:
        for _ in range(3):
            await provider.run_query("up")
        await provider.close()

    asyncio.run(go())
    assert calls == 3


def test_factory_rejects_unknown_providers() -> None:
    with pytest.raises(UnknownProviderError, match="supported providers: prometheus"):
        new_provider("datadog", ProviderConfig(address=ADDRESS))


@pytest.mark.parametrize(
    ("data", "header"),
    [
        ({"token": "abc\n"}, "Bearer abc"),
        ({"username": "u", "password": "p"}, "Basic dTpw"),
    ],
)
def test_authorization_from_secret(data: dict[str, str], header: str) -> None:
    assert authorization_from_secret(data) == header


def test_authorization_from_secret_refuses_unknown_shapes() -> None:
    with pytest.raises(CredentialsError, match="found apikey"):
        authorization_from_secret({"apikey": "x"})


# --- one round of SLO queries ----------------------------------------------------------------

from modelrelease.analysis.checks import CheckPolicy, Thresholds  # noqa: E402
from modelrelease.core.slos import ResolvedSLO  # noqa: E402
from modelrelease.metrics.measurement import measure_slos  # noqa: E402


class ScriptedProvider:
    type = "scripted"

    def __init__(self, answers: dict[str, float | Exception]):
        self.answers = answers

    async def run_query(self, query: str) -> float:
        answer = self.answers[query]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def run_vector_query(self, query: str) -> list[tuple[dict[str, str], float]]:
        return [({}, await self.run_query(query))]

    async def is_online(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def _slo(name: str, query: str, requests: str | None = None, minimum: int = 0) -> ResolvedSLO:
    return ResolvedSLO(name, query, requests, minimum, Thresholds(maximum=1), CheckPolicy())


def test_measure_slos_turns_every_error_into_data() -> None:
    provider = ScriptedProvider(
        {
            "ok": 0.5,
            "empty": NoValuesFoundError("none"),
            "many": MultipleValuesReturnedError("2 series"),
            "down": ProviderError("refused"),
            "count": 7.0,
            "no-count": NoValuesFoundError("none"),
        }
    )
    slos = [
        _slo("a", "ok", "count", 5),
        _slo("b", "empty"),
        _slo("c", "many"),
        _slo("d", "down"),
        _slo("e", "ok", "no-count", 5),
    ]
    results = asyncio.run(measure_slos(provider, slos))
    assert results["a"].measurement.value == 0.5
    assert results["a"].requests == 7.0
    assert results["b"].measurement.error is not None
    assert results["b"].measurement.error.startswith("no data")
    assert not results["b"].measurement.unreachable
    assert results["c"].measurement.error == "2 series"
    assert results["d"].measurement.unreachable
    assert results["e"].requests == 0.0  # no series yet: no requests yet
