"""The sequential SLO guard end to end: a canary at the default 30 s interval whose
challenger fails a fifth of its requests is rolled back by the guard well before the
first interval check, from real counters scraped by Prometheus every second."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.e2e.conftest import (
    ERROR_RATIO,
    WINDOW,
    Cluster,
    Process,
    Simulator,
    http_route,
    model_release,
    wait_champion_version,
    wait_phase,
    wait_weights,
)

FAILED = (
    'vllm:request_success_total{namespace="{{namespace}}",{{revisionPods}},finished_reason="error"}'
)
FINISHED = 'vllm:request_success_total{namespace="{{namespace}}",{{revisionPods}}}'
INTERVAL_SECONDS = 30


def guarded_release(version: str, prometheus: str, **extra: Any) -> dict[str, Any]:
    slo = {
        "name": "error-ratio",
        "query": ERROR_RATIO.format(window=WINDOW),
        "max": 0.05,
        "bad": FAILED,
        "total": FINISHED,
    }
    release = model_release(
        version, steps=[(50, "10m")], slos=[slo], prometheus=prometheus, **extra
    )
    release["spec"]["analysis"]["interval"] = f"{INTERVAL_SECONDS}s"
    return release


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_guard_rolls_back_a_failing_canary_before_the_first_interval_check(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    prometheus_url: str,
) -> None:
    cluster.apply(http_route(), guarded_release("1", prometheus_url))
    wait_champion_version(cluster, "1", 90)
    cluster.apply(guarded_release("2", prometheus_url, behaviour={"errorRatio": 0.2}))
    status = wait_phase(cluster, "RolledBack", 120, "the failing version to be rolled back")

    entry = status["history"][-1]
    assert (entry["outcome"], entry["reason"], entry["modelVersion"]) == (
        "RolledBack",
        "SLOGuardTripped",
        "2",
    )
    assert "sequential guard" in entry["message"]
    assert "error-ratio" in entry["message"]
    # Before the first interval check: no check ever ran on this challenger.
    assert not status.get("checks"), status.get("checks")
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert (degraded["status"], degraded["reason"]) == ("True", "SLOGuardTripped")
    # The step started when the challenger was Ready; the rollback came well inside
    # the first interval (measured from the route's move to the canary would be the
    # same within a pass).
    revision = entry["revision"]
    first_error = (simulator.revision(revision) or {}).get("firstUserErrorAt")
    assert first_error is not None
    took = _time(entry["time"]).timestamp() - first_error
    print(f"\nfirst failed request to rollback: {took:.1f} s (interval {INTERVAL_SECONDS} s)")
    assert took < INTERVAL_SECONDS - 5
    wait_weights(cluster, (100, 0))
    assert status["champion"]["modelVersion"] == "1"
