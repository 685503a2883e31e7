"""Chaos suite: releases under faults, with the safety invariants checked continuously.

Each scenario runs releases on the local cluster (real API server, Prometheus, the
traffic simulator, the operator as a process) while a fault hits it: SIGKILL of the
operator, a failed or fatal write inside a transition (the operator's fault-injection
mode, ``MODELRELEASE_FAULT_INJECTION``), Prometheus, the API server or etcd stopped,
pods deleted, the spec or the route edited by hand, the release deleted.

A monitor samples every 0.5 s and counts violations of:

- I1 (simulator): a user or mirrored request the release's route answered with 503 (the
  Service has no ready pod) or 500 (no usable backend: a missing Service);
- I1 (API): a route weight > 0 or a mirror on a Service missing or without a ready pod,
  seen in two samples in a row (one sample may straddle a transition);
- reaction: after an outside fault empties a Service (the suite deletes its only ready
  pod), the operator must move the route off it within REACTION_LIMIT. Requests answered
  503 in that window are the fault's, not the operator's: they are reported apart
  ("exposed"), with the reaction time, and are not I1 violations;
- I2: a revision promoted (Succeeded, champion) while the spec has an approval stage
  that the suite never approved for it;
- monotonic: the canary weight of a challenger went down during a canary that then
  promoted it (a rollback or abort may drop it);
- final: the run ended neither Succeeded with the expected champion nor RolledBack with
  a reason (as the scenario expects).

Per scenario it prints runs, faults injected, violations (must be 0), final states and
the recovery time: from the end of a fault to the release's next progress (a new stage,
step, phase or champion; stage clocks count) or, for a hand edit, to convergence.

    make chaos                       # or: .venv/bin/python hack/bench/chaos.py
    .venv/bin/python hack/bench/chaos.py --quick
    .venv/bin/python hack/bench/chaos.py --scenario write-faults --runs 2
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kubernetes import client
from kubernetes import config as kube_config
from modelrelease.api.constants import LABEL_RELEASE, LABEL_REVISION, Reason

from hack.scenario import (
    KUBECONFIG,
    RATE,
    READY_AFTER,
    ROOT,
    Manifest,
    Scenario,
    apply,
    error_ratio_slo,
    http_route,
    kubectl,
    release,
)
from hack.simulator.stats import read_stats
from tests.waiting import ConditionTimeoutError, wait_for

NAME = "chat"
STABLE, CANARY = f"{NAME}-stable", f"{NAME}-canary"
HEALTHY: Manifest = {"errorRatio": 0.0, "ttft": {"p50": 0.1, "p95": 0.25}}
# Healthy until 12 s after its pods are Ready, so the fault can be armed first.
TURNS_BAD: Manifest = {**HEALTHY, "after": {"seconds": 12, "errorRatio": 0.5}}
SAMPLE_SECONDS = 0.5
REQUESTS_PER_SECOND = 40.0  # through the route
# The route `gatewayAPI.ownedRoute` builds: the one the scenario makes (hack.scenario's
# http_route), with the simulator's rate as the route's annotation.
OWNED_ROUTE: Manifest = {
    "parentRefs": [{"name": "inference-gateway"}],
    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
    "metadata": {"annotations": {RATE: str(REQUESTS_PER_SECOND)}},
}
# From an outside fault emptying a Service to the route off it: one pass after the Pod
# event, plus a sample. A longer window is a violation even though the fault was outside.
REACTION_LIMIT = 3.0
OUTAGE_CODES = {500, 503}
FINAL_PHASES = {"Succeeded", "RolledBack", "Failed"}
RELEASE_TIMEOUT = 240.0
LOCAL_CLUSTER = str(ROOT / "hack" / "local-cluster.sh")


def log(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", flush=True)


# --- manifests ----------------------------------------------------------------------------------


def canary(*steps: tuple[int, str], name: str = "canary") -> Manifest:
    return {"name": name, "canary": {"steps": [{"weight": w, "duration": d} for w, d in steps]}}


def shadow(duration: str) -> Manifest:
    return {"name": "shadow", "shadow": {"mirrorPercent": 100, "duration": duration}}


def chaos_release(
    version: str,
    stages: list[Manifest],
    behaviour: Manifest = HEALTHY,
    ready_after: str = "",
    capacity: Manifest | None = None,
    analysis: Manifest | None = None,
    owned_route: bool = False,
) -> Manifest:
    """A release of `version`; pods become Ready `ready_after` after they start (kwok).
    With `owned_route` the operator creates and owns the HTTPRoute (`gatewayAPI.ownedRoute`)
    instead of weighting the one the scenario made."""
    slo = error_ratio_slo(max_ratio=0.1, failure_limit=0, min_requests=0)
    manifest = release("", NAME, version, behaviour, stages, [slo], interval="2s", replicas=2)
    spec = manifest["spec"]
    if owned_route:
        spec["traffic"] = {"gatewayAPI": {"ownedRoute": OWNED_ROUTE}}
    spec["progressDeadline"] = "3m"
    if ready_after:
        spec["template"]["metadata"]["annotations"][READY_AFTER] = ready_after
    if capacity is not None:
        spec["capacity"] = capacity
    spec["analysis"].update(analysis or {})
    return manifest


# --- the monitor --------------------------------------------------------------------------------


OutageKey = tuple[str, str, int]  # backend, kind (user or mirror), code


@dataclass
class Violation:
    invariant: str
    at: float
    detail: str


@dataclass
class OutsideFault:
    """A Service emptied by the suite (not by the operator) at `started`."""

    backend: str
    pod: str
    started: float
    ended: float | None = None


@dataclass
class Monitor:
    """Samples pods, Services, the route, the release and the simulator's counts."""

    scenario: Scenario
    check_monotonic: bool = True
    approved: set[str] = field(default_factory=set)
    violations: list[Violation] = field(default_factory=list)
    progress: list[tuple[float, tuple[Any, ...]]] = field(default_factory=list)
    challengers: set[str] = field(default_factory=set)
    release: Manifest = field(default_factory=dict)
    unreadable_samples: int = 0
    _suspects: dict[str, float] = field(default_factory=dict)
    _reported: set[str] = field(default_factory=set)
    _canary_seen: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    outside: list[OutsideFault] = field(default_factory=list)
    exposed: int = 0  # requests answered 500/503 while an outside fault was unanswered
    _baseline: dict[tuple[str, str, int], int] = field(default_factory=dict)
    _last: tuple[float, dict[OutageKey, int]] = (0.0, {})
    cutoff: float | None = None  # requests answered after it are not judged
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        api = kube_config.new_client_from_config(config_file=KUBECONFIG)  # type: ignore[no-untyped-call]
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    # lifecycle
    def start(self) -> Monitor:
        self._wait_for_fresh_stats()
        self._last = self._outage_counts()
        self._baseline = dict(self._last[1])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self, cutoff: float | None = None) -> list[Violation]:
        """End the run. With `cutoff`, requests answered after that moment are not judged
        (the release was deleted then: what follows is what deletion means)."""
        if not self._stop.is_set():
            self.cutoff = cutoff
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=10)
            if cutoff is None:
                self._wait_for_fresh_stats()
            self._simulator_check()
            self._monotonic_check()
        return self.violations

    def outside_fault(self, backend: str, pod: str) -> None:
        """The suite is about to delete `pod`, which may leave `backend` without a ready pod."""
        with self._lock:
            self.outside.append(OutsideFault(backend, pod, time.time()))

    @property
    def reactions(self) -> list[float]:
        """Seconds from each outside fault to the route being off the emptied Service."""
        return [f.ended - f.started for f in self.outside if f.ended is not None]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except Exception:  # the API server may be down on purpose; the next sample tells
                self.unreadable_samples += 1
            self._simulator_check()
            self._stop.wait(SAMPLE_SECONDS)

    def _violate(self, invariant: str, key: str, detail: str) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        self.violations.append(Violation(invariant, time.time(), detail))
        log(f"VIOLATION {invariant}: {detail}")

    # I1 from the simulator's counts
    def _wait_for_fresh_stats(self, timeout: float = 10.0) -> None:
        """Until the stats file holds a snapshot taken after now (it is rewritten every
        second), so requests answered just before the baseline are in it."""
        now = time.time()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if float(read_stats(self.scenario.stats_file).get("time", 0)) > now + 1:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)

    def _outage_counts(self) -> tuple[float, dict[OutageKey, int]]:
        """The simulator's last snapshot: its time and the 500/503 answers by backend."""
        path = self.scenario.stats_file
        if not path.exists():
            return self._last
        try:
            stats = read_stats(path)
        except (OSError, ValueError):
            return self._last
        counts: dict[OutageKey, int] = {}
        for entry in stats.get("entrypoints", []):
            if entry["name"] != NAME or entry["namespace"] != self.scenario.namespace:
                continue
            for answer in entry.get("unserved", []):
                if answer["code"] in OUTAGE_CODES:
                    key = (answer["backend"], answer["kind"], int(answer["code"]))
                    counts[key] = counts.get(key, 0) + int(answer["count"])
        return float(stats.get("time", 0)), counts

    def _simulator_check(self) -> None:
        self._judge(self._outage_counts())

    def _judge(self, snapshot: tuple[float, dict[OutageKey, int]]) -> None:
        """New 500/503 answers since the last snapshot: excused when an outside fault on
        their backend was open at any time between the two snapshots (the counts have a
        one-second resolution), violations otherwise."""
        taken, counts = snapshot
        since, last = self._last
        if taken < since or (self.cutoff is not None and taken > self.cutoff):
            return
        self._last = snapshot
        for key, count in counts.items():
            delta = count - last.get(key, self._baseline.get(key, 0))
            if delta > 0 and self._excused(key[0], since, taken):
                self.exposed += delta
                self._baseline[key] = self._baseline.get(key, 0) + delta
            new = count - self._baseline.get(key, 0)
            if new > 0:
                backend, kind, code = key
                self._violate(
                    "I1-requests",
                    f"requests:{key}",
                    f"{kind} requests to backend {backend} answered {code} (first seen; "
                    f"{new} so far)",
                )

    def _excused(self, backend: str, since: float, until: float) -> bool:
        with self._lock:
            return any(
                f.backend == backend
                and f.started <= until
                and (f.ended is None or f.ended >= since)
                for f in self.outside
            )

    @property
    def failed_requests(self) -> int:
        _, now = self._last
        return sum(max(0, count - self._baseline.get(key, 0)) for key, count in now.items())

    # I1 from the API, I2, progress
    def _sample(self) -> None:
        namespace = self.scenario.namespace
        pods = self._core.list_namespaced_pod(namespace, _request_timeout=3).items
        services = {
            str(s.metadata.name): s  # type: ignore[union-attr]
            for s in self._core.list_namespaced_service(namespace, _request_timeout=3).items
        }
        # An owned route not created yet (or given up) carries no traffic.
        route = self._get("gateway.networking.k8s.io", "v1", "httproutes") or {"spec": {}}
        self.release = self._get("modelrelease.dev", "v1alpha1", "modelreleases") or {}
        now = time.time()
        serving = {name: _serving(svc, pods) for name, svc in services.items()}
        weighted = _weighted_backends(route)
        self._follow_outside_faults(pods, serving, weighted, now)
        for backend, why in weighted.items():
            if serving.get(backend, 0) > 0:
                self._suspects.pop(backend, None)
                continue
            missing = "is missing" if backend not in services else "has no ready pod"
            if self._open_fault(backend) is not None:
                continue  # judged by its reaction time instead
            if backend in self._suspects:
                self._violate(
                    "I1-route",
                    f"route:{backend}:{int(self._suspects[backend])}",
                    f"route sends {why} to Service {backend}, which {missing} "
                    f"(for {now - self._suspects[backend]:.1f}s)",
                )
            else:
                self._suspects[backend] = now
        for backend in set(self._suspects) - set(weighted):
            del self._suspects[backend]
        self._watch_release(route, now)

    def _get(self, group: str, version: str, plural: str) -> Manifest | None:
        """The scenario's object of this kind, or None when it does not exist."""
        try:
            found: Manifest = self._custom.get_namespaced_custom_object(  # type: ignore[assignment]
                group, version, self.scenario.namespace, plural, NAME, _request_timeout=3
            )
        except client.ApiException as error:
            if error.status != 404:
                raise
            return None
        return found

    def _open_fault(self, backend: str) -> OutsideFault | None:
        with self._lock:
            return next((f for f in self.outside if f.backend == backend and not f.ended), None)

    def _follow_outside_faults(
        self, pods: list[Any], serving: dict[str, int], weighted: dict[str, str], now: float
    ) -> None:
        """Close an outside fault once the route is off its Service, or the Service has a
        ready pod again (after the deleted one is gone); report a slow reaction."""
        for backend in {f.backend for f in self.outside}:
            fault = self._open_fault(backend)
            if fault is None:
                continue
            deleted_pod_ready = any(
                p.metadata.name == fault.pod and _ready(p) and not p.metadata.deletion_timestamp
                for p in pods
            )
            if deleted_pod_ready:
                continue  # the deletion has not happened yet
            if backend not in weighted or serving.get(backend, 0) > 0:
                fault.ended = now
                log(f"outside fault on {backend} answered after {now - fault.started:.1f}s")
            elif now - fault.started > REACTION_LIMIT:
                self._violate(
                    "reaction",
                    f"reaction:{backend}:{int(fault.started)}",
                    f"the route still sends {weighted[backend]} to {backend}, which has had "
                    f"no ready pod for {now - fault.started:.1f}s (limit {REACTION_LIMIT:.0f}s)",
                )

    def _watch_release(self, route: Manifest, now: float) -> None:
        status = self.release.get("status") or {}
        challenger = (status.get("challenger") or {}).get("revision")
        if challenger:
            self.challengers.add(challenger)
            weight = _canary_percent(route)
            seen = self._canary_seen.setdefault(challenger, [])
            if not seen or seen[-1][1] != weight:
                seen.append((now, weight))
        stage = status.get("currentStage") or {}
        champion = status.get("champion") or {}
        key = (
            status.get("phase"),
            stage.get("name"),
            stage.get("step"),
            stage.get("weight"),
            champion.get("revision"),
        )
        if not self.progress or self.progress[-1][1] != key:
            self.progress.append((now, key))
        stages = (self.release.get("spec") or {}).get("stages") or []
        revision = champion.get("revision")
        if (
            status.get("phase") == "Succeeded"
            and revision in self.challengers
            and any("approval" in s for s in stages)
            and revision not in self.approved
        ):
            self._violate(
                "I2",
                f"approval:{revision}",
                f"revision {revision} promoted (Succeeded) without approval; stages "
                f"{[s.get('name') for s in stages]}",
            )

    def _monotonic_check(self) -> None:
        if not self.check_monotonic:
            return
        champion = ((self.release.get("status") or {}).get("champion") or {}).get("revision")
        for revision, seen in self._canary_seen.items():
            if revision != champion:
                continue  # rolled back, aborted or superseded: its weight may drop
            weights = [w for _, w in seen]
            drops = [(a, b) for a, b in itertools.pairwise(weights) if b < a and b]
            if drops:
                self._violate(
                    "monotonic",
                    f"monotonic:{revision}",
                    f"canary weight of promoted revision {revision} went {weights}",
                )

    def recovery_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the next progress of the release (None: none seen)."""
        before = [key for t, key in self.progress if t <= moment]
        for t, key in self.progress:
            if t > moment and (not before or key != before[-1]):
                return t - moment
        if before and before[-1][0] in FINAL_PHASES:
            return 0.0
        return None


def _serving(service: Any, pods: list[Any]) -> int:
    selector = service.spec.selector or {}
    if not selector:
        return 0
    count = 0
    for pod in pods:
        labels = pod.metadata.labels or {}
        if pod.metadata.deletion_timestamp or any(labels.get(k) != v for k, v in selector.items()):
            continue
        if _ready(pod):
            count += 1
    return count


def _ready(pod: Any) -> bool:
    conditions = pod.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _release_rule(route: Manifest) -> Manifest:
    for rule in (route.get("spec") or {}).get("rules", []):
        if any(ref["name"] in (STABLE, CANARY) for ref in rule.get("backendRefs") or []):
            return dict(rule)
    return {}


def _weighted_backends(route: Manifest) -> dict[str, str]:
    """Services that get traffic from the release's rule: name -> what they get."""
    rule = _release_rule(route)
    backends = {
        ref["name"]: f"weight {ref.get('weight', 1)}"
        for ref in rule.get("backendRefs") or []
        if ref.get("weight", 1) > 0
    }
    for item in rule.get("filters") or []:
        mirror = item.get("requestMirror")
        if item.get("type") == "RequestMirror" and mirror:
            percent = mirror.get("percent", 100)
            if percent > 0:
                backends.setdefault(mirror["backendRef"]["name"], f"mirror {percent}%")
    return backends


