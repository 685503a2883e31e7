"""The traffic simulator against the real API server and the real Prometheus.

Two revisions behind an HTTPRoute at 80/20 with half of the requests mirrored
to the canary: Prometheus, scraping the simulated pods through file-based
discovery, must show that split and that mirror share, and must agree exactly
with the simulator's stats file once traffic stops.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hack.simulator.stats import read_stats, served
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]
RATE_ANNOTATION = "simulator.modelrelease.dev/rate"
A, B = "aaaaaaaaaa", "bbbbbbbbbb"
BEHAVIOUR_ANNOTATION = "simulator.modelrelease.dev/behaviour"

# Short requests, so that every request has finished soon after traffic stops.
FAST = {"ttft": {"p50": 0.05, "p95": 0.1}, "tpot": 0.005, "outputTokens": {"p50": 20, "p95": 40}}
SLOW_AND_FAILING = {**FAST, "errorRatio": 0.1, "ttft": {"p50": 0.4, "p95": 0.8}}


@dataclass
class Simulator:
    process: subprocess.Popen[bytes]
    stats_file: Path
    targets_file: Path
    id: str
    log: Path

    def stats(self) -> dict[str, Any]:
        return read_stats(self.stats_file) if self.stats_file.exists() else {}

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)


@pytest.fixture
def simulator(
    kubeconfig: str, namespace: str, prometheus_targets_dir: Path, tmp_path: Path
) -> Iterator[Simulator]:
    log = tmp_path / "simulator.log"
    simulator_id = f"test-{namespace}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "hack.simulator",
                "--kubeconfig", kubeconfig,
                "--namespace", namespace,
                "--targets-dir", str(prometheus_targets_dir),
                "--stats-file", str(tmp_path / "stats.json"),
                "--seed", "7",
                "--id", simulator_id,
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    running = Simulator(
        process,
        tmp_path / "stats.json",
        prometheus_targets_dir / f"simulator-{process.pid}.json",
        simulator_id,
        log,
    )
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        running.targets_file.unlink(missing_ok=True)
        print(f"--- simulator log ({log}) ---\n{log.read_text()[-6000:]}")


def revision_manifests(namespace: str, revision: str, replicas: int, behaviour: Any) -> str:
    labels = {"modelrelease.dev/release": "chat", "modelrelease.dev/revision": revision}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"chat-{revision}", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {BEHAVIOUR_ANNOTATION: json.dumps(behaviour)},
                },
                "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:latest"}]},
            },
        },
    }
    return yaml.safe_dump(deployment)


def service_manifest(namespace: str, name: str, revision: str, **annotations: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
            "spec": {
                "selector": {
                    "modelrelease.dev/release": "chat",
                    "modelrelease.dev/revision": revision,
                },
                "ports": [{"name": "http", "port": 8000}],
            },
        }
    )


def apply_two_revisions(kubectl: Kubectl, namespace: str, simulator: Simulator) -> None:
    """Revision A (2 pods, fast) and B (1 pod, slow first token, 10% errors), Ready."""
    for manifest in (
        revision_manifests(namespace, A, 2, FAST),
        revision_manifests(namespace, B, 1, SLOW_AND_FAILING),
        service_manifest(namespace, "chat-stable", A),
        service_manifest(namespace, "chat-canary", B),
    ):
        kubectl("apply", "-f", "-", input=manifest)

    def pods_known() -> bool:
        rows = {row["revision"]: row["pods"] for row in simulator.stats().get("revisions", [])}
        return rows.get(A) == 2 and rows.get(B) == 1

    wait_for(pods_known, 90, "the simulator to see 2 + 1 Ready pods")


def http_route(namespace: str, rate: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {
                "name": "chat",
                "namespace": namespace,
                "annotations": {RATE_ANNOTATION: rate},
            },
            "spec": {
                "parentRefs": [{"name": "gateway"}],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                        "backendRefs": [{"name": "chat-canary", "port": 8000}],
                    },
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                        "backendRefs": [
                            {"name": "chat-stable", "port": 8000, "weight": 80},
                            {"name": "chat-canary", "port": 8000, "weight": 20},
                        ],
                        "filters": [
                            {
                                "type": "RequestMirror",
                                "requestMirror": {
                                    "backendRef": {"name": "chat-canary", "port": 8000},
                                    "percent": 50,
                                },
                            }
                        ],
                    },
                ],
            },
        }
    )


def query(prometheus_url: str, promql: str) -> dict[tuple[str, ...], float]:
    """An instant query: {label values in label-name order: value}."""
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return {
        tuple(value for _, value in sorted(sample["metric"].items())): float(sample["value"][1])
        for sample in body["data"]["result"]
    }


def test_split_and_mirror_share_reach_prometheus_and_match_the_stats_file(
    kubectl: Kubectl, namespace: str, simulator: Simulator, prometheus_url: str
) -> None:
    apply_two_revisions(kubectl, namespace, simulator)
    # Traffic starts once every pod is Ready, so that no request meets an empty backend.
    kubectl("apply", "-f", "-", input=http_route(namespace, "60"))
    sim = f'namespace="{namespace}", simulator="{simulator.id}"'

    def enough_user_requests_in_prometheus() -> float | None:
        total = sum(
            query(prometheus_url, f'simulator_requests_total{{{sim}, kind="user"}}').values()
        )
        return total if total >= 1200 else None

    wait_for(enough_user_requests_in_prometheus, 90, "1200 user requests counted in Prometheus")

    # Stop the traffic; counts freeze and Prometheus must then match the stats file exactly.
    kubectl("annotate", "httproute", "chat", "-n", namespace, f"{RATE_ANNOTATION}=0", "--overwrite")

    def stopped_stats() -> dict[str, Any] | None:
        stats = simulator.stats()
        entries = stats.get("entrypoints", [])
        return stats if entries and entries[0]["rate"] == 0 else None

    stats = wait_for(stopped_stats, 30, "the simulator to stop sending traffic")
    expected = {
        (kind, outcome, row["revision"]): float(row[kind][outcome])
        for row in stats["revisions"]
        for kind in ("mirror", "user")
        for outcome in ("error", "success")
        if row[kind][outcome]
    }

    def prometheus_agrees() -> dict[tuple[str, ...], float] | None:
        seen = query(
            prometheus_url,
            f"sum by (kind, outcome, revision) (simulator_requests_total{{{sim}}})",
        )
        return seen if seen == expected else None

    wait_for(prometheus_agrees, 30, f"Prometheus to show the stats file's counts {expected}")

    user_a, user_b = served(stats, A), served(stats, B)
    users = user_a + user_b
    assert user_b / users == pytest.approx(0.2, abs=0.04), (user_a, user_b)
    assert served(stats, B, kind="mirror") / users == pytest.approx(0.5, abs=0.05)
    assert served(stats, A, kind="mirror") == 0
    assert served(stats, A, outcome="error") == 0
    mirrored_b = served(stats, B, kind="mirror")
    errors_b = served(stats, B, outcome="error") + served(stats, B, kind="mirror", outcome="error")
    assert errors_b / (user_b + mirrored_b) == pytest.approx(0.1, abs=0.04)

    # The pods' own vLLM metrics, labelled by the target labels, tell the same story.
    pod_selector = f'namespace="{namespace}", simulator="{simulator.id}"'
    served_by_revision = {
        (revision,): float(served(stats, revision) + served(stats, revision, kind="mirror"))
        for revision in (A, B)
    }

    def pods_agree() -> bool:
        http = query(prometheus_url, f"sum by (revision) (http_requests_total{{{pod_selector}}})")
        return http == served_by_revision

    wait_for(pods_agree, 30, f"http_requests_total by revision to be {served_by_revision}")
    errors = query(
        prometheus_url,
        "sum by (revision) (vllm:request_success_total"
        f'{{{pod_selector}, finished_reason="error"}})',
    )
    assert errors == {
        (A,): 0.0,
        (B,): float(errors_b),
    }
    fast_first_tokens = query(
        prometheus_url,
        "sum by (revision) (vllm:time_to_first_token_seconds_bucket"
        f'{{{pod_selector}, le="0.25"}}) / sum by (revision) '
        f"(vllm:time_to_first_token_seconds_count{{{pod_selector}}})",
    )
    assert fast_first_tokens[(A,)] > 0.95  # TTFT p95 0.1 s
    assert fast_first_tokens[(B,)] < 0.5  # TTFT p50 0.4 s
    targets = query(
        prometheus_url,
        "count by (namespace, pod, release, revision)"
        f" (vllm:num_requests_running{{{pod_selector}}})",
    )
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    assert {key[1:] for key in targets} == {
        (
            pod["metadata"]["name"],
            "chat",
            pod["metadata"]["labels"]["modelrelease.dev/revision"],
        )
        for pod in pods
    }

    assert simulator.stop() == 0
    assert not simulator.targets_file.exists()
    assert served(read_stats(simulator.stats_file), A) == user_a  # the final stats stay


def test_istio_virtual_service_and_mesh_less_service(
    kubectl: Kubectl, namespace: str, simulator: Simulator
) -> None:
    apply_two_revisions(kubectl, namespace, simulator)
    fqdn = f"chat-canary.{namespace}.svc.cluster.local"
    virtual_service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": "chat",
            "namespace": namespace,
            "annotations": {RATE_ANNOTATION: "40"},
        },
        "spec": {
            "hosts": ["chat"],
            "http": [
                {
                    "name": "primary",
                    "route": [
                        {"destination": {"host": "chat-stable"}, "weight": 50},
                        {"destination": {"host": fqdn}, "weight": 50},
                    ],
                }
            ],
        },
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(virtual_service))
    # A mesh-less entry point over both revisions: 2 pods of A, 1 of B.
    everything = service_manifest(namespace, "chat-all", A, **{RATE_ANNOTATION: "30"})
    everything_yaml = yaml.safe_load(everything)
    del everything_yaml["spec"]["selector"]["modelrelease.dev/revision"]
    kubectl("apply", "-f", "-", input=yaml.safe_dump(everything_yaml))

    def answered(stats: dict[str, Any]) -> dict[tuple[str, str], int]:
        """Requests a pod answered, per entry point kind and backend."""
        totals: dict[tuple[str, str], int] = {}
        for entry in stats.get("entrypoints", []):
            for row in entry["requests"]:
                if row["kind"] == "user" and row["code"] in (200, 500):
                    key = (entry["kind"], row["backend"])
                    totals[key] = totals.get(key, 0) + row["count"]
        return totals

    def enough() -> dict[str, Any] | None:
        stats = simulator.stats()
        return stats if sum(answered(stats).values()) >= 1500 else None

    stats = wait_for(enough, 120, "1500 requests through the VirtualService and the Service")
    by_entry = answered(stats)
    assert {kind for kind, _ in by_entry} == {"VirtualService", "Service"}
    istio_total = by_entry[("VirtualService", "chat-stable")] + by_entry[("VirtualService", fqdn)]
    assert by_entry[("VirtualService", fqdn)] / istio_total == pytest.approx(0.5, abs=0.06)
    # Mesh-less: the split follows the number of ready pods (1 of 3 is B).
    stable_share_of_service = (served(stats, A) - by_entry[("VirtualService", "chat-stable")]) / (
        by_entry[("Service", "chat-all")]
    )
    assert stable_share_of_service == pytest.approx(2 / 3, abs=0.07)
