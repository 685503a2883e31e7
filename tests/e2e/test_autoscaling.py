"""Autoscaling end to end: the ModelRelease's scale subresource, set by `kubectl scale`
and by the HorizontalPodAutoscaler controller of the local kube-controller-manager, and
a release in flight splitting the total between champion and challenger. The last test
gives that controller a real metric, the simulator's vLLM queue length from Prometheus,
through the aggregation layer and prometheus-adapter.

The pods ask for no GPU here, so the totals do not depend on what other tests left on
the two GPU nodes.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from modelrelease.api.constants import Reason
from modelrelease.core.manifests import ANNOTATION_MODEL_VERSION

from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Process,
    Simulator,
    http_route,
    model_release,
    wait_champion_version,
    wait_weights,
)
from tests.waiting import ConditionTimeoutError, wait_for

SETTLE_SECONDS = 60
HPA_SECONDS = 90  # the HPA controller syncs every 15 s; a loaded machine is slower


def _release(version: str, replicas: int, **extra: Any) -> dict[str, Any]:
    manifest = model_release(version, replicas=replicas, **extra)
    spec = manifest["spec"]
    del spec["template"]["spec"]["containers"][0]["resources"]
    spec["capacity"] = {"mode": "conserve", "maxSurge": 0}
    return manifest


def _replicas(cluster: Cluster) -> dict[str, tuple[int, int]]:
    """(spec.replicas, readyReplicas) of each of the release's Deployments, by version."""
    apps = client.AppsV1Api(cluster.api_client)
    found: list[Any] = apps.list_namespaced_deployment(
        cluster.namespace, label_selector=f"modelrelease.dev/release={RELEASE}"
    ).items
    result = {}
    for item in found:
        version = (item.metadata.annotations or {}).get(ANNOTATION_MODEL_VERSION, "?")
        result[str(version)] = (int(item.spec.replicas), int(item.status.ready_replicas or 0))
    return result


def _wait_replicas(cluster: Cluster, expected: dict[str, int], timeout: float) -> None:
    seen: dict[str, tuple[int, int]] = {}

    def probe() -> dict[str, tuple[int, int]] | None:
        now = _replicas(cluster)
        seen.update(now)
        wanted = {version: (n, n) for version, n in expected.items()}
        others = {version: n for version, (n, _) in now.items() if version not in expected}
        done = all(now.get(version) == pair for version, pair in wanted.items())
        return None if not done or any(others.values()) else now

    try:
        wait_for(probe, timeout, f"Deployments at {expected} replicas, all Ready")
    except ConditionTimeoutError as error:
        raise AssertionError(f"{error}; last seen (replicas, ready) by version: {seen}") from None


def _kubectl(cluster: Cluster, verb: str, *args: str) -> None:
    cluster.kubectl(verb, "modelrelease", RELEASE, "-n", cluster.namespace, *args)


def _scale(cluster: Cluster) -> dict[str, Any]:
    path = (
        f"/apis/modelrelease.dev/v1alpha1/namespaces/{cluster.namespace}"
        f"/modelreleases/{RELEASE}/scale"
    )
    scale: dict[str, Any] = json.loads(cluster.kubectl("get", "--raw", path).stdout)
    return scale


def test_kubectl_scale_sets_the_total_and_a_canary_splits_it(
    cluster: Cluster, operator: Process
) -> None:
    cluster.apply(http_route(), _release("1", replicas=2, steps=[(25, "10m")]))
    wait_champion_version(cluster, "1", SETTLE_SECONDS)

    _kubectl(cluster, "scale", "--replicas", "4")
    _wait_replicas(cluster, {"1": 4}, SETTLE_SECONDS)
    wait_for(lambda: cluster.status().get("readyReplicas") == 4, 15, "status.readyReplicas 4")
    scale = _scale(cluster)
    assert scale["spec"]["replicas"] == 4
    assert scale["status"]["replicas"] == 4
    assert scale["status"]["selector"] == f"modelrelease.dev/release={RELEASE}"

    # A new version; the total is the autoscaler's, so Git's manifest leaves it alone.
    patch = {"spec": {"model": {"version": "2", "uri": "s3://models/chat-8b/2"}}}
    _kubectl(cluster, "patch", "--type", "merge", "-p", json.dumps(patch))
    _wait_replicas(cluster, {"1": 3, "2": 1}, SETTLE_SECONDS)  # 25% of 4
    wait_weights(cluster, (75, 25), SETTLE_SECONDS)

    # The autoscaler doubles the total mid-step: both sides grow, the weight stays.
    _kubectl(cluster, "scale", "--replicas", "8")
    _wait_replicas(cluster, {"1": 6, "2": 2}, SETTLE_SECONDS)  # 25% of 8
    assert cluster.weights() == (75, 25)
    assert cluster.status()["currentStage"]["weight"] == 25

    _kubectl(cluster, "annotate", "modelrelease.dev/action=promote", "--overwrite")
    wait_champion_version(cluster, "2", SETTLE_SECONDS)
    _wait_replicas(cluster, {"2": 8}, SETTLE_SECONDS)  # promotion keeps the total
    assert cluster.release()["spec"]["replicas"] == 8  # the operator never writes it