def _canary_percent(route: Manifest) -> int:
    refs = {r["name"]: r.get("weight", 1) for r in _release_rule(route).get("backendRefs") or []}
    total = refs.get(STABLE, 0) + refs.get(CANARY, 0)
    return round(100 * refs.get(CANARY, 0) / total) if total else 0


# --- a run --------------------------------------------------------------------------------------


@dataclass
class Run:
    final: str
    faults: int
    violations: list[Violation]
    recovery: list[float]
    failed_requests: int
    exposed: int = 0  # answered 500/503 while the operator reacted to an outside fault
    reactions: list[float] = field(default_factory=list)


@dataclass
class Chaos:
    """One scenario's namespace, monitor and helpers."""

    scenario: Scenario
    rng: random.Random
    owned_route: bool = False  # releases use gatewayAPI.ownedRoute (the operator's route)
    transitions: tuple[str, ...] = ()  # write-faults: only these (default: all)
    monitor: Monitor | None = None
    version: int = 1
    faults: int = 0
    recovery: list[float] = field(default_factory=list)
    _fault_ends: list[float] = field(default_factory=list)

    # the release
    def manifest(self, version: str, stages: list[Manifest], *args: Any, **kw: Any) -> Manifest:
        """`chaos_release` in this scenario's route mode."""
        kw.setdefault("owned_route", self.owned_route)
        return chaos_release(version, stages, *args, **kw)

    def status(self) -> Manifest:
        obj = self.scenario.get()
        return dict(obj.get("status") or {})

    def apply(self, manifest: Manifest) -> None:
        manifest["metadata"]["namespace"] = self.scenario.namespace
        apply(manifest)

    def next_version(self) -> str:
        self.version += 1
        return f"1.{self.version}.0"

    def wait(self, probe: Callable[[Manifest], Any], timeout: float, what: str) -> Any:
        return wait_for(lambda: probe(self.status()), timeout, what, interval=0.25)

    def wait_champion(self, version: str, timeout: float = RELEASE_TIMEOUT) -> Manifest:
        def done(status: Manifest) -> Manifest | None:
            champion = status.get("champion") or {}
            ok = status.get("phase") == "Succeeded" and champion.get("modelVersion") == version
            return status if ok else None

        result: Manifest = self.wait(done, timeout, f"version {version} to be champion")
        return result

    def wait_outcome(self, version: str, timeout: float = RELEASE_TIMEOUT) -> Manifest:
        """A final phase with `version` decided (promoted, rolled back or kept out)."""

        def done(status: Manifest) -> Manifest | None:
            history = status.get("history") or [{}]
            decided = history[-1].get("modelVersion") == version
            return status if status.get("phase") in FINAL_PHASES and decided else None

        result: Manifest = self.wait(done, timeout, f"an outcome for version {version}")
        return result

    def wait_final(self, timeout: float = RELEASE_TIMEOUT) -> Manifest:
        def done(status: Manifest) -> Manifest | None:
            return status if status.get("phase") in FINAL_PHASES else None

        result: Manifest = self.wait(done, timeout, "a final phase")
        return result

    def wait_step(self, weight: int, timeout: float = 120) -> None:
        """The challenger holds `weight` percent and the step's clock runs."""

        def at(status: Manifest) -> bool:
            stage = status.get("currentStage") or {}
            return bool(stage.get("weight") == weight and stage.get("stepStartTime"))

        self.wait(at, timeout, f"the canary step at {weight}%")

    def baseline(self, stages: list[Manifest], **extra: Any) -> None:
        """A champion to release against (from an earlier run, or a fresh one)."""
        status = self.status()
        settled = status.get("phase") in ("Succeeded", "RolledBack")
        if settled and status.get("champion") and not status.get("challenger"):
            return
        version = self.next_version()
        self.apply(self.manifest(version, stages, **extra))
        self.wait_champion(version)

    # the operator
    def kill_operator(self) -> None:
        self.scenario.stop("operator", signal.SIGKILL)

    def restart_operator(self, faults: str = "") -> None:
        self.scenario.stop("operator")
        self.scenario.start_operator(faults)

    def operator_log(self) -> str:
        path = self.scenario.folder / "operator.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def approve(self) -> None:
        revision = (self.status().get("challenger") or {}).get("revision")
        if self.monitor is not None and revision:
            self.monitor.approved.add(revision)
        kubectl("annotate", "modelrelease", NAME, "-n", self.scenario.namespace,
                "modelrelease.dev/action=approve", "--overwrite")  # fmt: skip

    def fault_ended(self, at: float | None = None) -> None:
        self.faults += 1
        self._fault_ends.append(at if at is not None else time.time())

    def record(self, check_monotonic: bool = True) -> Monitor:
        self.monitor = Monitor(self.scenario, check_monotonic=check_monotonic).start()
        self._fault_ends = []
        self.faults = 0
        self.recovery = []
        return self.monitor

    def finish(self, final: str, extra: list[Violation] | None = None) -> Run:
        assert self.monitor is not None
        time.sleep(2 * SAMPLE_SECONDS + 1.5)  # the simulator's stats lag up to a second
        violations = self.monitor.stop() + list(extra or [])
        recovery = list(self.recovery)
        for end in self._fault_ends:
            seconds = self.monitor.recovery_after(end)
            if seconds is not None:
                recovery.append(seconds)
        monitor = self.monitor
        return Run(
            final,
            self.faults,
            violations,
            recovery,
            monitor.failed_requests,
            monitor.exposed,
            monitor.reactions,
        )


