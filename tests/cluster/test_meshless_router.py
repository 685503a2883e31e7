"""The mesh-less router against the real API server, with pods made Ready by kwok.

The Deployments and the ``-stable``/``-canary`` Services are created here the
way the operator names and labels them; the router owns only the Service
``<release>`` over both revisions.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from modelrelease.api.constants import LABEL_RELEASE, LABEL_REVISION
from modelrelease.core.capacity import replicas_for_weight
from modelrelease.core.manifests import Owner
from modelrelease.kube.client import KubeClient
from modelrelease.routers.meshless import MeshlessRouter
from modelrelease.routers.router import MirrorUnsupportedError, Routes

from tests.waiting import wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
Json = dict[str, Any]
RELEASE = "chat"
PORT = 8000
STABLE_REV = "aaaaaaaaaa"
CANARY_REV = "bbbbbbbbbb"
TOTAL = 4
READY_SECONDS = 60.0


def _labels(revision: str) -> dict[str, str]:
    return {LABEL_RELEASE: RELEASE, LABEL_REVISION: revision}


def _owner_release() -> Json:
    """A paused ModelRelease to own the Service. Should an operator be watching, its
    pods could never be scheduled, so they never count as ready endpoints."""
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": RELEASE},
        "spec": {
            "model": {"name": "chat-8b", "version": "1"},
            "replicas": 1,
            "port": PORT,
            "paused": True,
            "template": {
                "spec": {
                    "nodeSelector": {"modelrelease.dev/test": "nowhere"},
                    "containers": [{"name": "server", "image": "vllm/vllm-openai:latest"}],
                }
            },
            "traffic": {"none": {}},
            "stages": [{"canary": {"steps": [{"weight": 50, "duration": "1m"}]}}],
        },
    }


def _deployment(revision: str, replicas: int) -> Json:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{RELEASE}-{revision}", "labels": _labels(revision)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _labels(revision)},
            "template": {
                "metadata": {"labels": _labels(revision)},
                "spec": {"containers": [{"name": "server", "image": "vllm/vllm-openai:latest"}]},
            },
        },
    }


def _revision_service(role: str, revision: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{RELEASE}-{role}", "labels": _labels(revision)},
        "spec": {
            "selector": _labels(revision),
            "ports": [{"name": "http", "port": PORT, "targetPort": PORT}],
        },
    }


def _apply(kubectl: Kubectl, namespace: str, *objects: Json) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def _get(kubectl: Kubectl, namespace: str, *what: str) -> Json:
    found: Json = json.loads(kubectl("get", *what, "-n", namespace, "-o", "json").stdout)
    return found


@pytest.fixture
def router(
    api_client: client.ApiClient, namespace: str, kubectl: Kubectl, modelrelease_crds: None
) -> MeshlessRouter:
    _apply(kubectl, namespace, _owner_release())
    uid = _get(kubectl, namespace, "modelrelease", RELEASE)["metadata"]["uid"]
    stable, canary = replicas_for_weight(TOTAL, 25)
    _apply(
        kubectl,
        namespace,
        _revision_service("stable", STABLE_REV),
        _revision_service("canary", CANARY_REV),
        _deployment(STABLE_REV, stable),
        _deployment(CANARY_REV, canary),
    )
    owner = Owner(name=RELEASE, namespace=namespace, uid=uid)
    return MeshlessRouter(KubeClient(api_client), namespace, RELEASE, PORT, owner)


def _routes_become(router: MeshlessRouter, expected: Routes) -> None:
    wait_for(
        lambda: router.get_routes() == expected,
        READY_SECONDS,
        f"ready pods to give {expected} (last read: {router.get_routes()})",
    )


def _ready_endpoints(kubectl: Kubectl, namespace: str) -> int | None:
    slices = _get(
        kubectl, namespace, "endpointslices", "-l", f"kubernetes.io/service-name={RELEASE}"
    )
    ready = [
        endpoint
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
    ]
    return len(ready) or None


def test_one_service_selects_both_revisions_and_weights_follow_ready_pods(
    router: MeshlessRouter, kubectl: Kubectl, namespace: str
) -> None:
    router.set_routes(75, 25, 0)
    service = _get(kubectl, namespace, "service", RELEASE)
    assert service["spec"]["selector"] == {LABEL_RELEASE: RELEASE}
    assert service["spec"]["ports"][0]["port"] == PORT
    [reference] = service["metadata"]["ownerReferences"]
    assert (reference["kind"], reference["name"], reference["controller"]) == (
        "ModelRelease",
        RELEASE,
        True,
    )
    _routes_become(router, Routes(75, 25, 0))
    assert wait_for(
        lambda: _ready_endpoints(kubectl, namespace) == TOTAL,
        READY_SECONDS,
        f"the Service {RELEASE} to have {TOTAL} ready endpoints, of both revisions",
    )

    stable, canary = replicas_for_weight(TOTAL, 50)
    kubectl("scale", "-n", namespace, f"deployment/{RELEASE}-{CANARY_REV}", f"--replicas={canary}")
    kubectl("scale", "-n", namespace, f"deployment/{RELEASE}-{STABLE_REV}", f"--replicas={stable}")
    router.set_routes(50, 50, 0)
    _routes_become(router, Routes(50, 50, 0))


def test_mirroring_is_refused(router: MeshlessRouter, kubectl: Kubectl, namespace: str) -> None:
    with pytest.raises(MirrorUnsupportedError, match="gatewayAPI or istio"):
        router.set_routes(100, 0, 50)
    assert kubectl("get", "service", RELEASE, "-n", namespace, check=False).returncode != 0


def test_finalize_leaves_the_service_over_the_release(
    router: MeshlessRouter, kubectl: Kubectl, namespace: str
) -> None:
    router.set_routes(100, 0, 0)
    patch = {"spec": {"selector": {LABEL_REVISION: CANARY_REV}}}
    kubectl("patch", "service", RELEASE, "-n", namespace, "-p", json.dumps(patch))
    router.finalize()
    service = _get(kubectl, namespace, "service", RELEASE)
    assert service["spec"]["selector"] == {LABEL_RELEASE: RELEASE}
