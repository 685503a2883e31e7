"""Gateway API ``HTTPRoute``: weighted backendRefs and a RequestMirror filter.

Only the operator's two backendRefs (the ``<release>-stable`` and
``<release>-canary`` Services) and its own mirror filter in one rule are ever
changed; nothing else in the route is written. A write is a JSON patch of
that rule's ``backendRefs`` and ``filters`` alone, after a ``test`` that the
rule is still as read, so a concurrent edit of the rule is retried rather than
overwritten, and an edit elsewhere in the route does not disturb it.

Why a JSON patch and not server-side apply: ``spec.rules``, ``backendRefs`` and
``filters`` are atomic lists in the HTTPRoute CRD (no ``x-kubernetes-list-type``),
so the smallest part of a route a field manager can own is the whole
``spec.rules``. An apply by the operator would have to send every rule and would
own them all; the patch sends one rule's two fields. Ownership ends up the same
either way (whoever last wrote any part of ``spec.rules`` owns all of it; see
docs/gitops.md).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modelrelease.core.routes import FULL
from modelrelease.routers.router import (
    MirrorUnsupportedError,
    RouteNotFoundError,
    Routes,
    RuleNotFoundError,
    json_patch,
    write_with_retries,
)

GATEWAY_API = "gatewayAPI"
GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
PLURAL = "httproutes"
CRD_NAME = f"{PLURAL}.{GROUP}"
REQUEST_MIRROR = "RequestMirror"

Json = dict[str, Any]


class HTTPRouteStore(Protocol):
    """The few API calls this router needs (implemented in ``kube``)."""

    def get_http_route(self, namespace: str, name: str) -> Json | None: ...

    def patch_http_route(self, namespace: str, name: str, operations: list[Json]) -> Json:
        """Apply a JSON patch; raise WriteConflictError when its ``test`` fails."""
        ...

    def get_http_route_crd(self) -> Json | None: ...


@dataclass(frozen=True)
class Backends:
    """Who the operator's backendRefs are."""

    stable_service: str
    canary_service: str
    port: int


class GatewayAPIRouter:
    def __init__(
        self,
        store: HTTPRouteStore,
        namespace: str,
        route_name: str,
        backends: Backends,
        rule_name: str | None = None,
        rule_index: int | None = None,
    ):
        self._store = store
        self._rule_index_spec = rule_index
        self._namespace = namespace
        self._route_name = route_name
        self._backends = backends
        self._rule_name = rule_name
        self._mirror_percent_supported: bool | None = None

    @property
    def type(self) -> str:
        return GATEWAY_API

    def get_routes(self) -> Routes:
        route = self._read()
        rule = route["spec"]["rules"][self._rule_index(route)]
        return routes_in_rule(rule, self._backends)

    def set_routes(self, stable_weight: int, canary_weight: int, mirror_percent: int) -> None:
        percent_field = mirror_percent not in (0, FULL) or None
        if percent_field and not self._supports_mirror_percent():
            raise MirrorUnsupportedError(mirror_percent_unsupported(mirror_percent))
        desired = Routes(stable_weight, canary_weight, mirror_percent)
        self._update(lambda rule: with_routes(rule, self._backends, desired))

    def finalize(self) -> None:
        if self._store.get_http_route(self._namespace, self._route_name) is None:
            return
        self._update(lambda rule: restored(rule, self._backends))

    # --- I/O ---------------------------------------------------------------

    def _read(self) -> Json:
        route = self._store.get_http_route(self._namespace, self._route_name)
        if route is None:
            raise RouteNotFoundError(
                f"HTTPRoute {self._namespace}/{self._route_name} named in "
                "spec.traffic.gatewayAPI.httpRoute does not exist; create it or fix the name"
            )
        return route

    def _update(self, change: Any) -> None:
        def write() -> None:
            route = self._read()
            index = self._rule_index(route)
            rule = route["spec"]["rules"][index]
            new_rule = change(rule)
            if new_rule == rule:
                return
            operations = json_patch(f"/spec/rules/{index}", rule, new_rule)
            self._store.patch_http_route(self._namespace, self._route_name, operations)

        write_with_retries(write)

    def _rule_index(self, route: Json) -> int:
        return choose_rule(route, self._backends, self._rule_name, self._rule_index_spec)

    def _supports_mirror_percent(self) -> bool:
        if self._mirror_percent_supported is None:
            crd = self._store.get_http_route_crd()
            self._mirror_percent_supported = crd is not None and mirror_percent_in_crd(crd)
        return self._mirror_percent_supported


# --- pure helpers (unit-tested) ----------------------------------------------


def choose_rule(
    route: Json, backends: Backends, rule_name: str | None = None, rule_index: int | None = None
) -> int:
    """The index of the rule the operator manages.

    A rule named or numbered in the spec wins; otherwise the first rule whose
    backendRefs name the stable Service (or else the canary Service); otherwise
    the first rule.
    """
    name = route.get("metadata", {}).get("name", "")
    rules = (route.get("spec") or {}).get("rules") or []
    if not rules:
        raise RuleNotFoundError(
            f"HTTPRoute {name} has no rules; add a rule with a backendRef to Service "
            f"{backends.stable_service}"
        )
    if rule_name is not None:
        return _rule_by_name(name, rules, rule_name)
    if rule_index is not None:
        if rule_index >= len(rules):
            raise RuleNotFoundError(
                f"spec.traffic.gatewayAPI.rule is {rule_index}, but HTTPRoute {name} has "
                f"{len(rules)} rules (0-based); fix the index"
            )
        return rule_index
    for service in (backends.stable_service, backends.canary_service):
        for index, rule in enumerate(rules):
            if any(_is_service(ref, service) for ref in rule.get("backendRefs") or []):
                return index
    return 0


