"""The webhook gate: ask an external service whether the release may go on.

The operator POSTs a JSON description of the release (namespace, name, model,
champion and challenger revisions, stage, attempt, the stage's ``metadata``)
to the stage's URL and reads the answer:

- 2xx other than 202: passed;
- 202: still evaluating, ask again after ``interval``;
- any other status: a failed attempt;
- no answer (connection error, timeout): a failed attempt too.

The answer's body is never shown: status and Events get the HTTP status and,
when the body is a JSON object with a string field ``reason``, that reason if
it is a short phrase of plain words (see ``core.redaction.safe_phrase``). The
URL is shown without userinfo, query string or fragment.

More than ``failureLimit`` failed attempts in a row, or ``maxDuration``
without a pass, fail the gate. After a failed attempt the next call backs off
exponentially from ``interval`` (with jitter), so a struggling service gets
room to recover before the limit is reached.

One call is I/O (``call_webhook``); everything else here is pure and takes
plain numbers, so the reconcile pass can decide from what status recorded
(``gateAttempts``, ``gateConsecutiveFailures``, ``lastGateTime``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import httpx

from modelrelease.api.constants import API_VERSION
from modelrelease.api.durations import format_duration, parse_duration
from modelrelease.api.models import ModelSpec, WebhookStage
from modelrelease.core.redaction import redact_url, safe_phrase

Json = dict[str, Any]

REQUEST_KIND = "WebhookRequest"
USER_AGENT = "modelrelease-operator"
HTTP_OK_FIRST = 200
HTTP_OK_LAST = 299
HTTP_ACCEPTED = 202
REASON_FIELD = "reason"
MAX_REASON_CHARS = 64
MAX_BODY_BYTES = 4096
BACKOFF_CAP_SECONDS = 600.0


# --- the request ----------------------------------------------------------------


@dataclass(frozen=True)
class RevisionRef:
    """A revision the webhook is told about."""

    revision: str
    model_version: str | None = None


@dataclass(frozen=True)
class GateRequest:
    """What the webhook is asked about."""

    namespace: str
    name: str
    model: ModelSpec
    champion: RevisionRef | None
    challenger: RevisionRef | None
    stage_index: int
    stage_name: str
    attempt: int
    metadata: Mapping[str, str] = field(default_factory=dict)


def webhook_payload(request: GateRequest) -> Json:
    """The JSON body POSTed to the webhook.

    ``{"apiVersion", "kind": "WebhookRequest", "namespace", "name", "model":
    {"name", "version", "uri", "metadata"}, "champion": {"revision",
    "modelVersion"} | null, "challenger": {...} | null, "stage": {"index",
    "name"}, "attempt", "metadata"}``; ``attempt`` counts from 1.
    """
    return {
        "apiVersion": API_VERSION,
        "kind": REQUEST_KIND,
        "namespace": request.namespace,
        "name": request.name,
        "model": {
            "name": request.model.name,
            "version": request.model.version,
            "uri": request.model.uri,
            "metadata": dict(request.model.metadata),
        },
        "champion": _revision(request.champion),
        "challenger": _revision(request.challenger),
        "stage": {"index": request.stage_index, "name": request.stage_name},
        "attempt": request.attempt,
        "metadata": dict(request.metadata),
    }


def _revision(ref: RevisionRef | None) -> Json | None:
    if ref is None:
        return None
    return {"revision": ref.revision, "modelVersion": ref.model_version}


# --- one call (I/O) ---------------------------------------------------------------


class CallOutcome(StrEnum):
    """How one call went."""

    PASSED = "Passed"  # 2xx other than 202
    PENDING = "Pending"  # 202: still evaluating, ask again
    RETRY = "Retry"  # no answer: connection error or timeout; retried with backoff
    FAILED = "Failed"  # any other HTTP status


@dataclass(frozen=True)
class CallResult:
    outcome: CallOutcome
    status_code: int | None = None
    reason: str = ""  # already sanitised (``answer_reason``)
    error: str = ""  # already sanitised (``_post``)

    def describe(self) -> str:
        """The answer in a few words, for conditions and events."""
        if self.status_code is None:
            return f"no answer: {self.error}"
        if self.reason:
            return f"HTTP {self.status_code} ({self.reason})"
        return f"HTTP {self.status_code}"


def classify(status_code: int) -> CallOutcome:
    if status_code == HTTP_ACCEPTED:
        return CallOutcome.PENDING
    if HTTP_OK_FIRST <= status_code <= HTTP_OK_LAST:
        return CallOutcome.PASSED
    return CallOutcome.FAILED


async def call_webhook(
    url: str,
    payload: Json,
    timeout_seconds: float,
    client: httpx.AsyncClient | None = None,
) -> CallResult:
    """POST ``payload`` to ``url``, giving up after ``timeout_seconds`` in all.

    Never raises for what the network or the service does: every outcome is a
    ``CallResult``. Pass a long-lived ``client`` to reuse connections.
    """
    if client is None:
        async with httpx.AsyncClient() as own_client:
            return await _post(own_client, url, payload, timeout_seconds)
    return await _post(client, url, payload, timeout_seconds)


async def _post(
    client: httpx.AsyncClient, url: str, payload: Json, timeout_seconds: float
) -> CallResult:
    where = redact_url(url)
    try:
        # httpx's timeouts are per read/write; this bounds the whole exchange.
        async with asyncio.timeout(timeout_seconds):
            async with client.stream(
                "POST",
                url,
                json=payload,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                timeout=timeout_seconds,
                follow_redirects=False,
            ) as response:
                body = await _read_at_most(response, MAX_BODY_BYTES)
    except (TimeoutError, httpx.TimeoutException):
        return CallResult(
            CallOutcome.RETRY,
            error=f"{where} did not answer within {format_duration(timeout_seconds)}",
        )
    except httpx.RequestError as error:
        reason = safe_phrase(str(error)) or type(error).__name__
        return CallResult(CallOutcome.RETRY, error=f"{where}: {reason}")
    return CallResult(classify(response.status_code), response.status_code, answer_reason(body))


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The first ``limit`` bytes of the body; a huge answer is not read to the end."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def answer_reason(body: bytes) -> str:
    """The ``reason`` a JSON answer gives, if it is a short plain phrase; else "".

    Nothing else of the body is kept: a service may echo request headers, tokens
    or stack traces, and status and Events are read by many.
    """
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        return ""
    reason = answer.get(REASON_FIELD) if isinstance(answer, dict) else None
    if not isinstance(reason, str):
        return ""
    return safe_phrase(reason, MAX_REASON_CHARS) or ""


# --- the gate's verdict (pure) ----------------------------------------------------


class GateVerdict(StrEnum):
    PASSED = "Passed"
    WAITING = "Waiting"  # call again after ``retry_after`` seconds
    FAILED = "Failed"


@dataclass(frozen=True)
class GateLimits:
    interval: float
    max_duration: float
    failure_limit: int
    timeout: float

    @classmethod
    def of(cls, stage: WebhookStage) -> GateLimits:
        return cls(
            interval=parse_duration(stage.interval),
            max_duration=parse_duration(stage.max_duration),
            failure_limit=stage.failure_limit,
            timeout=parse_duration(stage.timeout),
        )


@dataclass(frozen=True)
class GateProgress:
    """What status keeps between calls (``gateAttempts``, ``gateConsecutiveFailures``)."""

    attempts: int = 0
    consecutive_failures: int = 0


@dataclass(frozen=True)
class GateDecision:
    verdict: GateVerdict
    progress: GateProgress
    retry_after: float | None  # seconds until the next call; None once decided
    message: str


def decide(
    result: CallResult,
    progress: GateProgress,
    limits: GateLimits,
    elapsed: float,
    seed: str = "",
) -> GateDecision:
    """The gate's verdict after one call.

    ``progress`` is the state before the call, ``elapsed`` the seconds since the
    stage started, ``seed`` makes the backoff jitter repeatable (use the
    release's namespace/name).
    """
    failed = result.outcome in (CallOutcome.FAILED, CallOutcome.RETRY)
    after = GateProgress(
        attempts=progress.attempts + 1,
        consecutive_failures=progress.consecutive_failures + 1 if failed else 0,
    )
    answer = result.describe()
    if result.outcome is CallOutcome.PASSED:
        return GateDecision(
            GateVerdict.PASSED, after, None, f"passed on attempt {after.attempts}: {answer}"
        )
    if failed and after.consecutive_failures > limits.failure_limit:
        return GateDecision(
            GateVerdict.FAILED,
            after,
            None,
            f"{after.consecutive_failures} failed attempts in a row, more than failureLimit "
            f"{limits.failure_limit}; last: {answer}",
        )
    if elapsed >= limits.max_duration:
        return GateDecision(
            GateVerdict.FAILED,
            after,
            None,
            f"not passed within maxDuration {format_duration(limits.max_duration)} "
            f"({after.attempts} attempts); last: {answer}",
        )
    delay = min(delay_before_next_call(after, limits, seed), limits.max_duration - elapsed)
    what = "still evaluating" if result.outcome is CallOutcome.PENDING else "failed attempt"
    tolerated = (
        f" {after.consecutive_failures} of {limits.failure_limit} tolerated in a row;"
        if failed
        else ""
    )
    return GateDecision(
        GateVerdict.WAITING,
        after,
        delay,
        f"{what} ({answer});{tolerated} asking again in {format_duration(delay)}",
    )


def delay_before_next_call(progress: GateProgress, limits: GateLimits, seed: str = "") -> float:
    """``interval`` after an answer that was not a failure; after failures, a delay
    that doubles from ``interval`` with each one, jittered and capped."""
    if progress.consecutive_failures == 0:
        return limits.interval
    cap = max(limits.interval, BACKOFF_CAP_SECONDS)
    jitter = jitter_for(f"{seed}/{progress.attempts}")
    return next_delay(progress.consecutive_failures - 1, limits.interval, cap, jitter)


def next_delay(attempt: int, base: float, cap: float, jitter: float = 1.0) -> float:
    """Exponential backoff: ``base * 2**attempt``, at most ``cap``, scaled by jitter.

    ``jitter`` in [0, 1] picks a point in [ceiling / 2, ceiling], so retries
    of many releases spread out while each delay stays within known bounds.
    """
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 0), 64))
    share = min(max(jitter, 0.0), 1.0)
    return ceiling * (0.5 + 0.5 * share)


def jitter_for(key: str) -> float:
    """A repeatable number in [0, 1) from ``key``: the same pass decides the same."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def with_attempt(request: GateRequest, progress: GateProgress) -> GateRequest:
    """The request for the next call (attempts are numbered from 1)."""
    return replace(request, attempt=progress.attempts + 1)
