"""The webhook gate against a real HTTP server on 127.0.0.1, and its pure verdict.

No mock of httpx: every call below crosses a real socket to a server thread
that answers 200, 202, 500, slowly, hugely, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.api.models import ModelSpec, WebhookStage
from modelrelease.gates.webhook import (
    MAX_BODY_BYTES,
    MAX_REASON_CHARS,
    CallOutcome,
    CallResult,
    GateLimits,
    GateProgress,
    GateRequest,
    GateVerdict,
    RevisionRef,
    call_webhook,
    classify,
    decide,
    delay_before_next_call,
    jitter_for,
    next_delay,
    webhook_payload,
    with_attempt,
)

SLOW_SECONDS = 2.0
ANSWERS: dict[str, tuple[int, bytes]] = {
    "/ok": (200, b'{"approved": true}'),
    "/no-content": (204, b""),
    "/pending": (202, b'{"status": "evaluating"}'),
    "/fail": (500, b'{"reason": "accuracy 0.81 is below 0.85", "run": "r-17"}\n'),
    "/echo": (403, b'{"reason": "bad token", "headers": {"Authorization": "Bearer s3cr3t"}}'),
    "/token-reason": (500, b'{"reason": "rejected eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc"}'),
    "/long-reason": (500, b'{"reason": "' + b"the model is not good enough " * 20 + b'"}'),
    "/forbidden": (403, b"forbidden"),
    "/redirect": (302, b""),
    "/big": (200, b"x" * (10 * MAX_BODY_BYTES)),
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Webhook:
    base: str
    received: list[Received] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # the name http.server dispatches to
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        self.server.received.append(Received(self.path, dict(self.headers), body))
        if self.path == "/slow":
            time.sleep(SLOW_SECONDS)
        status, content = ANSWERS.get(self.path, (200, b"{}"))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        # /big: the client stops reading after MAX_BODY_BYTES, as it should.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    received: list[Received]


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Webhook(f"http://127.0.0.1:{server.server_address[1]}", server.received)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/gate"


REQUEST = GateRequest(
    namespace="llm",
    name="chat",
    model=ModelSpec(
        name="chat-8b", version="2.1.0", uri="s3://models/chat-8b/2.1.0", metadata={"run": "7"}
    ),
    champion=RevisionRef("aaaaaaaaaa", "2.0.0"),
    challenger=RevisionRef("bbbbbbbbbb", "2.1.0"),
    stage_index=3,
    stage_name="sign-off",
    attempt=1,
    metadata={"ticket": "CHG-42"},
)


def _call(url: str, timeout_seconds: float = 5.0) -> CallResult:
    return asyncio.run(call_webhook(url, webhook_payload(REQUEST), timeout_seconds))


# --- calls over a real socket -------------------------------------------------


def test_2xx_passes_and_the_release_is_described(webhook: Webhook) -> None:
    result = _call(webhook.base + "/ok")
    assert result == CallResult(CallOutcome.PASSED, 200, "")
    received = webhook.received[-1]
    assert received.path == "/ok"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["User-Agent"] == "modelrelease-operator"
    assert received.body == {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "WebhookRequest",
        "namespace": "llm",
        "name": "chat",
        "model": {
            "name": "chat-8b",
            "version": "2.1.0",
            "uri": "s3://models/chat-8b/2.1.0",
            "metadata": {"run": "7"},
        },
        "champion": {"revision": "aaaaaaaaaa", "modelVersion": "2.0.0"},
        "challenger": {"revision": "bbbbbbbbbb", "modelVersion": "2.1.0"},
        "stage": {"index": 3, "name": "sign-off"},
        "attempt": 1,
        "metadata": {"ticket": "CHG-42"},
    }


def test_204_passes_with_an_empty_body(webhook: Webhook) -> None:
    result = _call(webhook.base + "/no-content")
    assert result.outcome is CallOutcome.PASSED
    assert result.describe() == "HTTP 204"


def test_202_means_still_evaluating(webhook: Webhook) -> None:
    assert _call(webhook.base + "/pending").outcome is CallOutcome.PENDING


def test_500_fails_with_status_and_reason(webhook: Webhook) -> None:
    result = _call(webhook.base + "/fail")
    assert result.outcome is CallOutcome.FAILED
    assert result.status_code == 500
    assert result.describe() == "HTTP 500 (accuracy 0.81 is below 0.85)"


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/echo", "HTTP 403 (bad token)"),  # the echoed header stays out
        ("/token-reason", "HTTP 500"),  # a reason holding a token is dropped whole
        ("/long-reason", f"HTTP 500 ({'the model is not good enough ' * 2}the...)"),
        ("/big", "HTTP 200"),
    ],
)
def test_only_a_short_plain_reason_of_the_body_is_kept(
    webhook: Webhook, path: str, shown: str
) -> None:
    result = _call(webhook.base + path)
    assert result.describe() == shown
    assert "s3cr3t" not in repr(result)
    assert "eyJ" not in repr(result)
    assert len(result.reason) <= MAX_REASON_CHARS


@pytest.mark.parametrize("path", ["/forbidden", "/redirect"])
def test_other_answers_fail_and_redirects_are_not_followed(webhook: Webhook, path: str) -> None:
    before = len(webhook.received)
    result = _call(webhook.base + path)
    assert result.outcome is CallOutcome.FAILED
    assert len(webhook.received) == before + 1  # a redirect is not a second POST


def test_a_huge_body_is_not_read_to_the_end(webhook: Webhook) -> None:
    result = _call(webhook.base + "/big")
    assert result.outcome is CallOutcome.PASSED
    assert result.reason == ""


def test_slow_answer_is_a_retry_after_the_timeout(webhook: Webhook) -> None:
    started = time.monotonic()
    result = _call(webhook.base + "/slow", timeout_seconds=0.3)
    assert time.monotonic() - started < SLOW_SECONDS
    assert result.outcome is CallOutcome.RETRY
    assert result.status_code is None
    assert result.describe() == f"no answer: {webhook.base}/slow did not answer within 300ms"


def test_closed_port_is_a_retry(closed_port_url: str) -> None:
    secret_url = closed_port_url.replace("http://", "http://user:pw0rd@") + "?token=s3cr3t#frag"
    result = _call(secret_url)
    assert result.outcome is CallOutcome.RETRY
    assert result.describe().startswith(f"no answer: {closed_port_url}: ")
    for secret in ("pw0rd", "s3cr3t", "frag", "user"):
        assert secret not in result.error


def test_a_shared_client_is_reused(webhook: Webhook) -> None:
    import httpx

    async def twice() -> list[CallResult]:
        async with httpx.AsyncClient() as client:
            payload = webhook_payload(REQUEST)
            return [
                await call_webhook(webhook.base + "/ok", payload, 5.0, client),
                await call_webhook(webhook.base + "/pending", payload, 5.0, client),
            ]

    outcomes = [result.outcome for result in asyncio.run(twice())]
    assert outcomes == [CallOutcome.PASSED, CallOutcome.PENDING]


def test_a_500_fails_the_gate_after_failure_limit_retries(webhook: Webhook) -> None:
    limits = GateLimits(interval=30, max_duration=3600, failure_limit=2, timeout=5)
    progress, verdicts = GateProgress(), []
    for _ in range(3):
        request = with_attempt(REQUEST, progress)
        result = asyncio.run(call_webhook(webhook.base + "/fail", webhook_payload(request), 5.0))
        decision = decide(result, progress, limits, elapsed=60, seed="llm/chat")
        progress = decision.progress
        verdicts.append(decision.verdict)
    assert verdicts == [GateVerdict.WAITING, GateVerdict.WAITING, GateVerdict.FAILED]
    assert [r.body["attempt"] for r in webhook.received[-3:]] == [1, 2, 3]


# --- the pure verdict -------------------------------------------------------------

LIMITS = GateLimits(interval=30, max_duration=600, failure_limit=2, timeout=10)
PASSED = CallResult(CallOutcome.PASSED, 200, "ok")
PENDING = CallResult(CallOutcome.PENDING, 202, "")
FAILED = CallResult(CallOutcome.FAILED, 500, "boom")
NO_ANSWER = CallResult(CallOutcome.RETRY, error="http://hook: connection refused")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, CallOutcome.PASSED),
        (201, CallOutcome.PASSED),
        (299, CallOutcome.PASSED),
        (202, CallOutcome.PENDING),
        (199, CallOutcome.FAILED),
        (301, CallOutcome.FAILED),
        (404, CallOutcome.FAILED),
        (503, CallOutcome.FAILED),
    ],
)
def test_classify(status: int, outcome: CallOutcome) -> None:
    assert classify(status) is outcome


def test_limits_come_from_the_stage() -> None:
    stage = WebhookStage(url="http://hook/x", timeout="5s", interval="1m", max_duration="2h")
    assert GateLimits.of(stage) == GateLimits(
        interval=60, max_duration=7200, failure_limit=2, timeout=5
    )


def test_pass_is_final_even_at_the_deadline() -> None:
    decision = decide(PASSED, GateProgress(4, 2), LIMITS, elapsed=600)
    assert decision.verdict is GateVerdict.PASSED
    assert decision.progress == GateProgress(5, 0)
    assert decision.retry_after is None
    assert decision.message == "passed on attempt 5: HTTP 200 (ok)"


@pytest.mark.parametrize("result", [FAILED, NO_ANSWER])
def test_failed_attempts_are_tolerated_up_to_the_limit(result: CallResult) -> None:
    first = decide(result, GateProgress(), LIMITS, elapsed=0)
    second = decide(result, first.progress, LIMITS, elapsed=30)
    third = decide(result, second.progress, LIMITS, elapsed=90)
    assert [first.verdict, second.verdict, third.verdict] == [
        GateVerdict.WAITING,
        GateVerdict.WAITING,
        GateVerdict.FAILED,
    ]
    assert third.progress == GateProgress(3, 3)
    assert third.message.startswith("3 failed attempts in a row, more than failureLimit 2; last:")
    assert "1 of 2 tolerated" in first.message


def test_failure_limit_zero_fails_on_the_first_failure() -> None:
    limits = GateLimits(interval=30, max_duration=600, failure_limit=0, timeout=10)
    assert decide(FAILED, GateProgress(), limits, elapsed=0).verdict is GateVerdict.FAILED


def test_an_answer_that_is_not_a_failure_resets_the_count() -> None:
    decision = decide(PENDING, GateProgress(3, 2), LIMITS, elapsed=100)
    assert decision.verdict is GateVerdict.WAITING
    assert decision.progress == GateProgress(4, 0)
    assert decision.retry_after == LIMITS.interval
    assert decision.message == "still evaluating (HTTP 202); asking again in 30s"


@pytest.mark.parametrize("result", [PENDING, FAILED, NO_ANSWER])
def test_no_pass_by_max_duration_fails(result: CallResult) -> None:
    decision = decide(result, GateProgress(9, 0), LIMITS, elapsed=600)
    assert decision.verdict is GateVerdict.FAILED
    assert decision.message.startswith("not passed within maxDuration 10m (10 attempts); last:")


def test_the_next_call_is_never_after_the_deadline() -> None:
    decision = decide(PENDING, GateProgress(), LIMITS, elapsed=590)
    assert decision.retry_after == 10


def test_failures_back_off_from_the_interval() -> None:
    delays = []
    progress = GateProgress()
    limits = GateLimits(interval=30, max_duration=10**6, failure_limit=100, timeout=10)
    for _ in range(8):
        decision = decide(NO_ANSWER, progress, limits, elapsed=0, seed="llm/chat")
        progress = decision.progress
        assert decision.retry_after is not None
        delays.append(decision.retry_after)
    ceilings = [30, 60, 120, 240, 480, 600, 600, 600]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_the_delay_before_the_next_call_is_the_one_decide_chose() -> None:
    decision = decide(FAILED, GateProgress(), LIMITS, elapsed=0, seed="llm/chat")
    assert decision.retry_after is not None
    delay = delay_before_next_call(decision.progress, LIMITS, "llm/chat")
    assert delay == decision.retry_after


@given(
    attempt=st.integers(0, 10_000),
    base=st.floats(0.001, 1000),
    cap=st.floats(0.001, 10_000),
    jitter=st.floats(0, 1),
)
def test_next_delay_stays_within_its_bounds(
    attempt: int, base: float, cap: float, jitter: float
) -> None:
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))
    delay = next_delay(attempt, base, cap, jitter)
    assert ceiling / 2 <= delay <= ceiling
    assert delay <= cap


def test_next_delay_doubles_without_jitter() -> None:
    assert [next_delay(n, 1, 100) for n in range(8)] == [1, 2, 4, 8, 16, 32, 64, 100]


def test_jitter_is_repeatable_and_in_range() -> None:
    values = [jitter_for(f"llm/chat/{n}") for n in range(200)]
    assert values == [jitter_for(f"llm/chat/{n}") for n in range(200)]
    assert all(0 <= value < 1 for value in values)
    assert len(set(values)) == 200
