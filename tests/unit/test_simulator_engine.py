"""The simulator's traffic engine and topology, on fake clusters and a fake clock."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from hack.simulator.engine import ClusterState, TrafficEngine, describe
from hack.simulator.routing import ServiceRef, http_route_table
from hack.simulator.stats import RevisionKey
from hack.simulator.topology import endpoints, pod_from_object, service_from_object

NS = "llm"
T0 = 1_800_000_000.0
RATE_KEY = "simulator.modelrelease.dev/rate"
RATE = {RATE_KEY: "100"}


def pod(
    name: str,
    revision: str,
    ready: bool = True,
    behaviour: dict[str, Any] | None = None,
    ready_at: str = "2027-01-15T08:00:00Z",
    **extra_meta: Any,
) -> dict[str, Any]:
    annotations = {}
    if behaviour is not None:
        annotations["simulator.modelrelease.dev/behaviour"] = json.dumps(behaviour)
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": {"modelrelease.dev/release": "chat", "modelrelease.dev/revision": revision},
            "annotations": annotations,
            **extra_meta,
        },
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": ready_at,
                }
            ]
        },
    }


def service(name: str, revision: str | None, **annotations: str) -> dict[str, Any]:
    selector = {"modelrelease.dev/release": "chat"}
    if revision is not None:
        selector["modelrelease.dev/revision"] = revision
    return {
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {"selector": selector},
    }


def route(stable: int, canary: int, mirror: float | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "backendRefs": [
            {"name": "chat-stable", "weight": stable},
            {"name": "chat-canary", "weight": canary},
        ]
    }
    if mirror is not None:
        rule["filters"] = [
            {
                "type": "RequestMirror",
                "requestMirror": {"backendRef": {"name": "chat-canary"}, "percent": mirror},
            }
        ]
    metadata = {"name": "chat", "namespace": NS, "annotations": RATE}
    return {"metadata": metadata, "spec": {"rules": [rule]}}


def two_revisions(**route_args: Any) -> ClusterState:
    return ClusterState(
        http_routes=[route(**route_args)],
        services=[service("chat-stable", "a"), service("chat-canary", "b")],
        pods=[pod("chat-a-1", "a"), pod("chat-a-2", "a"), pod("chat-b-1", "b")],
    )


def run(engine: TrafficEngine, seconds: float, start: float = T0, step: float = 0.1) -> float:
    now = start
    for _ in range(round(seconds / step)):
        now += step
        engine.advance(now)
    return now


A = RevisionKey(NS, "chat", "a")
B = RevisionKey(NS, "chat", "b")


def test_the_split_and_the_mirror_share_follow_the_route() -> None:
    engine = TrafficEngine(random.Random(1))
    engine.observe(two_revisions(stable=80, canary=20, mirror=50), T0)
    run(engine, 100)
    counts = engine.counts
    user_a, user_b = counts.served_total(A), counts.served_total(B)
    total = user_a + user_b
    assert total == pytest.approx(100 * 100, rel=0.05)  # Poisson at 100 req/s
    assert user_b / total == pytest.approx(0.2, abs=0.015)
    assert counts.served_total(B, "mirror") / total == pytest.approx(0.5, abs=0.02)
    assert counts.served_total(A, "mirror") == 0


def test_requests_spread_evenly_over_ready_pods() -> None:
    engine = TrafficEngine(random.Random(2))
    engine.observe(two_revisions(stable=100, canary=0), T0)
    run(engine, 60)
    finished = {state.info.name: state.metrics.finished["stop"] for state in engine.pods.values()}
    assert finished["chat-b-1"] == 0
    assert finished["chat-a-1"] / (finished["chat-a-1"] + finished["chat-a-2"]) == pytest.approx(
        0.5, abs=0.03
    )


def test_a_backend_without_ready_pods_answers_503() -> None:
    state = two_revisions(stable=50, canary=50, mirror=100)
    state = ClusterState(
        http_routes=state.http_routes,
        services=state.services,
        pods=[pod("chat-a-1", "a"), pod("chat-b-1", "b", ready=False)],
    )
    engine = TrafficEngine(random.Random(3))
    engine.observe(state, T0)
    run(engine, 20)
    routed = _routed(engine)
    assert routed[("chat-canary", "user", 503)] > 0
    assert routed[("chat-canary", "mirror", 503)] > 0
    assert ("chat-canary", "user", 200) not in routed
    assert engine.counts.served_total(B) == 0
    assert [s.info.name for s in engine.pods.values()] == ["chat-a-1"]  # never Ready: no pod


def test_a_missing_service_or_no_weight_answers_500() -> None:
    engine = TrafficEngine(random.Random(4))
    engine.observe(
        ClusterState(http_routes=[route(1, 0)], services=[], pods=[pod("chat-a-1", "a")]), T0
    )
    run(engine, 5)
    assert set(_routed(engine)) == {("chat-stable", "user", 500)}
    engine = TrafficEngine(random.Random(4))
    engine.observe(two_revisions(stable=0, canary=0), T0)
    run(engine, 5)
    assert set(_routed(engine)) == {("", "user", 500)}


def test_a_service_entry_point_is_mesh_less() -> None:
    engine = TrafficEngine(random.Random(5))
    engine.observe(
        ClusterState(
            services=[service("chat", None, **RATE)],
            pods=[pod("chat-a-1", "a"), pod("chat-b-1", "b"), pod("chat-b-2", "b")],
        ),
        T0,
    )
    run(engine, 60)
    share_b = engine.counts.served_total(B) / (
        engine.counts.served_total(A) + engine.counts.served_total(B)
    )
    assert share_b == pytest.approx(2 / 3, abs=0.02)  # replicas decide the split


def test_a_readiness_flap_stops_traffic_and_the_service_answers_503() -> None:
    # The kwok stages flap a pod's Ready condition (simulator.modelrelease.dev/not-ready);
    # the chaos suite counts the 503s of a Service left without a Ready pod as failures.
    engine = TrafficEngine(random.Random(6))
    entry = [service("chat", None, **RATE)]
    engine.observe(ClusterState(services=entry, pods=[pod("chat-a-1", "a")]), T0)
    now = run(engine, 10)
    served = engine.counts.served_total(A)
    assert served > 0
    assert set(_routed(engine)) == {("chat", "user", 200)}

    engine.observe(ClusterState(services=entry, pods=[pod("chat-a-1", "a", ready=False)]), now)
    now = run(engine, 10, start=now)
    assert engine.counts.served_total(A) == served, "a NotReady pod gets no request"
    unserved = _routed(engine)[("chat", "user", 503)]
    assert unserved > 500  # about 10 s at 100 req/s

    engine.observe(ClusterState(services=entry, pods=[pod("chat-a-1", "a")]), now)
    run(engine, 10, start=now)
    assert engine.counts.served_total(A) > served
    assert _routed(engine)[("chat", "user", 503)] == unserved
    assert [s.info.name for s in engine.pods.values()] == ["chat-a-1"]  # kept its counters


def test_behaviour_changes_after_the_pod_became_ready() -> None:
    ready_at = "2027-01-15T08:00:00Z"
    ready_epoch = pod_from_object(pod("x", "a", ready_at=ready_at)).ready_since
    assert ready_epoch is not None
    bad = {"errorRatio": 0.0, "after": {"seconds": 30, "errorRatio": 1.0}}
    engine = TrafficEngine(random.Random(6))
    engine.observe(
        ClusterState(
            services=[service("chat", "b", **RATE)],
            pods=[pod("chat-b-1", "b", behaviour=bad, ready_at=ready_at)],
        ),
        ready_epoch,
    )
    now = run(engine, 29.9, start=ready_epoch)
    assert engine.counts.served.get((B, "user", "error"), 0) == 0
    run(engine, 10, start=now)
    assert engine.counts.served[(B, "user", "error")] > 800
    assert engine.counts.served.get((B, "user", "success"), 0) > 2000  # before the fault


def test_metrics_are_recorded_when_requests_finish() -> None:
    slow = {"ttft": 1.0, "tpot": 0.1, "outputTokens": 11, "maxNumSeqs": 4}  # e2e = 2 s
    engine = TrafficEngine(random.Random(7))
    engine.observe(
        ClusterState(services=[service("chat", "a", **RATE)], pods=[pod("p", "a", behaviour=slow)]),
        T0,
    )
    state = next(iter(engine.pods.values()))
    engine.advance(T0 + 1.0)
    assert state.metrics.e2e.count == 0  # all in flight
    assert state.metrics.running == 4
    assert state.metrics.waiting == len(state.in_flight) - 4
    assert state.metrics.kv_cache_usage == 1.0
    sent = engine.counts.served_total(A)
    engine.advance(T0 + 3.01)
    assert state.metrics.e2e.count >= sent
    assert state.metrics.e2e.total == pytest.approx(2.0 * state.metrics.e2e.count)
    assert state.metrics.inter_token.count == 10 * state.metrics.e2e.count
    assert state.metrics.http["2xx"] == state.metrics.finished["stop"] == state.metrics.e2e.count


def test_rate_changes_and_removed_entry_points() -> None:
    engine = TrafficEngine(random.Random(8))
    state = two_revisions(stable=1, canary=0)
    engine.observe(state, T0)
    now = run(engine, 10)
    before = engine.counts.served_total(A)
    assert before > 0
    quiet = dict(state.http_routes[0])
    quiet["metadata"] = {**quiet["metadata"], "annotations": {RATE_KEY: "0"}}
    engine.observe(ClusterState([quiet], [], state.services, state.pods), now)
    now = run(engine, 10, start=now)
    assert engine.counts.served_total(A) == before
    engine.observe(ClusterState([], [], state.services, state.pods), now)
    run(engine, 10, start=now)
    assert engine.counts.served_total(A) == before
    entry = engine.stats("sim", T0, now)["entrypoints"][0]
    assert entry["rate"] == 0.0  # no longer an entry point, but its counts stay
    assert sum(row["count"] for row in entry["requests"]) == before


def test_pods_that_go_away_are_dropped() -> None:
    engine = TrafficEngine(random.Random(9))
    state = two_revisions(stable=1, canary=1)
    engine.observe(state, T0)
    assert len(engine.pods) == 3
    engine.observe(ClusterState(state.http_routes, [], state.services, state.pods[:1]), T0 + 1)
    assert [s.info.name for s in engine.pods.values()] == ["chat-a-1"]


def test_a_seeded_run_repeats() -> None:
    results = []
    for _ in range(2):
        engine = TrafficEngine(random.Random(1234))
        engine.observe(two_revisions(stable=70, canary=30, mirror=20), T0)
        run(engine, 10)
        results.append(dict(engine.counts.served))
    assert results[0] == results[1]


def test_an_invalid_behaviour_is_reported_and_the_pod_is_healthy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = TrafficEngine(random.Random(10))
    broken = pod("p", "a")
    broken["metadata"]["annotations"]["simulator.modelrelease.dev/behaviour"] = '{"errorRate": 1}'
    engine.observe(ClusterState(services=[service("s", "a", **RATE)], pods=[broken]), T0)
    run(engine, 2)
    assert engine.counts.served.get((A, "user", "error"), 0) == 0
    assert "errorRate: unknown key" in caplog.text


def test_stats_document() -> None:
    engine = TrafficEngine(random.Random(11))
    engine.observe(two_revisions(stable=80, canary=20, mirror=50), T0)
    now = run(engine, 5)
    document = engine.stats("sim-1", T0, now)
    assert document["simulator"] == "sim-1"
    rows = {row["revision"]: row for row in document["revisions"]}
    assert rows["a"]["pods"] == 2
    assert rows["b"]["pods"] == 1
    assert rows["a"]["user"]["success"] == engine.counts.served_total(A)
    assert rows["b"]["mirror"]["success"] == engine.counts.served_total(B, "mirror")
    entry = document["entrypoints"][0]
    assert (entry["kind"], entry["name"], entry["rate"]) == ("HTTPRoute", "chat", 100.0)
    assert sum(r["count"] for r in entry["requests"] if r["kind"] == "user") == (
        engine.counts.served_total(A) + engine.counts.served_total(B)
    )
    json.dumps(document)  # serialisable


def test_describe_says_where_requests_go() -> None:
    table = http_route_table(route(80, 20, mirror=50), 100)
    assert describe(table) == (
        "100 req/s: chat-stable 80%, chat-canary 20%, mirror 50% to chat-canary"
    )


# --- topology ---------------------------------------------------------------------------


def test_pod_readiness() -> None:
    ready = pod_from_object(pod("p", "a"))
    assert ready.serving
    assert ready.revision == "a"
    assert ready.release == "chat"
    assert ready.ready_since == datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
    assert not pod_from_object(pod("p", "a", ready=False)).serving
    terminating = pod_from_object(pod("p", "a", deletionTimestamp="2027-01-15T08:01:00Z"))
    assert terminating.ready
    assert not terminating.serving
    no_status = pod_from_object({"metadata": {"name": "p", "namespace": NS}})
    assert not no_status.serving
    assert no_status.ready_since is None


def test_services_select_ready_pods_of_their_namespace() -> None:
    elsewhere = pod("other-ns", "a")
    elsewhere["metadata"]["namespace"] = "other"
    pods = [
        pod_from_object(p)
        for p in (pod("a-1", "a"), pod("a-2", "a", ready=False), pod("b-1", "b"), elsewhere)
    ]
    no_selector = {"metadata": {"name": "manual", "namespace": NS}, "spec": {}}
    services = [
        service_from_object(s) for s in (service("stable", "a"), service("all", None), no_selector)
    ]
    table = endpoints(services, pods)
    assert [p.name for p in table[ServiceRef(NS, "stable")]] == ["a-1"]
    assert [p.name for p in table[ServiceRef(NS, "all")]] == ["a-1", "b-1"]
    assert table[ServiceRef(NS, "manual")] == ()


def _routed(engine: TrafficEngine) -> dict[tuple[str, str, int], int]:
    return {
        (backend, kind, code): count
        for (_, backend, kind, code), count in engine.counts.routed.items()
    }
