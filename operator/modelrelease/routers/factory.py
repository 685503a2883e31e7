"""Choosing the router the spec names; routers this version lacks are refused."""

from __future__ import annotations

from typing import Protocol

from modelrelease.api.constants import RouterType
from modelrelease.api.models import TrafficSpec
from modelrelease.core.manifests import CANARY, STABLE, Owner, service_name
from modelrelease.routers.gatewayapi import Backends, GatewayAPIRouter, HTTPRouteStore
from modelrelease.routers.istio import IstioRouter, VirtualServiceStore
from modelrelease.routers.meshless import MeshlessRouter, ServiceStore
from modelrelease.routers.router import Router, RouterError


class UnsupportedRouterError(RouterError):
    """The spec names a router this operator version does not implement."""


class RouterStore(HTTPRouteStore, VirtualServiceStore, ServiceStore, Protocol):
    """Everything any router needs from the API layer (``kube.KubeClient``)."""


def backends_of(release: str, port: int) -> Backends:
    return Backends(
        stable_service=service_name(release, STABLE),
        canary_service=service_name(release, CANARY),
        port=port,
    )


def new_router(
    traffic: TrafficSpec,
    store: RouterStore,
    namespace: str,
    release: str,
    port: int,
    owner: Owner | None = None,
) -> Router:
    backends = backends_of(release, port)
    if traffic.gateway_api is not None:
        rule = traffic.gateway_api.rule
        return GatewayAPIRouter(
            store,
            namespace,
            traffic.gateway_api.http_route,
            backends,
            rule_name=rule if isinstance(rule, str) else None,
            rule_index=rule if isinstance(rule, int) else None,
        )
    if traffic.istio is not None:
        istio = traffic.istio
        return IstioRouter(store, namespace, istio.virtual_service, backends, istio.route)
    if traffic.none is not None:
        return MeshlessRouter(store, namespace, release, port, owner)
    kind = traffic.router_type
    supported = ", ".join(router.value for router in RouterType)
    raise UnsupportedRouterError(
        f"traffic.{kind.value} is not supported by this operator version (supported: "
        f"{supported}); use one of those or upgrade the operator"
    )
