"""The simulator's routing: route objects to backend tables, weighted choice, mirrors."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hack.simulator.routing import (
    Backend,
    EntryPoint,
    Mirror,
    ServiceRef,
    choose_backend,
    http_route_table,
    is_mirrored,
    istio_host_service,
    parse_rate,
    route_tables,
    service_table,
    virtual_service_table,
)

NS = "llm"


def http_route(rules: list[dict[str, Any]], **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "chat", "namespace": NS, "annotations": annotations},
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": rules},
    }


def virtual_service(http: list[dict[str, Any]], **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "chat", "namespace": NS, "annotations": annotations},
        "spec": {"hosts": ["chat"], "http": http},
    }


def mirror_filter(name: str, **share: Any) -> dict[str, Any]:
    return {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": name}, **share}}


# --- choices ----------------------------------------------------------------------


def test_backends_are_chosen_in_proportion_to_their_weights() -> None:
    backends = [
        Backend(ServiceRef(NS, "stable"), 80, "stable"),
        Backend(ServiceRef(NS, "canary"), 20, "canary"),
        Backend(ServiceRef(NS, "off"), 0, "off"),
    ]
    rng = random.Random(42)
    picks = Counter(choose_backend(backends, rng).label for _ in range(50_000))  # type: ignore[union-attr]
    assert picks["off"] == 0
    assert picks["canary"] / 50_000 == pytest.approx(0.2, abs=0.01)


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=6), st.integers())
def test_a_backend_with_weight_0_is_never_chosen(weights: list[int], seed: int) -> None:
    backends = [Backend(ServiceRef(NS, f"b{i}"), w, f"b{i}") for i, w in enumerate(weights)]
    rng = random.Random(seed)
    for _ in range(20):
        chosen = choose_backend(backends, rng)
        if sum(weights) == 0:
            assert chosen is None
        else:
            assert chosen is not None
            assert chosen.weight > 0


def test_mirrors_copy_their_share() -> None:
    rng = random.Random(1)
    half = Mirror(ServiceRef(NS, "canary"), 0.5, "canary")
    copied = sum(is_mirrored(half, rng) for _ in range(40_000))
    assert copied / 40_000 == pytest.approx(0.5, abs=0.01)
    assert all(is_mirrored(Mirror(None, 1.0, "x"), rng) for _ in range(100))
    assert not any(is_mirrored(Mirror(None, 0.0, "x"), rng) for _ in range(100))


@pytest.mark.parametrize(("text", "rate"), [("20", 20.0), ("0.5", 0.5), ("0", 0.0)])
def test_rates(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "-1", "nan", "inf", ""])
def test_invalid_rates(text: str) -> None:
    with pytest.raises(ValueError, match=r"simulator\.modelrelease\.dev/rate"):
        parse_rate(text)


# --- HTTPRoute --------------------------------------------------------------------


def test_http_route_weights_and_a_percent_mirror() -> None:
    route = http_route(
        [
            {
                "backendRefs": [
                    {"name": "chat-stable", "port": 8000, "weight": 80},
                    {"name": "chat-canary", "port": 8000, "weight": 20},
                ],
                "filters": [mirror_filter("chat-canary", percent=50)],
            }
        ]
    )
    table = http_route_table(route, 10.0)
    assert table.entry == EntryPoint("HTTPRoute", NS, "chat")
    assert table.rate == 10.0
    assert [(b.target, b.weight) for b in table.backends] == [
        (ServiceRef(NS, "chat-stable"), 80),
        (ServiceRef(NS, "chat-canary"), 20),
    ]
    assert table.mirrors == (Mirror(ServiceRef(NS, "chat-canary"), 0.5, "chat-canary"),)
    assert table.fixed_status is None


@pytest.mark.parametrize(
    ("share", "fraction"),
    [
        ({}, 1.0),
        ({"percent": 25}, 0.25),
        ({"fraction": {"numerator": 1, "denominator": 3}}, 1 / 3),
        ({"fraction": {"numerator": 5}}, 0.05),
        ({"percent": 0}, 0.0),
    ],
)
def test_mirror_shares(share: dict[str, Any], fraction: float) -> None:
    route = http_route([{"backendRefs": [{"name": "a"}], "filters": [mirror_filter("b", **share)]}])
    assert http_route_table(route, 1).mirrors[0].fraction == pytest.approx(fraction)


def test_backend_defaults_and_references() -> None:
    route = http_route(
        [
            {
                "backendRefs": [
                    {"name": "plain"},
                    {"name": "elsewhere", "namespace": "other", "weight": 3},
                    {"name": "bucket", "group": "example.com", "kind": "Bucket"},
                    {
                        "name": "with-mirror",
                        "filters": [mirror_filter("shadow", percent=10)],
                    },
                ]
            }
        ]
    )
    table = http_route_table(route, 1)
    assert [(b.target, b.weight) for b in table.backends] == [
        (ServiceRef(NS, "plain"), 1),
        (ServiceRef("other", "elsewhere"), 3),
        (None, 1),
        (ServiceRef(NS, "with-mirror"), 1),
    ]
    assert table.backends[3].mirrors == (Mirror(ServiceRef(NS, "shadow"), 0.1, "shadow"),)
    assert any("bucket" in note for note in table.notes)


def test_the_rule_of_highest_precedence_serves_the_request() -> None:
    def rule(name: str, *matches: dict[str, Any]) -> dict[str, Any]:
        return {"matches": list(matches), "backendRefs": [{"name": name}]}

    route = http_route(
        [
            rule("catch-all"),
            rule("prefix-v1", {"path": {"type": "PathPrefix", "value": "/v1"}}),
            rule("prefix-v1-chat", {"path": {"type": "PathPrefix", "value": "/v1/chat/"}}),
            rule("needs-header", {"headers": [{"name": "x-canary", "value": "1"}]}),
            rule("other", {"path": {"type": "Exact", "value": "/v1/models"}}),
        ]
    )
    assert http_route_table(route, 1).backends[0].label == "prefix-v1-chat"
    exact = http_route(
        [
            rule("prefix", {"path": {"type": "PathPrefix", "value": "/v1/chat/completions"}}),
            rule("exact", {"path": {"type": "Exact", "value": "/v1/chat/completions"}}),
        ]
    )
    assert http_route_table(exact, 1).backends[0].label == "exact"
    method = http_route(
        [rule("any"), rule("post", {"method": "POST"}), rule("get", {"method": "GET"})]
    )
    assert http_route_table(method, 1).backends[0].label == "post"
    ties = http_route([rule("first"), rule("second")])
    assert http_route_table(ties, 1).backends[0].label == "first"


def test_prefixes_match_whole_path_elements() -> None:
    route = http_route(
        [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v1/chat/comp"}}],
                "backendRefs": [{"name": "x"}],
            }
        ]
    )
    table = http_route_table(route, 1)
    assert table.fixed_status == 404
    assert table.notes


def test_the_request_path_can_be_chosen() -> None:
    route = http_route(
        [
            {
                "matches": [{"path": {"type": "RegularExpression", "value": "/score/.*"}}],
                "backendRefs": [{"name": "classifier"}],
            }
        ],
        **{"simulator.modelrelease.dev/path": "/score/v2"},
    )
    assert http_route_table(route, 1).backends[0].label == "classifier"


# --- VirtualService -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("chat-stable", ServiceRef(NS, "chat-stable")),
        ("chat-stable.other.svc.cluster.local", ServiceRef("other", "chat-stable")),
        ("chat-stable.other.svc", ServiceRef("other", "chat-stable")),
        ("chat-stable.other", None),  # Istio does not expand name.namespace
        ("api.example.com", None),
        ("*.local", None),
        ("", None),
    ],
)
def test_istio_hosts(host: str, service: ServiceRef | None) -> None:
    assert istio_host_service(host, NS) == service


def test_virtual_service_weights_and_mirror_percentage() -> None:
    vs = virtual_service(
        [
            {
                "name": "primary",
                "route": [
                    {"destination": {"host": f"chat-stable.{NS}.svc.cluster.local"}, "weight": 90},
                    {"destination": {"host": "chat-canary"}, "weight": 10},
                ],
                "mirror": {"host": "chat-canary"},
                "mirrorPercentage": {"value": 12.5},
            }
        ]
    )
    table = virtual_service_table(vs, 5)
    assert table.entry == EntryPoint("VirtualService", NS, "chat")
    assert [(b.target, b.weight) for b in table.backends] == [
        (ServiceRef(NS, "chat-stable"), 90),
        (ServiceRef(NS, "chat-canary"), 10),
    ]
    assert table.mirrors == (Mirror(ServiceRef(NS, "chat-canary"), 0.125, "chat-canary"),)
    assert not table.notes


def test_virtual_service_defaults() -> None:
    single = virtual_service([{"route": [{"destination": {"host": "a"}}], "mirror": {"host": "b"}}])
    table = virtual_service_table(single, 1)
    assert table.backends[0].weight == 100
    assert table.mirrors[0].fraction == 1.0  # mirror without a percentage copies everything
    several = virtual_service(
        [
            {
                "route": [{"destination": {"host": "a"}}, {"destination": {"host": "b"}}],
                "mirrors": [
                    {"destination": {"host": "c"}, "percentage": {"value": 30}},
                    {"destination": {"host": "d"}},
                ],
                "mirrorPercent": 5,
            }
        ]
    )
    table = virtual_service_table(several, 1)
    assert [b.weight for b in table.backends] == [0, 0]  # unset weights are 0 when several
    assert [(m.label, m.fraction) for m in table.mirrors] == [("c", 0.3), ("d", 1.0)]


def test_the_first_matching_istio_route_wins() -> None:
    vs = virtual_service(
        [
            {"match": [{"headers": {"x-canary": {"exact": "1"}}}], "route": [_dest("header")]},
            {"match": [{"uri": {"prefix": "/v2"}}], "route": [_dest("v2")]},
            {"match": [{"uri": {"prefix": "/V1"}, "ignoreUriCase": True}], "route": [_dest("v1")]},
            {"route": [_dest("default")]},
        ]
    )
    assert virtual_service_table(vs, 1).backends[0].label == "v1"
    fixed = virtual_service([{"directResponse": {"status": 418}}])
    assert virtual_service_table(fixed, 1).fixed_status == 418
    unmatched = virtual_service([{"match": [{"uri": {"exact": "/x"}}], "route": [_dest("x")]}])
    assert virtual_service_table(unmatched, 1).fixed_status == 404


def test_an_unresolvable_istio_host_is_reported() -> None:
    vs = virtual_service([{"route": [_dest("chat-stable.llm")]}])
    table = virtual_service_table(vs, 1)
    assert table.backends[0].target is None
    assert "chat-stable.llm" in table.notes[0]


def _dest(host: str) -> dict[str, Any]:
    return {"destination": {"host": host}}


# --- Service and all entry points ------------------------------------------------------


def test_a_service_entry_point_sends_to_itself() -> None:
    table = service_table({"metadata": {"name": "chat", "namespace": NS}}, 3)
    assert table.entry == EntryPoint("Service", NS, "chat")
    assert table.backends == (Backend(ServiceRef(NS, "chat"), 1.0, "chat"),)


def test_only_annotated_objects_are_entry_points() -> None:
    rate = {"simulator.modelrelease.dev/rate": "4"}
    routes = [http_route([{"backendRefs": [{"name": "a"}]}], **rate), http_route([])]
    bad_rate = {"simulator.modelrelease.dev/rate": "lots"}
    services: list[dict[str, Any]] = [
        {"metadata": {"name": "svc", "namespace": NS, "annotations": rate}},
        {"metadata": {"name": "bad", "namespace": NS, "annotations": bad_rate}},
        {"metadata": {"name": "plain", "namespace": NS}},
    ]
    tables, problems = route_tables(routes, [], services)
    assert [(t.entry.kind, t.entry.name, t.rate) for t in tables] == [
        ("HTTPRoute", "chat", 4.0),
        ("Service", "svc", 4.0),
    ]
    assert problems == [
        f"Service {NS}/bad: ignored: simulator.modelrelease.dev/rate: expected requests"
        " per second, got 'lots'"
    ]
