"""kopf handlers: thin. Parse at the boundary, observe, ``plan``, act, write status once.

Reconciliation is level-based and event-driven: one loop per release (a kopf
daemon, timed by ``scheduler``) runs a pass when the release or an object it
reads changes, when ``plan()`` says the next thing is due, and at a slow
jittered resync. Each pass reads the whole state (status, and the cluster from
the watch-fed ``kube.views``), so a restarted operator, a missed event or a
manual edit all converge the same way; a pass makes API requests only to write
(and to read credential Secrets while it queries Prometheus).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
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
from modelrelease.api.models import (
    ModelReleaseSpec,
    ModelReleaseStatus,
    RevisionStatus,
    WebhookStage,
)
from modelrelease.backoff import Backoff, Mark
from modelrelease.core.comparison import (
    MetricQueries,
    MetricReading,
    active_comparison,
    comparison_queries,
)
from modelrelease.core.conditions import degraded_patch
from modelrelease.core.decision import Decision
from modelrelease.core.gate import gate_seed
from modelrelease.core.guard import GuardQueries, GuardReading, guard_queries
from modelrelease.core.manifests import Owner
from modelrelease.core.needs import IDLE_PHASES, needs, quiet
from modelrelease.core.notifications import DeliveryKey, record, transitions
from modelrelease.core.observation import (
    Observation,
    Problem,
    SLOResult,
    action_argument,
    parse_action,
)
from modelrelease.core.plan import plan, plan_invalid_spec, with_problems
from modelrelease.core.slos import ResolvedSLO, resolve_slos
from modelrelease.gates.webhook import (
    CallResult,
    GateRequest,
    RevisionRef,
    call_webhook,
    webhook_payload,
)
from modelrelease.kube.act import act
from modelrelease.kube.client import KubeClient
from modelrelease.kube.errors import KubeError, WriteConflictError
from modelrelease.kube.observe import ClusterView, observe_cluster
from modelrelease.kube.patches import merge_patch
from modelrelease.kube.views import Change, ViewReader, Views
from modelrelease.leader import LeaderElector
from modelrelease.metrics.comparison import read_comparison
from modelrelease.metrics.factory import ProviderCache
from modelrelease.metrics.guard import read_guard
from modelrelease.metrics.measurement import measure_slos
from modelrelease.metrics.prometheus import PROMETHEUS
from modelrelease.metrics.templating import (
    QueryContext,
    TemplateError,
    UnknownVariableError,
    prometheus_duration,
)
from modelrelease.notify.sender import Notifier
from modelrelease.routers.factory import RouterStore, new_router
from modelrelease.routers.router import Router, RouterError
from modelrelease.scheduler import Outcome, Scheduler, interests_of
from modelrelease.settings import OperatorConfig

Body = Any  # kopf.Body: a read-only mapping view of the object


@dataclass
class Runtime:
    """What lives as long as the operator process."""

    kube: KubeClient
    views: Views
    providers: ProviderCache
    config: OperatorConfig
    http: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)  # webhook calls
    backoff: Backoff = field(default_factory=Backoff)
    leader: LeaderElector | None = None  # None: no leader election, this replica always acts
    scheduler: Scheduler = field(init=False)
    notifier: Notifier = field(init=False)
    # The resourceVersion of each release's last write by this operator.
    written: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(
            self.config.worker_limit, self.config.reconcile_interval, self.config.resync_interval
        )
        # A settled notification wakes its release, whose next pass records it in status.
        self.notifier = Notifier(self.kube.get_secret, self.scheduler.wake)

    def behind(self, key: tuple[str, str], body: Body) -> bool:
        """Whether ``body`` is older than this operator's last write of the release.

        kopf updates a release's body when its event arrives, which can be after a
        change elsewhere wakes the next pass. A pass from that older body would
        decide again what the last pass decided before it, and when that leaves
        status unchanged, no precondition would stop it from acting on it. The
        event of the write wakes the pass that reads it. resourceVersions are etcd
        revisions, integers that only grow (see ``kube.views``).
        """
        written = self.written.get(key)
        version = str(body["metadata"].get("resourceVersion") or "")
        try:
            return written is not None and int(version) < int(written)
        except ValueError:
            return False  # not comparable: the status write's precondition still guards


def register(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """Attach the handlers to ``registry``."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the Kubernetes client of ``kube``: in-cluster
        # service account, or $KUBECONFIG.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def start_views(logger: kopf.Logger, **_: Any) -> None:
        await start(runtime, logger)

    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL_MODEL_RELEASES,
        id="reconcile",
        cancellation_timeout=CANCELLATION_SECONDS,
        registry=registry,
    )
    async def reconcile_release(
        body: Body, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
    ) -> None:
        # kopf keeps ``body`` fresh as the release's events arrive.
        await runtime.scheduler.serve(
            _key(body),
            lambda: reconcile(runtime, body, logger),
            stopped.wait,
            stopped.is_set,
        )

    @kopf.on.event(GROUP, VERSION, PLURAL_MODEL_RELEASES, id="wake", registry=registry)
    async def wake_release(body: Body, **_: Any) -> None:
        # An action annotation or a spec edit is acted upon at once; an action goes first
        # in line. Async: it runs in the event loop, which alone may touch the triggers.
        annotations = body.get("metadata", {}).get("annotations") or {}
        runtime.scheduler.wake(_key(body), urgent=ANNOTATION_ACTION in annotations)

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
        runtime.views.stop()
        await runtime.providers.close()
        await runtime.http.aclose()
        await runtime.notifier.close()


