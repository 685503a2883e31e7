"""Canary releases end to end: the operator process, the API server, Prometheus and
simulated traffic. Nothing here is mocked; intervals are short to keep it quick."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import (
    ERROR_RATIO,
    RELEASE,
    Cluster,
    Process,
    RouteRecorder,
    Simulator,
    error_ratio_slo,
    http_route,
    model_release,
    ttft_slo,
    wait_champion_version,
    wait_phase,
    wait_weights,
)
from tests.waiting import wait_for

INTERVAL_SECONDS = 2
FAILURE_LIMIT = 1
ROLLBACK_SLACK_SECONDS = 15
UNREACHABLE_PROMETHEUS = "http://127.0.0.1:9"  # the discard port: connection refused


def _start(cluster: Cluster, prometheus_url: str, **release: Any) -> None:
    cluster.apply(http_route(), model_release("1", prometheus=prometheus_url, **release))
    wait_champion_version(cluster, "1", 90)


def _error_template() -> dict[str, Any]:
    query = ERROR_RATIO.format(window="{{window}}").replace('"error"', '"{{reason}}"')
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "SLOTemplate",
        "metadata": {"name": "vllm-errors"},
        "spec": {
            "query": query,
            "args": [{"name": "window"}, {"name": "reason", "default": "error"}],
        },
    }


def test_healthy_challenger_is_promoted_with_route_weights_matching_each_step(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    recorder: RouteRecorder,
    prometheus_url: str,
) -> None:
    steps = [(20, "4s"), (50, "4s")]
    slos = [
        {
            "name": "error-ratio",
            "templateRef": {"kind": "SLOTemplate", "name": "vllm-errors"},
            "args": {"window": "10s"},
            "max": 0.05,
        },
        ttft_slo(),
    ]
    cluster.apply(_error_template())
    _start(cluster, prometheus_url, steps=steps, slos=slos)
    before = cluster.route()
    recorder.start()
    cluster.apply(model_release("2", steps=steps, slos=slos, prometheus=prometheus_url))
    status = wait_champion_version(cluster, "2", 150)
    wait_for(lambda: recorder.canary_weights()[-2:] == [100, 0], 10, "the route after promotion")
    recorder.stop()

    # The recorder follows watches, so the promotion's 0/100 route is seen even though
    # the next pass replaces it within milliseconds.
    assert recorder.canary_weights() == [0, 20, 50, 100, 0]
    for index, (weight, _) in enumerate(steps):
        at_step = [s for s in recorder.samples if s.step == index and s.step_weight == weight]
        assert any(s.canary == weight and s.stable == 100 - weight for s in at_step), (
            f"no sample of step {index + 1} with the route at {weight}%"
        )
    entry = status["history"][-1]
    assert (entry["outcome"], entry["modelVersion"]) == ("Promoted", "2")
    assert entry["modelMetadata"] == {"dataset": "2026-10"}
    assert {check["name"]: check["verdict"] for check in status["checks"]} == {
        "error-ratio": "Pass",
        "ttft-p95": "Pass",
    }
    after = cluster.route()
    assert after["spec"]["rules"][0] == before["spec"]["rules"][0]
    wait_weights(cluster, (100, 0))
    assert len(cluster.deployments()) == 2  # version 1 kept at zero for a quick way back
    cluster.wait_events("Promoted")


def test_challenger_with_errors_is_rolled_back_within_the_budget(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    recorder: RouteRecorder,
    prometheus_url: str,
) -> None:
    steps = [(50, "60s")]
    _start(cluster, prometheus_url, steps=steps)
    recorder.start()
    bad = model_release("2", behaviour={"errorRatio": 0.2}, steps=steps, prometheus=prometheus_url)
    cluster.apply(bad)
    status = wait_phase(cluster, "RolledBack", 120, "the bad version to be rolled back")
    wait_for(
        lambda: recorder.first_time(lambda s: s.canary == 0 and s.phase == "RolledBack"),
        10,
        "a sample of the rolled-back route",
    )
    recorder.stop()

    entry = status["history"][-1]
    assert (entry["outcome"], entry["reason"], entry["modelVersion"]) == (
        "RolledBack",
        "SLOFailed",
        "2",
    )
    revision = entry["revision"]
    first_error = (simulator.revision(revision) or {}).get("firstUserErrorAt")
    assert first_error is not None, "the simulator saw no failed request of the bad version"
    back_to_zero = recorder.first_time(lambda s: s.canary == 0, after=first_error)
    assert back_to_zero is not None
    budget = INTERVAL_SECONDS * (FAILURE_LIMIT + 1) + ROLLBACK_SLACK_SECONDS
    took = back_to_zero - first_error
    print(
        f"\ntime from first bad request to weight 0: {took:.1f}s (budget {budget}s); "
        f"bad version served {simulator.served(revision)} user requests"
    )
    assert took <= budget
    wait_weights(cluster, (100, 0))
    assert status["champion"]["modelVersion"] == "1"
    assert status["rejectedRevision"] == revision
    cluster.wait_events("RolledBack")
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert (degraded["status"], degraded["reason"]) == ("True", "SLOFailed")
    wait_for(lambda: len(cluster.deployments()) == 1, 30, "the bad Deployment to be deleted")

    # Not retried by itself; retried when asked.
    assert cluster.status().get("challenger") is None
    cluster.kubectl(
        "annotate",
        "modelrelease",
        RELEASE,
        "-n",
        cluster.namespace,
        "modelrelease.dev/action=retry",
    )

    def retried() -> dict[str, Any] | None:
        release = cluster.release()
        status = release.get("status") or {}
        annotations = release["metadata"].get("annotations") or {}
        consumed = "modelrelease.dev/action" not in annotations
        challenger = (status.get("challenger") or {}).get("revision")
        return status if consumed and challenger == revision else None

    status = wait_for(retried, 30, "the retry to start the same revision again")
    assert status["lastAction"] == "retry"


def test_challenger_with_slow_first_tokens_is_rolled_back(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    prometheus_url: str,
) -> None:
    steps = [(50, "60s")]
    slos = [error_ratio_slo(), ttft_slo()]
    _start(cluster, prometheus_url, steps=steps, slos=slos)
    slow = {"ttft": {"p50": 0.9, "p95": 2.0}}
    cluster.apply(
        model_release("2", behaviour=slow, steps=steps, slos=slos, prometheus=prometheus_url)
    )
    status = wait_phase(cluster, "RolledBack", 120, "the slow version to be rolled back")
    entry = status["history"][-1]
    assert (entry["outcome"], entry["reason"]) == ("RolledBack", "SLOFailed")
    assert "ttft-p95" in entry["message"]
    ttft = next(check for check in status["checks"] if check["name"] == "ttft-p95")
    assert ttft["verdict"] == "Fail"
    assert ttft["value"] > 0.5
    wait_weights(cluster, (100, 0))


def test_unreachable_prometheus_promotes_nothing_and_rolls_back_by_default(
    cluster: Cluster,
    operator: Process,
    recorder: RouteRecorder,
) -> None:
    steps = [(20, "4s"), (50, "4s")]
    cluster.apply(http_route(rate=None), model_release("1", steps=steps))
    wait_champion_version(cluster, "1", 90)
    recorder.start()
    cluster.apply(
        model_release(
            "2",
            steps=steps,
            prometheus=UNREACHABLE_PROMETHEUS,
            max_inconclusive=2,  # errors are not "no data": this does not end the outage
            on_error={"after": "20s"},
        )
    )
    status = wait_phase(cluster, "RolledBack", 120, "the unjudgeable version to be rolled back")
    recorder.stop()
    assert set(recorder.canary_weights()) <= {0, 20}, "a step advanced without a passing check"
    entry = status["history"][-1]
    assert (entry["outcome"], entry["reason"]) == ("RolledBack", "MetricsUnavailable")
    check = status["checks"][0]
    assert check["verdict"] == "Error"
    assert "errorSince" in check
    assert "could not reach Prometheus" in check["message"]
    assert status["champion"]["modelVersion"] == "1"
    wait_weights(cluster, (100, 0))


def test_new_version_during_a_canary_aborts_it_and_starts_again(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    recorder: RouteRecorder,
    prometheus_url: str,
) -> None:
    long_steps = [(20, "4s"), (50, "120s")]
    _start(cluster, prometheus_url, steps=long_steps)
    recorder.start()
    cluster.apply(model_release("2", steps=long_steps, prometheus=prometheus_url))
    wait_for(lambda: cluster.weights() == (50, 50), 90, "version 2 at step 2 (50%)")
    second = cluster.status()["challenger"]["revision"]
    applied_third = time.time()
    short_steps = [(20, "4s"), (50, "4s")]
    cluster.apply(model_release("3", steps=short_steps, prometheus=prometheus_url))
    status = wait_champion_version(cluster, "3", 150)
    recorder.stop()

    after = [s for s in recorder.samples if s.time >= applied_third]
    weights: list[int] = []
    for sample in after:
        if not weights or weights[-1] != sample.canary:
            weights.append(sample.canary)
    assert weights[:3] == [50, 0, 20], f"expected 50 -> 0 -> 20 after version 3, saw {weights}"
    outcomes = [(h["modelVersion"], h["outcome"]) for h in status["history"]]
    assert ("2", "Superseded") in outcomes
    assert outcomes[-1] == ("3", "Promoted")
    assert not any(name.endswith(second) for name in cluster.deployments())


def test_operator_killed_mid_canary_resumes_the_same_step(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    recorder: RouteRecorder,
    prometheus_url: str,
) -> None:
    steps = [(20, "4s"), (50, "24s"), (80, "4s")]
    _start(cluster, prometheus_url, steps=steps)
    cluster.apply(model_release("2", steps=steps, prometheus=prometheus_url))
    wait_for(
        lambda: (
            (cluster.status().get("currentStage") or {}).get("step") == 1
            and cluster.weights() == (50, 50)
        ),
        90,
        "step 2 running",
    )
    before = cluster.status()["currentStage"]
    deployments = cluster.deployments()
    operator.kill()
    killed_at = time.time()
    recorder.start()
    operator.start()

    def checked_since_restart() -> bool:
        times = [c.get("time", "") for c in cluster.status().get("checks", [])]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(killed_at + 1))
        return any(t > stamp for t in times)

    wait_for(checked_since_restart, 30, "a check by the restarted operator")
    after = cluster.status()["currentStage"]
    assert after["step"] == before["step"] == 1
    assert after["stepStartTime"] == before["stepStartTime"], "the step clock restarted"
    assert after["stageStartTime"] == before["stageStartTime"]
    assert {(s.stable, s.canary) for s in recorder.samples} == {(50, 50)}, "weights were reset"
    assert cluster.deployments() == deployments, "a Deployment appeared or went"
    wait_champion_version(cluster, "2", 90)
    recorder.stop()


def test_challenger_that_never_gets_ready_is_rolled_back_at_its_deadline(
    cluster: Cluster,
    operator: Process,
) -> None:
    cluster.apply(http_route(rate=None), model_release("1"))
    wait_champion_version(cluster, "1", 90)
    stuck = model_release("2")
    stuck["spec"]["progressDeadline"] = "8s"
    # No node matches, and no GPU is asked for, so the GPU check has nothing to say and
    # the deadline (8s) comes before the unschedulable grace (30s). A pod too big for any
    # node is tests/e2e/test_capacity.py's: it is rolled back at once.
    template = stuck["spec"]["template"]["spec"]
    template["nodeSelector"] = {"modelrelease.dev/e2e": "no-such-node"}
    template["containers"][0]["resources"] = {}
    cluster.apply(stuck)
    status = wait_phase(cluster, "RolledBack", 60, "the never-ready version to be rolled back")
    entry = status["history"][-1]
    assert entry["reason"] == "ProgressDeadlineExceeded", entry["message"]
    assert "progressDeadline 8s" in entry["message"]
    wait_weights(cluster, (100, 0))


def test_missing_route_holds_everything_until_it_exists(
    cluster: Cluster,
    operator: Process,
) -> None:
    cluster.apply(model_release("1"))

    def route_not_found() -> dict[str, Any] | None:
        degraded = cluster.condition("Degraded")
        return degraded if degraded and degraded["reason"] == "RouteNotFound" else None

    degraded = wait_for(route_not_found, 30, "a RouteNotFound condition")
    assert degraded["status"] == "True"
    assert "does not exist" in degraded["message"]
    assert f"HTTPRoute {cluster.namespace}/{RELEASE}" in degraded["message"]
    assert cluster.deployments() == []
    cluster.apply(http_route(rate=None))
    wait_champion_version(cluster, "1", 90)
    wait_weights(cluster, (100, 0))
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert degraded["status"] == "False"


def test_unknown_query_variable_holds_traffic_until_fixed(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    recorder: RouteRecorder,
    prometheus_url: str,
) -> None:
    steps = [(20, "4s")]
    _start(cluster, prometheus_url, steps=steps)
    recorder.start()
    broken = error_ratio_slo(query='sum(rate(vllm:request_success_total{pod="{{pod}}"}[10s]))')
    cluster.apply(model_release("2", steps=steps, slos=[broken], prometheus=prometheus_url))

    def unknown_variable() -> dict[str, Any] | None:
        degraded = cluster.condition("Degraded")
        return degraded if degraded and degraded["reason"] == "UnknownQueryVariable" else None

    degraded = wait_for(unknown_variable, 30, "an UnknownQueryVariable condition")
    assert "{{pod}}" in degraded["message"]
    assert "namespace" in degraded["message"]  # the allowed variables are listed
    held_until = time.time() + 3 * INTERVAL_SECONDS
    wait_for(lambda: time.time() >= held_until, 10, "a few passes of the operator")
    assert {s.canary for s in recorder.samples} == {0}, "traffic moved despite the bad spec"
    assert len(cluster.deployments()) == 1
    cluster.apply(model_release("2", steps=steps, prometheus=prometheus_url))
    wait_champion_version(cluster, "2", 120)


def test_deleting_a_release_restores_the_route_and_removes_what_it_owns(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    prometheus_url: str,
) -> None:
    steps = [(50, "120s")]
    _start(cluster, prometheus_url, steps=steps)
    before = cluster.route()
    cluster.apply(model_release("2", steps=steps, prometheus=prometheus_url))
    wait_for(lambda: cluster.weights() == (50, 50), 90, "the canary at 50%")
    cluster.kubectl(
        "delete", "modelrelease", RELEASE, "-n", cluster.namespace, "--wait=true", "--timeout=60s"
    )
    route = cluster.route()
    assert route["spec"]["rules"][0] == before["spec"]["rules"][0]
    refs = route["spec"]["rules"][1]["backendRefs"]
    assert [(ref["name"], ref.get("weight")) for ref in refs] == [(f"{RELEASE}-stable", 100)]
    assert "filters" not in route["spec"]["rules"][1]

    def owned_gone() -> bool:
        services = cluster.kubectl(
            "get",
            "services",
            "-n",
            cluster.namespace,
            "-l",
            f"modelrelease.dev/release={RELEASE}",
            "-o",
            "name",
        ).stdout.strip()
        return not cluster.deployments() and not services

    wait_for(owned_gone, 60, "the owned Deployments and Services to be garbage-collected")


pytestmark = pytest.mark.e2e
