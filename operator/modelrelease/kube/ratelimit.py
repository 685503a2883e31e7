"""A polite client: a token bucket on the operator's API requests, and ``429`` honoured.

Every request of the Kubernetes client (KubeClient's reads and writes, and the
lists and watches that feed ``kube.views``) takes a token first, so a burst
of passes after a restart cannot flood the API server: ``qps`` tokens a
second, at most ``burst`` saved up (client-go's defaults for controllers are
in the same spirit). An answer ``429 Too Many Requests`` (API priority and
fairness) is retried after its ``Retry-After``, a bounded number of times,
then given to the caller like any other error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from modelrelease import telemetry

HTTP_TOO_MANY_REQUESTS = 429
RETRIES_ON_429 = 3
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 10.0
"""A Retry-After longer than this is cut short: a pass holds a worker meanwhile."""


class TokenBucket:
    """``rate`` tokens a second, up to ``burst``; ``take`` waits for one. Thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token (possibly one not yet there); the seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            self._tokens -= 1.0
            # A negative balance is a queue: each waiter is one token further back.
            return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def take(self) -> None:
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)


def retry_after(error: ApiException) -> float | None:
    """Seconds to wait before repeating a request the API server refused with 429, or None."""
    if error.status != HTTP_TOO_MANY_REQUESTS:
        return None
    header = (error.headers or {}).get("Retry-After")
    try:
        seconds = float(header) if header is not None else DEFAULT_RETRY_AFTER
    except ValueError:  # an HTTP date: rare from the API server, wait the default
        seconds = DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def limited(
    request: Callable[..., Any],
    bucket: TokenBucket,
    sleep: Callable[[float], None] = time.sleep,
    retries: int = RETRIES_ON_429,
) -> Callable[..., Any]:
    """``request`` that takes a token before each attempt and repeats it after a 429."""

    def call(*args: Any, **kwargs: Any) -> Any:
        method = _method(*args, **kwargs)
        for attempt in range(retries + 1):
            bucket.take()
            try:
                response = request(*args, **kwargs)
            except ApiException as error:
                telemetry.API_REQUESTS.labels(method, f"{error.status // 100}xx").inc()
                delay = retry_after(error)
                if delay is None or attempt == retries:
                    raise
                sleep(delay)
            else:
                telemetry.API_REQUESTS.labels(method, f"{response.status // 100}xx").inc()
                return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    return call


def _method(method: str = "", url: str = "", *_: Any, **__: Any) -> str:
    """The HTTP method of ``RESTClientObject.request(method, url, ...)``; WATCH for a watch."""
    return "WATCH" if method == "GET" and "watch=true" in url.lower() else method


def throttle(api_client: ApiClient, bucket: TokenBucket) -> None:
    """Route every request of ``api_client`` through ``bucket`` (and retry 429s)."""
    rest = api_client.rest_client
    rest.request = limited(rest.request, bucket)  # type: ignore[method-assign]
