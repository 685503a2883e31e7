"""The Gateway API router's rule surgery, over an in-memory route store.

Cluster tests (tests/cluster/test_gatewayapi_router.py) run the same router
against the real API server and the installed CRD.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelrelease.kube.errors import WriteConflictError
from modelrelease.routers.gatewayapi import (
    Backends,
    GatewayAPIRouter,
    choose_rule,
    mirror_percent_in_crd,
)
from modelrelease.routers.router import (
    MirrorUnsupportedError,
    RouteNotFoundError,
    Routes,
    RuleNotFoundError,
)

from tests.unit import json_patch

BACKENDS = Backends(stable_service="chat-stable", canary_service="chat-canary", port=8000)
NS = "llm"


def _crd(with_percent: bool) -> dict[str, Any]:
    mirror: dict[str, Any] = {"properties": {"backendRef": {"type": "object"}}}
    if with_percent:
        mirror["properties"]["percent"] = {"type": "integer"}
    filters = {"items": {"properties": {"requestMirror": mirror}}}
    rules = {"items": {"properties": {"filters": filters}}}
    schema = {"properties": {"spec": {"properties": {"rules": rules}}}}
    return {
        "spec": {
            "versions": [{"name": "v1", "served": True, "schema": {"openAPIV3Schema": schema}}]
        }
    }


class MemoryStore:
    def __init__(self, route: dict[str, Any] | None, crd_percent: bool = True):
        self.route = route
        self.crd = _crd(crd_percent)
        self.writes = 0
        self.conflicts_to_raise = 0
        self.patches: list[list[dict[str, Any]]] = []

    def get_http_route(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.route)

    def patch_http_route(
        self, namespace: str, name: str, operations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            raise WriteConflictError("changed")
        assert self.route is not None
        self.patches.append(operations)
        self.route = json_patch.apply(self.route, operations)
        self.writes += 1
        return copy.deepcopy(self.route)

    def get_http_route_crd(self) -> dict[str, Any] | None:
        return self.crd


def _route(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "chat", "namespace": NS, "resourceVersion": "1"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": list(rules)},
    }


OTHER_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
    "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": []}}],
    "backendRefs": [{"name": "admin", "port": 80}],
}


def _ours(**extra: Any) -> dict[str, Any]:
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
        "backendRefs": [{"name": "chat-stable", "port": 8000}, {"name": "legacy", "port": 80}],
    }
    rule.update(extra)
    return rule


def _router(store: MemoryStore, rule_name: str | None = None) -> GatewayAPIRouter:
    return GatewayAPIRouter(store, NS, "chat", BACKENDS, rule_name)


def test_set_routes_changes_only_the_operator_backends() -> None:
    store = MemoryStore(_route(OTHER_RULE, _ours()))
    _router(store).set_routes(75, 25, 0)
    assert store.route is not None
    rules = store.route["spec"]["rules"]
    assert rules[0] == OTHER_RULE
    assert rules[1]["matches"] == _ours()["matches"]
    assert rules[1]["backendRefs"] == [
        {"name": "chat-stable", "port": 8000, "weight": 75},
        {"name": "legacy", "port": 80},
        {"name": "chat-canary", "port": 8000, "weight": 25},
    ]
    assert store.route["spec"]["parentRefs"] == [{"name": "gw"}]
    assert _router(store).get_routes() == Routes(75, 25, 0)


def test_a_write_sends_only_the_managed_rules_backends_and_filters_after_a_test() -> None:
    store = MemoryStore(_route(OTHER_RULE, _ours()))
    _router(store).set_routes(75, 25, 40)
    (patch,) = store.patches
    assert patch[0] == {"op": "test", "path": "/spec/rules/1", "value": _ours()}
    assert [(op["op"], op["path"]) for op in patch[1:]] == [
        ("replace", "/spec/rules/1/backendRefs"),
        ("add", "/spec/rules/1/filters"),
    ]
    _router(store).set_routes(100, 0, 0)
    assert [(op["op"], op["path"]) for op in store.patches[-1][1:]] == [
        ("replace", "/spec/rules/1/backendRefs"),
        ("remove", "/spec/rules/1/filters"),
    ]


def test_set_routes_is_idempotent() -> None:
    store = MemoryStore(_route(_ours()))
    router = _router(store)
    router.set_routes(90, 10, 0)
    router.set_routes(90, 10, 0)
    assert store.writes == 1


def test_mirror_filter_with_percent_is_added_and_removed() -> None:
    other_filter = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": []}}
    store = MemoryStore(_route(_ours(filters=[other_filter])))
    router = _router(store)
    router.set_routes(100, 0, 50)
    assert store.route is not None
    filters = store.route["spec"]["rules"][0]["filters"]
    assert filters == [
        other_filter,
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "chat-canary", "port": 8000}, "percent": 50},
        },
    ]
    assert router.get_routes() == Routes(100, 0, 50)
    router.set_routes(100, 0, 0)
    assert store.route["spec"]["rules"][0]["filters"] == [other_filter]


def test_full_mirror_needs_no_percent_field() -> None:
    store = MemoryStore(_route(_ours()), crd_percent=False)
    router = _router(store)
    router.set_routes(100, 0, 100)
    assert router.get_routes() == Routes(100, 0, 100)
    assert store.route is not None
    mirror = store.route["spec"]["rules"][0]["filters"][0]["requestMirror"]
    assert "percent" not in mirror


def test_partial_mirror_without_crd_support_is_refused_clearly() -> None:
    store = MemoryStore(_route(_ours()), crd_percent=False)
    with pytest.raises(MirrorUnsupportedError, match=r"requestMirror\.percent"):
        _router(store).set_routes(100, 0, 50)
    assert store.writes == 0


def test_finalize_restores_the_rule() -> None:
    original = _route(OTHER_RULE, _ours())
    store = MemoryStore(copy.deepcopy(original))
    router = _router(store)
    router.set_routes(40, 60, 0)
    router.set_routes(100, 0, 30)
    router.finalize()
    assert store.route is not None
    rules = store.route["spec"]["rules"]
    assert rules[0] == OTHER_RULE
    assert rules[1]["backendRefs"] == [
        {"name": "chat-stable", "port": 8000, "weight": 100},
        {"name": "legacy", "port": 80},
    ]
    assert "filters" not in rules[1]


def test_finalize_of_a_missing_route_does_nothing() -> None:
    _router(MemoryStore(None)).finalize()


def test_missing_route_is_a_clear_error() -> None:
    with pytest.raises(RouteNotFoundError, match=r"llm/chat .* does not exist"):
        _router(MemoryStore(None)).get_routes()


def test_conflicting_write_is_retried_on_a_fresh_read() -> None:
    store = MemoryStore(_route(_ours()))
    store.conflicts_to_raise = 2
    _router(store).set_routes(50, 50, 0)
    assert _router(store).get_routes() == Routes(50, 50, 0)


def test_persistent_conflict_surfaces() -> None:
    store = MemoryStore(_route(_ours()))
    store.conflicts_to_raise = 100
    with pytest.raises(WriteConflictError):
        _router(store).set_routes(50, 50, 0)


@pytest.mark.parametrize(
    ("rules", "rule_name", "rule_index", "expected"),
    [
        ([OTHER_RULE, _ours()], None, None, 1),
        ([{"backendRefs": [{"name": "x", "port": 1}]}, OTHER_RULE], None, None, 0),
        ([OTHER_RULE, {**_ours(), "name": "main"}], "main", None, 1),
        ([OTHER_RULE, _ours()], None, 0, 0),
        (
            [OTHER_RULE, {"backendRefs": [{"name": "chat-canary", "port": 8000, "weight": 0}]}],
            None,
            None,
            1,
        ),
        ([OTHER_RULE, _ours(), _ours()], None, None, 1),
    ],
)
def test_choose_rule(
    rules: list[dict[str, Any]], rule_name: str | None, rule_index: int | None, expected: int
) -> None:
    assert choose_rule(_route(*rules), BACKENDS, rule_name, rule_index) == expected


@pytest.mark.parametrize(
    ("rules", "rule_name", "rule_index", "message"),
    [
        ([], None, None, "has no rules"),
        ([_ours()], "missing", None, "no rule named 'missing'"),
        ([_ours()], None, 3, "has 1 rules"),
    ],
)
def test_choose_rule_refuses_what_does_not_exist(
    rules: list[dict[str, Any]], rule_name: str | None, rule_index: int | None, message: str
) -> None:
    with pytest.raises(RuleNotFoundError, match=message):
        choose_rule(_route(*rules), BACKENDS, rule_name, rule_index)


def test_backend_refs_in_another_group_are_not_ours() -> None:
    rule = {"backendRefs": [{"group": "example.com", "kind": "Thing", "name": "chat-stable"}]}
    store = MemoryStore(_route(rule))
    _router(store).set_routes(100, 0, 0)
    assert store.route is not None
    refs = store.route["spec"]["rules"][0]["backendRefs"]
    assert refs[0] == {"group": "example.com", "kind": "Thing", "name": "chat-stable"}
    assert len(refs) == 3


def test_mirror_percent_detection() -> None:
    assert mirror_percent_in_crd(_crd(True))
    assert not mirror_percent_in_crd(_crd(False))
    assert not mirror_percent_in_crd({"spec": {"versions": []}})


def test_server_defaulted_fields_do_not_cause_rewrites() -> None:
    store = MemoryStore(_route(_ours()))
    router = _router(store)
    router.set_routes(100, 0, 50)
    assert store.route is not None
    # What the API server does on admission: default group and kind.
    rule = store.route["spec"]["rules"][0]
    for ref in [*rule["backendRefs"], rule["filters"][0]["requestMirror"]["backendRef"]]:
        ref.update({"group": "", "kind": "Service"})
    writes = store.writes
    router.set_routes(100, 0, 50)
    assert store.writes == writes
    router.set_routes(100, 0, 100)
    assert store.route["spec"]["rules"][0]["filters"][0]["requestMirror"] == {
        "backendRef": {"name": "chat-canary", "port": 8000, "group": "", "kind": "Service"}
    }
