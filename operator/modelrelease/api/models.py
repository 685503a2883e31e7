"""Pydantic models of the ModelRelease API (group ``modelrelease.dev``, version ``v1alpha1``).

These models are the one source of truth: the CRD schemas in ``crds/`` and the
field reference in ``docs/api.md`` are generated from them (``make crds``).

Conventions:
- Attributes are snake_case, the wire format is camelCase (``alias_generator``);
  models accept either spelling and dump camelCase (``serialize_by_alias``).
- Spec models forbid unknown fields; status models ignore them, so a status
  written by a newer operator never stops an older one from resuming.
- Every rule the API server enforces with CEL (``x-kubernetes-validations``) is
  also enforced here by a validator with the same message, so the operator and
  the unit tests see exactly what ``kubectl apply`` would say.
- Durations are strings (``30s``, ``5m``, ``1h30m``); turn them into seconds with
  :func:`modelrelease.api.durations.parse_duration`.

Status is written with ``status.model_dump(mode="json", exclude_none=True)``;
timestamps then serialise as RFC 3339 UTC with whole seconds, as Kubernetes does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from modelrelease.api.constants import (
    DEFAULT_MARGIN,
    Better,
    CapacityMode,
    ConditionStatus,
    Decision,
    MetricKind,
    NoDataPolicy,
    NotificationType,
    OnErrorAction,
    OnInconclusive,
    Outcome,
    Phase,
    RouterType,
    StageType,
    TemplateKind,
    Verdict,
)
from modelrelease.api.durations import Duration, parse_duration

# ---------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_MAX_LENGTH = 63
RESOURCE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
RESOURCE_NAME_MAX_LENGTH = 253
ARG_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
QUERY_MAX_LENGTH = 8192
URL_MAX_LENGTH = 2048
MESSAGE_MAX_LENGTH = 1024
MAX_STAGES = 20
MAX_CANARY_STEPS = 20
MAX_SLOS = 32
MAX_INCONCLUSIVE = 10000
MAX_COMPARISON_METRICS = 16
MAX_TEMPLATE_ARGS = 32
MAX_METADATA_ENTRIES = 64
MAX_RECEIVERS = 10
METADATA_VALUE_MAX_LENGTH = 1024
# A release names its Deployments `<name>-<revision>` (10 hex characters), and its
# Services `<name>-stable` and `<name>-canary`; those and the label values must fit in
# a 63-character DNS label, and a Service name must start with a letter.
RELEASE_NAME_MAX_LENGTH = DNS_LABEL_MAX_LENGTH - len("-") - 10
RELEASE_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# The built-in query variables (see modelrelease.metrics.templating); template
# arguments may not reuse these names.
BUILTIN_QUERY_VARIABLES = (
    "namespace",
    "release",
    "revision",
    "champion",
    "challenger",
    "interval",
    "revisionPods",
)

# Messages shared by the CEL rules and the pydantic validators, so both layers
# tell the user the same thing.
MSG_ONE_ROUTER = "set exactly one traffic router: gatewayAPI, istio or none"
MSG_ONE_STAGE_TYPE = (
    "each stage sets exactly one of shadow, canary, championChallenger, approval or webhook"
)
MSG_SHADOW_NEEDS_MIRROR = (
    "a shadow stage mirrors requests, which needs traffic.gatewayAPI or traffic.istio; "
    "traffic.none cannot mirror: choose a router or remove the shadow stage"
)
MSG_COMPARISON_NEEDS_ANALYSIS = (
    "championChallenger stages and shadow comparisons query Prometheus: "
    "set spec.analysis.prometheus"
)
MSG_UNIQUE_STAGE_NAMES = "stage names must be unique"
MSG_UNIQUE_SLO_NAMES = "SLO names must be unique"
MSG_UNIQUE_METRIC_NAMES = "comparison metric names must be unique"
MSG_UNIQUE_ARG_NAMES = "template argument names must be unique"
MSG_WEIGHTS_INCREASE = "canary step weights must strictly increase (for example 5, 25, 50)"
MSG_QUERY_XOR_TEMPLATE = "set exactly one of query or templateRef"
MSG_ARGS_NEED_TEMPLATE = "args are only used with templateRef; remove them or use a template"
MSG_THRESHOLD_NEEDED = "set min, max or both: the threshold the value must stay within"
MSG_MIN_LE_MAX = "min must be less than or equal to max"
MSG_MIN_REQUESTS_QUERY = (
    "minRequests needs requestsQuery (or a templateRef whose template has a requestsQuery)"
)
MSG_GUARD_COUNTS = "set both bad and total (the guard's counters) or neither"
MSG_RATIO_FIELDS = "a ratio metric needs bad and total queries and no query or threshold"
MSG_HISTOGRAM_FIELDS = "a histogram metric needs query and threshold and no bad or total"
MSG_DISTRIBUTION_FIELDS = (
    "a distribution metric needs query and no threshold, bad or total (it compares every bucket)"
)
MSG_CA_OR_INSECURE = "set either caSecretRef or insecureSkipVerify, not both"
MSG_ONE_RECEIVER_TYPE = "each receiver sets exactly one of slack, teams or webhook"
MSG_UNIQUE_RECEIVER_NAMES = "receiver names must be unique"
MSG_HTTP_URL = "must be an absolute http or https URL, for example https://host:8080/path"
MSG_ARG_SHADOWS_BUILTIN = "argument names must differ from the built-in variables " + ", ".join(
    BUILTIN_QUERY_VARIABLES
)
MSG_RULE = "rule is a rule index from 0 to 15 or a rule name of 1 to 253 characters"
MSG_RELEASE_NAME_LENGTH = (
    f"metadata.name must be at most {RELEASE_NAME_MAX_LENGTH} characters: the release's "
    "Deployments are named after it plus '-' and a 10-character revision, within 63"
)
MSG_RELEASE_NAME_FORMAT = (
    "metadata.name must start with a lowercase letter and hold only lowercase letters, "
    "digits and '-' (no dots): it names the Services NAME-stable and NAME-canary"
)


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry. (No ``messageExpression`` with the offending
    values: the API server estimates ``string()`` of a number as unbounded and refuses it.)"""
    entry = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """The ``json_schema_extra`` carrying CEL rules for a model or a field."""
    return {"x-kubernetes-validations": list(rules)}


def _check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} {MSG_HTTP_URL}")
    return url


HTTP_URL_RULE = (
    "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''"
)

HttpURL = Annotated[
    str,
    AfterValidator(_check_http_url),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": URL_MAX_LENGTH,
            "x-kubernetes-validations": [cel(HTTP_URL_RULE, MSG_HTTP_URL)],
        }
    ),
]
"""An absolute http(s) URL."""

DnsLabel = Annotated[
    str, Field(min_length=1, max_length=DNS_LABEL_MAX_LENGTH, pattern=DNS_LABEL_PATTERN)
]
ResourceName = Annotated[
    str,
    Field(min_length=1, max_length=RESOURCE_NAME_MAX_LENGTH, pattern=RESOURCE_NAME_PATTERN),
]
Query = Annotated[str, Field(min_length=1, max_length=QUERY_MAX_LENGTH)]
StringMap = Annotated[
    dict[str, Annotated[str, Field(max_length=METADATA_VALUE_MAX_LENGTH)]],
    Field(max_length=MAX_METADATA_ENTRIES),
]


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(_format_time, return_type=str, when_used="json")]
"""A point in time; JSON form is RFC 3339 UTC (``2026-01-02T03:04:05Z``), with microseconds
when it has them, so clocks that decide anything keep sub-second precision across restarts."""


def _duplicates(names: Iterable[str | None]) -> list[str]:
    seen: set[str] = set()
    duplicates: list[str] = []
    for name in names:
        if name is None:
            continue
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    return duplicates


def _require_unique(names: Iterable[str | None], message: str) -> None:
    duplicates = _duplicates(names)
    if duplicates:
        raise ValueError(f"{message}; repeated: {', '.join(duplicates)}")


def _unique_names_rule(item_has_optional_name: bool = False) -> str:
    if item_has_optional_name:
        return "self.all(x, !has(x.name) || self.exists_one(y, has(y.name) && y.name == x.name))"
    return "self.all(x, self.exists_one(y, y.name == x.name))"


class _SpecModel(BaseModel):
    """Base of everything a user writes: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class _StatusModel(BaseModel):
    """Base of everything the operator writes: camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )


# ---------------------------------------------------------------------------
# spec.model, spec.template
# ---------------------------------------------------------------------------


class ModelSpec(_SpecModel):
    """The model being released. Its name, version, URI and metadata are recorded in
    status and in the release history, so every served version can be traced back."""

    name: str = Field(
        min_length=1,
        max_length=RESOURCE_NAME_MAX_LENGTH,
        description="Name of the model, for example `chat-8b`.",
    )
    version: str = Field(
        min_length=1,
        max_length=128,
        description='Version of the model, for example `"2.1.0"` (quote numbers in YAML).',
    )
    uri: str | None = Field(
        default=None,
        min_length=1,
        max_length=URL_MAX_LENGTH,
        description=(
            "Where the model's weights live (`s3://`, `gs://`, `hf://`, `pvc://`, ...). "
            "Passed to every container and init container of the pod template as the "
            "environment variable `MODEL_URI`."
        ),
    )
    metadata: StringMap = Field(
        default_factory=dict,
        description=(
            "Free-form lineage of the model (dataset, training commit, evaluation report, "
            "owner): string keys and string values, kept in the release history."
        ),
    )


def _check_pod_template(template: dict[str, Any]) -> dict[str, Any]:
    spec = template.get("spec")
    if not isinstance(spec, dict):
        raise ValueError("template.spec is required: a pod spec with at least one container")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise ValueError("template.spec.containers must list at least one container")
    metadata = template.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError("template.metadata must be an object with labels and annotations")
    return template


