"""Failover: how soon a standby replica acts after the leader is SIGKILLed mid-canary.

Two operator replicas with leader election watch one namespace on the local
cluster. Each run releases a new version through a three-step canary; at a random
moment after the first step's weight reaches the route, the leader is SIGKILLed.
From the kill, the run measures when the standby

- holds the Lease (its ``modelrelease_leader`` gauge turns 1),
- runs its first pass (``modelrelease_reconcile_total`` grows),
- sends its first write (``modelrelease_api_writes_total`` grows: counted by the
  client's write guard before each request),

polling both replicas' metrics ten times a second. It checks that the standby
wrote nothing before it led (no double actuation: each replica's own record of its
writes) and that the route's canary weight never went backwards. The killed replica
is then restarted as the new standby, as its Deployment would.

    make cluster-up
    nice -n 10 .venv/bin/python hack/bench/failover.py --runs 10
"""

from __future__ import annotations

import argparse
import random
import signal
import socket
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families

from hack.bench.time_to_rollback import percentile
from hack.scenario import KUBECONFIG, ROOT, Manifest, Scenario, apply, http_route, kubectl

T = TypeVar("T")
NAME = "chat"
STEPS = [(10, "10s"), (30, "10s"), (60, "10s")]
KILL_WITHIN_SECONDS = 10.0  # after the first step's weight is in the route
POLL_SECONDS = 0.1
LEADER, PASSES, WRITES = (
    "modelrelease_leader",
    "modelrelease_reconcile_total",
    "modelrelease_api_writes_total",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def metrics(port: int) -> dict[str, float] | None:
    """Sums of the replica's leader gauge, pass and write counters; None when it is down."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    sums = dict.fromkeys((LEADER, PASSES, WRITES), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in sums:
                sums[sample.name] += sample.value
    return sums


@dataclass
class Replica:
    name: str
    port: int = 0


@dataclass
class Timeline:
    """What each replica reported, polled in the background."""

    replicas: list[Replica]
    samples: dict[str, list[tuple[float, dict[str, float]]]] = field(default_factory=dict)
    weights: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self, routes: client.CustomObjectsApi, namespace: str) -> Timeline:
        threading.Thread(target=self._poll_metrics, daemon=True).start()
        threading.Thread(target=self._poll_route, args=(routes, namespace), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _poll_metrics(self) -> None:
        while not self._stop.is_set():
            for replica in self.replicas:
                sample = metrics(replica.port)
                if sample is not None:
                    self.samples.setdefault(replica.name, []).append((time.monotonic(), sample))
            self._stop.wait(POLL_SECONDS)

    def _poll_route(self, routes: client.CustomObjectsApi, namespace: str) -> None:
        """Every version of the route, from a watch resumed where it ended (a poll missed
        the promotion's 100% when it lasted less than the poll's interval)."""
        version: str | None = None
        while not self._stop.is_set():
            resume = {"resource_version": version} if version else {}
            try:
                for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                    routes.list_namespaced_custom_object,
                    "gateway.networking.k8s.io", "v1", namespace, "httproutes",
                    field_selector=f"metadata.name={NAME}", timeout_seconds=2, **resume,
                ):  # fmt: skip
                    if self._stop.is_set():  # the run is over: its weights are final
                        return
                    route: dict[str, Any] = event["object"]
                    version = route["metadata"].get("resourceVersion") or version
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record_weight(route)
            except client.ApiException as error:
                if error.status == 410:  # too old: list again
                    version = None
                self._stop.wait(0.25)

    def _record_weight(self, route: dict[str, Any]) -> None:
        weight = sum(
            int(ref.get("weight", 1))
            for rule in route["spec"]["rules"]
            for ref in rule.get("backendRefs") or []
            if ref["name"] == f"{NAME}-canary"
        )
        if not self.weights or self.weights[-1] != weight:
            self.weights.append(weight)

    def first(self, name: str, metric: str, after: float, above: float) -> float | None:
        """When ``metric`` of ``name`` was first seen above ``above`` after ``after``."""
        return next(
            (t for t, s in self.samples.get(name, []) if t >= after and s[metric] > above), None
        )

    def last(self, name: str, before: float) -> dict[str, float]:
        earlier = [s for t, s in self.samples.get(name, []) if t < before]
        return earlier[-1] if earlier else dict.fromkeys((LEADER, PASSES, WRITES), 0.0)


@dataclass
class Run:
    leads: float
    first_pass: float
    first_write: float
    double_actuation: bool
    weights: list[int]

    @property
    def weights_went_back(self) -> bool:
        promoted = self.weights.index(100) if 100 in self.weights else len(self.weights)
        climbing = self.weights[: promoted + 1]
        return climbing != sorted(climbing) or self.weights[promoted + 1 :] not in ([], [0])


@dataclass
class Bench:
    scenario: Scenario
    timing: tuple[str, str, str]
    rng: random.Random
    replicas: list[Replica] = field(default_factory=list)

    def start(self, replica: Replica) -> None:
        replica.port = _free_port()
        lease, renew, retry = self.timing
        self.scenario.start(
            replica.name,
            [sys.executable, "-m", "modelrelease", "--namespace", self.scenario.namespace,
             "--liveness", "", "--metrics-port", str(replica.port), "--leader-elect",
             "--leader-election-namespace", self.scenario.namespace,
             f"--lease-duration={lease}", f"--renew-deadline={renew}",
             f"--retry-period={retry}"],
            {"POD_NAME": replica.name},
        )  # fmt: skip
        wait(lambda: metrics(replica.port) is not None, 60, f"{replica.name} to serve metrics")

    def leader(self) -> tuple[Replica, Replica]:
        def find() -> tuple[Replica, Replica] | None:
            leading = [r for r in self.replicas if (metrics(r.port) or {}).get(LEADER) == 1]
            if len(leading) != 1:
                return None
            return leading[0], next(r for r in self.replicas if r is not leading[0])

        return wait(find, 60, "one leader")

    def one_run(self, number: int, routes: client.CustomObjectsApi) -> Run:
        leader, standby = self.leader()
        timeline = Timeline(self.replicas).start(routes, self.scenario.namespace)
        apply(release(self.scenario.namespace, f"2.{number}"))
        wait(lambda: timeline.weights[-1:] == [STEPS[0][0]], 120, "the first canary step")
        time.sleep(self.rng.uniform(0, KILL_WITHIN_SECONDS))  # the random moment of the kill
        killed = time.monotonic()
        before = timeline.last(standby.name, killed)
        self.scenario.stop(leader.name, sig=signal.SIGKILL)
        wait(lambda: timeline.weights[-2:] == [100, 0], 300, "the promotion")
        wait(lambda: _phase(self.scenario) == "Succeeded", 60, "phase Succeeded")
        timeline.stop()
        leads = timeline.first(standby.name, LEADER, killed, 0)
        first_pass = timeline.first(standby.name, PASSES, killed, before[PASSES])
        first_write = timeline.first(standby.name, WRITES, killed, before[WRITES])
        if leads is None or first_pass is None or first_write is None:
            raise RuntimeError(f"run {number}: the standby did not act after the kill")
        # Each replica's own record of its writes: the standby wrote nothing while the
        # leader lived, and nothing before it held the Lease.
        at_start = timeline.samples[standby.name][0][1][WRITES]
        doubled = before[WRITES] > at_start or first_write < leads
        self.restart(leader)
        return Run(
            leads - killed,
            first_pass - killed,
            first_write - killed,
            doubled,
            list(timeline.weights),
        )

    def restart(self, replica: Replica) -> None:
        """The killed replica comes back as the standby, as its Deployment would bring it."""
        self.start(replica)
        wait(lambda: (metrics(replica.port) or {}).get(LEADER) == 0, 60, "the new standby")


def wait(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def release(namespace: str, version: str) -> Manifest:
    """A mesh-less-analysis release whose canary steps are long enough to fail over in."""
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "model": {"name": "chat-8b", "version": version},
            "replicas": 1,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ]
                }
            },
            "port": 8000,
            "capacity": {"mode": "surge"},
            "traffic": {"gatewayAPI": {"httpRoute": NAME}},
            "stages": [{"canary": {"steps": [{"weight": w, "duration": d} for w, d in STEPS]}}],
            "revisionHistoryLimit": 1,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="kills of the leader (default 10)")
    parser.add_argument("--lease-duration", default="12s")
    parser.add_argument("--renew-deadline", default="8s")
    parser.add_argument("--retry-period", default="2s")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    scenario = Scenario(namespace=f"bench-failover-{uuid.uuid4().hex[:5]}")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("create", "namespace", scenario.namespace)
    api_client = config.new_client_from_config(config_file=KUBECONFIG)  # type: ignore[no-untyped-call]
    routes = client.CustomObjectsApi(api_client)
    timing = (args.lease_duration, args.renew_deadline, args.retry_period)
    bench = Bench(scenario, timing, random.Random(args.seed))
    runs: list[Run] = []
    try:
        for name in ("replica-a", "replica-b"):
            replica = Replica(name)
            bench.replicas.append(replica)
            bench.start(replica)
        apply(http_route(scenario.namespace, NAME, rate=0))
        apply(release(scenario.namespace, "1"))
        wait(lambda: _phase(scenario) == "Succeeded", 180, "version 1 to be the champion")
        for number in range(1, args.runs + 1):
            run = bench.one_run(number, routes)
            runs.append(run)
            print(
                f"run {number}: leads {run.leads:.1f}s, first pass {run.first_pass:.1f}s, "
                f"first write {run.first_write:.1f}s after the kill; double actuation: "
                f"{run.double_actuation}; weights {run.weights}",
                flush=True,
            )
    finally:
        scenario.down()
    report(runs, timing)
    if any(r.double_actuation or r.weights_went_back for r in runs):
        sys.exit("FAILED: double actuation or weights going backwards (see the runs above)")


def _phase(scenario: Scenario) -> str:
    return str((scenario.get().get("status") or {}).get("phase") or "")


def report(runs: list[Run], timing: tuple[str, str, str]) -> None:
    print(f"\nlease {timing[0]}, renew deadline {timing[1]}, retry {timing[2]}; {len(runs)} runs")
    print("| from the leader's SIGKILL to the standby's | p50 | p95 | max |")
    print("|---|---|---|---|")
    for label, values in (
        ("holding the Lease", [r.leads for r in runs]),
        ("first pass", [r.first_pass for r in runs]),
        ("first write", [r.first_write for r in runs]),
    ):
        print(
            f"| {label} | {statistics.median(values):.1f} s | {percentile(values, 0.95):.1f} s "
            f"| {max(values):.1f} s |"
        )
    doubled = sum(r.double_actuation for r in runs)
    backwards = sum(r.weights_went_back for r in runs)
    print(f"double actuation: {doubled} of {len(runs)} runs; weights went back: {backwards}")


if __name__ == "__main__":
    main()