CANCELLATION_SECONDS = 30.0
"""A release being deleted (or the operator stopping) lets a running pass finish this long."""
SYNC_REPORT_SECONDS = 30.0


async def start(runtime: Runtime, logger: kopf.Logger) -> None:
    """Start the views; passes begin only once every view is listed (kopf runs
    the daemons after the startup handlers), so no pass acts on partial data."""
    loop = asyncio.get_running_loop()
    # Passes run their blocking I/O in threads: enough of them for the worker bound.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=runtime.config.worker_limit + 4))

    def changed(change: Change) -> None:  # called in the views' threads
        loop.call_soon_threadsafe(runtime.scheduler.changed, change)

    runtime.views.on_change = changed
    runtime.notifier.start()
    runtime.kube.written = runtime.views.remember
    await asyncio.to_thread(runtime.views.start)
    while not await asyncio.to_thread(runtime.views.wait_synced, SYNC_REPORT_SECONDS):
        logger.warning(f"still listing {', '.join(runtime.views.unsynced())}; passes wait")
    logger.info("views listed: passes start")


# --- one pass ----------------------------------------------------------------------------


class StatusUnreadableError(Exception):
    """The status does not parse: the operator cannot know where the release stands."""


async def reconcile(runtime: Runtime, body: Body, logger: kopf.Logger) -> Outcome:
    """One pass, or nothing while the release backs off after failures (invariant I6).

    A stale copy of the release (a newer one was written since) ends the pass
    before any write; the event of the newer one wakes the next pass. API
    errors back off with jitter; any other exception becomes a Degraded
    condition.
    """
    if runtime.leader is not None and not runtime.leader.may_act():
        # A standby: its watches stay warm, the leader runs the passes; winning the
        # Lease wakes every release (``Scheduler.wake_all``).
        return Outcome()
    owner = _owner(body)
    key = (owner.namespace, owner.name)
    if runtime.behind(key, body):
        logger.debug("the release's last write has not arrived yet; its event wakes the pass")
        return Outcome(in_flight=True)
    now = time.monotonic()
    mark = _mark(body)
    if not runtime.backoff.ready(key, now, mark):
        return Outcome(retry_in=runtime.backoff.remaining(key, now, mark))
    try:
        failed, outcome = await _reconcile(runtime, owner, body, logger)
    except WriteConflictError as error:
        logger.debug(f"the release changed while this pass ran, reading it again: {error}")
        telemetry.observe_pass(time.monotonic() - now, "conflict")
        return Outcome(in_flight=True)
    except KubeError as error:
        delay = runtime.backoff.failed(key, time.monotonic(), mark)
        logger.warning(f"reconcile failed, retrying in {delay:.0f}s: {error}")
        telemetry.record(owner.namespace, owner.name, None, "error")
        telemetry.observe_pass(time.monotonic() - now, "error")
        return Outcome(retry_in=delay)
    except Exception as error:
        delay = runtime.backoff.failed(key, time.monotonic(), mark)
        logger.exception(f"unexpected error in the reconcile pass, retrying in {delay:.0f}s")
        await _report_unexpected(runtime, owner, body, error, delay, logger)
        telemetry.record(owner.namespace, owner.name, None, "error")
        telemetry.observe_pass(time.monotonic() - now, "error")
        return Outcome(retry_in=delay)
    telemetry.observe_pass(time.monotonic() - now, "error" if failed else "ok")
    if failed:
        delay = runtime.backoff.failed(key, time.monotonic(), mark)
        logger.warning(f"some writes failed, retrying in {delay:.0f}s")
        return Outcome(retry_in=delay, interests=outcome.interests)
    runtime.backoff.succeeded(key)
    return outcome


