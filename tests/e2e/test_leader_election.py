"""Two operator replicas with leader election: only the Lease holder writes, a standby
takes over a killed leader mid-canary, and a paused-then-resumed leader writes nothing.

Each replica is a process of its own with its own identity (POD_NAME) and metrics
port; its write counter (``modelrelease_api_writes_total``, counted by the client's
write guard before a request is sent) says what it wrote.
"""

from __future__ import annotations

import signal
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    Cluster,
    Kubectl,
    Process,
    RouteRecorder,
    _delete_releases,
    _env,
    free_port,
    http_route,
    model_release,
    wait_champion_version,
    wait_weights,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

LEASE = "modelrelease-operator"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 4, 3, 1
SLACK = 6  # a loaded test machine: process scheduling and API latency
STEPS = [(20, "8s"), (50, "8s")]


@dataclass
class Replica:
    name: str
    process: Process
    metrics_port: int

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            text = r.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
        raise AssertionError(f"{self.name} exposes no {name}")

    def writes(self) -> float:
        return self.metric("modelrelease_api_writes_total")

    def leads(self) -> bool:
        return self.metric("modelrelease_leader") == 1


@pytest.fixture
def replicas(
    kubeconfig: str, namespace: str, kubectl: Kubectl, tmp_path: Path, modelrelease_crds: None
) -> Iterator[Callable[[str], Replica]]:
    """Start operator replicas that elect a leader on a Lease in the test's namespace."""
    started: list[Replica] = []

    def start(name: str) -> Replica:
        port = free_port()
        command = [
            sys.executable, "-m", "modelrelease", "--namespace", namespace, "--liveness", "",
            "--reconcile-interval", "1", "--metrics-port", str(port),
            "--leader-elect", "--leader-election-namespace", namespace,
            f"--lease-duration={LEASE_DURATION}s", f"--renew-deadline={RENEW_DEADLINE}s",
            f"--retry-period={RETRY_PERIOD}s",
        ]  # fmt: skip
        env = {**_env(kubeconfig), "POD_NAME": name}
        replica = Replica(name, Process(name, command, env, tmp_path / f"{name}.log"), port)
        replica.process.start()
        wait_for(lambda: replica.metric("modelrelease_leader") in (0, 1), 90, f"{name} up")
        started.append(replica)
        return replica

    yield start
    for replica in started:
        if replica.process.running:
            replica.process.popen.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    survivors = [r for r in started if r.process.running]
    if survivors:
        _delete_releases(survivors[0].process, kubectl, namespace)
    for replica in started:
        replica.process.stop()
        print(f"\n===== {replica.name} (last 3000 characters) =====")
        print(replica.process.output()[-3000:])


def _holder(api_client: client.ApiClient, namespace: str) -> str:
    lease = client.CoordinationV1Api(api_client).read_namespaced_lease(LEASE, namespace)
    return str(lease.spec.holder_identity or "")


def _wait_holder(api_client: client.ApiClient, namespace: str, name: str, timeout: float) -> None:
    wait_for(
        lambda: _holder(api_client, namespace).startswith(f"{name}_"),
        timeout,
        f"{name} to hold the Lease",
    )


def _two_replicas_and_a_champion(
    cluster: Cluster, replicas: Callable[[str], Replica], api_client: client.ApiClient
) -> tuple[Replica, Replica]:
    """replica-a leading, replica-b standing by, and version 1 the champion."""
    first = replicas("replica-a")
    _wait_holder(api_client, cluster.namespace, "replica-a", 30)
    second = replicas("replica-b")
    cluster.apply(http_route(rate=None), model_release("1", steps=STEPS))
    wait_champion_version(cluster, "1", 90)
    return first, second


def _canary_weights_never_go_back(recorder: RouteRecorder) -> None:
    weights = recorder.canary_weights()
    promoted = weights.index(100)
    assert weights[: promoted + 1] == sorted(weights[: promoted + 1]), weights
    assert weights[promoted:] == [100, 0], weights


def test_only_the_leader_writes_and_the_standby_takes_over_a_killed_leader(
    cluster: Cluster,
    replicas: Callable[[str], Replica],
    recorder: RouteRecorder,
    api_client: client.ApiClient,
) -> None:
    first, second = _two_replicas_and_a_champion(cluster, replicas, api_client)
    assert first.writes() > 0
    assert second.writes() == 0, "the standby wrote"
    assert (first.leads(), second.leads()) == (True, False)

    recorder.start()
    cluster.apply(model_release("2", steps=STEPS))
    wait_weights(cluster, (80, 20), timeout=60)
    assert second.writes() == 0, "the standby wrote during the canary"
    first.process.kill()
    killed = time.monotonic()
    wait_for(second.leads, LEASE_DURATION + RETRY_PERIOD + SLACK, "the standby to lead")
    took = time.monotonic() - killed
    _wait_holder(api_client, cluster.namespace, "replica-b", 5)
    print(f"\nstandby leads {took:.1f}s after the leader was killed")

    wait_champion_version(cluster, "2", 90)
    wait_for(lambda: recorder.canary_weights()[-1:] == [0], 10, "the route after promotion")
    recorder.stop()
    _canary_weights_never_go_back(recorder)
    assert second.writes() > 0


def test_a_paused_leader_that_resumes_after_losing_the_lease_writes_nothing(
    cluster: Cluster,
    replicas: Callable[[str], Replica],
    recorder: RouteRecorder,
    api_client: client.ApiClient,
) -> None:
    first, second = _two_replicas_and_a_champion(cluster, replicas, api_client)
    recorder.start()
    cluster.apply(model_release("2", steps=STEPS))
    wait_weights(cluster, (80, 20), timeout=60)

    paused = first.process.popen
    assert paused is not None
    writes_before_pause = first.writes()
    paused.send_signal(signal.SIGSTOP)  # a frozen process: its timers and passes stand still
    wait_for(second.leads, LEASE_DURATION + RETRY_PERIOD + SLACK, "the standby to lead")
    paused.send_signal(signal.SIGCONT)
    wait_for(lambda: not first.leads(), 10, "the resumed replica to know it does not lead")
    writes_after_resume = first.writes()
    # At most the one write whose guard passed just before the pause (sent before it).
    assert writes_after_resume - writes_before_pause <= 1

    wait_champion_version(cluster, "2", 90)
    wait_for(lambda: recorder.canary_weights()[-1:] == [0], 10, "the route after promotion")
    recorder.stop()
    _canary_weights_never_go_back(recorder)
    assert first.writes() == writes_after_resume, "the deposed leader wrote after it resumed"
    assert "stopped leading" in first.process.output()