def test_a_horizontal_pod_autoscaler_scales_the_release(
    cluster: Cluster, operator: Process
) -> None:
    cluster.apply(http_route(), _release("1", replicas=1))
    wait_champion_version(cluster, "1", SETTLE_SECONDS)
    # Below its minimum the controller scales without reading a metric (this test starts
    # no metrics adapter; the queue test below does), the path every autoscaler write takes.
    cpu = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
    cluster.apply(_release_autoscaler(minReplicas=3, maxReplicas=5, metrics=[cpu]))
    wait_for(
        lambda: cluster.release()["spec"]["replicas"] == 3,
        HPA_SECONDS,
        "the HorizontalPodAutoscaler to set spec.replicas to its minimum, 3",
    )
    managers = {f["manager"] for f in cluster.release()["metadata"].get("managedFields", [])}
    assert "kube-controller-manager" in managers, managers
    _wait_replicas(cluster, {"1": 3}, SETTLE_SECONDS)


def _misaimed_events(cluster: Cluster, autoscaler: str) -> int:
    """How many times an HPATargetsOwnedDeployment Event named ``autoscaler`` was posted."""
    core = client.CoreV1Api(cluster.api_client)
    items = core.list_namespaced_event(cluster.namespace).items
    return sum(
        int(event.count or 1)
        for event in items
        if event.reason == Reason.HPA_TARGETS_OWNED_DEPLOYMENT
        and f"HorizontalPodAutoscaler {autoscaler} " in (event.message or "")
    )


def test_an_autoscaler_aimed_at_an_owned_deployment_is_told_once_where_to_aim(
    cluster: Cluster, operator: Process
) -> None:
    cluster.apply(http_route(), _release("1", replicas=2))
    wait_champion_version(cluster, "1", SETTLE_SECONDS)
    [champion] = cluster.deployments()
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "misaimed"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": champion},
            # Bounds around the release's replicas, and a metric the local cluster cannot
            # serve: the controller leaves the Deployment alone, so what is tested is the
            # operator's report, and that it keeps the replicas the release decides.
            "minReplicas": 1,
            "maxReplicas": 6,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }
    cluster.apply(autoscaler)
    [message] = cluster.wait_events(
        Reason.HPA_TARGETS_OWNED_DEPLOYMENT, "HorizontalPodAutoscaler misaimed ", SETTLE_SECONDS
    )
    assert f"targets Deployment {champion}" in message, message
    assert f"kind ModelRelease, name {RELEASE}" in message, message
    assert cluster.status()["misdirectedAutoscalers"] == [
        {"name": "misaimed", "deployment": champion}
    ]

    # More passes with the autoscaler still there (its status changes wake the release
    # too): the total changes, the operator scales its Deployment, and tells no more.
    _kubectl(cluster, "scale", "--replicas", "3")
    _wait_replicas(cluster, {"1": 3}, SETTLE_SECONDS)
    wait_for(lambda: cluster.status().get("readyReplicas") == 3, 15, "status.readyReplicas 3")
    assert cluster.release()["spec"]["replicas"] == 3
    assert _misaimed_events(cluster, "misaimed") == 1

    # Aimed at the ModelRelease instead: the report clears, and no new Warning comes.
    autoscaler["spec"]["scaleTargetRef"] = {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "name": RELEASE,
    }
    cluster.apply(autoscaler)
    wait_for(
        lambda: not cluster.status().get("misdirectedAutoscalers"),
        SETTLE_SECONDS,
        "status.misdirectedAutoscalers cleared once the HPA targets the ModelRelease",
    )
    assert _misaimed_events(cluster, "misaimed") == 1


# --- a real autoscaler on a real metric ---------------------------------------------------------

# Each pod serves one request at a time (vLLM's --max-num-seqs 1) for 2 s: the requests
# beyond that wait, and vllm:num_requests_waiting counts them. At LOW_RATE the release
# carries about 1 request in flight, so the queue is empty and the HPA sits at its minimum;
# at HIGH_RATE about 40, so even 8 pods leave ~32 waiting, far above 2 per replica, and it
# goes to its maximum. Both ends are far from the target, so a Poisson burst does not
# move the answer: what the test shows is the direction, not a tuned equilibrium.
QUEUED = {"maxNumSeqs": 1, "e2e": 2.0, "ttft": 0.05}
LOW_RATE, HIGH_RATE = "0.5", "20"
MIN_REPLICAS, MAX_REPLICAS = 2, 8
WAITING = "vllm:num_requests_waiting"


def _queue_autoscaler() -> dict[str, Any]:
    """An HPA on the release's total queue length: the waiting requests of all its pods
    (champion and challenger), 2 per replica, read through external.metrics.k8s.io."""
    fast = {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Pods", "value": 8, "periodSeconds": 1}],
    }
    return _release_autoscaler(
        minReplicas=MIN_REPLICAS,
        maxReplicas=MAX_REPLICAS,
        metrics=[
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": WAITING,
                        "selector": {"matchLabels": {"release": RELEASE}},
                    },
                    "target": {"type": "AverageValue", "averageValue": "2"},
                },
            }
        ],
        # Both directions at once: the default waits 5 minutes before scaling in.
        behavior={"scaleUp": fast, "scaleDown": fast},
    )


