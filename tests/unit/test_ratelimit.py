"""The client-side rate limit and the handling of 429 Too Many Requests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from modelrelease.kube.ratelimit import MAX_RETRY_AFTER, TokenBucket, limited, retry_after

OK = SimpleNamespace(status=200)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_is_free_then_requests_are_spaced_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        bucket.take()
    assert clock.slept == []
    for _ in range(5):
        bucket.take()
    assert clock.slept == pytest.approx([0.1] * 5)
    assert clock.now == pytest.approx(0.5)  # 8 requests: 3 of burst, then 10 a second


def test_waiters_queue_behind_each_other_and_idle_time_refills_up_to_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=2, clock=clock, sleep=clock.sleep)
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0, 0, 0.5, 1.0])
    clock.now = 100.0  # long idle: the bucket is full again, not fuller
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0, 0, 0.5])


def test_a_bucket_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0, burst=1)


def too_many(seconds: str | None) -> ApiException:
    error = ApiException(status=429, reason="Too Many Requests")
    error.headers = {} if seconds is None else {"Retry-After": seconds}
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (too_many("3"), 3.0),
        (too_many(None), 1.0),
        (too_many("Wed, 21 Oct 2015 07:28:00 GMT"), 1.0),
        (too_many("3600"), MAX_RETRY_AFTER),
        (ApiException(status=500, reason="Internal"), None),
        (ApiException(status=409, reason="Conflict"), None),
    ],
)
def test_retry_after(error: ApiException, expected: float | None) -> None:
    assert retry_after(error) == expected


def test_a_429_is_retried_after_its_retry_after_then_given_up() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1000, burst=1000, clock=clock, sleep=clock.sleep)
    answers: list[Any] = [too_many("2"), too_many("1"), OK]

    def request(*_: Any, **__: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert limited(request, bucket, sleep=clock.sleep)("GET", "https://api/v1/pods") is OK
    assert clock.slept == [2.0, 1.0]

    def always_429(*_: Any, **__: Any) -> Any:
        raise too_many("1")

    with pytest.raises(ApiException) as raised:
        limited(always_429, bucket, sleep=clock.sleep, retries=2)()
    assert raised.value.status == 429
    assert clock.slept == [2.0, 1.0, 1.0, 1.0]


def test_other_errors_are_not_retried() -> None:
    calls = []

    def failing(*_: Any, **__: Any) -> Any:
        calls.append(1)
        raise ApiException(status=500, reason="Internal")

    with pytest.raises(ApiException):
        limited(failing, TokenBucket(rate=10, burst=10))()
    assert calls == [1]