async def _reconcile(
    runtime: Runtime, owner: Owner, body: Body, logger: kopf.Logger
) -> tuple[bool, Outcome]:
    """Observe, decide, write; whether a write to the cluster failed, and when the
    next pass is due.

    The writes come in an order that is safe to stop after any of them:
    1. the action annotation is consumed (a crash after it loses the action,
       it never applies it twice: an approval is never reused for a later gate);
    2. the decided status is written, with the resourceVersion the decision was
       made from as a precondition, before anything is acted upon: a crash
       after it leaves status ahead of the cluster, and the next pass completes
       the writes from it; a stale decision is never acted upon;
    3. the cluster writes, in the order of ``core.actuation``;
    4. what could not be done, into status; then the Events.
    """
    generation = int(body["metadata"].get("generation") or 0)
    version = str(body["metadata"].get("resourceVersion") or "")
    key = (owner.namespace, owner.name)
    raw_status = dict(body.get("status") or {})
    try:
        status = ModelReleaseStatus.model_validate(raw_status)
    except ValidationError as error:
        raise StatusUnreadableError(_validation_message(error, "status")) from error
    now = datetime.now(UTC)
    try:
        spec = _spec(runtime, body)
    except ValidationError as error:
        decision = plan_invalid_spec(status, _validation_message(error, "spec"), generation, now)
        await _write_status(runtime, owner, raw_status, decision.status, version)
        telemetry.record(owner.namespace, owner.name, decision, "ok")
        return False, Outcome()  # the next edit of the spec wakes it
    reader = ViewReader(runtime.views, runtime.kube)
    decision, view, router = await _decide(
        runtime, reader, owner, spec, status, body, now, generation
    )
    problems_told = runtime.notifier.problems(key)
    decision, recorded = _notifications(runtime, owner, spec, status, decision, now, problems_told)
    runtime.kube.begin_pass()  # fault injection (chaos suite) counts the writes of a pass
    if decision.consume_action:
        version = await asyncio.to_thread(
            runtime.kube.remove_release_annotation,
            owner.namespace,
            owner.name,
            ANNOTATION_ACTION,
            version,
        )
        runtime.written[(owner.namespace, owner.name)] = version
    version = await _write_status(runtime, owner, raw_status, decision.status, version)
    runtime.notifier.recorded(key, recorded)
    problems = await asyncio.to_thread(act, runtime.kube, router, owner, spec, decision, view)
    if problems:
        after = with_problems(decision.status, problems, generation, now)
        await _write_status(runtime, owner, _dump(decision.status), after, version)
    _post_events(body, decision, logger)
    runtime.notifier.clear_problems(key, problems_told)  # posted as Events just now
    _send_notifications(runtime, owner, spec, status, decision, generation)
    telemetry.record(owner.namespace, owner.name, decision, "error" if problems else "ok", spec)
    outcome = Outcome(
        requeue_after=decision.requeue_after,
        in_flight=_in_flight(owner, spec, decision.status, now),
        interests=interests_of(owner.namespace, owner.name, spec, decision.status),
    )
    return any(problem.reason is Reason.RECONCILE_ERROR for problem in problems), outcome


