"""The mesh-less router: the Service it owns, effective weights, the replica split.

Cluster tests (tests/cluster/test_meshless_router.py) run it against the real
API server with kwok pods.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest
from modelrelease.api.constants import LABEL_RELEASE, LABEL_REVISION
from modelrelease.api.models import NoRouter, TrafficSpec
from modelrelease.core.manifests import Owner
from modelrelease.routers.factory import new_router
from modelrelease.routers.meshless import (
    MeshlessRouter,
    check_routes,
    release_service_manifest,
    routes_from_ready,
)
from modelrelease.routers.router import MirrorUnsupportedError, RouterError, Routes

NS = "llm"
OWNER = Owner(name="chat", namespace=NS, uid="uid-1")
STABLE_REV = "aaaaaaaaaa"
CANARY_REV = "bbbbbbbbbb"


def _selector_service(name: str, revision: str) -> dict[str, Any]:
    labels = {LABEL_RELEASE: "chat", LABEL_REVISION: revision}
    return {"metadata": {"name": name, "namespace": NS}, "spec": {"selector": labels}}


def _pod(revision: str, ready: bool = True, terminating: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": {LABEL_RELEASE: "chat", LABEL_REVISION: revision}}
    if terminating:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": metadata, "status": {"conditions": [condition]}}


class MemoryStore:
    def __init__(self) -> None:
        self.services: dict[str, dict[str, Any]] = {}
        self.pods: list[dict[str, Any]] = []
        self.applied: list[dict[str, Any]] = []

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.services.get(name)
        return copy.deepcopy(found) if found is not None else None

    def apply_service(self, manifest: dict[str, Any]) -> None:
        self.applied.append(manifest)
        self.services[manifest["metadata"]["name"]] = copy.deepcopy(manifest)

    def list_pods(self, namespace: str, release: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.pods)


def _router(store: MemoryStore, owner: Owner | None = OWNER) -> MeshlessRouter:
    return MeshlessRouter(store, NS, "chat", 8000, owner)


def test_set_routes_creates_the_release_service_once() -> None:
    store = MemoryStore()
    router = _router(store)
    router.set_routes(90, 10, 0)
    router.set_routes(50, 50, 0)
    assert len(store.applied) == 1
    service = store.services["chat"]
    assert service["spec"]["selector"] == {LABEL_RELEASE: "chat"}
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": 8000, "protocol": "TCP"}
    ]
    assert service["metadata"]["ownerReferences"] == [OWNER.reference()]


def test_a_hand_edited_selector_is_put_back() -> None:
    store = MemoryStore()
    router = _router(store)
    router.set_routes(100, 0, 0)
    store.services["chat"]["spec"]["selector"][LABEL_REVISION] = STABLE_REV
    router.set_routes(100, 0, 0)
    assert store.services["chat"]["spec"]["selector"] == {LABEL_RELEASE: "chat"}


def test_someone_elses_service_is_not_taken_over() -> None:
    store = MemoryStore()
    store.services["chat"] = {"metadata": {"name": "chat"}, "spec": {"selector": {"app": "x"}}}
    with pytest.raises(RouterError, match=r"llm/chat exists and is not owned .* nobody"):
        _router(store).set_routes(100, 0, 0)
    assert store.applied == []


def test_without_an_owner_the_service_cannot_be_created() -> None:
    with pytest.raises(RouterError, match="pass owner= to new_router"):
        _router(MemoryStore(), owner=None).set_routes(100, 0, 0)


def test_mirroring_is_refused_with_what_to_do() -> None:
    store = MemoryStore()
    with pytest.raises(MirrorUnsupportedError, match="shadow needs a router that can mirror: "):
        _router(store).set_routes(100, 0, 50)
    assert store.applied == []


@pytest.mark.parametrize(("stable", "canary"), [(90, 20), (-1, 101), (50, 49)])
def test_weights_that_are_not_a_split_are_refused(stable: int, canary: int) -> None:
    with pytest.raises(RouterError, match="add up to 100"):
        check_routes(stable, canary, 0)


def test_get_routes_counts_ready_pods_of_each_revision() -> None:
    store = MemoryStore()
    store.services["chat-stable"] = _selector_service("chat-stable", STABLE_REV)
    store.services["chat-canary"] = _selector_service("chat-canary", CANARY_REV)
    store.pods = [
        _pod(STABLE_REV),
        _pod(STABLE_REV),
        _pod(STABLE_REV),
        _pod(STABLE_REV, ready=False),
        _pod(CANARY_REV),
        _pod(CANARY_REV, terminating=True),
    ]
    assert _router(store).get_routes() == Routes(75, 25, 0)


def test_get_routes_without_a_challenger_is_all_stable() -> None:
    store = MemoryStore()
    store.services["chat-stable"] = _selector_service("chat-stable", STABLE_REV)
    store.pods = [_pod(STABLE_REV)]
    assert _router(store).get_routes() == Routes(100, 0, 0)


@pytest.mark.parametrize(
    ("ready", "expected"),
    [
        ({}, Routes(100, 0)),
        ({STABLE_REV: 2}, Routes(100, 0)),
        ({CANARY_REV: 2}, Routes(0, 100)),
        ({STABLE_REV: 1, CANARY_REV: 1}, Routes(50, 50)),
        ({STABLE_REV: 199, CANARY_REV: 1}, Routes(99, 1)),  # any ready pod counts for 1%
        ({STABLE_REV: 1, CANARY_REV: 199}, Routes(1, 99)),
        ({STABLE_REV: 1, "cccccccccc": 1, CANARY_REV: 2}, Routes(50, 50)),  # retiring pods
    ],
)
def test_routes_from_ready(ready: dict[str, int], expected: Routes) -> None:
    assert routes_from_ready(ready, STABLE_REV, CANARY_REV) == expected


def test_same_revision_behind_both_services_is_all_stable() -> None:
    assert routes_from_ready({STABLE_REV: 3}, STABLE_REV, STABLE_REV) == Routes(100, 0)


def test_finalize_keeps_the_service_and_needs_no_owner() -> None:
    store = MemoryStore()
    _router(store, owner=None).finalize()
    assert store.applied == []
    store.services["chat"] = release_service_manifest(OWNER, 8000)
    _router(store).finalize()
    assert store.applied == []
    assert store.services["chat"]["spec"]["selector"] == {LABEL_RELEASE: "chat"}


def test_factory_builds_the_meshless_router_with_its_owner() -> None:
    store = MemoryStore()
    router = new_router(TrafficSpec(none=NoRouter()), cast(Any, store), NS, "chat", 8000, OWNER)
    assert isinstance(router, MeshlessRouter)
    assert router.type == "none"
    router.set_routes(100, 0, 0)
    assert store.services["chat"]["metadata"]["ownerReferences"] == [OWNER.reference()]
