"""kopf handlers: thin. Parse at the boundary, observe, ``plan``, act, write status once.

Reconciliation is level-based: a timer runs one pass per release every few
seconds; each pass reads the whole state (status and cluster), so a restarted
operator, a missed event or a manual edit all converge the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import kopf
from pydantic import ValidationError

from modelrelease import telemetry
from modelrelease.api.constants import (
    ANNOTATION_ACTION,
    GROUP,
    PLURAL_MODEL_RELEASES,
    VERSION,
    Reason,
)
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus, RevisionStatus
from modelrelease.core.comparison import (
    MetricQueries,
    MetricReading,
    active_comparison,
    comparison_due,
    comparison_queries,
)
from modelrelease.core.decision import Decision
from modelrelease.core.gate import gate_seed, webhook_due
from modelrelease.core.manifests import Owner
from modelrelease.core.observation import Observation, Problem, SLOResult, parse_action
from modelrelease.core.plan import plan, plan_invalid_spec, with_problems
from modelrelease.core.revision import revision_of
from modelrelease.core.slos import ResolvedSLO, checks_due, resolve_slos
from modelrelease.gates.webhook import (
    CallResult,
    GateRequest,
    RevisionRef,
    call_webhook,
    webhook_payload,
)
from modelrelease.kube.act import act
from modelrelease.kube.client import KubeClient
from modelrelease.kube.errors import KubeError
from modelrelease.kube.observe import ClusterView, observe_cluster
from modelrelease.kube.patches import merge_patch
from modelrelease.metrics.comparison import read_comparison
from modelrelease.metrics.factory import ProviderCache
from modelrelease.metrics.measurement import measure_slos
from modelrelease.metrics.prometheus import PROMETHEUS
from modelrelease.metrics.templating import (
    QueryContext,
    TemplateError,
    UnknownVariableError,
    prometheus_duration,
)
from modelrelease.routers.factory import new_router
from modelrelease.routers.router import Router, RouterError
from modelrelease.settings import OperatorConfig

Body = Any  # kopf.Body: a read-only mapping view of the object


@dataclass
class Runtime:
    """What lives as long as the operator process."""

    kube: KubeClient
    providers: ProviderCache
    config: OperatorConfig
    http: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)  # webhook calls


def register(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """Attach the handlers to ``registry``."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the Kubernetes client of ``kube``: in-cluster
        # service account, or $KUBECONFIG.
        return kopf.login_via_client(**kwargs)

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL_MODEL_RELEASES,
        id="reconcile",
        interval=runtime.config.reconcile_interval,
        registry=registry,
    )
    async def reconcile_release(
        body: Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any
    ) -> None:
        await reconcile(runtime, body, patch, logger)

    @kopf.on.delete(
        GROUP,
        VERSION,
        PLURAL_MODEL_RELEASES,
        id="finalize",
        retries=5,
        backoff=2,
        registry=registry,
    )
    async def finalize_release(body: Body, logger: kopf.Logger, **_: Any) -> None:
        await finalize(runtime, body, logger)

    @kopf.on.cleanup(registry=registry)
    async def close_connections(**_: Any) -> None:
        await runtime.providers.close()
        await runtime.http.aclose()


# --- one pass ----------------------------------------------------------------------------