def describe_final(status: Manifest) -> str:
    champion = (status.get("champion") or {}).get("modelVersion", "?")
    history = status.get("history") or []
    last = history[-1] if history else {}
    phase = status.get("phase", "?")
    if phase == "Succeeded":
        return f"Succeeded({champion})"
    return f"{phase}({last.get('reason', 'no reason')})"


def expect(status: Manifest, phase: str, version: str | None = None) -> list[Violation]:
    ok = status.get("phase") == phase
    if version is not None:
        ok = ok and (status.get("champion") or {}).get("modelVersion") == version
    if phase == "RolledBack":
        ok = ok and bool(((status.get("history") or [{}])[-1]).get("reason"))
    if ok:
        return []
    wanted = f"{phase}" + (f" with {version} as champion" if version else " with a reason")
    detail = f"expected {wanted}, got {describe_final(status)}"
    log(f"VIOLATION final: {detail}")
    return [Violation("final", time.time(), detail)]


def final_or_timeout(
    chaos: Chaos, wait: Callable[[], Manifest]
) -> tuple[Manifest, list[Violation]]:
    try:
        return wait(), []
    except ConditionTimeoutError as error:
        status = chaos.status()
        detail = (
            f"{error} (status now: {describe_final(status)}, message {status.get('message')!r})"
        )
        log(f"VIOLATION final: {detail}")
        return status, [Violation("final", time.time(), detail)]


