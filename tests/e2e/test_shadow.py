"""Shadow releases end to end: a Gateway API RequestMirror filter copies a share of
the requests to the challenger while users are served by the champion alone."""

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
MIRROR_PERCENT = 50
MIRRORED_ENOUGH = 400  # mirrored requests counted before the share is measured
ERRORS_METRIC = {
    "name": "errors",
    "kind": "ratio",
    "bad": (
        'vllm:request_success_total{namespace="{{namespace}}",revision="{{revision}}",'
        'finished_reason="error"}'
    ),
    "total": 'vllm:request_success_total{namespace="{{namespace}}",revision="{{revision}}"}',
}


def shadowed(
    version: str,
    prometheus: str,
    error_ratio: float = 0.0,
    duration: str = "20s",
    comparison: bool = False,
) -> dict[str, Any]:
    behaviour = {"errorRatio": error_ratio} if error_ratio else None
    release = model_release(version, behaviour=behaviour, prometheus=prometheus, slos=[])
    shadow: dict[str, Any] = {"mirrorPercent": MIRROR_PERCENT, "duration": duration}
    if comparison:
        shadow["comparison"] = {"warmup": "5s", "metrics": [ERRORS_METRIC]}
    release["spec"]["stages"] = [{"name": "shadow", "shadow": shadow}]
    for container in release["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)  # the shared cluster's GPUs are for capacity tests
    return release


def mirror_filters(cluster: Cluster) -> list[dict[str, Any]]:
    return [
        item
        for rule in cluster.route()["spec"]["rules"]
        for item in rule.get("filters") or []
        if item.get("type") == "RequestMirror"
    ]


def _counts(simulator: Simulator, champion: str, challenger: str) -> tuple[int, int, int]:
    """(champion's user requests, challenger's mirrored copies, challenger's user requests)."""
    entry = simulator.revision(challenger) or {}
    mirror = entry.get("mirror") or {}
    user = entry.get("user") or {}
    return (
        simulator.served(champion),
        int(mirror.get("success", 0)) + int(mirror.get("error", 0)),
        int(user.get("success", 0)) + int(user.get("error", 0)),
    )


def test_shadow_mirrors_half_the_requests_and_the_mirror_goes_after_promotion(
    cluster: Cluster, operator: Process, simulator: Simulator, prometheus_url: str
) -> None:
    cluster.apply(http_route(rate=RATE), shadowed("1", prometheus_url))
    champion = wait_champion_version(cluster, "1", 90)["champion"]["revision"]
    cluster.apply(shadowed("2", prometheus_url))

    def mirroring() -> tuple[str, list[dict[str, Any]]] | None:
        status = cluster.status()
        stage = status.get("currentStage") or {}
        filters = mirror_filters(cluster)
        if not stage.get("stepStartTime") or not filters:
            return None
        return status["challenger"]["revision"], filters

    challenger, filters = wait_for(mirroring, 90, "the shadow stage to mirror")
    assert filters[0]["requestMirror"]["backendRef"]["name"] == "chat-canary"
    assert filters[0]["requestMirror"].get("percent") == MIRROR_PERCENT
    start = _counts(simulator, champion, challenger)

    def measured() -> tuple[int, int, int] | None:
        now = _counts(simulator, champion, challenger)
        return now if now[1] - start[1] >= MIRRORED_ENOUGH else None

    end = wait_for(measured, 60, f"{MIRRORED_ENOUGH} mirrored requests")
    users, mirrored = end[0] - start[0], end[1] - start[1]
    share = mirrored / users
    assert 0.4 <= share <= 0.6, f"mirrored {mirrored} of {users} user requests ({share:.0%})"
    assert end[2] == 0, f"the challenger served {end[2]} user requests during the shadow"

    wait_champion_version(cluster, "2", 90)
    wait_for(lambda: not mirror_filters(cluster), 10, "the mirror filter to be removed")
    print(f"mirrored {mirrored} of {users} user requests ({share:.1%}); filter removed")


def test_shadow_comparison_lost_rolls_back_and_removes_the_mirror(
    cluster: Cluster, operator: Process, simulator: Simulator, prometheus_url: str
) -> None:
    cluster.apply(
        http_route(rate=RATE), shadowed("1", prometheus_url, error_ratio=0.05, comparison=True)
    )
    champion = wait_champion_version(cluster, "1", 90)["champion"]["revision"]
    cluster.apply(shadowed("2", prometheus_url, error_ratio=0.25, duration="120s", comparison=True))
    wait_for(lambda: mirror_filters(cluster), 90, "the shadow stage to mirror")

    def rolled_back() -> dict[str, Any] | None:
        status = cluster.status()
        return status if status.get("phase") == "RolledBack" else None

    status = wait_for(rolled_back, 120, "the lost comparison to roll back")
    last = status["history"][-1]
    assert last["reason"] == "ComparisonLost"
    assert "mirrored traffic" in last["message"]
    assert status["champion"]["revision"] == champion
    wait_for(lambda: not mirror_filters(cluster), 10, "the mirror filter to be removed")
    wait_weights(cluster, (100, 0))
    print(f"rolled back: {last['message']}")
