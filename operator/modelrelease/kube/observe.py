"""Reading what a pass needs from the cluster (runs in a worker thread).

The reads are answered by the watch-fed views (``kube.views.ViewReader``); only
credential Secrets are read from the API server, while metrics are queried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from modelrelease.api.constants import (
    CREDENTIALS_OPT_IN,
    LABEL_CREDENTIALS,
    Reason,
    TemplateKind,
)
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import MisdirectedAutoscaler, ModelReleaseSpec, PrometheusSpec
from modelrelease.core.credentials import not_opted_in, opted_in
from modelrelease.core.gpu import NodeGPUs, pod_gpus
from modelrelease.core.manifests import CANARY, STABLE, Owner, service_name
from modelrelease.core.observation import (
    DeploymentState,
    Problem,
    deployments_by_revision,
    revision_of_object,
    selected_revision,
)
from modelrelease.core.pods import PodState, pod_states
from modelrelease.core.slos import TemplateKey, template_keys
from modelrelease.kube.client import StoredSecret
from modelrelease.metrics.auth import CredentialsError, authorization_from_secret
from modelrelease.metrics.prometheus import ca_bundle_error
from modelrelease.metrics.provider import ProviderConfig
from modelrelease.routers.router import Router, RouterError, Routes, router_problem

Json = dict[str, Any]


class ClusterReader(Protocol):
    """What a pass reads (``kube.views.ViewReader``)."""

    def list_deployments(self, namespace: str, release: str) -> list[Json]: ...

    def list_pods(self, namespace: str, release: str) -> list[Json]: ...

    def get_service(self, namespace: str, name: str) -> Json | None: ...

    def get_slo_template(self, namespace: str, name: str) -> Json | None: ...

    def get_cluster_slo_template(self, name: str) -> Json | None: ...

    def get_secret(self, namespace: str, name: str) -> StoredSecret | None: ...

    def gpu_nodes(self) -> tuple[NodeGPUs, ...] | None:
        """The GPU view; None (no check) when the operator may not see Nodes or Pods."""
        ...

    def misdirected_autoscalers(
        self, namespace: str, release: str
    ) -> tuple[MisdirectedAutoscaler, ...] | None:
        """HPAs aimed at the release's Deployments; None when the operator may not list HPAs."""
        ...


@dataclass(frozen=True)
class ClusterView:
    deployments: dict[str, DeploymentState] = field(default_factory=dict)
    routes: Routes | None = None
    templates: dict[TemplateKey, Json | None] = field(default_factory=dict)
    provider_config: ProviderConfig | None = None
    problems: tuple[Problem, ...] = ()
    gpu_nodes: tuple[NodeGPUs, ...] | None = None  # None: not read this pass
    pods: tuple[PodState, ...] = ()
    # The owned objects as read, for drift repair: Deployments by revision, Services by role.
    deployment_objects: dict[str, Json] = field(default_factory=dict)
    services: dict[str, Json | None] = field(default_factory=dict)
    autoscalers: tuple[MisdirectedAutoscaler, ...] | None = None  # None: may not list HPAs

    @property
    def selected(self) -> dict[str, str | None]:
        """The revision each owned Service (stable, canary) selects; None when it is missing."""
        return {role: selected_revision(service) for role, service in self.services.items()}


def observe_cluster(
    kube: ClusterReader,
    router: Router | None,
    owner: Owner,
    spec: ModelReleaseSpec,
    need_provider: bool,
    releasing: bool = False,
) -> ClusterView:
    """What the pass needs. ``releasing`` (a challenger is, or is about to be, in
    flight) adds the release's pods and, when the template asks for GPUs, the
    GPU view of the nodes."""
    problems: list[Problem] = []
    deployment_objects = {
        revision_of_object(obj): obj
        for obj in kube.list_deployments(owner.namespace, owner.name)
        if revision_of_object(obj)
    }
    deployments = deployments_by_revision(deployment_objects.values())
    services = {
        role: kube.get_service(owner.namespace, service_name(owner.name, role))
        for role in (STABLE, CANARY)
    }
    pods: tuple[PodState, ...] = ()
    gpu_nodes = None
    if releasing:
        pods = pod_states(kube.list_pods(owner.namespace, owner.name))
        # An autoscaled cluster adds nodes for Pending pods: what is free now says little.
        asks_for_gpus = pod_gpus(spec.template.get("spec") or {}) > 0
        if asks_for_gpus and not spec.capacity.autoscaled_nodes:
            gpu_nodes = kube.gpu_nodes()
    routes = _routes(router, problems)
    templates = _templates(kube, owner.namespace, spec)
    provider_config = None
    if need_provider and spec.analysis is not None:
        provider_config = _provider_config(
            kube, owner.namespace, spec.analysis.prometheus, problems
        )
    return ClusterView(
        deployments,
        routes,
        templates,
        provider_config,
        tuple(problems),
        gpu_nodes=gpu_nodes,
        pods=pods,
        deployment_objects=deployment_objects,
        services=services,
        autoscalers=kube.misdirected_autoscalers(owner.namespace, owner.name),
    )