_STRING_MAP_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
POD_TEMPLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "metadata": {
            "type": "object",
            "description": "Labels and annotations of the pods (the operator adds its own).",
            "properties": {
                "labels": {**_STRING_MAP_SCHEMA, "description": "Labels of the pods."},
                "annotations": {**_STRING_MAP_SCHEMA, "description": "Annotations of the pods."},
            },
            "x-kubernetes-preserve-unknown-fields": True,
        },
        "spec": {
            "type": "object",
            "description": "A Kubernetes PodSpec (containers, GPU limits, probes, volumes).",
            "required": ["containers"],
            "properties": {
                "containers": {
                    "type": "array",
                    "minItems": 1,
                    "description": "The pod's containers; at least one.",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
            "x-kubernetes-preserve-unknown-fields": True,
        },
    },
}

PodTemplate = Annotated[
    dict[str, Any],
    AfterValidator(_check_pod_template),
    WithJsonSchema(POD_TEMPLATE_SCHEMA),
]


# ---------------------------------------------------------------------------
# spec.capacity, spec.rollback
# ---------------------------------------------------------------------------


class CapacitySpec(_SpecModel):
    """How much GPU capacity a release may use next to the champion."""

    mode: CapacityMode = Field(
        default=CapacityMode.CONSERVE,
        description=(
            "`conserve`: total replicas stay within `replicas + maxSurge`; the champion is "
            "scaled down as weight moves to the challenger and back up on rollback (for "
            "clusters without room for a second copy). `surge`: the challenger is added "
            "next to a full champion."
        ),
    )
    max_surge: int = Field(
        default=1,
        ge=0,
        le=1000,
        description=(
            "In `conserve` mode, how many replicas above `replicas` may exist at once. "
            "0 replaces champion pods one by one. Ignored in `surge` mode."
        ),
    )
    autoscaled_nodes: bool = Field(
        default=False,
        description=(
            "Set when the cluster adds GPU nodes for Pending pods (cluster-autoscaler, "
            "Karpenter): the operator then creates the challenger's pods without first "
            "checking that they fit on free GPUs (an autoscaler acts only on pods that "
            "exist) and lets Unschedulable pods wait for their node; `progressDeadline` "
            "still bounds the wait. Left false, a challenger that does not fit is held with "
            "the condition InsufficientGPU, and a pod the scheduler refuses for 30s is "
            "rolled back."
        ),
    )


class RollbackSpec(_SpecModel):
    """What happens when a challenger fails."""

    automatic: bool = Field(
        default=True,
        description=(
            "Roll back at once on a failed check, a lost comparison, a missed progress "
            "deadline or a crash-looping challenger. When false the release stops in phase "
            "Failed with the challenger still in place, for a person to decide "
            "(`kubectl modelrelease abort` or `promote`)."
        ),
    )


# ---------------------------------------------------------------------------
# spec.traffic
# ---------------------------------------------------------------------------

_RULE_CEL = (
    "type(self) == int ? (self >= 0 && self <= 15) : (self.size() >= 1 && self.size() <= 253)"
)


def _check_rule(value: int | str | None) -> int | str | None:
    if isinstance(value, int) and not 0 <= value <= 15:
        raise ValueError(MSG_RULE)
    if isinstance(value, str) and not 1 <= len(value) <= RESOURCE_NAME_MAX_LENGTH:
        raise ValueError(MSG_RULE)
    return value


RuleSelector = Annotated[
    int | str,
    AfterValidator(_check_rule),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "x-kubernetes-validations": [cel(_RULE_CEL, MSG_RULE)],
        }
    ),
]


MAX_PARENT_REFS = 32
MAX_HOSTNAMES = 16
MAX_ROUTE_MATCHES = 8
MAX_MATCH_VALUES = 16
GATEWAY_DURATION_PATTERN = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"
HOSTNAME_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MSG_ONE_GATEWAY_ROUTE = (
    "set exactly one of httpRoute (an HTTPRoute you own) or ownedRoute (an HTTPRoute the "
    "operator creates and owns)"
)
MSG_RULE_NEEDS_HTTP_ROUTE = (
    "rule picks a rule of an existing HTTPRoute (httpRoute); an ownedRoute has one rule"
)

GatewayDuration = Annotated[str, Field(max_length=32, pattern=GATEWAY_DURATION_PATTERN)]
"""A Gateway API duration (``10s``, ``1m30s``, ``500ms``), as ``HTTPRoute.spec.rules[].timeouts``
takes it; unlike ``Duration`` it has no fractions and no ``us``/``ns`` units."""


class ParentReference(_SpecModel):
    """A Gateway (or Gateway listener) the route attaches to, as in `HTTPRoute.spec.parentRefs`."""

    group: str | None = Field(
        default=None,
        max_length=RESOURCE_NAME_MAX_LENGTH,
        description="API group of the parent; default `gateway.networking.k8s.io`.",
    )
    kind: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="Kind of the parent; default `Gateway`.",
    )
    namespace: DnsLabel | None = Field(
        default=None,
        description="Namespace of the parent; default the release's namespace.",
    )
    name: ResourceName = Field(description="Name of the parent (the Gateway).")
    section_name: DnsLabel | None = Field(
        default=None, description="A listener of the Gateway, by name."
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="A listener of the Gateway, by port."
    )


class PathMatch(_SpecModel):
    """A path match, as in `HTTPRoute.spec.rules[].matches[].path`."""

    type: Literal["Exact", "PathPrefix", "RegularExpression"] = Field(
        default="PathPrefix", description="How `value` is matched."
    )
    value: str = Field(default="/", min_length=1, max_length=1024, description="The path.")


class ValueMatch(_SpecModel):
    """A header or query parameter match."""

    type: Literal["Exact", "RegularExpression"] = Field(
        default="Exact", description="How `value` is matched."
    )
    name: str = Field(min_length=1, max_length=256, description="Header or parameter name.")
    value: str = Field(max_length=4096, description="The value to match.")


class RouteMatch(_SpecModel):
    """One way a request can match the route (all of its conditions must hold), as in
    `HTTPRoute.spec.rules[].matches[]`."""

    path: PathMatch | None = Field(default=None, description="Default: prefix `/`.")
    headers: list[ValueMatch] | None = Field(
        default=None, max_length=MAX_MATCH_VALUES, description="Headers that must match."
    )
    query_params: list[ValueMatch] | None = Field(
        default=None, max_length=MAX_MATCH_VALUES, description="Query parameters that must match."
    )
    method: (
        Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
        | None
    ) = Field(default=None, description="The HTTP method.")


class RouteTimeouts(_SpecModel):
    """Timeouts of the route's rule, as in `HTTPRoute.spec.rules[].timeouts` (Gateway API
    v1.1+, standard channel)."""

    request: GatewayDuration | None = Field(
        default=None, description="The whole request, as the client sees it (`0s`: none)."
    )
    backend_request: GatewayDuration | None = Field(
        default=None, description="One request from the gateway to a backend."
    )


class RouteMetadata(_SpecModel):
    """Labels and annotations of the route the operator creates."""

    labels: StringMap | None = Field(
        default=None,
        description=(
            "Labels of the route. Do not put your GitOps tool's tracking label here "
            "(`app.kubernetes.io/instance` for Argo CD): the route is not in Git, and Argo "
            "CD would prune it."
        ),
    )
    annotations: StringMap | None = Field(
        default=None,
        description=(
            "Annotations of the route. Not Argo CD's tracking annotation "
            "(`argocd.argoproj.io/tracking-id`), for the same reason."
        ),
    )


class OwnedHTTPRoute(_SpecModel):
    """An HTTPRoute the operator creates, owns and keeps as written here: named after the
    release, in its namespace, with an ownerReference to it (deleted with it), and one rule
    whose backends are `<release>-stable` and `<release>-canary`. Git (or `kubectl apply`)
    then holds only the ModelRelease, and nothing else writes the route."""

    parent_refs: list[ParentReference] = Field(
        min_length=1,
        max_length=MAX_PARENT_REFS,
        description="The Gateways the route attaches to.",
    )
    hostnames: (
        list[Annotated[str, Field(min_length=1, max_length=253, pattern=HOSTNAME_PATTERN)]] | None
    ) = Field(
        default=None,
        max_length=MAX_HOSTNAMES,
        description="Host names the route answers; default every host of the listener.",
    )
    matches: list[RouteMatch] | None = Field(
        default=None,
        max_length=MAX_ROUTE_MATCHES,
        description="Requests the rule takes; default every request (path prefix `/`).",
    )
    timeouts: RouteTimeouts | None = Field(default=None, description="Timeouts of the rule.")
    metadata: RouteMetadata | None = Field(
        default=None, description="Labels and annotations of the route."
    )


