"""Owned objects converge (I8), a release at rest writes nothing, and only opted-in
Secrets are read (I7): the operator process against the real API server."""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes import client

from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Process,
    Simulator,
    http_route,
    model_release,
    wait_champion_version,
    wait_phase,
)
from tests.waiting import wait_for

CONVERGE_SECONDS = 20
QUIET_SECONDS = 8  # eight reconcile passes at the e2e interval of 1 s


def _service_selector(cluster: Cluster, role: str) -> dict[str, str]:
    core = client.CoreV1Api(cluster.api_client)
    service = core.read_namespaced_service(f"{RELEASE}-{role}", cluster.namespace)
    return dict(service.spec.selector or {})


def _image(cluster: Cluster, name: str) -> str:
    apps = client.AppsV1Api(cluster.api_client)
    deployment = apps.read_namespaced_deployment(name, cluster.namespace)
    return str(deployment.spec.template.spec.containers[0].image)


def _versions(cluster: Cluster) -> dict[str, str]:
    """resourceVersion of the release and of every object the operator writes."""
    apps = client.AppsV1Api(cluster.api_client)
    core = client.CoreV1Api(cluster.api_client)
    selector = f"modelrelease.dev/release={RELEASE}"
    found = {"release": cluster.release()["metadata"]["resourceVersion"]}
    found["route"] = cluster.route()["metadata"]["resourceVersion"]
    for item in apps.list_namespaced_deployment(cluster.namespace, label_selector=selector).items:
        found[f"deployment/{item.metadata.name}"] = item.metadata.resource_version
    for item in core.list_namespaced_service(cluster.namespace, label_selector=selector).items:
        found[f"service/{item.metadata.name}"] = item.metadata.resource_version
    return found


def test_hand_edits_of_owned_objects_are_restored(
    cluster: Cluster, operator: Process, kubectl: Any
) -> None:
    cluster.apply(http_route(), model_release("1"))
    status = wait_champion_version(cluster, "1", 90)
    revision = status["champion"]["revision"]
    deployment = f"{RELEASE}-{revision}"
    wanted_image = _image(cluster, deployment)

    selector = {"modelrelease.dev/revision": "someone-else"}
    kubectl(
        "patch", "service", f"{RELEASE}-stable", "-n", cluster.namespace, "--type=merge",
        "-p", json.dumps({"spec": {"selector": selector}}), check=True,
    )  # fmt: skip
    container = {"name": "server", "image": "edited/by-hand:1"}
    kubectl(
        "patch", "deployment", deployment, "-n", cluster.namespace, "--type=strategic",
        "-p", json.dumps({"spec": {"template": {"spec": {"containers": [container]}}}}),
        check=True,
    )  # fmt: skip

    wait_for(
        lambda: _service_selector(cluster, "stable").get("modelrelease.dev/revision") == revision,
        CONVERGE_SECONDS,
        "the stable Service selecting the champion again",
    )
    wait_for(
        lambda: _image(cluster, deployment) == wanted_image,
        CONVERGE_SECONDS,
        f"the Deployment's image back to {wanted_image}",
    )


def test_a_release_at_rest_writes_nothing(cluster: Cluster, operator: Process) -> None:
    cluster.apply(http_route(), model_release("1"))
    wait_phase(cluster, "Succeeded", 90)
    # Settle: the first passes after Succeeded may still write Available's transition.
    before = wait_for(
        lambda: _stable_versions(cluster), 30, "two identical readings of the objects"
    )
    time.sleep(QUIET_SECONDS)  # a holding period: nothing may change in it
    assert _versions(cluster) == before


def _stable_versions(cluster: Cluster) -> dict[str, str] | None:
    first = _versions(cluster)
    time.sleep(2)  # two passes apart
    return first if _versions(cluster) == first else None


def test_only_opted_in_secrets_are_read(
    cluster: Cluster, operator: Process, simulator: Simulator, kubectl: Any, prometheus_url: str
) -> None:
    cluster.apply(http_route(), model_release("1", prometheus=prometheus_url))
    wait_champion_version(cluster, "1", 90)
    kubectl(
        "create", "secret", "generic", "prometheus-reader", "-n", cluster.namespace,
        "--from-literal=token=not-for-you", check=True,
    )  # fmt: skip
    release = model_release("2", prometheus=prometheus_url)
    release["spec"]["analysis"]["prometheus"]["authSecretRef"] = {"name": "prometheus-reader"}
    cluster.apply(release)

    def not_opted_in() -> dict[str, Any] | None:
        degraded = cluster.condition("Degraded")
        if degraded and degraded["reason"] == "SecretNotOptedIn":
            return degraded
        return None

    degraded = wait_for(not_opted_in, 30, "Degraded SecretNotOptedIn")
    assert "kubectl label secret prometheus-reader" in degraded["message"]
    assert "not-for-you" not in json.dumps(cluster.status())
    assert cluster.weights() == (100, 0)  # nothing moves on a spec the operator cannot honour

    kubectl(
        "label", "secret", "prometheus-reader", "-n", cluster.namespace,
        "modelrelease.dev/credentials=true", check=True,
    )  # fmt: skip
    wait_champion_version(cluster, "2", 120)
    assert "not-for-you" not in json.dumps(cluster.status())
