"""Carrying out a decision, one write at a time, in the order ``core.actuation`` chose.

The order keeps traffic on Ready pods after every write (see
:mod:`modelrelease.core.actuation`). The first write that fails stops the
pass: later writes assumed it had happened, and the next pass starts from
what the cluster then shows. Owned objects are rewritten whenever they lost
a field the operator sets, whoever changed them (drift repair), and left
alone otherwise, so a release at rest makes no writes.
"""

from __future__ import annotations

from typing import Any

from modelrelease.api.constants import Reason
from modelrelease.api.models import ModelReleaseSpec
from modelrelease.core.actuation import (
    DeleteDeployment,
    EnsureDeployment,
    PointService,
    Scale,
    Serving,
    SetRoutes,
    Step,
    steps_for,
)
from modelrelease.core.decision import Decision
from modelrelease.core.manifests import (
    ANNOTATION_MANIFEST_HASH,
    Owner,
    deployment_manifest,
    deployment_name,
    drifted,
    service_manifest,
)
from modelrelease.core.observation import Problem
from modelrelease.kube.client import KubeClient
from modelrelease.kube.errors import KubeError
from modelrelease.kube.observe import ClusterView
from modelrelease.routers.meshless import MESHLESS
from modelrelease.routers.router import ConvergingRouter, Router, RouterError, router_problem

Json = dict[str, Any]


def serving(router: Router | None, view: ClusterView) -> Serving:
    """What carries traffic now, from the pass's view of the cluster."""
    return Serving(
        selected=view.selected,
        ready={rev: state.ready_replicas for rev, state in view.deployments.items()},
        replicas={rev: state.replicas for rev, state in view.deployments.items()},
        routes=view.routes,
        weighted=router is None or router.type != MESHLESS,
    )


def act(
    kube: KubeClient,
    router: Router | None,
    owner: Owner,
    spec: ModelReleaseSpec,
    decision: Decision,
    view: ClusterView,
) -> list[Problem]:
    """Apply the decision; return what could not be done, as problems for status."""
    writer = _Writer(kube, router, owner, spec, view)
    if isinstance(router, ConvergingRouter) and view.routes is not None:
        # A route the operator owns is written back first when someone changed it,
        # with the weights it has now; the steps then move those as decided.
        try:
            router.converge()
        except (RouterError, KubeError) as error:
            # The steps go on: they start from the weights the route has (which
            # converge keeps), and the writes before their first route write (capacity,
            # a Service moved onto Ready pods, a rollback's canary Service back on the
            # champion) are what keeps traffic on Ready pods while the route cannot be
            # written. That route write then fails the same way and stops the pass.
            return _steps(writer, decision, router, view) or [_problem(error)]
    return _steps(writer, decision, router, view)


def _steps(
    writer: _Writer, decision: Decision, router: Router | None, view: ClusterView
) -> list[Problem]:
    for step in steps_for(decision, serving(router, view)):
        try:
            writer.do(step)
        except (RouterError, KubeError) as error:
            return [_problem(error)]
    return []


def _problem(error: RouterError | KubeError) -> Problem:
    if isinstance(error, RouterError):
        return router_problem(error)
    return Problem(Reason.RECONCILE_ERROR, f"{error}; the next pass retries")


class _Writer:
    """Executes steps; skips a write when the object already is as wanted."""

    def __init__(
        self,
        kube: KubeClient,
        router: Router | None,
        owner: Owner,
        spec: ModelReleaseSpec,
        view: ClusterView,
    ):
        self._kube = kube
        self._router = router
        self._owner = owner
        self._spec = spec
        self._deployments: dict[str, Json] = view.deployment_objects
        self._services: dict[str, Json | None] = view.services

    def do(self, step: Step) -> None:
        namespace = self._owner.namespace
        match step:
            case EnsureDeployment(revision, replicas):
                self._ensure_deployment(revision, replicas)
            case Scale(revision, replicas):
                self._kube.scale_deployment(
                    namespace, deployment_name(self._owner.name, revision), replicas
                )
            case PointService(role, revision):
                manifest = service_manifest(self._spec, self._owner, role, revision)
                if _differs(manifest, self._services.get(role)):
                    self._kube.apply_service(manifest)
            case SetRoutes(routes):
                if self._router is not None:
                    self._router.set_routes(
                        routes.stable_weight, routes.canary_weight, routes.mirror_percent
                    )
            case DeleteDeployment(revision):
                self._kube.delete_deployment(namespace, deployment_name(self._owner.name, revision))

    def _ensure_deployment(self, revision: str, replicas: int) -> None:
        manifest = deployment_manifest(self._spec, self._owner, revision, replicas)
        current = self._deployments.get(revision)
        if _differs(manifest, current):
            self._kube.apply_deployment(manifest)
            return
        assert current is not None
        if int((current.get("spec") or {}).get("replicas", 1)) < replicas:
            self._kube.scale_deployment(
                self._owner.namespace, manifest["metadata"]["name"], replicas
            )


def _differs(manifest: Json, current: Json | None) -> bool:
    """Whether an owned object must be (re)written: missing, older, or edited by someone."""
    if current is None:
        return True
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    wanted_hash = manifest["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH]
    return annotations.get(ANNOTATION_MANIFEST_HASH) != wanted_hash or drifted(manifest, current)
