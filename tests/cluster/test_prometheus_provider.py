"""The Prometheus provider against the real Prometheus of the local cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from modelrelease.metrics.prometheus import PrometheusProvider
from modelrelease.metrics.provider import (
    MultipleValuesReturnedError,
    NoValuesFoundError,
    ProviderConfig,
    ProviderError,
)

T = TypeVar("T")


def _with(address: str, use: Callable[[PrometheusProvider], Awaitable[T]]) -> T:
    async def go() -> T:
        provider = PrometheusProvider(ProviderConfig(address=address, timeout_seconds=5))
        try:
            return await use(provider)
        finally:
            await provider.close()

    return asyncio.run(go())


def test_a_single_value(prometheus_url: str) -> None:
    assert _with(prometheus_url, lambda p: p.run_query("vector(1) * 3")) == 3.0
    assert _with(prometheus_url, lambda p: p.run_query("scalar(vector(0.5))")) == 0.5
    assert _with(prometheus_url, lambda p: p.is_online())


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ('absent_metric_of_modelrelease_tests{job="none"}', NoValuesFoundError),
        ("vector(0) / vector(0)", NoValuesFoundError),  # NaN: nothing happened yet
        ('vector(1) or label_replace(vector(2), "a", "b", "", "")', MultipleValuesReturnedError),
        ("sum(rate(", ProviderError),  # a syntax error is Prometheus saying 400
    ],
)
def test_unusable_answers(prometheus_url: str, query: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        _with(prometheus_url, lambda p: p.run_query(query))


def test_unreachable_prometheus_is_a_provider_error() -> None:
    with pytest.raises(ProviderError, match="could not reach Prometheus"):
        _with("http://127.0.0.1:9", lambda p: p.run_query("vector(1)"))
    assert not _with("http://127.0.0.1:9", lambda p: p.is_online())