# --- scenarios ------------------------------------------------------------------------------------

FULL_RELEASE = [shadow("6s"), canary((20, "6s"), (50, "6s"))]


def _moved(monitor: Monitor, since: float) -> bool:
    """The release progressed (or ended) after `since`."""
    return monitor.recovery_after(since) is not None


def kill_random(chaos: Chaos, kills: int) -> Run:
    """SIGKILL the operator at random moments of a release (shadow, canary, promotion)."""
    chaos.baseline(FULL_RELEASE)
    version = chaos.next_version()
    chaos.record()
    chaos.apply(chaos.manifest(version, FULL_RELEASE, ready_after="5s"))
    monitor = chaos.monitor
    assert monitor is not None
    for _ in range(kills):
        time.sleep(chaos.rng.uniform(1.0, 5.0))
        status = chaos.status()
        if status.get("phase") in FINAL_PHASES and not status.get("challenger"):
            break
        stage = status.get("currentStage") or {}
        log(f"SIGKILL operator at {status.get('phase')} {stage.get('name')} step "
            f"{stage.get('step')}")  # fmt: skip
        chaos.kill_operator()
        time.sleep(chaos.rng.uniform(2.0, 4.0))
        chaos.scenario.start_operator()
        back = time.time()
        chaos.fault_ended(back)
        # The next kill once the release has moved on: on a loaded machine the operator
        # takes seconds to start, and kills every few seconds all land in the first stage.
        with contextlib.suppress(ConditionTimeoutError):
            wait_for(functools.partial(_moved, monitor, back), 90, "progress")
    status, extra = final_or_timeout(chaos, lambda: chaos.wait_outcome(version))
    return chaos.finish(describe_final(status), extra + expect(status, "Succeeded", version))


@dataclass(frozen=True)
class WriteFault:
    transition: str  # a key of TRANSITIONS
    mode: str  # kill-after-write, kill-before-status or fail-write
    at: int


@dataclass
class Armed:
    """A transition about to start, once the operator is armed: `trigger` starts it (the
    scenario's own part, after the arming), `done` says it is over, `settle` waits for
    its end and checks it."""

    done: Callable[[], bool]
    settle: Callable[[], tuple[str, list[Violation]]]
    trigger: Callable[[], None] = lambda: None


def _arm_release(chaos: Chaos, transition: str) -> Armed:
    """A challenger at its canary step: promoted (healthy), rolled back by an interval
    check (turns bad, 2 s interval) or by the sequential guard between two interval checks
    (turns bad, 60 s interval: only the guard can see it in time)."""
    guarded = transition == "guard-rollback"
    bad = transition in ("rollback", "guard-rollback")
    weight = 20 if bad else 50
    stages = [canary((weight, "90s" if guarded else "20s" if bad else "4s"))]
    analysis = {"interval": "60s"} if guarded else None
    chaos.baseline(stages)
    version = chaos.next_version()
    chaos.record()
    behaviour = TURNS_BAD if bad else HEALTHY
    chaos.apply(chaos.manifest(version, stages, behaviour, ready_after="3s", analysis=analysis))
    chaos.wait_step(weight)

    def settle() -> tuple[str, list[Violation]]:
        status, extra = final_or_timeout(chaos, chaos.wait_final)
        if not bad:
            return describe_final(status), extra + expect(status, "Succeeded", version)
        extra += expect(status, "RolledBack")
        reason = ((status.get("history") or [{}])[-1]).get("reason")
        if guarded and not extra and reason != Reason.SLO_GUARD_TRIPPED:
            # Not an invariant, but then the run did not test what it is named after.
            detail = f"rolled back by {reason}, not by the guard: the guard did not trip first"
            log(f"VIOLATION final: {detail}")
            extra.append(Violation("final", time.time(), detail))
        return describe_final(status), extra

    return Armed(lambda: chaos.status().get("phase") in FINAL_PHASES, settle)


