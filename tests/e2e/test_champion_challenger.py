"""Champion-challenger bake-offs end to end: the operator, Prometheus, simulated traffic.

The champion fails 5% of requests; the challenger half as often, twice as often,
or the same. At 100 requests per second split 50/50 the anytime-valid judge
decides the first two within a minute or two; the third stays undecided and the
champion is kept at ``maxDuration``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import (
    Cluster,
    Process,
    Simulator,
    http_route,
    model_release,
    wait_champion_version,
    wait_weights,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

RATE = 100.0
CHAMPION_ERRORS = 0.05
ERRORS_METRIC = {
    "name": "errors",
    "kind": "ratio",
    "bad": (
        'vllm:request_success_total{namespace="{{namespace}}",{{revisionPods}},'
        'finished_reason="error"}'
    ),
    "total": 'vllm:request_success_total{namespace="{{namespace}}",{{revisionPods}}}',
}


def bake_off(
    version: str, error_ratio: float, prometheus: str, max_duration: str = "150s"
) -> dict[str, Any]:
    release = model_release(
        version, behaviour={"errorRatio": error_ratio}, prometheus=prometheus, slos=[]
    )
    release["spec"]["stages"] = [
        {
            "name": "bake-off",
            "championChallenger": {
                "weight": 50,
                "maxDuration": max_duration,
                "margin": 0.05,
                "metrics": [ERRORS_METRIC],
            },
        }
    ]
    return without_gpus(release)


def without_gpus(release: dict[str, Any]) -> dict[str, Any]:
    """No GPU request: the shared local cluster's GPUs go to the tests about capacity."""
    for container in release["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)
    return release


def _start(cluster: Cluster, prometheus: str) -> str:
    cluster.apply(http_route(rate=RATE), bake_off("1", CHAMPION_ERRORS, prometheus))
    status = wait_champion_version(cluster, "1", 90)
    revision: str = status["champion"]["revision"]
    return revision


def _challenge(cluster: Cluster, prometheus: str, error_ratio: float, **extra: Any) -> float:
    """When the bake-off's clock started, as the operator recorded it (Unix seconds).

    Durations are measured between the operator's own timestamps: the moment
    the test happens to see a status lags it by a poll, by a varying amount.
    """
    cluster.apply(bake_off("2", error_ratio, prometheus, **extra))

    def started() -> float | None:
        stage = cluster.status().get("currentStage") or {}
        start = stage.get("stepStartTime")
        return _seconds(start) if start else None

    return wait_for(started, 90, "the bake-off to start")


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _ended(cluster: Cluster, timeout: float) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = cluster.status()
        history = status.get("history") or []
        last = history[-1] if history else {}
        return status if last.get("modelVersion") == "2" and not status.get("challenger") else None

    return wait_for(probe, timeout, "the bake-off to end")


def _metric(status: dict[str, Any]) -> dict[str, Any]:
    records = status.get("comparison") or []
    assert records, "status.comparison is empty"
    record: dict[str, Any] = records[0]
    return record


def test_challenger_with_half_the_error_ratio_is_promoted(
    cluster: Cluster, operator: Process, simulator: Simulator, prometheus_url: str
) -> None:
    _start(cluster, prometheus_url)
    started = _challenge(cluster, prometheus_url, CHAMPION_ERRORS / 2)
    seen: dict[str, Any] = {}

    def promoted() -> dict[str, Any] | None:
        status = cluster.status()
        if status.get("comparison"):
            seen.update(_metric(status))
        return status if (status.get("champion") or {}).get("modelVersion") == "2" else None

    wait_for(promoted, 180, "the challenger to win and be promoted")
    decided = time.time() - started
    assert cluster.status()["history"][-1]["outcome"] == "Promoted"
    assert seen["verdict"] == "Pass", seen
    assert seen["upper"] < 1.05
    assert seen["challenger"]["total"] > 0
    assert seen["champion"]["total"] > 0
    cluster.wait_events("ComparisonWon", containing="won")
    print(f"promoted {decided:.0f}s after the bake-off started: {seen['message']}")


def test_challenger_with_twice_the_error_ratio_is_rolled_back(
    cluster: Cluster, operator: Process, simulator: Simulator, prometheus_url: str
) -> None:
    champion = _start(cluster, prometheus_url)
    started = _challenge(cluster, prometheus_url, CHAMPION_ERRORS * 2)
    status = _ended(cluster, 180)
    decided = time.time() - started
    last = status["history"][-1]
    assert last["outcome"] == "RolledBack"
    assert last["reason"] == "ComparisonLost"
    assert status["champion"]["revision"] == champion
    assert status["phase"] == "RolledBack"
    wait_weights(cluster, (100, 0))
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert degraded["status"] == "True"
    assert degraded["reason"] == "ComparisonLost"
    cluster.wait_events("RolledBack")
    print(f"rolled back {decided:.0f}s after the bake-off started: {last['message']}")


def test_identical_challenger_keeps_the_champion_at_max_duration(
    cluster: Cluster, operator: Process, simulator: Simulator, prometheus_url: str
) -> None:
    champion = _start(cluster, prometheus_url)
    started = _challenge(cluster, prometheus_url, CHAMPION_ERRORS, max_duration="20s")
    status = _ended(cluster, 90)
    last = status["history"][-1]
    ended = _seconds(last["time"]) - started
    assert last["outcome"] == "ChampionKept", last
    assert last["reason"] == "ComparisonInconclusive"
    assert status["champion"]["revision"] == champion
    assert ended >= 20, f"ended {ended:.3f}s after the bake-off's clock started: {last}"
    wait_weights(cluster, (100, 0))

    def not_degraded() -> bool:
        degraded = cluster.condition("Degraded")
        return degraded is not None and degraded["status"] == "False"

    wait_for(not_degraded, 10, "Degraded False: keeping the champion is not a failure")
