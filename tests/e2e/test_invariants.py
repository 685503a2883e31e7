"""The safety invariants, one cheap end-to-end check each (the chaos suite,
``make chaos``, checks them at length under random faults).

- I1 no outage by routing: the operator dies at each write of the promotion in turn
  (fault injection); no request may fail and the release completes.
- I1 again: a new version applied while the challenger holds 50%.
- I2 no promotion without every gate: a stage before the approval gate is removed
  while the release waits there; it must still wait for the approval.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Kubectl,
    Process,
    Simulator,
    _delete_releases,
    _env,
    http_route,
    model_release,
    wait_champion_version,
    wait_weights,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

FAULT_INJECTION = "MODELRELEASE_FAULT_INJECTION"
READY_AFTER = "simulator.modelrelease.dev/ready-after"
OUTAGE_CODES = (500, 503)
# Event-driven passes report each pod of the challenger becoming Ready as it happens,
# so a promotion has more status-writing passes than with a 1 s timer.
MAX_PROMOTION_PASSES = 10


@pytest.fixture
def operator_factory(
    kubeconfig: str, namespace: str, kubectl: Kubectl, tmp_path: Path, modelrelease_crds: None
) -> Iterator[Any]:
    """Start (and restart) the operator with a fault-injection mode of choice."""
    processes: list[Process] = []
    log = tmp_path / "operator.log"

    def start(faults: str = "") -> Process:
        env = {**_env(kubeconfig), FAULT_INJECTION: faults}
        command = [sys.executable, "-m", "modelrelease", "--namespace", namespace,
                   "--liveness", "", "--reconcile-interval", "1"]  # fmt: skip
        process = Process("operator", command, env, log)
        process.start()
        processes.append(process)
        return process

    yield start
    for process in processes[:-1]:
        process.stop()
    if processes:
        last = processes[-1]
        if last.running:
            last.stop()
        last.env[FAULT_INJECTION] = ""
        _delete_releases(last, kubectl, namespace)
        last.stop()
        print(f"\n===== operator output (last 6000 characters) =====\n{last.output()[-6000:]}")


def failed_requests(simulator: Simulator) -> dict[str, int]:
    """Requests the route answered 500 or 503 (a backend without a ready pod), by backend."""
    failed: dict[str, int] = {}
    for entry in simulator.stats().get("entrypoints", []):
        if entry["name"] != RELEASE:
            continue
        for answer in entry.get("unserved", []):
            if answer["code"] in OUTAGE_CODES:
                key = f"{answer['kind']} to {answer['backend']}: {answer['code']}"
                failed[key] = failed.get(key, 0) + int(answer["count"])
    return failed


def settled_failures(simulator: Simulator) -> dict[str, int]:
    """:func:`failed_requests` once the stats file has caught up with now.

    The simulator rewrites its stats every second; a reading taken right after an
    event may still miss requests answered just before it.
    """
    now = time.time()
    wait_for(
        lambda: float(simulator.stats().get("time", 0)) > now + 1,
        10,
        "the simulator's stats to catch up",
    )
    return failed_requests(simulator)


def slow_release(version: str, steps: list[tuple[int, str]], **extra: Any) -> dict[str, Any]:
    """Pods Ready a few seconds after they start, as a model loads (where supported)."""
    release = model_release(version, steps=steps, **extra)
    release["spec"]["template"]["metadata"]["annotations"][READY_AFTER] = "5s"
    for container in release["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)
    return release


def _champion(cluster: Cluster, version: str) -> str:
    status = wait_champion_version(cluster, version, 90)
    revision: str = status["champion"]["revision"]
    return revision


def _at_step(cluster: Cluster, weight: int, timeout: float = 90) -> None:
    def probe() -> bool:
        stage = cluster.status().get("currentStage") or {}
        return bool(stage.get("weight") == weight and stage.get("stepStartTime"))

    wait_for(probe, timeout, f"the canary step at {weight}%")


@pytest.mark.parametrize("fault", ["kill-before-status", "kill-after-write"])
def test_i1_promotion_survives_a_crash_at_every_write(
    cluster: Cluster, operator_factory: Any, simulator: Simulator, fault: str
) -> None:
    """The operator dies before the status write of each pass of the promotion in turn
    (kill-before-status=N), or after the N-th write of a pass (kill-after-write=N: the
    status write is the first, the cluster writes follow), for N = 1, 2, ..."""
    operator = operator_factory()
    cluster.apply(http_route(), slow_release("1", [(50, "3s")]))
    _champion(cluster, "1")
    before = settled_failures(simulator)
    for n in range(1, MAX_PROMOTION_PASSES + 1):
        version = str(n + 1)
        cluster.apply(slow_release(version, [(50, "3s")]))
        _at_step(cluster, 50)
        operator.stop()
        # Armed just before the promotion: its n-th writing pass dies before the status
        # write, as with a SIGKILL at the worst moment.
        armed = operator_factory(f"{fault}={n}")

        def ended(armed: Process = armed, version: str = version) -> str | None:
            if not armed.running:
                return "fired"
            champion = cluster.status().get("champion") or {}
            return "promoted" if champion.get("modelVersion") == version else None

        outcome = wait_for(ended, 60, f"pass {n} of the promotion to die, or the promotion")
        if armed.running:
            armed.stop()
        operator = operator_factory()
        wait_champion_version(cluster, version, 120)
        assert settled_failures(simulator) == before, (
            f"requests failed when the operator died at {fault}={n} during the promotion"
        )
        wait_weights(cluster, (100, 0))
        if outcome == "promoted":
            return  # the promotion has fewer than n writing passes: all were covered
    pytest.fail(f"the promotion took more than {MAX_PROMOTION_PASSES} writing passes")


def test_i1_new_version_at_half_never_routes_to_a_service_without_pods(
    cluster: Cluster, operator: Process, simulator: Simulator
) -> None:
    steps = [(20, "3s"), (50, "20s")]
    cluster.apply(http_route(), slow_release("1", steps))
    _champion(cluster, "1")
    before = settled_failures(simulator)
    cluster.apply(slow_release("2", steps))
    _at_step(cluster, 50)
    cluster.apply(slow_release("3", steps))
    wait_champion_version(cluster, "3", 150)
    assert settled_failures(simulator) == before, "requests failed during the supersede"


def test_i2_removing_a_stage_at_the_approval_gate_does_not_promote(
    cluster: Cluster, operator: Process, simulator: Simulator
) -> None:
    stages = [
        {"name": "first", "canary": {"steps": [{"weight": 20, "duration": "3s"}]}},
        {"name": "sign-off", "approval": {}},
    ]

    def gated(version: str, chosen: list[dict[str, Any]]) -> dict[str, Any]:
        release = slow_release(version, [(20, "3s")])
        release["spec"]["stages"] = chosen
        return release

    cluster.apply(http_route(), gated("1", stages))
    champion = _champion(cluster, "1")
    cluster.apply(gated("2", stages))

    def waiting() -> bool:
        condition = cluster.condition("Progressing") or {}
        return condition.get("reason") == "WaitingForApproval"

    wait_for(waiting, 90, "the approval gate")
    cluster.apply(gated("2", stages[1:]))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = cluster.status()
        assert status["champion"]["revision"] == champion, (
            f"promoted without approval after the stage list was edited: {status.get('history')}"
        )
        time.sleep(0.5)
    cluster.kubectl(
        "annotate", "modelrelease", RELEASE, "-n", cluster.namespace,
        "modelrelease.dev/action=approve",
    )  # fmt: skip
    wait_champion_version(cluster, "2", 90)