async def reconcile(runtime: Runtime, body: Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
    owner = _owner(body)
    generation = int(body["metadata"].get("generation") or 0)
    raw_status = dict(body.get("status") or {})
    status = ModelReleaseStatus.model_validate(raw_status)
    now = datetime.now(UTC)
    try:
        spec = ModelReleaseSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as error:
        decision = plan_invalid_spec(status, _validation_message(error), generation, now)
        _write_status(patch, raw_status, decision.status)
        return
    try:
        decision, problems = await _pass(runtime, owner, spec, status, body, now, generation)
        result = "ok"
    except KubeError as error:
        logger.warning(f"reconcile failed, retrying next pass: {error}")
        problems = [Problem(Reason.RECONCILE_ERROR, str(error))]
        decision, result = Decision(status=status), "error"
    _post_events(body, decision, logger)
    _write_status(patch, raw_status, with_problems(decision.status, problems, generation, now))
    if decision.consume_action:
        patch.setdefault("metadata", {}).setdefault("annotations", {})[ANNOTATION_ACTION] = None
    telemetry.record(owner.namespace, owner.name, decision, result)


async def _pass(
    runtime: Runtime,
    owner: Owner,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    body: Body,
    now: datetime,
    generation: int,
) -> tuple[Decision, list[Problem]]:
    router, router_problems = _router(runtime, owner, spec)
    due = checks_due(spec.analysis, status, now)
    comparing = comparison_due(spec, status, now)
    view = await asyncio.to_thread(
        observe_cluster,
        runtime.kube,
        router,
        owner,
        spec,
        due or comparing,
        _releasing(spec, status),
    )
    context = _query_context(owner, spec, status)
    slos, slo_problems = resolve_slos(spec.analysis, view.templates, context)
    queries, comparison_problems = _comparison_queries(spec, status, context, comparing)
    problems = (*router_problems, *view.problems, *slo_problems, *comparison_problems)
    results = await _measure(runtime, view, slos) if due and not problems else None
    readings = await _compare(runtime, view, queries) if comparing and not problems else None
    gate_result = await _call_gate(runtime, owner, spec, status, now) if not problems else None
    annotations = body["metadata"].get("annotations") or {}
    action, invalid_action = parse_action(annotations.get(ANNOTATION_ACTION))
    observation = Observation(
        owner=owner,
        generation=generation,
        deployments=view.deployments,
        routes=view.routes,
        problems=problems,
        slo_results=results,
        action=action,
        invalid_action=invalid_action,
        slos=tuple(slos),
        comparison=readings,
        gate_result=gate_result,
        gpu_nodes=view.gpu_nodes,
        pods=view.pods,
    )
    decision = plan(spec, status, observation, now)
    act_problems = await asyncio.to_thread(
        act, runtime.kube, router, owner, spec, decision, view.deployments
    )
    return decision, act_problems


def _releasing(spec: ModelReleaseSpec, status: ModelReleaseStatus) -> bool:
    """A challenger is in flight, or the spec's revision is about to become one."""
    if status.challenger is not None:
        return True
    champion = status.champion.revision if status.champion else None
    return champion is not None and revision_of(spec.model, spec.template) != champion


def _router(
    runtime: Runtime, owner: Owner, spec: ModelReleaseSpec
) -> tuple[Router | None, list[Problem]]:
    try:
        return new_router(
            spec.traffic, runtime.kube, owner.namespace, owner.name, spec.port, owner
        ), []
    except RouterError as error:
        return None, [Problem(Reason.INVALID_SPEC, str(error))]


async def _measure(
    runtime: Runtime, view: ClusterView, slos: list[ResolvedSLO]
) -> dict[str, SLOResult] | None:
    if view.provider_config is None:
        return None
    async with runtime.providers.use(PROMETHEUS, view.provider_config) as provider:
        return await measure_slos(provider, slos)


def _comparison_queries(
    spec: ModelReleaseSpec, status: ModelReleaseStatus, context: QueryContext, comparing: bool
) -> tuple[list[MetricQueries], list[Problem]]:
    comparison = active_comparison(spec, status) if comparing else None
    if comparison is None:
        return [], []
    if spec.analysis is None:
        return [], [
            Problem(
                Reason.INVALID_SPEC,
                "a comparison needs spec.analysis.prometheus to read its metrics; add it",
            )
        ]
    try:
        return comparison_queries(comparison, context), []
    except UnknownVariableError as error:
        return [], [Problem(Reason.UNKNOWN_QUERY_VARIABLE, f"comparison metric: {error}")]
    except TemplateError as error:
        return [], [Problem(Reason.INVALID_SPEC, f"comparison metric: {error}")]


async def _compare(
    runtime: Runtime, view: ClusterView, queries: list[MetricQueries]
) -> dict[str, MetricReading] | None:
    if view.provider_config is None or not queries:
        return None
    async with runtime.providers.use(PROMETHEUS, view.provider_config) as provider:
        return await read_comparison(provider, queries)


async def _call_gate(
    runtime: Runtime,
    owner: Owner,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    now: datetime,
) -> CallResult | None:
    """Call the webhook stage in progress when a call is due."""
    stage = webhook_due(spec, status, now, gate_seed(owner.namespace, owner.name))
    current = status.current_stage
    if stage is None or current is None:
        return None
    request = GateRequest(
        namespace=owner.namespace,
        name=owner.name,
        model=spec.model,
        champion=_revision_ref(status.champion),
        challenger=_revision_ref(status.challenger),
        stage_index=current.index,
        stage_name=current.name,
        attempt=current.gate_attempts + 1,
        metadata=stage.metadata,
    )
    return await call_webhook(
        stage.url, webhook_payload(request), parse_duration(stage.timeout), runtime.http
    )


def _revision_ref(revision: RevisionStatus | None) -> RevisionRef | None:
    if revision is None or revision.revision is None:
        return None
    return RevisionRef(revision.revision, revision.model_version)


def _query_context(
    owner: Owner, spec: ModelReleaseSpec, status: ModelReleaseStatus
) -> QueryContext:
    champion = status.champion.revision if status.champion else None
    challenger = status.challenger.revision if status.challenger else None
    under_test = challenger or champion or ""
    interval = parse_duration(spec.analysis.interval) if spec.analysis else 30.0
    return QueryContext(
        namespace=owner.namespace,
        release=owner.name,
        revision=under_test,
        champion=champion or "",
        challenger=challenger or "",
        interval=prometheus_duration(interval),
    )


# --- deletion --------------------------------------------------------------------------------


async def finalize(runtime: Runtime, body: Body, logger: kopf.Logger) -> None:
    """Give the route back before the owned Services disappear with the release."""
    owner = _owner(body)
    telemetry.forget(owner.namespace, owner.name)
    try:
        spec = ModelReleaseSpec.model_validate(dict(body.get("spec") or {}))
        router = new_router(
            spec.traffic, runtime.kube, owner.namespace, owner.name, spec.port, owner
        )
    except (ValidationError, RouterError) as error:
        logger.info(f"no route to restore: {error}")
        return
    try:
        await asyncio.to_thread(router.finalize)
    except (KubeError, RouterError) as error:
        raise kopf.TemporaryError(f"could not restore the route: {error}", delay=2) from error
    logger.info("route restored: all traffic to the stable Service, no canary, no mirror")


# --- boundary helpers ----------------------------------------------------------------------


def _owner(body: Body) -> Owner:
    meta = body["metadata"]
    return Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def _validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "spec"
        parts.append(f"spec.{where}: {item['msg']}")
    return "; ".join(parts)


def _post_events(body: Body, decision: Decision, logger: kopf.Logger) -> None:
    for event in decision.events:
        kopf.event(body, type=event.type.value, reason=event.reason.value, message=event.message)
        log = logger.warning if event.type.value == "Warning" else logger.info
        log(f"{event.reason.value}: {event.message}")


def _write_status(patch: kopf.Patch, old: dict[str, Any], status: ModelReleaseStatus) -> None:
    """The one status write of the pass (nothing when nothing changed)."""
    new = status.model_dump(mode="json", exclude_none=True, by_alias=True)
    diff = merge_patch(old, new)
    if diff:
        patch["status"] = diff
