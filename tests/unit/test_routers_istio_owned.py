"""The owned VirtualService (``istio.ownedVirtualService``): built whole from the spec,
written only on a difference, written back when edited, never taken over.

tests/cluster/test_istio_router.py checks it against the real API server."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelrelease.api.models import IstioRouter as IstioSpec
from modelrelease.api.models import OwnedVirtualService, TrafficSpec
from modelrelease.core.manifests import Owner
from modelrelease.routers.factory import new_router
from modelrelease.routers.gatewayapi import Backends
from modelrelease.routers.istio import Hosts
from modelrelease.routers.istio_owned import (
    NO_TRAFFIC,
    OwnedIstioRouter,
    owned_virtual_service_manifest,
)
from modelrelease.routers.router import ConvergingRouter, RouterError, Routes

OWNER = Owner(name="chat", namespace="llm", uid="uid-1")
BACKENDS = Backends(stable_service="chat-stable", canary_service="chat-canary", port=8000)
HOSTS = Hosts.of("llm", BACKENDS)
SPEC = OwnedVirtualService.model_validate(
    {
        "hosts": ["chat.example.com"],
        "gateways": ["istio-system/public", "mesh"],
        "match": [{"uri": {"prefix": "/v1"}, "headers": {"x-tier": {"exact": "gold"}}}],
        "timeout": "30s",
        "metadata": {"labels": {"team": "llm"}},
    }
)


class MemoryStore:
    def __init__(self, service: dict[str, Any] | None = None, served: str = "v1"):
        self.service = service
        self.served = served
        self.applies: list[tuple[str, dict[str, Any]]] = []

    def get_virtual_service(self, namespace: str, name: str, version: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.service) if version == self.served else None

    def apply_virtual_service(self, version: str, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applies.append((version, manifest))
        self.service = copy.deepcopy(manifest)
        return manifest

    def patch_virtual_service(
        self, namespace: str, name: str, version: str, operations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        raise AssertionError("an owned VirtualService is applied whole, never patched")

    def get_virtual_service_crd(self) -> dict[str, Any] | None:
        return {"spec": {"versions": [{"name": self.served, "served": True}]}}


def _router(store: MemoryStore) -> OwnedIstioRouter:
    return OwnedIstioRouter(store, OWNER, SPEC, BACKENDS)


def test_the_virtual_service_is_built_whole_from_the_spec() -> None:
    service = owned_virtual_service_manifest(OWNER, SPEC, HOSTS, Routes(80, 20, 50), "v1")
    assert service["apiVersion"] == "networking.istio.io/v1"
    assert service["metadata"]["ownerReferences"] == [OWNER.reference()]
    assert service["metadata"]["labels"] == {"team": "llm", "modelrelease.dev/release": "chat"}
    assert service["spec"]["hosts"] == ["chat.example.com"]
    assert service["spec"]["gateways"] == ["istio-system/public", "mesh"]
    assert service["spec"]["http"] == [
        {
            "name": "chat",
            "match": [{"uri": {"prefix": "/v1"}, "headers": {"x-tier": {"exact": "gold"}}}],
            "timeout": "30s",
            "route": [
                {"destination": {"host": "chat-stable", "port": {"number": 8000}}, "weight": 80},
                {"destination": {"host": "chat-canary", "port": {"number": 8000}}, "weight": 20},
            ],
            "mirror": {"host": "chat-canary", "port": {"number": 8000}},
            "mirrorPercentage": {"value": 50},
        }
    ]


def test_created_on_the_first_set_in_the_served_version_then_only_on_change() -> None:
    store = MemoryStore(served="v1beta1")
    router = _router(store)
    assert router.get_routes() == NO_TRAFFIC
    router.converge()
    router.set_routes(100, 0, 0)
    router.set_routes(100, 0, 0)
    assert [version for version, _ in store.applies] == ["v1beta1"]
    router.set_routes(50, 50, 0)
    assert _router(store).get_routes() == Routes(50, 50, 0)
    assert len(store.applies) == 2


def test_an_edit_is_written_back_with_the_weights_kept() -> None:
    store = MemoryStore()
    _router(store).set_routes(70, 30, 0)
    assert store.service is not None
    store.service["spec"]["http"][0]["timeout"] = "1s"
    _router(store).converge()
    assert store.service["spec"]["http"][0]["timeout"] == "30s"
    assert _router(store).get_routes() == Routes(70, 30, 0)


def test_a_virtual_service_of_the_release_name_owned_by_no_one_is_never_taken_over() -> None:
    theirs = owned_virtual_service_manifest(OWNER, SPEC, HOSTS, Routes(100, 0), "v1")
    theirs["metadata"]["ownerReferences"] = []
    store = MemoryStore(theirs)
    with pytest.raises(RouterError, match=r"istio\.virtualService instead"):
        _router(store).set_routes(90, 10, 0)
    assert store.applies == []


def test_the_factory_picks_it() -> None:
    traffic = TrafficSpec.model_validate({"istio": {"ownedVirtualService": {"hosts": ["chat"]}}})
    router = new_router(traffic, MemoryStore(), "llm", "chat", 8000, OWNER)
    assert isinstance(router, ConvergingRouter)
    assert router.type == "istio"


@pytest.mark.parametrize(
    ("istio", "message"),
    [
        ({}, "exactly one of virtualService"),
        ({"virtualService": "chat", "ownedVirtualService": {"hosts": ["c"]}}, "exactly one"),
        ({"ownedVirtualService": {"hosts": ["c"]}, "route": "primary"}, "route picks"),
        ({"ownedVirtualService": {"hosts": []}}, "at least 1"),
        ({"ownedVirtualService": {"hosts": ["c"], "timeout": "1m"}}, "pattern"),
        (
            {
                "ownedVirtualService": {
                    "hosts": ["c"],
                    "match": [{"uri": {"exact": "/", "prefix": "/"}}],
                }
            },
            "exactly one of exact, prefix or regex",
        ),
    ],
)
def test_the_api_refuses_ambiguous_or_invalid_virtual_services(
    istio: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        IstioSpec.model_validate(istio)
