"""The operator's own Prometheus metrics (what it decided, not what it measured).

Every per-release value comes from the status (or the routes) the pass just
decided: no extra API or Prometheus request. The mapping from a status to its
gauge samples is the pure :func:`release_samples`; :class:`ReleaseSeries`
applies it, removing the series a release no longer has (a check of an earlier
stage, a finished comparison) and, on deletion, every series of the release
(:func:`forget`). docs/metrics.md lists every metric.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.metrics import MetricWrapperBase

from modelrelease import __version__
from modelrelease.api.constants import Phase, Reason, Verdict
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import CurrentStage, ModelReleaseSpec, ModelReleaseStatus
from modelrelease.core.decision import Decision
from modelrelease.core.routes import FULL, Routes, stable_routes

RELEASE_LABELS = ["namespace", "release"]

# --- per release: counters -------------------------------------------------------------------

RECONCILES = Counter(
    "modelrelease_reconcile_total", "Reconcile passes by result", [*RELEASE_LABELS, "result"]
)
EVENTS = Counter(
    "modelrelease_events_total", "Events posted, by reason", [*RELEASE_LABELS, "reason"]
)
ROLLBACKS = Counter("modelrelease_rollbacks_total", "Rollbacks of challengers", RELEASE_LABELS)
PROMOTIONS = Counter("modelrelease_promotions_total", "Promotions of challengers", RELEASE_LABELS)
INCONCLUSIVE = Counter(
    "modelrelease_comparisons_inconclusive_total",
    "Champion-challenger stages that reached maxDuration still inconclusive",
    RELEASE_LABELS,
)

# --- per release: gauges ---------------------------------------------------------------------

CANARY_WEIGHT = Gauge(
    "modelrelease_canary_weight_percent",
    "Percent of live traffic the operator sends to the challenger",
    RELEASE_LABELS,
)
MIRROR_PERCENT = Gauge(
    "modelrelease_mirror_percent",
    "Percent of requests the operator mirrors to the challenger",
    RELEASE_LABELS,
)
PHASE = Gauge(
    "modelrelease_phase",
    "1 for the release's current status.phase, 0 for every other phase",
    [*RELEASE_LABELS, "phase"],
)
REVISION = Gauge(
    "modelrelease_revision_info",
    "1 per revision in play: role champion or challenger, its revision and model version",
    [*RELEASE_LABELS, "role", "revision", "model_version"],
)
REPLICAS = Gauge(
    "modelrelease_replicas", "Replicas the operator asked for, by role", [*RELEASE_LABELS, "role"]
)
READY_REPLICAS = Gauge(
    "modelrelease_ready_replicas", "Ready replicas, by role", [*RELEASE_LABELS, "role"]
)
STAGE = Gauge(
    "modelrelease_stage_info",
    "1 for the stage the challenger is in (name, type, position in spec.stages)",
    [*RELEASE_LABELS, "stage", "type", "index"],
)
STAGE_START = Gauge(
    "modelrelease_stage_start_timestamp_seconds",
    "Unix time the current stage's clock started (time() - this: time in the stage)",
    RELEASE_LABELS,
)
STEP_START = Gauge(
    "modelrelease_step_start_timestamp_seconds",
    "Unix time the current step's clock started (the stage's for stages without steps)",
    RELEASE_LABELS,
)
STEP_EXPECTED = Gauge(
    "modelrelease_step_expected_duration_seconds",
    "How long the current step should take by the spec (canary step or shadow duration, "
    "maxDuration of a comparison or webhook); absent for an approval",
    RELEASE_LABELS,
)
SLO_VALUE = Gauge(
    "modelrelease_slo_value", "The SLO's last measured value", [*RELEASE_LABELS, "slo"]
)
SLO_THRESHOLD = Gauge(
    "modelrelease_slo_threshold",
    "The SLO's threshold: bound max (value must stay at or below) or min",
    [*RELEASE_LABELS, "slo", "bound"],
)
SLO_FAILURES = Gauge(
    "modelrelease_slo_consecutive_failures",
    "Failed checks of the SLO in a row",
    [*RELEASE_LABELS, "slo"],
)
SLO_VERDICT = Gauge(
    "modelrelease_slo_verdict",
    "1 for the SLO's last verdict, 0 for the others",
    [*RELEASE_LABELS, "slo", "verdict"],
)
COMPARISON_ESTIMATE = Gauge(
    "modelrelease_comparison_estimate",
    "Estimated ratio of challenger to champion bad-event rates (1: no difference)",
    [*RELEASE_LABELS, "metric"],
)
COMPARISON_LOWER = Gauge(
    "modelrelease_comparison_lower_bound",
    "Lower confidence bound of the comparison's estimate",
    [*RELEASE_LABELS, "metric"],
)
COMPARISON_UPPER = Gauge(
    "modelrelease_comparison_upper_bound",
    "Upper confidence bound of the comparison's estimate",
    [*RELEASE_LABELS, "metric"],
)
COMPARISON_E_VALUE = Gauge(
    "modelrelease_comparison_e_value",
    "E-value of the comparison (evidence against no difference; decides at 1/alpha)",
    [*RELEASE_LABELS, "metric"],
)
COMPARISON_VERDICT = Gauge(
    "modelrelease_comparison_verdict",
    "1 for the comparison's current verdict, 0 for the others",
    [*RELEASE_LABELS, "metric", "verdict"],
)
LAST_OUTCOME = Gauge(
    "modelrelease_last_outcome_timestamp_seconds",
    "Unix time the newest status.history entry ended, with its outcome and reason",
    [*RELEASE_LABELS, "outcome", "reason"],
)

# --- the operator ----------------------------------------------------------------------------

PASS_SECONDS = Histogram(
    "modelrelease_reconcile_duration_seconds",
    "Duration of reconcile passes, by result (ok, error, conflict)",
    ["result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RELEASE_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400)
TIME_TO_PROMOTE = Histogram(
    "modelrelease_time_to_promote_seconds",
    "Seconds from a challenger's start to its promotion",
    ["namespace"],
    buckets=RELEASE_BUCKETS,
)
TIME_TO_ROLLBACK = Histogram(
    "modelrelease_time_to_rollback_seconds",
    "Seconds from a challenger's start to its rollback",
    ["namespace"],
    buckets=RELEASE_BUCKETS,
)
PASSES_WAITING = Gauge(
    "modelrelease_passes_waiting", "Passes due and waiting for a worker slot (--worker-limit)"
)
PASSES_RUNNING = Gauge("modelrelease_passes_running", "Passes running now")
BUILD = Info("modelrelease_build", "The operator's version and Python version")
BUILD.info({"version": __version__, "python_version": platform.python_version()})
API_REQUESTS = Counter(
    "modelrelease_api_requests_total",
    "Requests to the API server (kopf's own watch of releases, events and finalizers aside), "
    "by HTTP method, WATCH for watches, and the answer's status class",
    ["method", "code"],
)
LEADER = Gauge(
    "modelrelease_leader",
    "1 while this replica may act (holds the leader Lease, or runs without election), else 0",
)
WRITES = Counter(
    "modelrelease_api_writes_total", "Writes this replica sent to the API server (fenced ones not)"
)
FENCED_WRITES = Counter(
    "modelrelease_fenced_writes_total", "Writes refused because this replica was not the leader"
)


def serve(port: int) -> None:
    start_http_server(port)


def watch_queue(waiting: Callable[[], float], running: Callable[[], float]) -> None:
    """Read the scheduler's counts at each scrape."""
    PASSES_WAITING.set_function(waiting)
    PASSES_RUNNING.set_function(running)


