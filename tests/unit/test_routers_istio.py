"""The Istio router's route surgery, over an in-memory VirtualService store.

Cluster tests (tests/cluster/test_istio_router.py) run the same router against
the real API server and the installed Istio CRDs.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest
from kubernetes import client
from modelrelease.api.models import IstioRouter as IstioSpec
from modelrelease.api.models import TrafficSpec
from modelrelease.kube.client import KubeClient
from modelrelease.kube.errors import WriteConflictError
from modelrelease.routers.factory import new_router
from modelrelease.routers.gatewayapi import Backends
from modelrelease.routers.istio import (
    Hosts,
    IstioRouter,
    VirtualServiceStore,
    choose_route,
    served_version,
)
from modelrelease.routers.router import (
    MirrorUnsupportedError,
    RouteNotFoundError,
    RouterError,
    Routes,
    RuleNotFoundError,
)

from tests.unit import json_patch

NS = "llm"
BACKENDS = Backends(stable_service="chat-stable", canary_service="chat-canary", port=8000)
HOSTS = Hosts.of(NS, BACKENDS)
FQDN_STABLE = "chat-stable.llm.svc.cluster.local"
FQDN_CANARY = "chat-canary.llm.svc.cluster.local"


def _crd(*served: str) -> dict[str, Any]:
    versions = [{"name": name, "served": name in served} for name in ("v1alpha3", "v1beta1", "v1")]
    return {"spec": {"versions": versions}}


class MemoryStore:
    def __init__(self, service: dict[str, Any] | None, served: tuple[str, ...] = ("v1",)):
        self.service = service
        self.crd: dict[str, Any] | None = _crd(*served)
        self.served = served
        self.writes: list[str] = []  # the version of each write
        self.conflicts_to_raise = 0

    def get_virtual_service(self, namespace: str, name: str, version: str) -> dict[str, Any] | None:
        if version not in self.served:
            return None  # the API server answers 404 for a version it does not serve
        return copy.deepcopy(self.service)

    def patch_virtual_service(
        self, namespace: str, name: str, version: str, operations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            raise WriteConflictError("changed")
        assert self.service is not None
        self.service = json_patch.apply(self.service, operations)
        self.writes.append(version)
        return copy.deepcopy(self.service)

    def get_virtual_service_crd(self) -> dict[str, Any] | None:
        return self.crd

    def http(self, index: int) -> dict[str, Any]:
        assert self.service is not None
        route: dict[str, Any] = self.service["spec"]["http"][index]
        return route


def _service(*http: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "chat", "namespace": NS, "resourceVersion": "1"},
        "spec": {"hosts": ["chat.example.com"], "gateways": ["gw"], "http": list(http)},
    }


ADMIN = {
    "name": "admin",
    "match": [{"uri": {"prefix": "/admin"}}],
    "route": [{"destination": {"host": "admin", "port": {"number": 80}}}],
    "headers": {"request": {"set": {"x-admin": "1"}}},
}


def _primary(host: str = "chat-stable", **extra: Any) -> dict[str, Any]:
    route: dict[str, Any] = {
        "name": "primary",
        "match": [{"uri": {"prefix": "/v1"}}],
        "retries": {"attempts": 3, "perTryTimeout": "2s"},
        "timeout": "30s",
        "route": [{"destination": {"host": host, "port": {"number": 8000}}}],
    }
    route.update(extra)
    return route


def _router(store: MemoryStore, route_name: str | None = None) -> IstioRouter:
    return IstioRouter(store, NS, "chat", BACKENDS, route_name)


def test_memory_store_satisfies_the_protocol() -> None:
    assert isinstance(MemoryStore(None), VirtualServiceStore)


def test_the_operators_api_layer_reaches_virtual_services() -> None:
    assert isinstance(KubeClient(client.ApiClient()), VirtualServiceStore)


def test_a_canary_sequence_writes_weights_and_mirror() -> None:
    store = MemoryStore(_service(ADMIN, _primary()))
    router = _router(store)

    router.set_routes(100, 0, 50)
    assert store.http(1)["route"] == [
        {"destination": {"host": "chat-stable", "port": {"number": 8000}}, "weight": 100}
    ]
    assert store.http(1)["mirror"] == {"host": "chat-canary", "port": {"number": 8000}}
    assert store.http(1)["mirrorPercentage"] == {"value": 50}
    assert router.get_routes() == Routes(100, 0, 50)

    router.set_routes(90, 10, 0)
    assert store.http(1)["route"] == [
        {"destination": {"host": "chat-stable", "port": {"number": 8000}}, "weight": 90},
        {"destination": {"host": "chat-canary", "port": {"number": 8000}}, "weight": 10},
    ]
    assert "mirror" not in store.http(1)
    assert "mirrorPercentage" not in store.http(1)
    assert router.get_routes() == Routes(90, 10, 0)

    for stable, canary in ((50, 50), (0, 100)):
        router.set_routes(stable, canary, 0)
        assert router.get_routes() == Routes(stable, canary, 0)
    assert store.http(0) == ADMIN
    primary = store.http(1)
    for key in ("name", "match", "retries", "timeout"):
        assert primary[key] == _primary()[key]


def test_fully_qualified_stable_host_gives_a_fully_qualified_canary() -> None:
    store = MemoryStore(_service(_primary(FQDN_STABLE)))
    router = _router(store)
    router.set_routes(80, 20, 30)
    hosts = [item["destination"]["host"] for item in store.http(0)["route"]]
    assert hosts == [FQDN_STABLE, FQDN_CANARY]
    assert store.http(0)["mirror"]["host"] == FQDN_CANARY
    assert router.get_routes() == Routes(80, 20, 30)


def test_namespace_dotted_host_is_not_taken_for_ours() -> None:
    # Istio does not expand "name.namespace": it names no Service of ours.
    assert not HOSTS.is_stable("chat-stable.llm")
    assert HOSTS.is_stable("chat-stable")
    assert HOSTS.is_stable(FQDN_STABLE)
    assert not HOSTS.is_stable("chat-stable.other.svc.cluster.local")


def test_other_destinations_and_fields_of_the_route_are_kept() -> None:
    legacy = {"destination": {"host": "legacy", "subset": "v0"}, "weight": 0}
    stable = {
        "destination": {"host": "chat-stable", "subset": "gpu"},
        "weight": 100,
        "headers": {"response": {"add": {"x-served-by": "stable"}}},
    }
    store = MemoryStore(_service(_primary(route=[stable, legacy])))
    _router(store).set_routes(70, 30, 0)
    route = store.http(0)["route"]
    assert route[0] == {**stable, "weight": 70}
    assert route[1] == legacy
    # A subset belongs to the stable host's DestinationRule: never copied to the canary.
    assert route[2] == {"destination": {"host": "chat-canary"}, "weight": 30}


def test_missing_stable_destination_is_added() -> None:
    store = MemoryStore(_service(_primary(route=[{"destination": {"host": "old"}}])))
    _router(store, "primary").set_routes(90, 10, 0)
    assert store.http(0)["route"] == [
        {"destination": {"host": "chat-stable", "port": {"number": 8000}}, "weight": 90},
        {"destination": {"host": "old"}},
        {"destination": {"host": "chat-canary", "port": {"number": 8000}}, "weight": 10},
    ]


def test_set_routes_is_idempotent() -> None:
    store = MemoryStore(_service(_primary()))
    router = _router(store)
    router.set_routes(90, 10, 20)
    router.set_routes(90, 10, 20)
    assert len(store.writes) == 1


def test_lone_destination_without_weight_takes_everything() -> None:
    store = MemoryStore(_service(_primary()))
    assert _router(store).get_routes() == Routes(100, 0, 0)


def test_mirror_without_percentage_is_full() -> None:
    store = MemoryStore(_service(_primary(mirror={"host": "chat-canary"})))
    assert _router(store).get_routes() == Routes(100, 0, 100)


def test_deprecated_integer_mirror_percent_is_read_and_replaced() -> None:
    store = MemoryStore(_service(_primary(mirror={"host": "chat-canary"}, mirrorPercent=20)))
    router = _router(store)
    assert router.get_routes() == Routes(100, 0, 20)
    router.set_routes(100, 0, 40)
    assert "mirrorPercent" not in store.http(0)
    assert store.http(0)["mirrorPercentage"] == {"value": 40}


def test_mirrors_list_is_used_when_the_route_has_one() -> None:
    theirs = {"destination": {"host": "audit"}, "percentage": {"value": 5}}
    store = MemoryStore(_service(_primary(mirrors=[theirs])))
    router = _router(store)
    router.set_routes(100, 0, 25)
    assert "mirror" not in store.http(0)
    assert store.http(0)["mirrors"] == [
        theirs,
        {
            "destination": {"host": "chat-canary", "port": {"number": 8000}},
            "percentage": {"value": 25},
        },
    ]
    assert router.get_routes() == Routes(100, 0, 25)
    router.set_routes(100, 0, 0)
    assert store.http(0)["mirrors"] == [theirs]


def test_someone_elses_single_mirror_is_not_overwritten() -> None:
    store = MemoryStore(_service(_primary(mirror={"host": "audit"})))
    with pytest.raises(MirrorUnsupportedError, match=r"already mirrors to 'audit'.*`mirrors`"):
        _router(store).set_routes(100, 0, 50)
    assert store.writes == []
    _router(store).set_routes(90, 10, 0)  # weights alone leave their mirror be
    assert store.http(0)["mirror"] == {"host": "audit"}


def test_finalize_restores_the_route() -> None:
    original = _service(ADMIN, _primary())
    store = MemoryStore(copy.deepcopy(original))
    router = _router(store)
    router.set_routes(40, 60, 0)
    router.set_routes(40, 60, 30)
    router.finalize()
    assert store.http(0) == ADMIN
    expected = _primary()
    expected["route"][0]["weight"] = 100
    assert store.http(1) == expected
    assert router.get_routes() == Routes(100, 0, 0)


def test_finalize_without_a_virtual_service_or_route_does_nothing() -> None:
    _router(MemoryStore(None)).finalize()
    store = MemoryStore(_service(_primary()))
    _router(store, "gone").finalize()
    assert store.writes == []


def test_older_served_version_is_found_and_written() -> None:
    store = MemoryStore(_service(_primary()), served=("v1alpha3", "v1beta1"))
    router = _router(store)
    router.set_routes(90, 10, 0)
    assert store.writes == ["v1beta1"]
    assert router.get_routes() == Routes(90, 10, 0)


def test_missing_virtual_service_is_a_clear_error() -> None:
    with pytest.raises(RouteNotFoundError, match=r"llm/chat named in .* does not exist"):
        _router(MemoryStore(None)).get_routes()


def test_missing_crd_is_a_clear_error() -> None:
    store = MemoryStore(None)
    store.crd = None
    missing = r"virtualservices\.networking\.istio\.io, which is not installed"
    with pytest.raises(RouteNotFoundError, match=missing):
        _router(store).get_routes()


def test_unknown_served_versions_are_a_clear_error() -> None:
    store = MemoryStore(None, served=("v2",))
    with pytest.raises(RouterError, match="serves none of the versions"):
        _router(store).get_routes()


def test_conflicting_write_is_retried_on_a_fresh_read() -> None:
    store = MemoryStore(_service(_primary()))
    store.conflicts_to_raise = 2
    _router(store).set_routes(50, 50, 0)
    assert _router(store).get_routes() == Routes(50, 50, 0)


def test_persistent_conflict_surfaces() -> None:
    store = MemoryStore(_service(_primary()))
    store.conflicts_to_raise = 100
    with pytest.raises(WriteConflictError):
        _router(store).set_routes(50, 50, 0)


def test_served_version_prefers_the_newest() -> None:
    assert served_version(_crd("v1alpha3", "v1beta1", "v1")) == "v1"
    assert served_version(_crd("v1alpha3", "v1beta1")) == "v1beta1"
    assert served_version(_crd()) is None


def _dest(host: str) -> dict[str, Any]:
    return {"destination": {"host": host}}


@pytest.mark.parametrize(
    ("http", "route_name", "expected"),
    [
        ([ADMIN, _primary()], None, 1),
        ([ADMIN, _primary()], "admin", 0),
        ([{"route": [_dest("x")]}, {"route": [_dest("chat-canary")]}], None, 1),
        ([{"route": [_dest("chat-canary")]}, {"route": [_dest(FQDN_STABLE)]}], None, 1),
        ([{"redirect": {"uri": "/"}}, {"route": [_dest("x")]}], None, 1),
        ([{"route": [_dest("x")]}, ADMIN], None, 0),
    ],
)
def test_choose_route(http: list[dict[str, Any]], route_name: str | None, expected: int) -> None:
    assert choose_route(_service(*http), HOSTS, route_name) == expected


def test_unknown_route_name_lists_the_names() -> None:
    with pytest.raises(RuleNotFoundError, match=r"no HTTP route named 'nope' .*admin, primary"):
        choose_route(_service(ADMIN, _primary()), HOSTS, "nope")


def test_named_route_that_does_not_forward_is_refused() -> None:
    delegating = {"name": "team", "delegate": {"name": "team-routes"}}
    with pytest.raises(RuleNotFoundError, match="uses delegate"):
        choose_route(_service(delegating), HOSTS, "team")


def test_virtual_service_without_http_routes_is_refused() -> None:
    with pytest.raises(RuleNotFoundError, match=r"spec\.http is empty"):
        choose_route(_service(), HOSTS)
    with pytest.raises(RuleNotFoundError, match="none of its 1 HTTP routes forwards"):
        choose_route(_service({"directResponse": {"status": 503}}), HOSTS)


def test_factory_builds_the_istio_router_for_the_named_route() -> None:
    store = MemoryStore(_service(ADMIN, _primary()))
    traffic = TrafficSpec(istio=IstioSpec(virtual_service="chat", route="admin"))
    router = new_router(traffic, cast(Any, store), NS, "chat", 8000)
    assert isinstance(router, IstioRouter)
    assert router.type == "istio"
    router.set_routes(90, 10, 0)
    assert store.http(0)["route"][0]["weight"] == 90
