"""The watch-fed views: applying events, incremental GPU accounting, sync state, the reader."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelrelease.api.constants import API_VERSION as MODEL_RELEASE
from modelrelease.api.constants import LABEL_RELEASE
from modelrelease.api.models import MisdirectedAutoscaler
from modelrelease.core.gpu import node_gpus
from modelrelease.kube.client import Collection
from modelrelease.kube.errors import ForbiddenError, KubeError, WriteConflictError
from modelrelease.kube.views import (
    AUTOSCALERS,
    DEPLOYMENTS,
    GPU,
    NODES,
    PODS,
    Change,
    GPUAccount,
    Store,
    ViewReader,
    Views,
    by_release,
    by_target,
    listed,
)

Json = dict[str, Any]


def obj(name: str, version: str = "1", namespace: str = "ns", release: str | None = "chat") -> Json:
    labels = {LABEL_RELEASE: release} if release else {}
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": version,
            "labels": labels,
            "managedFields": [{"manager": "kubectl"}],
        }
    }


def pod(
    name: str,
    node: str | None = "gpu-0",
    gpus: int = 1,
    phase: str = "Running",
    version: str = "1",
    release: str | None = None,
) -> Json:
    body = obj(name, version, release=release)
    body["spec"] = {
        "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}],
        **({"nodeName": node} if node else {}),
    }
    body["status"] = {"phase": phase}
    return body


def node(name: str, gpus: int = 4, ready: bool = True, heartbeat: str = "t0") -> Json:
    return {
        "metadata": {"name": name, "resourceVersion": heartbeat, "labels": {"pool": "a100"}},
        "spec": {},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastHeartbeatTime": heartbeat,
                }
            ],
        },
    }


def name_of(body: Json | None) -> str:
    return str((body or {}).get("metadata", {}).get("name", ""))


# --- stores -----------------------------------------------------------------------------------


def test_store_groups_by_release_and_follows_label_changes() -> None:
    store = Store(by_release)
    assert store.apply("ADDED", obj("a")) == (None, store.get(("ns", "a")))
    store.apply("ADDED", obj("b", release="other"))
    assert [o["metadata"]["name"] for o in store.grouped(("ns", "chat"))] == ["a"]
    store.apply("MODIFIED", obj("a", "2", release="other"))
    assert store.grouped(("ns", "chat")) == []
    assert len(store.grouped(("ns", "other"))) == 2


def test_store_ignores_an_event_it_has_seen_and_drops_managed_fields() -> None:
    store = Store()
    store.apply("ADDED", obj("a"))
    assert store.apply("MODIFIED", obj("a")) is None  # same resourceVersion: a replayed event
    assert "managedFields" not in store.get(("ns", "a"))["metadata"]  # type: ignore[index]
    assert store.apply("DELETED", obj("a", "2")) is not None
    assert store.get(("ns", "a")) is None
    assert store.apply("DELETED", obj("a", "3")) is None


def test_a_remembered_write_is_not_replaced_by_an_older_event() -> None:
    store = Store()
    store.apply("ADDED", obj("a", "5"))
    store.apply("MODIFIED", obj("a", "9"))  # what the operator's write returned
    assert store.apply("MODIFIED", obj("a", "7")) is None  # an event from before the write
    assert store.apply("MODIFIED", obj("a", "9")) is None  # the write's own event
    assert store.get(("ns", "a"))["metadata"]["resourceVersion"] == "9"  # type: ignore[index]
    assert store.apply("MODIFIED", obj("a", "10")) is not None


def test_a_relist_reports_what_changed_and_what_is_gone() -> None:
    store = Store(by_release)
    store.replace([obj("a"), obj("b"), obj("c")])
    changes = store.replace([obj("a"), obj("b", "2"), obj("d")])
    names = {(name_of(before), name_of(after)) for before, after in changes}
    assert names == {("", "d"), ("b", "b"), ("c", "")}
    assert len(store.grouped(("ns", "chat"))) == 3


# --- GPU accounting ---------------------------------------------------------------------------


def test_gpus_are_held_from_binding_until_completion_or_deletion() -> None:
    account = GPUAccount()
    account.node("ADDED", node("gpu-0"))
    assert not account.pod("ADDED", pod("p", node=None))  # pending: holds nothing yet
    assert account.pod("MODIFIED", pod("p", version="2"))  # bound to gpu-0
    assert account.nodes()[0].used == 1
    assert account.pod("MODIFIED", pod("p", phase="Succeeded", version="3"))  # completed
    assert account.used("gpu-0") == 0
    account.pod("ADDED", pod("q", gpus=2))
    assert account.pod("DELETED", pod("q", gpus=2))
    assert account.used("gpu-0") == 0


def test_a_pod_shutting_down_keeps_its_gpus_and_a_pod_on_another_node_moves_them() -> None:
    account = GPUAccount()
    account.pod("ADDED", pod("p", gpus=2))
    terminating = pod("p", gpus=2, version="2")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not account.pod("MODIFIED", terminating)
    assert account.used("gpu-0") == 2
    account.pod("DELETED", terminating)
    account.pod("ADDED", pod("p", node="gpu-1", gpus=2, version="3"))  # same name, new node
    assert (account.used("gpu-0"), account.used("gpu-1")) == (0, 2)


def test_a_node_heartbeat_is_no_change_but_readiness_is() -> None:
    account = GPUAccount()
    assert account.node("ADDED", node("gpu-0"))
    assert not account.node("MODIFIED", node("gpu-0", heartbeat="t1"))
    assert account.node("MODIFIED", node("gpu-0", ready=False, heartbeat="t2"))
    assert account.node("MODIFIED", node("gpu-0", gpus=0, heartbeat="t3"))  # no GPUs left
    assert account.nodes() == ()


NODE_NAMES = ["gpu-0", "gpu-1", "gpu-2"]
POD_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["ADDED", "MODIFIED", "DELETED"]),
        st.sampled_from(["p0", "p1", "p2", "p3"]),
        st.sampled_from([*NODE_NAMES, None]),
        st.integers(0, 3),
        st.sampled_from(["Pending", "Running", "Succeeded", "Failed"]),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(POD_EVENTS, st.lists(st.sampled_from(NODE_NAMES), unique=True))
def test_incremental_accounting_equals_a_full_recount(
    events: list[tuple[str, str, str | None, int, str]], gone_nodes: list[str]
) -> None:
    account = GPUAccount()
    nodes = {name: node(name) for name in NODE_NAMES}
    account.replace_nodes(nodes.values())
    pods: dict[str, Json] = {}
    for version, (kind, name, where, gpus, phase) in enumerate(events):
        body = pod(name, node=where, gpus=gpus, phase=phase, version=str(version))
        account.pod(kind, body)
        if kind == "DELETED":
            pods.pop(name, None)
        else:
            pods[name] = body
    for name in gone_nodes:
        account.node("DELETED", nodes.pop(name))
    assert account.nodes() == node_gpus(nodes.values(), pods.values())
    # A relist with half the pods gone converges to the same recount.
    kept = dict(list(pods.items())[::2])
    account.replace_pods(kept.values())
    assert account.nodes() == node_gpus(nodes.values(), kept.values())


# --- the views as a whole ---------------------------------------------------------------------


class FakeKube:
    """Lists and watches from memory: each stream lists its items, in pages of one,
    then replays its events and waits until the test ends."""

    def __init__(self, items: dict[str, list[Json]], events: dict[str, list[Json]]) -> None:
        self.items = items
        self.events = events
        self.failing: set[str] = set()
        self.done = threading.Event()
        self.reads: list[str] = []

    def get_http_route_crd(self) -> Json | None:
        return None

    def get_virtual_service_crd(self) -> Json | None:
        return None

    def list_page(self, collection: Collection, continue_token: str | None = None) -> Json:
        if collection.kind in self.failing:
            raise KubeError(f"list {collection.kind}: HTTP 500")
        items = self.items.get(collection.kind, [])
        index = int(continue_token or 0)
        more = index + 1 < len(items)
        return {
            "items": items[index : index + 1],
            "metadata": {"resourceVersion": "10", "continue": str(index + 1) if more else ""},
        }

    def watch(self, collection: Collection, resource_version: str) -> Iterator[Json]:
        yield from self.events.get(collection.kind, [])
        self.done.wait()
        return

    def get_service(self, namespace: str, name: str) -> Json | None:
        self.reads.append(f"Service {name}")
        return None

    def get_http_route(self, namespace: str, name: str) -> Json | None:
        self.reads.append(f"HTTPRoute {name}")
        return obj(name, "from-api")

    def patch_http_route(self, namespace: str, name: str, operations: list[Json]) -> Json:
        raise WriteConflictError("changed meanwhile")


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    fake = FakeKube(
        items={
            DEPLOYMENTS.kind: [obj("chat-a"), obj("chat-b")],
            PODS.kind: [pod("chat-a-1", release="chat"), pod("other-1", gpus=2)],
            NODES.kind: [node("gpu-0")],
        },
        events={
            PODS.kind: [{"type": "ADDED", "object": pod("chat-a-2", version="11", release="chat")}]
        },
    )
    yield fake
    fake.done.set()


def started(kube: FakeKube) -> tuple[Views, list[Any]]:
    views = Views(kube)  # type: ignore[arg-type]
    seen: list[Any] = []
    views.on_change = seen.append
    views.start()
    return views, seen


def test_views_list_in_pages_then_follow_the_watch(kube: FakeKube) -> None:
    views, seen = started(kube)
    assert views.wait_synced(5)
    reader = ViewReader(views, kube)  # type: ignore[arg-type]
    assert sorted(d["metadata"]["name"] for d in reader.list_deployments("ns", "chat")) == [
        "chat-a",
        "chat-b",
    ]
    from tests.waiting import wait_for

    wait_for(lambda: len(reader.list_pods("ns", "chat")) == 2, 5, "the watched pod in the view")
    gpu = reader.gpu_nodes()
    assert gpu is not None
    assert gpu[0].used == 1 + 2 + 1
    assert reader.list_pods("ns", "other") == []  # not a release's pod: only its GPUs are kept
    kinds = {change.kind for change in seen}
    assert {DEPLOYMENTS.kind, PODS.kind, GPU} <= kinds
    assert all(change.release == "chat" for change in seen if change.kind == PODS.kind)
    views.stop()


def test_the_operators_own_writes_are_read_back_before_their_events(kube: FakeKube) -> None:
    views, seen = started(kube)
    assert views.wait_synced(5)
    reader = ViewReader(views, kube)  # type: ignore[arg-type]
    written = {**obj("chat-a", "42"), "kind": "Deployment", "spec": {"replicas": 0}}
    views.remember(written)
    views.remember({**obj("unlabelled", "43", release=None), "kind": "Deployment"})
    deployments = {d["metadata"]["name"]: d for d in reader.list_deployments("ns", "chat")}
    assert deployments["chat-a"]["spec"] == {"replicas": 0}
    assert views.get(views.deployments, ("ns", "unlabelled")) is None  # no watch would update it
    before = len(seen)
    with views._lock:  # the write's own event, arriving later, changes nothing
        assert views._apply(DEPLOYMENTS.kind, "MODIFIED", written) == []
    assert len(seen) == before
    views.stop()


def test_passes_wait_while_a_view_has_not_been_listed(kube: FakeKube) -> None:
    kube.failing.add(DEPLOYMENTS.kind)
    views, _ = started(kube)
    assert not views.wait_synced(0.5)
    assert views.unsynced() == [DEPLOYMENTS.kind]
    views.stop()


def test_a_route_write_conflict_makes_the_next_read_go_to_the_api_once(kube: FakeKube) -> None:
    views, _ = started(kube)
    views.http_routes = Store()
    views.http_routes.apply("ADDED", obj("chat", "5"))
    reader = ViewReader(views, kube)  # type: ignore[arg-type]
    assert reader.get_http_route("ns", "chat")["metadata"]["resourceVersion"] == "5"  # type: ignore[index]
    with pytest.raises(WriteConflictError):
        reader.patch_http_route("ns", "chat", [{"op": "test", "path": "/spec", "value": {}}])
    assert reader.get_http_route("ns", "chat")["metadata"]["resourceVersion"] == "from-api"  # type: ignore[index]
    assert reader.get_http_route("ns", "chat")["metadata"]["resourceVersion"] == "5"  # type: ignore[index]
    assert kube.reads == ["HTTPRoute chat"]
    views.stop()


# --- namespaced mode --------------------------------------------------------------------------


class NamespacedKube(FakeKube):
    """Answers a list in one namespace with that namespace's items only, and records
    which collections were listed (the operator's requests under namespaced RBAC)."""

    def __init__(self, items: dict[str, list[Json]]) -> None:
        super().__init__(items, events={})
        self.listed: list[Collection] = []

    def list_page(self, collection: Collection, continue_token: str | None = None) -> Json:
        self.listed.append(collection)
        page = super().list_page(collection, continue_token)
        if collection.namespace is not None:
            page["items"] = [
                item
                for item in page["items"]
                if item["metadata"]["namespace"] == collection.namespace
            ]
        return page


def test_named_namespaces_list_namespaced_kinds_in_each_and_pods_in_all() -> None:
    kube = NamespacedKube(
        {DEPLOYMENTS.kind: [obj("chat-a", namespace="a"), obj("chat-b", namespace="b")]}
    )
    views = Views(kube, ("a", "b"))  # type: ignore[arg-type]
    views.start()
    try:
        assert views.wait_synced(5)
        scopes = {(c.kind, c.namespace) for c in kube.listed}
        assert {("Deployments", "a"), ("Deployments", "b"), ("Services", "a")} <= scopes
        assert ("Deployments", None) not in scopes
        # The GPU view needs every Pod and Node; ClusterSLOTemplates are cluster-scoped.
        assert {("Pods", None), ("Nodes", None), ("ClusterSLOTemplates", None)} <= scopes
        # Each namespace's list replaces that namespace's objects only.
        reader = ViewReader(views, kube)  # type: ignore[arg-type]
        assert [d["metadata"]["name"] for d in reader.list_deployments("a", "chat")] == ["chat-a"]
        assert [d["metadata"]["name"] for d in reader.list_deployments("b", "chat")] == ["chat-b"]
    finally:
        kube.done.set()
        views.stop()


@pytest.mark.parametrize("namespaces", [(), ("team-*",), ("a", "!b")])
def test_all_namespaces_or_globs_list_in_all_namespaces(namespaces: tuple[str, ...]) -> None:
    kube = NamespacedKube({})
    views = Views(kube, namespaces)  # type: ignore[arg-type]
    views.start()
    try:
        assert views.wait_synced(5)
        assert {c.namespace for c in kube.listed} == {None}
    finally:
        kube.done.set()
        views.stop()


def test_a_namespace_list_leaves_the_other_namespaces_objects() -> None:
    store = Store()
    store.replace([obj("x", namespace="a"), obj("y", namespace="b")])
    changes = store.replace([], namespace="a")
    assert [before["metadata"]["name"] for before, _ in changes if before] == ["x"]
    assert store.get(("b", "y")) is not None


def test_listed_items_carry_the_kind_and_api_version_a_watch_event_would() -> None:
    page = {
        "kind": "ServiceList",
        "apiVersion": "v1",
        "items": [{"metadata": {"name": "a"}}, {"kind": "Service", "metadata": {"name": "b"}}],
    }
    assert listed(page) == [
        {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "a"}},
        {"kind": "Service", "metadata": {"name": "b"}},
    ]
    assert listed({"kind": "PodList", "apiVersion": "v1"}) == []