def _routes(router: Router | None, problems: list[Problem]) -> Routes | None:
    if router is None:
        return None
    try:
        return router.get_routes()
    except RouterError as error:
        problems.append(router_problem(error))
    return None


def _templates(
    kube: ClusterReader, namespace: str, spec: ModelReleaseSpec
) -> dict[TemplateKey, Json | None]:
    found: dict[TemplateKey, Json | None] = {}
    for kind, name in template_keys(spec.analysis):
        if kind is TemplateKind.SLO_TEMPLATE:
            found[(kind, name)] = kube.get_slo_template(namespace, name)
        else:
            found[(kind, name)] = kube.get_cluster_slo_template(name)
    return found


def _provider_config(
    kube: ClusterReader, namespace: str, prometheus: PrometheusSpec, problems: list[Problem]
) -> ProviderConfig | None:
    authorization = None
    sources = []
    if prometheus.auth_secret_ref is not None:
        name = prometheus.auth_secret_ref.name
        where = "analysis.prometheus.authSecretRef"
        data = _credentials(kube, namespace, name, where, problems)
        if data is None:
            return None
        try:
            authorization = authorization_from_secret(data)
        except CredentialsError as error:
            problems.append(Problem(Reason.INVALID_SPEC, f"Secret {namespace}/{name}: {error}"))
            return None
        sources.append(f"{namespace}/{name}")
    ca_bundle = None
    if prometheus.ca_secret_ref is not None:
        ref = prometheus.ca_secret_ref
        where = "analysis.prometheus.caSecretRef"
        data = _credentials(kube, namespace, ref.name, where, problems)
        if data is None:
            return None
        if ref.key not in data:
            problems.append(_missing_secret(namespace, ref.name, where, key=ref.key))
            return None
        ca_bundle = data[ref.key]
        invalid = ca_bundle_error(ca_bundle)
        if invalid is not None:
            problems.append(
                Problem(
                    Reason.INVALID_SPEC,
                    f"{where}: key {ref.key!r} of Secret {namespace}/{ref.name} is not a PEM CA "
                    f"bundle ({invalid}); put the CA certificate(s) there in PEM form",
                )
            )
            return None
        sources.append(f"{namespace}/{ref.name}")
    return ProviderConfig(
        address=prometheus.address,
        timeout_seconds=parse_duration(prometheus.timeout),
        authorization=authorization,
        ca_bundle=ca_bundle,
        insecure_skip_verify=prometheus.insecure_skip_verify,
        secrets=tuple(sources),
    )


def _credentials(
    kube: ClusterReader, namespace: str, name: str, where: str, problems: list[Problem]
) -> dict[str, str] | None:
    """The data of a Secret in the release's namespace, only if it is opted in."""
    secret = kube.get_secret(namespace, name)
    if secret is None:
        problems.append(_missing_secret(namespace, name, where))
        return None
    if not opted_in(secret.labels):
        problems.append(not_opted_in(namespace, name, where))
        return None
    return secret.decoded()


def _missing_secret(namespace: str, name: str, where: str, key: str | None = None) -> Problem:
    what = f"Secret {namespace}/{name}" + (f" with key {key!r}" if key else "")
    return Problem(
        Reason.SECRET_NOT_FOUND,
        f"{where} names {what}, which does not exist; create it (labelled "
        f"{LABEL_CREDENTIALS}={CREDENTIALS_OPT_IN}) or fix the reference",
    )
