"""What a data plane does with a route: from route objects to backend tables.

Pure functions over the JSON shape of Kubernetes objects. An entry point is an
HTTPRoute, an Istio VirtualService or a Service carrying the annotation
``simulator.modelrelease.dev/rate``. Every simulated user request is the same
request, ``POST /v1/chat/completions`` without headers or query parameters
(the path can be changed with ``simulator.modelrelease.dev/path``); the route
rule it matches decides the weighted backends and the mirrors, the way a
gateway or sidecar would:

- HTTPRoute: the matching rule of highest Gateway API precedence (exact path,
  then longest prefix, then method, ...; ties go to the earlier rule); its
  ``backendRefs`` weighted (default weight 1, weight 0 gets nothing) and its
  ``RequestMirror`` filters (rule-level, and backend-level for requests sent to
  that backend) with ``percent`` or ``fraction`` (absent: every request).
- VirtualService: the first ``http`` route that matches; ``route[].destination``
  weighted (a lone destination gets everything, otherwise a missing weight is
  0); ``mirror`` with ``mirrorPercentage`` (absent: 100%), or ``mirrors``.
- Service: requests spread evenly over the ready pods it selects (mesh-less).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RATE_ANNOTATION = "simulator.modelrelease.dev/rate"
PATH_ANNOTATION = "simulator.modelrelease.dev/path"
DEFAULT_PATH = "/v1/chat/completions"
DEFAULT_METHOD = "POST"

# HTTP status codes the simulated data plane answers with when no pod does.
STATUS_NO_ROUTE = 404  # no rule matches the request
STATUS_INVALID_BACKEND = 500  # no backend with weight, or one that is not a known Service
STATUS_NO_ENDPOINTS = 503  # the backend Service has no ready pods

GATEWAY_GROUP = "gateway.networking.k8s.io"
ISTIO_GROUP = "networking.istio.io"


@dataclass(frozen=True, order=True)
class ServiceRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, order=True)
class EntryPoint:
    """The object whose annotation asks for traffic."""

    kind: str  # HTTPRoute, VirtualService or Service
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Mirror:
    """Copy this fraction of the requests to a Service; its answers are dropped."""

    target: ServiceRef | None  # None: a reference that is not a Service
    fraction: float
    label: str  # the name as written, for metrics and messages


@dataclass(frozen=True)
class Backend:
    target: ServiceRef | None  # None: a reference that is not a Service
    weight: float
    label: str
    mirrors: tuple[Mirror, ...] = ()


@dataclass(frozen=True)
class RouteTable:
    """Where an entry point's requests go."""

    entry: EntryPoint
    rate: float  # requests per second
    backends: tuple[Backend, ...] = ()
    mirrors: tuple[Mirror, ...] = ()
    # When set, every request is answered with this status and nothing else happens.
    fixed_status: int | None = None
    notes: tuple[str, ...] = ()  # what a person should know (unresolvable hosts, ...)


@dataclass(frozen=True)
class SimulatedRequest:
    method: str = DEFAULT_METHOD
    path: str = DEFAULT_PATH


# --- choices ----------------------------------------------------------------


def choose_backend(backends: Sequence[Backend], rng: random.Random) -> Backend | None:
    """A backend drawn with probability proportional to its weight; None if all are 0."""
    total = sum(backend.weight for backend in backends if backend.weight > 0)
    if total <= 0:
        return None
    point = rng.random() * total
    chosen: Backend | None = None
    for backend in backends:
        if backend.weight <= 0:
            continue
        chosen = backend
        point -= backend.weight
        if point < 0:
            break
    return chosen


def is_mirrored(mirror: Mirror, rng: random.Random) -> bool:
    return mirror.fraction >= 1.0 or (mirror.fraction > 0 and rng.random() < mirror.fraction)


# --- annotations ------------------------------------------------------------


def parse_rate(text: str) -> float:
    """The rate annotation: a non-negative number of requests per second."""
    try:
        rate = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{RATE_ANNOTATION}: expected requests per second, got {text!r}") from None
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"{RATE_ANNOTATION}: expected a non-negative number, got {text!r}")
    return rate


