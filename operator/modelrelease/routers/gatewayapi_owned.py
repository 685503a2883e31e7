"""Gateway API ``HTTPRoute`` that the operator creates and owns (``gatewayAPI.ownedRoute``).

The route is built whole from the ModelRelease: named after the release, in its
namespace, with an ownerReference to it (so it is garbage-collected with it),
the spec's parentRefs, hostnames, matches and timeouts, and one rule weighting
``<release>-stable`` and ``<release>-canary`` (plus the mirror filter in
shadow). It is written by server-side apply with the operator's field manager,
taking over any field someone else changed: under GitOps, Git holds only the
ModelRelease, so nothing else claims the route and nothing drifts.

Everything the API server would default (parentRef group and kind, backendRef
group, kind and weight, the match's path) is written explicitly, so the stored
route equals the built one and a difference means someone edited it: then
``converge`` writes it back, keeping the weights it has (the plan decides those).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from modelrelease.api.models import OwnedHTTPRoute, RouteMatch
from modelrelease.core.manifests import Owner
from modelrelease.core.routes import FULL
from modelrelease.routers.gatewayapi import (
    GATEWAY_API,
    GROUP,
    REQUEST_MIRROR,
    VERSION,
    Backends,
    HTTPRouteStore,
    mirror_percent_in_crd,
    mirror_percent_unsupported,
    routes_in_rule,
)
from modelrelease.routers.owned import needs_apply, owned_object, ownership_problem
from modelrelease.routers.router import MirrorUnsupportedError, RouterError, Routes

Json = dict[str, Any]

KIND = "HTTPRoute"
NO_TRAFFIC = Routes(0, 0, 0)
"""What a route that does not exist sends anywhere."""


class OwnedHTTPRouteStore(HTTPRouteStore, Protocol):
    def apply_http_route(self, manifest: Json) -> Json:
        """Server-side apply with the operator's field manager, forcing conflicts."""
        ...


class OwnedGatewayAPIRouter:
    """Creates and weights the HTTPRoute ``<release>`` from ``gatewayAPI.ownedRoute``."""

    def __init__(
        self,
        store: OwnedHTTPRouteStore,
        owner: Owner,
        route: OwnedHTTPRoute,
        backends: Backends,
    ):
        self._store = store
        self._owner = owner
        self._route = route
        self._backends = backends
        self._mirror_percent_supported: bool | None = None

    @property
    def type(self) -> str:
        return GATEWAY_API

    def get_routes(self) -> Routes:
        """The route's shares; no traffic anywhere while it does not exist (yet)."""
        current = self._current()
        if current is None:
            return NO_TRAFFIC
        rules = (current.get("spec") or {}).get("rules") or []
        return routes_in_rule(rules[0], self._backends) if rules else NO_TRAFFIC

    def set_routes(self, stable_weight: int, canary_weight: int, mirror_percent: int) -> None:
        if mirror_percent not in (0, FULL) and not self._supports_mirror_percent():
            raise MirrorUnsupportedError(mirror_percent_unsupported(mirror_percent))
        self._write(Routes(stable_weight, canary_weight, mirror_percent), self._current())

    def converge(self) -> None:
        """Write the route back when someone changed it, keeping the weights it has.
        A route that does not exist yet is created by ``set_routes`` (the plan sends
        traffic only once a revision is Ready)."""
        current = self._current()
        if current is None:
            return
        routes = self.get_routes()
        if needs_apply(
            current, owned_route_manifest(self._owner, self._route, self._backends, routes)
        ):
            self._write(routes, current)

    def finalize(self) -> None:
        """Nothing to give back: the route is deleted with the release (ownerReference)."""

    # --- I/O ---------------------------------------------------------------

    def _current(self) -> Json | None:
        return self._store.get_http_route(self._owner.namespace, self._owner.name)

    def _write(self, routes: Routes, current: Json | None) -> None:
        problem = ownership_problem(
            current, self._owner, KIND, "gatewayAPI.ownedRoute", "gatewayAPI.httpRoute"
        )
        if problem is not None:
            raise RouterError(problem)
        desired = owned_route_manifest(self._owner, self._route, self._backends, routes)
        if needs_apply(current, desired):
            self._store.apply_http_route(desired)

    def _supports_mirror_percent(self) -> bool:
        if self._mirror_percent_supported is None:
            crd = self._store.get_http_route_crd()
            self._mirror_percent_supported = crd is not None and mirror_percent_in_crd(crd)
        return self._mirror_percent_supported


# --- pure helpers (unit-tested) ----------------------------------------------


def owned_route_manifest(
    owner: Owner, route: OwnedHTTPRoute, backends: Backends, routes: Routes
) -> Json:
    """The whole HTTPRoute ``<release>`` sending ``routes``, with every default spelled out."""
    spec: Json = {"parentRefs": [_parent_ref(ref.model_dump()) for ref in route.parent_refs]}
    if route.hostnames:
        spec["hostnames"] = list(route.hostnames)
    spec["rules"] = [_rule(route, backends, routes)]
    return owned_object(f"{GROUP}/{VERSION}", KIND, owner, route.metadata, spec)


def _parent_ref(ref: Mapping[str, Any]) -> Json:
    parent: Json = {"group": ref.get("group") or GROUP, "kind": ref.get("kind") or "Gateway"}
    parent.update({key: value for key, value in ref.items() if value is not None})
    return parent


def _rule(route: OwnedHTTPRoute, backends: Backends, routes: Routes) -> Json:
    matches = route.matches or [RouteMatch()]
    rule: Json = {"matches": [_match(match) for match in matches]}
    refs = [_backend_ref(backends.stable_service, backends.port, routes.stable_weight)]
    if routes.canary_weight > 0:
        refs.append(_backend_ref(backends.canary_service, backends.port, routes.canary_weight))
    rule["backendRefs"] = refs
    if routes.mirror_percent > 0:
        mirror: Json = {"backendRef": _service_ref(backends.canary_service, backends.port)}
        if routes.mirror_percent != FULL:
            mirror["percent"] = routes.mirror_percent
        rule["filters"] = [{"type": REQUEST_MIRROR, "requestMirror": mirror}]
    if route.timeouts is not None:
        timeouts = route.timeouts.model_dump(exclude_none=True)
        if timeouts:
            rule["timeouts"] = timeouts
    return rule


def _match(match: RouteMatch) -> Json:
    dumped: Json = match.model_dump(exclude_none=True)
    if "path" not in dumped:
        dumped["path"] = {"type": "PathPrefix", "value": "/"}
    return dumped


def _service_ref(service: str, port: int) -> Json:
    return {"group": "", "kind": "Service", "name": service, "port": port}


def _backend_ref(service: str, port: int, weight: int) -> Json:
    return {**_service_ref(service, port), "weight": weight}