def _reset(chaos: Chaos, user_route: bool) -> None:
    """No release (its owned objects gone) and, with `user_route`, the scenario's route back."""
    if not chaos.scenario.running("operator"):
        chaos.scenario.start_operator()
    namespace = chaos.scenario.namespace
    kubectl("delete", "mrel", NAME, "-n", namespace, "--ignore-not-found", "--timeout=60s")
    wait_for(
        lambda: not kubectl("get", "services,httproutes", "-n", namespace, "-o", "name",
                            "-l", f"{LABEL_RELEASE}={NAME}").strip(),
        90, "the deleted release's Services and owned route to be collected",
    )  # fmt: skip
    if user_route:
        apply(http_route(namespace, NAME, REQUESTS_PER_SECOND))
    else:
        kubectl("delete", "httproute", NAME, "-n", namespace, "--ignore-not-found")


def _route(chaos: Chaos) -> Manifest:
    out = kubectl("get", "httproute", NAME, "-n", chaos.scenario.namespace, "-o", "json",
                  check=False)  # fmt: skip
    return json.loads(out) if out else {}


def _owned(chaos: Chaos, route: Manifest) -> bool:
    uid = chaos.scenario.get().get("metadata", {}).get("uid")
    refs = (route.get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(ref.get("uid") == uid for ref in refs)


def _check_owned_route(chaos: Chaos, timeout: float = 30) -> list[Violation]:
    """The release's own route exists, is owned by it and sends everything to stable."""
    try:
        wait_for(
            lambda: (r := _route(chaos)) and _owned(chaos, r) and _weighted_backends(r)
            == {STABLE: f"weight {100}"},
            timeout, "the owned route, all weight on stable", interval=0.5,
        )  # fmt: skip
        return []
    except ConditionTimeoutError as error:
        detail = f"{error}: route now {_weighted_backends(_route(chaos)) or 'missing'}"
        log(f"VIOLATION I8: {detail}")
        return [Violation("I8", time.time(), detail)]


def _arm_owned_create(chaos: Chaos) -> Armed:
    """A first release with `gatewayAPI.ownedRoute`: armed once its Deployment and Services
    are written and its pods load, so the faults hit the pass that creates the route (and
    what follows)."""
    _reset(chaos, user_route=False)
    version = chaos.next_version()
    chaos.record()
    chaos.apply(chaos_release(version, [canary((50, "4s"))], ready_after="8s", owned_route=True))
    namespace = chaos.scenario.namespace
    wait_for(
        lambda: len(kubectl("get", "services", "-n", namespace, "-o", "name",
                            "-l", f"{LABEL_RELEASE}={NAME}").split()) == 2,
        60, "the first release's Services",
    )  # fmt: skip

    def settle() -> tuple[str, list[Violation]]:
        status, extra = final_or_timeout(chaos, lambda: chaos.wait_champion(version))
        extra += expect(status, "Succeeded", version) + _check_owned_route(chaos)
        return describe_final(status), extra

    return Armed(lambda: bool(_route(chaos)) and chaos.status().get("phase") == "Succeeded",
                 settle)  # fmt: skip


def _arm_owned_handover(chaos: Chaos) -> Armed:
    """A champion serving through the scenario's route switches to `ownedRoute`: refused
    while that route is someone else's (nothing changes), then the person deletes it and
    the operator creates its own. Armed before the deletion."""
    _reset(chaos, user_route=True)
    version = chaos.next_version()
    chaos.apply(chaos_release(version, [canary((50, "4s"))]))
    chaos.wait_champion(version)
    chaos.record()
    before = _route(chaos)
    chaos.apply(chaos_release(version, [canary((50, "4s"))], owned_route=True))

    def refused(status: Manifest) -> bool:
        return any("is not owned by ModelRelease" in c.get("message", "")
                   for c in status.get("conditions") or [])  # fmt: skip

    chaos.wait(refused, 60, "the owned route refused while the scenario's route exists")
    extra = []
    after = _route(chaos)
    if after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]:
        detail = f"the refused release wrote the route: {before['spec']} -> {after['spec']}"
        log(f"VIOLATION I1: {detail}")
        extra.append(Violation("I1-route", time.time(), detail))

    def trigger() -> None:
        log("deleting the scenario's route: the release may now create its own")
        kubectl("delete", "httproute", NAME, "-n", chaos.scenario.namespace)

    def settle() -> tuple[str, list[Violation]]:
        checks = _check_owned_route(chaos)
        status = chaos.status()
        degraded = [c for c in status.get("conditions") or []
                    if c.get("type") == "Degraded" and c.get("status") == "True"]  # fmt: skip
        if degraded:
            detail = f"still Degraded after the handover: {degraded[0].get('message')}"
            log(f"VIOLATION final: {detail}")
            checks.append(Violation("final", time.time(), detail))
        return describe_final(status), extra + checks + expect(status, "Succeeded", version)

    return Armed(lambda: _owned(chaos, _route(chaos)), settle, trigger)


DONE_GRACE = 5.0
"""Seconds the fault may still fire after a transition looks over (its later writes)."""


def write_fault(chaos: Chaos, fault: WriteFault) -> tuple[Run, bool]:
    """Arm the operator's fault injection just before a transition; True when it fired."""
    armed = TRANSITIONS[fault.transition](chaos)
    marker = len(chaos.operator_log())
    chaos.restart_operator(f"{fault.mode}={fault.at}")
    armed.trigger()
    fired = False
    deadline = time.monotonic() + 90
    over: float | None = None
    while time.monotonic() < deadline:
        if not chaos.scenario.running("operator"):
            fired = True
            log(f"{fault}: operator exited by fault injection")
            time.sleep(chaos.rng.uniform(1.0, 3.0))
            chaos.scenario.start_operator()
            chaos.fault_ended()
            break
        if "fault injection: failing write" in chaos.operator_log()[marker:]:
            fired = True
            log(f"{fault}: write failed by fault injection")
            chaos.fault_ended()
            break
        if over is None and armed.done():
            over = time.monotonic()
        # A transition's pass writes status first: the writes that finish it come after
        # `done` can see it, in that pass or the next ones. Watch them too.
        if over is not None and time.monotonic() - over > DONE_GRACE:
            break
        time.sleep(0.1)
    if not fired and "fault injection: exiting" in chaos.operator_log()[marker:]:
        # It died in a pass after the one that ended the transition.
        fired = True
        log(f"{fault}: operator exited by fault injection, after the final status")
        chaos.scenario.start_operator()
        chaos.fault_ended()
    final, extra = armed.settle()
    if chaos.scenario.running("operator") and not fired:
        chaos.restart_operator()  # disarm
    return chaos.finish(final, extra), fired


TRANSITIONS: dict[str, Callable[[Chaos], Armed]] = {
    "promotion": lambda chaos: _arm_release(chaos, "promotion"),
    "rollback": lambda chaos: _arm_release(chaos, "rollback"),
    "guard-rollback": lambda chaos: _arm_release(chaos, "guard-rollback"),
    "owned-create": _arm_owned_create,
    "owned-handover": _arm_owned_handover,
}