def test_the_connection_pool_holds_every_watch() -> None:
    from modelrelease.kube.views import stream_count

    assert stream_count() == stream_count(("team-*",)) == 9
    assert stream_count(("a", "b")) == 3 + 6 * 2


# --- HorizontalPodAutoscalers aimed at a release's Deployments --------------------------------


def hpa(
    name: str,
    target: str,
    version: str = "1",
    namespace: str = "ns",
    kind: str = "Deployment",
    api_version: str = "apps/v1",
) -> Json:
    body = obj(name, version, namespace=namespace, release=None)
    body["spec"] = {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": target}}
    return body


def test_an_hpa_is_grouped_by_the_deployment_it_scales() -> None:
    assert by_target(hpa("h", "chat-a")) == ("ns", "chat-a")
    assert by_target(hpa("h", "chat", kind="ModelRelease", api_version=MODEL_RELEASE)) is None
    assert by_target(hpa("h", "chat-a", kind="StatefulSet")) is None
    assert by_target(hpa("h", "chat-a", api_version="example.com/v1")) is None


def test_an_hpa_change_wakes_the_release_owning_the_deployment_it_scales() -> None:
    views = Views(FakeKube({}, {}))  # type: ignore[arg-type]
    with views._lock:
        views._apply(DEPLOYMENTS.kind, "ADDED", obj("chat-a"))
        views._apply(DEPLOYMENTS.kind, "ADDED", obj("mine", release=None))
        views._apply(DEPLOYMENTS.kind, "ADDED", obj("other-a", release="other"))
        added = views._apply(AUTOSCALERS.kind, "ADDED", hpa("h", "chat-a"))
        unowned = views._apply(AUTOSCALERS.kind, "ADDED", hpa("u", "mine"))
        # Retargeted from chat's Deployment to other's: both releases look again.
        moved = views._apply(AUTOSCALERS.kind, "MODIFIED", hpa("h", "other-a", "2"))
        gone = views._apply(AUTOSCALERS.kind, "DELETED", hpa("h", "other-a", "3"))
    assert added == [Change(AUTOSCALERS.kind, "ns", "h", "chat")]
    assert unowned == [Change(AUTOSCALERS.kind, "ns", "u", None)]
    assert {change.release for change in moved} == {"chat", "other"}
    assert gone == [Change(AUTOSCALERS.kind, "ns", "h", "other")]


def test_a_release_reads_the_hpas_aimed_at_its_deployments() -> None:
    kube = FakeKube(
        items={
            DEPLOYMENTS.kind: [obj("chat-a"), obj("chat-b"), obj("other-a", release="other")],
            AUTOSCALERS.kind: [
                hpa("on-champion", "chat-a"),
                hpa("on-other", "other-a"),
                hpa("elsewhere", "chat-a", namespace="prod"),
                hpa("right", "chat", kind="ModelRelease", api_version=MODEL_RELEASE),
            ],
        },
        events={},
    )
    views, _ = started(kube)
    try:
        assert views.wait_synced(5)
        reader = ViewReader(views, kube)  # type: ignore[arg-type]
        assert reader.misdirected_autoscalers("ns", "chat") == (
            MisdirectedAutoscaler(name="on-champion", deployment="chat-a"),
        )
        assert reader.misdirected_autoscalers("ns", "nothing") == ()
    finally:
        kube.done.set()
        views.stop()


class ForbiddenAutoscalers(NamespacedKube):
    def list_page(self, collection: Collection, continue_token: str | None = None) -> Json:
        if collection.kind == AUTOSCALERS.kind and collection.namespace in (None, "b"):
            raise ForbiddenError(f"list {collection.named()}: forbidden")
        return super().list_page(collection, continue_token)


@pytest.mark.parametrize("namespaces", [(), ("a", "b")])
def test_hpas_the_operator_may_not_list_leave_the_check_off(namespaces: tuple[str, ...]) -> None:
    kube = ForbiddenAutoscalers(
        {
            DEPLOYMENTS.kind: [obj("chat-a", namespace="a"), obj("chat-b", namespace="b")],
            AUTOSCALERS.kind: [hpa("h", "chat-a", namespace="a")],
        }
    )
    views = Views(kube, namespaces)  # type: ignore[arg-type]
    views.start()
    try:
        assert views.wait_synced(5)  # a refused optional stream counts as synced
        assert views.misdirected_autoscalers("b", "chat") is None
        expected = (
            None if not namespaces else (MisdirectedAutoscaler(name="h", deployment="chat-a"),)
        )
        assert views.misdirected_autoscalers("a", "chat") == expected
    finally:
        kube.done.set()
        views.stop()
