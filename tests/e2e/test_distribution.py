"""Distribution drift end to end: the simulator's `score` behaviour, Prometheus's
`model_prediction_score` histogram and the operator's `distribution` comparison.

Version 2 scores like version 1 (median 0.8, p95 0.95): its shadow stage on
mirrored traffic shows no drift and it is promoted when the stage ends. Version 3
is less sure of itself (median 0.6): its champion-challenger bake-off rolls it back
as DistributionDrifted, naming the score buckets that moved.
"""

from __future__ import annotations

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
SAME = {"p50": 0.8, "p95": 0.95}
SHIFTED = {"p50": 0.6, "p95": 0.9}
SCORE_METRIC = {
    "name": "score",
    "kind": "distribution",
    "query": 'model_prediction_score_bucket{namespace="{{namespace}}",revision="{{revision}}"}',
}


def scorer(version: str, score: dict[str, float], prometheus: str, stage: dict[str, Any]) -> Any:
    release = model_release(version, behaviour={"score": score}, prometheus=prometheus, slos=[])
    release["spec"]["stages"] = [stage]
    for container in release["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)  # the shared cluster's GPUs are for capacity tests
    return release


SHADOW = {
    "name": "shadow",
    "shadow": {
        "mirrorPercent": 100,
        "duration": "40s",
        "comparison": {"warmup": "4s", "metrics": [SCORE_METRIC]},
    },
}
BAKE_OFF = {
    "name": "bake-off",
    "championChallenger": {
        "weight": 50,
        "maxDuration": "90s",
        "warmup": "4s",
        "onInconclusive": "promote",
        "metrics": [SCORE_METRIC],
    },
}


def test_same_scores_are_promoted_from_shadow_and_shifted_scores_roll_back(
    cluster: Cluster, operator: Process, simulator: Simulator, prometheus_url: str
) -> None:
    cluster.apply(http_route(rate=RATE), scorer("1", SAME, prometheus_url, SHADOW))
    wait_champion_version(cluster, "1", 90)

    # A/A on mirrored traffic: the same requests, the same score distribution.
    cluster.apply(scorer("2", SAME, prometheus_url, SHADOW))

    def compared() -> dict[str, Any] | None:
        records = cluster.status().get("comparison") or []
        record = records[0] if records else {}
        return record if record.get("challenger", {}).get("total", 0) > 0 else None

    wait_for(compared, 90, "the shadow's first score counts")
    status = wait_champion_version(cluster, "2", 90)
    last = status["history"][-1]
    assert last["outcome"] == "Promoted", last

    # A shifted challenger in a 50/50 bake-off: Drifted, with the buckets named.
    cluster.apply(scorer("3", SHIFTED, prometheus_url, BAKE_OFF))

    def rolled_back() -> dict[str, Any] | None:
        status = cluster.status()
        return status if status.get("phase") == "RolledBack" else None

    status = wait_for(rolled_back, 120, "the drifted challenger to roll back")
    last = status["history"][-1]
    assert last["reason"] == "DistributionDrifted", last
    assert "drifted" in last["message"]
    assert "0.9-1" in last["message"] or "0.5-0.6" in last["message"], last["message"]
    record = status["comparison"][0]
    shares = {bucket["bucket"]: bucket for bucket in record["buckets"]}
    assert shares["0.9-1"]["challenger"] < shares["0.9-1"]["champion"]
    assert status["champion"]["modelVersion"] == "2"
    wait_weights(cluster, (100, 0))
    print(f"rolled back: {last['message']}")