def write_fault_sweeps(chaos: Chaos, modes: list[tuple[str, str]], most: int) -> list[Run]:
    """For each (transition, mode): N = 1, 2, ... until the fault no longer fires."""
    runs = []
    for transition, mode in modes:
        for at in range(1, most + 1):
            run, fired = write_fault(chaos, WriteFault(transition, mode, at))
            log(f"{transition} {mode}={at}: {run.final}, {len(run.violations)} violation(s)")
            runs.append(run)
            if not fired:
                log(f"{transition} {mode}={at} did not fire: the transition has fewer writes")
                break
    return runs


def prometheus_outage(chaos: Chaos, seconds: float, on_error: Manifest | None) -> Run:
    """Prometheus stopped mid-canary for `seconds`; then started again."""
    stages = [canary((20, "20s"), (50, "6s"))]
    analysis = {"onError": on_error} if on_error else None
    chaos.baseline(stages)
    version = chaos.next_version()
    chaos.record()
    chaos.apply(chaos.manifest(version, stages, analysis=analysis))
    chaos.wait_step(20)
    time.sleep(3)
    log(f"stopping Prometheus for {seconds:.0f}s")
    subprocess.run([LOCAL_CLUSTER, "stop", "prometheus"], check=True, capture_output=True)
    before = chaos.status()
    promoted_during = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status = chaos.status()
        stage = status.get("currentStage") or {}
        if status.get("phase") == "Succeeded" or (stage.get("weight") or 0) > 20:
            promoted_during.append(describe_final(status))
        time.sleep(1)
    subprocess.run([LOCAL_CLUSTER, "start", "prometheus"], check=True, capture_output=True)
    chaos.fault_ended()
    log(f"Prometheus back; during the outage: {describe_final(chaos.status())}")
    extra = []
    if promoted_during:
        detail = f"moved on while Prometheus was down (from {describe_final(before)})"
        log(f"VIOLATION I3: {detail}")
        extra.append(Violation("I3", time.time(), detail))
    if on_error:
        status, timeout = final_or_timeout(chaos, chaos.wait_final)
        extra += timeout + expect(status, "RolledBack")
    else:
        status, timeout = final_or_timeout(chaos, lambda: chaos.wait_outcome(version))
        extra += timeout + expect(status, "Succeeded", version)
    return chaos.finish(describe_final(status), extra)


def on_error_supported() -> bool:
    crd = json.loads(kubectl("get", "crd", "modelreleases.modelrelease.dev", "-o", "json"))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    analysis = schema["properties"]["spec"]["properties"].get("analysis", {})
    return "onError" in analysis.get("properties", {})


def control_plane_restart(chaos: Chaos) -> Run:
    """The API server restarted at the first canary step, etcd at the second."""
    stages = [canary((20, "10s"), (50, "10s"))]
    chaos.baseline(stages)
    version = chaos.next_version()
    chaos.record()
    chaos.apply(chaos.manifest(version, stages))
    for weight, component in ((20, "kube-apiserver"), (50, "etcd")):
        chaos.wait_step(weight)
        time.sleep(2)
        log(f"restarting {component}")
        subprocess.run([LOCAL_CLUSTER, "restart", component], check=True, capture_output=True)
        if component == "etcd":  # the API server answers again only once it reconnects
            wait_for(lambda: kubectl("get", "--raw", "/readyz", check=False), 60, "readyz")
        chaos.fault_ended()
    status, extra = final_or_timeout(chaos, lambda: chaos.wait_outcome(version))
    return chaos.finish(describe_final(status), extra + expect(status, "Succeeded", version))


BAKE_OFF_BEHAVIOUR: Manifest = {"errorRatio": 0.05, "ttft": {"p50": 0.1, "p95": 0.25}}


def bake_off_pod_deletion(chaos: Chaos) -> Run:
    """Identical versions in a bake-off; a challenger pod, then a champion pod deleted."""
    metric = {
        "name": "errors",
        "kind": "ratio",
        "bad": 'vllm:request_success_total{namespace="{{namespace}}",revision="{{revision}}",'
        'finished_reason="error"}',
        "total": 'vllm:request_success_total{namespace="{{namespace}}",revision="{{revision}}"}',
    }
    stages = [
        {
            "name": "bake-off",
            "championChallenger": {
                "weight": 50,
                "maxDuration": "45s",
                "margin": 0.05,
                "onInconclusive": "promote",
                "metrics": [metric],
            },
        }
    ]
    # No SLO: at 5% errors a 2 s error-ratio window is noise; the comparison alone decides.
    extra_spec: dict[str, Any] = {
        "capacity": {"mode": "surge"},
        "ready_after": "5s",
        "analysis": {"slos": []},
    }
    chaos.baseline(stages, behaviour=BAKE_OFF_BEHAVIOUR, **extra_spec)
    version = chaos.next_version()
    chaos.record()
    chaos.apply(chaos.manifest(version, stages, BAKE_OFF_BEHAVIOUR, **extra_spec))
    chaos.wait(lambda s: (s.get("currentStage") or {}).get("stepStartTime"), 120, "the bake-off")
    assert chaos.monitor is not None
    for role, backend in (("challenger", CANARY), ("champion", STABLE)):
        time.sleep(10)
        revision = (chaos.status().get(role) or {}).get("revision")
        pods = kubectl("get", "pods", "-n", chaos.scenario.namespace, "-o", "name",
                       "-l", f"modelrelease.dev/revision={revision}").split()  # fmt: skip
        if pods:
            log(f"deleting {role} pod {pods[0]}")
            chaos.monitor.outside_fault(backend, pods[0].removeprefix("pod/"))
            kubectl("delete", pods[0], "-n", chaos.scenario.namespace, "--wait=false")
            chaos.fault_ended()
    status, extra = final_or_timeout(chaos, chaos.wait_final)
    return chaos.finish(describe_final(status), extra + expect(status, "Succeeded", version))


def supersede_at_half(chaos: Chaos) -> Run:
    """A new version applied while the challenger holds 50%."""
    stages = [canary((20, "4s"), (50, "15s"))]
    chaos.baseline(stages)
    chaos.record()
    chaos.apply(chaos.manifest(chaos.next_version(), stages, ready_after="3s"))
    chaos.wait_step(50)
    time.sleep(2)
    newest = chaos.next_version()
    log(f"applying {newest} at 50%")
    chaos.apply(chaos.manifest(newest, stages, ready_after="3s"))
    chaos.fault_ended()
    status, extra = final_or_timeout(chaos, lambda: chaos.wait_outcome(newest))
    return chaos.finish(describe_final(status), extra + expect(status, "Succeeded", newest))


def approval_edit(chaos: Chaos) -> Run:
    """Remove an earlier stage while waiting at an approval gate: no promotion until approved."""
    stages = [canary((20, "4s"), name="first"), {"name": "sign-off", "approval": {}}]
    chaos.baseline(stages)
    version = chaos.next_version()
    chaos.record()
    chaos.apply(chaos.manifest(version, stages))

    def waiting(status: Manifest) -> bool:
        return any(c.get("reason") == "WaitingForApproval" for c in status.get("conditions") or [])

    chaos.wait(waiting, 120, "the approval gate")
    log("removing the stage before the approval gate")
    chaos.apply(chaos.manifest(version, stages[1:]))
    chaos.fault_ended()
    time.sleep(15)  # a promotion now would skip the gate: the monitor reports I2
    chaos.approve()
    status, extra = final_or_timeout(chaos, lambda: chaos.wait_outcome(version))
    return chaos.finish(describe_final(status), extra + expect(status, "Succeeded", version))


