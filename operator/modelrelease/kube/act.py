"""Carrying out a decision, in an order that never strands traffic (worker thread).

1. grow: create or update the spec's Deployment, scale revisions up;
2. point the Services at their revisions;
3. move traffic;
4. shrink: scale revisions down, delete old ones.

So capacity is there before traffic arrives, and traffic has left before
capacity goes. Every step is idempotent; a pass that stops half-way is
completed by the next one.
"""

from __future__ import annotations

from modelrelease.api.constants import Reason
from modelrelease.api.models import ModelReleaseSpec
from modelrelease.core.decision import Decision, Workloads
from modelrelease.core.manifests import (
    ANNOTATION_MANIFEST_HASH,
    CANARY,
    STABLE,
    Owner,
    deployment_manifest,
    deployment_name,
    service_manifest,
)
from modelrelease.core.observation import DeploymentState, Problem
from modelrelease.kube.client import KubeClient
from modelrelease.routers.router import (
    MirrorUnsupportedError,
    RouteNotFoundError,
    Router,
    RouterError,
    RuleNotFoundError,
)


def act(
    kube: KubeClient,
    router: Router | None,
    owner: Owner,
    spec: ModelReleaseSpec,
    decision: Decision,
    deployments: dict[str, DeploymentState],
) -> list[Problem]:
    """Apply the decision; return what could not be done, as problems for status."""
    kube.begin_pass()  # fault injection counts the writes of a pass
    workloads = decision.workloads
    if workloads is not None:
        _grow(kube, owner, spec, workloads, deployments)
        _services(kube, owner, spec, workloads)
    problems = _route(router, decision)
    if workloads is not None:
        _shrink(kube, owner, workloads, deployments)
    kube.end_pass()
    return problems


def _grow(
    kube: KubeClient,
    owner: Owner,
    spec: ModelReleaseSpec,
    workloads: Workloads,
    deployments: dict[str, DeploymentState],
) -> None:
    for revision, replicas in workloads.replicas.items():
        current = deployments.get(revision)
        if revision == workloads.apply_revision:
            manifest = deployment_manifest(spec, owner, revision, replicas)
            wanted_hash = manifest["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH]
            if current is None or current.manifest_hash != wanted_hash:
                kube.apply_deployment(manifest)
                continue
        if current is not None and replicas > current.replicas:
            kube.scale_deployment(owner.namespace, current.name, replicas)


def _shrink(
    kube: KubeClient, owner: Owner, workloads: Workloads, deployments: dict[str, DeploymentState]
) -> None:
    for revision, replicas in workloads.replicas.items():
        current = deployments.get(revision)
        if current is not None and replicas < current.replicas:
            kube.scale_deployment(owner.namespace, current.name, replicas)
    for revision in workloads.delete:
        kube.delete_deployment(owner.namespace, deployment_name(owner.name, revision))


def _services(kube: KubeClient, owner: Owner, spec: ModelReleaseSpec, workloads: Workloads) -> None:
    for role, revision in (
        (STABLE, workloads.stable_revision),
        (CANARY, workloads.canary_revision),
    ):
        if revision is None:
            continue
        manifest = service_manifest(spec, owner, role, revision)
        current = kube.get_service(owner.namespace, manifest["metadata"]["name"])
        current_hash = ((current or {}).get("metadata", {}).get("annotations") or {}).get(
            ANNOTATION_MANIFEST_HASH
        )
        if current_hash != manifest["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH]:
            kube.apply_service(manifest)


def _route(router: Router | None, decision: Decision) -> list[Problem]:
    routes = decision.routes
    if router is None or routes is None:
        return []
    try:
        router.set_routes(routes.stable_weight, routes.canary_weight, routes.mirror_percent)
    except MirrorUnsupportedError as error:
        return [Problem(Reason.MIRROR_NOT_SUPPORTED, str(error))]
    except RouteNotFoundError as error:
        return [Problem(Reason.ROUTE_NOT_FOUND, str(error))]
    except RuleNotFoundError as error:
        return [Problem(Reason.ROUTE_RULE_NOT_FOUND, str(error))]
    except RouterError as error:
        return [Problem(Reason.RECONCILE_ERROR, str(error))]
    return []
