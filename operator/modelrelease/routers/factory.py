"""Choosing the router the spec names; routers this version lacks are refused."""

from __future__ import annotations

from typing import Protocol

from modelrelease.api.constants import RouterType
from modelrelease.api.models import TrafficSpec
from modelrelease.core.manifests import CANARY, STABLE, Owner, service_name
from modelrelease.routers.gatewayapi import Backends, GatewayAPIRouter
from modelrelease.routers.gatewayapi_owned import OwnedGatewayAPIRouter, OwnedHTTPRouteStore
from modelrelease.routers.istio import IstioRouter
from modelrelease.routers.istio_owned import OwnedIstioRouter, OwnedVirtualServiceStore
from modelrelease.routers.meshless import MeshlessRouter, ServiceStore
from modelrelease.routers.router import Router, RouterError


class UnsupportedRouterError(RouterError):
    """The spec names a router this operator version does not implement."""


class RouterStore(OwnedHTTPRouteStore, OwnedVirtualServiceStore, ServiceStore, Protocol):
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
    gateway_api = traffic.gateway_api
    if gateway_api is not None and gateway_api.owned_route is not None:
        if owner is None:
            raise RouterError(
                "gatewayAPI.ownedRoute needs the ModelRelease's uid for the route's "
                "ownerReference; this is an operator bug: pass owner= to new_router"
            )
        return OwnedGatewayAPIRouter(store, owner, gateway_api.owned_route, backends)
    if gateway_api is not None and gateway_api.http_route is not None:
        rule = gateway_api.rule
        return GatewayAPIRouter(
            store,
            namespace,
            gateway_api.http_route,
            backends,
            rule_name=rule if isinstance(rule, str) else None,
            rule_index=rule if isinstance(rule, int) else None,
        )
    istio = traffic.istio
    if istio is not None and istio.owned_virtual_service is not None:
        if owner is None:
            raise RouterError(
                "istio.ownedVirtualService needs the ModelRelease's uid for the "
                "VirtualService's ownerReference; this is an operator bug: pass owner= to "
                "new_router"
            )
        return OwnedIstioRouter(store, owner, istio.owned_virtual_service, backends)
    if istio is not None and istio.virtual_service is not None:
        return IstioRouter(store, namespace, istio.virtual_service, backends, istio.route)
    if traffic.none is not None:
        return MeshlessRouter(store, namespace, release, port, owner)
    kind = traffic.router_type
    supported = ", ".join(router.value for router in RouterType)
    raise UnsupportedRouterError(
        f"traffic.{kind.value} is not supported by this operator version (supported: "
        f"{supported}); use one of those or upgrade the operator"
    )
