"""The owned HTTPRoute (``gatewayAPI.ownedRoute``): built whole from the spec, written only
on a difference, written back when someone edits it, never taken over from someone else.

tests/cluster/test_gatewayapi_router.py checks the built route against the real API
server's defaulting (no write at rest) and the e2e GitOps test runs it under re-applies.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelrelease.api.models import OwnedHTTPRoute, TrafficSpec
from modelrelease.core.manifests import ANNOTATION_MANIFEST_HASH, Owner
from modelrelease.routers.factory import new_router
from modelrelease.routers.gatewayapi import Backends
from modelrelease.routers.gatewayapi_owned import (
    NO_TRAFFIC,
    OwnedGatewayAPIRouter,
    owned_route_manifest,
)
from modelrelease.routers.owned import needs_apply
from modelrelease.routers.router import ConvergingRouter, RouterError, Routes

OWNER = Owner(name="chat", namespace="llm", uid="uid-1")
BACKENDS = Backends(stable_service="chat-stable", canary_service="chat-canary", port=8000)
SPEC = OwnedHTTPRoute.model_validate(
    {
        "parentRefs": [{"name": "gateway", "namespace": "infra", "sectionName": "https"}],
        "hostnames": ["chat.example.com"],
        "matches": [{"path": {"value": "/v1"}, "headers": [{"name": "x-tier", "value": "gold"}]}],
        "timeouts": {"request": "30s"},
        "metadata": {"annotations": {"team": "llm"}, "labels": {"tier": "gold"}},
    }
)


class MemoryStore:
    def __init__(self, route: dict[str, Any] | None = None, crd_percent: bool = True):
        self.route = route
        self.applies: list[dict[str, Any]] = []
        self.crd_percent = crd_percent

    def get_http_route(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.route)

    def apply_http_route(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applies.append(manifest)
        self.route = copy.deepcopy(manifest)
        return manifest

    def patch_http_route(
        self, namespace: str, name: str, operations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        raise AssertionError("an owned route is applied whole, never patched")

    def get_http_route_crd(self) -> dict[str, Any] | None:
        mirror: dict[str, Any] = {"properties": {"backendRef": {"type": "object"}}}
        if self.crd_percent:
            mirror["properties"]["percent"] = {"type": "integer"}
        filters = {"items": {"properties": {"requestMirror": mirror}}}
        rules = {"items": {"properties": {"filters": filters}}}
        schema = {"properties": {"spec": {"properties": {"rules": rules}}}}
        version = {"name": "v1", "served": True, "schema": {"openAPIV3Schema": schema}}
        return {"spec": {"versions": [version]}}


def _router(store: MemoryStore) -> OwnedGatewayAPIRouter:
    return OwnedGatewayAPIRouter(store, OWNER, SPEC, BACKENDS)


def test_the_route_is_built_whole_from_the_spec_with_every_default_spelled_out() -> None:
    route = owned_route_manifest(OWNER, SPEC, BACKENDS, Routes(80, 20, 50))
    meta = route["metadata"]
    assert (meta["name"], meta["namespace"]) == ("chat", "llm")
    assert meta["ownerReferences"] == [OWNER.reference()]
    assert meta["labels"] == {"tier": "gold", "modelrelease.dev/release": "chat"}
    assert meta["annotations"]["team"] == "llm"
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "gateway",
            "namespace": "infra",
            "sectionName": "https",
        }
    ]
    assert route["spec"]["hostnames"] == ["chat.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/v1"},
            "headers": [{"type": "Exact", "name": "x-tier", "value": "gold"}],
        }
    ]
    assert rule["timeouts"] == {"request": "30s"}
    assert rule["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "chat-stable", "port": 8000, "weight": 80},
        {"group": "", "kind": "Service", "name": "chat-canary", "port": 8000, "weight": 20},
    ]
    assert rule["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"group": "", "kind": "Service", "name": "chat-canary", "port": 8000},
                "percent": 50,
            },
        }
    ]


def test_at_rest_only_the_stable_backend_and_every_request_matched() -> None:
    bare = OwnedHTTPRoute.model_validate({"parentRefs": [{"name": "gateway"}]})
    route = owned_route_manifest(OWNER, bare, BACKENDS, Routes(100, 0, 0))
    (rule,) = route["spec"]["rules"]
    assert rule == {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [
            {"group": "", "kind": "Service", "name": "chat-stable", "port": 8000, "weight": 100}
        ],
    }
    assert "hostnames" not in route["spec"]


def test_created_on_the_first_set_then_written_only_when_something_changes() -> None:
    store = MemoryStore()
    router = _router(store)
    assert router.get_routes() == NO_TRAFFIC
    router.converge()  # nothing to converge before it exists: the plan creates it
    assert store.applies == []
    router.set_routes(100, 0, 0)
    router.set_routes(100, 0, 0)
    router.converge()
    assert len(store.applies) == 1
    router.set_routes(75, 25, 10)
    assert router.get_routes() == Routes(75, 25, 10)
    assert len(store.applies) == 2


def test_an_edit_by_someone_else_is_written_back_with_the_weights_kept() -> None:
    store = MemoryStore()
    router = _router(store)
    router.set_routes(60, 40, 0)
    assert store.route is not None
    store.route["spec"]["hostnames"] = ["elsewhere.example.com"]
    store.route["metadata"]["labels"].pop("tier")
    assert needs_apply(store.route, owned_route_manifest(OWNER, SPEC, BACKENDS, Routes(60, 40)))
    router.converge()
    assert store.route["spec"]["hostnames"] == ["chat.example.com"]
    assert store.route["metadata"]["labels"]["tier"] == "gold"
    assert router.get_routes() == Routes(60, 40, 0)


def test_a_changed_spec_changes_the_hash_and_is_written() -> None:
    current = owned_route_manifest(OWNER, SPEC, BACKENDS, Routes(100, 0))
    other = SPEC.model_copy(update={"metadata": None})
    desired = owned_route_manifest(OWNER, other, BACKENDS, Routes(100, 0))
    assert current["spec"] == desired["spec"]
    hashes = (
        current["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH],
        desired["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH],
    )
    assert hashes[0] != hashes[1]
    assert needs_apply(current, desired)
    assert not needs_apply(current, copy.deepcopy(current))


def test_a_route_of_the_same_name_that_someone_else_owns_is_never_taken_over() -> None:
    theirs = owned_route_manifest(OWNER, SPEC, BACKENDS, Routes(100, 0))
    theirs["metadata"]["ownerReferences"] = []
    store = MemoryStore(theirs)
    with pytest.raises(RouterError, match="not owned by ModelRelease chat"):
        _router(store).set_routes(90, 10, 0)
    with pytest.raises(RouterError, match=r"gatewayAPI\.httpRoute"):
        _router(store).converge()
    assert store.applies == []


def test_percent_mirroring_needs_the_field_in_the_installed_crd() -> None:
    store = MemoryStore(crd_percent=False)
    with pytest.raises(RouterError, match=r"requestMirror\.percent"):
        _router(store).set_routes(100, 0, 50)
    _router(store).set_routes(100, 0, 100)  # a full mirror needs no percent field
    assert store.route is not None
    assert "percent" not in store.route["spec"]["rules"][0]["filters"][0]["requestMirror"]


def test_the_factory_picks_the_owned_router_and_needs_the_owner() -> None:
    traffic = TrafficSpec.model_validate(
        {"gatewayAPI": {"ownedRoute": {"parentRefs": [{"name": "gateway"}]}}}
    )
    router = new_router(traffic, MemoryStore(), "llm", "chat", 8000, OWNER)
    assert isinstance(router, ConvergingRouter)
    assert router.type == "gatewayAPI"
    with pytest.raises(RouterError, match="owner"):
        new_router(traffic, MemoryStore(), "llm", "chat", 8000)


@pytest.mark.parametrize(
    ("gateway_api", "message"),
    [
        ({}, "exactly one of httpRoute"),
        ({"httpRoute": "chat", "ownedRoute": {"parentRefs": [{"name": "g"}]}}, "exactly one"),
        ({"ownedRoute": {"parentRefs": [{"name": "g"}]}, "rule": 1}, "rule picks a rule"),
        ({"ownedRoute": {"parentRefs": []}}, "at least 1"),
        (
            {"ownedRoute": {"parentRefs": [{"name": "g"}], "timeouts": {"request": "1.5s"}}},
            "pattern",
        ),
    ],
)
def test_the_api_refuses_ambiguous_or_invalid_routes(
    gateway_api: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TrafficSpec.model_validate({"gatewayAPI": gateway_api})
