"""The traffic engine: Poisson arrivals through route tables onto simulated pods.

No I/O and no clock of its own: the caller hands it what the cluster looks
like (:meth:`TrafficEngine.observe`) and the time (:meth:`TrafficEngine.advance`),
and the random generator is injected, so a seeded run repeats exactly.

Arrivals per entry point are a Poisson process (exponential gaps at the
route's rate). Each user request goes to a backend drawn by weight and to a
ready pod of that backend drawn uniformly (what kube-proxy or a sidecar does);
each mirror of the matched rule copies it with the mirror's probability. A pod
serves a request as its behaviour says, holds it for its duration, and records
its metrics when it finishes.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hack.simulator.behaviour import (
    HEALTHY,
    Behaviour,
    BehaviourError,
    RequestResult,
    parse_behaviour,
    sample_request,
)
from hack.simulator.metrics import PodMetrics
from hack.simulator.routing import (
    STATUS_INVALID_BACKEND,
    STATUS_NO_ENDPOINTS,
    EntryPoint,
    RouteTable,
    ServiceRef,
    choose_backend,
    is_mirrored,
    route_tables,
)
from hack.simulator.stats import MIRROR, USER, RequestCounts, RevisionKey, snapshot
from hack.simulator.topology import (
    PodInfo,
    endpoints,
    pod_from_object,
    service_from_object,
)

log = logging.getLogger("simulator.engine")

# After a stall (a suspended process), arrivals older than this are dropped
# rather than sent in one burst.
MAX_BACKLOG_SECONDS = 2.0


@dataclass(frozen=True)
class ClusterState:
    """Objects as the API server returns them (JSON shape)."""

    http_routes: Sequence[Mapping[str, Any]] = ()
    virtual_services: Sequence[Mapping[str, Any]] = ()
    services: Sequence[Mapping[str, Any]] = ()
    pods: Sequence[Mapping[str, Any]] = ()


@dataclass
class PodState:
    info: PodInfo
    behaviour: Behaviour
    metrics: PodMetrics
    # The first time the pod was seen Ready; "after" phases count from it.
    first_ready: float | None
    in_flight: list[tuple[float, int, RequestResult]] = field(default_factory=list)

    @property
    def revision_key(self) -> RevisionKey:
        return RevisionKey(self.info.namespace, self.info.release, self.info.revision)

    def seconds_ready(self, now: float) -> float | None:
        return None if self.first_ready is None else now - self.first_ready


@dataclass
class _Arrivals:
    table: RouteTable
    next_at: float


class TrafficEngine:
    """Simulated traffic and pods. Every public method takes :attr:`lock`."""

    def __init__(self, rng: random.Random) -> None:
        self.lock = threading.Lock()
        self.rng = rng
        self.pods: dict[str, PodState] = {}
        self.counts = RequestCounts()
        self._arrivals: dict[EntryPoint, _Arrivals] = {}
        self._endpoints: dict[ServiceRef, tuple[PodInfo, ...]] = {}
        self._sequence = 0
        self._reported: set[str] = set()

    # --- what the cluster looks like -------------------------------------------

    def observe(self, state: ClusterState, now: float) -> None:
        with self.lock:
            tables, problems = route_tables(
                state.http_routes, state.virtual_services, state.services
            )
            for message in problems:
                self._report(message, logging.ERROR)
            self._update_arrivals(tables, now)
            pods = [pod_from_object(obj) for obj in state.pods]
            self._update_pods(pods, now)
            services = [service_from_object(obj) for obj in state.services]
            self._endpoints = endpoints(services, pods)

    def _update_arrivals(self, tables: Sequence[RouteTable], now: float) -> None:
        current = {table.entry: table for table in tables}
        for entry in list(self._arrivals):
            if entry not in current:
                log.info("%s: no longer an entry point", entry)
                del self._arrivals[entry]
        for entry, table in current.items():
            for note in table.notes:
                self._report(note, logging.WARNING)
            known = self._arrivals.get(entry)
            if known is None or known.table != table:
                log.info("%s: %s", entry, describe(table))
            if known is None or known.table.rate != table.rate:
                self._arrivals[entry] = _Arrivals(table, self._next_arrival(now, table.rate))
            else:
                known.table = table

    def _update_pods(self, pods: Sequence[PodInfo], now: float) -> None:
        seen = {pod.uid for pod in pods}
        for uid in [uid for uid in self.pods if uid not in seen]:
            gone = self.pods.pop(uid)
            log.info("pod %s/%s is gone", gone.info.namespace, gone.info.name)
        for pod in pods:
            state = self.pods.get(pod.uid)
            if state is None:
                if pod.ready:
                    self.pods[pod.uid] = self._new_pod(pod, now)
                continue
            if pod.behaviour_text != state.info.behaviour_text:
                state.behaviour = self._behaviour(pod)
            if state.first_ready is None and pod.ready:
                state.first_ready = pod.ready_since if pod.ready_since is not None else now
            state.info = pod

    def _new_pod(self, pod: PodInfo, now: float) -> PodState:
        behaviour = self._behaviour(pod)
        model_name = behaviour.model_name or pod.release or pod.name
        first_ready = pod.ready_since if pod.ready_since is not None else now
        log.info(
            "pod %s/%s (release %r, revision %r) is Ready",
            pod.namespace,
            pod.name,
            pod.release,
            pod.revision,
        )
        return PodState(pod, behaviour, PodMetrics(model_name), first_ready)

    def _behaviour(self, pod: PodInfo) -> Behaviour:
        try:
            return parse_behaviour(pod.behaviour_text)
        except BehaviourError as error:
            self._report(
                f"pod {pod.namespace}/{pod.name}: behaviour annotation ignored, the pod"
                f" behaves as healthy: {error}",
                logging.ERROR,
            )
            return HEALTHY

    def _report(self, message: str, level: int) -> None:
        if message not in self._reported:
            self._reported.add(message)
            log.log(level, "%s", message)

    def _next_arrival(self, after: float, rate: float) -> float:
        return after + self.rng.expovariate(rate) if rate > 0 else float("inf")

    # --- time passes ------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Send every request due by ``now`` and finish every request done by then."""
        with self.lock:
            for entry in sorted(self._arrivals):
                arrivals = self._arrivals[entry]
                arrivals.next_at = max(arrivals.next_at, now - MAX_BACKLOG_SECONDS)
                while arrivals.next_at <= now:
                    self._dispatch(arrivals.table, arrivals.next_at)
                    arrivals.next_at = self._next_arrival(arrivals.next_at, arrivals.table.rate)
            for state in self.pods.values():
                while state.in_flight and state.in_flight[0][0] <= now:
                    _, _, result = heapq.heappop(state.in_flight)
                    state.metrics.record(result)
                phase = state.behaviour.phase_at(state.seconds_ready(now))
                state.metrics.set_load(len(state.in_flight), phase.max_num_seqs)

    def _dispatch(self, table: RouteTable, at: float) -> None:
        if table.fixed_status is not None:
            self.counts.count_routed(table.entry, "", USER, table.fixed_status)
            return
        backend = choose_backend(table.backends, self.rng)
        if backend is None:
            self.counts.count_routed(table.entry, "", USER, STATUS_INVALID_BACKEND, unserved=True)
        else:
            self._send(table.entry, backend.target, backend.label, USER, at)
        mirrors = table.mirrors + (backend.mirrors if backend is not None else ())
        for mirror in mirrors:
            if is_mirrored(mirror, self.rng):
                self._send(table.entry, mirror.target, mirror.label, MIRROR, at)

    def _send(
        self, entry: EntryPoint, target: ServiceRef | None, label: str, kind: str, at: float
    ) -> None:
        if target is None or target not in self._endpoints:
            if target is not None:
                self._report(
                    f"{entry}: backend Service {target} does not exist; requests to it fail"
                    " with 500",
                    logging.WARNING,
                )
            self.counts.count_routed(entry, label, kind, STATUS_INVALID_BACKEND, unserved=True)
            return
        ready = self._endpoints[target]
        if not ready:
            self.counts.count_routed(entry, label, kind, STATUS_NO_ENDPOINTS, unserved=True)
            return
        pod = ready[self.rng.randrange(len(ready))]
        state = self.pods[pod.uid]
        result = sample_request(state.behaviour.phase_at(state.seconds_ready(at)), self.rng)
        self._sequence += 1
        heapq.heappush(state.in_flight, (at + result.duration, self._sequence, result))
        self.counts.count_served(state.revision_key, kind, result.success, at)
        self.counts.count_routed(entry, label, kind, 200 if result.success else 500)

    # --- reading ----------------------------------------------------------------

    def stats(self, simulator: str, started_at: float, now: float) -> dict[str, Any]:
        """The stats-file document (see :func:`hack.simulator.stats.snapshot`)."""
        with self.lock:
            pods: dict[RevisionKey, int] = {}
            for state in self.pods.values():
                pods[state.revision_key] = pods.get(state.revision_key, 0) + 1
            rates = {entry: arrivals.table.rate for entry, arrivals in self._arrivals.items()}
            return snapshot(self.counts, pods.items(), rates, simulator, started_at, now)

    def pod_states(self) -> list[PodState]:
        with self.lock:
            return list(self.pods.values())


def describe(table: RouteTable) -> str:
    """One line a person can read: where the requests go."""
    if table.fixed_status is not None:
        return f"{table.rate:g} req/s, every request answered {table.fixed_status}"
    total = sum(backend.weight for backend in table.backends if backend.weight > 0)
    parts = [
        f"{backend.label} {100 * backend.weight / total:.4g}%"
        for backend in table.backends
        if backend.weight > 0 and total > 0
    ] or ["no backend with weight"]
    for mirror in table.mirrors:
        parts.append(f"mirror {100 * mirror.fraction:.4g}% to {mirror.label}")
    for backend in table.backends:
        for mirror in backend.mirrors:
            parts.append(
                f"mirror {100 * mirror.fraction:.4g}% of {backend.label}'s to {mirror.label}"
            )
    return f"{table.rate:g} req/s: " + ", ".join(parts)