class GatewayAPIRouter(_SpecModel):
    """Route through a Gateway API `HTTPRoute` in the release's namespace: one you own
    (`httpRoute`), or one the operator creates and owns (`ownedRoute`, recommended under
    GitOps)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.httpRoute) != has(self.ownedRoute)", MSG_ONE_GATEWAY_ROUTE),
            cel("!has(self.rule) || has(self.httpRoute)", MSG_RULE_NEEDS_HTTP_ROUTE),
        )
    )

    http_route: ResourceName | None = Field(
        default=None,
        description=(
            "Name of an existing HTTPRoute in the release's namespace. The operator manages "
            "only its own backends (`<release>-stable`, `<release>-canary`) and the mirror "
            "filter in one rule; everything else in the route is preserved. Under Argo CD "
            "this needs `ignoreDifferences` (see the README)."
        ),
    )
    owned_route: OwnedHTTPRoute | None = Field(
        default=None,
        description=(
            "Let the operator create and own the HTTPRoute `<release>` from this "
            "description, so Git holds only the ModelRelease."
        ),
    )
    rule: RuleSelector | None = Field(
        default=None,
        description=(
            "With `httpRoute`: the rule to manage, a 0-based index or the rule's `name`. When "
            "omitted, the rule whose backendRefs already name the `<release>-stable` Service, "
            "else the first rule."
        ),
    )

    @model_validator(mode="after")
    def _one_route(self) -> Self:
        if (self.http_route is None) == (self.owned_route is None):
            raise ValueError(MSG_ONE_GATEWAY_ROUTE)
        if self.rule is not None and self.http_route is None:
            raise ValueError(MSG_RULE_NEEDS_HTTP_ROUTE)
        return self


MSG_ONE_VIRTUAL_SERVICE = (
    "set exactly one of virtualService (a VirtualService you own) or ownedVirtualService "
    "(a VirtualService the operator creates and owns)"
)
MSG_ROUTE_NEEDS_VIRTUAL_SERVICE = (
    "route picks an HTTP route of an existing VirtualService (virtualService); an "
    "ownedVirtualService has one HTTP route"
)
MSG_ONE_STRING_MATCH = "set exactly one of exact, prefix or regex"
ISTIO_DURATION_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,9})?s$"


class StringMatch(_SpecModel):
    """How a string is matched, as in Istio's `StringMatch`: exactly one field."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.exact) ? 1 : 0) + (has(self.prefix) ? 1 : 0) + "
                "(has(self.regex) ? 1 : 0) == 1",
                MSG_ONE_STRING_MATCH,
            )
        )
    )

    exact: str | None = Field(default=None, max_length=4096, description="The whole value.")
    prefix: str | None = Field(default=None, max_length=4096, description="A prefix.")
    regex: str | None = Field(default=None, max_length=4096, description="An RE2 expression.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError(MSG_ONE_STRING_MATCH)
        return self


class IstioRouteMatch(_SpecModel):
    """One way a request can match (all of its conditions must hold), as in Istio's
    `HTTPMatchRequest`."""

    uri: StringMatch | None = Field(default=None, description="The request path.")
    headers: dict[str, StringMatch] | None = Field(
        default=None, max_length=MAX_MATCH_VALUES, description="Headers that must match."
    )
    query_params: dict[str, StringMatch] | None = Field(
        default=None, max_length=MAX_MATCH_VALUES, description="Query parameters that must match."
    )
    method: StringMatch | None = Field(default=None, description="The HTTP method.")


class OwnedVirtualService(_SpecModel):
    """A VirtualService the operator creates, owns and keeps as written here: named after
    the release, in its namespace, with an ownerReference to it, and one HTTP route whose
    destinations are `<release>-stable` and `<release>-canary`."""

    hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        min_length=1, max_length=MAX_HOSTNAMES, description="The hosts it routes."
    )
    gateways: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None,
        max_length=MAX_PARENT_REFS,
        description=(
            "Gateways (`<namespace>/<name>`) and `mesh` for sidecars; default: sidecars only."
        ),
    )
    match: list[IstioRouteMatch] | None = Field(
        default=None,
        max_length=MAX_ROUTE_MATCHES,
        description="Requests the route takes; default every request.",
    )
    timeout: str | None = Field(
        default=None,
        max_length=32,
        pattern=ISTIO_DURATION_PATTERN,
        description="Timeout of a request, in seconds as Istio takes it (`30s`, `1.5s`).",
    )
    metadata: RouteMetadata | None = Field(
        default=None, description="Labels and annotations of the VirtualService."
    )


class IstioRouter(_SpecModel):
    """Route through an Istio `VirtualService` in the release's namespace: one you own
    (`virtualService`), or one the operator creates and owns (`ownedVirtualService`)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.virtualService) != has(self.ownedVirtualService)",
                MSG_ONE_VIRTUAL_SERVICE,
            ),
            cel("!has(self.route) || has(self.virtualService)", MSG_ROUTE_NEEDS_VIRTUAL_SERVICE),
        )
    )

    virtual_service: ResourceName | None = Field(
        default=None,
        description=(
            "Name of an existing VirtualService in the release's namespace. Under Argo CD "
            "this needs `ignoreDifferences` (see the README)."
        ),
    )
    owned_virtual_service: OwnedVirtualService | None = Field(
        default=None,
        description=(
            "Let the operator create and own the VirtualService `<release>` from this "
            "description, so Git holds only the ModelRelease."
        ),
    )
    route: str | None = Field(
        default=None,
        min_length=1,
        max_length=RESOURCE_NAME_MAX_LENGTH,
        description=(
            "With `virtualService`: name of the HTTP route (`spec.http[].name`) whose "
            "destinations the operator manages. When omitted, the first HTTP route."
        ),
    )

    @model_validator(mode="after")
    def _one_virtual_service(self) -> Self:
        if (self.virtual_service is None) == (self.owned_virtual_service is None):
            raise ValueError(MSG_ONE_VIRTUAL_SERVICE)
        if self.route is not None and self.virtual_service is None:
            raise ValueError(MSG_ROUTE_NEEDS_VIRTUAL_SERVICE)
        return self


class NoRouter(_SpecModel):
    """No traffic router: one Service selects both revisions, so the challenger's share of
    traffic follows its share of ready replicas. Cannot mirror (no shadow stage)."""


class TrafficSpec(_SpecModel):
    """How requests reach the two revisions. Set exactly one router."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.gatewayAPI) ? 1 : 0) + (has(self.istio) ? 1 : 0) + "
                "(has(self.none) ? 1 : 0) == 1",
                MSG_ONE_ROUTER,
            )
        )
    )

    gateway_api: GatewayAPIRouter | None = Field(
        default=None,
        alias="gatewayAPI",
        description="Weight and mirror traffic with a Gateway API HTTPRoute.",
    )
    istio: IstioRouter | None = Field(
        default=None,
        description="Weight and mirror traffic with an Istio VirtualService.",
    )
    none: NoRouter | None = Field(
        default=None,
        description=(
            "No router (`none: {}`): weight follows the ratio of ready replicas; shadow "
            "stages are not possible."
        ),
    )

    @model_validator(mode="after")
    def _exactly_one_router(self) -> Self:
        if sum(router is not None for router in (self.gateway_api, self.istio, self.none)) != 1:
            raise ValueError(MSG_ONE_ROUTER)
        return self

    @property
    def router_type(self) -> RouterType:
        """Which router is set."""
        if self.gateway_api is not None:
            return RouterType.GATEWAY_API
        if self.istio is not None:
            return RouterType.ISTIO
        return RouterType.NONE

    @property
    def can_mirror(self) -> bool:
        """Whether the router can mirror requests (needed by shadow stages)."""
        return self.router_type is not RouterType.NONE


# ---------------------------------------------------------------------------
# spec.analysis
# ---------------------------------------------------------------------------


class SecretRef(_SpecModel):
    """A Secret in the release's namespace."""

    name: ResourceName = Field(description="Name of the Secret.")


class CASecretRef(_SpecModel):
    """A key of a Secret in the release's namespace holding PEM certificates."""

    name: ResourceName = Field(description="Name of the Secret.")
    key: str = Field(
        default="ca.crt",
        min_length=1,
        max_length=RESOURCE_NAME_MAX_LENGTH,
        description="Key in the Secret whose value is the PEM bundle.",
    )


