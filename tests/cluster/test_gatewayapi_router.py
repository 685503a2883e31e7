"""The Gateway API router against the real API server and installed HTTPRoute CRD."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from modelrelease.api.models import OwnedHTTPRoute
from modelrelease.core.manifests import Owner
from modelrelease.kube.client import KubeClient
from modelrelease.kube.errors import WriteConflictError
from modelrelease.routers.gatewayapi import Backends, GatewayAPIRouter, with_routes
from modelrelease.routers.gatewayapi_owned import (
    OwnedGatewayAPIRouter,
    owned_route_manifest,
)
from modelrelease.routers.owned import needs_apply
from modelrelease.routers.router import RouteNotFoundError, RouterError, Routes, json_patch

from tests.cluster.conftest import owning_release

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


# --- the narrow patch, and what server-side apply can own in an HTTPRoute ---------------


def test_the_crd_makes_rules_backend_refs_and_filters_atomic(kubectl: Kubectl) -> None:
    """Why the operator patches instead of applying (README, "used under Argo CD"): a
    field manager can own no part of these lists smaller than the whole list."""
    crd = json.loads(
        kubectl("get", "crd", "httproutes.gateway.networking.k8s.io", "-o", "json").stdout
    )
    (v1,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    spec = v1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    rule = spec["rules"]["items"]["properties"]
    kinds = {
        "rules": spec["rules"].get("x-kubernetes-list-type"),
        "backendRefs": rule["backendRefs"].get("x-kubernetes-list-type"),
        "filters": rule["filters"].get("x-kubernetes-list-type"),
    }
    assert set(kinds.values()) <= {"atomic", None}, kinds  # None is atomic too


def test_a_stale_patch_of_our_rule_conflicts_and_an_edit_elsewhere_does_not(
    api_client: client.ApiClient, router: GatewayAPIRouter, kubectl: Kubectl, namespace: str
) -> None:
    kube = KubeClient(api_client)
    router.set_routes(90, 10, 0)
    stale = _read(kubectl, namespace)
    rule = stale["spec"]["rules"][1]
    other_edit = [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 3}]
    kubectl(
        "patch", "httproute", "chat", "-n", namespace, "--type=json", "-p", json.dumps(other_edit)
    )
    new_rule = with_routes(rule, BACKENDS, Routes(80, 20, 0))
    kube.patch_http_route(namespace, "chat", json_patch("/spec/rules/1", rule, new_rule))
    assert router.get_routes() == Routes(80, 20, 0)
    # Someone rewrote our rule since it was read: the patch's test fails, nothing is written.
    with pytest.raises(WriteConflictError):
        kube.patch_http_route(
            namespace,
            "chat",
            json_patch("/spec/rules/1", rule, with_routes(rule, BACKENDS, Routes(50, 50, 0))),
        )
    assert router.get_routes() == Routes(80, 20, 0)
    assert _read(kubectl, namespace)["spec"]["rules"][0]["backendRefs"][0]["weight"] == 3


def _rules_owners(kubectl: Kubectl, namespace: str) -> set[str]:
    out = kubectl(
        "get", "httproute", "chat", "-n", namespace, "-o", "json", "--show-managed-fields"
    ).stdout
    return {
        entry["manager"]
        for entry in json.loads(out)["metadata"].get("managedFields") or []
        if "f:rules" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    }


def test_whoever_wrote_the_rules_last_owns_all_of_them(
    router: GatewayAPIRouter, kubectl: Kubectl, namespace: str
) -> None:
    """What a GitOps tool's server-side apply meets: after the operator's patch it owns
    `spec.rules` as a whole, so a forced apply of the Git manifest takes all of it back
    (and resets the weights), while an apply that carries the live rules (Argo CD's
    RespectIgnoreDifferences) changes nothing and just shares the ownership."""
    git = _route(namespace)
    apply = ("apply", "--server-side", "--field-manager=argocd-controller", "-f", "-")
    # Forced, as Argo CD applies: the route was created by a client-side apply, and Git's
    # parentRefs lack the defaults the API server added, a different value of that list.
    kubectl(*apply, "--force-conflicts", input=json.dumps(git))
    assert _rules_owners(kubectl, namespace) == {"argocd-controller"}
    router.set_routes(70, 30, 0)
    assert _rules_owners(kubectl, namespace) == {"modelrelease-operator"}
    refused = kubectl(*apply, input=json.dumps(git), check=False)
    assert refused.returncode != 0
    assert ".spec.rules" in refused.stderr
    live_rules = copy.deepcopy(git)
    live_rules["spec"]["rules"] = _read(kubectl, namespace)["spec"]["rules"]
    kubectl(*apply, input=json.dumps(live_rules))
    assert router.get_routes() == Routes(70, 30, 0)
    kubectl(*apply, "--force-conflicts", input=json.dumps(git))
    assert router.get_routes() == Routes(1, 0, 0)  # Git's rule: chat-stable, default weight
    assert _rules_owners(kubectl, namespace) == {"argocd-controller"}


# --- the owned route -----------------------------------------------------------------------


OWNED = {
    "parentRefs": [{"name": "gateway", "sectionName": "http"}],
    "hostnames": ["chat.example.com"],
    "matches": [
        {"path": {"value": "/v1"}, "headers": [{"name": "x-tier", "value": "gold"}]},
        {"path": {"type": "Exact", "value": "/health"}, "method": "GET"},
    ],
    "timeouts": {"request": "30s", "backendRequest": "10s"},
    "metadata": {"labels": {"team": "llm"}, "annotations": {"note": "owned"}},
}


@pytest.fixture
def owner(namespace: str, kubectl: Kubectl, modelrelease_crds: None) -> Owner:
    return owning_release(kubectl, namespace, {"gatewayAPI": {"ownedRoute": OWNED}})


def test_the_owned_route_is_stored_exactly_as_built_so_nothing_is_written_at_rest(
    api_client: client.ApiClient, owner: Owner, kubectl: Kubectl, namespace: str
) -> None:
    """Every default the API server would add is in the built route: had one been
    missed, every pass would see a difference and write again."""
    spec = OwnedHTTPRoute.model_validate(OWNED)
    router = OwnedGatewayAPIRouter(KubeClient(api_client), owner, spec, BACKENDS)
    for routes in (Routes(100, 0, 0), Routes(80, 20, 0), Routes(100, 0, 50), Routes(0, 100, 0)):
        router.set_routes(routes.stable_weight, routes.canary_weight, routes.mirror_percent)
        stored = _read(kubectl, namespace)
        assert router.get_routes() == routes
        assert not needs_apply(stored, owned_route_manifest(owner, spec, BACKENDS, routes))
    assert stored["metadata"]["ownerReferences"][0]["uid"] == owner.uid


def test_an_edit_of_the_owned_route_is_written_back(
    api_client: client.ApiClient, owner: Owner, kubectl: Kubectl, namespace: str
) -> None:
    spec = OwnedHTTPRoute.model_validate(OWNED)
    router = OwnedGatewayAPIRouter(KubeClient(api_client), owner, spec, BACKENDS)
    router.set_routes(60, 40, 0)
    edit = {"spec": {"hostnames": ["other.example.com"]}}
    kubectl("patch", "httproute", "chat", "-n", namespace, "--type=merge", "-p", json.dumps(edit))
    router.converge()
    assert _read(kubectl, namespace)["spec"]["hostnames"] == ["chat.example.com"]
    assert router.get_routes() == Routes(60, 40, 0)


def test_an_httproute_of_the_release_name_that_the_release_does_not_own_is_left_alone(
    api_client: client.ApiClient, owner: Owner, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(_route(namespace)))
    before = _read(kubectl, namespace)
    spec = OwnedHTTPRoute.model_validate(OWNED)
    router = OwnedGatewayAPIRouter(KubeClient(api_client), owner, spec, BACKENDS)
    with pytest.raises(RouterError, match="not owned by ModelRelease"):
        router.set_routes(100, 0, 0)
    with pytest.raises(RouterError, match="not owned by ModelRelease"):
        router.converge()
    assert (
        _read(kubectl, namespace)["metadata"]["resourceVersion"]
        == (before["metadata"]["resourceVersion"])
    )
