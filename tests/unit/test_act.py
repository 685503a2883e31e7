"""``kube.act``: an owned route that cannot be written back does not hold the writes that
keep traffic on Ready pods.

The owned router writes its route back first (``converge``) when someone changed it. When
that write is refused (the route lost its ownerReference, so the operator will not take
it over; or the API server refused the write), the pass still carries out the steps up to
its first route write: a rollback moves the canary Service, which the route still weights,
from the crash-looping challenger onto the Ready champion. Before, the refused write-back
ended the pass before any step, and the route kept sending its canary share to a Service
without a Ready pod for as long as the route stayed that way.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, cast

from modelrelease.api.constants import Reason
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus, OwnedHTTPRoute
from modelrelease.core.decision import Decision, Workloads
from modelrelease.core.manifests import CANARY, STABLE, Owner, service_manifest
from modelrelease.core.observation import DeploymentState
from modelrelease.core.routes import Routes
from modelrelease.kube.act import act
from modelrelease.kube.client import KubeClient
from modelrelease.kube.errors import KubeError
from modelrelease.kube.observe import ClusterView
from modelrelease.routers.gatewayapi import Backends
from modelrelease.routers.gatewayapi_owned import OwnedGatewayAPIRouter, owned_route_manifest

Json = dict[str, Any]

OWNER = Owner(name="chat", namespace="llm", uid="uid-1")
BACKENDS = Backends(stable_service="chat-stable", canary_service="chat-canary", port=8000)
CHAMPION, CHALLENGER = "aaaa", "bbbb"
SPEC = ModelReleaseSpec.model_validate(
    {
        "model": {"name": "chat-8b", "version": "2"},
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "server", "image": "vllm:1"}]}},
        "traffic": {"gatewayAPI": {"ownedRoute": {"parentRefs": [{"name": "gateway"}]}}},
        "stages": [{"canary": {"steps": [{"weight": 20, "duration": "1m"}]}}],
    }
)
ROLLBACK = Decision(
    status=ModelReleaseStatus(),
    workloads=Workloads(
        replicas={CHAMPION: 2, CHALLENGER: 0},
        delete=(CHALLENGER,),
        stable_revision=CHAMPION,
        canary_revision=CHAMPION,
    ),
    routes=Routes(100, 0, 0),
)


class Cluster:
    """The API calls ``act`` makes, recorded; the route refuses writes when told."""

    def __init__(self, route: Json, route_error: Exception | None = None) -> None:
        self.route = route
        self.route_error = route_error
        self.writes: list[tuple[str, str]] = []

    # routes (the owned router's store)
    def get_http_route(self, namespace: str, name: str) -> Json | None:
        return copy.deepcopy(self.route)

    def apply_http_route(self, manifest: Json) -> Json:
        if self.route_error is not None:
            raise self.route_error
        self.writes.append(("route", str(manifest["spec"]["rules"][0]["backendRefs"])))
        self.route = copy.deepcopy(manifest)
        return manifest

    def patch_http_route(self, namespace: str, name: str, operations: list[Json]) -> Json:
        raise AssertionError("an owned route is applied whole")

    def get_http_route_crd(self) -> Json | None:
        return None

    # workloads
    def apply_service(self, manifest: Json) -> Json:
        self.writes.append(("service", manifest["metadata"]["name"]))
        return manifest

    def apply_deployment(self, manifest: Json) -> Json:
        self.writes.append(("deployment", manifest["metadata"]["name"]))
        return manifest

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self.writes.append(("scale", f"{name}={replicas}"))

    def delete_deployment(self, namespace: str, name: str) -> None:
        self.writes.append(("delete", name))


def _deployment(revision: str, replicas: int, ready: int) -> DeploymentState:
    return DeploymentState(
        name=f"chat-{revision}",
        revision=revision,
        replicas=replicas,
        ready_replicas=ready,
        updated_replicas=replicas,
        created=datetime(2026, 1, 1, tzinfo=UTC),
        manifest_hash=None,
        model=None,
    )


def _mid_canary(route: Json) -> tuple[ClusterView, Cluster, OwnedGatewayAPIRouter]:
    """80/20 with the challenger's pods crash-looping (none Ready): a rollback is due."""
    services: dict[str, Json | None] = {
        STABLE: service_manifest(SPEC, OWNER, STABLE, CHAMPION),
        CANARY: service_manifest(SPEC, OWNER, CANARY, CHALLENGER),
    }
    view = ClusterView(
        deployments={
            CHAMPION: _deployment(CHAMPION, 2, 2),
            CHALLENGER: _deployment(CHALLENGER, 1, 0),
        },
        routes=Routes(80, 20, 0),
        services=services,
    )
    cluster = Cluster(route)
    router = OwnedGatewayAPIRouter(cluster, OWNER, _owned_spec(), BACKENDS)
    return view, cluster, router


def _owned_spec() -> OwnedHTTPRoute:
    assert SPEC.traffic.gateway_api is not None
    owned = SPEC.traffic.gateway_api.owned_route
    assert owned is not None
    return owned


def _owned_route() -> Json:
    return owned_route_manifest(OWNER, _owned_spec(), BACKENDS, Routes(80, 20, 0))


def test_a_disowned_route_still_lets_the_rollback_move_the_canary_service_to_ready_pods() -> None:
    route = _owned_route()
    route["metadata"]["ownerReferences"] = []  # someone replaced it without the reference
    route["spec"]["hostnames"] = ["edited.example.com"]
    view, cluster, router = _mid_canary(route)

    problems = act(cast(KubeClient, cluster), router, OWNER, SPEC, ROLLBACK, view)

    assert ("service", "chat-canary") in cluster.writes  # now selecting the Ready champion
    assert not any(kind == "route" for kind, _ in cluster.writes), "taken over"
    assert not any(kind in ("scale", "delete") for kind, _ in cluster.writes), (
        "the challenger went while the route, which cannot be written, may still send it "
        "traffic through a Service"
    )
    (problem,) = problems
    assert problem.reason == Reason.RECONCILE_ERROR
    assert "is not owned by ModelRelease chat" in problem.message


def test_a_refused_write_back_still_lets_the_rollback_move_the_canary_service() -> None:
    route = _owned_route()
    route["spec"]["hostnames"] = ["edited.example.com"]  # drifted: converge writes first
    view, cluster, router = _mid_canary(route)
    cluster.route_error = KubeError("apply HTTPRoute llm/chat: 500 etcdserver: leader changed")

    problems = act(cast(KubeClient, cluster), router, OWNER, SPEC, ROLLBACK, view)

    assert ("service", "chat-canary") in cluster.writes
    (problem,) = problems
    assert "leader changed" in problem.message


def test_a_drifted_owned_route_is_written_back_and_the_rollback_finishes() -> None:
    route = _owned_route()
    route["spec"]["hostnames"] = ["edited.example.com"]
    view, cluster, router = _mid_canary(route)

    assert act(cast(KubeClient, cluster), router, OWNER, SPEC, ROLLBACK, view) == []

    kinds = [kind for kind, _ in cluster.writes]
    # written back (80/20 kept), canary Service onto the champion, 100/0, challenger gone
    assert kinds.index("route") < kinds.index("service")
    assert cluster.writes[-2:] == [("scale", "chat-bbbb=0"), ("delete", "chat-bbbb")]
    assert "hostnames" not in cluster.route["spec"]