class PrometheusSpec(_SpecModel):
    """Where the SLO and comparison queries run."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("!has(self.caSecretRef) || !self.insecureSkipVerify", MSG_CA_OR_INSECURE)
        )
    )

    address: HttpURL = Field(
        description="Base URL of the Prometheus HTTP API, e.g. `http://prometheus.monitoring:9090`.",
    )
    auth_secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "Secret with the credentials: key `token` (sent as a bearer token) or keys "
            "`username` and `password` (HTTP basic auth)."
        ),
    )
    ca_secret_ref: CASecretRef | None = Field(
        default=None,
        description="Secret with the CA bundle that signs Prometheus' certificate (https).",
    )
    insecure_skip_verify: bool = Field(
        default=False,
        description="Do not verify Prometheus' TLS certificate. For tests only.",
    )
    timeout: Duration = Field(default="10s", description="Timeout of one query.")

    @model_validator(mode="after")
    def _ca_or_insecure(self) -> Self:
        if self.ca_secret_ref is not None and self.insecure_skip_verify:
            raise ValueError(MSG_CA_OR_INSECURE)
        return self


class TemplateRef(_SpecModel):
    """A reference to an SLOTemplate (same namespace) or a ClusterSLOTemplate."""

    kind: TemplateKind = Field(description="`SLOTemplate` or `ClusterSLOTemplate`.")
    name: ResourceName = Field(description="Name of the template.")


class SLO(_SpecModel):
    """An absolute check on the challenger, run every analysis interval during shadow and
    canary stages. The query must return one number; it passes when the number lies within
    `min` and `max`."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.query) != has(self.templateRef)", MSG_QUERY_XOR_TEMPLATE),
            cel(
                "!has(self.args) || size(self.args) == 0 || has(self.templateRef)",
                MSG_ARGS_NEED_TEMPLATE,
                ".args",
            ),
            cel("has(self.min) || has(self.max)", MSG_THRESHOLD_NEEDED),
            cel(
                "!has(self.min) || !has(self.max) || self.min <= self.max",
                MSG_MIN_LE_MAX,
            ),
            cel(
                "self.minRequests == 0 || has(self.requestsQuery) || has(self.templateRef)",
                MSG_MIN_REQUESTS_QUERY,
                ".minRequests",
            ),
            cel("has(self.bad) == has(self.total)", MSG_GUARD_COUNTS),
        )
    )

    name: DnsLabel = Field(description="Name of the check, unique in the release.")
    query: Query | None = Field(
        default=None,
        description=(
            "PromQL returning one number. Variables: `{{namespace}}`, `{{release}}`, "
            "`{{revision}}` (the revision under test), `{{champion}}`, `{{challenger}}`, "
            '`{{interval}}`, and `{{revisionPods}}`: the matcher `pod=~"..."` of the '
            "revision's pods by name, which needs no relabeling, e.g. "
            '`errors{namespace="{{namespace}}",{{revisionPods}}}`. Exclusive with `templateRef`.'
        ),
    )
    template_ref: TemplateRef | None = Field(
        default=None,
        description="Take the query from an SLOTemplate or ClusterSLOTemplate instead.",
    )
    args: StringMap = Field(
        default_factory=dict,
        description="Values for the template's arguments (`{{name}}` in its query).",
    )
    min: float | None = Field(
        default=None, description="Lowest passing value (inclusive). Set min, max or both."
    )
    max: float | None = Field(
        default=None, description="Highest passing value (inclusive). Set min, max or both."
    )
    failure_limit: int = Field(
        default=0,
        ge=0,
        le=1000,
        description=(
            "Consecutive failed checks tolerated; one more fails the release. 0 fails on the "
            "first failed check."
        ),
    )
    no_data: NoDataPolicy = Field(
        default=NoDataPolicy.FAIL,
        description=(
            "A check is inconclusive when the query answers with an empty result (or NaN) "
            "or fewer than `minRequests` requests were seen; the step's clock then waits. "
            "After `maxInconclusive` consecutive inconclusive checks, `fail` counts the next "
            "one as failed and `pass` as passed. A query that fails (Prometheus unreachable, "
            'timeout, HTTP error, unparsable answer, several series) is not "no data": '
            "`analysis.onError` decides what it leads to."
        ),
    )
    max_inconclusive: int | None = Field(
        default=None,
        ge=0,
        le=MAX_INCONCLUSIVE,
        description="Overrides `analysis.maxInconclusive` for this check.",
    )
    min_requests: int = Field(
        default=0,
        ge=0,
        description=(
            "Fewest requests the challenger must have served in the interval for the check "
            "to count; fewer makes it inconclusive. Needs `requestsQuery` or a template with one."
        ),
    )
    requests_query: Query | None = Field(
        default=None,
        description=(
            "PromQL returning the challenger's request count over the interval, compared with "
            "`minRequests`. Overrides the template's."
        ),
    )
    bad: Query | None = Field(
        default=None,
        description=(
            "For the sequential guard (`analysis.guard`) of a ratio SLO: PromQL selecting the "
            "raw *counters* of the challenger's bad events (errors, requests slower than a "
            'bucket bound), no `rate()`, e.g. `http_requests_total{namespace="{{namespace}}",'
            '{{revisionPods}},status=~"5.."}`. With `total`; overrides the template\'s. The '
            "SLO's value must then be `bad` over `total`, and `max` a rate between 0 and 1."
        ),
    )
    total: Query | None = Field(
        default=None,
        description=(
            "For the sequential guard: PromQL selecting the raw counters of all the "
            "challenger's events (requests), the denominator of the ratio. With `bad`."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.query is None) == (self.template_ref is None):
            raise ValueError(MSG_QUERY_XOR_TEMPLATE)
        if self.args and self.template_ref is None:
            raise ValueError(MSG_ARGS_NEED_TEMPLATE)
        if self.min is None and self.max is None:
            raise ValueError(MSG_THRESHOLD_NEEDED)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{MSG_MIN_LE_MAX}; got min {self.min} and max {self.max}")
        if self.min_requests > 0 and self.requests_query is None and self.template_ref is None:
            raise ValueError(MSG_MIN_REQUESTS_QUERY)
        if (self.bad is None) != (self.total is None):
            raise ValueError(MSG_GUARD_COUNTS)
        return self


@dataclass(frozen=True)
class AnalysisDefaults:
    """What the ``spec.analysis`` fields a release leaves out mean: the operator's
    ``--default-*`` flags (the chart's ``analysisDefaults``), cluster-wide.

    The CRD holds no default for these fields, so the API server stores only what the
    user wrote; the operator fills the rest when it reads a spec
    (``ModelReleaseSpec.model_validate(raw, context=defaults.context())``). A value in
    the release always wins. Without a context (the kubectl plugin, tests) the built-in
    values below apply, the same as the flags' defaults.
    """

    interval: str = "30s"
    max_inconclusive: int = 10
    on_error_action: OnErrorAction = OnErrorAction.ROLLBACK
    on_error_after: str = "5m"

    def __post_init__(self) -> None:
        # A wrong action raises ValueError, like a wrong duration or count.
        object.__setattr__(self, "on_error_action", OnErrorAction(self.on_error_action))
        parse_duration(self.interval)
        parse_duration(self.on_error_after)
        if not 0 <= self.max_inconclusive <= MAX_INCONCLUSIVE:
            raise ValueError(
                f"max inconclusive {self.max_inconclusive} is out of range: "
                f"use 0 to {MAX_INCONCLUSIVE}"
            )

    def context(self) -> dict[str, Any]:
        """The pydantic validation context that makes these the defaults of a spec."""
        return {_ANALYSIS_DEFAULTS: self}


BUILT_IN_ANALYSIS_DEFAULTS = AnalysisDefaults()
_ANALYSIS_DEFAULTS = "analysis_defaults"


def _analysis_defaults(info: ValidationInfo) -> AnalysisDefaults:
    context = info.context
    if isinstance(context, Mapping):
        found = context.get(_ANALYSIS_DEFAULTS)
        if isinstance(found, AnalysisDefaults):
            return found
    return BUILT_IN_ANALYSIS_DEFAULTS


def _fill(data: Any, defaults: Mapping[tuple[str, str], Any]) -> Any:
    """``data`` (the raw object) with each (alias, name) it lacks set to its default."""
    if not isinstance(data, Mapping):
        return data
    filled = dict(data)
    for (alias, name), value in defaults.items():
        if alias not in filled and name not in filled:
            filled[alias] = value
    return filled


def _no_crd_default(schema: dict[str, Any]) -> None:
    """The field's default is the operator's (``AnalysisDefaults``), not the CRD's: with
    a CRD default the API server would store it, and the operator could not tell it
    from a value the user wrote."""
    schema.pop("default", None)


class OnErrorSpec(_SpecModel):
    """What a metrics outage leads to. While an SLO or comparison query fails (Prometheus
    unreachable, timeout, HTTP error, unparsable answer, several series where one is
    expected) the release holds: no step or stage advances and the failing time does not
    count toward the step's duration. A failed read never counts as a pass."""

    action: OnErrorAction = Field(
        default=BUILT_IN_ANALYSIS_DEFAULTS.on_error_action,
        description=(
            "What happens when a query has failed for `after` without a successful read in "
            "between: `rollback` rolls the challenger back (all traffic to the champion), "
            "`hold` keeps holding until the reads succeed or a person aborts or promotes. "
            "Default: the operator's `--default-on-error-action` (chart value "
            "`analysisDefaults.onError.action`), `rollback` unless the cluster sets another."
        ),
        json_schema_extra=_no_crd_default,
    )
    after: Duration = Field(
        default=BUILT_IN_ANALYSIS_DEFAULTS.on_error_after,
        description=(
            "How long a query may keep failing before `action` is taken; one successful "
            "read starts the clock again. Default: the operator's "
            "`--default-on-error-after` (chart value `analysisDefaults.onError.after`), "
            "5m unless the cluster sets another."
        ),
        json_schema_extra=_no_crd_default,
    )

    @model_validator(mode="before")
    @classmethod
    def _cluster_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        defaults = _analysis_defaults(info)
        return _fill(
            data,
            {
                ("action", "action"): str(defaults.on_error_action),
                ("after", "after"): defaults.on_error_after,
            },
        )


class GuardSpec(_SpecModel):
    """The sequential SLO guard: between interval checks, every `period` it tests whether a
    ratio SLO's rate is above `max` with an anytime-valid test on the counts, and rolls back
    at once when it is, however long `interval` is. It applies to SLOs with a `max` between
    0 and 1 whose counters are known (`bad` and `total` on the SLO or its template; the
    built-in error-ratio templates have them), in shadow and canary stages. It never
    passes a step: the interval checks still decide when a step may end. A failed or
    empty read is skipped (the interval checks and `analysis.onError` deal with outages)."""

    enabled: bool = Field(default=True, description="Run the guard where it applies.")
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description=(
            "The guard's false-rollback rate over a whole release: the chance that it ever "
            "rolls back a challenger whose rates all stay at or below their `max` is at most "
            "`alpha` (split evenly over the guarded SLOs), however often it looks. A "
            "challenger well below `max` is practically never rolled back by it."
        ),
    )
    period: Duration = Field(
        default="2s",
        description=(
            "How often the guard reads the counters; about the scrape interval. Each read "
            "is two Prometheus queries per guarded SLO and writes nothing unless it trips."
        ),
    )


class AnalysisSpec(_SpecModel):
    """How the challenger is judged: the Prometheus connection, the interval and the SLOs."""

    prometheus: PrometheusSpec = Field(description="The Prometheus server to query.")
    interval: Duration = Field(
        default=BUILT_IN_ANALYSIS_DEFAULTS.interval,
        description=(
            "How often checks and comparisons run. Default: the operator's "
            "`--default-analysis-interval` (chart value `analysisDefaults.interval`), 30s "
            "unless the cluster sets another."
        ),
        json_schema_extra=_no_crd_default,
    )
    max_inconclusive: int = Field(
        default=BUILT_IN_ANALYSIS_DEFAULTS.max_inconclusive,
        ge=0,
        le=MAX_INCONCLUSIVE,
        description=(
            "Consecutive inconclusive checks (no data, too few requests) tolerated per SLO "
            "while the step waits; after that the SLO's `noData` policy decides. Default: "
            "the operator's `--default-max-inconclusive` (chart value "
            "`analysisDefaults.maxInconclusive`), 10 unless the cluster sets another."
        ),
        json_schema_extra=_no_crd_default,
    )
    on_error: OnErrorSpec = Field(
        default_factory=OnErrorSpec,
        description=(
            "What failed metric reads lead to (SLO checks and comparisons alike); by default "
            "the release holds and rolls back after 5 minutes of failures (the cluster's "
            "defaults may say otherwise: see `action` and `after`)."
        ),
    )
    guard: GuardSpec = Field(
        default_factory=GuardSpec,
        description=(
            "The sequential guard of ratio SLOs: rolls a clearly failing challenger back "
            "within seconds, between interval checks. On by default, alpha 0.05."
        ),
    )
    slos: list[SLO] = Field(
        default_factory=list,
        max_length=MAX_SLOS,
        description="The SLOs checked on the challenger during shadow and canary stages.",
        json_schema_extra=validations(cel(_unique_names_rule(), MSG_UNIQUE_SLO_NAMES)),
    )

    @model_validator(mode="before")
    @classmethod
    def _cluster_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        defaults = _analysis_defaults(info)
        # An absent onError is validated too (as {}), so its fields get the defaults.
        return _fill(
            data,
            {
                ("interval", "interval"): defaults.interval,
                ("maxInconclusive", "max_inconclusive"): defaults.max_inconclusive,
                ("onError", "on_error"): {},
            },
        )

    @model_validator(mode="after")
    def _unique_slo_names(self) -> Self:
        _require_unique((slo.name for slo in self.slos), MSG_UNIQUE_SLO_NAMES)
        return self


