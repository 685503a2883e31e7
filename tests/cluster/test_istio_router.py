"""The Istio router against the real API server and the installed Istio CRDs."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from modelrelease.api.models import OwnedVirtualService
from modelrelease.core.manifests import Owner
from modelrelease.kube.client import KubeClient
from modelrelease.routers.gatewayapi import Backends
from modelrelease.routers.istio import (
    Hosts,
    IstioRouter,
    VirtualServiceStore,
)
from modelrelease.routers.istio_owned import OwnedIstioRouter, owned_virtual_service_manifest
from modelrelease.routers.owned import needs_apply
from modelrelease.routers.router import RouteNotFoundError, Routes

from tests.cluster.conftest import owning_release

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
Json = dict[str, Any]
BACKENDS = Backends(stable_service="chat-stable", canary_service="chat-canary", port=8000)

ADMIN_ROUTE: Json = {
    "name": "admin",
    "match": [{"uri": {"prefix": "/admin"}}],
    "headers": {"request": {"set": {"x-admin": "1"}}},
    "route": [{"destination": {"host": "admin", "port": {"number": 80}}}],
}
LEGACY = {"destination": {"host": "legacy", "port": {"number": 9000}}, "weight": 0}


def _virtual_service(namespace: str) -> Json:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "chat", "namespace": namespace, "labels": {"team": "llm"}},
        "spec": {
            "hosts": ["chat.example.com"],
            "gateways": ["mesh"],
            "http": [
                ADMIN_ROUTE,
                {
                    "name": "primary",
                    "match": [{"uri": {"prefix": "/v1"}}],
                    "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx"},
                    "timeout": "30s",
                    "route": [
                        {
                            "destination": {
                                "host": f"chat-stable.{namespace}.svc.cluster.local",
                                "port": {"number": 8000},
                            },
                            "weight": 100,
                        },
                        LEGACY,
                    ],
                },
            ],
        },
    }


def _store(api_client: client.ApiClient) -> VirtualServiceStore:
    return KubeClient(api_client)


def _read(kubectl: Kubectl, namespace: str) -> Json:
    out = kubectl(
        "get", "virtualservice.networking.istio.io", "chat", "-n", namespace, "-o", "json"
    )
    found: Json = json.loads(out.stdout)
    return found


def _weights(route: Json) -> dict[str, int | None]:
    return {item["destination"]["host"]: item.get("weight") for item in route["route"]}


@pytest.fixture
def router(api_client: client.ApiClient, namespace: str, kubectl: Kubectl) -> IstioRouter:
    kubectl("apply", "-f", "-", input=json.dumps(_virtual_service(namespace)))
    return IstioRouter(_store(api_client), namespace, "chat", BACKENDS)


def test_canary_sequence_is_stored_step_by_step(
    router: IstioRouter, kubectl: Kubectl, namespace: str
) -> None:
    before = _read(kubectl, namespace)
    stable = f"chat-stable.{namespace}.svc.cluster.local"
    canary = f"chat-canary.{namespace}.svc.cluster.local"
    steps = [(100, 0, 50), (90, 10, 0), (50, 50, 0), (0, 100, 0)]
    for stable_weight, canary_weight, mirror in steps:
        router.set_routes(stable_weight, canary_weight, mirror)
        assert router.get_routes() == Routes(stable_weight, canary_weight, mirror)
        stored = _read(kubectl, namespace)
        primary = stored["spec"]["http"][1]
        expected = {stable: stable_weight, "legacy": 0}
        if canary_weight:
            expected[canary] = canary_weight
        assert _weights(primary) == expected
        if mirror:
            assert primary["mirror"] == {"host": canary, "port": {"number": 8000}}
            assert primary["mirrorPercentage"] == {"value": mirror}
        else:
            assert "mirror" not in primary
            assert "mirrorPercentage" not in primary
        # The unrelated route, the other destination and the route's own fields stay.
        assert stored["spec"]["http"][0] == before["spec"]["http"][0]
        assert LEGACY in primary["route"]
        for key in ("name", "match", "retries", "timeout"):
            assert primary[key] == before["spec"]["http"][1][key]
        assert stored["spec"]["hosts"] == before["spec"]["hosts"]
        assert stored["spec"]["gateways"] == before["spec"]["gateways"]
        assert stored["metadata"]["labels"] == {"team": "llm"}

    router.finalize()
    after = _read(kubectl, namespace)
    assert after["spec"] == before["spec"]  # stable was at weight 100 before: back there
    assert router.get_routes() == Routes(100, 0, 0)


def test_an_edit_by_someone_else_survives_our_next_write(
    router: IstioRouter, kubectl: Kubectl, namespace: str
) -> None:
    router.set_routes(90, 10, 0)
    patch = [{"op": "replace", "path": "/spec/http/0/route/0/destination/port/number", "value": 81}]
    kubectl(
        "patch",
        "virtualservice.networking.istio.io",
        "chat",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps(patch),
    )
    router.set_routes(60, 40, 20)
    stored = _read(kubectl, namespace)
    assert stored["spec"]["http"][0]["route"][0]["destination"]["port"] == {"number": 81}
    assert router.get_routes() == Routes(60, 40, 20)


def test_a_write_that_changes_nothing_is_skipped(
    router: IstioRouter, kubectl: Kubectl, namespace: str
) -> None:
    router.set_routes(75, 25, 0)
    version = _read(kubectl, namespace)["metadata"]["resourceVersion"]
    router.set_routes(75, 25, 0)
    assert _read(kubectl, namespace)["metadata"]["resourceVersion"] == version


def test_a_named_route_with_short_hosts(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    service = copy.deepcopy(_virtual_service(namespace))
    service["spec"]["http"].append(
        {"name": "beta", "route": [{"destination": {"host": "chat-stable"}}]}
    )
    kubectl("apply", "-f", "-", input=json.dumps(service))
    router = IstioRouter(_store(api_client), namespace, "chat", BACKENDS, route_name="beta")
    router.set_routes(80, 20, 100)
    beta = _read(kubectl, namespace)["spec"]["http"][2]
    assert _weights(beta) == {"chat-stable": 80, "chat-canary": 20}
    assert beta["mirror"] == {"host": "chat-canary"}
    assert router.get_routes() == Routes(80, 20, 100)


def test_missing_virtual_service_is_reported(api_client: client.ApiClient, namespace: str) -> None:
    router = IstioRouter(_store(api_client), namespace, "nope", BACKENDS)
    with pytest.raises(RouteNotFoundError, match="does not exist"):
        router.get_routes()
    router.finalize()  # nothing to restore: no error


# --- the owned VirtualService ------------------------------------------------------------

OWNED_SERVICE: Json = {
    "hosts": ["chat.example.com"],
    "gateways": ["mesh"],
    "match": [{"uri": {"prefix": "/v1"}, "headers": {"x-tier": {"exact": "gold"}}}],
    "timeout": "30s",
    "metadata": {"labels": {"team": "llm"}},
}


@pytest.fixture
def owner(namespace: str, kubectl: Kubectl, modelrelease_crds: None) -> Owner:
    return owning_release(kubectl, namespace, {"istio": {"ownedVirtualService": OWNED_SERVICE}})


def test_the_owned_virtual_service_is_stored_as_built_and_edits_are_written_back(
    api_client: client.ApiClient, owner: Owner, kubectl: Kubectl, namespace: str
) -> None:
    spec = OwnedVirtualService.model_validate(OWNED_SERVICE)
    router = OwnedIstioRouter(KubeClient(api_client), owner, spec, BACKENDS)
    hosts = Hosts.of(namespace, BACKENDS)
    for routes in (Routes(100, 0, 0), Routes(80, 20, 0), Routes(100, 0, 50), Routes(0, 100, 0)):
        router.set_routes(routes.stable_weight, routes.canary_weight, routes.mirror_percent)
        stored = json.loads(
            kubectl("get", "virtualservice", "chat", "-n", namespace, "-o", "json").stdout
        )
        assert router.get_routes() == routes
        built = owned_virtual_service_manifest(owner, spec, hosts, routes, "v1")
        assert not needs_apply(stored, built)
    edit = {"spec": {"hosts": ["other.example.com"]}}
    kubectl(
        "patch", "virtualservice", "chat", "-n", namespace, "--type=merge", "-p", json.dumps(edit)
    )
    router.converge()
    stored = json.loads(
        kubectl("get", "virtualservice", "chat", "-n", namespace, "-o", "json").stdout
    )
    assert stored["spec"]["hosts"] == ["chat.example.com"]
    assert router.get_routes() == Routes(0, 100, 0)