async def _decide(
    runtime: Runtime,
    reader: ViewReader,
    owner: Owner,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    body: Body,
    now: datetime,
    generation: int,
) -> tuple[Decision, ClusterView, Router | None]:
    """needs -> observe -> plan: one round trip."""
    router, router_problems = _router(reader, owner, spec)
    wanted = needs(spec, status, now, gate_seed(owner.namespace, owner.name))
    # While releasing, the metrics configuration is checked on every pass, so a Secret
    # that cannot be used holds the challenger before it gets any traffic.
    view = await asyncio.to_thread(
        observe_cluster,
        reader,
        router,
        owner,
        spec,
        wanted.metrics or wanted.releasing,
        wanted.releasing,
    )
    context = _query_context(owner, spec, status)
    slos, slo_problems = resolve_slos(spec.analysis, view.templates, context)
    queries, comparison_problems = _comparison_queries(spec, status, context, wanted.comparison)
    problems = (*router_problems, *view.problems, *slo_problems, *comparison_problems)
    results = await _measure(runtime, view, slos) if wanted.slos and not problems else None
    readings = (
        await _compare(runtime, view, queries) if wanted.comparison and not problems else None
    )
    guard = guard_queries(spec, status, slos, now) if wanted.guard and not problems else []
    guard_readings = await _read_guard(runtime, view, guard) if guard else None
    gate_result = None
    if wanted.gate is not None and not problems:
        gate_result = await _call_gate(runtime, owner, spec, status, wanted.gate)
    annotations = body["metadata"].get("annotations") or {}
    requested = annotations.get(ANNOTATION_ACTION)
    action, invalid_action = parse_action(requested)
    observation = Observation(
        owner=owner,
        generation=generation,
        deployments=view.deployments,
        routes=view.routes,
        problems=problems,
        slo_results=results,
        action=action,
        action_argument=action_argument(requested),
        invalid_action=invalid_action,
        slos=tuple(slos),
        comparison=readings,
        gate_result=gate_result,
        guard_queries=tuple(guard),
        guard=guard_readings,
        gpu_nodes=view.gpu_nodes,
        pods=view.pods,
        selected=view.selected,
        autoscalers=view.autoscalers,
    )
    return plan(spec, status, observation, now), view, router


PENDING_NOTIFICATIONS_RECHECK = 30.0
"""While notifications are pending, a pass comes at least this often (one the sender could
not take, its queue full, is enqueued again)."""


def _notifications(
    runtime: Runtime,
    owner: Owner,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    decision: Decision,
    now: datetime,
    problems: list[str],
) -> tuple[Decision, list[DeliveryKey]]:
    """The outbox in the decided status (``core.notifications``): this pass's transitions
    added, what the sender settled taken out; and the settled deliveries that the status
    write records."""
    key = (owner.namespace, owner.name)
    outbox = record(
        spec.notifications,
        status.pending_notifications,
        transitions(owner.uid, status, decision.status, now),
        runtime.notifier.settled(key),
        problems,
        status.notified,
    )
    decision.status.pending_notifications = outbox.pending
    decision.status.notified = outbox.notified
    requeue = decision.requeue_after
    if outbox.pending:
        requeue = min(requeue or PENDING_NOTIFICATIONS_RECHECK, PENDING_NOTIFICATIONS_RECHECK)
    events = (*decision.events, *outbox.events)
    return replace(decision, events=events, requeue_after=requeue), outbox.recorded


def _send_notifications(
    runtime: Runtime,
    owner: Owner,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    decision: Decision,
    generation: int,
) -> None:
    """Hand what is pending to the sender (never waits), once status holds it; check the
    receivers' Secrets when the spec changed."""
    key = (owner.namespace, owner.name)
    runtime.notifier.enqueue(
        key, owner.name, decision.status.pending_notifications, spec.notifications
    )
    if spec.notifications is not None and status.observed_generation != generation:
        runtime.notifier.check(key, spec.notifications)


def _in_flight(
    owner: Owner, spec: ModelReleaseSpec, status: ModelReleaseStatus, now: datetime
) -> bool:
    """Not at rest: a stage or a wait runs, or a new revision is held from starting by a
    problem no watch may show the end of (a Secret labelled later: Secrets are not
    watched). Paused releases are at rest."""
    if not quiet(spec, status):
        return True
    releasing = needs(spec, status, now, gate_seed(owner.namespace, owner.name)).releasing
    return status.phase in IDLE_PHASES and releasing