def _rule_by_name(route_name: str, rules: list[Json], rule_name: str) -> int:
    for index, rule in enumerate(rules):
        if rule.get("name") == rule_name:
            return index
    names = [str(rule.get("name")) for rule in rules if rule.get("name")]
    raise RuleNotFoundError(
        f"HTTPRoute {route_name} has no rule named {rule_name!r} (named rules: "
        f"{', '.join(names) or 'none'}); fix spec.traffic.gatewayAPI.rule"
    )


def routes_in_rule(rule: Mapping[str, Any], backends: Backends) -> Routes:
    refs = rule.get("backendRefs") or []
    stable = _find_ref(refs, backends.stable_service)
    canary = _find_ref(refs, backends.canary_service)
    mirror = _find_mirror(rule.get("filters") or [], backends.canary_service)
    return Routes(
        stable_weight=_weight(stable),
        canary_weight=_weight(canary),
        mirror_percent=0 if mirror is None else _mirror_percent(mirror),
    )


def with_routes(rule: Json, backends: Backends, routes: Routes) -> Json:
    """A copy of ``rule`` whose operator-owned parts say ``routes``."""
    new = copy.deepcopy(rule)
    refs: list[Json] = new.setdefault("backendRefs", [])
    _set_weight(refs, backends.stable_service, backends.port, routes.stable_weight)
    _set_weight(refs, backends.canary_service, backends.port, routes.canary_weight)
    _set_mirror(new, backends, routes.mirror_percent)
    return new


def restored(rule: Json, backends: Backends) -> Json:
    """A copy of ``rule`` as if the operator had never run a challenger."""
    new = copy.deepcopy(rule)
    refs = [
        ref for ref in new.get("backendRefs") or [] if not _is_service(ref, backends.canary_service)
    ]
    stable = _find_ref(refs, backends.stable_service)
    if stable is not None:
        stable["weight"] = FULL
    new["backendRefs"] = refs
    _set_mirror(new, backends, 0)
    return new


def mirror_percent_unsupported(percent: int) -> str:
    return (
        f"mirroring {percent}% of requests needs the HTTPRoute CRD field "
        "spec.rules[].filters[].requestMirror.percent, which the installed "
        f"{CRD_NAME} does not have; install Gateway API v1.2 or newer (experimental "
        "channel, or standard channel v1.3+), or use mirrorPercent 100"
    )


def mirror_percent_in_crd(crd: Mapping[str, Any]) -> bool:
    """Whether the served HTTPRoute version has ``requestMirror.percent``."""
    for version in crd.get("spec", {}).get("versions") or []:
        if version.get("name") != VERSION or not version.get("served"):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
        path = ("spec", "rules", "*", "filters", "*", "requestMirror", "percent")
        return _schema_has(schema, path)
    return False


def _schema_has(schema: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    node: Mapping[str, Any] = schema
    for step in path:
        if step == "*":
            node = node.get("items") or {}
        else:
            node = (node.get("properties") or {}).get(step) or {}
        if not node:
            return False
    return True


def _is_service(ref: Mapping[str, Any], service: str) -> bool:
    return (
        ref.get("name") == service
        and (ref.get("group") or "") == ""
        and (ref.get("kind") or "Service") == "Service"
    )


def _find_ref(refs: list[Json], service: str) -> Json | None:
    return next((ref for ref in refs if _is_service(ref, service)), None)


def _weight(ref: Mapping[str, Any] | None) -> int:
    if ref is None:
        return 0
    return int(ref.get("weight", 1))


def _set_weight(refs: list[Json], service: str, port: int, weight: int) -> None:
    ref = _find_ref(refs, service)
    if ref is None:
        refs.append({"name": service, "port": port, "weight": weight})
        return
    ref["weight"] = weight
    ref.setdefault("port", port)


def _is_our_mirror(item: Mapping[str, Any], canary_service: str) -> bool:
    if item.get("type") != REQUEST_MIRROR:
        return False
    return _is_service((item.get("requestMirror") or {}).get("backendRef") or {}, canary_service)


def _find_mirror(filters: list[Json], canary_service: str) -> Json | None:
    return next((item for item in filters if _is_our_mirror(item, canary_service)), None)


def _mirror_percent(item: Mapping[str, Any]) -> int:
    spec = item.get("requestMirror") or {}
    if spec.get("percent") is not None:
        return int(spec["percent"])
    fraction = spec.get("fraction")
    if fraction:
        denominator = int(fraction.get("denominator", 100)) or 100
        return round(100 * int(fraction.get("numerator", 0)) / denominator)
    return FULL


def _set_mirror(rule: Json, backends: Backends, percent: int) -> None:
    """Keep, update, add or drop the operator's mirror filter, in place.

    An existing filter is updated rather than rebuilt, so fields the API server
    defaulted (``group``, ``kind``) stay and an unchanged rule compares equal.
    """
    filters: list[Json] = rule.get("filters") or []
    ours = _find_mirror(filters, backends.canary_service)
    if percent <= 0:
        filters = [item for item in filters if item is not ours]
    elif ours is None:
        mirror: Json = {"backendRef": {"name": backends.canary_service, "port": backends.port}}
        if percent != FULL:
            mirror["percent"] = percent
        filters.append({"type": REQUEST_MIRROR, "requestMirror": mirror})
    else:
        spec = ours["requestMirror"]
        spec.pop("fraction", None)
        if percent == FULL:
            spec.pop("percent", None)
        else:
            spec["percent"] = percent
    if filters:
        rule["filters"] = filters
    else:
        rule.pop("filters", None)