def _release_autoscaler(**spec: Any) -> dict[str, Any]:
    """An autoscaling/v2 HPA on the ModelRelease's scale subresource with ``spec``."""
    target = {"apiVersion": "modelrelease.dev/v1alpha1", "kind": "ModelRelease", "name": RELEASE}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": RELEASE},
        "spec": {"scaleTargetRef": target, **spec},
    }


def _set_rate(cluster: Cluster, rate: str) -> None:
    cluster.kubectl(
        "annotate",
        "httproute",
        RELEASE,
        "-n",
        cluster.namespace,
        f"simulator.modelrelease.dev/rate={rate}",
        "--overwrite",
    )


def _hpa_metric(cluster: Cluster) -> str:
    found = cluster.kubectl("get", "hpa", RELEASE, "-n", cluster.namespace, "-o", "json")
    metrics = json.loads(found.stdout).get("status", {}).get("currentMetrics") or []
    values = [m.get("external", {}).get("current", {}).get("averageValue", "?") for m in metrics]
    return ",".join(values) or "none yet"


def _wait_autoscaled(
    cluster: Cluster, total: int, expected: dict[str, int], seen: list[str]
) -> None:
    """The HPA set spec.replicas to ``total`` and the Deployments follow with ``expected``."""

    def probe() -> bool:
        replicas = int(cluster.release()["spec"]["replicas"])
        seen.append(f"{replicas}@{_hpa_metric(cluster)}")
        return replicas == total

    try:
        wait_for(
            probe,
            HPA_SECONDS,
            f"the HorizontalPodAutoscaler to set spec.replicas {total}",
            interval=1,
        )
    except ConditionTimeoutError as error:
        raise AssertionError(f"{error}; spec.replicas@HPA metric seen: {seen[-20:]}") from None
    _wait_replicas(cluster, expected, SETTLE_SECONDS)


def test_an_autoscaler_follows_the_queue_before_during_and_after_a_canary(
    cluster: Cluster, operator: Process, simulator: Simulator, metrics_adapter: Process
) -> None:
    cluster.apply(
        http_route(rate=float(LOW_RATE)),
        _release("1", replicas=MIN_REPLICAS, behaviour=QUEUED, steps=[(25, "10m")]),
    )
    wait_champion_version(cluster, "1", SETTLE_SECONDS)
    cluster.apply(_queue_autoscaler())
    seen: list[str] = []

    # Before a release: load rises, the release scales out; load falls, it scales in.
    _set_rate(cluster, HIGH_RATE)
    _wait_autoscaled(cluster, MAX_REPLICAS, {"1": MAX_REPLICAS}, seen)
    _set_rate(cluster, LOW_RATE)
    _wait_autoscaled(cluster, MIN_REPLICAS, {"1": MIN_REPLICAS}, seen)

    # During a canary at 25%: the HPA's total is split by the weight.
    patch = {"spec": {"model": {"version": "2", "uri": "s3://models/chat-8b/2"}}}
    _kubectl(cluster, "patch", "--type", "merge", "-p", json.dumps(patch))
    _wait_replicas(cluster, {"1": 1, "2": 1}, SETTLE_SECONDS)
    wait_weights(cluster, (75, 25), SETTLE_SECONDS)
    _set_rate(cluster, HIGH_RATE)
    _wait_autoscaled(cluster, MAX_REPLICAS, {"1": 6, "2": 2}, seen)  # 25% of 8
    assert cluster.weights() == (75, 25)
    _set_rate(cluster, LOW_RATE)
    _wait_autoscaled(cluster, MIN_REPLICAS, {"1": 1, "2": 1}, seen)
    assert cluster.status()["currentStage"]["weight"] == 25

    # After the promotion: the new champion scales the same way.
    _kubectl(cluster, "annotate", "modelrelease.dev/action=promote", "--overwrite")
    wait_champion_version(cluster, "2", SETTLE_SECONDS)
    _wait_replicas(cluster, {"2": MIN_REPLICAS}, SETTLE_SECONDS)
    _set_rate(cluster, HIGH_RATE)
    _wait_autoscaled(cluster, MAX_REPLICAS, {"2": MAX_REPLICAS}, seen)
    _set_rate(cluster, LOW_RATE)
    _wait_autoscaled(cluster, MIN_REPLICAS, {"2": MIN_REPLICAS}, seen)

    managers = {f["manager"] for f in cluster.release()["metadata"].get("managedFields", [])}
    assert "kube-controller-manager" in managers, managers
    found = cluster.kubectl("get", "hpa", RELEASE, "-n", cluster.namespace, "-o", "json")
    hpa = json.loads(found.stdout)
    active = {c["type"]: c for c in hpa["status"]["conditions"]}["ScalingActive"]
    assert (active["status"], active["reason"]) == ("True", "ValidMetricFound"), active
    print(f"spec.replicas@HPA metric seen: {seen}")
