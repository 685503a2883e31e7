"""Istio ``VirtualService``: destination weights, ``mirror`` and ``mirrorPercentage``.

The operator manages one HTTP route of a VirtualService the user owns: the
weights of its ``<release>-stable`` and ``<release>-canary`` destinations and
its mirror to the canary. Every other route, match, retry, header, timeout and
destination is left alone: a write is a JSON patch of that HTTP route's
``route``, ``mirror``, ``mirrorPercentage`` and ``mirrors`` keys alone, after a
``test`` that the HTTP route is still as read, so a concurrent edit of it is
retried, not lost (``spec.http`` is an atomic list, as in Gateway API).

Hosts are written as short Service names, which Istio resolves in the
VirtualService's namespace, or as ``<svc>.<ns>.svc.cluster.local`` when the
stable destination is written that way. ``<svc>.<ns>`` is never used: Istio
does not expand it, so it would name no Service.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from modelrelease.core.routes import FULL
from modelrelease.routers.gatewayapi import Backends
from modelrelease.routers.router import (
    MirrorUnsupportedError,
    RouteNotFoundError,
    RouterError,
    Routes,
    RuleNotFoundError,
    json_patch,
    write_with_retries,
)

ISTIO = "istio"
GROUP = "networking.istio.io"
PLURAL = "virtualservices"
CRD_NAME = f"{PLURAL}.{GROUP}"
# Newest first: the first one the installed CRD serves is used.
KNOWN_VERSIONS = ("v1", "v1beta1", "v1alpha3")
CLUSTER_DOMAIN = "cluster.local"
# An HTTP route with one of these answers by itself and has no destinations to weight.
_NOT_FORWARDING = ("delegate", "redirect", "directResponse")
_DEPRECATED_MIRROR_PERCENT = ("mirrorPercent", "mirror_percent")

Json = dict[str, Any]


@runtime_checkable
class VirtualServiceStore(Protocol):
    """The few API calls this router needs (implemented in ``kube``)."""

    def get_virtual_service(self, namespace: str, name: str, version: str) -> Json | None: ...

    def patch_virtual_service(
        self, namespace: str, name: str, version: str, operations: list[Json]
    ) -> Json:
        """Apply a JSON patch; raise WriteConflictError when its ``test`` fails."""
        ...

    def get_virtual_service_crd(self) -> Json | None: ...


@dataclass(frozen=True)
class Hosts:
    """The operator's two Services as Istio destination hosts in one namespace."""

    namespace: str
    stable_service: str
    canary_service: str
    port: int

    @classmethod
    def of(cls, namespace: str, backends: Backends) -> Hosts:
        return cls(namespace, backends.stable_service, backends.canary_service, backends.port)

    def is_stable(self, host: object) -> bool:
        return host in _host_forms(self.stable_service, self.namespace)

    def is_canary(self, host: object) -> bool:
        return host in _host_forms(self.canary_service, self.namespace)


def usable_version(crd: Json | None, needed_by: str) -> str:
    """The VirtualService version to read and write, from the installed CRD; the errors
    say what ``needed_by`` lacks and what to install."""
    if crd is None:
        raise RouteNotFoundError(
            f"{needed_by} needs the CustomResourceDefinition {CRD_NAME}, which is not "
            "installed; install Istio's CRDs or choose another router (gatewayAPI, none)"
        )
    version = served_version(crd)
    if version is None:
        raise RouterError(
            f"the installed {CRD_NAME} serves none of the versions this operator knows "
            f"({', '.join(KNOWN_VERSIONS)}); upgrade Istio's CRDs or the operator"
        )
    return version


class IstioRouter:
    def __init__(
        self,
        store: VirtualServiceStore,
        namespace: str,
        virtual_service: str,
        backends: Backends,
        route_name: str | None = None,
    ):
        self._store = store
        self._namespace = namespace
        self._name = virtual_service
        self._hosts = Hosts.of(namespace, backends)
        self._route_name = route_name
        self._version: str | None = None

    @property
    def type(self) -> str:
        return ISTIO

    def get_routes(self) -> Routes:
        service = self._read()
        route = service["spec"]["http"][self._route_index(service)]
        return routes_in_http_route(route, self._hosts)

    def set_routes(self, stable_weight: int, canary_weight: int, mirror_percent: int) -> None:
        desired = Routes(stable_weight, canary_weight, mirror_percent)
        self._update(lambda route: with_routes(route, self._hosts, desired, self._where()))

    def finalize(self) -> None:
        try:
            self._update(lambda route: restored(route, self._hosts))
        except (RouteNotFoundError, RuleNotFoundError):
            return  # no VirtualService or no route of ours: nothing to give back

    # --- I/O ---------------------------------------------------------------

    def _where(self) -> str:
        return f"VirtualService {self._namespace}/{self._name}"

    def _read(self) -> Json:
        if self._version is None:
            found = self._store.get_virtual_service(self._namespace, self._name, KNOWN_VERSIONS[0])
            if found is not None:
                self._version = KNOWN_VERSIONS[0]
                return found
            self._version = self._served_version()
        found = self._store.get_virtual_service(self._namespace, self._name, self._version)
        if found is None:
            raise RouteNotFoundError(
                f"{self._where()} named in spec.traffic.istio.virtualService does not exist; "
                "create it or fix the name"
            )
        return found

    def _served_version(self) -> str:
        return usable_version(self._store.get_virtual_service_crd(), f"{self._where()}")

    def _update(self, change: Callable[[Json], Json]) -> None:
        def write() -> None:
            service = self._read()
            index = self._route_index(service)
            route = service["spec"]["http"][index]
            new_route = change(route)
            if new_route == route:
                return
            operations = json_patch(f"/spec/http/{index}", route, new_route)
            assert self._version is not None  # set by _read
            self._store.patch_virtual_service(
                self._namespace, self._name, self._version, operations
            )

        write_with_retries(write)

    def _route_index(self, service: Json) -> int:
        return choose_route(service, self._hosts, self._route_name)