# ---------------------------------------------------------------------------
# spec.stages
# ---------------------------------------------------------------------------


class ComparisonMetric(_SpecModel):
    """One metric compared between champion and challenger as a count of events of interest
    among all events of each arm. `ratio`: two counters, `bad` among `total` (errors among
    requests). `histogram`: the `_bucket` series of a histogram, counting the events above
    `threshold` among all (slow requests, high prediction scores). `distribution`: the
    `_bucket` series of a histogram, compared whole: did the shares of its buckets move
    (score or output-length drift)?"""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.kind != 'ratio' || (has(self.bad) && has(self.total) && "
                "!has(self.query) && !has(self.threshold))",
                MSG_RATIO_FIELDS,
            ),
            cel(
                "self.kind != 'histogram' || (has(self.query) && has(self.threshold) && "
                "!has(self.bad) && !has(self.total))",
                MSG_HISTOGRAM_FIELDS,
            ),
            cel(
                "self.kind != 'distribution' || (has(self.query) && !has(self.threshold) && "
                "!has(self.bad) && !has(self.total))",
                MSG_DISTRIBUTION_FIELDS,
            ),
        )
    )

    name: DnsLabel = Field(description="Name of the metric, unique in the stage.")
    kind: MetricKind = Field(
        description=(
            "`ratio`, `histogram` or `distribution`. A `distribution` metric only ever fails "
            "the comparison (Drifted rolls back); it never has to pass for a promotion."
        )
    )
    bad: Query | None = Field(
        default=None,
        description=(
            "ratio: PromQL selecting the counter of bad events (errors) of one revision; "
            "`{{revision}}` and `{{revisionPods}}` are the arm's, e.g. "
            '`vllm:request_success_total{finished_reason="abort",{{revisionPods}}}`. '
            "Select raw counters, do not aggregate: the operator "
            "reads `sum by (namespace, pod, instance, job)` of it and takes exact increases "
            "per pod (an aggregate without those labels hides pod restarts)."
        ),
    )
    total: Query | None = Field(
        default=None,
        description="ratio: PromQL selecting the counter of all events of one revision.",
    )
    query: Query | None = Field(
        default=None,
        description=(
            "histogram and distribution: PromQL selecting the `_bucket` series of one "
            "revision, e.g. `vllm:time_to_first_token_seconds_bucket{{{revisionPods}}}`. "
            "Both arms must have the same bucket boundaries."
        ),
    )
    threshold: float | None = Field(
        default=None,
        description=(
            "histogram: the bucket boundary (`le`) above which events are counted. Use one of "
            "the histogram's bucket edges."
        ),
    )
    better: Better = Field(
        default=Better.LOWER,
        description=(
            "`lower`: a smaller share of counted events is better (errors, slow requests). "
            "`higher`: a larger share is better (for example high-confidence predictions). "
            "Not used by `distribution`, where any move is drift."
        ),
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Self:
        ratio_fields = self.bad is not None and self.total is not None
        histogram_fields = self.query is not None and self.threshold is not None
        if self.kind is MetricKind.RATIO and (
            not ratio_fields or self.query is not None or self.threshold is not None
        ):
            raise ValueError(MSG_RATIO_FIELDS)
        if self.kind is MetricKind.HISTOGRAM and (
            not histogram_fields or self.bad is not None or self.total is not None
        ):
            raise ValueError(MSG_HISTOGRAM_FIELDS)
        if self.kind is MetricKind.DISTRIBUTION and (
            self.query is None
            or self.threshold is not None
            or self.bad is not None
            or self.total is not None
        ):
            raise ValueError(MSG_DISTRIBUTION_FIELDS)
        return self


class Comparison(_SpecModel):
    """A sequential, anytime-valid comparison of challenger against champion: it may be
    checked every interval without inflating false alarms."""

    alpha: float = Field(
        default=0.05,
        gt=0,
        le=0.5,
        description=(
            "False-rollback rate of the whole comparison, in (0, 0.5]: the chance that any "
            "metric declares the challenger worse (a `distribution` metric: drifted) when it "
            "is not, however often it is checked. It is split evenly across the metrics "
            "(Bonferroni: each of k metrics, distribution ones included, is tested for Worse "
            "at alpha/k, at e-value k/alpha). It is also the "
            "false-promotion rate: the chance of promoting a challenger worse than `margin` "
            "on some metric; promotion needs every metric to pass, so each is tested for it "
            "at alpha. Each metric reports a one-sided (1 - alpha/k) bound on the worse side "
            "and a one-sided (1 - alpha) bound on the better side."
        ),
    )
    decision: Decision = Field(
        default=Decision.NON_INFERIORITY,
        description=(
            "`nonInferiority`: the challenger wins when it is shown to be no worse than the "
            "champion by more than `margin`. `superiority`: it must be shown better."
        ),
    )
    margin: float = Field(
        default=DEFAULT_MARGIN,
        ge=0,
        le=1,
        description=(
            "Non-inferiority margin, relative to the champion's rate: 0.05 accepts a challenger "
            "up to 5% worse (a 5% higher error rate when `better` is `lower`), tested at "
            "exactly that ratio. Showing it for an identical challenger takes about 10,000 "
            "bad events per arm at 5% and 2,400 at 10% (80% of the time, see "
            "docs/benchmarks.md): size `maxDuration` from the champion's rate."
        ),
    )
    warmup: Duration = Field(
        default="10s",
        description=(
            "Time after the challenger starts taking its share before counting begins. "
            "Counters move when requests finish, and failures finish sooner than successes: "
            "without a warm-up, a fresh challenger's first counts look worse than they are. "
            "Set it near the p95 request latency."
        ),
    )
    metrics: list[ComparisonMetric] = Field(
        min_length=1,
        max_length=MAX_COMPARISON_METRICS,
        description="The metrics compared; the challenger must win on every one.",
        json_schema_extra=validations(cel(_unique_names_rule(), MSG_UNIQUE_METRIC_NAMES)),
    )

    @model_validator(mode="after")
    def _unique_metric_names(self) -> Self:
        _require_unique((metric.name for metric in self.metrics), MSG_UNIQUE_METRIC_NAMES)
        return self


class ShadowStage(_SpecModel):
    """The challenger receives a copy of a share of live requests; its responses are
    discarded. SLOs run on the challenger; an optional comparison runs on both versions,
    which see the same requests."""

    mirror_percent: int = Field(
        default=100,
        ge=1,
        le=100,
        description="Percent of requests mirrored to the challenger, 1 to 100.",
    )
    duration: Duration = Field(
        description="How long the shadow stage lasts once the challenger is Ready."
    )
    comparison: Comparison | None = Field(
        default=None,
        description=(
            "Compare challenger and champion on the mirrored traffic. A lost comparison rolls "
            "back; inconclusive at the end of `duration` moves on."
        ),
    )


class CanaryStep(_SpecModel):
    """One canary step: hold `weight` percent of traffic on the challenger for `duration`."""

    weight: int = Field(ge=0, le=100, description="Percent of traffic to the challenger, 0 to 100.")
    duration: Duration = Field(
        description=(
            "How long the step lasts. The clock runs only while the challenger is Ready and "
            "waits while checks are inconclusive."
        ),
    )


class CanaryStage(_SpecModel):
    """Live traffic moves to the challenger in steps; SLOs run every interval."""

    steps: list[CanaryStep] = Field(
        min_length=1,
        max_length=MAX_CANARY_STEPS,
        description="The steps, in order; weights strictly increase.",
        json_schema_extra=validations(
            cel(
                "self.map(s, s.weight).isSorted() && "
                "self.all(s, self.exists_one(t, t.weight == s.weight))",
                MSG_WEIGHTS_INCREASE,
            )
        ),
    )

    @model_validator(mode="after")
    def _weights_increase(self) -> Self:
        weights = [step.weight for step in self.steps]
        if any(later <= earlier for earlier, later in itertools.pairwise(weights)):
            raise ValueError(f"{MSG_WEIGHTS_INCREASE}; got {', '.join(map(str, weights))}")
        return self


class ChampionChallengerStage(Comparison):
    """Traffic is split between champion and challenger and a sequential test compares
    them on every metric until one wins or `maxDuration` passes."""

    weight: int = Field(
        default=50,
        ge=1,
        le=99,
        description="Percent of traffic to the challenger during the comparison, 1 to 99.",
    )
    max_duration: Duration = Field(
        description="Longest the comparison may run; then `onInconclusive` decides.",
    )
    on_inconclusive: OnInconclusive = Field(
        default=OnInconclusive.KEEP_CHAMPION,
        description=(
            "At `maxDuration` without a decision: `keepChampion` rolls the challenger back, "
            "`promote` lets it continue to the next stage."
        ),
    )


class ApprovalStage(_SpecModel):
    """Wait until a person approves (`kubectl modelrelease approve <release>`), with the
    challenger keeping the traffic of the previous stage."""


class WebhookStage(_SpecModel):
    """Ask an external service (an offline evaluation, a change-management system) whether
    to continue. The operator POSTs a JSON body with the release, namespace, revisions,
    model and `metadata`. A 2xx response passes the gate, except 202 which means "still
    evaluating, ask again"; any other response or a transport error is a failed attempt."""

    url: HttpURL = Field(
        description="The http or https URL to POST to. Status and Events show it without "
        "userinfo, query or fragment. Of an answer they show only the HTTP status and, "
        "when the body is a JSON object whose string field `reason` is a short phrase of "
        "plain words (at most 64 characters), that reason."
    )
    timeout: Duration = Field(default="10s", description="Timeout of one call.")
    interval: Duration = Field(
        default="30s", description="Time between calls while the answer is 202 or failed."
    )
    max_duration: Duration = Field(
        default="1h", description="The gate fails when it has not passed within this time."
    )
    failure_limit: int = Field(
        default=2,
        ge=0,
        le=1000,
        description="Consecutive failed attempts tolerated; one more fails the gate.",
    )
    metadata: StringMap = Field(
        default_factory=dict,
        description="Extra string values sent in the request body under `metadata`.",
    )


class Stage(_SpecModel):
    """One stage of the release. Set exactly one of the stage types."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.shadow) ? 1 : 0) + (has(self.canary) ? 1 : 0) + "
                "(has(self.championChallenger) ? 1 : 0) + (has(self.approval) ? 1 : 0) + "
                "(has(self.webhook) ? 1 : 0) == 1",
                MSG_ONE_STAGE_TYPE,
            )
        )
    )

    name: DnsLabel | None = Field(
        default=None,
        description=(
            "Name shown in status and by `kubectl get`; unique in the release. It is the "
            "stage's identity: progress is tracked by name, so editing the list never skips "
            "a stage. Defaults to the stage type and its count among stages of that type, "
            "e.g. `canary-2` for the second unnamed canary stage."
        ),
    )
    shadow: ShadowStage | None = Field(
        default=None, description="Mirror traffic to the challenger."
    )
    canary: CanaryStage | None = Field(default=None, description="Move live traffic in steps.")
    champion_challenger: ChampionChallengerStage | None = Field(
        default=None, description="Split traffic and compare the two versions statistically."
    )
    approval: ApprovalStage | None = Field(default=None, description="Wait for a person.")
    webhook: WebhookStage | None = Field(default=None, description="Wait for an external service.")

    @model_validator(mode="after")
    def _exactly_one_type(self) -> Self:
        present = [
            stage
            for stage in (
                self.shadow,
                self.canary,
                self.champion_challenger,
                self.approval,
                self.webhook,
            )
            if stage is not None
        ]
        if len(present) != 1:
            raise ValueError(MSG_ONE_STAGE_TYPE)
        return self

    @property
    def type(self) -> StageType:
        """The stage's type."""
        if self.shadow is not None:
            return StageType.SHADOW
        if self.canary is not None:
            return StageType.CANARY
        if self.champion_challenger is not None:
            return StageType.CHAMPION_CHALLENGER
        if self.approval is not None:
            return StageType.APPROVAL
        return StageType.WEBHOOK


def stage_names(stages: Sequence[Stage]) -> list[str]:
    """Each stage's identity: its name, or ``<type>-<n>`` for the n-th unnamed stage of a type.

    Counting by type, not by position, keeps an unnamed stage's identity when a
    stage of another type is added or removed before it.
    """
    counts: dict[StageType, int] = {}
    names = []
    for stage in stages:
        if stage.name is not None:
            names.append(stage.name)
            continue
        counts[stage.type] = counts.get(stage.type, 0) + 1
        names.append(f"{stage.type.value}-{counts[stage.type]}")
    return names


# ---------------------------------------------------------------------------
# spec.notifications
# ---------------------------------------------------------------------------


class SlackReceiver(_SpecModel):
    """A Slack incoming webhook; the message is Block Kit (header, section, context)."""

    secret_ref: SecretRef = Field(
        description=(
            "Secret in the release's namespace, labelled `modelrelease.dev/credentials: "
            '"true"`, whose key `url` holds the incoming-webhook URL '
            "(`https://hooks.slack.com/services/...`)."
        ),
    )


class TeamsReceiver(_SpecModel):
    """A Microsoft Teams Workflows webhook ("When a Teams webhook request is received");
    the message is an Adaptive Card 1.4 in a `message` envelope."""

    secret_ref: SecretRef = Field(
        description=(
            "Secret in the release's namespace, labelled `modelrelease.dev/credentials: "
            '"true"`, whose key `url` holds the workflow\'s webhook URL.'
        ),
    )


class WebhookReceiver(_SpecModel):
    """Any HTTP endpoint: a JSON body signed with HMAC-SHA256. The header
    `X-ModelRelease-Signature` is `sha256=` and the hex HMAC, keyed with `signingKey`, of
    the bytes `<X-ModelRelease-Timestamp>.<body>`; `X-ModelRelease-Delivery` is the
    notification's id, the same on every retry (for idempotency)."""

    secret_ref: SecretRef = Field(
        description=(
            "Secret in the release's namespace, labelled `modelrelease.dev/credentials: "
            '"true"`, with the keys `url` (where to POST) and `signingKey` (the HMAC key).'
        ),
    )


class NotificationReceiver(_SpecModel):
    """Where notifications go. Set exactly one of slack, teams or webhook."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.slack) ? 1 : 0) + (has(self.teams) ? 1 : 0) + "
                "(has(self.webhook) ? 1 : 0) == 1",
                MSG_ONE_RECEIVER_TYPE,
            )
        )
    )

    name: DnsLabel = Field(description="Name of the receiver, shown in Events; unique.")
    slack: SlackReceiver | None = Field(default=None, description="A Slack incoming webhook.")
    teams: TeamsReceiver | None = Field(
        default=None, description="A Microsoft Teams Workflows webhook."
    )
    webhook: WebhookReceiver | None = Field(
        default=None, description="A generic webhook, signed with HMAC-SHA256."
    )
    events: list[NotificationType] = Field(
        default_factory=lambda: list(NotificationType),
        min_length=1,
        max_length=len(NotificationType),
        description=(
            "What to send: ChallengerStarted, StageStarted, WaitingForApproval, RolledBack, "
            "Promoted, Failed. All of them when omitted."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @model_validator(mode="after")
    def _exactly_one_type(self) -> Self:
        if sum(kind is not None for kind in (self.slack, self.teams, self.webhook)) != 1:
            raise ValueError(MSG_ONE_RECEIVER_TYPE)
        return self

    @property
    def secret_name(self) -> str:
        """The Secret holding the receiver's URL (and signing key)."""
        kind = self.slack or self.teams or self.webhook
        assert kind is not None
        return kind.secret_ref.name


class NotificationsSpec(_SpecModel):
    """Who hears about the release's transitions. Delivery runs beside the release and
    never holds it: a receiver that fails gets a Warning Event, the release goes on."""

    receivers: list[NotificationReceiver] = Field(
        min_length=1,
        max_length=MAX_RECEIVERS,
        description="The receivers; each gets every notification its `events` selects.",
        json_schema_extra=validations(cel(_unique_names_rule(), MSG_UNIQUE_RECEIVER_NAMES)),
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        _require_unique((receiver.name for receiver in self.receivers), MSG_UNIQUE_RECEIVER_NAMES)
        return self


# ---------------------------------------------------------------------------
# ModelRelease
# ---------------------------------------------------------------------------


class ModelReleaseSpec(_SpecModel):
    """The desired state of a model-inference endpoint and how new versions reach it."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.traffic.none) || !self.stages.exists(s, has(s.shadow))",
                MSG_SHADOW_NEEDS_MIRROR,
                ".stages",
            ),
            cel(
                "has(self.analysis) || !self.stages.exists(s, has(s.championChallenger) || "
                "(has(s.shadow) && has(s.shadow.comparison)))",
                MSG_COMPARISON_NEEDS_ANALYSIS,
                ".stages",
            ),
        )
    )

    model: ModelSpec = Field(description="The model being released; recorded in history.")
    replicas: int = Field(
        default=1,
        ge=1,
        le=1000,
        description=(
            "Serving replicas of the champion at 100% traffic. Also the `scale` subresource: "
            "`kubectl scale`, a HorizontalPodAutoscaler or a KEDA ScaledObject may target the "
            "ModelRelease and set it; during a release the total is split between champion "
            "and challenger by `capacity`."
        ),
    )
    template: PodTemplate = Field(
        description=(
            "Pod template of the inference server (a Kubernetes PodTemplateSpec: image, "
            "`nvidia.com/gpu` limits, readiness probe). A change of `model` or `template` "
            "creates a new revision and starts the stages."
        ),
    )
    port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        description="Container port serving inference requests; the Services expose it as `http`.",
    )
    progress_deadline: Duration = Field(
        default="20m",
        description=(
            "How long challenger pods may take to become Ready (image pull, model load) "
            "before the release rolls back."
        ),
    )
    capacity: CapacitySpec = Field(
        default_factory=CapacitySpec,
        description="GPU capacity policy while two revisions run.",
        json_schema_extra={"default": {}},
    )
    traffic: TrafficSpec = Field(description="The traffic router: exactly one.")
    analysis: AnalysisSpec | None = Field(
        default=None,
        description="Prometheus connection and SLOs. Needed by comparisons and SLO checks.",
    )
    stages: list[Stage] = Field(
        min_length=1,
        max_length=MAX_STAGES,
        description="The stages a new revision goes through, in order, before promotion.",
        json_schema_extra=validations(
            cel(_unique_names_rule(item_has_optional_name=True), MSG_UNIQUE_STAGE_NAMES)
        ),
    )
    rollback: RollbackSpec = Field(
        default_factory=RollbackSpec,
        description="What happens when a challenger fails.",
        json_schema_extra={"default": {}},
    )
    revision_history_limit: int = Field(
        default=2,
        ge=0,
        le=100,
        description=(
            "Old champions kept scaled to zero for instant rollback to a previous version."
        ),
    )
    paused: bool = Field(
        default=False,
        description="Freeze the release where it is: no traffic change, no stage clock.",
    )
    notifications: NotificationsSpec | None = Field(
        default=None,
        description=(
            "Slack, Microsoft Teams and signed-webhook notifications of the release's "
            "transitions. Set per release (the object Git and reviews already hold); "
            "releases of a namespace share receivers by naming the same Secrets."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _require_unique((stage.name for stage in self.stages), MSG_UNIQUE_STAGE_NAMES)
        if not self.traffic.can_mirror and any(s.shadow is not None for s in self.stages):
            raise ValueError(MSG_SHADOW_NEEDS_MIRROR)
        needs_analysis = any(
            stage.champion_challenger is not None
            or (stage.shadow is not None and stage.shadow.comparison is not None)
            for stage in self.stages
        )
        if needs_analysis and self.analysis is None:
            raise ValueError(MSG_COMPARISON_NEEDS_ANALYSIS)
        return self

    def stage_named(self, name: str, type_: StageType) -> Stage | None:
        """The stage called ``name`` (its identity, see :func:`stage_names`) if it has ``type_``."""
        for stage_name, stage in zip(stage_names(self.stages), self.stages, strict=True):
            if stage_name == name:
                return stage if stage.type is type_ else None
        return None


class RevisionStatus(_StatusModel):
    """One revision (champion or challenger) as last observed."""

    revision: str | None = Field(
        default=None, description="Revision hash of `model` and `template` (10 hex characters)."
    )
    model_name: str | None = Field(default=None, description="`spec.model.name` of the revision.")
    model_version: str | None = Field(
        default=None, description="`spec.model.version` of the revision."
    )
    replicas: int = Field(default=0, description="Replicas the operator asked for.")
    ready_replicas: int = Field(default=0, description="Replicas Ready.")


class MisdirectedAutoscaler(_StatusModel):
    """A HorizontalPodAutoscaler aimed at one of the release's Deployments."""

    name: str = Field(description="Name of the HorizontalPodAutoscaler (same namespace).")
    deployment: str = Field(description="The release's Deployment its `scaleTargetRef` names.")


class CurrentStage(_StatusModel):
    """Where the challenger is in the stages."""

    index: int = Field(description="0-based position of the stage in `spec.stages`.")
    type: StageType = Field(description="Type of the stage.")
    name: str = Field(description="Name of the stage (its `name` or `<type>-<position>`).")
    step: int | None = Field(default=None, description="canary: 0-based index of the step.")
    weight: int = Field(default=0, description="Percent of live traffic on the challenger.")
    mirror_percent: int = Field(
        default=0, description="Percent of requests mirrored to the challenger."
    )
    stage_start_time: Timestamp | None = Field(
        default=None, description="When the stage's clock started (challenger Ready)."
    )
    step_start_time: Timestamp | None = Field(
        default=None, description="When the current step's clock started."
    )
    held_seconds: float = Field(
        default=0,
        description=(
            "Seconds the current step's clock waited (inconclusive checks, failed metric "
            "reads, pauses)."
        ),
    )
    metrics_unavailable_since: Timestamp | None = Field(
        default=None,
        description=(
            "When the step began holding because metrics could not be read; the time held "
            "is added to `heldSeconds` once they can."
        ),
    )
    approved: bool = Field(default=False, description="approval: whether it was approved.")
    gate_attempts: int = Field(default=0, description="webhook: calls made so far.")
    gate_consecutive_failures: int = Field(
        default=0, description="webhook: consecutive failed calls."
    )
    last_gate_time: Timestamp | None = Field(default=None, description="webhook: last call.")
    last_gate_answer: str | None = Field(
        default=None,
        description="webhook: the last answer (HTTP status and the answer's short `reason`, "
        "never its body).",
    )


class GuardStatus(_StatusModel):
    """The sequential guard's saved evidence on one SLO, written with the interval checks
    (and when it trips), never between: reads in between recompute the rest from
    Prometheus' history."""

    revision: str = Field(description="The challenger revision the evidence is about.")
    log_e_value: float = Field(
        description="Natural log of the e-value accumulated up to `through`."
    )
    through: Timestamp = Field(description="The moment (on a 1 s grid) the evidence covers.")
    e_value: float = Field(
        default=1.0, description="The e-value at the last write; the guard trips at 1/alpha."
    )
    message: str = Field(default="", description="What the guard saw, in words.")


class CheckStatus(_StatusModel):
    """The latest result of one SLO check."""

    name: str = Field(description="The SLO's name.")
    value: float | None = Field(default=None, description="The measured value, if any.")
    min: float | None = Field(default=None, description="The SLO's min.")
    max: float | None = Field(default=None, description="The SLO's max.")
    requests: float | None = Field(
        default=None, description="Requests counted by the SLO's requests query."
    )
    verdict: Verdict = Field(
        description="Pass, Fail, Inconclusive (no data) or Error (the query failed)."
    )
    consecutive_failures: int = Field(default=0, description="Failed checks in a row.")
    consecutive_inconclusive: int = Field(default=0, description="Inconclusive checks in a row.")
    message: str = Field(default="", description="Why, in words.")
    time: Timestamp | None = Field(default=None, description="When the check ran.")
    error_since: Timestamp | None = Field(
        default=None,
        description=(
            "When the query started failing (no successful read since); `analysis.onError` "
            "acts once it has failed for `onError.after`."
        ),
    )
    guard: GuardStatus | None = Field(
        default=None, description="The sequential guard's evidence, for a guarded SLO."
    )


class ArmCounts(_StatusModel):
    """Event counts of one arm of a comparison since it began."""

    bad: float = Field(default=0, description="Bad events.")
    total: float = Field(default=0, description="All events.")


class BucketShare(_StatusModel):
    """One histogram bucket of a `distribution` metric: each arm's share of events in it."""

    bucket: str = Field(description="The bucket's bounds, e.g. `0.9-1` or `>1`.")
    champion: float = Field(description="Champion's share of its events in this bucket.")
    challenger: float = Field(description="Challenger's share of its events in this bucket.")


class ComparisonStatus(_StatusModel):
    """The state of one comparison metric."""

    metric: str = Field(description="The metric's name.")
    champion: ArmCounts = Field(default_factory=ArmCounts, description="Champion's counts.")
    challenger: ArmCounts = Field(default_factory=ArmCounts, description="Challenger's counts.")
    estimate: float | None = Field(
        default=None,
        description=(
            "Estimated ratio of challenger to champion bad-event rates; for `distribution`, "
            "the total variation distance between their bucket shares (0 to 1)."
        ),
    )
    lower: float | None = Field(
        default=None, description="Lower confidence bound of the ratio (one-sided)."
    )
    upper: float | None = Field(
        default=None, description="Upper confidence bound of the ratio (one-sided)."
    )
    e_value: float | None = Field(
        default=None,
        description=(
            "Evidence against no difference, in the direction where the challenger is worse "
            "(for `distribution`: that the bucket shares differ); Worse (Drifted) at "
            "k/alpha for k metrics."
        ),
    )
    verdict: Verdict = Field(
        default=Verdict.INCONCLUSIVE,
        description=(
            "Pass (challenger wins), Fail, Inconclusive, or Error (the counters could not be read)."
        ),
    )
    message: str = Field(default="", description="Why, in words.")
    time: Timestamp | None = Field(default=None, description="When it was last evaluated.")
    error_since: Timestamp | None = Field(
        default=None,
        description=(
            "When reading the counters started failing (no successful read since); "
            "`analysis.onError` acts once it has failed for `onError.after`."
        ),
    )
    champion_series: dict[str, list[float]] | None = Field(
        default=None,
        description=(
            "Champion's last counter values per series (one per pod: namespace/pod/instance/"
            "job), as [bad, total, interval last seen] (`distribution`: each bucket's own "
            "count, then the interval last seen). Each interval's increments are taken "
            "per series: a series whose total went down restarted and counts whole, a new "
            "series counts whole, a missing one counts nothing and keeps its values."
        ),
    )
    challenger_series: dict[str, list[float]] | None = Field(
        default=None,
        description="Challenger's last counter values per series, as for `championSeries`.",
    )
    buckets: list[BucketShare] | None = Field(
        default=None,
        description=(
            "`distribution` metrics: each bucket's share of events per arm since the "
            "comparison began, in bucket order."
        ),
    )
    note: str | None = Field(
        default=None,
        description=(
            "How the judge's state was carried over when it could not simply be resumed "
            "(status from an older operator, an unreadable state), and since when."
        ),
    )
    state: dict[str, Any] | None = Field(
        default=None,
        description="The sequential test's state, so a restarted operator resumes it.",
    )


class Condition(_StatusModel):
    """A condition in the `metav1.Condition` shape."""

    type: str = Field(
        min_length=1,
        max_length=316,
        description="Available, Progressing or Degraded.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        description="CamelCase reason, e.g. SLOFailed or InsufficientGPU.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: Timestamp = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, description="The `metadata.generation` this condition was set for."
    )


class HistoryEntry(_StatusModel):
    """How the release of one revision ended."""

    revision: str = Field(description="The revision.")
    model_name: str = Field(description="Model name of the revision.")
    model_version: str = Field(description="Model version of the revision.")
    model_uri: str | None = Field(default=None, description="Model URI of the revision.")
    model_metadata: dict[str, str] = Field(
        default_factory=dict, description="Model metadata of the revision."
    )
    outcome: Outcome = Field(description="Promoted, RolledBack, Aborted or Superseded.")
    reason: str = Field(description="CamelCase reason, e.g. SLOFailed.")
    message: str = Field(default="", description="What happened, in words.")
    time: Timestamp = Field(description="When it ended.")


class PendingNotification(_StatusModel):
    """A notification decided by a pass, written with the transition it announces."""

    id: str = Field(
        description=(
            "Idempotency key, the same on every retry and after restarts: "
            "`<release uid>/<revision>/<attempt>/<type>[/<stage>]`."
        )
    )
    receiver: str = Field(description="Name of the receiver it goes to.")
    type: NotificationType = Field(description="What it announces.")
    time: Timestamp = Field(description="When the transition happened.")
    revision: str = Field(description="The revision it is about.")
    model_name: str | None = Field(default=None, description="Model name of the revision.")
    model_version: str | None = Field(default=None, description="Model version of the revision.")
    champion_version: str | None = Field(
        default=None, description="Model version of the champion at the time."
    )
    stage: str | None = Field(default=None, description="The stage, if it is about one.")
    reason: str | None = Field(default=None, description="CamelCase reason, e.g. SLOFailed.")
    message: str = Field(default="", description="What happened, in words.")
    slo: str | None = Field(default=None, description="The failing SLO, if any.")
    slo_value: float | None = Field(default=None, description="Its last value.")
    slo_min: float | None = Field(default=None, description="Its min.")
    slo_max: float | None = Field(default=None, description="Its max.")


class ModelReleaseStatus(_StatusModel):
    """The whole state of the release; an operator restart resumes from it."""

    observed_generation: int | None = Field(
        default=None, description="The `metadata.generation` last acted upon."
    )
    phase: Phase | None = Field(
        default=None,
        description="Pending, Progressing, Paused, Succeeded, RolledBack or Failed.",
    )
    message: str | None = Field(default=None, description="What is happening, in words.")
    champion: RevisionStatus | None = Field(
        default=None, description="The revision serving traffic."
    )
    challenger: RevisionStatus | None = Field(
        default=None, description="The revision being released, if any."
    )
    current_stage: CurrentStage | None = Field(
        default=None, description="The stage the challenger is in, if any."
    )
    checks: list[CheckStatus] = Field(
        default_factory=list, description="Latest result of every SLO check."
    )
    comparison: list[ComparisonStatus] = Field(
        default_factory=list, description="State of each comparison metric of the current stage."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Available, Progressing and Degraded.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    history: list[HistoryEntry] = Field(
        default_factory=list, description="Past revisions, newest last, bounded by the operator."
    )
    rejected_revision: str | None = Field(
        default=None,
        description=(
            "A revision that failed; it is not retried until the spec changes or a retry is "
            "requested."
        ),
    )
    undo_revision: str | None = Field(
        default=None,
        description=(
            "A kept former champion being brought back by an undo request (`kubectl "
            "modelrelease undo`): scaled up, Ready, then given all traffic. Cleared once it "
            "is the champion, or when the undo ends otherwise."
        ),
    )
    last_action: str | None = Field(
        default=None, description="The last imperative action consumed (promote, abort, ...)."
    )
    last_action_time: Timestamp | None = Field(
        default=None, description="When `lastAction` was consumed."
    )
    stages_passed: list[str] = Field(
        default_factory=list,
        description=(
            "Names of the stages the challenger has passed. It is promoted only when every "
            "stage of the current spec is in this list."
        ),
    )
    challenger_waiting_since: Timestamp | None = Field(
        default=None,
        description=(
            "Since when the challenger has had fewer Ready pods than its current step or the "
            "promotion needs; `progressDeadline` counts from here."
        ),
    )
    replicas: int | None = Field(
        default=None,
        description=(
            "Replicas of champion and challenger together, as the operator asked for them "
            "(the `scale` subresource's current replicas)."
        ),
    )
    ready_replicas: int | None = Field(
        default=None, description="Ready replicas of champion and challenger together."
    )
    selector: str | None = Field(
        default=None,
        description=(
            "Label selector of the pods of champion and challenger (the `scale` "
            "subresource's selector, used by autoscalers for pod metrics)."
        ),
    )
    misdirected_autoscalers: list[MisdirectedAutoscaler] = Field(
        default_factory=list,
        description=(
            "HorizontalPodAutoscalers whose `scaleTargetRef` names one of the release's "
            "Deployments instead of the ModelRelease. The operator keeps setting those "
            "Deployments' replicas (it undoes the autoscaler's changes) and posts one Warning "
            "Event `HPATargetsOwnedDeployment` per autoscaler when it appears here; an entry "
            "goes when the autoscaler is deleted or aimed elsewhere."
        ),
    )
    pending_notifications: list[PendingNotification] = Field(
        default_factory=list,
        description=(
            "Notifications decided but not yet delivered: the outbox. Each is written with the "
            "transition it announces, so a restarted operator still sends it, and removed "
            "once delivered or given up (with a Warning Event). Bounded; empty at rest."
        ),
    )
    notified: list[str] = Field(
        default_factory=list,
        description=(
            "Ids of the latest notifications delivered or given up (bounded, newest last): a "
            "transition seen again is not told again."
        ),
    )


class _Resource(BaseModel):
    """Base of the top-level objects; `metadata` is kept as given."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )

    api_version: Literal["modelrelease.dev/v1alpha1"] = Field(
        default="modelrelease.dev/v1alpha1", description="modelrelease.dev/v1alpha1"
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Object metadata.")


class ModelRelease(_Resource):
    """A model-inference endpoint and the release of its new versions through shadow,
    canary and champion-challenger stages."""

    # Rules on the whole object (the CRD's root schema); only metadata.name is checked.
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                f"self.metadata.name.size() <= {RELEASE_NAME_MAX_LENGTH}",
                MSG_RELEASE_NAME_LENGTH,
                ".metadata",
            ),
            cel(
                f"self.metadata.name.matches('{RELEASE_NAME_PATTERN}')",
                MSG_RELEASE_NAME_FORMAT,
                ".metadata",
            ),
        )
    )

    kind: Literal["ModelRelease"] = Field(default="ModelRelease", description="ModelRelease")
    spec: ModelReleaseSpec = Field(description="What to serve and how to release it.")
    status: ModelReleaseStatus | None = Field(
        default=None, description="What the operator observed and did."
    )

    @model_validator(mode="after")
    def _name_fits(self) -> Self:
        name = self.metadata.get("name")
        if not isinstance(name, str):
            return self  # generateName, or a partial object: the API server names it
        if len(name) > RELEASE_NAME_MAX_LENGTH:
            raise ValueError(MSG_RELEASE_NAME_LENGTH)
        if not re.fullmatch(RELEASE_NAME_PATTERN, name):
            raise ValueError(MSG_RELEASE_NAME_FORMAT)
        return self


class TemplateArg(_SpecModel):
    """An argument of an SLO template, used as `{{name}}` in its queries."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(self.name in ["
                + ", ".join(f"'{name}'" for name in BUILTIN_QUERY_VARIABLES)
                + "])",
                MSG_ARG_SHADOWS_BUILTIN,
                ".name",
            )
        )
    )

    name: str = Field(
        min_length=1, max_length=63, pattern=ARG_NAME_PATTERN, description="Name of the argument."
    )
    description: str | None = Field(
        default=None, max_length=MESSAGE_MAX_LENGTH, description="What the argument means."
    )
    default: str | None = Field(
        default=None,
        max_length=METADATA_VALUE_MAX_LENGTH,
        description="Value used when the SLO passes none; without it the argument is required.",
    )

    @model_validator(mode="after")
    def _not_builtin(self) -> Self:
        if self.name in BUILTIN_QUERY_VARIABLES:
            raise ValueError(f"{MSG_ARG_SHADOWS_BUILTIN}; got {self.name!r}")
        return self


