"""The operator's own Prometheus metrics (what it decided, not what it measured)."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, start_http_server

from modelrelease.api.constants import Reason
from modelrelease.core.decision import Decision

RECONCILES = Counter(
    "modelrelease_reconcile_total", "Reconcile passes by result", ["namespace", "release", "result"]
)
EVENTS = Counter(
    "modelrelease_events_total", "Events posted, by reason", ["namespace", "release", "reason"]
)
CANARY_WEIGHT = Gauge(
    "modelrelease_canary_weight_percent",
    "Percent of live traffic the operator sends to the challenger",
    ["namespace", "release"],
)
MIRROR_PERCENT = Gauge(
    "modelrelease_mirror_percent",
    "Percent of requests the operator mirrors to the challenger",
    ["namespace", "release"],
)
ROLLBACKS = Counter(
    "modelrelease_rollbacks_total", "Rollbacks of challengers", ["namespace", "release"]
)
PROMOTIONS = Counter(
    "modelrelease_promotions_total", "Promotions of challengers", ["namespace", "release"]
)
API_REQUESTS = Counter(
    "modelrelease_api_requests_total",
    "Requests to the API server (kopf's own watch of releases, events and finalizers aside), "
    "by HTTP method, WATCH for watches, and the answer's status class",
    ["method", "code"],
)
LEADER = Gauge(
    "modelrelease_leader", "1 while this replica holds the leader Lease and may act, else 0"
)
WRITES = Counter(
    "modelrelease_api_writes_total", "Writes this replica sent to the API server (fenced ones not)"
)
FENCED_WRITES = Counter(
    "modelrelease_fenced_writes_total", "Writes refused because this replica was not the leader"
)


def serve(port: int) -> None:
    start_http_server(port)


def record(namespace: str, release: str, decision: Decision | None, result: str) -> None:
    """Count a pass; ``decision`` is None when the pass failed before deciding."""
    RECONCILES.labels(namespace, release, result).inc()
    if decision is None:
        return
    if decision.routes is not None:
        CANARY_WEIGHT.labels(namespace, release).set(decision.routes.canary_weight)
        MIRROR_PERCENT.labels(namespace, release).set(decision.routes.mirror_percent)
    for event in decision.events:
        EVENTS.labels(namespace, release, event.reason.value).inc()
        if event.reason is Reason.ROLLED_BACK:
            ROLLBACKS.labels(namespace, release).inc()
        elif event.reason is Reason.PROMOTED:
            PROMOTIONS.labels(namespace, release).inc()


def forget(namespace: str, release: str) -> None:
    for gauge in (CANARY_WEIGHT, MIRROR_PERCENT):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, release)
