"""GPU capacity and failing pods end to end: the operator process, the API server, the
real scheduler and kwok nodes (gpu-node-0/1 with 4 nvidia.com/gpu each).

The cluster is shared, so tests pin their pods to one node and measure what is
free there instead of assuming it.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Process,
    RouteRecorder,
    http_route,
    model_release,
    wait_champion_version,
    wait_phase,
    wait_weights,
)
from tests.waiting import wait_for

GPU = "nvidia.com/gpu"
GPU_NODES = ("gpu-node-0", "gpu-node-1")
DETECT_SECONDS = 5  # reconcile interval is 1 s
CRASH_ROLLBACK_SECONDS = 15


def _pinned(version: str, node: str, **release: Any) -> dict[str, Any]:
    manifest = model_release(version, replicas=1, **{"steps": [(50, "2s")], **release})
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    return manifest


def _roomiest_node(cluster: Cluster) -> str:
    """The GPU node with the most free GPUs now (other tests share the cluster)."""
    return max(GPU_NODES, key=lambda node: _free_gpus(cluster, node))


def _free_gpus(cluster: Cluster, node: str) -> int:
    core = client.CoreV1Api(cluster.api_client)
    found: Any = core.read_node(node)
    allocatable = int((found.status.allocatable or {}).get(GPU, "0"))
    pods: list[Any] = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    used = 0
    for pod in pods:
        if pod.status.phase in ("Succeeded", "Failed"):
            continue
        for container in pod.spec.containers:
            limits = container.resources.limits if container.resources else None
            used += int((limits or {}).get(GPU, "0"))
    return allocatable - used


def _blocker(replicas: int, node: str) -> dict[str, Any]:
    """A Deployment holding ``replicas`` GPUs of the node, one per pod."""
    labels = {"app": "gpu-blocker"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gpu-blocker"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "containers": [
                        {
                            "name": "hold",
                            "image": "busybox",
                            "resources": {"limits": {GPU: 1}},
                        }
                    ],
                },
            },
        },
    }


def _release_pods(cluster: Cluster, revision: str | None = None) -> list[Any]:
    core = client.CoreV1Api(cluster.api_client)
    selector = f"modelrelease.dev/release={RELEASE}"
    if revision:
        selector += f",modelrelease.dev/revision={revision}"
    items: list[Any] = core.list_namespaced_pod(cluster.namespace, label_selector=selector).items
    return items


def _degraded(cluster: Cluster, reason: str) -> dict[str, Any] | None:
    condition = cluster.condition("Degraded")
    if condition and condition.get("status") == "True" and condition.get("reason") == reason:
        return condition
    return None


def test_challenger_without_free_gpus_is_held_then_proceeds_when_gpus_free_up(
    cluster: Cluster,
    operator: Process,
    recorder: RouteRecorder,
) -> None:
    node = _roomiest_node(cluster)
    cluster.apply(http_route(rate=None), _pinned("1", node))
    wait_champion_version(cluster, "1", 90)
    free = _free_gpus(cluster, node)
    if free > 0:
        cluster.apply(_blocker(free, node))
        wait_for(lambda: _free_gpus(cluster, node) <= 0, 60, f"the blocker to fill {node}")

    cluster.apply(_pinned("2", node))
    applied = time.monotonic()
    recorder.start()
    condition = wait_for(
        lambda: _degraded(cluster, "InsufficientGPU"), 30, "the InsufficientGPU condition"
    )
    detected = time.monotonic() - applied
    print(f"InsufficientGPU after {detected:.1f}s: {condition['message']}")
    assert detected < DETECT_SECONDS
    message = condition["message"]
    assert message.startswith(f"challenger needs 1 more pod × 1 {GPU}; ")  # noqa: RUF001
    assert f"nodes matching the template have 0 free ({node}: 0)" in message
    assert "Free GPUs" in message
    progressing = cluster.condition("Progressing")
    assert progressing is not None
    assert progressing["reason"] == "InsufficientGPU"
    cluster.wait_events("InsufficientGPU")  # a Warning Event says so too
    challenger = (cluster.status().get("challenger") or {}).get("revision")
    assert challenger
    # The hold lasts: a few passes later nothing has moved.
    wait_for(lambda: len(recorder.samples) >= 12, 10, "three seconds of samples")
    assert {(s.stable, s.canary) for s in recorder.samples} == {(100, 0)}
    assert _release_pods(cluster, challenger) == [], "no challenger pod was created"
    assert cluster.status()["phase"] == "Progressing"

    client.AppsV1Api(cluster.api_client).delete_namespaced_deployment(
        "gpu-blocker", cluster.namespace, propagation_policy="Foreground"
    )
    wait_champion_version(cluster, "2", 90)
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert degraded["status"] == "False"
    recorder.stop()
    assert 50 in recorder.canary_weights(), "the canary step ran once GPUs were free"


def _crash(cluster: Cluster, pod: Any) -> None:
    """Make a kwok pod look crash-looping (kwok leaves a `custom` pod's status alone)."""
    core = client.CoreV1Api(cluster.api_client)
    name = pod.metadata.name
    core.patch_namespaced_pod(
        name, cluster.namespace, {"metadata": {"annotations": {"kwok.x-k8s.io/status": "custom"}}}
    )
    status = {
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "server",
                    "image": "vllm/vllm-openai:v0.11.0",
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 3,
                    "state": {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": "back-off 40s restarting failed container=server",
                        }
                    },
                }
            ],
        }
    }
    core.patch_namespaced_pod_status(name, cluster.namespace, status)


