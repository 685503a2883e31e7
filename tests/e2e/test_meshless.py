"""Mesh-less releases end to end: one Service over both revisions, where the weight is
the share of ready pods, so the operator moves traffic by moving replicas."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Process,
    Simulator,
    model_release,
    wait_champion_version,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

REPLICAS = 4
MAX_SURGE = 1
STEPS = [(25, "5s"), (50, "5s")]
EXPECTED = [(3, 1), (2, 2)]  # (champion, challenger) replicas at each step


def meshless(version: str) -> dict[str, Any]:
    release = model_release(version, steps=STEPS, replicas=REPLICAS)
    release["spec"]["traffic"] = {"none": {}}
    # conserve: promotion must not wait for a champion pod that maxSurge would keep
    release["spec"]["capacity"] = {"mode": "conserve", "maxSurge": MAX_SURGE}
    for container in release["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)  # the shared cluster's GPUs are for capacity tests
    return release


def replicas(cluster: Cluster, revision: str) -> tuple[int, int]:
    """(spec.replicas, readyReplicas) of a revision's Deployment."""
    apps = client.AppsV1Api(cluster.api_client)
    deployment = apps.read_namespaced_deployment(f"{RELEASE}-{revision}", cluster.namespace)
    assert deployment.spec is not None
    assert deployment.status is not None
    return int(deployment.spec.replicas or 0), int(deployment.status.ready_replicas or 0)


def test_replica_counts_follow_the_weights(
    cluster: Cluster, operator: Process, simulator: Simulator
) -> None:
    cluster.apply(meshless("1"))
    champion = wait_champion_version(cluster, "1", 90)["champion"]["revision"]
    cluster.kubectl(
        "annotate",
        "service",
        RELEASE,
        "-n",
        cluster.namespace,
        "simulator.modelrelease.dev/rate=40",
        "--overwrite",
    )
    cluster.apply(meshless("2"))

    def challenger() -> str | None:
        revision: str | None = (cluster.status().get("challenger") or {}).get("revision")
        return revision

    revision = wait_for(challenger, 30, "a challenger")
    for index, ((weight, _), expected) in enumerate(zip(STEPS, EXPECTED, strict=True)):

        def at_step(index: int = index, weight: int = weight) -> dict[str, Any] | None:
            stage = cluster.status().get("currentStage") or {}
            running = stage.get("stepStartTime") and stage.get("step") == index
            return stage if running and stage.get("weight") == weight else None

        wait_for(at_step, 60, f"step {index + 1} at weight {weight}")

        def settled(expected: tuple[int, int] = expected) -> bool:
            wanted = (replicas(cluster, champion)[0], replicas(cluster, revision)[0])
            return wanted == expected

        wait_for(settled, 10, f"replicas (champion, challenger) = {expected} at {weight}%")
        # The ready challenger pods are the step's share of the Service's pods.
        ready = replicas(cluster, revision)[1]
        assert ready >= expected[1]

    wait_champion_version(cluster, "2", 90)
    wait_for(
        lambda: replicas(cluster, revision)[0] == REPLICAS and replicas(cluster, champion)[0] == 0,
        30,
        "the new champion at full size and the old one at zero",
    )
    served = simulator.served(revision)
    assert served > 0, "the challenger got no requests through the release's Service"