class SLOTemplateSpec(_SpecModel):
    """A reusable SLO query with arguments."""

    model_config = ConfigDict(
        json_schema_extra=validations(cel("has(self.bad) == has(self.total)", MSG_GUARD_COUNTS))
    )

    description: str | None = Field(
        default=None, max_length=MESSAGE_MAX_LENGTH, description="What the query measures."
    )
    query: Query = Field(
        description=(
            "PromQL returning one number, with the built-in variables (`{{namespace}}`, "
            "`{{release}}`, `{{revision}}`, `{{champion}}`, `{{challenger}}`, `{{interval}}`, "
            "`{{revisionPods}}`) and the template's `args`."
        ),
    )
    requests_query: Query | None = Field(
        default=None,
        description="PromQL returning the request count over the interval, for `minRequests`.",
    )
    bad: Query | None = Field(
        default=None,
        description=(
            "For the sequential guard: PromQL selecting the raw counters of bad events (no "
            "`rate()`), when `query` is the ratio of `bad` to `total`. With `total`."
        ),
    )
    total: Query | None = Field(
        default=None,
        description="For the sequential guard: PromQL selecting the raw counters of all events.",
    )
    args: list[TemplateArg] = Field(
        default_factory=list,
        max_length=MAX_TEMPLATE_ARGS,
        description="The template's arguments.",
        json_schema_extra=validations(cel(_unique_names_rule(), MSG_UNIQUE_ARG_NAMES)),
    )

    @model_validator(mode="after")
    def _unique_arg_names(self) -> Self:
        _require_unique((arg.name for arg in self.args), MSG_UNIQUE_ARG_NAMES)
        if (self.bad is None) != (self.total is None):
            raise ValueError(MSG_GUARD_COUNTS)
        return self


