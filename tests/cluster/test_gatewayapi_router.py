"""The Gateway API router against the real API server and installed HTTPRoute CRD."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from modelrelease.kube.client import KubeClient
from modelrelease.routers.gatewayapi import Backends, GatewayAPIRouter
from modelrelease.routers.router import RouteNotFoundError, Routes

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
BACKENDS = Backends(stable_service="chat-stable", canary_service="chat-canary", port=8000)

ADMIN_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
    "filters": [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {"add": [{"name": "x-admin", "value": "1"}]},
        }
    ],
    "backendRefs": [{"name": "admin", "port": 80, "weight": 1}],
}


def _route(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "chat", "namespace": namespace, "labels": {"team": "llm"}},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "hostnames": ["chat.example.com"],
            "rules": [
                ADMIN_RULE,
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                    "backendRefs": [
                        {"name": "chat-stable", "port": 8000},
                        {"name": "legacy", "port": 9000, "weight": 5},
                    ],
                },
            ],
        },
    }


def _read(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    out = kubectl("get", "httproute", "chat", "-n", namespace, "-o", "json").stdout
    route: dict[str, Any] = json.loads(out)
    return route


@pytest.fixture
def router(api_client: client.ApiClient, namespace: str, kubectl: Kubectl) -> GatewayAPIRouter:
    kubectl("apply", "-f", "-", input=json.dumps(_route(namespace)))
    return GatewayAPIRouter(KubeClient(api_client), namespace, "chat", BACKENDS)


def test_weights_are_written_and_read_back(
    router: GatewayAPIRouter, kubectl: Kubectl, namespace: str
) -> None:
    for stable, canary in ((95, 5), (75, 25), (50, 50)):
        router.set_routes(stable, canary, 0)
        assert router.get_routes() == Routes(stable, canary, 0)
        rule = _read(kubectl, namespace)["spec"]["rules"][1]
        weights = {ref["name"]: ref.get("weight") for ref in rule["backendRefs"]}
        assert weights == {"chat-stable": stable, "chat-canary": canary, "legacy": 5}


def test_everything_else_in_the_route_is_preserved(
    router: GatewayAPIRouter, kubectl: Kubectl, namespace: str
) -> None:
    before = _read(kubectl, namespace)
    router.set_routes(80, 20, 40)
    after = _read(kubectl, namespace)
    assert after["spec"]["rules"][0] == before["spec"]["rules"][0]
    assert after["spec"]["parentRefs"] == before["spec"]["parentRefs"]
    assert after["spec"]["hostnames"] == before["spec"]["hostnames"]
    assert after["metadata"]["labels"] == {"team": "llm"}
    assert after["spec"]["rules"][1]["matches"] == before["spec"]["rules"][1]["matches"]


def test_percent_mirror_on_the_installed_crd(
    router: GatewayAPIRouter, kubectl: Kubectl, namespace: str
) -> None:
    router.set_routes(100, 0, 50)
    assert router.get_routes() == Routes(100, 0, 50)
    filters = _read(kubectl, namespace)["spec"]["rules"][1]["filters"]
    assert filters == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"group": "", "kind": "Service", "name": "chat-canary", "port": 8000},
                "percent": 50,
            },
        }
    ]
    router.set_routes(100, 0, 0)
    assert "filters" not in _read(kubectl, namespace)["spec"]["rules"][1]


def test_an_edit_by_someone_else_survives_our_next_write(
    router: GatewayAPIRouter, kubectl: Kubectl, namespace: str
) -> None:
    router.set_routes(90, 10, 0)
    patch = [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 7}]
    kubectl("patch", "httproute", "chat", "-n", namespace, "--type=json", "-p", json.dumps(patch))
    router.set_routes(60, 40, 0)
    rules = _read(kubectl, namespace)["spec"]["rules"]
    assert rules[0]["backendRefs"][0]["weight"] == 7
    assert router.get_routes() == Routes(60, 40, 0)


def test_finalize_restores_the_route(
    router: GatewayAPIRouter, kubectl: Kubectl, namespace: str
) -> None:
    before = _read(kubectl, namespace)
    router.set_routes(30, 70, 20)
    router.finalize()
    after = _read(kubectl, namespace)
    assert after["spec"]["rules"][0] == before["spec"]["rules"][0]
    refs = after["spec"]["rules"][1]["backendRefs"]
    assert [(ref["name"], ref.get("weight")) for ref in refs] == [
        ("chat-stable", 100),
        ("legacy", 5),
    ]
    assert "filters" not in after["spec"]["rules"][1]


def test_missing_route_is_reported(api_client: client.ApiClient, namespace: str) -> None:
    router = GatewayAPIRouter(KubeClient(api_client), namespace, "nope", BACKENDS)
    with pytest.raises(RouteNotFoundError, match="does not exist"):
        router.get_routes()
    router.finalize()  # nothing to restore: no error