# --- pure helpers (unit-tested) ----------------------------------------------


def served_version(crd: Mapping[str, Any]) -> str | None:
    """The newest version of the VirtualService API that the CRD serves, if any."""
    served = {
        version.get("name")
        for version in (crd.get("spec") or {}).get("versions") or []
        if version.get("served")
    }
    return next((version for version in KNOWN_VERSIONS if version in served), None)


def choose_route(service: Json, hosts: Hosts, route_name: str | None = None) -> int:
    """The index in ``spec.http`` of the route the operator manages.

    A route named in the spec wins; otherwise the first route with a
    destination to the stable Service (or else the canary Service); otherwise
    the first route that forwards to destinations at all.
    """
    name = (service.get("metadata") or {}).get("name", "")
    routes = (service.get("spec") or {}).get("http") or []
    if not routes:
        raise RuleNotFoundError(
            f"VirtualService {name} has no HTTP routes (spec.http is empty); add a route "
            f"with a destination to host {hosts.stable_service}"
        )
    if route_name is not None:
        return _route_by_name(name, routes, route_name)
    for is_ours in (hosts.is_stable, hosts.is_canary):
        for index, route in enumerate(routes):
            if any(is_ours(_host(item)) for item in route.get("route") or []):
                return index
    for index, route in enumerate(routes):
        if _forwarding_problem(route) is None:
            return index
    raise RuleNotFoundError(
        f"VirtualService {name}: none of its {len(routes)} HTTP routes forwards to "
        f"destinations (each uses {' or '.join(_NOT_FORWARDING)}); add a route with a "
        f"destination to host {hosts.stable_service}"
    )


def _route_by_name(service_name: str, routes: list[Json], route_name: str) -> int:
    for index, route in enumerate(routes):
        if route.get("name") != route_name:
            continue
        problem = _forwarding_problem(route)
        if problem is not None:
            raise RuleNotFoundError(
                f"VirtualService {service_name}: HTTP route {route_name!r} uses {problem}, "
                "so it has no destinations to weight; name a route with `route` "
                "destinations in spec.traffic.istio.route"
            )
        return index
    names = [str(route["name"]) for route in routes if route.get("name")]
    raise RuleNotFoundError(
        f"VirtualService {service_name} has no HTTP route named {route_name!r} (named "
        f"routes: {', '.join(names) or 'none'}); fix spec.traffic.istio.route"
    )


def _forwarding_problem(route: Mapping[str, Any]) -> str | None:
    return next((field for field in _NOT_FORWARDING if route.get(field) is not None), None)


def routes_in_http_route(route: Mapping[str, Any], hosts: Hosts) -> Routes:
    destinations = route.get("route") or []
    return Routes(
        stable_weight=_weight(destinations, hosts.is_stable),
        canary_weight=_weight(destinations, hosts.is_canary),
        mirror_percent=_mirror_percent(route, hosts),
    )


def with_routes(route: Json, hosts: Hosts, routes: Routes, where: str = "VirtualService") -> Json:
    """A copy of ``route`` whose operator-owned parts say ``routes``.

    The canary destination exists only while it takes traffic; the stable one
    stays, at weight 0 if need be, since the stable Service outlives a release.
    """
    new = copy.deepcopy(route)
    destinations: list[Json] = new.setdefault("route", [])
    stable = _set_weight(destinations, hosts.is_stable, routes.stable_weight)
    if stable is None:
        stable = {"destination": _new_destination(hosts.stable_service, hosts, None)}
        stable["weight"] = routes.stable_weight
        destinations.insert(0, stable)
    if routes.canary_weight > 0:
        if _set_weight(destinations, hosts.is_canary, routes.canary_weight) is None:
            destination = _new_destination(hosts.canary_service, hosts, stable["destination"])
            destinations.append({"destination": destination, "weight": routes.canary_weight})
    else:
        new["route"] = [item for item in destinations if not hosts.is_canary(_host(item))]
    _set_mirror(new, hosts, routes.mirror_percent, stable["destination"], where)
    return new