# --- status -> samples (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One gauge value of a release: the labels after ``namespace`` and ``release``."""

    gauge: Gauge
    labels: tuple[str, ...]
    value: float


def release_samples(
    status: ModelReleaseStatus, spec: ModelReleaseSpec | None, routes: Routes | None
) -> list[Sample]:
    """Every gauge sample of one release; ``routes`` are the ones in force (None: unknown)."""
    samples = [Sample(PHASE, (phase.value,), float(status.phase is phase)) for phase in Phase]
    if routes is not None:
        samples.append(Sample(CANARY_WEIGHT, (), routes.canary_weight))
        samples.append(Sample(MIRROR_PERCENT, (), routes.mirror_percent))
    samples.extend(_revision_samples(status))
    if status.current_stage is not None:
        samples.extend(_stage_samples(status.current_stage, spec))
    samples.extend(_check_samples(status))
    samples.extend(_comparison_samples(status))
    if status.history:
        last = status.history[-1]
        samples.append(Sample(LAST_OUTCOME, (last.outcome.value, last.reason), _unix(last.time)))
    return samples


def _revision_samples(status: ModelReleaseStatus) -> Iterable[Sample]:
    for role, revision in (("champion", status.champion), ("challenger", status.challenger)):
        if revision is None or revision.revision is None:
            continue
        version = revision.model_version or ""
        yield Sample(REVISION, (role, revision.revision, version), 1)
        yield Sample(REPLICAS, (role,), revision.replicas)
        yield Sample(READY_REPLICAS, (role,), revision.ready_replicas)