class SLOTemplate(_Resource):
    """A reusable SLO query, usable by ModelReleases in its namespace."""

    kind: Literal["SLOTemplate"] = Field(default="SLOTemplate", description="SLOTemplate")
    spec: SLOTemplateSpec = Field(description="The query and its arguments.")


class ClusterSLOTemplate(_Resource):
    """A reusable SLO query, usable by ModelReleases in every namespace."""

    kind: Literal["ClusterSLOTemplate"] = Field(
        default="ClusterSLOTemplate", description="ClusterSLOTemplate"
    )
    spec: SLOTemplateSpec = Field(description="The query and its arguments.")


__all__ = [
    "SLO",
    "AnalysisSpec",
    "ApprovalStage",
    "ArmCounts",
    "CASecretRef",
    "CanaryStage",
    "CanaryStep",
    "CapacitySpec",
    "ChampionChallengerStage",
    "CheckStatus",
    "ClusterSLOTemplate",
    "Comparison",
    "ComparisonMetric",
    "ComparisonStatus",
    "Condition",
    "CurrentStage",
    "GatewayAPIRouter",
    "HistoryEntry",
    "IstioRouter",
    "ModelRelease",
    "ModelReleaseSpec",
    "ModelReleaseStatus",
    "ModelSpec",
    "NoRouter",
    "NotificationReceiver",
    "NotificationsSpec",
    "OwnedHTTPRoute",
    "OwnedVirtualService",
    "PendingNotification",
    "PrometheusSpec",
    "RevisionStatus",
    "RollbackSpec",
    "SLOTemplate",
    "SLOTemplateSpec",
    "SecretRef",
    "ShadowStage",
    "SlackReceiver",
    "Stage",
    "TeamsReceiver",
    "TemplateArg",
    "TemplateRef",
    "TrafficSpec",
    "WebhookReceiver",
    "WebhookStage",
]