def entry_rate(obj: Mapping[str, Any]) -> str | None:
    """The raw rate annotation of an object, or None when it is not an entry point."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    value = annotations.get(RATE_ANNOTATION)
    return None if value is None else str(value)


def request_for(obj: Mapping[str, Any]) -> SimulatedRequest:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return SimulatedRequest(path=str(annotations.get(PATH_ANNOTATION) or DEFAULT_PATH))


# --- Gateway API HTTPRoute ----------------------------------------------------


def http_route_table(route: Mapping[str, Any], rate: float) -> RouteTable:
    meta = route.get("metadata", {})
    entry = EntryPoint("HTTPRoute", meta.get("namespace", "default"), meta.get("name", ""))
    request = request_for(route)
    rules = (route.get("spec") or {}).get("rules") or []
    rule = _best_http_rule(rules, request)
    if rule is None:
        note = f"no rule of {entry} matches {request.method} {request.path}"
        return RouteTable(entry, rate, fixed_status=STATUS_NO_ROUTE, notes=(note,))
    backends = tuple(
        Backend(
            target=_gateway_service(ref, entry.namespace),
            weight=float(ref.get("weight", 1)),
            label=str(ref.get("name", "")),
            mirrors=_gateway_mirrors(ref.get("filters") or [], entry.namespace),
        )
        for ref in rule.get("backendRefs") or []
    )
    mirrors = _gateway_mirrors(rule.get("filters") or [], entry.namespace)
    notes = tuple(
        f"{entry}: backend {backend.label!r} is not a core Service; requests to it fail with 500"
        for backend in backends
        if backend.target is None
    )
    return RouteTable(entry, rate, backends, mirrors, notes=notes)


def _best_http_rule(
    rules: Sequence[Mapping[str, Any]], request: SimulatedRequest
) -> Mapping[str, Any] | None:
    best: Mapping[str, Any] | None = None
    best_key: tuple[int, int, int, int, int] | None = None
    for rule in rules:
        matches = rule.get("matches") or [{}]
        for match in matches:
            key = _http_match_key(match, request)
            if key is not None and (best_key is None or key > best_key):
                best, best_key = rule, key
    return best


def _http_match_key(
    match: Mapping[str, Any], request: SimulatedRequest
) -> tuple[int, int, int, int, int] | None:
    """None when the match does not match; else its Gateway API precedence (larger wins)."""
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    path_type = path.get("type", "PathPrefix")
    value = str(path.get("value", "/"))
    exact, prefix_length = 0, -1
    if path_type == "Exact":
        if request.path != value:
            return None
        exact = 1
    elif path_type == "PathPrefix":
        if not _path_has_prefix(request.path, value):
            return None
        prefix_length = len(value)
    elif path_type == "RegularExpression":
        if not _full_match(value, request.path):
            return None
    else:
        return None
    method = match.get("method")
    if method is not None and method != request.method:
        return None
    # The simulated request carries no headers or query parameters.
    headers = match.get("headers") or []
    query = match.get("queryParams") or []
    if headers or query:
        return None
    return (exact, prefix_length, int(method is not None), len(headers), len(query))


def _path_has_prefix(path: str, prefix: str) -> bool:
    """Gateway API prefixes match whole path elements: /v1 matches /v1/x, not /v1x."""
    trimmed = prefix.rstrip("/")
    if not trimmed:
        return True
    return path == trimmed or path.startswith(trimmed + "/")


def _full_match(pattern: str, text: str) -> bool:
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error:
        return False


def _gateway_service(ref: Mapping[str, Any], namespace: str) -> ServiceRef | None:
    group = ref.get("group") or ""
    kind = ref.get("kind") or "Service"
    if group != "" or kind != "Service" or not ref.get("name"):
        return None
    return ServiceRef(str(ref.get("namespace") or namespace), str(ref["name"]))


def _gateway_mirrors(filters: Sequence[Mapping[str, Any]], namespace: str) -> tuple[Mirror, ...]:
    mirrors = []
    for item in filters:
        if item.get("type") != "RequestMirror":
            continue
        spec = item.get("requestMirror") or {}
        ref = spec.get("backendRef") or {}
        mirrors.append(
            Mirror(
                target=_gateway_service(ref, namespace),
                fraction=gateway_mirror_fraction(spec),
                label=str(ref.get("name", "")),
            )
        )
    return tuple(mirrors)


def gateway_mirror_fraction(spec: Mapping[str, Any]) -> float:
    """The share of requests a RequestMirror filter copies: percent, fraction, or all."""
    if spec.get("percent") is not None:
        return _clamp(float(spec["percent"]) / 100.0)
    fraction = spec.get("fraction")
    if fraction is not None:
        denominator = float(fraction.get("denominator", 100))
        if denominator <= 0:
            return 0.0
        return _clamp(float(fraction.get("numerator", 0)) / denominator)
    return 1.0


# --- Istio VirtualService -----------------------------------------------------


def virtual_service_table(service: Mapping[str, Any], rate: float) -> RouteTable:
    meta = service.get("metadata", {})
    entry = EntryPoint("VirtualService", meta.get("namespace", "default"), meta.get("name", ""))
    request = request_for(service)
    routes = (service.get("spec") or {}).get("http") or []
    chosen = next((r for r in routes if _istio_route_matches(r, request)), None)
    if chosen is None:
        note = f"no http route of {entry} matches {request.method} {request.path}"
        return RouteTable(entry, rate, fixed_status=STATUS_NO_ROUTE, notes=(note,))
    if not chosen.get("route"):
        status = _istio_fixed_status(chosen)
        return RouteTable(entry, rate, fixed_status=status, notes=(f"{entry}: no route",))
    destinations = chosen["route"]
    notes: list[str] = []
    backends = []
    for destination in destinations:
        host = str((destination.get("destination") or {}).get("host", ""))
        default_weight = 100 if len(destinations) == 1 else 0
        backends.append(
            Backend(
                target=istio_host_service(host, entry.namespace),
                weight=float(destination.get("weight", default_weight)),
                label=host,
            )
        )
    mirrors = _istio_mirrors(chosen, entry.namespace)
    unresolved = [b.label for b in backends if b.target is None]
    unresolved += [m.label for m in mirrors if m.target is None]
    for host in unresolved:
        notes.append(
            f"{entry}: host {host!r} is neither a short Service name nor"
            " <service>.<namespace>.svc.cluster.local; requests to it fail with 500"
        )
    return RouteTable(entry, rate, tuple(backends), mirrors, notes=tuple(notes))


def istio_host_service(host: str, namespace: str) -> ServiceRef | None:
    """The Service an Istio destination host names, as the sidecar resolves it.

    A short name is relative to the VirtualService's namespace; a name with dots
    is taken as written, so only ``<service>.<namespace>.svc[.<cluster domain>]``
    names a Service (``name.namespace`` is not expanded by Istio).
    """
    if not host or "*" in host:
        return None
    parts = host.split(".")
    if len(parts) == 1:
        return ServiceRef(namespace, host)
    if len(parts) >= 3 and parts[2] == "svc" and parts[0] and parts[1]:
        return ServiceRef(parts[1], parts[0])
    return None


def _istio_route_matches(route: Mapping[str, Any], request: SimulatedRequest) -> bool:
    matches = route.get("match") or []
    return not matches or any(_istio_match(match, request) for match in matches)


def _istio_match(match: Mapping[str, Any], request: SimulatedRequest) -> bool:
    # Conditions on things the simulated request does not carry never match.
    for absent in ("headers", "queryParams", "authority", "scheme"):
        if match.get(absent):
            return False
    uri = match.get("uri")
    if uri and not _istio_string_match(uri, request.path, bool(match.get("ignoreUriCase"))):
        return False
    method = match.get("method")
    return not (method and not _istio_string_match(method, request.method, False))


def _istio_string_match(condition: Mapping[str, Any], value: str, ignore_case: bool) -> bool:
    if ignore_case:
        value = value.lower()
    if "exact" in condition:
        expected = str(condition["exact"])
        return value == (expected.lower() if ignore_case else expected)
    if "prefix" in condition:
        expected = str(condition["prefix"])
        return value.startswith(expected.lower() if ignore_case else expected)
    if "regex" in condition:
        return _full_match(str(condition["regex"]), value)
    return True


def _istio_fixed_status(route: Mapping[str, Any]) -> int:
    if route.get("directResponse"):
        return int(route["directResponse"].get("status", 200))
    if route.get("redirect"):
        return int(route["redirect"].get("redirectCode", 301))
    return STATUS_INVALID_BACKEND


def _istio_mirrors(route: Mapping[str, Any], namespace: str) -> tuple[Mirror, ...]:
    mirrors = []
    single = route.get("mirror")
    if single:
        host = str(single.get("host", ""))
        if route.get("mirrorPercentage") is not None:
            percent = float(route["mirrorPercentage"].get("value", 0.0))
        elif route.get("mirrorPercent") is not None:  # deprecated integer form
            percent = float(route["mirrorPercent"])
        else:
            percent = 100.0
        mirrors.append(Mirror(istio_host_service(host, namespace), _clamp(percent / 100), host))
    for item in route.get("mirrors") or []:
        host = str((item.get("destination") or {}).get("host", ""))
        percentage = item.get("percentage")
        percent = 100.0 if percentage is None else float(percentage.get("value", 0.0))
        mirrors.append(Mirror(istio_host_service(host, namespace), _clamp(percent / 100), host))
    return tuple(mirrors)


# --- Service (mesh-less) --------------------------------------------------------


def service_table(service: Mapping[str, Any], rate: float) -> RouteTable:
    meta = service.get("metadata", {})
    entry = EntryPoint("Service", meta.get("namespace", "default"), meta.get("name", ""))
    target = ServiceRef(entry.namespace, entry.name)
    return RouteTable(entry, rate, (Backend(target, 1.0, entry.name),))


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


# --- all entry points -----------------------------------------------------------


def route_tables(
    http_routes: Sequence[Mapping[str, Any]],
    virtual_services: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
) -> tuple[list[RouteTable], list[str]]:
    """The table of every annotated object, and messages about the ones that are unusable."""
    tables: list[RouteTable] = []
    problems: list[str] = []
    builders = (
        (http_routes, http_route_table, "HTTPRoute"),
        (virtual_services, virtual_service_table, "VirtualService"),
        (services, service_table, "Service"),
    )
    for objects, build, kind in builders:
        for obj in objects:
            raw_rate = entry_rate(obj)
            if raw_rate is None:
                continue
            meta = obj.get("metadata", {})
            where = f"{kind} {meta.get('namespace')}/{meta.get('name')}"
            try:
                rate = parse_rate(raw_rate)
                tables.append(build(obj, rate))
            except (ValueError, TypeError, AttributeError) as error:
                problems.append(f"{where}: ignored: {error}")
    tables.sort(key=lambda table: table.entry)
    return tables, problems
