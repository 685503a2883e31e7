"""Istio ``VirtualService`` that the operator creates and owns (``istio.ownedVirtualService``).

The same as ``routers.gatewayapi_owned`` for Istio: named after the release, with an
ownerReference to it, the spec's hosts, gateways, matches and timeout, and one HTTP
route with weighted destinations ``<release>-stable`` and ``<release>-canary`` (and
``mirror``/``mirrorPercentage`` in shadow). Written by server-side apply, only when the
stored object differs from the built one; an edit by someone else is written back.
Istio's CRDs default nothing in a VirtualService, so the stored object equals the
built one.
"""

from __future__ import annotations

from typing import Any, Protocol

from modelrelease.api.models import OwnedVirtualService
from modelrelease.core.manifests import Owner
from modelrelease.routers.gatewayapi import Backends
from modelrelease.routers.istio import (
    GROUP,
    ISTIO,
    KNOWN_VERSIONS,
    Hosts,
    VirtualServiceStore,
    routes_in_http_route,
    usable_version,
)
from modelrelease.routers.owned import needs_apply, owned_object, ownership_problem
from modelrelease.routers.router import RouterError, Routes

Json = dict[str, Any]

KIND = "VirtualService"
NO_TRAFFIC = Routes(0, 0, 0)


class OwnedVirtualServiceStore(VirtualServiceStore, Protocol):
    def apply_virtual_service(self, version: str, manifest: Json) -> Json:
        """Server-side apply with the operator's field manager, forcing conflicts."""
        ...


class OwnedIstioRouter:
    """Creates and weights the VirtualService ``<release>`` from ``istio.ownedVirtualService``."""

    def __init__(
        self,
        store: OwnedVirtualServiceStore,
        owner: Owner,
        service: OwnedVirtualService,
        backends: Backends,
    ):
        self._store = store
        self._owner = owner
        self._service = service
        self._hosts = Hosts.of(owner.namespace, backends)
        self._version: str | None = None

    @property
    def type(self) -> str:
        return ISTIO

    def get_routes(self) -> Routes:
        """The shares it sends; no traffic anywhere while it does not exist (yet)."""
        current = self._current()
        http = ((current or {}).get("spec") or {}).get("http") or []
        return routes_in_http_route(http[0], self._hosts) if http else NO_TRAFFIC

    def set_routes(self, stable_weight: int, canary_weight: int, mirror_percent: int) -> None:
        self._write(Routes(stable_weight, canary_weight, mirror_percent), self._current())

    def converge(self) -> None:
        """Write the VirtualService back when someone changed it, keeping its weights."""
        current = self._current()
        if current is None:
            return
        routes = self.get_routes()
        desired = owned_virtual_service_manifest(
            self._owner, self._service, self._hosts, routes, self._served()
        )
        if needs_apply(current, desired):
            self._write(routes, current)

    def finalize(self) -> None:
        """Nothing to give back: it is deleted with the release (ownerReference)."""

    # --- I/O ---------------------------------------------------------------

    def _current(self) -> Json | None:
        namespace, name = self._owner.namespace, self._owner.name
        if self._version is None:
            found = self._store.get_virtual_service(namespace, name, KNOWN_VERSIONS[0])
            if found is not None:
                self._version = KNOWN_VERSIONS[0]
                return found
            self._version = self._served()
        return self._store.get_virtual_service(namespace, name, self._version)

    def _served(self) -> str:
        if self._version is not None:
            return self._version
        return usable_version(self._store.get_virtual_service_crd(), "istio.ownedVirtualService")

    def _write(self, routes: Routes, current: Json | None) -> None:
        problem = ownership_problem(
            current, self._owner, KIND, "istio.ownedVirtualService", "istio.virtualService"
        )
        if problem is not None:
            raise RouterError(problem)
        version = self._served()
        desired = owned_virtual_service_manifest(
            self._owner, self._service, self._hosts, routes, version
        )
        if needs_apply(current, desired):
            self._store.apply_virtual_service(version, desired)


# --- pure helpers (unit-tested) ----------------------------------------------


def owned_virtual_service_manifest(
    owner: Owner, service: OwnedVirtualService, hosts: Hosts, routes: Routes, version: str
) -> Json:
    """The whole VirtualService ``<release>`` sending ``routes``."""
    spec: Json = {"hosts": list(service.hosts)}
    if service.gateways:
        spec["gateways"] = list(service.gateways)
    spec["http"] = [_http_route(owner.name, service, hosts, routes)]
    return owned_object(f"{GROUP}/{version}", KIND, owner, service.metadata, spec)


def _destination(host: str, port: int) -> Json:
    return {"host": host, "port": {"number": port}}


def _http_route(name: str, service: OwnedVirtualService, hosts: Hosts, routes: Routes) -> Json:
    http: Json = {"name": name}
    if service.match:
        http["match"] = [match.model_dump(exclude_none=True) for match in service.match]
    if service.timeout is not None:
        http["timeout"] = service.timeout
    destinations = [
        {
            "destination": _destination(hosts.stable_service, hosts.port),
            "weight": routes.stable_weight,
        }
    ]
    if routes.canary_weight > 0:
        canary = _destination(hosts.canary_service, hosts.port)
        destinations.append({"destination": canary, "weight": routes.canary_weight})
    http["route"] = destinations
    if routes.mirror_percent > 0:
        http["mirror"] = _destination(hosts.canary_service, hosts.port)
        http["mirrorPercentage"] = {"value": routes.mirror_percent}
    return http
