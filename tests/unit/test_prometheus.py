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

from modelrelease.analysis.checks import CheckPolicy, Measurement, Thresholds  # noqa: E402
from modelrelease.core.observation import SLOResult  # noqa: E402
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
            "count-down": ProviderError("HTTP 503"),
        }
    )
    slos = [
        _slo("a", "ok", "count", 5),
        _slo("b", "empty"),
        _slo("c", "many"),
        _slo("d", "down"),
        _slo("e", "ok", "no-count", 5),
        _slo("f", "ok", "count-down", 5),
        _slo("g", "down", "count-down", 5),
    ]
    results = asyncio.run(measure_slos(provider, slos))
    assert results["a"].measurement == Measurement(0.5)
    assert results["a"].requests == 7.0
    assert results["b"].measurement == Measurement.no_data("no data: none")
    assert results["c"].measurement == Measurement.error("2 series")
    assert results["d"].measurement == Measurement.error("refused")
    assert results["e"].requests == 0.0  # no series yet: no requests yet
    # Without its request count a value cannot be judged: the check failed, it has no data.
    assert results["f"].measurement == Measurement.error("the request count failed: HTTP 503")
    assert results["g"].measurement == Measurement.error("refused")


# --- the three outcomes against a real HTTP server -------------------------------------------

import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402

from modelrelease.analysis.checks import ReadOutcome  # noqa: E402

# query -> (HTTP status, body, seconds to wait before answering)
ANSWERS: dict[str, tuple[int, bytes, float]] = {
    "value": (200, json.dumps(_vector("0.25")).encode(), 0),
    "empty": (200, json.dumps(_vector()).encode(), 0),
    "nan": (200, json.dumps(_vector("NaN")).encode(), 0),
    "several": (200, json.dumps(_vector("1", "2")).encode(), 0),
    "http-500": (500, b"internal error", 0),
    "http-503": (503, b"overloaded", 0),
    "html": (200, b"<html>proxy login</html>", 0),
    "status-error": (200, b'{"status": "error", "error": "parse error"}', 0),
    "odd-shape": (200, b'{"status": "success", "data": [1, 2]}', 0),
    "odd-sample": (
        200,
        b'{"status": "success", "data": {"resultType": "vector", "result": [7]}}',
        0,
    ),
    "slow": (200, json.dumps(_vector("1")).encode(), 2.0),
}
EXPECTED = {
    "value": ReadOutcome.VALUE,
    "empty": ReadOutcome.NO_DATA,
    "nan": ReadOutcome.NO_DATA,
    "several": ReadOutcome.ERROR,
    "http-500": ReadOutcome.ERROR,
    "http-503": ReadOutcome.ERROR,
    "html": ReadOutcome.ERROR,
    "status-error": ReadOutcome.ERROR,
    "odd-shape": ReadOutcome.ERROR,
    "odd-sample": ReadOutcome.ERROR,
    "slow": ReadOutcome.ERROR,  # the timeout is 0.3 s
}


class _Prometheus(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        query = parse_qs(self.rfile.read(length).decode())["query"][0]
        status, body, delay = ANSWERS[query]
        time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the timeout case)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def prometheus_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _measure_all(address: str, queries: list[str]) -> dict[str, SLOResult]:
    async def go() -> dict[str, SLOResult]:
        provider = PrometheusProvider(ProviderConfig(address=address, timeout_seconds=0.3))
        try:
            return await measure_slos(provider, [_slo(query, query) for query in queries])
        finally:
            await provider.close()

    return asyncio.run(go())


def test_value_empty_result_and_errors_are_told_apart(prometheus_server: str) -> None:
    results = _measure_all(prometheus_server, list(ANSWERS))
    outcomes = {name: result.measurement.outcome for name, result in results.items()}
    assert outcomes == EXPECTED
    assert results["value"].measurement.value == 0.25
    several = results["several"].measurement.reason
    assert several is not None
    assert "expected one series" in several


def test_an_unreachable_prometheus_is_an_error_and_its_address_shows_no_credentials() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"http://reader:s3cret@127.0.0.1:{port}/prom?token=t0k"
    measurement = _measure_all(address, ["up"])["up"].measurement
    assert measurement.outcome is ReadOutcome.ERROR
    assert measurement.reason is not None
    assert f"could not reach Prometheus at http://127.0.0.1:{port}/prom" in measurement.reason
    assert "s3cret" not in measurement.reason
    assert "t0k" not in measurement.reason
