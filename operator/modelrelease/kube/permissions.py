"""Every API request the operator makes, as RBAC: resource, verbs, and why.

This table is the one statement of what the operator needs. The chart's roles
(``charts/modelrelease-operator/templates/_rbac.tpl``) grant it, and
``tests/cluster/test_chart_rbac.py`` checks both ways that they grant exactly this: no
verb the operator never uses, none it uses missing. ``tests/e2e/test_rbac.py``
runs the operator under the chart's ServiceAccount and checks, from the API
server's audit log, that every request it made is in this table.

Scopes:
- ``CLUSTER``: cluster-scoped kinds, or kinds read in every namespace (the GPU
  view counts the GPUs of every Pod, whatever namespace it runs in);
- ``WATCHED``: in each watched namespace (all of them when cluster-wide);
- ``OWN_NAMESPACE``: the operator's own namespace (the leader Lease);
- ``NAMESPACE_LIST``: only when the operator watches some namespaces (names or
  globs), not all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    CLUSTER = "cluster"
    WATCHED = "watched"
    OWN_NAMESPACE = "own-namespace"
    NAMESPACE_LIST = "namespace-list"


@dataclass(frozen=True)
class Permission:
    group: str  # "" for the core group
    resource: str  # with its subresource: "modelreleases/status"
    verbs: frozenset[str]
    scope: Scope
    why: str
    option: str | None = None  # the chart value that turns it off, e.g. "rbac.istio"


def _verbs(*verbs: str) -> frozenset[str]:
    return frozenset(verbs)


PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "modelrelease.dev",
        "modelreleases",
        _verbs("list", "watch"),
        Scope.WATCHED,
        "kopf watches the releases (kube.views does not).",
    ),
    Permission(
        "modelrelease.dev",
        "modelreleases",
        _verbs("patch"),
        Scope.WATCHED,
        "kopf adds and removes the finalizer and its progress annotations; the "
        "operator removes an action annotation it consumed (kube.client).",
    ),
    Permission(
        "modelrelease.dev",
        "modelreleases/status",
        _verbs("patch"),
        Scope.WATCHED,
        "One merge patch of the status per pass that changes it.",
    ),
    Permission(
        "modelrelease.dev",
        "slotemplates",
        _verbs("list", "watch"),
        Scope.WATCHED,
        "kube.views: templates an SLO refers to, read without a request per pass.",
    ),
    Permission(
        "modelrelease.dev",
        "clusterslotemplates",
        _verbs("list", "watch"),
        Scope.CLUSTER,
        "kube.views: the built-in and cluster-wide SLO templates.",
    ),
    Permission(
        "apps",
        "deployments",
        _verbs("list", "watch"),
        Scope.WATCHED,
        "kube.views: each release's Deployments, selected by the release label.",
    ),
    Permission(
        "apps",
        "deployments",
        _verbs("create", "patch"),
        Scope.WATCHED,
        "A revision's Deployment is server-side applied (a patch that creates it when "
        "missing, which RBAC checks as create) and scaled by a merge patch.",
    ),
    Permission(
        "apps",
        "deployments",
        _verbs("delete"),
        Scope.WATCHED,
        "Revisions beyond revisionHistoryLimit are deleted.",
    ),
    Permission(
        "autoscaling",
        "horizontalpodautoscalers",
        _verbs("list", "watch"),
        Scope.WATCHED,
        "kube.views: HorizontalPodAutoscalers aimed at a release's Deployment instead of "
        "the release, reported with a Warning Event. Refused, that report is off.",
    ),
    Permission(
        "",
        "services",
        _verbs("list", "watch"),
        Scope.WATCHED,
        "kube.views: the release's stable and canary Services.",
    ),
    Permission(
        "",
        "services",
        _verbs("create", "patch"),
        Scope.WATCHED,
        "The stable and canary Services are server-side applied (created when missing).",
    ),
    Permission(
        "",
        "pods",
        _verbs("list", "watch"),
        Scope.CLUSTER,
        "kube.views: readiness and failures of a revision's Pods, and the GPUs every "
        "bound Pod holds (any namespace's Pods take GPUs from a Node).",
    ),
    Permission(
        "",
        "nodes",
        _verbs("list", "watch"),
        Scope.CLUSTER,
        "kube.views: allocatable GPUs, taints and readiness of the Nodes (the GPU check).",
    ),
    Permission(
        "",
        "secrets",
        _verbs("get"),
        Scope.WATCHED,
        "Prometheus credentials and CA bundles a release names, by name, only when "
        "labelled modelrelease.dev/credentials=true; never listed or watched.",
        option="rbac.secrets",
    ),
    Permission(
        "",
        "events",
        _verbs("create"),
        Scope.WATCHED,
        "Events on releases (posted through kopf, in the release's namespace).",
    ),
    Permission(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        _verbs("get"),
        Scope.CLUSTER,
        "Whether the HTTPRoute CRD has mirror percent, and which VirtualService "
        "version Istio serves.",
    ),
    Permission(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        _verbs("list", "watch"),
        Scope.CLUSTER,
        "kopf watches the CRDs to notice when the ModelRelease CRD appears, changes or "
        "goes (its resource scanning), so an operator started before its CRDs still serves.",
    ),
    Permission(
        "gateway.networking.k8s.io",
        "httproutes",
        _verbs("list", "watch"),
        Scope.WATCHED,
        "kube.views: the routes the releases weight.",
        option="rbac.gatewayAPI",
    ),
    Permission(
        "gateway.networking.k8s.io",
        "httproutes",
        _verbs("get", "create", "patch"),
        Scope.WATCHED,
        "An existing route: a JSON patch of the managed rule's backendRefs and filters, "
        "tested against the rule as read; after a conflict the route is read again (get). "
        "An owned route (gatewayAPI.ownedRoute): server-side apply, a create the first time.",
        option="rbac.gatewayAPI",
    ),
    Permission(
        "networking.istio.io",
        "virtualservices",
        _verbs("list", "watch"),
        Scope.WATCHED,
        "kube.views: the VirtualServices the releases weight.",
        option="rbac.istio",
    ),
    Permission(
        "networking.istio.io",
        "virtualservices",
        _verbs("get", "create", "patch"),
        Scope.WATCHED,
        "An existing VirtualService: a JSON patch of the managed route's destinations and "
        "mirror, re-read after a conflict (get). An owned one (istio.ownedVirtualService): "
        "server-side apply, a create the first time.",
        option="rbac.istio",
    ),
    Permission(
        "coordination.k8s.io",
        "leases",
        _verbs("create", "get", "update"),
        Scope.OWN_NAMESPACE,
        "Leader election: one Lease, read, renewed and released by update (create only "
        "the first time; get and update limited to its name).",
        option="leaderElection.enabled",
    ),
    Permission(
        "",
        "namespaces",
        _verbs("list", "watch"),
        Scope.NAMESPACE_LIST,
        "kopf lists and watches the Namespaces when it serves some, not all: to resolve "
        "globs such as team-*, and to see named ones come and go. Refused, kopf retries "
        "the list for about a minute before it takes the names as they are, so the "
        "operator would start that much later.",
    ),
)


def granted(scope: Scope | None = None) -> set[tuple[str, str, str]]:
    """The table as (group, resource, verb) triples, of one scope or all."""
    return {
        (permission.group, permission.resource, verb)
        for permission in PERMISSIONS
        if scope is None or permission.scope is scope
        for verb in permission.verbs
    }


UNINSTALL_PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "apps",
        "deployments",
        _verbs("get", "patch"),
        Scope.OWN_NAMESPACE,
        "remove-finalizers (the chart's pre-delete hook) scales the operator's own "
        "Deployment to zero, by name, so it cannot add its finalizer back.",
    ),
    Permission(
        "",
        "pods",
        _verbs("list"),
        Scope.OWN_NAMESPACE,
        "remove-finalizers waits until none of the operator's pods is left.",
    ),
    Permission(
        "modelrelease.dev",
        "modelreleases",
        _verbs("list", "get", "patch"),
        Scope.WATCHED,
        "remove-finalizers lists the releases and merge-patches metadata.finalizers "
        "without the operator's; after a conflict it reads the release again (get).",
    ),
)
"""What the uninstall hook's own ServiceAccount is granted (``uninstall.py``); the
operator's ServiceAccount never gets these through it."""