def test_crash_looping_challenger_is_rolled_back_within_seconds(
    cluster: Cluster,
    operator: Process,
) -> None:
    node = _roomiest_node(cluster)
    cluster.apply(http_route(rate=None), _pinned("1", node))
    wait_champion_version(cluster, "1", 90)
    slow = _pinned("2", node, steps=[(50, "5m")])
    cluster.apply(slow)

    def challenger_pod() -> Any:
        revision = (cluster.status().get("challenger") or {}).get("revision")
        pods = _release_pods(cluster, revision) if revision else []
        running = [p for p in pods if p.status.phase == "Running"]
        return running[0] if running else None

    pod = wait_for(challenger_pod, 60, "a running challenger pod")
    _crash(cluster, pod)
    crashed = time.monotonic()
    status = wait_phase(cluster, "RolledBack", CRASH_ROLLBACK_SECONDS, "the rollback")
    took = time.monotonic() - crashed
    entry = status["history"][-1]
    print(f"rolled back {took:.1f}s after the crash: {entry['message']}")
    assert entry["reason"] == "CrashLooping"
    assert f"pod {pod.metadata.name}: container server is CrashLoopBackOff" in entry["message"]
    assert "after 3 restarts" in entry["message"]
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert degraded["reason"] == "CrashLooping"
    wait_weights(cluster, (100, 0))


def test_challenger_larger_than_any_node_is_rolled_back_at_once(
    cluster: Cluster,
    operator: Process,
) -> None:
    cluster.apply(http_route(rate=None), model_release("1"))
    wait_champion_version(cluster, "1", 90)
    greedy = model_release("2")
    container = greedy["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["limits"][GPU] = 64  # more than any node has
    cluster.apply(greedy)
    applied = time.monotonic()
    status = wait_phase(cluster, "RolledBack", 30, "the oversized version to be rolled back")
    took = time.monotonic() - applied
    entry = status["history"][-1]
    print(f"rolled back {took:.1f}s after the apply: {entry['message']}")
    assert took < DETECT_SECONDS
    assert entry["reason"] == "InsufficientGPU"
    assert f"each challenger pod asks for 64 {GPU}" in entry["message"]
    assert "the largest node matching the template has 4 allocatable" in entry["message"]
    wait_weights(cluster, (100, 0))