def delete_mid_canary(chaos: Chaos) -> Run:
    """The release deleted at 20%: the route goes back to stable, nothing to a missing Service."""
    stages = [canary((20, "30s"))]
    chaos.baseline(stages)
    chaos.record()
    chaos.apply(chaos.manifest(chaos.next_version(), stages))
    chaos.wait_step(20)
    time.sleep(2)
    log("deleting the release")
    started = time.time()
    kubectl("delete", "modelrelease", NAME, "-n", chaos.scenario.namespace, "--timeout=60s")
    gone = time.time()
    chaos.recovery.append(gone - started)
    chaos.faults += 1
    # The release is gone (its finalizer ran). Deleting it deletes its Deployments and
    # Services, so the endpoint stops serving: that is what deletion means, not an
    # outage by routing. The invariant holds up to here (requests answered later are not
    # judged); what follows checks the route was given back (stable only, no canary, no
    # mirror) before the Services went.
    assert chaos.monitor is not None
    chaos.monitor.stop(cutoff=gone)
    extra = []
    if chaos.owned_route:
        # The release's own route goes with it (ownerReference), like its Services.
        try:
            wait_for(lambda: not _route(chaos), 60, "the owned route to be collected")
        except ConditionTimeoutError as error:
            log(f"VIOLATION final: {error}")
            extra.append(Violation("final", time.time(), str(error)))
        weighted = _weighted_backends(_route(chaos)) if _route(chaos) else {}
    else:
        time.sleep(10)  # owned Services and Deployments are garbage-collected meanwhile
        weighted = _weighted_backends(_route(chaos))
        if set(weighted) != {STABLE}:
            detail = f"after deletion the route sends traffic to {weighted}"
            log(f"VIOLATION final: {detail}")
            extra.append(Violation("final", time.time(), detail))
    services = kubectl("get", "services", "-n", chaos.scenario.namespace, "-o", "name").split()
    final = f"deleted; route {weighted}; services {services}"
    return chaos.finish(final, extra)


def route_edit(chaos: Chaos) -> Run:
    """The managed route's weights edited by hand mid-canary: they must converge back."""
    stages = [canary((20, "40s"))]
    chaos.baseline(stages)
    version = chaos.next_version()
    chaos.record(check_monotonic=False)  # converging back from the edit lowers the weight
    chaos.apply(chaos.manifest(version, stages))
    chaos.wait_step(20)
    time.sleep(2)
    route = json.loads(kubectl("get", "httproute", NAME, "-n", chaos.scenario.namespace,
                               "-o", "json"))  # fmt: skip
    for rule in route["spec"]["rules"]:
        for ref in rule.get("backendRefs") or []:
            ref["weight"] = {STABLE: 10, CANARY: 90}.get(ref["name"], ref.get("weight", 1))
    log("editing the route by hand: stable 10, canary 90")
    kubectl("replace", "-f", "-", input=json.dumps(route))
    edited = time.time()
    chaos.faults += 1
    extra = []
    try:
        wait_for(
            lambda: _canary_percent(json.loads(kubectl(
                "get", "httproute", NAME, "-n", chaos.scenario.namespace, "-o", "json"))) == 20,
            60, "the route back at 20%", interval=0.2,
        )  # fmt: skip
        chaos.recovery.append(time.time() - edited)
    except ConditionTimeoutError as error:
        log(f"VIOLATION I8: {error}")
        extra.append(Violation("I8", time.time(), str(error)))
    status, timeout = final_or_timeout(chaos, lambda: chaos.wait_outcome(version))
    return chaos.finish(
        describe_final(status), extra + timeout + expect(status, "Succeeded", version)
    )


# --- the suite ------------------------------------------------------------------------------------

Runner = Callable[[Chaos, int, bool], list[Run]]


def _kills(chaos: Chaos, runs: int, quick: bool) -> list[Run]:
    return [kill_random(chaos, kills=3 if quick else 5) for _ in range(runs)]


def _write_faults(chaos: Chaos, runs: int, quick: bool) -> list[Run]:
    modes = [
        ("promotion", "kill-before-status"),
        ("promotion", "kill-after-write"),
        ("guard-rollback", "kill-after-write"),
        ("owned-create", "kill-after-write"),
        ("owned-handover", "kill-after-write"),
    ]
    if not quick:
        modes += [
            ("rollback", "kill-after-write"),
            ("rollback", "kill-before-status"),
            ("promotion", "fail-write"),
            ("guard-rollback", "kill-before-status"),
            ("owned-create", "kill-before-status"),
            ("owned-create", "fail-write"),
            ("owned-handover", "fail-write"),
        ]
    # Left out to keep the suite's time: a failed write of the guard's rollback is the
    # rollback's (the same pass, with a restart less), and a lost status write of the
    # handover is the creation's (the same route write). --transition adds them back.
    if chaos.transitions:
        modes += [("guard-rollback", "fail-write"), ("owned-handover", "kill-before-status")]
        modes = [mode for mode in modes if mode[0] in chaos.transitions]
    # The owned-route transitions last: they leave the release in owned-route mode.
    modes.sort(key=lambda mode: mode[0].startswith("owned-"))
    result: list[Run] = []
    for _ in range(runs):
        result += write_fault_sweeps(chaos, modes, most=3 if quick else 6)
    return result


def _prometheus(chaos: Chaos, runs: int, quick: bool) -> list[Run]:
    result = [prometheus_outage(chaos, 20 if quick else 60, None) for _ in range(runs)]
    if on_error_supported():
        policy = {"action": "rollback", "after": "30s"}
        result += [prometheus_outage(chaos, 45, policy) for _ in range(runs)]
    else:
        log("SKIPPED the outage longer than the policy: the CRD has no spec.analysis.onError yet")
    return result


def _repeat(scenario: Callable[[Chaos], Run]) -> Runner:
    return lambda chaos, runs, quick: [scenario(chaos) for _ in range(runs)]