def _stage_samples(current: CurrentStage, spec: ModelReleaseSpec | None) -> Iterable[Sample]:
    yield Sample(STAGE, (current.name, current.type.value, str(current.index)), 1)
    if current.stage_start_time is not None:
        yield Sample(STAGE_START, (), _unix(current.stage_start_time))
    step_start = current.step_start_time or current.stage_start_time
    if step_start is not None:
        yield Sample(STEP_START, (), _unix(step_start))
    expected = expected_step_seconds(spec, current) if spec is not None else None
    if expected is not None:
        yield Sample(STEP_EXPECTED, (), expected)


def expected_step_seconds(spec: ModelReleaseSpec, current: CurrentStage) -> float | None:
    """How long the current step should last by the spec; None when a person decides."""
    stage = spec.stage_named(current.name, current.type)
    if stage is None:
        return None
    duration: str | None = None
    if stage.shadow is not None:
        duration = stage.shadow.duration
    elif stage.canary is not None:
        steps = stage.canary.steps
        step = current.step or 0
        duration = steps[step].duration if step < len(steps) else None
    elif stage.champion_challenger is not None:
        duration = stage.champion_challenger.max_duration
    elif stage.webhook is not None:
        duration = stage.webhook.max_duration
    return parse_duration(duration) if duration is not None else None


def _check_samples(status: ModelReleaseStatus) -> Iterable[Sample]:
    for check in status.checks:
        if check.value is not None:
            yield Sample(SLO_VALUE, (check.name,), check.value)
        for bound, threshold in (("max", check.max), ("min", check.min)):
            if threshold is not None:
                yield Sample(SLO_THRESHOLD, (check.name, bound), threshold)
        yield Sample(SLO_FAILURES, (check.name,), check.consecutive_failures)
        for verdict in Verdict:
            yield Sample(SLO_VERDICT, (check.name, verdict.value), float(check.verdict is verdict))


def _comparison_samples(status: ModelReleaseStatus) -> Iterable[Sample]:
    for record in status.comparison:
        for gauge, value in (
            (COMPARISON_ESTIMATE, record.estimate),
            (COMPARISON_LOWER, record.lower),
            (COMPARISON_UPPER, record.upper),
            (COMPARISON_E_VALUE, record.e_value),
        ):
            if value is not None:
                yield Sample(gauge, (record.metric,), value)
        for verdict in Verdict:
            yield Sample(
                COMPARISON_VERDICT, (record.metric, verdict.value), float(record.verdict is verdict)
            )


def _unix(moment: datetime) -> float:
    return moment.timestamp()


# --- applying samples ------------------------------------------------------------------------

Key = tuple[str, str]
Series = tuple[MetricWrapperBase, tuple[str, ...]]  # a metric and its full label values


