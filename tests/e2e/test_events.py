"""Event-driven passes against the real API server: a change is acted upon within a
second, and a release at rest costs no write and no API request.

The operator runs with a 30 s in-flight interval here, so a reaction within a second
can only come from the watch that saw the change, not from a timer.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Kubectl,
    Process,
    _delete_releases,
    _env,
    _report,
    free_port,
    http_route,
    model_release,
    wait_champion_version,
    wait_weights,
)
from tests.e2e.test_convergence import _stable_versions, _versions
from tests.e2e.test_invariants import slow_release
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SLOW_INTERVAL = "30"  # seconds between passes in flight without a change
REACTION_SECONDS = 1.0
AT_REST_SECONDS = 60
PROBE_SECONDS = 0.05


@pytest.fixture
def watching_operator(
    kubeconfig: str,
    namespace: str,
    kubectl: Kubectl,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    modelrelease_crds: None,
) -> Iterator[tuple[Process, int]]:
    """The operator with a slow in-flight interval and its metrics served."""
    port = free_port()
    command = [sys.executable, "-m", "modelrelease", "--namespace", namespace,
               "--liveness", "", "--reconcile-interval", SLOW_INTERVAL,
               "--metrics-port", str(port)]  # fmt: skip
    process = Process("operator", command, _env(kubeconfig), tmp_path / "operator.log")
    process.start()
    yield process, port
    _delete_releases(process, kubectl, namespace)
    process.stop()
    _report(request, process)


def _ready_pods(cluster: Cluster, revision: str | None) -> int:
    core = client.CoreV1Api(cluster.api_client)
    selector = f"modelrelease.dev/release={RELEASE}"
    if revision is not None:
        selector += f",modelrelease.dev/revision={revision}"
    pods = core.list_namespaced_pod(cluster.namespace, label_selector=selector).items
    return sum(
        1
        for pod in pods
        if pod.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    )


def _when(probe: Any, timeout: float, what: str) -> float:
    """The monotonic time at which ``probe`` first held (polled every 50 ms)."""
    wait_for(probe, timeout, what, interval=PROBE_SECONDS)
    return time.monotonic()


def test_a_pass_reacts_to_pods_becoming_ready_within_a_second(
    cluster: Cluster, watching_operator: tuple[Process, int]
) -> None:
    # Pods become Ready 5 s after they start (kwok), long after the pass that created them.
    cluster.apply(http_route(rate=None), slow_release("1", steps=[(30, "5m")]))
    ready = _when(lambda: _ready_pods(cluster, None) == 2, 90, "the champion's pods Ready")
    champion = _when(
        lambda: cluster.status().get("phase") == "Succeeded", 30, "the champion in status"
    )
    print(f"champion: status {champion - ready:.2f}s after its pods were Ready")
    assert champion - ready <= REACTION_SECONDS, f"reacted after {champion - ready:.2f}s"

    cluster.apply(slow_release("2", steps=[(30, "5m")]))
    challenger = wait_for(
        lambda: (cluster.status().get("challenger") or {}).get("revision"), 30, "a challenger"
    )
    ready = _when(
        lambda: _ready_pods(cluster, challenger) >= 1, 90, "a Ready pod of the challenger"
    )
    step = _when(lambda: cluster.weights() == (70, 30), 30, "the first step's weights")
    print(f"challenger: route {step - ready:.2f}s after its first pod was Ready")
    assert step - ready <= REACTION_SECONDS, f"reacted after {step - ready:.2f}s"


def _api_requests(port: int) -> float | None:
    """Requests the operator made, watches aside (None until its metrics are served)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("modelrelease_api_requests_total{") and 'method="WATCH"' not in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_release_at_rest_makes_no_write_and_no_request_for_a_minute(
    cluster: Cluster, watching_operator: tuple[Process, int]
) -> None:
    _, port = watching_operator
    cluster.apply(http_route(rate=None), model_release("1"))
    wait_champion_version(cluster, "1", 90)
    wait_weights(cluster, (100, 0))
    before = wait_for(
        lambda: _stable_versions(cluster), 30, "two identical readings of the objects"
    )
    requests = wait_for(lambda: _api_requests(port) or None, 10, "the operator's metrics")
    time.sleep(AT_REST_SECONDS)  # a holding period: nothing may change in it
    assert _versions(cluster) == before
    assert _api_requests(port) == requests, "API requests at rest (watches aside)"


def _metric(port: int, name: str) -> float | None:
    """The sum of a metric's series (None until the operator serves its metrics)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    )


def test_a_restarted_operator_rewrites_nothing_that_is_as_wanted(
    cluster: Cluster, watching_operator: tuple[Process, int]
) -> None:
    # After a restart the views hold listed objects; a pass compares them with what it
    # wants exactly as it compares watched ones, so nothing already right is written.
    process, port = watching_operator
    cluster.apply(http_route(rate=None), model_release("1"))
    wait_champion_version(cluster, "1", 90)
    wait_weights(cluster, (100, 0))
    wait_for(lambda: _stable_versions(cluster), 30, "two identical readings of the objects")
    process.stop()
    process.start()
    wait_for(
        lambda: (_metric(port, "modelrelease_reconcile_total") or 0) >= 1,
        60,
        "the restarted operator's first pass",
    )
    assert _metric(port, "modelrelease_api_writes_total") == 0, (
        "the restarted operator wrote objects that were already as wanted"
    )