def disowned_rollback(chaos: Chaos) -> Run:
    """Mid-canary, the owned route loses its ownerReference (replaced by hand from an old
    copy, say): the operator no longer writes it. The challenger then fails its SLO: the
    rollback must still move the canary Service, which the route weights, onto the
    champion. Then the person deletes the route and the operator creates its own again."""
    stages = [canary((20, "30s"))]
    chaos.baseline(stages)
    version = chaos.next_version()
    chaos.record(check_monotonic=False)
    chaos.apply(chaos.manifest(version, stages, TURNS_BAD, ready_after="3s"))
    chaos.wait_step(20)
    namespace = chaos.scenario.namespace
    log("removing the owned route's ownerReference")
    kubectl("patch", "httproute", NAME, "-n", namespace, "--type=json",
            "-p", '[{"op": "remove", "path": "/metadata/ownerReferences"}]')  # fmt: skip
    chaos.fault_ended()
    status, extra = final_or_timeout(chaos, chaos.wait_final)
    extra += expect(status, "RolledBack")
    champion = (status.get("champion") or {}).get("revision")

    def on_champion() -> bool:
        backends = _weighted_backends(_route(chaos))
        selectors = {
            name: json.loads(kubectl("get", "service", name, "-n", namespace, "-o", "json"))
            ["spec"]["selector"].get(LABEL_REVISION)
            for name in backends
        }  # fmt: skip
        return all(revision == champion for revision in selectors.values())

    try:
        wait_for(on_champion, 20, "the route's Services on the champion after the rollback")
    except ConditionTimeoutError as error:
        detail = f"rolled back, but the route still reaches the challenger: {error}"
        log(f"VIOLATION I1: {detail}")
        extra.append(Violation("I1-rollback", time.time(), detail))
    log("deleting the disowned route: the release creates its own")
    kubectl("delete", "httproute", NAME, "-n", namespace)
    # Its passes failed while the route was not its own, so the next one comes after
    # their backoff (I6; doubling from 2 s, jittered): deleting the route does not skip it.
    extra += _check_owned_route(chaos, timeout=150)
    return chaos.finish(describe_final(status), extra)


def _owned_route(chaos: Chaos, runs: int, quick: bool) -> list[Run]:
    """Releases in owned-route mode: the first one creates the route; then SIGKILLs through
    a whole release, a hand edit of the route, a rollback while the route is disowned,
    and the release deleted (its route goes with it)."""
    chaos.owned_route = True
    kubectl("delete", "httproute", NAME, "-n", chaos.scenario.namespace, "--ignore-not-found")
    result: list[Run] = []
    for _ in range(runs):
        result += [kill_random(chaos, kills=3 if quick else 5), route_edit(chaos)]
        result += [disowned_rollback(chaos), delete_mid_canary(chaos)]
    return result


@dataclass(frozen=True)
class Entry:
    runner: Runner
    runs: int  # in a default run
    doc: str


SCENARIOS: dict[str, Entry] = {
    "kill-operator": Entry(_kills, 4, "SIGKILL of the operator at random moments, 5 per run"),
    "write-faults": Entry(_write_faults, 1, "kill/fail at every write N of a promotion/rollback"),
    "prometheus-outage": Entry(_prometheus, 1, "Prometheus down 60 s mid-canary; then > policy"),
    "control-plane": Entry(_repeat(control_plane_restart), 1, "API server, then etcd restarted"),
    "bake-off-pods": Entry(_repeat(bake_off_pod_deletion), 1, "pods deleted in a bake-off"),
    "supersede": Entry(_repeat(supersede_at_half), 1, "a new version applied at 50%"),
    "approval-edit": Entry(_repeat(approval_edit), 1, "stage removed while at approval"),
    "delete": Entry(_repeat(delete_mid_canary), 1, "release deleted mid-canary"),
    "route-edit": Entry(_repeat(route_edit), 1, "route weights edited by hand"),
    "owned-route": Entry(_owned_route, 1, "ownedRoute: SIGKILLs, edited, disowned, deleted"),
}


def summarize(name: str, runs: list[Run]) -> str:
    violations = [v for run in runs for v in run.violations]
    by_kind: dict[str, int] = {}
    for v in violations:
        by_kind[v.invariant] = by_kind.get(v.invariant, 0) + 1
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())) or "-"
    finals: dict[str, int] = {}
    for run in runs:
        shown = re.sub(r"\(\d+\.\d+\.\d+\)", "(new)", run.final)  # the champion's version
        finals[shown] = finals.get(shown, 0) + 1
    final = "; ".join(f"{k} x{n}" if n > 1 else k for k, n in finals.items())
    recovery = [s for run in runs for s in run.recovery]
    shown = f"{statistics.median(recovery):.1f} s / {max(recovery):.1f} s" if recovery else "-"
    faults = sum(run.faults for run in runs)
    failed = sum(run.failed_requests for run in runs)
    reactions = [s for run in runs for s in run.reactions]
    outside = f"{sum(run.exposed for run in runs)} / {max(reactions):.1f} s" if reactions else "-"
    return (
        f"| {name} | {len(runs)} | {faults} | {len(violations)} ({kinds}) | {failed} "
        f"| {outside} | {final} | {shown} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                        help="run only this scenario (repeatable; default: all)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=None, help="runs per scenario")
    parser.add_argument("--quick", action="store_true", help="one short run per scenario")
    parser.add_argument("--seed", type=int, default=8, help="seed of the random fault moments")
    parser.add_argument("--keep", action="store_true",
                        help="leave the namespaces (less their Deployments) and logs")  # fmt: skip
    parser.add_argument("--transition", action="append", choices=sorted(TRANSITIONS),
                        help="write-faults: only this transition (repeatable)")  # fmt: skip
    parser.add_argument("--owned-route", action="store_true",
                        help="every scenario's releases create and own their route "
                        "(gatewayAPI.ownedRoute) instead of weighting the scenario's")  # fmt: skip
    args = parser.parse_args()
    names = args.scenario or list(SCENARIOS)
    rng = random.Random(args.seed)
    lines = []
    started = time.monotonic()
    for name in names:
        entry = SCENARIOS[name]
        runs = args.runs or (1 if args.quick else entry.runs)
        print(f"== {name}: {entry.doc} ({runs} run(s))", flush=True)
        scenario = Scenario(namespace=f"chaos-{name}", name=NAME, rate=REQUESTS_PER_SECOND)
        scenario.up()
        chaos = Chaos(scenario, rng, args.owned_route, tuple(args.transition or ()))
        if args.owned_route:  # the release makes its own
            kubectl("delete", "httproute", NAME, "-n", scenario.namespace)
        t0 = time.monotonic()
        try:
            results = entry.runner(chaos, runs, args.quick)
        except Exception as error:  # report and go on with the next scenario
            log(f"scenario {name} ABORTED: {error!r}; see {scenario.folder}/operator.log")
            results = [
                Run(f"aborted: {error}", chaos.faults, [Violation("aborted", 0, str(error))], [], 0)
            ]
        finally:
            if not args.keep:
                scenario.down()
            else:  # the objects and logs stay to look at; the pods would hold GPUs
                scenario.stop_processes()
                kubectl("delete", "deployments", "--all", "-n", scenario.namespace)
        line = summarize(name, results)
        lines.append(line)
        print(f"{line}  ({time.monotonic() - t0:.0f} s)", flush=True)
    print(f"\nchaos suite: {time.monotonic() - started:.0f} s (seed {args.seed})")
    print("| scenario | runs | faults | invariant violations | failed requests (500/503)"
          " | outside faults: exposed requests / reaction max | final states"
          " | recovery p50 / max |")  # fmt: skip
    print("| --- | ---: | ---: | --- | ---: | --- | --- | --- |")
    for line in lines:
        print(line)
    return 1 if any("| 0 (-) |" not in line for line in lines) else 0


if __name__ == "__main__":
    raise SystemExit(main())