@dataclass
class ReleaseSeries:
    """The series each release has, so a pass removes the ones it no longer has."""

    series: dict[Key, set[Series]] = field(default_factory=dict)
    routes: dict[Key, Routes] = field(default_factory=dict)  # the last routes set
    started: dict[Key, float] = field(default_factory=dict)  # challenger start (monotonic)

    def counter(self, key: Key, counter: Counter, *labels: str) -> Counter:
        values = (*key, *labels)
        self.series.setdefault(key, set()).add((counter, values))
        child: Counter = counter.labels(*values)
        return child

    def apply(self, key: Key, samples: Iterable[Sample]) -> None:
        old = {s for s in self.series.get(key, set()) if isinstance(s[0], Gauge)}
        new: set[Series] = set()
        for sample in samples:
            values = (*key, *sample.labels)
            sample.gauge.labels(*values).set(sample.value)
            new.add((sample.gauge, values))
        _remove(old - new)
        kept = {s for s in self.series.get(key, set()) if not isinstance(s[0], Gauge)}
        self.series[key] = kept | new

    def forget(self, key: Key) -> None:
        _remove(self.series.pop(key, set()))
        self.routes.pop(key, None)
        self.started.pop(key, None)


def _remove(series: Iterable[Series]) -> None:
    for metric, values in series:
        with contextlib.suppress(KeyError):
            metric.remove(*values)


RELEASES = ReleaseSeries()


def record(
    namespace: str,
    release: str,
    decision: Decision | None,
    result: str,
    spec: ModelReleaseSpec | None = None,
) -> None:
    """Count a pass and publish what it decided; ``decision`` is None when the pass
    failed before deciding (the release's gauges then keep their last values)."""
    key = (namespace, release)
    RELEASES.counter(key, RECONCILES, result).inc()
    for counter in (ROLLBACKS, PROMOTIONS, INCONCLUSIVE):
        RELEASES.counter(key, counter)  # present at 0, so increase() sees the first one
    for histogram in (TIME_TO_PROMOTE, TIME_TO_ROLLBACK):
        histogram.labels(namespace)  # likewise (per namespace: they outlive a release)
    if decision is None:
        return
    if decision.routes is not None:
        RELEASES.routes[key] = decision.routes
    routes = RELEASES.routes.get(key) or routes_in_status(decision.status)
    RELEASES.apply(key, release_samples(decision.status, spec, routes))
    _count_events(key, decision)


def routes_in_status(status: ModelReleaseStatus) -> Routes | None:
    """The routes status implies, before this process has set any (after a restart)."""
    if status.current_stage is not None:
        weight = status.current_stage.weight
        return Routes(FULL - weight, weight, status.current_stage.mirror_percent)
    if status.challenger is None:
        return stable_routes()
    return None  # promoting: the weights are the route's, not status's


def _count_events(key: Key, decision: Decision) -> None:
    now = time.monotonic()
    for event in decision.events:
        RELEASES.counter(key, EVENTS, event.reason.value).inc()
        if event.reason is Reason.NEW_REVISION:
            RELEASES.started[key] = now
        elif event.reason is Reason.ROLLED_BACK:
            RELEASES.counter(key, ROLLBACKS).inc()
            _observe_release(key, TIME_TO_ROLLBACK, now)
        elif event.reason is Reason.PROMOTED:
            RELEASES.counter(key, PROMOTIONS).inc()
            _observe_release(key, TIME_TO_PROMOTE, now)
        elif event.reason is Reason.COMPARISON_INCONCLUSIVE:
            RELEASES.counter(key, INCONCLUSIVE).inc()
    if decision.status.challenger is None:
        RELEASES.started.pop(key, None)  # aborted or superseded: no duration to observe


def _observe_release(key: Key, histogram: Histogram, now: float) -> None:
    """A challenger started by this process ended; one started before it is not timed."""
    started = RELEASES.started.pop(key, None)
    if started is not None:
        histogram.labels(key[0]).observe(now - started)


def observe_pass(seconds: float, result: str) -> None:
    PASS_SECONDS.labels(result).observe(seconds)


def forget(namespace: str, release: str) -> None:
    """Every series of a deleted release goes."""
    RELEASES.forget((namespace, release))


def forget_all() -> None:
    """Every release's series go: this replica stopped leading, the leader reports them."""
    for key in list(RELEASES.series):
        RELEASES.forget(key)