async def _write_status(
    runtime: Runtime,
    owner: Owner,
    old: dict[str, Any],
    status: ModelReleaseStatus,
    version: str,
) -> str:
    """Write what changed in status (nothing when nothing did); the new resourceVersion."""
    diff = merge_patch(old, _dump(status))
    if not diff:
        return version
    written = await asyncio.to_thread(
        runtime.kube.patch_release_status, owner.namespace, owner.name, diff, version
    )
    runtime.written[(owner.namespace, owner.name)] = written
    return written


def _dump(status: ModelReleaseStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", exclude_none=True, by_alias=True)


async def _report_unexpected(
    runtime: Runtime,
    owner: Owner,
    body: Body,
    error: Exception,
    delay: float,
    logger: kopf.Logger,
) -> None:
    """Say in status that the release holds on an error; best effort (it may fail too)."""
    what = str(error) if isinstance(error, StatusUnreadableError) else repr(error)[:300]
    message = (
        f"the operator hit an unexpected error and holds the release (no traffic change): "
        f"{what}; it retries in {delay:.0f}s; see the operator log for the traceback"
    )
    raw_status = dict(body.get("status") or {})
    patch = degraded_patch(raw_status, Reason.RECONCILE_ERROR, message, datetime.now(UTC))
    version = str(body["metadata"].get("resourceVersion") or "")
    try:
        await asyncio.to_thread(
            runtime.kube.patch_release_status, owner.namespace, owner.name, patch, version
        )
    except KubeError as write_error:
        logger.warning(f"could not report the error in status: {write_error}")
    kopf.event(body, type="Warning", reason=Reason.RECONCILE_ERROR.value, message=message)


def _router(
    store: RouterStore, owner: Owner, spec: ModelReleaseSpec
) -> tuple[Router | None, list[Problem]]:
    try:
        return new_router(spec.traffic, store, owner.namespace, owner.name, spec.port, owner), []
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


async def _read_guard(
    runtime: Runtime, view: ClusterView, queries: list[GuardQueries]
) -> dict[str, GuardReading] | None:
    if view.provider_config is None:
        return None
    async with runtime.providers.use(PROMETHEUS, view.provider_config) as provider:
        return await read_guard(provider, queries)


async def _call_gate(
    runtime: Runtime,
    owner: Owner,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    stage: WebhookStage,
) -> CallResult | None:
    """Call the webhook stage in progress (``needs`` said a call is due)."""
    current = status.current_stage
    if current is None:
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


def _spec(runtime: Runtime, body: Body) -> ModelReleaseSpec:
    """The release's spec, with the cluster's analysis defaults where it leaves a field out."""
    return ModelReleaseSpec.model_validate(
        dict(body.get("spec") or {}), context=runtime.config.analysis_defaults.context()
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
    if runtime.leader is not None and not await runtime.leader.wait_leading():
        # Failing (not returning) keeps kopf's finalizer until the leader has restored the route.
        raise kopf.TemporaryError("this replica is a standby; the leader restores the route", 1)
    owner = _owner(body)
    telemetry.forget(owner.namespace, owner.name)
    runtime.written.pop((owner.namespace, owner.name), None)
    runtime.notifier.forget((owner.namespace, owner.name))
    try:
        spec = _spec(runtime, body)
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


def _key(body: Body) -> tuple[str, str]:
    return str(body["metadata"]["namespace"]), str(body["metadata"]["name"])


def _mark(body: Body) -> Mark:
    """What a user's change moves: the generation (a spec edit) and the action annotation."""
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return (int(metadata.get("generation") or 0), str(annotations.get(ANNOTATION_ACTION) or ""))


def _owner(body: Body) -> Owner:
    meta = body["metadata"]
    return Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def _validation_message(error: ValidationError, root: str) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{root}.{where}: {item['msg']}" if where else f"{root}: {item['msg']}")
    return "; ".join(parts)


def _post_events(body: Body, decision: Decision, logger: kopf.Logger) -> None:
    for event in decision.events:
        kopf.event(body, type=event.type.value, reason=event.reason.value, message=event.message)
        log = logger.warning if event.type.value == "Warning" else logger.info
        log(f"{event.reason.value}: {event.message}")