def restored(route: Json, hosts: Hosts) -> Json:
    """A copy of ``route`` as if the operator had never run a challenger."""
    new = copy.deepcopy(route)
    destinations = [item for item in new.get("route") or [] if not hosts.is_canary(_host(item))]
    for item in destinations:
        if hosts.is_stable(_host(item)):
            item["weight"] = FULL
    if destinations:
        new["route"] = destinations
    else:
        new.pop("route", None)
    _drop_mirror(new, hosts)
    return new


def _host_forms(service: str, namespace: str) -> tuple[str, str]:
    return service, f"{service}.{namespace}.svc.{CLUSTER_DOMAIN}"


def _host(item: Mapping[str, Any]) -> object:
    return (item.get("destination") or {}).get("host")


def _weight(destinations: list[Json], is_ours: Callable[[object], bool]) -> int:
    """A destination's weight; Istio takes a lone destination without one as 100."""
    for item in destinations:
        if is_ours(_host(item)):
            if item.get("weight") is None:
                return FULL if len(destinations) == 1 else 0
            return int(item["weight"])
    return 0


def _set_weight(
    destinations: list[Json], is_ours: Callable[[object], bool], weight: int
) -> Json | None:
    for item in destinations:
        if is_ours(_host(item)):
            item["weight"] = weight
            return item
    return None


def _new_destination(service: str, hosts: Hosts, like: Mapping[str, Any] | None) -> Json:
    """A destination for ``service`` written the way ``like`` (the stable one) is.

    Only the host's form and the port are copied: a subset belongs to the
    stable host's DestinationRule and would not exist for the canary.
    """
    if like is None:
        return {"host": service, "port": {"number": hosts.port}}
    fully_qualified = like.get("host") == _host_forms(hosts.stable_service, hosts.namespace)[1]
    destination: Json = {"host": _host_forms(service, hosts.namespace)[int(fully_qualified)]}
    if like.get("port") is not None:
        destination["port"] = copy.deepcopy(like["port"])
    return destination


def _mirror_percent(route: Mapping[str, Any], hosts: Hosts) -> int:
    """The share mirrored to the canary; Istio mirrors 100% when no percentage is set."""
    single = route.get("mirror") or {}
    if hosts.is_canary(single.get("host")):
        percentage = route.get("mirrorPercentage")
        if percentage is not None:
            return round(float(percentage.get("value", 0)))
        for field in _DEPRECATED_MIRROR_PERCENT:
            if route.get(field) is not None:
                return int(route[field])
        return FULL
    for item in route.get("mirrors") or []:
        if hosts.is_canary(_host(item)):
            percentage = item.get("percentage")
            return FULL if percentage is None else round(float(percentage.get("value", 0)))
    return 0


def _set_mirror(
    route: Json, hosts: Hosts, percent: int, stable: Mapping[str, Any], where: str
) -> None:
    """Keep, update, add or drop the operator's mirror, in place.

    Istio forbids ``mirror`` and ``mirrors`` on one route, so the operator uses
    the list when the route already has one and the single field otherwise.
    """
    if percent <= 0:
        _drop_mirror(route, hosts)
        return
    if route.get("mirrors"):
        _set_listed_mirror(route["mirrors"], hosts, percent, stable)
        return
    single = route.get("mirror")
    if single is not None and not hosts.is_canary(single.get("host")):
        raise MirrorUnsupportedError(
            f"{where}: HTTP route {route.get('name') or '(unnamed)'} already mirrors to "
            f"{single.get('host')!r} with `mirror`, and Istio allows one `mirror` per route; "
            "move that mirror into `mirrors` (Istio 1.22+) so the operator can add its own "
            "next to it, or remove it"
        )
    if single is None:
        route["mirror"] = _new_destination(hosts.canary_service, hosts, stable)
    for field in _DEPRECATED_MIRROR_PERCENT:
        route.pop(field, None)
    route["mirrorPercentage"] = {"value": percent}


def _set_listed_mirror(
    mirrors: list[Json], hosts: Hosts, percent: int, stable: Mapping[str, Any]
) -> None:
    for item in mirrors:
        if hosts.is_canary(_host(item)):
            item["percentage"] = {"value": percent}
            return
    destination = _new_destination(hosts.canary_service, hosts, stable)
    mirrors.append({"destination": destination, "percentage": {"value": percent}})


def _drop_mirror(route: Json, hosts: Hosts) -> None:
    if hosts.is_canary((route.get("mirror") or {}).get("host")):
        for field in ("mirror", "mirrorPercentage", *_DEPRECATED_MIRROR_PERCENT):
            route.pop(field, None)
    if "mirrors" in route:
        kept = [item for item in route["mirrors"] or [] if not hosts.is_canary(_host(item))]
        if kept:
            route["mirrors"] = kept
        else:
            route.pop("mirrors")
